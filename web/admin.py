"""Operations pages: incidents (failed timers), work groups, in-app notifications, and demo time travel."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from engine.core import demo_clock
from engine.core.clock import CLOCK
from engine.core.errors import Conflict, Invalid, NotFound
from engine.people import groups as groups_service
from engine.workflow.assignment import role_lanes
from engine.workflow.models import Notification, ProcessInstance
from engine.workflow.timers import failed_timers, retry_failed
from web import services
from web.auth import current_user, login_required, roles_required

bp = Blueprint("admin", __name__)


@bp.get("/admin/incidents")
@roles_required("admin")
def incidents() -> ResponseReturnValue:
    """Failed timers and cases in error, with their errors."""
    with services().db.read() as s:
        timers = [{"id": t.id, "instance": t.instance_id, "element": t.element, "name": t.name,
                   "due_at": t.due_at, "attempts": t.attempts, "error": t.last_error} for t in failed_timers(s)]
        broken = [{"id": r.id, "title": r.title, "error": r.error} for r in s.scalars(
            select(ProcessInstance).where(ProcessInstance.status == "error").order_by(ProcessInstance.id))]
    return render_template("admin/incidents.html", timers=timers, broken=broken, now=CLOCK.now(),
                           demo_mode=services().settings.demo_mode)


@bp.post("/admin/timers/<int:timer_id>/retry")
@roles_required("admin")
def retry(timer_id: int) -> ResponseReturnValue:
    """Retry a failed timer."""
    retry_failed(services().runtime, timer_id, current_user().username)
    flash("The timer will be tried again at the next poll.")
    return redirect(url_for("admin.incidents"))


@bp.post("/admin/clock")
@roles_required("admin")
def travel() -> ResponseReturnValue:
    """Demo only: move the shared clock forward so timers and escalations can be seen."""
    if not services().settings.demo_mode:
        abort(404)
    days = request.form.get("days", type=float)
    if days is None or not 0 < days <= 3660:
        flash("Give a number of days between 0 and 3660.")
    else:
        demo_clock.travel(services().db, days)
        now = CLOCK.now().astimezone(ZoneInfo(services().settings.timezone))
        flash(f"The demo clock moved forward {days:g} days; it is now {now:%Y-%m-%d %H:%M %Z}.")
    return redirect(url_for("admin.incidents"))


@bp.get("/admin/groups")
@roles_required("admin", "process_owner", "hr")
def groups() -> ResponseReturnValue:
    """The work groups a lane may name, with their members; administrators add and change them."""
    with services().db.read() as s:
        items = groups_service.list_groups(s)
        lanes = sorted(role_lanes())
    return render_template("admin/groups.html", items=items, lanes=lanes,
                           may_manage=groups_service.may_manage_groups(current_user()), errors={}, form={})


def _usernames(text: str | None) -> list[str]:
    return [u for u in (text or "").replace(",", " ").split() if u]


@bp.post("/admin/groups")
@roles_required("admin")
def create_group() -> ResponseReturnValue:
    """Add a work group (name, organisation, members by username)."""
    form = {k: request.form.get(k, "") for k in ("name", "organisation", "members")}
    try:
        services().db.run(groups_service.create_group, current_user(), form["name"], form["organisation"] or None,
                          _usernames(form["members"]), role_lanes())
    except (Invalid, Conflict) as exc:
        errors: dict[str, list[str]] = {}
        for p in exc.problems:
            errors.setdefault(p.field or "", []).append(p.message)
        with services().db.read() as s:
            items = groups_service.list_groups(s)
        return render_template("admin/groups.html", items=items, lanes=sorted(role_lanes()), may_manage=True,
                               errors=errors, form=form), 422 if isinstance(exc, Invalid) else 409
    flash(f"The group {' '.join(form['name'].split())} is saved.")
    return redirect(url_for("admin.groups"))


@bp.post("/admin/groups/members")
@roles_required("admin")
def set_group_members() -> ResponseReturnValue:
    """Replace a work group's members."""
    name = request.form.get("group", "")
    try:
        services().db.run(groups_service.set_members, current_user(), name, _usernames(request.form.get("members")))
    except Invalid as exc:
        flash("; ".join(p.message for p in exc.problems))
    except NotFound:
        abort(404)
    else:
        flash(f"The members of {name} are saved.")
    return redirect(url_for("admin.groups"))


@bp.get("/notifications")
@login_required
def notifications() -> ResponseReturnValue:
    """The logged-in person's notices, newest first."""
    user = current_user()
    items: list[Notification] = []
    if user.person_id is not None:
        with services().db.read() as s:
            items = list(s.scalars(select(Notification).where(Notification.person_id == user.person_id)
                                   .order_by(Notification.id.desc()).limit(200)))
    return render_template("notifications.html", items=items)


@bp.post("/notifications/read")
@login_required
def mark_read() -> ResponseReturnValue:
    """Mark all of the person's notices read."""
    user = current_user()
    if user.person_id is not None:
        from engine.workflow.notify import mark_all_read

        mark_all_read(services().db, user.person_id)
    return redirect(url_for("admin.notifications"))
