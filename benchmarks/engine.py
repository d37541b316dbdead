"""Engine throughput: N cases of a three-user-task process through the runtime service on a file-backed
SQLite database, against the floor for any engine that persists each step: the same BPMN in bare
SpiffWorkflow, in memory, with a full JSON serialize/deserialize after every task.

Prints instances/s for both and their ratio (target: the engine reaches at least half the floor).
Usage: python benchmarks/engine.py [N]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.config import Settings  # noqa: E402
from engine.db import Database  # noqa: E402
from engine.definitions import deploy, read_bundle  # noqa: E402
from engine.models import Base, HumanTask  # noqa: E402
from engine.runtime import Runtime  # noqa: E402
from engine.users import create_user  # noqa: E402

BPMN = ROOT / "benchmarks" / "three_tasks.bpmn"
KEY = "bench_three_tasks"


def floor(n: int) -> float:
    """Bare SpiffWorkflow with a JSON round trip after every task: instances per second."""
    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_bpmn_file(str(BPMN))
    spec = parser.get_spec(KEY)
    serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
    started = time.perf_counter()
    for i in range(n):
        wf = BpmnWorkflow(spec)
        wf.get_tasks(spec_name="Start")[0].data["n"] = i
        wf.do_engine_steps()
        wf = serializer.deserialize_json(serializer.serialize_json(wf))
        while not wf.is_completed():
            task = wf.get_tasks(state=TaskState.READY, manual=True)[0]
            task.run()
            wf.do_engine_steps()
            wf = serializer.deserialize_json(serializer.serialize_json(wf))
    return n / (time.perf_counter() - started)


def engine(n: int, workdir: Path) -> tuple[float, float]:
    """The runtime service on file-backed SQLite: instances per second and ms per task completion."""
    settings = Settings(database_url=f"sqlite:///{workdir / 'bench.sqlite3'}")
    db = Database(settings.database_url)
    Base.metadata.create_all(db.engine)
    runtime = Runtime(db, settings)
    with db.unit_of_work() as uow:
        user = create_user(uow.session, "bench", ["hr"], "bench-password")
        deploy(uow.session, read_bundle({BPMN.name: BPMN.read_bytes()}, None), "bench")
        uow.commit()
    with db.read() as s:
        s.add(user)
        _ = user.person
        s.expunge(user)
    completions = 0
    completion_time = 0.0
    started = time.perf_counter()
    for i in range(n):
        case = runtime.start(user, KEY, {"n": i})
        while True:
            with db.read() as s:
                task_id = s.scalars(select(HumanTask.id).where(HumanTask.instance_id == case,
                                                               HumanTask.state == "open")).first()
            if task_id is None:
                break
            t0 = time.perf_counter()
            runtime.complete_task(user, task_id, {})
            completion_time += time.perf_counter() - t0
            completions += 1
    rate = n / (time.perf_counter() - started)
    db.dispose()
    return rate, 1000 * completion_time / max(1, completions)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    floor(20)  # warm up imports and caches
    floor_rate = floor(n)
    with tempfile.TemporaryDirectory() as tmp:
        engine(20, Path(tmp) / "warm") if (Path(tmp) / "warm").mkdir() is None else None
        rate, per_task = engine(n, Path(tmp))
    print(f"instances: {n}")
    print(f"bare SpiffWorkflow + JSON round trip per task (floor): {floor_rate:8.1f} instances/s")
    print(f"ntpswf runtime on file-backed SQLite:                 {rate:8.1f} instances/s, "
          f"{per_task:.2f} ms per task completion")
    print(f"ratio engine/floor: {rate / floor_rate:.2f} (target >= 0.50)")


if __name__ == "__main__":
    main()
