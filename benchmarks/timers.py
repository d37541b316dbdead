"""Timer service figures: 100,000 waiting timers of which 1,000 fall due at once.

Prints the time from due to fired (p50, p99) with the default 1 s poll driven by APScheduler on the wall
clock, the firing throughput, and the poller's cost when nothing is due (one indexed query) measured at
1,000 and at 100,000 waiting timers (the ratio shows it does not grow with the number of timers).
Usage: python benchmarks/timers.py [WAITING] [DUE] [DATABASE_URL]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import clock  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.db import Database  # noqa: E402
from engine.definitions import deploy, read_bundle  # noqa: E402
from engine.models import AuditEvent, Base, ProcessInstance, Timer  # noqa: E402
from engine.runtime import Runtime  # noqa: E402
from engine.timers import TimerService  # noqa: E402
from engine.users import create_user  # noqa: E402

BPMN = ROOT / "benchmarks" / "due_at.bpmn"


def _setup(url: str) -> tuple[Runtime, object]:
    settings = Settings(database_url=url)
    db = Database(url)
    Base.metadata.drop_all(db.engine)
    Base.metadata.create_all(db.engine)
    runtime = Runtime(db, settings)
    with db.unit_of_work() as uow:
        user = create_user(uow.session, "bench", ["hr"], "bench-password")
        deploy(uow.session, read_bundle({BPMN.name: BPMN.read_bytes()}, None), "bench")
        uow.commit()
    return runtime, user


def _filler(runtime: Runtime, count: int, anchor_case: int) -> None:
    """Idle waiting timers far in the future: the poller must never touch them."""
    far = datetime.now(UTC) + timedelta(days=365)
    rows = [{"instance_id": anchor_case, "spiff_task_id": f"{i:036d}", "element": "d_wait", "name": "idle",
             "kind": "date", "due_at": far + timedelta(seconds=i), "state": "waiting", "attempts": 0}
            for i in range(count)]
    with runtime.db.unit_of_work() as uow:
        for start in range(0, len(rows), 10_000):
            uow.session.execute(insert(Timer), rows[start:start + 10_000])
        uow.commit()


def _idle_poll_ms(service: TimerService, rounds: int = 200) -> float:
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        service.claim()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def main() -> None:
    waiting = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    due = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000
    clock.install()
    with tempfile.TemporaryDirectory() as tmp:
        url = sys.argv[3] if len(sys.argv) > 3 else f"sqlite:///{Path(tmp) / 'timers.sqlite3'}"
        runtime, user = _setup(url)
        due_at = datetime.now(UTC) + timedelta(seconds=30 + due * 0.012)
        started = time.perf_counter()
        cases = [runtime.start(user, "bench_due_at", {"due": due_at.isoformat()}) for _ in range(due)]  # type: ignore[arg-type]
        start_rate = due / (time.perf_counter() - started)
        service = TimerService(runtime)
        # The idle timers hang on a case of their own that is not due: firing a due case must never read them.
        anchor = runtime.start(user, "bench_due_at", {"due": (due_at + timedelta(days=365)).isoformat()})  # type: ignore[arg-type]
        _filler(runtime, min(1_000, waiting), anchor)
        idle_small = _idle_poll_ms(service)
        _filler(runtime, max(0, waiting - due - 1_000), anchor)
        idle_large = _idle_poll_ms(service)
        with runtime.db.read() as s:
            total_waiting = len(s.scalars(select(Timer.id).where(Timer.state == "waiting")).all())

        from apscheduler.schedulers.background import BackgroundScheduler

        scheduler = BackgroundScheduler(timezone="UTC")
        scheduler.add_job(service.poll, "interval", seconds=runtime.settings.timer_poll_seconds, max_instances=1,
                          coalesce=True, id="poll")
        scheduler.start()
        deadline = time.time() + 600
        while time.time() < deadline:
            with runtime.db.read() as s:
                left = s.scalars(select(ProcessInstance.id).where(ProcessInstance.status == "running",
                                                                  ProcessInstance.id.in_(cases)).limit(1)).first()
            if left is None:
                break
            time.sleep(0.5)
        scheduler.shutdown(wait=True)
        with runtime.db.read() as s:
            fired = list(s.scalars(select(AuditEvent.at).where(AuditEvent.kind == "timer_fired")))
        latencies = sorted((at - due_at).total_seconds() for at in fired)
        span = (max(fired) - min(fired)).total_seconds() if len(fired) > 1 else 0.0
        runtime.db.dispose()
    print(f"database: {url.split(':')[0]}; waiting timers: {total_waiting + len(fired)}; due at once: {due}")
    print(f"cases started: {start_rate:.0f}/s")
    print(f"fired: {len(fired)} (each once: {len(fired) == due})")
    print(f"due -> fired latency: p50 {statistics.median(latencies):.2f} s, "
          f"p99 {latencies[int(0.99 * (len(latencies) - 1))]:.2f} s (target p99 < 2 s with a 1 s poll; "
          f"includes the time to work through the batch)")
    print(f"firing throughput: {len(fired) / span if span else float('inf'):.0f} timers/s")
    print(f"idle poll (nothing due): {idle_small:.2f} ms at 1,000 waiting, {idle_large:.2f} ms at "
          f"{total_waiting:,} waiting; ratio {idle_large / idle_small:.2f} (target < 5 ms, flat)")


if __name__ == "__main__":
    main()
