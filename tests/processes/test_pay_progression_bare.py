"""Runs processes/pay_progression.bpmn (Determination 19) in bare SpiffWorkflow 3.2, without the engine.

Every scenario runs twice: straight through, and with a JSON save/restore of the workflow before and after
each step (the way the engine will persist a case between requests). Every form is checked against its JSON
Schema before the task is completed, so the forms and the diagram are proved together.
"""

from __future__ import annotations

import calendar
import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from lxml import etree
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState

ROOT = Path(__file__).resolve().parents[2]
BPMN_FILE = ROOT / "processes" / "pay_progression.bpmn"
FORMS = ROOT / "forms"
PROCESS_ID = "pay_progression"

NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
}

USER_TASK_LANES = {
    "invite_submission": "Supervisor",
    "make_submission": "Employee",
    "recommend": "Supervisor",
    "decide": "Manager",
}
USER_TASK_CLAUSES = {
    "invite_submission": "D19-3.2",
    "make_submission": "D19-6",
    "recommend": "D19-7",
    "decide": "D19-8",
}
FORM_DATA_KEYS = {
    "invite_submission.json": "invitation",
    "make_submission.json": "submission",
    "recommend.json": "recommendation",
    "decide.json": "decision",
}

# ----------------------------------------------------------------------------------------------------
# Stand-ins for the helpers the project engine injects into scripts.

PAY_POINTS = {"SPAO1": ["SPAO1-1", "SPAO1-2", "SPAO1-3"]}


def invite_due_date_stub(assessment_date: str) -> str:
    """Assessment date minus two calendar months, clamped to the month's end ('YYYY-MM-DD' in and out)."""
    day = date.fromisoformat(assessment_date)
    month_index = day.year * 12 + day.month - 1 - 2
    year, month = divmod(month_index, 12)
    month += 1
    last_day = calendar.monthrange(year, month)[1]
    return date(year, month, min(day.day, last_day)).isoformat()


def next_pay_point_stub(classification: str, pay_point: str) -> str:
    """The pay point after `pay_point` in the classification's ordered list."""
    points = PAY_POINTS[classification]
    return points[points.index(pay_point) + 1]


def make_script_engine() -> PythonScriptEngine:
    """A script engine with the two helpers the diagram's scripts call."""
    return PythonScriptEngine(
        environment=TaskDataEnvironment(
            {"invite_due_date": invite_due_date_stub, "next_pay_point": next_pay_point_stub}
        )
    )


START_DATA: dict[str, Any] = {
    "employee": "jcitizen",
    "classification": "SPAO1",
    "pay_point": "SPAO1-1",
    "agreement_start": "2024-07-01",
    "assessment_date": "2025-06-30",
    "original_assessment_date": "2025-06-30",
}

# ----------------------------------------------------------------------------------------------------
# Form data, one dict per user task, shaped as the forms submit it.

INVITATION = {
    "invitation": {
        "message": "Your annual assessment date is 30 June 2025. You are invited to make a pay progression "
        "submission against the criteria in Determination 19.",
        "submission_due": "2025-06-15",
    }
}
SUBMISSION = {
    "submission": {
        "participate": "submit",
        "targets_met": True,
        "criteria": ["new_projects", "leadership"],
        "evidence": {
            "new_projects": "Delivered the berth scheduling project two months early and under budget.",
            "leadership": "Mentored two new officers; team backlog down 40% over the year.",
        },
    }
}
DECLINE = {"submission": {"participate": "decline", "decline_reason": "Moving interstate later this year."}}
RECOMMEND_APPROVAL = {"recommendation": {"recommend": "approve"}}
RECOMMEND_AGAINST = {
    "recommendation": {
        "recommend": "not_approve",
        "reason": "The evidence does not show delivery ahead of schedule; the milestones slipped in March.",
        "employee_advised": True,
    }
}
APPROVE = {"decision": {"approve": "approve"}}
REFUSE = {
    "decision": {
        "approve": "refuse",
        "reason": "The submission does not show performance above the agreed targets.",
        "feedback": "Document the outcomes of the berth project against its plan and lead the next review.",
    }
}


# ----------------------------------------------------------------------------------------------------
# Helpers


def load_json(path: Path) -> Any:
    """Read a JSON file."""
    return json.loads(path.read_text(encoding="utf-8"))


def form_validator(filename: str) -> Draft202012Validator:
    """A validator for the JSON Schema form `filename`, with format checking on."""
    return Draft202012Validator(load_json(FORMS / filename), format_checker=FormatChecker())


def form_errors(filename: str, data: dict[str, Any]) -> list[str]:
    """Every validation message the form gives for `data`."""
    return [error.message for error in form_validator(filename).iter_errors(data)]


@pytest.fixture(scope="module")
def spec() -> Any:
    """The parsed process, validated against the BPMN and spiffworkflow XSDs."""
    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_bpmn_file(str(BPMN_FILE))
    return parser.get_spec(PROCESS_ID)


class Case:
    """Drives one pay progression workflow, optionally saving and restoring it around every step."""

    def __init__(self, spec: Any, round_trip: bool) -> None:
        self.round_trip = round_trip
        self.serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
        self.workflow = BpmnWorkflow(spec, script_engine=make_script_engine())
        self.completed: list[str] = []
        start = self.workflow.get_tasks(state=TaskState.READY)
        assert len(start) == 1
        start[0].set_data(**copy.deepcopy(START_DATA))
        self.workflow.do_engine_steps()
        self.save_and_restore()

    def save_and_restore(self) -> None:
        """Serialize to JSON and back, as between requests (the script engine is not saved)."""
        if not self.round_trip:
            return
        document = self.serializer.serialize_json(self.workflow)
        self.workflow = self.serializer.deserialize_json(document)
        self.workflow.script_engine = make_script_engine()

    def ready_user_task(self) -> Any:
        """The single open user task."""
        ready = self.workflow.get_tasks(state=TaskState.READY, manual=True)
        assert len(ready) == 1, [task.task_spec.bpmn_id for task in ready]
        return ready[0]

    def complete(self, name: str, form: dict[str, Any]) -> dict[str, Any]:
        """Check the open task is `name` in its lane, validate `form` against its schema, complete it.

        Returns the task's data as it was when the task opened.
        """
        task = self.ready_user_task()
        assert task.task_spec.bpmn_id == name
        assert task.task_spec.lane == USER_TASK_LANES[name]
        opened_with = copy.deepcopy(task.data)
        schema_file = task.task_spec.extensions["properties"]["formJsonSchemaFilename"]
        form_validator(schema_file).validate(form)
        task.set_data(**copy.deepcopy(form))
        task.run()
        self.workflow.do_engine_steps()
        self.completed.append(name)
        self.save_and_restore()
        return opened_with

    def ended_at(self) -> list[str]:
        """The end events the workflow reached."""
        return [
            task.task_spec.bpmn_id
            for task in self.workflow.get_tasks(state=TaskState.COMPLETED)
            if task.task_spec.bpmn_id is not None and task.task_spec.bpmn_id.startswith("end_")
        ]


@pytest.fixture(params=[False, True], ids=["straight", "save_restore"])
def new_case(request: pytest.FixtureRequest, spec: Any) -> Any:
    """A factory for cases, run straight through or with a save/restore around every step."""
    return lambda: Case(spec, round_trip=request.param)


# ----------------------------------------------------------------------------------------------------
# Whole cases


def test_d19_4_happy_path_progresses_from_assessment_date(new_case: Any) -> None:
    case = new_case()

    opened = case.complete("invite_submission", INVITATION)
    # D19-3.2: the invitation is due two calendar months before the assessment date.
    assert opened["invite_due"] == "2025-04-30"
    case.complete("make_submission", SUBMISSION)
    case.complete("recommend", RECOMMEND_APPROVAL)
    opened = case.complete("decide", APPROVE)
    assert opened["recommendation"] == RECOMMEND_APPROVAL["recommendation"]
    assert opened["submission"] == SUBMISSION["submission"]

    assert case.workflow.is_completed()
    assert case.ended_at() == ["end_progressed"]
    data = case.workflow.data
    assert data["outcome"] == "progressed"
    assert data["new_pay_point"] == "SPAO1-2"
    assert data["effective_date"] == START_DATA["original_assessment_date"] == "2025-06-30"
    assert data["invitation"] == INVITATION["invitation"]
    assert data["decision"] == APPROVE["decision"]
    # No helper function leaks into the case data.
    assert "invite_due_date" not in data and "next_pay_point" not in data


def test_d19_8_refusal_records_reason(new_case: Any) -> None:
    case = new_case()
    case.complete("invite_submission", INVITATION)
    case.complete("make_submission", SUBMISSION)
    case.complete("recommend", RECOMMEND_AGAINST)
    case.complete("decide", REFUSE)

    assert case.workflow.is_completed()
    assert case.ended_at() == ["end_not_progressed"]
    data = case.workflow.data
    assert data["outcome"] == "not_progressed"
    assert data["decision"]["reason"] == REFUSE["decision"]["reason"]
    assert data["decision"]["feedback"] == REFUSE["decision"]["feedback"]
    assert data["recommendation"]["reason"] == RECOMMEND_AGAINST["recommendation"]["reason"]
    assert "new_pay_point" not in data
    assert "effective_date" not in data


def test_d19_8_manager_may_refuse_a_recommended_progression(new_case: Any) -> None:
    case = new_case()
    case.complete("invite_submission", INVITATION)
    case.complete("make_submission", SUBMISSION)
    case.complete("recommend", RECOMMEND_APPROVAL)
    case.complete("decide", REFUSE)

    assert case.ended_at() == ["end_not_progressed"]
    assert case.workflow.data["outcome"] == "not_progressed"


def test_d19_5_decline_is_recorded_not_failure(new_case: Any) -> None:
    case = new_case()
    case.complete("invite_submission", INVITATION)
    case.complete("make_submission", DECLINE)

    assert case.workflow.is_completed()
    assert case.ended_at() == ["end_declined"]
    assert case.completed == ["invite_submission", "make_submission"]
    data = case.workflow.data
    assert data["outcome"] == "declined"
    assert data["submission"] == DECLINE["submission"]
    for key in ("recommendation", "decision", "new_pay_point", "effective_date"):
        assert key not in data


# ----------------------------------------------------------------------------------------------------
# The diagram


def test_user_tasks_sit_in_their_lanes(spec: Any) -> None:
    user_tasks = {name: task_spec.lane for name, task_spec in spec.task_specs.items() if task_spec.manual}
    assert user_tasks == USER_TASK_LANES


def test_user_tasks_carry_form_clause_and_instructions(spec: Any) -> None:
    for name, clause in USER_TASK_CLAUSES.items():
        extensions = spec.task_specs[name].extensions
        properties = extensions["properties"]
        assert properties["clause"] == clause
        assert properties["formJsonSchemaFilename"] == f"{name}.json"
        assert properties["formUiSchemaFilename"] == f"{name}_ui.json"
        assert "Determination 19, cl." in extensions["instructionsForEndUser"]


def test_ids_are_lower_snake_and_avoid_spiff_internals() -> None:
    tree = etree.parse(str(BPMN_FILE))
    ids = tree.xpath("//@id")
    assert ids
    for element_id in ids:
        assert element_id not in {"Start", "End"}
        assert element_id == element_id.lower(), element_id


def test_every_element_is_drawn_inside_its_lane_without_overlap() -> None:
    tree = etree.parse(str(BPMN_FILE))
    process = tree.find(f"bpmn:process[@id='{PROCESS_ID}']", NS)
    assert process is not None
    bounds = {
        shape.get("bpmnElement"): tuple(
            float(shape.find("dc:Bounds", NS).get(k)) for k in ("x", "y", "width", "height")
        )
        for shape in tree.iterfind(".//bpmndi:BPMNShape", NS)
    }
    edges = {edge.get("bpmnElement") for edge in tree.iterfind(".//bpmndi:BPMNEdge", NS)}

    flow_nodes = [
        el.get("id")
        for el in process
        if isinstance(el.tag, str) and el.get("id") and not el.tag.endswith(("sequenceFlow", "laneSet"))
    ]
    flows = [el.get("id") for el in process.iterfind("bpmn:sequenceFlow", NS)]
    assert set(flows) == edges
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
        for second in flow_nodes[i + 1 :]:
            bx, by, bw, bh = bounds[second]
            assert ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay, (first, second)


# ----------------------------------------------------------------------------------------------------
# The forms


def test_every_referenced_form_exists_and_is_a_valid_schema(spec: Any) -> None:
    for name in USER_TASK_LANES:
        properties = spec.task_specs[name].extensions["properties"]
        schema_file = properties["formJsonSchemaFilename"]
        schema = load_json(FORMS / schema_file)
        Draft202012Validator.check_schema(schema)
        assert schema["type"] == "object"
        key = FORM_DATA_KEYS[schema_file]
        assert list(schema["properties"]) == [key]
        assert schema["required"] == [key]

        ui_schema = load_json(FORMS / properties["formUiSchemaFilename"])
        assert ui_schema["ui:order"] == [key]
        fields = schema["properties"][key]["properties"]
        assert sorted(ui_schema[key]["ui:order"]) == sorted(fields)
        for field in fields.values():
            assert field["title"] and field["description"]


def test_d19_3_2_invitation_due_date_must_be_a_date() -> None:
    assert form_errors("invite_submission.json", INVITATION) == []
    assert form_errors("invite_submission.json", {"invitation": {"message": "Please submit."}}) == []
    assert form_errors(
        "invite_submission.json", {"invitation": {"message": "Please submit.", "submission_due": "soon"}}
    )
    assert form_errors("invite_submission.json", {"invitation": {"message": "  "}})


def test_d19_5_declining_needs_no_criteria_or_evidence() -> None:
    assert form_errors("make_submission.json", {"submission": {"participate": "decline"}}) == []
    assert form_errors("make_submission.json", {"submission": {"participate": "maybe"}})


def test_d19_6_submission_needs_targets_met_and_a_criterion_with_evidence() -> None:
    assert form_errors("make_submission.json", SUBMISSION) == []

    def variant(**changes: Any) -> dict[str, Any]:
        submission = {**copy.deepcopy(SUBMISSION["submission"]), **changes}
        return {"submission": {k: v for k, v in submission.items() if v is not None}}

    assert form_errors("make_submission.json", variant(targets_met=False))
    assert form_errors("make_submission.json", variant(targets_met=None))
    assert form_errors("make_submission.json", variant(criteria=[]))
    assert form_errors("make_submission.json", variant(criteria=None))
    assert form_errors("make_submission.json", variant(criteria=["leadership", "leadership"]))
    assert form_errors("make_submission.json", variant(criteria=["charm"]))
    # A chosen criterion without evidence, or with blank evidence.
    assert form_errors("make_submission.json", variant(criteria=["new_projects", "specialist_expertise"]))
    assert form_errors(
        "make_submission.json", variant(evidence={"new_projects": "Shipped it.", "leadership": "   "})
    )


def test_d19_6_evidence_shows_the_determinations_examples() -> None:
    schema = load_json(FORMS / "make_submission.json")
    submission = schema["properties"]["submission"]["properties"]
    assert submission["criteria"]["items"]["enum"] == [
        "sustained_superior_performance",
        "increased_duties",
        "new_projects",
        "specialist_expertise",
        "leadership",
    ]
    evidence = submission["evidence"]["properties"]
    assert list(evidence) == submission["criteria"]["items"]["enum"]
    assert "Improve partnership arrangements." in evidence["sustained_superior_performance"]["description"]
    assert "evaluated at a higher level under the JES" in evidence["increased_duties"]["description"]
    assert "Special major projects (may be one off)." in evidence["new_projects"]["description"]
    assert "share 'learning' and knowledge" in evidence["specialist_expertise"]["description"]
    leadership = evidence["leadership"]["description"]
    assert "Identify and develop project and work opportunities for team members." in leadership


def test_d19_7_not_recommending_needs_reason() -> None:
    assert form_errors("recommend.json", RECOMMEND_AGAINST) == []
    assert form_errors("recommend.json", RECOMMEND_APPROVAL) == []

    against = RECOMMEND_AGAINST["recommendation"]
    without_reason = {k: v for k, v in against.items() if k != "reason"}
    assert form_errors("recommend.json", {"recommendation": without_reason})
    assert form_errors("recommend.json", {"recommendation": {**against, "reason": " "}})
    # The employee must be advised of a recommendation against (D19-7).
    assert form_errors("recommend.json", {"recommendation": {**against, "employee_advised": False}})
    not_advised = {k: v for k, v in against.items() if k != "employee_advised"}
    assert form_errors("recommend.json", {"recommendation": not_advised})


def test_d19_8_refusal_needs_reason_and_feedback() -> None:
    assert form_errors("decide.json", REFUSE) == []
    assert form_errors("decide.json", APPROVE) == []
    refuse = REFUSE["decision"]
    for missing in ("reason", "feedback"):
        decision = {k: v for k, v in refuse.items() if k != missing}
        assert form_errors("decide.json", {"decision": decision}), missing
    assert form_errors("decide.json", {"decision": {**refuse, "feedback": ""}})
    assert form_errors("decide.json", {"decision": {"approve": "maybe"}})
