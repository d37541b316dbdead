"""The timer service: APScheduler runs one short poll that claims due timer rows and fires them.

The database is the source of truth. Each WAITING timer task has a row (written with the workflow, in
the same transaction); the poll claims due rows with `FOR UPDATE SKIP LOCKED` on PostgreSQL or a
conditional UPDATE on SQLite, so several schedulers fire each timer once. A claim is a lease: a
scheduler that dies mid-fire leaves the row claimable again when the lease runs out. A failing fire is
retried with back-off; after the last attempt the row becomes a failed timer, an incident for admins.

A claimed batch is fired in ONE transaction (issue #8): its cases are locked up front in id order (so two
schedulers never deadlock on them), their timer rows are read in one query, their audit events are
written in one INSERT, and one commit covers them all. Savepoints cost a quarter of the throughput, so the
first pass has none: if a case raises, the batch is rolled back whole and fired again with a SAVEPOINT per
case, so that the failing case is rolled back alone (and retried, then an incident, as before) while the
others commit. A batch that fails as a whole (its lock, its commit) is fired case by case, one transaction
each. A scheduler that dies mid-batch committed nothing of it: its claims are leases that run out. On
SQLite, whose one write lock a web request may be waiting for, a batch fires in transactions of a few cases.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from engine.core.audit import audit, write_pending
from engine.core.clock import CLOCK
from engine.people.models import Someone
from engine.workflow.assignment import resolve_lane
from engine.workflow.models import HumanTask, ProcessInstance, Timer
from engine.workflow.notify import due_words, group_members, notify, send_pending
from engine.workflow.runtime import FIRE_IN_BATCH, Runtime

log = logging.getLogger(__name__)


#: A tick waits for timers falling due during the first WAKE_SHARE of the poll interval (the scheduler starts the
#: next tick at the interval and must find this one finished), and wakes WAKE_MARGIN_S after the due time:
#: SpiffWorkflow fires a timer only once its time is strictly past.
WAKE_SHARE = 0.8
WAKE_MARGIN_S = 0.002
_NEXT_DUE = select(func.min(Timer.due_at)).where(Timer.state == "waiting", Timer.due_at >= bindparam("now"))


@dataclass(frozen=True)
class TimerPolicy:
    """How claims and retries behave."""

    batch: int = 50
    #: SQLite has one writer: a claimed batch fires in transactions of at most this many cases, so that a web
    #: request waiting for the write lock waits for a few cases (about 20 ms), not for the whole batch.
    sqlite_cases_per_transaction: int = 10
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
            from engine.core import demo_clock

            demo_clock.sync(self.runtime.db)
        fired = self._fire_due()
        self.remind_due()
        self.escalate_overdue()
        send_pending(self.runtime.db, self.runtime.settings)
        return fired

    def tick(self) -> int:
        """What the scheduler runs every poll interval: a poll, then, until shortly before the next one, each
        timer that falls due in between is fired when it falls due instead of at the next poll.

        Every waiting timer's due time is in the database, so one indexed query says when to wake: timers fire
        within milliseconds of their time, not up to a poll interval late, and an idle tick costs one query
        more. Returns the timers fired."""
        ends = time.monotonic() + WAKE_SHARE * self.runtime.settings.timer_poll_seconds
        fired = self.poll()
        while True:
            due = self.next_due()
            if due is None:
                break
            wait = max(0.0, (due - CLOCK.now()).total_seconds()) + WAKE_MARGIN_S
            if time.monotonic() + wait >= ends:
                break  # the next poll takes it
            time.sleep(wait)
            fired += self._fire_due()
        return fired

    def next_due(self) -> datetime | None:
        """When the next waiting timer falls due (not yet due ones only: due ones are the poll's)."""
        with self.runtime.db.read() as s:
            return s.execute(_NEXT_DUE, {"now": CLOCK.now()}).scalar()

    def _fire_due(self) -> int:
        fired = 0
        while True:
            claimed = self.claim()
            if not claimed:
                break
            fired += self._fire(claimed)
            if len(claimed) < self.policy.batch:
                break
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
        ids: Any = due.scalar_subquery()
        if self.runtime.db.is_postgres:
            # A CTE with FOR UPDATE is evaluated once: as an IN subquery PostgreSQL may rescan it and claim
            # more than `batch` rows (seen with batch=1).
            locked = due.with_for_update(skip_locked=True).cte("due")
            ids = select(locked.c.id).scalar_subquery()
        stmt = (update(Timer).where(Timer.id.in_(ids), self._due_clause())
                .values(state="claimed", claimed_until=until, claimed_by=self.worker, attempts=Timer.attempts + 1)
                .returning(Timer.id, Timer.instance_id)
                .execution_options(synchronize_session=False))
        with self.runtime.db.unit_of_work() as uow:
            claimed = [(row[0], row[1]) for row in uow.session.execute(stmt).all()]
            uow.commit()
        return claimed

    # ------------------------------------------------------------------ firing

    def _fire(self, claimed: list[tuple[int, int]]) -> int:
        by_instance: dict[int, list[int]] = {}
        for timer_id, instance_id in claimed:
            by_instance.setdefault(instance_id, []).append(timer_id)
        ids = sorted(by_instance)
        step = max(1, len(ids) if self.runtime.db.is_postgres else self.policy.sqlite_cases_per_transaction)
        return sum(self._fire_cases(ids[at:at + step], by_instance) for at in range(0, len(ids), step))

    def _fire_cases(self, ids: list[int], by_instance: dict[int, list[int]]) -> int:
        """Fire these cases' timers in one transaction (see the module docstring); returns timers fired."""
        try:
            try:
                fired, failures = self._fire_batch(ids, savepoints=False)
            except _CaseFailed as failed:  # rolled back whole; again, setting the failing case(s) aside
                log.warning("case %s failed in a batch of %d; firing the batch again with a savepoint per case",
                            failed.instance_id, len(ids))
                fired, failures = self._fire_batch(ids, savepoints=True)
        except Exception:  # the batch as a whole (its lock, its commit): nothing of it was written
            log.exception("firing a batch of %d cases failed; firing them one by one", len(ids))
            fired, failures = self._fire_each(ids)
        for instance_id, exc in failures.items():  # retried, then an incident; never a silent stall
            self._failed(by_instance[instance_id], exc)
        return fired

    def _fire_batch(self, instance_ids: list[int], savepoints: bool) -> tuple[int, dict[int, Exception]]:
        """Fire the cases in one transaction; returns (timers fired, failures by case).

        Without savepoints the first case that raises rolls the whole batch back (_CaseFailed). With
        savepoints (one per case) a case that raises is rolled back alone and returned among the failures.
        """
        fired = 0
        failures: dict[int, Exception] = {}
        with self.runtime.db.unit_of_work() as uow:
            batch = _Batch(self.runtime, uow.session, instance_ids, savepoints)
            token = FIRE_IN_BATCH.set(batch.fire)
            try:
                for instance_id in instance_ids:
                    try:
                        fired += self.runtime.fire_timers(instance_id)
                    except Exception as exc:
                        if not savepoints:
                            raise _CaseFailed(instance_id) from exc
                        log.exception("firing timers of case %s failed", instance_id)
                        failures[instance_id] = exc
                        # Its savepoint is rolled back; forget what this session believes of its rows.
                        uow.session.expire_all()
            finally:
                FIRE_IN_BATCH.reset(token)
            uow.commit()
        return fired, failures

    def _fire_each(self, instance_ids: list[int]) -> tuple[int, dict[int, Exception]]:
        """Fire the cases one transaction each (the fallback when a batch cannot commit)."""
        fired = 0
        failures: dict[int, Exception] = {}
        for instance_id in instance_ids:
            try:
                fired += self.runtime.fire_timers(instance_id)
            except Exception as exc:
                log.exception("firing timers of case %s failed", instance_id)
                failures[instance_id] = exc
        return fired, failures

    def _failed(self, timer_ids: list[int], exc: Exception) -> None:
        with self.runtime.db.unit_of_work() as uow:
            for timer in uow.session.scalars(select(Timer).where(Timer.id.in_(timer_ids)).order_by(Timer.id)):
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

    def remind_due(self) -> int:
        """Remind the people who hold a task that it falls due soon (its `remindBefore`), once per task."""
        now = CLOCK.now()
        count = 0
        with self.runtime.db.unit_of_work() as uow:
            s = uow.session
            due = list(s.scalars(select(HumanTask).where(HumanTask.remind_at <= now).order_by(HumanTask.remind_at)
                                 .limit(200)))
            for task in due:
                task.remind_at = None
                if task.state != "open" or task.due_at is None:
                    continue
                people = [task.assignee] if task.assignee is not None else []
                if task.assigned_group:
                    people += group_members(s, task.assigned_group)
                when = due_words(task.due_at, self.runtime.settings.timezone)
                count += notify(s, people, f"Reminder: {task.title} is due {when}",
                                f"{task.instance.title}: '{task.title}' is due {when}"
                                + (f" ({_clause_words(task.clause)})." if task.clause else ".")
                                + " If it is not done by then, the time allowed lapses and that is recorded.",
                                task.instance_id)
                audit(s, task.instance_id, "timer", "reminded", task=task.name, title=task.title,
                      due_at=task.due_at.isoformat(), recipients=sorted({p.username for p in people}))
            uow.commit()
        return count

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
                                _escalation_body(task, self.runtime.settings.timezone), task.instance_id)
                audit(s, task.instance_id, "timer", "escalated", task=task.name, title=task.title,
                      clause=task.clause, due_at=task.due_at.isoformat() if task.due_at else None)
            uow.commit()
        return count

    def _escalation_people(self, s: Session, task: HumanTask) -> list[Someone]:
        instance: ProcessInstance = task.instance
        lanes = [lane.strip() for lane in (task_escalate_to(self.runtime, task) or "").split(",") if lane.strip()]
        people: list[Someone] = [task.assignee] if task.assignee is not None else []
        if task.assigned_group:
            people += group_members(s, task.assigned_group)
        for lane in lanes:
            a = resolve_lane(s, instance.process_key, lane, instance.data or {}, instance.started_by)
            if a.person is not None:
                people.append(a.person)
            if a.group:
                people += group_members(s, a.group)
        return people


class _CaseFailed(Exception):
    """A case raised while its batch fired without savepoints: the batch is rolled back and fired again."""

    def __init__(self, instance_id: int) -> None:
        super().__init__(f"firing timers of case {instance_id} failed")
        self.instance_id = instance_id


class _Batch:
    """The cases of one claimed batch, locked in id order and with their open timer rows, in one session."""

    def __init__(self, runtime: Runtime, session: Session, instance_ids: list[int], savepoints: bool) -> None:
        self.runtime = runtime
        self.session = session
        self.savepoints = savepoints
        # One statement locks them all, in id order: two schedulers holding cases of one case never deadlock
        # (their claims are disjoint timer rows, but two timers of one case may go to two schedulers).
        self.cases = {row.id: row for row in session.scalars(_LOCK_CASES, {"ids": instance_ids})}
        self.timers: dict[int, list[Timer]] = {}
        for timer in session.scalars(_TIMERS_OF_CASES, {"ids": instance_ids}):  # read after the lock
            if timer.state in ("waiting", "claimed"):
                self.timers.setdefault(timer.instance_id, []).append(timer)

    def fire(self, instance_id: int) -> int:
        """Fire one case in the batch's transaction, in a savepoint of its own when the batch has them."""
        row = self.cases.get(instance_id)
        if row is None or row.status != "running":
            return 0
        timers = self.timers.get(instance_id, [])
        if not self.savepoints:  # the events stay pending: one INSERT for the whole batch at its commit
            return self.runtime.fire_locked(self.session, row, timers)
        # Write the earlier cases' events first: rolling back to the savepoint drops the session's pending
        # events (audit's after_rollback), which must then be this case's only.
        write_pending(self.session)
        with self.session.begin_nested():
            return self.runtime.fire_locked(self.session, row, timers)


_LOCK_CASES = (select(ProcessInstance).where(ProcessInstance.id.in_(bindparam("ids", expanding=True)))
               .order_by(ProcessInstance.id).with_for_update().execution_options(populate_existing=True))
# By case only (ix_timer_instance): with a state condition SQLite may walk ix_timer_state_due's waiting rows.
_TIMERS_OF_CASES = select(Timer).where(Timer.instance_id.in_(bindparam("ids", expanding=True))).order_by(Timer.id)


def failed_timers(session: Session) -> list[Timer]:
    """Timers that used up their attempts: the incidents admins see."""
    return list(session.scalars(select(Timer).where(Timer.state == "failed").order_by(Timer.id)))


def retry_failed(runtime: Runtime, timer_id: int, actor: str) -> None:
    """Give a failed timer a fresh set of attempts (after its cause was fixed); audited."""
    with runtime.db.unit_of_work() as uow:
        timer = uow.session.get(Timer, timer_id)
        if timer is None or timer.state != "failed":
            from engine.core.errors import Conflict

            raise Conflict("that timer is not a failed timer")
        timer.state, timer.attempts, timer.claimed_until = "waiting", 0, None
        audit(uow.session, timer.instance_id, actor, "incident_retried", element=timer.element,
              last_error=timer.last_error)
        uow.commit()


def task_escalate_to(runtime: Runtime, task: HumanTask) -> str | None:
    """The `escalateTo` property of the task's BPMN element (comma-separated lanes)."""
    from engine.workflow.definitions import SPECS

    parsed = SPECS.get(task.instance.definition)
    for spec in [parsed.spec, *parsed.subprocess_specs.values()]:
        ts = spec.task_specs.get(task.name) if spec is not None else None
        if ts is not None:
            props = (getattr(ts, "extensions", None) or {}).get("properties", {})
            value = props.get("escalateTo")
            return str(value) if value else None
    return None


def _escalation_body(task: HumanTask, timezone: str) -> str:
    """What the people a late task escalates to read: when it was due in the organisation's time zone (the
    end of a local day, or a local time with the zone's name), never the UTC date."""
    due = due_words(task.due_at, timezone) if task.due_at else "by a date not recorded"
    who = task.assignee.name if task.assignee else f"the {task.assigned_group} group"
    clause = f" ({_clause_words(task.clause)})" if task.clause else ""
    return (f"The task \"{task.title}\"{clause} in case #{task.instance_id} ({task.instance.title}) was due "
            f"{due} and is still open with {who}.")


def run_scheduler_forever(runtime: Runtime) -> None:
    """Block, polling every NTPSWF_TIMER_POLL_SECONDS (catch-up happens on the first poll)."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    service = TimerService(runtime)
    scheduler = BlockingScheduler(timezone="UTC")
    scheduler.add_job(service.tick, "interval", seconds=runtime.settings.timer_poll_seconds, max_instances=1,
                      coalesce=True, next_run_time=CLOCK.now(), id="timer-poll")
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()


def _clause_words(clause: str) -> str:
    return f"Determination 19, cl. {clause[4:]}" if clause.startswith("D19-") else clause
