"""The scenario runner (issue 20): runs scenarios (engine.workflow.scenario_format) against a given set of
diagrams, decision tables and forms, each in a throw-away SQLite database, with a clock of its own, and returns
a structured result per scenario: its status, outcome, effective date, the path of elements it passed and where it
ended, each step's result, and every failure with where it happened.

Generic: it drives the real runtime (Runtime.start, complete_task, timers through TimerService, people through
engine.people) and knows no policy; a record a policy keeps is made through the actions its package declares
(ProcessPackage.scenario_actions). The clock is Clock.isolated: the thread running a scenario sees its own frozen
clock, and the clock every other thread (or the caller, after the run) reads is never moved.

`run_scenarios(scenarios, sources)` is what the studio's "Try this draft" calls, once with the draft's files and
once with the live ones (project_sources); `make test` runs the library (tests/workflow/test_scenarios.py)
straight through and with a save/restore (a new runtime, connection pool and spec cache) before every step.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.core.clock import CLOCK, install
from engine.core.config import Settings
from engine.core.db import Database
from engine.core.errors import EngineError
from engine.workflow.definitions import SPECS
from engine.workflow.registry import load_policies
from engine.workflow.runtime import Runtime
from engine.workflow.scenario_checks import Check, CheckFailed, ScenarioState, parse_when
from engine.workflow.scenario_format import Scenario, step_kind
from engine.workflow.scenario_setup import (
    Sources,
    create_tables,
    deploy_sources,
    project_sources,
    set_up_people,
)

__all__ = ["MODES", "Change", "ScenarioResult", "Sources", "StepResult", "compare", "project_sources", "run_scenario",
           "run_scenarios"]

log = logging.getLogger(__name__)

#: How each scenario runs: straight through, and restored from nothing but the database before every step.
MODES = ("straight", "save-restore")


@dataclass
class StepResult:
    """One step as it ran: its number (0 is the start), kind, what it did or found, the clock, and whether it held."""

    index: int
    kind: str
    summary: str
    at: str
    ok: bool = True
    message: str = ""


@dataclass
class Failure:
    """Where a scenario went wrong (`step 3 (complete make_submission)`, `outcome`, `setup`) and what happened."""

    where: str
    message: str


@dataclass
class ScenarioResult:
    """What one scenario came to, in one mode."""

    name: str
    file: str | None
    clauses: list[str]
    mode: str
    status: str | None = None  #: the case's status (running, completed, ...); `refused` when its start was
    outcome: Any = None  #: the case data's `outcome` field, when it has one
    effective_date: Any = None  #: the case data's `effective_date` field, when it has one
    ended_at: str | None = None  #: the end event a completed case finished at
    path: list[str] = field(default_factory=list)  #: the elements the case passed, in order
    data: dict[str, Any] = field(default_factory=dict)  #: the case data at the end
    steps: list[StepResult] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every step and the outcome held."""
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        """As JSON-ready data (the studio's page, the command line's --json)."""
        return {**asdict(self), "passed": self.passed}

    def report(self) -> str:
        """A short text: the scenario, its mode, and each failure with where."""
        head = f"{'PASS' if self.passed else 'FAIL'} {self.name} [{self.mode}] ({self.file or 'in memory'})"
        return "\n".join([head, *(f"  {f.where}: {f.message}" for f in self.failures)])


@dataclass
class Change:
    """How one scenario's run differs between two versions (the live one and a draft): which field, and where."""

    name: str
    file: str | None
    mode: str
    field: str  #: passed, status, outcome, effective_date, ended_at or path
    before: Any
    after: Any
    where: str = ""  #: for the path, the first element where they part; for `passed`, the draft's first failure


def compare(before: Sequence[ScenarioResult], after: Sequence[ScenarioResult]) -> list[Change]:
    """What changed from `before` (the live version's results) to `after` (a draft's), scenario by scenario and
    mode by mode, matched by file and name: its passing, status, outcome, effective date, end event and path."""
    earlier = {(r.file, r.name, r.mode): r for r in before}
    changes: list[Change] = []
    for new in after:
        old = earlier.get((new.file, new.name, new.mode))
        if old is None:
            continue
        for name in ("passed", "status", "outcome", "effective_date", "ended_at"):
            if getattr(old, name) != getattr(new, name):
                where = new.failures[0].where if name == "passed" and new.failures else ""
                changes.append(Change(new.name, new.file, new.mode, name, getattr(old, name), getattr(new, name),
                                      where))
        if old.path != new.path:
            at = next((i for i, (a, b) in enumerate(zip(old.path, new.path, strict=False)) if a != b),
                      min(len(old.path), len(new.path)))
            changes.append(Change(new.name, new.file, new.mode, "path", old.path, new.path,
                                  f"from element {at + 1}: {_at(old.path, at)} became {_at(new.path, at)}"))
    return changes


def _at(path: list[str], index: int) -> str:
    return path[index] if index < len(path) else "(the end)"


def run_scenarios(scenarios: Iterable[Scenario], sources: Sources | None = None, settings: Settings | None = None,
                  modes: Sequence[str] = MODES) -> list[ScenarioResult]:
    """Run each scenario in each mode against `sources` (default: the project's processes and forms). The files are
    deployed once, into a template database each scenario's own database is copied from."""
    settings = settings or Settings()
    sources = sources if sources is not None else project_sources(settings)
    with tempfile.TemporaryDirectory(prefix="ntpswf-scenarios-") as folder:
        template = Path(folder) / "template.sqlite3"
        problem = deploy_template(template, sources, settings)
        return [run_scenario(s, sources, settings, restore=(mode == "save-restore"),
                             template=None if problem else template)
                for s in scenarios for mode in modes]


def deploy_template(path: Path, sources: Sources, settings: Settings) -> str | None:
    """A database holding every table and the deployed files; the problem's text when the files do not deploy
    (then each scenario deploys them itself and reports it as its setup's failure)."""
    run_settings = replace(settings, database_url=f"sqlite:///{path}", demo_mode=False, smtp_url=None)
    load_policies(run_settings)
    db = Database(run_settings.database_url)
    try:
        create_tables(db, run_settings)
        deploy_sources(Runtime(db, run_settings), sources)
    except (EngineError, ValueError) as exc:
        return _error_text(exc)
    finally:
        db.dispose()
    return None


def run_scenario(scenario: Scenario, sources: Sources | None = None, settings: Settings | None = None,
                 restore: bool = False, template: Path | None = None) -> ScenarioResult:
    """Run one scenario in a throw-away database with its own clock; never raises for what the scenario finds.
    `template`: a database with the sources deployed already (run_scenarios makes it), copied instead of deploying."""
    settings = settings or Settings()
    sources = sources if sources is not None else project_sources(settings)
    result = ScenarioResult(scenario.name, scenario.file, list(scenario.clauses), MODES[1] if restore else MODES[0])
    install()
    start_at = parse_when(scenario.start["at"]) if scenario.start.get("at") else CLOCK.now()
    demo = bool(scenario.setup.get("demo_people")) and template is not None
    if template is not None and demo:
        template = _with_demo_people(template, settings)
    with tempfile.TemporaryDirectory(prefix="ntpswf-scenario-") as folder, CLOCK.isolated(start_at):
        path = Path(folder) / "scenario.sqlite3"
        if template is not None:
            shutil.copyfile(template, path)
        run_settings = replace(settings, database_url=f"sqlite:///{path}", demo_mode=False, smtp_url=None)
        runner = _Runner(scenario, sources, run_settings, restore, result, deployed=template is not None,
                         demo_loaded=demo)
        try:
            runner.run()
        finally:
            runner.close()
    return result


_TEMPLATE_LOCK = threading.Lock()


def _with_demo_people(template: Path, settings: Settings) -> Path:
    """The template with the demo organisation loaded too (made beside it once: most scenarios start from it)."""
    target = template.with_name(f"{template.stem}-demo{template.suffix}")
    with _TEMPLATE_LOCK:
        if not target.exists():
            partial = target.with_name(f"{target.name}.partial")
            shutil.copyfile(template, partial)
            run_settings = replace(settings, database_url=f"sqlite:///{partial}", demo_mode=False, smtp_url=None)
            db = Database(run_settings.database_url)
            try:
                set_up_people(Runtime(db, run_settings), {"demo_people": True})
            finally:
                db.dispose()
            partial.replace(target)
    return target


class _Runner:
    """One scenario's run: its database, runtime, the cases it started, and the result being filled."""

    def __init__(self, scenario: Scenario, sources: Sources, settings: Settings, restore: bool,
                 result: ScenarioResult, deployed: bool = False, demo_loaded: bool = False) -> None:
        self.deployed = deployed
        self.demo_loaded = demo_loaded
        self.scenario = scenario
        self.sources = sources
        self.settings = settings
        self.restore = restore
        self.result = result
        load_policies(settings)
        self.runtime = Runtime(Database(settings.database_url), settings)
        self.state = ScenarioState(self.runtime)

    def close(self) -> None:
        self.runtime.db.dispose()

    def fresh(self) -> Runtime:
        """The runtime a step uses: with `restore`, a new one on a new connection pool, so the step starts from
        nothing but what the database holds (the spec cache, emptied when the run began, keeps the versions as
        parsed from their stored sources: parsing again before every step would only repeat that)."""
        if self.restore:
            self.runtime.db.dispose()
            self.runtime = Runtime(Database(self.settings.database_url), self.settings)
            self.state.runtime = self.runtime
        return self.runtime

    def run(self) -> None:
        if not self._set_up():
            return
        steps: list[tuple[str, dict[str, Any]]] = [("start", self.scenario.start)]
        steps += [(step_kind(s), s) for s in self.scenario.steps]
        for index, (kind, step) in enumerate(steps):
            body = step if index == 0 else step[kind]
            where = f"start ({self.scenario.process})" if index == 0 else f"step {index} ({_label(kind, body)})"
            if not self._step(index, kind, body, where):
                break
        else:
            self._outcome()
        self._finish()

    def _set_up(self) -> bool:
        try:
            if not self.deployed:
                create_tables(self.runtime.db, self.settings)
                deploy_sources(self.runtime, self.sources)
            if self.restore:  # the versions are parsed again from what the database holds
                SPECS.clear()
            setup = dict(self.scenario.setup)
            if self.demo_loaded:
                setup["demo_people"] = False  # the template holds them
            set_up_people(self.runtime, setup)
            for record in self.scenario.setup.get("records") or []:
                Check(self.fresh(), self.state).record(record)
        except (EngineError, CheckFailed, ValueError) as exc:
            self.result.failures.append(Failure("setup", _error_text(exc)))
            return False
        except Exception as exc:  # reported like any failure: the caller gets a result, not an exception
            log.exception("scenario %r: setup failed", self.scenario.name)
            self.result.failures.append(Failure("setup", f"failed unexpectedly: {_error_text(exc)}"))
            return False
        return True

    def _step(self, index: int, kind: str, body: Any, where: str) -> bool:
        at = CLOCK.now().isoformat()
        check = Check(self.fresh(), self.state)
        try:
            summary = check.run(kind, body)
        except CheckFailed as exc:
            self._failed(index, kind, at, where, str(exc))
            return False
        except (EngineError, ValueError, LookupError) as exc:  # an unexpected refusal, or a bad name in the step
            self._failed(index, kind, at, where, f"refused: {_error_text(exc)}")
            return False
        except Exception as exc:  # a draft's fault the engine did not name: the lab reports it, never a 500
            log.exception("scenario %r: %s failed", self.scenario.name, where)
            self._failed(index, kind, at, where, f"failed unexpectedly: {_error_text(exc)}")
            return False
        self.result.steps.append(StepResult(index, kind, summary, at))
        return True

    def _failed(self, index: int, kind: str, at: str, where: str, message: str) -> None:
        self.result.steps.append(StepResult(index, kind, message, at, ok=False, message=message))
        self.result.failures.append(Failure(where, message))

    def _outcome(self) -> None:
        expected = self.scenario.outcome
        if expected is None:
            return
        try:
            Check(self.fresh(), self.state).outcome(expected)
        except CheckFailed as exc:
            self.result.failures.append(Failure("outcome", str(exc)))
        except Exception as exc:
            log.exception("scenario %r: outcome failed", self.scenario.name)
            self.result.failures.append(Failure("outcome", f"failed unexpectedly: {_error_text(exc)}"))

    def _finish(self) -> None:
        try:
            snapshot = self.state.snapshot()
        except Exception as exc:  # the case cannot be read back (a draft's broken state): say so, keep the rest
            log.exception("scenario %r: the case could not be read", self.scenario.name)
            self.result.failures.append(Failure("result", f"the case could not be read: {_error_text(exc)}"))
            return
        self.result.status = snapshot.status
        self.result.data = snapshot.data
        self.result.outcome = snapshot.data.get("outcome")
        self.result.effective_date = snapshot.data.get("effective_date")
        self.result.path = snapshot.path
        self.result.ended_at = snapshot.ended_at


def _label(kind: str, body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("task"), str):
        return f"{kind} {body['task']}"
    if isinstance(body, dict) and isinstance(body.get("kind"), str):
        return f"{kind} {body['kind']}"
    if kind == "at":
        return f"at {body}"
    return kind


def _error_text(exc: Exception) -> str:
    if isinstance(exc, EngineError):
        details = [f"{p.field or p.element}: {p.message}" if (p.field or p.element) else p.message
                   for p in exc.problems if p.message not in exc.message]
        return f"{type(exc).__name__}: {exc.message}" + (f" ({'; '.join(details)})" if details else "")
    return f"{type(exc).__name__}: {exc}"
