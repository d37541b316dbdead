"""Timers and escalations: the database-backed timer table, the poller, exactly-once firing, re-timing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.core.clock import CLOCK
from engine.core.models import AuditEvent
from engine.workflow.bundles import read_bundle
from engine.workflow.models import HumanTask, Notification, ProcessInstance, Timer
from engine.workflow.runtime import Runtime
from engine.workflow.timers import TimerPolicy, TimerService
from tests.workflow.driver import Driver, deploy_file

MODELS = Path(__file__).parent / "timer_models"
DATA = {"employee": "employee", "work_due": "2026-03-10"}
DUE = datetime(2026, 3, 9, 23, 30, tzinfo=UTC)  # 09:00 on 10 March in Darwin (+09:30)


@pytest.fixture
def timers(org: Runtime) -> Runtime:
    deploy_file(org, MODELS / "timers_demo.bpmn")
    return org


def _rows(runtime: Runtime, case: int) -> list[Timer]:
    with runtime.db.read() as s:
        return list(s.scalars(select(Timer).where(Timer.instance_id == case).order_by(Timer.id)))


def _events(runtime: Runtime, case: int, kind: str) -> list[dict[str, Any]]:
    with runtime.db.read() as s:
        return list(s.scalars(select(AuditEvent.detail).where(AuditEvent.instance_id == case,
                                                              AuditEvent.kind == kind).order_by(AuditEvent.id)))


def test_waiting_timers_are_rows_written_with_the_workflow(timers: Runtime) -> None:
    case = Driver(timers).start("timers_demo", DATA)
    rows = {r.element: r for r in _rows(timers, case)}
    assert set(rows) == {"reminder", "deadline"}
    assert rows["deadline"].kind == "date" and rows["deadline"].state == "waiting"
    assert rows["deadline"].due_at == DUE + timedelta(days=28)
    assert rows["reminder"].kind == "cycle"


def test_nothing_fires_early_and_the_poller_loads_nothing_when_nothing_is_due(timers: Runtime) -> None:
    case = Driver(timers).start("timers_demo", DATA)
    CLOCK.freeze(DUE - timedelta(seconds=1))
    assert TimerService(timers).poll() == 0
    assert {r.state for r in _rows(timers, case)} == {"waiting"}


def test_boundary_timer_rows_close_when_the_task_completes_first(timers: Runtime) -> None:
    d = Driver(timers)
    case = d.start("timers_demo", DATA)
    d.complete(case, "work", "hr", {})
    rows = {r.element: r for r in _rows(timers, case)}
    assert rows["deadline"].state == "closed" and rows["reminder"].state == "closed"
    assert rows["cool_off"].state == "waiting" and rows["cool_off"].kind == "duration"
    assert rows["cool_off"].due_at == CLOCK.now() + timedelta(days=14)
    CLOCK.advance(timedelta(days=60))
    TimerService(timers).poll()
    assert _events(timers, case, "timer_fired") == [
        {"element": "cool_off", "name": "Cooling-off period", "due_at": rows["cool_off"].due_at.isoformat()}]
    assert d.open_tasks(case) == ["confirm"]


def test_interrupting_deadline_fires_once_and_cancels_the_task(timers: Runtime) -> None:
    d = Driver(timers)
    case = d.start("timers_demo", DATA)
    CLOCK.freeze(DUE + timedelta(days=28, seconds=1))
    service = TimerService(timers)
    service.poll()
    service.poll()
    fired = [e["element"] for e in _events(timers, case, "timer_fired")]
    assert fired.count("deadline") == 1
    row = d.instance(case)
    assert row.status == "completed" and row.data["outcome"] == "lapsed"
    assert d.open_tasks(case) == []


def test_cycle_timer_fires_each_cycle_then_stops(timers: Runtime) -> None:
    d = Driver(timers)
    case = d.start("timers_demo", DATA)
    service = TimerService(timers)
    for week in range(4):
        CLOCK.freeze(DUE + timedelta(days=7 * week, seconds=1))
        service.poll()
    fired = [e["element"] for e in _events(timers, case, "timer_fired")]
    assert fired.count("reminder") == 2  # R2: two cycles, and never a third
    assert d.open_tasks(case) == ["work"]


def test_catch_up_fires_everything_that_fell_due_while_nothing_ran_once_each(timers: Runtime) -> None:
    d = Driver(timers)
    cases = [d.start("timers_demo", {**DATA, "work_due": f"2026-03-{10 + i}"}) for i in range(5)]
    CLOCK.advance(timedelta(days=365))  # the scheduler was down for a year
    TimerService(timers).poll()
    TimerService(timers).poll()
    for case in cases:
        fired = [e["element"] for e in _events(timers, case, "timer_fired")]
        assert fired.count("deadline") == 1
        assert d.instance(case).status == "completed"


def test_a_claim_whose_scheduler_died_is_claimable_after_the_lease(timers: Runtime) -> None:
    d = Driver(timers)
    case = d.start("timers_demo", DATA)
    CLOCK.freeze(DUE + timedelta(days=29))
    dead = TimerService(timers, TimerPolicy(lease=timedelta(seconds=60)), worker="dead")
    claimed = dead.claim()  # ... and then the process is killed before it fires anything
    assert claimed
    alive = TimerService(timers, worker="alive")
    assert alive.poll() == 0  # still leased to the dead scheduler
    CLOCK.advance(timedelta(seconds=61))
    alive.poll()
    assert [e["element"] for e in _events(timers, case, "timer_fired")].count("deadline") == 1


def test_a_failing_fire_is_retried_with_backoff_then_becomes_an_incident(timers: Runtime,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    d = Driver(timers)
    case = d.start("timers_demo", DATA)
    CLOCK.freeze(DUE + timedelta(days=29))

    def broken(instance_id: int) -> int:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(timers, "fire_timers", broken)
    policy = TimerPolicy(max_attempts=3, base_backoff=timedelta(seconds=10))
    service = TimerService(timers, policy)
    service.poll()
    row = next(r for r in _rows(timers, case) if r.element == "deadline")
    assert row.attempts == 1 and row.state == "claimed" and "disk on fire" in (row.last_error or "")
    assert service.poll() == 0  # backing off: not retried yet
    for _ in range(2):
        CLOCK.advance(timedelta(seconds=41))
        service.poll()
    row = next(r for r in _rows(timers, case) if r.element == "deadline")
    assert row.state == "failed" and row.attempts == 3
    assert _events(timers, case, "incident")[0]["error"].startswith("RuntimeError: disk on fire")
    monkeypatch.undo()
    CLOCK.advance(timedelta(days=1))
    service.poll()
    assert [e["element"] for e in _events(timers, case, "timer_fired")].count("deadline") == 0  # failed stays put


def test_d19_9d_retiming_moves_a_waiting_timer_and_says_why(timers: Runtime) -> None:
    d = Driver(timers)
    case = d.start("timers_demo", DATA)
    timers.update_case_data("hr", case, {"work_due": "2026-03-24"}, "14 days of LWOP postpone the date")
    rows = {r.element: r for r in _rows(timers, case) if r.state == "waiting"}
    assert rows["deadline"].due_at == DUE + timedelta(days=28 + 14)
    (event,) = _events(timers, case, "retimed")
    assert event["reason"] == "14 days of LWOP postpone the date"
    assert event["before"] == {"work_due": "2026-03-10"} and event["after"] == {"work_due": "2026-03-24"}
    with timers.db.read() as s:
        task = s.scalars(select(HumanTask).where(HumanTask.instance_id == case, HumanTask.name == "work")).one()
    assert task.due_at is not None and task.due_at.date().isoformat() == "2026-03-24"  # end of 24 March, Darwin


def test_overdue_task_shows_overdue_and_is_escalated_once(timers: Runtime) -> None:
    d = Driver(timers)
    case = d.start("timers_demo", DATA)
    from engine.workflow.queries import task_dict

    with timers.db.read() as s:
        task = s.scalars(select(HumanTask).where(HumanTask.instance_id == case, HumanTask.name == "work")).one()
        assert task_dict(task)["overdue"] is False
    CLOCK.freeze(datetime(2026, 3, 11, 0, 0, tzinfo=UTC))  # end of 10 March in Darwin has passed
    service = TimerService(timers)
    service.poll()
    service.poll()
    with timers.db.read() as s:
        task = s.scalars(select(HumanTask).where(HumanTask.instance_id == case, HumanTask.name == "work")).one()
        assert task_dict(task)["overdue"] is True
        told = sorted(s.scalars(select(func.count()).select_from(Notification).group_by(Notification.person_id)))
        people = {p for p in s.scalars(select(Notification.person_id))}
    assert told == [1] * len(people)  # each person told once
    assert len(_events(timers, case, "escalated")) == 1
    from engine.workflow.assignment import person_by_username

    with timers.db.read() as s:
        expected = {person_by_username(s, u).id for u in ("hr", "manager")}  # type: ignore[union-attr]
    assert expected <= people


@pytest.fixture
def smtp() -> Iterator[tuple[str, list[Any]]]:
    from aiosmtpd.controller import Controller

    received: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(envelope)
            return "250 OK"

    import socket

    with socket.socket() as probe:  # a free loopback port (aiosmtpd cannot start on port 0)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{controller.port}", received
    finally:
        controller.stop()


def test_d19_3_2_escalation_mail_reaches_a_real_smtp_server(timers: Runtime, smtp: tuple[str, list[Any]]) -> None:
    from dataclasses import replace

    url, received = smtp
    runtime = Runtime(timers.db, replace(timers.settings, smtp_url=url))
    d = Driver(runtime)
    d.start("timers_demo", DATA)
    CLOCK.freeze(datetime(2026, 3, 11, 0, 0, tzinfo=UTC))
    TimerService(runtime).poll()
    recipients = {r for e in received for r in e.rcpt_tos}
    assert {"manager@demo.ntps.example", "hr@demo.ntps.example"} <= recipients
    assert all(b"Overdue: Do the work" in e.content for e in received)
    with runtime.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Notification).where(Notification.emailed.is_(False))) == 0


def test_cancelling_a_case_closes_its_timers(timers: Runtime) -> None:
    d = Driver(timers)
    case = d.start("timers_demo", DATA)
    timers.cancel(d.user("hr"), case, "withdrawn")
    assert {r.state for r in _rows(timers, case)} == {"closed"}
    with timers.db.read() as s:
        assert s.get(ProcessInstance, case).status == "cancelled"  # type: ignore[union-attr]


@pytest.mark.parametrize(("expression", "complaint"), [
    ('"PT4W"', "P28D"),
    ("P28D", "unquoted literal"),
    ("2026-05-01T09:00:00", "unquoted literal"),
    ('"P2X"', "not a valid ISO 8601"),
    ("__import__('os').getcwd()", "not allowed"),
])
def test_timer_expressions_are_checked_at_deploy_naming_the_element(expression: str, complaint: str) -> None:
    from engine.core.errors import Invalid
    from engine.workflow.parsing import parse_bundle

    text = (MODELS / "wait_a_day.bpmn").read_text().replace('"P1D"', expression.replace("<", "&lt;"))
    with pytest.raises(Invalid) as err:
        parse_bundle(read_bundle({"bad.bpmn": text.encode()}, None))
    problems = [p for p in err.value.problems if p.element == "w_wait"]
    assert problems and complaint in problems[0].message, err.value.problems


def _deploy_due_at(runtime: Runtime) -> None:
    deploy_file(runtime, Path(__file__).parents[2] / "benchmarks" / "due_at.bpmn")


def test_a_timer_falling_due_between_polls_fires_on_time_not_at_the_next_poll(org: Runtime) -> None:
    _deploy_due_at(org)
    CLOCK.reset()  # the wall clock: the scheduler's tick really waits
    due = CLOCK.now() + timedelta(seconds=0.4)
    case = org.start(None, "bench_due_at", {"due": due.isoformat()})
    started, ticked = time.monotonic(), CLOCK.now()
    assert TimerService(org).tick() == 1
    assert time.monotonic() - started < org.settings.timer_poll_seconds  # done before the next poll starts
    with org.db.read() as s:
        fired_at = s.scalars(select(AuditEvent.at).where(AuditEvent.instance_id == case,
                                                         AuditEvent.kind == "timer_fired")).one()
    # On time (or, on a machine so busy that the tick began after the due time, at once); a poll alone would
    # have left it to the next one, 0.6 s late.
    assert due <= fired_at < max(due, ticked) + timedelta(seconds=0.25)


def test_a_timer_due_after_the_tick_is_left_to_the_next_poll(org: Runtime) -> None:
    _deploy_due_at(org)
    CLOCK.reset()
    interval = org.settings.timer_poll_seconds
    case = org.start(None, "bench_due_at", {"due": (CLOCK.now() + timedelta(seconds=1.5 * interval)).isoformat()})
    started = time.monotonic()
    assert TimerService(org).tick() == 0
    assert time.monotonic() - started < interval  # it did not wait for a timer beyond its window
    assert {r.state for r in _rows(org, case)} == {"waiting"}
