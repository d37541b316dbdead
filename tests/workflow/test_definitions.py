"""Deploy-time validation and versioning: every problem names its element; hostile XML is refused; a version
keeps only its own files; every deployment is audited; stored versions load even if checks tighten later."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from xml.sax.saxutils import escape

import pytest
from hypothesis import given
from hypothesis import strategies as st
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from sqlalchemy import select

from engine.core.errors import Invalid, Problem
from engine.core.models import AuditEvent
from engine.workflow.bundles import Bundle, read_bundle, safe_xml
from engine.workflow.definitions import SPECS, deploy
from engine.workflow.models import ProcessDefinition
from engine.workflow.parsing import parse_bundle, validate_bundle
from engine.workflow.runtime import Runtime
from engine.workflow.scripts import make_script_engine
from engine.workflow.validation import dmn_question_marks

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="defs" targetNamespace="http://ntps.example/tests">
"""
FORM = {"type": "object", "properties": {"answer": {"type": "object", "properties": {
    "due": {"type": "string", "format": "date"}}}}}


def process(body: str, key: str = "p", lanes: str = "") -> str:
    return HEAD + f"""  <bpmn:process id="{key}" isExecutable="true">{lanes}
    <bpmn:startEvent id="s"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f0" sourceRef="s" targetRef="t1" />
{body}
  </bpmn:process>
</bpmn:definitions>
"""


def user_task(extensions: str = "", tail: str = "") -> str:
    """s -> t1 (user task) -> e, with `tail` (more elements) and `extensions` inside t1."""
    return f"""    <bpmn:userTask id="t1" name="Task one"><bpmn:extensionElements>{extensions}</bpmn:extensionElements>
      <bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>f1</bpmn:outgoing></bpmn:userTask>
    <bpmn:sequenceFlow id="f1" sourceRef="t1" targetRef="e" />
    <bpmn:endEvent id="e"><bpmn:incoming>f1</bpmn:incoming></bpmn:endEvent>
{tail}"""


def problems(text: str, forms: dict[str, object] | None = None) -> list[Problem]:
    return validate_bundle(Bundle(sources={"p.bpmn": text}, forms=dict(forms or {})))


def messages(found: list[Problem]) -> dict[str | None, str]:
    return {p.element: p.message for p in found}


def test_a_valid_diagram_has_no_problems() -> None:
    assert problems(process(user_task('<spiffworkflow:properties><spiffworkflow:property name="clause" '
                                      'value="D19-7" /></spiffworkflow:properties>'))) == []


def test_misspelt_extension_elements_and_properties_are_named() -> None:
    text = process(user_task(
        "<spiffworkflow:instructionForEndUser>Hello</spiffworkflow:instructionForEndUser>"
        '<spiffworkflow:properties><spiffworkflow:property name="formJsonSchemaFileName" value="f.json" />'
        '<spiffworkflow:property name="escalateto" value="HR" /></spiffworkflow:properties>'))
    found = problems(text)
    assert all(p.element == "t1" for p in found)
    joined = " | ".join(p.message for p in found)
    assert "spiffworkflow:instructionForEndUser; did you mean spiffworkflow:instructionsForEndUser?" in joined
    assert "'formJsonSchemaFileName' is not read by the engine; did you mean 'formJsonSchemaFilename'?" in joined
    assert "did you mean 'escalateTo'?" in joined


def test_engine_properties_are_checked() -> None:
    text = process(user_task(
        '<spiffworkflow:properties><spiffworkflow:property name="dueAt" value="__import__(1)" />'
        '<spiffworkflow:property name="escalateTo" value="Manager, Finance Team" />'
        '<spiffworkflow:property name="formJsonSchemaFilename" value="missing.json" />'
        "</spiffworkflow:properties><spiffworkflow:instructionsForEndUser>{{ employee"
        "</spiffworkflow:instructionsForEndUser>"))
    joined = " | ".join(p.message for p in problems(text))
    assert "dueAt: name '__import__' is not allowed" in joined
    assert "escalateTo: lane 'Finance Team' does not resolve to a role" in joined
    assert "form 'missing.json' (formJsonSchemaFilename) is missing" in joined
    assert "instructions: template error" in joined


def test_lanes_must_be_roles() -> None:
    lanes = """<bpmn:laneSet id="ls"><bpmn:lane id="lane_fin" name="Finance Team">
      <bpmn:flowNodeRef>t1</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>"""
    found = problems(process(user_task(), lanes=lanes))
    assert messages(found)["t1"].startswith("lane 'Finance Team' does not resolve to a role (known: CEO")


def test_reserved_ids_are_refused() -> None:
    found = problems(process(user_task(tail='    <bpmn:dataObject id="Root" />')))
    assert messages(found)["Root"] == "the id 'Root' is reserved by the engine; rename it"


def test_scripts_modules_unknown_functions_and_conditions_name_their_element() -> None:
    body = """    <bpmn:scriptTask id="t1" name="Script">
      <bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>f1</bpmn:outgoing>
      <bpmn:script>start = time.time()
who = get_process_initiator_user()
ok = add_days("2026-01-01", 3)</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f1" sourceRef="t1" targetRef="gw" />
    <bpmn:exclusiveGateway id="gw"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f_gw</bpmn:outgoing>
      <bpmn:outgoing>f_gw2</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="f_gw" sourceRef="gw" targetRef="e">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">().__class__</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_gw2" sourceRef="gw" targetRef="e">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">True</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:endEvent id="e"><bpmn:incoming>f_gw</bpmn:incoming><bpmn:incoming>f_gw2</bpmn:incoming></bpmn:endEvent>"""
    found = problems(process(body))
    script = [p.message for p in found if p.element == "t1"]
    assert any("'time' is a Python module" in m for m in script)
    assert any("function 'get_process_initiator_user' does not exist here" in m for m in script)
    assert not any("function 'add_days'" in m for m in script)  # a helper the engine provides
    assert "__class__" in messages(found)["f_gw"]  # the flow that carries the condition, not the gateway


TIMER = """    <bpmn:boundaryEvent id="late" attachedToRef="t1"><bpmn:outgoing>f_late</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:{kind}>{expression}</bpmn:{kind}></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f_late" sourceRef="late" targetRef="e_late" />
    <bpmn:endEvent id="e_late"><bpmn:incoming>f_late</bpmn:incoming></bpmn:endEvent>"""


@pytest.mark.parametrize(("kind", "expression", "expected"), [
    ("timeDuration", '"P14D"', None),
    ("timeDate", "timer_at(add_days(answer['due'], 28))", None),
    ("timeCycle", '"R2/" + timer_at(work_due) + "/P7D"', None),
    ("timeDuration", "P14D", "unquoted literal"),
    ("timeDuration", '"PT4W"', "weeks cannot follow T"),
    ("timeDate", '"P14D"', "a date timer needs an ISO 8601 date-time"),
    ("timeDate", "add_days(answer['due'], 28) + 'T25:00'", "not a valid ISO 8601 date"),
    ("timeCycle", "'P7D'", "not a valid ISO 8601"),
    ("timeDuration", "14.5", "not an ISO 8601 string"),
    ("timeDuration", "len(answer) * 2", "gives a int"),
    ("timeDate", "open('/etc/passwd')", "name 'open' is not allowed"),
    ("timeDuration", "'P' + str(days_left) + 'D'", None),  # unknown data: cannot be judged from a sample
])
def test_timers_are_compiled_and_evaluated_with_sample_data(kind: str, expression: str, expected: str | None) -> None:
    extensions = ('<spiffworkflow:properties><spiffworkflow:property name="formJsonSchemaFilename" value="f.json" />'
                  "</spiffworkflow:properties>")
    found = problems(process(user_task(extensions, TIMER.format(kind=kind, expression=expression))), {"f.json": FORM})
    if expected is None:
        assert found == []
    else:
        assert len(found) >= 1 and found[0].element == "late" and expected in found[0].message, found


def test_conf_a_form_less_multi_instance_task_produces_its_output_item() -> None:
    """Issue 18: an instance without a form is completed with its output item (runtime._form_data); before, such a
    diagram was refused at deploy ("the task has no form")."""
    body = """    <bpmn:userTask id="t1" name="Each"><bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>f1</bpmn:outgoing>
      <bpmn:multiInstanceLoopCharacteristics><bpmn:loopDataInputRef>items</bpmn:loopDataInputRef>
        <bpmn:loopDataOutputRef>results</bpmn:loopDataOutputRef><bpmn:inputDataItem id="item" name="item" />
        <bpmn:outputDataItem id="result" name="result" /></bpmn:multiInstanceLoopCharacteristics></bpmn:userTask>
    <bpmn:sequenceFlow id="f1" sourceRef="t1" targetRef="e" />
    <bpmn:endEvent id="e"><bpmn:incoming>f1</bpmn:incoming></bpmn:endEvent>"""
    assert "t1" not in messages(problems(process(body)))


def test_xsd_errors_name_the_element_by_line() -> None:
    text = process(user_task()).replace('<bpmn:endEvent id="e">', '<bpmn:endEvent id="e"><bpmn:bogus />')
    [found] = problems(text)
    assert found.element == "e" and "bpmn:bogus" in found.message and "line" in found.message


@pytest.mark.parametrize("text", [
    '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>',
    '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><d>&b;</d>',
    '<?xml version="1.0"?><!DOCTYPE d SYSTEM "http://127.0.0.1:9/x.dtd"><d/>',
])
def test_hostile_xml_is_refused_before_parsing(text: str) -> None:
    with pytest.raises(Invalid) as refused:
        parse_bundle(read_bundle({"x.bpmn": text}, None))
    assert "DTDs and entity declarations are not allowed" in refused.value.problems[0].message


def test_size_and_encoding_limits() -> None:
    with pytest.raises(Invalid, match="larger than 2048 KiB"):
        read_bundle({"big.bpmn": b" " * (2 * 1024 * 1024 + 1)}, None)
    with pytest.raises(Invalid, match="larger than 512 KiB"):
        read_bundle({"f.json": b" " * (512 * 1024 + 1), "p.bpmn": b"<x/>"}, None)
    with pytest.raises(Invalid, match="not UTF-8"):
        read_bundle({"p.bpmn": "<x>é</x>".encode("latin-1")}, None)
    with pytest.raises(Invalid, match="nested too deeply"):
        read_bundle({"f.json": b"[" * 50_000, "p.bpmn": b"<x/>"}, None)


def test_each_version_keeps_its_own_files_and_deploys_are_audited(runtime: Runtime) -> None:
    files = {"a.bpmn": process(user_task(), key="proc_a"), "b.bpmn": process(user_task(), key="proc_b")}
    with runtime.db.unit_of_work() as uow:
        first = deploy(uow.session, read_bundle(files, None), "owner")
        uow.commit()
    assert sorted((r.key, r.version) for r in first) == [("proc_a", 1), ("proc_b", 1)]
    files["b.bpmn"] = process(user_task().replace("Task one", "Task one, renamed"), key="proc_b")
    with runtime.db.unit_of_work() as uow:
        second = deploy(uow.session, read_bundle(files, None), "owner", reason="because")
        uow.commit()
    assert sorted((r.key, r.version, r.created) for r in second) == [("proc_a", 1, False), ("proc_b", 2, True)]
    with runtime.db.read() as s:
        rows = {(r.key, r.version): r for r in s.scalars(select(ProcessDefinition))}
        assert set(rows[("proc_a", 1)].sources) == {"a.bpmn"}
        assert set(rows[("proc_b", 2)].sources) == {"b.bpmn"}
        events = [e.detail for e in s.scalars(select(AuditEvent).where(AuditEvent.kind == "deployed")
                                               .order_by(AuditEvent.id))]
        assert [(e["process"], e["version"]) for e in events] == [("proc_a", 1), ("proc_b", 1), ("proc_b", 2)]
        assert events[-1]["reason"] == "because" and events[-1]["files"] == ["b.bpmn"]
        assert s.scalars(select(AuditEvent.instance_id).where(AuditEvent.kind == "deployed")).all() == [None] * 3


def test_a_stored_version_loads_even_when_checks_tighten_later(runtime: Runtime) -> None:
    # A version deployed before a check existed (stored directly here) must still load for its running cases.
    text = process("""    <bpmn:scriptTask id="t1"><bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>f1</bpmn:outgoing>
      <bpmn:script>x = time.time()</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f1" sourceRef="t1" targetRef="e" />
    <bpmn:endEvent id="e"><bpmn:incoming>f1</bpmn:incoming></bpmn:endEvent>""", key="legacy")
    with pytest.raises(Invalid):
        parse_bundle(Bundle(sources={"l.bpmn": text}))
    [parsed] = parse_bundle(Bundle(sources={"l.bpmn": text}), strict=False)
    row = ProcessDefinition(key="legacy", version=1, content_hash="x" * 64, sources={"l.bpmn": text}, forms={})
    SPECS.clear()
    assert SPECS.get(row).key == parsed.key == "legacy"


# --------------------------------------------------------------------------- hostile uploads: parser loops (DoS)

FIXTURES = Path(__file__).parent / "fixtures_deploy"
DEEP = (FIXTURES / "data_object_two_subprocesses_deep.bpmn").read_text()


class _Hung(BaseException):
    """Raised by `deadline`: a BaseException, so that no `except Exception` in the code under test hides it."""


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail (instead of hanging the suite) when the block runs longer than `seconds` (pytest-timeout is not used)."""
    def expired(signum: int, frame: object) -> None:
        raise _Hung(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_dos_spiffworkflow_3_2_itself_still_loops_on_a_reference_two_subprocesses_deep() -> None:
    # Documents why engine.workflow.definitions.DeployParser exists: when this fails, SpiffWorkflow has fixed
    # NodeParser._resolve_data_object_ref and DeployParser can go.
    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_bpmn_xml(safe_xml("deep.bpmn", DEEP), filename="deep.bpmn")
    with pytest.raises(_Hung), deadline(2):
        parser.get_subprocess_specs("deep")


def test_dos_data_object_two_subprocesses_deep_deploys_and_runs() -> None:
    with deadline(10):
        [parsed] = parse_bundle(Bundle(sources={"deep.bpmn": DEEP}))
    workflow = BpmnWorkflow(parsed.spec, parsed.subprocess_specs, script_engine=make_script_engine())
    with deadline(10):
        workflow.do_engine_steps()
    assert workflow.is_completed()
    assert workflow.data_objects == {"obj": 5}  # written two subprocesses deep, into the process's data object
    assert workflow.data["result"] == 10  # and read back at the top


HOSTILE_REFERENCES = {
    # the reference inside `inner` names a data object that exists nowhere
    "unresolvable": (DEEP.replace('id="ref_inner" dataObjectRef="obj"', 'id="ref_inner" dataObjectRef="nope"'),
                     "ref_inner", "dataObjectReference 'ref_inner' (used by 'write') refers to 'nope', which is not "
                                  "a data object of 'inner' or of a (sub)process enclosing it"),
    # ... or none at all
    "no dataObjectRef": (DEEP.replace('id="ref_inner" dataObjectRef="obj"', 'id="ref_inner"'),
                         "ref_inner", "dataObjectReference 'ref_inner' (used by 'write') names no data object"),
    # one subprocess deep was enough to loop when the data object exists nowhere
    "one deep": (DEEP.replace('<bpmn:sequenceFlow id="outer_f0"', '<bpmn:dataObjectReference id="ref_outer" '
                              'dataObjectRef="nope" /><bpmn:sequenceFlow id="outer_f0"')
                 .replace(">ref_inner</bpmn:targetRef>", ">ref_outer</bpmn:targetRef>"),
                 "ref_outer", "refers to 'nope'"),
    # declared inside `inner`, so invisible to the task at the top that reads it
    "declared deeper": (DEEP.replace('<bpmn:dataObject id="obj" />', "").replace(
        '<bpmn:dataObjectReference id="ref_inner"', '<bpmn:dataObject id="obj" /><bpmn:dataObjectReference '
                                                    'id="ref_inner"'),
        "ref_top", "it is declared in 'inner', which 'deep' cannot see"),
}


@pytest.mark.parametrize("variant", sorted(HOSTILE_REFERENCES))
def test_dos_unresolvable_data_object_references_are_refused_promptly(variant: str) -> None:
    text, element, expected = HOSTILE_REFERENCES[variant]
    with deadline(10):
        found = problems(text)
    assert [p.element for p in found] == [element], found  # the parser's "Cannot resolve" is not said twice
    assert expected in found[0].message
    # A stored version is parsed without the deploy checks: SpiffWorkflow's own refusal, still without looping.
    with deadline(10), pytest.raises(Invalid) as refused:
        parse_bundle(Bundle(sources={"p.bpmn": text}), strict=False)
    assert all(p.element for p in refused.value.problems)
    assert "Cannot resolve data" in refused.value.problems[0].message


def test_dos_hostile_reference_through_deploy_finishes_with_invalid(runtime: Runtime) -> None:
    text = HOSTILE_REFERENCES["unresolvable"][0]
    with deadline(10), pytest.raises(Invalid) as refused, runtime.db.unit_of_work() as uow:
        deploy(uow.session, read_bundle({"deep.bpmn": text}, None), "owner")
    assert refused.value.problems[0].element == "ref_inner"


def test_hostile_deeply_nested_code_is_refused_not_crashed() -> None:
    # Python's own parser gives up on these (MemoryError, RecursionError); a deploy must not become a 500.
    body = f"""    <bpmn:scriptTask id="t1"><bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>f1</bpmn:outgoing>
      <bpmn:script>x = {"-" * 100_000}1</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f1" sourceRef="t1" targetRef="e" />
    <bpmn:endEvent id="e"><bpmn:incoming>f1</bpmn:incoming></bpmn:endEvent>"""
    with deadline(20):
        found = problems(process(body))
    assert messages(found)["t1"] == "script: nested too deeply to be compiled"


# --------------------------------------------------------------------------- decision tables

DMN_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="defs_dmn" name="Tables" namespace="http://x">
"""


def decision(cells: list[str], expression: str = "years", outputs: tuple[str, ...] = ('"ok"',)) -> str:
    """Decision d19_eligibility: one input 'years', one rule DecisionRule_<n> per cell, `outputs` in each."""
    rules = "".join(
        f'<rule id="DecisionRule_{n}"><inputEntry id="DecisionRule_{n}_in"><text>{escape(cell)}</text></inputEntry>'
        + "".join(f'<outputEntry id="DecisionRule_{n}_out{i}"><text>{escape(o)}</text></outputEntry>'
                  for i, o in enumerate(outputs)) + "</rule>"
        for n, cell in enumerate(cells, 1))
    columns = "".join(f'<output id="out{i}" name="o{i}" typeRef="string" />' for i in range(len(outputs)))
    return DMN_HEAD + f"""<decision id="d19_eligibility" name="Eligibility"><decisionTable id="table" hitPolicy="FIRST">
<input id="years" label="Years"><inputExpression id="years_expr" typeRef="integer"><text>{escape(expression)}</text>
</inputExpression></input>{columns}{rules}</decisionTable></decision></definitions>
"""


def dmn_problems(text: str) -> list[Problem]:
    with deadline(20):
        return validate_bundle(Bundle(sources={"p.bpmn": process(user_task()), "d.dmn": text}))


@pytest.mark.parametrize(("cell", "expected"), [
    ("> 5", None),
    ("5", None),
    ("-", None),
    ("", None),  # empty: any value
    ("0 < ? < 5", None),
    ("'?' == ? or ? is None", None),  # the ? inside quotes is text
    (" in (1, 2)", None),
    ("> >5", "invalid expression '> >5': the engine can read it neither alone nor after the input"),
    (" 5", "invalid expression ' 5'"),  # leading blank: an IndentationError when alone, `v  5` after the input
    ("[1..5]", "invalid expression '[1..5]'"),  # FEEL, not Python
    ("?.__class__", '"__class__" is an invalid attribute name'),
    ("__import__('os')", "name '__import__' is not allowed"),
    ("time.time()", "'time' is a Python module"),
    ("in (1, 2)", "without a space, which reads 'yearsin (1, 2)'"),
    ('"a", "b"', "compared with the input as one tuple"),
    ("   ", "the cell holds only blanks"),
    ("1" * 1001, "the cell is 1001 characters long; at most 1000 are accepted"),
])
def test_dmn_input_entries_are_compiled_as_the_engine_builds_them(cell: str, expected: str | None) -> None:
    found = dmn_problems(decision(["> 1", cell]))
    if expected is None:
        assert found == []
    else:
        [problem] = found
        assert problem.element == "DecisionRule_2_in"
        assert problem.message.startswith(
            "table 'Eligibility' (d19_eligibility), rule 2 (DecisionRule_2), input 'Years' (years): ")
        assert expected in problem.message, problem.message


def test_dmn_problem_names_decision_rule_and_input() -> None:
    [problem] = dmn_problems(decision(["> 1", "> 2", "> >5"]))
    assert problem.message.startswith(
        "table 'Eligibility' (d19_eligibility), rule 3 (DecisionRule_3), input 'Years' (years): "
        "invalid expression '> >5'")


def test_dmn_input_expressions_and_output_entries_are_compiled() -> None:
    found = dmn_problems(decision(["> 1", "2"], expression="years >"))
    assert messages(found) == {"years": "table 'Eligibility' (d19_eligibility), input 'Years' (years): invalid "
                                         "expression 'years >': syntax error: invalid syntax (line 1)"}  # no cells
    found = dmn_problems(decision(["> 1"], outputs=('"ok"', "x.__class__", "import os", 'f"{facts[0]}"')))
    assert messages(found) == {
        "DecisionRule_1_out1": "table 'Eligibility' (d19_eligibility), rule 1 (DecisionRule_1), output 'o1' (out1): "
                               "invalid expression 'x.__class__': \"__class__\" is an invalid attribute name "
                               "because it starts with \"_\" (line 1)",
        "DecisionRule_1_out2": "table 'Eligibility' (d19_eligibility), rule 1 (DecisionRule_1), output 'o2' (out2): "
                               "invalid expression 'import os': syntax error: invalid syntax (line 1)",
    }


def test_dmn_output_entries_spiffworkflow_refuses_are_worded_the_same() -> None:
    # SpiffWorkflow's DMN parser refuses `1 +` itself ("Malformed Output Expression"), and stops there.
    [problem] = dmn_problems(decision(["> 1"], outputs=('"ok"', "1 +")))
    assert problem == Problem("table 'Eligibility' (d19_eligibility), rule 1 (DecisionRule_1), output 'o1' (out1): "
                              "invalid expression '1 +': syntax error: invalid syntax (line 1)",
                              element="DecisionRule_1_out1")


def test_dmn_tables_that_cannot_be_read_are_refused_naming_the_file() -> None:
    text = decision(["> 1"]).replace('<inputEntry id="DecisionRule_1_in">', "<inputEntry>")
    [problem] = dmn_problems(text)
    assert problem.element == "d.dmn" and "the decision table cannot be read: KeyError" in problem.message


def _engine_decides(text: str, years: int) -> list[str]:
    """The rules SpiffWorkflow's own DMN engine matches, run in the restricted environment as in a case."""
    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_dmn_xml(safe_xml("d.dmn", text), filename="d.dmn")
    engine = parser.get_engine("d19_eligibility", None)
    task = SimpleNamespace(data={"years": years}, workflow=SimpleNamespace(script_engine=make_script_engine()))
    return [rule.id for rule in engine.decide(task)]


def test_what_the_dmn_checks_accept_or_refuse_is_what_the_engine_does() -> None:
    accepted = ["> 5", "3", "0 < ? < 3", " in (4, 7)", "-", "'?' == ? or ? == 7"]
    assert dmn_problems(decision(accepted)) == []
    assert _engine_decides(decision(accepted), 7) == ["DecisionRule_1", "DecisionRule_4", "DecisionRule_5",
                                                      "DecisionRule_6"]
    assert _engine_decides(decision(accepted), 3) == ["DecisionRule_2", "DecisionRule_5"]
    # Refused because they never match, whatever the data:
    for never in ['7, 8', "   "]:
        assert len(dmn_problems(decision([never]))) == 1
        assert _engine_decides(decision([never]), 7) == []
    # Refused because they fail when the rule is evaluated:
    for failing in ["in (7, 8)", " 7", "> >5"]:
        assert len(dmn_problems(decision([failing]))) == 1
        with pytest.raises(Exception):  # noqa: B017 - SpiffWorkflow wraps whatever the expression raised
            _engine_decides(decision([failing]), 7)


@given(st.text(alphabet="?'\"a (", max_size=14))
def test_dmn_question_marks_are_found_as_the_engine_finds_them(cell: str) -> None:
    engine_pattern = r'(\?)(?=(?:[^\'"]|[\'"][^\'"]*[\'"])*$)'  # DMNEngine.evaluate, SpiffWorkflow 3.2
    assert dmn_question_marks(cell) == re.sub(engine_pattern, "dmninputexpr", cell)


def test_the_deployed_processes_and_their_tables_have_no_problems() -> None:
    root = Path(__file__).parents[2]
    files = {p.name: p.read_bytes() for p in (root / "processes").glob("*/*") if p.suffix in (".bpmn", ".dmn")}
    with deadline(60):
        assert validate_bundle(read_bundle(files, root / "forms")) == []
