"""Incidents, notifications and demo time travel."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import select

from engine.core.clock import CLOCK
from engine.workflow.models import Timer
from engine.workflow.runtime import Runtime
from tests.conftest import Auth


def test_incidents_are_admin_only(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    auth.login("hr")
    assert client.get("/admin/incidents").status_code == 403
    auth.logout()
    auth.login("admin")
    assert b"No failed timers" in client.get("/admin/incidents").data


def test_a_failed_timer_is_listed_and_can_be_retried(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    case = app_org.start(None, "pay_progression", {"employee": "employee", "agreement_start": "2025-06-30",
                                                   "assessment_date": "2026-06-30"}, actor="hr")
    with app_org.db.unit_of_work() as uow:
        uow.session.add(Timer(instance_id=case, spiff_task_id="00000000-0000-0000-0000-000000000000",
                              element="review_timer", name="Four weeks", kind="duration", due_at=CLOCK.now(),
                              state="failed", attempts=5, last_error="RuntimeError: boom"))
        uow.commit()
    auth.login("admin")
    page = client.get("/admin/incidents").get_data(as_text=True)
    assert "RuntimeError: boom" in page and "Four weeks" in page
    with app_org.db.read() as s:
        timer_id = s.scalars(select(Timer.id)).one()
    assert client.post(f"/admin/timers/{timer_id}/retry").status_code == 302
    with app_org.db.read() as s:
        timer = s.get(Timer, timer_id)
        assert timer is not None and timer.state == "waiting" and timer.attempts == 0


def test_time_travel_only_in_demo_mode(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    auth.login("admin")
    assert client.post("/admin/clock", data={"days": "30"}).status_code == 404


def test_time_travel_moves_the_shared_clock_in_demo_mode(app_org: Runtime) -> None:
    from web import create_app

    CLOCK.reset()
    app = create_app(replace(app_org.settings, demo_mode=True), {"TESTING": True, "WTF_CSRF_ENABLED": False})
    client = app.test_client()
    Auth(client).login("admin")
    before = CLOCK.now()
    assert client.post("/admin/clock", data={"days": "30"}).status_code == 302
    assert CLOCK.now() - before >= timedelta(days=30)
    CLOCK.reset()
    client.get("/admin/incidents")  # another process would pick the offset up on its next request
    assert CLOCK.now() - before >= timedelta(days=30)
    app.extensions["ntpswf"].db.dispose()
    CLOCK.reset()


def test_notifications_page(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    from engine.workflow.assignment import person_by_username
    from engine.workflow.notify import notify

    with app_org.db.unit_of_work() as uow:
        person = person_by_username(uow.session, "manager")
        assert person is not None
        notify(uow.session, [person], "Overdue: <Invite>", "The invite is late.", None)
        uow.commit()
    auth.login("manager")
    page = client.get("/notifications").get_data(as_text=True)
    assert "Overdue: &lt;Invite&gt;" in page and "New:" in page
    client.post("/notifications/read")
    assert "New:" not in client.get("/notifications").get_data(as_text=True)
