"""Login, logout and the guards every view uses."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import Blueprint, Flask, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from engine.core.errors import EngineError, Invalid, NotFound
from engine.people.logins import (
    LOGIN_REQUESTS_PER_CLIENT,
    LoginPolicy,
    attempt_login,
    end_session,
    login_overview,
    session_user,
    start_session,
)
from engine.people.logins import sign_out_everywhere as sign_out_everywhere_step
from engine.people.models import ROLES, User
from engine.people.ratelimit import Limit, RateLimited
from engine.people.users import set_password_of, set_roles_of
from web import services

bp = Blueprint("auth", __name__)
F = TypeVar("F", bound=Callable[..., Any])


def init_app(app: Flask) -> None:
    """Load the logged-in user for every request."""

    @app.before_request
    def _load_user() -> None:
        if services().settings.demo_mode:  # demo time travel: every process follows the shared offset
            from engine.core import demo_clock

            demo_clock.sync(services().db)
        g.user = None
        session_id = session.get("sid")
        if isinstance(session_id, str) and request.endpoint != "static":
            user = session_user(services().db, session_id, services().settings)
            if user is None:
                session.clear()  # ended: logout elsewhere, password changed, signed out, idle or too old
            g.user = user

    @app.context_processor
    def _inject() -> dict[str, Any]:
        return {"current_user": g.get("user"), "demo_mode": services().settings.demo_mode}


def current_user() -> User:
    """The logged-in user (only inside login_required views)."""
    return cast(User, g.user)


def login_required(view: F) -> F:
    """Send anonymous visitors to the login page."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.get("user") is None:
            return redirect(url_for("auth.login", next=request.full_path))
        return view(*args, **kwargs)

    return cast(F, wrapped)


def roles_required(*roles: str) -> Callable[[F], F]:
    """Allow only users holding one of `roles`."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user().has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorator


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths: never an open redirect."""
    if not target:
        return url_for("tasks.inbox")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("tasks.inbox")
    return target


def _client() -> str:
    return request.remote_addr or "unknown"


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """The login form (throttled as the API's token exchange is: engine.people.logins)."""
    error, status, headers = None, 200, {}
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        try:
            user_id = attempt_login(services().db, username, password, _client(), "web", login_policy(),
                                    login_request_limit())
        except RateLimited as exc:
            error, status = f"Too many attempts. Wait {_duration(exc.retry_after)} and try again.", 429
            headers = {"Retry-After": str(exc.retry_after)}
        else:
            if user_id is None:
                error, status = "Unknown username or wrong password.", 401
            else:
                session.clear()
                session["sid"] = start_session(services().db, user_id, _client())
                return redirect(_safe_next(request.args.get("next")))
    demo: dict[str, Any] = {}
    if services().settings.demo_mode:  # the demo explains itself: who to log in as, with the documented password
        from engine.workflow.demo import DEMO_PASSWORD, PEOPLE

        demo = {"demo_logins": [(person[0], person[1]) for person in PEOPLE], "demo_password": DEMO_PASSWORD}
    return render_template("login.html", error=error, **demo), status, headers


def _duration(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"{math.ceil(seconds / 60)} minutes"


def _configured_limit(*keys: str) -> Limit | None:
    """The first of the configuration keys that is set, as COUNT/SECONDS; a malformed one is logged, not fatal."""
    for key in keys:
        value = current_app.config.get(key)
        if value is None:
            continue
        try:
            return Limit.parse(str(value))
        except ValueError:
            current_app.logger.warning("ignoring %s=%r: expected COUNT/SECONDS", key, value)
    return None


def login_policy() -> LoginPolicy:
    """The login throttle; NTPSWF_LOGIN_FAILURE_LIMIT (or the older NTPSWF_API_LOGIN_FAILURE_LIMIT) sets the
    failures of one username from one address that cost nothing (COUNT/SECONDS)."""
    limit = _configured_limit("LOGIN_FAILURE_LIMIT", "API_LOGIN_FAILURE_LIMIT")
    return LoginPolicy() if limit is None else LoginPolicy.with_free_failures(limit)


def login_request_limit() -> Limit:
    """Login requests from one address; NTPSWF_LOGIN_REQUEST_LIMIT (or NTPSWF_API_TOKEN_LIMIT), COUNT/SECONDS."""
    return _configured_limit("LOGIN_REQUEST_LIMIT", "API_TOKEN_LIMIT") or LOGIN_REQUESTS_PER_CLIENT


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """End the session, on the server too: the cookie never opens a page again."""
    session_id = session.get("sid")
    if isinstance(session_id, str):
        end_session(services().db, session_id)
    session.clear()
    flash("You are logged out.")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password() -> ResponseReturnValue:
    """Change one's own password: the current one first; every session and API token of the login ends."""
    errors: dict[str, str] = {}
    if request.method == "POST":
        current = request.form.get("current_password", "")
        new = request.form.get("new_password", "")
        if new != request.form.get("confirm_password", ""):
            errors["confirm_password"] = "The two new passwords differ."  # noqa: S105 - a message
        user = current_user()
        try:
            if attempt_login(services().db, user.username, current, _client(), "web", login_policy(),
                             login_request_limit()) is None:
                errors["current_password"] = "This is not your current password."  # noqa: S105 - a message
        except RateLimited as exc:
            errors["current_password"] = f"Too many attempts. Wait {_duration(exc.retry_after)} and try again."
        if not errors:
            try:
                services().db.run(set_password_of, user.username, new, user.username)
            except Invalid as exc:
                errors["new_password"] = "; ".join(p.message for p in exc.problems)
            else:
                session.clear()
                flash("Your password is changed. Every session of yours has ended: log in with the new password.")
                return redirect(url_for("auth.login"))
    return render_template("account_password.html", errors=errors), 422 if errors else 200


@bp.get("/admin/logins")
@roles_required("admin")
def logins() -> ResponseReturnValue:
    """Every login with its roles and live sessions; an administrator signs a login out everywhere here."""
    with services().db.read() as s:
        items = login_overview(s, services().settings)
    return render_template("admin/logins.html", items=items, roles=ROLES)


@bp.post("/admin/logins/<int:user_id>/sign-out")
@roles_required("admin")
def sign_out_everywhere(user_id: int) -> ResponseReturnValue:
    """End every web session and API token of a login."""
    name, ended = services().db.run(sign_out_everywhere_step, user_id, current_user().username)
    flash(f"{name} is signed out everywhere ({ended} session{'s' if ended != 1 else ''} and tokens ended).")
    return redirect(url_for("auth.logins"))


@bp.post("/admin/logins/<int:user_id>/roles")
@roles_required("admin")
def set_roles(user_id: int) -> ResponseReturnValue:
    """Give or take away roles (administrators only; each change audited)."""
    roles = [r for r in request.form.getlist("role") if r in ROLES] or ["staff"]
    try:
        name = services().db.run(set_roles_of, current_user(), user_id, roles)
    except NotFound:
        abort(404)
    except EngineError as exc:
        flash("; ".join(p.message for p in exc.problems))
    else:
        flash(f"The roles of {name} are saved.")
    return redirect(url_for("auth.logins"))
