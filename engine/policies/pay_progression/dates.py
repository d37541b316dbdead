"""Date rules of Determination 19 (pay progression for senior port classifications).

Pure functions: no clock, no I/O.  Clause ids (D19-3.2 ...) follow shared/REQUIREMENTS.md.
"""

from __future__ import annotations

from datetime import date, timedelta

# The ignore covers machines without types-python-dateutil (a dev dependency); with it, it is unused.
from dateutil.relativedelta import relativedelta  # type: ignore[import-untyped, unused-ignore]

from engine.core.dates import EARLIEST_DATE, LATEST_DATE, DateOutOfRange, add_months, parse_date, to_iso_timer

__all__ = [
    "EARLIEST_DATE",
    "LATEST_DATE",
    "DateOutOfRange",
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


def invite_due(assessment_date: date, months_before: int = 2) -> date:
    """D19-3.2: the latest day to invite a submission, ``months_before`` months before the assessment date."""
    return add_months(assessment_date, -months_before)


def agreement_setup_due(commenced_on: date, months: int = 2) -> date:
    """D19-3.3: performance management must start within ``months`` months of commencement."""
    return add_months(commenced_on, months)


def review_due(received_on: date, days: int = 28) -> date:
    """D19-9a: the CEO finishes a review within four weeks (28 days) of receiving the request."""
    return received_on + timedelta(days=days)


def postpone_for_lwop(assessment_date: date, lwop_days: int) -> date:
    """D19-9d: leave without pay that is not service postpones the assessment date day for day."""
    if lwop_days < 0:
        raise ValueError(f"leave without pay cannot be a negative number of days: {lwop_days}")
    return assessment_date + timedelta(days=lwop_days)


def lwop_days(start: date, end: date) -> int:
    """Number of days in a leave period, counting both its first and its last day."""
    if end < start:
        raise ValueError(f"leave ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    return (end - start).days + 1


def effective_date(
    original_assessment_date: date,
    revised_assessment_date: date | None = None,
    *,
    delayed_by_employee: bool = False,
    extended_leave_new_timeframe: bool = False,
) -> date:
    """Date an approved progression takes effect from.

    Rules:

    * D19-4: normally the (original) annual assessment date.  After LWOP (D19-9d) pass the postponed
      date as the original: postponement moves the date itself.
    * D19-9a / D19-9b: a progression granted on review, or after an assessment that was delayed
      through no act of the employee, is back-dated to the original assessment date; a later
      ``revised_assessment_date`` (when the assessment actually happened) is ignored.
    * D19-10: where extended leave led to an agreed new timeframe, the progression applies from the
      revised assessment date.
    * When the employee caused the delay, D19-9b's back-dating does not apply: the revised date.

    In the last two cases ``revised_assessment_date`` is required and may not precede the original
    date; the result is never later than the rule requires.
    """
    if not (extended_leave_new_timeframe or delayed_by_employee):
        return original_assessment_date
    reason = "an agreed new timeframe" if extended_leave_new_timeframe else "a delay caused by the employee"
    if revised_assessment_date is None:
        raise ValueError(f"a revised assessment date is required for {reason}")
    if revised_assessment_date < original_assessment_date:
        raise ValueError(
            f"the revised assessment date ({revised_assessment_date.isoformat()}) is before the "
            f"original one ({original_assessment_date.isoformat()})"
        )
    return revised_assessment_date


def next_assessment_date(assessment_date: date, months: int = 12) -> date:
    """The assessment date of the next annual cycle (29 Feb moves to 28 Feb)."""
    return add_months(assessment_date, months)


def months_of_service(start: date, end: date) -> int:
    """Whole calendar months from start to end (D19-5, D19-11): largest n with add_months(start, n) <= end."""
    if end < start:
        raise ValueError(f"service ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    # relativedelta(end, start) counts months the same clamping way add_months moves them.
    span = relativedelta(end, start)
    return int(span.years) * 12 + int(span.months)
