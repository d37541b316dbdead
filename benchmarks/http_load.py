"""HTTP load: a mix of inbox reads and task completions against `ntpswf serve` on loopback.

The database is seeded with FINISHED finished and RUNNING running cases of the three-task benchmark
process (copies of one real case each, so the serialized state is genuine). Each running case belongs to one
of 200 staff, who started it and holds its open task, TASKS_EACH (50) cases per person: a small and a large
database then answer the same inbox request (a full page of 20 out of 50), and only the database around it
grows. Completing a task gives its next one to the same person, so inboxes keep their size under load.
The two databases are built side by side (two SQLite files, or two schemas of the PostgreSQL database given),
each served by its own server, and loaded in alternating rounds, so a change in the machine's load falls on
both alike. Prints throughput and p50/p95/p99 latency per kind of request, and how the per-request cost
changes between the small and the large database (the ratio should stay under 1.3).

Usage: python benchmarks/http_load.py [FINISHED] [RUNNING] [REQUESTS] [DATABASE_URL] [WORKERS]
REQUESTS is per database. Loopback only; bounded by REQUESTS and a 120 s limit per round.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.core.config import Settings  # noqa: E402
from engine.core.db import Database  # noqa: E402
from engine.core.models import AuditEvent  # noqa: E402
from engine.people.models import Person, User  # noqa: E402
from engine.people.users import issue_token  # noqa: E402
from engine.schema import Base  # noqa: E402
from engine.workflow.bundles import read_bundle  # noqa: E402
from engine.workflow.definitions import deploy  # noqa: E402
from engine.workflow.models import HumanTask, ProcessInstance  # noqa: E402
from engine.workflow.runtime import Runtime  # noqa: E402

BPMN = ROOT / "benchmarks" / "three_tasks.bpmn"
STAFF = 200
TASKS_EACH = 50
PHASE_LIMIT_S = 120
SIZES = ("small", "large")
ROUNDS = 4
#: Each client opens a new connection every so many requests. With two keep-alive connections for a whole
#: round, which of several server processes accepted them decided the result: both in one process ran as if
#: there were one (completion p50 about 20 ms against 9 ms on PostgreSQL with two processes).
RECONNECT_EVERY = 10
SERVER_LOG = Path(tempfile.gettempdir()) / "ntpswf-http-load-server.log"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(url: str, finished: int, running: int, schema: str | None = None) -> dict[str, Any]:
    """Build the database (on PostgreSQL: the URL's schema): staff, one real finished and one real running case,
    then copies of them."""
    db = Database(url)
    if db.is_postgres:
        name = schema or "public"
        with db.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"))
    else:
        Base.metadata.drop_all(db.engine)
    Base.metadata.create_all(db.engine)
    runtime = Runtime(db, Settings(database_url=url))
    from engine.people.users import hash_password

    pw = hash_password("bench-password")
    with db.unit_of_work() as uow:
        s = uow.session
        for i in range(STAFF):
            person = Person(username=f"staff{i}", name=f"Staff {i}", email=f"staff{i}@bench.example",
                            classification="AO5")
            s.add(person)
            s.flush()
            from engine.core.clock import CLOCK

            s.add(User(username=f"staff{i}", password_hash=pw, roles=["staff"], person_id=person.id, active=True,
                       created_at=CLOCK.now()))
        deploy(s, read_bundle({BPMN.name: BPMN.read_bytes()}, None), "bench")
        uow.commit()
    with db.read() as s:
        starter = s.scalars(select(User).where(User.username == "staff0")).one()
        _ = starter.person
    done = runtime.start(starter, "bench_three_tasks", {"n": 1})
    while True:
        with db.read() as s:
            task_id = s.scalars(select(HumanTask.id).where(HumanTask.instance_id == done,
                                                           HumanTask.state == "open")).first()
        if task_id is None:
            break
        runtime.complete_task(starter, task_id, {})
    live = runtime.start(starter, "bench_three_tasks", {"n": 2})
    with db.read() as s:
        templates = {r.id: r for r in s.scalars(select(ProcessInstance).where(ProcessInstance.id.in_([done, live])))}
        live_task = s.scalars(select(HumanTask).where(HumanTask.instance_id == live)).one()
        # The first running // TASKS_EACH staff hold the running cases (all 200 once there are 10,000 or more).
        holders = max(1, min(STAFF, running // TASKS_EACH))
        people = [(r.id, r.username) for r in s.execute(select(Person.id, Person.username).order_by(Person.id)
                                                        .limit(holders))]
    _copies(db, templates[done], finished - 1, None, people)
    _copies(db, templates[live], running - 1, live_task, people)
    with db.unit_of_work() as uow:  # tokens for the people the load acts as (issued directly: no login throttling)
        tokens = {user.username: issue_token(uow.session, user)[0] for user in uow.session.scalars(
            select(User).where(User.username.in_([username for _, username in people])))}
        uow.commit()
    # Statistics for the planner and a visibility map (PostgreSQL's index-only scans need it), as a database in
    # service has them: otherwise autovacuum does this work in the middle of the load.
    vacuum = "VACUUM ANALYZE" if db.is_postgres else "ANALYZE"
    with db.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text(vacuum))
    db.dispose()
    return {"tokens": tokens}


def _copies(db: Database, template: ProcessInstance, count: int, task: HumanTask | None,
            people: list[tuple[int, str]]) -> None:
    """Insert COUNT copies of TEMPLATE; a running one is started by, and its open task assigned to, one of PEOPLE."""
    base = {c: getattr(template, c) for c in ("definition_id", "process_key", "title", "status", "data",
                                              "serialized", "started_at", "updated_at", "ended_at")}
    batch = 2_000
    made = 0
    while made < count:
        n = min(batch, count - made)
        with db.unit_of_work() as uow:
            s = uow.session
            owners = [people[(made + k) % len(people)] for k in range(n)] if task is not None else []
            rows = s.execute(insert(ProcessInstance).returning(ProcessInstance.id), [
                {**base, "started_by": owners[k][1] if owners else template.started_by, "subject_id": None,
                 "lock_version": 1, "error": None} for k in range(n)]).all()
            ids = [r[0] for r in rows]
            s.execute(insert(AuditEvent), [{"instance_id": i, "at": base["started_at"], "actor": "bench",
                                            "kind": "started", "detail": {}} for i in ids])
            if task is not None:
                s.execute(insert(HumanTask), [{
                    "instance_id": i, "spiff_task_id": task.spiff_task_id, "name": task.name, "title": task.title,
                    "lane": None, "assignee_id": owners[k][0], "assigned_group": None,
                    "state": "open", "form": None, "ui_form": None, "clause": None, "instructions": None,
                    "created_at": task.created_at, "due_at": None, "completed_at": None, "completed_by": None,
                    "escalated_at": None} for k, i in enumerate(ids)])
            uow.commit()
        made += n


def serve(url: str, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    env = {**os.environ, "NTPSWF_DATABASE_URL": url, "NTPSWF_SECRET_KEY": "bench"}
    log = open(SERVER_LOG, "ab")  # noqa: SIM115 - the server writes to it until it is stopped
    proc = subprocess.Popen([sys.executable, "-m", "web.cli", "serve", "--no-scheduler", "--port", str(port),
                             "--workers", str(workers), "--threads", "4"], cwd=ROOT, env=env,
                            stdout=log, stderr=log)
    log.close()
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not start")


def load(port: int, tokens: dict[str, str], requests: int, threads: int = 2) -> dict[str, list[float]]:
    """Each client thread acts as staff members: read the inbox, sometimes complete the first task."""
    latencies: dict[str, list[float]] = defaultdict(list)
    statuses: dict[int, int] = defaultdict(int)
    lock = threading.Lock()
    users = sorted(tokens)
    remaining = [requests]
    deadline = time.time() + PHASE_LIMIT_S

    def client(seed: int) -> None:
        rnd = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        served = 0
        while time.time() < deadline:
            with lock:
                if remaining[0] <= 0:
                    break
                remaining[0] -= 1
            if served % RECONNECT_EVERY == 0:  # a new connection, opened outside the timing
                conn.close()
                conn.connect()
            served += 1
            user = rnd.choice(users)
            headers = {"Authorization": f"Bearer {tokens[user]}", "Content-Type": "application/json"}
            t0 = time.perf_counter()
            conn.request("GET", "/api/v1/tasks?limit=20", headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            took = time.perf_counter() - t0
            with lock:
                latencies["inbox read"].append(took)
                statuses[resp.status] += 1
            items = json.loads(body).get("items", []) if resp.status == 200 else []
            if items and rnd.random() < 0.25:
                task = rnd.choice(items)
                t0 = time.perf_counter()
                conn.request("POST", f"/api/v1/tasks/{task['id']}/complete", body=b'{"data": {}}', headers=headers)
                resp = conn.getresponse()
                resp.read()
                took = time.perf_counter() - t0
                with lock:
                    statuses[resp.status] += 1
                    if resp.status == 200:
                        latencies["task completion"].append(took)
        conn.close()

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    latencies["_elapsed"] = [time.perf_counter() - started]
    latencies["_statuses"] = [float(k) for k, v in statuses.items() for _ in range(v)]
    return latencies


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(p * (len(ordered) - 1)))]


def _databases(url: str | None, tmp: Path) -> dict[str, tuple[str, str | None]]:
    """The small and the large database side by side, as (url, PostgreSQL schema): two SQLite files, or two
    schemas of the given PostgreSQL database (its search_path set in the URL, so the servers use them too)."""
    if not url:
        return {size: (f"sqlite:///{tmp / f'http-{size}.sqlite3'}", None) for size in SIZES}
    joiner = "&" if "?" in url else "?"
    return {size: (f"{url}{joiner}options=-csearch_path%3Dbench_{size}", f"bench_{size}") for size in SIZES}


def _drop_schema(url: str, schema: str | None) -> None:
    if schema is not None:
        db = Database(url)
        with db.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        db.dispose()


def _report(label: str, result: dict[str, list[float]]) -> dict[str, float]:
    """Print a size's throughput and latencies; its median per kind of request."""
    elapsed = sum(result.pop("_elapsed"))
    statuses: dict[int, int] = defaultdict(int)
    for status in result.pop("_statuses"):
        statuses[int(status)] += 1
    total = sum(len(v) for v in result.values())
    print(f"\n## {label}")
    print(f"throughput: {total / elapsed:.0f} requests/s; statuses {dict(sorted(statuses.items()))}")
    out = {}
    for kind, values in sorted(result.items()):
        if values:
            print(f"{kind:16s} n={len(values):5d}  p50 {_pct(values, .5):6.1f} ms  p95 {_pct(values, .95):6.1f} ms"
                  f"  p99 {_pct(values, .99):6.1f} ms")
            out[kind] = statistics.median(values)
    return out


def main() -> None:
    finished = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    running = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000
    requests = int(sys.argv[3]) if len(sys.argv) > 3 else 2_000
    workers = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    sizes = {"small": (max(1, finished // 100), max(STAFF, running // 10)), "large": (finished, running)}
    results: dict[str, dict[str, list[float]]] = {size: defaultdict(list) for size in SIZES}
    labels = {}
    with tempfile.TemporaryDirectory() as tmp:
        databases = _databases(sys.argv[4] if len(sys.argv) > 4 else None, Path(tmp))
        servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
        try:
            tokens = {}
            for size, (url, schema) in databases.items():
                t0 = time.perf_counter()
                tokens[size] = seed(url, *sizes[size], schema)["tokens"]
                labels[size] = (f"{size} database: {sizes[size][0]:,} finished + {sizes[size][1]:,} running cases, "
                                f"{workers} worker(s) (seeded in {time.perf_counter() - t0:.0f} s)")
            for size, (url, _) in databases.items():
                servers[size] = serve(url, workers)
                load(servers[size][1], tokens[size], min(200, requests))  # warm up
            # Alternating rounds (small, large, then large, small, ...): a change in the machine's load falls on both.
            for r in range(ROUNDS):
                for size in SIZES if r % 2 == 0 else SIZES[::-1]:
                    for kind, values in load(servers[size][1], tokens[size], requests // ROUNDS).items():
                        results[size][kind].extend(values)
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(timeout=20)
            for url, schema in databases.values():
                _drop_schema(url, schema)
    print(f"{requests // ROUNDS * ROUNDS:,} requests per database in {ROUNDS} alternating rounds")
    medians = {size: _report(labels[size], results[size]) for size in SIZES}
    print("\nper-request cost, large/small database (target < 1.3):")
    for kind in medians["small"]:
        print(f"  {kind}: {medians['large'][kind] / medians['small'][kind]:.2f}")


if __name__ == "__main__":
    main()
