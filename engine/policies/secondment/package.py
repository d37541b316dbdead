"""The NTPS mobility (secondment) policy as a policy package: what it adds to the engine, in one object the
registry loads (engine.workflow.registry)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from engine.people.models import Person
from engine.policies.secondment import context, projection, self_identification, start_checks, timeline  # noqa: F401 - fill HOOKS
from engine.policies.secondment.demo import load_secondment_demo
from engine.policies.secondment.hooks import HOOKS
from engine.policies.secondment.process import PROCESS_KEY
from engine.workflow.assignment import person_by_username
from engine.workflow.registry import ProcessPackage

#: The parts of the policy a clause id names (MP-H: the home organisation's duties).
PARTS = {"MP-0": "agreement (Schedules 1 and 2)", "MP-E": "employee", "MP-H": "home organisation",
         "MP-T": "host organisation", "MP-O": "OCPE", "MP-L": "placement lifecycle"}


def home_contact(session: Session, data: Mapping[str, Any], subject: Person | None) -> Person | None:
    """MP-H: the home organisation's contact for the placement, named in the case."""
    return person_by_username(session, data.get("home_contact"))


def host_contact(session: Session, data: Mapping[str, Any], subject: Person | None) -> Person | None:
    """MP-T: the host organisation's contact for the placement, named in the case."""
    return person_by_username(session, data.get("host_contact"))


def clause_label(clause: str) -> str | None:
    """'MP-H' -> 'Mobility policy, home organisation'."""
    return f"Mobility policy, {PARTS[clause]}" if clause in PARTS else None


PACKAGE = ProcessPackage(
    name="secondment",
    title="Mobility and secondment",
    processes=frozenset({PROCESS_KEY}),
    hooks=HOOKS,
    lanes={"Home": home_contact, "Host": host_contact},
    # An application names the employee; an opportunity names its secondee when one is selected.
    subject_fields={PROCESS_KEY: ("employee", "secondee")},
    overseen_by={PROCESS_KEY: "ocpe"},  # OCPE keeps the register of every placement (MP-O)
    self_started=frozenset({PROCESS_KEY}),  # an employee applies for a placement (MP-E)
    clause_label=clause_label,
    demo=load_secondment_demo,
    web="web.policies.secondment",
)
