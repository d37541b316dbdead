"""Determination 19 pay progression through the real runtime and database: happy and refusal paths."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.errors import Conflict, Forbidden, Invalid, NotFound
from engine.models import AuditEvent, HumanTask, Person, ProcessInstance
from engine.runtime import Runtime
from tests.processes.driver import Driver

START = {"employee": "employee", "agreement_start": "2025-06-30", "assessment_date": "2026-06-30"}
SUBMIT = {"submission": {
    "participate": "submit", "targets_met": True, "criteria": ["new_projects"],
    "evidence": {"new_projects": "Delivered the wharf booking system two months early."}}}
INVITE = {"invitation": {"message": "Please make your submission by 30 May."}}
RECOMMEND_YES = {"recommendation": {"recommend": "approve"}}
DECIDE_YES = {"decision": {"approve": "approve"}}


@pytest.fixture(params=[False, True], ids=["straight", "save-restore"])
def drive(org: Runtime, request: pytest.FixtureRequest) -> Iterator[Driver]:
    driver = Driver(org, restore=request.param)
    yield driver
    driver.runtime.db.dispose()


def _through_submission(d: Driver) -> int:
    case = d.start("pay_progression", START)
    d.complete(case, "invite_submission", "supervisor", INVITE)
    d.complete(case, "make_submission", "employee", SUBMIT)
    return case


def test_d19_4_happy_path_progresses_from_the_assessment_date(drive: Driver) -> None:
    case = _through_submission(drive)
    drive.complete(case, "recommend", "supervisor", RECOMMEND_YES)
    drive.complete(case, "decide", "manager", DECIDE_YES)
    row = drive.instance(case)
    assert row.status == "completed"
    assert row.data["outcome"] == "progressed"
    assert row.data["new_pay_point"] == "SPAO1-2"
    assert row.data["effective_date"] == "2026-06-30"
    assert drive.open_tasks(case) == []


def test_d19_3_2_invite_is_the_supervisors_and_due_two_months_before(drive: Driver) -> None:
    case = drive.start("pay_progression", START)
    task = drive.open_task(case, "invite_submission")
    assert task.assignee is not None and task.assignee.username == "supervisor"
    assert drive.instance(case).data["invite_due"] == "2026-04-30"


def test_d19_6_submission_is_the_employees_and_evidence_is_recorded(drive: Driver) -> None:
    case = drive.start("pay_progression", START)
    drive.complete(case, "invite_submission", "supervisor", INVITE)
    task = drive.open_task(case, "make_submission")
    assert task.assignee is not None and task.assignee.username == "employee"
    drive.complete(case, "make_submission", "employee", SUBMIT)
    assert drive.instance(case).data["submission"]["criteria"] == ["new_projects"]


def test_d19_8_refusal_records_reason_and_feedback(drive: Driver) -> None:
    case = _through_submission(drive)
    drive.complete(case, "recommend", "supervisor", RECOMMEND_YES)
    drive.complete(case, "decide", "manager", {"decision": {
        "approve": "refuse", "reason": "Targets were met but no criterion was shown beyond them.",
        "feedback": "Lead a project outside your area next cycle."}})
    row = drive.instance(case)
    assert row.status == "completed"
    assert row.data["outcome"] == "not_progressed"
    assert "new_pay_point" not in row.data
    with drive.runtime.db.read() as s:
        detail = s.scalars(select(AuditEvent.detail).where(AuditEvent.instance_id == case,
                                                           AuditEvent.kind == "task_completed")).all()
    decision = next(d for d in detail if d["task"] == "decide")
    assert decision["data"]["decision"]["reason"].startswith("Targets were met")


def test_d19_5_declining_is_recorded_not_failure(drive: Driver) -> None:
    case = drive.start("pay_progression", START)
    drive.complete(case, "invite_submission", "supervisor", INVITE)
    drive.complete(case, "make_submission", "employee", {"submission": {"participate": "decline"}})
    row = drive.instance(case)
    assert row.status == "completed" and row.data["outcome"] == "declined"


def test_d19_7_recommending_against_needs_a_reason_and_nothing_changes(drive: Driver) -> None:
    case = _through_submission(drive)
    before = drive.instance(case).lock_version
    task = drive.open_task(case, "recommend")
    with pytest.raises(Invalid) as err:
        drive.runtime.complete_task(drive.user("supervisor"), task.id,
                                    {"recommendation": {"recommend": "not_approve"}})
    assert "recommendation.reason" in {p.field for p in err.value.problems}
    assert drive.instance(case).lock_version == before
    assert drive.open_tasks(case) == ["recommend"]


def test_d19_1_other_classifications_are_refused_with_the_rule(org: Runtime) -> None:
    d = Driver(org)
    with pytest.raises(Invalid) as err:
        d.start("pay_progression", {**START, "employee": "clerk"})
    assert "cl. 1" in err.value.problems[0].message and "AO6" in err.value.problems[0].message
    with org.db.read() as s:
        assert s.scalar(select(func.count()).select_from(ProcessInstance)) == 0


def test_d19_1_top_pay_point_has_no_next_point(org: Runtime) -> None:
    with org.db.unit_of_work() as uow:
        person = uow.session.scalars(select(Person).where(Person.username == "employee")).one()
        person.pay_point = "SPAO1-3"
        uow.commit()
    with pytest.raises(Invalid) as err:
        Driver(org).start("pay_progression", START)
    assert "top point" in err.value.problems[0].message


def test_start_names_each_bad_field(org: Runtime) -> None:
    with pytest.raises(Invalid) as err:
        Driver(org).start("pay_progression", {"employee": "nobody", "assessment_date": "2026-02-30"})
    fields = {p.field for p in err.value.problems}
    assert fields == {"employee", "assessment_date", "agreement_start"}


def test_wrong_person_cannot_complete_and_nothing_changes(org: Runtime) -> None:
    d = Driver(org)
    case = d.start("pay_progression", START)
    task = d.open_task(case, "invite_submission")
    with pytest.raises(Forbidden):  # the employee can see their own case, but the task is not theirs
        org.complete_task(d.user("employee"), task.id, INVITE)
    with pytest.raises(NotFound):  # a stranger may not even learn the task exists
        org.complete_task(d.user("engineer"), task.id, INVITE)
    assert d.open_tasks(case) == ["invite_submission"]


def test_completing_twice_is_a_conflict(org: Runtime) -> None:
    d = Driver(org)
    case = d.start("pay_progression", START)
    task = d.open_task(case, "invite_submission")
    org.complete_task(d.user("supervisor"), task.id, INVITE)
    with pytest.raises(Conflict):
        org.complete_task(d.user("supervisor"), task.id, INVITE)
    with org.db.read() as s:
        completions = s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.kind == "task_completed", AuditEvent.instance_id == case))
    assert completions == 1


def test_a_form_cannot_set_keys_it_does_not_declare(org: Runtime) -> None:
    d = Driver(org)
    case = d.start("pay_progression", START)
    d.complete(case, "invite_submission", "supervisor", {**INVITE, "outcome": "progressed", "assign": {
        "Manager": "supervisor"}})
    data = d.instance(case).data
    assert "outcome" not in data and "assign" not in data


def test_concurrent_completions_one_wins_the_other_conflicts(org: Runtime) -> None:
    d = Driver(org)
    case = d.start("pay_progression", START)
    task = d.open_task(case, "invite_submission")
    user = d.user("supervisor")
    results: list[Any] = []
    barrier = threading.Barrier(2)

    def attempt() -> None:
        barrier.wait()
        try:
            org.complete_task(user, task.id, INVITE)
            results.append("ok")
        except Conflict as exc:
            results.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 1 and sum(isinstance(r, Conflict) for r in results) == 1
    with org.db.read() as s:
        assert s.scalar(select(func.count()).select_from(HumanTask).where(
            HumanTask.instance_id == case, HumanTask.name == "make_submission")) == 1


def test_optimistic_lock_refuses_a_stale_writer(org: Runtime) -> None:
    from sqlalchemy.orm.exc import StaleDataError

    d = Driver(org)
    case = d.start("pay_progression", START)
    with org.db.read() as s:
        stale = s.get(ProcessInstance, case)  # read at lock_version N
    d.complete(case, "invite_submission", "supervisor", INVITE)  # another writer commits N+1
    with org.db.unit_of_work() as uow:
        row = uow.session.merge(stale, load=False)
        row.title = "overwritten"
        with pytest.raises(StaleDataError):
            uow.commit()
    assert d.instance(case).title != "overwritten"


def test_cancel_closes_open_tasks_and_records_the_reason(org: Runtime) -> None:
    d = Driver(org)
    case = d.start("pay_progression", START)
    org.cancel(d.user("hr"), case, "Employee transferred to another agency.")
    row = d.instance(case)
    assert row.status == "cancelled"
    assert d.open_tasks(case) == []

