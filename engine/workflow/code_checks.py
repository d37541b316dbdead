"""Deploy-time checks of the code a diagram runs: the restricted compile, modules and functions it may not
call, and timer expressions tried against sample data built from the process's forms (with the script helpers
the process's package offers)."""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimerEventDefinition,
)

from engine.core.config import Settings
from engine.workflow.helpers import script_helpers
from engine.workflow.registry import REGISTRY
from engine.workflow.scripts import SAFE_BUILTIN_NAMES, RestrictedEnvironment, ScriptError, check_code

#: Modules SpiffArena scripts commonly use. Diagram code has no modules here (imports are refused), so
#: `time.time()` would only fail when the case reaches it; said at deploy time instead.
MODULE_NAMES = frozenset({
    "time", "os", "sys", "json", "random", "math", "re", "uuid", "calendar", "subprocess", "shutil",
    "socket", "pathlib", "urllib", "requests", "pytz", "dateparser", "pickle", "io", "glob", "http",
})  # fmt: skip
#: The date every date-like value in sample data takes when a timer is evaluated at deploy time.
SAMPLE_DATE = "2030-06-28"

# --------------------------------------------------------------------------- code checks


def module_problems(source: str, mode: str) -> list[str]:
    """Uses of Python modules (`time.time()`): no module exists in diagram code, so refuse them up front."""
    try:
        tree = ast.parse(source.strip() if mode == "eval" else source, mode=mode)
    except (SyntaxError, ValueError):
        return []  # check_code reports syntax errors
    assigned = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    used = sorted({n.value.id for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                   and isinstance(n.value, ast.Name) and n.value.id in MODULE_NAMES and n.value.id not in assigned})
    return [f"'{name}' is a Python module; scripts and expressions cannot use modules here "
            f"(there is no '{name}.' in the restricted environment)" for name in used]


def _bound_names(tree: ast.AST) -> set[str]:
    """Names a piece of code binds itself: assignments, loop targets, functions and their arguments."""
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            bound.add(node.name)
        if isinstance(node, ast.arg):
            bound.add(node.arg)
    return bound


def unknown_function_problems(source: str, mode: str, helpers: Iterable[str]) -> list[str]:
    """Calls of functions that exist neither in the restricted environment nor in the script itself.

    Task data never holds functions, so `get_process_initiator_user()` (a SpiffArena helper) can only fail
    when the case reaches it.
    """
    try:
        tree = ast.parse(source.strip() if mode == "eval" else source, mode=mode)
    except (SyntaxError, ValueError):
        return []
    known = set(SAFE_BUILTIN_NAMES) | set(helpers) | _bound_names(tree)
    called = sorted({n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                     and n.func.id not in known})
    available = ", ".join(sorted(set(helpers))) or "none"
    return [f"function '{name}' does not exist here (helpers available: {available})" for name in called]


def free_names(expression: str) -> set[str]:
    """Names an expression reads that are not builtins of the restricted environment."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id not in SAFE_BUILTIN_NAMES}


# --------------------------------------------------------------------------- sample data


def sample_value(schema: Any, depth: int = 0) -> Any:
    """A plausible value for a JSON Schema (defaults, first choices, dates as SAMPLE_DATE)."""
    if not isinstance(schema, dict) or depth > 8:
        return None
    if "default" in schema:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("oneOf", "anyOf"):
        alts = schema.get(key)
        if isinstance(alts, list) and alts:
            return sample_value(alts[0], depth + 1)
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    if kind == "object" or (kind is None and isinstance(schema.get("properties"), dict)):
        props = schema.get("properties")
        return {str(k): sample_value(v, depth + 1) for k, v in props.items()} if isinstance(props, dict) else {}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return True
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "date":
            return SAMPLE_DATE
        if fmt == "date-time":
            return f"{SAMPLE_DATE}T09:00:00+09:30"
        return "sample"
    return None


def sample_data(forms: Mapping[str, Any]) -> dict[str, Any]:
    """Case data as the forms of a process could leave it: each form's sample values merged."""
    data: dict[str, Any] = {}
    for schema in forms.values():
        value = sample_value(schema)
        if isinstance(value, dict):
            data.update(value)
    return data


# --------------------------------------------------------------------------- timers


#: The process whose diagram is being checked: its package's helpers are known to its scripts (workflow.registry);
#: None while checking what belongs to no one process (decision tables, the document as a whole): every package's.
CHECKING_PROCESS: ContextVar[str | None] = ContextVar("checking_process", default=None)


@contextmanager
def checking_process(key: str) -> Iterator[None]:
    """Check scripts as the diagrams of process `key` run them (with its package's helpers)."""
    token = CHECKING_PROCESS.set(key)
    try:
        yield
    finally:
        CHECKING_PROCESS.reset(token)


def _sample_helpers(process_key: str | None = None) -> dict[str, Callable[..., Any]]:
    """The script helpers as deploy-time evaluation can use them (no database session): the generic ones, and the
    ones the package owning `process_key` adds (every loaded package's when None)."""
    return _helpers_of(process_key, tuple(REGISTRY.packages))


@functools.cache
def _helpers_of(process_key: str | None, _loaded: tuple[str, ...]) -> dict[str, Callable[..., Any]]:
    settings = Settings(database_url="sqlite://")
    helpers: dict[str, Callable[..., Any]] = script_helpers(None, settings)  # type: ignore[arg-type]
    if process_key is not None:
        return {**helpers, **REGISTRY.helpers(process_key, None, settings)}
    for package in REGISTRY.packages.values():
        helpers.update(package.helpers(None, settings) if package.helpers is not None else {})
    return helpers


def timer_value_problem(event: TimerEventDefinition, value: Any) -> str | None:
    """What is wrong with the value a timer expression gave, or None."""
    kind = ("cycle" if isinstance(event, CycleTimerEventDefinition)
            else "duration" if isinstance(event, DurationTimerEventDefinition) else "date")
    if not isinstance(value, str):
        return (f"the timer expression gives a {type(value).__name__} ({value!r}); a {kind} timer needs an "
                f"ISO 8601 string")
    try:
        if kind == "cycle":
            TimerEventDefinition.parse_iso_recurring_interval(value)
        elif kind == "duration":
            TimerEventDefinition.parse_iso_duration(value)
        elif not hasattr(TimerEventDefinition.parse_time_or_duration(value), "tzinfo"):
            return f"the timer expression gives {value!r}, a duration; a date timer needs an ISO 8601 date-time"
    except Exception as exc:  # SpiffWorkflow raises bare Exception (and ValueError) for bad ISO text
        return f"the timer expression gives {value!r}, which is not a valid ISO 8601 {kind} ({exc})"
    return None


def evaluate_timer(event: TimerEventDefinition, sample: Mapping[str, Any]) -> str | None:
    """Evaluate a timer expression with sample data in the restricted environment; a problem or None.

    Data the sample lacks is tried as a date (SAMPLE_DATE), a number and a word in turn, and the timer
    passes when any of them gives a valid value: the sample cannot know the real data, so only what no
    data could fix is reported (refused code, the time limit, a result of the wrong kind). Errors that
    depend on the data (a missing key, a wrong type) are not reported.
    """
    helpers = _sample_helpers(CHECKING_PROCESS.get())
    environment = RestrictedEnvironment(helpers, time_limit_seconds=0.5)
    missing = [n for n in free_names(event.expression) if n not in sample and n not in helpers]
    first_problem: str | None = None
    for filler in ((SAMPLE_DATE, 1, "sample") if missing else (None,)):
        scope = {**sample, **dict.fromkeys(missing, filler)}
        try:
            value = environment.evaluate(event.expression, scope)
        except ScriptError as exc:
            return f"timer expression: {exc}"
        except Exception:  # noqa: S112 - data-dependent (KeyError, TypeError...): a sample cannot decide it
            continue
        problem = timer_value_problem(event, value)
        if problem is None:
            return None
        first_problem = first_problem or problem
    return first_problem


def _code_findings(source: str, mode: str, process_key: str | None = None,
                   _loaded: tuple[str, ...] = ()) -> tuple[str, ...]:
    """code_problems without the label (`_loaded`, the packages loaded, only keys the cache: their helpers count)."""
    try:
        found = check_code(source, mode)  # type: ignore[arg-type]
        if not found:
            found = module_problems(source, mode) + unknown_function_problems(source, mode,
                                                                             _sample_helpers(process_key))
    except (RecursionError, MemoryError):  # `-----...1` or `1+1+...`: Python's parser gives up, so do we
        found = ["nested too deeply to be compiled"]
    return tuple(found)


#: Decision tables repeat their cells and outputs a lot; only short code is remembered (sources are untrusted).
_short_code_findings = functools.lru_cache(maxsize=4096)(_code_findings)


def code_problems(label: str, source: str, mode: str) -> list[str]:
    """Problems of one script or expression: the restricted compile, then modules and unknown functions."""
    key, loaded = CHECKING_PROCESS.get(), tuple(REGISTRY.packages)
    found = (_short_code_findings(source, mode, key, loaded) if len(source) <= 200
             else _code_findings(source, mode, key, loaded))
    return [f"{label}: {m}" for m in found]
