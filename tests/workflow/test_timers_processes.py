"""Several scheduler processes against one PostgreSQL fire each timer exactly once, even when one is killed."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.core.clock import CLOCK
from engine.core.models import AuditEvent
from engine.workflow.models import ProcessInstance, Timer
from engine.workflow.runtime import Runtime
from engine.workflow.timers import TimerPolicy
from tests.conftest import PROJECT_ROOT
from tests.workflow.driver import Driver, deploy_file

MODEL = Path(__file__).parent / "timer_models" / "wait_a_day.bpmn"


@pytest.fixture
def waiting(org: Runtime, db_url: str) -> tuple[Runtime, list[int]]:
    if not db_url.startswith("postgresql"):
        pytest.skip("several scheduler processes need PostgreSQL (SQLite serialises them anyway)")
    deploy_file(org, MODEL)
    d = Driver(org)
    user = d.user("hr")
    cases = [org.start(user, "wait_a_day", {}) for _ in range(300)]
    return org, cases


def _worker(url: str, now: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tests.workflow.scheduler_worker", url, now, *extra],
                            cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})


def _fired_per_case(runtime: Runtime) -> dict[int, int]:
    with runtime.db.read() as s:
        rows = s.execute(select(AuditEvent.instance_id, func.count()).where(AuditEvent.kind == "timer_fired")
                         .group_by(AuditEvent.instance_id)).all()
    return {instance: count for instance, count in rows}


def test_two_scheduler_processes_fire_each_timer_exactly_once(waiting: tuple[Runtime, list[int]]) -> None:
    runtime, cases = waiting
    now = (CLOCK.now() + timedelta(days=1, seconds=1)).isoformat()
    workers = [_worker(runtime.settings.database_url, now) for _ in range(2)]
    totals = []
    for w in workers:
        out, err = w.communicate(timeout=240)
        assert w.returncode == 0, err
        totals.append(int(out.strip()))
    assert sum(totals) == len(cases)  # (on a busy machine one scheduler may finish before the other starts)
    assert _fired_per_case(runtime) == {case: 1 for case in cases}
    with runtime.db.read() as s:
        assert s.scalar(select(func.count()).select_from(ProcessInstance).where(
            ProcessInstance.status == "completed")) == len(cases)


def test_a_scheduler_killed_mid_batch_loses_and_doubles_nothing(waiting: tuple[Runtime, list[int]]) -> None:
    runtime, cases = waiting
    now = CLOCK.now() + timedelta(days=1, seconds=1)
    victim = _worker(runtime.settings.database_url, now.isoformat(), "7")
    victim.communicate(timeout=120)
    assert victim.returncode == -9  # SIGKILL
    with runtime.db.read() as s:
        leased = s.scalar(select(func.count()).select_from(Timer).where(Timer.state == "claimed"))
    assert leased and leased > 0  # the rest of its batch is still leased to the dead process
    after_lease = now + TimerPolicy().lease + timedelta(seconds=1)
    restarted = _worker(runtime.settings.database_url, after_lease.isoformat())
    _out, err = restarted.communicate(timeout=240)
    assert restarted.returncode == 0, err
    assert _fired_per_case(runtime) == {case: 1 for case in cases}
