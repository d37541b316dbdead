"""Faults: the database refusing a write (full, locked) leaves the last committed state whole."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from engine.core.db import Database
from engine.core.errors import Unavailable
from engine.core.models import AuditEvent
from engine.workflow.models import HumanTask, ProcessInstance
from engine.workflow.runtime import Runtime
from tests.workflow.driver import Driver

START = {"employee": "employee", "agreement_start": "2025-06-30", "assessment_date": "2026-06-30"}
INVITE = {"invitation": {"message": "Please submit."}}


def _snapshot(runtime: Runtime, case: int) -> tuple[int, str, int, int]:
    with runtime.db.read() as s:
        row = s.get(ProcessInstance, case)
        assert row is not None
        tasks = s.scalar(select(func.count()).select_from(HumanTask).where(HumanTask.instance_id == case))
        events = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.instance_id == case))
        return row.lock_version, row.serialized, tasks or 0, events or 0


def _sqlite_only(db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite's own failure modes")


def test_disk_full_during_a_completion_changes_nothing_and_recovers(org: Runtime, db_url: str) -> None:
    _sqlite_only(db_url)
    d = Driver(org)
    case = d.start("pay_progression", START)
    before = _snapshot(org, case)
    task = d.open_task(case, "invite_submission")
    full = Database(db_url)  # a pool whose connections see a disk that is full

    @event.listens_for(full.engine, "connect")
    def _cap(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")

    full_runtime = Runtime(full, org.settings)
    with pytest.raises(Unavailable):
        full_runtime.complete_task(d.user("supervisor"), task.id, {"invitation": {"message": "Please submit. " * 60}})
    full.dispose()
    assert _snapshot(org, case) == before
    d.complete(case, "invite_submission", "supervisor", INVITE)  # the disk has room again: it works
    assert d.open_tasks(case) == ["make_submission"]


def test_database_locked_past_the_timeout_is_a_clean_503(org: Runtime, db_url: str, tmp_path: Path) -> None:
    _sqlite_only(db_url)
    d = Driver(org)
    case = d.start("pay_progression", START)
    before = _snapshot(org, case)
    task = d.open_task(case, "invite_submission")
    impatient = Database(db_url, connect_args={"timeout": 0.2, "check_same_thread": False})
    locker = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with pytest.raises(Unavailable):
            Runtime(impatient, org.settings).complete_task(d.user("supervisor"), task.id, INVITE)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
        impatient.dispose()
    assert _snapshot(org, case) == before
    d.complete(case, "invite_submission", "supervisor", INVITE)


def test_a_busy_writer_is_waited_for_not_failed(org: Runtime, db_url: str) -> None:
    _sqlite_only(db_url)
    d = Driver(org)
    case = d.start("pay_progression", START)
    task = d.open_task(case, "invite_submission")
    locker = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False)
    locker.execute("BEGIN IMMEDIATE")
    threading.Timer(0.5, lambda: locker.execute("ROLLBACK")).start()
    org.complete_task(d.user("supervisor"), task.id, INVITE)  # waits for the lock (busy timeout), then goes on
    locker.close()
    assert d.open_tasks(case) == ["make_submission"]

