"""Read-side queries for the inbox, task and case pages and the API. Each checks access first."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, joinedload

from engine.access import instance_filter, may_view_instance
from engine.assignment import groups_of, may_work
from engine.clock import CLOCK
from engine.errors import NotFound
from engine.hooks import for_display
from engine.models import AuditEvent, HumanTask, ProcessDefinition, ProcessInstance, Timer, User


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def task_dict(task: HumanTask) -> dict[str, Any]:
    """A task as the inbox and the API list it."""
    now = CLOCK.now()
    return {
        "id": task.id, "instance": task.instance_id, "name": task.name, "title": task.title, "lane": task.lane,
        "assignee": task.assignee.username if task.assignee else None, "group": task.assigned_group,
        "due_at": _iso(task.due_at), "overdue": bool(task.due_at and task.state == "open" and task.due_at < now),
        "clause": task.clause, "state": task.state, "created_at": _iso(task.created_at),
        "case_title": task.instance.title if task.instance else None,
    }


def inbox(
    session: Session, user: User, after: int | None = None, limit: int = 50
) -> tuple[list[HumanTask], int | None]:
    """Open tasks the user may work on, oldest first, keyset-paged by task id."""
    mine = []
    if user.person_id is not None:
        mine.append(HumanTask.assignee_id == user.person_id)
    groups = groups_of(session, user)
    if groups:
        mine.append(HumanTask.assigned_group.in_(groups))
    if not mine:
        return [], None
    query = (select(HumanTask).options(joinedload(HumanTask.assignee), joinedload(HumanTask.instance))
             .where(HumanTask.state == "open", or_(*mine)).order_by(HumanTask.id).limit(limit + 1))
    if after is not None:
        query = query.where(HumanTask.id > after)
    rows = list(session.scalars(query))
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], next_cursor


def get_task(session: Session, user: User, task_id: int) -> tuple[HumanTask, bool]:
    """A task the user may see, and whether they may work on it. NotFound otherwise."""
    task = session.get(HumanTask, task_id)
    if task is None:
        raise NotFound("no such task")
    workable = task.state == "open" and may_work(session, user, task)
    if not workable and not may_view_instance(session, user, task.instance):
        raise NotFound("no such task")
    return task, workable


def task_form(session: Session, task: HumanTask) -> dict[str, Any]:
    """The task's form (schema, UI schema) and the data it starts from."""
    definition: ProcessDefinition = task.instance.definition
    schema = definition.forms.get(task.form) if task.form else None
    ui_schema = definition.forms.get(task.ui_form) if task.ui_form else None
    case = for_display(session, task.instance, task.instance.data or {})
    keys = (schema or {}).get("properties", {}).keys()
    return {"schema": schema, "ui_schema": ui_schema, "data": {k: case[k] for k in keys if k in case}}


def get_instance(session: Session, user: User, instance_id: int) -> ProcessInstance:
    """A case the user may see, or NotFound (its existence is private)."""
    row = session.get(ProcessInstance, instance_id)
    if row is None or not may_view_instance(session, user, row):
        raise NotFound("no such case")
    return row


def instance_dict(session: Session, row: ProcessInstance) -> dict[str, Any]:
    """A case as the API shows it: status, data, open tasks, waiting timers and the audit trail."""
    tasks = session.scalars(select(HumanTask).options(joinedload(HumanTask.assignee))
                            .where(HumanTask.instance_id == row.id, HumanTask.state == "open")
                            .order_by(HumanTask.id)).all()
    timers = session.scalars(select(Timer).where(Timer.instance_id == row.id, Timer.state.in_(("waiting", "claimed")))
                             .order_by(Timer.due_at)).all()
    events = session.scalars(select(AuditEvent).where(AuditEvent.instance_id == row.id)
                             .order_by(AuditEvent.id)).all()
    return {
        "id": row.id, "process": row.process_key, "version": row.definition.version, "title": row.title,
        "status": row.status, "data": for_display(session, row, row.data), "started_at": _iso(row.started_at),
        "started_by": row.started_by, "ended_at": _iso(row.ended_at),
        "tasks": [task_dict(t) for t in tasks],
        "timers": [{"name": t.name, "element": t.element, "due_at": _iso(t.due_at)} for t in timers],
        "events": [{"at": _iso(e.at), "actor": e.actor, "kind": e.kind, "detail": e.detail} for e in events],
    }


def list_instances(session: Session, user: User, status: str | None = None, limit: int = 100) -> list[ProcessInstance]:
    """The cases a user may see, newest first."""
    query = select(ProcessInstance).where(instance_filter(session, user)).order_by(
        ProcessInstance.id.desc()).limit(limit)
    if status:
        query = query.where(ProcessInstance.status == status)
    return list(session.scalars(query))
