"""A case's timeline (engine.workflow.timeline): the generic marks every case gets (tasks, timers), and each policy's
dates through its `timeline` hook: a D19 assessment date before and after leave without pay moved it, a placement's
report cycles and end."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from engine.core.clock import CLOCK
from engine.policies.pay_progression.leave import record_leave
from engine.policies.secondment.demo import load_host_people
from engine.policies.secondment.timeline import report_cycles
from engine.workflow import timeline as tl
from engine.workflow.models import ProcessInstance
from engine.workflow.registry import REGISTRY
from engine.workflow.runtime import Runtime
from tests.policies.pay_progression.test_pay_progression import RECOMMEND_YES, REFUSE, REVIEW, SUBMIT
from tests.policies.secondment.test_secondment_flow import accept_all, at, poll, started
from tests.workflow.driver import Driver, deploy_file

START = {"employee": "employee", "agreement_start": "2025-06-30", "assessment_date": "2026-06-30"}
INVITE = {"invitation": {"message": "Please make your submission by 30 May."}}
TIMERS_DEMO = Path(__file__).parent / "timer_models" / "timers_demo.bpmn"


def _timeline(runtime: Runtime, case: int) -> tl.Timeline:
    with runtime.db.read() as s:
        row = s.get(ProcessInstance, case)
        assert row is not None
        return tl.build(s, row, runtime.settings.timezone)


def _by_label(timeline: tl.Timeline) -> dict[str, list[tl.Mark]]:
    found: dict[str, list[tl.Mark]] = {}
    for mark in timeline.marks:
        found.setdefault(mark.label, []).append(mark)
    return found


def test_d19_9d_lwop_timeline_shows_the_original_and_the_moved_assessment_date(org: Runtime) -> None:
    d = Driver(org)
    case = d.start("pay_progression", START)
    d.complete(case, "invite_submission", "supervisor", INVITE)
    before = _by_label(_timeline(org, case))
    assert [(m.when, m.kind, m.moved) for m in before["Assessment date"]] == [(date(2026, 6, 30), "milestone", False)]
    assert "Assessment date (before it moved)" not in before
    record_leave(org, d.user("hr"), "employee", {
        "kind": "lwop", "start": "2026-03-10", "end": "2026-03-19", "counts_as_service": False})
    marks = _by_label(_timeline(org, case))
    [moved] = marks["Assessment date"]
    assert (moved.when, moved.moved, moved.clause, moved.state) == (date(2026, 7, 10), True, "D19-9d", "future")
    [old] = marks["Assessment date (before it moved)"]
    assert (old.when, old.kind, old.moved_to) == (date(2026, 6, 30), "moved-from", date(2026, 7, 10))
    assert "10 days of leave without pay" in old.note
    [invite_old] = marks["Invitation due (before it moved)"]
    assert (invite_old.when, invite_old.moved_to) == (date(2026, 4, 30), date(2026, 5, 10))
    assert [m.when for m in marks["Agreement cycle starts"]] == [date(2025, 6, 30)]
    # The generic marks are there too: the invitation done, the submission due, the window's timer.
    assert [m.kind for m in marks["Invite a pay progression submission"]] == ["done"]
    [submission] = marks["Make your submission"]
    assert submission.kind == "due" and submission.state == "future"
    assert [m.kind for m in marks["Assessment date reached"]] == ["timer"]


def test_d19_10_new_timeframe_moves_the_assessment_date_from_the_original(org: Runtime) -> None:
    d = Driver(org)
    case = d.start("pay_progression", START)
    d.complete(case, "invite_submission", "supervisor", INVITE)
    record_leave(org, d.user("hr"), "employee", {
        "kind": "extended", "start": "2026-02-02", "end": "2026-05-01", "counts_as_service": True})
    d.complete(case, "make_submission", "employee", {"submission": {
        "participate": "new_timeframe", "new_timeframe_request": "Three months' leave, February to April."}})
    d.complete(case, "agree_new_timeframe", "supervisor", {"new_timeframe": {
        "agree": "agree", "basis": "extended_leave", "new_date": "2026-09-30",
        "reason": "Three months of extended leave; three more months of duty to show the criteria."}})
    marks = _by_label(_timeline(org, case))
    [now] = marks["Assessment date"]
    assert (now.when, now.moved) == (date(2026, 9, 30), True)
    [was] = marks["Assessment date (before the new timeframe)"]
    assert (was.when, was.moved_to, was.clause) == (date(2026, 6, 30), date(2026, 9, 30), "D19-10")


def test_d19_9a_review_due_is_overdue_after_the_end_of_its_day(org: Runtime) -> None:
    d = Driver(org)
    case = d.start("pay_progression", START)
    d.complete(case, "invite_submission", "supervisor", INVITE)
    d.complete(case, "make_submission", "employee", SUBMIT)
    d.complete(case, "recommend", "supervisor", RECOMMEND_YES)
    d.complete(case, "decide", "manager", REFUSE)
    d.complete(case, "consider_review", "employee", REVIEW)
    [due] = _by_label(_timeline(org, case))["Review due"]
    assert (due.when, due.kind, due.clause, due.state) == (date(2026, 3, 30), "due", "D19-9a", "future")
    CLOCK.freeze(datetime(2026, 3, 30, 14, 29, tzinfo=UTC))  # 23:59 on 30 March in Darwin: still in time
    assert _by_label(_timeline(org, case))["Review due"][0].state == "today"
    CLOCK.freeze(datetime(2026, 3, 30, 14, 30, tzinfo=UTC))  # midnight: four weeks have passed
    assert _by_label(_timeline(org, case))["Review due"][0].state == "overdue"
    d.complete(case, "ceo_review", "ceo", {"review_decision": {
        "new_information_accepted": "not_accepted", "outcome": "confirm", "reason": "No criterion shown."}})
    marks = _by_label(_timeline(org, case))
    assert marks["Review due"][0].state == "past"  # decided: no longer overdue
    assert [m.kind for m in marks["Review decided"]] == ["done"]


def test_mp_l_placement_timeline_has_its_start_report_cycles_end_and_overdue_reports(org: Runtime) -> None:
    load_host_people(org)
    d = Driver(org)
    case = started(d)
    at("2026-05-20", 1)
    poll(d)
    timeline = _timeline(org, case)
    marks = _by_label(timeline)
    assert [m.when for m in marks["Placement starts"]] == [date(2026, 4, 1)]
    assert [m.when for m in marks["Agreed end"]] == [date(2027, 3, 31)]
    cycles = [m for m in timeline.marks if m.label.startswith("Report cycle ")]
    assert [m.when for m in cycles] == [date(2026, n, 1) for n in range(5, 13)] + [date(2027, n, 1) for n in (1, 2, 3)]
    assert [m.state for m in cycles[:2]] == ["past", "future"]  # 1 May has passed; 1 June is to come
    # The report due on 11 May and not filed is overdue; so are the briefings of that cycle.
    [report] = marks["File a progress report"]
    assert (report.kind, report.state, report.clause) == ("due", "overdue", "MP-E")
    assert {m.label for m in timeline.overdue} >= {"File a progress report", "Brief the home organisation on "
                                                   "performance and progress", "Induct the secondee"}
    assert [m.kind for m in marks["Reminder before the end date"]] == ["timer"]
    assert timeline.today == date(2026, 5, 20)


def test_mp_l_an_extension_shows_the_first_agreed_end_moved_to_the_new_one(org: Runtime) -> None:
    load_host_people(org)
    d = Driver(org)
    case = started(d)
    at("2027-02-17", 1)
    poll(d)
    d.complete(case, "plan_end", "supervisor", {"end_plan": {
        "decision": "extend", "new_end_date": "2027-06-30", "reason": "The ward opening moved to June."}})
    accept_all(d, case, "accept_ext")
    timeline = _timeline(org, case)
    marks = _by_label(timeline)
    [end] = marks["Agreed end"]
    assert (end.when, end.moved) == (date(2027, 6, 30), True)
    [was] = marks["Agreed end (before the extension)"]
    assert (was.when, was.kind, was.moved_to) == (date(2027, 3, 31), "moved-from", date(2027, 6, 30))
    cycles = [m.when for m in timeline.marks if m.label.startswith("Report cycle ")]
    assert cycles[-3:] == [date(2027, 4, 1), date(2027, 5, 1), date(2027, 6, 1)]  # reports go on to the new end


def test_mp_l_report_cycles_stop_at_the_placement_end() -> None:
    cycles = list(report_cycles(date(2026, 1, 31), date(2026, 7, 30), 2))  # 31 July is after the last day
    assert [(m.label, m.when) for m in cycles] == [("Report cycle 1", date(2026, 3, 31)),
                                                  ("Report cycle 2", date(2026, 5, 31))]
    assert list(report_cycles(date(2026, 1, 31), date(2026, 7, 30), None)) == []


def test_a_diagram_no_policy_claims_gets_task_and_timer_marks_and_an_overdue_task(org: Runtime) -> None:
    deploy_file(org, TIMERS_DEMO)
    assert REGISTRY.package_of("timers_demo") is None
    d = Driver(org)
    case = d.start("timers_demo", {"employee": "employee", "work_due": "2026-03-10"})
    marks = _by_label(_timeline(org, case))
    [work] = marks["Do the work"]
    assert (work.kind, work.state, work.clause, work.open) == ("due", "future", "D19-3.2", True)
    assert [m.kind for m in marks["Deadline passed"]] == [m.kind for m in marks["Weekly reminder"]] == ["timer"]
    assert [m.kind for m in marks["Case started"]] == ["milestone"]
    CLOCK.freeze(datetime(2026, 3, 12, tzinfo=UTC))  # past its due date, the scheduler not yet run
    [late] = _by_label(_timeline(org, case))["Do the work"]
    assert late.state == "overdue"
    d.complete(case, "work", "hr", {})
    [done] = _by_label(_timeline(org, case))["Do the work"]
    assert (done.kind, done.state, done.note) == ("done", "today", "done after it fell due")


def test_marks_are_in_date_order_and_a_kind_outside_the_list_is_refused(org: Runtime) -> None:
    deploy_file(org, TIMERS_DEMO)
    case = Driver(org).start("timers_demo", {"employee": "employee", "work_due": "2026-03-10"})
    timeline = _timeline(org, case)
    moments = [tl.instant(m.when, timeline.timezone) for m in timeline.marks]
    assert moments == sorted(moments) and all(m.state in tl.STATES for m in timeline.marks)
    hooks = REGISTRY.hooks_for("pay_progression").timeline

    def odd(*_args: object) -> list[tl.Mark]:
        return [tl.Mark("Odd", date(2026, 3, 3), "sometime")]

    # A case of a process whose package's hook gives a mark of no known kind (a row never stored).
    row = ProcessInstance(id=case, process_key="pay_progression", status="running", data={}, started_at=CLOCK.now())
    hooks.append(odd)
    try:
        with org.db.read() as s, pytest.raises(ValueError, match="sometime"):
            tl.build(s, row, org.settings.timezone)
    finally:
        hooks.remove(odd)
