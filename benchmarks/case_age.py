"""How a step's cost grows with a case's age (issue 21): one case completes the same task cycle after cycle (a
report a month for three years: 36 cycles by default), and each completion is timed, with the bytes the case then
stores. Prints the median step of the first and the last cycles, their ratio (target: about 1, a step costing the
same on the last day as on the first), and the stored bytes by age. Its baseline is the case's own first cycles,
measured in the same run. Every step restores the case from its row (live_cases=0), as a step served by another
process does: the cost measured is the one that grows with the case's age.

Usage: python benchmarks/case_age.py [CYCLES] [CASES]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.core.config import Settings  # noqa: E402
from engine.core.db import Database  # noqa: E402
from engine.people.models import User  # noqa: E402
from engine.people.users import create_user  # noqa: E402
from engine.schema import Base  # noqa: E402
from engine.workflow.bundles import read_bundle  # noqa: E402
from engine.workflow.definitions import deploy  # noqa: E402
from engine.workflow.models import HumanTask, ProcessInstance  # noqa: E402
from engine.workflow.runtime import Runtime  # noqa: E402

BPMN = ROOT / "benchmarks" / "report_cycle.bpmn"


def main(cycles: int, cases: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'age.sqlite3'}"
        db = Database(url)
        Base.metadata.create_all(db.engine)
        runtime = Runtime(db, Settings(database_url=url, live_cases=0))
        with db.unit_of_work() as uow:
            deploy(uow.session, read_bundle({BPMN.name: BPMN.read_bytes()}, None), "bench")
            create_user(uow.session, "bench", ["hr"], None, actor="bench")  # lane-less tasks fall to HR
            uow.commit()
        with db.read() as s:
            user = s.scalars(select(User)).one()
            _ = user.person
        by_cycle: list[list[float]] = [[] for _ in range(cycles)]
        stored: list[int] = []
        for _ in range(cases):
            case = runtime.start(user, "bench_report_cycle", {"cycle": 0, "cycles": cycles})
            for cycle in range(cycles):
                with db.read() as s:
                    task = s.scalars(select(HumanTask.id).where(HumanTask.instance_id == case,
                                                                HumanTask.state == "open")).one()
                started = time.perf_counter()
                runtime.complete_task(user, task, {})
                by_cycle[cycle].append(time.perf_counter() - started)
                if len(stored) < cycles:
                    with db.read() as s:
                        row = s.get(ProcessInstance, case)
                        assert row is not None
                        stored.append(len(row.serialized) + len(str(row.data)))
        db.dispose()
    first = [t for times in by_cycle[:3] for t in times]
    last = [t for times in by_cycle[-3:] for t in times]
    print(f"one case, {cycles} cycles of one user task each, {cases} cases; SQLite, spec cached as in production")
    for cycle in sorted({0, cycles // 4, cycles // 2, 3 * cycles // 4, cycles - 1}):
        print(f"cycle {cycle + 1:3}: median step {statistics.median(by_cycle[cycle]) * 1000:6.2f} ms, "
              f"case stores {stored[cycle]:,} bytes")
    ratio = statistics.median(last) / statistics.median(first)
    print(f"ratio last cycles / first cycles (median step): {ratio:.2f} (target about 1: a step costs the same "
          f"whatever the case's age)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 36, int(sys.argv[2]) if len(sys.argv) > 2 else 5)
