"""Where a case stands, drawn on its diagram: which BPMN elements are done, open and waiting.

The web layer never touches SpiffWorkflow; this query restores the case (read-only) and reads its task
tree, so script tasks, gateways and events are shown too, not only what the audit log names. The open
user tasks and the waiting timers come from their rows, which is what people act on.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core.errors import Invalid, NotFound
from engine.core.models import AuditEvent
from engine.people.models import User
from engine.workflow import serialization
from engine.workflow.access import may_oversee_process, may_view_instance, visible_instances
from engine.workflow.definitions import SPECS
from engine.workflow.models import HumanTask, PassedElement, ProcessInstance, Timer
from engine.workflow.versions import source_file


def _bpmn_ids(tasks: Any) -> set[str]:
    return {t.task_spec.bpmn_id for t in tasks if getattr(t.task_spec, "bpmn_id", None)}


def diagram_access(session: Session, user: User, instance_id: int) -> tuple[ProcessInstance, bool]:
    """The case whose diagram the user opens, and whether they may see the case itself (True) or only where it
    stands (False: a process owner of its process, who sees element states and nothing of the case's data).
    NotFound for anyone else: a case's existence is private."""
    row = session.get(ProcessInstance, instance_id)
    if row is None:
        raise NotFound("no such case")
    if may_view_instance(session, user, row):
        return row, True
    if may_oversee_process(user, row.process_key):
        return row, False
    raise NotFound("no such case")


def case_links(session: Session, user: User, process_key: str, ids: list[int]) -> dict[int, str]:
    """For each of these cases of one process, what the user may open: "case" (the case itself), "diagram"
    (where it stands, for its process owners) or nothing (absent from the answer)."""
    seen = visible_instances(session, user, ids)
    states = may_oversee_process(user, process_key)
    return {i: "case" if i in seen else "diagram" for i in ids if i in seen or states}


def element_states(session: Session, row: ProcessInstance) -> dict[str, Any]:
    """instance_diagram without anything of the case but its number, process, version and status: the element
    states and the diagram (names come from the diagram itself), for a process owner who may not see the case."""
    data = instance_diagram(session, row)
    data["names"] = {}
    return data


def passed_elements(session: Session, instance_id: int) -> dict[str, set[str]]:
    """The elements compaction took out of a case's workflow, by final state (engine.workflow.compaction)."""
    found: dict[str, set[str]] = {"completed": set(), "cancelled": set()}
    for element, state in session.execute(select(PassedElement.element, PassedElement.state).distinct()
                                          .where(PassedElement.instance_id == instance_id)):
        found.setdefault(state, set()).add(element)
    return found


def instance_diagram(session: Session, row: ProcessInstance) -> dict[str, Any]:
    """The case's diagram and its element states. The caller has checked that the user may see the case."""
    definition = row.definition
    filename, xml = source_file(definition)
    open_tasks = session.scalars(select(HumanTask).where(HumanTask.instance_id == row.id, HumanTask.state == "open")
                                 .order_by(HumanTask.id)).all()
    timers = session.scalars(select(Timer).where(Timer.instance_id == row.id,
                                                 Timer.state.in_(("waiting", "claimed")))).all()
    completed: set[str] = set()
    waiting: set[str] = {t.element for t in timers}
    cancelled: set[str] = set()
    try:
        parsed = SPECS.get(definition)
        wf = serialization.loads(row.serialized, parsed.spec, parsed.subprocess_specs)
        taken_out = passed_elements(session, row.id)  # what compaction took out of the tree
        completed = _bpmn_ids(wf.get_tasks(state=TaskState.COMPLETED)) | taken_out["completed"]
        if row.status == "running":
            waiting |= _bpmn_ids(wf.get_tasks(state=TaskState.WAITING))
        cancelled = (_bpmn_ids(wf.get_tasks(state=TaskState.CANCELLED)) | taken_out.get("cancelled", set())) - completed
    except (Invalid, ValueError, KeyError, TypeError):
        # A case that cannot be restored still shows what its rows and history say.
        completed = {str(e.detail.get("task")) for e in session.scalars(select(AuditEvent).where(
            AuditEvent.instance_id == row.id, AuditEvent.kind == "task_completed")) if e.detail.get("task")}
    opened = {t.name for t in open_tasks}
    waiting -= opened
    names = {t.name: t.title for t in open_tasks}
    names.update({t.element: t.name for t in timers})
    return {
        "instance": row.id, "process": row.process_key, "version": definition.version, "status": row.status,
        "filename": filename, "xml": xml,
        "completed": sorted(completed - opened - waiting), "open": sorted(opened), "waiting": sorted(waiting),
        "cancelled": sorted(cancelled - opened - waiting), "names": names,
    }
