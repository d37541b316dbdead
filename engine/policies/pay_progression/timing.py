"""Determination 19 policy rules as pure functions (dates and periods of service)."""

from engine.core.dates import EARLIEST_DATE, LATEST_DATE, DateOutOfRange, add_months, parse_date, to_iso_timer
from engine.policies.pay_progression.dates import (
    agreement_setup_due,
    effective_date,
    invite_due,
    lwop_days,
    months_of_service,
    next_assessment_date,
    postpone_for_lwop,
    review_due,
)
from engine.policies.pay_progression.periods import (
    Period,
    combined_service_start,
    days_in,
    days_within,
    lwop_postponement,
    months_counted,
    months_of_days,
    postponement,
    progression_effective_date,
    whole_months,
)

__all__ = [
    "EARLIEST_DATE",
    "LATEST_DATE",
    "DateOutOfRange",
    "Period",
    "add_months",
    "agreement_setup_due",
    "combined_service_start",
    "days_in",
    "days_within",
    "effective_date",
    "invite_due",
    "lwop_days",
    "lwop_postponement",
    "months_counted",
    "months_of_days",
    "months_of_service",
    "next_assessment_date",
    "parse_date",
    "postpone_for_lwop",
    "postponement",
    "progression_effective_date",
    "review_due",
    "to_iso_timer",
    "whole_months",
]
