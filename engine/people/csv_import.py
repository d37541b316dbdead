"""Import people from a CSV export of the personnel system: a plan first, then all of it or nothing.

The header names the columns (any order, case and spaces ignored): the API's person fields
`username, name, email, classification, pay_point, organisation, supervisor, manager, commenced_on`,
and optionally `ceo_delegate` (yes/no), `role` (login roles, separated by ';') and `password`.
`username, name, email, classification` are required. An empty cell clears an optional field; a column
left out of the file leaves that field as it is on record. Supervisors and managers may be people on
record or people further down the same file.

`plan_import` reads the file and compares each row with the records: new, updated (which fields) or
unchanged, and every problem with its line and field. `import_people` applies a plan in one
transaction, and only when the plan has no problem at all.

Values are checked against the records, not only for their form (issue 19): a classification must be known (one
with pay points, or one a people record already has), a pay point must be one of its classification's, and a
commencement date must be plausible (not more than a year ahead, not more than 70 years back). An organisation
code not on record is created by the import, as it always was; the plan lists those codes (`new_organisations`)
so that a preview shows them before anything is written.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core.audit import audit
from engine.core.clock import CLOCK
from engine.core.dates import add_months
from engine.core.db import Database
from engine.core.errors import Invalid, NotFound
from engine.core.models import BulkJob
from engine.people.models import PRIVILEGED_ROLES, ROLES, Organisation, PayPoint, Person, User
from engine.people.passwords import password_problem
from engine.people.users import (
    NO_PASSWORD,
    PERSON_FIELDS,
    PersonInput,
    create_user,
    hash_password,
    parse_person,
    person_fields,
    save_person,
)

REQUIRED_COLUMNS = ("username", "name", "email", "classification")
OPTIONAL_COLUMNS = (*PERSON_FIELDS[4:], "ceo_delegate", "role", "password")
COLUMNS = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
#: Fields compared to decide new / updated / unchanged, in the order changes are listed.
COMPARED = (*PERSON_FIELDS[1:], "ceo_delegate")
MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 10_000
#: How far from today a commencement date may be; beyond, it is a typing mistake (in 2026: after 2027, or before 1956).
COMMENCED_MONTHS_AHEAD = 12
COMMENCED_YEARS_BACK = 70
_TRUE, _FALSE = {"yes", "y", "true", "1", "x"}, {"no", "n", "false", "0", ""}


@dataclass(frozen=True)
class RowError:
    """A problem in the file: its line (1 = the header), the column to blame, and what is wrong."""

    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.field}: {self.message}"


@dataclass
class RowPlan:
    """What importing one row will do."""

    line: int
    username: str
    status: str  # new / updated / unchanged
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # field -> (on record, in the file)
    login: str = ""  # what happens to the login, in words ("" = nothing)
    person: PersonInput | None = None
    roles: list[str] | None = None  # the login's roles after the import (None: no login change)
    password: str | None = None  # only for a new login


@dataclass
class ImportPlan:
    """The whole file's plan: a row plan per data row, and every problem found."""

    rows: list[RowPlan] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    #: organisation codes not on record that the import will create -> the first line naming each
    new_organisations: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong (then the import may run)."""
        return not self.errors

    def count(self, status: str) -> int:
        """How many rows have `status`."""
        return sum(1 for r in self.rows if r.status == status)

    def fingerprint(self) -> str:
        """A digest of what the plan will do, so a confirmation can tell that nothing moved since the preview."""
        text = repr([(r.line, r.username, r.status, sorted(r.changes.items()), r.login) for r in self.rows]
                    + sorted(self.new_organisations))
        return hashlib.sha256(text.encode()).hexdigest()


# ------------------------------------------------------------------------------------------- reading the file


def _column_name(raw: str) -> str:
    return re.sub(r"[\s-]+", "_", raw.strip().lower())


def decode(data: bytes | str) -> tuple[str | None, list[RowError]]:
    """The file as text (UTF-8, with or without a byte-order mark), or the reason it is not."""
    if isinstance(data, str):
        return data, []
    if len(data) > MAX_BYTES:
        return None, [RowError(0, "file", f"the file is larger than {MAX_BYTES // (1024 * 1024)} MiB")]
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        return None, [RowError(line, "file", "the file is not UTF-8 text (save it from the spreadsheet as "
                                             "'CSV UTF-8')")]


def read_rows(text: str) -> tuple[list[str], list[tuple[int, dict[str, str]]], list[RowError]]:
    """The header's column names and each non-blank data row (with the line it starts on) as column -> text."""
    errors: list[RowError] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, list[str]]] = []
    line = 1
    try:
        for cells in reader:
            rows.append((line, cells))
            line = reader.line_num + 1
            if len(rows) > MAX_ROWS + 1:
                errors.append(RowError(line, "file", f"more than {MAX_ROWS} rows; split the file"))
                break
    except csv.Error as exc:
        errors.append(RowError(reader.line_num or line, "file", f"not readable as CSV: {exc}"))
    if not rows or not any(c.strip() for c in rows[0][1]):
        return [], [], errors or [RowError(1, "file", "the file is empty (the first line must name the columns)")]
    header = [_column_name(c) for c in rows[0][1]]
    for name in header:
        if name not in COLUMNS:
            errors.append(RowError(1, name or "(blank)", f"unknown column; the columns are: {', '.join(COLUMNS)}"))
    for name in {n for n in header if header.count(n) > 1}:
        errors.append(RowError(1, name, "this column appears twice"))
    for name in REQUIRED_COLUMNS:
        if name not in header:
            errors.append(RowError(1, name, "this column is required"))
    data: list[tuple[int, dict[str, str]]] = []
    for line_no, cells in rows[1:]:
        if not any(c.strip() for c in cells):
            continue  # a blank line (spreadsheets leave them at the end)
        if len(cells) != len(header):
            errors.append(RowError(line_no, "row", f"has {len(cells)} cells; the header has {len(header)}"))
            continue
        data.append((line_no, {name: cell.strip() for name, cell in zip(header, cells, strict=True)}))
    return header, data, errors


# ------------------------------------------------------------------------------------------- planning


@dataclass
class _Context:
    """What the plan checks rows against: the records as they are, and the rows of the file."""

    people: dict[str, Person]
    logins: dict[str, User]
    pay_points: dict[str, set[str]]
    in_file: dict[str, int]  # username -> first line
    actor_is_admin: bool
    classifications: set[str] = field(default_factory=set)  # known: with pay points, or on a people record
    organisations: set[str] = field(default_factory=set)  # the codes on record
    today: date = field(default_factory=lambda: CLOCK.now().date())


def _load_context(session: Session, actor_is_admin: bool) -> _Context:
    people = {p.username: p for p in session.scalars(select(Person))}
    logins = {u.username: u for u in session.scalars(select(User))}
    points: dict[str, set[str]] = {}
    for point in session.scalars(select(PayPoint)):
        points.setdefault(point.classification.upper(), set()).add(point.code)
    known = set(points) | {p.classification.upper() for p in people.values() if p.classification}
    organisations = set(session.scalars(select(Organisation.code)))
    return _Context(people, logins, points, {}, actor_is_admin, known, organisations)


def _flag(value: str, line: int, errors: list[RowError]) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() not in _FALSE:
        errors.append(RowError(line, "ceo_delegate", "Must be yes or no."))
    return False


def _roles(value: str, line: int, errors: list[RowError]) -> list[str] | None:
    if not value:
        return None
    roles = sorted({r.strip().lower() for r in re.split(r"[;,\s]+", value) if r.strip()})
    for role in roles:
        if role not in ROLES:
            errors.append(RowError(line, "role", f"unknown role {role!r}; roles: {', '.join(ROLES)}"))
    return roles


def _person_input(values: dict[str, str], existing: Person | None, ctx: _Context, line: int,
                  errors: list[RowError]) -> PersonInput | None:
    """The row as a checked person record; columns the file lacks keep what is on record. Every problem of
    the row is reported, not just the first."""
    current = _current(existing)
    payload: dict[str, Any] = {name: values[name] if name in values else current.get(name)
                               for name in PERSON_FIELDS}
    person: PersonInput | None = None
    try:
        person = parse_person(payload)
    except Invalid as exc:
        errors.extend(RowError(line, p.field or "row", p.message) for p in exc.problems)
    delegate = (_flag(values["ceo_delegate"], line, errors) if "ceo_delegate" in values
                else bool(current.get("ceo_delegate")))
    username = str(payload.get("username") or "")
    classification = str(payload.get("classification") or "").strip().upper()
    pay_point = str(payload.get("pay_point") or "").strip()
    points = ctx.pay_points.get(classification)
    known = classification in ctx.classifications
    if classification and not known:
        errors.append(RowError(line, "classification", f"{classification!r} is not a known classification (known: "
                                                       f"{_listed(ctx.classifications)}); a new one is added with "
                                                       "its pay points or on a person's record first"))
    if pay_point and points is not None and pay_point not in points:
        errors.append(RowError(line, "pay_point", f"{pay_point!r} is not a pay point of {classification} "
                                                  f"({', '.join(sorted(points))})"))
    elif pay_point and points is None and known:
        errors.append(RowError(line, "pay_point", f"{classification} has no pay points, so {pay_point!r} cannot be "
                                                  "one of its points; leave the cell empty"))
    if person is not None and person.commenced_on and "commenced_on" in values:
        errors.extend(RowError(line, "commenced_on", p) for p in _commenced_problems(person.commenced_on, ctx.today))
    for name in ("supervisor", "manager"):
        other = str(payload.get(name) or "").strip()
        if other and other == username:
            errors.append(RowError(line, name, f"a person cannot be their own {name}"))
        elif other and other not in ctx.people and other not in ctx.in_file:
            errors.append(RowError(line, name, f"no person with the username {other!r} on record or in this file"))
    if person is not None:
        person.ceo_delegate = delegate
    return person


def _listed(names: set[str], most: int = 20) -> str:
    shown = sorted(names)
    return ", ".join(shown[:most]) + (f" and {len(shown) - most} more" if len(shown) > most else "") or "none yet"


def _commenced_problems(text: str, today: date) -> list[str]:
    """Why a commencement date is not plausible: more than a year ahead or more than 70 years back."""
    day = date.fromisoformat(text)
    latest, earliest = add_months(today, COMMENCED_MONTHS_AHEAD), add_months(today, -12 * COMMENCED_YEARS_BACK)
    if day > latest:
        return [f"{day.isoformat()} is more than {COMMENCED_MONTHS_AHEAD} months from today: a commencement date "
                f"is at most {latest.isoformat()}"]
    if day < earliest:
        return [f"{day.isoformat()} is more than {COMMENCED_YEARS_BACK} years ago: a commencement date is at least "
                f"{earliest.isoformat()}"]
    return []


def _current(person: Person | None) -> dict[str, Any]:
    return {} if person is None else person_fields(person)


def _changes(current: dict[str, Any], new: PersonInput) -> dict[str, tuple[Any, Any]]:
    proposed = {
        "name": new.name, "email": new.email, "classification": new.classification.upper(),
        "pay_point": new.pay_point, "organisation": new.organisation, "supervisor": new.supervisor,
        "manager": new.manager,
        "commenced_on": date.fromisoformat(new.commenced_on).isoformat() if new.commenced_on else None,
        "ceo_delegate": new.ceo_delegate,
    }
    return {name: (current.get(name), proposed[name]) for name in COMPARED if current.get(name) != proposed[name]}


def _login_plan(row: RowPlan, values: dict[str, str], ctx: _Context, errors: list[RowError]) -> None:
    roles = _roles(values.get("role", ""), row.line, errors)
    password = values.get("password") or None
    login = ctx.logins.get(row.username)
    if password is not None and login is None and row.person is not None and (
            problem := password_problem(password, row.username, row.person.name, row.person.email)):
        errors.append(RowError(row.line, "password", problem))
    if login is None:
        if roles is None and password is None:
            return
        row.roles = roles or ["staff"]
        row.password = password
        row.login = f"new login ({', '.join(row.roles)})" + ("" if password else ", no password yet")
        granted = set(row.roles)
    else:
        if password is not None:
            row.login = "login exists: its password is not changed by an import"
        if roles is None or roles == sorted(login.roles):
            return
        row.roles = roles
        row.login = f"login roles {', '.join(sorted(login.roles))} -> {', '.join(roles)}"
        granted = set(roles) ^ set(login.roles)
    if granted & PRIVILEGED_ROLES and not ctx.actor_is_admin:
        errors.append(RowError(row.line, "role", "only an administrator may give or take away the admin, hr, ocpe "
                                                 "and process_owner roles"))


def _cycles(plans: list[RowPlan], ctx: _Context, errors: list[RowError]) -> None:
    """Refuse supervision or management that would go round in a circle once the file is applied."""
    for relation in ("supervisor", "manager"):
        above = {u: getattr(p, relation).username for u, p in ctx.people.items() if getattr(p, relation)}
        for row in plans:
            assert row.person is not None
            new = getattr(row.person, relation)
            if new:
                above[row.username] = new
            else:
                above.pop(row.username, None)
        for row in plans:
            if above.get(row.username) == row.username:
                continue  # reported as "their own supervisor" already
            chain, current = [row.username], above.get(row.username)
            while current is not None and current not in chain and len(chain) < 1000:
                chain.append(current)
                current = above.get(current)
            if current == row.username:
                errors.append(RowError(row.line, relation, f"{relation}s would go round in a circle: "
                                                           + " -> ".join([*chain, current])))


def plan_import(session: Session, data: bytes | str, actor_is_admin: bool = False) -> ImportPlan:
    """Read the file and say, row by row, what importing it would change; change nothing."""
    plan = ImportPlan()
    text, plan.errors = decode(data)
    if text is None:
        return plan
    _header, rows, read_errors = read_rows(text)
    plan.errors.extend(read_errors)
    if any(e.line == 1 or e.field == "file" for e in read_errors):
        return plan  # without a usable header the rows cannot be read
    ctx = _load_context(session, actor_is_admin)
    for line, values in rows:
        username = values.get("username", "")
        if username in ctx.in_file:
            plan.errors.append(RowError(line, "username", f"{username!r} is already on line {ctx.in_file[username]}"))
        elif username:
            ctx.in_file[username] = line
    for line, values in rows:
        username = values.get("username", "")
        if ctx.in_file.get(username) != line and username:
            continue  # the duplicate was reported above
        existing = ctx.people.get(username)
        person = _person_input(values, existing, ctx, line, plan.errors)
        if person is None:
            continue
        row = RowPlan(line=line, username=person.username, status="new" if existing is None else "unchanged",
                      person=person)
        row.changes = _changes(_current(existing), person)
        if existing is not None and row.changes:
            row.status = "updated"
        if person.organisation and person.organisation not in ctx.organisations:
            plan.new_organisations.setdefault(person.organisation, line)
        _login_plan(row, values, ctx, plan.errors)
        plan.rows.append(row)
    _cycles(plan.rows, ctx, plan.errors)
    plan.errors.sort(key=lambda e: (e.line, e.field))
    return plan


# ------------------------------------------------------------------------------------------- applying


def _apply(session: Session, plan: ImportPlan, actor: str) -> None:
    people = {p.username: p for p in session.scalars(select(Person))}
    # Two passes: everyone exists before anyone's supervisor or manager is set (they may come later in the file).
    for row in plan.rows:
        assert row.person is not None
        if row.status == "new":
            people[row.username] = save_person(session, PersonInput(
                username=row.username, name=row.person.name, email=row.person.email,
                classification=row.person.classification))
    for row in plan.rows:
        assert row.person is not None
        if row.status != "unchanged":
            save_person(session, row.person, people[row.username])
        if row.roles is None:
            continue
        login = session.scalars(select(User).where(User.username == row.username)).first()
        if login is None:
            create_user(session, row.username, row.roles, None,
                        password_hash=hash_password(row.password) if row.password else NO_PASSWORD, actor=actor)
        else:
            for role in sorted(set(row.roles) - set(login.roles)):
                audit(session, None, actor, "role_granted", login=row.username, role=role)
            for role in sorted(set(login.roles) - set(row.roles)):
                audit(session, None, actor, "role_removed", login=row.username, role=role)
            login.roles = list(row.roles)


def import_people(db: Database, data: bytes | str, actor: str, actor_is_admin: bool = False,
                  dry_run: bool = False, expected: str | None = None) -> ImportPlan:
    """Plan the import and, unless `dry_run` or anything is wrong, apply all of it in one transaction.

    With `expected` (a fingerprint from a preview) nothing is applied when the plan no longer matches it.
    """
    with db.unit_of_work() as uow:
        session = uow.session
        plan = plan_import(session, data, actor_is_admin)
        if dry_run or not plan.ok or (expected is not None and plan.fingerprint() != expected):
            return plan
        _apply(session, plan, actor)
        audit(session, None, actor, "people_imported",
              created=[r.username for r in plan.rows if r.status == "new"],
              updated={r.username: sorted(r.changes) for r in plan.rows if r.status == "updated"},
              unchanged=plan.count("unchanged"),
              logins=[f"{r.username}: {r.login}" for r in plan.rows if r.roles is not None],
              organisations_created=sorted(plan.new_organisations))
        uow.commit()
    return plan


def plan_rows(plan: ImportPlan) -> list[dict[str, Any]]:
    """The plan as plain rows for pages and the command line."""
    return [{"line": r.line, "username": r.username, "status": r.status, "login": r.login,
             "changes": [{"field": k, "before": before, "after": after} for k, (before, after) in r.changes.items()]}
            for r in plan.rows]




# ------------------------------------------------------------------------------------------- staged (web) imports

STAGED_KIND = "people_import"


def stage(db: Database, actor: str, filename: str, text: str, plan: ImportPlan) -> int:
    """Keep an uploaded file between its preview and its confirmation (a row, not a hidden form field)."""
    now = CLOCK.now()
    with db.unit_of_work() as uow:
        job = BulkJob(kind=STAGED_KIND, status="staged", params={"filename": filename, "csv": text,
                                                                   "fingerprint": plan.fingerprint()},
                      total=len(plan.rows), done=0, results={}, started_by=actor, created_at=now, updated_at=now)
        uow.session.add(job)
        uow.session.flush()
        job_id = job.id
        uow.commit()
    return job_id


def staged(db: Database, job_id: int, actor: str) -> tuple[str, str, str]:
    """The staged file (filename, text, fingerprint) the same person uploaded; NotFound otherwise."""
    with db.read() as s:
        job = s.get(BulkJob, job_id)
        if job is None or job.kind != STAGED_KIND or job.started_by != actor or job.status != "staged":
            raise NotFound("no such upload (it was imported already, or it is someone else's)")
        params = dict(job.params)
    return str(params["filename"]), str(params["csv"]), str(params["fingerprint"])


def restage(db: Database, job_id: int, plan: ImportPlan) -> None:
    """Remember the plan the person has now been shown."""
    with db.unit_of_work() as uow:
        job = uow.session.get_one(BulkJob, job_id)
        job.params = {**job.params, "fingerprint": plan.fingerprint()}
        job.total, job.updated_at = len(plan.rows), CLOCK.now()
        uow.commit()


def finish_staged(db: Database, job_id: int, plan: ImportPlan) -> None:
    """Mark a staged upload as imported (and drop its text: the records now hold it)."""
    with db.unit_of_work() as uow:
        job = uow.session.get_one(BulkJob, job_id)
        job.status, job.done, job.finished_at = "finished", len(plan.rows), CLOCK.now()
        job.params = {"filename": job.params.get("filename")}
        job.results = {"new": plan.count("new"), "updated": plan.count("updated"),
                       "unchanged": plan.count("unchanged")}
        job.updated_at = CLOCK.now()
        uow.commit()
