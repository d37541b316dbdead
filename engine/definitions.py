"""Process definitions: validate untrusted BPMN, deploy numbered versions, cache the parsed specs.

A deployment is a set of BPMN/DMN sources plus the JSON Schema forms their user tasks name. Every
executable process in it becomes one `ProcessDefinition` row (key = BPMN process id) whose version
counts up per key. Identical content deployed again is a no-op.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as safe_et
from defusedxml import DefusedXmlException
from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.manual_task import ManualTask
from SpiffWorkflow.bpmn.specs.mixins.user_task import UserTask
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import forms as form_checks
from engine import validation as checks
from engine.assignment import KNOWN_LANES
from engine.clock import CLOCK
from engine.errors import Invalid, Problem
from engine.models import AuditEvent, ProcessDefinition

MAX_SOURCE_BYTES = 2 * 1024 * 1024
MAX_FORM_BYTES = 512 * 1024
RESERVED_IDS = checks.RESERVED_IDS
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
DMN_NAMESPACES = ("https://www.omg.org/spec/DMN/", "http://www.omg.org/spec/DMN/")
#: (source id, target id) -> [(sequence flow id, condition text)]
Flows = Mapping[tuple[str, str], list[tuple[str, str]]]

log = logging.getLogger(__name__)


@dataclass
class Bundle:
    """What one deployment carries: sources by filename, forms by filename."""

    sources: dict[str, str] = field(default_factory=dict)
    forms: dict[str, Any] = field(default_factory=dict)
    forms_dir: Path | None = None  # where named forms not in the upload are looked up


@dataclass
class ParsedProcess:
    """One executable process parsed from a bundle, with the forms it uses."""

    key: str
    name: str
    spec: Any
    subprocess_specs: dict[str, Any]
    forms: dict[str, Any]
    files: list[str] = field(default_factory=list)  # the sources it is built from


@dataclass(frozen=True)
class Deployed:
    """The result of deploying one process: its key and version, and whether it was new."""

    key: str
    version: int
    created: bool


# --------------------------------------------------------------------------- reading untrusted input


def _decode(name: str, raw: bytes | str, limit: int) -> str:
    data = raw.encode() if isinstance(raw, str) else raw
    if len(data) > limit:
        raise Invalid(f"{name}: file is larger than {limit // 1024} KiB", [Problem(
            f"file is larger than {limit // 1024} KiB", element=name)])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Invalid(f"{name}: not UTF-8", [Problem("file is not UTF-8 text", element=name)]) from exc


def safe_xml(name: str, text: str) -> etree._Element:
    """Parse untrusted XML: no DTDs or entities (XXE, billion laughs), no network, bounded size."""
    try:
        # defusedxml refuses any DOCTYPE/entity declaration before lxml sees the document.
        safe_et.fromstring(text.encode(), forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise Invalid(f"{name}: refused", [Problem(
            f"DTDs and entity declarations are not allowed ({type(exc).__name__})", element=name)]) from exc
    except safe_et.ParseError as exc:
        raise Invalid(f"{name}: not well-formed XML", [Problem(
            f"not well-formed XML: {exc}", element=name)]) from exc
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                             remove_comments=True)
    try:
        root = etree.fromstring(text.encode(), parser=parser)
    except etree.XMLSyntaxError as exc:  # lxml's own limits (nesting past 256 levels...) and what expat let by
        raise Invalid(f"{name}: refused", [Problem(f"not an XML document this service reads: {exc}",
                                                   element=name)]) from exc
    depth, deepest = _depth(root)
    if depth > MAX_XML_DEPTH:
        where = deepest.get("id") or etree.QName(deepest).localname
        raise Invalid(f"{name}: nested too deep", [Problem(
            f"elements are nested {depth} levels deep (at most {MAX_XML_DEPTH}), at {where}", element=name)])
    return root


#: The deepest nesting of elements a diagram may have: real diagrams stay under 30 (subprocesses in
#: subprocesses with their extension elements); the parsers that read them recurse once or more per level.
MAX_XML_DEPTH = 100


#: The deepest nesting of objects and lists a form (JSON schema or UI schema) may have: the forms in forms/ stay
#: at 10 or less; jsonschema's check and the form renderer recurse several frames per level (at 75 levels of
#: "properties" a check of the schema ran out of stack: a server error).
MAX_FORM_DEPTH = 32


def json_depth(value: Any, limit: int) -> int:
    """How deeply objects and lists nest in `value` (a scalar is 0, `{}` and `[1]` are 1); iteratively, and it
    stops counting past `limit`."""
    depth, level = 0, [value]
    while depth <= limit:
        containers = [item for item in level if isinstance(item, dict | list)]
        if not containers:
            return depth
        depth += 1
        level = [child for item in containers for child in (item.values() if isinstance(item, dict) else item)]
    return depth


def _depth(root: etree._Element) -> tuple[int, etree._Element]:
    """How deep the elements are nested (the root is 1), and the element deepest down; iteratively."""
    deepest, best = root, 1
    stack = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        if depth > best:
            deepest, best = element, depth
        stack.extend((child, depth + 1) for child in element if isinstance(child.tag, str))
    return best, deepest


def read_bundle(files: Mapping[str, bytes | str], forms_dir: Path | None) -> Bundle:
    """Sort uploaded files into sources (.bpmn/.dmn) and forms (.json); read names forms from forms_dir."""
    bundle = Bundle(forms_dir=forms_dir)
    for name, raw in files.items():
        base = Path(name).name
        lower = base.lower()
        if lower.endswith((".bpmn", ".dmn", ".xml")):
            bundle.sources[base] = _decode(base, raw, MAX_SOURCE_BYTES)
        elif lower.endswith(".json"):
            text = _decode(base, raw, MAX_FORM_BYTES)
            try:
                bundle.forms[base] = json.loads(text)
            except json.JSONDecodeError as exc:
                raise Invalid(f"{base}: not valid JSON", [Problem(
                    f"not valid JSON: {exc.msg} (line {exc.lineno})", element=base)]) from exc
            except RecursionError as exc:  # "[[[[..." nested deeper than the parser's stack
                raise Invalid(f"{base}: nested too deeply", [Problem(
                    "not accepted: the JSON is nested too deeply", element=base)]) from exc
        else:
            raise Invalid(f"{base}: unsupported file", [Problem(
                "only .bpmn, .dmn and .json files can be deployed", element=base)])
    if not bundle.sources:
        raise Invalid("nothing to deploy", [Problem("no .bpmn file was given")])
    return bundle


def _form_from_dir(forms_dir: Path | None, name: str) -> Any | None:
    if forms_dir is None or "/" in name or "\\" in name or name.startswith("."):
        return None
    path = forms_dir / name
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None


# --------------------------------------------------------------------------- parsing and validation


def _is_dmn(root: etree._Element) -> bool:
    return isinstance(root.tag, str) and root.tag.startswith("{") and root.tag[1:].startswith(DMN_NAMESPACES)


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
            if _is_dmn(root):
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
            problems.append(_parser_problem(exc, key, roots))
            continue
        except Exception as exc:  # see above
            log.info("building %s failed", key, exc_info=True)
            problems.append(Problem(f"cannot build process: {type(exc).__name__}: {exc}", element=key))
            continue
        all_specs = [spec, *(s for s in subs.values() if s is not None)]
        forms, spec_problems = _check_specs(all_specs, bundle, strict, flows)
        problems.extend(spec_problems)
        missing = [name for name, s in subs.items() if s is None]
        problems.extend(Problem(f"called process '{m}' is not in this deployment", element=m) for m in missing)
        files = _files_of(parser, key, subs, bundle)
        parsed.append(ParsedProcess(key, spec.description or key, spec, subs, forms, files))
    if problems:
        raise Invalid("the definition was refused", _dedupe(problems))
    return parsed


def _parser_problem(exc: ValidationException, fallback: str, roots: Mapping[str, etree._Element]) -> Problem:
    """A ValidationException raised while building specs, against the file it names."""
    file_name = getattr(exc, "file_name", "") or ""
    root = roots.get(file_name)
    if root is not None and _is_dmn(root):
        return checks.dmn_parse_problem(exc, file_name, root)
    return checks.parser_problem(exc, file_name or fallback, root)


def _check_decisions(parser: Any, roots: Mapping[str, etree._Element]) -> list[Problem]:
    """Parse every decision table of the bundle and compile its expressions and cells.

    SpiffWorkflow parses a table only when a business rule task is built, and its engine compiles cells
    only when a rule is evaluated; the starters run tables before any case exists (engine.d19_rules).
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
        problems.extend(checks.decision_problems(dmn_parser.decision))
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
    exists (engine.d19_rules), not only business rule tasks, so which ones a process needs is not visible
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
            if isinstance(ts, UserTask | ManualTask):
                problems.extend(_check_human_task(ts, element, bundle, forms, strict))
            if strict and getattr(ts, "output_item", None) is not None:
                problems.extend(_check_loop_output(spec, ts, element, bundle))
    if strict:
        # Timers last: their sample data comes from every form the process uses.
        sample = checks.sample_data(forms)
        for element, event_definition in timers:
            if (_timer_literal_problems(event_definition.expression)
                    or checks.code_problems("timer expression", event_definition.expression, "eval")):
                continue  # already reported
            problem = checks.evaluate_timer(event_definition, sample)
            if problem:
                problems.append(Problem(problem, element=element))
    return forms, problems


def _check_loop_output(spec: Any, ts: Any, element: str, bundle: Bundle) -> list[Problem]:
    """A multi-instance human task's output item must be a field of its form, or nothing ever sets it."""
    child = spec.task_specs.get(getattr(ts, "task_spec", None))
    if not isinstance(child, UserTask | ManualTask):
        return []
    item = ts.output_item.bpmn_id
    name = ((getattr(child, "extensions", None) or {}).get("properties", {})).get("formJsonSchemaFilename")
    schema = (bundle.forms.get(name) or _form_from_dir(bundle.forms_dir, name)) if name else None
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
            problems.extend(Problem(m, element=flow) for m in checks.code_problems("condition", text, "eval"))
    event_definition = getattr(ts, "event_definition", None)
    if isinstance(event_definition, TimerEventDefinition):
        snippets.append(("timer expression", event_definition.expression, "eval"))
        problems.extend(Problem(m, element=element) for m in _timer_literal_problems(event_definition.expression))
    props = (getattr(ts, "extensions", None) or {}).get("properties", {})
    if props.get("dueAt"):
        snippets.append(("dueAt", props["dueAt"], "eval"))
    for lane in (x.strip() for x in (props.get("escalateTo") or "").split(",")):
        if lane and lane not in KNOWN_LANES:
            problems.append(Problem(
                f"escalateTo: lane '{lane}' does not resolve to a role (known: {', '.join(sorted(KNOWN_LANES))})",
                element=element))
    for label, source, mode in snippets:
        problems.extend(Problem(m, element=element) for m in checks.code_problems(label, source, mode))
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
    if strict and lane is not None and lane not in KNOWN_LANES:
        problems.append(Problem(
            f"lane '{lane}' does not resolve to a role (known: {', '.join(sorted(KNOWN_LANES))})", element=element))
    props = (getattr(ts, "extensions", None) or {}).get("properties", {})
    for prop, required in (("formJsonSchemaFilename", True), ("formUiSchemaFilename", False)):
        name = props.get(prop)
        if not name:
            continue
        content = bundle.forms.get(name)
        if content is None:
            content = _form_from_dir(bundle.forms_dir, name)
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


# --------------------------------------------------------------------------- deployment


def content_hash(sources: Mapping[str, str], forms: Mapping[str, Any]) -> str:
    """A stable hash of what a version runs: its sources and the forms it uses."""
    canonical = json.dumps({"sources": dict(sources), "forms": dict(forms)}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def deploy(session: Session, bundle: Bundle, actor: str, reason: str | None = None) -> list[Deployed]:
    """Validate the bundle and add a version for each executable process whose content changed.

    A version keeps only the files its process is built from, so editing one diagram of a folder does
    not make new versions of the others. Each new version is audited (kind "deployed", no case).
    """
    parsed = parse_bundle(bundle)
    results: list[Deployed] = []
    now = CLOCK.now()
    for proc in parsed:
        sources = {name: bundle.sources[name] for name in proc.files}
        digest = content_hash(sources, proc.forms)
        latest = latest_definition(session, proc.key)
        if latest is not None and latest.content_hash == digest:
            results.append(Deployed(proc.key, latest.version, created=False))
            continue
        version = (latest.version + 1) if latest is not None else 1
        row = ProcessDefinition(
            key=proc.key, version=version, name=proc.name, sources=sources, forms=proc.forms,
            content_hash=digest, executable=True, deployed_at=now, deployed_by=actor,
        )
        session.add(row)
        session.flush()
        detail: dict[str, Any] = {"process": proc.key, "version": version, "definition_id": row.id,
                                  "files": sorted(sources), "forms": sorted(proc.forms), "content_hash": digest}
        if reason:
            detail["reason"] = reason
        session.add(AuditEvent(instance_id=None, at=now, actor=actor, kind="deployed", detail=detail))
        SPECS.put(row, proc)
        results.append(Deployed(proc.key, version, created=True))
    return results


def latest_definition(session: Session, key: str) -> ProcessDefinition | None:
    """The newest version of a process key, or None."""
    return session.scalars(
        select(ProcessDefinition).where(ProcessDefinition.key == key)
        .order_by(ProcessDefinition.version.desc()).limit(1)
    ).first()


def list_latest(session: Session) -> list[ProcessDefinition]:
    """The newest version of every deployed process."""
    newest = (select(ProcessDefinition.key, func.max(ProcessDefinition.version).label("v"))
              .group_by(ProcessDefinition.key).subquery())
    return list(session.scalars(
        select(ProcessDefinition).join(newest, (ProcessDefinition.key == newest.c.key)
                                       & (ProcessDefinition.version == newest.c.v))
        .order_by(ProcessDefinition.key)
    ))


# --------------------------------------------------------------------------- spec cache


class SpecCache:
    """Parsed specs by definition id: each version is parsed once per process."""

    # Keyed by (process key, content hash), not row id: a rolled-back deployment's id can be reused.

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._specs: dict[tuple[str, str], ParsedProcess] = {}

    def put(self, definition: ProcessDefinition, parsed: ParsedProcess) -> None:
        """Remember a freshly parsed version."""
        with self._lock:
            self._specs[(definition.key, definition.content_hash)] = parsed

    def get(self, definition: ProcessDefinition) -> ParsedProcess:
        """The parsed spec of a stored version, parsing its sources on first use."""
        with self._lock:
            cached = self._specs.get((definition.key, definition.content_hash))
        if cached is not None:
            return cached
        bundle = Bundle(sources=dict(definition.sources), forms=dict(definition.forms))
        for proc in parse_bundle(bundle, strict=False):
            if proc.key == definition.key:
                self.put(definition, proc)
                return proc
        raise Invalid(f"stored definition {definition.key} v{definition.version} has no such process")

    def clear(self) -> None:
        """Forget everything (tests)."""
        with self._lock:
            self._specs.clear()


SPECS = SpecCache()
