"""Deploy-time checks SpiffWorkflow does not make, and readable messages for the ones it does.

SpiffWorkflow validates against the BPMN XSD with the `spiffworkflow` schema imported, but extension
elements are matched *laxly*: a misspelt `spiffworkflow:instructionForEndUser` passes and is silently
ignored, as is a misspelt property name. Timer expressions are only evaluated when the timer is reached.
These functions catch such mistakes at deploy time, each reported against the BPMN element to blame.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Iterable

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException

from engine.core.errors import Problem
from engine.workflow.code_checks import code_problems

SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
#: Ids SpiffWorkflow uses for its own task specs: a BPMN element with one of them breaks the workflow.
RESERVED_IDS = frozenset({"Start", "End", "Root"})
#: Every element of the spiffworkflow namespace SpiffWorkflow 3.2 reads (its XSD plus what its parsers look for).
SPIFF_ELEMENTS = frozenset({
    "calledDecisionId", "instructionsForEndUser", "messagePayload", "messageVariable", "payloadExpression",
    "variableName", "preScript", "postScript", "properties", "property", "unitTests", "unitTest", "inputJson",
    "expectedOutputJson", "serviceTaskOperator", "parameters", "parameter", "retry", "taskMetadataValues",
    "taskMetadataValue", "processVariableCorrelation", "propertyId", "expression", "category",
})  # fmt: skip
#: The `spiffworkflow:property` names this engine reads (other names are kept but unused).
ENGINE_PROPERTIES = frozenset({"formJsonSchemaFilename", "formUiSchemaFilename", "clause", "dueAt", "escalateTo"})


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
    ("Cannot resolve data",
     "data associations must point at a data object declared in the same process or in one that encloses it"),
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


# --------------------------------------------------------------------------- data object references

#: Elements SpiffWorkflow gives a process parser of their own: their data objects are visible inside them.
_SCOPES = frozenset(f"{{{BPMN_NS}}}{tag}" for tag in ("process", "subProcess", "transaction", "adHocSubProcess"))
#: (association, the child the parser reads as the reference id)
_DATA_REFS = frozenset({(f"{{{BPMN_NS}}}dataInputAssociation", f"{{{BPMN_NS}}}sourceRef"),
                        (f"{{{BPMN_NS}}}dataOutputAssociation", f"{{{BPMN_NS}}}targetRef")})


def _scopes(node: etree._Element) -> list[etree._Element]:
    """The (sub)processes enclosing `node`, innermost first (not `node` itself)."""
    found: list[etree._Element] = []
    parent = node.getparent()
    while parent is not None:
        if parent.tag in _SCOPES:
            found.append(parent)
        parent = parent.getparent()
    return found


def data_reference_problems(root: etree._Element) -> list[tuple[str, Problem]]:
    """Data associations whose dataObjectReference names no data object the task can see, before the parser runs.

    Mirrors SpiffWorkflow's lookup: the reference by id (the last one inside the task's own (sub)process,
    else the first in the file), then its data object among those declared directly in that (sub)process
    and the ones enclosing it. SpiffWorkflow 3.2 looped forever on such a reference inside a subprocess
    (see definitions.DeployParser). Indexed up front: the file is untrusted and may hold thousands of them.
    Returns (id of the element that carries the association, problem naming the reference).
    """
    first_ref: dict[str, etree._Element] = {}  # reference id -> first dataObjectReference in the file
    scoped_ref: dict[tuple[int, str], etree._Element] = {}  # (scope, reference id) -> last one inside it
    for node in root.iter(f"{{{BPMN_NS}}}dataObjectReference"):
        ident = node.get("id")
        if ident is not None:
            first_ref.setdefault(ident, node)
            for scope in _scopes(node):
                scoped_ref[(id(scope), ident)] = node
    declared: dict[int, set[str]] = {}  # scope -> ids of the data objects declared directly in it
    declared_in: dict[str, etree._Element] = {}  # data object id -> the first element that declares it
    for node in root.iter(f"{{{BPMN_NS}}}dataObject"):
        ident, parent = node.get("id"), node.getparent()
        if ident is not None and parent is not None:
            declared.setdefault(id(parent), set()).add(ident)
            declared_in.setdefault(ident, parent)
    found: list[tuple[str, Problem]] = []
    for ref_node in root.iter(f"{{{BPMN_NS}}}sourceRef", f"{{{BPMN_NS}}}targetRef"):
        association = ref_node.getparent()
        user = association.getparent() if association is not None else None
        if association is None or user is None or (association.tag, ref_node.tag) not in _DATA_REFS:
            continue
        chain = _scopes(user)
        name = ref_node.text
        if not chain or name is None:
            continue
        reference = scoped_ref.get((id(chain[0]), name), first_ref.get(name))
        if reference is None:
            continue  # a data store reference, or nothing: SpiffWorkflow says so itself, without looping
        target = reference.get("dataObjectRef")
        if target is not None and any(target in declared.get(id(scope), ()) for scope in chain):
            continue
        user_id = owner_id(user) or name
        scope_id = chain[0].get("id") or "the process"
        if not target:
            message = f"dataObjectReference '{name}' (used by '{user_id}') names no data object (no dataObjectRef)"
        else:
            message = (f"dataObjectReference '{name}' (used by '{user_id}') refers to '{target}', which is not a "
                       f"data object of '{scope_id}' or of a (sub)process enclosing it")
            holder = owner_id(declared_in.get(target))
            if holder:
                message += (f"; it is declared in '{holder}', which '{scope_id}' cannot see (a data object is "
                            "visible in the (sub)process that declares it and in the subprocesses inside that)")
        found.append((user_id, Problem(message, element=name)))
    return found


# --------------------------------------------------------------------------- decision tables

#: Longest input entry accepted. SpiffWorkflow's DMNEngine finds the '?' of a cell with a regular expression
#: that takes time growing with the square of the cell's length, at every evaluation of the rule.
MAX_DMN_CELL = 1000
_DMN_CELL_FORMS = ("a cell is a value (5, \"text\", True), a comparison that follows the input (> 5, "
                   "in (1, 2)), a test with ? for the input (0 < ? < 5), or - for any value")


def dmn_question_marks(cell: str) -> str:
    """The cell with each '?' outside quotes replaced by `dmninputexpr`, as DMNEngine.evaluate does.

    The engine's `re.sub(r'(\\?)(?=(?:[^\\'"]|[\\'"][^\\'"]*[\\'"])*$)', ...)` replaces a '?' when an even number
    of quote characters follows it; counted here from the end, in linear time (the regular expression is
    quadratic, and a cell is untrusted input).
    """
    out: list[str] = []
    quotes = 0
    for char in reversed(cell):
        if char in "'\"":
            quotes += 1
        out.append("dmninputexpr" if char == "?" and quotes % 2 == 0 else char)
    return "".join(reversed(out))


def _shown(text: str, limit: int = 80) -> str:
    """`text` quoted for a message, cut short if long (a cell or an expression can be large)."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


def _exec_parses(text: str) -> bool | None:
    """SpiffWorkflow's `PythonScriptEngine.validate`: True, False on SyntaxError, None when it raises otherwise."""
    try:
        ast.parse(text)
    except SyntaxError:
        return False
    except (ValueError, RecursionError, MemoryError):
        return None
    return True


def _is_tuple(expression: str) -> bool:
    try:
        return isinstance(ast.parse(expression.strip(), mode="eval").body, ast.Tuple)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False


def dmn_cell_problems(where: str, input_expression: str | None, cell: str) -> list[str]:
    """Problems of one input entry, compiled as SpiffWorkflow's DMNEngine.evaluate builds it.

    The engine turns a cell into one expression: with a '?', the cell itself (the input is bound to '?');
    a cell that parses alone is compared for equality, `(input) == (cell)`; otherwise the input is written
    in front of it, `input + cell` (so `> 5` becomes `input> 5`). Without an input expression the engine
    uses the value of the data field named by the input's label; a literal stands in for it here.
    """
    if len(cell) > MAX_DMN_CELL:
        return [f"{where}: the cell is {len(cell)} characters long; at most {MAX_DMN_CELL} are accepted"]
    label = f"{where}: invalid expression {_shown(cell)}"
    matched = dmn_question_marks(cell)
    if "dmninputexpr" in matched:
        return code_problems(label, matched, "eval")
    value = input_expression or "(0)"
    alone = _exec_parses(cell)
    if alone:
        expression = f"({value}) == ({cell})"
    elif alone is False and _exec_parses(f"v {cell}"):
        expression = value + cell
        glued = input_expression is not None and (input_expression[-1:].isalnum() or input_expression.endswith("_"))
        if glued and (cell[:1].isalpha() or cell.startswith("_")):
            return [f"{where}: the engine writes the input and the cell together without a space, which reads "
                    f"{_shown(expression)}; write the cell as '? {cell}' or start it with a space"]
    else:
        return [f"{label}: the engine can read it neither alone nor after the input; {_DMN_CELL_FORMS}"]
    found = code_problems(label, expression, "eval")
    if found:
        return found
    if not cell.strip():
        return [f"{where}: the cell holds only blanks, which the engine compares with an empty tuple, so the "
                "rule never matches; leave the cell empty or write -"]
    if alone and _is_tuple(cell) and not _is_tuple(value):
        return [f"{where}: {_shown(cell)} is compared with the input as one tuple, so the rule never matches a "
                f"single value (this engine has no FEEL lists); to match any of them write 'in ({cell.strip()})'"]
    return []


# decision_problems and dmn_parse_problem, which name a cell's table, rule and column, are in workflow.dmn.
