"""Runtime bookkeeping: task rows, audit, data snapshot."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.workflow.models import HumanTask
from engine.workflow.runtime import Runtime
from tests.workflow.driver import Driver, deploy_file

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

    from engine.core.models import AuditEvent

    model = Path(__file__).parent / "timer_models" / "parallel.bpmn"
    deploy_file(org, model)
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

    from engine.core.errors import Invalid
    from engine.workflow.hooks import HookSet
    from engine.workflow.registry import REGISTRY, ProcessPackage

    model = Path(__file__).parent / "timer_models" / "parallel.bpmn"
    deploy_file(org, model)
    seen: list[str] = []

    def opened(session: object, row: object, task: HumanTask, settings: object) -> None:
        seen.append(f"opened {task.name}")

    def completing(session: object, row: object, task: HumanTask, data: dict[str, object],
                   actor: str) -> dict[str, object]:
        if task.name == "right":
            raise Invalid("refused by a hook")
        seen.append(f"completing {task.name} by {actor}")
        return {**data, "stamped": True}

    def saved(session: object, row: object, actor: str, settings: object) -> None:
        seen.append("saved")

    package = ProcessPackage(name="test_hooks", title="hooks under test", processes=frozenset({"parallel_review"}),
                             hooks=HookSet())
    REGISTRY.add(package)
    registered = REGISTRY.hooks_for("parallel_review")
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
        REGISTRY.discard(package.name)


BRANCHES = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="b_defs" targetNamespace="t">
  <bpmn:process id="two_branches" name="Two branches" isExecutable="true">
    <bpmn:startEvent id="b_start"><bpmn:outgoing>b1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:parallelGateway id="b_split"><bpmn:incoming>b1</bpmn:incoming><bpmn:outgoing>b2</bpmn:outgoing>
      <bpmn:outgoing>b3</bpmn:outgoing></bpmn:parallelGateway>
    <bpmn:scriptTask id="set_left"><bpmn:incoming>b2</bpmn:incoming><bpmn:outgoing>b4</bpmn:outgoing>
      <bpmn:script>note = "left branch"
who = "Home"</bpmn:script></bpmn:scriptTask>
    <bpmn:scriptTask id="set_right"><bpmn:incoming>b3</bpmn:incoming><bpmn:outgoing>b5</bpmn:outgoing>
      <bpmn:script>note = "right branch"
who = "Host"</bpmn:script></bpmn:scriptTask>
    <bpmn:userTask id="left" name="Left"><bpmn:extensionElements>
      <spiffworkflow:instructionsForEndUser>Answer for {{ who }}.</spiffworkflow:instructionsForEndUser>
      <spiffworkflow:properties><spiffworkflow:property name="formJsonSchemaFilename" value="note.schema.json"/>
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>b4</bpmn:incoming><bpmn:outgoing>b6</bpmn:outgoing></bpmn:userTask>
    <bpmn:userTask id="right" name="Right"><bpmn:extensionElements>
      <spiffworkflow:instructionsForEndUser>Answer for {{ who }}.</spiffworkflow:instructionsForEndUser>
      <spiffworkflow:properties><spiffworkflow:property name="formJsonSchemaFilename" value="note.schema.json"/>
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>b5</bpmn:incoming><bpmn:outgoing>b7</bpmn:outgoing></bpmn:userTask>
    <bpmn:parallelGateway id="b_join"><bpmn:incoming>b6</bpmn:incoming><bpmn:incoming>b7</bpmn:incoming>
      <bpmn:outgoing>b8</bpmn:outgoing></bpmn:parallelGateway>
    <bpmn:endEvent id="b_end"><bpmn:incoming>b8</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="b1" sourceRef="b_start" targetRef="b_split"/>
    <bpmn:sequenceFlow id="b2" sourceRef="b_split" targetRef="set_left"/>
    <bpmn:sequenceFlow id="b3" sourceRef="b_split" targetRef="set_right"/>
    <bpmn:sequenceFlow id="b4" sourceRef="set_left" targetRef="left"/>
    <bpmn:sequenceFlow id="b5" sourceRef="set_right" targetRef="right"/>
    <bpmn:sequenceFlow id="b6" sourceRef="left" targetRef="b_join"/>
    <bpmn:sequenceFlow id="b7" sourceRef="right" targetRef="b_join"/>
    <bpmn:sequenceFlow id="b8" sourceRef="b_join" targetRef="b_end"/>
  </bpmn:process>
</bpmn:definitions>"""
NOTE_FORM = b'{"type": "object", "properties": {"note": {"type": "string", "title": "Note"}}}'


def deploy_branches(org: Runtime) -> None:
    from engine.workflow.bundles import read_bundle
    from engine.workflow.definitions import deploy

    with org.db.unit_of_work() as uow:
        deploy(uow.session, read_bundle({"branches.bpmn": BRANCHES.encode(), "note.schema.json": NOTE_FORM}, None),
               "test")
        uow.commit()


def test_a_task_keeps_its_own_branchs_data_not_the_cases_snapshot(org: Runtime) -> None:
    deploy_branches(org)
    d = Driver(org)
    case = org.start(d.user("hr"), "two_branches", {"note": "from the start"})
    left, right = d.open_task(case, "left"), d.open_task(case, "right")
    # The form's fields and the names the instructions cite, from each task's own branch.
    assert left.context == {"note": "left branch", "who": "Home"}
    assert right.context == {"note": "right branch", "who": "Host"}
    assert d.instance(case).data["note"] in ("left branch", "right branch")  # one snapshot for the whole case


def test_d19_6_a_completion_waiting_on_the_case_sees_the_task_reassigned_meanwhile(org: Runtime) -> None:
    """The supervisor submits just as the task is appointed to someone else (D19-6). The completion waits for the
    case's lock; once it has it, the task is another's: refused, nothing completed."""
    import threading

    from sqlalchemy import update

    from engine.core.errors import Forbidden, NotFound
    from engine.people.models import Person
    from engine.workflow.models import ProcessInstance

    d = Driver(org)
    case = d.start("pay_progression", START)
    task = d.open_task(case, "invite_submission")
    supervisor = d.user("supervisor")
    with org.db.engine.connect() as other:
        other.begin()  # as an appointment does: lock the case, move its task, save the case (lock_version + 1)
        other.execute(select(ProcessInstance.id).where(ProcessInstance.id == case).with_for_update())
        other.execute(update(HumanTask).where(HumanTask.id == task.id).values(
            assignee_id=select(Person.id).where(Person.username == "manager").scalar_subquery()))
        other.execute(update(ProcessInstance).where(ProcessInstance.id == case).values(
            lock_version=ProcessInstance.lock_version + 1))
        outcome: list[BaseException | None] = []

        def submit() -> None:
            try:
                org.complete_task(supervisor, task.id, INVITE)
                outcome.append(None)
            except BaseException as exc:  # reported below
                outcome.append(exc)

        worker = threading.Thread(target=submit)
        worker.start()
        worker.join(0.5)
        assert worker.is_alive() and not outcome  # waiting for the case
        other.commit()
    worker.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], Forbidden | NotFound), outcome  # not hers to see either
    again = d.open_task(case, "invite_submission")
    assert again.id == task.id and again.assignee is not None and again.assignee.username == "manager"


def test_a_policy_module_that_cannot_load_stops_the_runtime(runtime: Runtime) -> None:
    """Issue 17: policies plug in one way and fail closed. Before, a missing policy module was skipped and its
    processes started with their data unchecked."""
    import dataclasses

    from engine.workflow.registry import REGISTRY, PolicyLoadError

    listed = dataclasses.replace(runtime.settings, policies="pay_progression,secondment,no_such_policy")
    with pytest.raises(PolicyLoadError, match=r"engine\.policies\.no_such_policy"):
        Runtime(runtime.db, listed)
    with pytest.raises(PolicyLoadError, match=r"tests\.no_such_module"):
        Runtime(runtime.db, dataclasses.replace(runtime.settings, policies="tests.no_such_module"))
    assert REGISTRY.hooks_for("pay_progression").prepare and REGISTRY.hooks_for("secondment").prepare
