"""D19-1: pay points through the API and the command line (API.md: GET/PUT /api/v1/pay-points), so that a fresh
deployment can be configured and start a pay progression case without the admin screen."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import delete, func, select

from engine.core.models import AuditEvent
from engine.people.models import PayPoint
from engine.people.users import PersonInput, create_user, save_person
from engine.workflow.demo import deploy_processes
from engine.workflow.runtime import Runtime
from tests.web.api_helpers import START, api_as, assert_errors

SPAO1 = {"points": [{"code": "SPAO1-1", "annual_salary": 120000}, {"code": "SPAO1-2", "annual_salary": 124000},
                    {"code": "SPAO1-3"}]}


def test_d19_1_every_login_reads_the_pay_points_in_order(app: Flask, app_org: Runtime) -> None:
    items = api_as(app, app_org, "employee").get("/api/v1/pay-points").get_json()["items"]
    spao1 = [(p["code"], p["ordinal"]) for p in items if p["classification"] == "SPAO1"]
    assert spao1 == [("SPAO1-1", 1), ("SPAO1-2", 2), ("SPAO1-3", 3)]
    assert set(items[0]) == {"classification", "code", "ordinal", "annual_salary"}
    assert api_as(app, app_org, None).get("/api/v1/pay-points").status_code == 401


def test_d19_1_an_administrator_replaces_a_classifications_points(app: Flask, app_org: Runtime) -> None:
    admin = api_as(app, app_org, "admin")
    new = {"points": [*SPAO1["points"], {"code": "spao1-4", "annual_salary": 131000}]}
    answer = admin.put("/api/v1/pay-points/spao1", json=new)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert [(p["code"], p["ordinal"], p["annual_salary"]) for p in answer.get_json()["items"]] == [
        ("SPAO1-1", 1, 120000), ("SPAO1-2", 2, 124000), ("SPAO1-3", 3, None), ("SPAO1-4", 4, 131000)]
    with app_org.db.read() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.kind == "pay_points_replaced")).one()
    assert event.actor == "admin" and event.detail["clause"] == "D19-1" and len(event.detail["after"]) == 4


def test_d19_1_only_an_administrator_changes_pay_points(app: Flask, app_org: Runtime) -> None:
    for username in ("hr", "employee", "ceo", "owner"):
        assert_errors(api_as(app, app_org, username).put("/api/v1/pay-points/SPAO1", json=SPAO1), 403)


def test_d19_1_a_point_people_hold_or_a_running_case_names_cannot_go(app: Flask, app_org: Runtime) -> None:
    admin = api_as(app, app_org, "admin")
    with app_org.db.read() as s:
        before = s.scalar(select(func.count()).select_from(PayPoint))
    # `employee` is on SPAO1-1: dropping it is refused naming the point, and nothing changes
    errors = assert_errors(admin.put("/api/v1/pay-points/SPAO1", json={"points": [{"code": "SPAO1-2"}]}), 409)
    assert any("SPAO1-1" in e["message"] for e in errors)
    # a running case names the point `engineer` is on (SPPO1-2), even once nobody holds it
    case = app_org.start(None, "pay_progression", {**START, "employee": "engineer"}, actor="hr")
    with app_org.db.unit_of_work() as uow:
        from engine.people.models import Person

        engineer = uow.session.scalars(select(Person).where(Person.username == "engineer")).one()
        engineer.pay_point = "SPPO1-1"
        uow.commit()
    errors = assert_errors(admin.put("/api/v1/pay-points/SPPO1", json={"points": [
        {"code": "SPPO1-1"}, {"code": "SPPO1-3"}]}), 409)
    assert any("SPPO1-2" in e["message"] and f"#{case}" in e["message"] for e in errors)
    with app_org.db.read() as s:
        assert s.scalar(select(func.count()).select_from(PayPoint)) == before


def test_d19_1_duplicates_and_bad_codes_are_422_naming_the_field(app: Flask, app_org: Runtime) -> None:
    admin = api_as(app, app_org, "admin")
    assert_errors(admin.put("/api/v1/pay-points/SPAO1", json={"points": [
        {"code": "SPAO1-1"}, {"code": "spao1-1"}]}), 422, "points.1.code")
    assert_errors(admin.put("/api/v1/pay-points/SPAO1", json={"points": [{"code": "bad code!"}]}), 422,
                  "points.0.code")
    assert_errors(admin.put("/api/v1/pay-points/SPAO1", json={"points": []}), 422)
    assert_errors(admin.put("/api/v1/pay-points/SPAO1", json={"points": [{"code": "A", "annual_salary": -1}]}), 422)
    assert_errors(admin.put("/api/v1/pay-points/not%20a%20code", json=SPAO1), 422, "classification")


def test_d19_1_a_fresh_deployment_is_configured_and_starts_a_case_over_the_api(app: Flask) -> None:
    """Issue 15: a fresh deployment could not start a pay progression case over the API."""
    runtime: Runtime = app.extensions["ntpswf"].runtime
    deploy_processes(runtime)
    with runtime.db.unit_of_work() as uow:  # the people an HR system would send, and one administrator
        s = uow.session
        create_user(s, "root", ["admin", "hr", "staff"], "correct horse battery staple 2026")
        for username, classification, point, supervisor in (("boss", "SAO2", None, None),
                                                            ("lead", "SPAO2", None, "boss"),
                                                            ("officer", "SPAO1", "SPAO1-1", "lead")):
            save_person(s, PersonInput(username=username, name=username.title(), email=f"{username}@x.example",
                                       classification=classification, pay_point=point, organisation="DPC",
                                       supervisor=supervisor, commenced_on="2024-01-15"))
        s.execute(delete(PayPoint))
        uow.commit()
    root = api_as(app, runtime, "root")
    data = {**START, "employee": "officer"}
    refused = root.post("/api/v1/instances", json={"process": "pay_progression", "data": data})
    assert_errors(refused, 422, "employee")  # no pay point of SPAO1 on record yet
    assert root.put("/api/v1/pay-points/SPAO1", json=SPAO1).status_code == 200
    started = root.post("/api/v1/instances", json={"process": "pay_progression", "data": data})
    assert started.status_code == 201, started.get_data(as_text=True)


def test_d19_1_the_command_line_lists_and_sets_pay_points(app: Flask, app_org: Runtime) -> None:
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["pay-points", "list", "--classification", "spao1"])
    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines()[0].split("\t") == ["SPAO1", "1", "SPAO1-1", "-"]
    done = runner.invoke(args=["pay-points", "set", "SPAO1", "SPAO1-1=120,000", "SPAO1-2", "SPAO1-3",
                               "SPAO1-4=131000", "--as", "admin"])
    assert done.exit_code == 0, done.output
    assert "SPAO1: SPAO1-1, SPAO1-2, SPAO1-3, SPAO1-4" in done.output
    assert runner.invoke(args=["pay-points", "set", "SPAO1", "SPAO1-9", "--as", "hr"]).exit_code == 1
    refused = runner.invoke(args=["pay-points", "set", "SPAO1", "SPAO1-2"])  # someone is on SPAO1-1
    assert refused.exit_code == 1 and "SPAO1-1 cannot go" in refused.output
    with app_org.db.read() as s:
        assert s.scalar(select(func.count()).select_from(PayPoint).where(PayPoint.classification == "SPAO1")) == 4
