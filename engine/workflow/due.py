"""When things are due: a timer's next due time as SpiffWorkflow computes it, a task's due date from its
`dueDate` expression, and when to remind someone before it (ISO 8601 durations)."""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta  # type: ignore[import-untyped, unused-ignore]
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimerEventDefinition,
)

from engine.core.clock import CLOCK

log = logging.getLogger(__name__)


def timer_kind(event: TimerEventDefinition) -> str:
    if isinstance(event, CycleTimerEventDefinition):
        return "cycle"
    if isinstance(event, DurationTimerEventDefinition):
        return "duration"
    return "date"


def waiting_timer(event: Any) -> TimerEventDefinition | None:
    """The timer a waiting task waits on: its own timer event, or the timer among an event-based gateway's (or a
    multiple event's) definitions, which SpiffWorkflow keeps on the gateway's task while it waits."""
    if isinstance(event, TimerEventDefinition):
        return event
    if isinstance(event, MultipleEventDefinition):
        return next((e for e in event.event_definitions if isinstance(e, TimerEventDefinition)), None)
    return None


def timer_due(event: TimerEventDefinition, task: Any) -> datetime | None:
    """When a waiting timer task falls due, from the value SpiffWorkflow stored when it started waiting."""
    value = event.details(task).value
    if value is None:
        return None
    if isinstance(value, dict):  # a finished cycle
        return None
    due = TimerEventDefinition.get_datetime(value) if isinstance(value, str) else value
    return due if isinstance(due, datetime) else None


#: An ISO 8601 duration (years, months, weeks, days; hours, minutes, seconds after T).
ISO_DURATION = re.compile(r"P(?=\d|T\d)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?"
                          r"(?:(?P<days>\d+)D)?(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?"
                          r"(?:(?P<seconds>\d+)S)?)?", re.IGNORECASE)


def remind_at(due: datetime | None, before: Any) -> datetime | None:
    """When to remind a task's assignee: `before` (an ISO 8601 duration, the `remindBefore` property) before `due`;
    None without either, or when that moment is already past (a task that opens late gets no reminder)."""
    if due is None or not isinstance(before, str):
        return None
    match = ISO_DURATION.fullmatch(before.strip())
    if match is None:
        return None
    n = {k: int(v or 0) for k, v in match.groupdict().items()}
    at: datetime = due - relativedelta(years=n["years"], months=n["months"], weeks=n["weeks"], days=n["days"],
                                       hours=n["hours"], minutes=n["minutes"], seconds=n["seconds"])
    return at if at > CLOCK.now() else None


def due_from_value(value: Any, timezone: str, opened: datetime | None = None) -> datetime | None:
    """Turn a date/ISO value into an aware due datetime (a bare date = the end of that local day).

    An ISO 8601 duration (or a timedelta) counts from `opened`, calendar-aware for months and years."""
    tz = ZoneInfo(timezone)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, timedelta):
        return None if opened is None else opened + value
    duration = ISO_DURATION.fullmatch(value.strip()) if isinstance(value, str) and opened is not None else None
    if duration is not None and opened is not None:
        # On the local calendar: 31 January + P1M is 28 February, as people count a month.
        n = {k: int(v or 0) for k, v in duration.groupdict().items()}
        due: datetime = opened.astimezone(tz) + relativedelta(
            years=n["years"], months=n["months"], weeks=n["weeks"], days=n["days"], hours=n["hours"],
            minutes=n["minutes"], seconds=n["seconds"])
        return due
    if isinstance(value, str):
        try:
            if len(value) == 10:
                value = date.fromisoformat(value)
            else:
                parsed = datetime.fromisoformat(value)
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
        except ValueError:
            return None
    if isinstance(value, date):
        return datetime.combine(value + timedelta(days=1), time(0, 0), tz)
    return None


def task_due_at(spiff_task: Any, expression: str | None, timezone: str,
                opened: datetime | None = None) -> datetime | None:
    """A task's due time from its `dueAt` property: an expression giving a date, an ISO datetime or an
    ISO 8601 duration counted from when the task opened (`P14D`, `"PT4H"`, `"P1M"`).

    A date means "by the end of that day" in the organisation's time zone (`timezone`).
    """
    if not expression:
        return None
    literal = expression.strip().strip("'\"")
    if ISO_DURATION.fullmatch(literal):  # a literal duration, quoted or not
        value: Any = literal
    else:
        try:
            value = spiff_task.workflow.script_engine.evaluate(spiff_task, expression)
        except Exception as exc:  # a bad expression must not block the case; it is logged and audited
            log.warning("dueAt of %s failed: %s", spiff_task.task_spec.bpmn_id, exc)
            return None
    return due_from_value(value, timezone, opened or CLOCK.now())
