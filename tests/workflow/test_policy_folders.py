"""Issue 17: the move into policy folders changes no behaviour. A database made by the code before the move
(fixtures_move/before_issue_17.sql.gz: an SQLite dump written at 813d623 with the demo people, the three processes
deployed, a pay progression case waiting for the employee's submission and a placement application just started,
at the tests' frozen clock) keeps working: the moved files deploy as the versions it holds (same content hash, no
new version), and its cases run on to the end."""

from __future__ import annotations

import gzip
import sqlite3
from pathlib import Path

from sqlalchemy import select

from engine.core.config import Settings
from engine.core.db import Database
from engine.workflow.demo import deploy_processes
from engine.workflow.models import ProcessDefinition
from engine.workflow.runtime import Runtime
from tests.conftest import PROJECT_ROOT
from tests.policies.pay_progression.test_pay_progression import DECIDE_YES, RECOMMEND_YES, SUBMIT
from tests.workflow.driver import Driver
from web.cli import upgrade_database

DUMP = Path(__file__).parent / "fixtures_move" / "before_issue_17.sql.gz"


def _database_from_before_the_move(tmp_path: Path) -> str:
    path = tmp_path / "before.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.executescript(gzip.decompress(DUMP.read_bytes()).decode("utf-8"))
    url = f"sqlite:///{path}"
    upgrade_database(url)  # nothing to do: the move adds no revision, the tables keep their names
    return url


def test_arch_cases_started_before_the_move_run_on_and_the_moved_files_deploy_unchanged(tmp_path: Path) -> None:
    url = _database_from_before_the_move(tmp_path)
    settings = Settings(database_url=url, forms_dir=PROJECT_ROOT / "forms", processes_dir=PROJECT_ROOT / "processes")
    db = Database(url)
    try:
        runtime = Runtime(db, settings)
        with db.read() as s:
            hashes = {d.key: d.content_hash for d in s.scalars(select(ProcessDefinition))}
        deployed = deploy_processes(runtime)  # processes/<policy>/ and forms/<policy>/, after the move
        assert {d.key for d in deployed} == set(hashes) == {"pay_progression", "performance_agreement", "secondment"}
        assert not any(d.created for d in deployed), deployed  # the same content hash: no new version
        with db.read() as s:
            assert {d.key: d.content_hash for d in s.scalars(select(ProcessDefinition))} == hashes

        drive = Driver(runtime, restore=True)
        case, placement = 1, 2
        assert drive.open_tasks(case) == ["make_submission"] and drive.open_tasks(placement) == ["apply"]
        drive.complete(case, "make_submission", "employee", SUBMIT)
        drive.complete(case, "recommend", "supervisor", RECOMMEND_YES)
        drive.complete(case, "decide", "manager", DECIDE_YES)
        row = drive.instance(case)
        assert row.status == "completed" and row.data["outcome"] == "progressed"
        assert drive.open_task(placement, "apply").assignee is not None  # the application still opens for its person
    finally:
        db.dispose()
