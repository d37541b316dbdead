"""Map domain errors to HTTP: JSON for the API, a page for people."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from engine.core.errors import Conflict, EngineError, Forbidden, Invalid, NotFound, Problem, Unavailable

STATUS = {NotFound: 404, Forbidden: 403, Conflict: 409, Invalid: 422, Unavailable: 503}


def status_of(exc: EngineError) -> int:
    """The HTTP status of a domain error."""
    for cls, code in STATUS.items():
        if isinstance(exc, cls):
            return code
    return 400


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def too_long() -> ResponseReturnValue:
    """414 for an address longer than the app reads (web.MAX_URL_CHARS)."""
    message = "The address is too long: at most 4096 characters of path and query."
    if _wants_json():
        return jsonify(errors=[{"message": message}]), 414
    return render_template("error.html", code=414, message=message, problems=[]), 414


def bad_request(message: str, field: str | None = None) -> ResponseReturnValue:
    """400 with `message` (naming `field` when given): JSON on the API, the error page elsewhere."""
    problem = Problem(message, field=field)
    if _wants_json():
        return jsonify(errors=[problem.as_dict()]), 400
    return render_template("error.html", code=400, message=message if field is None else f"{field}: {message}",
                           problems=[]), 400


def init_app(app: Flask) -> None:
    """Register the handlers."""

    @app.errorhandler(EngineError)
    def _engine_error(exc: EngineError) -> ResponseReturnValue:
        code = status_of(exc)
        headers = {"Retry-After": "2"} if code == 503 else {}
        if _wants_json():
            return jsonify(errors=[p.as_dict() for p in exc.problems]), code, headers
        return render_template("error.html", code=code, message=exc.message, problems=exc.problems), code, headers

    @app.errorhandler(OperationalError)
    def _database_down(exc: OperationalError) -> ResponseReturnValue:
        app.logger.warning("database unavailable on a read: %s", exc.orig)
        return _engine_error(Unavailable("the database is not answering just now; try again in a moment"))

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> ResponseReturnValue:
        message = "The form expired or was not sent from this site. Go back, reload and try again."
        return render_template("error.html", code=400, message=message, problems=[]), 400

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> ResponseReturnValue:
        code = exc.code or 500
        if _wants_json():
            # keep the exception's own headers (Allow on a 405, WWW-Authenticate...), but answer in JSON
            headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
            return jsonify(errors=[{"message": exc.description or exc.name}]), code, headers
        return render_template("error.html", code=code, message=exc.description, problems=[]), code

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> ResponseReturnValue:
        app.logger.exception("unhandled error")
        if _wants_json():
            return jsonify(errors=[{"message": "internal error; it has been logged"}]), 500
        return render_template("error.html", code=500, message="Something went wrong; it has been logged.",
                               problems=[]), 500
