"""Issue 16: sessions that end, logins that cannot be guessed, passwords that cannot be guessed, roles only
administrators grant, and names that read as they are (docs/security.md)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from engine.core.clock import CLOCK
from engine.core.config import Settings
from engine.core.models import AuditEvent
from engine.people.csv_import import import_people
from engine.people.models import LoginSession, User
from engine.workflow.runtime import Runtime
from tests.conftest import Auth
from tests.web.api_helpers import api_as, assert_errors

PASSWORD = "demo-pass-2026"
GOOD = "ochre termite lantern 2031"
WEAK = ("password", "aaaaaaaa", "aaaaaaaaaaaa", "password1234", "qwertyuiopas", "Password123!", "iloveyou1234")


def _client(app: Flask, address: str = "10.0.0.1") -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _login(client: FlaskClient, username: str, password: str = PASSWORD) -> Any:
    return client.post("/login", data={"username": username, "password": password})


def _opens_cases(client: FlaskClient) -> bool:
    response = client.get("/cases/")
    return response.status_code == 200


def _events(runtime: Runtime, kind: str) -> list[AuditEvent]:
    """The audit events of `kind`, oldest first, but for the demo data's own."""
    with runtime.db.read() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.kind == kind, AuditEvent.actor != "demo")
                              .order_by(AuditEvent.id)))


# ----------------------------------------------------------------------------------------------- sessions


def test_sec_session_cookie_replayed_after_logout_opens_nothing(app: Flask, app_org: Runtime) -> None:
    client = _client(app)
    assert _login(client, "employee").status_code == 302 and _opens_cases(client)
    cookie = client.get_cookie("session")
    assert cookie is not None
    stolen = cookie.value
    client.post("/logout")
    client.set_cookie("session", stolen)  # the cookie as it was before logout, replayed
    response = client.get("/cases/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    with app_org.db.read() as s:
        assert [r.end_reason for r in s.scalars(select(LoginSession))] == ["logout"]


def test_sec_password_change_ends_every_session_and_token(app: Flask, app_org: Runtime) -> None:
    here, elsewhere = _client(app, "10.0.0.1"), _client(app, "10.0.0.2")
    _login(here, "employee")
    _login(elsewhere, "employee")
    api = api_as(app, app_org, "employee")
    assert api.get("/api/v1/me").status_code == 200
    refused = here.post("/account/password", data={"current_password": PASSWORD, "new_password": "password1234",
                                                    "confirm_password": "password1234"})
    assert refused.status_code == 422 and "too easy to guess" in refused.get_data(as_text=True)
    assert _opens_cases(elsewhere)  # a refused change ends nothing
    wrong = here.post("/account/password", data={"current_password": "not-it", "new_password": GOOD,
                                                  "confirm_password": GOOD})
    assert wrong.status_code == 422 and "not your current password" in wrong.get_data(as_text=True)
    changed = here.post("/account/password", data={"current_password": PASSWORD, "new_password": GOOD,
                                                    "confirm_password": GOOD})
    assert changed.status_code == 302
    assert not _opens_cases(here) and not _opens_cases(elsewhere)
    assert api.get("/api/v1/me").status_code == 401
    assert _login(_client(app), "employee", PASSWORD).status_code == 401
    assert _login(_client(app, "10.0.0.3"), "employee", GOOD).status_code == 302
    assert [e.detail["login"] for e in _events(app_org, "password_changed")] == ["employee"]


def test_sec_admin_signs_a_login_out_everywhere(app: Flask, app_org: Runtime) -> None:
    victim, admin = _client(app, "10.0.0.1"), _client(app, "10.0.0.9")
    _login(victim, "employee")
    api = api_as(app, app_org, "employee")
    _login(admin, "admin")
    with app_org.db.read() as s:
        employee_id = s.scalars(select(User.id).where(User.username == "employee")).one()
    page = admin.get("/admin/logins").get_data(as_text=True)
    assert "Sign out everywhere" in page and "employee" in page
    assert admin.post(f"/admin/logins/{employee_id}/sign-out").status_code == 302
    assert not _opens_cases(victim) and api.get("/api/v1/me").status_code == 401
    assert _opens_cases(admin)
    assert _events(app_org, "signed_out_everywhere")[0].detail == {"login": "employee", "sessions_ended": 2}
    staff = _client(app, "10.0.0.5")
    _login(staff, "hr")
    assert staff.post(f"/admin/logins/{employee_id}/sign-out").status_code == 403
    assert staff.get("/admin/logins").status_code == 403


def test_sec_sessions_end_when_idle_and_when_too_old(app: Flask, app_org: Runtime) -> None:
    client = _client(app)
    _login(client, "employee")
    CLOCK.advance(timedelta(minutes=29))
    assert _opens_cases(client)
    CLOCK.advance(timedelta(minutes=31))
    assert not _opens_cases(client)  # 31 minutes without a request
    _login(client, "employee")
    for _ in range(12 * 3):  # busy all day: a request every 20 minutes
        CLOCK.advance(timedelta(minutes=20))
        if not _opens_cases(client):
            break
    assert CLOCK.now() - timedelta(hours=12) <= CLOCK.now()
    with app_org.db.read() as s:
        reasons = [r.end_reason for r in s.scalars(select(LoginSession).order_by(LoginSession.id))]
    assert reasons == ["idle", "absolute lifetime"]


def test_sec_pages_and_answers_are_not_stored_and_cookies_are_secure_over_https(
        settings: Settings, app_org: Runtime) -> None:
    from dataclasses import replace

    from web import create_app

    plain = create_app(settings, {"TESTING": True, "WTF_CSRF_ENABLED": False})
    client = _client(plain)
    response = _login(client, "employee")
    assert "Secure" not in response.headers["Set-Cookie"] and "HttpOnly" in response.headers["Set-Cookie"]
    assert client.get("/cases/").headers["Cache-Control"] == "no-store"
    assert client.get("/api/v1/me").headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in client.get("/login").headers
    secure = create_app(replace(settings, public_url="https://workflows.nt.gov.au"),
                        {"TESTING": True, "WTF_CSRF_ENABLED": False})
    client = _client(secure)
    cookie = _login(client, "employee").headers["Set-Cookie"]
    assert cookie.startswith("__Host-session=") and "Secure" in cookie and "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert client.get("/login").headers["Strict-Transport-Security"].startswith("max-age=")
    for app in (plain, secure):
        app.extensions["ntpswf"].db.dispose()


# ------------------------------------------------------------------------------------------- throttling


def test_sec_forty_guesses_on_the_web_are_slowed_and_the_right_password_then_waits(
        app: Flask, app_org: Runtime) -> None:
    attacker = _client(app, "203.0.113.7")
    answers = [_login(attacker, "hr", f"guess-{n}").status_code for n in range(40)]
    assert answers[:5] == [401] * 5 and answers.count(429) >= 30  # after five, every guess waits
    limited = _login(attacker, "hr", PASSWORD)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert "Too many attempts" in limited.get_data(as_text=True)
    # the rightful user, from her own address, is slowed by seconds at most, never locked out
    rightful = _client(app, "10.1.1.1")
    assert _login(rightful, "hr").status_code == 302
    assert len(_events(app_org, "login_failed")) == answers.count(401)
    assert _events(app_org, "login_failed")[0].detail == {"via": "web", "client": "203.0.113.7"}


def test_sec_web_and_api_share_one_throttle(app: Flask, app_org: Runtime) -> None:
    client = _client(app, "198.51.100.4")
    for n in range(5):
        assert _login(client, "manager", f"guess-{n}").status_code == 401
    token = client.post("/api/v1/auth/token", json={"username": "manager", "password": PASSWORD})
    assert_errors(token, 429)
    CLOCK.advance(timedelta(seconds=int(token.headers["Retry-After"])))
    assert client.post("/api/v1/auth/token", json={"username": "manager", "password": PASSWORD}).status_code == 200
    kinds = {e.detail["via"] for e in _events(app_org, "login_failed")}
    assert kinds == {"web"}


def test_sec_a_guesser_from_many_addresses_cannot_lock_the_user_out(app: Flask, app_org: Runtime) -> None:
    for n in range(60):
        _login(_client(app, f"192.0.2.{n}"), "supervisor", f"guess-{n}")
    rightful = _client(app, "10.2.2.2")
    first = _login(rightful, "supervisor")
    if first.status_code == 429:  # the username's own bucket slows her by seconds, never more than 30
        assert int(first.headers["Retry-After"]) <= 30
        CLOCK.advance(timedelta(seconds=int(first.headers["Retry-After"])))
        first = _login(rightful, "supervisor")
    assert first.status_code == 302


# ------------------------------------------------------------------------------------------- passwords


@pytest.mark.parametrize("weak", WEAK)
def test_sec_weak_passwords_are_refused_on_the_api(app: Flask, app_org: Runtime, weak: str) -> None:
    api = api_as(app, app_org, "hr")
    person = {"username": "newstarter", "name": "New Starter", "email": "new@demo.ntps.example",
              "classification": "AO6", "organisation": "DPC"}
    assert_errors(api.post("/api/v1/people", json={**person, "password": weak}), 422, "password")
    assert api.post("/api/v1/people", json={**person, "password": GOOD}).status_code == 201


def test_sec_weak_passwords_are_refused_on_the_command_line_and_in_an_import(app: Flask, app_org: Runtime) -> None:
    runner = app.test_cli_runner()
    for weak in WEAK:
        result = runner.invoke(args=["user", "add", "robot", "--role", "staff", "--password-stdin"], input=weak + "\n")
        assert result.exit_code != 0 and "password" in result.output
    result = runner.invoke(args=["user", "add", "robot", "--role", "staff", "--password-stdin"], input=GOOD + "\n")
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["user", "password", "robot", "--password-stdin"], input="robot-robot\n")
    assert result.exit_code != 0
    header = "username,name,email,classification,pay_point,organisation,supervisor,manager,commenced_on,role,password"
    plan = import_people(app_org.db, f"{header}\nstarter,Sam Starter,s@x.example,AO6,,,,,,staff,samstarter12\n",
                         "admin", actor_is_admin=True)
    assert [(e.line, e.field) for e in plan.errors] == [(2, "password")]


# ----------------------------------------------------------------------------------------------- roles

HEADER = "username,name,email,classification,pay_point,organisation,supervisor,manager,commenced_on,role"


@pytest.mark.parametrize("role", ["process_owner", "hr", "ocpe", "admin"])
def test_sec_hr_cannot_grant_privileged_roles_in_an_import(app_org: Runtime, role: str) -> None:
    itself = f"{HEADER}\nhr,HR Officer,hr@demo.ntps.example,AO6,,DPC,,,,hr;{role}\n"
    new_login = f"{HEADER}\nrobot,Robot,robot@x.example,AO6,,DPC,,,,{role}\n"
    for text in (itself, new_login) if role != "hr" else (new_login,):
        plan = import_people(app_org.db, text, "hr", actor_is_admin=False)
        assert [(e.field, "only an administrator" in e.message) for e in plan.errors] == [("role", True)], text
    assert import_people(app_org.db, new_login, "admin", actor_is_admin=True).ok
    granted = [(e.actor, e.detail) for e in _events(app_org, "role_granted")]
    assert granted == [("admin", {"login": "robot", "role": role})]


def test_sec_only_an_admin_grants_roles_on_the_logins_page(app: Flask, app_org: Runtime) -> None:
    admin = _client(app)
    _login(admin, "admin")
    with app_org.db.read() as s:
        ids = dict(s.execute(select(User.username, User.id)).all())
    assert admin.post(f"/admin/logins/{ids['employee']}/roles", data={"role": ["staff", "process_owner"]}
                      ).status_code == 302
    assert admin.post(f"/admin/logins/{ids['admin']}/roles", data={"role": ["staff"]}).status_code == 302
    with app_org.db.read() as s:
        roles = dict(s.execute(select(User.username, User.roles)).all())
    assert roles["employee"] == ["process_owner", "staff"]
    assert "admin" in roles["admin"]  # an administrator cannot take away their own admin role
    assert [(e.actor, e.detail["role"]) for e in _events(app_org, "role_granted")] == [("admin", "process_owner")]
    hr = _client(app, "10.0.0.8")
    _login(hr, "hr")
    assert hr.post(f"/admin/logins/{ids['hr']}/roles", data={"role": ["hr", "admin"]}).status_code == 403


# ----------------------------------------------------------------------------------------------- names


def test_sec_names_with_text_direction_controls_are_refused(app: Flask, app_org: Runtime, auth: Auth) -> None:
    api = api_as(app, app_org, "hr")
    person = {"username": "newstarter", "name": "Emily \u202egnoW", "email": "new@demo.ntps.example",
              "classification": "AO6", "organisation": "DPC"}
    problems = assert_errors(api.post("/api/v1/people", json=person), 422, "name")
    assert "U+202E" in problems[0]["message"]
    assert_errors(api.post("/api/v1/people", json={**person, "name": "Emily\x07Wong"}), 422, "name")
    assert api.post("/api/v1/people", json={**person, "name": "Renée Ōta"}).status_code == 201


def test_sec_free_text_loses_control_and_direction_characters(app: Flask, app_org: Runtime) -> None:
    from tests.web.api_helpers import open_task, start_case

    case = start_case(app_org)
    api = api_as(app, app_org, "supervisor")
    task = open_task(app_org, case, "invite_submission")
    message = "Please submit by 30 May.\u202e)yadot ti od(\nThanks\x00"
    assert api.post(f"/api/v1/tasks/{task}/complete",
                    json={"data": {"invitation": {"message": message}}}).status_code == 200
    data = api.get(f"/api/v1/instances/{case}").get_json()["data"]
    assert data["invitation"]["message"] == "Please submit by 30 May.)yadot ti od(\nThanks"
