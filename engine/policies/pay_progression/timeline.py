"""Determination 19's dates on a case's timeline (engine.workflow.timeline): the agreement's start, when the
invitation is due, the assessment date (before and after leave without pay postponed it, D19-9d, or a new
timeframe moved it, D19-10), when submissions close, a review's dates (D19-9a) and when a progression takes effect.

Read only, from the case data and its history of moved dates; the generic timeline adds the tasks and timers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from sqlalchemy.orm import Session

from engine.policies.pay_progression.hooks import HOOKS
from engine.workflow.models import ProcessInstance
from engine.workflow.timeline import Mark, as_date, moved_marks, moves


def _dated(label: str, value: Any, clause: str, kind: str = "milestone", **more: Any) -> Iterator[Mark]:
    day = as_date(value)
    if day is not None:
        yield Mark(label, day, kind, clause=clause, **more)


@HOOKS.timeline("pay_progression")
def pay_progression_marks(session: Session, row: ProcessInstance, timezone: str) -> Iterator[Mark]:
    """The dates of a pay progression case."""
    data: dict[str, Any] = row.data or {}
    history = moves(session, row.id, ("assessment_date", "invite_due", "submission_closes"))
    yield from _dated("Agreement cycle starts", data.get("agreement_start"), "D19-3.1")
    for key, label, clause in (("invite_due", "Invitation due", "D19-3.2"),
                               ("submission_closes", "Submissions close", "D19-3.2")):
        day = as_date(data.get(key))
        if day is not None and (key != "submission_closes" or day != as_date(data.get("assessment_date"))):
            yield from moved_marks(label, day, [m for m in history if m.key == key], clause)
    yield from _assessment_marks(data, [m for m in history if m.key == "assessment_date"])
    found = data.get("review")
    review: dict[str, Any] = found if isinstance(found, dict) else {}
    yield from _dated("Review requested", review.get("requested_on"), "D19-9a")
    yield from _dated("Review due", review.get("due"), "D19-9a", "due", open=not review.get("decided_on"))
    yield from _dated("Review decided", review.get("decided_on"), "D19-9a", "done")
    yield from _dated("Progression takes effect", data.get("effective_date"), "D19-4")


def _assessment_marks(data: dict[str, Any], history: list[Any]) -> Iterator[Mark]:
    """The assessment date as it is now, and the dates it was: postponed for leave without pay (D19-9d), or the
    original date a new timeframe replaced (D19-10)."""
    current = as_date(data.get("assessment_date"))
    if current is None:
        return
    marks = moved_marks("Assessment date", current, history, "D19-9d" if history else "D19-4")
    original, revised = as_date(data.get("original_assessment_date")), as_date(data.get("revised_assessment_date"))
    if original is not None and revised is not None and original != revised and revised == current:
        marks = [replace(m, moved=True, note=m.note or f"moved from {original.isoformat()}")
                 if m.kind != "moved-from" else m for m in marks]
        marks.insert(0, Mark("Assessment date (before the new timeframe)", original, "moved-from", clause="D19-10",
                             moved_to=revised, note="Determination 19, cl. 10: a new timeframe was agreed"))
    yield from marks


@HOOKS.timeline("performance_agreement")
def performance_agreement_marks(session: Session, row: ProcessInstance, timezone: str) -> Iterator[Mark]:
    """D19-3.3: when the new starter commenced, and when performance management must be in place."""
    data: dict[str, Any] = row.data or {}
    yield from _dated("Commenced", data.get("commenced_on"), "D19-3.3")
