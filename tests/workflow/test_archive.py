"""Archiving finished cases keeps their history and drops only the workflow state."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from flask import Flask

from engine.core.clock import CLOCK
from engine.workflow.archive import archive_to_file
from engine.workflow.queries import instance_dict
from engine.workflow.runtime import Runtime
from tests.workflow.driver import Driver, deploy_file

MODEL = Path(__file__).parent / "timer_models" / "parallel.bpmn"


def _cases(runtime: Runtime) -> tuple[int, int]:
    deploy_file(runtime, MODEL)
    d = Driver(runtime)
    user = d.user("hr")
    finished = runtime.start(user, "parallel_review", {})
    for name in ("left", "right"):
        runtime.complete_task(user, d.open_task(finished, name).id, {})
    running = runtime.start(user, "parallel_review", {})
    return finished, running


def test_archive_writes_the_record_and_keeps_the_history(org: Runtime, tmp_path: Path) -> None:
    finished, running = _cases(org)
    out = tmp_path / "archive.jsonl"
    assert archive_to_file(org.db, timedelta(days=365), out) == 0  # too recent
    CLOCK.advance(timedelta(days=366))
    assert archive_to_file(org.db, timedelta(days=365), out) == 1
    assert archive_to_file(org.db, timedelta(days=365), out) == 0  # once only
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["id"] == finished and record["status"] == "completed"
    assert [e["kind"] for e in record["events"]].count("task_completed") == 2
    d = Driver(org)
    assert d.instance(finished).serialized == "" and d.instance(running).serialized != ""
    with org.db.read() as s:
        row = d.instance(finished)
        s.add(row)
        kinds = [e["kind"] for e in instance_dict(s, row)["events"]]
    assert kinds[-1] == "archived" and "task_completed" in kinds
    assert d.open_tasks(running) == ["left", "right"]


def test_archive_command(app: Flask, app_org: Runtime, tmp_path: Path) -> None:
    _cases(app_org)
    CLOCK.advance(timedelta(days=30))
    result = app.test_cli_runner().invoke(args=["archive", "--older-than-days", "7", "--out",
                                                str(tmp_path / "a.jsonl")])
    assert result.exit_code == 0, result.output
    assert "archived 1 finished case" in result.output
