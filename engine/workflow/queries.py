"""Read-side queries for the inbox, task and case pages and the API. Each checks access first."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    CompoundSelect,
    and_,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.sql import ColumnElement

from engine.core.audit import write_pending
from engine.core.clock import CLOCK
from engine.core.errors import NotFound
from engine.core.models import AuditEvent, table_of
from engine.people.groups import groups_of_person
from engine.people.models import Organisation, Person, User
from engine.people.users import person_fields
from engine.workflow.access import instance_filter, may_view_instance, person_filter
from engine.workflow.assignment import (
    NEEDS_APPOINTMENT,
    SUBJECT_LANE,
    groups_of,
    hr_agency,
    may_work,
    needs_appointment,
    oversight_groups,
    separate_from,
    separation_problem,
    subject_outside_own_lane,
)
from engine.workflow.definitions import SPECS
from engine.workflow.models import HumanTask, ProcessDefinition, ProcessInstance, Timer
from engine.workflow.registry import REGISTRY, display_data, for_display


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def task_dict(task: HumanTask) -> dict[str, Any]:
    """A task as the inbox and the API list it."""
    return _task_item((task.id, task.instance_id, task.name, task.title, task.lane,
                       task.assignee.username if task.assignee else None, task.assigned_group, task.due_at,
                       task.clause, task.state, task.created_at, task.instance.title if task.instance else None))


def _task_item(fields: Sequence[Any]) -> dict[str, Any]:
    """task_dict of a task's fields, in _TASK_ITEMS's order."""
    ident, instance, name, title, lane, assignee, group, due_at, clause, state, created_at, case_title = fields
    return {
        "id": ident, "instance": instance, "name": name, "title": title, "lane": lane, "assignee": assignee,
        "group": group, "group_label": group_label(group), "needs_appointment": needs_appointment(group),
        "due_at": _iso(due_at), "overdue": bool(due_at and state == "open" and due_at < CLOCK.now()),
        "clause": clause, "state": state, "created_at": _iso(created_at), "case_title": case_title,
    }


def group_label(group: str | None) -> str | None:
    """A task group as people read it: "HR", "OCPE", "the CEO's office", "needs an appointment"."""
    if group is None:
        return None
    if needs_appointment(group):
        return "needs an appointment"
    if group.startswith("ceo:"):
        return "the CEO's office"
    return group.upper() + " group"


# The lists are read with Core statements built once (columns, not objects: the ORM's loading costs more than
# the query). Each row is _task_item's fields in order.
_TASK = table_of(HumanTask)
_CASE = table_of(ProcessInstance)
_PERSON = table_of(Person)
_TASK_ITEMS = (select(_TASK.c.id, _TASK.c.instance_id, _TASK.c.name, _TASK.c.title, _TASK.c.lane, _PERSON.c.username,
                      _TASK.c.assigned_group, _TASK.c.due_at, _TASK.c.clause, _TASK.c.state, _TASK.c.created_at,
                      _CASE.c.title)
               .select_from(_TASK.join(_CASE, _CASE.c.id == _TASK.c.instance_id)
                            .outerjoin(_PERSON, _PERSON.c.id == _TASK.c.assignee_id))
               .where(_TASK.c.state == "open").order_by(_TASK.c.id))
_PEOPLE = _PERSON.alias("people")  # for subqueries: _PERSON is the assignee in _TASK_ITEMS
_TIMER = table_of(Timer)
_EVENT = table_of(AuditEvent)


# A case's open tasks, waiting timers and history, side by side in one row layout: _task_item's fields, then a
# timer's (name, element, due_at), then an event's (id, at, actor, kind, detail).
_PART_TASK = list(_TASK_ITEMS.selected_columns)
_PART_TIMER = [_TIMER.c.name, _TIMER.c.element, _TIMER.c.due_at]
_PART_EVENT = [_EVENT.c.id, _EVENT.c.at, _EVENT.c.actor, _EVENT.c.kind, _EVENT.c.detail]
_TASK_SLICE = slice(1, 1 + len(_PART_TASK))  # after the part number
_TIMER_SLICE = slice(_TASK_SLICE.stop, _TASK_SLICE.stop + len(_PART_TIMER))
_EVENT_SLICE = slice(_TIMER_SLICE.stop + 1, _TIMER_SLICE.stop + len(_PART_EVENT))  # without the event's id


def _case_parts() -> CompoundSelect[Any]:
    """The three in one statement (one round trip instead of three): a UNION ALL of three selects, each filling
    its own columns and typed NULLs in the others' (PostgreSQL types two bare NULLs as text), told apart by the
    first column (0 tasks, 1 timers, 2 events)."""
    layout = [*_PART_TASK, *_PART_TIMER, *_PART_EVENT]

    def padded(part: int, own: list[Any]) -> list[Any]:
        return [literal_column(str(part)).label("part"), *(
            (column if any(column is mine for mine in own) else cast(null(), column.type)).label(f"c{position}")
            for position, column in enumerate(layout, start=1))]  # named by their place in the row

    case: BindParameter[int] = bindparam("instance_id")
    union = union_all(
        select(*padded(0, _PART_TASK)).select_from(_TASK_ITEMS.get_final_froms()[0])
        .where(_TASK.c.state == "open", _TASK.c.instance_id == case),
        select(*padded(1, _PART_TIMER)).where(_TIMER.c.instance_id == case,
                                              _TIMER.c.state.in_(("waiting", "claimed"))),
        select(*padded(2, _PART_EVENT)).where(_EVENT.c.instance_id == case))
    # Each part in its own order: tasks by id, timers by due time, events by id (NULL in the other parts).
    task_id, timer_due, event_id = _TASK_SLICE.start, _TIMER_SLICE.stop - 1, _EVENT_SLICE.start - 1
    by = union.selected_columns
    return union.order_by(by.part, *(by[f"c{position}"] for position in (task_id, timer_due, event_id)))


_CASE_PARTS = _case_parts()
_DEFINITION = table_of(ProcessDefinition)
_CASE_VIEW = (select(_CASE.c.id, _CASE.c.process_key, _DEFINITION.c.version, _CASE.c.title, _CASE.c.status,
                     _CASE.c.data, _CASE.c.started_at, _CASE.c.started_by, _CASE.c.ended_at)
              .select_from(_CASE.join(_DEFINITION, _DEFINITION.c.id == _CASE.c.definition_id))
              .where(_CASE.c.id == bindparam("instance_id")))


def inbox(
    session: Session, user: User, after: int | None = None, limit: int = 50
) -> tuple[list[dict[str, Any]], int | None]:
    """Open tasks the user may work on, oldest first, keyset-paged by task id, as task_dict shows them."""
    mine = []
    if user.person_id is not None:
        mine.append(_TASK.c.assignee_id == user.person_id)
    groups = groups_of(session, user)
    if user.person_id is not None:  # the work groups an administrator put them in (a list keeps the index plan)
        groups |= groups_of_person(session, user.person_id)
    if groups:
        group_tasks: ColumnElement[bool] = _TASK.c.assigned_group.in_(groups)
        if user.person_id is not None:  # separation of duties: never a group's step of one's own case
            group_tasks = and_(group_tasks, or_(
                _CASE.c.subject_id.is_(None), _CASE.c.subject_id != user.person_id, _TASK.c.lane.is_(None),
                _TASK.c.lane == SUBJECT_LANE))
        agency = hr_agency(user)
        if agency is not None:  # HR of one agency: its own employees' private cases only (as may_work)
            group_tasks = and_(group_tasks, or_(
                _TASK.c.assigned_group != "hr", _CASE.c.subject_id.is_(None),
                _CASE.c.process_key.not_in(REGISTRY.agency_private()),
                _CASE.c.subject_id.in_(select(_PEOPLE.c.id).where(_PEOPLE.c.organisation_id == agency))))
        mine.append(group_tasks)
    if not mine:
        return [], None
    # Of the case only its title is shown: never read its data or serialized workflow for a list.
    query = _TASK_ITEMS.where(or_(*mine)).limit(limit + 1)
    if after is not None:
        query = query.where(_TASK.c.id > after)
    rows = session.connection().execute(query).all()
    next_cursor = rows[limit - 1][0] if len(rows) > limit else None
    return [_task_item(r) for r in rows[:limit]], next_cursor


def awaiting_appointment(session: Session, user: User, limit: int = 200) -> list[dict[str, Any]]:
    """Open tasks that wait for an appointment and that the login may resolve by appointing someone: HR and
    administrators see them all, the CEO's office its organisation's. Oldest first."""
    if user.has_role("admin", "hr"):
        where = or_(_TASK.c.assigned_group == NEEDS_APPOINTMENT,
                    _TASK.c.assigned_group.like(f"{NEEDS_APPOINTMENT}:%"))
    else:
        groups = oversight_groups(groups_of(session, user))
        if not groups:
            return []
        where = _TASK.c.assigned_group.in_(groups)
    rows = session.connection().execute(_TASK_ITEMS.where(where).limit(limit)).all()
    return [_task_item(r) for r in rows]


def blocked_reason(session: Session, user: User, task: HumanTask) -> str | None:
    """Why the login cannot complete an open task it can see, in words (None when it can, or it is not open)."""
    if task.state != "open":
        return None
    if needs_appointment(task.assigned_group):
        return ("No one on record may take this step, so it waits for an appointment: HR or the CEO's office "
                "appoints someone from the case's record page.")
    if may_work(session, user, task):
        separated = separate_from(task_spec(task.instance.definition, task.name))
        reason = separation_problem(session, user, task.instance_id, separated)
        return f"You cannot complete this step: {reason}." if reason else None
    if subject_outside_own_lane(user, task.instance, task.lane):
        return "This step of your own case is for someone else (separation of duties)."
    return None


def get_task(session: Session, user: User, task_id: int) -> tuple[HumanTask, bool]:
    """A task the user may see, and whether they may work on it. NotFound otherwise."""
    task = session.get(HumanTask, task_id)
    if task is None:
        raise NotFound("no such task")
    workable = task.state == "open" and may_work(session, user, task)
    if workable:
        separated = separate_from(task_spec(task.instance.definition, task.name))
        workable = separation_problem(session, user, task.instance_id, separated) is None
    if not workable and not may_view_instance(session, user, task.instance):
        raise NotFound("no such task")
    return task, workable


def task_spec(definition: ProcessDefinition, name: str) -> Any:
    """The parsed spec of a task element (in the process or one of its subprocesses), or None."""
    parsed = SPECS.get(definition)
    for spec in (parsed.spec, *parsed.subprocess_specs.values()):
        if spec is not None and name in spec.task_specs:
            return spec.task_specs[name]
    return None


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
    return _case_view(session, row.id, row.process_key, row.definition.version, row.title, row.status, row.data,
                      row.started_at, row.started_by, row.ended_at)


def instance_view(session: Session, instance_id: int) -> dict[str, Any] | None:
    """instance_dict of a case by id, read as columns (never its serialized workflow); None when there is none.
    The caller has decided that the case may be seen."""
    found = session.connection().execute(_CASE_VIEW, {"instance_id": instance_id}).first()
    return None if found is None else _case_view(session, *found)


def _case_view(session: Session, ident: int, process_key: str, version: int, title: str | None, status: str,
               data: Any, started_at: datetime, started_by: str, ended_at: datetime | None) -> dict[str, Any]:
    params = {"instance_id": ident}
    session.flush()  # the statements below are Core: what this transaction has changed must be written first
    write_pending(session)
    parts: list[list[Any]] = [[], [], []]
    for row in session.connection().execute(_CASE_PARTS, params):
        parts[row[0]].append(row)
    return {
        "id": ident, "process": process_key, "version": version, "title": title, "status": status,
        "data": display_data(session, process_key, ident, data), "started_at": _iso(started_at),
        "started_by": started_by, "ended_at": _iso(ended_at),
        "tasks": [_task_item(t[_TASK_SLICE]) for t in parts[0]],
        "timers": [{"name": name, "element": element, "due_at": _iso(due)}
                   for name, element, due in (t[_TIMER_SLICE] for t in parts[1])],
        "events": [{"at": _iso(at), "actor": actor, "kind": kind, "detail": detail}
                   for at, actor, kind, detail in (e[_EVENT_SLICE] for e in parts[2])],
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
    """One page of the cases the user may see (engine.workflow.access.instance_filter, in SQL), newest first,
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
    page's last); each as engine.people.users.person_dict shows one. Answers the items and the next page's username.

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


def names_in(session: Session, data: Any) -> dict[str, str]:
    """username -> name for every person whose username is a text value of `data` (at any depth), so pages and
    instructions can show names where the case holds usernames."""
    found: set[str] = set()

    def walk(value: Any, depth: int = 0) -> None:
        if depth > 20 or len(found) > 500:
            return
        if isinstance(value, str):
            if 0 < len(value) <= 80:
                found.add(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item, depth + 1)
        elif isinstance(value, list):
            for item in value[:200]:
                walk(item, depth + 1)

    walk(data)
    if not found:
        return {}
    rows = session.execute(select(Person.username, Person.name).where(Person.username.in_(sorted(found))))
    return {username: name for username, name in rows}
