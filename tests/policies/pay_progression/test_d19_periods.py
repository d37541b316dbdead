"""Determination 19: periods counted as HR counts them (D19-5, D19-9d, D19-10, D19-11, D19-12), eligibility from
the people records, one running cycle per employee, and dates out of any sensible range refused.

Each scenario that runs a case does it straight through and with a save/restore between every step.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import update

from engine.core.errors import Invalid
from engine.people.models import Person
from engine.policies.pay_progression.leave import record_leave
from engine.workflow.runtime import Runtime
from tests.policies.pay_progression.test_pay_progression import INVITE, START
from tests.web.api_helpers import api_as, assert_errors
from tests.workflow.driver import Driver


@pytest.fixture(params=[False, True], ids=["straight", "save-restore"])
def drive(org: Runtime, request: pytest.FixtureRequest) -> Iterator[Driver]:
    driver = Driver(org, restore=request.param)
    yield driver
    driver.runtime.db.dispose()


def _refusal(d: Driver, data: dict[str, Any]) -> Invalid:
    with pytest.raises(Invalid) as err:
        d.start("pay_progression", data)
    return err.value


def _leave(d: Driver, kind: str, start: str, end: str, counts: bool = False) -> dict[str, Any]:
    return record_leave(d.runtime, d.user("hr"), "employee", {
        "kind": kind, "start": start, "end": end, "counts_as_service": counts})


def _commenced(d: Driver, username: str, day: date) -> None:
    with d.runtime.db.unit_of_work() as uow:
        uow.session.execute(update(Person).where(Person.username == username).values(commenced_on=day))
        uow.commit()


# ------------------------------------------------------------------------------------------ 12 months, inclusive


@pytest.mark.parametrize(("first", "last"), [("2026-07-01", "2027-06-30"), ("2027-01-01", "2027-12-31"),
                                             ("2026-03-15", "2027-03-14")],
                         ids=["financial-year", "calendar-year", "day-to-day-before"])
def test_d19_5_a_twelve_month_agreement_is_twelve_months(drive: Driver, first: str, last: str) -> None:
    """Issue 15: a financial or calendar year agreement was refused at start as "11 months"."""
    case = drive.start("pay_progression", {**START, "agreement_start": first, "assessment_date": last})
    data = drive.instance(case).data
    assert data["facts"]["cycle_months"] == 12 and data["assessment_date"] == last
    assert data["agreement_basis"]["source"] == "declared at start"
    drive.complete(case, "invite_submission", "supervisor", INVITE)
    assert drive.open_tasks(case) == ["make_submission"]


def test_d19_5_a_day_short_of_twelve_months_is_refused(drive: Driver) -> None:
    problem = _refusal(drive, {**START, "agreement_start": "2026-07-02", "assessment_date": "2027-06-30"}).problems[0]
    assert problem.field == "assessment_date" and "is 11 months" in problem.message


def test_d19_11_six_plus_six_months_across_a_transfer(drive: Driver) -> None:
    """Issue 15: six plus six months of service across a transfer were refused as 11 months."""
    transfer = {"former_position": "Port Planner", "former_start": "2025-07-01", "former_end": "2025-12-31"}
    case = drive.start("pay_progression", {**START, "agreement_start": "2026-01-01", "assessment_date": "2026-06-30",
                                           "transfer": transfer})
    facts = drive.instance(case).data["facts"]
    assert facts["cycle_months"] == 6 and facts["combined_months"] == 12
    assert drive.instance(case).data["eligibility"]["rule"] == "D19-11"
    short = {**transfer, "former_start": "2025-07-02"}  # a day short: 11 months together
    problem = _refusal(drive, {**START, "employee": "engineer", "agreement_start": "2026-01-01",
                               "assessment_date": "2026-06-30", "transfer": short}).problems[0]
    assert "11 months" in problem.message


def test_d19_12_broken_higher_duties_add_up_to_a_year(drive: Driver) -> None:
    """Issue 15: broken periods of higher duties adding up to a year were refused the same way."""
    periods = [  # 184 + 181 = 365 days in the financial year, broken by a week back at the nominal level
        {"start": "2026-07-01", "end": "2026-12-24", "classification": "SPAO2", "full_duties": True},
        {"start": "2026-12-25", "end": "2026-12-31", "classification": "SPAO1", "full_duties": True},
        {"start": "2027-01-01", "end": "2027-06-30", "classification": "SPAO2", "full_duties": True},
        {"start": "2026-12-25", "end": "2026-12-31", "classification": "SPAO2", "full_duties": True},
    ]
    case = drive.start("pay_progression", {
        **START, "agreement_start": "2026-07-01", "assessment_date": "2027-06-30", "higher_duties": periods,
        "higher_duties_level": {"classification": "SPAO2", "pay_point": "SPAO2-1"}})
    data = drive.instance(case).data
    assert data["facts"]["higher_duties_months"] == 12 and data["eligibility"]["rule"] == "D19-12"
    problem = _refusal(drive, {
        **START, "employee": "engineer", "agreement_start": "2026-07-01", "assessment_date": "2027-06-30",
        "higher_duties": periods[:3], "higher_duties_level": {"classification": "SPPO2", "pay_point": "SPPO2-1"},
    }).problems[0]
    assert problem.field == "higher_duties_level" and "has 0" in problem.message


# ------------------------------------------------------------------------------------------ leave


def test_d19_9d_lwop_recorded_before_the_start_postpones_the_assessment_date(drive: Driver) -> None:
    """Issue 15: LWOP recorded before the case started did not postpone its assessment date."""
    _leave(drive, "lwop", "2025-09-01", "2025-09-10")
    _leave(drive, "lwop", "2024-01-01", "2024-01-31")  # an earlier cycle's: moves nothing
    _leave(drive, "lwop", "2025-10-01", "2025-10-05", counts=True)  # counts as service: moves nothing
    case = drive.start("pay_progression", START)
    data = drive.instance(case).data
    assert data["assessment_date"] == data["original_assessment_date"] == "2026-07-10"
    assert data["submission_closes"] == "2026-07-10" and data["facts"]["cycle_months"] == 12
    [moved] = data["postponements"]
    assert moved["days"] == 10 and moved["from"] == "2026-06-30" and moved["clause"] == "D19-9d"
    drive.complete(case, "invite_submission", "supervisor", INVITE)
    assert drive.instance(case).data["invite_due"] == "2026-05-10"


def test_d19_10_extended_leave_that_is_not_service_postpones_like_lwop(drive: Driver) -> None:
    """Issue 15: extended leave recorded with counts_as_service false postponed nothing."""
    case = drive.start("pay_progression", START)
    result = _leave(drive, "extended", "2025-10-01", "2025-12-29")
    assert result["retimed_cases"] == [case] and result["new_timeframe_possible"] == [case]
    data = drive.instance(case).data
    assert data["assessment_date"] == "2026-09-28"  # 90 days later
    assert data["extended_leave"] == [{"start": "2025-10-01", "end": "2025-12-29"}]
    counted = _leave(drive, "extended", "2026-01-05", "2026-01-20", counts=True)  # counts as service: no move
    assert counted["retimed_cases"] == [] and drive.instance(case).data["assessment_date"] == "2026-09-28"


def test_d19_5_leave_that_is_not_service_is_taken_out_of_a_new_starters_service(drive: Driver) -> None:
    _commenced(drive, "employee", date(2025, 6, 30))
    _leave(drive, "lwop", "2025-08-01", "2025-08-31")
    case = drive.start("pay_progression", START)
    facts = drive.instance(case).data["facts"]
    assert facts["leave_days_not_service"] == 31 and facts["cycle_months"] == 12  # the date moved instead


# ------------------------------------------------------------------------------------------ eligibility


def test_d19_5_a_cycle_cannot_start_before_the_employee_commenced(drive: Driver) -> None:
    """Issue 15: a person who commenced in 2026 was accepted for a cycle from 2025."""
    _commenced(drive, "employee", date(2026, 2, 1))
    problem = _refusal(drive, START).problems[0]
    assert problem.field == "agreement_start" and "2026-02-01" in problem.message


def test_d19_5_a_performance_agreement_must_be_in_place(drive: Driver) -> None:
    problem = _refusal(drive, {**START, "agreement_in_place": False}).problems[0]
    assert "D19-5" in str(problem) or "performance agreement" in problem.message
    assert _refusal(drive, {**START, "agreement_in_place": "yes"}).problems[0].field == "agreement_in_place"


def test_d19_5_one_running_cycle_per_employee(drive: Driver) -> None:
    """Issue 15: two running cycles for the same employee were both accepted."""
    case = drive.start("pay_progression", START)
    problem = _refusal(drive, {**START, "agreement_start": "2026-06-30", "assessment_date": "2027-06-30"}).problems[0]
    assert problem.field == "employee" and f"#{case}" in problem.message
    drive.start("pay_progression", {**START, "employee": "engineer"})  # another employee's is fine


@pytest.mark.parametrize("field", ["agreement_start", "assessment_date"])
@pytest.mark.parametrize("value", ["0001-01-01", "9999-12-31"])
def test_d19_5_dates_out_of_any_sensible_range_are_refused_naming_the_field(drive: Driver, field: str,
                                                                           value: str) -> None:
    problems = _refusal(drive, {**START, field: value}).problems
    assert field in {p.field for p in problems}
    assert any("between 1900-01-01 and 2199-12-31" in p.message for p in problems)


def test_d19_9d_leave_out_of_range_reversed_or_for_nobody_is_a_clear_422(app: Flask, app_org: Runtime) -> None:
    """Issue 15: leave from 0001-01-01 to 9999-12-31 answered 500."""
    hr = api_as(app, app_org, "hr")
    answer = hr.post("/api/v1/people/employee/leave", json={
        "kind": "lwop", "start": "0001-01-01", "end": "9999-12-31", "counts_as_service": False})
    assert_errors(answer, 422, "start", "end")
    answer = hr.post("/api/v1/people/employee/leave", json={
        "kind": "lwop", "start": "2026-03-10", "end": "2026-03-01", "counts_as_service": False})
    assert_errors(answer, 422, "end")
    answer = hr.post("/api/v1/instances", json={"process": "pay_progression", "data": {
        **START, "employee": "nobody-at-all", "agreement_start": "0001-01-01"}})
    assert_errors(answer, 422, "employee", "agreement_start")
    assert hr.post("/api/v1/people/nobody-at-all/leave", json={
        "kind": "lwop", "start": "2026-03-01", "end": "2026-03-10", "counts_as_service": False}).status_code == 404
