"""Issue 17: the move into policy folders changes no behaviour. A database made by the code before the move
(fixtures_move/before_issue_17.sql.gz: an SQLite dump written at 813d623 with the demo people, the three processes
deployed, a pay progression case waiting for the employee's submission and a placement application just started,
at the tests' frozen clock) keeps working: the moved files deploy as the versions it holds, and its cases run on to
the end. Since issue 19 the forms declare cross-field rules (`x-rules`): only the processes whose forms gained rules
get a new version (their forms are the same once the rules are taken out); the others keep their version (same
content hash)."""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path
from typing import Any

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


def _without_rules(forms: dict[str, Any]) -> dict[str, Any]:
    return {name: {k: v for k, v in form.items() if k != "x-rules"} for name, form in forms.items()}


def test_arch_cases_started_before_the_move_run_on_and_the_moved_files_deploy_unchanged(tmp_path: Path) -> None:
    url = _database_from_before_the_move(tmp_path)
    settings = Settings(database_url=url, forms_dir=PROJECT_ROOT / "forms", processes_dir=PROJECT_ROOT / "processes")
    db = Database(url)
    try:
        runtime = Runtime(db, settings)
        with db.read() as s:
            before = {d.key: (d.content_hash, d.forms) for d in s.scalars(select(ProcessDefinition))}
        # issue 19: the processes whose forms now declare rules
        with_rules = {key for key, (_h, forms) in before.items()
                      if any("x-rules" in json.loads((PROJECT_ROOT / "forms" / folder / name).read_text())
                             for name in forms for folder in ("pay_progression", "secondment")
                             if (PROJECT_ROOT / "forms" / folder / name).exists())}
        assert with_rules == {"pay_progression", "performance_agreement", "secondment"}
        deployed = deploy_processes(runtime)  # processes/<policy>/ and forms/<policy>/, after the move
        assert {d.key for d in deployed} == set(before) == {"pay_progression", "performance_agreement", "secondment"}
        assert {d.key for d in deployed if d.created} == with_rules, deployed  # only these got a new version
        with db.read() as s:
            for key, (content_hash, forms) in before.items():
                latest = s.scalars(select(ProcessDefinition).where(ProcessDefinition.key == key)
                                   .order_by(ProcessDefinition.version.desc())).first()
                assert latest is not None
                if key not in with_rules:
                    assert latest.content_hash == content_hash
                    continue
                assert _without_rules(latest.forms) == forms  # the same forms, but for their rules

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
