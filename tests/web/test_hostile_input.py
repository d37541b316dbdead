"""Issue 16: no server error for any input. Each case answered 500 (or gunicorn's HTML page) before."""

from __future__ import annotations

import io
import json
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from engine.workflow.runtime import Runtime
from tests.conftest import Auth
from tests.web.api_helpers import START, api_as, assert_errors, start_case


def _nested(levels: int) -> bytes:
    return ('<?xml version="1.0"?><bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
            'id="d" targetNamespace="t"><bpmn:process id="deep" isExecutable="true">'
            + "<bpmn:extensionElements>" * levels + "</bpmn:extensionElements>" * levels
            + "</bpmn:process></bpmn:definitions>").encode()


@pytest.mark.parametrize("levels", [150, 300])
def test_sec_a_deeply_nested_bpmn_is_refused_on_the_api_and_in_the_studio(app: Flask, app_org: Runtime,
                                                                         auth: Auth, client: FlaskClient,
                                                                         levels: int) -> None:
    api = api_as(app, app_org, "owner")
    refused = api.post("/api/v1/processes", data={"files": (io.BytesIO(_nested(levels)), "deep.bpmn")},
                       content_type="multipart/form-data")
    problems = assert_errors(refused, 422)
    assert problems[0]["element"] == "deep.bpmn"
    auth.login("owner")
    xml = _nested(levels).decode()
    for path, body in (("/studio/api/validate", {"key": "deep", "filename": "deep.bpmn", "xml": xml, "forms": {}}),
                       ("/studio/api/draft", {"key": "deep", "filename": "deep.bpmn", "xml": xml, "forms": {}}),
                       ("/studio/api/deploy", {"key": "deep", "filename": "deep.bpmn", "xml": xml, "forms": {}})):
        answer = client.post(path, json=body)
        assert answer.status_code < 500, (path, answer.get_data(as_text=True)[:300])
    upload = client.post("/studio/import", data={"file": (io.BytesIO(_nested(levels)), "deep.bpmn")},
                         content_type="multipart/form-data")
    assert upload.status_code < 500


@pytest.mark.parametrize("value", [10**30, -(10**30), 1e308, {"n": 10**30}, [10**30]])
def test_sec_huge_numbers_in_start_and_task_data_are_no_server_error(app: Flask, app_org: Runtime,
                                                                      value: object) -> None:
    api = api_as(app, app_org, "hr")
    for field in ("employee", "agreement_start", "assessment_date", "transfer", "higher_duties", "assign", "x"):
        answer = api.post("/api/v1/instances", json={"process": "pay_progression",
                                                     "data": {**START, "employee": "engineer", field: value}})
        assert answer.status_code < 500, (field, answer.get_data(as_text=True)[:300])
    case = start_case(app_org)
    supervisor = api_as(app, app_org, "supervisor")
    from tests.web.api_helpers import open_task

    task = open_task(app_org, case, "invite_submission")
    answer = supervisor.post(f"/api/v1/tasks/{task}/complete", json={"data": {"invitation": value}})
    assert answer.status_code == 422


def test_sec_dates_out_of_range_are_refused_naming_the_field(app: Flask, app_org: Runtime) -> None:
    api = api_as(app, app_org, "hr")
    leave = api.post("/api/v1/people/employee/leave", json={"kind": "lwop", "start": "0001-01-01",
                                                           "end": "9999-12-31", "counts_as_service": False})
    assert_errors(leave, 422, "start", "end")
    person = {"username": "newstarter", "name": "New Starter", "email": "new@demo.ntps.example",
              "classification": "AO6", "organisation": "DPC"}
    for day in ("0001-01-01", "9999-12-31"):
        assert_errors(api.post("/api/v1/people", json={**person, "commenced_on": day}), 422, "commenced_on")


@pytest.mark.parametrize("ident", ["18446744073709551616", "99999999999999999999999999999", "2147483648"])
def test_sec_ids_beyond_any_table_are_not_found(app: Flask, app_org: Runtime, auth: Auth, client: FlaskClient,
                                                 ident: str) -> None:
    auth.login("admin")
    for path in (f"/cases/{ident}", f"/tasks/{ident}", f"/cases/{ident}/appointments", f"/records/{ident}"):
        assert client.get(path).status_code == 404, path
    assert client.post(f"/admin/logins/{ident}/sign-out").status_code == 404
    api = api_as(app, app_org, "admin")
    assert_errors(api.get(f"/api/v1/instances/{ident}"), 404)
    assert_errors(api.get(f"/api/v1/tasks/{ident}"), 404)


def test_sec_an_over_long_address_is_414_json_on_the_api_and_a_page_elsewhere(app: Flask, app_org: Runtime,
                                                                               client: FlaskClient) -> None:
    api = api_as(app, app_org, "hr")
    answer = api.get("/api/v1/instances?subject=" + "x" * 5000)
    problems = assert_errors(answer, 414)
    assert "too long" in problems[0]["message"]
    page = client.get("/login?next=" + "x" * 5000)
    assert page.status_code == 414 and page.mimetype == "text/html"
    assert api.get("/api/v1/instances?subject=employee&limit=" + "0" * 3000 + "5").status_code == 200


@pytest.mark.parametrize("value", [10**30, -1, 0, True])
def test_sec_an_agreement_case_number_past_any_table_is_refused_naming_the_field(app: Flask, app_org: Runtime,
                                                                                 value: object) -> None:
    api = api_as(app, app_org, "hr")
    answer = api.post("/api/v1/instances", json={"process": "pay_progression",
                                                 "data": {"employee": "engineer", "agreement_case": value}})
    assert_errors(answer, 422, "agreement_case")


def _deep_form(levels: int) -> str:
    """A JSON schema with `levels` objects in objects (2 JSON levels each), as text: json.dumps of it would
    itself run out of stack."""
    return '{"type": "object", "properties": {"a": ' * levels + '{"type": "string"}' + "}}" * levels


def test_sec_deep_json_to_the_studio_is_refused_not_a_server_error(app: Flask, app_org: Runtime, auth: Auth,
                                                                   client: FlaskClient) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a RecursionError is a 500 answer here, as in production
    auth.login("owner")
    for path in ("/studio/api/validate", "/studio/api/draft", "/studio/api/deploy", "/studio/api/form-preview"):
        answer = client.post(path, data="[" * 100_000 + "]" * 100_000, content_type="application/json")
        assert answer.status_code == 422, (path, answer.get_data(as_text=True)[:300])
        assert answer.get_json()["problems"][0]["field"] == "body"
    preview = client.post("/studio/api/form-preview", data='{"schema": ' + _deep_form(16) + "}",
                          content_type="application/json")
    assert preview.status_code == 200 and preview.get_json()["problems"] == [
        {"field": "schema", "message": "nested deeper than 32 levels"}]


def test_sec_a_deeply_nested_form_is_refused_naming_its_task(app: Flask, app_org: Runtime, auth: Auth,
                                                             client: FlaskClient) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False
    from tests.workflow.test_definitions import process, user_task

    xml = process(user_task('<spiffworkflow:properties><spiffworkflow:property name="formJsonSchemaFilename" '
                            'value="f.json" /></spiffworkflow:properties>'), key="deepf")
    form = _deep_form(150)  # jsonschema's check of it ran out of stack: a 500 on every deploy, and on the
    # studio's page of a draft that held it
    api = api_as(app, app_org, "owner")
    files = [(io.BytesIO(form.encode()), "f.json"), (io.BytesIO(xml.encode()), "deepf.bpmn")]
    problems = assert_errors(api.post("/api/v1/processes", data={"files": files},
                                      content_type="multipart/form-data"), 422)
    assert problems == [{"element": "t1", "message": "form 'f.json' is nested deeper than 32 levels"}]
    auth.login("owner")
    files = [(io.BytesIO(form.encode()), "f.json"), (io.BytesIO(xml.encode()), "deepf.bpmn")]
    deployed = client.post("/studio/deploy-files", data={"files": files}, content_type="multipart/form-data")
    assert deployed.status_code == 422 and "nested deeper than 32 levels" in deployed.get_data(as_text=True)
    body = '{"key": "deepf", "filename": "deepf.bpmn", "xml": ' + json.dumps(xml) + ', "forms": {"f.json": '
    for action in ("validate", "draft", "deploy"):
        answer = client.post(f"/studio/api/{action}", data=body + _deep_form(150) + "}}",
                             content_type="application/json")
        assert answer.status_code == 422, (action, answer.get_data(as_text=True)[:300])
    # a form just inside the modeler's limit is judged by the diagram's checks, naming the task
    answer = client.post("/studio/api/validate", data=body + _deep_form(17) + "}}", content_type="application/json")
    assert answer.get_json() == {"valid": False, "problems": [
        {"element": "t1", "message": "form 'f.json' is nested deeper than 32 levels"}]}


def test_sec_numbers_past_any_id_in_a_query_or_form_are_as_if_not_given(app: Flask, app_org: Runtime, auth: Auth,
                                                                        client: FlaskClient) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False  # SQLite's OverflowError is a 500 answer here, as in production
    start_case(app_org)
    auth.login("admin")
    big = "9" * 31
    for path in (f"/?after={big}", f"/studio/processes/pay_progression/edit?version={big}",
                 f"/studio/processes/pay_progression/edit?version=-{big}",
                 f"/studio/processes/pay_progression/compare?new={big}&old={big}",
                 f"/studio/processes/pay_progression/migrate?to={big}&from={big}"):
        assert client.get(path).status_code == 200, path
    rollback = client.post("/studio/processes/pay_progression/rollback", data={"version": big})
    assert rollback.status_code == 422 and "choose the version" in rollback.get_data(as_text=True)
    migrate = client.post("/studio/processes/pay_progression/migrate",
                          data={"from": "1", "to": "1", "instance": [big, "\u00b2"]})
    assert migrate.status_code == 422 and "choose at least one case" in migrate.get_data(as_text=True)


def test_sec_a_form_posted_to_the_api_is_415_not_a_server_error(app: Flask, app_org: Runtime) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False  # spectree's missing JSON was an AssertionError: a 500 answer
    client = app.test_client()
    for body in ({"username": "hr", "password": "demo-pass-2026"}, ""):
        answer = client.post("/api/v1/auth/token", data=body, content_type="application/x-www-form-urlencoded")
        assert "application/json" in assert_errors(answer, 415)[0]["message"]
    api = api_as(app, app_org, "hr")
    answer = api.post("/api/v1/instances", data={"process": "pay_progression", "data": "x"},
                      content_type="multipart/form-data")
    assert_errors(answer, 415)


@pytest.mark.parametrize("ident", [str(2**31), str(2**64), str(10**30), "-1"])
def test_sec_every_route_with_an_int_id_answers_404_past_any_table(app: Flask, app_org: Runtime, auth: Auth,
                                                                   client: FlaskClient, ident: str) -> None:
    """Every rule with an int argument, every method, as an administrator: no rule matches, so 404."""
    from werkzeug.routing.converters import NumberConverter

    app.config["PROPAGATE_EXCEPTIONS"] = False
    auth.login("admin")
    answers = {}
    for rule in app.url_map.iter_rules():
        ints = [name for name, converter in rule._converters.items() if isinstance(converter, NumberConverter)]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}) if ints else ():
            path = str(rule.rule)
            for name in rule.arguments:
                value = ident if name in ints else {"key": "pay_progression"}.get(name, "x")
                path = re.sub(rf"<(?:[^:<>]+:)?{name}>", value, path)
            answers[(method, path)] = client.open(path, method=method).status_code
    assert len(answers) > 20 and all(code == 404 for code in answers.values()), answers
