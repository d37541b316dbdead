"""The studio's scenario lab over HTTP (issue 20): a process owner saves a changed D19 eligibility rule, tries the
draft and sees side by side which scenarios changed and where; deploying it without the confirmation is refused
(422 naming the field, nothing deployed), with it the deployment is audited with the scenarios, the actor and the
reason. Only process owners and administrators; CSRF on every form; bad input is a clear error, never a 500."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from engine.core.models import AuditEvent, BulkJob
from engine.people.models import User
from engine.workflow.models import ProcessDefinition
from engine.workflow.runtime import Runtime
from engine.workflow.scenario_format import scenario_files
from engine.workflow.versions import save_draft
from tests.conftest import Auth
from tests.workflow.driver import Driver

KEY = "pay_progression"
TABLES = f"/studio/processes/{KEY}/tables"
LAB = f"/studio/processes/{KEY}/lab"
SAVE = f"/studio/api/processes/{KEY}/tables/d19_eligibility.dmn"
RULE8_CELL = '<inputEntry id="d19_eligibility_rule8_in8"><text>&lt; facts["months_required"]</text>'
APPROVED = "An approved progression takes effect from the annual assessment date"  # a 12-month cycle


def _versions(runtime: Runtime) -> list[int]:
    with runtime.db.read() as s:
        return list(s.scalars(select(ProcessDefinition.version).where(ProcessDefinition.key == KEY)
                              .order_by(ProcessDefinition.version)))


def _user(runtime: Runtime, username: str) -> User:
    return Driver(runtime).user(username)


def _save_rule8(client: FlaskClient, runtime: Runtime, cell: str) -> None:
    with runtime.db.read() as s:
        row = s.scalars(select(ProcessDefinition).where(ProcessDefinition.key == KEY)).first()
        assert row is not None
        xml = str(row.sources["d19_eligibility.dmn"])
    edited = xml.replace(RULE8_CELL, RULE8_CELL.replace('facts["months_required"]', cell))
    answer = client.post(SAVE, data=json.dumps({"xml": edited}), content_type="application/json")
    assert answer.status_code == 200 and answer.json["valid"] is True, answer.json


def test_d19_5_try_a_changed_rule_see_what_changed_and_deploy_only_with_an_audited_confirmation(
        client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    auth.login("owner")
    _save_rule8(client, app_org, "24")
    listing = client.get(TABLES).get_data(as_text=True)
    assert "Try this draft" in listing and 'name="confirm"' in listing
    assert re.search(rf'action="{LAB}"[^>]*>\s*<input type="hidden" name="csrf_token"', listing)
    tried = client.post(LAB)
    assert tried.status_code == 302
    page = client.get(tried.headers["Location"])
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<caption>Each scenario with what runs (version 1) and with the drafts</caption>" in html
    library = len(scenario_files(process=KEY))  # the whole library of the process, each once
    assert f'<p id="lab-summary"><strong>{library}</strong> scenarios' in html and library > 20
    assert '<th scope="col">Changed?</th>' in html and '<th scope="col">Where</th>' in html
    changed = re.search(r'<ul aria-labelledby="changed-heading" id="lab-changed">(.*?)</ul>', html, re.S)
    assert changed and APPROVED in changed.group(1) and "start (pay_progression)" in changed.group(1)
    row = re.search(rf"<tr class=\"lab-changed\">\s*<th scope=\"row\">{re.escape(APPROVED)}.*?</tr>", html, re.S)
    assert row and "progressed" in row.group(0) and "D19-4" in row.group(0), html
    before = _versions(app_org)
    hostile = "<script>alert(1)</script>"
    refused = client.post(f"{TABLES}/deploy", data={"reason": hostile})
    assert refused.status_code == 422
    text = refused.get_data(as_text=True)
    assert "Nothing was deployed" in text and 'href="#lab-confirm"' in text and 'aria-invalid="true"' in text
    assert hostile not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert client.post(f"{TABLES}/deploy", data={"confirm": "yes", "reason": " "}).status_code == 422
    assert client.post(f"{TABLES}/deploy", data={"confirm": "yes", "reason": "x" * 5000}).status_code == 422
    assert _versions(app_org) == before
    deployed = client.post(f"{TABLES}/deploy", data={"confirm": "yes", "reason": "Cl. 5 asks 24 months now."})
    assert deployed.status_code == 302
    assert _versions(app_org) == [*before, before[-1] + 1]
    with app_org.db.read() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.kind == "deployed_despite_scenarios")).one()
        labs = s.scalars(select(BulkJob).where(BulkJob.kind == "scenario_lab")).all()
    assert event.actor == "owner" and event.detail["reason"] == "Cl. 5 asks 24 months now."
    assert APPROVED in event.detail["changed"] and APPROVED in event.detail["failed"]
    assert event.detail["versions"] == [{"process": KEY, "version": before[-1] + 1}]
    assert len(labs) == 1  # the deployment used the try's report: the same drafts
    stale = client.get(tried.headers["Location"]).get_data(as_text=True)  # what runs changed since
    assert "they were deployed or discarded since this try" in stale and 'name="confirm"' not in stale
    _save_rule8(client, app_org, "36")  # a draft saved again: the old try is out of date
    stale = client.get(tried.headers["Location"]).get_data(as_text=True)
    assert "Try the drafts again" in stale and 'name="confirm"' not in stale


def test_only_process_owners_and_admins_try_drafts(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with app_org.db.unit_of_work() as uow:
        job = BulkJob(kind="scenario_lab", status="finished", params={"process": KEY}, results={},
                      started_by="owner", created_at=now, updated_at=now)
        uow.session.add(job)
        uow.session.flush()
        job_id = job.id
        uow.commit()
    assert client.post(LAB).status_code == 302 and client.get(f"{LAB}/{job_id}").status_code == 302  # log in
    for username in ("employee", "hr", "supervisor"):
        auth.login(username)
        assert client.post(LAB).status_code == 403
        assert client.get(f"{LAB}/{job_id}").status_code == 403
        auth.logout()
    with app_org.db.read() as s:
        assert len(s.scalars(select(BulkJob).where(BulkJob.kind == "scenario_lab")).all()) == 1


def test_bad_lab_input_is_a_clear_error_never_a_500(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with app_org.db.unit_of_work() as uow:
        other = BulkJob(kind="annual_cycles", status="finished", params={"process": KEY}, results={},
                        started_by="hr", created_at=now, updated_at=now)
        uow.session.add(other)
        uow.session.flush()
        other_id = other.id
        uow.commit()
    auth.login("owner")
    assert client.get(f"{LAB}/{other_id}").status_code == 404  # not a tried draft
    assert client.get(f"{LAB}/999999").status_code == 404
    assert client.get(f"{LAB}/abc").status_code == 404
    answer = client.post("/studio/processes/%3Cscript%3Ex%3C%2Fscript%3E/lab")
    assert answer.status_code == 404 and "<script>x</script>" not in answer.get_data(as_text=True)
    assert client.post(f"{TABLES}/deploy", data={"confirm": "yes", "reason": "r"}).status_code == 422  # no draft
    nothing = client.post(LAB)
    assert nothing.status_code == 422 and "no decision table or diagram of this process has a saved draft" in \
        nothing.get_data(as_text=True)
    with app_org.db.read() as s:
        assert s.scalars(select(BulkJob).where(BulkJob.kind == "scenario_lab")).first() is None


@pytest.fixture
def csrf_app(app: Flask) -> Flask:
    app.config["WTF_CSRF_ENABLED"] = True
    return app


def test_lab_forms_need_the_csrf_token(csrf_app: Flask, app_org: Runtime) -> None:
    client = csrf_app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True))
    assert token
    client.post("/login", data={"username": "owner", "password": "demo-pass-2026", "csrf_token": token.group(1)})
    assert client.post(LAB).status_code == 400
    assert client.post(f"{TABLES}/deploy", data={"confirm": "yes", "reason": "r"}).status_code == 400
    with app_org.db.read() as s:
        assert s.scalars(select(BulkJob).where(BulkJob.kind == "scenario_lab")).first() is None


def test_a_saved_diagram_draft_is_tried_too_and_deploys_from_the_modeler(client: FlaskClient, app_org: Runtime,
                                                                         auth: Auth) -> None:
    with app_org.db.read() as s:
        row = s.scalars(select(ProcessDefinition).where(ProcessDefinition.key == KEY)).one()
        xml = str(row.sources["pay_progression.bpmn"])
    assert 'outcome = "progressed"' in xml
    owner = _user(app_org, "owner")
    save_draft(app_org.db, owner, KEY, "pay_progression.bpmn",
               xml.replace('outcome = "progressed"', 'outcome = "progressed_in_draft"'), {}, row.version)
    auth.login("owner")
    assert "Try this draft" in client.get(TABLES).get_data(as_text=True)
    html = client.get(client.post(LAB).headers["Location"]).get_data(as_text=True)
    changed = re.search(r'<ul aria-labelledby="changed-heading" id="lab-changed">(.*?)</ul>', html, re.S)
    assert changed and APPROVED in changed.group(1) and "outcome" in changed.group(1)
    assert "progressed_in_draft" in html and "Only the diagram has a draft" in html and 'name="confirm"' not in html
