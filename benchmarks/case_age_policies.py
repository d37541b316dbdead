"""How a step's cost grows with a real case's age (issue 21), on both policies' own diagrams and forms:

- a placement agreed for three years, driven month by month on a moved clock (a progress report, a home brief and
  a host briefing each cycle, as tests/policies/secondment drive them), every completion timed, with the bytes the
  case stores after each cycle;
- a pay progression case through leave without pay, a refusal, the CEO's review and a section 59 review.

Prints the median completion of the placement's first month and of its last year, their ratio (issue 21's target:
within 1.5), the stored bytes by age, and the pay progression case's steps. SQLite, the demo people, the scheduler's
own poll for timers. The flows are the policy tests' helpers, so the benchmark drives what the tests prove. Every
step restores the case from its row (live_cases=0), as a step served by another process does.

Usage: python benchmarks/case_age_policies.py [YEARS] [--without-compaction]  (the second: as before issue 21)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.core.clock import CLOCK  # noqa: E402
from engine.core.clock import install as install_clock  # noqa: E402
from engine.core.config import Settings  # noqa: E402
from engine.core.db import Database  # noqa: E402
from engine.policies.pay_progression.leave import record_leave  # noqa: E402
from engine.policies.secondment.demo import load_host_people  # noqa: E402
from engine.schema import Base  # noqa: E402
from engine.workflow.demo import deploy_processes, load_people  # noqa: E402
from engine.workflow.models import ProcessInstance  # noqa: E402
from engine.workflow.runtime import Runtime  # noqa: E402
from tests.policies.secondment import test_secondment_flow as flow  # noqa: E402
from tests.workflow.driver import Driver  # noqa: E402

Timed = list[tuple[str, float]]
COMPACT = "--without-compaction" not in sys.argv


@contextmanager
def organisation() -> Iterator[Driver]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'age.sqlite3'}"
        db = Database(url)
        Base.metadata.create_all(db.engine)
        settings = Settings(database_url=url, forms_dir=ROOT / "forms", processes_dir=ROOT / "processes",
                            live_cases=0)
        if not COMPACT:
            settings = replace(settings, compact_above_tasks=10**9)
        runtime = Runtime(db, settings)
        install_clock()
        CLOCK.freeze(datetime(2026, 3, 2, tzinfo=UTC))
        try:
            load_people(runtime)
            deploy_processes(runtime)
            yield Driver(runtime)
        finally:
            CLOCK.reset()
            db.dispose()


def timing(drive: Driver, timed: Timed) -> Callable[[int, str, str, dict[str, Any], bool], None]:
    """A completion that is timed (the newest open task of the element, as the tests' complete_newest)."""

    def complete(case: int, name: str, username: str, data: dict[str, Any], newest: bool = True) -> None:
        tasks = flow.open_tasks(drive, case, name)
        task = tasks[-1] if newest else tasks[0]
        user = drive.user(username)
        started = time.perf_counter()
        drive.runtime.complete_task(user, task.id, data)
        timed.append((name, time.perf_counter() - started))

    return complete


def stored(drive: Driver, case: int) -> int:
    with drive.runtime.db.read() as s:
        row = s.get(ProcessInstance, case)
        assert row is not None
        return len(row.serialized) + len(str(row.data))


def placement(years: int) -> tuple[list[Timed], list[int]]:
    """One placement of `years` years; per month, the timed completions and the bytes stored after them."""
    by_month: list[Timed] = []
    sizes: list[int] = []
    with organisation() as drive:
        load_host_people(drive.runtime)
        case = flow.apply(drive)
        flow.plan(drive, case)
        drive.complete(case, "draft_agreement", "supervisor", flow.agreement(end_date=f"{2026 + years}-03-31"))
        flow.accept_all(drive, case)
        flow.at("2026-04-01", 1)
        flow.poll(drive)
        drive.complete(case, "induct", "host", flow.INDUCTION)
        drive.complete(case, "note_placement", "ocpe", {"ocpe_notice": {"noted": True}})
        for month in range(1, 12 * years - 1):
            first = date(2026 + (3 + month) // 12, (3 + month) % 12 + 1, 1)
            flow.at(first.isoformat(), 1)
            flow.poll(drive)
            timed: Timed = []
            complete = timing(drive, timed)
            complete(case, "file_progress_report", "employee", flow.PROGRESS, True)
            complete(case, "brief_secondee", "supervisor", flow.HOME_BRIEF, True)
            complete(case, "brief_home", "host", flow.BRIEFING, True)
            by_month.append(timed)
            sizes.append(stored(drive, case))
    return by_month, sizes


def pay_progression() -> tuple[Timed, list[int]]:
    """A case through leave without pay, a refusal, the CEO's review and a section 59 review."""
    from tests.policies.pay_progression import test_pay_progression as d19

    timed: Timed = []
    sizes: list[int] = []
    with organisation() as drive:
        complete = timing(drive, timed)
        case = drive.start("pay_progression", d19.START)
        steps: list[tuple[str, str, dict[str, Any]]] = [
            ("invite_submission", "supervisor", d19.INVITE), ("make_submission", "employee", d19.SUBMIT),
            ("recommend", "supervisor", d19.RECOMMEND_YES), ("decide", "manager", d19.REFUSE),
            ("consider_review", "employee", d19.REVIEW)]
        for n, (name, who, data) in enumerate(steps):
            if n == 1:
                record_leave(drive.runtime, drive.user("hr"), "employee", {
                    "kind": "lwop", "start": "2026-03-10", "end": "2026-03-19", "counts_as_service": False})
            complete(case, name, who, data, True)
            sizes.append(stored(drive, case))
        CLOCK.freeze(datetime(2026, 3, 20, 1, 0, tzinfo=UTC))
        complete(case, "ceo_review", "delegate", {"review_decision": {
            "new_information_accepted": "not_accepted", "outcome": "confirm",
            "reason": "The report post-dates the cycle; the original evidence does not show a criterion."}}, True)
        complete(case, "consider_s59", "employee", {"s59_request": {
            "lodged": "lodged", "lodged_on": "2026-03-19", "reference": "OCPE-2026-117"}}, True)
        complete(case, "record_s59_outcome", "hr", {"s59_outcome": {
            "decided_on": "2026-05-04", "result": "progression", "summary": "The review found for the employee."}},
            True)
        sizes.append(stored(drive, case))
    return timed, sizes


def main(years: int) -> None:
    by_month, sizes = placement(years)
    first = [t for _, t in by_month[0]]
    last_year = [t for month in by_month[-12:] for _, t in month]
    print(f"a placement of {years} years, {len(by_month)} monthly cycles of 3 completions; SQLite, demo people")
    for month in sorted({0, 11, len(by_month) // 2, len(by_month) - 1}):
        times = [t for _, t in by_month[month]]
        print(f"month {month + 1:3}: median completion {statistics.median(times) * 1000:6.2f} ms, "
              f"case stores {sizes[month]:,} bytes")
    ratio = statistics.median(last_year) / statistics.median(first)
    print(f"ratio last year / first month (median completion): {ratio:.2f} (target: within 1.5)")
    print(f"stored bytes, last month / first month: {sizes[-1] / sizes[0]:.2f}")
    timed, case_sizes = pay_progression()
    print("a pay progression case through leave, refusal, CEO review and section 59:")
    print("  " + ", ".join(f"{name} {t * 1000:.1f} ms" for name, t in timed))
    print(f"  stores {case_sizes[0]:,} bytes after its first step, {case_sizes[-1]:,} at its end")


if __name__ == "__main__":
    numbers = [a for a in sys.argv[1:] if a.isdigit()]
    main(int(numbers[0]) if numbers else 3)
