"""Saving a case without its spec (engine.workflow.serialization) must not change what the case does.

Each scenario runs straight through, through SpiffWorkflow's own serializer (which embeds the spec), and through
our dumps/loads between every step, both with a freshly parsed spec on each load (another worker, a restart) and
with the one cached spec (one worker). All must complete the same tasks in the same order with the same data.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition, SignalEventDefinition
from SpiffWorkflow.util.task import TaskState

from engine.core.clock import CLOCK
from engine.workflow import serialization
from engine.workflow.bundles import ParsedProcess, read_bundle
from engine.workflow.parsing import parse_bundle

FIXTURES = Path(__file__).parent / "fixtures_serialization"

Step = Callable[[BpmnWorkflow], None]
Between = Callable[[BpmnWorkflow], BpmnWorkflow]


def parse(files: tuple[str, ...], key: str) -> ParsedProcess:
    """Parse like the spec cache does (engine.workflow.definitions.SpecCache.get)."""
    bundle = read_bundle({name: (FIXTURES / name).read_bytes() for name in files}, None)
    return next(p for p in parse_bundle(bundle, strict=False) if p.key == key)


# --------------------------------------------------------------------------- steps


def engine_steps(wf: BpmnWorkflow) -> None:
    wf.do_engine_steps()


def timers_due(wf: BpmnWorkflow) -> None:
    """A second passes and the due timers fire (what Runtime.fire_timers does)."""
    CLOCK.freeze(CLOCK.now() + timedelta(seconds=1))
    wf.refresh_timers()
    wf.do_engine_steps()


def complete(name: str, **data: Any) -> Step:
    """Complete a ready user task with form data, then run the engine (what Runtime.complete_task does)."""

    def step(wf: BpmnWorkflow) -> None:
        task = wf.get_next_task(spec_name=name, state=TaskState.READY)
        assert task is not None, f"{name} is not ready: {ready(wf)}"
        task.set_data(**data)
        task.run()
        wf.do_engine_steps()

    step.__name__ = f"complete({name})"
    return step


def message(name: str, **payload: Any) -> Step:
    def step(wf: BpmnWorkflow) -> None:
        wf.catch(BpmnEvent(MessageEventDefinition(name), payload))
        wf.do_engine_steps()

    step.__name__ = f"message({name})"
    return step


def signal(name: str) -> Step:
    def step(wf: BpmnWorkflow) -> None:
        wf.catch(BpmnEvent(SignalEventDefinition(name), {}))
        wf.do_engine_steps()

    step.__name__ = f"signal({name})"
    return step


def ready(wf: BpmnWorkflow) -> list[str]:
    return [t.task_spec.name for t in wf.get_tasks(state=TaskState.READY)]


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    files: tuple[str, ...]
    key: str
    steps: tuple[Step, ...]
    expect: tuple[str, ...]  # tasks the run must complete (that it really went through the part under test)


SCENARIOS = {
    # Interrupting message start event (SpiffWorkflow 3.2 does not interrupt: the main task stays open).
    "message_interrupting": Scenario(
        ("message_event_subprocess.bpmn",), "message_esp",
        (engine_steps, message("go"), complete("handle_go", reason="first"), complete("main_task", ok=True)),
        ("on_go", "go_received", "handle_go", "note_go", "main_task")),
    # The same message twice: the second starts a second instance of the event subprocess.
    "message_twice": Scenario(
        ("message_event_subprocess.bpmn",), "message_esp",
        (engine_steps, message("go"), complete("handle_go", reason="first"), message("go"),
         complete("handle_go", reason="second"), complete("main_task", ok=True)),
        ("handle_go", "handle_go", "main_task")),
    # The case ends its main path while the event subprocess is still open, then the subprocess finishes.
    "message_main_first": Scenario(
        ("message_event_subprocess.bpmn",), "message_esp",
        (engine_steps, message("go"), complete("main_task", ok=True), complete("handle_go", reason="late")),
        ("handle_go", "main_task")),
    # Non-interrupting signal start event, the signal thrown by the process itself.
    "signal_non_interrupting": Scenario(
        ("signal_event_subprocess.bpmn",), "signal_esp",
        (engine_steps, complete("first", amount=2), complete("handle_alarm", seen=True), complete("second", ok=True)),
        ("raise_alarm", "on_alarm", "alarm_received", "handle_alarm", "note_alarm", "second")),
    # The same, signal sent from outside before the process throws it.
    "signal_from_outside": Scenario(
        ("signal_event_subprocess.bpmn",), "signal_esp",
        (engine_steps, signal("alarm"), complete("handle_alarm", seen=True), complete("first", amount=2),
         complete("handle_alarm", seen=False), complete("second", ok=True)),
        ("handle_alarm", "handle_alarm", "second")),
    # Timer start event ("PT0S": due at once).
    "timer": Scenario(
        ("timer_event_subprocess.bpmn",), "timer_esp",
        (engine_steps, timers_due, complete("handle_time", seen=True), complete("main_task", ok=True)),
        ("on_time", "time_up", "handle_time", "note_time", "main_task")),
    "call_activity": Scenario(
        ("call_activity.bpmn", "called.bpmn"), "caller",
        (engine_steps, complete("called_task", amount=4), complete("after_call", ok=True)),
        ("call", "called_task", "double", "after_call")),
    "embedded_subprocess": Scenario(
        ("embedded_subprocess.bpmn",), "embedded",
        (engine_steps, complete("inner_task", amount=5), complete("after_inner", ok=True)),
        ("inner", "inner_task", "triple", "after_inner")),
}


# --------------------------------------------------------------------------- running


@dataclass
class Outcome:
    trace: list[list[str]]  # per step, the tasks it completed (tree order)
    trees: list[list[tuple[str, str]]]  # per step, every task and its state afterwards (tree order)
    tasks: list[tuple[str, dict[str, Any]]]  # every completed task with its data (tree order)
    data: dict[str, Any]
    completed: bool


def _stock() -> Between:
    serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
    return lambda wf: serializer.deserialize_json(serializer.serialize_json(wf))


def _ours_fresh(scenario: Scenario) -> Between:
    def between(wf: BpmnWorkflow) -> BpmnWorkflow:
        parsed = parse(scenario.files, scenario.key)
        return serialization.loads(serialization.dumps(wf), parsed.spec, parsed.subprocess_specs)

    return between


def _ours_cached(parsed: ParsedProcess) -> Between:
    return lambda wf: serialization.loads(serialization.dumps(wf), parsed.spec, parsed.subprocess_specs)


def _finished(wf: BpmnWorkflow) -> list[Any]:
    return list(wf.get_tasks(state=TaskState.COMPLETED))


def run(scenario: Scenario, parsed: ParsedProcess, between: Between | None,
        steps: tuple[Step, ...] | None = None, wf: BpmnWorkflow | None = None) -> Outcome:
    if wf is None:
        wf = BpmnWorkflow(parsed.spec, parsed.subprocess_specs)
    seen = {t.id for t in _finished(wf)}
    trace: list[list[str]] = []
    trees: list[list[tuple[str, str]]] = []
    for step in steps if steps is not None else scenario.steps:
        step(wf)
        new = [t for t in _finished(wf) if t.id not in seen]
        seen.update(t.id for t in new)
        trace.append([t.task_spec.name for t in new])
        trees.append([(t.task_spec.name, TaskState.get_name(t.state)) for t in wf.get_tasks()])
        if between is not None:
            wf = between(wf)
    return Outcome(trace, trees, [(t.task_spec.name, t.data) for t in _finished(wf)], wf.data, wf.is_completed())


def modes(name: str) -> dict[str, Outcome]:
    scenario = SCENARIOS[name]
    cached = parse(scenario.files, scenario.key)
    return {
        "straight": run(scenario, parse(scenario.files, scenario.key), None),
        "stock serializer": run(scenario, parse(scenario.files, scenario.key), _stock()),
        "dumps/loads, fresh spec": run(scenario, parse(scenario.files, scenario.key), _ours_fresh(scenario)),
        "dumps/loads, cached spec": run(scenario, cached, _ours_cached(cached)),
    }


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_dumps_loads_between_every_step_changes_nothing(name: str) -> None:
    outcomes = modes(name)
    straight = outcomes["straight"]
    assert straight.completed
    done = [task for names in straight.trace for task in names]
    for task in SCENARIOS[name].expect:
        assert done.count(task) >= SCENARIOS[name].expect.count(task), f"{task} never completed: {straight.trace}"
    for mode, outcome in outcomes.items():
        assert outcome.trace == straight.trace, mode
        assert outcome.trees == straight.trees, mode
        assert outcome.tasks == straight.tasks, mode
        assert outcome.data == straight.data, mode
        assert outcome.completed, mode


def spec_wiring(parsed: ParsedProcess) -> dict[str, tuple[list[str], list[str]]]:
    return {name: ([i.name for i in ts.inputs], [o.name for o in ts.outputs])
            for name, ts in parsed.spec.task_specs.items()}


@pytest.mark.parametrize("name", ["message_interrupting", "message_twice", "signal_non_interrupting", "timer"])
def test_restoring_leaves_the_cached_spec_alone(name: str) -> None:
    """SpiffWorkflow wires a started event subprocess into the spec at run time; restored cases must do that on
    a spec of their own, or every later case of the version would start the event subprocess by itself."""
    scenario = SCENARIOS[name]
    cached = parse(scenario.files, scenario.key)
    before = spec_wiring(cached)
    run(scenario, cached, _ours_cached(cached))
    assert spec_wiring(cached) == before


def test_a_new_case_after_a_restored_one_does_not_start_the_event_subprocess() -> None:
    scenario = SCENARIOS["message_interrupting"]
    cached = parse(scenario.files, scenario.key)
    run(scenario, cached, _ours_cached(cached))
    new_case = run(scenario, cached, None, steps=(engine_steps, complete("main_task", ok=True)))
    assert new_case.completed
    assert "on_go" not in [task for names in new_case.trace for task in names]


def names(task_specs: list[Any]) -> list[str]:
    return [ts.name for ts in task_specs]


def test_wiring_another_case_left_in_the_cached_spec_is_not_taken_over() -> None:
    scenario = SCENARIOS["message_interrupting"]
    cached = parse(scenario.files, scenario.key)
    waiting = BpmnWorkflow(cached.spec, cached.subprocess_specs)
    engine_steps(waiting)
    saved = serialization.dumps(waiting)
    # A case running on the cached spec itself (as a new case does until its first save) starts the subprocess:
    other = BpmnWorkflow(cached.spec, cached.subprocess_specs)
    engine_steps(other)
    message("go")(other)
    assert names(cached.spec.start.outputs) == ["start", "on_go"]  # SpiffWorkflow rewired the shared spec
    restored = serialization.loads(saved, cached.spec, cached.subprocess_specs)
    own = restored.spec
    assert names(own.start.outputs) == ["start"]
    assert names(own.task_specs["on_go"].inputs) == [] and names(own.task_specs["on_go"].outputs) == []
    assert names(own.task_specs["message_esp.EndJoin"].inputs) == ["end"]
    outcome = run(scenario, cached, _ours_cached(cached), steps=scenario.steps[1:], wf=restored)
    straight = run(scenario, parse(scenario.files, scenario.key), None)
    assert outcome.trace == straight.trace[1:]
    assert outcome.trees == straight.trees[1:]
    assert outcome.data == straight.data


@pytest.mark.parametrize(("name", "copied"), [("message_interrupting", True), ("signal_non_interrupting", True),
                                              ("timer", False), ("call_activity", False),
                                              ("embedded_subprocess", False)])
def test_only_specs_rewired_at_run_time_are_copied(name: str, copied: bool) -> None:
    scenario = SCENARIOS[name]
    cached = parse(scenario.files, scenario.key)
    wf = BpmnWorkflow(cached.spec, cached.subprocess_specs)
    restored = serialization.loads(serialization.dumps(wf), cached.spec, cached.subprocess_specs)
    assert (restored.spec is not cached.spec) is copied
    assert restored.subprocess_specs == cached.subprocess_specs


def test_a_case_saved_before_the_fix_loads_and_finishes() -> None:
    """Saved by the previous dumps (same format) while the signal's event subprocess was open."""
    scenario = SCENARIOS["signal_non_interrupting"]
    text = (FIXTURES / "saved_signal_event_subprocess_open.json").read_text()
    rest = scenario.steps[2:]
    parsed = parse(scenario.files, scenario.key)
    wf = serialization.loads(text, parsed.spec, parsed.subprocess_specs)
    assert ready(wf) == ["second", "handle_alarm"]
    outcome = run(scenario, parsed, _ours_cached(parsed), steps=rest, wf=wf)
    assert outcome.completed
    straight = run(scenario, parse(scenario.files, scenario.key), None)
    assert outcome.trace == straight.trace[2:]
    assert outcome.trees == straight.trees[2:]
    assert outcome.data == straight.data


def test_dumps_keeps_its_format() -> None:
    """No spec in the document, and the same keys as before: saved rows and new ones read alike."""
    scenario = SCENARIOS["signal_non_interrupting"]
    parsed = parse(scenario.files, scenario.key)
    wf = BpmnWorkflow(parsed.spec, parsed.subprocess_specs)
    for step in scenario.steps[:2]:
        step(wf)
    new = json.loads(serialization.dumps(wf))
    old = json.loads((FIXTURES / "saved_signal_event_subprocess_open.json").read_text())
    assert set(new) == set(old) == {"data", "correlations", "last_task", "success", "completed", "tasks", "root",
                                    "subprocesses", "bpmn_events", "serializer_version", "typename"}
    assert new["serializer_version"] == old["serializer_version"]
    assert set(next(iter(new["subprocesses"].values()))) == set(next(iter(old["subprocesses"].values())))
    assert {key for task in new["tasks"].values() for key in task} == {
        key for task in old["tasks"].values() for key in task}
