"""Runtime bookkeeping: task rows, audit, data snapshot."""

from __future__ import annotations

from sqlalchemy import select

from engine.models import HumanTask
from engine.runtime import Runtime
from tests.processes.driver import Driver

START = {"employee": "employee", "agreement_start": "2025-06-30", "assessment_date": "2026-06-30"}
INVITE = {"invitation": {"message": "Please make your submission by 30 May."}}


def test_completed_tasks_stay_completed_with_who_and_when(org: Runtime) -> None:
    d = Driver(org)
    case = d.start("pay_progression", START)
    d.complete(case, "invite_submission", "supervisor", INVITE)
    with org.db.read() as s:
        task = s.scalars(select(HumanTask).where(HumanTask.instance_id == case,
                                                 HumanTask.name == "invite_submission")).one()
    assert task.state == "completed" and task.completed_by == "supervisor" and task.completed_at is not None


def test_two_branches_of_a_parallel_gateway_completed_at_once_join_once(org: Runtime) -> None:
    import threading
    from pathlib import Path

    from sqlalchemy import func

    from engine.definitions import deploy, read_bundle
    from engine.models import AuditEvent

    model = Path(__file__).parent / "timer_models" / "parallel.bpmn"
    with org.db.unit_of_work() as uow:
        deploy(uow.session, read_bundle({model.name: model.read_bytes()}, None), "test")
        uow.commit()
    d = Driver(org)
    user = d.user("hr")
    for _ in range(5):
        case = org.start(user, "parallel_review", {})
        ids = [d.open_task(case, name).id for name in ("left", "right")]
        barrier = threading.Barrier(2)
        errors: list[Exception] = []

        def complete(task_id: int, barrier: threading.Barrier = barrier, errors: list[Exception] = errors) -> None:
            barrier.wait()
            try:
                org.complete_task(user, task_id, {})
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=complete, args=(i,)) for i in ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        row = d.instance(case)
        assert row.status == "completed" and row.data.get("joined") is True
        with org.db.read() as s:
            assert s.scalar(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.instance_id == case, AuditEvent.kind == "completed")) == 1


def test_process_hooks_run_inside_the_transaction(org: Runtime) -> None:
    from pathlib import Path

    from engine import hooks
    from engine.definitions import deploy, read_bundle
    from engine.errors import Invalid

    model = Path(__file__).parent / "timer_models" / "parallel.bpmn"
    with org.db.unit_of_work() as uow:
        deploy(uow.session, read_bundle({model.name: model.read_bytes()}, None), "test")
        uow.commit()
    seen: list[str] = []

    def opened(session: object, row: object, task: HumanTask) -> None:
        seen.append(f"opened {task.name}")

    def completing(session: object, row: object, task: HumanTask, data: dict[str, object],
                   actor: str) -> dict[str, object]:
        if task.name == "right":
            raise Invalid("refused by a hook")
        seen.append(f"completing {task.name} by {actor}")
        return {**data, "stamped": True}

    def saved(session: object, row: object, actor: str) -> None:
        seen.append("saved")

    registered = hooks.hooks_for("parallel_review")
    registered.on_task_opened.append(opened)  # type: ignore[arg-type]
    registered.on_complete.append(completing)  # type: ignore[arg-type]
    registered.after_save.append(saved)  # type: ignore[arg-type]
    try:
        d = Driver(org)
        case = org.start(d.user("hr"), "parallel_review", {})
        assert seen == ["opened left", "opened right", "saved"]
        org.complete_task(d.user("hr"), d.open_task(case, "left").id, {})
        assert seen[-2:] == ["completing left by hr", "saved"]
        before = d.instance(case).lock_version
        import pytest

        with pytest.raises(Invalid):
            org.complete_task(d.user("hr"), d.open_task(case, "right").id, {})
        assert d.instance(case).lock_version == before  # the hook's refusal rolled everything back
    finally:
        registered.on_task_opened.remove(opened)  # type: ignore[arg-type]
        registered.on_complete.remove(completing)  # type: ignore[arg-type]
        registered.after_save.remove(saved)  # type: ignore[arg-type]
