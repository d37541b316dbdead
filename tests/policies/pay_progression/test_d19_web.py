"""The D19 screens: every task page shows its clause; the case record (print and CSV) for whoever may see
the case; the administrator's settings and pay points; appointments and the people record from the web."""

from __future__ import annotations

import csv
import io
import re

from flask.testing import FlaskClient
from sqlalchemy import select

from engine.core.models import Setting
from engine.people.models import Person
from engine.workflow.models import HumanTask, ProcessInstance
from engine.workflow.runtime import Runtime
from tests.conftest import Auth
from tests.policies.pay_progression.test_pay_progression import (
    DECIDE_YES,
    INVITE,
    RECOMMEND_YES,
    REFUSE,
    REVIEW,
    START,
    SUBMIT,
)


def _task(runtime: Runtime, case: int, name: str) -> int:
    with runtime.db.read() as s:
        return s.scalars(select(HumanTask.id).where(HumanTask.instance_id == case, HumanTask.name == name,
                                                    HumanTask.state == "open")).one()


def _complete(runtime: Runtime, case: int, name: str, username: str, data: dict[str, object]) -> None:
    from tests.workflow.driver import Driver

    Driver(runtime).complete(case, name, username, data)


def test_every_screen_of_the_process_shows_the_clause_it_applies(client: FlaskClient, app_org: Runtime,
                                                                 auth: Auth) -> None:
    case = app_org.start(None, "pay_progression", START, actor="hr")
    steps = [("invite_submission", "supervisor", INVITE, "cl. 3.2"), ("make_submission", "employee", SUBMIT, "cl. 6"),
             ("recommend", "supervisor", RECOMMEND_YES, "cl. 7"), ("decide", "manager", REFUSE, "cl. 8"),
             ("consider_review", "employee", REVIEW, "cl. 9a")]
    for name, username, data, clause in steps:
        auth.login(username)
        page = client.get(f"/tasks/{_task(app_org, case, name)}").get_data(as_text=True)
        assert f"Determination 19, {clause}" in page, name
        auth.logout()
        _complete(app_org, case, name, username, data)
    auth.login("ceo")
    page = client.get(f"/tasks/{_task(app_org, case, 'ceo_review')}").get_data(as_text=True)
    # instructions are Markdown (issue 19): the process owner's emphasis renders, never as asterisks
    assert "Determination 19, cl. 9a" in page and "by <strong>" in page and "**" not in page
    assert "2026-03-30" in page  # the four weeks' due date is on the screen


def test_the_record_is_for_whoever_may_see_the_case(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    case = app_org.start(None, "pay_progression", START, actor="hr")
    for name, username, data in [("invite_submission", "supervisor", INVITE), ("make_submission", "employee", SUBMIT),
                                 ("recommend", "supervisor", RECOMMEND_YES), ("decide", "manager", REFUSE)]:
        _complete(app_org, case, name, username, data)
    assert client.get(f"/cases/{case}/record").status_code == 302  # log in first
    auth.login("engineer")
    assert client.get(f"/cases/{case}/record").status_code == 404
    assert client.get(f"/cases/{case}/record.csv").status_code == 404
    auth.logout()
    auth.login("employee")
    page = client.get(f"/cases/{case}/record").get_data(as_text=True)
    assert "Who decided what, when, and why" in page
    assert "Morgan Lee (Manager, Port Operations)" in page and "Do not approve progression" in page
    assert "Lead a project outside your area next cycle." in page and "Determination 19, cl. 8" in page
    assert "Delivered the wharf booking system two months early." in page  # evidence, read back from documents
    assert "Apply the new pay point" not in page and "Appoint another person" not in page
    response = client.get(f"/cases/{case}/record.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert f'filename="case-{case}-record.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:5] == ["case", "at_utc", "who", "who_name", "what"]
    decide = next(r for r in rows if r[4] == "Decide")
    assert [decide[j] for j in (2, 4, 5, 6)] == ["manager", "Decide", "D19-8", "Do not approve progression"]


def test_hr_applies_a_progression_and_starts_a_cycle_from_the_record(client: FlaskClient, app_org: Runtime,
                                                                     auth: Auth) -> None:
    case = app_org.start(None, "pay_progression", START, actor="hr")
    for name, username, data in [("invite_submission", "supervisor", INVITE), ("make_submission", "employee", SUBMIT),
                                 ("recommend", "supervisor", RECOMMEND_YES), ("decide", "manager", DECIDE_YES)]:
        _complete(app_org, case, name, username, data)
    auth.login("employee")
    assert client.post(f"/d19/cases/{case}/apply-progression").status_code == 403
    auth.logout()
    auth.login("hr")
    assert "Apply the new pay point" in client.get(f"/cases/{case}/record").get_data(as_text=True)
    assert client.post(f"/d19/cases/{case}/apply-progression").status_code == 302
    assert client.post(f"/d19/cases/{case}/apply-progression").status_code == 409
    with app_org.db.read() as s:
        assert s.scalars(select(Person.pay_point).where(Person.username == "employee")).one() == "SPAO1-2"
    assert "Apply the new pay point" not in client.get(f"/cases/{case}/record").get_data(as_text=True)
    from tests.policies.pay_progression.test_d19_agreement import AGREEMENT

    agreement = app_org.start(None, "performance_agreement", {"employee": "engineer", "agreement": AGREEMENT},
                              actor="hr")
    _complete(app_org, agreement, "record_agreement", "hr", {"agreement": AGREEMENT})
    assert "Start the pay progression cycle" in client.get(f"/cases/{agreement}/record").get_data(as_text=True)
    response = client.post(f"/d19/agreements/{agreement}/start-cycle")
    assert response.status_code == 302
    with app_org.db.read() as s:
        started = s.scalars(select(ProcessInstance).where(ProcessInstance.process_key == "pay_progression",
                                                          ProcessInstance.status == "running")).one()
    assert started.data["agreement_case"] == agreement and response.headers["Location"].endswith(f"/{started.id}")


def test_the_ceo_appoints_from_the_web_and_hr_must_name_the_approver(client: FlaskClient, app_org: Runtime,
                                                                     auth: Auth) -> None:
    case = app_org.start(None, "pay_progression", START, actor="hr")
    auth.login("supervisor")  # he sees the case (he holds its task), so 403: he may not appoint
    assert client.get(f"/d19/cases/{case}/appoint").status_code == 403
    auth.logout()
    auth.login("hr")
    page = client.get(f"/d19/cases/{case}/appoint").get_data(as_text=True)
    assert "Determination 19, cl. 6" in page and 'name="csrf_token"' in page and "<legend>Role</legend>" in page
    bad = client.post(f"/d19/cases/{case}/appoint", data={"lane": "Supervisor", "username": "delegate",
                                                          "reason": "On leave."})
    assert bad.status_code == 422
    assert re.search(r'id="f-approved_by"[^>]*aria-invalid="true"', bad.get_data(as_text=True))
    with app_org.db.read() as s:
        assert s.get(ProcessInstance, case).data.get("appointments") is None  # type: ignore[union-attr]
    auth.logout()
    auth.login("ceo")
    response = client.post(f"/d19/cases/{case}/appoint", data={"lane": "Supervisor", "username": "delegate",
                                                               "reason": "The supervisor is on leave."})
    assert response.status_code == 302 and response.headers["Location"] == "/"  # the CEO has no task in it
    with app_org.db.read() as s:
        task = s.get(HumanTask, _task(app_org, case, "invite_submission"))
        assert task is not None and task.assignee is not None and task.assignee.username == "delegate"
    auth.logout()
    auth.login("delegate")  # now holds the task, so sees the case and its record
    page = client.get(f"/cases/{case}/record").get_data(as_text=True)
    assert "Person appointed" in page and "approved by ceo" in page


def test_settings_are_for_admins_to_change_and_hr_to_see(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    auth.login("employee")
    assert client.get("/d19/settings").status_code == 403
    auth.logout()
    auth.login("hr")
    page = client.get("/d19/settings").get_data(as_text=True)
    assert "four weeks of receipt of the review request" in page and "Determination 19, cl. 9a" in page
    assert "readonly" in page and "Save settings" not in page
    assert client.post("/d19/settings", data={"d19.review_days": "14"}).status_code == 403
    auth.logout()
    auth.login("admin")
    bad = client.post("/d19/settings", data={"d19.review_days": "0", "d19.invite_months_before": "3"})
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert re.search(r'id="f-d19-review_days"[^>]*aria-invalid="true"', html.replace("\n", " "))
    assert "Must be between 1 and 120." in html
    with app_org.db.read() as s:
        assert s.scalars(select(Setting)).all() == []
    assert client.post("/d19/settings", data={"d19.review_days": "21"}).status_code == 302
    with app_org.db.read() as s:
        assert s.get(Setting, "d19.review_days").value == "21"  # type: ignore[union-attr]


def test_pay_points_are_maintained_by_admins(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    auth.login("hr")
    page = client.get("/d19/pay-points").get_data(as_text=True)
    assert "SPAO1-3" in page and "Add a pay point" not in page and "Determination 19, cl. 1" in page
    assert client.post("/d19/pay-points", data={"classification": "SPAO1", "code": "SPAO1-4",
                                                "ordinal": "4"}).status_code == 403
    auth.logout()
    auth.login("admin")
    assert client.post("/d19/pay-points", data={"classification": "SPAO1", "code": "SPAO1-4", "ordinal": "4",
                                                "annual_salary": "131000"}).status_code == 302
    clash = client.post("/d19/pay-points", data={"classification": "SPAO1", "code": "SPAO1-5", "ordinal": "4"})
    assert clash.status_code == 409 and "already has SPAO1-4 at position 4" in clash.get_data(as_text=True)
    bad = client.post("/d19/pay-points", data={"classification": "SPAO1", "code": "", "ordinal": "x"})
    assert bad.status_code == 422 and 'id="n-code"' in bad.get_data(as_text=True)
    page = client.get("/d19/pay-points").get_data(as_text=True)
    assert "131,000" in page
    with app_org.db.read() as s:
        from engine.people.models import PayPoint

        new_id = s.scalars(select(PayPoint.id).where(PayPoint.code == "SPAO1-4")).one()
        used_id = s.scalars(select(PayPoint.id).where(PayPoint.code == "SPAO1-1")).one()
    assert client.post(f"/d19/pay-points/{used_id}/delete").status_code == 409
    assert client.post(f"/d19/pay-points/{new_id}/delete").status_code == 302
