"""A placement ends when it ends (issue 19, MP-L): an early end, an extension and re-entry move every date and
timer that hangs on the last day at once, and no step is born overdue without saying why.

Reported: after the last day was set to 2027-05-03 (at one day's notice) and re-entry confirmed, the register still
said 'In progress' on 2027-05-05, the post-placement tasks came two months later already overdue, and the re-entry
task was created overdue. Each scenario runs straight through and with a full save/restore before every step. The
placement runs from 1 April 2026 to 30 June 2027; T0 is 2 March 2026; Darwin is UTC+09:30, so a step due on a date
is due at 14:30 UTC that day and a timer on a date fires at 23:30 UTC the day before.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select

from engine.core.errors import Invalid
from engine.policies.secondment.demo import load_host_people
from engine.workflow.models import HumanTask, Timer
from engine.workflow.runtime import Runtime
from tests.policies.secondment.test_secondment_flow import (
    CONCERN,
    REENTRY,
    REENTRY_PROPOSAL,
    accept_all,
    agreement,
    apply,
    at,
    open_tasks,
    plan,
    poll,
    register,
)
from tests.workflow.driver import Driver

END = "2027-06-30"


@pytest.fixture(params=[False, True], ids=["straight", "save-restore"])
def drive(org: Runtime, request: pytest.FixtureRequest) -> Iterator[Driver]:
    load_host_people(org)
    driver = Driver(org, restore=request.param)
    yield driver
    driver.runtime.db.dispose()


def _placed(d: Driver, notice_days: int = 14) -> int:
    """A placement from 1 April 2026 to 30 June 2027, started."""
    case = apply(d)
    plan(d, case)
    doc = agreement(end_date=END)
    doc["agreement"]["schedule2"]["early_termination"]["notice_days"] = notice_days
    d.complete(case, "draft_agreement", "supervisor", doc)
    accept_all(d, case)
    at("2026-04-01", 1)
    poll(d)
    return case


def _end_early(d: Driver, case: int, last_day: str) -> None:
    """The host raises a concern it cannot resolve; the home organisation ends the placement early (MP-L)."""
    d.complete(case, "raise_concern_host", "host", CONCERN)
    d.complete(case, "discuss_concern", "host", {"concern_discussion": {
        "discussed_with": ["secondee", "home"], "summary": "Cannot be fixed here.", "outcome": "refer"}})
    d.complete(case, "decide_concern", "supervisor", {"concern_decision": {
        "decision": "end_early", "last_day": last_day, "reason": "The role no longer exists."}})


def _reentry(d: Driver, case: int, return_date: str) -> None:
    d.complete(case, "propose_reentry", "employee", {"reentry_proposal": {
        **REENTRY_PROPOSAL["reentry_proposal"], "return_date": return_date}})
    d.complete(case, "confirm_reentry", "supervisor", {"reentry": {**REENTRY["reentry"], "return_date": return_date}})


def _due(day: str) -> datetime:
    """Due by the end of `day` in Darwin."""
    return datetime.fromisoformat(day).replace(hour=14, minute=30, tzinfo=UTC)


def _waiting(d: Driver, case: int) -> dict[str, datetime]:
    with d.runtime.db.read() as s:
        return {t.element: t.due_at for t in s.scalars(select(Timer).where(
            Timer.instance_id == case, Timer.state == "waiting"))}


def _tasks(d: Driver, case: int) -> list[HumanTask]:
    with d.runtime.db.read() as s:
        return list(s.scalars(select(HumanTask).where(HumanTask.instance_id == case).order_by(HumanTask.id)))


def _assert_none_born_overdue_unexplained(d: Driver, case: int) -> None:
    """No step's due date is before it opened, unless its instructions say why."""
    silent = [(t.name, t.created_at, t.due_at) for t in _tasks(d, case) if t.due_at is not None
              and t.due_at <= t.created_at and "after the date it was due" not in (t.instructions or "")]
    assert silent == []


def _assert_post_placement(d: Driver, case: int, last_day: str, post_due: str) -> Any:
    names = {t.name for t in open_tasks(d, case)}
    assert {"post_placement_report", "assess_placement"} <= names
    assert not {n for n in names if n.startswith("raise_concern") or n in ("propose_reentry", "confirm_reentry")}
    for name in ("post_placement_report", "assess_placement"):
        assert open_tasks(d, case, name)[0].due_at == _due(post_due)
    row = register(d, case)
    assert (row.status, row.actual_end_date, row.ended_early) == ("post_placement", date.fromisoformat(last_day), True)
    assert "end_date_reached" not in _waiting(d, case)  # nothing is left waiting on any last day
    return row


def test_mp_l_an_early_end_at_short_notice_ends_the_placement_the_day_after_its_last_day(drive: Driver) -> None:
    """The issue's case: one day's notice (the parties agreed it), last day 3 May, re-entry confirmed."""
    case = _placed(drive, notice_days=1)
    at("2027-05-02", 1)
    poll(drive)
    _end_early(drive, case, "2027-05-03")
    proposal = open_tasks(drive, case, "propose_reentry")[0]
    assert proposal.due_at == _due("2027-05-02")  # 7 days before the last day has passed: by the end of today
    assert proposal.due_at > proposal.created_at
    assert "The placement's last day is 2027-05-03." in (proposal.instructions or "")
    assert "usually due 7 days before the last day (2027-04-26)" in (proposal.instructions or "")
    assert _waiting(drive, case)["end_date_reached"] == datetime(2027, 5, 3, 23, 30, tzinfo=UTC)
    _reentry(drive, case, "2027-05-04")
    at("2027-05-03", 12)  # the last day: still in the placement
    poll(drive)
    assert register(drive, case).status == "in_progress"
    at("2027-05-04", 1)  # the day after the last day
    poll(drive)
    row = _assert_post_placement(drive, case, "2027-05-03", "2027-05-31")
    assert row.end_date == date(2027, 6, 30)  # the agreed end stays on record beside the actual one
    dates = drive.instance(case).data["data_objects"]["placement_dates"]
    assert (dates["end_date"], dates["last_day"], dates["actual_end_date"], dates["ended_early"]) == (
        "2027-06-30", "2027-05-03", "2027-05-03", True)
    _assert_none_born_overdue_unexplained(drive, case)


def test_mp_l_an_early_end_after_the_end_was_confirmed_moves_the_reentry_dates(drive: Driver) -> None:
    """Decided after the home organisation confirmed the end: the re-entry steps already open were due, and
    checked, against the old last day (a return date before 30 June was refused)."""
    case = _placed(drive)
    at("2027-05-19", 1)  # 42 days before the end
    poll(drive)
    drive.complete(case, "plan_end", "supervisor", {"end_plan": {"decision": "end_as_agreed"}})
    assert open_tasks(drive, case, "propose_reentry")[0].due_at == _due("2027-06-23")
    at("2027-05-20", 1)
    _end_early(drive, case, "2027-06-03")
    proposal = open_tasks(drive, case, "propose_reentry")
    assert [t.due_at for t in proposal] == [_due("2027-05-27")]
    assert "The last day changed after the re-entry arrangements were first asked for" in (
        proposal[0].instructions or "")
    assert _waiting(drive, case)["end_date_reached"] == datetime(2027, 6, 3, 23, 30, tzinfo=UTC)
    _reentry(drive, case, "2027-06-04")
    at("2027-06-04", 1)
    poll(drive)
    _assert_post_placement(drive, case, "2027-06-03", "2027-07-01")
    _assert_none_born_overdue_unexplained(drive, case)


def test_mp_l_re_entry_confirmed_for_the_old_last_day_is_asked_again_after_an_early_end(drive: Driver) -> None:
    case = _placed(drive)
    at("2027-05-19", 1)
    poll(drive)
    drive.complete(case, "plan_end", "supervisor", {"end_plan": {"decision": "end_as_agreed"}})
    _reentry(drive, case, "2027-07-01")
    at("2027-05-20", 1)
    _end_early(drive, case, "2027-06-03")
    assert open_tasks(drive, case, "propose_reentry")[0].due_at == _due("2027-05-27")
    _reentry(drive, case, "2027-06-04")
    at("2027-06-04", 1)
    poll(drive)
    _assert_post_placement(drive, case, "2027-06-03", "2027-07-01")


def test_mp_l_an_extension_moves_every_timer_and_an_early_end_is_checked_against_the_new_end(drive: Driver) -> None:
    """After an extension to 30 September nothing fires at the old end (30 June), and a last day after the old end
    but before the new one is an early end (it was refused against the old end date)."""
    case = _placed(drive)
    at("2027-05-19", 1)
    poll(drive)
    drive.complete(case, "plan_end", "supervisor", {"end_plan": {
        "decision": "extend", "new_end_date": "2027-09-30", "reason": "The ward opening moved."}})
    accept_all(drive, case, "accept_ext")
    waiting = _waiting(drive, case)
    assert waiting["reminder_due"] == datetime(2027, 8, 18, 23, 30, tzinfo=UTC)  # 42 days before 30 September
    assert not any(due.date() in (date(2027, 5, 18), date(2027, 6, 30)) for due in waiting.values())
    at("2027-07-01", 1)  # the old end passes: nothing happens
    poll(drive)
    names = {t.name for t in open_tasks(drive, case)}
    assert not names & {"plan_end", "propose_reentry", "post_placement_report", "assess_placement"}
    assert register(drive, case).status == "in_progress"
    drive.complete(case, "raise_concern_host", "host", CONCERN)
    drive.complete(case, "discuss_concern", "host", {"concern_discussion": {
        "discussed_with": ["secondee"], "summary": "Cannot be fixed.", "outcome": "refer"}})
    decide = open_tasks(drive, case, "decide_concern")[0]
    with pytest.raises(Invalid) as err:  # not an early end: after the current end date
        drive._fresh().complete_task(drive.user("supervisor"), decide.id, {"concern_decision": {
            "decision": "end_early", "last_day": "2027-10-15", "reason": "Wellbeing."}})
    assert [(p.field, p.message) for p in err.value.problems] == [("concern_decision.last_day", (
        "Ending early means a last day before the agreed end date, 30 September 2027."))]
    drive.complete(case, "decide_concern", "supervisor", {"concern_decision": {
        "decision": "end_early", "last_day": "2027-07-20", "reason": "Wellbeing."}})
    _reentry(drive, case, "2027-07-21")
    at("2027-07-21", 1)
    poll(drive)
    row = _assert_post_placement(drive, case, "2027-07-20", "2027-08-17")
    assert (row.end_date, row.extensions) == (date(2027, 9, 30), 1)
    _assert_none_born_overdue_unexplained(drive, case)


def test_mp_l_re_entry_after_a_late_end_plan_is_due_today_and_says_why(drive: Driver) -> None:
    """The end confirmed two days before the last day: the proposal, usually due 7 days before it, opened overdue."""
    case = _placed(drive)
    at("2027-05-19", 1)
    poll(drive)
    at("2027-06-28", 1)
    poll(drive)
    drive.complete(case, "plan_end", "supervisor", {"end_plan": {"decision": "end_as_agreed"}})
    proposal = open_tasks(drive, case, "propose_reentry")[0]
    assert proposal.due_at == _due("2027-06-28")
    assert "that date has passed, so it is due by the end of today, 2027-06-28" in (proposal.instructions or "")
    _assert_none_born_overdue_unexplained(drive, case)
