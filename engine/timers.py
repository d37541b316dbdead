"""The timer service: APScheduler runs one short poll that claims due timer rows and fires them.

The database is the source of truth. Each WAITING timer task has a row (written with the workflow, in
the same transaction); the poll claims due rows with `FOR UPDATE SKIP LOCKED` on PostgreSQL or a
conditional UPDATE on SQLite, so several schedulers fire each timer once. A claim is a lease: a
scheduler that dies mid-fire leaves the row claimable again when the lease runs out. A failing fire is
retried with back-off; after the last attempt the row becomes a failed timer, an incident for admins.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from engine.assignment import resolve_lane
from engine.clock import CLOCK
from engine.models import HumanTask, ProcessInstance, Timer
from engine.notify import group_members, notify, send_pending
from engine.runtime import Runtime, audit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TimerPolicy:
    """How claims and retries behave."""

    batch: int = 50
    lease: timedelta = timedelta(seconds=60)
    max_attempts: int = 5
    base_backoff: timedelta = timedelta(seconds=5)

    def backoff(self, attempts: int) -> timedelta:
        """Exponential back-off: 5 s, 10 s, 20 s, ..."""
        return self.base_backoff * int(2 ** max(0, attempts - 1))


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


class TimerService:
    """Claims due timers, fires them through the runtime, escalates overdue tasks, sends mail."""

    def __init__(self, runtime: Runtime, policy: TimerPolicy | None = None, worker: str | None = None) -> None:
        self.runtime = runtime
        self.policy = policy or TimerPolicy()
        self.worker = worker or _worker_id()

    def poll(self) -> int:
        """One tick: fire what is due (batch after batch), escalate, send mail. Returns timers fired."""
        if self.runtime.settings.demo_mode:
            from engine import demo_clock

            demo_clock.sync(self.runtime.db)
        fired = 0
        while True:
            claimed = self.claim()
            if not claimed:
                break
            fired += self._fire(claimed)
            if len(claimed) < self.policy.batch:
                break
        self.escalate_overdue()
        send_pending(self.runtime.db, self.runtime.settings)
        return fired

    # ------------------------------------------------------------------ claiming

    def _due_clause(self) -> Any:
        now = CLOCK.now()
        # SpiffWorkflow fires only when due < now (strictly), so claim exactly those.
        return or_(and_(Timer.state == "waiting", Timer.due_at < now),
                   and_(Timer.state == "claimed", Timer.claimed_until < now))

    def claim(self) -> list[tuple[int, int]]:
        """Claim up to `batch` due timers in one statement: [(timer id, instance id)].

        PostgreSQL: the subquery locks due rows with FOR UPDATE SKIP LOCKED, so concurrent schedulers
        take disjoint rows without waiting. SQLite: the write transaction (BEGIN IMMEDIATE) already
        serialises schedulers, and the outer WHERE repeats the due condition as a guard.
        """
        until = CLOCK.now() + self.policy.lease
        due = select(Timer.id).where(self._due_clause()).order_by(Timer.due_at).limit(self.policy.batch)
        if self.runtime.db.is_postgres:
            due = due.with_for_update(skip_locked=True)
        stmt = (update(Timer).where(Timer.id.in_(due.scalar_subquery()), self._due_clause())
                .values(state="claimed", claimed_until=until, claimed_by=self.worker, attempts=Timer.attempts + 1)
                .returning(Timer.id, Timer.instance_id)
                .execution_options(synchronize_session=False))
        with self.runtime.db.unit_of_work() as uow:
            claimed = [(row[0], row[1]) for row in uow.session.execute(stmt).all()]
            uow.commit()
        return claimed

    # ------------------------------------------------------------------ firing

    def _fire(self, claimed: list[tuple[int, int]]) -> int:
        fired = 0
        by_instance: dict[int, list[int]] = {}
        for timer_id, instance_id in claimed:
            by_instance.setdefault(instance_id, []).append(timer_id)
        for instance_id, timer_ids in by_instance.items():
            try:
                fired += self.runtime.fire_timers(instance_id)
            except Exception as exc:  # any failure is retried, then becomes an incident; never a silent stall
                log.exception("firing timers of case %s failed", instance_id)
                self._failed(timer_ids, exc)
        return fired

    def _failed(self, timer_ids: list[int], exc: Exception) -> None:
        with self.runtime.db.unit_of_work() as uow:
            for timer in uow.session.scalars(select(Timer).where(Timer.id.in_(timer_ids))):
                timer.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                if timer.attempts >= self.policy.max_attempts:
                    timer.state = "failed"
                    timer.claimed_until = None
                    audit(uow.session, timer.instance_id, "timer", "incident", element=timer.element,
                          name=timer.name, attempts=timer.attempts, error=timer.last_error)
                else:  # stays claimed until the back-off ends, then is claimable again
                    timer.claimed_until = CLOCK.now() + self.policy.backoff(timer.attempts)
            uow.commit()

    # ------------------------------------------------------------------ escalation

    def escalate_overdue(self) -> int:
        """Tell the people a late task's `escalateTo` lanes name, once per task, and mark it escalated."""
        now = CLOCK.now()
        count = 0
        with self.runtime.db.unit_of_work() as uow:
            s = uow.session
            late = list(s.scalars(select(HumanTask).where(
                HumanTask.state == "open", HumanTask.due_at < now, HumanTask.escalated_at.is_(None))
                .order_by(HumanTask.due_at).limit(200)))
            for task in late:
                task.escalated_at = now
                count += notify(s, self._escalation_people(s, task), f"Overdue: {task.title}",
                                _escalation_body(task), task.instance_id)
                audit(s, task.instance_id, "timer", "escalated", task=task.name, title=task.title,
                      clause=task.clause, due_at=task.due_at.isoformat() if task.due_at else None)
            uow.commit()
        return count

    def _escalation_people(self, s: Session, task: HumanTask) -> list[Any]:
        instance: ProcessInstance = task.instance
        lanes = [lane.strip() for lane in (task_escalate_to(self.runtime, task) or "").split(",") if lane.strip()]
        people = [task.assignee] if task.assignee is not None else []
        if task.assigned_group:
            people += group_members(s, task.assigned_group)
        for lane in lanes:
            a = resolve_lane(s, lane, instance.data or {}, instance.started_by)
            if a.person is not None:
                people.append(a.person)
            if a.group:
                people += group_members(s, a.group)
        return people


def failed_timers(session: Session) -> list[Timer]:
    """Timers that used up their attempts: the incidents admins see."""
    return list(session.scalars(select(Timer).where(Timer.state == "failed").order_by(Timer.id)))


def retry_failed(runtime: Runtime, timer_id: int, actor: str) -> None:
    """Give a failed timer a fresh set of attempts (after its cause was fixed); audited."""
    with runtime.db.unit_of_work() as uow:
        timer = uow.session.get(Timer, timer_id)
        if timer is None or timer.state != "failed":
            from engine.errors import Conflict

            raise Conflict("that timer is not a failed timer")
        timer.state, timer.attempts, timer.claimed_until = "waiting", 0, None
        audit(uow.session, timer.instance_id, actor, "incident_retried", element=timer.element,
              last_error=timer.last_error)
        uow.commit()


def task_escalate_to(runtime: Runtime, task: HumanTask) -> str | None:
    """The `escalateTo` property of the task's BPMN element (comma-separated lanes)."""
    from engine.definitions import SPECS

    parsed = SPECS.get(task.instance.definition)
    for spec in [parsed.spec, *parsed.subprocess_specs.values()]:
        ts = spec.task_specs.get(task.name) if spec is not None else None
        if ts is not None:
            props = (getattr(ts, "extensions", None) or {}).get("properties", {})
            value = props.get("escalateTo")
            return str(value) if value else None
    return None


def _escalation_body(task: HumanTask) -> str:
    due = task.due_at.date().isoformat() if task.due_at else "?"
    who = task.assignee.name if task.assignee else f"the {task.assigned_group} group"
    clause = f" ({task.clause})" if task.clause else ""
    return (f"The task \"{task.title}\"{clause} in case #{task.instance_id} ({task.instance.title}) was due on "
            f"{due} and is still open with {who}.")


def run_scheduler_forever(runtime: Runtime) -> None:
    """Block, polling every NTPSWF_TIMER_POLL_SECONDS (catch-up happens on the first poll)."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    service = TimerService(runtime)
    scheduler = BlockingScheduler(timezone="UTC")
    scheduler.add_job(service.poll, "interval", seconds=runtime.settings.timer_poll_seconds, max_instances=1,
                      coalesce=True, next_run_time=CLOCK.now(), id="timer-poll")
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()
