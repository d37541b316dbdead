"""Issue 15's attacks exactly as they were reproduced over the REST API on a fresh demo database (D19-6, 7, 8)."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import func, select

from engine.workflow.models import ProcessInstance
from engine.workflow.runtime import Runtime
from tests.web.api_helpers import START, api_as, assert_errors


def _cases(runtime: Runtime) -> int:
    with runtime.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(ProcessInstance)) or 0)


def test_d19_8_a_supervisor_cannot_make_himself_manager_and_ceo_over_the_api(app: Flask, app_org: Runtime) -> None:
    supervisor = api_as(app, app_org, "supervisor")
    answer = supervisor.post("/api/v1/instances", json={"process": "pay_progression", "data": {
        **START, "assign": {"Manager": "supervisor", "CEO": "supervisor"}}})
    assert_errors(answer, 403, "assign")
    assert _cases(app_org) == 0


def test_d19_8_the_employee_cannot_be_named_to_every_role_over_the_api(app: Flask, app_org: Runtime) -> None:
    for caller, status in (("supervisor", 403), ("hr", 422), ("ceo", 422)):
        answer = api_as(app, app_org, caller).post("/api/v1/instances", json={"process": "pay_progression", "data": {
            **START, "assign": {"Supervisor": "employee", "Manager": "employee", "CEO": "employee"},
            "appointment": {"approved_by": "ceo"}}})
        if status == 403:
            assert_errors(answer, 403, "assign")
        else:
            assert_errors(answer, 422, "assign.Supervisor", "assign.Manager", "assign.CEO")
    assert _cases(app_org) == 0


def test_d19_6_the_ceo_appoints_at_start_over_the_api_and_it_is_recorded(app: Flask, app_org: Runtime) -> None:
    answer = api_as(app, app_org, "ceo").post("/api/v1/instances", json={"process": "pay_progression", "data": {
        **START, "assign": {"Supervisor": "delegate"}, "appointment": {"reason": "Sam is on leave"}}})
    assert answer.status_code == 201, answer.get_data(as_text=True)
    case = answer.get_json()
    [appointment] = case["data"]["appointments"]
    assert appointment["username"] == "delegate" and appointment["approved_by"] == "ceo"
    assert [t["assignee"] for t in case["tasks"]] == ["delegate"]
