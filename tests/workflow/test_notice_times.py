"""Notices state times in the organisation's time zone with its name, and dates as dates (issue 19: "Times
everywhere in the organisation's time zone with its name; dates as dates"): the reminder before a task falls due
and the escalation when it is late, for a task due on a date and for one due at a time of day."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.core.clock import CLOCK
from engine.core.config import Settings
from engine.core.db import Database
from engine.workflow.models import HumanTask, Notification
from engine.workflow.notify import due_words, local_day, local_time
from engine.workflow.runtime import Runtime
from engine.workflow.timers import TimerService
from tests.workflow.driver import Driver, deploy_file

DIAGRAM = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="nt_defs"
    targetNamespace="http://ntps.example/tests">
  <bpmn:process id="notice_times" name="Notice times" isExecutable="true">
    <bpmn:startEvent id="nt_start"><bpmn:outgoing>nt1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="work" name="Do the work">
      <bpmn:extensionElements>
        <spiffworkflow:properties>
          <spiffworkflow:property name="dueAt" value="due" />
          <spiffworkflow:property name="remindBefore" value="PT1H" />
          <spiffworkflow:property name="escalateTo" value="HR" />
        </spiffworkflow:properties>
      </bpmn:extensionElements>
      <bpmn:incoming>nt1</bpmn:incoming><bpmn:outgoing>nt2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="nt_end"><bpmn:incoming>nt2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="nt1" sourceRef="nt_start" targetRef="work" />
    <bpmn:sequenceFlow id="nt2" sourceRef="work" targetRef="nt_end" />
  </bpmn:process>
</bpmn:definitions>
"""


@pytest.fixture
def path(tmp_path: Path) -> Path:
    file = tmp_path / "notice_times.bpmn"
    file.write_text(DIAGRAM)
    return file


def _in_zone(org: Runtime, timezone: str) -> Iterator[Runtime]:
    settings: Settings = dataclasses.replace(org.settings, timezone=timezone)
    runtime = Runtime(Database(settings.database_url), settings)
    yield runtime
    runtime.db.dispose()


@pytest.fixture
def darwin(org: Runtime) -> Iterator[Runtime]:
    yield from _in_zone(org, "Australia/Darwin")


@pytest.fixture
def new_york(org: Runtime) -> Iterator[Runtime]:
    yield from _in_zone(org, "America/New_York")


def _notices(runtime: Runtime, case: int) -> list[tuple[str, str]]:
    with runtime.db.read() as s:
        rows = s.scalars(select(Notification).where(Notification.instance_id == case).order_by(Notification.id))
        return sorted({(n.subject, n.body) for n in rows})


def _remind_and_escalate(runtime: Runtime, path: Path, due: str) -> tuple[int, datetime]:
    deploy_file(runtime, path)
    case = Driver(runtime).start("notice_times", {"due": due})
    with runtime.db.read() as s:
        task = s.scalars(select(HumanTask).where(HumanTask.instance_id == case)).one()
        due_at = task.due_at
    assert due_at is not None
    service = TimerService(runtime)
    CLOCK.advance(due_at - CLOCK.now() - timedelta(minutes=30))  # within the hour before it is due: reminded
    service.remind_due()
    CLOCK.advance(timedelta(hours=1))  # late: escalated
    service.escalate_overdue()
    return case, due_at


def test_mp_l_a_task_due_on_a_date_is_due_by_the_end_of_that_local_day_in_every_notice(
        new_york: Runtime, path: Path) -> None:
    """A date means the end of that day where the organisation is: New York's 3 March ends at 05:00 UTC on the
    4th, which the escalation used to call 'due on 2027-03-04' (the UTC date)."""
    case, due_at = _remind_and_escalate(new_york, path, "2026-03-03")
    assert due_at == datetime(2026, 3, 4, 5, 0, tzinfo=UTC)
    texts = _notices(new_york, case)
    assert ("Reminder: Do the work is due by the end of 2026-03-03" in [s for s, _ in texts])
    escalation = [b for s, b in texts if s == "Overdue: Do the work"]
    assert escalation and all("was due by the end of 2026-03-03 " in b for b in escalation)
    assert not any("2026-03-04" in s + b for s, b in texts)


def test_mp_l_a_task_due_at_a_time_is_due_at_that_local_time_with_the_zone_name(darwin: Runtime, path: Path) -> None:
    """Due 16 hours after it opens (00:00 UTC on 2 March): 01:30 on 3 March in Darwin. The reminder used to say
    'by the end of 2026-03-03' (a day later than the truth) and the escalation 'due on 2026-03-02' (UTC)."""
    case, due_at = _remind_and_escalate(darwin, path, "PT16H")
    assert due_at == datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
    texts = _notices(darwin, case)
    subjects = [s for s, _ in texts]
    assert "Reminder: Do the work is due by 2026-03-03 01:30 ACST" in subjects
    escalation = [b for s, b in texts if s == "Overdue: Do the work"]
    assert escalation and all("was due by 2026-03-03 01:30 ACST " in b for b in escalation)
    assert not any(word in s + b for s, b in texts for word in ("UTC", "+00:00", "2026-03-02"))


def test_notice_time_words() -> None:
    """The words notices use, on their own: a due date is the end of a local day; a due time has the zone's name."""
    end_of_day = datetime(2027, 3, 3, 14, 30, tzinfo=UTC)  # 00:00 on 4 March in Darwin: the end of the 3rd
    assert due_words(end_of_day, "Australia/Darwin") == "by the end of 2027-03-03"
    assert local_day(end_of_day, "Australia/Darwin") == "2027-03-03"
    assert local_time(datetime(2027, 2, 28, 23, 30, tzinfo=UTC), "Australia/Darwin") == "2027-03-01 09:00 ACST"
    assert due_words(datetime(2027, 7, 1, 3, 0, tzinfo=UTC), "Australia/Sydney") == "by 2027-07-01 13:00 AEST"
    assert due_words(datetime(2027, 1, 1, 3, 0), "Australia/Sydney") == "by 2027-01-01 14:00 AEDT"  # naive is UTC
