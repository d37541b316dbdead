"""Run one BPMN scenario twice: with bare SpiffWorkflow 3.2 (the reference) and through the product (deploy, start,
complete tasks, fire timers, send messages), and describe both runs the same way so that they can be compared.

A scenario says what to start, with what data, and what people and the outside world do: the data each human task
is completed with (by BPMN id), and optionally an ordered list of actions (complete a task, let the next timer fall
due, send a message or a signal). After the actions, both runs are driven to the end the same way: the open human
task with the smallest BPMN id is completed first; when none is open, the next timer falls due; when nothing is
left to do, the run stops (the case waits).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select

from engine.core.clock import CLOCK
from engine.core.errors import EngineError, Invalid
from engine.people.models import User
from engine.workflow.bundles import read_bundle
from engine.workflow.definitions import SPECS, deploy
from engine.workflow.models import HumanTask, PassedElement, ProcessInstance, Timer
from engine.workflow.runtime import Runtime
from engine.workflow.timers import TimerService
from tests.workflow.driver import Driver

#: At most this many steps (a task completed, a timer, a message) per run: no scenario may loop for ever.
MAX_STEPS = 80
#: Wall-clock budget of one run, in seconds.
RUN_SECONDS = 8.0
#: Who starts every case; lane-less tasks go to the starter (engine.workflow.assignment.resolve_lane).
STARTER = "hr"
#: What a scenario's `library_globals` may name.
LIBRARY_GLOBALS: dict[str, Any] = {"datetime": datetime, "timedelta": timedelta}
#: Who sends messages and signals from outside (engine.workflow.access.may_send_message: admins may).
SENDER = "admin"


# --------------------------------------------------------------------------- scenarios and outcomes


@dataclass(frozen=True)
class Step:
    """What a person or the outside world does: complete a task, let a timer fall due, send an event."""

    kind: str  # "complete" | "timer" | "message" | "signal"
    name: str = ""  # the task's BPMN id, or the message's or signal's name
    data: Mapping[str, Any] = field(default_factory=dict)


def complete(task: str, **data: Any) -> Step:
    return Step("complete", task, data)


def timer() -> Step:
    return Step("timer")


def message(name: str, **payload: Any) -> Step:
    return Step("message", name, payload)


def signal(name: str, **payload: Any) -> Step:
    return Step("signal", name, payload)


@dataclass(frozen=True)
class Scenario:
    """One run of one process: the files it needs, what it is started with and what happens to it.

    `uploads` are the deployments made (in order) through the product; the library parses all of them together.
    `start_message` starts the process by a message (its message start event) instead of with `start`.
    """

    uploads: tuple[tuple[str, ...], ...]
    process: str
    start: Mapping[str, Any] = field(default_factory=dict)
    tasks: Mapping[str, Mapping[str, Any] | Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    steps: tuple[Step, ...] = ()
    start_message: Step | None = None
    #: Names SpiffWorkflow's own test gives its script engine (TaskDataEnvironment globals), e.g. datetime.
    library_globals: tuple[str, ...] = ()
    #: Data keys whose value depends on the wall clock (a script's datetime.now()): compared for presence only.
    volatile: tuple[str, ...] = ()

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(name for upload in self.uploads for name in upload)

    def supplied(self) -> dict[str, list[Any]]:
        """Every value the harness gives a key (start data, task data, payloads): not written by the diagram."""
        out: dict[str, list[Any]] = {}
        sources: list[Mapping[str, Any]] = [self.start, *(s.data for s in self.steps)]
        if self.start_message is not None:
            sources.append(self.start_message.data)
        for value in self.tasks.values():
            sources.extend([value] if isinstance(value, Mapping) else value)
        for source in sources:
            for key, item in source.items():
                out.setdefault(key, []).append(jsonable(item))
        return out


@dataclass
class Outcome:
    """How a run went: completed / waiting / error (with the element blamed), the BPMN ids of the tasks completed
    in the order they completed, and the data the process ended (or stopped) with."""

    status: str
    path: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    element: str | None = None
    message: str = ""


class _TaskData:
    """The data each human task is completed with: a dict, or a list consumed in order (the last one repeats)."""

    def __init__(self, tasks: Mapping[str, Mapping[str, Any] | Sequence[Mapping[str, Any]]]) -> None:
        self.tasks = tasks
        self.used: dict[str, int] = {}

    def next(self, bpmn_id: str) -> dict[str, Any]:
        value = self.tasks.get(bpmn_id, {})
        if isinstance(value, Mapping):
            return dict(value)
        at = self.used.get(bpmn_id, 0)
        self.used[bpmn_id] = at + 1
        return dict(value[min(at, len(value) - 1)]) if value else {}


# --------------------------------------------------------------------------- describing a workflow


def jsonable(value: Any) -> Any:
    """Data as JSON would keep it (dates as ISO text, tuples as lists), so both runs compare alike."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def path_of(wf: BpmnWorkflow, passed: Sequence[tuple[float, str]] = ()) -> list[str]:
    """The BPMN ids of the workflow's completed tasks (subprocesses included), in the order they completed, with
    those compaction took out of it (the product's history rows: `passed`, as (when, element))."""
    done = [(float(at), -1, str(element)) for at, element in passed]
    done += [(t.last_state_change, n, t.task_spec.bpmn_id)
             for n, t in enumerate(wf.get_tasks(state=TaskState.COMPLETED)) if t.task_spec.bpmn_id is not None]
    return [bpmn_id for _, _, bpmn_id in sorted(done)]


def data_of(wf: BpmnWorkflow) -> dict[str, Any]:
    """The workflow's data, with what its last completed task saw over it."""
    data = dict(wf.data)
    if wf.last_task is not None:
        data.update(wf.last_task.data)
    out: dict[str, Any] = jsonable(data)
    return out


def timer_due(wf: BpmnWorkflow) -> datetime | None:
    """When the workflow's next waiting timer falls due, as SpiffWorkflow stored it."""
    dues: list[datetime] = []
    for task in wf.get_tasks(state=TaskState.WAITING):
        # A timer, or a timer among an event-based gateway's events (it keeps its value on the gateway's task).
        if not any(isinstance(d, TimerEventDefinition)
                   for d in _definitions(getattr(task.task_spec, "event_definition", None))):
            continue
        value = task._get_internal_data("event_value")
        if isinstance(value, dict) and value.get("next"):
            dues.append(datetime.fromisoformat(value["next"]))
        elif isinstance(value, str):
            dues.append(TimerEventDefinition.get_datetime(value))
    return min(dues) if dues else None


def let_time_pass_to(due: datetime) -> None:
    """Move the frozen clock just past `due` (SpiffWorkflow fires a timer once its time is strictly past)."""
    if due >= CLOCK.now():
        CLOCK.freeze(due + timedelta(seconds=1))


def _definitions(definition: Any) -> list[Any]:
    inner = getattr(definition, "event_definitions", None)  # an event-based gateway's or a multiple event's
    return [d for i in inner for d in _definitions(i)] if inner is not None else [definition]


def send_to_library(wf: BpmnWorkflow, step: Step) -> None:
    """Send a message or signal from outside, as SpiffArena does: to the waiting event of that name, its correlation
    keys computed from the payload."""
    kind = MessageEventDefinition if step.kind == "message" else SignalEventDefinition
    waiting = [d for task in wf.get_tasks(state=TaskState.WAITING)
               for d in _definitions(getattr(task.task_spec, "event_definition", None))
               if isinstance(d, kind)]
    definition = next((d for d in waiting if d.name == step.name), None)
    if definition is None:
        definition = kind(step.name)
    payload = dict(step.data)
    correlations: dict[str, Any] = {}
    if isinstance(definition, MessageEventDefinition) and definition.correlation_properties:
        correlations = definition.calculate_correlations(wf.script_engine, definition.correlation_properties,
                                                         payload)
    wf.send_event(BpmnEvent(definition, payload=payload, correlations=correlations))


@contextmanager
def _budget() -> Iterator[Callable[[], None]]:
    ends = time.monotonic() + RUN_SECONDS

    def check() -> None:
        if time.monotonic() > ends:
            raise TimeoutError(f"the run took more than {RUN_SECONDS} s")

    yield check


# --------------------------------------------------------------------------- the library


def library_specs(files: Mapping[str, bytes], process: str) -> tuple[Any, dict[str, Any]]:
    """SpiffWorkflow's own parse of the files (its validator on): the process's spec and those it calls."""
    parser = SpiffBpmnParser(validator=VALIDATOR)
    for name, content in files.items():
        root = etree.fromstring(content)
        if name.endswith(".dmn"):
            parser.add_dmn_xml(root, filename=name)
        else:
            parser.add_bpmn_xml(root, filename=name)
    return parser.get_spec(process), parser.get_subprocess_specs(process)


def run_library(scenario: Scenario, files: Mapping[str, bytes]) -> Outcome:
    """Run the scenario with bare SpiffWorkflow: its parser, its default script engine, tasks run in memory."""
    try:
        spec, subprocesses = library_specs({name: files[name] for name in scenario.files}, scenario.process)
    except SpiffWorkflowException as exc:
        return Outcome("refused", element=getattr(exc, "id", None), message=str(exc))
    environment = TaskDataEnvironment({name: LIBRARY_GLOBALS[name] for name in scenario.library_globals})
    wf = BpmnWorkflow(spec, subprocesses, script_engine=PythonScriptEngine(environment=environment))
    wf.get_tasks(spec_name="Start")[0].data.update(scenario.start)
    task_data = _TaskData(scenario.tasks)
    try:
        with _budget() as check:
            if scenario.start_message is not None:
                wf.do_engine_steps()
                send_to_library(wf, scenario.start_message)
            wf.do_engine_steps()
            for step in scenario.steps:
                check()
                _library_step(wf, step)
                wf.do_engine_steps()
            for _ in range(MAX_STEPS):
                check()
                if wf.is_completed():
                    break
                ready = sorted(wf.get_tasks(state=TaskState.READY, manual=True), key=lambda t: t.task_spec.bpmn_id)
                due = timer_due(wf)
                if ready:
                    ready[0].set_data(**task_data.next(ready[0].task_spec.bpmn_id))
                    ready[0].run()
                elif due is not None:
                    let_time_pass_to(due)
                    wf.refresh_timers()
                else:
                    break
                wf.do_engine_steps()
    except Exception as exc:  # SpiffWorkflow raises its own kinds, and plain TypeErrors on bad data
        task = getattr(exc, "task", None)
        spec_ = getattr(task, "task_spec", None) or getattr(exc, "task_spec", None)
        return Outcome("error", path_of(wf), data_of(wf), getattr(spec_, "bpmn_id", None),
                       f"{type(exc).__name__}: {exc}")
    return Outcome("completed" if wf.is_completed() else "waiting", path_of(wf), data_of(wf))


def _library_step(wf: BpmnWorkflow, step: Step) -> None:
    if step.kind == "complete":
        ready = [t for t in wf.get_tasks(state=TaskState.READY, manual=True) if t.task_spec.bpmn_id == step.name]
        assert ready, f"library: no ready task {step.name}"
        ready[0].set_data(**step.data)
        ready[0].run()
    elif step.kind == "timer":
        due = timer_due(wf)
        assert due is not None, "library: no timer is waiting"
        let_time_pass_to(due)
        wf.refresh_timers()
    else:
        send_to_library(wf, step)


# --------------------------------------------------------------------------- the product


def deploy_uploads(runtime: Runtime, scenario: Scenario, files: Mapping[str, bytes]) -> None:
    """Deploy each upload of the scenario as the studio would (raises Invalid when one is refused)."""
    for upload in scenario.uploads:
        with runtime.db.unit_of_work() as uow:
            deploy(uow.session, read_bundle({name: files[name] for name in upload}, None), "test")
            uow.commit()


class Stuck(Exception):
    """The case waits on a task no one may work."""


class ProductRun:
    """Drive one case through the product's services, as the people the tasks are assigned to; with `restore`,
    every step starts from nothing but the database (tests.workflow.driver.Driver)."""

    def __init__(self, runtime: Runtime, scenario: Scenario, restore: bool) -> None:
        self.driver = Driver(runtime, restore=restore)
        self.scenario = scenario
        self.task_data = _TaskData(scenario.tasks)
        self.instance_id = 0
        self._users: dict[str, User] = {}

    @property
    def runtime(self) -> Runtime:
        return self.driver.runtime

    def fresh(self) -> Runtime:
        return self.driver._fresh()

    def user(self, username: str) -> User:
        if username not in self._users or self.driver.restore:
            self._users[username] = self.driver.user(username)
        return self._users[username]

    def run(self) -> Outcome:
        try:
            with _budget() as check:
                if self.scenario.start_message is not None:
                    step = self.scenario.start_message
                    started = self.fresh().start_by_message(self.user(STARTER), step.name, dict(step.data))
                    assert len(started) == 1, started
                    self.instance_id = started[0]
                else:
                    self.instance_id = self.driver.start(self.scenario.process, dict(self.scenario.start), STARTER)
                for step in self.scenario.steps:
                    check()
                    self._step(step)
                for _ in range(MAX_STEPS):
                    check()
                    if self.status() != "running":
                        break
                    tasks = self.open_tasks()
                    if tasks:
                        self._complete(tasks[0], self.task_data.next(tasks[0].name))
                    elif self.next_timer() is not None:
                        self._fire_next_timer()
                    else:
                        break
        except EngineError as exc:
            problem = exc.problems[0] if exc.problems else None
            return self.outcome("error", problem.element if problem else None, str(exc))
        except Stuck as exc:
            return self.outcome("waiting", None, str(exc))
        return self.outcome("completed" if self.status() == "completed" else "waiting")

    # ---------------------------------------------------------------- steps

    def _step(self, step: Step) -> None:
        if step.kind == "complete":
            tasks = [t for t in self.open_tasks() if t.name == step.name]
            assert tasks, f"product: no open task {step.name}; open: {[t.name for t in self.open_tasks()]}"
            self._complete(tasks[0], dict(step.data))
        elif step.kind == "timer":
            assert self.next_timer() is not None, "product: no timer is waiting"
            self._fire_next_timer()
        else:
            self.fresh().send_message(self.user(SENDER), self.instance_id, step.name, dict(step.data))

    def _complete(self, task: HumanTask, data: dict[str, Any]) -> None:
        worker = self.worker_of(task)
        if worker is None:
            raise Stuck(f"task {task.name} waits in group {task.assigned_group!r}: no one may work it")
        self.fresh().complete_task(self.user(worker), task.id, data)

    def _fire_next_timer(self) -> None:
        due = self.next_timer()
        assert due is not None
        let_time_pass_to(due)
        TimerService(self.fresh()).poll()
        with self.runtime.db.read() as s:
            failed = s.scalars(select(Timer).where(Timer.instance_id == self.instance_id,
                                                   Timer.last_error.is_not(None))).first()
            if failed is not None:
                raise Invalid(f"the timer {failed.element} failed: {failed.last_error}", [])

    # ---------------------------------------------------------------- reading the case

    def status(self) -> str:
        return self.driver.instance(self.instance_id).status

    def open_tasks(self) -> list[HumanTask]:
        with self.runtime.db.read() as s:
            rows = list(s.scalars(select(HumanTask).where(HumanTask.instance_id == self.instance_id,
                                                          HumanTask.state == "open")
                                  .order_by(HumanTask.name, HumanTask.id)))
            for row in rows:
                s.expunge(row)
            return rows

    def next_timer(self) -> datetime | None:
        with self.runtime.db.read() as s:
            due: datetime | None = s.scalar(select(Timer.due_at).where(
                Timer.instance_id == self.instance_id, Timer.state == "waiting").order_by(Timer.due_at).limit(1))
        if due is not None and due.tzinfo is None:  # SQLite gives naive UTC
            due = due.replace(tzinfo=CLOCK.now().tzinfo)
        return due

    def worker_of(self, task: HumanTask) -> str | None:
        """The login who may work the task: its assignee's, or a member of its group (None: nobody may)."""
        with self.runtime.db.read() as s:
            if task.assignee_id is not None:
                return s.scalar(select(User.username).where(User.person_id == task.assignee_id))
        return {"hr": "hr", "ocpe": "ocpe"}.get(task.assigned_group or "")

    def outcome(self, status: str, element: str | None = None, message: str = "") -> Outcome:
        if not self.instance_id:
            return Outcome(status, element=element, message=message)
        with self.runtime.db.read() as s:
            row = s.get(ProcessInstance, self.instance_id)
            assert row is not None
            wf = self.runtime.load(s, row).workflow
            passed = list(s.execute(select(PassedElement.changed_at, PassedElement.element).where(
                PassedElement.instance_id == row.id, PassedElement.state == "completed")).all())
            return Outcome(status, path_of(wf, passed), data_of(wf), element, message)


def run_product(runtime: Runtime, scenario: Scenario, restore: bool) -> Outcome:
    """Run the scenario through the product (already deployed)."""
    SPECS.clear()
    run = ProductRun(runtime, scenario, restore)
    try:
        return run.run()
    finally:
        if run.runtime is not runtime:
            run.runtime.db.dispose()


def differences(scenario: Scenario, library: Outcome, product: Outcome) -> list[str]:
    """How the product's run differs from SpiffWorkflow's: status, the element an error is blamed on, the path, and
    the data the diagram writes (a key the harness supplied counts only where a run holds another value for it)."""
    found: list[str] = []
    if library.status != product.status:
        found.append(f"status: library {library.status} ({library.message[:200]}), "
                     f"product {product.status} ({product.message[:200]})")
    if library.status == "error" == product.status:
        if library.element != product.element:
            found.append(f"error element: library {library.element}, product {product.element}")
        return found
    if library.path != product.path:
        found.append(f"path: library {library.path}, product {product.path}")
    supplied = scenario.supplied()
    for key in sorted(set(library.data) | set(product.data)):
        lib, prod = library.data.get(key, _MISSING), product.data.get(key, _MISSING)
        if lib == prod or (key in scenario.volatile and _MISSING not in (lib, prod)):
            continue
        if key in supplied and all(v is _MISSING or v in supplied[key] for v in (lib, prod)):
            continue
        found.append(f"data[{key!r}]: library {_shown(lib)}, product {_shown(prod)}")
    return found


_MISSING: Any = type("Missing", (), {"__repr__": lambda self: "<missing>"})()


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."
