"""Files made by other tools (../shared/conformance): each one deploys and runs, or is refused with problems
that name the element and say what is unsupported; none causes a server error or an unhandled exception.

Run through engine.workflow.definitions (deploy, then a case driven to its end) and through the studio's HTTP
endpoints (validate, import as a draft, deploy, start a case from the web form).
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from engine.core.clock import CLOCK
from engine.core.errors import EngineError, Invalid
from engine.people.models import User
from engine.workflow.bundles import read_bundle
from engine.workflow.casedata import declared_outputs
from engine.workflow.code_checks import sample_value
from engine.workflow.definitions import deploy
from engine.workflow.demo import load_people
from engine.workflow.models import HumanTask, ProcessInstance, Timer
from engine.workflow.parsing import parse_bundle
from engine.workflow.runtime import Runtime
from tests.conftest import SHARED, Auth, sqlite_database

CONFORMANCE = SHARED / "conformance"
#: Folders whose files call each other: deployed together.
TOGETHER = {"call_activity_nested", "boundary_event_reset", "multiinstance_human_task_with_timer"}
#: What runs here. Everything else must be refused, each problem naming its element.
RUNS = {
    "spiffarena/boundary_event_reset", "spiffarena/call_activity_nested", "spiffarena/hello_world/hello_world.bpmn",
    "spiffarena/manual_task/manual_task.bpmn", "spiffarena/step_through_gateway/step_through_gateway.bpmn",
    "spiffarena/multiinstance_human_task_with_timer",
    "spiffarena/terminate_end_event/terminate-end-event.bpmn",
}
#: Why the others are refused (a word of the expected message), where it matters most.
REFUSED_BECAUSE = {
    "spiffarena/dangerous-scripts/read_env.bpmn": "imports are not allowed",
    "spiffarena/dangerous-scripts/read_etc_passwd.bpmn": "name 'open' is not allowed",
    "spiffarena/migration-test-with-timer/migration-initial.bpmn": "Python module",
    "spiffarena/simple_form/simple_form.bpmn": "function 'get_process_initiator_user' does not exist",
    "spiffarena/model_with_lanes/lanes.bpmn": "does not resolve to a role",
    "miwg/reference/A.1.0.bpmn": "isExecutable",
    "miwg/reference/C.1.0.bpmn": "service tasks call connectors",
    "miwg/reference/C.9.1.bpmn": "unquoted literal",
    "miwg/reference/B.1.0.bpmn": "data stores are not supported",
}


def _cases() -> list[tuple[str, dict[str, bytes]]]:
    """(name, files) for every bundle in the conformance folders."""
    if not CONFORMANCE.is_dir():
        return []
    out: list[tuple[str, dict[str, bytes]]] = []
    for path in sorted((CONFORMANCE / "miwg").glob("*/*.bpmn")):
        out.append((f"miwg/{path.parent.name}/{path.name}", {path.name: path.read_bytes()}))
    for folder in sorted(p for p in (CONFORMANCE / "spiffarena").iterdir() if p.is_dir()):
        extra = {p.name: p.read_bytes() for p in folder.iterdir()
                 if p.suffix in (".dmn", ".json") and p.name != "process_model.json"}
        diagrams = sorted(folder.glob("*.bpmn"))
        if folder.name in TOGETHER:
            out.append((f"spiffarena/{folder.name}", {**extra, **{p.name: p.read_bytes() for p in diagrams}}))
        else:
            out.extend((f"spiffarena/{folder.name}/{p.name}", {**extra, p.name: p.read_bytes()}) for p in diagrams)
    return out


CASES = _cases()
PARAMS = [pytest.param(files, id=name) for name, files in CASES] or [
    pytest.param(None, id="conformance-files-absent")]


def _need(files: dict[str, bytes] | None) -> dict[str, bytes]:
    if files is None:
        pytest.skip(f"{CONFORMANCE} is absent (shared conformance files not checked out)")
    return files


def _name_of(files: dict[str, bytes]) -> str:
    return next(name for name, f in CASES if f is files)


def test_the_conformance_set_is_complete() -> None:
    if not CASES:
        pytest.skip(f"{CONFORMANCE} is absent")
    names = {name for name, _ in CASES}
    assert names >= RUNS and set(REFUSED_BECAUSE) <= names
    assert len([n for n in names if n.startswith("miwg/")]) == 42


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: these tests are about reading other tools' files, not about the database backend."""
    return sqlite_database(tmp_path / "conformance.sqlite3")


@pytest.fixture
def people(runtime: Runtime) -> Runtime:
    """The demo people and logins only: these tests deploy their own files."""
    load_people(runtime)
    return runtime


@pytest.fixture
def app_people(app: Flask) -> Runtime:
    """The demo people and logins in the app's database."""
    runtime: Runtime = app.extensions["ntpswf"].runtime
    load_people(runtime)
    return runtime


def _admin(runtime: Runtime) -> User:
    with runtime.db.read() as s:
        user = s.scalars(select(User).where(User.username == "admin")).one()
        _ = user.person
        s.expunge(user)
        return user


def _declared_sample(runtime: Runtime, session: Any, row: ProcessInstance, task: HumanTask | None) -> dict[str, Any]:
    """For a task without a form: a sample of each value its diagram declares it produces (none: an empty answer)."""
    if task is None:
        return {}
    workflow = runtime.load(session, row).workflow
    spiff_task = next(t for t in workflow.get_tasks() if str(t.id) == task.spiff_task_id)
    return dict.fromkeys(declared_outputs(spiff_task) or (), 1)


def _drive(runtime: Runtime, instance_id: int, user: User) -> str:
    """Work the case as far as it goes: open tasks with sample data from their forms, timers by moving the clock."""
    for _ in range(40):
        with runtime.db.read() as s:
            row = s.get(ProcessInstance, instance_id)
            assert row is not None
            if row.status != "running":
                return row.status
            task = s.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                     HumanTask.state == "open").order_by(HumanTask.id)).first()
            form = row.definition.forms.get(task.form) if task is not None and task.form else None
            timers = s.scalars(select(Timer).where(Timer.instance_id == instance_id, Timer.state == "waiting")).all()
            answer = (sample_value(form) or {}) if form else _declared_sample(runtime, s, row, task)
        if task is not None:
            runtime.complete_task(user, task.id, answer)
        elif timers:
            CLOCK.advance(max(t.due_at for t in timers) - CLOCK.now() + timedelta(seconds=1))
            runtime.fire_timers(instance_id)
        else:
            return "running"
    return "running"


@pytest.mark.parametrize("files", PARAMS)
def test_each_file_deploys_and_runs_or_is_refused_naming_the_element(files: Any, people: Runtime) -> None:
    org = people
    files = _need(files)
    name = _name_of(files)
    try:
        with org.db.unit_of_work() as uow:
            deployed = deploy(uow.session, read_bundle(files, None), "conformance")
            uow.commit()
    except Invalid as exc:
        assert name not in RUNS, f"{name} should deploy: {exc.problems}"
        assert exc.problems
        for problem in exc.problems:
            assert problem.element, problem  # names the element (or the file, for a whole-file problem)
            assert len(problem.message) > 10, problem
        if name in REFUSED_BECAUSE:
            assert any(REFUSED_BECAUSE[name] in p.message for p in exc.problems), exc.problems
        return
    assert name in RUNS, f"{name} deployed; add it to RUNS if it runs: {deployed}"
    admin = _admin(org)
    for result in deployed:
        instance_id = org.start(admin, result.key, {})
        assert _drive(org, instance_id, admin) == "completed", (name, result.key)


@pytest.mark.parametrize("files", PARAMS)
def test_each_file_through_the_studio_endpoints(files: Any, client: FlaskClient, app_people: Runtime,
                                                auth: Auth) -> None:
    files = _need(files)
    name = _name_of(files)
    auth.login("owner")
    diagrams = {n: f for n, f in files.items() if n.endswith(".bpmn")}
    forms = {n: json.loads(f) for n, f in files.items() if n.endswith(".json")}
    for filename, content in diagrams.items():
        answer = client.post("/studio/api/validate", data=json.dumps(
            {"key": None, "filename": filename, "xml": content.decode(), "forms": forms}),
            content_type="application/json")
        assert answer.status_code == 200, (filename, answer.status_code)
        for problem in answer.json["problems"]:
            assert problem.get("element") and problem["message"], problem
    if len(diagrams) == 1:
        imported = _post_files(client, "/studio/import", files)
        assert imported.status_code == 302, (name, imported.status_code, imported.get_data(as_text=True)[:500])
        assert client.get(imported.headers["Location"]).status_code == 200  # opens in the modeler
    response = _post_files(client, "/studio/deploy-files", files)
    if name in RUNS:
        assert response.status_code == 302, response.get_data(as_text=True)[:2000]
        for key in _executable_keys(files):
            started = client.post("/cases/new", data={"process": key})
            assert started.status_code == 302, (key, started.get_data(as_text=True)[:2000])
    else:
        assert response.status_code == 422, (name, response.status_code)
        page = response.get_data(as_text=True)
        assert "<strong>" in page  # every problem is listed with its element


def _executable_keys(files: dict[str, bytes]) -> list[str]:
    return [p.key for p in parse_bundle(read_bundle(files, None))]


def _post_files(client: FlaskClient, url: str, files: dict[str, bytes]) -> Any:
    fields = MultiDict([("files", FileStorage(io.BytesIO(content), filename=name)) for name, content in files.items()])
    boundary, body = encode_multipart(fields)
    return client.post(url, data=body, content_type=f"multipart/form-data; boundary={boundary}")


def test_a_refusal_names_elements_not_just_files() -> None:
    """The parser's errors come back with the element's id wherever the file has one to give."""
    if not CASES:
        pytest.skip(f"{CONFORMANCE} is absent")
    for name, files in CASES:
        if name.startswith("miwg/") and "A." not in name and "C.2.0" not in name and "C.8.0" not in name:
            with pytest.raises(EngineError) as refused:
                parse_bundle(read_bundle(files, None))
            elements = [p.element for p in refused.value.problems]
            assert all(e and not e.endswith(".bpmn") for e in elements), (name, refused.value.problems)
