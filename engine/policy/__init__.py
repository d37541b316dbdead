"""Determination 19 policy rules as pure functions (dates)."""

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

__all__ = [
    "add_months",
    "agreement_setup_due",
    "effective_date",
    "invite_due",
    "lwop_days",
    "months_of_service",
    "next_assessment_date",
    "parse_date",
    "postpone_for_lwop",
    "review_due",
    "to_iso_timer",
]
