"""Placements: OCPE's register (with statistics, charts, CSV and the report to stakeholders), a placement's page,
the published opportunities, applying, publishing, and the secondee's voluntary self-identification."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from engine.core.clock import CLOCK
from engine.core.errors import Invalid
from engine.people.models import Person
from engine.policies.secondment import process as placement_process
from engine.policies.secondment import projection as placement_register
from engine.policies.secondment import register as reg
from engine.policies.secondment import self_identification as self_id
from engine.policies.secondment import services as placements
from engine.policies.secondment import settings as placement_config
from engine.workflow import queries
from engine.workflow.access import may_view_instance
from engine.workflow.models import ProcessInstance
from web import services
from web.auth import current_user, login_required, roles_required

bp = Blueprint("register", __name__, url_prefix="/register")
#: What the app registers for this policy (engine.workflow.registry.ProcessPackage.web).
blueprints = (bp,)

#: Who keeps and reads the register (MP-O): OCPE, and HR and administrators who see every case.
REGISTER_ROLES = ("ocpe", "admin", "hr")


def _refresh() -> None:
    svc = services()
    placement_register.refresh_register(svc.db, svc.settings.timezone)


def _errors(exc: Invalid) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for p in exc.problems:
        errors.setdefault(p.field or "", []).append(p.message)
    return errors


def _filters() -> tuple[reg.Period, str | None, dict[str, list[str]]]:
    """The period and status from the query string; invalid ones are reported and ignored."""
    errors: dict[str, list[str]] = {}
    try:
        period = reg.parse_period(request.args.get("from"), request.args.get("to"))
    except Invalid as exc:
        errors.update(_errors(exc))
        period = reg.Period()
    try:
        status = reg.parse_status(request.args.get("status"))
    except Invalid as exc:
        errors.update(_errors(exc))
        status = None
    return period, status, errors


# ---------------------------------------------------------------------------------------------- OCPE's register


@bp.get("/")
@roles_required(*REGISTER_ROLES)
def index() -> ResponseReturnValue:
    """Every placement with its parties, dates, status, objectives and reporting; the statistics of the period."""
    _refresh()
    period, status, errors = _filters()
    with services().db.read() as s:
        limit = reg.threshold(s)
        rows = [reg.placement_row(p) for p in reg.placements(s, period, status)]
        summary = reg.summary(s, period, limit)
        diversity = reg.diversity(s, period, limit)
    args = {**period.query(), **({"status": status} if status else {})}
    return render_template("secondment/index.html", rows=rows, summary=summary, diversity=diversity, period=period,
                           status=status, statuses=placement_process.STATUS_LABELS, errors=errors, limit=limit,
                           args=args, form=request.args), 422 if errors else 200


@bp.get("/report")
@roles_required(*REGISTER_ROLES)
def report() -> ResponseReturnValue:
    """The report to stakeholders for a period: counts only, small counts suppressed (MP-O)."""
    _refresh()
    period, _status, errors = _filters()
    with services().db.read() as s:
        limit = reg.threshold(s)
        summary = reg.summary(s, period, limit)
        diversity = reg.diversity(s, period, limit)
    return render_template("secondment/report.html", summary=summary, diversity=diversity, period=period,
                           errors=errors, limit=limit, form=request.args, generated=CLOCK.now()), 422 if errors else 200


def _csv(text: str, name: str) -> Response:
    return Response(text, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


def _suffix(period: reg.Period) -> str:
    return "-".join(v for v in period.query().values()) or "all"


@bp.get("/placements.csv")
@roles_required(*REGISTER_ROLES)
def placements_csv() -> ResponseReturnValue:
    """The placements of the period as CSV (the management information base)."""
    _refresh()
    period = reg.parse_period(request.args.get("from"), request.args.get("to"))
    status = reg.parse_status(request.args.get("status"))
    with services().db.read() as s:
        text = reg.placements_csv(reg.placements(s, period, status))
    return _csv(text, f"placements-{_suffix(period)}.csv")


@bp.get("/statistics.csv")
@roles_required(*REGISTER_ROLES)
def statistics_csv() -> ResponseReturnValue:
    """The period's statistics as CSV, with the same suppression as every report."""
    _refresh()
    period = reg.parse_period(request.args.get("from"), request.args.get("to"))
    with services().db.read() as s:
        limit = reg.threshold(s)
        text = reg.statistics_csv(period, [*reg.summary(s, period, limit), *reg.diversity(s, period, limit)])
    return _csv(text, f"placement-statistics-{_suffix(period)}.csv")


# ---------------------------------------------------------------------------------------------- one placement


def _case(s: Session, instance_id: int) -> ProcessInstance:
    row = s.get(ProcessInstance, instance_id)
    user = current_user()
    if row is None or row.process_key != placement_process.PROCESS_KEY or not (
            user.has_role(*REGISTER_ROLES) or may_view_instance(s, user, row)):
        abort(404)
    return row


@bp.get("/<int:instance_id>")
@login_required
def show(instance_id: int) -> ResponseReturnValue:
    """A placement's page: agreement versions and who accepted them, timed steps, concerns (MP-0, MP-L)."""
    _refresh()
    with services().db.read() as s:
        row = _case(s, instance_id)
        detail = reg.placement_detail(s, row.id)
        info = reg.placement_row(detail.placement)
    person = current_user().person
    secondee = person is not None and person.username == detail.placement.secondee
    return render_template("secondment/placement.html", p=detail.placement, info=info, versions=detail.versions,
                           steps=detail.steps, concerns=detail.concerns, statuses=placement_process.STATUS_LABELS,
                           is_secondee=secondee)


# ---------------------------------------------------------------------------------------------- staff


@bp.get("/opportunities")
@login_required
def opportunities() -> ResponseReturnValue:
    """Development opportunities published by home organisations and still open (MP-H)."""
    _refresh()
    today = CLOCK.now().date()
    with services().db.read() as s:
        rows = reg.open_opportunities(s, today)
        names = queries.names_in(s, [p.home_contact for p in rows if p.home_contact])
    return render_template("secondment/opportunities.html", rows=rows, names=names)


@bp.get("/mine")
@login_required
def mine() -> ResponseReturnValue:
    """The placements the user takes part in."""
    _refresh()
    person = current_user().person
    with services().db.read() as s:
        rows = [reg.placement_row(p) | {"secondee_username": p.secondee}
                for p in reg.placements_of(s, person.username)] if person else []
    return render_template("secondment/mine.html", rows=rows, username=person.username if person else None,
                           statuses=placement_process.STATUS_LABELS)


def _to_task(instance_id: int, name: str, message: str) -> ResponseReturnValue:
    flash(message)
    task_id = placements.first_open_task(services().db, instance_id, name)
    if task_id is not None:
        return redirect(url_for("tasks.show", task_id=task_id))
    return redirect(url_for("cases.show", instance_id=instance_id))


@bp.route("/apply", methods=["GET", "POST"])
@login_required
def apply() -> ResponseReturnValue:
    """An employee applies for a placement (MP-E): the case starts and their application form opens."""
    user = current_user()
    if user.person_id is None:
        abort(403, "Only people on record can apply for a placement.")
    with services().db.read() as s:
        person = s.get(Person, user.person_id)
        supervisor = person.supervisor.username if person is not None and person.supervisor is not None else ""
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        try:
            case = placements.apply_for_placement(services().runtime, user,
                                                  request.form.get("home_contact", "").strip() or None)
        except Invalid as exc:
            errors = _errors(exc)
        else:
            return _to_task(case, "apply", "Your application has started: say what you want from the placement.")
    return render_template("secondment/apply.html", errors=errors, supervisor=supervisor,
                           form=request.form), 422 if errors else 200


@bp.route("/publish", methods=["GET", "POST"])
@login_required
def publish() -> ResponseReturnValue:
    """The home organisation publishes a development opportunity (MP-H); the publisher is its contact."""
    user = current_user()
    if user.person_id is None:
        abort(403, "Only people on record can publish an opportunity.")
    if request.method == "POST":
        case = placements.publish_opportunity(services().runtime, user)
        return _to_task(case, "publish_opportunity", "Describe the opportunity; staff see it once you submit.")
    return render_template("secondment/publish.html")


@bp.route("/<int:instance_id>/self-identification", methods=["GET", "POST"])
@login_required
def self_identification(instance_id: int) -> ResponseReturnValue:
    """The secondee's voluntary, confidential answers for OCPE's diversity statistics (MP-O)."""
    db = services().db
    errors: dict[str, list[str]] = {}
    values: dict[str, Any]
    if request.method == "POST":
        values = {q.key: request.form.get(q.key, "") for q in self_id.QUESTIONS}
        try:
            self_id.record_self_identification(db, current_user(), instance_id, values)
        except Invalid as exc:
            errors = _errors(exc)
        else:
            flash("Thank you. Your answers were saved." if any(values.values()) else "Your answers were removed.")
            return redirect(url_for("register.mine"))
    else:
        with db.read() as s:
            values = self_id.self_identification(s, current_user(), instance_id)
    return render_template("secondment/self_identification.html", questions=self_id.QUESTIONS, values=values,
                           errors=errors, instance_id=instance_id), 422 if errors else 200


@bp.route("/settings", methods=["GET", "POST"])
@roles_required("admin", "ocpe")
def settings() -> ResponseReturnValue:
    """The periods the policy leaves open and the suppression threshold, as administrator settings."""
    errors: dict[str, list[str]] = {}
    values: dict[str, Any]
    if request.method == "POST":
        values = {spec.key: request.form.get(spec.key, "") for spec in placement_config.PLACEMENT_SETTINGS}
        try:
            placement_config.save_placement_settings(services().db, current_user(), values)
        except Invalid as exc:
            errors = _errors(exc)
        else:
            flash("Saved. Placements proposed from now on start from these values.")
            return redirect(url_for("register.settings"))
    else:
        with services().db.read() as s:
            values = dict(placement_config.placement_settings(s))
    return render_template("secondment/settings.html", specs=placement_config.PLACEMENT_SETTINGS, values=values,
                           errors=errors), 422 if errors else 200
