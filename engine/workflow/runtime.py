"""The runtime: the one service through which every change to a case goes (start, complete a task, cancel, change
its data, fire its timers), each in one transaction with its audit trail, task rows, timers and policy hooks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import inspect, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from engine.core.audit import audit
from engine.core.clock import CLOCK
from engine.core.config import Settings
from engine.core.db import Database, connection_of
from engine.core.errors import Conflict, EngineError, Forbidden, Invalid, NotFound, Problem
from engine.core.text import strip_unsafe_values
from engine.people.models import User
from engine.workflow import messages, serialization
from engine.workflow.access import may_send_message, may_start, may_view_instance
from engine.workflow.assignment import (
    may_work,
    performers,
    person_by_username,
    resolve_lane,
    separate_from,
    separation_problem,
)
from engine.workflow.casedata import add_note, apply_data_changes, case_data, declared_outputs, json_size, task_context
from engine.workflow.compaction import compact, task_count
from engine.workflow.definitions import SPECS, list_latest
from engine.workflow.due import remind_at, task_due_at, timer_due, timer_kind, waiting_timer
from engine.workflow.forms import today_here, validate
from engine.workflow.helpers import script_helpers
from engine.workflow.live import Live, LiveCases
from engine.workflow.models import HumanTask, ProcessDefinition, ProcessInstance, Timer
from engine.workflow.notify import group_members, notify, opened_late
from engine.workflow.registry import REGISTRY, load_policies
from engine.workflow.rows import (
    DEFINITION_COLUMNS,
    LATEST_ID,
    as_loaded,
    insert_case,
    insert_passed,
    insert_values,
    lock_instance,
    task_and_case,
    timer_rows,
    uses_timers,
    write_instance,
    write_row,
)
from engine.workflow.scripts import ScriptError, make_script_engine

log = logging.getLogger(__name__)

__all__ = ["FIRE_IN_BATCH", "Loaded", "Runtime"]

SYSTEM = "system"
TIMER_ACTOR = "timer"


@dataclass
class Loaded:
    """An instance row with its restored workflow.

    `open_tasks` are the ids of the workflow's ready human tasks when it was loaded; the case's open task
    rows are exactly these (every save keeps them in step), so a save only has to look at the rows when
    one of them has gone. None means unknown: the save then reads the rows.
    """

    row: ProcessInstance
    workflow: BpmnWorkflow
    open_tasks: frozenset[str] | None = None
    completed: frozenset[str] = frozenset()
    started: dict[str, Any] | None = None  # a new case: the detail of its "started" event


class Runtime:
    """The engine's service layer: every state change to a case goes through one of these methods."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        # Deployed versions by id (their columns' values); per Runtime, so per database.
        self._definitions: dict[int, dict[str, Any]] = {}
        self.live = LiveCases(settings.live_cases)
        load_policies(self.settings)

    # ------------------------------------------------------------------ services

    def start(self, user: User | None, process_key: str, data: dict[str, Any], actor: str | None = None) -> int:
        """Start the newest version of a process with `data`; returns the instance id."""
        actor = actor or (user.username if user else SYSTEM)
        with self.db.unit_of_work() as uow:
            instance_id = self._start(uow.session, user, process_key, data, actor)
            uow.commit()
            return instance_id

    def _start(self, session: Session, user: User | None, process_key: str, data: dict[str, Any], actor: str,
               message: tuple[str, dict[str, Any]] | None = None) -> int:
        """Start a case in the caller's transaction (no commit); with `message`, its message start event catches it."""
        definition = self.latest_definition(session, process_key)
        if definition is None:
            raise NotFound(f"no process is deployed with the key '{process_key}'",
                           [Problem(f"no process '{process_key}' is deployed", field="process")])
        if not isinstance(data, dict):
            raise Invalid("data must be an object", [Problem("must be an object", field="data")])
        if user is not None and not may_start(session, user, process_key, data):
            raise Forbidden("you may not start this case")
        self._check_task_size(data)
        data = strip_unsafe_values(dict(data))
        guards = REGISTRY.hooks_for(process_key).before_start
        if "assign" in data and not guards:  # lanes are appointed only where a policy checks who may appoint
            raise Invalid("this process takes no appointments at its start", [Problem(
                "this process takes no appointments at its start", field="assign")])
        for guard in guards:
            data = guard(session, user, actor, data)
        for prepare in REGISTRY.hooks_for(process_key).prepare:  # the process's starter, when it has one
            data = prepare(session, data, self.settings)
        parsed = SPECS.get(definition)
        # A spec SpiffWorkflow may rewire while this case runs (event subprocesses) is copied for the case.
        wf = BpmnWorkflow(serialization.own_spec(parsed.spec), parsed.subprocess_specs,
                          script_engine=self._script_engine(session, definition.key))
        start_task = wf.get_tasks(spec_name="Start")[0]
        start_task.data.update(data)
        if message is not None:
            self._catch_start_message(wf, *message)
        now = CLOCK.now()
        subject = person_by_username(session, REGISTRY.subject_name(definition.key, data))
        row = ProcessInstance(
            definition_id=definition.id, process_key=definition.key, status="running",
            title=_title(definition, subject.name if subject else None), subject_id=subject.id if subject else None,
            data={}, serialized="", started_at=now, started_by=actor, updated_at=now,
        )
        row.definition = definition
        started = {"process": definition.key, "version": definition.version, "data": data}
        if message is not None:
            started["message"] = message[0]
        # The row is inserted with its first state by the save (one INSERT); it has no task rows yet.
        loaded = Loaded(row, wf, frozenset(), started=started)
        self._run(session, loaded, actor)
        return loaded.row.id

    def _catch_start_message(self, wf: BpmnWorkflow, name: str, payload: dict[str, Any]) -> None:
        try:
            wf.do_engine_steps()  # up to the message start event, which waits
        except (WorkflowException, SpiffWorkflowException, ScriptError) as exc:
            raise _script_failure(exc, None) from exc
        definition = messages.waiting_for(wf, name)
        if definition is None or messages.deliver(wf, definition, payload) == 0:
            raise messages.not_waiting(name, wf)

    def send_message(self, user: User, instance_id: int, name: Any, payload: Any) -> int:
        """Deliver a message or signal the case waits for, with its payload (API.md); returns the instance id.

        404 when the case waits for no such message (or is over); who may work the case's tasks, and admins, may
        send it (engine.workflow.access.may_send_message)."""
        name, payload = messages.check_message(name, payload)
        self._check_task_size(payload)
        with self.db.unit_of_work() as uow:
            session = uow.session
            row = lock_instance(session, instance_id)
            if row is None or not may_view_instance(session, user, row):
                raise NotFound("no such case")
            if not may_send_message(session, user, row):
                raise Forbidden("you may not send messages to this case")
            if row.status != "running":
                raise NotFound(f"the case is {row.status}: it waits for no message",
                               [Problem(f"the case is {row.status}: it waits for no message", field="name")])
            loaded = self.load(session, row)
            definition = messages.waiting_for(loaded.workflow, name)
            if definition is None or messages.deliver(loaded.workflow, definition, payload) == 0:
                raise messages.not_waiting(name, loaded.workflow)
            audit(session, row.id, user.username, "message_received", name=name, fields=sorted(payload))
            self._run(session, loaded, user.username)
            uow.commit()
        return instance_id

    def start_by_message(self, user: User, name: Any, payload: Any) -> list[int]:
        """Start every deployed process whose message start event has this name, with the payload (API.md); all
        of them or none, in one transaction. Returns the new cases' ids (none when no process starts so)."""
        name, payload = messages.check_message(name, payload)
        self._check_task_size(payload)
        with self.db.unit_of_work() as uow:
            session = uow.session
            keys = [d.key for d in list_latest(session)
                    if d.executable and messages.message_start(SPECS.get(d).spec, name) is not None]
            started = [self._start(session, user, key, {}, user.username, (name, payload)) for key in keys]
            uow.commit()
        return started

    def complete_task(self, user: User, task_id: int, data: dict[str, Any]) -> int:
        """Complete an open user task with the form data; returns the instance id."""
        with self.db.unit_of_work() as uow:
            session = uow.session
            found = task_and_case(session, task_id)
            if found is None:
                raise NotFound("no such task")
            task, row, seen_version = found
            if row.lock_version != seen_version:
                # PostgreSQL: a writer changed the case between this statement's snapshot and our lock. The lock
                # gave us the case as it is now, but the task row is still the snapshot's, so read it again.
                # Every change to a case's tasks bumps its lock_version (they are written with the case, by
                # save(), under its lock), so equal versions mean the task row is current too. (SQLite holds the
                # database's write lock before it reads: there the versions are always equal.)
                session.refresh(task)
            if not may_work(session, user, task):
                if may_view_instance(session, user, row):
                    raise Forbidden("this task is assigned to someone else")
                raise NotFound("no such task")
            if task.state != "open":
                raise Conflict(f"the task '{task.title}' is no longer open (it is {task.state})")
            loaded = self.load(session, row)
            spiff_task = loaded.workflow.get_task_from_id(UUID(task.spiff_task_id))
            if spiff_task is None or spiff_task.state != TaskState.READY:
                raise Conflict(f"the task '{task.title}' is no longer open")
            separated = separation_problem(session, user, row.id, separate_from(spiff_task.task_spec))
            if separated is not None:
                raise Forbidden(separated)
            clean = self._form_data(loaded.row.definition, task, data, spiff_task)
            for hook in REGISTRY.hooks_for(loaded.row.process_key).on_complete:
                clean = hook(session, loaded.row, task, clean, user.username)
            variable = getattr(spiff_task.task_spec, "variable", None)  # spiffworkflow:variableName
            spiff_task.set_data(**({variable: clean} if isinstance(variable, str) and variable else clean))
            try:
                spiff_task.run()
            except (WorkflowException, SpiffWorkflowException, ScriptError) as exc:
                raise _script_failure(exc, task.name) from exc
            now = CLOCK.now()
            write_row(session, task, state="completed", completed_at=now, completed_by=user.username)
            loaded.completed = frozenset({task.spiff_task_id})
            audit(session, loaded.row.id, user.username, "task_completed", task=task.name, title=task.title,
                  lane=task.lane, clause=task.clause, data=clean)
            self._run(session, loaded, user.username)
            uow.commit()
            return loaded.row.id

    def cancel(self, user: User, instance_id: int, reason: str) -> None:
        """Cancel a running case: its open tasks and timers close, and the reason is recorded."""
        with self.db.unit_of_work() as uow:
            session = uow.session
            row = lock_instance(session, instance_id)
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
            row = self.lock_running_case(uow.session, instance_id)
            self.change_case_data(uow.session, actor, row, changes, reason)
            uow.commit()

    def lock_running_case(self, session: Session, instance_id: int) -> ProcessInstance:
        """The case, locked in this transaction, for a change computed from its data as it is now (not as a read
        before the lock saw it, which a concurrent change could have overtaken)."""
        row = lock_instance(session, instance_id)
        if row is None:
            raise NotFound("no such case")
        if row.status != "running":
            raise Conflict(f"the case is {row.status}, not running")
        return row

    def change_case_data(self, session: Session, actor: str, row: ProcessInstance, changes: dict[str, Any],
                         reason: str) -> None:
        """update_case_data in the caller's transaction, on a case it holds (lock_running_case); no commit."""
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
            props = ext.get("properties", {})
            task.due_at = task_due_at(spiff_task, props.get("dueAt"), self.settings.timezone, task.created_at)
            # The reminder moves with the due date (one already past is not sent again: remind_at gives None).
            task.remind_at = remind_at(task.due_at, props.get("remindBefore"))
            task.context = task_context(row.definition, task.form, task.instructions, spiff_task.data)

    def fire_timers(self, instance_id: int) -> int:
        """Let the instance's due timers fire; returns how many timer rows were fired.

        On its own this is one transaction. While the timer service fires a claimed batch (FIRE_IN_BATCH is
        set), the case is fired by the batch instead, in the batch's one transaction (in a savepoint of its own
        when the batch is run again because a case failed).
        """
        in_batch = FIRE_IN_BATCH.get()
        if in_batch is not None:
            return in_batch(instance_id)
        with self.db.unit_of_work() as uow:
            session = uow.session
            row = lock_instance(session, instance_id)
            if row is None or row.status != "running":
                return 0
            fired = self.fire_locked(session, row, timer_rows(session, row.id))
            uow.commit()
            return fired

    def fire_locked(self, session: Session, row: ProcessInstance, timer_rows: list[Timer]) -> int:
        """Fire a running case's due timers in the caller's transaction (no commit); returns timer rows fired.

        The caller holds the case (`lock_instance`, or the batch's ordered lock) and read `timer_rows`, the
        case's waiting and claimed timer rows (others may be included; they are ignored), after taking it.
        """
        loaded = self.load(session, row)
        now = CLOCK.now()
        before = [(t, t.due_at) for t in timer_rows if t.state in ("waiting", "claimed") and t.due_at < now]
        loaded.workflow.refresh_timers()
        self._run(session, loaded, TIMER_ACTOR, timer_rows)
        # Gone, or (a cycle) moved on to its next due time: either way it fired.
        fired = [(t, due) for t, due in before if t.state != "waiting" or t.due_at != due]
        for t, due in fired:
            audit(session, row.id, TIMER_ACTOR, "timer_fired", element=t.element, name=t.name,
                  due_at=due.isoformat())
        return len(fired)

    # ------------------------------------------------------------------ internals

    def _script_engine(self, session: Session, process_key: str) -> Any:
        helpers = {**script_helpers(session, self.settings), **REGISTRY.helpers(process_key, session, self.settings)}
        return make_script_engine(helpers,
                                  time_limit_seconds=self.settings.script_time_limit_seconds,
                                  memory_mb=self.settings.script_memory_mb)

    def load(self, session: Session, row: ProcessInstance) -> Loaded:
        """Restore a case's workflow with its cached spec and a fresh restricted script engine (or take the one
        this process saved last, when the row holds exactly what it saved: engine.workflow.live)."""
        definition = self.definition_of(session, row)
        live = self.live.take(row)
        if live is not None:
            wf, ready = live.workflow, live.ready
        else:
            parsed = SPECS.get(definition)
            wf = serialization.loads(row.serialized, parsed.spec, parsed.subprocess_specs)
            ready = frozenset(str(t.id) for t in wf.get_tasks(state=TaskState.READY, manual=True))
        wf.script_engine = self._script_engine(session, row.process_key)
        return Loaded(row, wf, ready if row.status == "running" else None)

    def definition_of(self, session: Session, row: ProcessInstance) -> ProcessDefinition:
        """The case's definition row, from this process's copy when it has one (a deployed version never
        changes, so it is read once per process, not once per call)."""
        if "definition" not in inspect(row).unloaded:
            return row.definition
        definition = self._definition(session, row.definition_id, row.process_key)
        if definition is None:  # cannot happen: the foreign key holds it
            raise NotFound(f"case {row.id} has no definition")
        set_committed_value(row, "definition", definition)
        return definition

    def latest_definition(self, session: Session, key: str) -> ProcessDefinition | None:
        """The newest version of a process (its id is read; its row comes from this process's copy)."""
        ident = connection_of(session).execute(LATEST_ID, {"key": key}).scalar()
        return None if ident is None else self._definition(session, ident, key)

    def _definition(self, session: Session, ident: int, key: str) -> ProcessDefinition | None:
        cached = self._definitions.get(ident)
        if cached is not None and cached["key"] == key:
            return as_loaded(session, ProcessDefinition, cached)
        definition = session.get(ProcessDefinition, ident)
        if definition is None or definition.key != key:
            return None
        self._definitions[ident] = {c.key: getattr(definition, c.key) for c in DEFINITION_COLUMNS}
        return definition

    def _check_task_size(self, data: dict[str, Any]) -> None:
        """Refuse submitted or start data larger than the setting (422 naming `data`)."""
        limit = self.settings.task_data_limit_bytes
        if (size := json_size(data)) > limit:
            raise Invalid("the data is too large", [Problem(
                f"{size:,} bytes; at most {limit:,} (NTPSWF_TASK_DATA_LIMIT_BYTES)", field="data")])

    def _form_data(self, definition: ProcessDefinition, task: HumanTask, data: Any, spiff_task: Any) -> dict[str, Any]:
        """Validate submitted data against the task's form (and its rules, which may read the case's values as the
        task sees them); keep only the fields the form defines. A task without a form takes exactly the values its
        diagram declares it produces (casedata.declared_outputs), and refuses others by name."""
        if not isinstance(data, dict):
            raise Invalid("data must be an object", [Problem("must be an object", field="data")])
        self._check_task_size(data)
        if task.form is None:
            declared = declared_outputs(spiff_task)
            if declared is None:  # spiffworkflow:variableName: the whole answer goes under that name
                return {k: strip_unsafe_values(v) for k, v in data.items()}
            unknown = sorted(k for k in data if k not in declared)
            if unknown:
                said = ", ".join(sorted(declared)) or "none"
                raise Invalid("the task takes no such value", [Problem(
                    f"this task has no form and does not produce '{k}' (the values it produces: {said})", field=k)
                    for k in unknown])
            return {k: strip_unsafe_values(v) for k, v in data.items()}
        schema = definition.forms.get(task.form) or {}
        errors = validate(schema, data, case=spiff_task.data, today=today_here(self.settings.timezone))
        if errors:
            raise Invalid("the form has errors", [Problem(m, field=f or None) for f, ms in errors.items() for m in ms])
        allowed = set((schema.get("properties") or {}).keys())
        # Never let a form set keys it does not declare (outcome, assign, employee...); free text is shown to
        # other people, so it loses control and text-direction characters (engine.core.text).
        return {k: strip_unsafe_values(v) for k, v in data.items() if k in allowed}

    def _run(self, session: Session, loaded: Loaded, actor: str, timer_rows: list[Timer] | None = None) -> None:
        try:
            loaded.workflow.do_engine_steps()
        except (WorkflowException, SpiffWorkflowException, ScriptError) as exc:
            raise _script_failure(exc, _running_element(loaded.workflow)) from exc
        except (EngineError, SQLAlchemyError):
            raise  # a refusal (a helper's) or the database's: the unit of work maps them
        except Exception as exc:  # the library failing on a diagram (a version deployed before a check existed)
            log.exception("the workflow library failed running case %s", loaded.row.id)
            raise _script_failure(exc, _running_element(loaded.workflow)) from exc
        with session.no_autoflush:  # one flush at commit instead of one per query
            self.save(session, loaded, actor, timer_rows)

    def save(self, session: Session, loaded: Loaded, actor: str, timer_rows: list[Timer] | None = None) -> None:
        """Write the workflow, its data snapshot, task rows, timer rows and hooks' changes (no commit)."""
        wf, row = loaded.workflow, loaded.row
        now = CLOCK.now()
        ready = wf.get_tasks(state=TaskState.READY, manual=True)
        data = case_data(wf, ready)
        # What a step reads and writes is bounded by what is open, not by the case's age (finished tasks go to
        # history rows).
        passed = compact(wf) if task_count(wf) > self.settings.compact_above_tasks else []
        serialized = serialization.dumps(wf)
        # The serialized workflow holds the data: only a workflow larger than the limit can hold data that is.
        if len(serialized) > self.settings.case_data_limit_bytes:
            self._check_case_size(data, wf)
        values: dict[str, Any] = {"data": data, "serialized": serialized,
                                  "updated_at": now, "status": row.status, "ended_at": row.ended_at}
        finished = wf.is_completed() and row.status == "running"
        if finished:
            values["status"], values["ended_at"] = "completed", now
        if inspect(row).key is None:  # a new case: one INSERT with its first state
            loaded.row = row = insert_case(session, row, values)
        else:
            write_instance(session, row, values)
        insert_passed(session, row.id, passed)
        if row.status == "running":
            self.live.keep(session, row.id, Live(serialized, row.definition_id, row.lock_version, wf,
                                                 frozenset(str(t.id) for t in ready)))
        if loaded.started is not None:
            audit(session, row.id, row.started_by, "started", **loaded.started)
            loaded.started = None
        if finished:
            audit(session, row.id, actor, "completed", outcome=row.data.get("outcome"))
        self._sync_tasks(session, loaded, actor, ready)
        self._sync_timers(session, loaded, timer_rows)
        for hook in REGISTRY.hooks_for(row.process_key).after_save:
            hook(session, row, actor, self.settings)

    def _check_case_size(self, data: dict[str, Any], wf: BpmnWorkflow) -> None:
        """Refuse a step that would leave the case's data larger than the setting (nothing is written)."""
        limit = self.settings.case_data_limit_bytes
        size = json_size(data)
        if size > limit:
            last = wf.last_task.task_spec if wf.last_task is not None else None
            element = getattr(last, "bpmn_id", None) or getattr(last, "name", None)
            raise Invalid("the case data would be too large", [Problem(
                f"this step would make the case's data {size:,} bytes; the limit is {limit:,} "
                "(NTPSWF_CASE_DATA_LIMIT_BYTES)", element=element)])

    def _sync_tasks(self, session: Session, loaded: Loaded, actor: str, ready_tasks: list[Any]) -> None:
        row = loaded.row
        ready = {} if row.status != "running" else {str(t.id): t for t in ready_tasks}
        if loaded.open_tasks is not None and loaded.open_tasks - loaded.completed <= ready.keys():
            open_ids: set[str] | dict[str, HumanTask] = set(loaded.open_tasks - loaded.completed)  # none gone
        else:
            # Re-check the state in Python: rows changed earlier in this unit of work are not flushed yet.
            open_ids = open_rows = {t.spiff_task_id: t for t in session.scalars(select(HumanTask).where(
                HumanTask.instance_id == row.id, HumanTask.state == "open")) if t.state == "open"}
            for tid, task_row in open_rows.items():
                if tid not in ready:
                    task_row.state = "cancelled"
                    task_row.completed_at = CLOCK.now()
        hooks = REGISTRY.hooks_for(row.process_key).on_task_opened
        for tid, spiff_task in ready.items():
            if tid in open_ids:
                continue
            ident, values = self._open_task(session, row, spiff_task, actor)
            if hooks:  # the row's object is built only for hooks that take it
                task = as_loaded(session, HumanTask, {"id": ident, **values})
                for hook in hooks:
                    hook(session, row, task, self.settings)

    def _open_task(self, session: Session, row: ProcessInstance, spiff_task: Any,
                   actor: str) -> tuple[int, dict[str, Any]]:
        """Insert the row of a task that has become ready, with its audit event; its id and values."""
        spec = spiff_task.task_spec
        ext = getattr(spec, "extensions", None) or {}
        props = ext.get("properties", {})
        separated = separate_from(spec)
        exclude = performers(session, row.id, separated) if separated else set()
        assignment = resolve_lane(session, row.process_key, spec.lane, spiff_task.data, row.started_by, exclude)
        now = CLOCK.now()
        due = task_due_at(spiff_task, props.get("dueAt"), self.settings.timezone, now)
        title = spec.bpmn_name or spec.bpmn_id
        instructions = ext.get("instructionsForEndUser")
        if late := opened_late(due, now, self.settings.timezone):  # born overdue: it says why
            instructions = add_note(instructions, late)
        values = dict(
            instance_id=row.id, spiff_task_id=str(spiff_task.id), name=spec.bpmn_id,
            title=title, lane=spec.lane,
            assignee_id=assignment.person.id if assignment.person else None, assigned_group=assignment.group,
            state="open", form=props.get("formJsonSchemaFilename"), ui_form=props.get("formUiSchemaFilename"),
            clause=props.get("clause"), instructions=instructions, created_at=now, due_at=due,
            completed_at=None, completed_by=None, escalated_at=None,
            remind_at=remind_at(due, props.get("remindBefore")),
            context=task_context(row.definition, props.get("formJsonSchemaFilename"),
                                 ext.get("instructionsForEndUser"), spiff_task.data),
        )
        ident = insert_values(session, HumanTask, values)
        audit(session, row.id, actor, "task_opened", task=spec.bpmn_id, title=title, lane=spec.lane,
              assignee=assignment.person.username if assignment.person else None, group=assignment.group,
              note=assignment.note, due_at=due.isoformat() if due else None)
        if assignment.needs_appointment:  # it never falls to someone without the authority: it waits, and says so
            audit(session, row.id, actor, "needs_appointment", task=spec.bpmn_id, title=title, lane=spec.lane,
                  reason=assignment.note)
            notify(session, group_members(session, assignment.group or ""), f"Needs an appointment: {title}",
                   f"{row.title}: {assignment.note}. Appoint someone to the {spec.lane} role from the case's page.",
                   row.id)
        return ident, values

    def _sync_timers(self, session: Session, loaded: Loaded, rows: list[Timer] | None = None) -> None:
        wf, row = loaded.workflow, loaded.row
        if rows is None and not uses_timers(row):
            return  # a process without timer events never has timer rows: nothing to look at
        waiting: dict[str, tuple[Any, datetime, str]] = {}
        if row.status == "running":
            for t in wf.get_tasks(state=TaskState.WAITING):
                event = waiting_timer(getattr(t.task_spec, "event_definition", None))
                if event is None:
                    continue
                due = timer_due(event, t)
                if due is not None:
                    waiting[str(t.id)] = (t, due, timer_kind(event))
        rows = timer_rows(session, row.id) if rows is None else rows
        existing = {t.spiff_task_id: t for t in rows if t.state in ("waiting", "claimed")}
        for tid, timer_row in existing.items():
            if tid not in waiting:
                write_row(session, timer_row, state="fired" if timer_row.due_at <= CLOCK.now() else "closed",
                          claimed_until=None)
        for tid, (t, due, kind) in waiting.items():
            current = existing.get(tid)
            if current is None:
                insert_values(session, Timer, dict(
                    instance_id=row.id, spiff_task_id=tid, element=t.task_spec.bpmn_id,
                    name=t.task_spec.bpmn_name or t.task_spec.bpmn_id, kind=kind, due_at=due, state="waiting",
                    attempts=0, claimed_until=None, claimed_by=None, last_error=None))
            elif (current.due_at, current.state, current.claimed_until) != (due, "waiting", None):
                write_row(session, current, due_at=due, state="waiting", claimed_until=None)


#: Set (per thread/context) by the timer service while it fires a claimed batch in one transaction: how
#: `fire_timers` fires a case there (engine.workflow.timers._Batch.fire). None: each call is its own transaction.
FIRE_IN_BATCH: ContextVar[Callable[[int], int] | None] = ContextVar("ntpswf_fire_in_batch", default=None)


def _title(definition: ProcessDefinition, subject_name: str | None) -> str:
    return f"{definition.name} — {subject_name}" if subject_name else definition.name


def _running_element(workflow: BpmnWorkflow) -> str | None:
    """The element whose run raised: the library marks it ERROR (else it is the first engine task still READY)."""
    for state in (TaskState.ERROR, TaskState.READY):
        found = [t.task_spec.bpmn_id for t in workflow.get_tasks(state=state, manual=False)
                 if getattr(t.task_spec, "bpmn_id", None)]
        if found:
            return str(found[0])
    return None


def _script_failure(exc: Exception, element: str | None) -> EngineError:
    spec = getattr(getattr(exc, "task", None), "task_spec", None) or getattr(exc, "task_spec", None)
    where = getattr(spec, "bpmn_id", None) or element
    message = getattr(exc, "error_msg", None) or str(exc)
    return Invalid(f"the process could not continue at {where}: {message}",
                   [Problem(f"the process could not continue: {message}", element=where)])
