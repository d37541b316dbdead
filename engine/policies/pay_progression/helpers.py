"""The script helpers Determination 19's diagrams call (pay_progression, performance_agreement): its dates, the
days that do not count, the date a progression takes effect, the next pay point. Other processes never see them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core.config import Settings
from engine.people.models import PayPoint
from engine.policies.pay_progression import timing as policy
from engine.workflow.helpers import iso_helper


def pay_points(session: Session, classification: str) -> list[str]:
    """The ordered pay points of a classification (D19-1)."""
    return list(session.scalars(
        select(PayPoint.code).where(PayPoint.classification == classification).order_by(PayPoint.ordinal)))


def next_pay_point(session: Session, classification: str, current: str | None) -> str | None:
    """The pay point after `current`, or None on the top point (or an unknown one)."""
    points = pay_points(session, classification)
    if current not in points:
        return None
    index = points.index(current)
    return points[index + 1] if index + 1 < len(points) else None


def periods_of(items: Any) -> list[tuple[date, date]]:
    """Periods from task data: a list of {"start": ..., "end": ...} objects."""
    if not isinstance(items, list):
        return []
    return [(policy.parse_date(p["start"]), policy.parse_date(p["end"])) for p in items if isinstance(p, dict)]


def uncounted_days(cycle_start: Any, assessment_date: Any, items: Any) -> int:
    """D19-12(2): days by which periods that do not count postpone the assessment date."""
    return policy.postponement(policy.parse_date(cycle_start), policy.parse_date(assessment_date), periods_of(items))


def progression_effective_date(original: Any, decided_on: Any, new_timeframe_date: Any = None,
                               employee_caused_delay: Any = False) -> str:
    """D19-4, 9a, 9b, 10: the date an approved progression takes effect (see timing)."""
    revised = policy.parse_date(new_timeframe_date) if new_timeframe_date else None
    return policy.progression_effective_date(
        policy.parse_date(original), policy.parse_date(decided_on), new_timeframe_date=revised,
        employee_caused_delay=bool(employee_caused_delay)).isoformat()


def d19_helpers(session: Session | None, settings: Settings) -> Mapping[str, Callable[..., Any]]:
    """Name -> function, as Determination 19's diagrams see them (beside the generic helpers)."""

    def next_point(classification: str, current: str | None) -> str | None:
        if session is None:
            raise RuntimeError("next_pay_point needs the database")
        return next_pay_point(session, classification, current)

    return {
        "invite_due_date": iso_helper(policy.invite_due),
        "review_due_date": iso_helper(policy.review_due),
        "agreement_setup_due_date": iso_helper(policy.agreement_setup_due),
        "uncounted_days": uncounted_days,
        "progression_effective_date": progression_effective_date,
        "next_pay_point": next_point,
    }
