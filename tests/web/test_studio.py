"""The studio over HTTP: who may use it, validate/draft/deploy from the modeler, versions side by side,
roll back, download, migrate, form preview, instance diagrams, and hostile uploads (nothing changes)."""

from __future__ import annotations

import io
import json
import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from engine.core.models import AuditEvent
from engine.workflow.models import HumanTask, ProcessDefinition, ProcessDraft, ProcessInstance
from engine.workflow.runtime import Runtime
from tests.conftest import Auth
from tests.workflow.test_migration import edited

START = {"employee": "employee", "agreement_start": "2025-06-30", "assessment_date": "2026-06-30"}
SMALL = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="tiny" name="Tiny" isExecutable="true">
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="work" name="Work"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>SCRIPT</bpmn:script></bpmn:scriptTask>
    <bpmn:endEvent id="e"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="work" />
    <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="e" />
  </bpmn:process>
</bpmn:definitions>
"""


def small(script: str = "x = 1") -> str:
    return SMALL.replace("SCRIPT", script)


def _state(runtime: Runtime) -> tuple[int, int, int]:
    """(definitions, drafts, deployed events): what a refused upload must leave unchanged."""
    with runtime.db.read() as s:
        return (s.scalar(select(func.count()).select_from(ProcessDefinition)) or 0,
                s.scalar(select(func.count()).select_from(ProcessDraft)) or 0,
                s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.kind == "deployed")) or 0)


def _post(client: FlaskClient, url: str, body: Any) -> Any:
    return client.post(url, data=json.dumps(body), content_type="application/json")


def _versions(runtime: Runtime, key: str = "pay_progression") -> list[int]:
    with runtime.db.read() as s:
        return list(s.scalars(select(ProcessDefinition.version).where(ProcessDefinition.key == key)
                              .order_by(ProcessDefinition.version)))


def _pay(runtime: Runtime) -> str:
    """The deployed pay progression diagram (processes/ may change while tests run; the database does not)."""
    with runtime.db.read() as s:
        row = s.scalars(select(ProcessDefinition).where(ProcessDefinition.key == "pay_progression",
                                                        ProcessDefinition.version == 1)).one()
        return str(row.sources["pay_progression.bpmn"])


def _forms(runtime: Runtime) -> dict[str, Any]:
    with runtime.db.read() as s:
        row = s.scalars(select(ProcessDefinition).where(ProcessDefinition.key == "pay_progression")).first()
        assert row is not None
        return dict(row.forms)


# --------------------------------------------------------------------------- access


def test_only_process_owners_and_admins_use_the_studio(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    assert client.get("/studio/").status_code == 302  # to the login page
    for username in ("employee", "hr", "supervisor"):
        auth.login(username)
        assert client.get("/studio/").status_code == 403
        assert client.get("/studio/processes/pay_progression/edit").status_code == 403
        assert _post(client, "/studio/api/deploy", {"key": "tiny", "filename": "t.bpmn", "xml": small()}
                     ).status_code == 403
        auth.logout()
    assert _versions(app_org, "tiny") == []
    for username in ("owner", "admin"):
        auth.login(username)
        page = client.get("/studio/").get_data(as_text=True)
        assert "pay_progression" in page and 'action="/studio/import"' in page
        auth.logout()


def test_modeler_page_carries_the_diagram_and_forms_without_inline_script(
        client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    auth.login("owner")
    response = client.get("/studio/processes/pay_progression/edit")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    data = json.loads(re.search(r'<script type="application/json" id="studio-data">(.*?)</script>', page, re.S)
                      .group(1))  # type: ignore[union-attr]
    assert data["filename"] == "pay_progression.bpmn" and 'id="pay_progression"' in data["xml"]
    assert "invite_submission.json" in data["forms"] and "Supervisor" in data["lanes"]
    # Every <script> is either JSON data or an external file: the CSP forbids inline code.
    for tag in re.findall(r"<script[^>]*>", page):
        assert 'type="application/json"' in tag or "src=" in tag
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


# --------------------------------------------------------------------------- validate, draft, deploy


def test_validate_lists_every_problem_with_its_element(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    pay = _pay(app_org)
    auth.login("owner")
    ok = _post(client, "/studio/api/validate", {"key": "pay_progression", "filename": "pay_progression.bpmn",
                                                "xml": pay, "forms": {}})
    assert ok.status_code == 200 and ok.json == {"valid": True, "problems": []}
    broken = pay.replace('name="formJsonSchemaFilename" value="recommend.json"',
                         'name="formJsonSchemaFilename" value="no_such_form.json"')
    broken = broken.replace("<spiffworkflow:instructionsForEndUser>", "<spiffworkflow:instructionForEndUser>", 1)
    broken = broken.replace("</spiffworkflow:instructionsForEndUser>", "</spiffworkflow:instructionForEndUser>", 1)
    answer = _post(client, "/studio/api/validate", {"key": "pay_progression", "filename": "pay_progression.bpmn",
                                                    "xml": broken, "forms": {}}).json
    assert answer["valid"] is False
    by_element = {p["element"]: p["message"] for p in answer["problems"]}
    assert "no_such_form.json" in by_element["recommend"]
    assert any("did you mean spiffworkflow:instructionsForEndUser" in m for m in by_element.values())


def test_draft_is_kept_reopened_and_discarded(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    pay = _pay(app_org)
    auth.login("owner")
    changed = edited(pay, titles={"decide": "Decide (draft)"})
    saved = _post(client, "/studio/api/draft", {"key": "pay_progression", "filename": "pay_progression.bpmn",
                                                "xml": changed, "forms": _forms(app_org), "base_version": 1})
    assert saved.status_code == 200 and saved.json["saved_by"] == "owner"
    page = client.get("/studio/processes/pay_progression/edit").get_data(as_text=True)
    assert "Decide (draft)" in page and "Draft" in page
    assert "Decide (draft)" not in client.get("/studio/processes/pay_progression/edit?version=1").get_data(as_text=True)
    assert _versions(app_org) == [1]  # a draft is not a deployment
    assert client.post("/studio/processes/pay_progression/draft/discard").status_code == 302
    assert _state(app_org)[1] == 0


def test_deploy_from_the_modeler_is_audited_and_running_cases_stay(
        client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    pay = _pay(app_org)
    case = app_org.start(None, "pay_progression", START, actor="hr")
    auth.login("owner")
    _post(client, "/studio/api/draft", {"key": "pay_progression", "filename": "pay_progression.bpmn",
                                        "xml": pay, "forms": {}, "base_version": 1})
    changed = edited(pay, titles={"invite_submission": "Invite the employee"})
    response = _post(client, "/studio/api/deploy", {"key": "pay_progression", "filename": "pay_progression.bpmn",
                                                    "xml": changed, "forms": {}})
    assert response.status_code == 201
    assert {"key": "pay_progression", "version": 2, "created": True} in response.json["processes"]
    assert _versions(app_org) == [1, 2]
    with app_org.db.read() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.kind == "deployed", AuditEvent.actor == "owner")).one()
        assert event.instance_id is None and event.detail["process"] == "pay_progression"
        assert event.detail["version"] == 2 and event.detail["reason"] == "deployed from the studio"
        row = s.get(ProcessInstance, case)
        assert row is not None and row.definition.version == 1  # running cases stay on their version
        assert s.scalar(select(func.count()).select_from(ProcessDraft)) == 0  # the draft was deployed
    # The same content again is not a new version.
    again = _post(client, "/studio/api/deploy", {"key": "pay_progression", "filename": "pay_progression.bpmn",
                                                 "xml": changed, "forms": {}})
    assert again.status_code == 201 and {"key": "pay_progression", "version": 2, "created": False} in again.json[
        "processes"]


def test_refused_deploy_changes_nothing(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    pay = _pay(app_org)
    auth.login("owner")
    before = _state(app_org)
    bad_lane = pay.replace('name="Supervisor"', 'name="Finance Team"')
    response = _post(client, "/studio/api/deploy", {"key": "pay_progression", "filename": "pay_progression.bpmn",
                                                    "xml": bad_lane, "forms": {}})
    assert response.status_code == 422
    problems = response.json["problems"]
    assert problems and all(p.get("element") for p in problems)
    assert any("Finance Team" in p["message"] and "does not resolve to a role" in p["message"] for p in problems)
    assert _state(app_org) == before


def test_bad_inputs_to_the_json_endpoints_are_422_not_500(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    auth.login("owner")
    before = _state(app_org)
    cases: list[Any] = [
        "not an object", [], {"filename": "../../etc/passwd.bpmn", "xml": small()},
        {"filename": "x.bpmn", "xml": ""}, {"filename": "x.bpmn", "xml": small(), "forms": []},
        {"filename": "x.bpmn", "xml": small(), "forms": {"../evil.json": {}}},
        {"filename": "x.bpmn", "xml": 12}, {"filename": "x.bpmn", "xml": "<not-closed"},
    ]
    for body in cases:
        for url in ("/studio/api/validate", "/studio/api/deploy", "/studio/api/draft"):
            response = _post(client, url, {"key": "tiny", **body} if isinstance(body, dict) else body)
            if url == "/studio/api/validate" and response.status_code == 200:
                assert response.json["problems"]  # a parse problem, listed
                continue
            assert response.status_code == 422, (url, body, response.status_code)
            assert response.json["problems"][0]["message"]
    assert _state(app_org) == before


# --------------------------------------------------------------------------- versions side by side, roll back


def test_compare_versions_names_what_changed(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    pay = _pay(app_org)
    auth.login("owner")
    forms = _forms(app_org)
    forms["decide.json"] = json.loads(json.dumps(forms["decide.json"]))
    forms["decide.json"]["properties"]["decision"]["properties"]["note"] = {"type": "string", "title": "Note"}
    changed = edited(pay, rename={"record_declined": "record_declined_v2"},
                     titles={"invite_submission": "Invite the employee"})
    changed = changed.replace('decision["approve"] == "approve"', 'decision["approve"] in ("approve",)')
    assert _post(client, "/studio/api/deploy", {"key": "pay_progression", "filename": "pay_progression.bpmn",
                                                "xml": changed, "forms": forms}).status_code == 201
    page = client.get("/studio/processes/pay_progression/compare?old=1&new=2").get_data(as_text=True)
    added = page[page.index("Elements added"):page.index("Elements removed")]
    removed = page[page.index("Elements removed"):page.index("Elements renamed")]
    renamed = page[page.index("Elements renamed"):page.index("Elements changed")]
    changed_part = page[page.index("Elements changed"):page.index("<h2>Forms")]
    assert "record_declined_v2" in added and "record_declined" in removed
    assert "Invite a pay progression submission" in renamed and "Invite the employee" in renamed
    assert "condition" in changed_part and "in (&#34;approve&#34;,)" in changed_part
    forms_part = page[page.index("<h2>Forms"):]
    assert "decide.json" in forms_part and "decision.note added" in forms_part
    versions_page = client.get("/studio/processes/pay_progression").get_data(as_text=True)
    assert "2 (newest)" in versions_page and "Roll back to version 1" in versions_page


def test_roll_back_deploys_the_earlier_content_as_a_new_version(
        client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    pay = _pay(app_org)
    auth.login("owner")
    _post(client, "/studio/api/deploy", {"key": "pay_progression", "filename": "pay_progression.bpmn",
                                         "xml": edited(pay, titles={"decide": "Decide v2"}), "forms": {}})
    assert client.post("/studio/processes/pay_progression/rollback", data={"version": "1"}).status_code == 302
    with app_org.db.read() as s:
        rows = {r.version: r for r in s.scalars(select(ProcessDefinition).where(
            ProcessDefinition.key == "pay_progression"))}
        assert sorted(rows) == [1, 2, 3] and rows[3].content_hash == rows[1].content_hash
        event = s.scalars(select(AuditEvent).where(AuditEvent.kind == "deployed").order_by(AuditEvent.id.desc())
                          ).first()
        assert event is not None and event.detail["reason"] == "rolled back to version 1" and event.actor == "owner"
    # Rolling back to what already runs is refused.
    assert client.post("/studio/processes/pay_progression/rollback", data={"version": "3"}).status_code == 422
    assert _versions(app_org) == [1, 2, 3]


def test_download_any_version_as_bpmn(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    pay = _pay(app_org)
    auth.login("owner")
    response = client.get("/studio/processes/pay_progression/versions/1/download")
    assert response.status_code == 200 and response.mimetype == "application/xml"
    assert response.headers["Content-Disposition"] == 'attachment; filename="pay_progression.v1.bpmn"'
    assert response.get_data(as_text=True) == pay
    assert client.get("/studio/processes/pay_progression/versions/9/download").status_code == 404
    assert client.get("/studio/processes/pay_progression/versions/1/download?file=../x").status_code == 404


# --------------------------------------------------------------------------- migration


def test_migrate_page_previews_and_moves_cases(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    pay = _pay(app_org)
    movable = app_org.start(None, "pay_progression", START, actor="hr")
    blocked = app_org.start(None, "pay_progression", {**START, "employee": "engineer"}, actor="hr")
    with app_org.db.read() as s:
        task = s.scalars(select(HumanTask).where(HumanTask.instance_id == blocked, HumanTask.state == "open")).one()
    from tests.workflow.driver import Driver

    Driver(app_org).complete(blocked, task.name, "supervisor", {"invitation": {"message": "Please submit."}})
    auth.login("owner")
    changed = edited(pay, rename={"make_submission": "make_submission_v2"})
    assert _post(client, "/studio/api/deploy", {"key": "pay_progression", "filename": "pay_progression.bpmn",
                                                "xml": changed, "forms": {}}).status_code == 201
    page = client.get("/studio/processes/pay_progression/migrate?from=1&to=2").get_data(as_text=True)
    assert f'name="instance" value="{movable}"' in page
    assert f'name="instance" value="{blocked}"' not in page and "does not exist in version 2" in page
    result = client.post("/studio/processes/pay_progression/migrate",
                         data={"from": "1", "to": "2", "scope": "all"})
    assert result.status_code == 200 and "1 case(s) moved" in result.get_data(as_text=True)
    with app_org.db.read() as s:
        assert s.get(ProcessInstance, movable).definition.version == 2  # type: ignore[union-attr]
        assert s.get(ProcessInstance, blocked).definition.version == 1  # type: ignore[union-attr]
    chosen = client.post("/studio/processes/pay_progression/migrate",
                         data={"from": "1", "to": "2", "scope": "selected", "instance": str(blocked)})
    assert "could not move" in chosen.get_data(as_text=True)


# --------------------------------------------------------------------------- forms and instance diagrams


def test_form_preview_uses_the_staff_renderer(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    auth.login("owner")
    forms = _forms(app_org)
    answer = _post(client, "/studio/api/form-preview", {"schema": forms["invite_submission.json"],
                                                        "ui_schema": forms["invite_submission_ui.json"]}).json
    assert answer["problems"] == [] and "<label" in answer["html"] and "textarea" in answer["html"]
    hostile = {"type": "object", "properties": {"x": {"type": "string", "title": "<script>alert(1)</script>"}}}
    html = _post(client, "/studio/api/form-preview", {"schema": hostile}).json["html"]
    assert "<script>" not in html and "&lt;script&gt;" in html
    broken = _post(client, "/studio/api/form-preview", {"schema": {"type": "nonsense"}}).json
    assert broken["html"] == "" and "nonsense" in broken["problems"][0]["message"]
    assert _post(client, "/studio/api/form-preview", {"schema": [1, 2]}).json["problems"]


def test_instance_diagram_states_and_access(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    case = app_org.start(None, "pay_progression", START, actor="hr")
    with app_org.db.read() as s:
        open_task = s.scalars(select(HumanTask.name).where(HumanTask.instance_id == case,
                                                           HumanTask.state == "open")).one()
    auth.login("supervisor")  # holds the open task, so may see the case
    data = client.get(f"/studio/instances/{case}/diagram.json").json
    assert data["open"] == [open_task] and data["status"] == "running"
    assert data["completed"] and open_task not in data["completed"]
    assert 'id="pay_progression"' in data["xml"]
    page = client.get(f"/studio/instances/{case}/diagram").get_data(as_text=True)
    assert "data-instance-diagram" in page and "History" in page
    auth.logout()
    auth.login("clerk")
    assert client.get(f"/studio/instances/{case}/diagram.json").status_code == 404
    assert client.get(f"/studio/instances/{case}/diagram").status_code == 404


# --------------------------------------------------------------------------- hostile uploads

XXE = """<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="xxe" isExecutable="true"><bpmn:startEvent id="s" name="&xxe;"/></bpmn:process>
</bpmn:definitions>"""
LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="lolz" isExecutable="true"><bpmn:startEvent id="s" name="&lol4;"/></bpmn:process>
</bpmn:definitions>"""
EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE d SYSTEM "http://127.0.0.1:9/evil.dtd">
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x"/>"""
ESCAPES = [
    "x = ().__class__.__base__.__subclasses__()",
    "import os\nos.system('id')",
    "x = open('/etc/passwd').read()",
    "x = getattr(len, '__self__')",
    "x = [c for c in ().__class__.__mro__]",
    "x = (lambda: 0).__globals__",
    "x = eval('1')",
    "x = time.time()",
]


def _upload(client: FlaskClient, url: str, files: dict[str, bytes]) -> Any:
    # Encoded in memory: the test client's own encoder spools large bodies to a file it never closes.
    fields = MultiDict([("files", FileStorage(io.BytesIO(content), filename=name)) for name, content in files.items()])
    boundary, body = encode_multipart(fields)
    return client.post(url, data=body, content_type=f"multipart/form-data; boundary={boundary}")


def test_hostile_xml_is_refused_by_every_studio_endpoint(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    auth.login("owner")
    before = _state(app_org)
    for name, text in (("xxe.bpmn", XXE), ("laughs.bpmn", LAUGHS), ("dtd.bpmn", EXTERNAL_DTD)):
        for url in ("/studio/import", "/studio/deploy-files"):
            response = _upload(client, url, {name: text.encode()})
            assert response.status_code == 422, (name, url)
            assert "DTDs and entity declarations are not allowed" in response.get_data(as_text=True)
        for url in ("/studio/api/validate", "/studio/api/deploy", "/studio/api/draft"):
            response = _post(client, url, {"key": "x", "filename": name, "xml": text, "forms": {}})
            body = response.json
            problems = body["problems"]
            assert response.status_code in (200, 422) and problems, (name, url)
            assert "DTDs and entity declarations are not allowed" in problems[0]["message"]
            assert "root:" not in json.dumps(body)  # /etc/passwd never read
    assert _state(app_org) == before


def test_oversized_and_non_utf8_uploads_are_refused(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    auth.login("owner")
    before = _state(app_org)
    big = small().replace("<bpmn:process", "<!--" + "x" * (2 * 1024 * 1024) + "-->\n<bpmn:process").encode()
    response = _upload(client, "/studio/import", {"big.bpmn": big})
    assert response.status_code == 422 and "larger than 2048 KiB" in response.get_data(as_text=True)
    answer = _post(client, "/studio/api/deploy", {"key": "tiny", "filename": "big.bpmn", "xml": big.decode()})
    assert answer.status_code == 422 and "larger than 2048 KiB" in answer.json["problems"][0]["message"]
    huge = b"<x>" + b"a" * (9 * 1024 * 1024) + b"</x>"
    assert _upload(client, "/studio/deploy-files", {"huge.bpmn": huge}).status_code == 413
    latin = small().replace("Work", "Wörk").encode("latin-1")
    response = _upload(client, "/studio/deploy-files", {"latin.bpmn": latin})
    assert response.status_code == 422 and "not UTF-8" in response.get_data(as_text=True)
    form_bomb = {"f.bpmn": small().encode(), "form.json": b"[" * 100_000}
    assert _upload(client, "/studio/deploy-files", form_bomb).status_code == 422
    assert _upload(client, "/studio/deploy-files", {"evil.exe": b"MZ"}).status_code == 422
    assert _state(app_org) == before


def test_script_escapes_are_refused_naming_the_element(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    auth.login("owner")
    before = _state(app_org)
    for script in ESCAPES:
        xml = small(script.replace("<", "&lt;"))
        response = _upload(client, "/studio/deploy-files", {"tiny.bpmn": xml.encode()})
        assert response.status_code == 422, script
        answer = _post(client, "/studio/api/validate", {"key": "tiny", "filename": "tiny.bpmn", "xml": xml})
        problems = answer.json["problems"]
        assert problems and all(p["element"] == "work" for p in problems), (script, problems)
    assert _state(app_org) == before
    # Format-string attacks pass the compile check and are refused when they run: the case does not start.
    format_attack = small("x = '{0.__class__.__base__}'.format(1)")
    assert _upload(client, "/studio/deploy-files", {"tiny.bpmn": format_attack.encode()}).status_code == 302
    refused = client.post("/cases/new", data={"process": "tiny"})
    assert refused.status_code == 422 and "use an f-string instead" in refused.get_data(as_text=True)
    with app_org.db.read() as s:
        assert s.scalar(select(func.count()).select_from(ProcessInstance).where(
            ProcessInstance.process_key == "tiny")) == 0
    # The same diagram with a harmless script deploys and runs.
    assert _upload(client, "/studio/deploy-files", {"tiny.bpmn": small().encode()}).status_code == 302
    assert _versions(app_org, "tiny") == [1, 2]
    assert client.post("/cases/new", data={"process": "tiny"}).status_code == 302


def test_import_opens_a_foreign_diagram_as_a_draft_with_its_problems(
        client: FlaskClient, app: Flask, app_org: Runtime, auth: Auth) -> None:
    auth.login("owner")
    response = _upload(client, "/studio/import", {"tiny.bpmn": small("x = time.time()").encode()})
    assert response.status_code == 302 and response.headers["Location"].endswith("/studio/processes/tiny/edit")
    page = client.get("/studio/processes/tiny/edit").get_data(as_text=True)
    assert "time" in page and "Python module" in page  # the problems come with the page
    assert _versions(app_org, "tiny") == []
    assert _upload(client, "/studio/import", {"a.bpmn": small().encode(), "b.bpmn": small().encode()}
                   ).status_code == 422
    assert _upload(client, "/studio/import", {"notes.bpmn": b"<notes/>"}).status_code == 422
