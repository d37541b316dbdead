"""Compaction (engine.workflow.compaction, issue 21): a case's live workflow state is bounded by what is open, and
taking finished tasks out of it changes nothing the case does.

Every scenario of tests/workflow/test_serialization.py, and loops with parallel gateways in them, run compacted
and restored between every step and must complete the same tasks in the same order with the same data as
SpiffWorkflow straight through. The conformance suite (tests/conformance) and the policies' suites run with
compaction on every save as well (the default). Then a long case through the runtime: what it stores stays flat
cycle after cycle, and its history rows with what is left in the tree give its whole path in order.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from sqlalchemy import select

from engine.core.clock import CLOCK
from engine.core.config import Settings
from engine.policies.secondment.demo import load_host_people
from engine.workflow import serialization
from engine.workflow.bundles import ParsedProcess
from engine.workflow.compaction import compact, task_count
from engine.workflow.diagram import instance_diagram
from engine.workflow.models import PassedElement, ProcessInstance
from engine.workflow.runtime import Runtime
from tests.conftest import T0
from tests.policies.secondment import test_secondment_flow as flow
from tests.workflow.driver import Driver, deploy_file
from tests.workflow.test_serialization import (
    FIXTURES,
    SCENARIOS,
    Between,
    Scenario,
    complete,
    engine_steps,
    parse,
    run,
)

LOOP = FIXTURES / "report_loop.bpmn"


def _compacted(parsed: ParsedProcess) -> Between:
    def between(wf: BpmnWorkflow) -> BpmnWorkflow:
        compact(wf)
        return serialization.loads(serialization.dumps(wf), parsed.spec, parsed.subprocess_specs)

    return between


def _loop_scenario(cycles: int) -> Scenario:
    steps = (engine_steps, *(complete("c_report", note=f"cycle {n}") for n in range(cycles)))
    return Scenario(("report_loop.bpmn",), "report_loop", steps, ("c_report",) * cycles)


LOOPS = {
    "report_loop": _loop_scenario(12),
}


@pytest.mark.parametrize("name", [*SCENARIOS, *LOOPS])
def test_compacting_between_every_step_changes_nothing_the_case_does(name: str) -> None:
    scenario = SCENARIOS.get(name) or LOOPS[name]
    straight = run(scenario, parse(scenario.files, scenario.key), None, wf=_started(scenario, name))
    cached = parse(scenario.files, scenario.key)
    compacted = run(scenario, cached, _compacted(cached), wf=_started(scenario, name, cached))
    assert straight.completed and compacted.completed
    assert compacted.trace == straight.trace
    assert compacted.data == straight.data


def _started(scenario: Scenario, name: str, parsed: ParsedProcess | None = None) -> BpmnWorkflow:
    parsed = parsed or parse(scenario.files, scenario.key)
    wf = BpmnWorkflow(parsed.spec, parsed.subprocess_specs)
    if name in LOOPS:
        wf.task_tree.data.update({"cycle": 0, "cycles": len(scenario.steps) - 1})
    return wf


def test_a_loop_keeps_a_bounded_tree() -> None:
    scenario = _loop_scenario(40)
    parsed = parse(scenario.files, scenario.key)
    wf = _started(scenario, "report_loop", parsed)
    sizes = []
    for step in scenario.steps[:-1]:
        step(wf)
        compact(wf)
        sizes.append(task_count(wf))
    assert max(sizes[5:]) == min(sizes[5:]) <= 12, sizes


# --------------------------------------------------------------------------- through the runtime


def _drive_loop(runtime: Runtime, cycles: int) -> tuple[int, list[int]]:
    deploy_file(runtime, LOOP)
    drive = Driver(runtime)
    case = drive.start("report_loop", {"cycle": 0, "cycles": cycles})
    stored = []
    for _ in range(cycles):
        drive.complete(case, "c_report", "hr", {})
        with runtime.db.read() as s:
            row = s.get(ProcessInstance, case)
            assert row is not None
            stored.append(len(row.serialized))
    return case, stored


def _path(runtime: Runtime, case: int) -> list[str]:
    with runtime.db.read() as s:
        row = s.get(ProcessInstance, case)
        assert row is not None
        wf = runtime.load(s, row).workflow
        done = [(at, -1, element) for at, element in s.execute(
            select(PassedElement.changed_at, PassedElement.element).where(
                PassedElement.instance_id == case, PassedElement.state == "completed")).all()]
        done += [(t.last_state_change, n, t.task_spec.bpmn_id) for n, t in enumerate(wf.get_tasks(state=64))
                 if t.task_spec.bpmn_id]
        return [element for _, _, element in sorted(done)]


def test_a_long_case_stores_as_much_on_its_last_cycle_as_on_its_first(org: Runtime) -> None:
    case, stored = _drive_loop(org, 30)
    assert stored[-2] <= stored[2] * 1.1, f"what the case stores grows with its age: {stored}"
    diagram = instance_diagram_of(org, case)
    assert {"c_start", "c_merge", "c_report", "c_count", "c_more", "c_end"} <= set(diagram["completed"])


def instance_diagram_of(runtime: Runtime, case: int) -> dict[str, object]:
    with runtime.db.read() as s:
        row = s.get(ProcessInstance, case)
        assert row is not None
        return instance_diagram(s, row)


def test_history_rows_and_the_tree_give_the_whole_path(org: Runtime, settings: Settings) -> None:
    case, _ = _drive_loop(org, 6)
    whole = Runtime(org.db, replace(settings, compact_above_tasks=10**9))  # never compacts: the library's path
    drive = Driver(whole)
    other = drive.start("report_loop", {"cycle": 0, "cycles": 6})
    for _ in range(6):
        drive.complete(other, "c_report", "hr", {})
    with org.db.read() as s:
        assert not s.scalars(select(PassedElement).where(PassedElement.instance_id == other)).first()
    assert _path(org, case) == _path(whole, other)
    assert _path(org, case).count("c_report") == 6


def _placement_months(runtime: Runtime, months: int) -> tuple[list[dict[str, object]], int]:
    """A placement driven month by month (its report cycle forks three branches that each end at an end event):
    the case data after each month, and how many tasks its workflow holds at the end."""
    load_host_people(runtime)
    drive = Driver(runtime)
    case = flow.started(drive)
    drive.complete(case, "induct", "host", flow.INDUCTION)
    drive.complete(case, "note_placement", "ocpe", {"ocpe_notice": {"noted": True}})
    seen: list[dict[str, object]] = []
    for month in range(5, 5 + months):
        flow.at(f"2026-{month:02}-01", 1)
        flow.poll(drive)
        flow.complete_newest(drive, case, "file_progress_report", "employee", flow.PROGRESS)
        flow.complete_newest(drive, case, "brief_secondee", "supervisor", flow.HOME_BRIEF)
        flow.complete_newest(drive, case, "brief_home", "host", flow.BRIEFING)
        seen.append(drive.instance(case).data)
    with runtime.db.read() as s:
        row = s.get(ProcessInstance, case)
        assert row is not None
        return seen, task_count(runtime.load(s, row).workflow)


def test_mp_l_a_placement_compacted_every_step_keeps_the_same_data_as_one_never_compacted(
        org: Runtime, settings: Settings) -> None:
    """The end join's twins (one per monthly branch) are folded, not lost: the case data month by month is the
    library's, and the workflow stops growing."""
    compacted, size = _placement_months(org, 4)
    whole_runtime = Runtime(org.db, replace(settings, compact_above_tasks=10**9))
    CLOCK.freeze(T0)  # the second placement runs the same calendar
    whole, whole_size = _placement_months(whole_runtime, 4)
    assert compacted == whole
    assert size < whole_size
