"""A scheduler process for the multi-process timer tests: polls until nothing is due, at a fixed clock.

Usage: python -m tests.workflow.scheduler_worker DATABASE_URL ISO_NOW [DIE_AFTER_N_CASES]
With DIE_AFTER_N_CASES it kills itself with SIGKILL in the middle of a batch, after firing that many cases.
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import datetime

from engine.core import clock
from engine.core.clock import CLOCK
from engine.core.config import Settings
from engine.core.db import Database
from engine.workflow.runtime import Runtime
from engine.workflow.timers import TimerPolicy, TimerService


class _DyingRuntime(Runtime):
    def __init__(self, db: Database, settings: Settings, die_after: int) -> None:
        super().__init__(db, settings)
        self.left = die_after

    def fire_timers(self, instance_id: int) -> int:
        if self.left == 0:
            os.kill(os.getpid(), signal.SIGKILL)  # mid-batch: the rest of the claim stays leased
        self.left -= 1
        return super().fire_timers(instance_id)


def main() -> None:
    url, now = sys.argv[1], datetime.fromisoformat(sys.argv[2])
    die_after = int(sys.argv[3]) if len(sys.argv) > 3 else None
    clock.install()
    CLOCK.freeze(now)
    settings = Settings(database_url=url)
    db = Database(settings.database_url)
    runtime = Runtime(db, settings) if die_after is None else _DyingRuntime(db, settings, die_after)
    service = TimerService(runtime, TimerPolicy(batch=20))
    total = 0
    while True:
        fired = service.poll()
        total += fired
        if fired == 0:
            break
    print(total)
    db.dispose()


if __name__ == "__main__":
    main()
