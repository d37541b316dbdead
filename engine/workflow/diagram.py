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

from engine.core.errors import Invalid
from engine.core.models import AuditEvent
from engine.workflow import serialization
from engine.workflow.definitions import SPECS
from engine.workflow.models import HumanTask, ProcessInstance, Timer
from engine.workflow.versions import source_file


def _bpmn_ids(tasks: Any) -> set[str]:
    return {t.task_spec.bpmn_id for t in tasks if getattr(t.task_spec, "bpmn_id", None)}


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
        completed = _bpmn_ids(wf.get_tasks(state=TaskState.COMPLETED))
        if row.status == "running":
            waiting |= _bpmn_ids(wf.get_tasks(state=TaskState.WAITING))
        cancelled = _bpmn_ids(wf.get_tasks(state=TaskState.CANCELLED)) - completed
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
