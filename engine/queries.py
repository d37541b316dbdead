"""Read-side queries for the inbox, task and case pages and the API. Each checks access first."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, joinedload

from engine.access import instance_filter, may_view_instance, person_filter
from engine.assignment import groups_of, may_work
from engine.clock import CLOCK
from engine.errors import NotFound
from engine.hooks import for_display
from engine.models import (
    AuditEvent,
    HumanTask,
    Organisation,
    Person,
    ProcessDefinition,
    ProcessInstance,
    Timer,
    User,
)
from engine.users import person_fields


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
    # Of the case only its title is shown: never read its data or serialized workflow for a list.
    query = (select(HumanTask).options(joinedload(HumanTask.assignee),
                                       joinedload(HumanTask.instance).load_only(ProcessInstance.title))
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


def task_form(session: Session, task: HumanTask, case: dict[str, Any] | None = None) -> dict[str, Any]:
    """The task's form (schema, UI schema) and the data it starts from (`case`: task_data, when the caller has
    it already)."""
    definition: ProcessDefinition = task.instance.definition
    schema = definition.forms.get(task.form) if task.form else None
    ui_schema = definition.forms.get(task.ui_form) if task.ui_form else None
    case = task_data(session, task) if case is None else case
    keys = (schema or {}).get("properties", {}).keys()
    return {"schema": schema, "ui_schema": ui_schema, "data": {k: case[k] for k in keys if k in case}}


def task_data(session: Session, task: HumanTask) -> dict[str, Any]:
    """The data a task's page shows, as people should see it: the case's snapshot, with the task's own values
    (its branch's, kept when it opened) over it."""
    data: dict[str, Any] = dict(for_display(session, task.instance,
                                            {**(task.instance.data or {}), **(task.context or {})}))
    return data


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


def instance_page(
    session: Session, user: User, *, process: str | None = None, status: str | None = None,
    subject: str | None = None, started_from: datetime | None = None, started_before: datetime | None = None,
    before_id: int | None = None, limit: int = 50,
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of the cases the user may see (engine.access.instance_filter, in SQL), newest first,
    keyset-paged by id: `before_id` is the previous page's last id; answers the items and the next cursor.

    Only the summary columns are read (never a case's data or serialized workflow)."""
    query = (select(ProcessInstance.id, ProcessInstance.process_key, ProcessDefinition.version, ProcessInstance.title,
                    ProcessInstance.status, Person.username, ProcessInstance.started_at, ProcessInstance.ended_at)
             .join(ProcessDefinition, ProcessDefinition.id == ProcessInstance.definition_id)
             .outerjoin(Person, Person.id == ProcessInstance.subject_id)
             .where(instance_filter(session, user))
             .order_by(ProcessInstance.id.desc()).limit(limit + 1))
    if process is not None:
        query = query.where(ProcessInstance.process_key == process)
    if status is not None:
        query = query.where(ProcessInstance.status == status)
    if subject is not None:
        query = query.where(Person.username == subject)
    if started_from is not None:
        query = query.where(ProcessInstance.started_at >= started_from)
    if started_before is not None:
        query = query.where(ProcessInstance.started_at < started_before)
    if before_id is not None:
        query = query.where(ProcessInstance.id < before_id)
    rows = session.execute(query).all()
    items = [{"id": r[0], "process": r[1], "version": r[2], "title": r[3], "status": r[4], "subject": r[5],
              "started_at": _iso(r[6]), "ended_at": _iso(r[7])} for r in rows[:limit]]
    return items, (rows[limit - 1][0] if len(rows) > limit else None)


def people_page(
    session: Session, user: User, *, q: str | None = None, organisation: str | None = None,
    after_username: str | None = None, limit: int = 50,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the people the user may see, by username, keyset-paged (`after_username` is the previous
    page's last); each as engine.users.person_dict shows one. Answers the items and the next page's username.

    `q` matches a substring of the name or the username, ignoring case (on SQLite only ASCII letters fold)."""
    query = (select(Person).options(joinedload(Person.organisation), joinedload(Person.supervisor),
                                    joinedload(Person.manager))
             .where(person_filter(user)).order_by(Person.username).limit(limit + 1))
    if q is not None:
        needle = q.lower()
        query = query.where(or_(func.lower(Person.name).contains(needle, autoescape=True),
                                func.lower(Person.username).contains(needle, autoescape=True)))
    if organisation is not None:
        query = query.where(Person.organisation_id.in_(
            select(Organisation.id).where(Organisation.code == organisation)))
    if after_username is not None:
        query = query.where(Person.username > after_username)
    rows = list(session.scalars(query))
    page = rows[:limit]
    ids = [p.id for p in page]
    supervises: dict[int | None, list[str]] = defaultdict(list)
    manages: dict[int | None, list[str]] = defaultdict(list)
    if ids:  # two queries for the whole page, ordered as person_dict orders them
        for leader, username in session.execute(select(Person.supervisor_id, Person.username)
                                                .where(Person.supervisor_id.in_(ids)).order_by(Person.username)):
            supervises[leader].append(username)
        for leader, username in session.execute(select(Person.manager_id, Person.username)
                                                .where(Person.manager_id.in_(ids)).order_by(Person.username)):
            manages[leader].append(username)
    items = [{**person_fields(p), "supervisor_of": supervises[p.id], "manager_of": manages[p.id]} for p in page]
    return items, (page[-1].username if len(rows) > limit else None)
