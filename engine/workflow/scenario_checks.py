"""What each kind of scenario step does and checks (issue 20): the runner (engine.workflow.scenarios) calls
`Check.run` per step. A check that does not hold raises CheckFailed saying what was expected and what was found."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from SpiffWorkflow.bpmn.specs.defaults import EndEvent
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select

from engine.core.clock import CLOCK
from engine.core.errors import EngineError
from engine.people.models import Person
from engine.workflow import models
from engine.workflow.definitions import SPECS
from engine.workflow.models import HumanTask, Notification, ProcessInstance
from engine.workflow.registry import REGISTRY
from engine.workflow.runtime import Runtime
from engine.workflow.scenario_setup import user_named
from engine.workflow.timers import TimerService


class CheckFailed(Exception):
    """A step's expectation did not hold: the message says what was expected and what was found."""


def parse_when(text: str) -> datetime:
    """A scenario's date (00:00 UTC) or date and time (UTC unless it names its offset)."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass
class Snapshot:
    """A case as the scenario's result reports it."""

    status: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    path: list[str] = field(default_factory=list)
    ended_at: str | None = None


class ScenarioState:
    """The cases a scenario started (the newest is the one its steps act on) and the runtime they run in."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.cases: list[int] = []
        self.refused = False  #: the scenario's start was refused, as it expected

    @property
    def case(self) -> int:
        if not self.cases:
            raise CheckFailed("no case is running: the start was refused or never made")
        return self.cases[-1]

    def snapshot(self) -> Snapshot:
        if not self.cases:
            return Snapshot(status="refused" if self.refused else None)
        with self.runtime.db.read() as s:
            row = s.get(ProcessInstance, self.case)
            assert row is not None
            path, ended = self._path(s, row)
            return Snapshot(row.status, dict(row.data or {}), path, ended if row.status == "completed" else None)

    def _path(self, s: Any, row: ProcessInstance) -> tuple[list[str], str | None]:
        """The elements the case passed, in order: history rows compaction kept (when the engine keeps them) and
        the finished tasks still in its workflow; and the last end event of its top-level process."""
        passed: list[tuple[float, str]] = []
        history = getattr(models, "PassedElement", None)  # engine.workflow.compaction's rows (issue 21)
        if history is not None:
            passed += [(float(r.changed_at), str(r.element)) for r in s.scalars(select(history).where(
                history.instance_id == row.id, history.state == "completed"))]
        workflow = self.runtime.load(s, row).workflow
        for task in workflow.get_tasks(state=TaskState.COMPLETED):
            bpmn_id = getattr(task.task_spec, "bpmn_id", None)
            if bpmn_id:
                passed.append((float(task.last_state_change), str(bpmn_id)))
        path = [element for _, element in sorted(passed, key=lambda p: p[0])]
        spec = SPECS.get(self.runtime.definition_of(s, row)).spec
        ends = {name for name, t in spec.task_specs.items() if isinstance(t, EndEvent)}
        ended = next((e for e in reversed(path) if e in ends), None)
        return path, ended


class Check:
    """One step run against the scenario's state with the runtime the runner gives it."""

    def __init__(self, runtime: Runtime, state: ScenarioState) -> None:
        self.runtime = runtime
        self.state = state

    def run(self, kind: str, body: Any) -> str:
        handler = getattr(self, f"_{kind}", None)
        if handler is None:
            raise CheckFailed(f"no such kind of step: {kind}")
        return str(handler(body))

    # ------------------------------------------------------------------ acting

    def _at(self, when: str) -> str:
        target = parse_when(when)
        if target < CLOCK.now():
            raise CheckFailed(f"the clock only moves forward: it is {CLOCK.now().isoformat()}, not back to {when}")
        CLOCK.freeze(target)
        return f"clock at {target.isoformat()}"

    def _fire_timers(self, _: Any) -> str:
        fired = TimerService(self.runtime).poll()
        return f"{fired} timer(s) fired"

    def _start(self, body: Mapping[str, Any]) -> str:
        if body.get("at"):
            self._at(str(body["at"]))
        user = user_named(self.runtime, body["as"])
        refused = _refusal(body.get("refused"), lambda: self.runtime.start(user, body["process"],
                                                                            dict(body.get("data") or {})))
        if isinstance(refused, str):
            self.state.refused = True
            return refused
        self.state.cases.append(int(refused))
        return f"started {body['process']} case {refused} as {body['as']}"

    def _complete(self, body: Mapping[str, Any]) -> str:
        task = self._open_task(body["task"], body.get("which", "oldest"))
        user = user_named(self.runtime, body["as"])
        refused = _refusal(body.get("refused"), lambda: self.runtime.complete_task(
            user, task.id, dict(body.get("data") or {})))
        return refused if isinstance(refused, str) else f"{body['task']} completed by {body['as']}"

    def record(self, body: Mapping[str, Any]) -> str:
        """A record a policy package declares (its scenario_actions), made as `as`."""
        action = REGISTRY.scenario_action(body["kind"])
        if action is None:
            raise CheckFailed(f"no loaded policy declares a scenario record of the kind {body['kind']!r}")
        user = user_named(self.runtime, body["as"])
        case = self.state.cases[-1] if self.state.cases else None
        refused = _refusal(body.get("refused"), lambda: action(self.runtime, user, case, dict(body.get("data") or {})))
        return refused if isinstance(refused, str) else f"{body['kind']} recorded by {body['as']}"

    _record = record

    def _people_recorded(self, usernames: list[str]) -> str:
        """Tell the policies these people's records were saved, as the people pages do; a case one starts for
        them is the scenario's case from now on (D19-3.3: a new starter's agreement set-up)."""
        started: list[int] = []
        for outcome in REGISTRY.people_recorded(self.runtime, None, "scenario", usernames):
            started += [outcome.cases[u] for u in usernames if u in outcome.cases]
        if not started:
            raise CheckFailed(f"no policy started a case for {', '.join(usernames)}")
        self.state.cases += started
        return f"case(s) {', '.join(map(str, started))} started for {', '.join(usernames)}"

    # ------------------------------------------------------------------ expecting

    def _open_task(self, name: str, which: str) -> HumanTask:
        tasks = self._tasks(name)
        if not tasks:
            raise CheckFailed(f"no open task {name}; open: {', '.join(self._open_names()) or 'none'}")
        return tasks[-1] if which == "newest" else tasks[0]

    def _tasks(self, name: str) -> list[HumanTask]:
        with self.runtime.db.read() as s:
            rows = list(s.scalars(select(HumanTask).where(
                HumanTask.instance_id == self.state.case, HumanTask.name == name, HumanTask.state == "open")
                .order_by(HumanTask.id)))
            for row in rows:
                _ = row.assignee
                s.expunge(row)
            return rows

    def _open_names(self) -> list[str]:
        with self.runtime.db.read() as s:
            return list(s.scalars(select(HumanTask.name).where(
                HumanTask.instance_id == self.state.case, HumanTask.state == "open").order_by(HumanTask.id)))

    def _expect_task(self, body: Mapping[str, Any]) -> str:
        name = body["task"]
        tasks = self._tasks(name)
        if body.get("open", True) is False:
            if tasks:
                raise CheckFailed(f"expected no open task {name}, found {len(tasks)}")
            return f"no open task {name}"
        if "count" in body and len(tasks) != body["count"]:
            raise CheckFailed(f"expected {body['count']} open task(s) {name}, found {len(tasks)}")
        if not tasks:
            raise CheckFailed(f"expected an open task {name}; open: {', '.join(self._open_names()) or 'none'}")
        task = tasks[-1]
        holder = task.assignee.username if task.assignee is not None else task.assigned_group
        if "for" in body and holder != body["for"]:
            raise CheckFailed(f"expected {name} open for {body['for']}, it is for {holder or 'nobody'}")
        if "due" in body:
            _check_due(name, body["due"], task.due_at, self.runtime.settings.timezone)
        if "escalated" in body and (task.escalated_at is not None) != body["escalated"]:
            raise CheckFailed(f"expected {name} {'' if body['escalated'] else 'not '}escalated, it is "
                              f"{'' if task.escalated_at is not None else 'not '}escalated")
        return f"{name} open for {holder or 'nobody'}" + (f", due {task.due_at.isoformat()}" if task.due_at else "")

    def _expect_notice(self, body: Mapping[str, Any]) -> str:
        with self.runtime.db.read() as s:
            subjects = list(s.scalars(select(Notification.subject).join(Person, Person.id == Notification.person_id)
                                      .where(Person.username == body["to"],
                                             Notification.instance_id == self.state.case).order_by(Notification.id)))
        words = str(body.get("subject", "")).lower()
        found = [x for x in subjects if words in x.lower()]
        if body.get("sent", True) and not found:
            raise CheckFailed(f"expected a notice to {body['to']} about {words!r}; they got: {subjects or 'none'}")
        if not body.get("sent", True) and found:
            raise CheckFailed(f"expected no notice to {body['to']} about {words!r}; they got: {found}")
        return f"{body['to']} was told: {found[-1]}" if found else f"{body['to']} was not told"

    def _expect(self, body: Mapping[str, Any]) -> str:
        self.outcome(body)
        return "as expected"

    def outcome(self, expected: Mapping[str, Any]) -> None:
        """The case's status, data, effective date, path and end event as the scenario expects them."""
        snap = self.state.snapshot()
        problems: list[str] = []
        if "status" in expected and snap.status != expected["status"]:
            problems.append(f"status: expected {expected['status']}, found {snap.status}")
        problems += mismatches(expected.get("data") or {}, snap.data, "data")
        problems += [f"data.{name}: expected absent, found {snap.data[name]!r}" for name in expected.get("absent", [])
                     if name in snap.data]
        if "effective_date" in expected and snap.data.get("effective_date") != expected["effective_date"]:
            problems.append(f"effective_date: expected {expected['effective_date']}, "
                            f"found {snap.data.get('effective_date')}")
        if "ended_at" in expected and snap.ended_at != expected["ended_at"]:
            problems.append(f"ended_at: expected {expected['ended_at']}, found {snap.ended_at}")
        missing = _not_in_order(expected.get("passed") or [], snap.path)
        if missing:
            problems.append(f"passed: expected {missing} (in order) on the path {snap.path}")
        if problems:
            raise CheckFailed("; ".join(problems))


def _refusal(expected: Mapping[str, Any] | None, act: Any) -> Any:
    """Run `act`; with `expected`, it must be refused as described (returns the refusal's text), else its value."""
    if expected is None:
        return act()
    try:
        value = act()
    except EngineError as exc:
        problems = [f"{p.field or p.element or ''}: {p.message}" for p in exc.problems]
        text = f"{type(exc).__name__}: {exc.message} [{'; '.join(problems)}]"
        kind = expected.get("error", "any")
        if kind not in ("any", type(exc).__name__):
            raise CheckFailed(f"expected a refusal of kind {kind}, got {text}") from exc
        fields = {p.field for p in exc.problems} | {p.element for p in exc.problems}
        if "field" in expected and expected["field"] not in fields:
            raise CheckFailed(f"expected a refusal naming the field {expected['field']}, got {text}") from exc
        words = str(expected.get("message", "")).lower()
        if words and words not in text.lower():
            raise CheckFailed(f"expected a refusal saying {expected['message']!r}, got {text}") from exc
        return f"refused as expected: {text}"
    raise CheckFailed(f"expected a refusal ({dict(expected)}), but it was accepted ({value!r})")


def mismatches(expected: Any, actual: Any, where: str) -> list[str]:
    """Where `actual` differs from `expected`: objects match by the fields expected, lists of the same length item by
    item, anything else by equality."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, found {actual!r}"]
        out: list[str] = []
        for key, value in expected.items():
            if key not in actual:
                out.append(f"{where}.{key}: expected {value!r}, it is missing")
            else:
                out += mismatches(value, actual[key], f"{where}.{key}")
        return out
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [m for i, (e, a) in enumerate(zip(expected, actual, strict=True))
                for m in mismatches(e, a, f"{where}[{i}]")]
    return [] if expected == actual else [f"{where}: expected {expected!r}, found {actual!r}"]


def _not_in_order(expected: list[str], path: list[str]) -> list[str]:
    """The expected elements not found on the path in that order (each after the one before)."""
    position = 0
    for index, element in enumerate(expected):
        try:
            position = path.index(element, position) + 1
        except ValueError:
            return expected[index:]
    return []


def _check_due(name: str, expected: str | None, due_at: datetime | None, timezone: str) -> None:
    """A date is the day the task is due by the end of, in the organisation's time zone; a time is the instant."""
    if expected is None or due_at is None:
        if expected != due_at:
            raise CheckFailed(f"expected {name} due {expected or 'never'}, it is due {due_at or 'never'}")
        return
    if len(expected) == 10:
        local = due_at.astimezone(ZoneInfo(timezone))
        day = local.date() - (timedelta(days=1) if local.time() == datetime.min.time() else timedelta(0))
        if day != date.fromisoformat(expected):
            raise CheckFailed(f"expected {name} due by the end of {expected}, it is due {local.isoformat()}")
    elif due_at != parse_when(expected):
        raise CheckFailed(f"expected {name} due {parse_when(expected).isoformat()}, it is due {due_at.isoformat()}")
