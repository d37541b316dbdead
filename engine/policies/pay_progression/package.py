"""Determination 19 of 2011 (pay progression for senior port officers) as a policy package: what it adds to the
engine, in one object the registry loads (engine.workflow.registry)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from engine.people.models import Person
from engine.policies.pay_progression import services, start_checks, timeline  # noqa: F401 - their decorators fill HOOKS
from engine.policies.pay_progression.demo import load_pay_progression_demo
from engine.policies.pay_progression.helpers import d19_helpers
from engine.policies.pay_progression.hooks import HOOKS
from engine.policies.pay_progression.leave import record_leave
from engine.policies.pay_progression.new_starters import on_people_recorded
from engine.workflow.assignment import person_by_username
from engine.workflow.registry import ProcessPackage
from engine.workflow.runtime import Runtime

PROCESSES = frozenset({"pay_progression", "performance_agreement"})


def former_manager(session: Session, data: Mapping[str, Any], subject: Person | None) -> Person | None:
    """D19-11: the manager of the employee's former position, named in the case (a transfer within the cycle)."""
    return person_by_username(session, data.get("former_manager"))


def clause_label(clause: str) -> str | None:
    """'D19-7' -> 'Determination 19, cl. 7'."""
    return f"Determination 19, cl. {clause[4:]}" if clause.startswith("D19-") else None


def scenario_leave(runtime: Runtime, user: Any, case: int | None, data: Mapping[str, Any]) -> Any:
    """A scenario's leave record (D19-9d, D19-10): `person` and the leave as HR records it."""
    return record_leave(runtime, user, str(data.get("person", "")), {k: v for k, v in data.items() if k != "person"})


def scenario_appoint(runtime: Runtime, user: Any, case: int | None, data: Mapping[str, Any]) -> Any:
    """A scenario's appointment in its current case (D19-6): `lane`, `person`, `reason`, optional `approved_by`."""
    if case is None:
        raise ValueError("an appointment needs a running case: start one first")
    return services.appoint(runtime, user, case, str(data.get("lane", "")), str(data.get("person", "")),
                            str(data.get("reason", "")), data.get("approved_by"))


PACKAGE = ProcessPackage(
    name="pay_progression",
    title="Pay progression (Determination 19 of 2011)",
    processes=PROCESSES,
    hooks=HOOKS,
    helpers=d19_helpers,
    lanes={"FormerManager": former_manager},
    notice_lanes=frozenset({"FormerManager"}),
    # Written reasons and submissions go to the people the determination names, and to HR of that agency only.
    agency_private=PROCESSES,
    clause_label=clause_label,
    people_recorded=on_people_recorded,
    demo=load_pay_progression_demo,
    web="web.policies.pay_progression",
    scenario_actions={"leave": scenario_leave, "appoint": scenario_appoint},
)
