"""Periods of service and leave under Determination 19: which days count towards the 12-month cycle.

Pure functions: no clock, no I/O.  A period is an inclusive ``(first day, last day)`` pair.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from engine.policies.pay_progression.dates import effective_date, months_of_service

__all__ = [
    "Period",
    "combined_service_start",
    "days_in",
    "days_within",
    "lwop_postponement",
    "months_counted",
    "months_of_days",
    "postponement",
    "progression_effective_date",
    "whole_months",
]

Period = tuple[date, date]


def _check(period: Period) -> None:
    if period[1] < period[0]:
        raise ValueError(f"a period ends ({period[1].isoformat()}) before it starts ({period[0].isoformat()})")


def days_in(periods: Iterable[Period]) -> int:
    """Days covered by the union of the periods (overlapping days count once)."""
    merged: list[list[date]] = []
    for start, end in sorted(periods):
        _check((start, end))
        if merged and start <= merged[-1][1] + timedelta(days=1):
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return sum((end - start).days + 1 for start, end in merged)


def postponement(cycle_start: date, assessment_date: date, periods: Iterable[Period]) -> int:
    """Days by which periods that do not count as service postpone the assessment date (D19-9d, D19-12(2)).

    A period that ends before the cycle starts belongs to an earlier cycle, and one that starts after the
    (postponed) assessment date to a later one: neither moves this cycle.  Otherwise every day of it from
    the cycle's start on moves the date, including days past the old date: the date moves while the period
    runs.  Overlapping periods count once.
    """
    periods = list(periods)
    for period in periods:
        _check(period)
    days = 0
    while True:  # a postponed date can reach a later period; stop when nothing more is reached
        due = assessment_date + timedelta(days=days)
        reached = [(max(s, cycle_start), e) for s, e in periods if e >= cycle_start and s <= due]
        total = days_in(reached)
        if total == days:
            return days
        days = total


def lwop_postponement(cycle_start: date, assessment_date: date, leave: Period) -> int:
    """D19-9d: days by which one period of leave without pay (not service) postpones the assessment date."""
    return postponement(cycle_start, assessment_date, [leave])


def combined_service_start(new_start: date, former: Iterable[Period]) -> date:
    """D19-11: the start date the new position's service would have if the former service ran straight on.

    Former periods at the same level count day for day; overlaps and days on or after ``new_start`` are not
    counted twice.
    """
    before = [(s, min(e, new_start - timedelta(days=1))) for s, e in former if s < new_start]
    return new_start - timedelta(days=days_in(before))


def progression_effective_date(
    original_assessment_date: date,
    decided_on: date,
    *,
    new_timeframe_date: date | None = None,
    employee_caused_delay: bool = False,
) -> date:
    """The date an approved progression takes effect (D19-4, D19-9a, D19-9b, D19-10).

    * normally, and after a review or a delay not caused by the employee: the original assessment date;
    * after an agreed new timeframe for extended leave (D19-10): the revised assessment date;
    * when the employee caused the delay and the decision came after the assessment date: the decision date
      (the determination is silent; see docs/decisions.md).
    """
    if new_timeframe_date is not None:
        return effective_date(original_assessment_date, max(new_timeframe_date, original_assessment_date),
                              extended_leave_new_timeframe=True)
    if employee_caused_delay and decided_on > original_assessment_date:
        return effective_date(original_assessment_date, decided_on, delayed_by_employee=True)
    return effective_date(original_assessment_date)


def whole_months(start: date, end: date) -> int:
    """Whole months from ``start`` to ``end``, 0 when ``end`` is before ``start``."""
    return months_of_service(start, end) if end >= start else 0


def months_counted(first: date, last: date) -> int:
    """Whole months from ``first`` to ``last`` *inclusive*, as HR counts a period (D19-5).

    1 July to 30 June, 1 January to 31 December, and any day to the day before the same day a year later are
    each 12 months; so is a day to the same day a year later (a whole year and a day)."""
    return whole_months(first, last + timedelta(days=1)) if last >= first else 0


def months_of_days(days: int, ending: date) -> int:
    """Whole months that ``days`` calendar days of service make, counted back from ``ending`` (inclusive).

    Broken periods (D19-12(1)) and service across a transfer (D19-11) add up by days; the months they make are
    the longest run of whole months ending on ``ending`` that has no more days than they have: 365 days ending on
    30 June 2027 are 12 months, 366 days are needed for a year that holds 29 February."""
    if days <= 0:
        return 0
    # As many months as the continuous period of that many days ending on `ending` makes by the calendar (a month
    # from the 29th to the 28th of February counts, as add_months clamps): counting back from the end disagreed
    # with months_counted at such month ends (29 Sep 2000 to 27 Feb 2002: 16 against 17).
    return months_counted(ending - timedelta(days=days - 1), ending)


def days_within(periods: Iterable[Period], first: date, last: date) -> int:
    """Days of the union of ``periods`` that fall between ``first`` and ``last`` inclusive."""
    clipped = [(max(s, first), min(e, last)) for s, e in periods if e >= first and s <= last]
    return days_in(clipped)
