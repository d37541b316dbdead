"""The runtime's hot path (issue #8): what a completion costs in statements, batched history, cached versions,
and due dates given as ISO 8601 durations."""

from __future__ import annotations

import html
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.core.audit import audit, pending_events
from engine.core.clock import CLOCK
from engine.core.config import Settings
from engine.core.models import AuditEvent
from engine.workflow.bundles import read_bundle
from engine.workflow.definitions import deploy
from engine.workflow.models import HumanTask, Timer
from engine.workflow.queries import instance_view
from engine.workflow.rows import as_loaded
from engine.workflow.runtime import Runtime
from tests.conftest import T0
from tests.web.api_helpers import listening
from tests.workflow.driver import Driver, deploy_file

NS = ('xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
      'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"')


def _task(ident: str, due: str | None, incoming: str, outgoing: str) -> str:
    props = ('<bpmn:extensionElements><spiffworkflow:properties><spiffworkflow:property name="dueAt" '
             f'value="{html.escape(due, quote=True)}"/>'
             '</spiffworkflow:properties></bpmn:extensionElements>') if due else ""
    return (f'<bpmn:userTask id="{ident}" name="{ident}">{props}<bpmn:incoming>{incoming}</bpmn:incoming>'
            f'<bpmn:outgoing>{outgoing}</bpmn:outgoing></bpmn:userTask>')


def _process(key: str, dues: list[str | None]) -> bytes:
    """A straight line of user tasks with the given dueAt properties."""
    parts = ['<bpmn:startEvent id="s"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>']
    for i, due in enumerate(dues):
        parts.append(_task(f"t{i}", due, f"f{i}", f"f{i + 1}"))
    n = len(dues)
    parts.append(f'<bpmn:endEvent id="e"><bpmn:incoming>f{n}</bpmn:incoming></bpmn:endEvent>')
    refs = ["s", *(f"t{i}" for i in range(n)), "e"]
    parts += [f'<bpmn:sequenceFlow id="f{i}" sourceRef="{refs[i]}" targetRef="{refs[i + 1]}"/>' for i in range(n + 1)]
    return (f'<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions {NS} id="d" targetNamespace="t">'
            f'<bpmn:process id="{key}" name="{key}" isExecutable="true">{"".join(parts)}</bpmn:process>'
            "</bpmn:definitions>").encode()


def _deploy(runtime: Runtime, key: str, dues: list[str | None]) -> None:
    with runtime.db.unit_of_work() as uow:
        deploy(uow.session, read_bundle({f"{key}.bpmn": _process(key, dues)}, None), "test")
        uow.commit()


@contextmanager
def _statements(runtime: Runtime) -> Iterator[list[str]]:
    """The SQL statements the runtime's engine sends inside the block."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    with listening(runtime, "before_cursor_execute", record):
        yield seen


# ------------------------------------------------------------------------------------------- statements


def test_scale_a_completion_is_a_handful_of_statements(org: Runtime) -> None:
    """A completion costs 8 statements on SQLite and PostgreSQL alike (the task is read again only when a writer
    changed the case while the lock was awaited); the old path sent 12. A regression here is a slower product,
    so it is a test, not a benchmark. (With the default compaction threshold: a short case is never compacted.)"""
    org = Runtime(org.db, replace(org.settings, compact_above_tasks=Settings.compact_above_tasks))
    _deploy(org, "line", [None, None, None])
    d = Driver(org)
    user = d.user("hr")
    case = org.start(user, "line", {})
    org.complete_task(user, d.open_task(case, "t0").id, {})  # the version is now cached by this runtime
    task = d.open_task(case, "t1").id
    with _statements(org) as sent:
        org.complete_task(user, task, {})
    seen = [s.split()[0].upper() for s in sent]
    assert len([s for s in seen if s not in ("COMMIT", "ROLLBACK")]) <= 8, seen
    assert seen.count("INSERT") == 2  # the next task, and the history in one statement
    assert d.open_tasks(case) == ["t2"]


def test_scale_a_new_case_is_one_insert_of_its_first_state(org: Runtime) -> None:
    _deploy(org, "line", [None])
    user = Driver(org).user("hr")
    with _statements(org) as sent:
        case = org.start(user, "line", {"n": 1})
    assert not [s for s in sent if s.startswith("UPDATE")], sent
    row = Driver(org).instance(case)
    assert row.data == {"n": 1} and row.serialized and row.lock_version == 1


def test_scale_a_case_as_the_api_shows_it_is_two_statements(org: Runtime) -> None:
    """The case row, then its open tasks, waiting timers and history in one UNION ALL, each part in its order."""
    _deploy(org, "line", ["P3D", None])
    d = Driver(org)
    user = d.user("hr")
    case = org.start(user, "line", {})
    org.complete_task(user, d.open_task(case, "t0").id, {})
    with org.db.read() as s, _statements(org) as sent:
        view = instance_view(s, case)
    assert len([q for q in sent if q.split()[0].upper() == "SELECT"]) == 2, sent
    assert view is not None and [t["name"] for t in view["tasks"]] == ["t1"] and view["timers"] == []
    assert view["tasks"][0]["assignee"] == "hr" and view["tasks"][0]["state"] == "open"
    assert [e["kind"] for e in view["events"]] == ["started", "task_opened", "task_completed", "task_opened"]
    assert datetime.fromisoformat(view["events"][1]["detail"]["due_at"]) == T0 + timedelta(days=3)
    assert all(isinstance(e["at"], str) and e["actor"] == "hr" for e in view["events"])


# ------------------------------------------------------------------------------------------- history


def test_history_written_in_one_batch_is_read_back_inside_the_transaction(org: Runtime) -> None:
    with org.db.unit_of_work() as uow:
        s = uow.session
        audit(s, None, "tester", "first")
        audit(s, None, "tester", "second")
        assert len(pending_events(s)) == 2
        # A query of the history writes what is pending first (read-your-writes, like autoflush).
        kinds = list(s.scalars(select(AuditEvent.kind).where(AuditEvent.actor == "tester").order_by(AuditEvent.id)))
        assert kinds == ["first", "second"] and pending_events(s) == []
        audit(s, None, "tester", "third")
        uow.commit()
    with org.db.read() as s:
        kinds = list(s.scalars(select(AuditEvent.kind).where(AuditEvent.actor == "tester").order_by(AuditEvent.id)))
    assert kinds == ["first", "second", "third"]


def test_history_of_a_failed_call_is_never_written(org: Runtime) -> None:
    with pytest.raises(RuntimeError), org.db.unit_of_work() as uow:
        audit(uow.session, None, "tester", "lost")
        uow.session.flush()
        raise RuntimeError("the service failed")
    with org.db.unit_of_work() as uow:  # a later transaction does not inherit anything pending
        assert pending_events(uow.session) == []
        audit(uow.session, None, "tester", "kept")
        uow.commit()
    with org.db.read() as s:
        kinds = list(s.scalars(select(AuditEvent.kind).where(AuditEvent.actor == "tester")))
    assert kinds == ["kept"]


def test_history_of_a_case_keeps_its_order(org: Runtime) -> None:
    _deploy(org, "line", [None, None])
    d = Driver(org)
    user = d.user("hr")
    case = org.start(user, "line", {})
    org.complete_task(user, d.open_task(case, "t0").id, {})
    org.complete_task(user, d.open_task(case, "t1").id, {})
    with org.db.read() as s:
        kinds = list(s.scalars(select(AuditEvent.kind).where(AuditEvent.instance_id == case).order_by(AuditEvent.id)))
    assert kinds == ["started", "task_opened", "task_completed", "task_opened", "task_completed", "completed"]


# ------------------------------------------------------------------------------------------- versions


def test_scale_a_version_is_read_once_per_runtime(org: Runtime) -> None:
    _deploy(org, "line", [None, None, None])
    d = Driver(org)
    user = d.user("hr")
    case = org.start(user, "line", {})
    org.complete_task(user, d.open_task(case, "t0").id, {})
    with _statements(org) as sent:
        org.complete_task(user, d.open_task(case, "t1").id, {})
    assert sent and not [s for s in sent if "process_definition" in s], sent


def test_scale_a_cached_version_never_serves_another_database(org: Runtime, tmp_path: Any) -> None:
    """Ids repeat across databases (and after a rolled-back deploy); the copy is per runtime and checked
    against the case's process key."""
    _deploy(org, "line", [None])
    user = Driver(org).user("hr")
    case = org.start(user, "line", {})
    ident = Driver(org).instance(case).definition_id
    stale = {"id": ident, "key": "something_else", "version": 1, "name": "x", "sources": {}, "forms": {},
             "content_hash": "0", "executable": True, "deployed_at": T0, "deployed_by": "x"}
    org._definitions[ident] = stale  # the cache under test
    org.complete_task(user, Driver(org).open_task(case, "t0").id, {})  # the key does not match: read again
    assert Driver(org).instance(case).status == "completed"


# ------------------------------------------------------------------------------------------- due dates


def _due(org: Runtime, case: int, name: str) -> datetime:
    due = Driver(org).open_task(case, name).due_at
    assert due is not None
    return due


@pytest.mark.parametrize(("due", "expected"), [
    ("P14D", timedelta(days=14)),
    ('"PT4H"', timedelta(hours=4)),
    ("'P2W'", timedelta(weeks=2)),
    ('"P1D" if urgent else "P10D"', timedelta(days=1)),
    ("timedelta(hours=6)", timedelta(hours=6)),
])
def test_due_at_accepts_an_iso_duration_counted_from_when_the_task_opens(org: Runtime, due: str,
                                                                         expected: timedelta) -> None:
    _deploy(org, "timed", [None, due])
    d = Driver(org)
    user = d.user("hr")
    case = org.start(user, "timed", {"urgent": True})
    CLOCK.freeze(T0 + timedelta(days=3))  # the second task opens three days later
    org.complete_task(user, d.open_task(case, "t0").id, {})
    assert _due(org, case, "t1") == T0 + timedelta(days=3) + expected


def test_due_at_months_count_on_the_calendar(org: Runtime) -> None:
    _deploy(org, "monthly", ["P1M"])
    CLOCK.freeze(datetime.fromisoformat("2026-01-31T01:00:00+09:30"))
    case = org.start(Driver(org).user("hr"), "monthly", {})
    assert _due(org, case, "t0") == datetime.fromisoformat("2026-02-28T01:00:00+09:30")


def test_d19_9d_retiming_a_case_keeps_a_duration_anchored_to_when_the_task_opened(org: Runtime) -> None:
    _deploy(org, "timed", ["P14D"])
    d = Driver(org)
    case = org.start(d.user("hr"), "timed", {"assessment_date": "2026-06-30"})
    before = _due(org, case, "t0")
    CLOCK.freeze(T0 + timedelta(days=5))
    org.update_case_data("hr", case, {"assessment_date": "2026-07-30"}, "leave without pay")
    assert _due(org, case, "t0") == before == T0 + timedelta(days=14)


def test_due_at_that_is_no_date_or_duration_leaves_the_task_without_one(org: Runtime) -> None:
    _deploy(org, "untimed", ['"P"'])
    case = org.start(Driver(org).user("hr"), "untimed", {})
    assert Driver(org).open_task(case, "t0").due_at is None
    with org.db.read() as s:
        assert s.scalar(select(func.count()).select_from(HumanTask).where(HumanTask.instance_id == case)) == 1


def test_a_case_view_lists_its_waiting_timers_soonest_first(org: Runtime) -> None:
    deploy_file(org, Path(__file__).parent / "timer_models" / "timers_demo.bpmn")
    d = Driver(org)
    case = d.start("timers_demo", {"employee": "employee", "work_due": "2026-03-10"})
    with org.db.read() as s:
        view = instance_view(s, case)
        waiting = list(s.execute(select(Timer.element, Timer.due_at).where(
            Timer.instance_id == case, Timer.state == "waiting").order_by(Timer.due_at)))
    assert view is not None and len(waiting) >= 2
    assert [(t["element"], datetime.fromisoformat(t["due_at"])) for t in view["timers"]] == [
        (element, due) for element, due in waiting]
    assert all(t["name"] for t in view["timers"])


def test_scale_an_inbox_page_is_read_in_order_from_an_index(org: Runtime) -> None:
    """A page of a person's inbox walks (assignee, state, id) in order and stops after the page: no sort of all
    their tasks, no walk of every task newer than the page (PostgreSQL's plan with (assignee, state) alone)."""
    from sqlalchemy import insert, text

    from engine.people.models import Person
    from engine.workflow.queries import inbox

    _deploy(org, "line", [None])
    d = Driver(org)
    case = org.start(d.user("hr"), "line", {})
    employee = d.user("employee")
    with org.db.unit_of_work() as uow:  # 300 people with 30 open and 15 finished tasks each, interleaved
        uow.session.execute(insert(Person), [{"username": f"p{i}", "name": f"P {i}", "email": f"p{i}@example.org",
                                              "classification": "AO5"}
                                             for i in range(300)])
        people = list(uow.session.scalars(select(Person.id).where(Person.username.like("p%"))))
        people.append(employee.person_id)
        uow.session.execute(insert(HumanTask), [{
            "instance_id": case, "spiff_task_id": f"bulk-{i}", "name": "t0", "title": "t0", "lane": None,
            "assignee_id": people[i % len(people)], "assigned_group": None, "state": "open" if i % 3 else "completed",
            "created_at": T0} for i in range(45 * len(people))])
        uow.commit()
    with org.db.engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    sent: list[tuple[str, Any]] = []
    with org.db.read() as s, listening(org, "before_cursor_execute",
                                       lambda _c, _k, statement, params, *_a: sent.append((statement, params))):
        page, _ = inbox(s, employee, limit=20)
    assert len(page) == 20
    statement, params = next((q, p) for q, p in sent if "human_task" in q)
    explain = "EXPLAIN " if org.db.is_postgres else "EXPLAIN QUERY PLAN "
    with org.db.engine.connect() as conn:
        plan = "\n".join(str(row[-1]) for row in conn.exec_driver_sql(explain + statement, params))
    assert "ix_task_assignee_state_id" in plan, plan
    assert "Sort" not in plan and "TEMP B-TREE" not in plan, plan  # rows come in id order from the index


def test_a_task_born_overdue_says_why_in_any_process(org: Runtime) -> None:
    """A step whose due date had passed before it could open says so where it is done (was: only the placement's
    steps did, through a hook of its own); one that opens in time says nothing of it."""
    _deploy(org, "late", ["'2020-01-31'", "P14D"])
    d = Driver(org)
    case = org.start(d.user("hr"), "late", {})
    late = d.open_task(case, "t0")
    assert "opened on 2026-" in (late.instructions or "") and "after the date it was due (by the end of 2020-01-31)" \
        in (late.instructions or "")
    org.complete_task(d.user("hr"), late.id, {})
    assert "after the date it was due" not in (d.open_task(case, "t1").instructions or "")


def test_scale_an_object_made_from_a_partial_row_is_refused(org: Runtime) -> None:
    """rows.as_loaded registers a row as loaded: a column left out would read as None instead of being loaded."""
    with org.db.unit_of_work() as uow, pytest.raises(ValueError, match=r"missing.*'due_at'"):
        as_loaded(uow.session, HumanTask, {"id": 1, "name": "t0"})
