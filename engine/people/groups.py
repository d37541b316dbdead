"""Work groups (issue 18): named groups of people that administrators keep, so that a diagram made elsewhere, whose
lanes are "Finance" or "Reviewers", runs without code. A lane that names a group sends its tasks to the group
(`group:<id>`): they appear in every member's inbox and one member does each.

Steps take a Session and never commit (views and commands run them with Database.run); every change is audited.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, String, bindparam, cast, delete, literal, select
from sqlalchemy.orm import Session

from engine.core.audit import audit
from engine.core.clock import CLOCK
from engine.core.errors import Conflict, Forbidden, Invalid, NotFound, Problem
from engine.core.models import column_length, table_of
from engine.core.text import unsafe_character
from engine.people.models import Organisation, Person, User, WorkGroup, WorkGroupMember

#: The prefix of a work group's task group (HumanTask.assigned_group): `group:<id>`, stable across renames.
PREFIX = "group:"


def group_key(group_id: int) -> str:
    """The task group of a work group."""
    return f"{PREFIX}{group_id}"


def may_manage_groups(user: User) -> bool:
    """Administrators keep the groups (they decide who may do a process's steps)."""
    return user.has_role("admin")


def may_see_groups(user: User) -> bool:
    """Administrators, process owners (who draw lanes for them) and HR see the groups and their members."""
    return user.has_role("admin", "process_owner", "hr")


def group_by_name(session: Session, name: str) -> WorkGroup | None:
    """The work group with this name (exactly), or None."""
    return session.scalars(select(WorkGroup).where(WorkGroup.name == name)).first()


def group_names(session: Session) -> frozenset[str]:
    """Every work group's name (lanes may name them)."""
    return frozenset(session.scalars(select(WorkGroup.name)))


def groups_of_person(session: Session, person_id: int) -> set[str]:
    """The task groups of the work groups a person is in (a prepared statement: the inbox asks on every read)."""
    ids = session.connection().execute(_MEMBER_OF, {"person_id": person_id}).scalars()
    return {group_key(i) for i in ids}


_MEMBERS_TABLE = table_of(WorkGroupMember)
_MEMBER_OF = select(_MEMBERS_TABLE.c.group_id).where(_MEMBERS_TABLE.c.person_id == bindparam("person_id"))


def task_groups_of(person_id: Any) -> Select[str]:
    """The same as a subquery (`group:<id>` for each of the person's work groups), for statements that select tasks
    or cases: the membership is read in their one statement, not by a query of its own (the inbox is a hot path)."""
    return select(literal(PREFIX).concat(cast(WorkGroupMember.group_id, String))).where(
        WorkGroupMember.person_id == person_id)


def in_work_group(session: Session, person_id: int, task_group: str) -> bool:
    """True when the person is a member of the work group behind `group:<id>`."""
    ident = task_group[len(PREFIX):] if task_group.startswith(PREFIX) else ""
    if not ident.isdigit():
        return False
    return session.scalar(select(WorkGroupMember.group_id).where(
        WorkGroupMember.group_id == int(ident), WorkGroupMember.person_id == person_id)) is not None


def work_group_members(session: Session, task_group: str) -> list[Person]:
    """The members of the work group behind `group:<id>` (none for another kind of group)."""
    ident = task_group[len(PREFIX):] if task_group.startswith(PREFIX) else ""
    return members(session, int(ident)) if ident.isdigit() else []


def members(session: Session, group_id: int) -> list[Person]:
    """A group's members, by name."""
    return list(session.scalars(select(Person).join(WorkGroupMember, WorkGroupMember.person_id == Person.id)
                                .where(WorkGroupMember.group_id == group_id).order_by(Person.name)))


def group_dict(session: Session, group: WorkGroup) -> dict[str, Any]:
    """A group as the API and the admin page show it."""
    return {"name": group.name, "organisation": group.organisation.code if group.organisation else None,
            "members": [p.username for p in members(session, group.id)]}


def list_groups(session: Session) -> list[dict[str, Any]]:
    """Every group, by name."""
    return [group_dict(session, g) for g in session.scalars(select(WorkGroup).order_by(WorkGroup.name))]


def _check_name(raw: Any, reserved: Iterable[str]) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise Invalid("a group needs a name", [Problem("This field is required.", field="name")])
    name = " ".join(raw.split())
    limit = column_length(WorkGroup, "name")
    if len(name) > limit:
        raise Invalid("the name is too long", [Problem(f"at most {limit} characters", field="name")])
    if (bad := unsafe_character(name)) is not None:
        raise Invalid("the name has a character it may not", [Problem(f"must not contain {bad}", field="name")])
    if name in set(reserved):
        raise Invalid("the name is a role's", [Problem(
            f"'{name}' is already a lane (a role of the organisation chart or a policy's): choose another name",
            field="name")])
    return name


def _organisation(session: Session, code: Any) -> Organisation | None:
    if code in (None, ""):
        return None
    found = session.scalars(select(Organisation).where(Organisation.code == code)).first() \
        if isinstance(code, str) else None
    if found is None:
        raise Invalid("no such organisation", [Problem("no organisation has this code", field="organisation")])
    return found


def _people(session: Session, usernames: Any) -> list[Person]:
    if not isinstance(usernames, list) or not all(isinstance(u, str) for u in usernames):
        raise Invalid("members must be a list of usernames", [Problem("must be a list of usernames",
                                                                      field="members")])
    wanted = list(dict.fromkeys(usernames))
    found = {p.username: p for p in session.scalars(select(Person).where(Person.username.in_(wanted)))}
    unknown = [u for u in wanted if u not in found]
    if unknown:
        raise Invalid("unknown people", [Problem(f"no person with the username {unknown[0]!r}", field="members")])
    return [found[u] for u in wanted]


def create_group(session: Session, actor: User, name: Any, organisation: Any = None, usernames: Any = (),
                 reserved: Iterable[str] = ()) -> dict[str, Any]:
    """A new group (administrators only); 409 naming `name` when one has it. `reserved`: lane names it may not
    take."""
    if not may_manage_groups(actor):
        raise Forbidden("only an administrator keeps the groups")
    name = _check_name(name, reserved)
    if group_by_name(session, name) is not None:
        raise Conflict("a group has this name", [Problem(f"a group named '{name}' exists", field="name")])
    org = _organisation(session, organisation)
    people = _people(session, list(usernames))
    group = WorkGroup(name=name, organisation_id=org.id if org else None, created_at=CLOCK.now(),
                      created_by=actor.username)
    session.add(group)
    session.flush()
    session.add_all(WorkGroupMember(group_id=group.id, person_id=p.id) for p in people)
    session.flush()
    audit(session, None, actor.username, "group_created", group=name, members=[p.username for p in people])
    return group_dict(session, group)


def set_members(session: Session, actor: User, name: str, usernames: Any) -> dict[str, Any]:
    """Replace a group's members (administrators only); 404 when there is no such group."""
    if not may_manage_groups(actor):
        raise Forbidden("only an administrator keeps the groups")
    group = group_by_name(session, name)
    if group is None:
        raise NotFound(f"no group named {name!r}")
    people = _people(session, usernames)
    before = [p.username for p in members(session, group.id)]
    session.execute(delete(WorkGroupMember).where(WorkGroupMember.group_id == group.id))
    session.add_all(WorkGroupMember(group_id=group.id, person_id=p.id) for p in people)
    session.flush()
    audit(session, None, actor.username, "group_members_set", group=group.name, before=before,
          after=[p.username for p in people])
    return group_dict(session, group)
