"""Determination 19: only the people the determination names decide (cl. 6, 7, 8, 9), for every path.

The attacks of issue 15 exactly as they were reproduced, each refused by the engine (so by the web, the API, the
CLI and the timers alike); every scenario straight through and with a save/restore between every step.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.core.errors import Forbidden, Invalid, NotFound
from engine.core.models import AuditEvent
from engine.people.models import Person
from engine.people.users import PersonInput, create_user, hash_password, save_person
from engine.policies.pay_progression import services as d19
from engine.workflow import queries
from engine.workflow.demo import DEMO_PASSWORD
from engine.workflow.models import HumanTask, Notification, ProcessInstance
from engine.workflow.runtime import Runtime
from tests.policies.pay_progression.test_pay_progression import (
    INVITE,
    RECOMMEND_NO,
    RECOMMEND_YES,
    REFUSE,
    REVIEW,
    START,
    SUBMIT,
)
from tests.workflow.driver import Driver

#: People beside the demo's: another agency with its own CEO and delegate, an officer with no supervisor on record,
#: one whose manager on record is also their supervisor, and a covered officer who is a CEO delegate.
EXTRA = [
    # username, organisation, classification, pay point, supervisor, manager, delegate
    ("nthceo", "NTH", "CEO", None, None, None, False),
    ("nthdelegate", "NTH", "AO8", None, "nthceo", None, True),
    ("orphan", "DPC", "SPAO1", "SPAO1-1", None, None, False),
    ("solo", "DPC", "SPAO1", "SPAO1-1", "supervisor", "supervisor", False),
    ("portdelegate", "DPC", "SPAO2", "SPAO2-1", "supervisor", None, True),
    ("nthhr", "NTH", "AO7", None, "nthceo", None, False),
]
#: Logins with more than the staff role.
ROLES = {"nthhr": ["hr", "staff"]}


@pytest.fixture
def people(org: Runtime) -> Runtime:
    with org.db.unit_of_work() as uow:
        s = uow.session
        digest = hash_password(DEMO_PASSWORD)
        for username, organisation, classification, point, supervisor, manager, delegate in EXTRA:
            save_person(s, PersonInput(username=username, name=username.title(), email=f"{username}@example.org",
                                       classification=classification, pay_point=point, organisation=organisation,
                                       supervisor=supervisor, manager=manager, commenced_on="2024-01-15",
                                       ceo_delegate=delegate))
            create_user(s, username, ROLES.get(username, ["staff"]), None, password_hash=digest)
        s.flush()
        nth = s.scalar(select(Person).where(Person.username == "nthceo"))
        assert nth is not None and nth.organisation is not None
        nth.organisation.ceo_id = nth.id
        uow.commit()
    return org


@pytest.fixture(params=[False, True], ids=["straight", "save-restore"])
def drive(people: Runtime, request: pytest.FixtureRequest) -> Iterator[Driver]:
    driver = Driver(people, restore=request.param)
    yield driver
    driver.runtime.db.dispose()


def _cases(d: Driver) -> int:
    with d.runtime.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(ProcessInstance)) or 0)


def _inbox(d: Driver, username: str) -> list[tuple[int, str]]:
    with d.runtime.db.read() as s:
        items, _ = queries.inbox(s, d.user(username))
    return [(item["instance"], item["name"]) for item in items]


def _told(d: Driver, case: int) -> dict[str, list[str]]:
    with d.runtime.db.read() as s:
        rows = s.execute(select(Person.username, Notification.subject).join(
            Person, Person.id == Notification.person_id).where(Notification.instance_id == case)).all()
    told: dict[str, list[str]] = {}
    for username, subject in rows:
        told.setdefault(username, []).append(subject)
    return told


def _sees(d: Driver, username: str, case: int) -> bool:
    with d.runtime.db.read() as s:
        try:
            queries.get_instance(s, d.user(username), case)
        except NotFound:
            return False
    return True


def _against(d: Driver, start: dict[str, Any] | None = None) -> int:
    """A case whose supervisor does not recommend: the written reason goes to the CEO's office (cl. 7)."""
    case = d.start("pay_progression", start or START)
    d.complete(case, "invite_submission", "supervisor", INVITE)
    d.complete(case, "make_submission", (start or START)["employee"], SUBMIT)
    d.complete(case, "recommend", "supervisor", RECOMMEND_NO)
    return case


def _in_review(d: Driver, start: dict[str, Any] | None = None, decider: str = "manager") -> int:
    """A refused case whose employee asked the CEO for a review (cl. 9): the review is the CEO lane's step."""
    case = _against(d, start)
    d.complete(case, "decide", decider, REFUSE)
    d.complete(case, "consider_review", (start or START)["employee"], REVIEW)
    return case


CONFIRM = {"review_decision": {"new_information_accepted": "not_accepted", "outcome": "confirm",
                               "reason": "The decision stands."}}


# ------------------------------------------------------------------------------------------ appointments at start


def test_d19_6_a_supervisor_cannot_name_himself_manager_and_ceo_at_start(drive: Driver) -> None:
    """Issue 15: a supervisor started a case with assign Manager/CEO = supervisor, then recommended and approved."""
    before = _cases(drive)
    with pytest.raises(Forbidden) as err:
        drive.start("pay_progression", {**START, "assign": {"Manager": "supervisor", "CEO": "supervisor"}},
                    as_user="supervisor")
    assert err.value.problems[0].field == "assign"
    assert _cases(drive) == before  # nothing started


def test_d19_8_the_employee_is_never_named_to_assess_or_decide_her_own_case(drive: Driver) -> None:
    """Issue 15: assign Supervisor/Manager/CEO = employee let the employee invite, recommend and decide."""
    with pytest.raises(Invalid) as err:
        drive.start("pay_progression", {**START, "assign": {
            "Supervisor": "employee", "Manager": "employee", "CEO": "employee"},
            "appointment": {"approved_by": "ceo"}})
    assert {p.field for p in err.value.problems} == {"assign.Supervisor", "assign.Manager", "assign.CEO"}
    # The CEO herself may not either.
    with pytest.raises(Invalid):
        drive.start("pay_progression", {**START, "assign": {"Manager": "employee"}}, as_user="ceo")


def test_d19_8_whoever_recommends_does_not_decide_even_when_appointed_at_start(drive: Driver) -> None:
    with pytest.raises(Invalid) as err:
        drive.start("pay_progression", {**START, "assign": {"Manager": "supervisor"}}, as_user="ceo")
    assert err.value.problems[0].field == "assign.Manager"
    assert "separate" in err.value.problems[0].message


def test_d19_6_hr_records_a_start_appointment_only_naming_the_approving_ceo(drive: Driver) -> None:
    with pytest.raises(Invalid) as err:
        drive.start("pay_progression", {**START, "assign": {"Supervisor": "delegate"}})
    assert err.value.problems[0].field == "appointment.approved_by"
    with pytest.raises(Invalid):  # another agency's CEO cannot approve for this one
        drive.start("pay_progression", {**START, "assign": {"Supervisor": "delegate"},
                                        "appointment": {"approved_by": "nthceo"}})
    case = drive.start("pay_progression", {**START, "assign": {"Supervisor": "delegate"},
                                           "appointment": {"approved_by": "ceo", "reason": "Sam is away"}})
    appointed = drive.instance(case).data["appointments"]
    assert [(a["lane"], a["username"], a["approved_by"], a["recorded_by"], a["reason"]) for a in appointed] == [
        ("Supervisor", "delegate", "ceo", "hr", "Sam is away")]
    assert drive.open_task(case, "invite_submission").assignee.username == "delegate"  # type: ignore[union-attr]


def test_d19_6_another_agencys_ceo_cannot_appoint_at_start_or_later(drive: Driver) -> None:
    with pytest.raises(Forbidden):
        drive.start("pay_progression", {**START, "assign": {"Supervisor": "delegate"}}, as_user="nthceo")
    case = drive.start("pay_progression", START)
    with pytest.raises(NotFound):  # they cannot even see it
        d19.appoint(drive.runtime, drive.user("nthceo"), case, "Supervisor", "delegate", "because")


def test_d19_6_processes_without_a_policy_take_no_appointments_at_start(drive: Driver) -> None:
    with pytest.raises(Invalid) as err:
        drive.start("secondment", {"assign": {"Home": "hr"}}, as_user="employee")
    assert err.value.problems[0].field == "assign"


# ------------------------------------------------------------------------------------------ the CEO lane


def test_d19_7_the_ceo_lane_is_the_employees_own_ceo_and_delegates(drive: Driver) -> None:
    """Issue 15: the head of another agency received a supervisor's written reasons and could refuse."""
    case = _against(drive)
    told = _told(drive, case)  # the written reason (cl. 7) reaches the employee's own CEO's office only
    assert "nthceo" not in told and "nthdelegate" not in told
    assert any("not recommended" in s for s in told["ceo"]) and any("not recommended" in s for s in told["delegate"])
    assert not _sees(drive, "nthceo", case) and not _sees(drive, "nthdelegate", case)
    drive.complete(case, "decide", "manager", REFUSE)
    drive.complete(case, "consider_review", "employee", REVIEW)
    assert (case, "ceo_review") in _inbox(drive, "ceo")
    assert (case, "ceo_review") in _inbox(drive, "delegate")
    assert _inbox(drive, "nthceo") == [] and _inbox(drive, "nthdelegate") == []
    with pytest.raises(NotFound):
        drive.complete(case, "ceo_review", "nthceo", CONFIRM)
    assert not _sees(drive, "nthceo", case)


def test_d19_9a_whoever_decided_does_not_review(drive: Driver) -> None:
    """Issue 15: the same CEO delegate refused at first instance and then confirmed the refusal on review.

    The delegate decides as the officer the CEO determines (cl. 8), then the review comes to the CEO's office."""
    case = _against(drive)
    d19.appoint(drive.runtime, drive.user("ceo"), case, "Manager", "delegate", "the manager is conflicted")
    drive.complete(case, "decide", "delegate", REFUSE)
    drive.complete(case, "consider_review", "employee", REVIEW)
    assert (case, "ceo_review") in _inbox(drive, "ceo")
    with pytest.raises(Forbidden) as err:
        drive.complete(case, "ceo_review", "delegate", CONFIRM)
    assert "separate" in err.value.message
    with drive.runtime.db.read() as s:  # the task page says it cannot be done by them
        task = s.scalar(select(HumanTask).where(HumanTask.instance_id == case, HumanTask.name == "ceo_review"))
        assert task is not None
        assert queries.get_task(s, drive.user("delegate"), task.id)[1] is False
        assert "separate" in (queries.blocked_reason(s, drive.user("delegate"), task) or "")
        assert queries.get_task(s, drive.user("ceo"), task.id)[1] is True
    drive.complete(case, "ceo_review", "ceo", CONFIRM)
    assert drive.instance(case).data["review"]["outcome"] == "confirm"


def test_d19_8_the_officer_who_recommended_cannot_decide_a_case_routed_back_to_him(drive: Driver) -> None:
    """`solo`'s manager on record is their supervisor: the decision waits for an appointment instead."""
    case = drive.start("pay_progression", {**START, "employee": "solo"})
    drive.complete(case, "invite_submission", "supervisor", INVITE)
    drive.complete(case, "make_submission", "solo", SUBMIT)
    drive.complete(case, "recommend", "supervisor", RECOMMEND_YES)
    task = drive.open_task(case, "decide")
    assert task.assignee is None and task.assigned_group is not None and task.assigned_group.startswith("appointment")
    with pytest.raises((Forbidden, NotFound)):
        drive.complete(case, "decide", "supervisor", {"decision": {"approve": "approve"}})
    with pytest.raises(Invalid) as err:  # nor can he be appointed to it
        d19.appoint(drive.runtime, drive.user("ceo"), case, "Manager", "supervisor", "he knows the work")
    assert err.value.problems[0].field == "username"
    d19.appoint(drive.runtime, drive.user("ceo"), case, "Manager", "manager", "the port operations manager")
    drive.complete(case, "decide", "manager", {"decision": {"approve": "approve"}})
    assert drive.instance(case).data["outcome"] == "progressed"


def test_d19_7_a_ceo_delegate_never_takes_a_ceo_step_of_her_own_case(drive: Driver) -> None:
    case = _in_review(drive, {**START, "employee": "portdelegate"})
    assert (case, "ceo_review") in _inbox(drive, "ceo")
    assert (case, "ceo_review") not in _inbox(drive, "portdelegate")
    with pytest.raises((Forbidden, NotFound)):
        drive.complete(case, "ceo_review", "portdelegate", CONFIRM)
    drive.complete(case, "ceo_review", "delegate", CONFIRM)


# ------------------------------------------------------------------------------------------ nobody to act


def test_d19_6_a_step_with_nobody_on_record_waits_for_an_appointment_not_for_hr(drive: Driver) -> None:
    """Issue 15: a task whose lane resolved to nobody went to HR, which then assessed and decided on merit."""
    case = drive.start("pay_progression", {**START, "employee": "orphan"})
    task = drive.open_task(case, "invite_submission")
    assert task.assignee is None and task.assigned_group is not None and task.assigned_group.startswith("appointment")
    with pytest.raises((Forbidden, NotFound)):
        drive.complete(case, "invite_submission", "hr", INVITE)
    assert (case, "invite_submission") not in _inbox(drive, "hr")
    told = _told(drive, case)
    assert {"hr", "ceo", "delegate"} <= set(told) and "nthceo" not in told
    assert all(any(s.startswith("Needs an appointment") for s in told[u]) for u in ("hr", "ceo", "delegate"))
    assert _sees(drive, "ceo", case) and not _sees(drive, "nthceo", case)
    with drive.runtime.db.read() as s:
        flagged = s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.instance_id == case, AuditEvent.kind == "needs_appointment"))
    assert flagged == 1
    d19.appoint(drive.runtime, drive.user("ceo"), case, "Supervisor", "supervisor", "acting supervisor")
    drive.complete(case, "invite_submission", "supervisor", INVITE)
    assert drive.open_task(case, "make_submission").assignee.username == "orphan"  # type: ignore[union-attr]


def test_d19_7_hr_of_another_agency_neither_sees_nor_works_the_case(drive: Driver) -> None:
    """Written reasons and submissions go to the people the determination names, and to HR of that agency."""
    case = _against(drive)
    assert _sees(drive, "hr", case) and not _sees(drive, "nthhr", case)
    with drive.runtime.db.unit_of_work() as uow:  # an HR step of the case (as the section 59 outcome is)
        task = uow.session.scalar(select(HumanTask).where(HumanTask.instance_id == case, HumanTask.state == "open"))
        assert task is not None
        task.assignee_id, task.assigned_group, task.lane = None, "hr", "HR"
        uow.commit()
    assert [n for _, n in _inbox(drive, "hr")] == ["decide"]
    assert _inbox(drive, "nthhr") == []
    with drive.runtime.db.read() as s, pytest.raises(NotFound):
        queries.get_task(s, drive.user("nthhr"), task.id)


def test_d19_11_the_employee_is_never_her_own_former_manager(drive: Driver) -> None:
    transfer = {"former_position": "Port Planner", "former_manager": "employee", "former_start": "2024-07-01",
                "former_end": "2025-06-29"}
    with pytest.raises(Invalid) as err:
        drive.start("pay_progression", {**START, "transfer": transfer})
    assert err.value.problems[0].field == "transfer.former_manager"
