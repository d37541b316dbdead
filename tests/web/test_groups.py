"""Issue 18: work groups. Before, a lane had to be a built-in role, so every lane of a diagram made elsewhere
("Finance", "Reviewers", "Process Initiator") was refused, and a process owner could not add a step for a group of
people without code. Administrators now keep groups (admin screen and API); a lane names a role or a group; a
group's tasks appear in every member's inbox and one member does each."""

from __future__ import annotations

import io
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from engine.workflow.runtime import Runtime
from tests.conftest import Auth
from tests.web.api_helpers import api_as, assert_errors, row_counts

DIAGRAM = Path(__file__).parents[1] / "workflow" / "task_models" / "finance_review.bpmn"


def _deploy(app: Flask, runtime: Runtime) -> int:
    return api_as(app, runtime, "owner").post(
        "/api/v1/processes", data={"f": (io.BytesIO(DIAGRAM.read_bytes()), "finance_review.bpmn")},
        content_type="multipart/form-data").status_code


def _inbox(app: Flask, runtime: Runtime, username: str) -> list[str]:
    return [t["name"] for t in api_as(app, runtime, username).get("/api/v1/tasks").get_json()["items"]]


def test_grp_a_lane_naming_a_group_sends_its_tasks_to_every_member(app: Flask, app_org: Runtime) -> None:
    admin = api_as(app, app_org, "admin")
    assert _deploy(app, app_org) == 422  # no group "Finance" yet: the lane is unknown
    made = admin.post("/api/v1/groups", json={"name": "Finance", "organisation": "DPC", "members": ["manager"]})
    assert made.status_code == 201 and made.get_json() == {"name": "Finance", "organisation": "DPC",
                                                           "members": ["manager"]}
    assert admin.get("/api/v1/groups").get_json()["items"] == [made.get_json()]
    assert _deploy(app, app_org) == 201
    first = admin.post("/api/v1/instances", json={"process": "finance_review", "data": {}}).get_json()["id"]
    assert _inbox(app, app_org, "manager") == ["fin_check"] and _inbox(app, app_org, "clerk") == []
    changed = admin.put("/api/v1/groups/Finance/members", json={"members": ["manager", "clerk"]})
    assert changed.status_code == 200 and changed.get_json()["members"] == ["clerk", "manager"]  # by name
    assert _inbox(app, app_org, "clerk") == ["fin_check"]  # every member's inbox
    [task] = api_as(app, app_org, "clerk").get("/api/v1/tasks").get_json()["items"]
    done = api_as(app, app_org, "clerk").post(f"/api/v1/tasks/{task['id']}/complete", json={"data": {}})
    assert done.status_code == 200 and done.get_json()["status"] == "completed"
    assert _inbox(app, app_org, "manager") == []  # one member did it: gone from every inbox
    assert first == done.get_json()["id"]


def test_grp_only_admins_keep_groups_and_mistakes_name_their_field(app: Flask, app_org: Runtime) -> None:
    admin = api_as(app, app_org, "admin")
    admin.post("/api/v1/groups", json={"name": "Reviewers", "members": []})
    before = row_counts(app_org)
    assert_errors(api_as(app, app_org, "owner").post("/api/v1/groups", json={"name": "Mine"}), 403)
    assert_errors(api_as(app, app_org, "employee").get("/api/v1/groups"), 403)
    assert_errors(admin.post("/api/v1/groups", json={"name": "Reviewers"}), 409, "name")
    assert_errors(admin.post("/api/v1/groups", json={"name": "HR"}), 422, "name")  # a role's lane
    assert_errors(admin.post("/api/v1/groups", json={"name": "New", "members": ["nobody"]}), 422, "members")
    assert_errors(admin.post("/api/v1/groups", json={"name": "New", "organisation": "ZZZ"}), 422, "organisation")
    assert_errors(admin.post("/api/v1/groups", json={"name": "Bad\u202ename"}), 422, "name")
    assert_errors(admin.put("/api/v1/groups/Nobody/members", json={"members": []}), 404)
    assert row_counts(app_org) == before


def test_grp_an_unknown_lane_is_refused_naming_it_and_listing_what_exists(app: Flask, app_org: Runtime) -> None:
    api_as(app, app_org, "admin").post("/api/v1/groups", json={"name": "Reviewers"})
    answer = api_as(app, app_org, "owner").post(
        "/api/v1/processes", data={"f": (io.BytesIO(DIAGRAM.read_bytes()), "finance_review.bpmn")},
        content_type="multipart/form-data")
    [error] = assert_errors(answer, 422)
    assert error["element"] == "fin_check" and "'Finance'" in error["message"]
    assert "Reviewers" in error["message"] and "Supervisor" in error["message"]


def test_grp_the_admin_screen_lists_adds_and_changes_groups(app_org: Runtime, client: FlaskClient, auth: Auth
                                                            ) -> None:
    auth.login("employee")
    assert client.get("/admin/groups").status_code == 403
    auth.logout()
    auth.login("admin")
    added = client.post("/admin/groups", data={"name": "Finance", "organisation": "", "members": "manager clerk"})
    assert added.status_code == 302
    page = client.get("/admin/groups").get_data(as_text=True)
    assert "Finance" in page and "clerk manager" in page
    refused = client.post("/admin/groups", data={"name": "Finance", "members": ""})
    assert refused.status_code == 409 and "There is a problem" in refused.get_data(as_text=True)
    client.post("/admin/groups/members", data={"group": "Finance", "members": "hr"})
    assert "Finance" in client.get("/admin/groups").get_data(as_text=True)
    auth.logout()
    auth.login("owner")  # process owners see the groups their lanes may name
    page = client.get("/admin/groups").get_data(as_text=True)
    assert "Finance" in page and "Add a group" not in page


def test_grp_reminders_and_escalations_reach_a_groups_members(app: Flask, app_org: Runtime) -> None:
    """The people behind a group task (reminders, escalations, notices) are the group's members."""
    from engine.people.groups import group_key
    from engine.people.models import WorkGroup
    from engine.workflow.notify import group_members

    api_as(app, app_org, "admin").post("/api/v1/groups", json={"name": "Finance", "members": ["manager", "clerk"]})
    with app_org.db.read() as s:
        group = s.query(WorkGroup).filter_by(name="Finance").one()
        assert sorted(p.username for p in group_members(s, group_key(group.id))) == ["clerk", "manager"]
        assert group_members(s, "group:999") == []
