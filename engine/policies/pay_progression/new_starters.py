"""New starters get their performance-agreement set-up (Determination 19, cl. 3; D19-3.3).

Performance management starts within two months of commencement in the agency. When a person is recorded in a
covered classification (a new record, or one reclassified into a covered classification: over the API, the
people pages or the CSV import), the `performance_agreement` process is started for them: its set-up task is due
two months after commencement (`start_checks.prepare_performance_agreement`). A person is never started twice:
anyone who already has a performance agreement case that was not cancelled is left alone.

Starting a case is its own transaction (the runtime's), after the people change has committed: a set-up that
cannot start (the process is not deployed, the scope table refuses) never undoes the people record. Such a person
stays in front of HR, on the HR tools page, with one action to start it; the failure is audited.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core.audit import audit
from engine.core.errors import EngineError
from engine.people.models import Person, User
from engine.policies.pay_progression.start_checks import D19_CLASSIFICATIONS
from engine.workflow.models import ProcessInstance
from engine.workflow.registry import PeopleOutcome
from engine.workflow.runtime import Runtime

PROCESS = "performance_agreement"


@dataclass
class SetupReport:
    """Who got a set-up case, and who did not and why."""

    started: dict[str, int] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)


def covered(person: Person) -> bool:
    """True for a classification Determination 19 covers (the scope table decides at the start itself)."""
    return person.classification in D19_CLASSIFICATIONS


def _has_agreement_case(session: Session, person_id: int) -> bool:
    return session.scalar(select(ProcessInstance.id).where(
        ProcessInstance.process_key == PROCESS, ProcessInstance.subject_id == person_id,
        ProcessInstance.status != "cancelled").limit(1)) is not None


def pending_setups(session: Session) -> list[dict[str, Any]]:
    """People in a covered classification with no performance agreement case (not cancelled), by name."""
    with_case = select(ProcessInstance.subject_id).where(
        ProcessInstance.process_key == PROCESS, ProcessInstance.status != "cancelled",
        ProcessInstance.subject_id.is_not(None))
    people = session.scalars(select(Person).where(Person.classification.in_(D19_CLASSIFICATIONS),
                                                  Person.id.not_in(with_case)).order_by(Person.name))
    return [{"username": p.username, "name": p.name, "classification": p.classification,
             "commenced_on": p.commenced_on.isoformat() if p.commenced_on else None} for p in people]


def start_setups(runtime: Runtime, user: User | None, actor: str, usernames: Iterable[str]) -> SetupReport:
    """Start the agreement set-up of each named person who is covered and has none yet (D19-3.3)."""
    report = SetupReport()
    for username in dict.fromkeys(usernames):
        with runtime.db.read() as s:
            person = s.scalars(select(Person).where(Person.username == username)).first()
            if person is None or not covered(person) or _has_agreement_case(s, person.id):
                continue
        try:
            report.started[username] = runtime.start(user, PROCESS, {"employee": username}, actor=actor)
        except EngineError as exc:
            reason = "; ".join(p.message for p in exc.problems) or exc.message
            report.pending[username] = reason
            with runtime.db.unit_of_work() as uow:
                audit(uow.session, None, actor, "agreement_setup_pending", clause="D19-3.3", username=username,
                      reason=reason)
                uow.commit()
    return report


def describe(report: SetupReport) -> str:
    """The report in a sentence for a flash message or a command's output (empty when nothing happened)."""
    parts = []
    if report.started:
        parts.append("performance agreement set-up started (Determination 19, cl. 3) for "
                     + ", ".join(f"{u} (case #{c})" for u, c in report.started.items()))
    if report.pending:
        parts.append("set-up not started, waiting on HR tools: "
                     + "; ".join(f"{u}: {why}" for u, why in report.pending.items()))
    return ". ".join(parts)


def on_people_recorded(runtime: Runtime, user: User | None, actor: str, usernames: Sequence[str]) -> PeopleOutcome:
    """D19-3.3: a person recorded in (or moved into) a covered classification gets the performance agreement
    set-up (ProcessPackage.people_recorded)."""
    report = start_setups(runtime, user, actor, usernames)
    return PeopleOutcome(describe(report), dict(report.started), "agreement_setup_case")
