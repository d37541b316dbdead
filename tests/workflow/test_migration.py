"""Migrating running cases between versions: preview, one/selection/all, timers kept, a case that cannot move."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import func, select

from engine.core.clock import CLOCK
from engine.core.errors import Conflict, Forbidden
from engine.core.models import AuditEvent
from engine.workflow.bundles import read_bundle
from engine.workflow.definitions import deploy
from engine.workflow.migration import migrate_instance, migrate_many, preview
from engine.workflow.models import HumanTask, ProcessDefinition, ProcessInstance, Timer
from engine.workflow.runtime import Runtime
from engine.workflow.timers import TimerService
from tests.conftest import SHARED, require
from tests.workflow.driver import Driver

START = {"employee": "employee", "agreement_start": "2025-06-30", "assessment_date": "2026-06-30"}
INVITE = {"invitation": {"message": "Please make your submission by 30 May."}}
MIGRATION_DIR = SHARED / "conformance" / "spiffarena" / "migration-test-with-timer"


def edited(text: str, rename: dict[str, str] | None = None, titles: dict[str, str] | None = None) -> str:
    """The diagram with element ids renamed everywhere (ids, references, DI) and element names changed."""
    root = etree.fromstring(text.encode())
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        for attr, value in node.attrib.items():
            if rename and value in rename:
                node.set(attr, rename[value])
        if rename and node.text and node.text.strip() in rename:
            node.text = rename[node.text.strip()]
        if titles and node.get("id") in titles:
            node.set("name", titles[node.get("id")])
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode()


def deploy_text(runtime: Runtime, name: str, text: str, actor: str = "owner") -> int:
    """Deploy `text` as `name`, with the other files (decision tables) of the process's newest version."""
    files: dict[str, str] = {}
    with runtime.db.read() as s:
        for row in s.scalars(select(ProcessDefinition).order_by(ProcessDefinition.version)):
            if name in row.sources:
                files = dict(row.sources)
    files[name] = text
    with runtime.db.unit_of_work() as uow:
        results = deploy(uow.session, read_bundle(files, runtime.settings.forms_dir), actor)
        uow.commit()
    [result] = [r for r in results if r.created] or results[:1]
    return result.version


def pay_source(runtime: Runtime) -> str:
    """The deployed version 1 of pay progression (processes/ may change while the tests run)."""
    with runtime.db.read() as s:
        row = s.scalars(select(ProcessDefinition).where(ProcessDefinition.key == "pay_progression",
                                                        ProcessDefinition.version == 1)).one()
        return str(row.sources["pay_progression.bpmn"])


def _version_of(runtime: Runtime, case: int) -> int:
    with runtime.db.read() as s:
        row = s.get(ProcessInstance, case)
        assert row is not None
        return row.definition.version


def test_preview_and_migrate_pay_progression_including_a_case_that_cannot_move(org: Runtime) -> None:
    d = Driver(org)
    waiting_invite = d.start("pay_progression", START)
    waiting_submission = d.start("pay_progression", {**START, "employee": "engineer"})  # one cycle per employee
    d.complete(waiting_submission, "invite_submission", "supervisor", INVITE)
    # Version 2 renames the invitation's title and replaces make_submission with a new element id.
    v2 = deploy_text(org, "pay_progression.bpmn", edited(
        pay_source(org), rename={"make_submission": "make_submission_v2"},
        titles={"invite_submission": "Invite the employee to submit"}))
    assert v2 == 2
    owner = d.user("owner")

    candidates = {c.instance_id: c for c in preview(org, owner, "pay_progression", 1, 2)}
    assert candidates[waiting_invite].movable and candidates[waiting_invite].open_tasks == ["invite_submission"]
    blocked = candidates[waiting_submission]
    assert not blocked.movable
    assert "make_submission" in blocked.reasons[0] and "does not exist in version 2" in blocked.reasons[0]

    with org.db.read() as s:
        before = s.scalars(select(HumanTask).where(HumanTask.instance_id == waiting_submission)).all()
        snapshot = [(t.id, t.state, t.spiff_task_id) for t in before]
        serialized = s.get(ProcessInstance, waiting_submission).serialized  # type: ignore[union-attr]
    outcomes = migrate_many(org, owner, "pay_progression", 1, 2)
    assert [(o.instance_id, o.migrated) for o in outcomes] == [(waiting_invite, True)]
    with pytest.raises(Conflict) as refused:
        migrate_instance(org, owner, waiting_submission, 2)
    assert "make_submission" in refused.value.problems[0].message

    # The case that could not move is untouched; the other runs on version 2 with its task kept.
    assert _version_of(org, waiting_submission) == 1
    with org.db.read() as s:
        after = s.scalars(select(HumanTask).where(HumanTask.instance_id == waiting_submission)).all()
        assert [(t.id, t.state, t.spiff_task_id) for t in after] == snapshot
        assert s.get(ProcessInstance, waiting_submission).serialized == serialized  # type: ignore[union-attr]
        moved = s.scalars(select(HumanTask).where(HumanTask.instance_id == waiting_invite,
                                                  HumanTask.state == "open")).one()
        assert moved.title == "Invite the employee to submit" and moved.assignee.username == "supervisor"
        events = s.scalars(select(AuditEvent).where(AuditEvent.instance_id == waiting_invite,
                                                    AuditEvent.kind == "migrated")).all()
        assert [(e.actor, e.detail["from_version"], e.detail["to_version"]) for e in events] == [("owner", 1, 2)]
    assert _version_of(org, waiting_invite) == 2
    # The moved case runs on: the next task is the new version's.
    d.complete(waiting_invite, "invite_submission", "supervisor", INVITE)
    assert d.open_tasks(waiting_invite) == ["make_submission_v2"]
    # The one left behind still runs on version 1.
    assert d.open_tasks(waiting_submission) == ["make_submission"]


def test_migration_survives_a_full_save_and_restore(org: Runtime) -> None:
    d = Driver(org, restore=True)
    try:
        case = d.start("pay_progression", START)
        deploy_text(org, "pay_progression.bpmn", edited(pay_source(org), titles={"recommend": "Recommend (v2)"}))
        migrate_instance(d.runtime, d.user("owner"), case, 2)
        d.complete(case, "invite_submission", "supervisor", INVITE)
        assert d.open_tasks(case) == ["make_submission"]
        assert _version_of(d.runtime, case) == 2
    finally:
        d.runtime.db.dispose()


def test_only_owners_migrate_and_a_refusal_changes_nothing(org: Runtime) -> None:
    d = Driver(org)
    case = d.start("pay_progression", START)
    deploy_text(org, "pay_progression.bpmn", edited(pay_source(org), titles={"decide": "Decide (v2)"}))
    with pytest.raises(Forbidden):
        migrate_instance(org, d.user("hr"), case, 2)
    with pytest.raises(Forbidden):
        preview(org, d.user("employee"), "pay_progression", 1, 2)
    assert _version_of(org, case) == 1
    with org.db.read() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.kind == "migrated")) == 0


def test_cases_can_move_back_to_an_earlier_version(org: Runtime) -> None:
    d = Driver(org)
    case = d.start("pay_progression", START)
    deploy_text(org, "pay_progression.bpmn", edited(pay_source(org), titles={"decide": "Decide (v2)"}))
    owner = d.user("owner")
    migrate_instance(org, owner, case, 2)
    assert migrate_instance(org, owner, case, 1) == 2
    assert _version_of(org, case) == 1
    with pytest.raises(Conflict):
        migrate_instance(org, owner, case, 1)


def _timer_version(text: str) -> str:
    # SpiffArena's test model reads the wall clock with the `time` module, which scripts here do not have
    # (deploy refuses it; see test_conformance). The timer behaviour under test is unchanged.
    return text.replace("round(time.time() * 1000)", "1000").replace(
        "duration = round((end_time-start_time)/1000)", "duration = 0")


def test_spiffarena_migration_with_timer_keeps_the_due_time(org: Runtime) -> None:
    require(MIGRATION_DIR.is_dir(), f"{MIGRATION_DIR} is absent (shared conformance files not checked out)")
    initial = _timer_version((MIGRATION_DIR / "migration-initial.bpmn").read_text())
    new = _timer_version((MIGRATION_DIR / "migration-new.bpmn").read_text())
    key = "Test_Timer_intermediate_catch"
    assert deploy_text(org, "migration.bpmn", initial) == 1
    d = Driver(org)
    case = d.start(key, {}, as_user="admin")
    with org.db.read() as s:
        [timer] = s.scalars(select(Timer).where(Timer.instance_id == case, Timer.state == "waiting")).all()
        due = timer.due_at
    assert timer.element == "TimerEvent1" and due == CLOCK.now() + timedelta(seconds=60)
    assert deploy_text(org, "migration.bpmn", new) == 2
    CLOCK.advance(timedelta(seconds=20))
    owner = d.user("owner")
    [candidate] = preview(org, owner, key, 1, 2)
    assert candidate.movable and candidate.waiting == ["TimerEvent1"]
    migrate_instance(org, owner, case, 2)
    with org.db.read() as s:
        rows = s.scalars(select(Timer).where(Timer.instance_id == case, Timer.state == "waiting")).all()
        assert [(r.element, r.due_at) for r in rows] == [("TimerEvent1", due)]  # not restarted
    # Not yet due: nothing fires. Then both cycles fire and the case completes on version 2.
    CLOCK.advance(timedelta(seconds=30))
    assert TimerService(org).poll() == 0
    for _ in range(3):
        CLOCK.advance(timedelta(seconds=61))
        TimerService(org).poll()
    assert d.instance(case).status == "completed"
    assert _version_of(org, case) == 2


def test_timer_boundary_events_move_with_their_task(org: Runtime) -> None:
    models = Path(__file__).parent / "timer_models"
    text = (models / "timers_demo.bpmn").read_text()
    deploy_text(org, "timers_demo.bpmn", text)
    d = Driver(org)
    case = d.start("timers_demo", {"employee": "employee", "work_due": "2026-03-10"})
    with org.db.read() as s:
        before = {t.element: t.due_at for t in s.scalars(select(Timer).where(
            Timer.instance_id == case, Timer.state == "waiting"))}
        task_before = s.scalars(select(HumanTask).where(HumanTask.instance_id == case,
                                                        HumanTask.state == "open")).one()
    deploy_text(org, "timers_demo.bpmn", edited(text, titles={"work": "Do the work (v2)"}))
    CLOCK.advance(timedelta(days=1))
    migrate_instance(org, d.user("owner"), case, 2)
    with org.db.read() as s:
        after = {t.element: t.due_at for t in s.scalars(select(Timer).where(
            Timer.instance_id == case, Timer.state == "waiting"))}
        task_after = s.scalars(select(HumanTask).where(HumanTask.instance_id == case,
                                                       HumanTask.state == "open")).one()
    assert after == before
    assert task_after.id == task_before.id and task_after.title == "Do the work (v2)"
    d.complete(case, "work", "hr", {})
    assert d.open_tasks(case) == []
    with org.db.read() as s:
        assert {t.element for t in s.scalars(select(Timer).where(
            Timer.instance_id == case, Timer.state == "waiting"))} == {"cool_off"}
