"""Login, logout and the guards every view uses."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import Blueprint, Flask, abort, flash, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from engine.models import User
from engine.users import authenticate
from web import services

bp = Blueprint("auth", __name__)
F = TypeVar("F", bound=Callable[..., Any])


def init_app(app: Flask) -> None:
    """Load the logged-in user for every request."""

    @app.before_request
    def _load_user() -> None:
        if services().settings.demo_mode:  # demo time travel: every process follows the shared offset
            from engine import demo_clock

            demo_clock.sync(services().db)
        user_id = session.get("user_id")
        g.user = None
        if user_id is not None:
            with services().db.read() as s:
                user = s.get(User, user_id)
                if user is not None and user.active:
                    _ = user.person  # load while the session is open
                    s.expunge(user)
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


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """The login form."""
    error = None
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        with services().db.read() as s:
            user = authenticate(s, username, password)
            user_id = user.id if user else None
        if user_id is None:
            error = "Unknown username or wrong password."
        else:
            session.clear()
            session["user_id"] = user_id
            return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", error=error), 401 if error else 200


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """End the session."""
    session.clear()
    flash("You are logged out.")
    return redirect(url_for("auth.login"))
