"""The `ntpswf` command line: a Flask CLI group over the app factory (`flask --app web ...` works too)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, FlaskGroup, with_appcontext
from sqlalchemy import select

from engine.people.models import ROLES
from web import services

db_cli = AppGroup("db", help="Database schema commands.")
user_cli = AppGroup("user", help="Logins.")


def alembic_config(url: str) -> object:
    """The Alembic configuration for the migrations/ folder beside the packages."""
    from alembic.config import Config

    root = Path(__file__).resolve().parent.parent
    cfg = Config()
    cfg.set_main_option("script_location", str(root / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_database(url: str) -> None:
    """Create or migrate the database to the newest revision."""
    from alembic import command

    command.upgrade(alembic_config(url), "heads")  # type: ignore[arg-type]


@db_cli.command("upgrade")
@with_appcontext
def db_upgrade() -> None:
    """Create or migrate the database (Alembic)."""
    upgrade_database(services().settings.database_url)
    click.echo("database is up to date")


@user_cli.command("add")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True, type=click.Choice(ROLES))
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@with_appcontext
def user_add(username: str, roles: tuple[str, ...], password_stdin: bool) -> None:
    """Add a login."""
    from engine.core.errors import EngineError
    from engine.people.users import create_user

    password = sys.stdin.readline().rstrip("\n") if password_stdin else click.prompt(
        "Password", hide_input=True, confirmation_prompt=True)
    try:
        services().db.run(create_user, username, list(roles), password, actor="cli")
    except EngineError as exc:
        raise click.ClickException("; ".join(
            f"{p.field + ': ' if p.field else ''}{p.message}" for p in exc.problems)) from exc
    click.echo(f"added {username} ({', '.join(roles)})")


@user_cli.command("password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@with_appcontext
def user_password(username: str, password_stdin: bool) -> None:
    """Give a login a new password (the password policy applies); every session and API token of it ends."""
    from engine.core.errors import EngineError
    from engine.people.users import set_password_of

    password = sys.stdin.readline().rstrip("\n") if password_stdin else click.prompt(
        "New password", hide_input=True, confirmation_prompt=True)
    try:
        ended = services().db.run(set_password_of, username, password, "cli")
    except EngineError as exc:
        raise click.ClickException("; ".join(
            f"{p.field + ': ' if p.field else ''}{p.message}" for p in exc.problems)) from exc
    click.echo(f"the password of {username} is changed; {ended} sessions and tokens ended")


@user_cli.command("sign-out")
@click.argument("username")
@with_appcontext
def user_sign_out(username: str) -> None:
    """End every web session and API token of a login at once."""
    from engine.core.errors import EngineError
    from engine.people.logins import sign_out_everywhere
    from engine.people.users import login_named

    try:
        _, ended = services().db.run(lambda s: sign_out_everywhere(s, login_named(s, username).id, "cli"))
    except EngineError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"{username} is signed out everywhere ({ended} sessions and tokens ended)")


@click.command("deploy")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as", "actor", default="cli", help="who the deployment is recorded as")
@with_appcontext
def deploy_cmd(files: tuple[Path, ...], actor: str) -> None:
    """Validate and deploy process definitions (with their forms from forms/) as new versions."""
    from engine.core.errors import EngineError
    from engine.workflow.bundles import read_bundle
    from engine.workflow.definitions import deploy

    svc = services()
    try:
        bundle = read_bundle({f.name: f.read_bytes() for f in files}, svc.settings.forms_dir)
        results = svc.db.run(deploy, bundle, actor)
    except EngineError as exc:
        for p in exc.problems:
            click.echo(f"error: {p.element or p.field or ''}: {p.message}", err=True)
        raise click.ClickException(exc.message) from exc
    for r in results:
        click.echo(f"{r.key} version {r.version}" + ("" if r.created else " (unchanged)"))


@click.command("demo")
@with_appcontext
def demo_cmd() -> None:
    """Load the demo organisation, people and cases (idempotent)."""
    from engine.workflow.demo import load_demo

    for line in load_demo(services().runtime):
        click.echo(line)


@click.command("serve")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@click.option("--workers", default=1, type=int, help="WSGI worker processes")
@click.option("--threads", default=4, type=int, help="threads per worker")
@click.option("--no-scheduler", is_flag=True, help="do not run the timer scheduler beside the web server")
def serve_cmd(host: str, port: int, workers: int, threads: int, no_scheduler: bool) -> None:
    """Run the web app with a production WSGI server (gunicorn), and the timer scheduler unless told not to."""
    scheduler = None
    if not no_scheduler:
        # One scheduler process beside all workers: workers never start one, so reloaders or N workers
        # cannot multiply it; the database claims keep firing exactly-once even if someone starts more.
        scheduler = subprocess.Popen([sys.executable, "-m", "web.cli", "scheduler"], env=dict(os.environ))
    try:
        from web.wsgi import serve

        serve(host, port, workers, threads)
    finally:
        if scheduler is not None:
            scheduler.terminate()
            scheduler.wait(timeout=10)


@click.command("archive")
@click.option("--older-than-days", default=365, type=click.IntRange(min=0), show_default=True,
              help="archive cases that ended at least this many days ago")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="append each case's record (JSON lines)")
@with_appcontext
def archive_cmd(older_than_days: int, out: Path | None) -> None:
    """Archive finished cases older than the retention: their history stays, their workflow state goes."""
    from datetime import timedelta

    from engine.workflow.archive import archive_to_file

    count = archive_to_file(services().db, timedelta(days=older_than_days), out)
    click.echo(f"archived {count} finished case(s)")


@click.group("pay-points")
def pay_points_cli() -> None:
    """Pay points per classification (Determination 19, cl. 1), as GET and PUT /api/v1/pay-points do."""


@pay_points_cli.command("list")
@click.option("--classification", default=None, help="one classification's points only")
@with_appcontext
def pay_points_list(classification: str | None) -> None:
    """List the pay points, lowest first, with their annual salary."""
    from engine.policies.pay_progression.settings import pay_point_items

    with services().db.read() as s:
        items = pay_point_items(s, classification.strip().upper() if classification else None)
    for p in items:
        salary = f"{p['annual_salary']:,}" if p["annual_salary"] is not None else "-"
        click.echo(f"{p['classification']}\t{p['ordinal']}\t{p['code']}\t{salary}")
    if not items:
        click.echo("no pay points" + (f" for {classification}" if classification else ""), err=True)


@pay_points_cli.command("set")
@click.argument("classification")
@click.argument("points", nargs=-1, required=True)
@click.option("--as", "as_user", default=None, help="the administrator login to record the change as")
@with_appcontext
def pay_points_set(classification: str, points: tuple[str, ...], as_user: str | None) -> None:
    """Replace CLASSIFICATION's pay points with POINTS, lowest first, each CODE or CODE=SALARY
    (e.g. `ntpswf pay-points set SPAO1 SPAO1-1=120000 SPAO1-2=124000`)."""
    from engine.core.errors import EngineError
    from engine.people.models import User
    from engine.policies.pay_progression.settings import replace_pay_points

    user = None
    if as_user is not None:
        with services().db.read() as s:
            user = s.scalars(select(User).where(User.username == as_user, User.active.is_(True))).first()
            if user is None:
                raise click.ClickException(f"no active login named {as_user!r}")
            s.expunge(user)
    parsed: list[dict[str, object]] = []
    for text in points:
        code, _, salary = text.partition("=")
        salary = salary.replace(",", "").strip()
        if salary and not salary.isdigit():
            raise click.ClickException(f"{text}: the salary must be a whole number of dollars")
        parsed.append({"code": code, "annual_salary": int(salary) if salary else None})
    try:
        items = services().db.run(replace_pay_points, user, as_user or "cli", classification, parsed)
    except EngineError as exc:
        raise click.ClickException("; ".join(
            f"{p.field + ': ' if p.field else ''}{p.message}" for p in exc.problems)) from exc
    click.echo(f"{items[0]['classification']}: " + ", ".join(p["code"] for p in items))


@click.group("register")
def register_group() -> None:
    """OCPE's placement register (kept in step with each case by every save)."""


@register_group.command("rebuild")
@with_appcontext
def register_rebuild() -> None:
    """Rebuild every placement's register rows from its case's history (repair)."""
    from engine.policies.secondment.projection import rebuild_register

    svc = services()
    count = rebuild_register(svc.db, svc.settings.timezone)
    click.echo(f"rebuilt {count} placement(s) from their history")


@click.command("scheduler")
@with_appcontext
def scheduler_cmd() -> None:
    """Run the timer scheduler alone (for deployments with several web processes)."""
    from engine.workflow.timers import run_scheduler_forever

    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    svc = services()
    app.logger.info("timer scheduler polling every %ss", svc.settings.timer_poll_seconds)
    run_scheduler_forever(svc.runtime)


def register(app: Flask) -> None:
    """Attach the commands to the app's CLI (so `flask --app web ...` has them)."""
    for cmd in (db_cli, user_cli, deploy_cmd, demo_cmd, serve_cmd, scheduler_cmd, archive_cmd, pay_points_cli,
                register_group):
        if cmd.name not in app.cli.commands:
            app.cli.add_command(cmd)
    from web.hr import register_cli  # HR bulk work: `people import`, `progression start-cycles`

    register_cli(app)
    from web.cli_scenarios import register_cli as register_scenarios  # `ntpswf scenarios run` (issue 20)

    register_scenarios(app)


def _create() -> Flask:
    from web import create_app

    return create_app()


cli = FlaskGroup(create_app=_create, add_default_commands=False, add_version_option=False,
                 help="NTPS workflows: pay progression and secondments as BPMN processes.")


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="ntpswf")


if __name__ == "__main__":
    main()
