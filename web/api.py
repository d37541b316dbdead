"""REST API v1 (../shared/API.md): bearer tokens, JSON everywhere, one error shape, an OpenAPI document.

Each view only parses input (validated by `web.openapi.operation` against the models of
`web.openapi_models`), calls one service or query, and answers; the engine decides and raises
NotFound / Forbidden / Conflict / Invalid, which `web.errors` maps to 404 / 403 / 409 / 422.
"""

from __future__ import annotations

import base64
import binascii
from datetime import date, datetime, time
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, jsonify, make_response, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.exceptions import NotFound as RoutingNotFound
from werkzeug.wrappers import Response as WerkzeugResponse

from engine.core.errors import Invalid, NotFound, Problem
from engine.people import groups as groups_service
from engine.people.logins import exchange_password_for_token
from engine.people.ratelimit import RateLimited
from engine.people.users import (
    USERNAME_LENGTH,
    get_person,
    is_username,
    parse_person,
    person_dict,
    register_person,
    revoke_token,
)
from engine.policies.pay_progression import leave as leave_service
from engine.policies.pay_progression import settings as d19_settings
from engine.workflow import queries
from engine.workflow.access import may_view_person
from engine.workflow.assignment import role_lanes
from engine.workflow.bundles import read_bundle
from engine.workflow.definitions import deploy as deploy_bundle
from engine.workflow.definitions import latest_definition, list_latest
from engine.workflow.registry import REGISTRY
from web import services
from web.auth import login_policy, login_request_limit
from web.openapi import ApiError, api_user, bearer_token, body, document, operation, query
from web.openapi_models import (
    MAX_ID,
    CompleteIn,
    DeployOut,
    GroupIn,
    GroupList,
    GroupOut,
    InstanceFilters,
    InstanceIn,
    InstanceOut,
    InstancePage,
    LeaveIn,
    LeaveOut,
    Me,
    MembersIn,
    MessageIn,
    MessageStartOut,
    Page,
    PayPointList,
    PayPointsIn,
    PeopleFilters,
    PersonIn,
    PersonOut,
    PersonPage,
    ProcessOut,
    TaskDetail,
    TaskPage,
    TokenIn,
    TokenOut,
)
from web.openapi_pages import docs_page_context

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _links(code: int, **links: tuple[str, str, str]) -> dict[str, Any]:
    """OpenAPI links from an answer to the calls its values feed: name -> (operation, parameter, JSON pointer).

    They tell a reader (and schemathesis's stateful run) which call to make next with what it got."""
    return {"responses": {str(code): {"links": {
        name: {"operationId": op, "parameters": {param: f"$response.body#{pointer}"}}
        for name, (op, param, pointer) in links.items()}}}}


_TASK_LINKS = {"ShowTask": ("show_task", "task_id", "/tasks/0/id"),
               "CompleteTask": ("complete_task", "task_id", "/tasks/0/id")}
#: Integer ids in URLs stop at PostgreSQL's `integer`; anything larger is simply not found.
ID = f"int(max={MAX_ID})"


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> ResponseReturnValue:
    return exc.response()


@bp.errorhandler(RateLimited)
def _rate_limited(exc: RateLimited) -> ResponseReturnValue:
    return ApiError(429, [Problem(exc.message)], {"Retry-After": str(exc.retry_after)}).response()


@bp.after_app_request
def _allow_header(response: WerkzeugResponse) -> WerkzeugResponse:
    """A JSON 405 under /api/ still names the allowed methods (RFC 9110), as werkzeug's own page does."""
    if response.status_code == 405 and request.path.startswith("/api/") and "Allow" not in response.headers:
        adapter = current_app.url_map.bind("localhost")
        try:
            adapter.match(request.path, method="__none__")
        except MethodNotAllowed as exc:
            response.headers["Allow"] = ", ".join(sorted(exc.valid_methods or []))
        except RoutingNotFound:  # pragma: no cover - a 405 path always matches some rule
            pass
    return response


# ----------------------------------------------------------------------------------------------- auth


@bp.post("/auth/token")
@operation({200: TokenOut}, json_body=TokenIn, auth=False, errors=(401, 429), tag="auth", extra={
    "responses": {"429": {"headers": {"Retry-After": {"schema": {"type": "integer"},
                                                      "description": "seconds to wait"}}}}})
def token() -> ResponseReturnValue:
    """Exchange a username and password for a bearer token.

    Throttled as the web login is (docs/security.md): failed logins per username and address, per address
    and per username, each with a growing delay, and login requests per address; a limited request answers
    429 with Retry-After, whatever the password.
    """
    data = body(TokenIn)
    issued = exchange_password_for_token(services().db, data.username, data.password,
                                         request.remote_addr or "unknown", login_policy(), login_request_limit())
    if issued is None:
        raise ApiError(401, [Problem("unknown username or wrong password")],
                       {"WWW-Authenticate": 'Bearer realm="ntpswf"'})
    value, expires = issued
    return jsonify(token=value, expires_at=expires.isoformat())


@bp.delete("/auth/token")
@operation({204: None}, tag="auth")
def revoke() -> ResponseReturnValue:
    """Revoke the token this call is made with (log out); later calls with it answer 401."""
    token_value = bearer_token()
    assert token_value is not None  # operation() authenticated it
    services().db.run(revoke_token, token_value)
    return make_response("", 204)


@bp.get("/me")
@operation({200: Me}, tag="auth")
def me() -> ResponseReturnValue:
    """The caller: username, name and login roles."""
    user = api_user()
    return jsonify(username=user.username, name=user.person.name if user.person else user.username,
                   roles=user.roles)


# ----------------------------------------------------------------------------------------------- people


@bp.post("/people")
@operation({201: PersonOut}, json_body=PersonIn, roles=("admin", "hr"), errors=(409,), tag="people",
           extra=_links(201, ShowPerson=("show_person", "username", "/username"),
                        RecordLeave=("record_leave", "username", "/username")))
def create_person() -> ResponseReturnValue:
    """Add a person (admin, HR); with `password` they also get a staff login."""
    data = body(PersonIn)
    person_input = parse_person(data.model_dump(exclude={"password"}))
    out = services().db.run(register_person, person_input, data.password, api_user().username)
    # Each policy hears of the new record (D19-3.3: a new starter in a covered classification gets the
    # performance agreement set-up, its case in `agreement_setup_case`)
    user = api_user()
    for outcome in REGISTRY.people_recorded(services().runtime, user, user.username, [out["username"]]):
        if outcome.api_field:
            out[outcome.api_field] = outcome.cases.get(out["username"])
    return jsonify(out), 201


def _bad_query(field: str, message: str) -> ApiError:
    """A query parameter that passed its schema but still makes no sense: 400 naming it."""
    return ApiError(400, [Problem(message, field=field)])


def _people_cursor(username: str) -> str:
    """The opaque cursor after `username` (URL-safe base64 without padding: usernames may be any letters)."""
    return base64.urlsafe_b64encode(username.encode()).decode().rstrip("=")


def _after_username(cursor: str) -> str | None:
    if not cursor:
        return None
    try:
        username = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise _bad_query("cursor", "not a cursor this API gave") from None
    if not username or "\x00" in username or _people_cursor(username) != cursor:
        raise _bad_query("cursor", "not a cursor this API gave")
    return username


@bp.get("/people")
@operation({200: PersonPage}, query_model=PeopleFilters, query_status=400, tag="people",
           extra=_links(200, ShowPerson=("show_person", "username", "/items/0/username")))
def people() -> ResponseReturnValue:
    """The people the caller may see, by username, as pages of `items` with a `next` cursor.

    The same people GET /people/{username} shows: admin and HR everyone; anyone else their own record and
    those of the people they supervise, of those people's staff, and of the people they manage.
    `q` matches part of a name or username in any case; `organisation` is an organisation code."""
    filters = query(PeopleFilters)
    after = _after_username(filters.cursor)
    with services().db.read() as s:
        items, last = queries.people_page(s, api_user(), q=filters.q, organisation=filters.organisation,
                                          after_username=after, limit=filters.limit)
    return jsonify(items=items, next=_people_cursor(last) if last is not None else None)


def _username(username: str) -> str:
    """A username from the URL; one that cannot exist is simply not found."""
    if len(username) > USERNAME_LENGTH or not is_username(username):
        raise NotFound("no such person")
    return username


@bp.get("/people/<username>")
@operation({200: PersonOut}, errors=(404,), tag="people")
def show_person(username: str) -> ResponseReturnValue:
    """A person, with the people they supervise and manage (their own record, their staff's; HR: all)."""
    with services().db.read() as s:
        try:
            person = get_person(s, _username(username))
        except NotFound:
            raise NotFound("no such person") from None
        if not may_view_person(s, api_user(), person):
            raise NotFound("no such person")  # whether someone else exists is private
        return jsonify(person_dict(s, person))


@bp.post("/people/<username>/leave")
@operation({201: LeaveOut}, json_body=LeaveIn, roles=("admin", "hr"), errors=(404,), tag="people")
def record_leave(username: str) -> ResponseReturnValue:
    """Record leave (admin, HR); running cases whose dates hang on it are re-timed (D19-9d)."""
    result = leave_service.record_leave(services().runtime, api_user(), _username(username),
                                        body(LeaveIn).model_dump())
    return jsonify(result), 201


# ----------------------------------------------------------------------------------------------- pay points


@bp.get("/pay-points")
@operation({200: PayPointList}, tag="pay points")
def pay_points() -> ResponseReturnValue:
    """Every classification's pay points in order (D19-1)."""
    with services().db.read() as s:
        return jsonify(items=d19_settings.pay_point_items(s))


@bp.put("/pay-points/<classification>")
@operation({200: PayPointList}, json_body=PayPointsIn, roles=("admin",), errors=(404, 409), tag="pay points")
def replace_pay_points(classification: str) -> ResponseReturnValue:
    """Replace a classification's pay points, lowest first (admin; D19-1). A point that people hold, or that a
    running case names, cannot go (409 naming it); duplicates and bad codes are 422."""
    user = api_user()
    data = body(PayPointsIn)
    items = services().db.run(d19_settings.replace_pay_points, user, user.username, classification,
                              [p.model_dump() for p in data.points])
    return jsonify(items=items)


# ----------------------------------------------------------------------------------------------- processes


def _next_link(cursor: int, limit: int) -> str:
    return f'<{request.base_url}?{urlencode({"cursor": cursor, "limit": limit})}>; rel="next"'


@bp.get("/processes")
@operation({200: list[ProcessOut]}, query_model=Page, tag="processes", extra={
    "responses": {"200": {"headers": {"Link": {
        "schema": {"type": "string"},
        "description": 'the next page, as <URL>; rel="next", when there is one'}}}}})
def processes() -> ResponseReturnValue:
    """The newest version of every deployed process, by key; paged with `limit` and the Link header."""
    page = query(Page)
    start = page.cursor or 0
    with services().db.read() as s:
        rows = list_latest(s)
        items = [{"key": d.key, "version": d.version, "name": d.name, "deployed_at": d.deployed_at.isoformat(),
                  "deployed_by": d.deployed_by, "executable": d.executable}
                 for d in rows[start:start + page.limit]]
    response = jsonify(items)
    if start + page.limit < len(rows):
        response.headers["Link"] = _next_link(start + page.limit, page.limit)
    return response


_BPMN_BODY = {"requestBody": {"required": True, "content": {
    "application/xml": {"schema": {"type": "string", "description": "one BPMN document"}},
    "multipart/form-data": {"schema": {
        "type": "object", "description": ".bpmn / .dmn definitions and the .json forms they name, any field names",
        "additionalProperties": {"type": "string", "format": "binary"}}},
}}}


@bp.post("/processes")
@operation({201: DeployOut}, roles=("admin", "process_owner"), errors=(413, 415, 422), tag="processes",
           extra=_BPMN_BODY)
def deploy() -> ResponseReturnValue:
    """Deploy BPMN (and the forms it names) as new versions (admin, process owner); all or nothing."""
    files: dict[str, bytes] = {}
    if request.mimetype in ("application/xml", "text/xml"):
        files["upload.bpmn"] = request.get_data()
    elif request.mimetype == "multipart/form-data":
        for _field, storage in request.files.items(multi=True):
            files[storage.filename or storage.name or "upload.bpmn"] = storage.read()
    else:
        raise ApiError(415, [Problem("send BPMN as application/xml or multipart/form-data, not "
                                     + (request.mimetype or "no type"), field="body")])
    results = services().db.run(deploy_bundle, read_bundle(files, services().settings.forms_dir), api_user().username)
    return jsonify(processes=[{"key": r.key, "version": r.version} for r in results]), 201


# ----------------------------------------------------------------------------------------------- cases


def _instance_response(instance_id: int, status: int = 200, worked_on: bool = False) -> ResponseReturnValue:
    """The case as JSON. `worked_on`: the caller has just completed one of its tasks, which is itself a reason
    to see the case (engine.workflow.access.instance_filter), so that is not asked again."""
    with services().db.read() as s:
        if worked_on:
            case = queries.instance_view(s, instance_id)
        else:  # the row read to decide visibility (NotFound) is the one shown: the case is read once
            case = queries.instance_dict(s, queries.get_instance(s, api_user(), instance_id))
    if case is None:
        raise NotFound("no such case")
    return jsonify(case), status


@bp.post("/instances")
@operation({201: InstanceOut}, json_body=InstanceIn, errors=(403,), tag="cases",
           extra=_links(201, ShowInstance=("show_instance", "instance_id", "/id"), **_TASK_LINKS))
def start_instance() -> ResponseReturnValue:
    """Start a case of the newest version of a process; 422 with the reason when the policy refuses."""
    data = body(InstanceIn)
    with services().db.read() as s:
        if latest_definition(s, data.process) is None:
            raise Invalid("no such process", [Problem(f"no process '{data.process}' is deployed", field="process")])
    instance_id = services().runtime.start(api_user(), data.process, data.data)
    return _instance_response(instance_id, 201)


def _day_start(day: str | None, zone: ZoneInfo) -> datetime | None:
    """The first instant of a calendar day in the deployment's time zone."""
    return datetime.combine(date.fromisoformat(day), time(0), zone) if day is not None else None


@bp.get("/instances")
@operation({200: InstancePage}, query_model=InstanceFilters, query_status=400, tag="cases",
           extra=_links(200, ShowInstance=("show_instance", "instance_id", "/items/0/id")))
def instances() -> ResponseReturnValue:
    """The cases the caller may see, newest first, as pages of `items` with a `next` cursor.

    The same cases GET /instances/{id} shows: admin and HR all of them; anyone else the cases they started,
    are the subject of, or have (or had) a task in, theirs or their group's; OCPE also the secondments. Filters combine;
    `started_after` is inclusive and `started_before` exclusive, both whole days in the deployment's time zone."""
    filters = query(InstanceFilters)
    zone = ZoneInfo(services().settings.timezone)
    started_from, started_before = _day_start(filters.started_after, zone), _day_start(filters.started_before, zone)
    if started_from is not None and started_before is not None and started_before <= started_from:
        raise _bad_query("started_before", "Must be a later day than started_after.")
    with services().db.read() as s:
        items, last = queries.instance_page(
            s, api_user(), process=filters.process, status=filters.status, subject=filters.subject,
            started_from=started_from, started_before=started_before, before_id=filters.cursor, limit=filters.limit)
    return jsonify(items=items, next=str(last) if last is not None else None)


@bp.get(f"/instances/<{ID}:instance_id>")
@operation({200: InstanceOut}, errors=(404,), tag="cases", extra=_links(200, **_TASK_LINKS))
def show_instance(instance_id: int) -> ResponseReturnValue:
    """A case: status, data, open tasks, waiting timers, audit trail."""
    return _instance_response(instance_id)


@bp.get("/tasks")
@operation({200: TaskPage}, query_model=Page, tag="tasks", extra=_links(
    200, ShowTask=("show_task", "task_id", "/items/0/id"), CompleteTask=("complete_task", "task_id", "/items/0/id")))
def tasks() -> ResponseReturnValue:
    """Open tasks the caller may work on, oldest first, as pages of `items` with a `next` cursor."""
    page = query(Page)
    with services().db.read() as s:
        items, next_cursor = queries.inbox(s, api_user(), after=page.cursor,
                                           limit=page.limit)
    return jsonify(items=items, next=str(next_cursor) if next_cursor is not None else None)


@bp.get(f"/tasks/<{ID}:task_id>")
@operation({200: TaskDetail}, errors=(404,), tag="tasks")
def show_task(task_id: int) -> ResponseReturnValue:
    """A task with its form and the data the form starts from; `workable` says whether the caller may complete it."""
    with services().db.read() as s:
        task, workable = queries.get_task(s, api_user(), task_id)
        form = queries.task_form(s, task)
        out: dict[str, Any] = queries.task_dict(task)
        out.update(form={"schema": form["schema"], "ui_schema": form["ui_schema"]}, data=form["data"],
                   workable=workable, instructions=task.instructions)
    return jsonify(out)


@bp.post(f"/tasks/<{ID}:task_id>/complete")
@operation({200: InstanceOut}, json_body=CompleteIn, errors=(403, 404, 409), tag="tasks",
           extra=_links(200, ShowInstance=("show_instance", "instance_id", "/id"), **_TASK_LINKS))
def complete_task(task_id: int) -> ResponseReturnValue:
    """Complete a task with its form data; answers with the case. 409 when the task is no longer open."""
    instance_id = services().runtime.complete_task(api_user(), task_id, body(CompleteIn).data)
    return _instance_response(instance_id, worked_on=True)


@bp.get("/groups")
@operation({200: GroupList}, roles=("admin", "process_owner", "hr"), tag="groups")
def groups() -> ResponseReturnValue:
    """Every work group a lane may name, with its members."""
    with services().db.read() as s:
        return jsonify(items=groups_service.list_groups(s))


@bp.post("/groups")
@operation({201: GroupOut}, json_body=GroupIn, roles=("admin",), errors=(409,), tag="groups")
def create_group() -> ResponseReturnValue:
    """Add a work group; 409 naming `name` when one has it, 422 naming an unknown member or organisation."""
    data = body(GroupIn)
    group = services().db.run(groups_service.create_group, api_user(), data.name, data.organisation, data.members,
                              role_lanes())
    return jsonify(group), 201


@bp.put("/groups/<name>/members")
@operation({200: GroupOut}, json_body=MembersIn, roles=("admin",), errors=(404,), tag="groups")
def set_group_members(name: str) -> ResponseReturnValue:
    """Replace a work group's members."""
    return jsonify(services().db.run(groups_service.set_members, api_user(), name, body(MembersIn).members))


@bp.post(f"/instances/<{ID}:instance_id>/messages")
@operation({200: InstanceOut}, json_body=MessageIn, errors=(403, 404), tag="cases",
           extra=_links(200, ShowInstance=("show_instance", "instance_id", "/id"), **_TASK_LINKS))
def send_message(instance_id: int) -> ResponseReturnValue:
    """Deliver a BPMN message (or signal, by its name) that the case is waiting for, with its payload; 404 when the
    case waits for no such message. Whoever may work the case's tasks, and admins, may send it."""
    message = body(MessageIn)
    services().runtime.send_message(api_user(), instance_id, message.name, message.data)
    return _instance_response(instance_id, worked_on=True)


@bp.post("/messages")
@operation({201: MessageStartOut}, json_body=MessageIn, roles=("admin", "hr", "process_owner"), tag="cases")
def start_by_message() -> ResponseReturnValue:
    """Start every deployed process whose message start event has this name, with the payload (none: an empty
    list)."""
    message = body(MessageIn)
    started = services().runtime.start_by_message(api_user(), message.name, message.data)
    return jsonify(instances=started), 201


# ----------------------------------------------------------------------------------------------- the document


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    """The OpenAPI 3.1 document of this API."""
    return jsonify(document())


@bp.get("/docs")
def docs() -> ResponseReturnValue:
    """The API reference as a plain page rendered on the server from the OpenAPI document (no scripts, no CDN)."""
    return render_template("api/docs.html", **docs_page_context(document()))
