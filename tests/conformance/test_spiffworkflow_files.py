"""SpiffWorkflow's own test diagrams (tests/conformance/spiffworkflow, unmodified, LGPL-3.0) run through the product
as bare SpiffWorkflow 3.2 runs them (issue 18: "Run BPMN made by others as SpiffWorkflow does").

Each case runs one process twice: with SpiffWorkflow's parser and default script engine in memory (the reference),
and through the product (deploy, start, complete the open tasks as the people they are assigned to, fire timers
through the timer service, send messages and signals from outside), straight through and again with every step
starting from nothing but the database. Both runs must take the same path (the BPMN ids of the tasks completed, in
order) and end with the same data the diagram writes; or the product refuses the file at deploy, naming the element
and a reason that holds (security, no connector for a service task, a file not shipped, a lane that is no role).
Where the product diverges from SpiffWorkflow the case is an xfail(strict=True) whose reason says what diverges:
issue 18 fixes them, and the xfail then fails until the mark is removed. docs/conformance.md lists every case.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine.core.clock import CLOCK
from engine.core.errors import Invalid
from engine.workflow.demo import load_people
from engine.workflow.runtime import Runtime
from tests.conformance.runners import (
    Scenario,
    complete,
    deploy_uploads,
    differences,
    message,
    run_library,
    run_product,
    signal,
    timer,
)
from tests.conftest import T0, sqlite_database

HERE = Path(__file__).parent
FILES_DIR = HERE / "spiffworkflow"
DOCS = HERE.parent.parent / "docs" / "conformance.md"
#: Every file copied from SpiffWorkflow (two names are in both its bpmn/ and spiff/ folders: see Case.folder).
FILES: list[Path] = [p for p in sorted(FILES_DIR.rglob("*")) if p.suffix in (".bpmn", ".xml", ".dmn")]

TASK_DATA_UNDECLARED = ("issue 18: a task without a form takes only the values its diagram declares it produces "
                        "(ioSpecification outputs, data output associations, the output item, variableName) and "
                        "answers 422 naming any other; SpiffWorkflow keeps whatever the task is completed with, which "
                        "a condition here reads")


@dataclass(frozen=True)
class Case:
    """One scenario of one file (or group of files) and what the product does with it.

    `refused`: the product refuses the deploy, for a reason that holds; a word of the message, and `element` the id
    the problem must name. `library_refuses`: SpiffWorkflow's parser refuses it too. `diverges`: the xfail reason.
    """

    id: str
    what: str
    scenario: Scenario
    refused: str | None = None
    element: str | None = None
    library_refuses: bool = False
    diverges: str | None = None
    diverges_restored: str | None = None  # the xfail reason when every step starts from the database alone
    folder: str | None = None  # "bpmn" or "spiff", where SpiffWorkflow has two files of the name


def one(file: str, process: str, **kwargs: Any) -> Scenario:
    return Scenario(uploads=((file,),), process=process, **kwargs)


def together(files: tuple[str, ...], process: str, **kwargs: Any) -> Scenario:
    return Scenario(uploads=(files,), process=process, **kwargs)


CALLS = ("call_activity_end_event.bpmn", "call_activity_call_activity.bpmn")
TOMORROW = "2026-03-03T00:00:00+00:00"

CASES: list[Case] = [
    # ------------------------------------------------------------------ gateways
    Case("exclusive_gateway_no_default-greater", "exclusive gateway without default, untyped task, terminate end",
         one("exclusive_gateway_no_default.bpmn", "NoDefaultGateway", start={"x": 2})),
    Case("exclusive_gateway_no_default-no_match", "exclusive gateway where no condition holds: an error at the gateway",
         one("exclusive_gateway_no_default.bpmn", "NoDefaultGateway", start={"x": 1})),
    Case("inclusive_gateway-two_paths", "inclusive gateway taking two conditional paths, joined; user task",
         one("inclusive_gateway.bpmn", "main", start={"v": 0, "u": 1, "w": 1})),
    Case("inclusive_gateway-default", "inclusive gateway taking its default path",
         one("inclusive_gateway.bpmn", "main", start={"v": -1, "u": -1, "w": -1})),
    Case("inclusive_gateway-task_data", "the user task supplies the data the gateway reads (SpiffWorkflow's test)",
         one("inclusive_gateway.bpmn", "main", tasks={"set_data": {"v": 0, "u": 1, "w": 1}}),
         diverges=TASK_DATA_UNDECLARED),
    Case("ParallelOrder", "parallel split and join of four untyped tasks",
         one("ParallelOrder.bpmn", "ParallelOrder")),
    Case("gateway_loop_input", "parallel gateway inside a loop closed by an exclusive gateway",
         one("gateway_loop_input.bpmn", "main")),
    Case("Parallel.camunda", "parallel split and join of user tasks",
         one("Parallel.camunda.bpmn20.xml", "Process_1hb021r")),
    Case("event-gateway-timer", "event-based gateway: the timer wins over two messages",
         one("event-gateway.bpmn", "Process_0pvx19v")),
    Case("event-gateway-message", "event-based gateway: a message from outside wins over the timer",
         one("event-gateway.bpmn", "Process_0pvx19v", steps=(message("message_1"),))),
    Case("Approvals", "call activities to processes of the same file, parallel approvals, first approval wins",
         one("Approvals.bpmn", "Approvals")),
    # ------------------------------------------------------------------ timers
    Case("timer", "intermediate timer (duration)", one("timer.bpmn", "timer")),
    Case("timer-date-start", "intermediate timer (date) set by a script using datetime and timedelta",
         one("timer-date-start.bpmn", "date_timer", library_globals=("datetime", "timedelta"),
             volatile=("futuredate",))),
    Case("Timer-Intermediate", "intermediate timer (date) from the case data",
         one("Timer-Intermediate.bpmn20.xml", "sid-909dfba4-15dd-47b3-b7d4-88330891429a",
             start={"due_time": TOMORROW})),
    Case("boundary-no_timer", "interrupting boundary timer on a subprocess, the subprocess ends first",
         one("boundary.bpmn", "boundary_event", start={"answer": "Yes"})),
    Case("boundary-timer", "interrupting boundary timer on a subprocess fires",
         one("boundary.bpmn", "boundary_event", start={"answer": "No"},
             steps=(complete("Activity_09c27ms"), timer()))),
    Case("boundary_timer_on_task", "non-interrupting boundary timer on a user task fires, a script runs",
         one("boundary_timer_on_task.bpmn", "test_timer", steps=(timer(),))),
    Case("timer-non-interrupt-boundary", "non-interrupting boundary timer on a subprocess opens a second task",
         one("timer-non-interrupt-boundary.bpmn", "NonInterruptTimer", start={"work_done": "Yes"},
             steps=(timer(),))),
    Case("reset_with_boundary_event-timer", "interrupting boundary timer (P14D) on a manual task fires",
         one("reset_with_boundary_event.bpmn", "token", steps=(timer(),))),
    Case("reset_with_boundary_event-no_timer", "manual task done before its boundary timer; embedded subprocess",
         one("reset_with_boundary_event.bpmn", "token")),
    Case("timer-cycle", "cycle boundary timer whose script calls custom_function(), which only SpiffWorkflow's "
         "own test harness defines", one("timer-cycle.bpmn", "timer"),
         refused="function 'custom_function' does not exist", element="Refill_Coffee"),
    # ------------------------------------------------------------------ loops and multi-instance
    Case("standard_loop-maximum", "standard loop on an untyped task stopped by loopMaximum",
         one("standard_loop.bpmn", "main", start={"done": False})),
    Case("standard_loop-condition", "standard loop stopped by its condition, set by the task (SpiffWorkflow's test)",
         one("standard_loop.bpmn", "main", start={"done": False}, tasks={"any_task": {"done": True}}),
         diverges=TASK_DATA_UNDECLARED),
    Case("standard_loop_invalid", "standard loop with neither a maximum nor a condition",
         one("standard_loop_invalid.bpmn", "main"), refused="loopMaximum or loopCondition", element="any_task",
         library_refuses=True),
    Case("parallel_multiinstance_cardinality", "parallel multi-instance by cardinality; each instance's task sets "
         "its output item (SpiffWorkflow's test)",
         one("parallel_multiinstance_cardinality.bpmn", "main",
             tasks={"any_task": [{"output_item": 0}, {"output_item": 2}, {"output_item": 4}]})),
    Case("parallel_multiinstance_loop_input", "parallel multi-instance over an input collection (a dict)",
         one("parallel_multiinstance_loop_input.bpmn", "main", start={"input_data": {"a": 1, "b": 2, "c": 3}},
             tasks={"any_task": [{"output_item": 2}, {"output_item": 4}, {"output_item": 6}]})),
    Case("sequential_multiinstance_cardinality", "sequential multi-instance by cardinality",
         one("sequential_multiinstance_cardinality.bpmn", "main",
             tasks={"any_task": [{"output_item": 0}, {"output_item": 2}, {"output_item": 4}]})),
    Case("sequential_multiinstance_loop_input", "sequential multi-instance over an input collection (a list)",
         one("sequential_multiinstance_loop_input.bpmn", "main", start={"input_data": [1, 2, 3]},
             tasks={"any_task": [{"output_item": 2}, {"output_item": 4}, {"output_item": 6}]})),
    Case("Multi-Instance", "multi-instance user task by cardinality (no collections)",
         one("Multi-Instance.bpmn20.xml", "Process_0xa1l01")),
    Case("spiff_multiinstance", "multi-instance with a pre-script and a post-script on the whole activity",
         one("spiff_multiinstance.bpmn", "Process_1", start={"input_data": [1, 2, 3]},
             tasks={"any_task": [{"output_item": 4}, {"output_item": 6}, {"output_item": 8}]})),
    Case("script_on_mi", "multi-instance with a pre-script and a post-script on each instance",
         one("script_on_mi.bpmn", "Process_1", start={"input_data": [1, 2, 3]},
             tasks={"any_task": [{"output_item": 4}, {"output_item": 6}, {"output_item": 8}]})),
    # ------------------------------------------------------------------ subprocesses and call activities
    Case("event-subprocess", "signal thrown in the process starts its (interrupting) event subprocess",
         one("event-subprocess.bpmn", "main", start={"v1": True, "v2": False})),
    Case("event-subprocess-outside_signal", "a signal sent from outside does not reach the event subprocess's "
         "start event: SpiffWorkflow says it is not waiting for it, the product answers 404 alike",
         one("event-subprocess.bpmn", "main", steps=(signal("start_sub"),))),
    Case("io_spec", "call activity whose called process has an ioSpecification (caller and callee uploaded together)",
         together(("io_spec_parent.bpmn", "io_spec.bpmn"), "parent")),
    Case("io_spec-two_uploads", "the called process deployed first, its caller in a later upload",
         Scenario(uploads=(("io_spec.bpmn",), ("io_spec_parent.bpmn",)), process="parent")),
    Case("io_spec_on_task", "ioSpecification on a manual task: the person supplies the outputs",
         one("io_spec_on_task.bpmn", "main", tasks={"any_task": {"out_1": 1, "out_2": "bye"}})),
    Case("call_activity_end_event", "call activity; the callee deletes a variable of the caller",
         together(CALLS, "Process_8200379")),
    Case("call_activity_with_error", "call activity whose callee fails (NameError)",
         together(("call_activity_with_error.bpmn", "call_activity_call_activity.bpmn"), "ErroringBPMN")),
    Case("prescript_postscript_parent", "call activity with a pre-script and a post-script mapping its data",
         together(("prescript_postscript_parent.bpmn", "prescript_postscript_call_activity.bpmn"), "parent",
                  start={"old": "hello"})),
    # ------------------------------------------------------------------ messages, signals, escalations, errors
    Case("Messages", "intermediate message catch event, the message sent from outside",
         one("Messages.bpmn20.xml", "sid-4a1f10ab-316f-4cd8-836d-65aa3d178fff", steps=(message("Test Message"),))),
    Case("multiple-start", "start event with two message definitions, started by one message",
         one("multiple-start.bpmn", "main", start_message=message("message_1"))),
    Case("start_event_split", "two message start events, started by the first",
         one("start_event_split.bpmn", "main", start_message=message("message_1"))),
    Case("waiting_event", "receive task with a correlation key in a subprocess, the message sent from outside",
         one("waiting_event.bpmn", "main", steps=(message("B", uid=1, data="asdf"),))),
    Case("return_to_event", "message catch event reached again after a loop back through a manual task",
         one("return_to_event.bpmn", "return_to_event", start={"repeat": False},
             steps=(message("basic_message"),))),
    Case("collaboration", "send task (a message out of the case), then a message catch correlated by a key",
         one("collaboration.bpmn", "process_buddy", start={"lover_name": "Peggy"},
             steps=(message("Love Letter Response", from_name="Peggy", other_nonsense=1001),))),
    Case("boundary_event_split", "signal boundary events on untyped tasks after an exclusive gateway",
         one("boundary_event_split.bpmn", "Process_0ymnx41")),
    Case("signal_event_payload", "signal thrown with a payload expression and caught into a variable",
         one("signal_event_payload.bpmn", "event_test", start={"v1": 1, "v2": 2, "v3": 3})),
    Case("signal_event_payload-outside_signal", "the signal's catch event gets it, with its payload, from outside "
         "while the manual task is open",
         one("signal_event_payload.bpmn", "event_test", start={"v1": 1, "v2": 2, "v3": 3},
             steps=(signal("Signal_1624y58", r1="a", r2="b"),))),
    Case("uncaught_escalation", "escalation end event no one catches", one("uncaught_escalation.bpmn", "top_level")),
    Case("escalation_event_payload", "escalation end event caught by a boundary event, with its payload",
         one("escalation_event_payload.bpmn", "event_test", start={"escalation": True, "payload": "ERROR!"})),
    Case("error_event_payload", "error end event caught by a boundary event, with its payload",
         one("error_event_payload.bpmn", "event_test", start={"error": True, "payload": "ERROR!"})),
    Case("error_event_payload-no_error", "the subprocess ends normally: the error boundary event is cancelled",
         one("error_event_payload.bpmn", "event_test", start={"error": False, "payload": "ERROR!"})),
    Case("conditional_event-intermediate", "intermediate conditional event on a data object",
         one("conditional_event.bpmn", "intermediate", start={"task_a_done": True})),
    Case("conditional_event-boundary", "conditional boundary event on a data object interrupts a task",
         one("conditional_event.bpmn", "boundary", start={"task_c_done": True})),
    Case("conditional_event-task_data", "the task sets the data object the condition reads (SpiffWorkflow's test)",
         one("conditional_event.bpmn", "intermediate", tasks={"task_a": {"task_a_done": True}})),
    # ------------------------------------------------------------------ data objects, scripts, tasks
    Case("data_object", "data objects read and written by user tasks and a subprocess",
         one("data_object.bpmn", "Process", start={"obj_1": "hello"}), folder="bpmn"),
    Case("data_object-task_data", "the user task writes the data object (SpiffWorkflow's test)",
         one("data_object.bpmn", "Process", tasks={"generate_data": {"obj_1": "hello"}}), folder="bpmn"),
    Case("data_object_gateway", "exclusive gateway reading a data object",
         one("data_object_gateway.bpmn", "main", start={"val": True})),
    Case("prescript_postscript", "pre-script and post-script on an untyped task",
         one("prescript_postscript.bpmn", "Process_1", start={"a": 1, "b": 2})),
    Case("spiff-data_object", "data object with a spiffworkflow:category",
         one("data_object.bpmn", "Process", start={"obj_1": "hello", "obj_2": "world"}), folder="spiff"),
    Case("script-start", "script task and manual task in parallel", one("script-start.bpmn", "Process_cozt5fu")),
    Case("ScriptTest", "script tasks with dict and list comprehensions", one("ScriptTest.bpmn", "Process_1l85e0n")),
    Case("human_task_metadata", "user task with spiffworkflow:taskMetadataValues",
         one("human_task_metadata.bpmn", "Process_human_task_metadata")),
    Case("business_rule_task", "business rule task evaluating a DMN decision table (diagram and table together)",
         together(("business_rule_task.bpmn", "business_rules.dmn"), "Process_bd2e724")),
    Case("no-tasks", "a start event and an end event", one("no-tasks.bpmn", "no_tasks")),
    Case("bpmn-service_task", "service task without an operator",
         one("service_task.bpmn", "service_task_example1"), refused="service tasks call connectors",
         element="Activity_1inxqgx", library_refuses=True, folder="bpmn"),
    Case("spiff-service_task", "service tasks calling connectors (spiffworkflow:serviceTaskOperator)",
         one("service_task.bpmn", "service_task_example1"), refused="calls the connector 'bamboohr/GetPayRate'",
         element="Activity-1inxqgx", folder="spiff"),
    Case("transaction", "transaction subprocess of user tasks completed normally; a script print()s",
         one("transaction.bpmn", "Main_Process", start={"value": "x", "quantity": 2})),
    Case("transaction-cancel", "cancel end event in a transaction, caught by a cancel boundary event",
         one("transaction.bpmn", "Main_Process", start={"value": "", "quantity": 2})),
    Case("transaction-error", "error end event in a transaction, caught by the boundary event of its error",
         one("transaction.bpmn", "Main_Process", start={"value": "x", "quantity": -1})),
    Case("transaction-error_none", "error end event without an error, caught by the catch-all boundary event",
         one("transaction.bpmn", "Main_Process", start={"value": "x", "quantity": 0})),
    Case("user_task_variable", "user task whose form (pizza_form.json) is not shipped with the diagram",
         one("user_task_variable.bpmn", "one"), refused="form 'pizza_form.json'", element="user_task_two"),
    Case("lanes", "user and manual tasks in lanes A, B and C", one("lanes.bpmn", "lanes"),
         refused="does not resolve to a role", element="Activity_A1"),
    Case("script_task_with_unit_tests", "script that calls locals()",
         one("script_task_with_unit_tests.bpmn", "Process_ScriptTaskWithUnitTests"),
         refused="name 'locals' is not allowed", element="script_with_unit_test_id"),
    Case("data_store", "data store without an implementation", one("data_store.bpmn", "JustDataStoreRef"),
         refused="data stores are not supported", element="variableTiedToDataStore", library_refuses=True),
]


def _paths(case: Case) -> list[Path]:
    """The copied files a case deploys (by name; `folder` says which of two files of one name)."""
    paths: list[Path] = []
    for name in case.scenario.files:
        matches = [p for p in FILES if p.name == name and (case.folder is None or p.parts[-3] == case.folder)]
        assert len(matches) == 1, (case.id, name, matches)
        paths.append(matches[0])
    return paths


def _files(case: Case) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in _paths(case)}


def _param(case: Case, restore: bool | None = None) -> Any:
    reason = case.diverges or (case.diverges_restored if restore else None)
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    if restore is None:
        return pytest.param(case, id=case.id, marks=marks)
    return pytest.param(case, restore, id=f"{case.id}-{'restored' if restore else 'straight'}", marks=marks)


SAME = [_param(c, restore) for c in CASES if c.refused is None for restore in (False, True)]
REFUSED = [_param(c) for c in CASES if c.refused is not None]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: these tests are about reading SpiffWorkflow's files, not about the database backend."""
    return sqlite_database(tmp_path / "spiffworkflow.sqlite3")


@pytest.fixture
def people(runtime: Runtime) -> Runtime:
    """The demo people and logins only: each case deploys its own files."""
    load_people(runtime)
    return runtime


@pytest.mark.parametrize(("case", "restore"), SAME)
def test_conformance_each_file_runs_as_spiffworkflow_does(case: Case, restore: bool, people: Runtime) -> None:
    files = _files(case)
    CLOCK.freeze(T0)
    library = run_library(case.scenario, files)
    assert library.status != "refused", f"SpiffWorkflow refuses it: {library.message}"
    CLOCK.freeze(T0)
    deploy_uploads(people, case.scenario, files)
    product = run_product(people, case.scenario, restore)
    found = differences(case.scenario, library, product)
    assert not found, "\n".join([f"{case.id}: the product diverges from SpiffWorkflow", *found])


@pytest.mark.parametrize("case", REFUSED)
def test_conformance_each_refused_file_names_the_element_and_why(case: Case, people: Runtime) -> None:
    files = _files(case)
    library = run_library(case.scenario, files)
    if case.library_refuses:
        assert library.status == "refused", library
    with pytest.raises(Invalid) as refused:
        deploy_uploads(people, case.scenario, files)
    problems = refused.value.problems
    assert any(p.element == case.element and case.refused in p.message for p in problems), problems
    assert all(p.element and len(p.message) > 10 for p in problems), problems


def test_conformance_every_file_is_used_and_unmodified() -> None:
    """Every copied file is run by a case, and the README names its source (a file added but never run, or run
    but not listed, fails here)."""
    used = {path for case in CASES for path in _paths(case)}
    assert used == set(FILES), sorted(str(p) for p in set(FILES) ^ used)
    readme = (FILES_DIR / "README.md").read_text(encoding="utf-8")
    for path in FILES:
        assert f"`{path.relative_to(FILES_DIR).as_posix()}`" in readme, path
    assert "GNU LESSER GENERAL PUBLIC LICENSE" in (FILES_DIR / "LICENSE").read_text(encoding="utf-8")


def test_conformance_the_results_table_lists_every_case() -> None:
    table = DOCS.read_text(encoding="utf-8")
    missing = [c.id for c in CASES if f"`{c.id}`" not in table]
    assert not missing, f"docs/conformance.md does not list {missing}"
