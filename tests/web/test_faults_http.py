"""Faults under load over HTTP: a worker killed mid-completion, PostgreSQL restarted. Loopback only, bounded."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from engine.core.db import Database
from engine.core.models import AuditEvent
from engine.workflow.models import HumanTask, ProcessInstance
from tests.conftest import IN_CI, POSTGRES_URL, PROJECT_ROOT, require

NTPSWF = [sys.executable, "-m", "web.cli"]
MODEL = PROJECT_ROOT / "benchmarks" / "three_tasks.bpmn"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(port: int, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method="POST" if data else "GET")
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, _body(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _body(exc.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException):
        return 0, None


def _body(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"{}")
    except ValueError:  # a page, or gunicorn's own answer for a worker that died mid-request
        return raw.decode(errors="replace")


class Server:
    """`ntpswf serve` (no scheduler) over a database, with one login and the three-task process."""

    def __init__(self, url: str, tmp: Path) -> None:
        self.url = url
        self.env = {**os.environ, "NTPSWF_DATABASE_URL": url, "NTPSWF_SECRET_KEY": "faults",
                    "PYTHONPATH": str(PROJECT_ROOT)}
        run: dict[str, Any] = {"cwd": PROJECT_ROOT, "env": self.env, "check": True, "capture_output": True,
                               "timeout": 120}
        subprocess.run([*NTPSWF, "db", "upgrade"], **run)
        subprocess.run([*NTPSWF, "user", "add", "loader", "--role", "hr", "--password-stdin"],
                       input=b"ferry lantern 2026\n", **run)
        subprocess.run([*NTPSWF, "deploy", str(MODEL)], **run)
        self.port = _port()
        self.log = (tmp / "serve.log").open("wb")
        self.proc = subprocess.Popen([*NTPSWF, "serve", "--no-scheduler", "--port", str(self.port), "--workers", "1"],
                                     cwd=PROJECT_ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.wait_up()
        status, body = _call(self.port, "/api/v1/auth/token", {"username": "loader", "password": "ferry lantern 2026"})
        assert status == 200, body
        self.token = body["token"]

    def wait_up(self, seconds: float = 30) -> None:
        deadline = time.time() + seconds
        while time.time() < deadline:
            if _call(self.port, "/login")[0] == 200:
                return
            time.sleep(0.1)
        raise AssertionError("the server did not come back")

    def workers(self) -> list[int]:
        out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(self.proc.pid)], capture_output=True, text=True,
                             check=False).stdout
        return [int(line.split()[0]) for line in out.splitlines() if line.strip()]

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.log.close()


def _drive(server: Server, cases: int, stop: threading.Event, results: list[int]) -> None:
    for _ in range(cases):
        if stop.is_set():
            return
        status, case = _call(server.port, "/api/v1/instances", {"process": "bench_three_tasks", "data": {"n": 1}},
                             server.token)
        results.append(status)
        while status == 201 and case and case.get("tasks"):
            status, case = _call(server.port, f"/api/v1/tasks/{case['tasks'][0]['id']}/complete", {"data": {}},
                                 server.token)
            results.append(status)
            if status != 200:
                break


def _consistent(url: str) -> None:
    """Whatever was interrupted, every case is whole: one open task per running case, one completion per task."""
    db = Database(url)
    try:
        with db.read() as s:
            for case in s.scalars(select(ProcessInstance)):
                open_tasks = s.scalar(select(func.count()).select_from(HumanTask).where(
                    HumanTask.instance_id == case.id, HumanTask.state == "open"))
                assert open_tasks == (1 if case.status == "running" else 0), case.id
                done = s.scalar(select(func.count()).select_from(HumanTask).where(
                    HumanTask.instance_id == case.id, HumanTask.state == "completed"))
                logged = s.scalar(select(func.count()).select_from(AuditEvent).where(
                    AuditEvent.instance_id == case.id, AuditEvent.kind == "task_completed"))
                assert done == logged, case.id
            if url.startswith("sqlite"):
                assert s.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    finally:
        db.dispose()


def test_a_worker_killed_mid_completion_loses_nothing_and_is_replaced(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kill.sqlite3'}"
    server = Server(url, tmp_path)
    try:
        stop, results = threading.Event(), []
        driver = threading.Thread(target=_drive, args=(server, 60, stop, results))
        driver.start()
        time.sleep(1.0)
        (victim,) = server.workers()
        os.kill(victim, signal.SIGKILL)  # in the middle of the stream of completions
        driver.join(timeout=120)
        stop.set()
        server.wait_up()
        assert server.workers() and server.workers() != [victim]  # gunicorn replaced the worker
        assert 200 in results and results.count(0) + sum(r >= 500 for r in results) <= 3
        _consistent(url)
        _drive(server, 2, threading.Event(), results)  # and it works again
        assert results[-1] == 200
    finally:
        server.stop()


def test_postgresql_restarted_under_load_recovers_by_itself(tmp_path: Path) -> None:
    require(bool(POSTGRES_URL), "NTPSWF_TEST_POSTGRES_URL is not set (PostgreSQL tests skipped)")
    ctl = shutil.which("pg_ctlcluster")
    require(ctl is not None and os.geteuid() == 0, "restarting PostgreSQL needs pg_ctlcluster and root")
    if not IN_CI and not os.environ.get("NTPSWF_TEST_RESTART_POSTGRES"):
        pytest.skip("restarts the shared PostgreSQL server; runs in CI or with NTPSWF_TEST_RESTART_POSTGRES=1")
    assert POSTGRES_URL is not None
    db = Database(POSTGRES_URL)
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    db.dispose()
    server = Server(POSTGRES_URL, tmp_path)
    version = sorted(os.listdir("/etc/postgresql"))[0]
    try:
        stop, results = threading.Event(), []
        driver = threading.Thread(target=_drive, args=(server, 40, stop, results))
        driver.start()
        time.sleep(1.0)
        subprocess.run([ctl, "--skip-systemctl-redirect", version, "main", "restart"], check=True, timeout=60)
        driver.join(timeout=180)
        stop.set()
        assert set(results) <= {0, 200, 201, 503}, results  # errors during the restart are clean 503s
        _drive(server, 3, threading.Event(), results)
        assert results[-1] == 200  # and it recovered without a restart of ours
        _consistent(POSTGRES_URL)
    finally:
        server.stop()
