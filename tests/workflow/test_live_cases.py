"""Live cases (engine.workflow.live, issue 21): the next step of a case this process saved skips restoring it,
and runs on exactly what the row holds whatever happened elsewhere: another process's step, a failed step, a
rolled-back transaction, a full map."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select, update

from engine.core.db import Database
from engine.core.errors import Invalid
from engine.workflow.bundles import read_bundle
from engine.workflow.definitions import deploy
from engine.workflow.live import LiveCases
from engine.workflow.migration import migrate_instance
from engine.workflow.models import ProcessDefinition, ProcessInstance
from engine.workflow.runtime import Runtime
from tests.workflow.driver import Driver

NS = ('xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
      'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"')

#: Ask for a divisor (no form: the answer goes under `answer`), divide by it in a script, then one more task.
DIVIDE = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions {NS} id="d" targetNamespace="t">
  <bpmn:process id="divide" name="Divide" isExecutable="true">
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="ask" name="Divisor">
      <bpmn:extensionElements><spiffworkflow:variableName>answer</spiffworkflow:variableName></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:scriptTask id="div" name="Divide"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:script>x = 100 / answer["d"]</bpmn:script></bpmn:scriptTask>
    <bpmn:userTask id="t1" name="Then"><bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing>
      </bpmn:userTask>
    <bpmn:userTask id="t2" name="Last"><bpmn:incoming>f4</bpmn:incoming><bpmn:outgoing>f5</bpmn:outgoing>
      </bpmn:userTask>
    <bpmn:endEvent id="e"><bpmn:incoming>f5</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="ask"/>
    <bpmn:sequenceFlow id="f2" sourceRef="ask" targetRef="div"/>
    <bpmn:sequenceFlow id="f3" sourceRef="div" targetRef="t1"/>
    <bpmn:sequenceFlow id="f4" sourceRef="t1" targetRef="t2"/>
    <bpmn:sequenceFlow id="f5" sourceRef="t2" targetRef="e"/>
  </bpmn:process>
</bpmn:definitions>""".encode()


def _deploy(runtime: Runtime, source: bytes = DIVIDE) -> None:
    with runtime.db.unit_of_work() as uow:
        deploy(uow.session, read_bundle({"divide.bpmn": source}, None), "test")
        uow.commit()


def _other(runtime: Runtime) -> Runtime:
    """A second process on the same database (its own connections, its own live cases)."""
    return Runtime(Database(runtime.settings.database_url), runtime.settings)


def test_scale_the_next_step_of_a_case_saved_here_skips_its_restore(org: Runtime) -> None:
    _deploy(org)
    d = Driver(org)
    case = d.start("divide", {})
    d.complete(case, "ask", "hr", {"d": 4})
    d.complete(case, "t1", "hr", {})
    assert (org.live.hits, org.live.misses) == (2, 0)
    row = d.instance(case)
    assert row.data["x"] == 25 and d.open_tasks(case) == ["t2"]
    d.complete(case, "t2", "hr", {})
    assert d.instance(case).status == "completed" and len(org.live) == 0  # a finished case is not kept


def test_scale_a_case_another_process_stepped_is_restored_from_its_row(org: Runtime) -> None:
    """The kept workflow still has `ask` open; the row has moved on. Used anyway, the step would be refused (t1 is
    not ready in it) or would overwrite the other process's step."""
    _deploy(org)
    case = Driver(org).start("divide", {})
    other = _other(org)
    try:
        Driver(other).complete(case, "ask", "hr", {"d": 5})
        Driver(org).complete(case, "t1", "hr", {})
    finally:
        other.db.dispose()
    assert (org.live.hits, org.live.misses) == (0, 1)
    assert Driver(org).instance(case).data["x"] == 20 and Driver(org).open_tasks(case) == ["t2"]


def test_scale_a_case_moved_to_another_version_elsewhere_runs_on_that_version(org: Runtime) -> None:
    _deploy(org)
    d = Driver(org)
    case = d.start("divide", {})
    _deploy(org, DIVIDE.replace(b"x = 100 / ", b"x = 200 / "))
    other = _other(org)
    try:
        migrate_instance(other, Driver(other).user("owner"), case, 2)
    finally:
        other.db.dispose()
    d.complete(case, "ask", "hr", {"d": 4})
    assert d.instance(case).data["x"] == 50 and (org.live.hits, org.live.misses) == (0, 1)


def test_scale_a_row_whose_version_alone_changed_is_restored(org: Runtime) -> None:
    """The text names no spec: a row put on another version by hand (same text, same lock_version) is told apart by
    its version. Used anyway, the kept workflow would divide as version 1 does."""
    _deploy(org)
    d = Driver(org)
    case = d.start("divide", {})
    _deploy(org, DIVIDE.replace(b"x = 100 / ", b"x = 200 / "))
    with org.db.unit_of_work() as uow:
        v2 = uow.session.scalar(select(ProcessDefinition.id).where(ProcessDefinition.key == "divide",
                                                                   ProcessDefinition.version == 2))
        uow.session.execute(update(ProcessInstance).where(ProcessInstance.id == case).values(definition_id=v2))
        uow.commit()
    d.complete(case, "ask", "hr", {"d": 4})
    assert d.instance(case).data["x"] == 50 and (org.live.hits, org.live.misses) == (0, 1)


def test_scale_a_failed_step_leaves_nothing_behind(org: Runtime) -> None:
    """The script fails after `ask` completed in memory: that workflow is dropped, and the retry runs on the row."""
    _deploy(org)
    d = Driver(org)
    case = d.start("divide", {})
    try:
        d.complete(case, "ask", "hr", {"d": 0})
    except Invalid as exc:
        assert "div" in str(exc)
    else:
        raise AssertionError("dividing by zero was not refused")
    assert len(org.live) == 0
    d.complete(case, "ask", "hr", {"d": 2})
    assert d.instance(case).data["x"] == 50 and d.open_tasks(case) == ["t1"]


def test_scale_a_rolled_back_save_keeps_nothing(org: Runtime) -> None:
    _deploy(org)
    case = Driver(org).start("divide", {})
    org.live = LiveCases(org.live.size)  # forget what the start kept
    with org.db.unit_of_work() as uow:
        row = uow.session.get(ProcessInstance, case)
        assert row is not None
        org.save(uow.session, org.load(uow.session, row), "test")
        # no commit: the unit of work rolls back
    assert len(org.live) == 0
    with org.db.unit_of_work() as uow:
        row = uow.session.get(ProcessInstance, case)
        assert row is not None
        org.save(uow.session, org.load(uow.session, row), "test")
        uow.commit()
    assert len(org.live) == 1


def test_scale_kept_cases_are_bounded(org: Runtime) -> None:
    runtime = Runtime(Database(org.settings.database_url), replace(org.settings, live_cases=2))
    try:
        _deploy(runtime)
        d = Driver(runtime)
        first, *_ = [d.start("divide", {}) for _ in range(3)]
        assert len(runtime.live) == 2
        d.complete(first, "ask", "hr", {"d": 1})  # the oldest went first
        assert (runtime.live.hits, runtime.live.misses) == (0, 1)
    finally:
        runtime.db.dispose()


def test_scale_no_live_cases_when_the_setting_is_0(org: Runtime) -> None:
    runtime = Runtime(Database(org.settings.database_url), replace(org.settings, live_cases=0))
    try:
        _deploy(runtime)
        d = Driver(runtime)
        case = d.start("divide", {})
        d.complete(case, "ask", "hr", {"d": 1})
        assert len(runtime.live) == 0 and d.instance(case).data["x"] == 100
    finally:
        runtime.db.dispose()
