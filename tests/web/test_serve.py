"""`ntpswf serve` end to end: gunicorn workers, exactly one scheduler beside them, timers firing on time."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

MODEL = PROJECT_ROOT / "benchmarks" / "due_at.bpmn"  # waits until the time given in its data
NTPSWF = [sys.executable, "-m", "web.cli"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[str]:
    out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True, check=False)
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def _api(port: int, path: str, body: dict[str, object] | None = None, token: str | None = None) -> dict[str, object]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method="POST" if data else "GET")
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def test_serve_runs_workers_and_one_scheduler_that_fires_timers(tmp_path: Path) -> None:
    env = {**os.environ, "NTPSWF_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite3'}",
           "NTPSWF_SECRET_KEY": "serve-test", "NTPSWF_TIMER_POLL_SECONDS": "0.2", "PYTHONPATH": str(PROJECT_ROOT)}
    run = {"cwd": PROJECT_ROOT, "env": env, "check": True, "capture_output": True, "timeout": 120}
    subprocess.run([*NTPSWF, "db", "upgrade"], **run)  # type: ignore[call-overload]
    subprocess.run([*NTPSWF, "user", "add", "hr", "--role", "hr", "--password-stdin"], input=b"serve-pass-1\n",
                   **run)  # type: ignore[call-overload]
    subprocess.run([*NTPSWF, "deploy", str(MODEL)], **run)  # type: ignore[call-overload]
    port = _port()
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen([*NTPSWF, "serve", "--port", str(port), "--workers", "2"], cwd=PROJECT_ROOT, env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the server did not start")
        kids = _children(server.pid)
        assert sum("scheduler" in k for k in kids) == 1, kids  # one scheduler, whatever the number of workers
        token = str(_api(port, "/api/v1/auth/token", {"username": "hr", "password": "serve-pass-1"})["token"])
        due = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
        case = _api(port, "/api/v1/instances", {"process": "bench_due_at", "data": {"due": due}}, token)
        assert case["status"] == "running" and case["timers"]
        deadline = time.time() + 20
        while time.time() < deadline:
            case = _api(port, f"/api/v1/instances/{case['id']}", token=token)
            if case["status"] == "completed":
                break
            time.sleep(0.2)
        assert case["status"] == "completed", (case, (tmp_path / "serve.log").read_text()[-3000:])
        fired = [e for e in case["events"] if e["kind"] == "timer_fired"]  # type: ignore[union-attr]
        assert len(fired) == 1
        late = datetime.fromisoformat(fired[0]["at"]) - datetime.fromisoformat(due)
        assert late < timedelta(seconds=2), late  # a 0.2 s poll fires well within a second of the due time
        # Issue 16: an over-long address is a JSON 414 on the API, whether the app or gunicorn refuses it
        for length in (5_000, 9_000):
            with pytest.raises(urllib.error.HTTPError) as refused:
                _api(port, "/api/v1/instances?subject=" + "x" * length, token=token)
            assert refused.value.code == 414 and refused.value.headers["Content-Type"] == "application/json"
            assert "too long" in json.loads(refused.value.read())["errors"][0]["message"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
