"""Determination 19 date rules: one example per clause, and properties over many dates."""

from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.policies.pay_progression import timing as policy
from engine.policies.pay_progression.timing import (
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

# Wide enough for every plausible employment date, narrow enough that +/- 20 years stays in range.
dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31))
month_offsets = st.integers(min_value=-240, max_value=240)


def _month_index(d: date) -> int:
    return d.year * 12 + d.month - 1


def _last_day(d: date) -> int:
    return calendar.monthrange(d.year, d.month)[1]


# --- add_months ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2024, 12, 31), -2, date(2024, 10, 31)),
        (date(2024, 4, 30), -2, date(2024, 2, 29)),  # leap year
        (date(2023, 4, 30), -2, date(2023, 2, 28)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2023, 1, 31), 1, date(2023, 2, 28)),
        (date(2024, 3, 31), 1, date(2024, 4, 30)),
        (date(2024, 11, 15), 3, date(2025, 2, 15)),
        (date(2024, 5, 20), 0, date(2024, 5, 20)),
    ],
)
def test_add_months_clamps_to_month_end(start: date, months: int, expected: date) -> None:
    assert add_months(start, months) == expected


@given(dates, month_offsets)
def test_add_months_lands_in_the_right_month_and_never_overshoots_the_day(d: date, n: int) -> None:
    result = add_months(d, n)
    assert _month_index(result) == _month_index(d) + n
    assert result.day <= d.day
    if result.day < d.day:  # clamped: only ever to the last day of the target month
        assert result.day == _last_day(result)


@given(st.integers(min_value=1901, max_value=2199))
def test_add_months_handles_leap_years(year: int) -> None:
    february_end = 29 if calendar.isleap(year) else 28
    assert add_months(date(year, 1, 31), 1) == date(year, 2, february_end)
    assert add_months(date(year, 3, 31), -1) == date(year, 2, february_end)
    if calendar.isleap(year):
        assert add_months(date(year, 2, 29), 12) == date(year + 1, 2, 28)


@given(dates, month_offsets)
def test_add_months_then_inverse_never_exceeds_the_original_day(d: date, n: int) -> None:
    back = add_months(add_months(d, n), -n)
    assert _month_index(back) == _month_index(d)
    assert back.day <= d.day


# --- D19-3.2 / D19-3.3 ----------------------------------------------------------------------------


def test_d19_3_2_invite_due_two_months_before_assessment() -> None:
    assert invite_due(date(2026, 7, 1)) == date(2026, 5, 1)


def test_d19_3_2_invite_due_clamps_to_month_end() -> None:
    assert invite_due(date(2025, 12, 31)) == date(2025, 10, 31)
    assert invite_due(date(2026, 4, 30)) == date(2026, 2, 28)
    assert invite_due(date(2028, 4, 30)) == date(2028, 2, 29)


def test_d19_3_2_invite_due_months_before_is_configurable() -> None:
    assert invite_due(date(2026, 7, 1), months_before=3) == date(2026, 4, 1)


@given(dates)
def test_d19_3_2_invite_is_at_least_two_months_before(assessment: date) -> None:
    due = invite_due(assessment)
    assert due < assessment
    assert add_months(due, 2) <= assessment


def test_d19_3_3_agreement_setup_due_two_months_after_commencement() -> None:
    assert agreement_setup_due(date(2026, 3, 2)) == date(2026, 5, 2)
    assert agreement_setup_due(date(2025, 12, 31)) == date(2026, 2, 28)
    assert agreement_setup_due(date(2026, 3, 2), months=1) == date(2026, 4, 2)


# --- D19-4 / D19-9a / D19-9b / D19-10 -------------------------------------------------------------


def test_d19_4_progression_effective_from_assessment_date() -> None:
    assert effective_date(date(2026, 7, 1)) == date(2026, 7, 1)


def test_d19_9a_review_due_in_28_days() -> None:
    assert review_due(date(2026, 3, 2)) == date(2026, 3, 30)
    assert review_due(date(2026, 2, 10)) == date(2026, 3, 10)  # across a short February
    assert review_due(date(2026, 3, 2), days=14) == date(2026, 3, 16)


def test_d19_9a_review_granting_progression_backdates_to_original_date() -> None:
    assert effective_date(date(2026, 7, 1), date(2026, 9, 15)) == date(2026, 7, 1)


def test_d19_9b_delay_not_caused_by_employee_backdates() -> None:
    assert effective_date(date(2026, 7, 1), date(2026, 10, 1), delayed_by_employee=False) == date(2026, 7, 1)


def test_d19_9b_delay_caused_by_employee_takes_effect_from_revised_date() -> None:
    assert effective_date(date(2026, 7, 1), date(2026, 8, 3), delayed_by_employee=True) == date(2026, 8, 3)


def test_d19_10_new_timeframe_after_extended_leave_uses_revised_date() -> None:
    result = effective_date(date(2026, 7, 1), date(2026, 10, 1), extended_leave_new_timeframe=True)
    assert result == date(2026, 10, 1)


def test_d19_10_new_timeframe_needs_a_revised_date_not_before_the_original() -> None:
    with pytest.raises(ValueError, match="revised assessment date is required"):
        effective_date(date(2026, 7, 1), extended_leave_new_timeframe=True)
    with pytest.raises(ValueError, match="before the original"):
        effective_date(date(2026, 7, 1), date(2026, 6, 1), extended_leave_new_timeframe=True)


def test_d19_9b_delayed_by_employee_needs_a_revised_date() -> None:
    with pytest.raises(ValueError, match="revised assessment date is required"):
        effective_date(date(2026, 7, 1), delayed_by_employee=True)


@given(dates, st.none() | dates)
def test_d19_9a_9b_effective_date_never_after_original(original: date, revised: date | None) -> None:
    assert effective_date(original, revised) == original


@given(dates, dates, st.booleans(), st.booleans())
def test_effective_date_is_never_later_than_the_revised_date(
    original: date, revised: date, by_employee: bool, new_timeframe: bool
) -> None:
    if revised < original:
        revised, original = original, revised
    result = effective_date(
        original, revised, delayed_by_employee=by_employee, extended_leave_new_timeframe=new_timeframe
    )
    assert original <= result <= revised


# --- D19-9d ---------------------------------------------------------------------------------------


def test_d19_9d_lwop_postpones_day_for_day() -> None:
    days = lwop_days(date(2026, 3, 2), date(2026, 3, 11))
    assert days == 10
    assert postpone_for_lwop(date(2026, 7, 1), days) == date(2026, 7, 11)


def test_d19_9d_lwop_days_counts_both_ends() -> None:
    assert lwop_days(date(2026, 3, 2), date(2026, 3, 2)) == 1
    assert lwop_days(date(2024, 2, 28), date(2024, 3, 1)) == 3  # 29 Feb counts


def test_d19_9d_lwop_rejects_backwards_periods_and_negative_days() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        lwop_days(date(2026, 3, 2), date(2026, 3, 1))
    with pytest.raises(ValueError, match="negative"):
        postpone_for_lwop(date(2026, 7, 1), -1)


@given(dates, st.integers(min_value=0, max_value=3650))
def test_d19_9d_postponement_equals_timedelta(assessment: date, days: int) -> None:
    assert postpone_for_lwop(assessment, days) == assessment + timedelta(days=days)


@given(dates, st.integers(min_value=0, max_value=3650))
def test_d19_9d_lwop_days_matches_period_length(start: date, extra: int) -> None:
    end = start + timedelta(days=extra)
    assert lwop_days(start, end) == extra + 1


# --- annual cycle, D19-5 / D19-11 ------------------------------------------------------------------


def test_d19_4_next_assessment_date_is_twelve_months_on() -> None:
    assert next_assessment_date(date(2026, 7, 1)) == date(2027, 7, 1)
    assert next_assessment_date(date(2028, 2, 29)) == date(2029, 2, 28)
    assert next_assessment_date(date(2026, 7, 1), months=6) == date(2027, 1, 1)


def test_d19_5_months_of_service() -> None:
    assert months_of_service(date(2025, 7, 1), date(2026, 7, 1)) == 12
    assert months_of_service(date(2025, 7, 1), date(2026, 6, 30)) == 11
    assert months_of_service(date(2026, 1, 31), date(2026, 2, 28)) == 1  # same clamping as add_months
    assert months_of_service(date(2026, 3, 2), date(2026, 3, 2)) == 0


def test_d19_11_former_plus_new_service_reaches_twelve_months() -> None:
    former = months_of_service(date(2025, 1, 6), date(2025, 8, 6))
    new = months_of_service(date(2025, 8, 7), date(2026, 1, 7))
    assert (former, new) == (7, 5)
    assert former + new >= 12


def test_months_of_service_rejects_backwards_periods() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        months_of_service(date(2026, 3, 2), date(2026, 3, 1))


@given(dates, dates)
def test_months_of_service_is_the_largest_whole_month_count(a: date, b: date) -> None:
    start, end = min(a, b), max(a, b)
    months = months_of_service(start, end)
    assert add_months(start, months) <= end < add_months(start, months + 1)


# --- parsing and timers ---------------------------------------------------------------------------


def test_parse_date_accepts_iso_text_and_dates() -> None:
    assert parse_date("2026-07-01") == date(2026, 7, 1)
    assert parse_date(" 2026-07-01 ") == date(2026, 7, 1)
    assert parse_date(date(2026, 7, 1)) == date(2026, 7, 1)
    assert parse_date(datetime(2026, 7, 1, 13, 5)) == date(2026, 7, 1)


@pytest.mark.parametrize("bad", ["2026-13-01", "2026-02-30", "01/07/2026", "20260701", "", "2026-07-01T00:00", None, 3])
def test_parse_date_names_the_bad_value(bad: object) -> None:
    with pytest.raises(ValueError, match="expected YYYY-MM-DD") as excinfo:
        parse_date(bad)  # type: ignore[arg-type]
    assert repr(bad) in str(excinfo.value)


def test_to_iso_timer_is_nine_am_darwin_time() -> None:
    assert to_iso_timer(date(2026, 7, 1)) == "2026-07-01T09:00:00+09:30"
    assert to_iso_timer(date(2026, 1, 1), "Australia/Sydney", time(8, 30)) == "2026-01-01T08:30:00+11:00"
    assert to_iso_timer(date(2026, 7, 1), "UTC") == "2026-07-01T09:00:00+00:00"


def test_to_iso_timer_rejects_unknown_zones_and_aware_times() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        to_iso_timer(date(2026, 7, 1), "Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="wall-clock"):
        to_iso_timer(date(2026, 7, 1), at=time(9, 0, tzinfo=datetime.now().astimezone().tzinfo))


# Darwin has had no daylight saving since 1944 (it did in wartime), so modern dates are always +09:30.
@given(st.dates(min_value=date(1950, 1, 1), max_value=date(2200, 12, 31)))
def test_to_iso_timer_round_trips(d: date) -> None:
    parsed = datetime.fromisoformat(to_iso_timer(d))
    assert parsed.date() == d
    assert parsed.time() == time(9, 0)
    assert parsed.utcoffset() == timedelta(hours=9, minutes=30)


def test_package_reexports_every_rule() -> None:
    for name in policy.__all__:  # the rules, and the range of dates they accept
        value = getattr(policy, name)
        assert callable(value) or isinstance(value, date), name
