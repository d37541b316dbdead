"""REST API v1 (../shared/API.md): bearer tokens, JSON everywhere, one error shape."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Blueprint, g, jsonify, request
from flask.typing import ResponseReturnValue

from engine import leave as leave_service
from engine import queries
from engine.access import may_manage_people, may_view_person
from engine.definitions import deploy as deploy_bundle
from engine.definitions import list_latest, read_bundle
from engine.errors import Forbidden, Invalid, NotFound, Problem
from engine.models import User
from engine.users import (
    authenticate,
    get_person,
    issue_token,
    parse_person,
    person_dict,
    save_person,
    user_for_token,
)
from web import services

bp = Blueprint("api", __name__, url_prefix="/api/v1")
F = TypeVar("F", bound=Callable[..., Any])


def _error(status: int, message: str, **where: str) -> ResponseReturnValue:
    return jsonify(errors=[{**where, "message": message}]), status


def token_required(view: F) -> F:
    """401 without a live bearer token; otherwise the token's user is `g.api_user`."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _error(401, "a bearer token is required (POST /api/v1/auth/token)")
        with services().db.read() as s:
            user = user_for_token(s, token.strip())
            if user is not None:
                _ = user.person
                s.expunge(user)
        if user is None:
            return _error(401, "the token is unknown, expired or revoked")
        g.api_user = user
        return view(*args, **kwargs)

    return cast(F, wrapped)


def api_user() -> User:
    """The caller."""
    return cast(User, g.api_user)


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object", [Problem("must be a JSON object", field="body")])
    return body


@bp.post("/auth/token")
def token() -> ResponseReturnValue:
    """Exchange a username and password for a bearer token."""
    body = _json_body()
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise Invalid("username and password are required", [
            Problem("This field is required.", field=f) for f in ("username", "password")
            if not isinstance(body.get(f), str)])
    with services().db.unit_of_work() as uow:
        user = authenticate(uow.session, username, password)
        if user is None:
            return _error(401, "unknown username or wrong password")
        value, expires = issue_token(uow.session, user)
        uow.commit()
    return jsonify(token=value, expires_at=expires.isoformat())


@bp.get("/me")
@token_required
def me() -> ResponseReturnValue:
    """The caller."""
    user = api_user()
    return jsonify(username=user.username, name=user.person.name if user.person else user.username,
                   roles=user.roles)


@bp.post("/people")
@token_required
def create_person() -> ResponseReturnValue:
    """Add a person (admin, HR)."""
    if not may_manage_people(api_user()):
        raise Forbidden("only admins and HR add people")
    body = _json_body()
    person_input = parse_person(body)
    password = body.get("password")
    if password is not None and not isinstance(password, str):
        raise Invalid("bad password", [Problem("Must be a string.", field="password")])
    with services().db.unit_of_work() as uow:
        person = save_person(uow.session, person_input)
        if password:
            from engine.users import create_user

            create_user(uow.session, person.username, ["staff"], password)
        out = person_dict(uow.session, person)
        uow.commit()
    return jsonify(out), 201


@bp.get("/people/<username>")
@token_required
def show_person(username: str) -> ResponseReturnValue:
    """A person, with the people they supervise and manage."""
    with services().db.read() as s:
        try:
            person = get_person(s, username)
        except NotFound:
            raise NotFound("no such person") from None
        if not may_view_person(s, api_user(), person):
            raise NotFound("no such person")
        return jsonify(person_dict(s, person))


@bp.post("/people/<username>/leave")
@token_required
def record_leave(username: str) -> ResponseReturnValue:
    """Record leave (admin, HR); running cases that hang on the dates are re-timed."""
    if not may_manage_people(api_user()):
        raise Forbidden("only admins and HR record leave")
    result = leave_service.record_leave(services().runtime, api_user(), username, _json_body())
    return jsonify(result), 201


@bp.get("/processes")
@token_required
def processes() -> ResponseReturnValue:
    """The newest version of every deployed process."""
    with services().db.read() as s:
        return jsonify([{"key": d.key, "version": d.version, "name": d.name, "deployed_at": d.deployed_at.isoformat(),
                         "deployed_by": d.deployed_by, "executable": d.executable} for d in list_latest(s)])


@bp.post("/processes")
@token_required
def deploy() -> ResponseReturnValue:
    """Deploy BPMN (and the forms it names) as new versions (admin, process owner)."""
    user = api_user()
    if not user.has_role("admin", "process_owner"):
        raise Forbidden("only admins and process owners deploy")
    files: dict[str, bytes] = {}
    if request.mimetype in ("application/xml", "text/xml"):
        files["upload.bpmn"] = request.get_data()
    elif request.mimetype == "multipart/form-data":
        for storage in request.files.values():
            files[storage.filename or storage.name or "upload.bpmn"] = storage.read()
    else:
        raise Invalid("send BPMN as application/xml or multipart/form-data",
                      [Problem("unsupported content type " + (request.mimetype or "(none)"), field="body")])
    settings = services().settings
    with services().db.unit_of_work() as uow:
        results = deploy_bundle(uow.session, read_bundle(files, settings.forms_dir), user.username)
        uow.commit()
    return jsonify(processes=[{"key": r.key, "version": r.version} for r in results]), 201


@bp.post("/instances")
@token_required
def start_instance() -> ResponseReturnValue:
    """Start a case of the newest version of a process."""
    body = _json_body()
    key = body.get("process")
    if not isinstance(key, str) or not key:
        raise Invalid("process is required", [Problem("This field is required.", field="process")])
    data = body.get("data", {})
    if not isinstance(data, dict):
        raise Invalid("data must be an object", [Problem("must be an object", field="data")])
    instance_id = services().runtime.start(api_user(), key, data)
    return _instance_response(instance_id, 201)


def _instance_response(instance_id: int, status: int = 200) -> ResponseReturnValue:
    with services().db.read() as s:
        row = queries.get_instance(s, api_user(), instance_id)
        return jsonify(queries.instance_dict(s, row)), status


@bp.get("/instances/<int:instance_id>")
@token_required
def show_instance(instance_id: int) -> ResponseReturnValue:
    """A case: status, data, open tasks, waiting timers, audit trail."""
    return _instance_response(instance_id)


@bp.get("/tasks")
@token_required
def tasks() -> ResponseReturnValue:
    """Open tasks the caller may work on, paged."""
    cursor = request.args.get("cursor")
    after = None
    if cursor:
        if not cursor.isdigit():
            raise Invalid("bad cursor", [Problem("not a cursor this API gave", field="cursor")])
        after = int(cursor)
    limit = request.args.get("limit", default=50, type=int) or 50
    with services().db.read() as s:
        rows, next_cursor = queries.inbox(s, api_user(), after=after, limit=max(1, min(limit, 200)))
        items = [queries.task_dict(t) for t in rows]
    return jsonify(items=items, next=str(next_cursor) if next_cursor is not None else None)


@bp.get("/tasks/<int:task_id>")
@token_required
def show_task(task_id: int) -> ResponseReturnValue:
    """A task with its form and the data the form starts from."""
    with services().db.read() as s:
        task, workable = queries.get_task(s, api_user(), task_id)
        form = queries.task_form(s, task)
        out = queries.task_dict(task)
        out.update(form={"schema": form["schema"], "ui_schema": form["ui_schema"]}, data=form["data"],
                   workable=workable, instructions=task.instructions)
    return jsonify(out)


@bp.post("/tasks/<int:task_id>/complete")
@token_required
def complete_task(task_id: int) -> ResponseReturnValue:
    """Complete a task with its form data; answers with the case."""
    body = _json_body()
    data = body.get("data", {})
    if not isinstance(data, dict):
        raise Invalid("data must be an object", [Problem("must be an object", field="data")])
    instance_id = services().runtime.complete_task(api_user(), task_id, data)
    return _instance_response(instance_id)
