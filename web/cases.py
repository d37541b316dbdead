"""Cases: the list, one case's page (where it stands, who did what and when, the data), start, cancel."""

from __future__ import annotations

import json

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from engine.core.errors import Invalid
from engine.workflow import queries
from engine.workflow import timeline as case_timeline
from engine.workflow.definitions import list_latest
from web import services, timeline_svg
from web.auth import current_user, login_required

bp = Blueprint("cases", __name__, url_prefix="/cases")


@bp.get("/")
@login_required
def index() -> ResponseReturnValue:
    """The cases the user may see."""
    status = request.args.get("status") or None
    with services().db.read() as s:
        rows = queries.list_instances(s, current_user(), status=status)
        items = [{"id": r.id, "title": r.title, "status": r.status, "process": r.process_key,
                  "started_at": r.started_at, "updated_at": r.updated_at} for r in rows]
    return render_template("cases.html", items=items, status=status)


@bp.get("/<int:instance_id>")
@login_required
def show(instance_id: int) -> ResponseReturnValue:
    """One case, with its dates and timers as a timeline (a picture and the same marks as a list)."""
    with services().db.read() as s:
        row = queries.get_instance(s, current_user(), instance_id)
        case = queries.instance_dict(s, row)
        timeline = case_timeline.build(s, row, services().settings.timezone)
    return render_template("case.html", case=case, data_json=json.dumps(case["data"], indent=2, sort_keys=True),
                           timeline_svg=timeline_svg.render(timeline, f"timeline-{instance_id}"),
                           timeline_rows=timeline_svg.rows(timeline), timeline_overdue=len(timeline.overdue))


@bp.route("/new", methods=["GET", "POST"])
@login_required
def start() -> ResponseReturnValue:
    """Start a case: pick the process and give the data it starts from."""
    with services().db.read() as s:
        processes = [{"key": d.key, "name": d.name, "version": d.version} for d in list_latest(s)]
    errors: dict[str, list[str]] = {}
    form = request.form
    if request.method == "POST":
        key = form.get("process", "")
        data = {k: v.strip() for k, v in form.items() if k not in ("process", "csrf_token") and v.strip()}
        try:
            instance_id = services().runtime.start(current_user(), key, data)
        except Invalid as exc:
            for p in exc.problems:
                errors.setdefault(p.field or "", []).append(p.message)
        else:
            flash("The case has started.")
            return redirect(url_for("cases.show", instance_id=instance_id))
    return render_template("start.html", processes=processes, errors=errors, form=form), 422 if errors else 200


@bp.post("/<int:instance_id>/cancel")
@login_required
def cancel(instance_id: int) -> ResponseReturnValue:
    """Cancel a running case with a reason."""
    services().runtime.cancel(current_user(), instance_id, request.form.get("reason", ""))
    flash("The case was cancelled.")
    return redirect(url_for("cases.show", instance_id=instance_id))
