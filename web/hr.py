"""HR's yearly bulk work, on the web and on the command line.

- Import people from a CSV export: upload, preview (new / updated / unchanged per row, every bad row with its
  line and field), confirm; all of it in one transaction or nothing (`engine.people.csv_import`).
- Start the year's pay progression cycles for every officer whose assessment date falls in a window, with a
  progress bar the page polls (and that degrades to a refreshing page without scripts), then a summary of who
  was started and who was skipped and why (`engine.policies.pay_progression.cycles`).
"""

from __future__ import annotations

import sys
import threading
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import click
from flask import Blueprint, Flask, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask.cli import AppGroup, with_appcontext
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from engine.core.clock import CLOCK
from engine.core.errors import Conflict, Invalid, Problem
from engine.people import csv_import as people_import
from engine.people.models import User
from engine.policies.pay_progression import cycles as bulk
from engine.policies.pay_progression import new_starters as agreement_setup
from engine.policies.pay_progression import timing as policy
from engine.workflow.registry import REGISTRY
from web import services
from web.auth import current_user, roles_required

bp = Blueprint("hr", __name__, url_prefix="/hr")
HR_ROLES = ("admin", "hr")
_THREADS = "ntpswf_hr_threads"


# ------------------------------------------------------------------------------------------------ index


@bp.get("/")
@roles_required(*HR_ROLES)
def index() -> ResponseReturnValue:
    """HR tools: the two bulk actions and the latest runs."""
    with services().db.read() as s:
        pending = agreement_setup.pending_setups(s)
    return render_template("hr/index.html", jobs=bulk.recent_jobs(services().db), pending=pending)


# ------------------------------------------------------------------------------------------------ people import


def _plan_page(plan: people_import.ImportPlan, filename: str, job_id: int | None, status: int,
               message: str | None = None) -> ResponseReturnValue:
    return render_template("hr/import.html", plan=plan, rows=people_import.plan_rows(plan), filename=filename,
                           job_id=job_id, message=message, columns=people_import.COLUMNS), status


@bp.get("/people/import")
@roles_required(*HR_ROLES)
def import_form() -> ResponseReturnValue:
    """The upload form."""
    return render_template("hr/import.html", plan=None, rows=[], filename="", job_id=None, message=None,
                           columns=people_import.COLUMNS)


@bp.post("/people/import")
@roles_required(*HR_ROLES)
def import_preview() -> ResponseReturnValue:
    """Read the uploaded file and show what importing it would change; nothing is written yet."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        plan = people_import.ImportPlan(errors=[people_import.RowError(0, "file", "choose a CSV file to upload")])
        return _plan_page(plan, "", None, 422)
    raw = upload.read(people_import.MAX_BYTES + 1)
    text, errors = people_import.decode(raw)
    user = current_user()
    if text is None:
        return _plan_page(people_import.ImportPlan(errors=errors), upload.filename, None, 422)
    plan = people_import.import_people(services().db, text, user.username, user.has_role("admin"), dry_run=True)
    if not plan.ok:
        return _plan_page(plan, upload.filename, None, 422)
    job_id = people_import.stage(services().db, user.username, upload.filename, text, plan)
    return _plan_page(plan, upload.filename, job_id, 200)


@bp.post("/people/import/<int:job_id>")
@roles_required(*HR_ROLES)
def import_confirm(job_id: int) -> ResponseReturnValue:
    """Import the previewed file: all rows in one transaction, only if the plan is still what was shown."""
    user = current_user()
    db = services().db
    filename, text, fingerprint = people_import.staged(db, job_id, user.username)
    plan = people_import.import_people(db, text, user.username, user.has_role("admin"), expected=fingerprint)
    if not plan.ok:
        return _plan_page(plan, filename, None, 422, "The records changed since the preview and the file no "
                                                     "longer imports cleanly. Nothing was imported.")
    if plan.fingerprint() != fingerprint:
        people_import.restage(db, job_id, plan)
        return _plan_page(plan, filename, job_id, 409, "The records changed since the preview. Nothing was "
                                                       "imported: check the new preview and confirm again.")
    people_import.finish_staged(db, job_id, plan)
    outcomes = REGISTRY.people_recorded(services().runtime, user, user.username, _recorded(plan))
    flash(f"Imported {filename}: {plan.count('new')} new, {plan.count('updated')} updated, "
          f"{plan.count('unchanged')} unchanged." + "".join(f" {o.message}." for o in outcomes if o.message))
    return redirect(url_for("people.index"))


def _recorded(plan: people_import.ImportPlan) -> list[str]:
    """The people an import recorded in a classification: new ones, and those whose classification changed."""
    return [r.username for r in plan.rows if r.status == "new"
            or (r.status == "updated" and "classification" in r.changes)]


# ------------------------------------------------------------------------------------------------ agreement set-ups


@bp.post("/agreement-setups")
@roles_required(*HR_ROLES)
def start_agreement_setups() -> ResponseReturnValue:
    """Start the performance agreement set-up (D19-3.3) of one pending person, or of all of them."""
    user = current_user()
    with services().db.read() as s:
        pending = [p["username"] for p in agreement_setup.pending_setups(s)]
    chosen = request.form.get("username")
    usernames = pending if chosen in (None, "", "*") else [u for u in pending if u == chosen]
    setup = agreement_setup.start_setups(services().runtime, user, user.username, usernames)
    flash(agreement_setup.describe(setup) or "Nothing to start: everyone covered has a set-up.")
    return redirect(url_for("hr.index"))


# ------------------------------------------------------------------------------------------------ annual cycles


def _window(form: Any) -> tuple[date, date]:
    problems: list[Problem] = []
    dates: dict[str, date] = {}
    for name in ("from", "to"):
        try:
            dates[name] = policy.parse_date(str(form.get(name, "")))
        except ValueError:
            problems.append(Problem("Must be a date (YYYY-MM-DD).", field=name))
    if problems:
        raise Invalid("the window has errors", problems)
    bulk.check_window(dates["from"], dates["to"])
    return dates["from"], dates["to"]


def _default_window() -> dict[str, str]:
    # Cases should start at least two months before the assessment date (the invitation is due then, D19-3.2).
    today = CLOCK.now().date()
    start = policy.add_months(today, 2)
    return {"from": start.isoformat(), "to": (policy.add_months(start, 1) - timedelta(days=1)).isoformat()}


@bp.route("/annual", methods=["GET", "POST"])
@roles_required(*HR_ROLES)
def annual() -> ResponseReturnValue:
    """Choose the window; POST shows who would get a case (with their dates) and who would not, and why."""
    form = request.form if request.method == "POST" else _default_window()
    errors: dict[str, list[str]] = {}
    cycles: list[bulk.Cycle] | None = None
    skips: list[bulk.Skip] = []
    if request.method == "POST":
        try:
            window_start, window_end = _window(request.form)
            with services().db.read() as s:
                cycles, skips = bulk.preview_cycles(s, services().settings, window_start, window_end)
        except Invalid as exc:
            for p in exc.problems:
                errors.setdefault(p.field or "", []).append(p.message)
    return render_template("hr/annual.html", form=form, errors=errors, cycles=cycles, skips=skips,
                           jobs=bulk.recent_jobs(services().db)), 422 if errors else 200


def _run_in_background(app: Flask, job_id: int, user: User) -> None:
    runtime = services().runtime

    def work() -> None:
        with app.app_context():
            bulk.run_job(runtime, job_id, user, user.username)

    thread = threading.Thread(target=work, name=f"annual-cycles-{job_id}", daemon=True)
    app.extensions.setdefault(_THREADS, {})[job_id] = thread
    thread.start()


def wait_for_jobs(app: Flask, timeout: float = 60) -> None:
    """Wait for the background runs this process started (tests and a clean shutdown)."""
    for thread in list(app.extensions.get(_THREADS, {}).values()):
        thread.join(timeout)


@bp.post("/annual/start")
@roles_required(*HR_ROLES)
def annual_start() -> ResponseReturnValue:
    """Start the run in the background and go to its progress page."""
    try:
        window_start, window_end = _window(request.form)
        job_id = bulk.create_job(services().db, current_user().username, window_start, window_end)
    except (Invalid, Conflict) as exc:
        flash(exc.message + (": " + "; ".join(p.message for p in exc.problems) if exc.problems else ""))
        return redirect(url_for("hr.annual"))
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    _run_in_background(app, job_id, current_user())
    return redirect(url_for("hr.job", job_id=job_id))


@bp.get("/annual/<int:job_id>")
@roles_required(*HR_ROLES)
def job(job_id: int) -> ResponseReturnValue:
    """The run's progress (a bar the script updates) and, once it is done, its summary."""
    status = bulk.job_status(services().db, job_id)
    return render_template("hr/job.html", job=status)


@bp.get("/annual/<int:job_id>/progress")
@roles_required(*HR_ROLES)
def job_progress(job_id: int) -> ResponseReturnValue:
    """The run's progress as JSON (what the progress bar polls)."""
    return jsonify(bulk.job_status(services().db, job_id).as_dict())


# ------------------------------------------------------------------------------------------------ command line

people_cli = AppGroup("people", help="People records.")
progression_cli = AppGroup("progression", help="Pay progression (Determination 19).")


def _actor(username: str | None) -> tuple[User | None, str, bool]:
    """The login a command acts as (None: the operator, 'cli', trusted like an administrator)."""
    if username is None:
        return None, "cli", True
    with services().db.read() as s:
        user = s.scalars(select(User).where(User.username == username)).first()
        if user is None or not user.active:
            raise click.ClickException(f"no active login named {username!r}")
        _ = user.person
        s.expunge(user)
    if not user.has_role(*HR_ROLES):
        raise click.ClickException(f"{username} is not an HR or admin login")
    return user, user.username, user.has_role("admin")


@people_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="show what would change; change nothing")
@click.option("--as", "as_user", default=None, help="the HR or admin login to record as the importer")
@with_appcontext
def import_cmd(file: Path, dry_run: bool, as_user: str | None) -> None:
    """Import people from a CSV export (one transaction: every row, or none when any row is bad)."""
    user, actor, is_admin = _actor(as_user)
    plan = people_import.import_people(services().db, file.read_bytes(), actor, is_admin, dry_run=dry_run)
    for row in people_import.plan_rows(plan):
        changes = ", ".join(f"{c['field']}: {c['before'] or '-'} -> {c['after'] or '-'}" for c in row["changes"])
        detail = changes if row["status"] == "updated" else ""
        login = f" [{row['login']}]" if row["login"] else ""
        click.echo(f"line {row['line']}: {row['username']}: {row['status']}{' (' + detail + ')' if detail else ''}"
                   f"{login}")
    for error in plan.errors:
        click.echo(f"error: {error}", err=True)
    summary = f"{plan.count('new')} new, {plan.count('updated')} updated, {plan.count('unchanged')} unchanged"
    if not plan.ok:
        raise click.ClickException(f"{len(plan.errors)} problem(s); nothing was imported")
    click.echo(("dry run, nothing imported: " if dry_run else "imported: ") + summary)
    if not dry_run:
        for outcome in REGISTRY.people_recorded(services().runtime, user, actor, _recorded(plan)):
            if outcome.message:
                click.echo(outcome.message)


def _progress_printer(tty: bool) -> Any:
    """A progress line: redrawn in place on a terminal, one line per officer in a log."""
    seen = {"started": 0, "skipped": 0}

    def show(status: bulk.JobStatus) -> None:
        if tty:
            filled = round(30 * status.done / max(status.total, 1))
            click.echo(f"\r[{'#' * filled}{'.' * (30 - filled)}] {status.done}/{status.total}  "
                       f"started {len(status.started)}  skipped {len(status.skipped)}", nl=False)
            if status.finished:
                click.echo()
            return
        for key, entries in (("started", status.started), ("skipped", status.skipped)):
            for entry in entries[seen[key]:]:
                seen[key] += 1
                click.echo(f"[{seen['started'] + seen['skipped']}/{status.total}] {entry['username']}: {key}")

    return show


def _summary(status: bulk.JobStatus) -> None:
    click.echo(f"started {len(status.started)}, skipped {len(status.skipped)} ({status.status})")
    for s in status.started:
        click.echo(f"  started  {s['username']}: case #{s['instance']}, assessment date {s['assessment_date']} "
                   f"(agreement from {s['agreement_start']}; {s['basis']})")
    for s in status.skipped:
        click.echo(f"  skipped  {s['username']}: {s['reason']}")
    if status.error:
        click.echo(f"error: {status.error}", err=True)


@progression_cli.command("start-cycles")
@click.option("--from", "window_start", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="first assessment date of the window (YYYY-MM-DD)")
@click.option("--to", "window_end", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="last assessment date of the window (YYYY-MM-DD)")
@click.option("--dry-run", is_flag=True, help="list who would get a case, with their dates; start nothing")
@click.option("--as", "as_user", default=None, help="the HR or admin login the cases are started as")
@with_appcontext
def start_cycles_cmd(window_start: Any, window_end: Any, dry_run: bool, as_user: str | None) -> None:
    """Start the annual pay progression cycle of every officer whose assessment date falls in the window."""
    user, actor, _admin = _actor(as_user)
    first, last = window_start.date(), window_end.date()
    db = services().db
    try:
        if dry_run:
            with db.read() as s:
                cycles, skips = bulk.preview_cycles(s, services().settings, first, last)
            for c in cycles:
                click.echo(f"would start {c.username}: agreement {c.agreement_start} to {c.assessment_date} "
                           f"({c.basis})" + ("; the invitation would already be overdue" if c.invite_overdue else ""))
            for sk in skips:
                click.echo(f"would skip  {sk.username}: {sk.reason}")
            click.echo(f"dry run: {len(cycles)} would start, {len(skips)} would be skipped before starting")
            return
        job_id = bulk.create_job(db, actor, first, last)
    except (Invalid, Conflict) as exc:
        raise click.ClickException("; ".join(p.message for p in exc.problems)) from exc
    status = bulk.run_job(services().runtime, job_id, user, actor, progress=_progress_printer(sys.stdout.isatty()))
    _summary(status)
    if status.status != "finished":
        raise click.ClickException("the run did not finish")


def register_cli(app: Flask) -> None:
    """Attach `ntpswf people import` and `ntpswf progression start-cycles`."""
    for group in (people_cli, progression_cli):
        if group.name not in app.cli.commands:
            app.cli.add_command(group)


