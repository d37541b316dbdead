"""Determination 19 periods: which days count (D19-9d, D19-11, D19-12) and when a progression takes effect
(D19-4, D19-9a, D19-9b, D19-10). Examples per clause, and properties over many dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from engine.core.clock import CLOCK
from engine.core.config import Settings
from engine.policies.pay_progression import timing as policy
from engine.policies.pay_progression.helpers import d19_helpers
from engine.policies.pay_progression.timing import (
    combined_service_start,
    days_in,
    lwop_postponement,
    postponement,
    progression_effective_date,
    whole_months,
)
from engine.workflow.helpers import PolicyRefusal, notice, refuse_unless, script_helpers

dates = st.dates(min_value=date(1950, 1, 1), max_value=date(2150, 12, 31))
lengths = st.integers(min_value=0, max_value=400)


@st.composite
def periods(draw: st.DrawFn, anchor: date = date(2026, 1, 1)) -> tuple[date, date]:
    """A period near `anchor` so that periods overlap often."""
    start = anchor + timedelta(days=draw(st.integers(min_value=-200, max_value=400)))
    return start, start + timedelta(days=draw(st.integers(min_value=0, max_value=120)))


# --- days_in --------------------------------------------------------------------------------------


def test_days_in_counts_overlaps_once() -> None:
    assert days_in([(date(2026, 3, 1), date(2026, 3, 10)), (date(2026, 3, 5), date(2026, 3, 12))]) == 12
    assert days_in([(date(2026, 3, 1), date(2026, 3, 1)), (date(2026, 3, 2), date(2026, 3, 2))]) == 2
    assert days_in([]) == 0
    with pytest.raises(ValueError, match="before it starts"):
        days_in([(date(2026, 3, 2), date(2026, 3, 1))])


@given(st.lists(periods(), max_size=6))
def test_days_in_is_the_number_of_distinct_days(spans: list[tuple[date, date]]) -> None:
    every = {s + timedelta(days=i) for s, e in spans for i in range((e - s).days + 1)}
    assert days_in(spans) == len(every)


# --- D19-9d: leave without pay postpones the assessment date -------------------------------------


def test_d19_9d_lwop_inside_the_cycle_postpones_day_for_day() -> None:
    cycle, assessment = date(2025, 6, 30), date(2026, 6, 30)
    assert lwop_postponement(cycle, assessment, (date(2026, 3, 10), date(2026, 3, 19))) == 10
    # leave that started before the cycle counts from the cycle's first day
    assert lwop_postponement(cycle, assessment, (date(2025, 6, 21), date(2025, 7, 9))) == 10
    # leave running past the assessment date postpones by all its days (the date moves while it runs)
    assert lwop_postponement(cycle, assessment, (date(2026, 6, 21), date(2026, 7, 20))) == 30


def test_d19_9d_lwop_outside_the_cycle_moves_nothing() -> None:
    cycle, assessment = date(2025, 6, 30), date(2026, 6, 30)
    assert lwop_postponement(cycle, assessment, (date(2025, 1, 1), date(2025, 6, 29))) == 0
    assert lwop_postponement(cycle, assessment, (date(2026, 7, 1), date(2026, 7, 31))) == 0


@given(dates, st.integers(min_value=0, max_value=364), st.integers(min_value=1, max_value=3650))
def test_d19_9d_any_number_of_lwop_days_in_the_cycle_postpones_by_exactly_that_many(
        cycle: date, offset: int, days: int) -> None:
    assessment = policy.add_months(cycle, 12)
    start = cycle + timedelta(days=offset)
    postponed = policy.postpone_for_lwop(assessment, lwop_postponement(cycle, assessment, (
        start, start + timedelta(days=days - 1))))
    assert postponed == assessment + timedelta(days=days)


offsets = st.lists(st.tuples(st.integers(min_value=-100, max_value=500), st.integers(min_value=0, max_value=120)),
                   max_size=5)


@given(dates, offsets)
def test_d19_12_postponement_reaches_every_period_the_moved_date_reaches(
        cycle: date, raw: list[tuple[int, int]]) -> None:
    spans = [(cycle + timedelta(days=o), cycle + timedelta(days=o + n)) for o, n in raw]
    assessment = policy.add_months(cycle, 12)
    days = postponement(cycle, assessment, spans)
    moved = assessment + timedelta(days=days)
    reached = [(max(s, cycle), e) for s, e in spans if e >= cycle and s <= moved]
    assert days == days_in(reached)  # a fixed point: nothing the moved date reaches is left out
    assert days >= 0 and days <= days_in(spans)


# --- D19-11: former plus new service --------------------------------------------------------------


def test_d19_11_former_service_counts_day_for_day() -> None:
    start = combined_service_start(date(2025, 8, 7), [(date(2025, 1, 6), date(2025, 8, 6))])
    assert start == date(2025, 1, 6)
    assert whole_months(start, date(2026, 1, 7)) == 12
    # a former period reaching into the new position is not counted twice
    assert combined_service_start(date(2025, 8, 7), [(date(2025, 8, 1), date(2025, 9, 1))]) == date(2025, 8, 1)


@given(dates, st.lists(st.tuples(st.integers(min_value=1, max_value=2000), st.integers(min_value=0, max_value=400)),
                        max_size=4))
def test_d19_11_combined_start_is_the_new_start_less_the_former_days(
        new_start: date, raw: list[tuple[int, int]]) -> None:
    former = [(new_start - timedelta(days=back), new_start - timedelta(days=back) + timedelta(days=length))
              for back, length in raw]
    result = combined_service_start(new_start, former)
    before = [(s, min(e, new_start - timedelta(days=1))) for s, e in former if s < new_start]
    assert new_start - result == timedelta(days=days_in(before))
    assert result <= new_start


def test_whole_months_is_zero_backwards() -> None:
    assert whole_months(date(2026, 3, 2), date(2026, 3, 1)) == 0
    assert whole_months(date(2025, 6, 30), date(2026, 6, 30)) == 12


# --- D19-4, D19-9a, D19-9b, D19-10: the effective date ------------------------------------------------


def test_d19_4_d19_9b_d19_10_effective_dates() -> None:
    original = date(2026, 6, 30)
    assert progression_effective_date(original, date(2026, 5, 1)) == original
    assert progression_effective_date(original, date(2026, 9, 14)) == original  # 9b: back-dated
    assert progression_effective_date(original, date(2026, 8, 3), employee_caused_delay=True) == date(2026, 8, 3)
    assert progression_effective_date(original, date(2026, 6, 1), employee_caused_delay=True) == original
    assert progression_effective_date(original, date(2026, 10, 9), new_timeframe_date=date(2026, 9, 30)) == date(
        2026, 9, 30)


@given(dates, dates)
def test_d19_9a_9b_a_review_or_a_delay_not_the_employees_never_takes_effect_after_the_original_date(
        original: date, decided: date) -> None:
    assert progression_effective_date(original, decided) == original


@given(dates, dates, st.booleans(), st.none() | dates)
def test_effective_date_is_never_before_the_original_nor_after_the_later_of_decision_and_revision(
        original: date, decided: date, by_employee: bool, revised: date | None) -> None:
    result = progression_effective_date(original, decided, new_timeframe_date=revised,
                                        employee_caused_delay=by_employee)
    assert result >= original
    assert result <= max(original, decided, revised or original)


# --- month-end clamping and leap years through the helpers scripts call ------------------------------


@given(dates, st.integers(min_value=1, max_value=12))
def test_d19_3_2_invite_due_clamps_for_any_setting(assessment: date, months: int) -> None:
    due = policy.invite_due(assessment, months)
    assert due < assessment and policy.add_months(due, months) <= assessment
    assert due.day <= assessment.day


@pytest.mark.parametrize(("assessment", "expected"), [
    ("2028-04-30", "2028-02-29"), ("2027-04-30", "2027-02-28"), ("2026-12-31", "2026-10-31"),
    ("2028-02-29", "2027-12-29"),
])
def test_d19_3_2_scripts_see_the_same_clamping(assessment: str, expected: str) -> None:
    helpers = d19_script_helpers()
    assert helpers["invite_due_date"](assessment, 2) == expected


def d19_script_helpers() -> dict[str, Any]:
    """The helpers Determination 19's diagrams see: the generic ones and the pay progression package's."""
    settings = Settings(database_url="sqlite://")
    return {**script_helpers(None, settings), **d19_helpers(None, settings)}  # type: ignore[arg-type]  # no session


def test_script_helpers_window_today_and_refusals() -> None:
    helpers = d19_script_helpers()
    # "before the assessment date" ends at the first instant of the day in Darwin
    assert helpers["window_closes_at"]("2026-06-30") == "2026-06-30T00:00:00+09:30"
    CLOCK.freeze(datetime(2026, 3, 1, 15, 0, tzinfo=UTC))  # already 2 March in Darwin
    assert helpers["today"]() == "2026-03-02"
    assert helpers["days_between"]("2026-03-02", "2026-03-30") == 28
    assert helpers["uncounted_days"]("2025-06-30", "2026-06-30", [{"start": "2025-09-01", "end": "2025-09-30"}]) == 30
    assert helpers["progression_effective_date"]("2026-06-30", "2026-09-14", None, False) == "2026-06-30"
    assert refuse_unless(True, "fine")
    with pytest.raises(PolicyRefusal) as err:
        refuse_unless(False, "Determination 19, cl. 10: the new date must be later")
    assert err.value.error_msg == "Determination 19, cl. 10: the new date must be later"
    assert notice("Employee", "s", "b", "D19-7") == {"to": "Employee", "subject": "s", "body": "b", "clause": "D19-7"}
    with pytest.raises(PolicyRefusal):
        notice("Everyone", "s", "b")


# ------------------------------------------------------------------------------------------ as HR counts (issue 15)


@pytest.mark.parametrize(("first", "last", "months"), [
    (date(2026, 7, 1), date(2027, 6, 30), 12),   # financial year
    (date(2027, 1, 1), date(2027, 12, 31), 12),  # calendar year
    (date(2026, 3, 15), date(2027, 3, 14), 12),  # a day to the day before, a year later
    (date(2025, 6, 30), date(2026, 6, 30), 12),  # to the same day a year later
    (date(2026, 7, 2), date(2027, 6, 30), 11),
    (date(2028, 3, 1), date(2029, 2, 28), 12),   # across 29 February
])
def test_d19_5_months_are_counted_inclusively(first: date, last: date, months: int) -> None:
    assert policy.months_counted(first, last) == months


def test_d19_12_days_make_months_counted_back_from_the_end() -> None:
    assert policy.months_of_days(365, date(2027, 6, 30)) == 12
    assert policy.months_of_days(364, date(2027, 6, 30)) == 11
    assert policy.months_of_days(365, date(2028, 6, 30)) == 11  # that year holds 29 February 2028
    assert policy.months_of_days(366, date(2028, 6, 30)) == 12
    assert policy.months_of_days(0, date(2028, 6, 30)) == 0


@given(st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31)), st.integers(min_value=0, max_value=800))
@example(first=date(2000, 9, 29), days=516)  # found by hypothesis: counting back from a month's end gave 16, not 17
def test_d19_5_a_continuous_period_makes_as_many_months_by_days_as_by_the_calendar(first: date, days: int) -> None:
    last = first + timedelta(days=days)
    assert policy.months_of_days(days + 1, last) == policy.months_counted(first, last)
