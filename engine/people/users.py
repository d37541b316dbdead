"""Logins, password hashes, API tokens and people records."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from werkzeug.security import check_password_hash, generate_password_hash

from engine.core.audit import audit
from engine.core.clock import CLOCK
from engine.core.dates import EARLIEST_DATE, LATEST_DATE
from engine.core.errors import Conflict, Forbidden, Invalid, NotFound, Problem
from engine.core.models import column_length, table_of
from engine.core.text import unsafe_character
from engine.people.models import PRIVILEGED_ROLES, ROLES, ApiToken, Organisation, Person, User
from engine.people.passwords import check_password

TOKEN_LIFETIME = timedelta(hours=12)
NO_PASSWORD = "!"  # noqa: S105 - not a password: a hash value no password can match
# A hash to compare against when the username is unknown, so a wrong username costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-password")


def hash_password(password: str) -> str:
    """A salted scrypt hash (werkzeug's default)."""
    return generate_password_hash(password)


def create_user(session: Session, username: str, roles: list[str], password: str | None,
                password_hash: str | None = None, actor: str = "system") -> User:
    """Add a login, linked to the person with the same username when there is one.

    A password is checked against the password policy (engine.people.passwords); `password_hash` (demo data, an
    import that checked it already) is stored as given. The grant of each role is audited as `actor`'s:
    callers decide beforehand who may grant what (grant_roles)."""
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise Invalid("unknown role", [Problem(f"unknown role {bad[0]!r}; roles: {', '.join(ROLES)}", field="role")])
    if session.scalars(select(User).where(User.username == username)).first():
        raise Conflict(f"a login named {username!r} already exists")
    person = session.scalars(select(Person).where(Person.username == username)).first()
    if password_hash is None and password is not None:
        check_password(password, username, person.name if person else None, person.email if person else None)
    user = User(username=username, roles=sorted(set(roles)),
                # "!" never matches a hash: a login without a password cannot log in
                password_hash=password_hash or (hash_password(password) if password else NO_PASSWORD),
                person_id=person.id if person else None, active=True, created_at=CLOCK.now())
    session.add(user)
    session.flush()
    for role in sorted(set(roles) & PRIVILEGED_ROLES):
        audit(session, None, actor, "role_granted", login=username, role=role)
    return user


def may_grant(actor: User | None, old: set[str], new: set[str]) -> bool:
    """Only an administrator gives or takes away a privileged role (admin, hr, ocpe, process_owner).

    `actor` None is the server's operator at the command line, who holds the database anyway."""
    changed = (old ^ new) & PRIVILEGED_ROLES
    return not changed or actor is None or actor.has_role("admin")


def grant_roles(session: Session, actor: User | None, actor_name: str, login: User, roles: list[str]) -> None:
    """Set a login's roles; refused (403 naming `role`) unless the actor may grant them; each change audited."""
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise Invalid("unknown role", [Problem(f"unknown role {bad[0]!r}; roles: {', '.join(ROLES)}", field="role")])
    old, new = set(login.roles), set(roles)
    if not may_grant(actor, old, new):
        message = "only an administrator may give or take away the admin, hr, ocpe and process_owner roles"
        raise Forbidden(message, [Problem(message, field="role")])
    if actor is not None and actor.id == login.id and "admin" in old - new:
        raise Invalid("own admin role", [Problem("an administrator cannot take away their own admin role",
                                                 field="role")])
    login.roles = sorted(new)
    for role in sorted(new - old):
        audit(session, None, actor_name, "role_granted", login=login.username, role=role)
    for role in sorted(old - new):
        audit(session, None, actor_name, "role_removed", login=login.username, role=role)


def set_password(session: Session, login: User, password: str, actor: str) -> int:
    """Give a login a new password (checked against the policy); every session and API token of the login ends.

    Answers how many sessions and tokens ended."""
    person = session.get(Person, login.person_id) if login.person_id is not None else None
    check_password(password, login.username, person.name if person else None, person.email if person else None)
    login.password_hash = hash_password(password)
    from engine.people.logins import end_all_sessions

    ended = end_all_sessions(session, login, "password changed")
    audit(session, None, actor, "password_changed", login=login.username, sessions_ended=ended)
    return ended


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this username and password, or None (same cost either way)."""
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None or not user.active or user.password_hash == NO_PASSWORD:
        check_password_hash(_DUMMY_HASH, password)
        return None
    return user if check_password_hash(user.password_hash, password) else None


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, user: User) -> tuple[str, datetime]:
    """A new bearer token; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    expires = CLOCK.now() + TOKEN_LIFETIME
    session.add(ApiToken(user_id=user.id, token_hash=_token_digest(token), created_at=CLOCK.now(),
                         expires_at=expires, revoked_at=None))
    return token, expires


def user_for_token(session: Session, token: str) -> User | None:
    """The user a live (unexpired, unrevoked) token belongs to, with its person, both detached from the session.

    Every API call asks this, so it is one Core statement (built once) and the objects are made from its row:
    loading three mapped objects through the ORM costs several times the query."""
    found = session.connection().execute(_TOKEN_LOGIN, {"digest": _token_digest(token)}).first()
    if found is None or found.revoked_at is not None or found.expires_at <= CLOCK.now() or not found.u__active:
        return None
    values = found._mapping
    person = None
    if values["u__person_id"] is not None:
        person = _detached(Person, {c.key: values[f"p__{c.key}"] for c in _PERSON.columns})
    user = _detached(User, {c.key: values[f"u__{c.key}"] for c in _USER.columns})
    set_committed_value(user, "person", person)
    headed = values["headed_count"] or 0  # the organisations the person heads: one is the usual case
    note_heads_organisation(user, frozenset() if headed == 0 else
                            frozenset({values["headed_first"]}) if headed == 1 else None)
    return user


_M = TypeVar("_M", User, Person)


def _detached(model: type[_M], values: dict[str, Any]) -> _M:
    """A mapped object with every column loaded, as if read by a session that has closed since."""
    obj = model(**values)
    make_transient_to_detached(obj)
    return obj


_USER = table_of(User)
_PERSON = table_of(Person)
_TOKEN = table_of(ApiToken)
_ORGANISATION = table_of(Organisation)
_TOKEN_LOGIN = (select(_TOKEN.c.revoked_at, _TOKEN.c.expires_at, *(c.label(f"u__{c.key}") for c in _USER.columns),
                       *(c.label(f"p__{c.key}") for c in _PERSON.columns),
                       select(func.count(_ORGANISATION.c.id)).where(_ORGANISATION.c.ceo_id == _USER.c.person_id)
                       .scalar_subquery().label("headed_count"),
                       select(func.min(_ORGANISATION.c.id)).where(_ORGANISATION.c.ceo_id == _USER.c.person_id)
                       .scalar_subquery().label("headed_first"))
                .select_from(_TOKEN.join(_USER, _USER.c.id == _TOKEN.c.user_id)
                             .outerjoin(_PERSON, _PERSON.c.id == _USER.c.person_id))
                .where(_TOKEN.c.token_hash == bindparam("digest")))


def revoke_token(session: Session, token: str) -> bool:
    """Revoke a token; True when it existed."""
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == _token_digest(token))).first()
    if row is None:
        return False
    row.revoked_at = CLOCK.now()
    return True


# ---------------------------------------------------------------------------------------------- people

PERSON_FIELDS = ("username", "name", "email", "classification", "pay_point", "organisation", "supervisor",
                 "manager", "commenced_on")


@dataclass
class PersonInput:
    """A person record as the API and the admin form give it (usernames for supervisor/manager)."""

    username: str
    name: str
    email: str
    classification: str
    pay_point: str | None = None
    organisation: str | None = None
    supervisor: str | None = None
    manager: str | None = None
    commenced_on: str | None = None
    ceo_delegate: bool = False


#: The most characters a username has (its column's length).
USERNAME_LENGTH = column_length(Person, "username")
#: The longest value each text field of a person may hold: its column's length (PostgreSQL refuses longer).
_LONGEST = {**{name: column_length(Person, name) for name in ("username", "name", "email", "classification",
                                                            "pay_point")},
            "organisation": column_length(Organisation, "code"),
            "supervisor": USERNAME_LENGTH, "manager": USERNAME_LENGTH}


def is_username(text: str) -> bool:
    """A login name: letters of any script, digits, '.', '_' and '-' (at least one letter or digit)."""
    return text.replace(".", "").replace("_", "").replace("-", "").isalnum()


def parse_person(payload: Any) -> PersonInput:
    """Check a person payload field by field; raise Invalid naming each bad field."""
    if not isinstance(payload, dict):
        raise Invalid("body must be an object", [Problem("must be a JSON object", field="body")])
    problems: list[Problem] = []
    for name in ("username", "name", "email", "classification"):
        if not isinstance(payload.get(name), str) or not payload[name].strip():
            problems.append(Problem("This field is required.", field=name))
    for name in PERSON_FIELDS:
        value = payload.get(name)
        if value is not None and not isinstance(value, str):
            problems.append(Problem("Must be a string.", field=name))
    for name, longest in _LONGEST.items():
        value = payload.get(name)
        if isinstance(value, str) and len(value.strip()) > longest:
            problems.append(Problem(f"at most {longest} characters", field=name))
    for name in PERSON_FIELDS:
        value = payload.get(name)
        if isinstance(value, str) and (char := unsafe_character(value)):
            problems.append(Problem(f"must not contain control or text-direction characters ({char})", field=name))
    username = payload.get("username")
    if isinstance(username, str) and username.strip() and not is_username(username.strip()):
        problems.append(Problem("letters, digits, '.', '_' and '-' only", field="username"))
    email = payload.get("email")
    if isinstance(email, str) and email and "@" not in email:
        problems.append(Problem("Must be an e-mail address.", field="email"))
    commenced = payload.get("commenced_on")
    if isinstance(commenced, str) and commenced:
        try:
            day = date.fromisoformat(commenced)
        except ValueError:
            problems.append(Problem("Must be a date (YYYY-MM-DD).", field="commenced_on"))
        else:
            if not EARLIEST_DATE <= day <= LATEST_DATE:
                problems.append(Problem(f"The date must be between {EARLIEST_DATE} and {LATEST_DATE}.",
                                        field="commenced_on"))
    if problems:
        raise Invalid("the person record has errors", problems)
    values: dict[str, str | None] = {}
    for name in PERSON_FIELDS:
        raw = payload.get(name)
        values[name] = raw.strip() or None if isinstance(raw, str) else None
    return PersonInput(
        username=values["username"] or "", name=values["name"] or "", email=values["email"] or "",
        classification=values["classification"] or "", pay_point=values["pay_point"],
        organisation=values["organisation"], supervisor=values["supervisor"], manager=values["manager"],
        commenced_on=values["commenced_on"], ceo_delegate=bool(payload.get("ceo_delegate")),
    )


def _lookup(session: Session, username: str | None, field: str) -> Person | None:
    if not username:
        return None
    person = session.scalars(select(Person).where(Person.username == username)).first()
    if person is None:
        raise Invalid("unknown person", [Problem(f"no person with the username {username!r}", field=field)])
    return person


def organisation_by_code(session: Session, code: str | None, create: bool = True) -> Organisation | None:
    """The organisation with this code (created on first mention when `create`)."""
    if not code:
        return None
    org = session.scalars(select(Organisation).where(Organisation.code == code)).first()
    if org is None and create:
        org = Organisation(code=code, name=code)
        session.add(org)
        session.flush()
    return org


def save_person(session: Session, data: PersonInput, existing: Person | None = None) -> Person:
    """Create or update a person record from checked input."""
    if existing is None and session.scalars(select(Person).where(Person.username == data.username)).first():
        raise Conflict(f"a person named {data.username!r} already exists")
    person = existing or Person(username=data.username)
    supervisor = _lookup(session, data.supervisor, "supervisor")
    manager = _lookup(session, data.manager, "manager")
    if existing is not None and existing.id is not None and supervisor is not None and supervisor.id == existing.id:
        raise Invalid("self-supervision", [Problem("a person cannot supervise themselves", field="supervisor")])
    person.name = data.name
    person.email = data.email
    person.classification = data.classification.upper()
    person.pay_point = data.pay_point
    person.organisation = organisation_by_code(session, data.organisation)
    person.supervisor = supervisor
    person.manager = manager
    person.commenced_on = date.fromisoformat(data.commenced_on) if data.commenced_on else None
    person.ceo_delegate = data.ceo_delegate
    session.add(person)
    session.flush()
    user = session.scalars(select(User).where(User.username == person.username)).first()
    if user is not None and user.person_id is None:
        user.person_id = person.id
    return person


def get_person(session: Session, username: str) -> Person:
    """The person with this username, or NotFound."""
    person = session.scalars(select(Person).where(Person.username == username)).first()
    if person is None:
        raise NotFound(f"no person with the username {username!r}")
    return person


def person_fields(person: Person) -> dict[str, Any]:
    """A person record's own fields, as the API and the CSV import name them (usernames for links)."""
    return {
        "username": person.username, "name": person.name, "email": person.email,
        "classification": person.classification, "pay_point": person.pay_point,
        "organisation": person.organisation.code if person.organisation else None,
        "supervisor": person.supervisor.username if person.supervisor else None,
        "manager": person.manager.username if person.manager else None,
        "commenced_on": person.commenced_on.isoformat() if person.commenced_on else None,
        "ceo_delegate": person.ceo_delegate,
    }


def person_dict(session: Session, person: Person) -> dict[str, Any]:
    """A person as the API shows it, with the people they supervise and manage."""
    supervises = session.scalars(select(Person.username).where(Person.supervisor_id == person.id)
                                 .order_by(Person.username)).all()
    manages = session.scalars(select(Person.username).where(Person.manager_id == person.id)
                              .order_by(Person.username)).all()
    return {**person_fields(person), "supervisor_of": list(supervises), "manager_of": list(manages)}


# ------------------------------------------------------------------------- who heads which organisation


def note_heads_organisation(user: User, headed: frozenset[int] | None) -> None:
    """Record, for this login object only, the organisations its person heads, as a query just read them
    (None: not known, read them when asked).

    The API's token check reads this in its one statement, so an inbox or a completion asks no second query.
    The object is the request's own detached login, so the note lives (and is true) for that request."""
    if headed is None:
        _HEADS.pop(user, None)
    else:
        _HEADS[user] = headed


def headed_organisations(session: Session, user: User, person: Person) -> frozenset[int]:
    """The organisations whose CEO the login's person is (as noted for this request, else read)."""
    known = _HEADS.get(user)
    if known is not None:
        return known
    return frozenset(session.connection().execute(_CEO_OF, {"person_id": person.id}).scalars())


_HEADS: WeakKeyDictionary[User, frozenset[int]] = WeakKeyDictionary()
_CEO_OF = select(table_of(Organisation).c.id).where(table_of(Organisation).c.ceo_id == bindparam("person_id"))


# ------------------------------------------------------------------------- steps the views and commands call
# Each takes a Session and never commits; a view or command runs it with Database.run (one unit of work).


def login_named(session: Session, username: str) -> User:
    """The login with this username (404 naming `username` when there is none)."""
    login = session.scalars(select(User).where(User.username == username)).first()
    if login is None:
        raise NotFound(f"no login named {username!r}", [Problem("no login with this username", field="username")])
    return login


def login_by_id(session: Session, user_id: int) -> User:
    """The login with this id (404 when there is none)."""
    login = session.get(User, user_id)
    if login is None:
        raise NotFound("no such login")
    return login


def set_roles_of(session: Session, actor: User, user_id: int, roles: list[str]) -> str:
    """Give a login exactly these roles (grant_roles decides whether the actor may); its username."""
    login = login_by_id(session, user_id)
    grant_roles(session, actor, actor.username, login, roles)
    return login.username


def set_password_of(session: Session, username: str, password: str, actor: str) -> int:
    """Set a login's password (the password rules apply); how many of its sessions and tokens ended."""
    return set_password(session, login_named(session, username), password, actor)


def record_person(session: Session, data: PersonInput, username: str | None) -> tuple[str, bool]:
    """Save a people record (new when `username` is None); its username, and whether its classification changed
    (a person recorded in, or moved into, another classification: policies hear of it)."""
    existing = get_person(session, username) if username else None
    before = existing.classification if existing is not None else None
    saved = save_person(session, data, existing)
    return saved.username, saved.classification != before


def register_person(session: Session, data: PersonInput, password: str | None, actor: str) -> dict[str, Any]:
    """A new people record, with a staff login when a password is given; the record as the API shows it."""
    person = save_person(session, data)
    if password:
        create_user(session, person.username, ["staff"], password, actor=actor)
    return person_dict(session, person)
