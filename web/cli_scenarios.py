"""`ntpswf scenarios run [--process KEY] [FILES...]`: run the scenario library (scenarios/), or the files given,
against the project's processes and forms, each in a throw-away database (engine.workflow.scenarios)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from engine.workflow.scenario_format import ScenarioFormatError, load_scenario, scenario_files
from engine.workflow.scenarios import MODES, project_sources, run_scenarios
from web import services

scenarios_cli = AppGroup("scenarios", help="The scenario library: cases run against the processes (issue 20).")


@scenarios_cli.command("run")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--process", "process", default=None, help="only the scenarios of this process key")
@click.option("--mode", type=click.Choice([*MODES, "both"]), default="both", show_default=True,
              help="straight through, restored from the database before every step, or both")
@click.option("--json", "as_json", is_flag=True, help="print the results as JSON")
def run_cmd(files: tuple[Path, ...], process: str | None, mode: str, as_json: bool) -> None:
    """Run scenarios; exits 1 when any fails, 2 when a file is not a valid scenario."""
    paths = list(files) or scenario_files(process=process)
    try:
        scenarios = [load_scenario(p) for p in paths]
    except ScenarioFormatError as exc:
        raise click.UsageError(str(exc)) from exc
    scenarios = [s for s in scenarios if process is None or s.process == process]
    if not scenarios:
        raise click.UsageError("no scenarios to run" + (f" for the process {process!r}" if process else ""))
    settings = services().settings
    results = run_scenarios(scenarios, project_sources(settings), settings,
                            modes=MODES if mode == "both" else (mode,))
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2, default=str))
    else:
        for result in results:
            click.echo(result.report())
        failed = sum(not r.passed for r in results)
        click.echo(f"{len(results) - failed} passed, {failed} failed")
    if any(not r.passed for r in results):
        raise SystemExit(1)


def register_cli(app: Flask) -> None:
    """Attach `ntpswf scenarios`."""
    if scenarios_cli.name not in app.cli.commands:
        app.cli.add_command(scenarios_cli)
