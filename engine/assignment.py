"""Lanes are roles: resolve a lane to the person (or group) who should do a task, when the task opens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from engine.models import HumanTask, Organisation, Person, User, table_of

#: Lane name -> how it resolves. Case data may name a person for a lane in `assign` (e.g. an officer the
#: CEO appointed instead of the supervisor's manager, D19-7/8), which wins over the people records.
KNOWN_LANES = frozenset({
    "Employee", "Supervisor", "Manager", "FormerManager", "CEO", "HR", "OCPE", "Home", "Host",
})
GROUP_LANES = {"CEO": "ceo", "HR": "hr", "OCPE": "ocpe"}
#: When a lane cannot be resolved (no supervisor on record, say) the task goes to HR rather than nowhere.
FALLBACK_GROUP = "hr"


@dataclass(frozen=True)
class Assignment:
    """Who a task is for: one person, or every member of a group."""

    person: Person | None
    group: str | None
    note: str | None = None


def person_by_username(session: Session, username: Any) -> Person | None:
    """The person with this username, or None."""
    if not isinstance(username, str) or not username:
        return None
    return session.scalars(_BY_USERNAME, {"username": username}).first()


_BY_USERNAME = select(Person).where(Person.username == bindparam("username"))  # built once: a hot path


def _manager_of(person: Person) -> Person | None:
    if person.manager is not None:
        return person.manager
    return person.supervisor.supervisor if person.supervisor is not None else None


def resolve_lane(session: Session, lane: str | None, data: dict[str, Any], starter: str) -> Assignment:
    """Resolve a lane against the case data and the people records as they are now."""
    if lane is None:
        starter_person = person_by_username(session, starter)
        return Assignment(starter_person, None if starter_person else FALLBACK_GROUP)
    override = (data.get("assign") or {}).get(lane) if isinstance(data.get("assign"), dict) else None
    if override:
        chosen = person_by_username(session, override)
        if chosen is not None:
            return Assignment(chosen, None, f"appointed for {lane}")
    if lane in GROUP_LANES:
        return Assignment(None, GROUP_LANES[lane])
    subject = person_by_username(session, data.get("employee") or data.get("secondee"))
    person: Person | None = None
    if lane == "Employee":
        person = subject
    elif lane == "Supervisor" and subject is not None:
        person = subject.supervisor
    elif lane == "Manager" and subject is not None:
        person = _manager_of(subject)
    elif lane == "FormerManager":
        person = person_by_username(session, data.get("former_manager"))
    elif lane == "Home":
        person = person_by_username(session, data.get("home_contact"))
    elif lane == "Host":
        person = person_by_username(session, data.get("host_contact"))
    if person is None:
        return Assignment(None, FALLBACK_GROUP, f"no one on record for lane {lane}; sent to HR")
    return Assignment(person, None)


def groups_of(session: Session, user: User) -> set[str]:
    """The task groups a login belongs to: its HR/OCPE roles, and 'ceo' for the CEO or a delegate."""
    groups = {r for r in user.roles if r in ("hr", "ocpe")}
    person = user.person
    if person is not None and (person.ceo_delegate or _heads_organisation(session, user, person)):
        groups.add("ceo")
    return groups


def note_heads_organisation(user: User, heads: bool) -> None:
    """Record, for this login object only, whether its person heads an organisation, as a query just read it.

    The API's token check reads this in its one statement, so an inbox or a completion asks no second query.
    The object is the request's own detached login, so the note lives (and is true) for that request."""
    _HEADS[user] = heads


def _heads_organisation(session: Session, user: User, person: Person) -> bool:
    known = _HEADS.get(user)
    if known is not None:
        return known
    return session.connection().execute(_CEO_OF, {"person_id": person.id}).first() is not None


_HEADS: WeakKeyDictionary[User, bool] = WeakKeyDictionary()
_ORGANISATION = table_of(Organisation)
_CEO_OF = select(_ORGANISATION.c.id).where(_ORGANISATION.c.ceo_id == bindparam("person_id")).limit(1)


def may_work(session: Session, user: User, task: HumanTask) -> bool:
    """True when the task is assigned to the user's person or to a group the user belongs to."""
    if user.person_id is not None and task.assignee_id == user.person_id:
        return True
    return task.assigned_group is not None and task.assigned_group in groups_of(session, user)
