"""Authorization: every API call walked as every demo login; nothing of one employee leaks to another.

The expectations are written out per login (not derived from engine.workflow.access), so a change to who may see
what has to change this table too. The web screens must give the same answers as the API.
"""

from __future__ import annotations

import io

import pytest
from flask import Flask
from sqlalchemy import func, select

from engine.people.models import Leave, Person
from engine.workflow.models import HumanTask, ProcessDefinition, ProcessInstance
from engine.workflow.runtime import Runtime
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
#: Who may start a case about `employee` (HR, admin, her leaders, and her organisation's CEO and delegates).
STARTERS = {"hr", "admin", "supervisor", "manager", "ceo", "delegate"}
#: Who may appoint to a role of `employee`'s case (D19-6/7/8): her organisation's CEO and delegates, and HR or
#: administrators recording it on their behalf. Nobody else even learns the appointment page exists.
APPOINTERS = {"ceo", "delegate", "hr", "admin"}
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


@pytest.mark.parametrize("username", DEMO_USERS)
def test_d19_6_the_appointment_record_as_every_login(app: Flask, app_org: Runtime, world: dict[str, int],
                                                     username: str) -> None:
    """The appointment page and its record, walked as every login: the engine decides, the page only asks."""
    case = world["case"]
    web = app.test_client()
    assert Auth(web).login(username).status_code == 302
    page = web.get(f"/d19/cases/{case}/appoint")
    refused = 403 if username in CASE_SEEN else 404  # 404 where even the case's existence is private
    assert page.status_code == (200 if username in APPOINTERS else refused), username
    record = web.get(f"/cases/{case}/record")
    assert record.status_code == (200 if username in CASE_SEEN else 404), username
    if record.status_code == 200:
        assert (f"/d19/cases/{case}/appoint" in record.get_data(as_text=True)) == (username in APPOINTERS), username
    posted = web.post(f"/d19/cases/{case}/appoint", data={
        "lane": "Supervisor", "username": "clerk", "reason": "Sam is on leave", "approved_by": "ceo"})
    assert posted.status_code == (302 if username in APPOINTERS else refused), (username, posted.status_code)
    with app_org.db.read() as s:
        row = s.get_one(ProcessInstance, case)
        appointed = [(a["username"], a["approved_by"], a["recorded_by"]) for a in row.data.get("appointments", [])]
        moved = s.get_one(HumanTask, world["task"]).assignee
    if username in APPOINTERS:  # the CEO and delegates approve themselves; HR and admins name who approved
        assert appointed == [("clerk", username if username in ("ceo", "delegate") else "ceo", username)]
        assert moved is not None and moved.username == "clerk"
    else:
        assert appointed == [] and moved is not None and moved.username == "supervisor"


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


# ------------------------------------------------------------------------------------------- the lists

#: Who sees `engineer`'s case (her, the supervisor holding its task, HR, admin).
OTHER_CASE_SEEN = {"engineer", "supervisor", "hr", "admin"}


def _listed(api: Api, path: str) -> list[str]:
    response = api.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["next"] is None
    return [item.get("username", item.get("id")) for item in body["items"]]


@pytest.mark.parametrize("username", DEMO_USERS)
def test_the_lists_show_what_the_single_calls_show(app: Flask, app_org: Runtime, world: dict[str, int],
                                                    username: str) -> None:
    """GET /people and GET /instances list exactly what GET /people/{username} and GET /instances/{id} show."""
    api = api_as(app, app_org, username)
    people = _listed(api, "/api/v1/people?limit=200")
    assert set(people) == PEOPLE_SEEN[username]
    assert people == sorted(people)
    for other in DEMO_USERS:
        assert (api.get(f"/api/v1/people/{other}").status_code == 200) == (other in people), other

    cases = set(_listed(api, "/api/v1/instances?limit=200"))
    expected = ({world["case"]} if username in CASE_SEEN else set()) | (
        {world["other"]} if username in OTHER_CASE_SEEN else set())
    assert cases == expected
    with app_org.db.read() as s:
        every_case = s.scalars(select(ProcessInstance.id)).all()
    for case in every_case:
        assert (api.get(f"/api/v1/instances/{case}").status_code == 200) == (case in cases), case


def test_an_employee_lists_only_her_own_cases_and_record(app: Flask, app_org: Runtime,
                                                         world: dict[str, int]) -> None:
    engineer = api_as(app, app_org, "engineer")
    assert _listed(engineer, "/api/v1/instances") == [world["other"]]
    assert _listed(engineer, "/api/v1/people") == ["engineer"]
    # filtering for someone else's cases or record answers as for nobody: an empty page, not 403 or 404
    for path in ("/api/v1/instances?subject=employee", "/api/v1/instances?process=pay_progression&status=running"
                 "&subject=employee", "/api/v1/people?q=emily", "/api/v1/people?q=employee&organisation=DPC"):
        response = engineer.get(path)
        assert response.status_code == 200 and response.get_json() == {"items": [], "next": None}
    assert engineer.get("/api/v1/instances?subject=employee").get_json() == engineer.get(
        "/api/v1/instances?subject=nobody").get_json()


def test_a_supervisor_lists_her_staff_and_their_cases(app: Flask, app_org: Runtime, world: dict[str, int]) -> None:
    supervisor = api_as(app, app_org, "supervisor")
    assert _listed(supervisor, "/api/v1/people") == ["clerk", "employee", "engineer", "supervisor"]
    assert _listed(supervisor, "/api/v1/people?q=wong") == ["employee"]
    assert _listed(supervisor, "/api/v1/people?q=ceo") == []  # her own leaders are not hers to list
    assert _listed(supervisor, "/api/v1/instances") == [world["other"], world["case"]]
    assert _listed(supervisor, "/api/v1/instances?subject=engineer") == [world["other"]]
    # the manager sees two levels of staff (and those he manages), but not cases he holds no task in
    manager = api_as(app, app_org, "manager")
    assert set(_listed(manager, "/api/v1/people")) == PEOPLE_SEEN["manager"]
    assert _listed(manager, "/api/v1/instances") == []


def test_hr_and_admin_list_every_case_and_person(app: Flask, app_org: Runtime, world: dict[str, int]) -> None:
    hello = app_org.start(None, "pay_progression", {**START, "employee": "supervisor"}, actor="admin")
    for username in ("hr", "admin"):
        api = api_as(app, app_org, username)
        assert _listed(api, "/api/v1/instances") == [hello, world["other"], world["case"]]
        assert _listed(api, "/api/v1/people") == sorted(DEMO_USERS)


def test_ocpe_lists_the_secondment_cases_it_oversees(app: Flask, app_org: Runtime, world: dict[str, int]) -> None:
    placement = app_org.start(None, "secondment", {"route": "application", "employee": "employee"},
                              actor="employee")
    assert _listed(api_as(app, app_org, "ocpe"), "/api/v1/instances") == [placement]
    assert _listed(api_as(app, app_org, "ocpe"), "/api/v1/instances?process=pay_progression") == []
    assert placement in _listed(api_as(app, app_org, "employee"), "/api/v1/instances")
    assert placement not in _listed(api_as(app, app_org, "engineer"), "/api/v1/instances")


def test_a_login_without_a_person_record_lists_only_what_it_started(app: Flask, app_org: Runtime,
                                                                   world: dict[str, int]) -> None:
    from engine.people.users import create_user

    with app_org.db.unit_of_work() as uow:
        create_user(uow.session, "robot", ["staff"], "quiet ferry lantern 2026")
        uow.commit()
    robot = api_as(app, app_org, "robot")
    assert _listed(robot, "/api/v1/people") == [] and _listed(robot, "/api/v1/instances") == []
    mine = app_org.start(None, "pay_progression", {**START, "employee": "supervisor"}, actor="robot")
    assert _listed(robot, "/api/v1/instances") == [mine]
