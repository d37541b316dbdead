"""The placement demo: host organisations and their contacts, a published opportunity and an application.
Idempotent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from sqlalchemy import select

from engine.core.clock import CLOCK
from engine.people.models import User
from engine.people.users import PersonInput, create_user, hash_password, organisation_by_code, save_person
from engine.policies.secondment.process import PROCESS_KEY
from engine.policies.secondment.services import apply_for_placement, first_open_task, publish_opportunity
from engine.workflow.assignment import person_by_username
from engine.workflow.demo import DEMO_PASSWORD
from engine.workflow.models import ProcessInstance
from engine.workflow.runtime import Runtime

# ---------------------------------------------------------------------------------------------- the demo

#: Host organisations' contacts for the demo: (username, name, organisation code, organisation name).
DEMO_HOSTS = [
    ("host", "Hana Ito (NT Health, host supervisor)", "NTH", "NT Health"),
    ("host2", "Ravi Patel (Charles Darwin University, host supervisor)", "CDU", "Charles Darwin University"),
]


def load_secondment_demo(runtime: Runtime) -> Iterator[str]:
    """Host organisations and their contacts (with logins), and two placements under way. Idempotent.

    Call it from engine.workflow.demo.load_demo after the processes are deployed."""
    load_host_people(runtime)
    yield f"{len(DEMO_HOSTS)} host organisation contacts for placements ({', '.join(h[0] for h in DEMO_HOSTS)})"
    with runtime.db.read() as s:
        if s.scalars(select(ProcessInstance.id).where(ProcessInstance.process_key == PROCESS_KEY)).first():
            return
    yield from _demo_cases(runtime)


def load_host_people(runtime: Runtime) -> None:
    """The demo's host organisations and their contacts, with logins (password: the demo password)."""
    with runtime.db.unit_of_work() as uow:
        s = uow.session
        password_hash: str | None = None
        for username, name, code, org_name in DEMO_HOSTS:
            org = organisation_by_code(s, code)
            assert org is not None
            org.name = org_name
            if person_by_username(s, username) is None:
                save_person(s, PersonInput(username=username, name=name, email=f"{username}@demo.ntps.example",
                                           classification="AO7", organisation=code, commenced_on="2023-07-01"))
            if s.scalars(select(User).where(User.username == username)).first() is None:
                password_hash = password_hash or hash_password(DEMO_PASSWORD)
                create_user(s, username, ["staff"], None, password_hash=password_hash, actor="demo")
        uow.commit()


def _demo_user(runtime: Runtime, username: str) -> User:
    with runtime.db.read() as s:
        user = s.scalars(select(User).where(User.username == username)).one()
        _ = user.person
        s.expunge(user)
        return user


def _demo_cases(runtime: Runtime) -> Iterator[str]:
    today = CLOCK.now().date()
    supervisor = _demo_user(runtime, "supervisor")
    case = publish_opportunity(runtime, supervisor)
    task = first_open_task(runtime.db, case, "publish_opportunity")
    assert task is not None
    runtime.complete_task(supervisor, task, {"opportunity": {
        "title": "Workforce data analyst, six months", "summary": "Join NT Health's workforce planning team to "
        "build the staffing model for the new wards.", "host_organisation": "NT Health",
        "host_position": "Senior Analyst (AO7)", "development_benefits": "Data analysis, workforce planning, "
        "working across agencies.", "eligibility": "AO5 to AO7 staff of the Darwin Port Corporation.",
        "proposed_start": date.fromordinal(today.toordinal() + 90).isoformat(), "proposed_months": 6,
        "closing_date": date.fromordinal(today.toordinal() + 21).isoformat(),
        "how_to_apply": "Talk to Sam Okafor before the closing date."}})
    yield f"placement case {case}: a development opportunity published by the supervisor"
    engineer = _demo_user(runtime, "engineer")
    case = apply_for_placement(runtime, engineer)
    yield f"placement case {case}: Tom Nguyen (engineer) has started an application"
