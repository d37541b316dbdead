"""The functions BPMN scripts and expressions may call, bound to the current session and settings.

Task data holds dates as 'YYYY-MM-DD' strings (JSON), so every helper takes and returns such strings;
the date rules themselves are the pure functions in `engine.policy`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import policy
from engine.config import Settings
from engine.models import PayPoint


def _add_days(d: date, days: int) -> date:
    """`days` calendar days after `d`."""
    return d + timedelta(days=int(days))


def _iso(fn: Callable[..., Any]) -> Callable[..., str]:
    def wrapper(value: Any, *args: Any) -> str:
        return str(fn(policy.parse_date(value), *args).isoformat())

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


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


def script_helpers(session: Session, settings: Settings) -> dict[str, Callable[..., Any]]:
    """Name -> function, as BPMN scripts see them."""

    def timer_at(value: Any) -> str:
        """An ISO datetime for a timeDate timer: 09:00 on that date in the organisation's time zone."""
        return policy.to_iso_timer(policy.parse_date(value), settings.timezone)

    def next_point(classification: str, current: str | None) -> str | None:
        return next_pay_point(session, classification, current)

    return {
        "add_months": _iso(policy.add_months),
        "add_days": _iso(_add_days),
        "invite_due_date": _iso(policy.invite_due),
        "review_due_date": _iso(policy.review_due),
        "agreement_setup_due_date": _iso(policy.agreement_setup_due),
        "timer_at": timer_at,
        "next_pay_point": next_point,
    }
