"""Parse and check a bundle before anything is stored: SpiffWorkflow's parser, then what it does not check
(forms, scripts, conditions, timers, lanes, decision tables, engine properties), every problem naming its element."""

from __future__ import annotations

import ast
import functools
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask
from SpiffWorkflow.bpmn.specs.mixins.service_task import ServiceTask
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser

from engine.core.errors import Invalid, Problem
from engine.workflow import code_checks, dmn
from engine.workflow import forms as form_checks
from engine.workflow import validation as checks
from engine.workflow.assignment import known_lanes
from engine.workflow.bundles import (
    BPMN_NS,
    MAX_FORM_DEPTH,
    Bundle,
    ParsedProcess,
    form_from_dir,
    is_dmn,
    json_depth,
    safe_xml,
)

log = logging.getLogger(__name__)

RESERVED_IDS = checks.RESERVED_IDS
#: (source id, target id) -> [(sequence flow id, condition text)]
Flows = Mapping[tuple[str, str], list[tuple[str, str]]]


class _ScopedDataObjects:
    """Resolve a data object reference through every enclosing (sub)process, as the runtime does.

    SpiffWorkflow 3.2's `NodeParser._resolve_data_object_ref` walks up with `current = self.process_parser.parent`
    instead of `current = current.parent`: when the data object is neither in the task's own (sub)process nor
    in its parent, `current` stays on the parent and the loop never ends. A reference two subprocesses deep,
    or one to a data object that exists nowhere, hung the deploy request. Data objects are visible in nested
    subprocesses (SpiffWorkflow's `DataObject.get/set` walk every parent workflow at run time), so the walk
    goes all the way up here, and a reference that resolves nowhere gives None (SpiffWorkflow then reports
    "Cannot resolve ..."); validation.data_reference_problems names it first.
    """

    process_parser: Any

    def _resolve_data_object_ref(self, ref: Any) -> Any:
        if ref is None:
            return None
        name = ref.get("dataObjectRef")
        current, seen = self.process_parser, set()
        while current is not None and id(current) not in seen:  # `seen`: no parent chain may loop either
            seen.add(id(current))
            spec = getattr(current, "spec", None)
            found = spec.data_objects.get(name) if spec is not None else None
            if found is not None:
                return found
            current = getattr(current, "parent", None)
        return None


@functools.cache
def _scoped(node_parser: type) -> type:
    """`node_parser` with the data object lookup above (one subclass per SpiffWorkflow parser class)."""
    return type(node_parser.__name__, (_ScopedDataObjects, node_parser), {"__module__": __name__})


class DeployParser(SpiffBpmnParser):  # type: ignore[misc]
    """SpiffWorkflow's parser, with data object references resolved without its endless loop."""

    def _get_parser_class(self, tag: str) -> tuple[Any, Any]:
        node_parser, spec_class = super()._get_parser_class(tag)
        if isinstance(node_parser, type) and hasattr(node_parser, "_resolve_data_object_ref"):
            node_parser = _scoped(node_parser)
        return node_parser, spec_class


def parse_bundle(bundle: Bundle, strict: bool = True) -> list[ParsedProcess]:
    """Validate and parse a bundle; raise Invalid listing every problem with its element.

    `strict=False` only parses (what SpiffWorkflow needs to build the specs): used to load versions that
    were validated when they were deployed, so that a check added later cannot strand running cases.
    """
    problems: list[Problem] = []  # found by our checks: reported together with the parser's
    refused: list[Problem] = []  # the parser's own: nothing can be built after these
    parser = DeployParser(validator=VALIDATOR)
    roots: dict[str, etree._Element] = {}
    unresolved: set[str] = set()  # elements whose data association data_reference_problems reported
    for name, text in bundle.sources.items():
        root = roots[name] = safe_xml(name, text)
        if strict:
            problems.extend(checks.check_document(root))
            for user, problem in checks.data_reference_problems(root):
                unresolved.add(user)
                problems.append(problem)
        try:
            if is_dmn(root):
                parser.add_dmn_xml(root, filename=name)
            else:
                parser.add_bpmn_xml(root, filename=name)
        except ValidationException as exc:
            refused.append(checks.parser_problem(exc, name, root))
        except Exception as exc:  # SpiffWorkflow raises many kinds on odd input; none may become a 500
            log.info("parse of %s failed", name, exc_info=True)
            refused.append(Problem(f"{name}: cannot be parsed: {type(exc).__name__}: {exc}", element=name))
    if strict:
        problems.extend(_check_decisions(parser, roots))
    if refused:
        raise Invalid("the definition was refused", _dedupe([*problems, *refused]))
    flows = _sequence_flows(roots.values())
    uncalled = _missing_callees(roots)
    problems.extend(Problem(f"calls the process '{key}', which is neither in this upload nor deployed",
                            element=call) for key, call in uncalled.items())
    keys = parser.get_process_ids()
    if not keys:
        raise Invalid("no executable process", [*problems, Problem(
            "no process has isExecutable=\"true\"; nothing can be run", element=next(iter(bundle.sources)))])
    parsed: list[ParsedProcess] = []
    for key in keys:
        try:
            spec = parser.get_spec(key)
            subs = parser.get_subprocess_specs(key)
        except ValidationException as exc:
            if getattr(exc, "id", None) in unresolved and str(exc).startswith("Cannot resolve data"):
                continue  # already named, with its reference, by data_reference_problems
            if any(f"The process '{missing}' was not found" in str(exc) for missing in uncalled):
                continue  # already named, with the call activity, by _missing_callees
            problems.append(_parser_problem(exc, key, roots))
            continue
        except Exception as exc:  # see above
            log.info("building %s failed", key, exc_info=True)
            problems.append(Problem(f"cannot build process: {type(exc).__name__}: {exc}", element=key))
            continue
        parsed.append(_checked_process(parser, key, spec, subs, bundle, strict, flows, problems))
    if problems:
        raise Invalid("the definition was refused", _dedupe(problems))
    return parsed


def _checked_process(parser: Any, key: str, spec: Any, subs: dict[str, Any], bundle: Bundle, strict: bool,
                     flows: Flows, problems: list[Problem]) -> ParsedProcess:
    """One built process with its subprocesses, checked (problems appended), its loops wired, its files named."""
    all_specs = [spec, *(s for s in subs.values() if s is not None)]
    with code_checks.checking_process(key):
        forms, spec_problems = _check_specs(all_specs, bundle, strict, flows)
    problems.extend(spec_problems)
    missing = [name for name, s in subs.items() if s is None]
    problems.extend(Problem(f"called process '{m}' is not in this deployment", element=m) for m in missing)
    for each in all_specs:
        wire_loops(each)
    return ParsedProcess(key, spec.description or key, spec, subs, forms, _files_of(parser, key, subs, bundle))


def wire_loops(spec: Any) -> None:
    """Connect each loop and multi-instance task to its child's completion, as SpiffWorkflow's serializer does when
    it restores a spec. The parser leaves it to the loop's first run in memory, so a case restored onto a freshly
    parsed spec (after a restart, on another worker) never continued past its first iteration."""
    for task_spec in list(spec.task_specs.values()):
        if isinstance(task_spec, LoopTask):
            child = spec.task_specs.get(task_spec.task_spec)
            if child is not None and not child.completed_event.is_connected(task_spec.merge_child):
                child.completed_event.connect(task_spec.merge_child)


def _missing_callees(roots: Mapping[str, etree._Element]) -> dict[str, str]:
    """Processes call activities name that no file of the bundle defines: called id -> the call activity's id
    (definitions.with_deployed_callees has already brought in the deployed ones)."""
    defined = {p.get("id") for root in roots.values() for p in root.iter(f"{{{BPMN_NS}}}process")}
    missing: dict[str, str] = {}
    for root in roots.values():
        for call in root.iter(f"{{{BPMN_NS}}}callActivity"):
            called = call.get("calledElement")
            if called and called not in defined:
                missing.setdefault(str(called), str(call.get("id") or called))
    return missing


def _parser_problem(exc: ValidationException, fallback: str, roots: Mapping[str, etree._Element]) -> Problem:
    """A ValidationException raised while building specs, against the file it names."""
    file_name = getattr(exc, "file_name", "") or ""
    root = roots.get(file_name)
    if root is not None and is_dmn(root):
        return dmn.dmn_parse_problem(exc, file_name, root)
    return checks.parser_problem(exc, file_name or fallback, root)


def _check_decisions(parser: Any, roots: Mapping[str, etree._Element]) -> list[Problem]:
    """Parse every decision table of the bundle and compile its expressions and cells.

    SpiffWorkflow parses a table only when a business rule task is built, and its engine compiles cells
    only when a rule is evaluated; the starters run tables before any case exists (pay_progression.rules).
    """
    problems: list[Problem] = []
    for dmn_parser in list(parser.dmn_parsers.values()):
        filename = getattr(dmn_parser, "filename", None) or ""
        try:
            dmn_parser.parse()
        except ValidationException as exc:
            problems.append(_parser_problem(exc, filename, roots))
            continue
        except Exception as exc:  # a missing id, more cells than columns...: never a 500
            log.info("parse of decision %s failed", filename, exc_info=True)
            problems.append(Problem(f"{filename}: the decision table cannot be read: {type(exc).__name__}: {exc}",
                                    element=filename))
            continue
        problems.extend(dmn.decision_problems(dmn_parser.decision))
    return problems


def validate_bundle(bundle: Bundle) -> list[Problem]:
    """Every problem of a bundle (an empty list when it would deploy); never raises for bad content."""
    try:
        parse_bundle(bundle)
    except Invalid as exc:
        return exc.problems
    return []


def _files_of(parser: Any, key: str, subs: Mapping[str, Any], bundle: Bundle) -> list[str]:
    """The source files a process is built from: its own, those of the processes it calls, and every DMN file.

    Every decision table travels with every process of the deployment: starters run tables before a case
    exists (pay_progression.rules), not only business rule tasks, so which ones a process needs is not visible
    in its diagram.
    """
    files: list[str] = []
    for name in (key, *subs):
        filename = getattr(parser.get_process_parser(name), "filename", None)
        if filename in bundle.sources and filename not in files:
            files.append(filename)
    files.extend(name for name in bundle.sources if name.lower().endswith(".dmn") and name not in files)
    return files or list(bundle.sources)


def _sequence_flows(roots: Iterable[etree._Element]) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(source id, target id) -> [(flow id, condition text)], so a condition's problem names its flow."""
    flows: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for root in roots:
        for flow in root.iter(f"{{{BPMN_NS}}}sequenceFlow"):
            source, target, ident = flow.get("sourceRef"), flow.get("targetRef"), flow.get("id")
            if source and target and ident:
                condition = flow.find(f"{{{BPMN_NS}}}conditionExpression")
                text = " ".join((condition.text or "").split()) if condition is not None else ""
                flows.setdefault((source, target), []).append((ident, text))
    return flows


def _flow_of(flows: Flows, source: str, target: str,
             condition: str) -> str | None:
    """The id of the flow from source to target that carries `condition`."""
    candidates = flows.get((source, target), [])
    if len(candidates) == 1:
        return candidates[0][0]
    wanted = " ".join(condition.split())
    return next((ident for ident, text in candidates if text == wanted), None)


def _dedupe(problems: Iterable[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


def _check_specs(specs: list[Any], bundle: Bundle, strict: bool,
                 flows: Flows) -> tuple[dict[str, Any], list[Problem]]:
    """Check what SpiffWorkflow does not: forms, scripts, conditions, timers, lanes, engine properties."""
    forms: dict[str, Any] = {}
    problems: list[Problem] = []
    timers: list[tuple[str, TimerEventDefinition]] = []
    for spec in specs:
        for ts in spec.task_specs.values():
            element = getattr(ts, "bpmn_id", None)
            if element is None:
                continue  # internal specs (Start, End, Root)
            if strict:
                problems.extend(_check_task_code(ts, element, flows))
                event_definition = getattr(ts, "event_definition", None)
                if isinstance(event_definition, TimerEventDefinition):
                    timers.append((element, event_definition))
            if is_human(ts):
                problems.extend(_check_human_task(ts, element, bundle, forms, strict))
            if strict and isinstance(ts, ServiceTask):
                problems.append(_service_task_problem(ts, element))
            if strict and getattr(ts, "output_item", None) is not None:
                problems.extend(_check_loop_output(spec, ts, element, bundle))
    if strict:
        # Timers last: their sample data comes from every form the process uses.
        sample = code_checks.sample_data(forms)
        for element, event_definition in timers:
            if (_timer_literal_problems(event_definition.expression)
                    or code_checks.code_problems("timer expression", event_definition.expression, "eval")):
                continue  # already reported
            problem = code_checks.evaluate_timer(event_definition, sample)
            if problem:
                problems.append(Problem(problem, element=element))
    return forms, problems


def _service_task_problem(ts: Any, element: str) -> Problem:
    """A service task calls a connector (SpiffArena's `serviceTaskOperator`), and this engine has none: refused at
    deploy rather than failing when a case reaches it."""
    operator = getattr(ts, "operation_name", None)
    called = f" calls the connector '{operator}', but" if operator else ""
    return Problem(f"this service task{called} the engine has no connectors: model the step as a script task or a "
                   "user task", element=element)


def is_human(ts: Any) -> bool:
    """A task a person does: every spec SpiffWorkflow opens for people (`manual`): user and manual tasks, and the
    untyped `bpmn:task`, which SpiffWorkflow runs as a manual task. All get the same checks, form and lane."""
    return bool(getattr(ts, "manual", False)) and getattr(ts, "bpmn_id", None) is not None


def _check_loop_output(spec: Any, ts: Any, element: str, bundle: Bundle) -> list[Problem]:
    """A multi-instance human task's output item must be a field of its form, or nothing ever sets it."""
    child = spec.task_specs.get(getattr(ts, "task_spec", None))
    if child is None or not is_human(child):
        return []
    item = ts.output_item.bpmn_id
    name = ((getattr(child, "extensions", None) or {}).get("properties", {})).get("formJsonSchemaFilename")
    if not name:
        return []  # a task without a form produces its activity's output item (casedata.declared_outputs)
    schema = (bundle.forms.get(name) or form_from_dir(bundle.forms_dir, name)) if name else None
    fields = schema.get("properties") if isinstance(schema, dict) else None
    if isinstance(fields, dict) and item in fields:
        return []
    where = f"its form '{name}' has no field '{item}'" if name else "the task has no form"
    return [Problem(f"the multi-instance output item '{item}' is never set: {where} "
                    "(only form fields are kept when a task is completed)", element=element)]


def _check_task_code(ts: Any, element: str, flows: Flows) -> list[Problem]:
    problems: list[Problem] = []
    snippets: list[tuple[str, str, str]] = []  # (label, source, mode)
    for attr, label in (("script", "script"), ("prescript", "pre-script"), ("postscript", "post-script")):
        source = getattr(ts, attr, None)
        if source:
            snippets.append((label, source, "exec"))
    for condition, target in getattr(ts, "cond_task_specs", []) or []:
        # SpiffWorkflow wraps each condition in a _BpmnCondition whose first argument is the text.
        text = condition.args[0] if hasattr(condition, "args") and condition.args else condition
        if isinstance(text, str) and text.strip():
            # Blame the sequence flow that carries the condition (a target with boundary events is
            # named "x.BoundaryEventSplit").
            flow = _flow_of(flows, element, str(target).split(".", 1)[0], text) or element
            problems.extend(Problem(m, element=flow) for m in code_checks.code_problems("condition", text, "eval"))
    event_definition = getattr(ts, "event_definition", None)
    if isinstance(event_definition, TimerEventDefinition):
        snippets.append(("timer expression", event_definition.expression, "eval"))
        problems.extend(Problem(m, element=element) for m in _timer_literal_problems(event_definition.expression))
    props = (getattr(ts, "extensions", None) or {}).get("properties", {})
    if props.get("dueAt"):
        snippets.append(("dueAt", props["dueAt"], "eval"))
    for lane in (x.strip() for x in (props.get("escalateTo") or "").split(",")):
        if lane and lane not in known_lanes():
            problems.append(Problem(
                f"escalateTo: lane '{lane}' does not resolve to a role (known: {', '.join(sorted(known_lanes()))})",
                element=element))
    for label, source, mode in snippets:
        problems.extend(Problem(m, element=element) for m in code_checks.code_problems(label, source, mode))
    return problems


def _timer_literal_problems(expression: str) -> list[str]:
    """Catch the timer mistakes SpiffWorkflow only reports when the timer is reached."""
    text = expression.strip()
    if not text:
        return ["timer expression is empty"]
    if text[0] not in "\"'" and ((text.upper().startswith(("P", "R")) and text[1:2].isdigit()) or text[:4].isdigit()):
        return [f"timer expression {text!r} is an unquoted literal; write it as a string, e.g. \"{text}\""]
    try:
        literal = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return []  # an expression over the data: evaluated with sample data later
    if not isinstance(literal, str):
        return [f"timer expression {text!r} is not an ISO 8601 string"]
    if literal.upper().startswith("P") and "T" in literal.upper() and "W" in literal.upper():
        return [f"{literal!r} is not a valid ISO 8601 duration (weeks cannot follow T; use \"P28D\" or \"P4W\")"]
    try:
        if literal.upper().startswith("R"):
            TimerEventDefinition.parse_iso_recurring_interval(literal)
        else:
            TimerEventDefinition.parse_time_or_duration(literal)
    except Exception as exc:  # SpiffWorkflow raises bare Exception for bad durations
        return [f"{literal!r} is not a valid ISO 8601 time, duration or cycle ({exc})"]
    return []


def _check_human_task(ts: Any, element: str, bundle: Bundle, forms: dict[str, Any], strict: bool) -> list[Problem]:
    problems: list[Problem] = []
    lane = ts.lane
    if strict and lane is not None and lane not in known_lanes():
        problems.append(Problem(
            f"lane '{lane}' does not resolve to a role (known: {', '.join(sorted(known_lanes()))})", element=element))
    props = (getattr(ts, "extensions", None) or {}).get("properties", {})
    for prop, required in (("formJsonSchemaFilename", True), ("formUiSchemaFilename", False)):
        name = props.get(prop)
        if not name:
            continue
        content = bundle.forms.get(name)
        if content is None:
            content = form_from_dir(bundle.forms_dir, name)
        if content is None:
            problems.append(Problem(f"form '{name}' ({prop}) is missing", element=element))
            continue
        if strict and json_depth(content, MAX_FORM_DEPTH) > MAX_FORM_DEPTH:
            problems.append(Problem(f"form '{name}' is nested deeper than {MAX_FORM_DEPTH} levels", element=element))
            continue
        if strict and required:
            problems.extend(Problem(f"form '{name}': {m}", element=element)
                            for m in form_checks.check_schema(content))
        elif strict and not isinstance(content, dict):
            problems.append(Problem(f"UI schema '{name}' must be a JSON object", element=element))
        forms[name] = content
    return problems
