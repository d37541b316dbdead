"""The functions every BPMN script and expression may call, bound to the current session and settings; a policy
package adds its own for its own processes (`ProcessPackage.helpers`).

Task data holds dates as 'YYYY-MM-DD' strings (JSON), so every helper takes and returns such strings;
the date arithmetic itself is pure functions (engine.core.dates). Helper names must never be used as case data
keys (the script environment refuses data that shadows a helper).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from SpiffWorkflow.exceptions import WorkflowException
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core import dates
from engine.core.clock import CLOCK
from engine.core.config import Settings
from engine.people.models import Person
from engine.workflow.registry import REGISTRY

#: Lanes a notice may be addressed to (resolved like task lanes when the notice is delivered).
NOTICE_LANES = frozenset({"Employee", "Supervisor", "Manager", "CEO", "HR"})


class PolicyRefusal(WorkflowException):  # type: ignore[misc]
    """A diagram's rule check failed: the step is refused with the rule's own message, nothing changes."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.error_msg = message  # the runtime reports error_msg when present: no script line noise


def _add_days(d: date, days: int) -> date:
    """`days` calendar days after `d`."""
    return d + timedelta(days=int(days))


def iso_helper(fn: Callable[..., Any]) -> Callable[..., str]:
    def wrapper(value: Any, *args: Any) -> str:
        return str(fn(dates.parse_date(value), *args).isoformat())

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def days_between(first: Any, second: Any) -> int:
    """Calendar days from `first` to `second` (negative when `second` is earlier)."""
    return (dates.parse_date(second) - dates.parse_date(first)).days


def refuse_unless(condition: Any, message: str) -> bool:
    """Stop the step with `message` unless `condition` holds; the transaction rolls back, nothing changes."""
    if not condition:
        raise PolicyRefusal(str(message))
    return True


def notice(to: str, subject: str, body: str, clause: str | None = None) -> dict[str, Any]:
    """A notice for the people in lane `to`, kept in the case's `notices` list until it is delivered."""
    lanes = NOTICE_LANES | REGISTRY.notice_lanes()
    if to not in lanes:
        raise PolicyRefusal(f"a notice cannot be sent to '{to}' (lanes: {', '.join(sorted(lanes))})")
    return {"to": to, "subject": str(subject), "body": str(body), "clause": clause}


def script_helpers(session: Session, settings: Settings) -> dict[str, Callable[..., Any]]:
    """Name -> function, as BPMN scripts see them."""
    zone = ZoneInfo(settings.timezone)

    def timer_at(value: Any) -> str:
        """An ISO datetime for a timeDate timer: 09:00 on that date in the organisation's time zone."""
        return dates.to_iso_timer(dates.parse_date(value), settings.timezone)

    def window_closes_at(value: Any) -> str:
        """The first instant of that date in the organisation's time zone: "before the date" ends here."""
        return dates.to_iso_timer(dates.parse_date(value), settings.timezone, time(0, 0))

    def today() -> str:
        """Today's date in the organisation's time zone (the engine clock, so tests can move it)."""
        return CLOCK.now().astimezone(zone).date().isoformat()

    def person_exists(username: Any) -> bool:
        """True when a people record has this username."""
        return isinstance(username, str) and session.scalars(
            select(Person.id).where(Person.username == username)).first() is not None

    return {
        "add_months": iso_helper(dates.add_months),
        "add_days": iso_helper(_add_days),
        "timer_at": timer_at,
        "window_closes_at": window_closes_at,
        "today": today,
        "days_between": days_between,
        "person_exists": person_exists,
        "refuse_unless": refuse_unless,
        "notice": notice,
    }
