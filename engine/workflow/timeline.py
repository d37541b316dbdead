"""A case's dates and timers as one ordered list of marks, for a timeline picture (web.timeline_svg) and its text.

Generic: every case gets marks from what the engine stores about it: when it started and ended, its tasks (a
completed task when it was done, an open task when it falls due, overdue once that has passed), its waiting
timers, and the case data changes that moved a date (`retimed` events). A policy adds its own dates through the
`timeline` hook of its `HookSet` (an assessment date, a placement's end) with `moves` to show a moved date as
the date it was and the date it is now. A diagram no policy claims gets the generic marks only.

The caller has decided that the case may be seen: the timeline holds nothing the case page does not show.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core.clock import CLOCK
from engine.core.models import AuditEvent
from engine.workflow.models import HumanTask, ProcessInstance, Timer
from engine.workflow.registry import REGISTRY

#: What a mark is: a fixed date, a date something falls due, a step done, a waiting timer, a date that moved.
KINDS = ("milestone", "due", "done", "timer", "moved-from")
#: Where a mark stands against today (overdue: due, not done, and passed).
STATES = ("past", "today", "future", "overdue")
#: Timer rows still to fire (a failed one is overdue).
WAITING_TIMERS = ("waiting", "claimed", "failed")

When = date | datetime


@dataclass(frozen=True)
class Mark:
    """One dated mark of a case's timeline."""

    label: str
    when: When  #: a calendar date, or an aware moment
    kind: str = "milestone"  #: one of KINDS
    state: str | None = None  #: one of STATES; None until `build` works it out from the clock
    clause: str | None = None  #: the clause the date comes from (D19-9d)
    note: str = ""  #: a sentence more (why a date moved, that a step was done late)
    moved_to: When | None = None  #: a moved-from mark: the date it moved to
    moved: bool = False  #: this date was moved (the date it was is a moved-from mark)
    open: bool = False  #: something still to be done by this date: overdue once it has passed


@dataclass(frozen=True)
class Move:
    """A date of the case data changed by a `retimed` event (D19-9d: leave without pay postponed it)."""

    key: str
    before: date
    after: date
    at: datetime
    reason: str


@dataclass(frozen=True)
class Timeline:
    """A case's marks in date order, each with its state, and the day they were judged against."""

    marks: list[Mark]
    today: date
    now: datetime
    timezone: str

    @property
    def overdue(self) -> list[Mark]:
        """The marks that are overdue."""
        return [m for m in self.marks if m.state == "overdue"]


def as_date(value: Any) -> date | None:
    """A date from case data (an ISO date or date-time text, a date), else None."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) >= 10:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def instant(when: When, timezone: str) -> datetime:
    """A mark's moment: a date is the start of that day in the organisation's time zone."""
    if isinstance(when, datetime):
        return when if when.tzinfo else when.replace(tzinfo=ZoneInfo("UTC"))
    return datetime.combine(when, time(0, 0), ZoneInfo(timezone))


def local_day(when: When, timezone: str) -> date:
    """The calendar day of a mark in the organisation's time zone."""
    return instant(when, timezone).astimezone(ZoneInfo(timezone)).date() if isinstance(when, datetime) else when


def case_marks(row: ProcessInstance) -> list[Mark]:
    """When the case started and ended."""
    marks = [Mark("Case started", row.started_at, "milestone")]
    if row.ended_at is not None:
        marks.append(Mark(f"Case {row.status}", row.ended_at, "milestone"))
    return marks


def task_marks(session: Session, instance_id: int) -> list[Mark]:
    """A completed task when it was done; an open task when it falls due (open tasks without a due date and
    cancelled tasks have no date to show)."""
    marks: list[Mark] = []
    rows = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id).order_by(HumanTask.id))
    for task in rows:
        if task.state == "completed" and task.completed_at is not None:
            late = task.due_at is not None and task.completed_at > task.due_at
            marks.append(Mark(task.title, task.completed_at, "done", clause=task.clause,
                              note="done after it fell due" if late else ""))
        elif task.state == "open" and task.due_at is not None:
            marks.append(Mark(task.title, task.due_at, "due", clause=task.clause, open=True))
    return marks


def timer_marks(session: Session, instance_id: int) -> list[Mark]:
    """The case's timers still to fire (a timer that failed to fire is overdue)."""
    rows = session.scalars(select(Timer).where(Timer.instance_id == instance_id, Timer.state.in_(WAITING_TIMERS))
                           .order_by(Timer.due_at, Timer.id))
    return [Mark(t.name, t.due_at, "timer", state="overdue" if t.state == "failed" else None,
                 note="the timer failed to fire" if t.state == "failed" else "") for t in rows]


def moves(session: Session, instance_id: int, keys: Iterable[str] | None = None) -> list[Move]:
    """The dates of the case data that `retimed` events moved (of `keys` only, when given), oldest first."""
    wanted = None if keys is None else frozenset(keys)
    found: list[Move] = []
    events = session.scalars(select(AuditEvent).where(AuditEvent.instance_id == instance_id,
                                                      AuditEvent.kind == "retimed").order_by(AuditEvent.id))
    for event in events:
        detail = event.detail or {}
        before, after = detail.get("before") or {}, detail.get("after") or {}
        for key in before:
            old, new = as_date(before.get(key)), as_date(after.get(key))
            if (wanted is None or key in wanted) and old is not None and new is not None and old != new:
                found.append(Move(key, old, new, event.at, str(detail.get("reason") or "")))
    return found


def moved_marks(label: str, current: date, history: list[Move], clause: str | None = None) -> list[Mark]:
    """A date as it is now, marked as moved, and each date it was before (moved-from marks, each pointing at the
    date it moved to); just the date when it never moved."""
    if not history:
        return [Mark(label, current, "milestone", clause=clause)]
    marks = [Mark(f"{label} (before it moved)", m.before, "moved-from", clause=clause, moved_to=m.after,
                  note=m.reason) for m in history]
    first = history[0].before.isoformat()
    marks.append(Mark(label, current, "milestone", clause=clause, moved=True, note=f"moved from {first}"))
    return marks


def with_state(mark: Mark, now: datetime, timezone: str) -> Mark:
    """The mark with its state: as its maker said, else overdue (open and passed), today, past or future."""
    if mark.state in STATES:
        return mark
    today = now.astimezone(ZoneInfo(timezone)).date()
    # Due on a date: by the end of that day; due at a moment (a task's due_at): by that moment.
    deadline = instant(mark.when, timezone) if isinstance(mark.when, datetime) else \
        instant(mark.when + timedelta(days=1), timezone)
    if mark.open and deadline <= now:
        return replace(mark, state="overdue")
    day = local_day(mark.when, timezone)
    return replace(mark, state="today" if day == today else "past" if day < today else "future")


def policy_marks(session: Session, row: ProcessInstance, timezone: str) -> Iterator[Mark]:
    """The marks the package owning the case's process adds (its `timeline` hooks)."""
    for hook in REGISTRY.hooks_for(row.process_key).timeline:
        yield from hook(session, row, timezone)


def build(session: Session, row: ProcessInstance, timezone: str, now: datetime | None = None) -> Timeline:
    """The case's timeline: generic marks and its policy's, each with its state, in date order."""
    now = CLOCK.now() if now is None else now
    marks = [*case_marks(row), *task_marks(session, row.id), *timer_marks(session, row.id),
             *policy_marks(session, row, timezone)]
    for mark in marks:
        if mark.kind not in KINDS:
            raise ValueError(f"a timeline mark's kind must be one of {', '.join(KINDS)}, not {mark.kind!r}")
    ordered = sorted((with_state(m, now, timezone) for m in marks),
                     key=lambda m: (instant(m.when, timezone), KINDS.index(m.kind)))
    return Timeline(ordered, now.astimezone(ZoneInfo(timezone)).date(), now, timezone)
