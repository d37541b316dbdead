"""The functions BPMN scripts and expressions may call, bound to the current session and settings.

Task data holds dates as 'YYYY-MM-DD' strings (JSON), so every helper takes and returns such strings;
the date rules themselves are the pure functions in `engine.policy`.  Helper names must never be used
as case data keys (the script environment refuses data that shadows a helper).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from SpiffWorkflow.exceptions import WorkflowException
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import policy
from engine.clock import CLOCK
from engine.config import Settings
from engine.models import PayPoint, Person

#: Lanes a notice may be addressed to (resolved like task lanes when the notice is delivered).
NOTICE_LANES = frozenset({"Employee", "Supervisor", "Manager", "FormerManager", "CEO", "HR"})


class PolicyRefusal(WorkflowException):  # type: ignore[misc]
    """A diagram's rule check failed: the step is refused with the rule's own message, nothing changes."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.error_msg = message  # the runtime reports error_msg when present: no script line noise


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


def days_between(first: Any, second: Any) -> int:
    """Calendar days from `first` to `second` (negative when `second` is earlier)."""
    return (policy.parse_date(second) - policy.parse_date(first)).days


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
    """D19-4, 9a, 9b, 10: the date an approved progression takes effect (see engine.policy)."""
    revised = policy.parse_date(new_timeframe_date) if new_timeframe_date else None
    return policy.progression_effective_date(
        policy.parse_date(original), policy.parse_date(decided_on), new_timeframe_date=revised,
        employee_caused_delay=bool(employee_caused_delay)).isoformat()


def refuse_unless(condition: Any, message: str) -> bool:
    """Stop the step with `message` unless `condition` holds; the transaction rolls back, nothing changes."""
    if not condition:
        raise PolicyRefusal(str(message))
    return True


def notice(to: str, subject: str, body: str, clause: str | None = None) -> dict[str, Any]:
    """A notice for the people in lane `to`, kept in the case's `notices` list until it is delivered."""
    if to not in NOTICE_LANES:
        raise PolicyRefusal(f"a notice cannot be sent to '{to}' (lanes: {', '.join(sorted(NOTICE_LANES))})")
    return {"to": to, "subject": str(subject), "body": str(body), "clause": clause}


def script_helpers(session: Session, settings: Settings) -> dict[str, Callable[..., Any]]:
    """Name -> function, as BPMN scripts see them."""
    zone = ZoneInfo(settings.timezone)

    def timer_at(value: Any) -> str:
        """An ISO datetime for a timeDate timer: 09:00 on that date in the organisation's time zone."""
        return policy.to_iso_timer(policy.parse_date(value), settings.timezone)

    def window_closes_at(value: Any) -> str:
        """The first instant of that date in the organisation's time zone: "before the date" ends here."""
        return policy.to_iso_timer(policy.parse_date(value), settings.timezone, time(0, 0))

    def today() -> str:
        """Today's date in the organisation's time zone (the engine clock, so tests can move it)."""
        return CLOCK.now().astimezone(zone).date().isoformat()

    def next_point(classification: str, current: str | None) -> str | None:
        return next_pay_point(session, classification, current)

    def person_exists(username: Any) -> bool:
        """True when a people record has this username."""
        return isinstance(username, str) and session.scalars(
            select(Person.id).where(Person.username == username)).first() is not None

    return {
        "add_months": _iso(policy.add_months),
        "add_days": _iso(_add_days),
        "invite_due_date": _iso(policy.invite_due),
        "review_due_date": _iso(policy.review_due),
        "agreement_setup_due_date": _iso(policy.agreement_setup_due),
        "timer_at": timer_at,
        "window_closes_at": window_closes_at,
        "today": today,
        "days_between": days_between,
        "uncounted_days": uncounted_days,
        "progression_effective_date": progression_effective_date,
        "next_pay_point": next_point,
        "person_exists": person_exists,
        "refuse_unless": refuse_unless,
        "notice": notice,
    }
