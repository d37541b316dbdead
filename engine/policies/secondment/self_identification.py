"""The secondee's voluntary self-identification (MP-O): kept in its own table, never in the case, read only
by the secondee and counted (never listed) in OCPE's statistics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core.clock import CLOCK
from engine.core.db import Database
from engine.core.errors import Forbidden, Invalid, NotFound, Problem
from engine.people.models import User
from engine.policies.secondment.hooks import HOOKS
from engine.policies.secondment.models import (
    Placement,
    PlacementSelfIdentification,
)
from engine.policies.secondment.process import PROCESS_KEY
from engine.workflow.access import may_view_instance
from engine.workflow.models import HumanTask, ProcessInstance

# ---------------------------------------------------------------------------------------------- self-identification


@dataclass(frozen=True)
class Question:
    """One voluntary self-identification question, each with "prefer not to say"."""

    key: str
    label: str
    options: tuple[tuple[str, str], ...]

    def label_of(self, value: str | None) -> str:
        """The answer's label ("Not answered" for none)."""
        return dict(self.options).get(value or "", NOT_ANSWERED[1])


PREFER_NOT_TO_SAY = ("prefer_not_to_say", "Prefer not to say")
NOT_ANSWERED = ("not_answered", "Not answered")
QUESTIONS: tuple[Question, ...] = (
    Question("gender", "Gender", (("woman", "Woman or female"), ("man", "Man or male"),
                                  ("non_binary", "Non-binary"), ("different_term", "I use a different term"),
                                  PREFER_NOT_TO_SAY)),
    Question("age_band", "Age", (("under_25", "Under 25"), ("25_34", "25 to 34"), ("35_44", "35 to 44"),
                                 ("45_54", "45 to 54"), ("55_64", "55 to 64"), ("65_plus", "65 or over"),
                                 PREFER_NOT_TO_SAY)),
    Question("atsi", "Aboriginal and Torres Strait Islander status", (
        ("aboriginal", "Aboriginal"), ("torres_strait_islander", "Torres Strait Islander"),
        ("both", "Both Aboriginal and Torres Strait Islander"), ("neither", "Neither"), PREFER_NOT_TO_SAY)),
    Question("disability", "Disability", (("yes", "Yes"), ("no", "No"), PREFER_NOT_TO_SAY)),
    Question("cald", "Culturally and linguistically diverse background", (("yes", "Yes"), ("no", "No"),
                                                                         PREFER_NOT_TO_SAY)),
)


def parse_self_identification(answers: Mapping[str, Any]) -> dict[str, str | None]:
    """Check answers against the questions: each is one of its options, or blank (not answered)."""
    clean: dict[str, str | None] = {}
    problems: list[Problem] = []
    for q in QUESTIONS:
        value = answers.get(q.key)
        value = value.strip() if isinstance(value, str) else value
        if value in (None, ""):
            clean[q.key] = None
        elif isinstance(value, str) and value in dict(q.options):
            clean[q.key] = value
        else:
            problems.append(Problem("Must be one of: " + ", ".join(label for _, label in q.options) + ".",
                                    field=q.key))
    if problems:
        raise Invalid("the answers have errors", problems)
    return clean


def secondee_of(session: Session, row: ProcessInstance) -> str | None:
    """The username of a placement case's secondee (the applicant, or the selected employee)."""
    placement = session.get(Placement, row.id)
    if placement is not None and placement.secondee:
        return placement.secondee
    employee = (row.data or {}).get("employee")
    if isinstance(employee, str) and employee:
        return employee
    return row.subject.username if row.subject is not None else None


def _own_placement(session: Session, user: User, instance_id: int) -> ProcessInstance:
    row = session.get(ProcessInstance, instance_id)
    if row is None or row.process_key != PROCESS_KEY:
        raise NotFound("no such placement")
    person = user.person
    if person is None or secondee_of(session, row) != person.username:
        if may_view_instance(session, user, row):
            raise Forbidden("only the secondee answers these questions")
        raise NotFound("no such placement")
    return row


def self_identification(session: Session, user: User, instance_id: int) -> dict[str, str | None]:
    """The secondee's own answers for a placement (only they may read them)."""
    _own_placement(session, user, instance_id)
    row = session.scalars(select(PlacementSelfIdentification).where(
        PlacementSelfIdentification.instance_id == instance_id)).first()
    return {q.key: getattr(row, q.key) if row else None for q in QUESTIONS}


def record_self_identification(db: Database, user: User, instance_id: int, answers: Mapping[str, Any]) -> None:
    """Record (or replace) the secondee's voluntary answers; all blank withdraws them (MP-O).

    They are kept out of the case data, which the home and host contacts can read, and out of the audit trail;
    the register only ever shows them as counts, with small counts suppressed."""
    clean = parse_self_identification(answers)
    with db.unit_of_work() as uow:
        s = uow.session
        _own_placement(s, user, instance_id)
        row = s.scalars(select(PlacementSelfIdentification).where(
            PlacementSelfIdentification.instance_id == instance_id)).first()
        if not any(clean.values()):
            if row is not None:
                s.delete(row)
        else:
            if row is None:
                row = PlacementSelfIdentification(instance_id=instance_id, recorded_at=CLOCK.now())
                s.add(row)
            for key, value in clean.items():
                setattr(row, key, value)
            row.recorded_at = CLOCK.now()
        uow.commit()


# ---------------------------------------------------------------------------------------------- process hooks

#: The form field of the application that holds the voluntary self-identification answers.
SELF_ID_FIELD = "self_identification"


@HOOKS.on_complete(PROCESS_KEY)
def keep_self_identification_apart(session: Session, row: ProcessInstance, task: HumanTask, data: dict[str, Any],
                                   actor: str) -> dict[str, Any]:
    """The application's optional self-identification goes to its own table, never into the case (MP-O).

    The case data and its history are readable by the home and host contacts; these answers are for OCPE's
    counts only."""
    application = data.get("application")
    if task.name != "apply" or not isinstance(application, dict) or SELF_ID_FIELD not in application:
        return data
    answers = parse_self_identification(application.get(SELF_ID_FIELD) or {})
    clean = {**data, "application": {k: v for k, v in application.items() if k != SELF_ID_FIELD}}
    existing = session.scalars(select(PlacementSelfIdentification).where(
        PlacementSelfIdentification.instance_id == row.id)).first()
    if any(answers.values()):
        if existing is None:
            existing = PlacementSelfIdentification(instance_id=row.id, recorded_at=CLOCK.now())
            session.add(existing)
        for key, value in answers.items():
            setattr(existing, key, value)
        existing.recorded_at = CLOCK.now()
    return clean
