"""Determination 19 policy rules as pure functions (dates and periods of service)."""

from engine.policy.dates import (
    add_months,
    agreement_setup_due,
    effective_date,
    invite_due,
    lwop_days,
    months_of_service,
    next_assessment_date,
    parse_date,
    postpone_for_lwop,
    review_due,
    to_iso_timer,
)
from engine.policy.periods import (
    combined_service_start,
    days_in,
    lwop_postponement,
    postponement,
    progression_effective_date,
    whole_months,
)

__all__ = [
    "add_months",
    "agreement_setup_due",
    "combined_service_start",
    "days_in",
    "effective_date",
    "invite_due",
    "lwop_days",
    "lwop_postponement",
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
