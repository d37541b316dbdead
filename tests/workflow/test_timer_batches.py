"""Issue #8: a claimed batch of timers fires in one transaction; a case that raises is set aside alone.

Real SQLite and PostgreSQL, a real failing script (a division by zero in the case's own data), and the
database's own statements observed through SQLAlchemy's engine events (no part of the engine is mocked).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.core.clock import CLOCK
from engine.core.models import AuditEvent
from engine.workflow.bundles import read_bundle
from engine.workflow.definitions import deploy
from engine.workflow.models import ProcessInstance, Timer
from engine.workflow.runtime import Runtime
from engine.workflow.timers import TimerPolicy, TimerService
from tests.web.api_helpers import listening
from tests.workflow.driver import Driver, deploy_file

# Wait a day, then divide by the case's `divisor`: a case started with divisor 0 fails when its timer fires.
DIVIDE = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="div_defs"
                  targetNamespace="http://ntps.example/tests">
  <bpmn:process id="wait_then_divide" name="Wait a day, then divide" isExecutable="true">
    <bpmn:startEvent id="v_start"><bpmn:outgoing>v1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:intermediateCatchEvent id="v_wait" name="A day">
      <bpmn:incoming>v1</bpmn:incoming><bpmn:outgoing>v2</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDuration>"P1D"</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:scriptTask id="v_divide" name="Divide"><bpmn:incoming>v2</bpmn:incoming><bpmn:outgoing>v3</bpmn:outgoing>
      <bpmn:script>share = 100 / divisor</bpmn:script></bpmn:scriptTask>
    <bpmn:endEvent id="v_end"><bpmn:incoming>v3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="v1" sourceRef="v_start" targetRef="v_wait" />
    <bpmn:sequenceFlow id="v2" sourceRef="v_wait" targetRef="v_divide" />
    <bpmn:sequenceFlow id="v3" sourceRef="v_divide" targetRef="v_end" />
  </bpmn:process>
</bpmn:definitions>
"""


@pytest.fixture
def dividing(org: Runtime) -> Runtime:
    with org.db.unit_of_work() as uow:
        deploy(uow.session, read_bundle({"wait_then_divide.bpmn": DIVIDE}, None), "test")
        uow.commit()
    return org


def _start(runtime: Runtime, divisors: list[int]) -> list[int]:
    user = Driver(runtime).user("hr")
    return [runtime.start(user, "wait_then_divide", {"divisor": d}) for d in divisors]


def _events(runtime: Runtime, kind: str) -> dict[int, int]:
    with runtime.db.read() as s:
        rows = s.execute(select(AuditEvent.instance_id, func.count()).where(AuditEvent.kind == kind)
                         .group_by(AuditEvent.instance_id)).all()
    return {instance: count for instance, count in rows}


@contextmanager
def _statements(runtime: Runtime) -> Iterator[list[str]]:
    """What the scheduler sends to the database meanwhile: COMMIT, and each statement's first word."""
    seen: list[str] = []

    def on_commit(_conn: Any) -> None:
        seen.append("COMMIT")

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.append(statement.split(None, 1)[0].upper())

    with listening(runtime, "commit", on_commit), listening(runtime, "before_cursor_execute", on_execute):
        yield seen


def test_issue_8_a_claimed_batch_fires_in_one_transaction_without_savepoints(dividing: Runtime) -> None:
    cases = _start(dividing, [1, 2, 4, 5, 10, 20, 25, 50])
    CLOCK.advance(timedelta(days=1, seconds=1))
    service = TimerService(dividing)
    claimed = service.claim()
    assert sorted(i for _t, i in claimed) == cases
    with _statements(dividing) as seen:
        assert service._fire(claimed) == len(cases)
    # One commit for the eight cases (before #8: one per case), no savepoint, and their audit events in
    # one INSERT; each case locked and its timer rows read by one statement each for the whole batch.
    assert seen.count("COMMIT") == 1
    assert seen.count("SAVEPOINT") == 0
    assert seen.count("INSERT") == 1
    assert seen.count("SELECT") == 2
    assert _events(dividing, "timer_fired") == {case: 1 for case in cases}
    with dividing.db.read() as s:
        shares = s.execute(select(ProcessInstance.id, ProcessInstance.data).where(ProcessInstance.id.in_(cases)))
        assert {case: data["share"] for case, data in shares} == {
            case: 100 / d for case, d in zip(cases, [1, 2, 4, 5, 10, 20, 25, 50], strict=True)}



def test_issue_8_on_sqlite_a_batch_commits_every_few_cases_so_a_waiting_writer_waits_little(dividing: Runtime) -> None:
    # SQLite has one write lock, which a web request may be waiting for: the batch lets it go every ten cases.
    # PostgreSQL locks rows, not the database: there the batch stays one transaction.
    cases = _start(dividing, [1] * 25)
    CLOCK.advance(timedelta(days=1, seconds=1))
    service = TimerService(dividing, TimerPolicy(sqlite_cases_per_transaction=10))
    claimed = service.claim()
    assert len(claimed) == 25
    with _statements(dividing) as seen:
        assert service._fire(claimed) == 25
    assert seen.count("COMMIT") == (1 if dividing.db.is_postgres else 3)
    assert seen.count("SAVEPOINT") == 0
    assert _events(dividing, "timer_fired") == {case: 1 for case in cases}
    assert _events(dividing, "completed") == {case: 1 for case in cases}

def test_issue_8_a_case_that_raises_is_set_aside_and_the_rest_of_its_batch_fires_once(dividing: Runtime) -> None:
    divisors = [1, 2, 4, 0, 5, 10]  # the fourth case divides by zero when its timer fires
    cases = _start(dividing, divisors)
    broken = cases[3]
    CLOCK.advance(timedelta(days=1, seconds=1))
    service = TimerService(dividing, TimerPolicy(max_attempts=2, base_backoff=timedelta(seconds=10)))
    with _statements(dividing) as seen:
        assert service.poll() == len(cases) - 1
    # The first pass (no savepoints) was rolled back whole; the second gave each case a savepoint and
    # committed the five that work together; the failure was recorded in a transaction of its own.
    assert seen.count("RELEASE") == len(cases) - 1  # a savepoint kept for each of the five
    assert _events(dividing, "timer_fired") == {case: 1 for case in cases if case != broken}
    # Nothing of the broken case's attempt is written: not its events (the ones before it kept theirs), not its state.
    assert _events(dividing, "completed") == {case: 1 for case in cases if case != broken}
    with dividing.db.read() as s:
        status = dict(s.execute(select(ProcessInstance.id, ProcessInstance.status)
                                .where(ProcessInstance.id.in_(cases))).all())
        timer = s.scalars(select(Timer).where(Timer.instance_id == broken)).one()
    assert status == {case: "running" if case == broken else "completed" for case in cases}
    assert timer.state == "claimed" and timer.attempts == 1 and "division by zero" in (timer.last_error or "")
    # It is retried after its back-off and, still failing, becomes an incident; the others never fire again.
    assert service.poll() == 0
    CLOCK.advance(timedelta(seconds=11))
    assert service.poll() == 0
    with dividing.db.read() as s:
        timer = s.scalars(select(Timer).where(Timer.instance_id == broken)).one()
    assert timer.state == "failed" and timer.attempts == 2
    assert _events(dividing, "incident") == {broken: 1}
    assert _events(dividing, "timer_fired") == {case: 1 for case in cases if case != broken}


def test_issue_8_two_schedulers_holding_timers_of_one_case_fire_each_timer_once(org: Runtime) -> None:
    """Claims are disjoint timer rows, but one case's two due timers may go to two schedulers' batches."""
    deploy_file(org, Path(__file__).parent / "timer_models" / "timers_demo.bpmn")
    case = Driver(org).start("timers_demo", {"employee": "employee", "work_due": "2026-03-10"})
    with org.db.read() as s:
        due = max(s.scalars(select(Timer.due_at).where(Timer.instance_id == case)))
    CLOCK.freeze(due + timedelta(seconds=1))  # the reminder and the deadline are both due
    first = TimerService(org, TimerPolicy(batch=1), worker="first")
    second = TimerService(org, TimerPolicy(batch=1), worker="second")
    a, b = first.claim(), second.claim()
    assert [i for _t, i in a] == [i for _t, i in b] == [case] and a != b
    fired = second._fire(b) + first._fire(a)  # the second locks the case first; the first finds it moved on
    with org.db.read() as s:
        elements = list(s.scalars(select(AuditEvent.detail["element"].as_string()).where(
            AuditEvent.instance_id == case, AuditEvent.kind == "timer_fired")))
    assert fired == len(elements) and elements.count("deadline") == 1
    with org.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Timer).where(
            Timer.instance_id == case, Timer.state == "claimed")) == 0
