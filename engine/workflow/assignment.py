"""Lanes are roles: resolve a lane to the person (or group) who should do a task, when the task opens.

Authority is decided here, once, for every path (web, API, CLI, timers, migration of running cases):

* a lane resolves against the people records, or against an appointment the case records (`assign`), which only
  an authority-checked service writes (a policy's service, e.g. pay_progression.services.appoint, or a start whose
  caller may appoint);
* the CEO lane is the chief executive of the case subject's own organisation and that CEO's delegates
  (group ``ceo:<organisation id>``), never every organisation's head;
* separation of duties: a case's subject acts only in the subject's own lane (``Employee``), and a task whose
  BPMN element names other elements in its ``separateFrom`` property is never done by whoever did those;
* a lane that resolves to nobody who may act does not fall to someone else: the task waits in the group
  ``appointment:<organisation id>`` (no one works it), flagged "needs an appointment" for HR and the CEO's office.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from engine.core.db import connection_of
from engine.core.models import table_of
from engine.people.groups import PREFIX as WORK_GROUP
from engine.people.groups import group_by_name, group_key, in_work_group
from engine.people.models import Organisation, Person, PersonRef, Someone, User
from engine.people.users import headed_organisations
from engine.workflow.models import HumanTask, ProcessInstance
from engine.workflow.registry import REGISTRY

_ORGANISATION = table_of(Organisation)

#: The lanes every process may use; a policy package adds its own (`ProcessPackage.lanes`: FormerManager, Home,
#: Host). Case data may name a person for a lane in `assign` (an officer the CEO appointed instead of the
#: supervisor's manager, D19-6/7/8), which wins over the people records.
CORE_LANES = frozenset({"Employee", "Supervisor", "Manager", "CEO", "HR", "OCPE"})
#: Lanes that are a group of people (the CEO lane's group is the subject's organisation's: see ceo_group).
GROUP_LANES = {"HR": "hr", "OCPE": "ocpe"}
CEO_LANE = "CEO"
#: The lane of the person a case is about: the only lane in which they may act on their own case.
SUBJECT_LANE = "Employee"
#: Tasks of a lane-less diagram (made elsewhere) whose starter has no people record go to HR.
FALLBACK_GROUP = "hr"
#: The group of a task nobody may take yet: no one works it; HR and the CEO's office appoint someone.
NEEDS_APPOINTMENT = "appointment"
#: The BPMN property naming the elements whose performers may not perform this one (comma-separated ids).
SEPARATE_FROM = "separateFrom"


@dataclass(frozen=True)
class Assignment:
    """Who a task is for: one person, or every member of a group."""

    person: Someone | None
    group: str | None
    note: str | None = None

    @property
    def needs_appointment(self) -> bool:
        """True when no one may take the task until someone is appointed to its lane."""
        return needs_appointment(self.group)


def needs_appointment(group: str | None) -> bool:
    """True for the group of a task that waits for an appointment."""
    return group is not None and (group == NEEDS_APPOINTMENT or group.startswith(NEEDS_APPOINTMENT + ":"))


def ceo_group(organisation_id: int | None) -> str | None:
    """The task group of an organisation's CEO and that CEO's delegates."""
    return f"ceo:{organisation_id}" if organisation_id is not None else None


def appointment_group(organisation_id: int | None) -> str:
    """The group of a task that waits for an appointment, by the subject's organisation."""
    return f"{NEEDS_APPOINTMENT}:{organisation_id}" if organisation_id is not None else NEEDS_APPOINTMENT


def person_by_username(session: Session, username: Any) -> Person | None:
    """The person with this username, or None."""
    if not isinstance(username, str) or not username:
        return None
    return session.scalars(_BY_USERNAME, {"username": username}).first()


def person_ref(session: Session, username: Any) -> PersonRef | None:
    """The id and username of the person with this username, or None (one Core statement: the lookup of every
    task of a lane-less diagram)."""
    if not isinstance(username, str) or not username:
        return None
    found = connection_of(session).execute(_REF_BY_USERNAME, {"username": username}).first()
    return PersonRef(found[0], found[1]) if found is not None else None


# Built once: hot paths.
_BY_USERNAME = select(Person).where(Person.username == bindparam("username"))
_PEOPLE = table_of(Person)
_REF_BY_USERNAME = select(_PEOPLE.c.id, _PEOPLE.c.username).where(_PEOPLE.c.username == bindparam("username"))


def manager_of(person: Person) -> Person | None:
    """The supervisor's manager: the manager on record, else the supervisor's supervisor."""
    if person.manager is not None:
        return person.manager
    return person.supervisor.supervisor if person.supervisor is not None else None


#: The work groups a deploy may name as lanes (engine.people.groups): set by whoever checks a diagram with the
#: database at hand (definitions.deploy, the studio's checks); without it only roles are lanes.
DEPLOY_GROUPS: ContextVar[frozenset[str]] = ContextVar("deploy_groups", default=frozenset())


@contextmanager
def lanes_with_groups(names: frozenset[str]) -> Iterator[None]:
    """Check diagrams knowing these work groups as lanes."""
    token = DEPLOY_GROUPS.set(names)
    try:
        yield
    finally:
        DEPLOY_GROUPS.reset(token)


def role_lanes() -> frozenset[str]:
    """The lanes that are roles: the core's and the loaded policy packages'."""
    return CORE_LANES | REGISTRY.lanes()


def known_lanes() -> frozenset[str]:
    """Every lane a diagram may use: the roles, and the work groups known while it is checked."""
    return role_lanes() | DEPLOY_GROUPS.get()


def case_subject(session: Session, process_key: str | None, data: Mapping[str, Any]) -> Person | None:
    """The person a case is about, from the data field its process names (engine.workflow.registry)."""
    return person_by_username(session, REGISTRY.subject_name(process_key, data))


def resolve_lane(session: Session, process_key: str | None, lane: str | None, data: dict[str, Any], starter: str,
                 exclude: Iterable[str] = ()) -> Assignment:
    """Resolve a lane against the case data and the people records as they are now.

    `exclude` are usernames that may not take this task (separation of duties): a lane that resolves to one of
    them, or to the case's subject outside the subject's lane, waits for an appointment instead.
    """
    if lane is None:
        starter_person = person_ref(session, starter)
        return Assignment(starter_person, None if starter_person else FALLBACK_GROUP)
    if lane in GROUP_LANES:
        return Assignment(None, GROUP_LANES[lane])
    subject = case_subject(session, process_key, data)
    org = subject.organisation_id if subject is not None else None
    raw = data.get("assign")
    assign: dict[str, Any] = raw if isinstance(raw, dict) else {}
    person: Person | None = None
    if assign.get(lane):
        person = person_by_username(session, assign[lane])
        source = f"appointed for {lane}"
    elif lane == CEO_LANE:
        if subject is not None and has_ceo_office(session, org):
            return Assignment(None, ceo_group(org))
        return Assignment(None, appointment_group(org), "the employee's organisation has no CEO or delegate on "
                          "record: the task waits until someone is appointed")
    elif lane not in role_lanes() and (group := group_by_name(session, lane)) is not None:
        return Assignment(None, group_key(group.id))  # a work group: every member's inbox, one member does it
    else:
        person, source = _from_records(session, process_key, lane, data, subject), "people records"
    if person is None:
        return Assignment(None, appointment_group(org), f"no one on record for lane {lane}: the task waits until "
                          "someone is appointed")
    excluded = set(exclude)
    if subject is not None and person.id == subject.id and lane != SUBJECT_LANE:
        return Assignment(None, appointment_group(org), f"the {source} name the employee for lane {lane}; the "
                          "employee never takes this step of their own case: the task waits for an appointment")
    if person.username in excluded:
        return Assignment(None, appointment_group(org), f"the {source} name {person.username} for lane {lane}, "
                          "who took a step this one must be separate from: the task waits for an appointment")
    return Assignment(person, None, source if source != "people records" else None)


def _from_records(session: Session, process_key: str | None, lane: str, data: dict[str, Any],
                  subject: Person | None) -> Person | None:
    if lane == SUBJECT_LANE:
        return subject
    if lane == "Supervisor":
        return subject.supervisor if subject is not None else None
    if lane == "Manager":
        return manager_of(subject) if subject is not None else None
    resolver = REGISTRY.lane_resolver(process_key, lane)
    return resolver(session, data, subject) if resolver is not None else None


def has_ceo_office(session: Session, organisation_id: int | None) -> bool:
    """True when the organisation has a CEO or a CEO delegate on record."""
    if organisation_id is None:
        return False
    head = session.scalar(select(_ORGANISATION.c.ceo_id).where(_ORGANISATION.c.id == organisation_id))
    if head is not None:
        return True
    return session.scalar(select(Person.id).where(Person.organisation_id == organisation_id,
                                                  Person.ceo_delegate.is_(True)).limit(1)) is not None


def ceo_office_members(session: Session, organisation_id: int) -> list[Person]:
    """The CEO of an organisation and that CEO's delegates (people of the organisation marked as delegates)."""
    head = select(_ORGANISATION.c.ceo_id).where(_ORGANISATION.c.id == organisation_id).scalar_subquery()
    return list(session.scalars(select(Person).where(or_(
        Person.id == head, (Person.organisation_id == organisation_id) & Person.ceo_delegate.is_(True)))
        .order_by(Person.id)))


def groups_of(session: Session, user: User) -> set[str]:
    """The task groups a login works in: its HR/OCPE roles, and ``ceo:<organisation>`` for the CEO of an
    organisation or a delegate of that organisation's CEO. Work groups (``group:<id>``) are not read here: statements
    that select tasks read them in a subquery (engine.people.groups.task_groups_of), may_work asks for one group."""
    groups = {r for r in user.roles if r in ("hr", "ocpe")}
    person = user.person
    if person is not None:
        for organisation_id in headed_organisations(session, user, person):
            groups.add(f"ceo:{organisation_id}")
        if person.ceo_delegate and person.organisation_id is not None:
            groups.add(f"ceo:{person.organisation_id}")
    return groups


def oversight_groups(groups: set[str]) -> set[str]:
    """Groups whose tasks a login may see but not work, from the groups it works in (groups_of): a CEO's office
    sees its organisation's tasks that wait for an appointment (HR sees every case already)."""
    return {appointment_group(int(g[4:])) for g in groups if g.startswith("ceo:")}


def heads_or_delegates_for(session: Session, user: User, organisation_id: int | None) -> bool:
    """True when the login is the CEO of the organisation or a delegate of its CEO."""
    return organisation_id is not None and f"ceo:{organisation_id}" in groups_of(session, user)




def hr_agency(user: User) -> int | None:
    """The organisation an HR login serves (its people record's), or None when it serves every agency
    (administrators, and HR logins without a people record in an organisation)."""
    if user.has_role("admin") or not user.has_role("hr") or user.person is None:
        return None
    return user.person.organisation_id


def another_agencys(session: Session, user: User, instance: ProcessInstance | None) -> bool:
    """True when an HR login serves one agency and the case is an agency-private case of another's employee."""
    agency = hr_agency(user)
    if agency is None or instance is None or instance.subject_id is None:
        return False
    if instance.process_key not in REGISTRY.agency_private():
        return False
    return session.scalar(select(Person.organisation_id).where(Person.id == instance.subject_id)) != agency


def may_work(session: Session, user: User, task: HumanTask) -> bool:
    """True when the task is assigned to the user's person or to a group the user works in, and the user is
    not the case's subject acting outside the subject's lane (separation of duties, checked for every path).

    Steps separated from others (`separateFrom`) are checked by separation_problem, where the task's spec is
    at hand."""
    if user.person_id is not None and task.assignee_id == user.person_id:
        mine = True
    elif task.assigned_group is not None and task.assigned_group.startswith(WORK_GROUP):
        mine = user.person_id is not None and in_work_group(session, user.person_id, task.assigned_group)
    else:
        mine = task.assigned_group is not None and task.assigned_group in groups_of(session, user)
    if not mine:
        return False
    if task.assigned_group == GROUP_LANES["HR"] and another_agencys(session, user, task.instance):
        return False
    return not subject_outside_own_lane(user, task.instance, task.lane)


def subject_outside_own_lane(user: User, instance: ProcessInstance | None, lane: str | None) -> bool:
    """True when the login is the case's subject and the task is not in the subject's lane."""
    return (instance is not None and user.person_id is not None and instance.subject_id == user.person_id
            and lane is not None and lane != SUBJECT_LANE)


def separate_from(spec: Any) -> frozenset[str]:
    """The element ids a task spec's `separateFrom` property names."""
    ext = getattr(spec, "extensions", None) or {}
    raw = (ext.get("properties") or {}).get(SEPARATE_FROM) or ""
    return frozenset(part.strip() for part in str(raw).split(",") if part.strip())


def performers(session: Session, instance_id: int, elements: Iterable[str]) -> set[str]:
    """The logins that completed any of `elements` in the case."""
    names = sorted(set(elements))
    if not names:
        return set()
    return set(session.scalars(select(HumanTask.completed_by).where(
        HumanTask.instance_id == instance_id, HumanTask.state == "completed", HumanTask.name.in_(names))))


def separation_problem(session: Session, user: User, instance_id: int, separated: Iterable[str]) -> str | None:
    """Why the login may not take a task separated from `separated` in this case, or None."""
    separated = frozenset(separated)
    if not separated:
        return None
    done = performers(session, instance_id, separated)
    person_name = user.person.username if user.person is not None else None
    if user.username in done or (person_name is not None and person_name in done):
        return ("you took an earlier step of this case that this one must be separate from (separation of duties:"
                " whoever recommended does not decide, whoever decided does not review); another person must")
    return None
