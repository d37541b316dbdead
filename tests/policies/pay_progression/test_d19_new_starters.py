"""D19-3.3: a new starter in a covered classification gets the performance agreement set-up, due within two months
of commencement, whichever way they are recorded (API, web, CSV import on the web and the command line); when it
cannot start, the person waits in front of HR with one action."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from engine.core.models import AuditEvent
from engine.workflow.demo import deploy_processes, load_people
from engine.workflow.models import HumanTask, ProcessInstance
from engine.workflow.runtime import Runtime
from tests.conftest import Auth
from tests.web.api_helpers import api_as

PERSON = {"username": "newstarter", "name": "New Starter", "email": "new@demo.ntps.example",
          "classification": "SPAO1", "pay_point": "SPAO1-1", "organisation": "DPC", "supervisor": "supervisor",
          "commenced_on": "2026-02-10"}
HEADER = "username,name,email,classification,pay_point,organisation,supervisor,manager,commenced_on"


def _setups(runtime: Runtime, username: str) -> list[ProcessInstance]:
    with runtime.db.read() as s:
        rows = s.scalars(select(ProcessInstance).where(ProcessInstance.process_key == "performance_agreement")
                         .order_by(ProcessInstance.id)).all()
        return [r for r in rows if (r.data or {}).get("employee") == username]


def _setup_task(runtime: Runtime, case: int) -> HumanTask:
    with runtime.db.read() as s:
        task = s.scalars(select(HumanTask).where(HumanTask.instance_id == case, HumanTask.state == "open")).one()
        _ = task.assignee
        s.expunge(task)
        return task


def test_d19_3_3_a_new_starter_over_the_api_gets_the_set_up_due_in_two_months(app: Flask, app_org: Runtime) -> None:
    answer = api_as(app, app_org, "hr").post("/api/v1/people", json=PERSON)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    [case] = _setups(app_org, "newstarter")
    assert answer.get_json()["agreement_setup_case"] == case.id and case.started_by == "hr"
    assert case.data["setup_due"] == "2026-04-10"  # two months from commencement
    task = _setup_task(app_org, case.id)
    assert task.name == "set_up_agreement" and task.assignee is not None and task.assignee.username == "supervisor"
    assert task.due_at == datetime(2026, 4, 10, 14, 30, tzinfo=UTC)  # the end of 10 April in Darwin


def test_d19_3_3_no_set_up_outside_the_covered_classifications(app: Flask, app_org: Runtime) -> None:
    answer = api_as(app, app_org, "hr").post("/api/v1/people", json={**PERSON, "classification": "AO6",
                                                                      "pay_point": None})
    assert answer.status_code == 201 and answer.get_json()["agreement_setup_case"] is None
    assert _setups(app_org, "newstarter") == []


def test_d19_3_3_a_csv_import_starts_set_ups_once(app: Flask, app_org: Runtime, client: FlaskClient,
                                                  auth: Auth, tmp_path: Path) -> None:
    text = (f"{HEADER}\nnewbie,Nadia Bell,nadia@ports.example,SPAO2,SPAO2-1,DPC,supervisor,,2026-02-02\n"
            "clerk2,Casey Clerk,cc@ports.example,AO6,,DPC,supervisor,,2026-02-02\n")
    auth.login("hr")
    preview = client.post("/hr/people/import", data={"file": (io.BytesIO(text.encode()), "people.csv")},
                          content_type="multipart/form-data")
    assert preview.status_code == 200
    job = int(preview.get_data(as_text=True).split("/hr/people/import/")[1].split('"')[0])
    done = client.post(f"/hr/people/import/{job}", follow_redirects=True)
    assert "performance agreement set-up started" in done.get_data(as_text=True)
    [case] = _setups(app_org, "newbie")
    assert case.data["setup_due"] == "2026-04-02" and _setups(app_org, "clerk2") == []
    # the same file again from the command line: nobody is started twice
    path = tmp_path / "people.csv"
    path.write_text(text)
    again = app.test_cli_runner().invoke(args=["people", "import", str(path), "--as", "hr"])
    assert again.exit_code == 0, again.output
    assert len(_setups(app_org, "newbie")) == 1


def test_d19_3_3_a_person_reclassified_into_a_covered_classification_on_the_web(
        app: Flask, app_org: Runtime, client: FlaskClient, auth: Auth) -> None:
    auth.login("hr")
    form = {"name": "Alex Rivera", "email": "clerk@demo.ntps.example", "classification": "SPAO1",
            "pay_point": "SPAO1-1", "organisation": "DPC", "supervisor": "supervisor", "commenced_on": "2026-03-01"}
    page = client.post("/people/clerk", data=form, follow_redirects=True)
    assert "performance agreement set-up started" in page.get_data(as_text=True)
    [case] = _setups(app_org, "clerk")
    assert case.data["setup_due"] == "2026-05-01"
    client.post("/people/clerk", data={**form, "email": "alex@demo.ntps.example"})  # an unrelated change
    assert len(_setups(app_org, "clerk")) == 1


def test_d19_3_3_when_the_set_up_cannot_start_hr_sees_it_with_one_action(app: Flask, client: FlaskClient,
                                                                        auth: Auth) -> None:
    runtime: Runtime = app.extensions["ntpswf"].runtime
    load_people(runtime)  # people, but no process deployed yet
    answer = api_as(app, runtime, "hr").post("/api/v1/people", json=PERSON)
    assert answer.status_code == 201 and answer.get_json()["agreement_setup_case"] is None  # the person is kept
    with runtime.db.read() as s:
        pending = s.scalars(select(AuditEvent).where(AuditEvent.kind == "agreement_setup_pending")).one()
    assert pending.detail["username"] == "newstarter" and "performance_agreement" in pending.detail["reason"]
    auth.login("hr")
    page = client.get("/hr/").get_data(as_text=True)
    assert "New starters without a performance agreement set-up" in page and "New Starter (newstarter)" in page
    assert 'name="csrf_token"' in page
    deploy_processes(runtime)
    done = client.post("/hr/agreement-setups", data={"username": "newstarter"}, follow_redirects=True)
    assert "performance agreement set-up started" in done.get_data(as_text=True)
    assert len(_setups(runtime, "newstarter")) == 1
    assert "New Starter (newstarter)" not in client.get("/hr/").get_data(as_text=True)
    auth.logout()
    auth.login("employee")
    assert client.post("/hr/agreement-setups", data={"username": "*"}).status_code == 403
