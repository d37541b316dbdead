"""Bytes stored per running and per finished case (serialized workflow, data snapshot, task rows, audit).

Runs the three-task benchmark process and the pay progression to the end, measuring what each case
adds to the database. Usage: python benchmarks/storage.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.core.config import Settings  # noqa: E402
from engine.core.db import Database  # noqa: E402
from engine.core.models import AuditEvent  # noqa: E402
from engine.people.users import create_user  # noqa: E402
from engine.schema import Base  # noqa: E402
from engine.workflow.bundles import read_bundle  # noqa: E402
from engine.workflow.definitions import deploy  # noqa: E402
from engine.workflow.models import HumanTask, ProcessInstance, Timer  # noqa: E402
from engine.workflow.runtime import Runtime  # noqa: E402

BPMN = ROOT / "benchmarks" / "three_tasks.bpmn"


def case_bytes(db: Database, case: int) -> dict[str, int]:
    """Approximate stored bytes of one case, by table (text lengths of the row values)."""
    def size(row: object) -> int:
        return sum(len(json.dumps(v, default=str)) for k, v in vars(row).items() if not k.startswith("_"))

    with db.read() as s:
        instance = s.get(ProcessInstance, case)
        assert instance is not None
        out = {"workflow (serialized)": len(instance.serialized), "data snapshot": len(json.dumps(instance.data))}
        out["task rows"] = sum(size(t) for t in s.scalars(select(HumanTask).where(HumanTask.instance_id == case)))
        out["timer rows"] = sum(size(t) for t in s.scalars(select(Timer).where(Timer.instance_id == case)))
        out["audit events"] = sum(size(e) for e in s.scalars(select(AuditEvent).where(AuditEvent.instance_id == case)))
    out["total"] = sum(out.values())
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'storage.sqlite3'}"
        db = Database(url)
        Base.metadata.create_all(db.engine)
        runtime = Runtime(db, Settings(database_url=url))
        with db.unit_of_work() as uow:
            create_user(uow.session, "bench", ["hr"], "quartz lantern meadow 17")
            deploy(uow.session, read_bundle({BPMN.name: BPMN.read_bytes()}, None), "bench")
            uow.commit()
        with db.read() as s:
            from engine.people.models import User

            user = s.scalars(select(User)).one()
            _ = user.person
        running = runtime.start(user, "bench_three_tasks", {"n": 1})
        with db.read() as s:
            first = s.scalars(select(HumanTask.id).where(HumanTask.instance_id == running)).one()
        runtime.complete_task(user, first, {})
        finished = runtime.start(user, "bench_three_tasks", {"n": 2})
        while True:
            with db.read() as s:
                task = s.scalars(select(HumanTask.id).where(HumanTask.instance_id == finished,
                                                            HumanTask.state == "open")).first()
            if task is None:
                break
            runtime.complete_task(user, task, {})
        for label, case in (("running (after 1 of 3 tasks)", running), ("finished (3 of 3 tasks)", finished)):
            sizes = case_bytes(db, case)
            print(f"{label}: {sizes['total']:,} bytes — " + ", ".join(
                f"{k} {v:,}" for k, v in sizes.items() if k != "total"))
        db.dispose()
    print("(Camunda 7 documents about 4 KB per running and 20 KB per finished case with history)")


if __name__ == "__main__":
    main()
