"""Who may see and do what. Every view and API call asks these; nothing else decides access."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, false, or_, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import ColumnElement

from engine.people.groups import task_groups_of
from engine.people.models import Person, User
from engine.workflow.assignment import (
    groups_of,
    heads_or_delegates_for,
    hr_agency,
    may_work,
    oversight_groups,
    person_by_username,
)
from engine.workflow.models import HumanTask, ProcessInstance
from engine.workflow.registry import REGISTRY


def sees_all_cases(user: User) -> bool:
    """Admins and HR see every case (HR of one agency: but another agency's employees' private cases)."""
    return user.has_role("admin", "hr")


def instance_filter(session: Session, user: User) -> ColumnElement[bool]:
    """A WHERE clause selecting the instances a user may see (for lists)."""
    if sees_all_cases(user):
        agency = hr_agency(user)
        if agency is None:
            return ProcessInstance.id.is_not(None)
        return or_(ProcessInstance.process_key.not_in(REGISTRY.agency_private()), ProcessInstance.subject_id.is_(None),
                   ProcessInstance.subject_id.in_(select(Person.id).where(Person.organisation_id == agency)),
                   ProcessInstance.started_by == user.username)
    clauses: list[ColumnElement[bool]] = [ProcessInstance.started_by == user.username]
    for role in REGISTRY.overseeing_roles():  # OCPE: every placement (the register)
        if user.has_role(role):
            clauses.append(ProcessInstance.process_key.in_(REGISTRY.overseen_by(role)))
    task_match: list[ColumnElement[bool]] = []
    if user.person_id is not None:
        clauses.append(ProcessInstance.subject_id == user.person_id)
        task_match.append(HumanTask.assignee_id == user.person_id)
        task_match.append(HumanTask.assigned_group.in_(task_groups_of(user.person_id)))  # their work groups
    groups = groups_of(session, user)
    groups |= oversight_groups(groups)
    if groups:
        task_match.append(HumanTask.assigned_group.in_(groups))
    if task_match:
        clauses.append(exists().where(HumanTask.instance_id == ProcessInstance.id, or_(*task_match)))
    return or_(*clauses)


def may_view_instance(session: Session, user: User, instance: ProcessInstance) -> bool:
    """True when the user started the case, is its subject, had a task in it, or oversees it."""
    return session.scalar(
        select(exists().where(ProcessInstance.id == instance.id, instance_filter(session, user)))
    ) is True


def visible_instances(session: Session, user: User, ids: list[int]) -> set[int]:
    """Which of these cases the user may see (may_view_instance for a list, in one query)."""
    if not ids:
        return set()
    return set(session.scalars(select(ProcessInstance.id).where(ProcessInstance.id.in_(ids),
                                                                instance_filter(session, user))))


def may_start(session: Session, user: User, process_key: str, data: dict[str, Any]) -> bool:
    """HR and admins start any case; a supervisor or manager starts one for their own staff, and the CEO of their
    organisation (or a delegate) for anyone of it;
    a case about nobody in particular (or about oneself, like a placement application) anyone may start."""
    if user.has_role("admin", "hr"):
        return True
    subject_name = data.get("employee")
    if not subject_name:
        return True
    subject = person_by_username(session, subject_name)
    if subject is None or user.person_id is None:
        return False
    if REGISTRY.self_started(process_key) and subject.id == user.person_id:
        return True
    return user.person_id in _leaders_of(subject) or heads_or_delegates_for(session, user, subject.organisation_id)


def may_send_message(session: Session, user: User, instance: ProcessInstance) -> bool:
    """A message or signal from outside reaches a case from those who may work one of its open tasks, and admins
    (API.md: the same authorization as the case's tasks)."""
    if user.has_role("admin"):
        return True
    open_tasks = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                         HumanTask.state == "open"))
    return any(may_work(session, user, task) for task in open_tasks)


def _leaders_of(person: Person) -> set[int]:
    leaders: set[int] = set()
    if person.supervisor is not None:
        leaders.add(person.supervisor.id)
        if person.supervisor.supervisor_id is not None:
            leaders.add(person.supervisor.supervisor_id)
    if person.manager_id is not None:
        leaders.add(person.manager_id)
    return leaders


def may_manage_people(user: User) -> bool:
    """Admins and HR edit people records and record leave."""
    return user.has_role("admin", "hr")


def may_deploy(user: User) -> bool:
    """Admins and process owners deploy definitions."""
    return user.has_role("admin", "process_owner")


def may_oversee_process(user: User, process_key: str) -> bool:
    """Who sees where the cases of a process stand (element states and counts, no case data): its process owners
    and admins. Ownership is the process_owner role, which owns every process the studio lists (there is no
    per-process owner record); the key is asked so that a finer ownership is decided here and nowhere else."""
    return bool(process_key) and user.has_role("admin", "process_owner")


def person_filter(user: User) -> ColumnElement[bool]:
    """A WHERE clause selecting the people records a user may see: engine.workflow.access.may_view_person in SQL
    (admin and HR: everyone; anyone else: themselves and the people they lead, as _leaders_of counts them:
    those they supervise, those supervised by those, and those they manage)."""
    if user.has_role("admin", "hr"):
        return Person.id.is_not(None)
    if user.person_id is None:
        return false()
    me = user.person_id
    staff = aliased(Person)
    return or_(Person.id == me, Person.supervisor_id == me, Person.manager_id == me,
               Person.supervisor_id.in_(select(staff.id).where(staff.supervisor_id == me)))


def may_view_person(session: Session, user: User, person: Person) -> bool:
    """A person sees their own record and their staff's; HR and admins see everyone's."""
    if user.has_role("admin", "hr") or user.person_id == person.id:
        return True
    return user.person_id is not None and user.person_id in _leaders_of(person)
