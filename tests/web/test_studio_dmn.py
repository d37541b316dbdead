"""The studio's decision tables over HTTP (issue 20): a process owner saves an edited D19 eligibility table as a
draft, it is checked on save (each problem naming table, rule and column), deployed as a new version, and a new
case follows the new rule; versions compare cell by cell; nobody else may do any of it; CSRF is required."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from engine.core.errors import Invalid
from engine.core.models import AuditEvent
from engine.workflow.bundles import Bundle
from engine.workflow.definitions import deploy
from engine.workflow.dmn_models import DecisionTableDraft
from engine.workflow.models import ProcessDefinition
from engine.workflow.runtime import Runtime
from tests.conftest import Auth

START = {"employee": "employee", "agreement_start": "2025-06-30", "assessment_date": "2026-06-30"}
TABLES = "/studio/processes/pay_progression/tables"
EDIT = f"{TABLES}/d19_eligibility.dmn"
SAVE = "/studio/api/processes/pay_progression/tables/d19_eligibility.dmn"
RULE8_CELL = '<inputEntry id="d19_eligibility_rule8_in8"><text>&lt; facts["months_required"]</text>'


def _post(client: FlaskClient, url: str, body: Any) -> Any:
    return client.post(url, data=json.dumps(body), content_type="application/json")


def _page_data(client: FlaskClient) -> dict[str, Any]:
    page = client.get(EDIT).get_data(as_text=True)
    found = re.search(r'<script type="application/json" id="dmn-data">(.*?)</script>', page, re.S)
    assert found, page
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def _versions(runtime: Runtime) -> list[int]:
    with runtime.db.read() as s:
        return list(s.scalars(select(ProcessDefinition.version).where(ProcessDefinition.key == "pay_progression")
                              .order_by(ProcessDefinition.version)))


def test_d19_5_an_owner_edits_the_eligibility_table_deploys_and_a_new_case_follows_the_new_rule(
        client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    # Version 1 starts START (12 months in the cycle: eligible, cl. 5); tests/web/test_studio.py starts it.
    auth.login("owner")
    listing = client.get(TABLES).get_data(as_text=True)
    assert "d19_eligibility.dmn" in listing and "d19_scope.dmn" in listing
    data = _page_data(client)
    assert RULE8_CELL in data["xml"] and data["urls"]["save"] == SAVE
    broken = data["xml"].replace(RULE8_CELL, RULE8_CELL.replace('"]</text>', '"</text>'))
    answer = _post(client, SAVE, {"xml": broken})
    assert answer.status_code == 200 and answer.json["valid"] is False
    [problem] = answer.json["problems"]
    assert problem["element"] == "d19_eligibility_rule8_in8"
    assert problem["message"].startswith(
        "table 'Eligibility for pay progression in this cycle' (d19_eligibility), rule 8 (d19_eligibility_rule8), "
        "input 'Months in this cycle' (d19_eligibility_in8): invalid expression"), problem["message"]
    refused = client.post(f"{TABLES}/deploy")
    assert refused.status_code == 422 and "rule 8 (d19_eligibility_rule8)" in refused.get_data(as_text=True)
    assert _versions(app_org) == [1]
    edited = data["xml"].replace(RULE8_CELL, RULE8_CELL.replace('facts["months_required"]', "24"))
    answer = _post(client, SAVE, {"xml": edited})
    assert answer.status_code == 200 and answer.json == {**answer.json, "valid": True, "problems": []}
    listing = client.get(TABLES).get_data(as_text=True)  # the draft against what runs, cell by cell
    assert "Draft" in listing and "&lt; 24" in listing and "Months in this cycle" in listing
    deployed = client.post(f"{TABLES}/deploy", data={"confirm": "yes", "reason": "Cl. 5 now asks 24 months."})
    assert deployed.status_code == 302  # scenarios changed (tests/web/test_scenario_lab_web.py): confirmed
    assert _versions(app_org) == [1, 2]
    with app_org.db.read() as s:
        assert s.scalars(select(DecisionTableDraft)).first() is None
        event = s.scalars(select(AuditEvent).where(AuditEvent.kind == "deployed")
                          .order_by(AuditEvent.id.desc())).first()
        assert event is not None and event.actor == "owner" and "decision tables" in event.detail["reason"]
    with pytest.raises(Invalid) as refusal:  # rule 8 now asks for 24 months
        app_org.start(None, "pay_progression", START, actor="hr")
    assert any("cl. 5: the cycle from" in p.message for p in refusal.value.problems), refusal.value.problems
    compared = client.get(f"{TABLES}/compare?old=1&new=2").get_data(as_text=True)
    assert "rule 8 (<code>d19_eligibility_rule8</code>)" in compared and "&lt; 24" in compared


def test_only_process_owners_and_admins_edit_tables(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    assert client.get(TABLES).status_code == 302  # to the login page
    for username in ("employee", "hr", "supervisor"):
        auth.login(username)
        assert client.get(TABLES).status_code == 403
        assert client.get(EDIT).status_code == 403
        assert _post(client, SAVE, {"xml": "<x/>"}).status_code == 403
        assert client.post(f"{TABLES}/deploy").status_code == 403
        auth.logout()
    with app_org.db.read() as s:
        assert s.scalars(select(DecisionTableDraft)).first() is None
    auth.login("admin")
    assert client.get(EDIT).status_code == 200


def test_bad_table_input_is_a_clear_error_never_a_500(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    auth.login("owner")
    hostile = '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "y">]><definitions>&x;</definitions>'
    for body, status, where in (({"xml": hostile}, 422, "d19_eligibility.dmn"), ({"xml": ""}, 422, "xml"),
                                ([1], 422, "body"), ({"xml": "<definitions/>"}, 422, "d19_eligibility.dmn")):
        answer = _post(client, SAVE, body)
        assert answer.status_code == status, (body, answer.get_data(as_text=True))
        assert where in json.dumps(answer.json["problems"])
    assert _post(client, "/studio/api/processes/pay_progression/tables/other.dmn", {"xml": "<x/>"}).status_code == 422
    deep = client.post(SAVE, data="[" * 100_000 + "]" * 100_000, content_type="application/json")
    assert deep.status_code == 422 and deep.json["problems"][0]["field"] == "body"
    assert client.get(f"{TABLES}/nothing.dmn").status_code == 404
    assert client.post(f"{TABLES}/deploy").status_code == 422  # no draft to deploy
    with app_org.db.read() as s:
        assert s.scalars(select(DecisionTableDraft)).first() is None


@pytest.fixture
def csrf_app(app: Flask) -> Flask:
    app.config["WTF_CSRF_ENABLED"] = True
    return app


def test_table_posts_need_the_csrf_token(csrf_app: Flask, app_org: Runtime) -> None:
    client = csrf_app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    client.post("/login", data={"username": "owner", "password": "demo-pass-2026", "csrf_token": token.group(1)})
    xml = json.loads(re.search(r'id="dmn-data">(.*?)</script>', client.get(EDIT).get_data(as_text=True),
                               re.S).group(1))["xml"]  # type: ignore[union-attr]
    assert client.post(SAVE, data=json.dumps({"xml": xml}), content_type="application/json").status_code == 400
    assert client.post(f"{TABLES}/deploy").status_code == 400
    data = _page_data(client)
    saved = client.post(SAVE, data=json.dumps({"xml": xml}), content_type="application/json",
                        headers={"X-CSRFToken": data["csrf"]})
    assert saved.status_code == 200


def test_a_draft_older_than_the_newest_version_says_so(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    auth.login("owner")
    xml = _page_data(client)["xml"]
    assert _post(client, SAVE, {"xml": xml.replace("&lt; facts[\"months_required\"]</text>", "&lt; 24</text>", 1)}
                 ).json["valid"] is True
    assert "was deployed since" not in client.get(TABLES).get_data(as_text=True)
    with app_org.db.unit_of_work() as uow:  # someone deploys a changed scope table meanwhile: version 2
        row = uow.session.scalars(select(ProcessDefinition).where(ProcessDefinition.key == "pay_progression")).one()
        sources = {**row.sources, "d19_scope.dmn": row.sources["d19_scope.dmn"].replace("any other", "any other one")}
        deploy(uow.session, Bundle(sources=sources, forms=dict(row.forms)), "admin")
        uow.commit()
    assert "Version 2 was deployed since" in client.get(TABLES).get_data(as_text=True)
