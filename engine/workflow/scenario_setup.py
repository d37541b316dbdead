"""What a scenario needs before its case starts (issue 20): a throw-away database holding every table, the given
diagrams, tables and forms deployed, and the people, organisations, pay points and logins its `setup` names.

Nothing here knows a policy: records a policy keeps (Determination 19's leave) are made through the actions its
package declares (ProcessPackage.scenario_actions), by the runner."""

from __future__ import annotations

import functools
import importlib
import importlib.util
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core.config import Settings
from engine.core.db import Database
from engine.core.models import Base
from engine.people.models import PayPoint, Person, User
from engine.people.users import PersonInput, create_user, hash_password, organisation_by_code, save_person
from engine.workflow.bundles import read_bundle
from engine.workflow.definitions import deploy
from engine.workflow.registry import PACKAGE_MODULE, REGISTRY, load_policies
from engine.workflow.runtime import Runtime

#: Scenario people log in with this (nobody does: the runner acts for them); hashed once per process.
SCENARIO_PASSWORD = "scenario lantern ochre 2031"  # noqa: S105 - a throw-away database's logins


@dataclass
class Sources:
    """What a scenario run deploys: .bpmn, .dmn and form .json files by name, and a folder of further forms (a
    diagram's forms not among the files are read from it)."""

    files: dict[str, bytes | str] = field(default_factory=dict)
    forms_dir: Path | None = None


def project_sources(settings: Settings) -> Sources:
    """The diagrams and tables of processes/ and of each loaded policy's folder, with the forms of forms/ (what
    `ntpswf demo` deploys): the live version a draft is compared with."""
    load_policies(settings)
    folder = settings.processes_dir
    folders = [folder, *(folder / name for name in REGISTRY.packages)]
    paths = sorted(p for f in folders for p in [*f.glob("*.bpmn"), *f.glob("*.dmn")])
    return Sources({p.name: p.read_bytes() for p in paths}, settings.forms_dir)


def create_tables(db: Database, settings: Settings) -> None:
    """Every table of the core, people, engine and loaded policies (as engine.schema finds them, which this layer
    may not import: each `models` module of the engine, and of each loaded policy package's folder)."""
    import engine.workflow
    from engine.people import models as _people  # noqa: F401 - registers the tables

    modules = [f"engine.workflow.{m.name}" for m in pkgutil.iter_modules(engine.workflow.__path__)
               if m.name == "models" or m.name.endswith("_models")]
    for listed in settings.policy_packages:  # a short name is engine.policies.<name>.package, a dotted one a module
        module = listed if "." in listed else PACKAGE_MODULE.format(name=listed)
        modules.append(f"{module.rsplit('.', 1)[0]}.models")
    for name in modules:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
    Base.metadata.create_all(db.engine)


def deploy_sources(runtime: Runtime, sources: Sources) -> None:
    """Deploy the files as the scenario's processes (a bad file raises Invalid naming it)."""
    with runtime.db.unit_of_work() as uow:
        deploy(uow.session, read_bundle(sources.files, sources.forms_dir), "scenario")
        uow.commit()


@functools.cache
def _password_hash() -> str:
    return hash_password(SCENARIO_PASSWORD)


def set_up_people(runtime: Runtime, setup: Mapping[str, Any]) -> None:
    """The demo organisation when asked, then the pay points, organisations and people the setup names."""
    if setup.get("demo_people"):
        from engine.workflow.demo import load_people

        load_people(runtime)
    with runtime.db.unit_of_work() as uow:
        s = uow.session
        for classification, codes in (setup.get("pay_points") or {}).items():
            _pay_points(s, classification, codes)
        for org in setup.get("organisations") or []:
            organisation = organisation_by_code(s, org["code"])
            assert organisation is not None
            organisation.name = org.get("name", organisation.name)
        for entry in setup.get("people") or []:
            _person(s, entry)
        for org in setup.get("organisations") or []:
            if org.get("ceo"):
                organisation = organisation_by_code(s, org["code"])
                ceo = s.scalars(select(Person).where(Person.username == org["ceo"])).first()
                if organisation is None or ceo is None:
                    raise ValueError(f"organisations: {org['code']}: no person {org['ceo']!r} to be its CEO")
                organisation.ceo_id = ceo.id
        uow.commit()


def _pay_points(s: Session, classification: str, codes: list[str]) -> None:
    for ordinal, code in enumerate(codes, start=1):
        row = s.scalars(select(PayPoint).where(PayPoint.classification == classification,
                                               PayPoint.code == code)).first()
        if row is None:
            s.add(PayPoint(classification=classification, code=code, ordinal=ordinal))
        else:
            row.ordinal = ordinal


def _username(person: Person | None) -> str | None:
    return person.username if person is not None else None


def _person(s: Session, entry: Mapping[str, Any]) -> None:
    """A new person (with a login), or the named fields of one already there changed."""
    username = entry["username"]
    existing = s.scalars(select(Person).where(Person.username == username)).first()
    base: dict[str, Any] = {"name": username, "email": f"{username}@scenario.example", "classification": "AO6"}
    if existing is not None:
        base = {"name": existing.name, "email": existing.email, "classification": existing.classification,
                "pay_point": existing.pay_point, "ceo_delegate": existing.ceo_delegate,
                "organisation": existing.organisation.code if existing.organisation else None,
                "supervisor": _username(existing.supervisor), "manager": _username(existing.manager),
                "commenced_on": existing.commenced_on.isoformat() if existing.commenced_on else None}
    fields = {**base, **{k: v for k, v in entry.items() if k not in ("username", "roles")}}
    save_person(s, PersonInput(username=username, **fields), existing)
    user = s.scalars(select(User).where(User.username == username)).first()
    roles = list(entry.get("roles") or (user.roles if user is not None else ["staff"]))
    if user is None:
        create_user(s, username, roles, None, password_hash=_password_hash(), actor="scenario")
    else:
        user.roles = roles
    s.flush()


def user_named(runtime: Runtime, username: str) -> User:
    """The login a step acts as (detached, with its person); ValueError naming it when there is none."""
    with runtime.db.read() as s:
        user = s.scalars(select(User).where(User.username == username)).first()
        if user is None:
            raise ValueError(f"nobody logs in as {username!r}: add them under setup.people")
        _ = user.person
        s.expunge(user)
        return user
