"""Issue 16: while one request's diagram script is stopped, every other request keeps being served; task
instructions that would not end are stopped and the task page says so."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from engine.core.config import Settings
from engine.workflow.runtime import Runtime
from engine.workflow.scripts import RestrictedEnvironment
from tests.conftest import Auth
from tests.web.api_helpers import token_for
from tests.workflow.test_sandbox import LONG_C_CALL

NESTED_LOOPS = "{% for a in range(100000) %}{% for b in range(100000) %}{{ a }}{% endfor %}{% endfor %}"
SLOW = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="s_defs" targetNamespace="t">
  <bpmn:process id="slow_script" name="Slow script" isExecutable="true">
    <bpmn:startEvent id="s_start"><bpmn:outgoing>s1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="sort_everything" name="Sort everything"><bpmn:incoming>s1</bpmn:incoming>
      <bpmn:outgoing>s2</bpmn:outgoing><bpmn:script>{LONG_C_CALL}</bpmn:script></bpmn:scriptTask>
    <bpmn:userTask id="read_this" name="Read this"><bpmn:extensionElements>
      <spiffworkflow:instructionsForEndUser>{NESTED_LOOPS}</spiffworkflow:instructionsForEndUser>
      </bpmn:extensionElements><bpmn:incoming>s2</bpmn:incoming><bpmn:outgoing>s3</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="s_end"><bpmn:incoming>s3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="s1" sourceRef="s_start" targetRef="sort_everything"/>
    <bpmn:sequenceFlow id="s2" sourceRef="sort_everything" targetRef="read_this"/>
    <bpmn:sequenceFlow id="s3" sourceRef="read_this" targetRef="s_end"/>
  </bpmn:process>
</bpmn:definitions>"""


@pytest.fixture
def limited_app(settings: Settings, tmp_path: Path) -> Iterator[Flask]:
    from web import create_app

    app = create_app(replace(settings, script_time_limit_seconds=1.0, template_time_limit_seconds=1.0),
                     {"TESTING": True, "WTF_CSRF_ENABLED": False})
    yield app
    app.extensions["ntpswf"].db.dispose()


def _deploy(runtime: Runtime, xml: str) -> None:
    from engine.workflow.bundles import read_bundle
    from engine.workflow.definitions import deploy

    with runtime.db.unit_of_work() as uow:
        deploy(uow.session, read_bundle({"slow.bpmn": xml.encode()}, None), "test")
        uow.commit()


def test_sec_a_long_c_level_script_is_stopped_while_other_clients_are_served(limited_app: Flask) -> None:
    from tests.conftest import deploy_processes, load_people

    runtime: Runtime = limited_app.extensions["ntpswf"].runtime
    load_people(runtime)
    deploy_processes(runtime)
    _deploy(runtime, SLOW.replace("<spiffworkflow:instructionsForEndUser>", "<!--").replace(
        "</spiffworkflow:instructionsForEndUser>", "-->"))
    RestrictedEnvironment().evaluate("len(x)", {"x": []})  # a warm sandbox worker: its start is not the script's
    hr, employee = token_for(runtime, "hr"), token_for(runtime, "employee")
    server = make_server("127.0.0.1", 0, limited_app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}/api/v1"
    outcome: dict[str, object] = {}

    def start_the_slow_case() -> None:
        began = time.monotonic()
        request = urllib.request.Request(
            f"{base}/instances", data=json.dumps({"process": "slow_script", "data": {}}).encode(), method="POST",
            headers={"Authorization": f"Bearer {hr}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                status, body = answer.status, answer.read()
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read()
        outcome.update(status=status, body=body.decode(), seconds=time.monotonic() - began)

    try:
        slow = threading.Thread(target=start_the_slow_case)
        slow.start()
        time.sleep(0.2)
        latencies = []
        while slow.is_alive():
            began = time.monotonic()
            me = urllib.request.Request(f"{base}/me", headers={"Authorization": f"Bearer {employee}"})
            with urllib.request.urlopen(me, timeout=30) as answer:
                assert answer.status == 200
            latencies.append(time.monotonic() - began)
            time.sleep(0.05)
        slow.join()
    finally:
        server.shutdown()
    assert outcome["status"] == 422, outcome
    assert "time limit of 1 s" in str(outcome["body"]) and "sort_everything" in str(outcome["body"])
    assert outcome["seconds"] < 2.0 + 0.5  # the limit + 1 s, and the HTTP round trip
    assert len(latencies) >= 5 and max(latencies) < 1.0, latencies


def test_sec_instructions_that_would_not_end_are_stopped_on_the_task_page(limited_app: Flask) -> None:
    from tests.conftest import deploy_processes, load_people

    runtime: Runtime = limited_app.extensions["ntpswf"].runtime
    load_people(runtime)
    deploy_processes(runtime)
    _deploy(runtime, SLOW.replace(LONG_C_CALL, "done = True"))
    from tests.workflow.driver import Driver

    d = Driver(runtime)
    case = runtime.start(d.user("hr"), "slow_script", {})
    task = d.open_task(case, "read_this")
    client = limited_app.test_client()
    Auth(client).login("hr")
    began = time.monotonic()
    page = client.get(f"/tasks/{task.id}")
    assert page.status_code == 200 and time.monotonic() - began < 5.0
    assert "These instructions could not be shown" in page.get_data(as_text=True)
