"""Issue 16: hard limits on what a diagram runs (engine/sandbox.py): a single long C-level call, memory growth,
instruction templates, and the size of case and task data."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.core.errors import Invalid
from engine.core.models import AuditEvent
from engine.workflow.models import ProcessInstance
from engine.workflow.runtime import Runtime
from engine.workflow.sandbox import SandboxError, render_template
from engine.workflow.scripts import RestrictedEnvironment, ScriptError, is_bounded
from tests.workflow.driver import Driver

#: One C-level call that runs for many seconds in plain CPython (sorting 800,000 strings sharing 50,000-character
#: prefixes: each comparison is a long memcmp): the tracer cannot stop it, only killing the process can.
LONG_C_CALL = 'x = ["a" * 50000 + str(i) for i in range(2000)]\ny = sorted(x * 400)'
#: A gigabyte of strings, one Python-level step at a time.
MEMORY_GROWTH = 'x = ["a" * 999000 + str(i) for i in range(1000)]'


def _warm(env: RestrictedEnvironment) -> None:
    """Start the sandbox worker before timing (a new worker's start is not the code's time)."""
    assert env.evaluate("len(items)", {"items": [1, 2]}) == 2


def test_sec_a_long_c_level_call_is_stopped_within_its_limit() -> None:
    env = RestrictedEnvironment(time_limit_seconds=1.0)
    _warm(env)
    started = time.monotonic()
    with pytest.raises(ScriptError, match="time limit of 1 s"):
        env.execute(LONG_C_CALL, {})
    assert time.monotonic() - started < 2.0  # the limit + 1 s
    assert env.evaluate("len(items) + 1", {"items": [1]}) == 2  # a new worker serves the next call


def test_sec_memory_growth_is_stopped_and_the_next_script_runs() -> None:
    env = RestrictedEnvironment(time_limit_seconds=10.0, memory_mb=256)
    _warm(env)
    with pytest.raises(ScriptError, match="memory"):
        env.execute(MEMORY_GROWTH, {})
    data = {"n": 2}
    env.execute("m = [i * n for i in range(3)]", data)
    assert data == {"n": 2, "m": [0, 2, 4]}


def test_sec_helpers_run_in_the_caller_and_their_refusals_reach_the_script() -> None:
    calls: list[str] = []

    def lookup(name: str) -> str:
        calls.append(name)  # runs here, in the caller: it could read the database
        if name == "nobody":
            raise ValueError("no such person")
        return name.upper()

    env = RestrictedEnvironment({"lookup": lookup})
    data: dict[str, object] = {"who": "emily"}
    env.execute("shout = lookup(who) + '!'", data)
    assert data["shout"] == "EMILY!" and calls == ["emily"]
    with pytest.raises(ScriptError, match="no such person"):
        env.execute("x = lookup('nobody')", {})
    with pytest.raises(ScriptError, match="data only"):
        env.execute("x = lookup(lambda: 1)", {})


def test_sec_a_scripts_own_error_keeps_its_type_and_line() -> None:
    env = RestrictedEnvironment()
    with pytest.raises(ZeroDivisionError):
        env.execute("a = 1\nb = [a / 0 for _ in range(1)]", {})


@pytest.mark.parametrize(("source", "mode", "bounded"), [
    ("n >= 0", "eval", True),
    ("outcome == 'approve' and not late", "eval", True),
    ("agreement['schedule1']['home_contact'] != host", "eval", True),
    ("host_contact = forecast['host_contact']", "exec", True),
    ("len(items) > 0", "eval", False),
    ("'x' * n", "eval", False),
    ("'%*d' % (n, 1)", "eval", False),
    ("[i for i in items]", "eval", False),
    ("while True: pass", "exec", False),
])
def test_sec_only_code_that_can_do_no_unbounded_work_runs_in_process(source: str, mode: str, bounded: bool) -> None:
    assert is_bounded(source, mode) is bounded  # type: ignore[arg-type]


def test_sec_instructions_with_nested_loops_are_stopped_within_their_limit() -> None:
    render_template("Warm {{ who }}", {"who": "up"}, 1.0, 512, 1000)
    started = time.monotonic()
    with pytest.raises(SandboxError, match="time limit"):
        render_template("{% for a in range(100000) %}{% for b in range(100000) %}{{ a }}{% endfor %}{% endfor %}",
                        {}, 1.0, 512, 10**9)
    assert time.monotonic() - started < 2.0
    with pytest.raises(SandboxError, match="longer than 1,000 characters"):
        render_template("{% for a in range(100000) %}xxxxxxxxxx{% endfor %}", {}, 1.0, 512, 1000)
    assert render_template("Dear {{ name }}", {"name": "<Emily>"}, 1.0, 512, 1000) == "Dear &lt;Emily&gt;"


# ----------------------------------------------------------------------------------------- data size limits

HOSTILE = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="h_defs" targetNamespace="t">
  <bpmn:process id="hostile" name="Hostile" isExecutable="true">
    <bpmn:startEvent id="h_start"><bpmn:outgoing>h1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="ask" name="Ask"><bpmn:extensionElements>
      <spiffworkflow:properties><spiffworkflow:property name="formJsonSchemaFilename" value="note.schema.json"/>
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>h1</bpmn:incoming><bpmn:outgoing>h2</bpmn:outgoing></bpmn:userTask>
    <bpmn:scriptTask id="grow" name="Grow"><bpmn:incoming>h2</bpmn:incoming><bpmn:outgoing>h3</bpmn:outgoing>
      <bpmn:script>big = [note] * 60</bpmn:script></bpmn:scriptTask>
    <bpmn:userTask id="after" name="After"><bpmn:incoming>h3</bpmn:incoming><bpmn:outgoing>h4</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="h_end"><bpmn:incoming>h4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="h1" sourceRef="h_start" targetRef="ask"/>
    <bpmn:sequenceFlow id="h2" sourceRef="ask" targetRef="grow"/>
    <bpmn:sequenceFlow id="h3" sourceRef="grow" targetRef="after"/>
    <bpmn:sequenceFlow id="h4" sourceRef="after" targetRef="h_end"/>
  </bpmn:process>
</bpmn:definitions>"""
NOTE_FORM = b'{"type": "object", "properties": {"note": {"type": "string", "title": "Note"}}}'


def deploy_hostile(runtime: Runtime, tmp_path: Path) -> None:
    from engine.workflow.bundles import read_bundle
    from engine.workflow.definitions import deploy

    with runtime.db.unit_of_work() as uow:
        deploy(uow.session, read_bundle({"hostile.bpmn": HOSTILE.encode(), "note.schema.json": NOTE_FORM}, None),
               "test")
        uow.commit()


def _state(runtime: Runtime, case: int) -> tuple[int, int]:
    with runtime.db.read() as s:
        row = s.get_one(ProcessInstance, case)
        return row.lock_version, s.scalar(select(func.count()).select_from(AuditEvent)
                                          .where(AuditEvent.instance_id == case)) or 0


def test_sec_task_data_over_its_limit_is_refused_naming_the_field(org: Runtime, tmp_path: Path) -> None:
    deploy_hostile(org, tmp_path)
    d = Driver(org)
    case = org.start(d.user("hr"), "hostile", {})
    before = _state(org, case)
    with pytest.raises(Invalid) as err:
        org.complete_task(d.user("hr"), d.open_task(case, "ask").id, {"note": "x" * 300_000})
    assert [p.field for p in err.value.problems] == ["data"] and "256,000" in err.value.problems[0].message
    assert _state(org, case) == before
    with pytest.raises(Invalid) as err:
        org.start(d.user("hr"), "hostile", {"padding": "x" * 300_000})
    assert [p.field for p in err.value.problems] == ["data"]


def test_sec_a_step_that_would_make_the_case_too_large_fails_naming_the_element(org: Runtime,
                                                                                  tmp_path: Path) -> None:
    deploy_hostile(org, tmp_path)
    d = Driver(org)
    case = org.start(d.user("hr"), "hostile", {})
    before = _state(org, case)
    with pytest.raises(Invalid) as err:  # 20,000 characters are fine; the script keeps 60 copies of them
        org.complete_task(d.user("hr"), d.open_task(case, "ask").id, {"note": "x" * 20_000})
    assert err.value.problems[0].element == "grow" and "1,000,000" in err.value.problems[0].message
    assert _state(org, case) == before and d.open_task(case, "ask") is not None
    org.complete_task(d.user("hr"), d.open_task(case, "ask").id, {"note": "fine"})
    assert d.open_task(case, "after") is not None
