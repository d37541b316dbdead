"""What keeping OCPE's placement register costs a step as the placement ages (issue 21): one placement of the real
secondment process is driven through its monthly report cycles (a progress report, a host briefing and a home brief
each month, the clock moved a month at a time), and the register's after-save hook (keep_register_in_step) is timed
inside every save, with the register's own work in it (update_placement; before issue 21, rebuild_placement) and the
whole step (complete_task) around it. Prints each one's median by age and the ratio of the last year's median to the
first year's. The hook and the register's work are timed in CPU time of this process (SQLite runs in it), which a
busy machine disturbs less than wall time; the step in wall time. The hook includes the flush of the step's own
writes that it forces (the runtime saves without autoflush), which the commit would do otherwise.

Usage: python benchmarks/register_age.py [CYCLES] [DATABASE_URL]   (default: 36 cycles, a new SQLite file; a database
given must be empty)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.core import clock  # noqa: E402
from engine.core.clock import CLOCK  # noqa: E402
from engine.core.config import PROJECT_ROOT, Settings  # noqa: E402
from engine.core.db import Database  # noqa: E402
from engine.policies.secondment import projection  # noqa: E402
from engine.policies.secondment.demo import load_host_people  # noqa: E402
from engine.schema import Base  # noqa: E402
from engine.workflow.demo import deploy_processes, load_people  # noqa: E402
from engine.workflow.models import HumanTask  # noqa: E402
from engine.workflow.registry import REGISTRY  # noqa: E402
from engine.workflow.runtime import Runtime  # noqa: E402
from tests.conftest import T0  # noqa: E402
from tests.policies.secondment.test_secondment_flow import (  # noqa: E402
    BRIEFING,
    HOME_BRIEF,
    INDUCTION,
    PROGRESS,
    accept_all,
    agreement,
    apply,
    at,
    plan,
    poll,
)
from tests.workflow.driver import Driver  # noqa: E402

#: The monthly steps: element, who does it, the form.
CYCLE = (("file_progress_report", "employee", PROGRESS), ("brief_home", "host", BRIEFING),
         ("brief_secondee", "supervisor", HOME_BRIEF))


def _timed(fn: Callable[..., Any], into: list[float]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            into.append(time.process_time() - started)
    timed.__name__ = fn.__name__
    return timed


def _time_register(hook_times: list[float], work_times: list[float]) -> str:
    """Time the register's after-save hook inside every save (in the registry's own hook list), and the register's
    work inside it; returns the name of the function timed as its work."""
    hooks = REGISTRY.hooks_for("secondment").after_save
    found = [i for i, hook in enumerate(hooks) if hook.__name__ == "keep_register_in_step"]
    if not found:
        raise SystemExit("no keep_register_in_step hook registered for secondment")
    hooks[found[0]] = _timed(hooks[found[0]], hook_times)
    name = "update_placement" if hasattr(projection, "update_placement") else "rebuild_placement"
    setattr(projection, name, _timed(getattr(projection, name), work_times))
    return name


def _url(tmp: str, given: str | None) -> str:
    """The database: a new SQLite file, or the (empty) database given, with every table."""
    url = given or f"sqlite:///{Path(tmp) / 'register_age.sqlite3'}"
    db = Database(url)
    Base.metadata.create_all(db.engine)
    db.dispose()
    return url


def main(cycles: int, given_url: str | None) -> None:
    clock.install()
    CLOCK.freeze(T0)
    with tempfile.TemporaryDirectory() as tmp:
        url = _url(tmp, given_url)
        db = Database(url)
        runtime = Runtime(db, Settings(database_url=url, forms_dir=PROJECT_ROOT / "forms",
                                       processes_dir=PROJECT_ROOT / "processes"))
        load_people(runtime)
        deploy_processes(runtime)
        load_host_people(runtime)
        d = Driver(runtime)
        case = apply(d)
        plan(d, case)
        end = date(2026 + (cycles + 3) // 12, (cycles + 3) % 12 + 1, 1).isoformat()  # after the last cycle
        d.complete(case, "draft_agreement", "supervisor", agreement(end_date=end))
        accept_all(d, case)
        at("2026-04-01", 1)
        poll(d)
        d.complete(case, "induct", "host", INDUCTION)
        hook_times: list[float] = []
        work_times: list[float] = []
        work = _time_register(hook_times, work_times)
        hooks: list[list[float]] = []
        works: list[list[float]] = []
        steps: list[list[float]] = []
        for month in range(1, cycles + 1):
            year, mon = 2026 + (3 + month) // 12, (3 + month) % 12 + 1
            at(date(year, mon, 1).isoformat(), 1)
            poll(d)
            hook_times.clear()
            work_times.clear()
            took: list[float] = []
            for name, username, form in CYCLE:
                with db.read() as s:
                    task = s.scalars(select(HumanTask.id).where(
                        HumanTask.instance_id == case, HumanTask.name == name, HumanTask.state == "open")
                        .order_by(HumanTask.id)).first()
                if task is None:
                    continue
                started = time.perf_counter()
                runtime.complete_task(d.user(username), task, form)
                took.append(time.perf_counter() - started)
            hooks.append(list(hook_times))
            works.append(list(work_times))
            steps.append(took)
        db.dispose()
    _report(url, cycles, work, {"register hook (CPU)": hooks, f"{work} (CPU)": works, "whole step (wall)": steps})


def _report(url: str, cycles: int, work: str, series: dict[str, list[list[float]]]) -> None:
    def ms(times: list[list[float]]) -> float:
        return statistics.median([t for cycle in times for t in cycle]) * 1000

    print(f"one placement, {cycles} monthly cycles of three reports; {url.split(':')[0]}, spec cached; "
          f"the register's work is {work}")
    for cycle in sorted({0, cycles // 4, cycles // 2, 3 * cycles // 4, cycles - 1}):
        print(f"cycle {cycle + 1:3}: " + ", ".join(f"{name} {ms(times[cycle:cycle + 1]):6.2f} ms"
                                                 for name, times in series.items()))
    span = min(12, max(1, cycles // 3))
    for name, times in series.items():
        first, last = ms(times[:span]), ms(times[-span:])
        print(f"{name}: median of the first {span} cycles {first:.2f} ms, of the last {span} {last:.2f} ms, "
              f"ratio {last / first:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 36, sys.argv[2] if len(sys.argv) > 2 else None)
