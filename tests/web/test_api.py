"""Contract tests of REST API v1 (../shared/API.md): every call, every status code it names, one error shape."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from engine.core.clock import CLOCK
from engine.people.models import ApiToken, Leave, Organisation, Person, User
from engine.workflow.models import HumanTask, ProcessDefinition, ProcessInstance
from engine.workflow.runtime import Runtime
from tests.web.api_helpers import (
    DEMO_USERS,
    INVITE,
    START,
    api_as,
    assert_errors,
    listening,
    open_task,
    row_counts,
    start_case,
)

HELLO_BPMN = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="defs_hello" targetNamespace="x">
  <bpmn:process id="hello" name="Hello" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="finish"/>
    <bpmn:endEvent id="finish"><bpmn:incoming>f1</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>"""
NEW_PERSON = {"username": "newstarter", "name": "New Starter", "email": "new@demo.ntps.example",
              "classification": "SPAO1", "pay_point": "SPAO1-1", "organisation": "DPC", "supervisor": "supervisor",
              "manager": "manager", "commenced_on": "2026-01-05"}


# ------------------------------------------------------------------------------------------- tokens


def test_token_for_a_username_and_password(client: FlaskClient, app_org: Runtime) -> None:
    response = client.post("/api/v1/auth/token", json={"username": "employee", "password": "demo-pass-2026"})
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"token", "expires_at"}
    assert body["expires_at"] == (CLOCK.now() + timedelta(hours=12)).isoformat()
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200
    assert me.get_json() == {"username": "employee", "name": "Emily Wong", "roles": ["staff"]}


def test_tokens_are_hashed_at_rest(client: FlaskClient, app_org: Runtime) -> None:
    token = client.post("/api/v1/auth/token", json={"username": "hr", "password": "demo-pass-2026"}).get_json()
    with app_org.db.read() as s:
        stored = s.scalars(select(ApiToken.token_hash)).all()
    assert len(stored) == 1 and token["token"] not in stored[0] and len(stored[0]) == 64


def test_wrong_password_is_401_with_the_error_shape(client: FlaskClient, app_org: Runtime) -> None:
    for username in ("employee", "nobody"):  # the same answer whether or not the username exists
        response = client.post("/api/v1/auth/token", json={"username": username, "password": "wrong-password"})
        errors = assert_errors(response, 401)
        assert errors == [{"message": "unknown username or wrong password"}]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_token_request_errors_name_their_fields(client: FlaskClient, app_org: Runtime) -> None:
    assert_errors(client.post("/api/v1/auth/token", json={}), 422, "username", "password")
    assert_errors(client.post("/api/v1/auth/token", json={"username": 7, "password": "x"}), 422, "username")
    assert_errors(client.post("/api/v1/auth/token", json=["username"]), 422, "body")
    assert_errors(client.post("/api/v1/auth/token", data="username=hr", content_type="text/plain"), 415)
    assert_errors(client.post("/api/v1/auth/token", data="{not json", content_type="application/json"), 400, "body")
    # NaN is not JSON (and PostgreSQL's json type would refuse it later)
    assert_errors(client.post("/api/v1/auth/token", data='{"username": NaN}', content_type="application/json"),
                  400, "body")


def test_token_expires_after_twelve_hours(app: Flask, app_org: Runtime) -> None:
    api = api_as(app, app_org, "employee")
    assert api.get("/api/v1/me").status_code == 200
    CLOCK.advance(timedelta(hours=12))
    errors = assert_errors(api.get("/api/v1/me"), 401)
    assert "expired" in errors[0]["message"]


def test_revoking_a_token_ends_it(app: Flask, app_org: Runtime) -> None:
    api = api_as(app, app_org, "employee")
    other = api_as(app, app_org, "employee")
    response = api.delete("/api/v1/auth/token")
    assert response.status_code == 204 and response.data == b""
    assert_errors(api.get("/api/v1/me"), 401)
    assert_errors(api.delete("/api/v1/auth/token"), 401)
    assert other.get("/api/v1/me").status_code == 200  # only the token the call was made with
    with app_org.db.read() as s:
        assert s.scalar(select(func.count()).select_from(ApiToken).where(ApiToken.revoked_at.is_not(None))) == 1


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer ", "Basic ZW1wbG95ZWU6eA==", "Bearer not-a-token",
                                    "Bearer " + "x" * 500])
def test_no_or_bad_token_is_401(client: FlaskClient, app_org: Runtime, header: str) -> None:
    headers = {"Authorization": header} if header else {}
    for method, path in (("get", "/api/v1/me"), ("get", "/api/v1/tasks"), ("get", "/api/v1/processes"),
                         ("get", "/api/v1/people/employee"), ("post", "/api/v1/people"),
                         ("post", "/api/v1/instances"), ("get", "/api/v1/instances/1"), ("get", "/api/v1/tasks/1"),
                         ("post", "/api/v1/tasks/1/complete"), ("post", "/api/v1/processes"),
                         ("post", "/api/v1/people/employee/leave"), ("delete", "/api/v1/auth/token"),
                         ("get", "/api/v1/instances"), ("get", "/api/v1/people"),
                         ("get", "/api/v1/instances?status=bad"), ("get", "/api/v1/people?limit=0")):
        response = getattr(client, method)(path, headers=headers)
        assert_errors(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_token_endpoint_is_rate_limited_per_client(app: Flask, client: FlaskClient, app_org: Runtime) -> None:
    app.config["API_TOKEN_LIMIT"] = "3/60"
    good = {"username": "employee", "password": "demo-pass-2026"}
    for _ in range(3):
        assert client.post("/api/v1/auth/token", json=good).status_code == 200
    limited = client.post("/api/v1/auth/token", json=good)
    assert_errors(limited, 429)
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    CLOCK.advance(timedelta(seconds=int(limited.headers["Retry-After"])))
    assert client.post("/api/v1/auth/token", json=good).status_code == 200


def test_failed_logins_lock_the_username_not_the_others(app: Flask, client: FlaskClient, app_org: Runtime) -> None:
    app.config["API_LOGIN_FAILURE_LIMIT"] = "2/900"
    for _ in range(2):
        assert client.post("/api/v1/auth/token", json={"username": "hr", "password": "guess-1234"}).status_code == 401
    # even the right password is refused now: a guesser cannot tell a right guess from a wrong one
    assert_errors(client.post("/api/v1/auth/token", json={"username": "hr", "password": "demo-pass-2026"}), 429)
    assert client.post("/api/v1/auth/token", json={"username": "employee",
                                                   "password": "demo-pass-2026"}).status_code == 200
    CLOCK.advance(timedelta(minutes=15))
    assert client.post("/api/v1/auth/token", json={"username": "hr", "password": "demo-pass-2026"}).status_code == 200


def test_a_malformed_rate_limit_setting_falls_back_to_the_default(app: Flask, client: FlaskClient,
                                                                    app_org: Runtime) -> None:
    app.config["API_TOKEN_LIMIT"] = "twenty"
    response = client.post("/api/v1/auth/token", json={"username": "hr", "password": "demo-pass-2026"})
    assert response.status_code == 200


# ------------------------------------------------------------------------------------------- people


def test_hr_adds_a_person(app: Flask, app_org: Runtime) -> None:
    response = api_as(app, app_org, "hr").post("/api/v1/people", json={**NEW_PERSON, "password": "ochre harbour 7"})
    assert response.status_code == 201
    body = response.get_json()
    assert {k: body[k] for k in NEW_PERSON} == NEW_PERSON
    assert body["supervisor_of"] == [] and body["manager_of"] == []
    with app_org.db.read() as s:
        user = s.scalars(select(User).where(User.username == "newstarter")).one()
        assert user.roles == ["staff"] and user.person_id is not None
    token = app.test_client().post("/api/v1/auth/token", json={"username": "newstarter",
                                                                "password": "ochre harbour 7"})
    assert token.status_code == 200


def test_only_admin_and_hr_add_people(app: Flask, app_org: Runtime) -> None:
    before = row_counts(app_org)
    for username in ("employee", "supervisor", "manager", "ceo", "ocpe", "owner"):
        assert_errors(api_as(app, app_org, username).post("/api/v1/people", json=NEW_PERSON), 403)
    # 403 comes before the body is read: a bad body from a caller who may not add people is still 403
    assert_errors(api_as(app, app_org, "employee").post("/api/v1/people", json={}), 403)
    assert row_counts(app_org) == before
    assert api_as(app, app_org, "admin").post("/api/v1/people", json=NEW_PERSON).status_code == 201


def test_a_person_twice_is_409_and_nothing_changes(app: Flask, app_org: Runtime) -> None:
    api = api_as(app, app_org, "hr")
    before = row_counts(app_org)
    assert_errors(api.post("/api/v1/people", json={**NEW_PERSON, "username": "employee"}), 409)
    assert row_counts(app_org) == before


@pytest.mark.parametrize(("change", "field"), [
    ({"email": "not-an-email"}, "email"),
    ({"username": "has space"}, "username"),
    ({"username": ""}, "username"),
    ({"name": "   "}, "name"),
    ({"classification": 7}, "classification"),
    ({"commenced_on": "2026-02-30"}, "commenced_on"),
    ({"commenced_on": "5 Jan 2026"}, "commenced_on"),
    ({"supervisor": "nobody"}, "supervisor"),
    ({"manager": "nobody"}, "manager"),
    ({"ceo_delegate": "yes"}, "ceo_delegate"),
    ({"password": "short"}, "password"),
    ({"name": "x" * 201}, "name"),
    ({"name": "nul\x00char"}, "name"),
])
def test_bad_person_fields_are_422_by_field_and_nothing_changes(app: Flask, app_org: Runtime, change: dict[str, object],
                                                                 field: str) -> None:
    before = row_counts(app_org)
    assert_errors(api_as(app, app_org, "hr").post("/api/v1/people", json={**NEW_PERSON, **change}), 422, field)
    assert row_counts(app_org) == before


def test_missing_person_fields_are_each_named(app: Flask, app_org: Runtime) -> None:
    response = api_as(app, app_org, "hr").post("/api/v1/people", json={})
    errors = assert_errors(response, 422, "username", "name", "email", "classification")
    assert all(e["message"] == "This field is required." for e in errors)


def test_a_person_is_seen_by_themselves_their_leaders_and_hr(app: Flask, app_org: Runtime) -> None:
    for username in ("employee", "supervisor", "manager", "hr", "admin"):
        response = api_as(app, app_org, username).get("/api/v1/people/employee")
        assert response.status_code == 200, username
        assert response.get_json()["supervisor"] == "supervisor"
    supervisor = api_as(app, app_org, "supervisor").get("/api/v1/people/supervisor").get_json()
    assert supervisor["supervisor_of"] == ["clerk", "employee", "engineer"]
    for username in ("engineer", "clerk", "ceo", "delegate", "ocpe", "owner"):
        assert_errors(api_as(app, app_org, username).get("/api/v1/people/employee"), 404)


def test_usernames_beyond_ascii_are_added_found_and_filtered_on(app: Flask, app_org: Runtime) -> None:
    from urllib.parse import quote

    api = api_as(app, app_org, "hr")
    assert api.post("/api/v1/people", json={**NEW_PERSON, "username": "renée.ōta"}).status_code == 201
    body = api.get(f"/api/v1/people/{quote('renée.ōta')}").get_json()
    assert body["username"] == "renée.ōta" and body["name"] == NEW_PERSON["name"]
    # the new starter's performance agreement set-up (D19-3.3) is found by her username
    found = api.get(f"/api/v1/instances?subject={quote('renée.ōta')}").get_json()
    assert [(i["process"], i["subject"]) for i in found["items"]] == [("performance_agreement", "renée.ōta")]
    assert api.get(f"/api/v1/instances?subject={quote('renee.ota')}").get_json() == {"items": [], "next": None}
    for bad in ("renée ōta", "☃", "a\u0301"):  # a space, a symbol, a lone combining mark: not a username
        assert_errors(api.post("/api/v1/people", json={**NEW_PERSON, "username": bad}), 422, "username")
        assert_errors(api.get(f"/api/v1/people/{quote(bad)}"), 404)


def test_an_unknown_person_is_404(app: Flask, app_org: Runtime) -> None:
    api = api_as(app, app_org, "hr")
    for name in ("nobody", "no%20body", "nul%00", "x" * 300):
        assert_errors(api.get(f"/api/v1/people/{name}"), 404)


# ------------------------------------------------------------------------------------------- leave


def test_d19_9d_hr_records_lwop_and_running_cases_are_retimed(app: Flask, app_org: Runtime) -> None:
    case = start_case(app_org)
    response = api_as(app, app_org, "hr").post("/api/v1/people/employee/leave", json={
        "kind": "lwop", "start": "2026-03-10", "end": "2026-03-19", "counts_as_service": False})
    assert response.status_code == 201
    body = response.get_json()
    assert {k: body[k] for k in ("username", "kind", "start", "end", "counts_as_service", "retimed_cases")} == {
        "username": "employee", "kind": "lwop", "start": "2026-03-10", "end": "2026-03-19",
        "counts_as_service": False, "retimed_cases": [case]}
    instance = api_as(app, app_org, "hr").get(f"/api/v1/instances/{case}").get_json()
    assert instance["data"]["assessment_date"] == "2026-07-10"  # ten days later


def test_leave_is_for_admin_and_hr(app: Flask, app_org: Runtime) -> None:
    leave = {"kind": "ordinary", "start": "2026-03-10", "end": "2026-03-12", "counts_as_service": True}
    for username in ("employee", "supervisor", "manager"):
        assert_errors(api_as(app, app_org, username).post("/api/v1/people/employee/leave", json=leave), 403)
    assert_errors(api_as(app, app_org, "hr").post("/api/v1/people/nobody/leave", json=leave), 404)
    with app_org.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Leave)) == 0


@pytest.mark.parametrize(("change", "field"), [
    ({"kind": "holiday"}, "kind"), ({"start": "2026-02-30"}, "start"), ({"end": "tomorrow"}, "end"),
    ({"end": "2026-03-01"}, "end"), ({"counts_as_service": "no"}, "counts_as_service"),
    ({"counts_as_service": None}, "counts_as_service"),
])
def test_bad_leave_is_422_by_field(app: Flask, app_org: Runtime, change: dict[str, object], field: str) -> None:
    leave = {"kind": "lwop", "start": "2026-03-10", "end": "2026-03-12", "counts_as_service": False, **change}
    assert_errors(api_as(app, app_org, "hr").post("/api/v1/people/employee/leave", json=leave), 422, field)
    with app_org.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Leave)) == 0


# ------------------------------------------------------------------------------------------- processes


def test_processes_lists_the_deployed_definitions(app: Flask, app_org: Runtime) -> None:
    response = api_as(app, app_org, "employee").get("/api/v1/processes")
    assert response.status_code == 200
    items = response.get_json()
    assert isinstance(items, list)
    mine = next(p for p in items if p["key"] == "pay_progression")
    assert set(mine) >= {"key", "version", "name", "deployed_at", "deployed_by", "executable"}
    assert mine["version"] == 1 and mine["executable"] is True and mine["deployed_by"] == "demo"
    assert "Link" not in response.headers


def test_processes_are_paged_with_a_link_header(app: Flask, app_org: Runtime) -> None:
    api = api_as(app, app_org, "owner")
    assert api.post("/api/v1/processes", data=HELLO_BPMN, content_type="application/xml").status_code == 201
    everything = [p["key"] for p in api.get("/api/v1/processes").get_json()]
    assert len(everything) >= 2
    seen, url = [], "/api/v1/processes?limit=1"
    while url:
        response = api.get(url)
        page = response.get_json()
        assert len(page) == 1
        seen += [p["key"] for p in page]
        link = response.headers.get("Link")
        url = re.sub(r"^<https?://[^/]+(/[^>]*)>.*$", r"\1", link) if link else ""
    assert seen == everything


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=x", "cursor=abc", "cursor=-1", "cursor=",
                                   "cursor=2147483648", "cursor=1.5"])
def test_bad_paging_is_422(app: Flask, app_org: Runtime, query: str) -> None:
    api = api_as(app, app_org, "supervisor")
    field = query.split("=")[0]
    assert_errors(api.get(f"/api/v1/processes?{query}"), 422, field)
    assert_errors(api.get(f"/api/v1/tasks?{query}"), 422, field)


def test_owner_deploys_bpmn_as_xml(app: Flask, app_org: Runtime) -> None:
    response = api_as(app, app_org, "owner").post("/api/v1/processes", data=HELLO_BPMN,
                                                   content_type="application/xml")
    assert response.status_code == 201
    assert response.get_json() == {"processes": [{"key": "hello", "version": 1}]}


def test_deploy_as_multipart_with_any_field_names(app: Flask, app_org: Runtime) -> None:
    sources = sorted(app_org.settings.processes_dir.glob("pay_progression/*.*mn"))  # the diagram and its tables
    forms = sorted(app_org.settings.forms_dir.glob("*.json"))
    data = {"first": (io.BytesIO(HELLO_BPMN), "hello.bpmn")}
    data.update({f"part{i}": (io.BytesIO(p.read_bytes()), p.name) for i, p in enumerate([*sources, *forms])})
    response = api_as(app, app_org, "admin").post("/api/v1/processes", data=data, content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    assert {p["key"] for p in response.get_json()["processes"]} >= {"hello", "pay_progression"}


def test_deploy_is_all_or_nothing(app: Flask, app_org: Runtime) -> None:
    before = row_counts(app_org)
    broken = HELLO_BPMN.replace(b'id="hello"', b'id="broken"').replace(b'targetRef="finish"', b'targetRef="nowhere"')
    data = {"a": (io.BytesIO(HELLO_BPMN), "hello.bpmn"), "b": (io.BytesIO(broken), "broken.bpmn")}
    response = api_as(app, app_org, "owner").post("/api/v1/processes", data=data, content_type="multipart/form-data")
    errors = assert_errors(response, 422)
    assert any("element" in e for e in errors)
    assert row_counts(app_org) == before


def test_deploy_refusals(app: Flask, app_org: Runtime) -> None:
    owner = api_as(app, app_org, "owner")
    assert_errors(owner.post("/api/v1/processes", data=b"<bpmn:definitions", content_type="application/xml"), 422)
    assert_errors(owner.post("/api/v1/processes", data=HELLO_BPMN, content_type="text/plain"), 415)
    assert_errors(owner.post("/api/v1/processes", json={"bpmn": "x"}), 415)
    entity = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>'
    assert_errors(owner.post("/api/v1/processes", data=entity, content_type="application/xml"), 422)
    for username in ("employee", "hr", "supervisor"):
        assert_errors(api_as(app, app_org, username).post("/api/v1/processes", data=HELLO_BPMN,
                                                         content_type="application/xml"), 403)
    with app_org.db.read() as s:
        assert s.scalar(select(func.count()).select_from(ProcessDefinition).where(
            ProcessDefinition.key == "hello")) == 0


def test_too_large_a_body_is_a_json_413(app: Flask, app_org: Runtime) -> None:
    app.config["MAX_CONTENT_LENGTH"] = 1024
    response = api_as(app, app_org, "owner").post("/api/v1/processes", data=b" " * 4096,
                                                   content_type="application/xml")
    assert_errors(response, 413)


# ------------------------------------------------------------------------------------------- instances


def test_hr_starts_a_case(app: Flask, app_org: Runtime) -> None:
    response = api_as(app, app_org, "hr").post("/api/v1/instances", json={"process": "pay_progression",
                                                                         "data": START})
    assert response.status_code == 201
    case = response.get_json()
    assert case["process"] == "pay_progression" and case["version"] == 1 and case["status"] == "running"
    data = case["data"]
    assert {k: data[k] for k in START} == START
    assert data["classification"] == "SPAO1" and data["pay_point"] == "SPAO1-1"
    assert data["original_assessment_date"] == "2026-06-30"
    assert [t["name"] for t in case["tasks"]] == ["invite_submission"]
    assert case["tasks"][0]["assignee"] == "supervisor"
    assert all(set(t) >= {"name", "due_at"} for t in case["timers"])
    assert case["events"][0]["kind"] == "started" and case["events"][0]["actor"] == "hr"
    assert all(set(e) >= {"at", "actor", "kind", "detail"} for e in case["events"])


def test_supervisor_starts_a_case_for_their_staff_but_not_others(app: Flask, app_org: Runtime) -> None:
    supervisor = api_as(app, app_org, "supervisor")
    assert supervisor.post("/api/v1/instances", json={"process": "pay_progression", "data": START}).status_code == 201
    before = row_counts(app_org)
    assert_errors(api_as(app, app_org, "engineer").post("/api/v1/instances", json={
        "process": "pay_progression", "data": START}), 403)
    assert row_counts(app_org) == before


def test_d19_1_policy_refusal_is_422_with_the_reason(app: Flask, app_org: Runtime) -> None:
    api = api_as(app, app_org, "hr")
    before = row_counts(app_org)
    errors = assert_errors(api.post("/api/v1/instances", json={"process": "pay_progression",
                                                              "data": {**START, "employee": "clerk"}}), 422, "employee")
    assert "Determination 19, cl. 1" in errors[0]["message"] and "AO6" in errors[0]["message"]
    assert_errors(api.post("/api/v1/instances", json={"process": "pay_progression", "data": {
        "employee": "nobody", "assessment_date": "2026-02-30"}}), 422, "employee", "assessment_date", "agreement_start")
    assert_errors(api.post("/api/v1/instances", json={"process": "no_such_process", "data": {}}), 422, "process")
    assert_errors(api.post("/api/v1/instances", json={"process": "pay_progression", "data": []}), 422, "data")
    assert_errors(api.post("/api/v1/instances", json={"data": START}), 422, "process")
    assert row_counts(app_org) == before


def test_a_case_is_hidden_from_those_outside_it(app: Flask, app_org: Runtime) -> None:
    case = start_case(app_org)
    for username in ("employee", "supervisor", "hr", "admin"):
        assert api_as(app, app_org, username).get(f"/api/v1/instances/{case}").status_code == 200, username
    for username in ("engineer", "clerk", "ocpe", "owner"):
        assert_errors(api_as(app, app_org, username).get(f"/api/v1/instances/{case}"), 404)
    hr = api_as(app, app_org, "hr")
    for missing in (case + 1000, 2147483647, 2147483648, 99999999999999999999):
        assert_errors(hr.get(f"/api/v1/instances/{missing}"), 404)


# ------------------------------------------------------------------------------------------- tasks


def test_tasks_lists_what_the_caller_may_work_on(app: Flask, app_org: Runtime) -> None:
    case = start_case(app_org)
    page = api_as(app, app_org, "supervisor").get("/api/v1/tasks").get_json()
    assert page["next"] is None
    [task] = page["items"]
    assert set(task) >= {"id", "instance", "name", "title", "lane", "assignee", "due_at", "overdue", "clause"}
    assert task["instance"] == case and task["name"] == "invite_submission" and task["lane"] == "Supervisor"
    assert task["title"] == "Invite a pay progression submission" and task["clause"] == "D19-3.2"
    # D19-3.2: invited two months before the assessment date, by the end of 30 April in Darwin
    assert task["due_at"] == "2026-04-30T14:30:00+00:00" and task["overdue"] is False
    for username in ("employee", "engineer", "manager", "hr"):
        assert api_as(app, app_org, username).get("/api/v1/tasks").get_json() == {"items": [], "next": None}


def test_d19_9a_ceo_tasks_reach_the_ceo_of_the_moment_with_no_query_beyond_the_token_and_the_inbox(
        app: Flask, app_org: Runtime) -> None:
    """The token check also reads whether the caller heads an organisation, for that request only."""
    task = open_task(app_org, start_case(app_org), "invite_submission")
    with app_org.db.unit_of_work() as uow:  # the CEO's office of the employee's organisation (D19-7)
        org = uow.session.scalar(select(Person.organisation_id).where(Person.username == "employee"))
        uow.session.execute(update(HumanTask).where(HumanTask.id == task).values(assignee_id=None,
                                                                                   assigned_group=f"ceo:{org}"))
        uow.commit()
    ceo = api_as(app, app_org, "ceo")
    sent: list[str] = []
    with listening(app_org, "before_cursor_execute", lambda _c, _k, statement, *_a: sent.append(statement)):
        assert [t["id"] for t in ceo.get("/api/v1/tasks").get_json()["items"]] == [task]
    assert len([s for s in sent if "organisation" in s]) == 1, sent  # inside the token's statement
    assert [t["id"] for t in api_as(app, app_org, "delegate").get("/api/v1/tasks").get_json()["items"]] == [task]
    with app_org.db.unit_of_work() as uow:  # the CEO leaves: the same token no longer reaches the CEO's work
        uow.session.execute(update(Organisation).values(ceo_id=None))
        uow.commit()
    assert ceo.get("/api/v1/tasks").get_json()["items"] == []
    assert ceo.post(f"/api/v1/tasks/{task}/complete", json={"data": {}}).status_code in (403, 404)


def test_tasks_are_paged_by_cursor(app: Flask, app_org: Runtime) -> None:
    cases = [start_case(app_org), start_case(app_org, {**START, "employee": "engineer"})]
    api = api_as(app, app_org, "supervisor")
    first = api.get("/api/v1/tasks?limit=1").get_json()
    assert len(first["items"]) == 1 and first["next"] is not None
    second = api.get(f"/api/v1/tasks?limit=1&cursor={first['next']}").get_json()
    assert len(second["items"]) == 1 and second["next"] is None
    assert [first["items"][0]["instance"], second["items"][0]["instance"]] == cases


def test_a_cursor_may_be_any_id_up_to_the_largest(app: Flask, app_org: Runtime) -> None:
    # Ids run to PostgreSQL's `integer` (10 digits); a cursor past every row is simply the end of the list.
    start_case(app_org)
    supervisor, hr = api_as(app, app_org, "supervisor"), api_as(app, app_org, "hr")
    assert len(supervisor.get("/api/v1/tasks?cursor=0").get_json()["items"]) == 1
    for cursor in ("1000000000", "2147483647"):
        assert supervisor.get(f"/api/v1/tasks?cursor={cursor}").get_json() == {"items": [], "next": None}
        assert supervisor.get(f"/api/v1/processes?cursor={cursor}").get_json() == []
    assert len(hr.get("/api/v1/instances?cursor=2147483647").get_json()["items"]) == 1
    assert hr.get("/api/v1/instances?cursor=1").get_json() == {"items": [], "next": None}
    for path in ("/api/v1/tasks", "/api/v1/instances"):
        parameters = {p["name"]: p["schema"] for p in hr.get("/api/v1/openapi.json").get_json()
                      ["paths"][path]["get"]["parameters"]}
        assert parameters["cursor"]["type"] == "integer"
        assert (parameters["cursor"]["minimum"], parameters["cursor"]["maximum"]) == (0, 2147483647)


def test_a_task_shows_its_form_and_data(app: Flask, app_org: Runtime) -> None:
    case = start_case(app_org)
    task = open_task(app_org, case, "invite_submission")
    body = api_as(app, app_org, "supervisor").get(f"/api/v1/tasks/{task}").get_json()
    assert body["id"] == task and body["workable"] is True
    assert body["form"]["schema"]["required"] == ["invitation"] and isinstance(body["form"]["ui_schema"], dict)
    assert isinstance(body["data"], dict)
    # the employee may see the task of her own case, read-only
    mine = api_as(app, app_org, "employee").get(f"/api/v1/tasks/{task}")
    assert mine.status_code == 200 and mine.get_json()["workable"] is False
    assert_errors(api_as(app, app_org, "engineer").get(f"/api/v1/tasks/{task}"), 404)
    assert_errors(api_as(app, app_org, "supervisor").get(f"/api/v1/tasks/{task + 1000}"), 404)


def test_completing_a_task(app: Flask, app_org: Runtime) -> None:
    case = start_case(app_org)
    task = open_task(app_org, case, "invite_submission")
    response = api_as(app, app_org, "supervisor").post(f"/api/v1/tasks/{task}/complete", json={"data": INVITE})
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == case and [t["name"] for t in body["tasks"]] == ["make_submission"]
    assert body["data"]["invitation"]["message"] == INVITE["invitation"]["message"]


def test_completing_refusals_403_404_409_422(app: Flask, app_org: Runtime) -> None:
    case = start_case(app_org)
    task = open_task(app_org, case, "invite_submission")
    before = row_counts(app_org)
    supervisor = api_as(app, app_org, "supervisor")
    errors = assert_errors(supervisor.post(f"/api/v1/tasks/{task}/complete", json={"data": {}}), 422, "invitation")
    assert errors[0]["message"]
    assert_errors(supervisor.post(f"/api/v1/tasks/{task}/complete", json={"data": {"invitation": {
        "message": "   "}}}), 422)
    assert_errors(supervisor.post(f"/api/v1/tasks/{task}/complete", json={"data": "x"}), 422, "data")
    assert_errors(api_as(app, app_org, "employee").post(f"/api/v1/tasks/{task}/complete", json={"data": INVITE}), 403)
    assert_errors(api_as(app, app_org, "hr").post(f"/api/v1/tasks/{task}/complete", json={"data": INVITE}), 403)
    assert_errors(api_as(app, app_org, "engineer").post(f"/api/v1/tasks/{task}/complete", json={"data": INVITE}), 404)
    assert_errors(supervisor.post(f"/api/v1/tasks/{task + 1000}/complete", json={"data": INVITE}), 404)
    assert row_counts(app_org) == before
    assert supervisor.post(f"/api/v1/tasks/{task}/complete", json={"data": INVITE}).status_code == 200
    assert_errors(supervisor.post(f"/api/v1/tasks/{task}/complete", json={"data": INVITE}), 409)


def test_a_form_cannot_set_undeclared_case_data(app: Flask, app_org: Runtime) -> None:
    case = start_case(app_org)
    task = open_task(app_org, case, "invite_submission")
    api_as(app, app_org, "supervisor").post(f"/api/v1/tasks/{task}/complete", json={
        "data": {**INVITE, "outcome": "progressed", "employee": "engineer"}})
    with app_org.db.read() as s:
        data = s.get_one(ProcessInstance, case).data
    assert data["employee"] == "employee" and "outcome" not in data


# ------------------------------------------------------------------------------------------- HTTP edges


def test_unknown_api_paths_and_methods_answer_json(app: Flask, app_org: Runtime) -> None:
    api = api_as(app, app_org, "hr")
    assert_errors(api.get("/api/v1/nothing-here"), 404)
    response = api.delete("/api/v1/people/employee")
    assert_errors(response, 405)
    assert set(response.headers["Allow"].split(", ")) >= {"GET"}
    response = api.client.put("/api/v1/tasks")
    assert_errors(response, 405)


def test_no_stack_trace_ever(app: Flask, app_org: Runtime) -> None:
    api = api_as(app, app_org, "hr")
    deep: dict[str, object] = {}
    node = deep
    for _ in range(200):
        node["x"] = {}
        node = node["x"]  # type: ignore[assignment]
    for response in (api.post("/api/v1/instances", json={"process": "pay_progression", "data": deep}),
                     api.post("/api/v1/instances", data=b"\xff\xfe", content_type="application/json"),
                     api.post("/api/v1/people", data="[" * 5000, content_type="application/json")):
        assert 400 <= response.status_code < 500
        assert "Traceback" not in response.get_data(as_text=True)
        assert_errors(response, response.status_code)


def test_a_user_without_a_person_record_can_call(app: Flask, app_org: Runtime) -> None:
    from engine.people.users import create_user

    with app_org.db.unit_of_work() as uow:
        create_user(uow.session, "robot", ["hr"], "quiet ferry lantern 2026")
        uow.commit()
    api = api_as(app, app_org, "robot")
    assert api.get("/api/v1/me").get_json() == {"username": "robot", "name": "robot", "roles": ["hr"]}
    assert api.get("/api/v1/tasks").status_code == 200
    with app_org.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Person).where(Person.username == "robot")) == 0


# ------------------------------------------------------------------------------------------- the document


API_MD_CALLS = {("post", "/api/v1/auth/token"), ("get", "/api/v1/me"), ("post", "/api/v1/people"),
                ("get", "/api/v1/people/{username}"), ("post", "/api/v1/people/{username}/leave"),
                ("get", "/api/v1/processes"), ("post", "/api/v1/processes"), ("post", "/api/v1/instances"),
                ("get", "/api/v1/instances/{instance_id}"), ("get", "/api/v1/tasks"),
                ("get", "/api/v1/tasks/{task_id}"), ("post", "/api/v1/tasks/{task_id}/complete")}


def test_openapi_document_describes_every_call(client: FlaskClient) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["openapi"].startswith("3.")
    calls = {(m, p) for p, item in doc["paths"].items() for m in item}
    assert calls >= API_MD_CALLS | {("delete", "/api/v1/auth/token")}
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": doc["components"]["securitySchemes"]["bearerAuth"][
            "description"]}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            codes = set(op["responses"])
            secured = op.get("security", doc["security"]) != []
            assert "401" in codes or not secured, (method, path)
            assert any(c.startswith("2") for c in codes)
            for code, answer in op["responses"].items():
                if code.startswith("4"):
                    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Errors"}
            if "{" in path:
                assert "404" in codes, (method, path)
    token_op = doc["paths"]["/api/v1/auth/token"]["post"]
    assert token_op["security"] == [] and "429" in token_op["responses"]
    deploy = doc["paths"]["/api/v1/processes"]["post"]["requestBody"]["content"]
    assert set(deploy) == {"application/xml", "multipart/form-data"}
    person = doc["components"]["schemas"]["PersonIn"]
    assert set(person["required"]) == {"username", "name", "email", "classification"}
    json.dumps(doc)  # plain JSON


def test_the_document_validates_what_the_api_validates(app: Flask, app_org: Runtime) -> None:
    """The limits the document publishes are the ones the API enforces (one source: the models)."""
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    name_max = doc["components"]["schemas"]["PersonIn"]["properties"]["name"]["maxLength"]
    api = api_as(app, app_org, "hr")
    assert_errors(api.post("/api/v1/people", json={**NEW_PERSON, "name": "x" * (name_max + 1)}), 422, "name")
    assert api.post("/api/v1/people", json={**NEW_PERSON, "name": "x" * name_max}).status_code == 201


def test_docs_page_works_without_a_cdn(client: FlaskClient) -> None:
    response = client.get("/api/v1/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "POST /api/v1/auth/token" in page and "GET /api/v1/tasks/{task_id}" in page
    assert "PersonIn" in page and "Authorization: Bearer TOKEN" in page
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing from another origin
    assert "<script" not in page


# ------------------------------------------------------------------------------------------- lists


SUMMARY = {"id", "process", "version", "title", "status", "subject", "started_at", "ended_at"}


def _pages(api: Any, path: str, limit: int, cursor: str = "") -> list[list[dict[str, Any]]]:
    """Every page of a list (from `cursor`), following `next` until it is null."""
    pages = []
    while True:
        sep = "&" if "?" in path else "?"
        response = api.get(f"{path}{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else ""))
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        assert set(body) == {"items", "next"}
        pages.append(body["items"])
        if body["next"] is None:
            return pages
        assert len(body["items"]) == limit  # only the last page may be short
        cursor = body["next"]


def test_instances_lists_cases_newest_first(app: Flask, app_org: Runtime) -> None:
    first = start_case(app_org)
    second = start_case(app_org, {**START, "employee": "engineer"})
    response = api_as(app, app_org, "hr").get("/api/v1/instances")
    assert response.status_code == 200
    body = response.get_json()
    assert body["next"] is None
    assert [c["id"] for c in body["items"]] == [second, first]
    newest = body["items"][0]
    assert set(newest) == SUMMARY
    assert newest["process"] == "pay_progression" and newest["version"] == 1 and newest["status"] == "running"
    assert newest["subject"] == "engineer" and "Tom Nguyen" in newest["title"]
    assert newest["started_at"] == CLOCK.now().isoformat() and newest["ended_at"] is None
    # the list's summary is what the case itself says (which names its subject only in its data)
    case = api_as(app, app_org, "hr").get(f"/api/v1/instances/{second}").get_json()
    assert {k: case[k] for k in SUMMARY - {"subject"}} == {k: newest[k] for k in SUMMARY - {"subject"}}


def _set_status(runtime: Runtime, case: int, status: str) -> None:
    with runtime.db.unit_of_work() as uow:
        uow.session.get_one(ProcessInstance, case).status = status
        uow.commit()


@pytest.fixture
def cases(app: Flask, app_org: Runtime) -> dict[str, int]:
    """Cases on three Darwin days: employee's (2 Mar), a finished `hello` (3 Mar), engineer's (4 Mar, while it
    is still 3 Mar in UTC), and a cancelled one of employee's (4 Mar)."""
    assert api_as(app, app_org, "owner").post("/api/v1/processes", data=HELLO_BPMN,
                                               content_type="application/xml").status_code == 201
    employee = start_case(app_org)
    CLOCK.advance(timedelta(days=1))
    hello = app_org.start(None, "hello", {}, actor="hr")
    CLOCK.advance(timedelta(hours=20))  # 2026-03-03T20:00Z is 2026-03-04 05:30 in Darwin
    engineer = start_case(app_org, {**START, "employee": "engineer"})
    _set_status(app_org, employee, "completed")  # one running cycle per employee (D19-5): set aside a moment
    cancelled = start_case(app_org)
    _set_status(app_org, cancelled, "cancelled")
    _set_status(app_org, employee, "running")
    return {"employee": employee, "hello": hello, "engineer": engineer, "cancelled": cancelled}


@pytest.mark.parametrize(("query", "expected"), [
    ("", ["cancelled", "engineer", "hello", "employee"]),
    ("process=pay_progression", ["cancelled", "engineer", "employee"]),
    ("process=hello", ["hello"]),
    ("process=no_such_process", []),
    ("status=running", ["engineer", "employee"]),
    ("status=completed", ["hello"]),
    ("status=cancelled", ["cancelled"]),
    ("status=error", []),
    ("subject=employee", ["cancelled", "employee"]),
    ("subject=engineer", ["engineer"]),
    ("subject=nobody", []),
    ("started_after=2026-03-03", ["cancelled", "engineer", "hello"]),
    ("started_after=2026-03-04", ["cancelled", "engineer"]),  # days are Darwin's, not UTC's
    ("started_before=2026-03-04", ["hello", "employee"]),
    ("started_after=2026-03-03&started_before=2026-03-04", ["hello"]),
    ("started_after=2026-03-05", []),
    ("status=running&subject=employee&process=pay_progression&started_before=2026-03-03", ["employee"]),
])
def test_instances_filters(app: Flask, app_org: Runtime, cases: dict[str, int], query: str,
                           expected: list[str]) -> None:
    body = api_as(app, app_org, "hr").get(f"/api/v1/instances?{query}").get_json()
    assert [c["id"] for c in body["items"]] == [cases[name] for name in expected]


def test_a_finished_case_in_the_list(app: Flask, app_org: Runtime, cases: dict[str, int]) -> None:
    [hello] = api_as(app, app_org, "admin").get("/api/v1/instances?status=completed").get_json()["items"]
    assert hello["process"] == "hello" and hello["subject"] is None
    assert hello["ended_at"] is not None and hello["ended_at"] >= hello["started_at"]


def _earlier_cycle(runtime: Runtime, data: dict[str, Any] | None = None) -> int:
    """A case of an earlier cycle (ended), so that the employee may have another: one running cycle each (D19-5)."""
    case = start_case(runtime, data)
    with runtime.db.unit_of_work() as uow:
        uow.session.get_one(ProcessInstance, case).status = "completed"
        uow.commit()
    return case


def test_instances_are_paged_without_gaps_or_repeats(app: Flask, app_org: Runtime) -> None:
    started = [_earlier_cycle(app_org, {**START, "employee": ("employee", "engineer")[i % 2]}) for i in range(7)]
    api = api_as(app, app_org, "hr")
    for limit in (1, 2, 3, 7, 200):
        pages = _pages(api, "/api/v1/instances", limit)
        assert [c["id"] for page in pages for c in page] == started[::-1], limit
    # filters hold across pages
    pages = _pages(api, "/api/v1/instances?subject=engineer", 2)
    assert [c["id"] for page in pages for c in page] == started[1::2][::-1]
    # a case started while a client pages neither shifts nor repeats what it has not read yet (keyset, not offset)
    first = api.get("/api/v1/instances?limit=3").get_json()
    start_case(app_org)
    rest = [c["id"] for page in _pages(api, "/api/v1/instances", 3, first["next"]) for c in page]
    assert [c["id"] for c in first["items"]] + rest == started[::-1]


def test_instances_default_and_largest_page(app: Flask, app_org: Runtime) -> None:
    for _ in range(3):
        _earlier_cycle(app_org)
    api = api_as(app, app_org, "hr")
    assert len(api.get("/api/v1/instances").get_json()["items"]) == 3
    assert api.get("/api/v1/instances?limit=200").status_code == 200


@pytest.mark.parametrize(("query", "field"), [
    ("status=finished", "status"), ("status=", "status"), ("status=RUNNING", "status"),
    ("process=", "process"), ("process=nul%00", "process"), ("process=" + "p" * 201, "process"),
    ("subject=has%20space", "subject"), ("subject=", "subject"),
    ("started_after=2026-02-30", "started_after"), ("started_after=yesterday", "started_after"),
    ("started_after=2026-3-1", "started_after"), ("started_before=2026-03-01T00:00:00", "started_before"),
    ("started_after=2026-03-05&started_before=2026-03-05", "started_before"),
    ("started_after=2026-03-05&started_before=2026-03-01", "started_before"),
    ("limit=0", "limit"), ("limit=201", "limit"), ("limit=x", "limit"),
    ("cursor=abc", "cursor"), ("cursor=-1", "cursor"), ("cursor=12345678901", "cursor"),
    ("state=running", "state"),  # a misspelt filter is an error, not every case
])
def test_bad_instance_filters_are_400_naming_the_field(app: Flask, app_org: Runtime, query: str, field: str) -> None:
    start_case(app_org)
    errors = assert_errors(api_as(app, app_org, "hr").get(f"/api/v1/instances?{query}"), 400, field)
    assert [e["field"] for e in errors] == [field]


def test_people_lists_everyone_for_hr_as_the_single_person_call_shows_them(app: Flask, app_org: Runtime) -> None:
    api = api_as(app, app_org, "hr")
    body = api.get("/api/v1/people").get_json()
    assert body["next"] is None
    usernames = [p["username"] for p in body["items"]]
    assert usernames == sorted(DEMO_USERS)
    for person in body["items"]:
        assert person == api.get(f"/api/v1/people/{person['username']}").get_json()
    supervisor = next(p for p in body["items"] if p["username"] == "supervisor")
    assert supervisor["supervisor_of"] == ["clerk", "employee", "engineer"] and supervisor["supervisor"] == "manager"


@pytest.mark.parametrize(("query", "expected"), [
    ("q=wong", ["employee"]),  # part of the name, any case
    ("q=EMP", ["employee"]),  # part of the username, any case
    ("q=OR", ["admin", "manager", "supervisor"]),  # Administrator, Morgan, Supervisor
    ("q=(ceo", ["delegate"]),  # Dana Price (CEO delegate)
    ("q=%25", []),  # LIKE's wildcards are plain text
    ("q=_", []),
    ("q=nobody at all", []),
    ("organisation=DPC", sorted(DEMO_USERS)),
    ("organisation=OTHER", ["newstarter"]),
    ("organisation=NONE", []),
    ("organisation=OTHER&q=new", ["newstarter"]),
    ("organisation=OTHER&q=wong", []),
])
def test_people_filters(app: Flask, app_org: Runtime, query: str, expected: list[str]) -> None:
    api = api_as(app, app_org, "hr")
    assert api.post("/api/v1/people", json={**NEW_PERSON, "organisation": "OTHER"}).status_code == 201
    body = api.get(f"/api/v1/people?{query}").get_json()
    assert [p["username"] for p in body["items"]] == expected


def test_people_are_paged_without_gaps_or_repeats(app: Flask, app_org: Runtime) -> None:
    from engine.people.users import parse_person, save_person

    api = api_as(app, app_org, "hr")
    with app_org.db.unit_of_work() as uow:  # the CSV import takes usernames beyond ASCII; they page too
        for username in ("zoë.ångström", "Aa", "a_b"):
            save_person(uow.session, parse_person({**NEW_PERSON, "username": username, "name": username}))
        uow.commit()
    everyone = [p["username"] for p in api.get("/api/v1/people?limit=200").get_json()["items"]]
    assert len(everyone) == len(DEMO_USERS) + 3 and len(set(everyone)) == len(everyone)
    for limit in (1, 2, 5, 13, 50):
        assert [p["username"] for page in _pages(api, "/api/v1/people", limit) for p in page] == everyone, limit
    some = [p["username"] for p in api.get("/api/v1/people?q=e&limit=200").get_json()["items"]]
    assert 2 < len(some) < len(everyone)
    assert [p["username"] for page in _pages(api, "/api/v1/people?q=e", 2) for p in page] == some


@pytest.mark.parametrize(("query", "field"), [
    ("q=", "q"), ("q=nul%00", "q"), ("q=" + "x" * 201, "q"), ("organisation=", "organisation"),
    ("limit=0", "limit"), ("limit=201", "limit"), ("limit=two", "limit"),
    ("cursor=not%20base64", "cursor"), ("cursor=A", "cursor"), ("cursor=_w", "cursor"), ("cursor=AA", "cursor"),
    ("cursor=" + "A" * 501, "cursor"), ("name=Emily", "name"),
])
def test_bad_people_filters_are_400_naming_the_field(app: Flask, app_org: Runtime, query: str, field: str) -> None:
    errors = assert_errors(api_as(app, app_org, "hr").get(f"/api/v1/people?{query}"), 400, field)
    assert [e["field"] for e in errors] == [field]


def test_lists_read_a_fixed_number_of_statements(app: Flask, app_org: Runtime) -> None:
    """Visibility and the people's links are filtered and fetched in SQL, a page at a time: no query per row."""
    from sqlalchemy import event

    engine = app.extensions["ntpswf"].db.engine
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    def calls(api: Any, path: str) -> int:
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            assert api.get(path).status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(statements)

    hr, supervisor = api_as(app, app_org, "hr"), api_as(app, app_org, "supervisor")
    first = start_case(app_org)
    few = {(who, path): calls(api, path) for who, api in (("hr", hr), ("supervisor", supervisor))
           for path in ("/api/v1/instances", "/api/v1/people")}
    with app_org.db.unit_of_work() as uow:  # one running cycle per employee (D19-5): that one has ended
        uow.session.get_one(ProcessInstance, first).status = "completed"
        uow.commit()
    for i in range(12):
        data = {**START, "employee": ("employee", "engineer")[i % 2]}
        _earlier_cycle(app_org, data) if i < 10 else start_case(app_org, data)
        hr.post("/api/v1/people", json={**NEW_PERSON, "username": f"staff{i}", "supervisor": "supervisor"})
    for (who, path), before in few.items():
        assert calls(hr if who == "hr" else supervisor, path) == before, (who, path)


def test_the_lists_are_in_the_document(client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    for path, page, params in (
            ("/api/v1/instances", "InstancePage",
             {"process", "status", "subject", "started_after", "started_before", "cursor", "limit"}),
            ("/api/v1/people", "PersonPage", {"q", "organisation", "cursor", "limit"})):
        op = doc["paths"][path]["get"]
        assert {p["name"] for p in op["parameters"]} == params and all(p["in"] == "query" for p in op["parameters"])
        assert not any(p["required"] for p in op["parameters"])
        assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{page}"}
        assert {"200", "400", "401"} <= set(op["responses"]) and "422" not in op["responses"]
    statuses = doc["paths"]["/api/v1/instances"]["get"]["parameters"]
    assert next(p for p in statuses if p["name"] == "status")["schema"]["enum"] == [
        "running", "completed", "cancelled", "error"]
    summary = doc["components"]["schemas"]["InstanceSummary"]
    assert set(summary["required"]) == SUMMARY
    assert doc["components"]["schemas"]["PersonPage"]["properties"]["items"]["items"] == {
        "$ref": "#/components/schemas/PersonOut"}


def test_a_task_in_a_parallel_branch_starts_from_its_own_branchs_data(app: Flask, app_org: Runtime,
                                                                      client: FlaskClient, auth: Any) -> None:
    """The API's task and the task page prefill the form and fill the instructions from the task's own branch,
    not from the case's one snapshot (which holds whichever branch ran last)."""
    from tests.workflow.driver import Driver
    from tests.workflow.test_runtime import deploy_branches

    deploy_branches(app_org)
    d = Driver(app_org)
    case = app_org.start(d.user("hr"), "two_branches", {})
    hr = api_as(app, app_org, "hr")
    for name, note, who in (("left", "left branch", "Home"), ("right", "right branch", "Host")):
        task_id = d.open_task(case, name).id
        shown = hr.get(f"/api/v1/tasks/{task_id}").get_json()
        assert shown["data"] == {"note": note}
        auth.login("hr")
        page = client.get(f"/tasks/{task_id}").get_data(as_text=True)
        assert f"Answer for {who}." in page and f'value="{note}"' in page
