"""Engine throughput: N cases of a three-user-task process through the runtime service on a file-backed
SQLite database, against the floor for any engine that persists each step: the same BPMN in bare
SpiffWorkflow, in memory, with a full JSON serialize/deserialize after every task.

Prints instances/s for both and their ratio (target, issue 21: the engine reaches at least 0.6 of the floor), and the
same for a runtime that restores every case from its row at every step (live_cases=0: a step served by another
process than the one that saved the case's last step).
Usage: python benchmarks/engine.py [N]
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.core.config import Settings  # noqa: E402
from engine.core.db import Database  # noqa: E402
from engine.people.users import create_user  # noqa: E402
from engine.schema import Base  # noqa: E402
from engine.workflow.bundles import read_bundle  # noqa: E402
from engine.workflow.definitions import deploy  # noqa: E402
from engine.workflow.runtime import Runtime  # noqa: E402

BPMN = ROOT / "benchmarks" / "three_tasks.bpmn"
KEY = "bench_three_tasks"


class Floor:
    """Bare SpiffWorkflow with a JSON round trip after every task (the spec parsed once)."""

    def __init__(self) -> None:
        parser = SpiffBpmnParser(validator=VALIDATOR)
        parser.add_bpmn_file(str(BPMN))
        self.spec = parser.get_spec(KEY)
        self.serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))

    def run(self, first: int, n: int) -> float:
        """Run n instances; the seconds taken."""
        serializer = self.serializer
        started = time.perf_counter()
        for i in range(first, first + n):
            wf = BpmnWorkflow(self.spec)
            wf.get_tasks(spec_name="Start")[0].data["n"] = i
            wf.do_engine_steps()
            wf = serializer.deserialize_json(serializer.serialize_json(wf))
            while not wf.is_completed():
                task = wf.get_tasks(state=TaskState.READY, manual=True)[0]
                task.run()
                wf.do_engine_steps()
                wf = serializer.deserialize_json(serializer.serialize_json(wf))
        return time.perf_counter() - started


class Engine:
    """The runtime service on a file-backed SQLite database."""

    def __init__(self, workdir: Path, live_cases: int = Settings.live_cases) -> None:
        settings = Settings(database_url=f"sqlite:///{workdir / 'bench.sqlite3'}", live_cases=live_cases)
        self.db = db = Database(settings.database_url)
        Base.metadata.create_all(db.engine)
        self.runtime = Runtime(db, settings)
        with db.unit_of_work() as uow:
            user = create_user(uow.session, "bench", ["hr"], "quartz lantern meadow 17")
            deploy(uow.session, read_bundle({BPMN.name: BPMN.read_bytes()}, None), "bench")
            uow.commit()
        with db.read() as s:
            s.add(user)
            _ = user.person
            s.expunge(user)
        self.user = user
        # The harness finds each next task with one plain statement on its own sqlite3 connection, as the
        # floor finds it in memory: what is timed is the engine's services, not the harness.
        self.lookup = sqlite3.connect(str(workdir / "bench.sqlite3"), isolation_level=None)
        self.next_task = "SELECT id FROM human_task WHERE instance_id = ? AND state = 'open' LIMIT 1"
        self.completions = 0
        self.completion_time = 0.0

    def run(self, first: int, n: int) -> float:
        """Run n instances to the end; the seconds taken."""
        started = time.perf_counter()
        for i in range(first, first + n):
            case = self.runtime.start(self.user, KEY, {"n": i})
            while True:
                found = self.lookup.execute(self.next_task, (case,)).fetchone()
                if found is None:
                    break
                task_id = found[0]
                t0 = time.perf_counter()
                self.runtime.complete_task(self.user, task_id, {})
                self.completion_time += time.perf_counter() - t0
                self.completions += 1
        return time.perf_counter() - started

    def close(self) -> None:
        self.lookup.close()
        self.db.dispose()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    rounds = 10
    per_round = max(1, n // rounds)
    floor = Floor()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "live").mkdir()
        (Path(tmp) / "restored").mkdir()
        engine, restored = Engine(Path(tmp) / "live"), Engine(Path(tmp) / "restored", live_cases=0)
        floor.run(0, 20)  # warm up imports and caches
        for e in (engine, restored):
            e.run(0, 20)
            e.completions, e.completion_time = 0, 0.0
        # Alternating rounds: a change in the machine's load falls on every side alike.
        floor_time = engine_time = restored_time = 0.0
        for r in range(rounds):
            floor_time += floor.run(r * per_round, per_round)
            engine_time += engine.run(r * per_round, per_round)
            restored_time += restored.run(r * per_round, per_round)
        per_task = [1000 * e.completion_time / max(1, e.completions) for e in (engine, restored)]
        engine.close()
        restored.close()
    total = rounds * per_round
    floor_rate, rate, restored_rate = total / floor_time, total / engine_time, total / restored_time
    print(f"instances: {total} each, in {rounds} alternating rounds")
    print(f"bare SpiffWorkflow + JSON round trip per task (floor): {floor_rate:8.1f} instances/s")
    print(f"ntpswf runtime on file-backed SQLite:                 {rate:8.1f} instances/s, "
          f"{per_task[0]:.2f} ms per task completion")
    print(f"  the same, every step restoring the case from its row: {restored_rate:6.1f} instances/s, "
          f"{per_task[1]:.2f} ms per task completion (live_cases=0)")
    print(f"ratio engine/floor: {rate / floor_rate:.2f} (target >= 0.60); restoring every step: "
          f"{restored_rate / floor_rate:.2f}")


if __name__ == "__main__":
    main()
