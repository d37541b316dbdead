"""Issue 18: messages and signals from outside (API.md: POST /api/v1/instances/{id}/messages, POST /api/v1/messages).

Before, a case waiting on a message catch event, or a process with a message start event, waited forever: nothing
could send them. The payload goes into the case as SpiffWorkflow puts it (a spiff messageVariable), is checked like
form data, and the delivery is audited; a case waiting for no such message answers 404 and changes nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from engine.workflow.runtime import Runtime
from tests.web.api_helpers import api_as, assert_errors, row_counts
from tests.workflow.driver import Driver, deploy_file

MODELS = Path(__file__).parents[1] / "workflow" / "message_models"


@pytest.fixture
def waiting(app_org: Runtime) -> int:
    deploy_file(app_org, MODELS / "wait_for_payment.bpmn")
    return app_org.start(Driver(app_org).user("hr"), "wait_for_payment", {})


def test_msg_a_message_the_case_waits_for_moves_it_on_with_its_payload(app: Flask, app_org: Runtime,
                                                                      waiting: int) -> None:
    answer = api_as(app, app_org, "admin").post(f"/api/v1/instances/{waiting}/messages",
                                                json={"name": "payment_received", "data": {"amount": 1200}})
    assert answer.status_code == 200, answer.get_json()
    case = answer.get_json()
    assert case["status"] == "completed"
    assert case["data"]["payment"] == {"amount": 1200} and case["data"]["paid_amount"] == 1200
    assert "stopped" not in case["data"]  # the event-based gateway took the message's branch only
    assert any(e["kind"] == "message_received" and e["detail"]["name"] == "payment_received" for e in case["events"])


def test_msg_a_signal_by_its_name_takes_the_other_branch(app: Flask, app_org: Runtime, waiting: int) -> None:
    answer = api_as(app, app_org, "admin").post(f"/api/v1/instances/{waiting}/messages",
                                                json={"name": "stop_everything"})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["status"] == "completed" and answer.get_json()["data"]["stopped"] is True


def test_msg_a_message_the_case_does_not_wait_for_is_404_and_changes_nothing(app: Flask, app_org: Runtime,
                                                                           waiting: int) -> None:
    api = api_as(app, app_org, "admin")
    before = row_counts(app_org)
    errors = assert_errors(api.post(f"/api/v1/instances/{waiting}/messages", json={"name": "nobody_sends_this"}),
                           404, "name")
    assert "payment_received" in errors[0]["message"] and "stop_everything" in errors[0]["message"]
    assert row_counts(app_org) == before
    assert_errors(api.post(f"/api/v1/instances/{waiting}/messages", json={"name": ""}), 422, "name")
    assert_errors(api.post(f"/api/v1/instances/{waiting}/messages", json={"name": "x", "data": [1]}), 422, "data")
    assert_errors(api.post("/api/v1/instances/999999/messages", json={"name": "payment_received"}), 404)
    assert row_counts(app_org) == before
    # once over, the case waits for nothing
    api.post(f"/api/v1/instances/{waiting}/messages", json={"name": "stop_everything"})
    assert_errors(api.post(f"/api/v1/instances/{waiting}/messages", json={"name": "payment_received"}), 404, "name")


def test_msg_only_those_who_may_work_the_case_or_admins_send_it(app: Flask, app_org: Runtime, waiting: int) -> None:
    # The case has no open task: nobody but an administrator may send it a message; HR sees the case (403),
    # the employee does not (404).
    assert_errors(api_as(app, app_org, "hr").post(f"/api/v1/instances/{waiting}/messages",
                                                  json={"name": "payment_received"}), 403)
    assert_errors(api_as(app, app_org, "employee").post(f"/api/v1/instances/{waiting}/messages",
                                                        json={"name": "payment_received"}), 404)
    assert api_as(app, app_org, None).post(f"/api/v1/instances/{waiting}/messages",
                                           json={"name": "payment_received"}).status_code == 401


def test_msg_a_payload_past_the_task_data_limit_is_refused(app: Flask, app_org: Runtime, waiting: int) -> None:
    big = {"text": "x" * (app_org.settings.task_data_limit_bytes + 10)}
    assert_errors(api_as(app, app_org, "admin").post(f"/api/v1/instances/{waiting}/messages",
                                                     json={"name": "payment_received", "data": big}), 422, "data")


def test_msg_a_message_starts_every_process_whose_start_event_has_its_name(app: Flask, app_org: Runtime) -> None:
    deploy_file(app_org, MODELS / "started_by_message.bpmn")
    api = api_as(app, app_org, "owner")  # a process owner may send it (admin, hr, process_owner)
    answer = api.post("/api/v1/messages", json={"name": "order_placed", "data": {"lines": ["a", "b", "c"]}})
    assert answer.status_code == 201, answer.get_json()
    [case] = answer.get_json()["instances"]
    shown = api_as(app, app_org, "admin").get(f"/api/v1/instances/{case}").get_json()
    assert shown["status"] == "completed" and shown["data"]["items"] == 3
    none = api.post("/api/v1/messages", json={"name": "no_process_starts_on_this"})
    assert none.status_code == 201 and none.get_json() == {"instances": []}
    assert_errors(api_as(app, app_org, "employee").post("/api/v1/messages", json={"name": "order_placed"}), 403)


def test_msg_save_restore_between_the_start_and_the_message(app: Flask, app_org: Runtime) -> None:
    deploy_file(app_org, MODELS / "wait_for_payment.bpmn")
    drive = Driver(app_org, restore=True)
    case = drive.start("wait_for_payment", {})
    fresh = drive._fresh()  # a new runtime and an empty spec cache: only the database holds the case
    fresh.send_message(drive.user("admin"), case, "payment_received", {"amount": 5})
    assert drive.instance(case).data["paid_amount"] == 5
