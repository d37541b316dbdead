"""Operations pages: incidents (failed timers), in-app notifications, and demo time travel."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from engine.core import demo_clock
from engine.core.clock import CLOCK
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
