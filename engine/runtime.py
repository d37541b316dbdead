"""Start, complete, cancel and fire timers: one transaction per call, one instance loaded per call.

Each service loads the instance, lets SpiffWorkflow run, then writes the serialized workflow, the
human-task rows, the timer rows and the audit events, and commits. The instance's `lock_version`
makes a second concurrent writer fail with Conflict instead of overwriting the first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import serialization, starters
from engine.access import may_start, may_view_instance
from engine.assignment import may_work, person_by_username, resolve_lane
from engine.clock import CLOCK
from engine.config import Settings
from engine.db import Database
from engine.definitions import SPECS, latest_definition
from engine.errors import Conflict, EngineError, Forbidden, Invalid, NotFound, Problem
from engine.forms import validate
from engine.hooks import hooks_for, load_process_modules
from engine.models import AuditEvent, HumanTask, ProcessDefinition, ProcessInstance, Timer, User
from engine.scripthelpers import script_helpers
from engine.scripts import ScriptError, make_script_engine

log = logging.getLogger(__name__)

SYSTEM = "system"
TIMER_ACTOR = "timer"


@dataclass
class Loaded:
    """An instance row with its restored workflow."""

    row: ProcessInstance
    workflow: BpmnWorkflow


def audit(session: Session, instance_id: int | None, actor: str, kind: str, **detail: Any) -> None:
    """Append an event to a case's history."""
    session.add(AuditEvent(instance_id=instance_id, at=CLOCK.now(), actor=actor, kind=kind, detail=detail))


class Runtime:
    """The engine's service layer: every state change to a case goes through one of these methods."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        load_process_modules()

    # ------------------------------------------------------------------ services

    def start(self, user: User | None, process_key: str, data: dict[str, Any], actor: str | None = None) -> int:
        """Start the newest version of a process with `data`; returns the instance id."""
        actor = actor or (user.username if user else SYSTEM)
        with self.db.unit_of_work() as uow:
            session = uow.session
            definition = latest_definition(session, process_key)
            if definition is None:
                raise NotFound(f"no process is deployed with the key '{process_key}'",
                               [Problem(f"no process '{process_key}' is deployed", field="process")])
            if not isinstance(data, dict):
                raise Invalid("data must be an object", [Problem("must be an object", field="data")])
            if user is not None and not may_start(session, user, process_key, data):
                raise Forbidden("you may not start this case")
            data = starters.prepare(session, process_key, dict(data), self.settings)
            parsed = SPECS.get(definition)
            wf = BpmnWorkflow(parsed.spec, parsed.subprocess_specs, script_engine=self._script_engine(session))
            start_task = wf.get_tasks(spec_name="Start")[0]
            start_task.data.update(data)
            now = CLOCK.now()
            subject = person_by_username(session, data.get("employee") or data.get("secondee"))
            row = ProcessInstance(
                definition_id=definition.id, process_key=definition.key, status="running",
                title=_title(definition, subject.name if subject else None), subject_id=subject.id if subject else None,
                data={}, serialized="", started_at=now, started_by=actor, updated_at=now,
            )
            session.add(row)
            session.flush()
            audit(session, row.id, actor, "started", process=definition.key, version=definition.version,
                  data=data)
            self._run(session, Loaded(row, wf), actor)
            uow.commit()
            return row.id

    def complete_task(self, user: User, task_id: int, data: dict[str, Any]) -> int:
        """Complete an open user task with the form data; returns the instance id."""
        with self.db.unit_of_work() as uow:
            session = uow.session
            task = session.get(HumanTask, task_id)
            if task is None:
                raise NotFound("no such task")
            _lock_instance(session, task.instance_id)
            if self.db.is_postgres:  # SQLite's write transaction already read it under the lock
                session.refresh(task)  # the state as it is now that we hold the case
            if not may_work(session, user, task):
                if may_view_instance(session, user, task.instance):
                    raise Forbidden("this task is assigned to someone else")
                raise NotFound("no such task")
            if task.state != "open":
                raise Conflict(f"the task '{task.title}' is no longer open (it is {task.state})")
            loaded = self.load(session, task.instance)
            spiff_task = loaded.workflow.get_task_from_id(UUID(task.spiff_task_id))
            if spiff_task is None or spiff_task.state != TaskState.READY:
                raise Conflict(f"the task '{task.title}' is no longer open")
            clean = self._form_data(loaded.row.definition, task, data)
            for hook in hooks_for(loaded.row.process_key).on_complete:
                clean = hook(session, loaded.row, task, clean, user.username)
            spiff_task.set_data(**clean)
            try:
                spiff_task.run()
            except (WorkflowException, SpiffWorkflowException, ScriptError) as exc:
                raise _script_failure(exc, task.name) from exc
            now = CLOCK.now()
            task.state, task.completed_at, task.completed_by = "completed", now, user.username
            audit(session, loaded.row.id, user.username, "task_completed", task=task.name, title=task.title,
                  lane=task.lane, clause=task.clause, data=clean)
            self._run(session, loaded, user.username)
            uow.commit()
            return loaded.row.id

    def cancel(self, user: User, instance_id: int, reason: str) -> None:
        """Cancel a running case: its open tasks and timers close, and the reason is recorded."""
        with self.db.unit_of_work() as uow:
            session = uow.session
            row = _lock_instance(session, instance_id)
            if row is None or not may_view_instance(session, user, row):
                raise NotFound("no such case")
            if not user.has_role("admin", "hr") and row.started_by != user.username:
                raise Forbidden("only HR, an administrator or the person who started a case may cancel it")
            if row.status != "running":
                raise Conflict(f"the case is {row.status}, not running")
            if not reason.strip():
                raise Invalid("a reason is required", [Problem("a reason is required", field="reason")])
            loaded = self.load(session, row)
            loaded.workflow.cancel()
            row.status, row.ended_at = "cancelled", CLOCK.now()
            audit(session, row.id, user.username, "cancelled", reason=reason.strip())
            self.save(session, loaded, user.username)
            uow.commit()

    def update_case_data(self, actor: str, instance_id: int, changes: dict[str, Any], reason: str) -> None:
        """Change case data that dates hang on (D19-9d) and move the waiting timers and due dates with it."""
        with self.db.unit_of_work() as uow:
            session = uow.session
            row = _lock_instance(session, instance_id)
            if row is None:
                raise NotFound("no such case")
            if row.status != "running":
                raise Conflict(f"the case is {row.status}, not running")
            loaded = self.load(session, row)
            apply_data_changes(loaded.workflow, changes)
            loaded.workflow.refresh_timers()
            before = {k: row.data.get(k) for k in changes}
            audit(session, row.id, actor, "retimed", reason=reason, before=before, after=changes)
            self._run(session, loaded, actor)
            for task in session.scalars(select(HumanTask).where(
                    HumanTask.instance_id == row.id, HumanTask.state == "open")):
                spiff_task = loaded.workflow.get_task_from_id(UUID(task.spiff_task_id))
                ext = getattr(spiff_task.task_spec, "extensions", None) or {}
                task.due_at = self._due_at(spiff_task, ext.get("properties", {}).get("dueAt"))
            uow.commit()

    def fire_timers(self, instance_id: int) -> int:
        """Let the instance's due timers fire; returns how many timer rows were fired."""
        with self.db.unit_of_work() as uow:
            session = uow.session
            row = _lock_instance(session, instance_id)
            if row is None or row.status != "running":
                return 0
            loaded = self.load(session, row)
            now = CLOCK.now()
            rows = _timer_rows(session, row.id)
            before = [(t, t.due_at) for t in rows if t.state in ("waiting", "claimed") and t.due_at < now]
            loaded.workflow.refresh_timers()
            self._run(session, loaded, TIMER_ACTOR, rows)
            # Gone, or (a cycle) moved on to its next due time: either way it fired.
            fired = [(t, due) for t, due in before if t.state != "waiting" or t.due_at != due]
            for t, due in fired:
                audit(session, row.id, TIMER_ACTOR, "timer_fired", element=t.element, name=t.name,
                      due_at=due.isoformat())
            uow.commit()
            return len(fired)

    # ------------------------------------------------------------------ internals

    def _script_engine(self, session: Session) -> Any:
        return make_script_engine(script_helpers(session, self.settings))

    def load(self, session: Session, row: ProcessInstance) -> Loaded:
        """Restore a case's workflow with its cached spec and a fresh restricted script engine."""
        parsed = SPECS.get(row.definition)
        wf = serialization.loads(row.serialized, parsed.spec, parsed.subprocess_specs)
        wf.script_engine = self._script_engine(session)
        return Loaded(row, wf)

    def _form_data(self, definition: ProcessDefinition, task: HumanTask, data: Any) -> dict[str, Any]:
        """Validate submitted data against the task's form; keep only the fields the form defines."""
        if not isinstance(data, dict):
            raise Invalid("data must be an object", [Problem("must be an object", field="data")])
        if task.form is None:
            return {}
        schema = definition.forms.get(task.form) or {}
        errors = validate(schema, data)
        if errors:
            raise Invalid("the form has errors", [Problem(m, field=f or None) for f, ms in errors.items() for m in ms])
        allowed = set((schema.get("properties") or {}).keys())
        # Never let a form set keys it does not declare (outcome, assign, employee...).
        return {k: v for k, v in data.items() if k in allowed}

    def _run(self, session: Session, loaded: Loaded, actor: str, timer_rows: list[Timer] | None = None) -> None:
        try:
            loaded.workflow.do_engine_steps()
        except (WorkflowException, SpiffWorkflowException, ScriptError) as exc:
            raise _script_failure(exc, None) from exc
        with session.no_autoflush:  # one flush at commit instead of one per query
            self.save(session, loaded, actor, timer_rows)

    def save(self, session: Session, loaded: Loaded, actor: str, timer_rows: list[Timer] | None = None) -> None:
        """Write the workflow, its data snapshot, task rows, timer rows and hooks' changes (no commit)."""
        wf, row = loaded.workflow, loaded.row
        now = CLOCK.now()
        row.data = case_data(wf)
        row.serialized = serialization.dumps(wf)
        row.updated_at = now
        if wf.is_completed() and row.status == "running":
            row.status, row.ended_at = "completed", now
            audit(session, row.id, actor, "completed", outcome=row.data.get("outcome"))
        self._sync_tasks(session, loaded, actor)
        self._sync_timers(session, loaded, timer_rows)
        for hook in hooks_for(row.process_key).after_save:
            hook(session, row, actor)

    def _sync_tasks(self, session: Session, loaded: Loaded, actor: str) -> None:
        wf, row = loaded.workflow, loaded.row
        ready = {} if row.status != "running" else {
            str(t.id): t for t in wf.get_tasks(state=TaskState.READY, manual=True)
        }
        # Re-check the state in Python: rows changed earlier in this unit of work are not flushed yet.
        open_rows = {t.spiff_task_id: t for t in session.scalars(
            select(HumanTask).where(HumanTask.instance_id == row.id, HumanTask.state == "open")) if t.state == "open"}
        for tid, task_row in open_rows.items():
            if tid not in ready:
                task_row.state = "cancelled"
                task_row.completed_at = CLOCK.now()
        for tid, spiff_task in ready.items():
            if tid in open_rows:
                continue
            task = self._open_task(session, row, spiff_task, actor)
            session.add(task)
            for hook in hooks_for(row.process_key).on_task_opened:
                hook(session, row, task)

    def _open_task(self, session: Session, row: ProcessInstance, spiff_task: Any, actor: str) -> HumanTask:
        spec = spiff_task.task_spec
        ext = getattr(spec, "extensions", None) or {}
        props = ext.get("properties", {})
        assignment = resolve_lane(session, spec.lane, spiff_task.data, row.started_by)
        task = HumanTask(
            instance_id=row.id, spiff_task_id=str(spiff_task.id), name=spec.bpmn_id,
            title=spec.bpmn_name or spec.bpmn_id, lane=spec.lane,
            assignee_id=assignment.person.id if assignment.person else None, assigned_group=assignment.group,
            state="open", form=props.get("formJsonSchemaFilename"), ui_form=props.get("formUiSchemaFilename"),
            clause=props.get("clause"), instructions=ext.get("instructionsForEndUser"),
            created_at=CLOCK.now(), due_at=self._due_at(spiff_task, props.get("dueAt")),
        )
        audit(session, row.id, actor, "task_opened", task=spec.bpmn_id, title=task.title, lane=spec.lane,
              assignee=assignment.person.username if assignment.person else None, group=assignment.group,
              note=assignment.note, due_at=task.due_at.isoformat() if task.due_at else None)
        return task

    def _due_at(self, spiff_task: Any, expression: str | None) -> datetime | None:
        """A task's due time from its `dueAt` property: an expression giving a date or ISO datetime.

        A date means "by the end of that day" in the organisation's time zone.
        """
        if not expression:
            return None
        try:
            value = spiff_task.workflow.script_engine.evaluate(spiff_task, expression)
        except Exception as exc:  # a bad expression must not block the case; it is logged and audited
            log.warning("dueAt of %s failed: %s", spiff_task.task_spec.bpmn_id, exc)
            return None
        return due_from_value(value, self.settings.timezone)

    def _sync_timers(self, session: Session, loaded: Loaded, rows: list[Timer] | None = None) -> None:
        wf, row = loaded.workflow, loaded.row
        waiting: dict[str, tuple[Any, datetime, str]] = {}
        if row.status == "running":
            for t in wf.get_tasks(state=TaskState.WAITING):
                event = getattr(t.task_spec, "event_definition", None)
                if not isinstance(event, TimerEventDefinition):
                    continue
                due = timer_due(event, t)
                if due is not None:
                    waiting[str(t.id)] = (t, due, _timer_kind(event))
        if rows is None and not waiting and not _uses_timers(row):
            return  # a process without timer events never has timer rows: skip the query
        rows = _timer_rows(session, row.id) if rows is None else rows
        existing = {t.spiff_task_id: t for t in rows if t.state in ("waiting", "claimed")}
        for tid, timer_row in existing.items():
            if tid not in waiting:
                timer_row.state = "fired" if timer_row.due_at <= CLOCK.now() else "closed"
                timer_row.claimed_until = None
        for tid, (t, due, kind) in waiting.items():
            current = existing.get(tid)
            if current is None:
                session.add(Timer(
                    instance_id=row.id, spiff_task_id=tid, element=t.task_spec.bpmn_id,
                    name=t.task_spec.bpmn_name or t.task_spec.bpmn_id, kind=kind, due_at=due, state="waiting",
                    attempts=0,
                ))
            else:
                if current.due_at != due:
                    current.due_at = due
                current.state = "waiting"
                current.claimed_until = None



# ---------------------------------------------------------------------- helpers


def _lock_instance(session: Session, instance_id: int) -> ProcessInstance | None:
    """Load a case holding its row lock (PostgreSQL), so writers of one case queue instead of colliding.

    Two people completing the two branches of a parallel gateway then both succeed, one after the
    other, on the current state. SQLite's write transaction is already exclusive. The optimistic
    `lock_version` stays as the guard for any writer that does not take the lock.
    """
    return session.get(ProcessInstance, instance_id, with_for_update=True, populate_existing=True)


def apply_data_changes(wf: BpmnWorkflow, changes: dict[str, Any]) -> None:
    """Write `changes` wherever unfinished tasks read data, and let waiting timers re-evaluate.

    A waiting timer's own data is re-merged from its parent, so the parent is updated too; dropping the
    stored `event_value` makes SpiffWorkflow evaluate the timer expression again on the next refresh.
    """
    wf.data.update(changes)
    for task in wf.get_tasks(state=TaskState.NOT_FINISHED_MASK):
        task.data.update(changes)
        if task.parent is not None:
            task.parent.data.update(changes)
        if task.state == TaskState.WAITING and isinstance(
                getattr(task.task_spec, "event_definition", None), TimerEventDefinition):
            task.internal_data.pop("event_value", None)
    if wf.last_task is not None:
        wf.last_task.data.update(changes)


_TIMER_SPECS: dict[int, bool] = {}


def _uses_timers(row: ProcessInstance) -> bool:
    """Whether the case's process (or a subprocess of it) has any timer event; cached per parsed spec."""
    parsed = SPECS.get(row.definition)
    key = id(parsed.spec)
    if key not in _TIMER_SPECS:
        specs = [parsed.spec, *(s for s in parsed.subprocess_specs.values() if s is not None)]
        _TIMER_SPECS[key] = any(isinstance(getattr(ts, "event_definition", None), TimerEventDefinition)
                                for spec in specs for ts in spec.task_specs.values())
    return _TIMER_SPECS[key]


def _timer_rows(session: Session, instance_id: int) -> list[Timer]:
    return list(session.scalars(select(Timer).where(Timer.instance_id == instance_id)))


def _timer_kind(event: TimerEventDefinition) -> str:
    if isinstance(event, CycleTimerEventDefinition):
        return "cycle"
    if isinstance(event, DurationTimerEventDefinition):
        return "duration"
    return "date"


def timer_due(event: TimerEventDefinition, task: Any) -> datetime | None:
    """When a waiting timer task falls due, from the value SpiffWorkflow stored when it started waiting."""
    value = event.details(task).value
    if value is None:
        return None
    if isinstance(value, dict):  # a finished cycle
        return None
    due = TimerEventDefinition.get_datetime(value) if isinstance(value, str) else value
    return due if isinstance(due, datetime) else None


def due_from_value(value: Any, timezone: str) -> datetime | None:
    """Turn a date/ISO value into an aware due datetime (a bare date = the end of that local day)."""
    tz = ZoneInfo(timezone)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, str):
        try:
            if len(value) == 10:
                value = date.fromisoformat(value)
            else:
                parsed = datetime.fromisoformat(value)
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
        except ValueError:
            return None
    if isinstance(value, date):
        return datetime.combine(value + timedelta(days=1), time(0, 0), tz)
    return None


def case_data(wf: BpmnWorkflow) -> dict[str, Any]:
    """The case's current data: what the last completed task saw, over the workflow's own data."""
    data: dict[str, Any] = {k: v for k, v in wf.data.items() if k != "data_objects" or v}
    if wf.last_task is not None:
        data.update(wf.last_task.data)
    ready = wf.get_tasks(state=TaskState.READY, manual=True)
    if ready:
        data.update(ready[0].data)
    clean: dict[str, Any] = _jsonable(data)
    return clean


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _title(definition: ProcessDefinition, subject_name: str | None) -> str:
    return f"{definition.name} — {subject_name}" if subject_name else definition.name


def _script_failure(exc: Exception, element: str | None) -> EngineError:
    spec = getattr(getattr(exc, "task", None), "task_spec", None) or getattr(exc, "task_spec", None)
    where = getattr(spec, "bpmn_id", None) or element
    message = getattr(exc, "error_msg", None) or str(exc)
    return Invalid(f"the process could not continue at {where}: {message}",
                   [Problem(f"the process could not continue: {message}", element=where)])
