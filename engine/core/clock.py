"""The one clock the engine reads: the wall clock in production, a movable one in tests and the demo.

SpiffWorkflow's timer module calls ``datetime.now(timezone.utc)`` itself and offers no hook, so
``install`` swaps that module's ``datetime`` name for a subclass whose ``now`` asks our clock. Every
timer decision SpiffWorkflow makes then agrees with the due times the engine writes to the database.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta, tzinfo

#: A clock of this thread alone (a scenario run): [its frozen instant], or None for the shared clock.
_LOCAL: ContextVar[list[datetime] | None] = ContextVar("ntpswf_local_clock", default=None)


class Clock:
    """Wall clock plus an optional offset (demo time travel) or a frozen instant (tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = timedelta(0)
        self._frozen: datetime | None = None

    def now(self) -> datetime:
        """Current time, timezone-aware in UTC."""
        local = _LOCAL.get()
        if local is not None:
            return local[0]
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return datetime.now(UTC) + self._offset

    def freeze(self, at: datetime) -> None:
        """Stop the clock at `at` (tests)."""
        if at.tzinfo is None:
            raise ValueError("freeze() needs a timezone-aware datetime")
        local = _LOCAL.get()
        if local is not None:
            local[0] = at.astimezone(UTC)
            return
        with self._lock:
            self._frozen = at.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward (or back) by `delta`, frozen or not."""
        local = _LOCAL.get()
        if local is not None:
            local[0] += delta
            return
        with self._lock:
            if self._frozen is not None:
                self._frozen += delta
            else:
                self._offset += delta

    def set_offset(self, offset: timedelta) -> None:
        """Run the wall clock shifted by `offset` (demo time travel; shared through the database)."""
        with self._lock:
            self._offset = offset

    def reset(self) -> None:
        """Back to the wall clock."""
        with self._lock:
            self._frozen = None
            self._offset = timedelta(0)

    @contextmanager
    def isolated(self, at: datetime) -> Iterator[None]:
        """Inside, this thread alone sees a clock frozen at `at` (freeze and advance move it); the shared clock
        other threads and the caller read is never touched (a scenario run inside a web request)."""
        if at.tzinfo is None:
            raise ValueError("isolated() needs a timezone-aware datetime")
        token = _LOCAL.set([at.astimezone(UTC)])
        try:
            yield
        finally:
            _LOCAL.reset(token)

    @property
    def offset(self) -> timedelta:
        """How far the clock is from the wall clock (zero in production)."""
        return self.now() - datetime.now(UTC)


#: The process-wide clock. There is one per process because SpiffWorkflow's timer module is global.
CLOCK = Clock()


class _ClockedDatetime(datetime):
    """A datetime whose now() reads CLOCK; everything else is the standard class."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _ClockedDatetime:
        current = CLOCK.now()
        if tz is None:  # naive local time, as datetime.now() gives
            local = current.astimezone()
            return cls.combine(local.date(), local.time())
        value = current.astimezone(tz)
        return cls.combine(value.date(), value.timetz())


def install() -> None:
    """Point SpiffWorkflow's timer arithmetic at CLOCK (idempotent)."""
    from SpiffWorkflow.bpmn.specs.event_definitions import timer

    timer.datetime = _ClockedDatetime
