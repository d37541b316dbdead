"""The Determination 19 diagrams, decision tables and forms, checked as files (no engine, no database).

What a process owner edits must stay readable and safe: every user task sits in a lane that resolves, names
its form and clause and tells the user what the clause says; every script, condition, timer expression and
decision-table cell compiles under the restricted script policy; the DI draws every element inside its
lane without overlaps; every form is a valid JSON Schema whose fields all have a title and a description.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from lxml import etree
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser

from engine.workflow.assignment import known_lanes
from engine.workflow.scripts import check_code

ROOT = Path(__file__).resolve().parents[3]
PROCESSES = ROOT / "processes" / "pay_progression"
FORMS = ROOT / "forms" / "pay_progression"
DIAGRAMS = {"pay_progression": PROCESSES / "pay_progression.bpmn",
            "performance_agreement": PROCESSES / "performance_agreement.bpmn"}
TABLES = sorted(PROCESSES.glob("d19_*.dmn"))

NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
    "dmn": "https://www.omg.org/spec/DMN/20191111/MODEL/",
}
#: Every user task, the lane it sits in and the clause it applies (the screen shows the clause).
USER_TASKS = {
    "pay_progression": {
        "assess_higher_duties": ("Manager", "D19-12"),
        "invite_submission": ("Supervisor", "D19-3.2"),
        "make_submission": ("Employee", "D19-6"),
        "agree_new_timeframe": ("Supervisor", "D19-10"),
        "assess_former_position": ("FormerManager", "D19-11"),
        "recommend": ("Supervisor", "D19-7"),
        "decide": ("Manager", "D19-8"),
        "assess_nominal_level": ("Manager", "D19-12"),
        "consider_review": ("Employee", "D19-9a"),
        "ceo_review": ("CEO", "D19-9a"),
        "consider_s59": ("Employee", "D19-9c"),
        "record_s59_outcome": ("HR", "D19-9c"),
    },
    "performance_agreement": {
        "set_up_agreement": ("Supervisor", "D19-3.3"),
        "record_agreement": ("HR", "D19-3.1"),
    },
}
#: What a late task escalates to (D19-3.2, D19-3.3, D19-9a).
ESCALATIONS = {"invite_submission": ("invite_due", "Manager,HR"), "set_up_agreement": ("setup_due", "Manager,HR"),
               "ceo_review": ('review["due"]', "HR,CEO")}


def load_json(path: Path) -> Any:
    """Read a JSON file."""
    return json.loads(path.read_text(encoding="utf-8"))


def form_errors(filename: str, data: dict[str, Any]) -> list[str]:
    """Every validation message the form gives for `data`."""
    validator = Draft202012Validator(load_json(FORMS / filename), format_checker=FormatChecker())
    return [error.message for error in validator.iter_errors(data)]


@pytest.fixture(scope="module")
def specs() -> dict[str, Any]:
    """Both processes, parsed with their decision tables and validated against the XSDs."""
    parser = SpiffBpmnParser(validator=VALIDATOR)
    for table in TABLES:
        parser.add_dmn_file(str(table))
    for path in DIAGRAMS.values():
        parser.add_bpmn_file(str(path))
    return {key: parser.get_spec(key) for key in DIAGRAMS}


# ---------------------------------------------------------------------------------------- the diagrams


@pytest.mark.parametrize("key", list(DIAGRAMS))
def test_user_tasks_sit_in_their_lanes_and_show_their_clause(specs: dict[str, Any], key: str) -> None:
    spec = specs[key]
    found = {name: (ts.lane, ts.extensions["properties"]["clause"]) for name, ts in spec.task_specs.items()
             if ts.manual}
    assert found == USER_TASKS[key]
    for name in found:
        extensions = spec.task_specs[name].extensions
        assert extensions["properties"]["formJsonSchemaFilename"].endswith(".json")
        assert "Determination 19, cl." in extensions["instructionsForEndUser"], name
        assert spec.task_specs[name].lane in known_lanes()


def test_d19_every_clause_of_the_determination_is_served_by_a_step(specs: dict[str, Any]) -> None:
    clauses = {(getattr(ts, "extensions", None) or {}).get("properties", {}).get("clause")
               for spec in specs.values() for ts in spec.task_specs.values()}
    assert {"D19-1", "D19-3.1", "D19-3.2", "D19-3.3", "D19-4", "D19-5", "D19-6", "D19-7", "D19-8", "D19-9a",
            "D19-9c", "D19-10", "D19-11", "D19-12"} <= clauses


@pytest.mark.parametrize(("task", "due", "lanes"), [(t, d, lanes) for t, (d, lanes) in ESCALATIONS.items()])
def test_late_tasks_are_due_and_escalate(specs: dict[str, Any], task: str, due: str, lanes: str) -> None:
    spec = next(s for s in specs.values() if task in s.task_specs)
    props = spec.task_specs[task].extensions["properties"]
    assert (props["dueAt"], props["escalateTo"]) == (due, lanes)
    assert all(lane in known_lanes() for lane in lanes.split(","))


def test_d19_1_d19_5_eligibility_runs_as_business_rule_tasks(specs: dict[str, Any]) -> None:
    rules = {name: ts.extensions.get("calledDecisionId") for spec in specs.values()
             for name, ts in spec.task_specs.items() if type(ts).__name__ == "BusinessRuleTask"}
    assert rules == {"check_scope": "d19_scope", "check_eligibility": "d19_eligibility",
                     "pa_check_scope": "d19_scope"}


def _code_snippets(spec: Any) -> list[tuple[str, str, str]]:
    """(element, source, mode) for every script, condition and timer expression."""
    out = []
    for name, ts in spec.task_specs.items():
        if getattr(ts, "script", None):
            out.append((name, ts.script, "exec"))
        for condition, _target in getattr(ts, "cond_task_specs", []) or []:
            out.append((name, condition.args[0], "eval"))
        event = getattr(ts, "event_definition", None)
        if isinstance(event, TimerEventDefinition):
            out.append((name, event.expression, "eval"))
        props = (getattr(ts, "extensions", None) or {}).get("properties", {})
        if props.get("dueAt"):
            out.append((name, props["dueAt"], "eval"))
    return out


@pytest.mark.parametrize("key", list(DIAGRAMS))
def test_every_script_condition_and_timer_compiles_restricted(specs: dict[str, Any], key: str) -> None:
    snippets = _code_snippets(specs[key])
    assert len(snippets) >= 5
    for element, source, mode in snippets:
        assert check_code(source, mode) == [], (element, source)  # type: ignore[arg-type]


@pytest.mark.parametrize("table", TABLES, ids=[t.name for t in TABLES])
def test_every_decision_table_cell_compiles_restricted(table: Path) -> None:
    tree = etree.parse(str(table))
    inputs = [t.text for t in tree.iterfind(".//dmn:inputExpression/dmn:text", NS)]
    outputs = [t.text for t in tree.iterfind(".//dmn:outputEntry/dmn:text", NS)]
    cells = [t.text for t in tree.iterfind(".//dmn:inputEntry/dmn:text", NS)]
    assert inputs and outputs and cells
    assert tree.find(".//dmn:decisionTable", NS).get("hitPolicy") == "FIRST"  # type: ignore[union-attr]
    for text in [*inputs, *outputs]:
        assert check_code(text or "", "eval") == [], text
    for cell in cells:
        if cell != "-":  # a cell is an operator and operand: 'v < 12', 'v in (...)' or a value
            assert check_code(f"v {cell}", "eval") == [] or check_code(cell or "", "eval") == [], cell


def test_every_gateway_branch_has_a_condition(specs: dict[str, Any]) -> None:
    for spec in specs.values():
        for name, ts in spec.task_specs.items():
            if type(ts).__name__ == "ExclusiveGateway":
                assert len(ts.cond_task_specs) == len(ts.outputs) >= 2, name
                assert ts.default_task_spec is None, name


@pytest.mark.parametrize("path", list(DIAGRAMS.values()), ids=list(DIAGRAMS))
def test_ids_are_lower_snake_and_avoid_spiff_internals(path: Path) -> None:
    ids = etree.parse(str(path)).xpath("//@id")
    assert ids
    for element_id in ids:
        assert element_id not in {"Start", "End", "Root"}
        assert element_id == element_id.lower(), element_id


@pytest.mark.parametrize(("key", "path"), list(DIAGRAMS.items()), ids=list(DIAGRAMS))
def test_every_element_is_drawn_inside_its_lane_without_overlap(key: str, path: Path) -> None:
    tree = etree.parse(str(path))
    process = tree.find(f"bpmn:process[@id='{key}']", NS)
    assert process is not None
    bounds = {
        shape.get("bpmnElement"): tuple(float(shape.find("dc:Bounds", NS).get(k))
                                        for k in ("x", "y", "width", "height"))
        for shape in tree.iterfind(".//bpmndi:BPMNShape", NS)
    }
    edges = {edge.get("bpmnElement"): edge for edge in tree.iterfind(".//bpmndi:BPMNEdge", NS)}
    flow_nodes = [el.get("id") for el in process
                  if isinstance(el.tag, str) and el.get("id") and not el.tag.endswith(("sequenceFlow", "laneSet"))]
    attached = {el.get("id"): el.get("attachedToRef") for el in process.iterfind("bpmn:boundaryEvent", NS)}
    flows = [el.get("id") for el in process.iterfind("bpmn:sequenceFlow", NS)]
    assert set(flows) == set(edges)
    for edge in edges.values():
        assert len(edge.findall("di:waypoint", NS)) >= 2
    lanes = {lane.get("id"): lane for lane in process.iterfind(".//bpmn:lane", NS)}
    participant = tree.find(".//bpmn:participant", NS)
    assert participant is not None
    assert set(bounds) == set(flow_nodes) | set(lanes) | {participant.get("id")}
    for lane_id, lane in lanes.items():
        lx, ly, lw, lh = bounds[lane_id]
        for ref in lane.iterfind("bpmn:flowNodeRef", NS):
            x, y, w, h = bounds[ref.text]
            assert lx < x and x + w < lx + lw and ly < y and y + h < ly + lh, (ref.text, lane_id)
    assert sum(len(lane.findall("bpmn:flowNodeRef", NS)) for lane in lanes.values()) == len(flow_nodes)
    for i, first in enumerate(flow_nodes):
        ax, ay, aw, ah = bounds[first]
        for second in flow_nodes[i + 1:]:
            if attached.get(first) == second or attached.get(second) == first:
                continue  # a boundary event sits on its task's border by design
            bx, by, bw, bh = bounds[second]
            assert ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay, (first, second)


# ---------------------------------------------------------------------------------------- the forms


def _forms_of(specs: dict[str, Any]) -> set[tuple[str, str]]:
    return {(ts.extensions["properties"]["formJsonSchemaFilename"], ts.extensions["properties"]["formUiSchemaFilename"])
            for spec in specs.values() for ts in spec.task_specs.values() if ts.manual}


def test_every_referenced_form_exists_and_is_a_valid_schema(specs: dict[str, Any]) -> None:
    pairs = _forms_of(specs)
    assert len(pairs) == 13  # decide.json serves the manager and the CEO (cl. 7, 8)
    for schema_file, ui_file in pairs:
        schema = load_json(FORMS / schema_file)
        Draft202012Validator.check_schema(schema)
        assert schema["type"] == "object"
        [key] = schema["properties"]
        assert schema["required"] == [key]
        ui_schema = load_json(FORMS / ui_file)
        assert ui_schema["ui:order"] == [key]
        fields = schema["properties"][key]["properties"]
        assert sorted(ui_schema[key]["ui:order"]) == sorted(fields), schema_file
        assert "Determination 19" in schema["description"], schema_file
        for name, field in fields.items():
            assert field["title"] and field["description"], (schema_file, name)


SUBMISSION = {"submission": {"participate": "submit", "targets_met": True, "criteria": ["new_projects", "leadership"],
                             "evidence": {"new_projects": "Delivered the berth project early.",
                                          "leadership": "Mentored two new officers."}}}


def test_d19_3_2_invitation_due_date_must_be_a_date() -> None:
    assert form_errors("invite_submission.json", {"invitation": {"message": "Please submit."}}) == []
    assert form_errors("invite_submission.json", {"invitation": {"message": "Please submit.",
                                                                 "submission_due": "soon"}})
    assert form_errors("invite_submission.json", {"invitation": {"message": "  "}})


def test_d19_5_declining_needs_no_criteria_or_evidence() -> None:
    assert form_errors("make_submission.json", {"submission": {"participate": "decline"}}) == []
    assert form_errors("make_submission.json", {"submission": {"participate": "maybe"}})


def test_d19_10_asking_for_a_new_timeframe_needs_a_reason() -> None:
    assert form_errors("make_submission.json", {"submission": {"participate": "new_timeframe"}})
    assert form_errors("make_submission.json", {"submission": {
        "participate": "new_timeframe", "new_timeframe_request": "Three months' leave."}}) == []
    agree = {"new_timeframe": {"agree": "agree", "reason": "Leave.", "basis": "extended_leave",
                               "new_date": "2026-09-30"}}
    assert form_errors("d19_new_timeframe.json", agree) == []
    for missing in ("basis", "new_date"):
        data = copy.deepcopy(agree)
        del data["new_timeframe"][missing]
        assert form_errors("d19_new_timeframe.json", data), missing
    assert form_errors("d19_new_timeframe.json", {"new_timeframe": {"agree": "refuse", "reason": "No."}}) == []


def test_d19_6_submission_needs_targets_met_and_a_criterion_with_evidence() -> None:
    assert form_errors("make_submission.json", SUBMISSION) == []

    def variant(**changes: Any) -> dict[str, Any]:
        submission = {**copy.deepcopy(SUBMISSION["submission"]), **changes}
        return {"submission": {k: v for k, v in submission.items() if v is not None}}

    assert form_errors("make_submission.json", variant(targets_met=False))
    assert form_errors("make_submission.json", variant(targets_met=None))
    assert form_errors("make_submission.json", variant(criteria=[]))
    assert form_errors("make_submission.json", variant(criteria=["leadership", "leadership"]))
    assert form_errors("make_submission.json", variant(criteria=["charm"]))
    assert form_errors("make_submission.json", variant(criteria=["new_projects", "specialist_expertise"]))
    assert form_errors("make_submission.json", variant(evidence={"new_projects": "Shipped it.", "leadership": "  "}))


def test_d19_6_evidence_shows_the_determinations_examples() -> None:
    submission = load_json(FORMS / "make_submission.json")["properties"]["submission"]["properties"]
    assert submission["criteria"]["items"]["enum"] == [
        "sustained_superior_performance", "increased_duties", "new_projects", "specialist_expertise", "leadership"]
    evidence = submission["evidence"]["properties"]
    assert list(evidence) == submission["criteria"]["items"]["enum"]
    assert "Improve partnership arrangements." in evidence["sustained_superior_performance"]["description"]
    assert "evaluated at a higher level under the JES" in evidence["increased_duties"]["description"]
    assert "Special major projects (may be one off)." in evidence["new_projects"]["description"]
    assert "share 'learning' and knowledge" in evidence["specialist_expertise"]["description"]
    assert "Identify and develop project and work opportunities for team members." in evidence["leadership"][
        "description"]


def test_d19_7_not_recommending_needs_reason_and_the_employee_advised() -> None:
    against = {"recommend": "not_approve", "reason": "Milestones slipped.", "employee_advised": True}
    assert form_errors("recommend.json", {"recommendation": against}) == []
    assert form_errors("recommend.json", {"recommendation": {"recommend": "approve"}}) == []
    assert form_errors("recommend.json", {"recommendation": {**against, "reason": " "}})
    assert form_errors("recommend.json", {"recommendation": {**against, "employee_advised": False}})


def test_d19_8_refusal_needs_reason_and_feedback_and_an_employee_delay_needs_an_explanation() -> None:
    refuse = {"approve": "refuse", "reason": "No criterion shown.", "feedback": "Lead a project."}
    assert form_errors("decide.json", {"decision": refuse}) == []
    for missing in ("reason", "feedback"):
        assert form_errors("decide.json", {"decision": {k: v for k, v in refuse.items() if k != missing}})
    assert form_errors("decide.json", {"decision": {"approve": "approve", "delay_caused_by_employee": True}})
    assert form_errors("decide.json", {"decision": {"approve": "approve", "delay_caused_by_employee": True,
                                                    "delay_explanation": "Missed three meetings."}}) == []


def test_d19_9a_a_review_request_needs_grounds_and_the_ceo_a_reason() -> None:
    assert form_errors("d19_review_request.json", {"review_request": {"request": "accept"}}) == []
    assert form_errors("d19_review_request.json", {"review_request": {"request": "review"}})
    assert form_errors("d19_ceo_review.json", {"review_decision": {
        "new_information_accepted": "none_offered", "outcome": "progress"}})


def test_d19_9c_a_lodged_section_59_review_needs_its_date() -> None:
    assert form_errors("d19_s59_request.json", {"s59_request": {"lodged": "lodged"}})
    assert form_errors("d19_s59_request.json", {"s59_request": {"lodged": "lodged", "lodged_on": "2026-03-19"}}) == []
    assert form_errors("d19_s59_outcome.json", {"s59_outcome": {"result": "progression", "summary": "x"}})


def test_d19_3_1_an_agreement_needs_a_start_targets_supervisor_and_approver() -> None:
    good = {"agreement": {"start": "2026-03-01", "targets": ["Deliver X"], "supervisor": "s", "approver": "m"}}
    assert form_errors("d19_performance_agreement.json", good) == []
    for missing in ("start", "targets", "supervisor", "approver"):
        data = copy.deepcopy(good)
        del data["agreement"][missing]
        assert form_errors("d19_performance_agreement.json", data), missing
    assert form_errors("d19_performance_agreement.json", {"agreement": {**good["agreement"], "targets": []}})
