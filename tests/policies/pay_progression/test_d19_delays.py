"""Determination 19: nobody loses a year to someone else's delay, and every step the employee holds shows its due
date, is reminded before it lapses, and lapses in words (D19-3.2, D19-9a, D19-9b, D19-9c). Straight through and
with a save/restore between every step; timers fire through the real timer service as the clock moves.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from engine.core.clock import CLOCK
from engine.policies.pay_progression.record import case_record
from engine.workflow.models import ProcessInstance
from engine.workflow.runtime import Runtime
from tests.policies.pay_progression.test_pay_progression import (
    DECIDE_YES,
    INVITE,
    RECOMMEND_YES,
    REVIEW,
    START,
    SUBMIT,
    _events,
    _poll,
    _refused,
    _told,
)
from tests.workflow.driver import Driver

CONFIRM = {"review_decision": {"new_information_accepted": "not_accepted", "outcome": "confirm",
                               "reason": "The original evidence does not show a criterion."}}


@pytest.fixture(params=[False, True], ids=["straight", "save-restore"])
def drive(org: Runtime, request: pytest.FixtureRequest) -> Iterator[Driver]:
    driver = Driver(org, restore=request.param)
    yield driver
    driver.runtime.db.dispose()


def _record_says(d: Driver, case: int) -> dict[str, str]:
    with d.runtime.db.read() as s:
        row = s.get(ProcessInstance, case)
        assert row is not None
        return dict(case_record(s, row).summary)


def test_d19_9b_a_late_invitation_leaves_the_employee_the_full_window(drive: Driver) -> None:
    """Issue 15: a late invitation closed the window at once; the case ended `no_submission`."""
    case = drive.start("pay_progression", START)  # invitation due 2026-04-30, assessment date 2026-06-30
    CLOCK.freeze(datetime(2026, 6, 10, 1, 0, tzinfo=UTC))
    drive.complete(case, "invite_submission", "supervisor", INVITE)
    data = drive.instance(case).data
    assert data["submission_closes"] == "2026-08-10" and data["original_assessment_date"] == "2026-06-30"
    CLOCK.freeze(datetime(2026, 7, 1, 1, 0, tzinfo=UTC))  # past the assessment date: the window is still open
    _poll(drive)
    assert drive.open_tasks(case) == ["make_submission"] and drive.instance(case).status == "running"
    drive.complete(case, "make_submission", "employee", SUBMIT)
    drive.complete(case, "recommend", "supervisor", RECOMMEND_YES)
    drive.complete(case, "decide", "manager", DECIDE_YES)
    data = drive.instance(case).data
    assert data["outcome"] == "progressed" and data["effective_date"] == "2026-06-30"  # cl. 9: the original date
    assert "after it was due on 2026-04-30" in _record_says(drive, case)["Late invitation (cl. 3(2), 9)"]


def test_d19_3_2_an_invitation_on_time_changes_nothing(drive: Driver) -> None:
    case = drive.start("pay_progression", START)
    drive.complete(case, "invite_submission", "supervisor", INVITE)
    data = drive.instance(case).data
    assert data["submission_closes"] == "2026-06-30" and "late_invitation" not in data


def test_d19_9a_asking_for_a_review_shows_its_due_date_is_reminded_and_lapses_in_words(drive: Driver) -> None:
    """Issue 15: the employee's "ask for a CEO review" showed no due date and a 28-day timer closed it silently."""
    case = _refused(drive)
    due = datetime(2026, 3, 30, tzinfo=UTC)
    assert drive.open_task(case, "consider_review").due_at == due
    CLOCK.freeze(due - timedelta(days=7, minutes=1))
    _poll(drive)
    assert _events(drive, case, "reminded") == []
    CLOCK.freeze(due - timedelta(days=7) + timedelta(minutes=1))
    _poll(drive)
    _poll(drive)  # once only
    [reminded] = _events(drive, case, "reminded")
    assert reminded["task"] == "consider_review" and reminded["recipients"] == ["employee"]
    assert any(s.startswith("Reminder: Ask for a CEO review?") for s in _told(drive, case)["employee"])
    CLOCK.freeze(due + timedelta(seconds=1))
    _poll(drive)
    row = drive.instance(case)
    assert row.status == "completed" and row.data["outcome"] == "not_progressed"
    [lapse] = row.data["lapses"]
    assert lapse["task"] == "consider_review" and "within the 28 days allowed" in lapse["text"]
    assert "decision stands" in _record_says(drive, case)["Lapsed on 2026-03-30"]
    assert "The time to ask for a CEO review has passed" in _told(drive, case)["employee"]


def test_d19_9c_recording_a_section_59_review_shows_its_due_date_and_lapses_in_words(drive: Driver) -> None:
    case = _refused(drive)
    drive.complete(case, "consider_review", "employee", REVIEW)
    drive.complete(case, "ceo_review", "ceo", CONFIRM)
    task = drive.open_task(case, "consider_s59")
    assert task.due_at is not None and task.due_at == task.created_at + timedelta(days=28)
    CLOCK.freeze(task.due_at - timedelta(days=6))
    _poll(drive)
    assert any(e["task"] == "consider_s59" for e in _events(drive, case, "reminded"))
    CLOCK.freeze(task.due_at + timedelta(seconds=1))
    _poll(drive)
    row = drive.instance(case)
    assert row.status == "completed"
    [lapse] = row.data["lapses"]
    assert lapse["task"] == "consider_s59" and "section 59" in lapse["text"] and "decision stands" in lapse["text"]


def test_d19_9c_a_section_59_outcome_is_recorded_whenever_it_arrives(drive: Driver) -> None:
    case = _refused(drive)
    drive.complete(case, "consider_review", "employee", REVIEW)
    drive.complete(case, "ceo_review", "ceo", CONFIRM)
    drive.complete(case, "consider_s59", "employee", {"s59_request": {
        "lodged": "lodged", "lodged_on": "2026-03-02", "reference": "OCPE-2026-117"}})
    assert drive.open_task(case, "record_s59_outcome").due_at is None  # no lapse: it waits for the outcome
    CLOCK.freeze(datetime(2026, 11, 20, 1, 0, tzinfo=UTC))  # eight months later
    _poll(drive)
    assert drive.open_tasks(case) == ["record_s59_outcome"]
    drive.complete(case, "record_s59_outcome", "hr", {"s59_outcome": {
        "result": "decision_stands", "decided_on": "2026-11-18", "summary": "The review upheld the CEO decision."}})
    row = drive.instance(case)
    assert row.status == "completed" and row.data["s59"]["decided_on"] == "2026-11-18"


def test_d19_9a_every_step_the_employee_holds_has_a_due_date_and_a_reminder(org: Runtime) -> None:
    """Every user task in the Employee lane of the diagram says when it is due and when to remind."""
    from engine.workflow.definitions import SPECS, latest_definition

    with org.db.read() as s:
        definition = latest_definition(s, "pay_progression")
        assert definition is not None
        spec = SPECS.get(definition).spec
    employee_tasks = {name: (ts.extensions or {}).get("properties", {}) for name, ts in spec.task_specs.items()
                      if getattr(ts, "lane", None) == "Employee" and type(ts).__name__ == "UserTask"}
    assert set(employee_tasks) == {"make_submission", "consider_review", "consider_s59"}
    for name, props in employee_tasks.items():
        assert props.get("dueAt") and props.get("remindBefore") == "P7D", name
