"""Move running cases from one version of a process to another.

A case can move when everything it is waiting on (each open user task, each waiting timer, any other
waiting event, each running called process) exists in the target version, matched by BPMN element id.
The move uses SpiffWorkflow's own spec-replacement helpers (`SpiffWorkflow.bpmn.util.diff`): the case
is loaded with its old spec, every task is pointed at the aligned task spec of the new version, and the
ready and waiting branches are re-predicted from the new diagram. What is already done stays done.

Choices where SpiffWorkflow leaves it open:

* A waiting timer keeps its due time: `migrate_workflow` resets waiting tasks, which would restart a
  "wait 14 days" from the day of the migration. The stored due value is put back after the reset;
  the new version's timer expression applies the next time the timer is armed.
* An open user task keeps its row (assignee, due date, history); its title, form and clause follow
  the new version, so the person sees the new form.
* One transaction per case: a case that fails to move is left exactly as it was, the others move.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.util.diff import diff_workflow, migrate_workflow
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core.audit import audit
from engine.core.errors import Conflict, EngineError, Forbidden, Invalid, NotFound, Problem
from engine.people.models import User
from engine.workflow import serialization
from engine.workflow.access import may_deploy
from engine.workflow.bundles import ParsedProcess
from engine.workflow.definitions import SPECS
from engine.workflow.models import HumanTask, ProcessDefinition, ProcessInstance, Timer
from engine.workflow.runtime import Runtime
from engine.workflow.scripts import ScriptError


@dataclass
class Candidate:
    """One running case of the source version: whether it can move to the target, and why not."""

    instance_id: int
    title: str
    version: int
    open_tasks: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    @property
    def movable(self) -> bool:
        """True when nothing the case waits on is missing from the target version."""
        return not self.reasons


@dataclass(frozen=True)
class Outcome:
    """What happened to one case in a batch migration."""

    instance_id: int
    migrated: bool
    message: str


def definition_of(session: Session, key: str, version: int) -> ProcessDefinition:
    """A stored version, or NotFound."""
    row = session.scalars(select(ProcessDefinition).where(
        ProcessDefinition.key == key, ProcessDefinition.version == version)).first()
    if row is None:
        raise NotFound(f"process '{key}' has no version {version}")
    return row


def _require_owner(user: User) -> None:
    if not may_deploy(user):
        raise Forbidden("only process owners and administrators migrate cases")


# --------------------------------------------------------------------------- what a case waits on


def _elements(parsed: ParsedProcess) -> set[str]:
    """Every BPMN element id of a version, called processes included."""
    specs = [parsed.spec, *(s for s in parsed.subprocess_specs.values() if s is not None)]
    return {ts.bpmn_id for spec in specs for ts in spec.task_specs.values() if getattr(ts, "bpmn_id", None)}


def _waiting_events(wf: BpmnWorkflow) -> list[str]:
    """Element ids of waiting catch events (timers, messages, signals) anywhere in the case."""
    return sorted({t.task_spec.bpmn_id for t in wf.get_tasks(state=TaskState.WAITING)
                   if getattr(t.task_spec, "event_definition", None) is not None and t.task_spec.bpmn_id})


def _reasons(session: Session, row: ProcessInstance, wf: BpmnWorkflow, target: ProcessDefinition,
             parsed: ParsedProcess) -> tuple[list[str], list[str], list[str]]:
    """(open task ids, waiting ids, reasons it cannot move) for one loaded case."""
    elements = _elements(parsed)
    reasons: list[str] = []
    tasks = session.scalars(select(HumanTask).where(HumanTask.instance_id == row.id, HumanTask.state == "open")
                            .order_by(HumanTask.id)).all()
    for task in tasks:
        if task.name not in elements:
            reasons.append(f"its open task '{task.title}' ({task.name}) does not exist in version {target.version}")
    timers = session.scalars(select(Timer).where(Timer.instance_id == row.id,
                                                 Timer.state.in_(("waiting", "claimed")))).all()
    waiting = sorted({t.element for t in timers} | set(_waiting_events(wf)))
    for element in waiting:
        if element not in elements:
            reasons.append(f"it waits at '{element}', which does not exist in version {target.version}")
    for sub in wf.subprocesses.values():
        name = sub.spec.name
        if name not in parsed.subprocess_specs or parsed.subprocess_specs[name] is None:
            reasons.append(f"it is inside the called process '{name}', which version {target.version} does not call")
    return [t.name for t in tasks], waiting, reasons


def preview(runtime: Runtime, user: User, key: str, from_version: int, to_version: int) -> list[Candidate]:
    """The running cases of `key` on `from_version`, each with whether it can move to `to_version` and why not."""
    _require_owner(user)
    with runtime.db.read() as session:
        source = definition_of(session, key, from_version)
        target = definition_of(session, key, to_version)
        parsed = SPECS.get(target)
        rows = session.scalars(select(ProcessInstance).where(
            ProcessInstance.definition_id == source.id, ProcessInstance.status == "running")
            .order_by(ProcessInstance.id)).all()
        out: list[Candidate] = []
        for row in rows:
            candidate = Candidate(row.id, row.title, source.version)
            if source.id == target.id:
                candidate.reasons.append("it is already on this version")
            else:
                wf = runtime.load(session, row).workflow
                candidate.open_tasks, candidate.waiting, candidate.reasons = _reasons(session, row, wf, target, parsed)
            out.append(candidate)
        return out


def versions_with_running_cases(session: Session, key: str) -> dict[int, int]:
    """Version -> number of running cases on it."""
    rows = session.execute(select(ProcessDefinition.version, ProcessInstance.id).join(
        ProcessInstance, ProcessInstance.definition_id == ProcessDefinition.id).where(
        ProcessDefinition.key == key, ProcessInstance.status == "running")).all()
    counts: dict[int, int] = {}
    for version, _id in rows:
        counts[version] = counts.get(version, 0) + 1
    return counts


# --------------------------------------------------------------------------- moving one case


def _timer_values(wf: BpmnWorkflow) -> tuple[dict[UUID, dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """The stored due values of waiting timers, by task id and by element id."""
    by_id: dict[UUID, dict[str, Any]] = {}
    by_element: dict[str, list[dict[str, Any]]] = {}
    for task in wf.get_tasks(state=TaskState.WAITING):
        if isinstance(getattr(task.task_spec, "event_definition", None), TimerEventDefinition) \
                and "event_value" in task.internal_data:
            kept = {k: copy.deepcopy(task.internal_data[k]) for k in ("event_value", "event_fired")
                    if k in task.internal_data}
            by_id[task.id] = kept
            by_element.setdefault(task.task_spec.bpmn_id, []).append(kept)
    return by_id, by_element


def _restore_timers(wf: BpmnWorkflow, by_id: dict[UUID, dict[str, Any]],
                    by_element: dict[str, list[dict[str, Any]]]) -> None:
    """Put the due values back on the waiting timers the reset re-armed (same task, else same element)."""
    for task in wf.get_tasks(state=TaskState.WAITING):
        if not isinstance(getattr(task.task_spec, "event_definition", None), TimerEventDefinition):
            continue
        kept = by_id.get(task.id)
        if kept is None:
            same = by_element.get(task.task_spec.bpmn_id) or []
            kept = same[0] if len(same) == 1 else None
        if kept is not None:
            task.internal_data.update(copy.deepcopy(kept))


def _move(wf: BpmnWorkflow, parsed: ParsedProcess) -> None:
    """Point the workflow (and its running called processes) at the new specs, with SpiffWorkflow's helpers."""
    registry = serialization.registry()
    top, subs = diff_workflow(registry, wf, parsed.spec, parsed.subprocess_specs)
    sub_workflows = dict(wf.subprocesses)
    migrate_workflow(top, wf, serialization.own_spec(parsed.spec))  # a spec rewired at run time is copied per case
    for sub_id, sub_diff in subs.items():
        sub = sub_workflows.get(sub_id)
        if sub is None or sub_diff is None or sub_id not in wf.subprocesses:
            continue  # removed with its branch, or refused by _reasons before
        migrate_workflow(sub_diff, sub, parsed.subprocess_specs[sub.spec.name])
    wf.subprocess_specs = dict(parsed.subprocess_specs)


def _relink_rows(session: Session, row: ProcessInstance, wf: BpmnWorkflow) -> None:
    """Keep open task rows and waiting timer rows when the reset gave their SpiffWorkflow task a new id."""
    ready: dict[str, list[Any]] = {}
    for task in wf.get_tasks(state=TaskState.READY, manual=True):
        ready.setdefault(task.task_spec.bpmn_id, []).append(task)
    ready_ids = {str(t.id) for tasks in ready.values() for t in tasks}
    rows = session.scalars(select(HumanTask).where(HumanTask.instance_id == row.id, HumanTask.state == "open")).all()
    claimed = {r.spiff_task_id for r in rows if r.spiff_task_id in ready_ids}
    for task_row in rows:
        same = [t for t in ready.get(task_row.name, []) if str(t.id) not in claimed]
        spiff_task = next((t for t in ready.get(task_row.name, []) if str(t.id) == task_row.spiff_task_id), None)
        if spiff_task is None and same:
            spiff_task = same[0]
            claimed.add(str(spiff_task.id))
            task_row.spiff_task_id = str(spiff_task.id)
        if spiff_task is not None:
            spec = spiff_task.task_spec
            ext = getattr(spec, "extensions", None) or {}
            props = ext.get("properties", {})
            task_row.title = spec.bpmn_name or spec.bpmn_id
            task_row.form = props.get("formJsonSchemaFilename")
            task_row.ui_form = props.get("formUiSchemaFilename")
            task_row.clause = props.get("clause")
            task_row.instructions = ext.get("instructionsForEndUser")
    waiting: dict[str, list[str]] = {}
    for task in wf.get_tasks(state=TaskState.WAITING):
        if isinstance(getattr(task.task_spec, "event_definition", None), TimerEventDefinition):
            waiting.setdefault(task.task_spec.bpmn_id, []).append(str(task.id))
    timer_rows = session.scalars(select(Timer).where(Timer.instance_id == row.id,
                                                     Timer.state.in_(("waiting", "claimed")))).all()
    for timer_row in timer_rows:
        ids = waiting.get(timer_row.element, [])
        if timer_row.spiff_task_id not in ids and len(ids) == 1:
            timer_row.spiff_task_id = ids[0]


def migrate_instance(runtime: Runtime, user: User, instance_id: int, to_version: int) -> int:
    """Move one running case to another version of its process, in its own transaction; returns the old version."""
    _require_owner(user)
    with runtime.db.unit_of_work() as uow:
        session = uow.session
        row = session.get(ProcessInstance, instance_id, with_for_update=True, populate_existing=True)
        if row is None:
            raise NotFound("no such case")
        if row.status != "running":
            raise Conflict(f"case {instance_id} is {row.status}; only running cases move")
        source = row.definition
        target = definition_of(session, row.process_key, to_version)
        if target.id == source.id:
            raise Conflict(f"case {instance_id} is already on version {to_version}")
        parsed = SPECS.get(target)
        loaded = runtime.load(session, row)
        wf = loaded.workflow
        _tasks, _waiting, reasons = _reasons(session, row, wf, target, parsed)
        if reasons:
            raise Conflict(f"case {instance_id} cannot move to version {to_version}",
                           [Problem(r, field="instance") for r in reasons])
        by_id, by_element = _timer_values(wf)
        try:
            _move(wf, parsed)
            _restore_timers(wf, by_id, by_element)
            wf.do_engine_steps()
        except (WorkflowException, SpiffWorkflowException, ScriptError, KeyError, ValueError) as exc:
            raise Invalid(f"case {instance_id} could not be moved: {exc}",
                          [Problem(f"could not be moved: {exc}", field="instance")]) from exc
        row.definition_id = target.id
        row.definition = target
        _relink_rows(session, row, wf)
        loaded.open_tasks = None  # the task rows were relinked: the save reads them again
        audit(session, row.id, user.username, "migrated", process=row.process_key, from_version=source.version,
              to_version=target.version, from_definition_id=source.id, to_definition_id=target.id)
        with session.no_autoflush:
            runtime.save(session, loaded, user.username)
        uow.commit()
        return source.version


def migrate_many(runtime: Runtime, user: User, key: str, from_version: int, to_version: int,
                 instance_ids: list[int] | None = None) -> list[Outcome]:
    """Move the chosen cases (or every case that can move) one transaction each; report each one."""
    candidates = preview(runtime, user, key, from_version, to_version)
    by_id = {c.instance_id: c for c in candidates}
    chosen = [c.instance_id for c in candidates if c.movable] if instance_ids is None else instance_ids
    outcomes: list[Outcome] = []
    for instance_id in chosen:
        candidate = by_id.get(instance_id)
        if candidate is None:
            outcomes.append(Outcome(instance_id, False, f"not a running case of {key} version {from_version}"))
            continue
        if not candidate.movable:
            outcomes.append(Outcome(instance_id, False, "; ".join(candidate.reasons)))
            continue
        try:
            migrate_instance(runtime, user, instance_id, to_version)
        except EngineError as exc:
            detail = "; ".join(p.message for p in exc.problems if p.message != exc.message)
            outcomes.append(Outcome(instance_id, False, exc.message + (f": {detail}" if detail else "")))
        else:
            outcomes.append(Outcome(instance_id, True, f"moved from version {from_version} to {to_version}"))
    return outcomes
