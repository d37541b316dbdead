"""Determination 19 in the browser: a case's record for the personnel file, its administration and case actions.

- /cases/<id>/record (and .csv): who decided what, when and with what reason, ready to print; whoever may see the
  case may see and export its record (engine.workflow.queries.get_instance decides; a case one may not see is 404).
  The page offers the actions its reader may take, as the engine decides them.
- /d19/settings: the periods the text fixes (and the choices where it is silent), with their clause and
  source; administrators change them, HR sees them.
- /d19/pay-points: the ordered pay points of each classification (D19-1); administrators maintain them.
- case actions posted from a case's record page: appoint another person approved by the CEO, apply an
  approved progression to the people record, start the pay progression cycle from an agreement.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from engine.core.errors import Conflict, Forbidden, Invalid, NotFound
from engine.policies.pay_progression import services as d19
from engine.policies.pay_progression import settings as d19_settings
from engine.policies.pay_progression.record import case_record, record_csv
from engine.workflow import queries
from engine.workflow.access import may_view_instance
from engine.workflow.models import ProcessInstance
from web import services
from web.auth import current_user, login_required, roles_required

bp = Blueprint("d19", __name__, url_prefix="/d19")
records_bp = Blueprint("records", __name__)
#: What the app registers for this policy (engine.workflow.registry.ProcessPackage.web).
blueprints = (records_bp, bp)


def _errors(exc: Invalid | Conflict) -> dict[str, list[str]]:
    """Problems by field ("" for the form as a whole), as the templates show them."""
    errors: dict[str, list[str]] = {}
    for p in exc.problems:
        errors.setdefault(p.field or "", []).append(p.message)
    return errors or {"": [str(exc)]}


# ------------------------------------------------------------------------------------------ settings


@bp.route("/settings", methods=["GET", "POST"])
@roles_required("admin", "hr")
def settings() -> ResponseReturnValue:
    """The settings in force; administrators may change them."""
    errors: dict[str, list[str]] = {}
    posted: dict[str, str] = {}
    if request.method == "POST":
        if not current_user().has_role("admin"):
            abort(403)
        posted = {k: v for k, v in request.form.items() if k.startswith("d19.")}
        try:
            changed = services().db.run(d19_settings.save, current_user().username, posted)
        except Invalid as exc:
            errors = _errors(exc)
        else:
            flash(f"Saved ({len(changed)} changed). Cases started from now on use these values." if changed
                  else "Nothing changed.")
            return redirect(url_for("d19.settings"))
    with services().db.read() as s:
        items = d19_settings.listing(s)
    for item in items:
        if item["key"] in posted:
            item["value"] = posted[item["key"]]
    return render_template("pay_progression/settings.html", items=items, errors=errors,
                           editable=current_user().has_role("admin")), 422 if errors else 200


# ------------------------------------------------------------------------------------------ pay points


def _pay_points_page(errors: dict[str, list[str]], form: dict[str, Any], status: int = 200) -> ResponseReturnValue:
    with services().db.read() as s:
        rows = d19_settings.pay_point_rows(s)
    return render_template("pay_progression/pay_points.html", rows=rows, errors=errors, form=form,
                           editable=current_user().has_role("admin")), status


@bp.get("/pay-points")
@roles_required("admin", "hr")
def pay_points() -> ResponseReturnValue:
    """Pay points by classification, lowest first."""
    return _pay_points_page({}, {})


@bp.post("/pay-points")
@bp.post("/pay-points/<int:pay_point_id>")
@roles_required("admin")
def save_pay_point(pay_point_id: int | None = None) -> ResponseReturnValue:
    """Add a pay point, or change one."""
    form = {k: request.form.get(k, "") for k in ("classification", "code", "ordinal", "annual_salary")}
    try:
        services().db.run(d19_settings.save_pay_point, current_user().username, form, pay_point_id)
    except (Invalid, Conflict) as exc:
        return _pay_points_page(_errors(exc), {**form, "id": pay_point_id}, 409 if isinstance(exc, Conflict) else 422)
    flash(f"Saved pay point {form['code'].strip().upper()}.")
    return redirect(url_for("d19.pay_points"))


@bp.post("/pay-points/<int:pay_point_id>/delete")
@roles_required("admin")
def delete_pay_point(pay_point_id: int) -> ResponseReturnValue:
    """Remove a pay point nobody is on."""
    try:
        services().db.run(d19_settings.delete_pay_point, current_user().username, pay_point_id)
    except Conflict as exc:
        return _pay_points_page(_errors(exc), {}, 409)
    flash("The pay point was removed.")
    return redirect(url_for("d19.pay_points"))


# ------------------------------------------------------------------------------------------ case actions


@bp.route("/cases/<int:instance_id>/appoint", methods=["GET", "POST"])
@login_required
def appoint(instance_id: int) -> ResponseReturnValue:
    """Appoint another person approved by the CEO to a role in a case (D19-6, D19-7, D19-8, D19-11)."""
    errors: dict[str, list[str]] = {}
    form = {k: request.form.get(k, "") for k in ("lane", "username", "reason", "approved_by")}
    if request.method == "POST":
        try:
            d19.appoint(services().runtime, current_user(), instance_id, form["lane"], form["username"].strip(),
                        form["reason"], form["approved_by"].strip() or None)
        except Invalid as exc:
            errors = _errors(exc)
        else:
            flash("The appointment is recorded; the role's open tasks moved to the person appointed.")
            with services().db.read() as s:
                row = s.get(ProcessInstance, instance_id)
                visible = row is not None and may_view_instance(s, current_user(), row)
            return redirect(url_for("records.show", instance_id=instance_id) if visible else url_for("tasks.inbox"))
    else:
        with services().db.read() as s:
            row = s.get(ProcessInstance, instance_id)
            if row is None or not d19.may_appoint_in(s, current_user(), row):
                if row is not None and row.process_key == d19.PROCESS and may_view_instance(s, current_user(), row):
                    raise Forbidden("only the CEO of the employee's organisation, a delegate, or HR on their behalf "
                                    "may appoint")
                raise NotFound("no such case")
    return render_template("pay_progression/appoint.html", instance_id=instance_id, lanes=d19.APPOINTABLE, form=form,
                           errors=errors, hr=current_user().has_role("admin", "hr")), 422 if errors else 200


@bp.post("/cases/<int:instance_id>/apply-progression")
@roles_required("admin", "hr")
def apply_progression(instance_id: int) -> ResponseReturnValue:
    """Move the employee to the new pay point in the people record (D19-4)."""
    point = d19.apply_progression(services().runtime, current_user(), instance_id)
    flash(f"The people record now shows pay point {point}.")
    return redirect(url_for("records.show", instance_id=instance_id))


@bp.post("/agreements/<int:instance_id>/start-cycle")
@login_required  # the engine decides who may (d19.may_start_cycle_from)
def start_cycle(instance_id: int) -> ResponseReturnValue:
    """Start the pay progression cycle from a recorded performance agreement (D19-3.1)."""
    case = d19.start_cycle(services().runtime, current_user(), instance_id)
    flash("The pay progression cycle has started.")
    return redirect(url_for("cases.show", instance_id=case))


@records_bp.get("/cases/<int:instance_id>/record")
@login_required
def show(instance_id: int) -> ResponseReturnValue:
    """Who decided what, when and with what reason: the case's record, ready to print."""
    user = current_user()
    with services().db.read() as s:
        row = queries.get_instance(s, user, instance_id)
        record = case_record(s, row)
        actions = {  # the engine decides who may do what; the page only offers it
            "appoint": d19.may_appoint_in(s, user, row),
            "apply": d19.may_apply_progression(s, user, row),
            "start_cycle": d19.may_start_cycle_from(s, user, row),
        }
    return render_template("pay_progression/record.html", record=record, actions=actions, lanes=d19.APPOINTABLE)


@records_bp.get("/cases/<int:instance_id>/record.csv")
@login_required
def export(instance_id: int) -> ResponseReturnValue:
    """The history as CSV, one row per entry."""
    with services().db.read() as s:
        row = queries.get_instance(s, current_user(), instance_id)
        text = record_csv(case_record(s, row))
    return Response(text, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="case-{instance_id}-record.csv"',
        "Cache-Control": "no-store"})
