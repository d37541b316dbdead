"""Where the cases of one process stand, for its process owners: counts of cases and, per BPMN element, how many
cases wait at it and how many completed it. Nothing about a case's people or data: element ids and names come
from the diagram, counts from the task and timer rows (a few grouped queries; no workflow is restored).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, exists, func, not_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from engine.core.errors import Forbidden
from engine.people.models import User
from engine.workflow.access import may_oversee_process
from engine.workflow.definitions import SPECS
from engine.workflow.models import HumanTask, ProcessDefinition, ProcessInstance, Timer
from engine.workflow.versions import definition, source_file, versions

#: Timer rows still waiting to fire (claimed: a scheduler is firing it now).
PENDING_TIMER = ("waiting", "claimed")
#: How many running cases the overview lists (the counts cover them all).
CASE_LIMIT = 200


@dataclass
class ElementCount:
    """One element: cases whose task there is open (a person's turn), cases waiting at its timer, and cases that
    completed it (a task done or a timer fired; counted once per case however often the case passed it)."""

    element: str
    name: str
    open: int = 0
    waiting: int = 0
    completed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"element": self.element, "name": self.name, "open": self.open, "waiting": self.waiting,
                "completed": self.completed}


@dataclass
class Overview:
    """A process's cases in one version (or all): case counts by where they stand, and counts per element."""

    key: str
    name: str
    version: int | None  # None: every version
    diagram_version: int
    filename: str
    xml: str
    cases: dict[str, int]
    elements: list[ElementCount] = field(default_factory=list)
    versions: list[dict[str, int]] = field(default_factory=list)  # [{"version", "cases", "running"}], newest first
    #: The newest running cases (at most CASE_LIMIT): number, version and the elements each waits at; no title
    #: (it names the person), no data.
    running: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, dict[str, int]]:
        return {e.element: {"open": e.open, "waiting": e.waiting, "completed": e.completed} for e in self.elements}


def _count_if(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _case_counts(session: Session, scope: list[int]) -> dict[str, int]:
    """One query: cases by status, and the running ones by what they wait on."""
    row = ProcessInstance
    running = row.status == "running"
    has_open = exists().where(HumanTask.instance_id == row.id, HumanTask.state == "open")
    has_timer = exists().where(Timer.instance_id == row.id, Timer.state.in_(PENDING_TIMER))
    found = session.execute(select(
        func.count(row.id), _count_if(running), _count_if(and_(running, has_open)),
        _count_if(and_(running, not_(has_open), has_timer)), _count_if(row.status == "completed"),
        _count_if(row.status == "cancelled"), _count_if(row.status == "error"),
    ).where(row.definition_id.in_(scope))).one()
    total, run, open_, timer, completed, cancelled, error = (int(v or 0) for v in found)
    return {"total": total, "running": run, "open": open_, "timer": timer, "elsewhere": run - open_ - timer,
            "completed": completed, "cancelled": cancelled, "error": error}


def _element_rows(session: Session, scope: list[int]) -> list[tuple[str, str, int]]:
    """(element, open|waiting|completed, cases) from the task rows and the timer rows: two grouped queries."""
    in_scope = ProcessInstance.definition_id.in_(scope)
    live = ProcessInstance.status == "running"
    out: list[tuple[str, str, int]] = []
    tasks = session.execute(
        select(HumanTask.name, HumanTask.state, func.count(func.distinct(HumanTask.instance_id)))
        .join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id)
        .where(in_scope, HumanTask.state.in_(("open", "completed")), (HumanTask.state != "open") | live)
        .group_by(HumanTask.name, HumanTask.state))
    out += [(name, "open" if state == "open" else "completed", int(n)) for name, state, n in tasks]
    timers = session.execute(
        select(Timer.element, Timer.state, func.count(func.distinct(Timer.instance_id)))
        .join(ProcessInstance, ProcessInstance.id == Timer.instance_id)
        .where(in_scope, Timer.state.in_((*PENDING_TIMER, "fired")), (Timer.state == "fired") | live)
        .group_by(Timer.element, Timer.state))
    for element, state, n in timers:
        out.append((element, "completed" if state == "fired" else "waiting", int(n)))
    return out


def _running_cases(session: Session, scope: list[int], names: dict[str, str]) -> list[dict[str, Any]]:
    """The newest running cases with the elements each waits at (open tasks, pending timers): three queries."""
    rows = session.execute(
        select(ProcessInstance.id, ProcessDefinition.version)
        .join(ProcessDefinition, ProcessDefinition.id == ProcessInstance.definition_id)
        .where(ProcessInstance.definition_id.in_(scope), ProcessInstance.status == "running")
        .order_by(ProcessInstance.id.desc()).limit(CASE_LIMIT)).all()
    ids = [r[0] for r in rows]
    at: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        for ident, element in session.execute(select(HumanTask.instance_id, HumanTask.name).where(
                HumanTask.instance_id.in_(ids), HumanTask.state == "open").order_by(HumanTask.id)):
            at[ident].append(names.get(element, element))
        for ident, element in session.execute(select(Timer.instance_id, Timer.element).where(
                Timer.instance_id.in_(ids), Timer.state.in_(PENDING_TIMER)).order_by(Timer.id)):
            at[ident].append(names.get(element, element) + " (timer)")
    return [{"id": ident, "version": int(version), "at": at[ident]} for ident, version in rows]


def element_names(row: ProcessDefinition) -> dict[str, str]:
    """BPMN element id -> its name in a version's diagram (and the processes it calls)."""
    parsed = SPECS.get(row)
    names: dict[str, str] = {}
    for spec in (*parsed.subprocess_specs.values(), parsed.spec):
        for task_spec in spec.task_specs.values():
            bpmn_id = getattr(task_spec, "bpmn_id", None)
            if bpmn_id:
                names[bpmn_id] = getattr(task_spec, "bpmn_name", None) or bpmn_id
    return names


def _version_counts(session: Session, key: str) -> list[dict[str, int]]:
    rows = session.execute(
        select(ProcessDefinition.version, func.count(ProcessInstance.id),
               _count_if(ProcessInstance.status == "running"))
        .outerjoin(ProcessInstance, ProcessInstance.definition_id == ProcessDefinition.id)
        .where(ProcessDefinition.key == key).group_by(ProcessDefinition.version)
        .order_by(ProcessDefinition.version.desc()))
    return [{"version": int(v), "cases": int(n), "running": int(r or 0)} for v, n, r in rows]


def process_overview(session: Session, user: User, key: str, version: int | None = None) -> Overview:
    """The overview of a process (every version, or one): Forbidden unless the user oversees the process,
    NotFound for a process or version that does not exist."""
    if not may_oversee_process(user, key):
        raise Forbidden("only the process's owners and administrators see where its cases stand")
    rows = versions(session, key)
    shown = definition(session, key, version) if version is not None else rows[0]
    scope_rows = [shown] if version is not None else rows
    scope = [r.id for r in scope_rows]
    per_version = _version_counts(session, key)
    with_cases = {v["version"] for v in per_version if v["cases"]}
    names: dict[str, str] = {}
    for r in reversed(scope_rows):  # oldest first: the newest version's names win
        if r.id == shown.id or r.version in with_cases:
            names.update(element_names(r))
    counts: dict[str, ElementCount] = {}
    for element, state, n in _element_rows(session, scope):
        item = counts.setdefault(element, ElementCount(element, names.get(element, element)))
        setattr(item, state, getattr(item, state) + n)
    filename, xml = source_file(shown)
    return Overview(key=key, name=shown.name, version=version, diagram_version=shown.version, filename=filename,
                    xml=xml, cases=_case_counts(session, scope),
                    elements=sorted(counts.values(), key=lambda e: (e.name.lower(), e.element)),
                    versions=per_version, running=_running_cases(session, scope, names))
