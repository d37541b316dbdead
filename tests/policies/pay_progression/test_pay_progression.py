"""Determination 19 pay progression through the real runtime and database, one scenario per clause.

Every scenario runs twice (the `drive` fixture): straight through, and with a full save/restore (a new
connection pool and an empty spec cache) between every step.  Timers fire through the real timer service
after the engine clock is moved.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.core.clock import CLOCK
from engine.core.errors import Conflict, Forbidden, Invalid, NotFound
from engine.core.models import AuditEvent
from engine.people.models import Person
from engine.policies.pay_progression import services as d19
from engine.policies.pay_progression.leave import record_leave
from engine.workflow.models import HumanTask, Notification, ProcessInstance, Timer
from engine.workflow.runtime import Runtime
from engine.workflow.timers import TimerService
from tests.web.api_helpers import listening
from tests.workflow.driver import Driver

START = {"employee": "employee", "agreement_start": "2025-06-30", "assessment_date": "2026-06-30"}
SUBMIT = {"submission": {
    "participate": "submit", "targets_met": True, "criteria": ["new_projects"],
    "evidence": {"new_projects": "Delivered the wharf booking system two months early."}}}
INVITE = {"invitation": {"message": "Please make your submission by 30 May."}}
RECOMMEND_YES = {"recommendation": {"recommend": "approve"}}
RECOMMEND_NO = {"recommendation": {"recommend": "not_approve", "employee_advised": True,
                                   "reason": "The project slipped twice; no criterion is shown beyond the targets."}}
DECIDE_YES = {"decision": {"approve": "approve"}}
REFUSE = {"decision": {"approve": "refuse", "reason": "Targets were met but no criterion was shown beyond them.",
                       "feedback": "Lead a project outside your area next cycle."}}
REVIEW = {"review_request": {"request": "review", "grounds": "The wharf system was a new project, delivered early.",
                             "new_information": "The port's annual report credits the system."}}


@pytest.fixture(params=[False, True], ids=["straight", "save-restore"])
def drive(org: Runtime, request: pytest.FixtureRequest) -> Iterator[Driver]:
    driver = Driver(org, restore=request.param)
    yield driver
    driver.runtime.db.dispose()


# ------------------------------------------------------------------------------------------ helpers


@contextmanager
def _commits(runtime: Runtime) -> Iterator[list[object]]:
    """The transactions committed meanwhile (the database's own COMMITs, seen through SQLAlchemy's events)."""
    commits: list[object] = []

    def committed(conn: object) -> None:
        commits.append(conn)

    with listening(runtime, "commit", committed):
        yield commits


def _through_submission(d: Driver, start: dict[str, Any] | None = None) -> int:
    case = d.start("pay_progression", start or START)
    d.complete(case, "invite_submission", "supervisor", INVITE)
    d.complete(case, "make_submission", "employee", SUBMIT)
    return case


def _refused(d: Driver) -> int:
    case = _through_submission(d)
    d.complete(case, "recommend", "supervisor", RECOMMEND_YES)
    d.complete(case, "decide", "manager", REFUSE)
    return case


def _poll(d: Driver) -> int:
    return TimerService(d.runtime).poll()


def _events(d: Driver, case: int, kind: str) -> list[dict[str, Any]]:
    with d.runtime.db.read() as s:
        return [e.detail for e in s.scalars(select(AuditEvent).where(
            AuditEvent.instance_id == case, AuditEvent.kind == kind).order_by(AuditEvent.id))]


def _timers(d: Driver, case: int) -> dict[str, datetime]:
    with d.runtime.db.read() as s:
        return {t.element: t.due_at for t in s.scalars(select(Timer).where(
            Timer.instance_id == case, Timer.state.in_(("waiting", "claimed"))))}


def _told(d: Driver, case: int) -> dict[str, list[str]]:
    """Who got which in-app notices about the case: username -> subjects."""
    with d.runtime.db.read() as s:
        rows = s.execute(select(Person.username, Notification.subject).join(
            Person, Person.id == Notification.person_id).where(Notification.instance_id == case)).all()
    told: dict[str, list[str]] = {}
    for username, subject in rows:
        told.setdefault(username, []).append(subject)
    return told


def _deliver(d: Driver, case: int) -> int:
    with d.runtime.db.unit_of_work() as uow:
        row = uow.session.get(ProcessInstance, case)
        assert row is not None
        sent = d19.deliver_notices(uow.session, row)
        uow.commit()
    return sent


def _count(d: Driver, model: Any) -> int:
    with d.runtime.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _ceo_office(d: Driver) -> str:
    """The task group of the employee's own CEO and delegates (D19-7: the CEO is the employee's agency's)."""
    with d.runtime.db.read() as s:
        org = s.scalar(select(Person.organisation_id).where(Person.username == "employee"))
    return f"ceo:{org}"


def _refusal(d: Driver, data: dict[str, Any]) -> Invalid:
    with pytest.raises(Invalid) as err:
        d.start("pay_progression", data)
    return err.value


# ------------------------------------------------------------------------------------------ D19-1


def test_d19_1_other_classifications_are_refused_with_the_rule(drive: Driver) -> None:
    events = _count(drive, AuditEvent)
    problem = _refusal(drive, {**START, "employee": "clerk"}).problems[0]
    assert problem.field == "employee"
    assert "cl. 1" in problem.message and "AO6" in problem.message
    assert "SPAO1, SPAO2, SPPO1 and SPPO2" in problem.message
    assert _count(drive, ProcessInstance) == 0 and _count(drive, AuditEvent) == events


def test_d19_1_top_pay_point_has_no_next_point(drive: Driver) -> None:
    with drive.runtime.db.unit_of_work() as uow:
        uow.session.scalars(select(Person).where(Person.username == "employee")).one().pay_point = "SPAO1-3"
        uow.commit()
    problem = _refusal(drive, START).problems[0]
    assert "cl. 1" in problem.message and "top point" in problem.message and "SPAO1-3" in problem.message
    assert _count(drive, ProcessInstance) == 0


def test_d19_1_a_pay_point_not_on_record_is_refused(drive: Driver) -> None:
    with drive.runtime.db.unit_of_work() as uow:
        uow.session.scalars(select(Person).where(Person.username == "employee")).one().pay_point = None
        uow.commit()
    assert "no pay point of SPAO1 on record" in _refusal(drive, START).problems[0].message


def test_d19_1_each_classification_is_recorded_and_the_next_point_comes_from_the_pay_point_data(
        drive: Driver) -> None:
    case = drive.start("pay_progression", {**START, "employee": "engineer"})
    data = drive.instance(case).data
    assert data["classification"] == "SPPO1" and data["pay_point"] == "SPPO1-2"
    assert data["scope"] == {"covered": True, "rule": "D19-1",
                             "reason": "Determination 19, cl. 1: SPPO1 is a Senior Classification"}
    drive.complete(case, "invite_submission", "supervisor", INVITE)
    drive.complete(case, "make_submission", "engineer", SUBMIT)
    drive.complete(case, "recommend", "supervisor", RECOMMEND_YES)
    drive.complete(case, "decide", "manager", DECIDE_YES)
    assert drive.instance(case).data["new_pay_point"] == "SPPO1-3"


def test_start_names_each_bad_field(drive: Driver) -> None:
    err = _refusal(drive, {"employee": "nobody", "assessment_date": "2026-02-30"})
    assert {p.field for p in err.problems} == {"employee", "assessment_date", "agreement_start"}


# ------------------------------------------------------------------------------------------ D19-2, D19-4, D19-5


def test_d19_2_the_cycle_is_the_agreements_twelve_months(drive: Driver) -> None:
    problem = _refusal(drive, {**START, "agreement_start": "2025-09-01"}).problems[0]
    assert problem.field == "assessment_date"
    assert "cl. 5" in problem.message and "is 10 months" in problem.message and "each 12 months" in problem.message
    case = drive.start("pay_progression", START)
    assert drive.instance(case).data["facts"]["cycle_months"] == 12


def test_d19_4_happy_path_progresses_from_the_assessment_date(drive: Driver) -> None:
    case = _through_submission(drive)
    drive.complete(case, "recommend", "supervisor", RECOMMEND_YES)
    drive.complete(case, "decide", "manager", DECIDE_YES)
    row = drive.instance(case)
    assert row.status == "completed"
    assert row.data["outcome"] == "progressed"
    assert row.data["new_pay_point"] == "SPAO1-2"
    assert row.data["effective_date"] == "2026-06-30"
    assert row.data["backdated"] is False and row.data["eligibility"]["rule"] == "D19-5"
    assert drive.open_tasks(case) == []


def test_d19_5_declining_is_recorded_not_failure(drive: Driver) -> None:
    case = drive.start("pay_progression", START)
    drive.complete(case, "invite_submission", "supervisor", INVITE)
    drive.complete(case, "make_submission", "employee", {"submission": {"participate": "decline"}})
    row = drive.instance(case)
    assert row.status == "completed" and row.data["outcome"] == "declined"
    assert "decision" not in row.data and "effective_date" not in row.data


def test_d19_5_submissions_close_at_the_assessment_date(drive: Driver) -> None:
    case = drive.start("pay_progression", START)
    drive.complete(case, "invite_submission", "supervisor", INVITE)
    # Before the assessment date (00:00 Darwin time on 30 June = 14:30 UTC on 29 June) the window is open.
    assert _timers(drive, case) == {"submission_window_closes": datetime(2026, 6, 29, 14, 30, tzinfo=UTC)}
    assert drive.open_task(case, "make_submission").due_at == datetime(2026, 6, 29, 14, 30, tzinfo=UTC)
    CLOCK.freeze(datetime(2026, 6, 29, 14, 29, tzinfo=UTC))
    assert _poll(drive) == 0 and drive.open_tasks(case) == ["make_submission"]
    CLOCK.freeze(datetime(2026, 6, 29, 14, 31, tzinfo=UTC))
    assert _poll(drive) == 1
    assert drive.open_tasks(case) == ["agree_new_timeframe"]  # the supervisor may still agree one (D19-10)
    drive.complete(case, "agree_new_timeframe", "supervisor", {"new_timeframe": {
        "agree": "refuse", "reason": "No extended leave; the employee chose not to submit."}})
    row = drive.instance(case)
    assert row.status == "completed" and row.data["outcome"] == "no_submission"
    assert [e["element"] for e in _events(drive, case, "timer_fired")] == ["submission_window_closes"]


def test_d19_5_later_starters_need_twelve_months_of_service(drive: Driver) -> None:
    problem = _refusal(drive, {**START, "agreement_start": "2026-01-05", "assessment_date": "2026-12-01"}).problems[0]
    assert "cl. 5" in problem.message and "each 12 months of service" in problem.message


def test_d19_5_staff_employed_at_commencement_wait_twelve_months_after_it(drive: Driver) -> None:
    from engine.policies.pay_progression import settings as d19_settings

    with drive.runtime.db.unit_of_work() as uow:
        d19_settings.save(uow.session, "admin", {"d19.commencement_date": "2025-12-01"})
        uow.commit()
    problem = _refusal(drive, START).problems[0]
    assert "12 months after the determination commenced (2025-12-01)" in problem.message


def test_d19_5_the_settings_a_case_started_with_are_kept(drive: Driver) -> None:
    from engine.policies.pay_progression import settings as d19_settings

    case = drive.start("pay_progression", START)
    with drive.runtime.db.unit_of_work() as uow:
        d19_settings.save(uow.session, "admin", {"d19.invite_months_before": "3", "d19.review_days": "14"})
        uow.commit()
    assert drive.instance(case).data["periods"]["invite_months"] == 2
    later = drive.start("pay_progression", {**START, "employee": "engineer"})
    data = drive.instance(later).data
    assert data["periods"]["review"] == "P14D" and data["invite_due"] == "2026-03-30"


# ------------------------------------------------------------------------------------------ D19-3.2


def test_d19_3_2_invite_is_the_supervisors_and_due_two_months_before(drive: Driver) -> None:
    case = drive.start("pay_progression", START)
    task = drive.open_task(case, "invite_submission")
    assert task.assignee is not None and task.assignee.username == "supervisor"
    assert task.clause == "D19-3.2"
    assert drive.instance(case).data["invite_due"] == "2026-04-30"
    # due by the end of 30 April in Darwin (UTC+09:30)
    assert task.due_at == datetime(2026, 4, 30, 14, 30, tzinfo=UTC)


def test_d19_3_2_a_late_invitation_escalates_to_the_manager_and_hr(drive: Driver) -> None:
    case = drive.start("pay_progression", START)
    CLOCK.freeze(datetime(2026, 4, 30, 14, 0, tzinfo=UTC))
    _poll(drive)
    assert _told(drive, case) == {}
    CLOCK.freeze(datetime(2026, 4, 30, 15, 0, tzinfo=UTC))
    _poll(drive)
    told = _told(drive, case)
    assert {"supervisor", "manager", "hr"} <= set(told)
    assert all(subjects == ["Overdue: Invite a pay progression submission"] for subjects in told.values())
    assert [e["task"] for e in _events(drive, case, "escalated")] == ["invite_submission"]
    _poll(drive)  # once only
    assert len(_events(drive, case, "escalated")) == 1


def test_d19_3_2_another_appropriate_officer_may_invite(drive: Driver) -> None:
    # HR records the appointment on the CEO's behalf, naming the CEO who approved it (D19-6). The manager could
    # not be appointed: whoever recommends does not decide (test_d19_authority).
    case = drive.start("pay_progression", {**START, "assign": {"Supervisor": "delegate"},
                                           "appointment": {"approved_by": "ceo", "reason": "Sam is on leave"}})
    task = drive.open_task(case, "invite_submission")
    assert task.assignee is not None and task.assignee.username == "delegate"
    assert _refusal(drive, {**START, "assign": {"Employee": "manager"}}).problems[0].field == "assign.Employee"


# ------------------------------------------------------------------------------------------ D19-6


def test_d19_6_submission_is_the_employees_and_evidence_is_recorded(drive: Driver) -> None:
    case = drive.start("pay_progression", START)
    drive.complete(case, "invite_submission", "supervisor", INVITE)
    task = drive.open_task(case, "make_submission")
    assert task.assignee is not None and task.assignee.username == "employee" and task.clause == "D19-6"
    drive.complete(case, "make_submission", "employee", SUBMIT)
    submission = drive.instance(case).data["submission"]
    assert submission["criteria"] == ["new_projects"]
    # The evidence text is kept as a document; the case data (copied into every task) holds a reference.
    reference = submission["evidence"]["new_projects"]
    assert reference.startswith("document:")
    with drive.runtime.db.read() as s:
        assert d19.resolve_documents(s, case, reference) == SUBMIT["submission"]["evidence"]["new_projects"]
    [completed] = [e for e in _events(drive, case, "task_completed") if e["task"] == "make_submission"]
    assert completed["data"]["submission"]["evidence"]["new_projects"] == reference  # nor in the history


def test_d19_6_a_criterion_without_evidence_is_refused_and_nothing_changes(drive: Driver) -> None:
    case = drive.start("pay_progression", START)
    drive.complete(case, "invite_submission", "supervisor", INVITE)
    task = drive.open_task(case, "make_submission")
    before = drive.instance(case).lock_version
    with pytest.raises(Invalid) as err:
        drive.runtime.complete_task(drive.user("employee"), task.id, {"submission": {
            "participate": "submit", "targets_met": True, "criteria": ["leadership", "new_projects"],
            "evidence": {"new_projects": "Shipped."}}})
    assert "submission.evidence.leadership" in {p.field for p in err.value.problems}
    assert drive.instance(case).lock_version == before and drive.open_tasks(case) == ["make_submission"]


def test_d19_6_another_person_approved_by_the_ceo_assesses_and_it_is_recorded(drive: Driver) -> None:
    case = drive.start("pay_progression", START)
    drive.complete(case, "invite_submission", "supervisor", INVITE)
    d19.appoint(drive.runtime, drive.user("ceo"), case, "Supervisor", "delegate",
                "The supervisor is on secondment until August.")
    drive.complete(case, "make_submission", "employee", SUBMIT)
    task = drive.open_task(case, "recommend")
    assert task.assignee is not None and task.assignee.username == "delegate"
    drive.complete(case, "recommend", "delegate", RECOMMEND_YES)
    [appointed] = _events(drive, case, "appointed")
    assert appointed["approved_by"] == "ceo" and appointed["clause"] == "D19-6"
    [entry] = drive.instance(case).data["appointments"]
    assert entry["username"] == "delegate" and entry["reason"].startswith("The supervisor is on secondment")


def test_d19_6_only_the_ceo_or_hr_for_the_ceo_appoints_and_a_refusal_changes_nothing(drive: Driver) -> None:
    case = drive.start("pay_progression", START)
    before = drive.instance(case).lock_version
    with pytest.raises(Forbidden):  # the supervisor sees the case (an open task) but may not appoint
        d19.appoint(drive.runtime, drive.user("supervisor"), case, "Supervisor", "delegate", "Because.")
    with pytest.raises(NotFound):  # a stranger does not learn the case exists
        d19.appoint(drive.runtime, drive.user("engineer"), case, "Supervisor", "delegate", "Because.")
    with pytest.raises(Invalid) as err:
        d19.appoint(drive.runtime, drive.user("hr"), case, "Supervisor", "delegate", "Because.")
    assert err.value.problems[0].field == "approved_by"
    with pytest.raises(Invalid) as err:
        d19.appoint(drive.runtime, drive.user("ceo"), case, "Employee", "employee", " ")
    assert {p.field for p in err.value.problems} == {"lane", "username", "reason"}
    assert drive.instance(case).lock_version == before and _events(drive, case, "appointed") == []
    with _commits(drive.runtime) as commits:
        d19.appoint(drive.runtime, drive.user("hr"), case, "Supervisor", "delegate",
                    "Approved at the CEO's meeting.", approved_by="ceo")
    task = drive.open_task(case, "invite_submission")  # the open task moved with the appointment
    assert task.assignee is not None and task.assignee.username == "delegate"
    # ... in the same transaction as the case's data: a failure between the two cannot leave one without the other
    assert len(commits) == 1
    [appointed] = _events(drive, case, "appointed")
    assert appointed["reassigned"] == ["invite_submission"]


# ------------------------------------------------------------------------------------------ D19-7, D19-8


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


def test_d19_7_a_recommendation_against_goes_to_the_ceo_and_the_employee_is_told(drive: Driver) -> None:
    """cl. 7: the written reason goes to the CEO and the employee is advised; cl. 8: the manager still decides."""
    case = _through_submission(drive)
    drive.complete(case, "recommend", "supervisor", RECOMMEND_NO)
    task = drive.open_task(case, "decide")
    assert task.assignee is not None and task.assignee.username == "manager" and task.lane == "Manager"
    notices = drive.instance(case).data["notices"]
    assert [n["to"] for n in notices] == ["Employee", "CEO"]
    assert RECOMMEND_NO["recommendation"]["reason"] in notices[1]["body"]
    assert _deliver(drive, case) == 0  # delivered as the case was saved, each notice once
    told = _told(drive, case)
    assert told["employee"] == ["Your supervisor does not recommend pay progression"]
    assert {"ceo", "delegate"} <= set(told)
    # The supervisor's manager decides (cl. 8), here agreeing with the supervisor.
    drive.complete(case, "decide", "manager", REFUSE)
    assert drive.instance(case).data["outcome"] == "not_progressed"
    assert drive.open_tasks(case) == ["consider_review"]


def test_d19_8_the_manager_may_approve_against_the_recommendation(drive: Driver) -> None:
    case = _through_submission(drive)
    drive.complete(case, "recommend", "supervisor", RECOMMEND_NO)
    drive.complete(case, "decide", "manager", DECIDE_YES)
    row = drive.instance(case)
    assert row.status == "completed" and row.data["outcome"] == "progressed"


def test_d19_8_refusal_records_reason_and_feedback(drive: Driver) -> None:
    case = _refused(drive)
    row = drive.instance(case)
    assert row.status == "running" and row.data["outcome"] == "not_progressed"
    assert "new_pay_point" not in row.data
    [decision] = [e for e in _events(drive, case, "task_completed") if e["task"] == "decide"]
    assert decision["data"]["decision"]["reason"].startswith("Targets were met")
    assert decision["clause"] == "D19-8"
    assert row.data["notices"][-1]["to"] == "Employee" and "Lead a project" in row.data["notices"][-1]["body"]
    # The employee may ask for a review; accepting ends the case as not progressed.
    drive.complete(case, "consider_review", "employee", {"review_request": {"request": "accept"}})
    row = drive.instance(case)
    assert row.status == "completed" and row.data["outcome"] == "not_progressed"


def test_d19_8_a_refusal_without_feedback_is_refused_and_nothing_changes(drive: Driver) -> None:
    case = _through_submission(drive)
    drive.complete(case, "recommend", "supervisor", RECOMMEND_YES)
    task = drive.open_task(case, "decide")
    before = drive.instance(case).lock_version
    with pytest.raises(Invalid) as err:
        drive.runtime.complete_task(drive.user("manager"), task.id, {"decision": {
            "approve": "refuse", "reason": "No criterion shown."}})
    assert "decision.feedback" in {p.field for p in err.value.problems}
    assert drive.instance(case).lock_version == before and drive.open_tasks(case) == ["decide"]


def test_d19_8_an_officer_named_by_the_ceo_decides(drive: Driver) -> None:
    case = _through_submission(drive)
    drive.complete(case, "recommend", "supervisor", RECOMMEND_YES)
    d19.appoint(drive.runtime, drive.user("ceo"), case, "Manager", "delegate", "The manager recommended the project.")
    assert drive.open_task(case, "decide").assignee.username == "delegate"  # type: ignore[union-attr]
    with pytest.raises(NotFound):  # the task moved; the manager never held it
        drive.complete(case, "decide", "manager", DECIDE_YES)
    drive.complete(case, "decide", "delegate", DECIDE_YES)
    assert drive.instance(case).data["outcome"] == "progressed"


# ------------------------------------------------------------------------------------------ D19-9a, 9b, 9c


def test_d19_9a_review_due_in_four_weeks_escalates_when_late_and_backdates(drive: Driver) -> None:
    case = _refused(drive)
    drive.complete(case, "consider_review", "employee", REVIEW)
    task = drive.open_task(case, "ceo_review")
    assert task.assigned_group == _ceo_office(drive) and task.clause == "D19-9a"
    review = drive.instance(case).data["review"]
    assert review["requested_on"] == "2026-03-02" and review["due"] == "2026-03-30"
    # Four weeks from receipt: late from the first instant of 31 March in Darwin.
    late_at = datetime(2026, 3, 30, 14, 30, tzinfo=UTC)
    assert _timers(drive, case)["review_four_weeks"] == late_at and task.due_at == late_at
    CLOCK.freeze(late_at - timedelta(minutes=1))
    assert _poll(drive) == 0 and _events(drive, case, "escalated") == []
    CLOCK.freeze(late_at + timedelta(minutes=1))
    assert _poll(drive) == 1
    assert [e["element"] for e in _events(drive, case, "timer_fired")] == ["review_four_weeks"]
    assert drive.open_tasks(case) == ["ceo_review"]  # the review goes on; lateness is escalated
    assert [e["task"] for e in _events(drive, case, "escalated")] == ["ceo_review"]
    told = _told(drive, case)
    assert {"ceo", "delegate", "hr"} <= set(told)  # the CEO's office and HR
    assert told["hr"] == ["Overdue: Review the assessment outcome"]
    assert told["employee"] == ["Pay progression not approved", "Your review request was received"]
    # A late review that grants progression still takes effect from the original assessment date.
    CLOCK.freeze(datetime(2026, 7, 20, 1, 0, tzinfo=UTC))
    drive.complete(case, "ceo_review", "ceo", {"review_decision": {
        "new_information_accepted": "accepted", "outcome": "progress",
        "reason": "The annual report shows the project's value to the port."}})
    row = drive.instance(case)
    assert row.status == "completed" and row.data["outcome"] == "progressed"
    assert row.data["effective_date"] == "2026-06-30" and row.data["decided_on"] == "2026-07-20"
    assert row.data["backdated"] is True and row.data["progressed_by"] == "ceo_review"
    assert row.data["review"]["within_four_weeks"] is False and row.data["review"]["outcome"] == "progress"


def test_d19_9a_the_employee_has_a_limited_time_to_ask_for_a_review(drive: Driver) -> None:
    case = _refused(drive)
    assert _timers(drive, case) == {"review_request_window_closes": datetime(2026, 3, 30, tzinfo=UTC)}
    CLOCK.advance(timedelta(days=28, seconds=1))
    assert _poll(drive) == 1
    row = drive.instance(case)
    assert row.status == "completed" and row.data["outcome"] == "not_progressed"


def test_d19_9a_asking_for_a_review_needs_grounds(drive: Driver) -> None:
    case = _refused(drive)
    task = drive.open_task(case, "consider_review")
    with pytest.raises(Invalid) as err:
        drive.runtime.complete_task(drive.user("employee"), task.id, {"review_request": {"request": "review"}})
    assert {p.field for p in err.value.problems} == {"review_request.grounds"}
    assert drive.open_tasks(case) == ["consider_review"]


def test_d19_9b_a_late_decision_not_caused_by_the_employee_is_backdated(drive: Driver) -> None:
    case = _through_submission(drive)
    drive.complete(case, "recommend", "supervisor", RECOMMEND_YES)
    CLOCK.freeze(datetime(2026, 9, 14, 2, 0, tzinfo=UTC))  # the manager decides months late
    drive.complete(case, "decide", "manager", DECIDE_YES)
    data = drive.instance(case).data
    assert data["effective_date"] == "2026-06-30" and data["decided_on"] == "2026-09-14"
    assert data["backdated"] is True
    assert data["delay"] == {"days_after_assessment_date": 76, "caused_by_employee": False, "explanation": None,
                             "rule": "D19-9b"}


def test_d19_9b_a_delay_caused_by_the_employee_takes_effect_from_the_decision(drive: Driver) -> None:
    case = _through_submission(drive)
    drive.complete(case, "recommend", "supervisor", RECOMMEND_YES)
    CLOCK.freeze(datetime(2026, 8, 3, 2, 0, tzinfo=UTC))
    drive.complete(case, "decide", "manager", {"decision": {
        "approve": "approve", "delay_caused_by_employee": True,
        "delay_explanation": "The employee did not attend three scheduled assessment meetings."}})
    data = drive.instance(case).data
    assert data["effective_date"] == "2026-08-03" and data["backdated"] is False
    assert data["delay"]["caused_by_employee"] is True


def test_d19_9b_a_late_invitation_keeps_the_full_window_and_the_original_date(drive: Driver) -> None:
    """Issue 15: a late invitation closed the submission window at once and the case ended `no_submission`."""
    case = drive.start("pay_progression", START)
    CLOCK.freeze(datetime(2026, 6, 29, 15, 0, tzinfo=UTC))  # the invitation was never sent in time (due 30 April)
    drive.complete(case, "invite_submission", "supervisor", INVITE)
    _poll(drive)  # the window does not close at the assessment date: it runs two months from the invitation
    data = drive.instance(case).data
    assert data["submission_closes"] == "2026-08-30" and data["assessment_date"] == "2026-06-30"
    assert data["late_invitation"]["invited_on"] == "2026-06-30" and "cl. 3(2) and cl. 9" in data["late_invitation"][
        "text"]
    assert drive.open_task(case, "make_submission").due_at == datetime(2026, 8, 29, 14, 30, tzinfo=UTC)
    CLOCK.freeze(datetime(2026, 7, 20, 1, 0, tzinfo=UTC))
    _poll(drive)
    drive.complete(case, "make_submission", "employee", SUBMIT)
    drive.complete(case, "recommend", "supervisor", RECOMMEND_YES)
    drive.complete(case, "decide", "manager", DECIDE_YES)
    data = drive.instance(case).data
    assert data["effective_date"] == "2026-06-30" and data["backdated"] is True


def test_d19_9c_section_59_review_is_recorded_with_dates_and_outcome(drive: Driver) -> None:
    case = _refused(drive)
    drive.complete(case, "consider_review", "employee", REVIEW)
    CLOCK.freeze(datetime(2026, 3, 20, 1, 0, tzinfo=UTC))
    drive.complete(case, "ceo_review", "delegate", {"review_decision": {
        "new_information_accepted": "not_accepted", "outcome": "confirm",
        "reason": "The report post-dates the cycle; the original evidence does not show a criterion."}})
    assert drive.open_tasks(case) == ["consider_s59"]
    drive.complete(case, "consider_s59", "employee", {"s59_request": {
        "lodged": "lodged", "lodged_on": "2026-03-19", "reference": "OCPE-2026-117"}})
    task = drive.open_task(case, "record_s59_outcome")
    assert task.assigned_group == "hr" and task.clause == "D19-9c"
    bad = {"s59_outcome": {"decided_on": "2026-03-01", "result": "decision_stands", "summary": "Dismissed."}}
    with pytest.raises(Invalid) as err:  # decided before it was lodged: the diagram's rule refuses
        drive.runtime.complete_task(drive.user("hr"), task.id, bad)
    assert "cannot be decided before the review was lodged" in err.value.problems[0].message
    assert drive.open_tasks(case) == ["record_s59_outcome"]
    drive.complete(case, "record_s59_outcome", "hr", {"s59_outcome": {
        "decided_on": "2026-05-04", "result": "progression",
        "summary": "The review found the wharf system met the new projects criterion."}})
    data = drive.instance(case).data
    assert data["s59"] == {"lodged_on": "2026-03-19", "reference": "OCPE-2026-117", "recorded_on": "2026-03-20",
                           "decided_on": "2026-05-04", "result": "progression",
                           "summary": "The review found the wharf system met the new projects criterion."}
    assert data["outcome"] == "progressed" and data["effective_date"] == "2026-06-30"
    assert data["review"]["outcome"] == "confirm" and data["review"]["within_four_weeks"] is True


def test_d19_9c_not_seeking_a_section_59_review_ends_the_case(drive: Driver) -> None:
    case = _refused(drive)
    drive.complete(case, "consider_review", "employee", REVIEW)
    drive.complete(case, "ceo_review", "ceo", {"review_decision": {
        "new_information_accepted": "not_accepted", "outcome": "confirm", "reason": "No criterion shown."}})
    drive.complete(case, "consider_s59", "employee", {"s59_request": {"lodged": "not_sought"}})
    row = drive.instance(case)
    assert row.status == "completed" and row.data["outcome"] == "not_progressed" and "s59" not in row.data


# ------------------------------------------------------------------------------------------ D19-9d, D19-10


def test_d19_9d_lwop_postpones_the_assessment_date_and_moves_the_waiting_timer(drive: Driver) -> None:
    case = drive.start("pay_progression", START)
    drive.complete(case, "invite_submission", "supervisor", INVITE)
    assert _timers(drive, case) == {"submission_window_closes": datetime(2026, 6, 29, 14, 30, tzinfo=UTC)}
    with _commits(drive.runtime) as commits:
        result = record_leave(drive.runtime, drive.user("hr"), "employee", {
            "kind": "lwop", "start": "2026-03-10", "end": "2026-03-19", "counts_as_service": False})
    assert result["retimed_cases"] == [case]
    assert len(commits) == 1  # the leave and the case it moves commit together
    assert _timers(drive, case) == {"submission_window_closes": datetime(2026, 7, 9, 14, 30, tzinfo=UTC)}
    assert drive.open_task(case, "make_submission").due_at == datetime(2026, 7, 9, 14, 30, tzinfo=UTC)
    data = drive.instance(case).data
    assert data["assessment_date"] == data["original_assessment_date"] == "2026-07-10"
    assert data["submission_closes"] == "2026-07-10" and data["invite_due"] == "2026-05-10"
    [retimed] = _events(drive, case, "retimed")
    assert retimed["reason"] == ("Determination 19, cl. 9: 10 days of leave without pay (2026-03-10 to 2026-03-19) "
                                 "that do not count as service postpone the annual assessment date from 2026-06-30 "
                                 "to 2026-07-10")
    assert retimed["before"]["assessment_date"] == "2026-06-30"
    # The old due time passes: nothing fires; the moved one fires.
    CLOCK.freeze(datetime(2026, 7, 1, tzinfo=UTC))
    assert _poll(drive) == 0
    CLOCK.freeze(datetime(2026, 7, 9, 14, 31, tzinfo=UTC))
    assert _poll(drive) == 1 and drive.open_tasks(case) == ["agree_new_timeframe"]


def test_d19_9d_lwop_that_counts_as_service_or_falls_outside_the_cycle_moves_nothing(drive: Driver) -> None:
    case = drive.start("pay_progression", START)
    for payload in ({"kind": "lwop", "start": "2026-03-10", "end": "2026-03-19", "counts_as_service": True},
                    {"kind": "lwop", "start": "2025-01-10", "end": "2025-01-19", "counts_as_service": False},
                    {"kind": "ordinary", "start": "2026-04-01", "end": "2026-04-30", "counts_as_service": True}):
        assert record_leave(drive.runtime, drive.user("hr"), "employee", payload)["retimed_cases"] == []
    assert drive.instance(case).data["assessment_date"] == "2026-06-30"
    assert _events(drive, case, "retimed") == []


def test_d19_10_ordinary_leave_stays_inside_the_cycle(drive: Driver) -> None:
    case = drive.start("pay_progression", START)
    drive.complete(case, "invite_submission", "supervisor", INVITE)
    before = _timers(drive, case)
    record_leave(drive.runtime, drive.user("hr"), "employee", {
        "kind": "ordinary", "start": "2026-04-01", "end": "2026-04-21", "counts_as_service": True})
    assert _timers(drive, case) == before and drive.instance(case).data["assessment_date"] == "2026-06-30"


def test_d19_10_extended_leave_new_timeframe_applies_from_the_revised_date(drive: Driver) -> None:
    case = drive.start("pay_progression", START)
    drive.complete(case, "invite_submission", "supervisor", INVITE)
    result = record_leave(drive.runtime, drive.user("hr"), "employee", {
        "kind": "extended", "start": "2026-02-02", "end": "2026-05-01", "counts_as_service": True})
    assert result["new_timeframe_possible"] == [case]
    assert drive.instance(case).data["notices"][-1]["to"] == "Supervisor"
    drive.complete(case, "make_submission", "employee", {"submission": {
        "participate": "new_timeframe", "new_timeframe_request": "Three months' leave, February to April."}})
    task = drive.open_task(case, "agree_new_timeframe")
    assert task.clause == "D19-10"
    bad = {"new_timeframe": {"agree": "agree", "basis": "extended_leave", "new_date": "2026-06-01",
                             "reason": "Too early"}}
    with pytest.raises(Invalid) as err:
        drive.runtime.complete_task(drive.user("supervisor"), task.id, bad)
    assert [(p.field, p.message) for p in err.value.problems] == [("new_timeframe.new_date", (
        "Determination 19, cl. 10: the new date must be after 30 June 2026, when submissions close now."))]
    drive.complete(case, "agree_new_timeframe", "supervisor", {"new_timeframe": {
        "agree": "agree", "basis": "extended_leave", "new_date": "2026-09-30",
        "reason": "Three months of extended leave; three more months of duty to show the criteria."}})
    data = drive.instance(case).data
    assert data["assessment_date"] == data["revised_assessment_date"] == "2026-09-30"
    assert data["original_assessment_date"] == "2026-06-30"
    assert _timers(drive, case) == {"submission_window_closes": datetime(2026, 9, 29, 14, 30, tzinfo=UTC)}
    CLOCK.freeze(datetime(2026, 8, 1, tzinfo=UTC))
    assert _poll(drive) == 0  # past the old assessment date, still open
    drive.complete(case, "make_submission", "employee", SUBMIT)
    drive.complete(case, "recommend", "supervisor", RECOMMEND_YES)
    drive.complete(case, "decide", "manager", DECIDE_YES)
    data = drive.instance(case).data
    assert data["effective_date"] == "2026-09-30" and data["outcome"] == "progressed"
    assert data["timeframes"][0]["basis"] == "extended_leave"


# ------------------------------------------------------------------------------------------ D19-11


TRANSFER = {"former_position": "Senior Port Administrative Officer 1, Marine Pilotage",
            "former_manager": "ceo", "former_start": "2025-01-06", "former_end": "2025-08-06"}


def test_d19_11_transfer_allows_an_earlier_assessment_and_the_former_manager_assesses(drive: Driver) -> None:
    start = {**START, "agreement_start": "2025-08-07", "assessment_date": "2026-01-07", "transfer": TRANSFER}
    CLOCK.freeze(datetime(2025, 10, 1, tzinfo=UTC))
    case = drive.start("pay_progression", start)
    data = drive.instance(case).data
    assert data["eligibility"]["rule"] == "D19-11" and data["facts"]["combined_months"] == 12
    assert data["facts"]["cycle_months"] == 5
    drive.complete(case, "invite_submission", "supervisor", INVITE)
    drive.complete(case, "make_submission", "employee", {"submission": {
        **SUBMIT["submission"], "evidence_former_position": "Ran the pilotage roster rebuild."}})
    task = drive.open_task(case, "assess_former_position")
    assert task.assignee is not None and task.assignee.username == "ceo" and task.clause == "D19-11"
    assert "transfer.former_position" in (task.instructions or "")  # the instructions name the former position
    drive.complete(case, "assess_former_position", "ceo", {"former_assessment": {
        "supports": "yes", "comments": "The roster rebuild was a new project delivered early."}})
    drive.complete(case, "recommend", "supervisor", RECOMMEND_YES)
    drive.complete(case, "decide", "manager", DECIDE_YES)
    data = drive.instance(case).data
    assert data["outcome"] == "progressed" and data["effective_date"] == "2026-01-07"
    assert data["former_assessment"]["supports"] == "yes"


def test_d19_11_former_plus_new_service_under_twelve_months_is_refused(drive: Driver) -> None:
    short = {**TRANSFER, "former_start": "2025-03-06"}
    problem = _refusal(drive, {**START, "agreement_start": "2025-08-07", "assessment_date": "2026-01-07",
                               "transfer": short}).problems[0]
    assert problem.field == "transfer" and "cl. 11" in problem.message and "10 months" in problem.message
    bad = {**TRANSFER, "former_end": "2025-09-01"}
    err = _refusal(drive, {**START, "agreement_start": "2025-08-07", "assessment_date": "2026-01-07",
                           "transfer": bad})
    assert {p.field for p in err.problems} == {"transfer.former_end"}


def test_d19_11_a_transfer_without_a_former_manager_skips_that_step(drive: Driver) -> None:
    start = {**START, "transfer": {**TRANSFER, "former_manager": "", "former_start": "2024-06-03",
                                   "former_end": "2025-06-27"}}
    case = _through_submission(drive, start)
    assert drive.open_tasks(case) == ["recommend"]


# ------------------------------------------------------------------------------------------ D19-12


PARTIAL = [{"start": "2025-09-01", "end": "2025-09-30", "classification": "SPAO2", "full_duties": False},
           {"start": "2025-11-03", "end": "2025-11-12", "classification": "SPAO2", "full_duties": True}]


def test_d19_12_partial_higher_duties_do_not_count_unless_special_circumstances(drive: Driver) -> None:
    case = drive.start("pay_progression", {**START, "higher_duties": PARTIAL})
    task = drive.open_task(case, "assess_higher_duties")
    assert task.assignee is not None and task.assignee.username == "manager" and task.clause == "D19-12"
    drive.complete(case, "assess_higher_duties", "manager", {"hd_assessment": {
        "special_circumstances": "do_not_exist", "reason": "Only the rostering half of the role was performed."}})
    data = drive.instance(case).data
    assert data["higher_duties_postponement"]["days"] == 30
    assert data["assessment_date"] == data["original_assessment_date"] == "2026-07-30"
    assert data["invite_due"] == "2026-05-30"
    [judged] = [e for e in _events(drive, case, "task_completed") if e["task"] == "assess_higher_duties"]
    assert judged["data"]["hd_assessment"]["reason"].startswith("Only the rostering")


def test_d19_12_special_circumstances_recorded_by_who_decides_count_the_period(drive: Driver) -> None:
    case = drive.start("pay_progression", {**START, "higher_duties": PARTIAL})
    d19.appoint(drive.runtime, drive.user("ceo"), case, "Manager", "delegate", "The manager acted in the role.")
    drive.complete(case, "assess_higher_duties", "delegate", {"hd_assessment": {
        "special_circumstances": "exist", "reason": "The cyclone response made the partial role the whole job."}})
    data = drive.instance(case).data
    assert data["higher_duties_postponement"]["days"] == 0 and data["assessment_date"] == "2026-06-30"
    with drive.runtime.db.read() as s:
        who = s.scalars(select(AuditEvent.actor).where(
            AuditEvent.instance_id == case, AuditEvent.kind == "task_completed")).all()
    assert who == ["delegate"]


def test_d19_12_full_higher_duties_count_and_need_no_decision(drive: Driver) -> None:
    full = [{**PARTIAL[0], "full_duties": True}]
    case = drive.start("pay_progression", {**START, "higher_duties": full})
    assert drive.open_tasks(case) == ["invite_submission"]
    assert drive.instance(case).data["assessment_date"] == "2026-06-30"


HIGHER = {"classification": "SPAO2", "pay_point": "SPAO2-1"}
YEAR_ON_HD = [{"start": "2025-06-30", "end": "2026-06-29", "classification": "SPAO2", "full_duties": True}]


def test_d19_12_after_twelve_months_of_higher_duties_an_approval_counts_at_the_nominal_level(
        drive: Driver) -> None:
    start = {**START, "higher_duties": YEAR_ON_HD, "higher_duties_level": HIGHER}
    case = _through_submission(drive, start)
    assert drive.instance(case).data["eligibility"]["rule"] == "D19-12"
    drive.complete(case, "recommend", "supervisor", RECOMMEND_YES)
    drive.complete(case, "decide", "manager", DECIDE_YES)
    data = drive.instance(case).data
    assert data["new_pay_point"] == "SPAO2-2" and data["nominal_credit"]["counts"] is True
    assert data["nominal_credit"]["rule"] == "D19-12(4)"


def test_d19_12_a_refused_higher_duties_progression_may_count_at_the_nominal_level(drive: Driver) -> None:
    start = {**START, "higher_duties": YEAR_ON_HD, "higher_duties_level": HIGHER}
    case = _through_submission(drive, start)
    drive.complete(case, "recommend", "supervisor", RECOMMEND_YES)
    drive.complete(case, "decide", "manager", REFUSE)
    task = drive.open_task(case, "assess_nominal_level")
    assert task.clause == "D19-12"
    drive.complete(case, "assess_nominal_level", "manager", {"nominal_assessment": {
        "would_satisfy": "yes", "reason": "At SPAO1 the same projects exceed the targets."}})
    data = drive.instance(case).data
    assert data["nominal_credit"] == {"counts": True, "rule": "D19-12(5)",
                                      "reason": "At SPAO1 the same projects exceed the targets."}
    assert drive.open_tasks(case) == ["consider_review"]


def test_d19_12_higher_duties_level_needs_twelve_months_there_and_a_senior_classification(drive: Driver) -> None:
    short = [{**YEAR_ON_HD[0], "start": "2025-10-01"}]
    problem = _refusal(drive, {**START, "higher_duties": short, "higher_duties_level": HIGHER}).problems[0]
    assert problem.field == "higher_duties_level" and "cl. 12" in problem.message and "has 8" in problem.message
    with drive.runtime.db.unit_of_work() as uow:
        from engine.people.models import PayPoint

        uow.session.add(PayPoint(classification="AO7", code="AO7-1", ordinal=1))
        uow.commit()
    problem = _refusal(drive, {**START, "higher_duties": YEAR_ON_HD,
                               "higher_duties_level": {"classification": "AO7", "pay_point": "AO7-1"}}).problems[0]
    assert problem.field == "higher_duties_level" and "cl. 1" in problem.message


# ------------------------------------------------------------------------------------------ engine behaviour


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


def test_d19_9d_two_periods_of_lwop_recorded_at_once_both_postpone_the_case(org: Runtime) -> None:
    # Each is applied to the case's dates as they are under its lock, not as a read before the lock saw them.
    d = Driver(org)
    case = d.start("pay_progression", START)
    d.complete(case, "invite_submission", "supervisor", INVITE)
    hr = d.user("hr")
    barrier = threading.Barrier(2)
    errors: list[Exception] = []

    def record(start: str, end: str) -> None:
        barrier.wait()
        try:
            record_leave(org, hr, "employee", {"kind": "lwop", "start": start, "end": end, "counts_as_service": False})
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=record, args=period)
               for period in (("2026-03-10", "2026-03-19"), ("2026-04-01", "2026-04-05"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert d.instance(case).data["assessment_date"] == "2026-07-15"  # 10 days and 5 days
    assert len(_events(d, case, "retimed")) == 2


def test_cancel_closes_open_tasks_and_records_the_reason(org: Runtime) -> None:
    d = Driver(org)
    case = d.start("pay_progression", START)
    org.cancel(d.user("hr"), case, "Employee transferred to another agency.")
    row = d.instance(case)
    assert row.status == "cancelled"
    assert d.open_tasks(case) == []


def test_every_user_task_shows_the_clause_it_applies(drive: Driver) -> None:
    case = _refused(drive)
    drive.complete(case, "consider_review", "employee", REVIEW)
    with drive.runtime.db.read() as s:
        clauses = dict(s.execute(select(HumanTask.name, HumanTask.clause).where(HumanTask.instance_id == case)).all())
    assert clauses == {"invite_submission": "D19-3.2", "make_submission": "D19-6", "recommend": "D19-7",
                       "decide": "D19-8", "consider_review": "D19-9a", "ceo_review": "D19-9a"}


def test_policy_dates_helper_agrees_with_the_case(drive: Driver) -> None:
    case = drive.start("pay_progression", START)
    from engine.policies.pay_progression import timing as policy

    assert drive.instance(case).data["invite_due"] == policy.invite_due(date(2026, 6, 30)).isoformat()
