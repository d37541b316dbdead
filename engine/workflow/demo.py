"""The demo organisation: people, logins, pay points and the deployed processes; each policy package adds its own
cases (ProcessPackage.demo). Idempotent."""

from __future__ import annotations

import functools
from collections.abc import Iterator

from sqlalchemy import select

from engine.people.models import PayPoint, Person, User
from engine.people.users import PersonInput, create_user, hash_password, organisation_by_code, save_person
from engine.workflow.bundles import Deployed, read_bundle
from engine.workflow.definitions import deploy
from engine.workflow.registry import REGISTRY
from engine.workflow.runtime import Runtime

DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - documented in the README; demo data only

#: (username, name, classification, pay point, supervisor, roles, ceo delegate)
PEOPLE = [
    ("ceo", "Casey Ng (Chief Executive)", "CEO", None, None, ["staff"], False),
    ("manager", "Morgan Lee (Manager, Port Operations)", "SAO2", None, "ceo", ["staff"], False),
    ("supervisor", "Sam Okafor (Senior Supervisor)", "SPAO2", "SPAO2-2", "manager", ["staff"], False),
    ("employee", "Emily Wong", "SPAO1", "SPAO1-1", "supervisor", ["staff"], False),
    ("engineer", "Tom Nguyen", "SPPO1", "SPPO1-2", "supervisor", ["staff"], False),
    ("clerk", "Alex Rivera", "AO6", None, "supervisor", ["staff"], False),
    ("delegate", "Dana Price (CEO delegate)", "SAO1", None, "ceo", ["staff"], True),
    ("hr", "Harper Rowe (HR)", "AO7", None, "manager", ["hr", "staff"], False),
    ("ocpe", "Olive Chen (OCPE)", "AO7", None, None, ["ocpe", "staff"], False),
    ("owner", "Pat Quinn (process owner)", "AO6", None, None, ["process_owner", "staff"], False),
    ("admin", "Administrator", "AO8", None, None, ["admin", "process_owner", "hr", "staff"], False),
]

#: Pay points by classification, lowest first (D19-1; editable data).
PAY_POINTS = {
    "SPAO1": ["SPAO1-1", "SPAO1-2", "SPAO1-3"],
    "SPAO2": ["SPAO2-1", "SPAO2-2", "SPAO2-3"],
    "SPPO1": ["SPPO1-1", "SPPO1-2", "SPPO1-3"],
    "SPPO2": ["SPPO2-1", "SPPO2-2", "SPPO2-3"],
}


def load_pay_points(runtime: Runtime) -> None:
    """Add any missing pay points."""
    with runtime.db.unit_of_work() as uow:
        s = uow.session
        for classification, codes in PAY_POINTS.items():
            for ordinal, code in enumerate(codes, start=1):
                exists = s.scalars(select(PayPoint).where(PayPoint.classification == classification,
                                                          PayPoint.code == code)).first()
                if exists is None:
                    s.add(PayPoint(classification=classification, code=code, ordinal=ordinal))
        uow.commit()


@functools.cache
def _demo_hash() -> str:
    # Hashing is deliberately slow; the demo's logins share one documented password, so hash it once.
    return hash_password(DEMO_PASSWORD)


def load_people(runtime: Runtime) -> None:
    """The demo organisation, its people and their logins."""
    load_pay_points(runtime)
    with runtime.db.unit_of_work() as uow:
        s = uow.session
        org = organisation_by_code(s, "DPC")
        assert org is not None
        org.name = "Darwin Port Corporation"
        for username, name, classification, point, supervisor, roles, delegate in PEOPLE:
            person = s.scalars(select(Person).where(Person.username == username)).first()
            if person is None:
                person = save_person(s, PersonInput(
                    username=username, name=name, email=f"{username}@demo.ntps.example",
                    classification=classification, pay_point=point, organisation="DPC",
                    supervisor=supervisor, commenced_on="2024-01-15", ceo_delegate=delegate))
            if s.scalars(select(User).where(User.username == username)).first() is None:
                create_user(s, username, roles, None, password_hash=_demo_hash(), actor="demo")
        org.ceo_id = s.scalars(select(Person.id).where(Person.username == "ceo")).one()
        uow.commit()


def deploy_processes(runtime: Runtime, actor: str = "demo") -> list[Deployed]:
    """Deploy every diagram in processes/ and in the folder of each loaded policy (processes/<name>/), with the
    forms in forms/ (a no-op for the ones that did not change)."""
    folder = runtime.settings.processes_dir
    folders = [folder, *(folder / name for name in REGISTRY.packages)]
    paths = sorted(p for f in folders for p in [*f.glob("*.bpmn"), *f.glob("*.dmn")])
    files = {p.name: p.read_bytes() for p in paths}
    with runtime.db.unit_of_work() as uow:
        results = deploy(uow.session, read_bundle(files, runtime.settings.forms_dir), actor)
        uow.commit()
    return results


def load_demo(runtime: Runtime) -> Iterator[str]:
    """Load everything the demo needs, then each loaded policy's demo; running it again changes nothing."""
    load_people(runtime)
    yield f"{len(PEOPLE)} demo people and logins (password: {DEMO_PASSWORD})"
    for r in deploy_processes(runtime):
        yield f"process {r.key} version {r.version}" + ("" if r.created else " (unchanged)")
    for package in list(REGISTRY.packages.values()):
        if package.demo is not None:
            yield from package.demo(runtime)
