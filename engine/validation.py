"""Deploy-time checks SpiffWorkflow does not make, and readable messages for the ones it does.

SpiffWorkflow validates against the BPMN XSD with the `spiffworkflow` schema imported, but extension
elements are matched *laxly*: a misspelt `spiffworkflow:instructionForEndUser` passes and is silently
ignored, as is a misspelt property name. Timer expressions are only evaluated when the timer is reached.
These functions catch such mistakes at deploy time, each reported against the BPMN element to blame.
"""

from __future__ import annotations

import ast
import difflib
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimerEventDefinition,
)

from engine.errors import Problem
from engine.scripts import SAFE_BUILTIN_NAMES, RestrictedEnvironment, ScriptError, check_code

SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
#: Ids SpiffWorkflow uses for its own task specs: a BPMN element with one of them breaks the workflow.
RESERVED_IDS = frozenset({"Start", "End", "Root"})
#: Every element of the spiffworkflow namespace SpiffWorkflow 3.2 reads (its XSD plus what its parsers look for).
SPIFF_ELEMENTS = frozenset({
    "calledDecisionId", "instructionsForEndUser", "messagePayload", "messageVariable", "payloadExpression",
    "variableName", "preScript", "postScript", "properties", "property", "unitTests", "unitTest", "inputJson",
    "expectedOutputJson", "serviceTaskOperator", "parameters", "parameter", "retry", "taskMetadataValues",
    "taskMetadataValue", "processVariableCorrelation", "propertyId", "expression",
})  # fmt: skip
#: The `spiffworkflow:property` names this engine reads (other names are kept but unused).
ENGINE_PROPERTIES = frozenset({"formJsonSchemaFilename", "formUiSchemaFilename", "clause", "dueAt", "escalateTo"})
#: Modules SpiffArena scripts commonly use. Diagram code has no modules here (imports are refused), so
#: `time.time()` would only fail when the case reaches it; said at deploy time instead.
MODULE_NAMES = frozenset({
    "time", "os", "sys", "json", "random", "math", "re", "uuid", "calendar", "subprocess", "shutil",
    "socket", "pathlib", "urllib", "requests", "pytz", "dateparser", "pickle", "io", "glob", "http",
})  # fmt: skip
#: The date every date-like value in sample data takes when a timer is evaluated at deploy time.
SAMPLE_DATE = "2030-06-28"

_templates = SandboxedEnvironment(autoescape=True)
_NS_PREFIXES = {BPMN_NS: "bpmn", SPIFF_NS: "spiffworkflow",
                "http://www.omg.org/spec/BPMN/20100524/DI": "bpmndi",
                "http://www.omg.org/spec/DD/20100524/DC": "dc", "http://www.omg.org/spec/DD/20100524/DI": "di"}


# --------------------------------------------------------------------------- element lookup


def owner_id(node: etree._Element | None) -> str | None:
    """The id of the node or of its nearest ancestor that has one (the BPMN element to blame)."""
    while node is not None:
        ident = node.get("id") if isinstance(node.tag, str) else None
        if ident:
            return str(ident)
        node = node.getparent()
    return None


def element_at_line(root: etree._Element, line: int | None) -> str | None:
    """The id of the element that starts on `line` (or of its parent), for XSD errors that only give a line."""
    if not line:
        return None
    for node in root.iter():
        if isinstance(node.tag, str) and node.sourceline == line:
            return owner_id(node)
    return None


def element_named(root: etree._Element, name: str) -> str | None:
    """The id of the first element whose name attribute is `name` (collapsing white space)."""
    wanted = " ".join(name.split())
    for node in root.iter():
        if isinstance(node.tag, str) and node.get("name") is not None and " ".join(
                str(node.get("name")).split()) == wanted and node.get("id"):
            return str(node.get("id"))
    return None


def shorten_namespaces(text: str) -> str:
    """'{http://www.omg.org/spec/BPMN/20100524/MODEL}task' -> 'bpmn:task' in messages."""
    for uri, prefix in _NS_PREFIXES.items():
        text = text.replace("{" + uri + "}", prefix + ":")
    return text


# --------------------------------------------------------------------------- parser errors

_HINTS = (
    ("A Service Task must have an operator",
     "service tasks call connectors, and this engine has none: model the step as a script task or a user task"),
    ("has no implementation", "data stores are not supported: keep the data in the case data instead"),
    ("Cannot resolve data", "data associations must point at a data object declared in the same process"),
    ("must specify a cardinality or a loop input",
     "give the multi-instance activity a loop cardinality or an input collection"),
    ("Exactly one start event is required", "each (sub)process needs exactly one plain start event"),
    ("Duplicate process ID", "two files of this deployment define a process with the same id; deploy them separately"),
)
_ELEMENT_REPR = re.compile(r"<Element \{[^}]*\}(\w+) at 0x[0-9a-f]+>")


def parser_problem(exc: ValidationException, filename: str, root: etree._Element | None) -> Problem:
    """A SpiffWorkflow parse or XSD error as a Problem naming the element and what is unsupported."""
    message = str(exc.args[0]) if exc.args else str(exc)
    notes = [str(n) for n in getattr(exc, "notes", []) if n]
    message = shorten_namespaces(_ELEMENT_REPR.sub(r"(its \1)", " ".join([message, *notes]).strip()))
    message = " ".join(message.split()).rstrip(". ")
    element = getattr(exc, "id", "") or None
    line = getattr(exc, "line_number", "") or None
    if element is None and root is not None:
        found = re.search(r"Data Store with name (.+?) has no implementation", message)
        if found:
            element = element_named(root, found.group(1))
        if element is None:
            element = element_at_line(root, line if isinstance(line, int) else None)
    for needle, hint in _HINTS:
        if needle in message:
            message = f"{message}: {hint}"
            break
    where = f" ({filename}, line {line})" if line else f" ({filename})"
    return Problem(f"{message}{where}", element=element or filename)


# --------------------------------------------------------------------------- document checks


def _suggest(word: str, choices: Iterable[str], cutoff: float) -> str | None:
    options = list(choices)
    lowered = {c.lower(): c for c in options}
    if word.lower() in lowered:
        return lowered[word.lower()]
    close = difflib.get_close_matches(word, options, n=1, cutoff=cutoff)
    return close[0] if close else None


def check_document(root: etree._Element) -> list[Problem]:
    """Reserved ids, unknown or misspelt spiffworkflow elements and properties, broken instruction templates."""
    problems: list[Problem] = []
    for node in root.iter():
        if isinstance(node.tag, str) and node.get("id") in RESERVED_IDS:
            problems.append(Problem(
                f"the id '{node.get('id')}' is reserved by the engine; rename it", element=node.get("id")))
    for node in root.iter(f"{{{SPIFF_NS}}}*"):
        local = etree.QName(node).localname
        element = owner_id(node.getparent())
        if local not in SPIFF_ELEMENTS:
            hint = _suggest(local, SPIFF_ELEMENTS, 0.6)
            problems.append(Problem(
                f"unknown extension element spiffworkflow:{local}"
                + (f"; did you mean spiffworkflow:{hint}?" if hint else "; SpiffWorkflow would ignore it"),
                element=element))
        elif local == "property":
            problems.extend(_property_problems(node, element))
        elif local == "instructionsForEndUser" and node.text:
            try:
                _templates.parse(node.text)
            except TemplateSyntaxError as exc:
                problems.append(Problem(
                    f"instructions: template error: {exc.message} (line {exc.lineno})", element=element))
    return problems


def _property_problems(node: etree._Element, element: str | None) -> list[Problem]:
    name = node.get("name")
    if not name:
        return [Problem("spiffworkflow:property without a name", element=element)]
    if name not in ENGINE_PROPERTIES:
        hint = _suggest(name, ENGINE_PROPERTIES, 0.8)
        if hint:
            return [Problem(f"property '{name}' is not read by the engine; did you mean '{hint}'?", element=element)]
    if node.get("value") is None:
        return [Problem(f"property '{name}' has no value attribute", element=element)]
    return []


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


@functools.cache
def _sample_helpers() -> dict[str, Callable[..., Any]]:
    """The script helpers as deploy-time evaluation can use them (no database session)."""
    try:
        from engine.config import Settings
        from engine.scripthelpers import script_helpers

        helpers: dict[str, Callable[..., Any]] = script_helpers(None, Settings(database_url="sqlite://"))  # type: ignore[arg-type]
        return helpers
    except Exception:  # helpers are optional here; without them fewer expressions can be tried
        return {}


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
    helpers = _sample_helpers()
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


def code_problems(label: str, source: str, mode: str) -> list[str]:
    """Problems of one script or expression: the restricted compile, then modules and unknown functions."""
    found = check_code(source, mode)  # type: ignore[arg-type]
    if not found:
        found = module_problems(source, mode) + unknown_function_problems(source, mode, _sample_helpers())
    return [f"{label}: {m}" for m in found]
