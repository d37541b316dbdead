"""OCPE's placement register is kept incrementally (issue 21, MP-O): each step feeds the placement's walk only what
happened since its last sync, and the result equals a full rebuild from the whole history after every step of the
secondment scenario suites (every test_secondment*.py scenario that takes a driver), field by field.

The comparison runs after every commit of the case's database (a step, a timer batch, a register read that caught
up): it reads the register as the steps left it and as a read shows it (a pending step whose due time has passed
since is overdue: projection.mark_overdue), then, in a transaction of its own that is rolled back, deletes the
placement's rows and rebuilds them from the history, and compares every column but the row ids and the sync
bookkeeping (SKIPPED); the walk's kept state is compared too.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete, event, select
from sqlalchemy.orm import Session

from engine.core.db import Database
from engine.policies.secondment import projection
from engine.policies.secondment.demo import load_host_people
from engine.policies.secondment.models import (
    Placement,
    PlacementAgreementVersion,
    PlacementConcern,
    PlacementReport,
)
from engine.workflow.models import ProcessInstance
from engine.workflow.runtime import Runtime
from tests.policies.secondment.test_secondment_flow import (
    BRIEFING,
    CONCERN,
    INDUCTION,
    PROGRESS,
    at,
    poll,
    register,
    started,
    steps,
)
from tests.workflow.driver import Driver

#: Child tables and the column that tells their rows of one placement apart.
CHILDREN = ((PlacementAgreementVersion, "version"), (PlacementReport, "task_id"), (PlacementConcern, "seq"))
#: Row ids, and sync bookkeeping that may differ between the two: when the row was last written, and the newest
#: event fed (a timer's "fired" record is written after the save that fired it; the next step or read feeds it).
SKIPPED = frozenset({"id", "synced_at", "synced_event_id", "synced_event_count"})


def _suites() -> list[Any]:
    here = Path(__file__).parent
    names = sorted(p.stem for p in here.glob("test_secondment*.py") if p.stem != "test_secondment_flow")
    return [importlib.import_module(f"tests.policies.secondment.{name}") for name in names]


def _scenarios() -> list[Any]:
    """Every scenario of the suites that runs on a driver alone."""
    found = []
    for module in _suites():
        for name, fn in vars(module).items():
            if (name.startswith("test_") and inspect.isfunction(fn) and fn.__module__ == module.__name__
                    and list(inspect.signature(fn).parameters) == ["drive"]):
                found.append(pytest.param(fn, id=f"{module.__name__.rsplit('.', 1)[-1]}.{name}"))
    return found


def _columns(row: Any) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns if c.key not in SKIPPED}


def _snapshot(session: Session, instance_id: int) -> dict[str, Any]:
    """A placement's register rows as plain values."""
    placement = session.get(Placement, instance_id)
    assert placement is not None
    out: dict[str, Any] = {"placement": _columns(placement)}
    for model, key in CHILDREN:
        rows = session.scalars(select(model).where(model.instance_id == instance_id))
        out[model.__tablename__] = {getattr(r, key): _columns(r) for r in rows}
    return out


def _differences(incremental: dict[str, Any], rebuilt: dict[str, Any]) -> list[str]:
    out = []
    for table in rebuilt:
        a, b = incremental[table], rebuilt[table]
        if table == "placement":
            out += [f"placement.{k}: incremental {a.get(k)!r}, rebuilt {b.get(k)!r}" for k in b if a.get(k) != b[k]]
            continue
        for key in sorted(a.keys() | b.keys()):
            if a.get(key) != b.get(key):
                columns = (a.get(key) or {}).keys() | (b.get(key) or {}).keys()
                out += [f"{table}[{key}].{c}: incremental {(a.get(key) or {}).get(c)!r}, rebuilt "
                        f"{(b.get(key) or {}).get(c)!r}" for c in sorted(columns)
                        if (a.get(key) or {}).get(c) != (b.get(key) or {}).get(c)]
    return out


class Comparer:
    """After every commit, compares each placement as the steps left it with a rebuild from its history."""

    def __init__(self, runtime: Runtime) -> None:
        self.db = Database(runtime.settings.database_url)
        self.timezone = runtime.settings.timezone
        self.busy = False
        self.comparisons = 0

    def after_commit(self, session: Session) -> None:
        if self.busy or session.in_nested_transaction():  # a savepoint released: the step goes on
            return
        self.busy = True
        try:
            self.compare()
        finally:
            self.busy = False

    def compare(self) -> None:
        with self.db.unit_of_work() as uow:  # never committed: the rebuild is rolled back
            s = uow.session
            ids = list(s.scalars(select(Placement.instance_id).order_by(Placement.instance_id)))
            for i in ids:  # as a read shows it: a pending step whose due time passed since the step is overdue
                placement = s.get(Placement, i)
                assert placement is not None
                projection.mark_overdue(s, placement)
            s.flush()
            incremental = {i: _snapshot(s, i) for i in ids}
            s.expunge_all()
            for i in ids:
                for model, _ in CHILDREN:
                    s.execute(delete(model).where(model.instance_id == i))
                s.execute(delete(Placement).where(Placement.instance_id == i))
            for i in ids:
                row = s.get(ProcessInstance, i)
                assert row is not None
                projection.rebuild_placement(s, row, self.timezone)
            s.flush()
            rebuilt = {i: _snapshot(s, i) for i in ids}
        for i in ids:
            problems = _differences(incremental[i], rebuilt[i])
            assert not problems, f"case {i}: the incremental register differs from a rebuild:\n" + "\n".join(problems)
        self.comparisons += 1


@pytest.fixture
def compared(org: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Driver, Comparer, list[int]]]:
    """A driver whose every commit is followed by the comparison; the list collects the cases rebuilt by steps."""
    load_host_people(org)
    comparer = Comparer(org)
    rebuilt: list[int] = []
    original: Callable[..., Placement] = projection.rebuild_placement

    def counting(session: Session, row: ProcessInstance, timezone: str) -> Placement:
        if not comparer.busy:
            rebuilt.append(row.id)
        return original(session, row, timezone)

    monkeypatch.setattr(projection, "rebuild_placement", counting)
    event.listen(Session, "after_commit", comparer.after_commit)
    try:
        yield Driver(org), comparer, rebuilt
    finally:
        event.remove(Session, "after_commit", comparer.after_commit)
        comparer.db.dispose()


@pytest.mark.parametrize("scenario", _scenarios())
def test_mp_o_the_incremental_register_equals_a_rebuild_after_every_step(
        compared: tuple[Driver, Comparer, list[int]], scenario: Callable[[Driver], None]) -> None:
    drive, comparer, rebuilt = compared
    scenario(drive)
    assert comparer.comparisons > 0
    with drive.runtime.db.read() as s:
        placements = list(s.scalars(select(Placement.instance_id)))
    # Each placement was built once, by its case's first save; every later step updated it incrementally.
    assert sorted(rebuilt) == sorted(placements)


def test_scenarios_cover_the_long_report_cycle_an_early_end_an_extension_and_a_concern() -> None:
    names = {p.id.rsplit(".", 1)[-1] for p in _scenarios()}
    assert {"test_mp_l_report_cycle_over_a_year_of_moved_clock", "test_mp_l_a_concern_can_end_the_placement_early",
            "test_mp_l_an_extension_is_a_new_version_that_moves_the_end",
            "test_mp_l_a_concern_opens_its_own_path_while_the_placement_goes_on"} <= names


def test_mp_o_a_step_past_its_due_time_is_overdue_when_read_with_no_event(
        compared: tuple[Driver, Comparer, list[int]]) -> None:
    """The outcome of a step follows the clock: a report whose due time passed is overdue on the next read of the
    register even though nothing happened to the case (before, it stayed pending until the case's next event)."""
    drive, comparer, _ = compared
    case = started(drive)
    drive.complete(case, "induct", "host", INDUCTION)
    at("2026-05-01", 1)
    poll(drive)  # the first cycle's reports open, due on 11 May (end of day in Darwin)
    drive.complete(case, "file_progress_report", "employee", PROGRESS)
    assert {s.kind: s.outcome for s in steps(drive, case) if s.number == 1 and s.kind != "induction"} == {
        "progress_report": "on_time", "host_briefing": "pending", "home_brief": "pending"}
    at("2026-05-12")  # past due; no timer fires, nobody acts: no event
    before = comparer.comparisons
    assert {s.kind: s.outcome for s in steps(drive, case) if s.number == 1 and s.kind != "induction"} == {
        "progress_report": "on_time", "host_briefing": "overdue", "home_brief": "overdue"}
    assert comparer.comparisons > before  # the read's change equals a rebuild at this moment
    row = register(drive, case)
    assert (row.reports_due, row.reports_on_time, row.reports_missed) == (3, 1, 2)
    drive.complete(case, "brief_home", "host", BRIEFING)
    row = register(drive, case)
    assert (row.reports_due, row.reports_on_time, row.reports_late, row.reports_missed) == (3, 1, 1, 1)


def test_mp_o_a_placement_without_state_is_rebuilt_by_its_next_step(
        compared: tuple[Driver, Comparer, list[int]]) -> None:
    """As after the migration: a placement whose walk state is missing rebuilds once, then keeps in step."""
    drive, comparer, rebuilt = compared
    case = started(drive)
    comparer.busy = True  # the state is taken away on purpose: not a step to compare
    with drive.runtime.db.unit_of_work() as uow:
        placement = uow.session.get(Placement, case)
        assert placement is not None
        placement.walk_state = None
        uow.commit()
    comparer.busy = False
    drive.complete(case, "induct", "host", INDUCTION)
    drive.complete(case, "note_placement", "ocpe", {"ocpe_notice": {"noted": True}})
    assert rebuilt == [case, case]
    assert [s.outcome for s in steps(drive, case, "induction")] == ["on_time"]


def test_mp_o_register_rebuild_command_repairs_every_placement(app: Flask, app_org: Runtime) -> None:
    load_host_people(app_org)
    drive = Driver(app_org)
    case = started(drive)
    with app_org.db.unit_of_work() as uow:  # damage the register as a bug might
        placement = uow.session.get(Placement, case)
        assert placement is not None
        placement.status, placement.walk_state = "closed", None
        uow.session.execute(delete(PlacementAgreementVersion).where(PlacementAgreementVersion.instance_id == case))
        uow.commit()
    result = app.test_cli_runner().invoke(args=["register", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "rebuilt 1 placement(s)" in result.output
    with app_org.db.read() as s:
        placement = s.get(Placement, case)
        assert placement is not None and placement.status == "in_progress" and placement.walk_state is not None
        assert len(list(s.scalars(select(PlacementAgreementVersion).where(
            PlacementAgreementVersion.instance_id == case)))) == 1


def test_mp_o_steps_a_failed_update_missed_are_caught_up_by_the_next(
        compared: tuple[Driver, Comparer, list[int]], monkeypatch: pytest.MonkeyPatch) -> None:
    """The register is derived data: a step whose update fails still commits, and a later step catches up. With
    one failed step the walk goes on from where it was; when a task opened and closed while the register was not
    looking, the walk cannot know that task's row and rebuilds."""
    drive, comparer, rebuilt = compared
    case = started(drive)
    working = projection.update_placement

    def failing(*args: Any, **kwargs: Any) -> Placement:
        raise RuntimeError("the register's update failed")

    comparer.busy = True  # the register lags on purpose while its update fails
    monkeypatch.setattr(projection, "update_placement", failing)
    drive.complete(case, "induct", "host", INDUCTION)  # opens nothing new
    monkeypatch.setattr(projection, "update_placement", working)
    comparer.busy = False
    drive.complete(case, "note_placement", "ocpe", {"ocpe_notice": {"noted": True}})
    assert rebuilt == [case]  # caught up incrementally, and equal to a rebuild (the comparer)
    comparer.busy = True
    monkeypatch.setattr(projection, "update_placement", failing)
    drive.complete(case, "raise_concern_employee", "employee", CONCERN)  # opens discuss_concern ...
    drive.complete(case, "discuss_concern", "host", {"concern_discussion": {  # ... which closes unseen
        "discussed_with": ["secondee"], "summary": "Workload shared.", "outcome": "refer"}})
    monkeypatch.setattr(projection, "update_placement", working)
    comparer.busy = False
    drive.complete(case, "decide_concern", "supervisor", {"concern_decision": {
        "decision": "continue", "actions": "Weekly check-ins.", "reason": "Managed."}})
    assert rebuilt == [case, case]
    row = register(drive, case)
    assert (row.concerns_raised, row.concerns_open, [s.outcome for s in steps(drive, case, "induction")]) == (
        1, 0, ["on_time"])
