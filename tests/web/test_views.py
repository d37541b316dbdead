"""The web front end: login, inbox, task form, case page, people; access checks and CSRF."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from engine.core.config import Settings
from engine.workflow.models import HumanTask, ProcessInstance
from engine.workflow.runtime import Runtime
from tests.conftest import Auth

START = {"employee": "employee", "agreement_start": "2025-06-30", "assessment_date": "2026-06-30"}


def _start(runtime: Runtime) -> int:
    return runtime.start(None, "pay_progression", START, actor="hr")


def _open_task(runtime: Runtime, case: int, name: str) -> int:
    with runtime.db.read() as s:
        return s.scalars(select(HumanTask.id).where(HumanTask.instance_id == case, HumanTask.name == name,
                                                    HumanTask.state == "open")).one()


def test_login_required_and_wrong_password(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    assert client.get("/").status_code == 302
    response = auth.login("employee", "wrong")
    assert response.status_code == 401
    assert b"wrong password" in response.data
    assert auth.login("employee").status_code == 302


def test_session_cookie_is_httponly_and_samesite(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    response = auth.login("employee")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_login_does_not_redirect_off_site(client: FlaskClient, app_org: Runtime) -> None:
    response = client.post("/login?next=https://evil.example/", data={"username": "employee",
                                                                      "password": "demo-pass-2026"})
    assert response.headers["Location"] == "/"


def test_d19_6_the_whole_case_through_web_forms(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    case = _start(app_org)
    auth.login("supervisor")
    inbox = client.get("/").get_data(as_text=True)
    assert "Invite a pay progression submission" in inbox
    task = _open_task(app_org, case, "invite_submission")
    page = client.get(f"/tasks/{task}").get_data(as_text=True)
    assert "Determination 19, cl. 3.2" in page
    assert client.post(f"/tasks/{task}", data={"invitation.message": "Please submit."}).status_code == 302
    auth.logout()

    auth.login("employee")
    task = _open_task(app_org, case, "make_submission")
    page = client.get(f"/tasks/{task}").get_data(as_text=True)
    assert "Sustained superior performance" in page  # the determination's criteria are shown
    response = client.post(f"/tasks/{task}", data={
        "submission.participate": "submit", "submission.targets_met": "true",
        "submission.criteria": "leadership", "submission.evidence.leadership": "Led the team through the cyclone."})
    assert response.status_code == 302, response.get_data(as_text=True)
    auth.logout()

    auth.login("supervisor")
    task = _open_task(app_org, case, "recommend")
    bad = client.post(f"/tasks/{task}", data={"recommendation.recommend": "not_approve"})
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert re.search(r'aria-invalid="true"', html) and "This field is required." in html
    assert client.post(f"/tasks/{task}", data={"recommendation.recommend": "approve"}).status_code == 302
    auth.logout()

    auth.login("manager")
    task = _open_task(app_org, case, "decide")
    assert client.post(f"/tasks/{task}", data={"decision.approve": "approve"}).status_code == 302
    page = client.get(f"/cases/{case}").get_data(as_text=True)
    assert "completed" in page and "progressed" in page
    assert "manager" in page and "task completed" in page


def test_tasks_and_cases_of_others_are_hidden(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    case = _start(app_org)
    task = _open_task(app_org, case, "invite_submission")
    auth.login("engineer")  # another employee: neither the task nor the case is theirs
    assert client.get(f"/tasks/{task}").status_code == 404
    assert client.get(f"/cases/{case}").status_code == 404
    assert client.post(f"/tasks/{task}", data={"invitation.message": "x"}).status_code == 404
    auth.logout()
    auth.login("employee")  # the subject sees the case and the task, but cannot complete it
    assert client.get(f"/cases/{case}").status_code == 200
    assert client.post(f"/tasks/{task}", data={"invitation.message": "x"}).status_code == 403


def test_people_pages_are_for_hr_and_admins(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    auth.login("employee")
    assert client.get("/people/").status_code == 403
    auth.logout()
    auth.login("hr")
    assert b"Emily Wong" in client.get("/people/").data
    response = client.post("/people/new", data={"username": "newstarter", "name": "New Starter",
                                                 "email": "not-an-email", "classification": "SPAO1"})
    assert response.status_code == 422 and b"Must be an e-mail address." in response.data
    response = client.post("/people/new", data={"username": "newstarter", "name": "New Starter",
                                                 "email": "n@x.example", "classification": "SPAO1",
                                                 "supervisor": "supervisor", "commenced_on": "2026-01-05"})
    assert response.status_code == 302
    assert b"New Starter" in client.get("/people/").data


def test_start_a_case_from_the_web(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    auth.login("hr")
    response = client.post("/cases/new", data={"process": "pay_progression", "employee": "clerk",
                                               "agreement_start": "2025-06-30", "assessment_date": "2026-06-30"})
    assert response.status_code == 422 and b"cl. 1" in response.data
    response = client.post("/cases/new", data={"process": "pay_progression", **START})
    assert response.status_code == 302
    with app_org.db.read() as s:
        assert s.scalars(select(ProcessInstance)).one().status == "running"


def test_every_form_has_csrf_protection(settings: object, app_org: Runtime) -> None:
    from web import create_app

    app: Flask = create_app(app_org.settings, {"TESTING": True})  # CSRF on
    client = app.test_client()
    assert client.post("/login", data={"username": "hr", "password": "demo-pass-2026"}).status_code == 400
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    ok = client.post("/login", data={"username": "hr", "password": "demo-pass-2026", "csrf_token": token.group(1)})
    assert ok.status_code == 302
    app.extensions["ntpswf"].db.dispose()


def test_security_headers(client: FlaskClient) -> None:
    response = client.get("/login")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_demo_login_page_lists_the_demo_logins_and_a_real_one_does_not(settings: Settings) -> None:
    """Issue 19: the demo explains itself."""
    from dataclasses import replace

    from web import create_app

    for demo in (True, False):
        app = create_app(replace(settings, demo_mode=demo), {"TESTING": True})
        page = app.test_client().get("/login").get_data(as_text=True)
        assert ("Demo logins" in page and "demo-pass-2026" in page and "Emily Wong" in page) is demo
        assert ("demo-pass-2026" in page) is demo
        app.extensions["ntpswf"].db.dispose()


def test_instructions_render_markdown_and_never_markup_from_the_text_or_the_data(app: Flask) -> None:
    """Issue 19: instructions were raw Markdown ('## Invite ...', '**at least two months**'). Markdown renders;
    HTML in the instructions or in the case data shows as text, and links cannot run script."""
    from web.tasks import render_instructions

    text = "## Invite {{ name }}\n\nSubmit **at least two months** before.\n<b>bold?</b> [x](javascript:alert(1))"
    with app.app_context():
        html = str(render_instructions(text, {"name": "<script>alert(1)</script>"}))
    assert "<h2>Invite &lt;script&gt;alert(1)&lt;/script&gt;</h2>" in html
    assert "<strong>at least two months</strong>" in html
    assert "<b>" not in html and "&lt;b&gt;bold?&lt;/b&gt;" in html and 'href="javascript' not in html


def test_times_read_in_the_organisations_time_zone_with_its_name(app: Flask) -> None:
    """Issue 19: 'Assessment date reached: 2027-02-15 14:30' was UTC for an assessment date of 16 February in
    Darwin; pages now show the organisation's time (Australia/Darwin: ACST) and local dates."""
    from datetime import UTC, date, datetime

    render = app.jinja_env.from_string("{{ v | local }}|{{ v | local_date }}|{{ s | local }}|{{ d | local_date }}")
    moment = datetime(2027, 2, 15, 14, 30, tzinfo=UTC)
    assert render.render(v=moment, s=moment.isoformat(), d=date(2027, 3, 1)) == (
        "2027-02-16 00:00 ACST|2027-02-16|2027-02-16 00:00 ACST|2027-03-01")
    assert app.jinja_env.from_string("{{ v | local }}").render(v=None) == ""
