"""D19-2, D19-3.1, D19-3.3: the performance agreement process, and the annual cycle started from it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from engine.core.clock import CLOCK
from engine.core.errors import Conflict, Forbidden, Invalid, NotFound
from engine.core.models import AuditEvent
from engine.people.models import Person
from engine.people.users import PersonInput, create_user, save_person
from engine.policies.pay_progression import services as d19
from engine.workflow.models import Notification, ProcessInstance
from engine.workflow.runtime import Runtime
from engine.workflow.timers import TimerService
from tests.workflow.driver import Driver

AGREEMENT = {"start": "2025-07-01", "end": "2026-07-01", "targets": ["Deliver the berth booking system",
                                                                     "Cut invoice errors by a third"],
             "supervisor": "supervisor", "approver": "manager"}


@pytest.fixture(params=[False, True], ids=["straight", "save-restore"])
def drive(org: Runtime, request: pytest.FixtureRequest) -> Iterator[Driver]:
    driver = Driver(org, restore=request.param)
    yield driver
    driver.runtime.db.dispose()


def _new_starter(d: Driver, commenced: str = "2026-01-05") -> None:
    with d.runtime.db.unit_of_work() as uow:
        save_person(uow.session, PersonInput(
            username="newstarter", name="Nia Starter", email="nia@demo.ntps.example", classification="SPAO1",
            pay_point="SPAO1-1", organisation="DPC", supervisor="supervisor", commenced_on=commenced))
        create_user(uow.session, "newstarter", ["staff"], "a-long-enough-password")
        uow.commit()


def _told(d: Driver, case: int) -> set[str]:
    with d.runtime.db.read() as s:
        return set(s.scalars(select(Person.username).join(Notification, Notification.person_id == Person.id)
                             .where(Notification.instance_id == case)))


def test_d19_3_1_hr_records_an_agreement_and_the_cycle_starts_from_it(drive: Driver) -> None:
    case = drive.start("performance_agreement", {"employee": "employee", "agreement": AGREEMENT})
    assert drive.open_tasks(case) == ["record_agreement"]
    task = drive.open_task(case, "record_agreement")
    assert task.assigned_group == "hr" and task.clause == "D19-3.1"
    with pytest.raises(Conflict, match="not recorded as agreed"):  # not yet: HR has not recorded it
        d19.start_cycle(drive.runtime, drive.user("hr"), case)
    drive.complete(case, "record_agreement", "hr", {"agreement": AGREEMENT})
    with drive.runtime.db.read() as s:  # what the record page offers is what the service allows (issue 17)
        row = s.get_one(ProcessInstance, case)
        assert d19.may_start_cycle_from(s, drive.user("hr"), row)
        assert not d19.may_start_cycle_from(s, drive.user("employee"), row)
        assert not d19.may_start_cycle_from(s, drive.user("engineer"), row)
    with pytest.raises((Forbidden, NotFound)):
        d19.start_cycle(drive.runtime, drive.user("employee"), case)
    row = drive.instance(case)
    assert row.status == "completed" and row.data["outcome"] == "agreed"
    assert row.data["assessment_date"] == "2026-07-01" and row.data["invite_due"] == "2026-05-01"
    cycle = d19.start_cycle(drive.runtime, drive.user("hr"), case)
    data = drive.instance(cycle).data
    assert (data["agreement_start"], data["assessment_date"], data["agreement_case"]) == ("2025-07-01", "2026-07-01",
                                                                                         case)
    assert drive.open_tasks(cycle) == ["invite_submission"]
    with pytest.raises(Conflict):  # one running cycle per employee
        d19.start_cycle(drive.runtime, drive.user("hr"), case)


def test_d19_3_1_an_agreement_must_be_another_employees_recorded_one(drive: Driver) -> None:
    case = drive.start("performance_agreement", {"employee": "employee", "agreement": AGREEMENT})
    with pytest.raises(Invalid) as err:  # not yet recorded
        drive.start("pay_progression", {"employee": "employee", "agreement_case": case})
    assert err.value.problems[0].field == "agreement_case"
    drive.complete(case, "record_agreement", "hr", {"agreement": AGREEMENT})
    with pytest.raises(Invalid) as err:
        drive.start("pay_progression", {"employee": "engineer", "agreement_case": case})
    assert err.value.problems[0].message == "this agreement is another employee's"


def test_d19_3_1_a_bad_agreement_is_refused_field_by_field(drive: Driver) -> None:
    bad = {**AGREEMENT, "end": "2025-06-01", "targets": ["  "], "approver": "nobody"}
    with pytest.raises(Invalid) as err:
        drive.start("performance_agreement", {"employee": "employee", "agreement": bad})
    assert {p.field for p in err.value.problems} == {"agreement.end", "agreement.targets", "agreement.approver"}
    with drive.runtime.db.read() as s:
        assert s.scalars(select(ProcessInstance)).first() is None


def test_d19_1_an_agreement_for_another_classification_is_refused(drive: Driver) -> None:
    with pytest.raises(Invalid) as err:
        drive.start("performance_agreement", {"employee": "clerk"})
    assert "cl. 1" in err.value.problems[0].message and "AO6" in err.value.problems[0].message


def test_d19_3_3_a_new_starters_agreement_is_due_two_months_after_commencement(drive: Driver) -> None:
    _new_starter(drive)
    case = drive.start("performance_agreement", {"employee": "newstarter"})
    task = drive.open_task(case, "set_up_agreement")
    assert task.assignee is not None and task.assignee.username == "supervisor" and task.clause == "D19-3.3"
    assert drive.instance(case).data["setup_due"] == "2026-03-05"
    assert task.due_at == datetime(2026, 3, 5, 14, 30, tzinfo=UTC)  # the end of 5 March in Darwin
    # The set-up form starts from the people records: the supervisor and the manager who approves.
    assert drive.instance(case).data["agreement"] == {"supervisor": "supervisor", "approver": "manager"}
    CLOCK.freeze(datetime(2026, 3, 5, 15, 0, tzinfo=UTC))
    TimerService(drive.runtime).poll()
    assert {"supervisor", "manager", "hr"} <= _told(drive, case)
    with drive.runtime.db.read() as s:
        assert s.scalars(select(AuditEvent.kind).where(AuditEvent.instance_id == case,
                                                       AuditEvent.kind == "escalated")).all() == ["escalated"]
    drive.complete(case, "set_up_agreement", "supervisor", {"agreement": {
        "start": "2026-03-09", "targets": ["Learn the berth system"], "supervisor": "supervisor",
        "approver": "manager"}})
    data = drive.instance(case).data
    assert data["agreement"]["end"] == "2027-03-09"  # D19-2: twelve months, ending on the assessment date
    drive.complete(case, "record_agreement", "hr", {"agreement": data["agreement"]})
    assert drive.instance(case).data["outcome"] == "agreed"


def test_d19_3_3_staff_employed_before_commencement_have_two_months_from_it(drive: Driver) -> None:
    from engine.policies.pay_progression import settings as d19_settings

    with drive.runtime.db.unit_of_work() as uow:
        d19_settings.save(uow.session, "admin", {"d19.commencement_date": "2026-02-16"})
        uow.commit()
    case = drive.start("performance_agreement", {"employee": "employee"})  # commenced 2024-01-15
    assert drive.instance(case).data["setup_due"] == "2026-04-16"


def test_d19_3_1_the_diagrams_rule_refuses_an_agreement_ending_before_it_starts(drive: Driver) -> None:
    _new_starter(drive)
    case = drive.start("performance_agreement", {"employee": "newstarter"})
    task = drive.open_task(case, "set_up_agreement")
    bad: dict[str, Any] = {"agreement": {"start": "2026-03-09", "end": "2026-03-01", "targets": ["x"],
                                         "supervisor": "supervisor", "approver": "manager"}}
    with pytest.raises(Invalid) as err:
        drive.runtime.complete_task(drive.user("supervisor"), task.id, bad)
    assert "cl. 3(1): the agreement must end after it starts" in err.value.problems[0].message
    bad["agreement"].update(end="2027-03-09", approver="nobody")
    with pytest.raises(Invalid) as err:
        drive.runtime.complete_task(drive.user("supervisor"), task.id, bad)
    assert "no person with the username nobody (approver)" in err.value.problems[0].message
    assert drive.open_tasks(case) == ["set_up_agreement"]
