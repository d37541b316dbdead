"""Authorization: every API call walked as every demo login; nothing of one employee leaks to another.

The expectations are written out per login (not derived from engine.access), so a change to who may see
what has to change this table too. The web screens must give the same answers as the API.
"""

from __future__ import annotations

import io

import pytest
from flask import Flask
from sqlalchemy import func, select

from engine.models import HumanTask, Leave, Person, ProcessDefinition, ProcessInstance
from engine.runtime import Runtime
from tests.conftest import Auth
from tests.web.api_helpers import DEMO_USERS, INVITE, START, Api, api_as, open_task, start_case
from tests.web.test_api import HELLO_BPMN

#: Whose person record each login may read (their own, their staff's two levels down; HR and admin: all).
PEOPLE_SEEN = {
    "employee": {"employee"}, "engineer": {"engineer"}, "clerk": {"clerk"}, "delegate": {"delegate"},
    "ocpe": {"ocpe"}, "owner": {"owner"},
    "supervisor": {"supervisor", "employee", "engineer", "clerk"},
    "manager": {"manager", "supervisor", "employee", "engineer", "clerk", "hr"},
    "ceo": {"ceo", "manager", "delegate", "supervisor", "hr"},
    "hr": set(DEMO_USERS), "admin": set(DEMO_USERS),
}
#: Who sees `employee`'s case (subject, the supervisor holding its task, HR, admin) and its task.
CASE_SEEN = {"employee", "supervisor", "hr", "admin"}
#: Who may complete the invitation (the supervisor it is assigned to); the others who see it get 403.
TASK_WORKER = "supervisor"
#: Who may start a case about `employee` (HR, admin, and her leaders).
STARTERS = {"hr", "admin", "supervisor", "manager"}
PEOPLE_ADMINS = {"hr", "admin"}
DEPLOYERS = {"owner", "admin"}


@pytest.fixture
def world(app: Flask, app_org: Runtime) -> dict[str, int]:
    """`employee`'s running case with its open invitation, and `engineer`'s case beside it."""
    case = start_case(app_org)
    other = start_case(app_org, {**START, "employee": "engineer"})
    return {"case": case, "task": open_task(app_org, case, "invite_submission"), "other": other,
            "other_task": open_task(app_org, other, "invite_submission")}


def _expect(response: object, status: int, what: str) -> None:
    code = response.status_code  # type: ignore[attr-defined]
    assert code == status, f"{what}: {code} {response.get_data(as_text=True)[:300]}"  # type: ignore[attr-defined]
    if code >= 400:
        assert response.get_json()["errors"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("username", DEMO_USERS)
def test_every_call_as_every_login(app: Flask, app_org: Runtime, world: dict[str, int], username: str) -> None:
    api = api_as(app, app_org, username)
    case, task = world["case"], world["task"]
    assert api.get("/api/v1/me").get_json()["username"] == username

    for other in DEMO_USERS:
        seen = other in PEOPLE_SEEN[username]
        _expect(api.get(f"/api/v1/people/{other}"), 200 if seen else 404, f"{username} reads {other}")

    _expect(api.get("/api/v1/processes"), 200, "processes")
    _expect(api.get(f"/api/v1/instances/{case}"), 200 if username in CASE_SEEN else 404, "employee's case")
    _expect(api.get(f"/api/v1/tasks/{task}"), 200 if username in CASE_SEEN else 404, "employee's task")
    listed = {t["id"] for t in api.get("/api/v1/tasks?limit=200").get_json()["items"]}
    assert (task in listed) == (username == TASK_WORKER)
    assert (world["other_task"] in listed) == (username == TASK_WORKER)

    person = {"username": f"new_{username}", "name": "New", "email": "n@x.example", "classification": "AO6"}
    _expect(api.post("/api/v1/people", json=person), 201 if username in PEOPLE_ADMINS else 403, "add a person")
    leave = {"kind": "ordinary", "start": "2026-03-10", "end": "2026-03-11", "counts_as_service": True}
    _expect(api.post("/api/v1/people/engineer/leave", json=leave), 201 if username in PEOPLE_ADMINS else 403,
            "record leave")
    _expect(api.post("/api/v1/processes", data=HELLO_BPMN, content_type="application/xml"),
            201 if username in DEPLOYERS else 403, "deploy")
    _expect(api.post("/api/v1/instances", json={"process": "pay_progression", "data": {**START, "employee": "clerk"}}),
            422 if username in STARTERS else 403, "start a case the policy refuses")

    completing = api.post(f"/api/v1/tasks/{task}/complete", json={"data": INVITE})
    if username == TASK_WORKER:
        _expect(completing, 200, "complete the invitation")
    else:
        _expect(completing, 403 if username in CASE_SEEN else 404, "complete someone else's task")

    _expect(api.delete("/api/v1/auth/token"), 204, "log out")
    _expect(api.get("/api/v1/me"), 401, "after logging out")

    with app_org.db.read() as s:  # what each refused call would have written is not there
        people = s.scalar(select(func.count()).select_from(Person).where(Person.username.like("new_%")))
        leaves = s.scalar(select(func.count()).select_from(Leave))
        hello = s.scalar(select(func.count()).select_from(ProcessDefinition).where(ProcessDefinition.key == "hello"))
        cases = s.scalar(select(func.count()).select_from(ProcessInstance))
        invitation = s.get_one(HumanTask, task).state
    assert people == leaves == (1 if username in PEOPLE_ADMINS else 0)
    assert hello == (1 if username in DEPLOYERS else 0)
    assert cases == 2
    assert invitation == ("completed" if username == TASK_WORKER else "open")


def test_another_employee_sees_nothing_of_employees_case(app: Flask, app_org: Runtime,
                                                         world: dict[str, int]) -> None:
    """`engineer` gets 404 for everything of `employee`'s, and sees her case nowhere."""
    engineer = api_as(app, app_org, "engineer")
    case, task = world["case"], world["task"]
    for response in (engineer.get(f"/api/v1/instances/{case}"), engineer.get(f"/api/v1/tasks/{task}"),
                     engineer.post(f"/api/v1/tasks/{task}/complete", json={"data": INVITE}),
                     engineer.get("/api/v1/people/employee"),
                     engineer.post("/api/v1/instances", json={"process": "pay_progression", "data": START})):
        assert response.status_code in (403, 404)
        assert "Emily" not in response.get_data(as_text=True)
    assert engineer.get(f"/api/v1/instances/{world['other']}").status_code == 200  # her own case she sees
    # the 404 of someone else's case is the same as the 404 of no case at all
    missing = engineer.get("/api/v1/instances/999999")
    assert engineer.get(f"/api/v1/instances/{case}").get_json() == missing.get_json()


def test_the_web_screens_answer_as_the_api_does(app: Flask, app_org: Runtime, world: dict[str, int]) -> None:
    """Per-object authorization identical to the web screens: the same 200 / 404 for every login."""
    case, task = world["case"], world["task"]
    for username in DEMO_USERS:
        api = api_as(app, app_org, username)
        web = app.test_client()
        assert Auth(web).login(username).status_code == 302
        for api_path, web_path in ((f"/api/v1/instances/{case}", f"/cases/{case}"),
                                   (f"/api/v1/tasks/{task}", f"/tasks/{task}")):
            assert api.get(api_path).status_code == web.get(web_path).status_code, (username, api_path)


def test_a_staff_login_cannot_deploy_even_as_multipart(app: Flask, app_org: Runtime) -> None:
    api: Api = api_as(app, app_org, "employee")
    response = api.post("/api/v1/processes", data={"f": (io.BytesIO(HELLO_BPMN), "hello.bpmn")},
                        content_type="multipart/form-data")
    assert response.status_code == 403
