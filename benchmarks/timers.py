"""Timer service figures: 100,000 waiting timers of which 1,000 fall due at once.

Prints the time from due to fired (p50, p99) with the default 1 s poll driven by APScheduler on the wall
clock, the firing throughput, and the poller's cost when nothing is due (one indexed query) measured at
1,000 and at 100,000 waiting timers (the ratio shows it does not grow with the number of timers).

"Fired" is the time of the case's `timer_fired` event (taken while its batch runs); "visible" is when the
case's completion was committed, sampled every 0.1 s by counting completed cases: the latency a user sees.
The first fire's latency is mostly where the 1 s poll happened to be when the timers fell due.

By default one scheduler (APScheduler, as `run_scheduler_forever` sets it up) runs in this process. With
`--schedulers N` there are N real scheduler processes (`python -m web.cli scheduler`, NTPSWF_DATABASE_URL
set), started before the timers fall due: several schedulers make sense on PostgreSQL (SKIP LOCKED claims);
on SQLite they take turns. Each process's share is printed (the worker in `timer.claimed_by`).
Usage: python benchmarks/timers.py [WAITING] [DUE] [DATABASE_URL] [--schedulers N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.core import clock  # noqa: E402
from engine.core.config import Settings  # noqa: E402
from engine.core.db import Database  # noqa: E402
from engine.core.models import AuditEvent  # noqa: E402
from engine.people.users import create_user  # noqa: E402
from engine.schema import Base  # noqa: E402
from engine.workflow.bundles import read_bundle  # noqa: E402
from engine.workflow.definitions import deploy  # noqa: E402
from engine.workflow.models import ProcessInstance, Timer  # noqa: E402
from engine.workflow.runtime import Runtime  # noqa: E402
from engine.workflow.timers import TimerService  # noqa: E402

BPMN = ROOT / "benchmarks" / "due_at.bpmn"


def _setup(url: str) -> tuple[Runtime, object]:
    settings = Settings(database_url=url)
    db = Database(url)
    Base.metadata.drop_all(db.engine)
    Base.metadata.create_all(db.engine)
    runtime = Runtime(db, settings)
    with db.unit_of_work() as uow:
        user = create_user(uow.session, "bench", ["hr"], "quartz lantern meadow 17")
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


def _start_schedulers(url: str, count: int) -> list[subprocess.Popen[bytes]]:
    """N `web.cli scheduler` processes on the benchmark's database (their log goes to stderr)."""
    env = {**os.environ, "NTPSWF_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    return [subprocess.Popen([sys.executable, "-m", "web.cli", "scheduler"], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL) for _ in range(count)]


def _wait_until_started(processes: list[subprocess.Popen[bytes]], deadline: datetime, startup: float = 8.0) -> None:
    """Give the scheduler processes time to import, connect and poll (their first poll is at start-up)."""
    time.sleep(startup)
    if any(p.poll() is not None for p in processes):
        raise SystemExit("a scheduler process ended early")
    if datetime.now(UTC) >= deadline:
        raise SystemExit("the scheduler processes started after the timers fell due; use fewer timers")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("waiting", nargs="?", type=int, default=100_000)
    parser.add_argument("due", nargs="?", type=int, default=1_000)
    parser.add_argument("url", nargs="?", default=None, help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--schedulers", type=int, default=0,
                        help="run N scheduler processes (python -m web.cli scheduler) instead of one in-process")
    args = parser.parse_args()
    waiting, due = args.waiting, args.due
    clock.install()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'timers.sqlite3'}"
        runtime, user = _setup(url)
        due_at = datetime.now(UTC) + timedelta(seconds=30 + due * 0.012 + (10 if args.schedulers else 0))
        started = time.perf_counter()
        for _ in range(due):
            runtime.start(user, "bench_due_at", {"due": due_at.isoformat()})  # type: ignore[arg-type]
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

        processes: list[subprocess.Popen[bytes]] = []
        scheduler = None
        if args.schedulers:
            processes = _start_schedulers(url, args.schedulers)
            _wait_until_started(processes, due_at - timedelta(seconds=1))
        else:
            scheduler = BackgroundScheduler(timezone="UTC")
            scheduler.add_job(service.tick, "interval", seconds=runtime.settings.timer_poll_seconds,
                              max_instances=1, coalesce=True, id="poll")
            scheduler.start()
        visible: list[tuple[float, int]] = []  # (seconds after due, cases completed and committed)
        deadline = time.time() + 600
        while time.time() < deadline:
            with runtime.db.read() as s:
                done = s.scalar(select(func.count()).select_from(ProcessInstance).where(
                    ProcessInstance.status == "completed")) or 0
            visible.append(((datetime.now(UTC) - due_at).total_seconds(), done))
            if done >= due:
                break
            time.sleep(0.1)
        if scheduler is not None:
            scheduler.shutdown(wait=True)
        for p in processes:
            p.terminate()
            p.wait(timeout=30)
        with runtime.db.read() as s:
            fired = list(s.scalars(select(AuditEvent.at).where(AuditEvent.kind == "timer_fired")))
            shares = Counter(s.scalars(select(Timer.claimed_by).where(Timer.state == "fired")))
        latencies = sorted((at - due_at).total_seconds() for at in fired)
        span = (max(fired) - min(fired)).total_seconds() if len(fired) > 1 else 0.0
        runtime.db.dispose()

    def when_visible(share: float) -> float:
        return next((t for t, done in visible if done >= share * due), float("nan"))

    who = f"{args.schedulers} scheduler process(es)" if args.schedulers else "1 scheduler in-process"
    print(f"database: {url.split(':')[0]}; waiting timers: {total_waiting + len(fired)}; due at once: {due}; "
          f"{who}; {os.cpu_count()} CPUs")
    print(f"cases started: {start_rate:.0f}/s")
    print(f"fired: {len(fired)} (each once: {len(fired) == due}); per scheduler: "
          f"{sorted(shares.values(), reverse=True)}")
    print(f"due -> fired latency: first {latencies[0]:.2f} s (where the poll was), "
          f"p50 {statistics.median(latencies):.2f} s, "
          f"p99 {latencies[int(0.99 * (len(latencies) - 1))]:.2f} s (target p99 < 2 s with a 1 s poll; "
          f"includes the time to work through the batch)")
    print(f"due -> visible (committed, sampled every 0.1 s): p50 {when_visible(0.5):.2f} s, "
          f"p99 {when_visible(0.99):.2f} s, all {when_visible(1.0):.2f} s")
    print(f"firing throughput: {len(fired) / span if span else float('inf'):.0f} timers/s")
    print(f"idle poll (nothing due): {idle_small:.2f} ms at 1,000 waiting, {idle_large:.2f} ms at "
          f"{total_waiting:,} waiting; ratio {idle_large / idle_small:.2f} (target < 5 ms, flat)")


if __name__ == "__main__":
    main()
