"""Demo time travel: one clock offset shared by every process through the settings table.

Only in demo mode. Each web request and each scheduler tick reads the offset (one indexed primary-key
read), so the web workers and the scheduler process agree on "now".
"""

from __future__ import annotations

from datetime import timedelta

from engine.core.clock import CLOCK
from engine.core.db import Database
from engine.core.models import Setting

OFFSET_KEY = "demo.clock_offset_seconds"


def sync(db: Database) -> timedelta:
    """Apply the stored offset to this process's clock; returns it."""
    with db.read() as s:
        row = s.get(Setting, OFFSET_KEY)
        offset = timedelta(seconds=float(row.value)) if row is not None else timedelta(0)
    CLOCK.set_offset(offset)
    return offset


def travel(db: Database, days: float) -> timedelta:
    """Move the demo clock forward by `days` (never backwards: timers that fired stay fired)."""
    if days <= 0:
        raise ValueError("time travel only goes forward")
    with db.unit_of_work() as uow:
        row = uow.session.get(Setting, OFFSET_KEY)
        current = float(row.value) if row is not None else 0.0
        new = current + days * 86400
        if row is None:
            uow.session.add(Setting(key=OFFSET_KEY, value=str(new)))
        else:
            row.value = str(new)
        uow.commit()
    CLOCK.set_offset(timedelta(seconds=new))
    return timedelta(seconds=new)
