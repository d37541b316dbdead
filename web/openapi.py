"""OpenAPI from code: spectree validates each API call against pydantic models and publishes the same
models as `/api/v1/openapi.json`.

`operation()` is the one decorator every API view wears. In this order it
1. authenticates the bearer token (401, with `WWW-Authenticate`),
2. checks the login roles the call needs (403),
3. checks that a JSON body is JSON (415 for another media type, 400 when it does not parse),
4. lets spectree validate the body or query against the model (422 naming each field; 400 for a query
   whose call says so),
and it declares the same facts (security, the error answers, extra body types, headers) in the document.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from flask import Response as FlaskResponse
from flask import g, make_response, request
from pydantic import BaseModel, ValidationError
from spectree import Response, SpecTree
from spectree.models import SecureType, SecurityScheme, SecuritySchemeData
from spectree.plugins.flask_plugin import FlaskPlugin
from werkzeug.exceptions import UnsupportedMediaType

from engine.core.errors import Forbidden, Invalid, Problem
from engine.people.models import User
from engine.people.users import user_for_token
from web import services
from web.openapi_models import Errors

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M", bound=BaseModel)

API_VERSION = "1.0.0"
#: JSON nested deeper than this is refused: nothing in the API needs it, and deep nesting costs recursion.
MAX_JSON_DEPTH = 32
DESCRIPTION = """\
The REST API of NTPS workflows (pay progression under Determination 19; the mobility / secondment
policy). JSON everywhere; dates are `YYYY-MM-DD`, times ISO 8601 with an offset.

Get a token with `POST /api/v1/auth/token` and send it as `Authorization: Bearer TOKEN`. Tokens live
12 hours and can be revoked with `DELETE /api/v1/auth/token`.

Every 4xx answer is `{"errors": [{"field" or "element", "message"}]}`. A thing the caller may see but
not change answers 403; a thing whose very existence is private to others answers 404.
"""


class ApiError(Exception):
    """An answer other than the engine's four (401, 400, 429): status, problems and extra headers."""

    def __init__(self, status: int, problems: list[Problem], headers: Mapping[str, str] | None = None) -> None:
        super().__init__(problems[0].message if problems else str(status))
        self.status = status
        self.problems = problems
        self.headers = dict(headers or {})

    def response(self) -> FlaskResponse:
        """The JSON answer."""
        body = {"errors": [p.as_dict() for p in self.problems]}
        return make_response(body, self.status, self.headers)


class _NoResponseValidation(FlaskPlugin):
    """Requests are validated; responses are not re-validated at run time.

    A response that strays from its model is a bug the contract tests and schemathesis catch; in
    production it should reach the client rather than become a 500.
    """

    def validate_response(self, resp: Any, resp_model: Any, skip_validation: bool,
                          force_resp_serialize: bool) -> tuple[Any, None]:
        result: tuple[Any, None] = super().validate_response(resp, None, True, False)
        return result


# ------------------------------------------------------------------------------------ pydantic -> Problem

_PATTERN_MESSAGES = {
    r"^[A-Za-z0-9._-]+$": "letters, digits, '.', '_' and '-' only",
    r"^[A-Za-z0-9._-]*$": "a username: letters, digits, '.', '_' and '-' only",
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$": "Must be a date (YYYY-MM-DD).",
    r"^([0-9]{4}-[0-9]{2}-[0-9]{2})?$": "Must be a date (YYYY-MM-DD).",
    r"^[^\x00@\s]+@[^\x00@\s]+$": "Must be an e-mail address.",
    r"^[^\x00]*[^\x00\s][^\x00]*$": "This field is required (text, not blank).",
    r"^[^\x00]*$": "Must be text without NUL characters.",
    r"^[0-9]{0,9}$": "not a cursor this API gave",
    r"^[0-9]{0,10}$": "not a cursor this API gave",
    r"^[A-Za-z0-9_-]{0,500}$": "not a cursor this API gave",
}


def _message(error: Mapping[str, Any]) -> str:
    """One pydantic error in the words the rest of the project uses."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "This field is required."
    if kind == "string_type":
        return "Must be a string."
    if kind == "bool_type":
        return "Must be true or false."
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return "Must be a whole number."
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "Must be a JSON object."
    if kind == "extra_forbidden":
        return "Unknown parameter."
    if kind == "literal_error":
        return f"Must be one of: {ctx.get('expected', '')}.".replace("'", "")
    if kind == "string_pattern_mismatch":
        return _PATTERN_MESSAGES.get(str(ctx.get("pattern")), "Has the wrong form.")
    if kind == "string_too_short":
        return "This field is required." if ctx.get("min_length") == 1 else (
            f"Must be at least {ctx.get('min_length')} characters.")
    if kind == "string_too_long":
        return f"Must be at most {ctx.get('max_length')} characters."
    if kind in ("greater_than_equal", "less_than_equal"):
        bound = ctx.get("ge", ctx.get("le"))
        return f"Must be {'at least' if kind == 'greater_than_equal' else 'at most'} {bound}."
    return str(error.get("msg", "is not valid"))


def problems_of(exc: ValidationError) -> list[Problem]:
    """Each pydantic error as a Problem naming its (dotted) field; the whole body is `body`."""
    problems = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "body"
        problems.append(Problem(_message(error), field=field))
    return problems


def _before(req: Any, resp: Any, req_validation_error: Exception | None, instance: Any, adapter: Any) -> None:
    """Turn spectree's validation failure into the API's 422 shape (the app's handler renders it)."""
    if isinstance(req_validation_error, ValidationError):
        raise Invalid("the request has errors", problems_of(req_validation_error))


def _before_answering(status: int) -> Callable[..., None]:
    """A spectree hook that answers a validation failure with `status` (and the API's error shape)."""

    def before(req: Any, resp: Any, req_validation_error: Exception | None, instance: Any, adapter: Any) -> None:
        if isinstance(req_validation_error, ValidationError):
            raise ApiError(status, problems_of(req_validation_error))

    return before


spec = SpecTree(
    "flask", backend=_NoResponseValidation, mode="strict", annotations=False, path="api/v1/spectree",
    page_templates={}, title="NTPS workflows REST API", version=API_VERSION, description=DESCRIPTION,
    validation_error_status=422, validation_error_model=Errors, before=_before,
    naming_strategy=lambda model: model.__name__,
    nested_naming_strategy=lambda _parent, child: child,
    security_schemes=[SecurityScheme(name="bearerAuth", data=SecuritySchemeData(
        type=SecureType.HTTP, scheme="bearer",
        description="a token from POST /api/v1/auth/token, sent as `Authorization: Bearer TOKEN`"))],
    security={"bearerAuth": []},
)

#: Parts of the document spectree cannot infer (non-JSON bodies, headers), by operation id.
_EXTRA: dict[str, dict[str, Any]] = {}

_STATUS_TEXT = {
    400: "The request is not readable: a NUL character in it, or a body that is not valid JSON",
    401: "No token, or the token is unknown, expired or revoked",
    403: "The caller may not do this", 404: "No such thing, or the caller may not know it exists",
    409: "The thing changed under the caller", 413: "The body is too large",
    415: "The body is not of a media type this call takes", 422: "The input breaks a schema or a rule",
    414: "The address is too long (path and query over 4096 characters)",
    429: "Too many requests; wait for Retry-After seconds",
}
_QUERY_STATUS_TEXT = "A query parameter is not valid (each bad one is named)"


# ------------------------------------------------------------------------------------ authentication


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, [Problem(message)], {"WWW-Authenticate": 'Bearer realm="ntpswf"'})


def bearer_token() -> str | None:
    """The token of the Authorization header, if it carries a bearer token."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200 or "\x00" in token:
        return None
    return token


def _authenticate() -> User:
    token = bearer_token()
    if token is None:
        raise _unauthorized("a bearer token is required (POST /api/v1/auth/token)")
    with services().db.read() as s:
        user = user_for_token(s, token)  # detached, with its person
    if user is None:
        raise _unauthorized("the token is unknown, expired or revoked")
    return user


def api_user() -> User:
    """The authenticated caller of the current API call."""
    return cast(User, g.api_user)


# ------------------------------------------------------------------------------------ request bodies


def _depth(value: Any, limit: int) -> int:
    """How deeply `value` nests (stops counting past `limit`)."""
    depth, level = 0, [value]
    while level and depth <= limit:
        depth += 1
        nxt: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                nxt.extend(item.values())
            elif isinstance(item, list):
                nxt.extend(item)
        level = nxt
    return depth


#: The body types spectree reads as a form rather than as JSON.
FORM_MIMETYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_json_body() -> None:
    """A body must be JSON (an empty body counts as `{}`); it is parsed once here and cached for spectree."""
    if request.mimetype in FORM_MIMETYPES:
        # spectree validates such a body as a form, leaving no JSON for the view (an AssertionError, a 500), and
        # web/__init__.py has already read it for NUL characters: the API takes JSON only
        raise UnsupportedMediaType(f"send the body as application/json, not {request.mimetype}")
    raw = request.get_data(cache=True)
    if not raw.strip():
        request._cached_json = ({}, {})  # what get_json() hands spectree
        return
    if not request.is_json:
        raise UnsupportedMediaType(f"send the body as application/json, not {request.mimetype or 'no type'}")
    try:
        # NaN and Infinity are not JSON; PostgreSQL's json type would refuse them later as a server error.
        body = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise ApiError(400, [Problem("the body is not valid JSON", field="body")]) from None
    if not isinstance(body, dict):
        raise Invalid("not an object", [Problem("Must be a JSON object.", field="body")])
    if _depth(body, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise Invalid("too deep", [Problem(f"JSON nested deeper than {MAX_JSON_DEPTH} levels", field="body")])
    request._cached_json = (body, body)


def body(model: type[M]) -> M:
    """The validated JSON body of the current call."""
    value = request.context.json  # type: ignore[attr-defined]  # set by spectree
    assert isinstance(value, model)
    return value


def query(model: type[M]) -> M:
    """The validated query string of the current call."""
    value = request.context.query  # type: ignore[attr-defined]  # set by spectree
    assert isinstance(value, model)
    return value


# ------------------------------------------------------------------------------------ the decorator


def operation(
    responses: Mapping[int, Any],
    *,
    json_body: type[BaseModel] | None = None,
    query_model: type[BaseModel] | None = None,
    query_status: int = 422,
    auth: bool = True,
    roles: tuple[str, ...] = (),
    errors: tuple[int, ...] = (),
    tag: str = "",
    extra: Mapping[str, Any] | None = None,
) -> Callable[[F], F]:
    """Validate, authorise and document one API call; see the module docstring for the order.

    A query that breaks `query_model` answers `query_status` (422 unless told: the lists added later answer
    400, as a bad query parameter is a bad request rather than unprocessable content)."""
    codes: dict[str, Any] = {f"HTTP_{code}": model for code, model in responses.items()}
    implied = {*errors, 400, 414}  # any call: a NUL character, an over-long address (web/__init__.py)
    if auth:
        implied.add(401)
    if roles:
        implied.add(403)
    if json_body is not None:
        implied.update((400, 415, 422))
    if query_model is not None:
        implied.add(query_status)
    for code in sorted(implied):
        text = _QUERY_STATUS_TEXT if query_model is not None and code == query_status != 422 else _STATUS_TEXT[code]
        codes[f"HTTP_{code}"] = (Errors, text)
    before = _before if query_status == 422 else _before_answering(query_status)

    def decorate(view: F) -> F:
        validated = spec.validate(json=json_body, query=query_model, resp=Response(**codes),
                                  tags=(tag,) if tag else (), security=None if auth else {},
                                  operation_id=view.__name__, before=before,
                                  validation_error_status=query_status)(view)

        @functools.wraps(validated)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if auth:
                g.api_user = _authenticate()
                if roles and not api_user().has_role(*roles):
                    raise Forbidden(f"only {' and '.join(roles)} logins may do this")
            if json_body is not None:
                _check_json_body()
            return validated(*args, **kwargs)

        if extra:
            _EXTRA[view.__name__] = dict(extra)
        return cast(F, wrapped)

    return decorate


# ------------------------------------------------------------------------------------ the document


def _merge(into: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


_DOCUMENT: dict[str, Any] | None = None


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of /api/v1 (built once per process from the decorated views)."""
    global _DOCUMENT
    if _DOCUMENT is None:
        doc = copy.deepcopy(spec.spec)
        for path_item in doc["paths"].values():
            for op in path_item.values():
                op["description"] = re.sub(r"\s+", " ", op.get("description") or "").strip()
                _merge(op, _EXTRA.get(op["operationId"], {}))
                if "requestBody" not in op and all(p.get("in") == "path" for p in op.get("parameters", [])):
                    op["responses"].pop("422", None)  # spectree adds it everywhere; without input nothing is 422
                for code, response in op["responses"].items():
                    if code == "401":
                        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        doc["tags"] = sorted(doc.get("tags", []), key=lambda t: str(t.get("name")))
        _DOCUMENT = doc
    return _DOCUMENT
