"""The thin Flask front end: app factory, one blueprint per area, the REST API."""

from __future__ import annotations

import importlib
import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFProtect

from engine.core import clock
from engine.core.config import Settings
from engine.core.db import Database
from engine.workflow.registry import REGISTRY
from engine.workflow.runtime import Runtime

csrf = CSRFProtect()
#: The longest path and query string the app reads; longer is 414 (gunicorn reads lines up to 8190 bytes).
MAX_URL_CHARS = 4096


def _secret_key(instance_path: Path) -> str:
    """NTPSWF_SECRET_KEY, or a random key kept in instance/ so sessions survive a restart."""
    env = os.environ.get("NTPSWF_SECRET_KEY")
    if env:
        return env
    instance_path.mkdir(parents=True, exist_ok=True)
    key_file = instance_path / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def create_app(settings: Settings | None = None, test_config: dict[str, Any] | None = None) -> Flask:
    """Build the application: settings from NTPSWF_* (or given), database, runtime, blueprints."""
    app = Flask(__name__, instance_relative_config=True)
    settings = settings or Settings.from_env()
    app.config.from_mapping(
        SECRET_KEY=_secret_key(Path(app.instance_path)),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.https,
        SESSION_COOKIE_NAME="__Host-session" if settings.https else "session",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_absolute_hours),
        WTF_CSRF_TIME_LIMIT=None,
        MAX_CONTENT_LENGTH=8 * 1024 * 1024,
    )
    app.config.from_prefixed_env("NTPSWF")
    from web.converters import BoundedIntConverter, BoundedRequest

    app.url_map.converters["int"] = BoundedIntConverter  # ids past any table's are 404, not an overflow
    app.request_class = BoundedRequest  # and ?after=<31 digits> is as if not given, not an overflow
    if test_config:
        app.config.update(test_config)
    clock.install()
    db = Database(settings.database_url)
    app.extensions["ntpswf"] = Services(db, settings, Runtime(db, settings))
    csrf.init_app(app)
    _register_views(app, settings)
    _install_request_checks(app, settings)
    return app


def _register_views(app: Flask, settings: Settings) -> None:
    """The command line, template filters, error pages, the generic blueprints and each loaded policy's pages."""
    from web import admin, api, auth, cases, cli, errors, formatting, hr, people, studio, studio_dmn, tasks

    cli.register(app)
    app.add_template_filter(clause_label)
    formatting.register(app, settings.timezone)
    auth.init_app(app)
    errors.init_app(app)
    for blueprint in (auth.bp, tasks.bp, cases.bp, people.bp, api.bp, admin.bp, studio.bp, studio_dmn.bp, hr.bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(importlib.import_module("web.studio_lab").bp)  # the scenario lab (issue 20)
    for package in REGISTRY.packages.values():  # each loaded policy's pages (ProcessPackage.web)
        if package.web is not None:
            for blueprint in importlib.import_module(package.web).blueprints:
                app.register_blueprint(blueprint)
    csrf.exempt(api.bp)  # the API authenticates with bearer tokens, not cookies


def _install_request_checks(app: Flask, settings: Settings) -> None:
    """What every request and answer goes through: unreadable input refused, security headers, no caching."""

    @app.before_request
    def _refuse_unreadable_input() -> ResponseReturnValue | None:
        # An over-long address is refused before any view reads it: JSON on /api/, the error page elsewhere.
        from web import errors

        if len(request.full_path) > MAX_URL_CHARS:
            return errors.too_long()
        # NUL is in no name, date or text a person types, and PostgreSQL refuses it in text: refuse it up front.
        # (The API's own routes answer a NUL in their path as an unknown name: 404.)
        if "\x00" in request.path and not request.path.startswith("/api/"):
            return errors.bad_request("The address holds a NUL character (%00).")
        for values in (request.args, request.form):
            for key, value in values.items(multi=True):
                if "\x00" in key or "\x00" in value:
                    return errors.bad_request("Must not contain a NUL character (%00).", field=key.replace("\x00", ""))
        return None

    @app.after_request
    def _security_headers(response: Response) -> Response:
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if settings.https:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if request.endpoint != "static":
            # pages and API answers carry personal data: no browser or proxy keeps a copy
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.teardown_appcontext
    def _forget_user(_exc: BaseException | None) -> None:
        g.pop("user", None)


def clause_label(clause: str | None) -> str:
    """'D19-7' -> 'Determination 19, cl. 7'; 'MP-H' -> 'Mobility policy, home organisation' (each policy package
    names its own clauses)."""
    return REGISTRY.clause_label(clause) if clause else ""


class Services:
    """What the views use: the database (read sessions), settings and the runtime service."""

    def __init__(self, db: Database, settings: Settings, runtime: Runtime) -> None:
        self.db = db
        self.settings = settings
        self.runtime = runtime


def services() -> Services:
    """The current app's services."""
    from flask import current_app

    svc: Services = current_app.extensions["ntpswf"]
    return svc
