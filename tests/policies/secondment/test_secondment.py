"""The mobility and secondment lifecycle through the real runtime, timers and database (MP-0 to MP-L).

Every scenario runs twice: straight through, and with a full save/restore (new connection pool, empty spec
cache) before every step. The placement runs from 1 April 2026 to 31 March 2027; T0 is 2 March 2026.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from engine.core.errors import Invalid
from engine.core.models import AuditEvent
from engine.people.models import Person
from engine.policies.secondment.demo import load_host_people
from engine.policies.secondment.models import PlacementSelfIdentification
from engine.workflow.access import may_view_instance
from engine.workflow.models import HumanTask, Notification, ProcessInstance, Timer
from engine.workflow.runtime import Runtime
from tests.policies.secondment.test_secondment_flow import (
    ACCEPT,
    AGREEMENT,
    APPLICATION,
    ASSESSMENT,
    BRIEFING,
    CONCERN,
    EVALUATION,
    EXPECTATIONS,
    FORECAST,
    HOME_BRIEF,
    INDUCTION,
    POST_REPORT,
    PROGRESS,
    REENTRY,
    REENTRY_PROPOSAL,
    accept_all,
    agreed,
    agreement,
    apply,
    at,
    complete_newest,
    complete_oldest,
    open_tasks,
    plan,
    poll,
    register,
    results,
    started,
    steps,
    tasks_named,
    versions,
)
from tests.workflow.driver import Driver


@pytest.fixture(params=[False, True], ids=["straight", "save-restore"])
def drive(org: Runtime, request: pytest.FixtureRequest) -> Iterator[Driver]:
    load_host_people(org)
    driver = Driver(org, restore=request.param)
    yield driver
    driver.runtime.db.dispose()


def _names(d: Driver, case: int) -> set[str]:
    return {t.name for t in open_tasks(d, case)}


def _assignee(d: Driver, case: int, name: str) -> str | None:
    task = open_tasks(d, case, name)[0]
    return task.assignee.username if task.assignee else task.assigned_group


def _audit_count(d: Driver, case: int) -> int:
    with d.runtime.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.instance_id == case)) or 0)


def _notices(d: Driver, username: str) -> list[str]:
    with d.runtime.db.read() as s:
        return list(s.scalars(select(Notification.subject).join(Person, Person.id == Notification.person_id)
                              .where(Person.username == username).order_by(Notification.id)))


def _timers(d: Driver, case: int) -> list[str]:
    with d.runtime.db.read() as s:
        return list(s.scalars(select(Timer.element).where(Timer.instance_id == case, Timer.state == "waiting")))


# ---------------------------------------------------------------------------------------------- MP-0


def test_mp_0_nothing_starts_until_all_three_accept_the_same_version(drive: Driver) -> None:
    case = apply(drive)
    plan(drive, case)
    drive.complete(case, "draft_agreement", "supervisor", AGREEMENT)
    assert {"accept_secondee", "accept_home", "accept_host"} <= _names(drive, case)
    assert _assignee(drive, case, "accept_secondee") == "employee"
    assert _assignee(drive, case, "accept_home") == "supervisor"
    assert _assignee(drive, case, "accept_host") == "host"
    drive.complete(case, "accept_secondee", "employee", ACCEPT["secondee"])
    drive.complete(case, "accept_host", "host", ACCEPT["host"])
    at("2026-04-02")  # the agreed start date has passed, but one party has not accepted
    poll(drive)
    assert "induct" not in _names(drive, case)
    assert "wait_for_start" not in _timers(drive, case)
    assert register(drive, case).status == "negotiating"
    drive.complete(case, "accept_home", "supervisor", ACCEPT["home"])
    assert "note_placement" in _names(drive, case)  # OCPE is told as soon as all three accepted (MP-O)
    poll(drive)
    assert "induct" in _names(drive, case)
    row = register(drive, case)
    assert (row.status, row.version, row.accepted_version) == ("in_progress", 1, 1)
    (v1,) = versions(drive, case)
    assert (v1.status, v1.secondee_answer, v1.home_answer, v1.host_answer) == ("accepted", "accept", "accept",
                                                                               "accept")
    assert v1.document["schedule1"]["salary_paid_by"] == "home"
    assert v1.document["schedule2"]["reporting_months"] == 1


def test_mp_0_a_change_after_acceptance_makes_a_new_version_all_three_accept_again(drive: Driver) -> None:
    case = apply(drive)
    plan(drive, case)
    drive.complete(case, "draft_agreement", "supervisor", AGREEMENT)
    drive.complete(case, "accept_secondee", "employee", ACCEPT["secondee"])
    drive.complete(case, "accept_home", "supervisor", ACCEPT["home"])
    drive.complete(case, "accept_host", "host", {"acceptance_host": {
        "decision": "request_changes", "changes": "Start on 15 April: the ward team moves that week."}})
    # Two parties accepted version 1, but one asked for a change: nothing is agreed; home drafts version 2.
    assert _names(drive, case) == {"draft_agreement"}
    data = drive.instance(case).data
    assert data["agreement_version"] == 1
    assert data["agreement_changes"] == [{"party": "host organisation",
                                          "changes": "Start on 15 April: the ward team moves that week."}]
    drive.complete(case, "draft_agreement", "supervisor", agreement(start_date="2026-04-15"))
    # Version 2 goes to all three again: the secondee's acceptance of version 1 does not carry over.
    assert {"accept_secondee", "accept_home", "accept_host"} <= _names(drive, case)
    assert drive.instance(case).data["agreement_version"] == 2
    at("2026-04-02")
    poll(drive)
    assert "wait_for_start" not in _timers(drive, case)
    accept_all(drive, case)
    assert "wait_for_start" in _timers(drive, case)
    v1, v2 = versions(drive, case)
    assert (v1.status, v1.secondee_answer, v1.home_answer, v1.host_answer) == (
        "changes_requested", "accept", "accept", "request_changes")
    assert v1.changes == ["host: Start on 15 April: the ward team moves that week."]
    assert (v2.status, v2.document["schedule1"]["start_date"]) == ("accepted", "2026-04-15")
    row = register(drive, case)
    assert (row.version, row.accepted_version, row.start_date) == (2, 2, date(2026, 4, 15))
    at("2026-04-15", 1)
    poll(drive)
    assert "induct" in _names(drive, case)


def test_mp_0_particulars_that_do_not_add_up_send_the_draft_back(drive: Driver) -> None:
    case = apply(drive)
    plan(drive, case)
    task = open_tasks(drive, case, "draft_agreement")[0]
    with pytest.raises(Invalid) as err:  # issue 16: the host contact works for the host, not for home
        drive._fresh().complete_task(drive.user("supervisor"), task.id, agreement(host_contact="supervisor"))
    assert [p.field for p in err.value.problems] == ["agreement.schedule1.host_contact"]
    with pytest.raises(Invalid) as err:  # issue 19: refused beside its field, before anything is saved
        drive._fresh().complete_task(drive.user("supervisor"), task.id, agreement(end_date="2026-03-31"))
    assert [(p.field, p.message) for p in err.value.problems] == [
        ("agreement.schedule1.end_date", "The end date must be after the start date (1 April 2026).")]
    assert _names(drive, case) == {"draft_agreement"}  # no version was issued for acceptance
    assert drive.instance(case).data["agreement_version"] == 0
    assert versions(drive, case) == []


def test_mp_0_an_incomplete_schedule_is_refused_and_nothing_changes(drive: Driver) -> None:
    case = apply(drive)
    plan(drive, case)
    bad = agreement()
    del bad["agreement"]["schedule1"]["salary_paid_by"]
    bad["agreement"]["schedule2"]["objectives"] = []
    before = _audit_count(drive, case)
    task = open_tasks(drive, case, "draft_agreement")[0]
    with pytest.raises(Invalid) as err:
        drive._fresh().complete_task(drive.user("supervisor"), task.id, bad)
    fields = {p.field for p in err.value.problems}
    assert {"agreement.schedule1.salary_paid_by", "agreement.schedule2.objectives"} <= fields
    assert _audit_count(drive, case) == before
    assert open_tasks(drive, case, "draft_agreement")[0].id == task.id


# ---------------------------------------------------------------------------------------------- MP-E


def test_mp_e_employee_applies_with_aspirations_and_learning_goals(drive: Driver) -> None:
    case = drive.start("secondment", {"route": "application", "employee": "employee",
                                      "home_contact": "supervisor"}, as_user="employee")
    assert _assignee(drive, case, "apply") == "employee"
    task = open_tasks(drive, case, "apply")[0]
    before = _audit_count(drive, case)
    with pytest.raises(Invalid) as err:  # learning goals are what the placement is for
        drive._fresh().complete_task(drive.user("employee"), task.id, {"application": {
            **APPLICATION["application"], "learning_goals": []}})
    assert [p.field for p in err.value.problems] == ["application.learning_goals"]
    assert _audit_count(drive, case) == before
    drive.complete(case, "apply", "employee", APPLICATION)
    assert _assignee(drive, case, "consider_application") == "supervisor"
    assert drive.instance(case).data["application"]["learning_goals"] == APPLICATION["application"]["learning_goals"]
    row = register(drive, case)
    assert (row.status, row.route, row.secondee, row.secondee_name) == ("applied", "application", "employee",
                                                                        "Emily Wong")
    assert row.host_organisation == "NT Health" and row.start_date == date(2026, 4, 1)


def test_mp_e_secondee_reports_progress_negotiates_re_entry_and_reports_after(drive: Driver) -> None:
    case = started(drive)
    drive.complete(case, "induct", "host", INDUCTION)
    at("2026-05-01", 1)
    poll(drive)
    assert _assignee(drive, case, "file_progress_report") == "employee"
    drive.complete(case, "file_progress_report", "employee", PROGRESS)
    assert drive.instance(case).status == "running"
    at("2027-02-17", 1)  # 42 days before 31 March 2027: the reminder
    poll(drive)
    drive.complete(case, "plan_end", "supervisor", {"end_plan": {"decision": "end_as_agreed"}})
    assert _assignee(drive, case, "propose_reentry") == "employee"
    drive.complete(case, "propose_reentry", "employee", REENTRY_PROPOSAL)
    assert _assignee(drive, case, "confirm_reentry") == "supervisor"
    drive.complete(case, "confirm_reentry", "supervisor", REENTRY)
    at("2027-04-01", 1)
    poll(drive)
    report = open_tasks(drive, case, "post_placement_report")[0]
    assert report.assignee is not None and report.assignee.username == "employee"
    assert report.due_at == datetime(2027, 4, 28, 14, 30, tzinfo=UTC)  # 28 days after, end of day in Darwin
    drive.complete(case, "post_placement_report", "employee", POST_REPORT)
    (post,) = steps(drive, case, "post_placement_report")
    assert post.outcome == "on_time"


# ---------------------------------------------------------------------------------------------- MP-H


def test_mp_h_home_publishes_an_opportunity_and_selects_the_secondee(drive: Driver) -> None:
    case = drive.start("secondment", {"route": "opportunity", "employee": None, "home_contact": "supervisor"},
                       as_user="supervisor")
    assert _assignee(drive, case, "publish_opportunity") == "supervisor"
    drive.complete(case, "publish_opportunity", "supervisor", {"opportunity": {
        "title": "Workforce data analyst", "summary": "Build NT Health's ward staffing model.",
        "host_organisation": "NT Health", "development_benefits": "Workforce modelling.",
        "eligibility": "SPAO1 and above.", "proposed_start": "2026-04-01", "proposed_months": 12,
        "closing_date": "2026-03-16", "how_to_apply": "Talk to Sam."}})
    row = register(drive, case)
    assert (row.status, row.title, row.closing_date) == ("published", "Workforce data analyst", date(2026, 3, 16))
    select_task = open_tasks(drive, case, "select_secondee")[0]
    assert select_task.due_at == datetime(2026, 3, 30, 14, 30, tzinfo=UTC)  # two weeks after closing
    drive.complete(case, "select_secondee", "supervisor", {"selection": {"secondee": "employee",
                                                                          "reasons": "Strongest case."}})
    assert _assignee(drive, case, "apply") == "employee"
    drive.complete(case, "apply", "employee", APPLICATION)
    # A selected secondee goes straight to planning: the home organisation already chose them.
    assert _names(drive, case) == {"forecast"}
    assert register(drive, case).status == "planning"
    assert register(drive, case).secondee == "employee"


def test_mp_h_home_forecasts_risks_and_sets_objectives_that_become_schedule_2(drive: Driver) -> None:
    case = apply(drive)
    assert _assignee(drive, case, "forecast") == "supervisor"
    plan(drive, case)
    draft = drive.instance(case).data["agreement"]
    assert draft["schedule2"]["objectives"] == FORECAST["forecast"]["objectives"]
    assert draft["schedule2"]["learning_goals"] == APPLICATION["application"]["learning_goals"]
    assert draft["schedule2"]["development_recording"] == EXPECTATIONS["expectations"]["development_recording"]
    assert draft["schedule1"]["host_contact"] == "host" and draft["schedule1"]["secondee"] == "employee"
    assert draft["schedule2"]["timing"] == {"induction_days": 5, "report_days": 10, "reminder_days": 42,
                                            "post_report_days": 28}


def test_mp_h_home_declines_an_application_with_reasons(drive: Driver) -> None:
    case = drive.start("secondment", {"route": "application", "employee": "employee",
                                      "home_contact": "supervisor"}, as_user="employee")
    drive.complete(case, "apply", "employee", APPLICATION)
    task = open_tasks(drive, case, "consider_application")[0]
    with pytest.raises(Invalid) as err:
        drive._fresh().complete_task(drive.user("supervisor"), task.id, {"endorsement": {"decision": "decline"}})
    assert [p.field for p in err.value.problems] == ["endorsement.reasons"]
    drive.complete(case, "consider_application", "supervisor", {"endorsement": {
        "decision": "decline", "reasons": "The rostering project cannot spare you this year; apply again in 2027."}})
    row = drive.instance(case)
    assert (row.status, row.data["outcome"]) == ("completed", "not_supported")
    assert register(drive, case).status == "not_supported"


def test_mp_h_home_briefs_the_secondee_and_keeps_contact_with_the_host(drive: Driver) -> None:
    case = started(drive)
    at("2026-05-01", 1)
    poll(drive)
    assert _assignee(drive, case, "brief_secondee") == "supervisor"
    drive.complete(case, "brief_secondee", "supervisor", HOME_BRIEF)
    (brief,) = steps(drive, case, "home_brief")
    assert (brief.outcome, brief.filed_by) == ("on_time", "supervisor")


# ---------------------------------------------------------------------------------------------- MP-T


def test_mp_t_host_agrees_expectations_or_declines_and_home_finds_another(drive: Driver) -> None:
    case = apply(drive)
    drive.complete(case, "forecast", "supervisor", FORECAST)
    assert _assignee(drive, case, "agree_expectations") == "host"
    drive.complete(case, "agree_expectations", "host", {"expectations": {
        "decision": "decline", "decline_reason": "No supervisor free until 2027."}})
    assert _names(drive, case) == {"forecast"}  # back to the home organisation to find another host
    other = {"forecast": {**FORECAST["forecast"], "host_organisation": "Charles Darwin University",
                          "host_contact": "host2"}}
    drive.complete(case, "forecast", "supervisor", other)
    assert _assignee(drive, case, "agree_expectations") == "host2"
    drive.complete(case, "agree_expectations", "host2", EXPECTATIONS)
    assert _names(drive, case) == {"draft_agreement"}
    assert drive.instance(case).data["agreement"]["schedule1"]["host_organisation"] == "Charles Darwin University"


def test_mp_t_host_inducts_soon_after_the_start_and_a_late_induction_escalates(drive: Driver) -> None:
    case = started(drive)
    induct = open_tasks(drive, case, "induct")[0]
    assert induct.assignee is not None and induct.assignee.username == "host"
    assert induct.due_at == datetime(2026, 4, 6, 14, 30, tzinfo=UTC)  # five days after 1 April, Darwin time
    at("2026-04-06", 12)
    poll(drive)
    assert _notices(drive, "supervisor") == []
    at("2026-04-07", 1)
    poll(drive)
    # The host, the home organisation and OCPE are told (escalateTo="Home,OCPE").
    for username in ("host", "supervisor", "ocpe"):
        assert "Overdue: Induct the secondee" in _notices(drive, username)
    assert "Overdue: Induct the secondee" not in _notices(drive, "employee")
    drive.complete(case, "induct", "host", INDUCTION)
    (step,) = steps(drive, case, "induction")
    assert step.outcome == "late"


def test_mp_t_host_briefs_the_home_organisation_every_cycle(drive: Driver) -> None:
    case = started(drive)
    for day in ("2026-05-01", "2026-06-01"):
        at(day, 1)
        poll(drive)
    briefings = open_tasks(drive, case, "brief_home")
    assert [b.due_at for b in briefings] == [datetime(2026, 5, 11, 14, 30, tzinfo=UTC),
                                             datetime(2026, 6, 11, 14, 30, tzinfo=UTC)]
    assert all(b.assignee is not None and b.assignee.username == "host" for b in briefings)
    complete_oldest(drive, case, "brief_home", "host", BRIEFING)
    assert [s.outcome for s in steps(drive, case, "host_briefing")] == ["late", "pending"]


# ---------------------------------------------------------------------------------------------- MP-O


def test_mp_o_ocpe_is_told_of_every_placement_sees_it_and_evaluates_it(drive: Driver) -> None:
    case = agreed(drive)
    note = open_tasks(drive, case, "note_placement")[0]
    assert note.assigned_group == "ocpe" and note.assignee is None
    with drive.runtime.db.read() as s:
        ocpe = drive.user("ocpe")
        row = s.get(ProcessInstance, case)
        assert row is not None and may_view_instance(s, ocpe, row)  # OCPE sees every placement case
    drive.complete(case, "note_placement", "ocpe", {"ocpe_notice": {"noted": True}})
    assert register(drive, case).status == "agreed"
    at("2026-04-01", 1)
    poll(drive)
    drive.complete(case, "induct", "host", INDUCTION)
    at("2027-02-17", 1)
    poll(drive)
    drive.complete(case, "plan_end", "supervisor", {"end_plan": {"decision": "end_as_agreed"}})
    drive.complete(case, "propose_reentry", "employee", REENTRY_PROPOSAL)
    drive.complete(case, "confirm_reentry", "supervisor", REENTRY)
    at("2027-04-01", 1)
    poll(drive)
    drive.complete(case, "post_placement_report", "employee", POST_REPORT)
    drive.complete(case, "assess_placement", "host", ASSESSMENT)
    drive.complete(case, "record_results", "supervisor", results(met=1))
    assert open_tasks(drive, case, "evaluate_placement")[0].assigned_group == "ocpe"
    drive.complete(case, "evaluate_placement", "ocpe", EVALUATION)
    row = drive.instance(case)
    assert (row.status, row.data["outcome"]) == ("completed", "completed")
    placement = register(drive, case)
    assert (placement.status, placement.objectives_total, placement.objectives_met) == ("closed", 2, 1)
    assert (placement.actual_end_date, placement.ended_early, placement.evaluation_value) == (
        date(2027, 3, 31), False, "high")


# ---------------------------------------------------------------------------------------------- MP-L


def test_mp_l_report_cycle_over_a_year_of_moved_clock(drive: Driver) -> None:
    case = started(drive)
    drive.complete(case, "induct", "host", INDUCTION)
    drive.complete(case, "note_placement", "ocpe", {"ocpe_notice": {"noted": True}})
    opened: list[date] = []
    for month in range(1, 12):  # 1 May 2026 ... 1 March 2027, on the agreement's monthly cycle
        year, mon = 2026 + (3 + month) // 12, (3 + month) % 12 + 1
        at(date(year, mon, 1).isoformat(), 1)
        poll(drive)
        assert len(open_tasks(drive, case, "file_progress_report")) == 1, f"one progress report on {year}-{mon:02}"
        opened.append(date(year, mon, 1))
        august = (year, mon) == (2026, 8)
        if august:  # the August report and home brief are filed late; the host never briefs for August
            at(date(year, mon, 15).isoformat())
            poll(drive)
            assert "Overdue: File a progress report" in _notices(drive, "supervisor")
        complete_newest(drive, case, "file_progress_report", "employee", PROGRESS)
        complete_newest(drive, case, "brief_secondee", "supervisor", HOME_BRIEF)
        if not august:
            complete_newest(drive, case, "brief_home", "host", BRIEFING)
    progress = steps(drive, case, "progress_report")
    assert [s.number for s in progress] == list(range(1, 12))
    assert [s.due_at.date() if s.due_at else None for s in progress] == [
        date(d.year, d.month, 11) for d in opened]
    assert [s.outcome for s in progress].count("late") == 1
    assert "plan_end" in _names(drive, case)  # the reminder came on 17 February, 42 days before the end
    drive.complete(case, "plan_end", "supervisor", {"end_plan": {"decision": "end_as_agreed"}})
    drive.complete(case, "propose_reentry", "employee", REENTRY_PROPOSAL)
    drive.complete(case, "confirm_reentry", "supervisor", REENTRY)
    at("2027-04-01", 1)
    poll(drive)
    # The placement is over: no report cycle after the end; the briefing never given is closed as missed.
    assert not open_tasks(drive, case, "file_progress_report")
    assert not open_tasks(drive, case, "brief_home")
    assert "wait_report" not in _timers(drive, case)
    row = register(drive, case)
    assert row.status == "post_placement"
    briefings = [s.outcome for s in steps(drive, case, "host_briefing") if s.outcome != "superseded"]
    assert briefings.count("missed") == 1 and briefings.count("on_time") == 10
    assert (row.reports_due, row.reports_on_time, row.reports_late, row.reports_missed) == (33, 30, 2, 1)


def test_mp_l_reminder_before_the_end_and_post_placement_report_after_it(drive: Driver) -> None:
    case = started(drive)
    at("2027-02-16", 23)  # 42 days before the end: 09:00 on 17 February in Darwin is 23:30 UTC on the 16th
    poll(drive)
    assert "plan_end" not in _names(drive, case)
    at("2027-02-17", 0)
    poll(drive)
    plan_end = open_tasks(drive, case, "plan_end")[0]
    assert plan_end.assignee is not None and plan_end.assignee.username == "supervisor"
    assert plan_end.due_at == datetime(2027, 3, 3, 14, 30, tzinfo=UTC)
    drive.complete(case, "plan_end", "supervisor", {"end_plan": {"decision": "end_as_agreed"}})
    drive.complete(case, "propose_reentry", "employee", REENTRY_PROPOSAL)
    drive.complete(case, "confirm_reentry", "supervisor", REENTRY)
    at("2027-03-31", 12)  # the last day: still in the placement
    poll(drive)
    assert "post_placement_report" not in _names(drive, case)
    at("2027-04-01", 1)
    poll(drive)
    assert {"post_placement_report", "assess_placement"} <= _names(drive, case)
    assert not {n for n in _names(drive, case) if n.startswith("raise_concern")}  # the placement is over
    at("2027-04-29", 1)  # the post-placement report was due on 28 April
    poll(drive)
    assert "Overdue: Write your post-placement report" in _notices(drive, "supervisor")
    assert register(drive, case).status == "post_placement"


def test_mp_l_an_extension_is_a_new_version_that_moves_the_end(drive: Driver) -> None:
    case = started(drive)
    at("2027-02-17", 1)
    poll(drive)
    task = open_tasks(drive, case, "plan_end")[0]
    with pytest.raises(Invalid) as err:  # an extension must end after the current end date (issue 19: at once)
        drive._fresh().complete_task(drive.user("supervisor"), task.id, {"end_plan": {
            "decision": "extend", "new_end_date": "2027-03-01", "reason": "Too short."}})
    assert [p.field for p in err.value.problems] == ["end_plan.new_end_date"]
    assert "plan_end" in _names(drive, case) and "accept_ext_home" not in _names(drive, case)
    assert versions(drive, case)[-1].version == 1
    drive.complete(case, "plan_end", "supervisor", {"end_plan": {
        "decision": "extend", "new_end_date": "2027-06-30", "reason": "The ward opening moved to June."}})
    assert {"accept_ext_secondee", "accept_ext_home", "accept_ext_host"} <= _names(drive, case)
    accept_all(drive, case, "accept_ext")
    assert "plan_end" not in _names(drive, case)
    row = register(drive, case)
    assert (row.end_date, row.extensions, row.version, row.accepted_version) == (date(2027, 6, 30), 1, 2, 2)
    _v1, v2 = versions(drive, case)
    assert (v2.kind, v2.status, v2.document["schedule1"]["end_date"]) == ("extension", "accepted", "2027-06-30")
    at("2027-04-01", 1)  # the old end date passes: the placement goes on, reports continue
    poll(drive)
    assert "file_progress_report" in _names(drive, case)
    assert "post_placement_report" not in _names(drive, case)
    at("2027-05-19", 1)  # 42 days before 30 June: the reminder again
    poll(drive)
    assert "plan_end" in _names(drive, case)


def test_mp_l_a_concern_opens_its_own_path_while_the_placement_goes_on(drive: Driver) -> None:
    case = started(drive)
    assert {"raise_concern_employee", "raise_concern_home", "raise_concern_host"} <= _names(drive, case)
    drive.complete(case, "raise_concern_employee", "employee", CONCERN)
    assert _assignee(drive, case, "discuss_concern") == "host"
    assert "raise_concern_employee" in _names(drive, case)  # another concern can be raised at once
    drive.complete(case, "raise_concern_home", "supervisor", {"concern": {
        "category": "safety", "details": "Reports of unsafe lifting in the store room.", "urgent": True}})
    assert len(open_tasks(drive, case, "discuss_concern")) == 2
    complete_oldest(drive, case, "discuss_concern", "host", {"concern_discussion": {
        "discussed_with": ["secondee", "home"], "summary": "Scope trimmed.", "outcome": "resolved"}})
    complete_oldest(drive, case, "discuss_concern", "host", {"concern_discussion": {
        "discussed_with": ["host"], "summary": "Store room is off limits.", "outcome": "refer"}})
    drive.complete(case, "decide_concern", "supervisor", {"concern_decision": {
        "decision": "continue", "actions": "Host confirms the store-room rule in writing.", "reason": "Managed."}})
    assert not open_tasks(drive, case, "discuss_concern") and not open_tasks(drive, case, "decide_concern")
    assert "induct" in _names(drive, case)  # the rest of the placement was never held up
    row = register(drive, case)
    assert (row.concerns_raised, row.concerns_open, row.status) == (2, 0, "in_progress")


def test_mp_l_a_concern_can_end_the_placement_early(drive: Driver) -> None:
    case = started(drive)
    at("2026-06-10")
    poll(drive)
    drive.complete(case, "raise_concern_host", "host", CONCERN)
    drive.complete(case, "discuss_concern", "host", {"concern_discussion": {
        "discussed_with": ["secondee", "home"], "summary": "Cannot be fixed here.", "outcome": "refer"}})
    task = open_tasks(drive, case, "decide_concern")[0]
    with pytest.raises(Invalid):  # ending early needs the last day
        drive._fresh().complete_task(drive.user("supervisor"), task.id, {"concern_decision": {
            "decision": "end_early", "reason": "The role no longer exists."}})
    drive.complete(case, "decide_concern", "supervisor", {"concern_decision": {
        "decision": "end_early", "last_day": "2026-06-30", "reason": "The role no longer exists."}})
    assert {"propose_reentry"} <= _names(drive, case)
    drive.complete(case, "propose_reentry", "employee", REENTRY_PROPOSAL)
    drive.complete(case, "confirm_reentry", "supervisor", REENTRY)
    at("2026-07-01", 1)
    poll(drive)
    report = open_tasks(drive, case, "post_placement_report")[0]
    assert report.due_at == datetime(2026, 7, 28, 14, 30, tzinfo=UTC)
    assert drive.instance(case).data["data_objects"]["placement_dates"]["ended_early"] is True
    row = register(drive, case)
    assert (row.actual_end_date, row.end_date, row.ended_early) == (date(2026, 6, 30), date(2027, 3, 31), True)


def test_mp_l_an_early_end_during_the_final_weeks_moves_the_last_day(drive: Driver) -> None:
    case = started(drive)
    at("2027-02-17", 1)
    poll(drive)
    drive.complete(case, "plan_end", "supervisor", {"end_plan": {"decision": "end_as_agreed"}})
    drive.complete(case, "raise_concern_employee", "employee", CONCERN)
    drive.complete(case, "discuss_concern", "host", {"concern_discussion": {
        "discussed_with": ["secondee"], "summary": "Burnt out.", "outcome": "refer"}})
    drive.complete(case, "decide_concern", "supervisor", {"concern_decision": {
        "decision": "end_early", "last_day": "2027-03-05", "reason": "Wellbeing."}})
    drive.complete(case, "propose_reentry", "employee", REENTRY_PROPOSAL)
    drive.complete(case, "confirm_reentry", "supervisor", REENTRY)
    at("2027-03-06", 1)
    poll(drive)
    assert "post_placement_report" in _names(drive, case)
    assert register(drive, case).actual_end_date == date(2027, 3, 5)


def test_mp_l_each_late_step_escalates_once(drive: Driver) -> None:
    case = started(drive)
    at("2026-05-12", 1)  # induction (6 April) and the first reports (11 May) are late
    poll(drive)
    poll(drive)  # a second tick tells nobody twice
    with drive.runtime.db.read() as s:
        escalated = sorted(s.scalars(select(HumanTask.name).where(
            HumanTask.instance_id == case, HumanTask.escalated_at.is_not(None))))
    assert escalated == ["brief_home", "brief_secondee", "file_progress_report", "induct", "note_placement"]
    home = _notices(drive, "supervisor")
    assert home.count("Overdue: File a progress report") == 1
    assert home.count("Overdue: Induct the secondee") == 1
    assert "Overdue: Brief the home organisation on performance and progress" in _notices(drive, "ocpe")
    assert tasks_named(drive, case, "file_progress_report")[0].escalated_at is not None


def test_mp_o_self_identification_in_the_application_never_reaches_the_case(drive: Driver) -> None:
    case = drive.start("secondment", {"route": "application", "employee": "employee"}, as_user="employee")
    task = open_tasks(drive, case, "apply")[0]
    before = _audit_count(drive, case)
    with pytest.raises(Invalid) as err:  # only the offered answers are accepted
        drive._fresh().complete_task(drive.user("employee"), task.id, {"application": {
            **APPLICATION["application"], "self_identification": {"gender": "robot"}}})
    assert [p.field for p in err.value.problems] == ["application.self_identification.gender"]
    assert _audit_count(drive, case) == before
    drive.complete(case, "apply", "employee", {"application": {
        **APPLICATION["application"], "self_identification": {"gender": "woman", "atsi": "prefer_not_to_say"}}})
    data = drive.instance(case).data
    assert "self_identification" not in data["application"]
    assert data["application"]["aspirations"] == APPLICATION["application"]["aspirations"]
    with drive.runtime.db.read() as s:
        history = [e.detail for e in s.scalars(select(AuditEvent).where(AuditEvent.instance_id == case))]
        answers = s.scalars(select(PlacementSelfIdentification).where(
            PlacementSelfIdentification.instance_id == case)).one()
    assert "woman" not in str(history) and "self_identification" not in str(history)
    assert (answers.gender, answers.atsi, answers.disability) == ("woman", "prefer_not_to_say", None)


def test_mp_o_ocpe_and_the_home_organisation_are_told(drive: Driver) -> None:
    case = agreed(drive)
    assert [n for n in _notices(drive, "ocpe") if n.startswith("New placement")] == [
        "New placement: Mobility and secondment placement — Emily Wong"]
    at("2026-04-01", 1)
    poll(drive)
    drive.complete(case, "raise_concern_host", "host", CONCERN)
    assert any(n.startswith("Concern raised") for n in _notices(drive, "supervisor"))
    assert not any(n.startswith("Concern raised") for n in _notices(drive, "employee"))


def test_mp_l_tasks_that_act_on_one_branch_carry_its_facts(drive: Driver) -> None:
    case = started(drive)
    drive.complete(case, "raise_concern_employee", "employee", CONCERN)
    discuss = open_tasks(drive, case, "discuss_concern")[0]
    assert "raised by the secondee (employee)" in (discuss.instructions or "")
    assert CONCERN["concern"]["details"] in (discuss.instructions or "")
    at("2027-02-17", 1)
    poll(drive)
    with pytest.raises(Invalid) as err:  # issue 19: refused beside its field instead of coming back
        drive._fresh().complete_task(drive.user("supervisor"), open_tasks(drive, case, "plan_end")[0].id, {
            "end_plan": {"decision": "extend", "new_end_date": "2027-02-01", "reason": "Oops."}})
    assert [(p.field, p.message) for p in err.value.problems] == [
        ("end_plan.new_end_date", "An extension must end after the current end date, 31 March 2027.")]
    drive.complete(case, "plan_end", "supervisor", {"end_plan": {
        "decision": "extend", "new_end_date": "2027-06-30", "reason": "Ward opening moved."}})
    accept = open_tasks(drive, case, "accept_ext_host")[0]
    assert "move the end date from 2027-03-31 to 2027-06-30. Reason: Ward opening moved." in (accept.instructions or "")
    drive.complete(case, "accept_ext_secondee", "employee", ACCEPT["secondee"])
    drive.complete(case, "accept_ext_home", "supervisor", ACCEPT["home"])
    drive.complete(case, "accept_ext_host", "host", {"acceptance_host": {
        "decision": "request_changes", "changes": "End of May {{ 7 * 7 }} please."}})
    text = open_tasks(drive, case, "plan_end")[0].instructions or ""
    assert "was not accepted. Changes asked for: host: End of May { { 7 * 7 } } please." not in text
    assert "{% raw %}" in text and "End of May {{ 7 * 7 }} please." in text  # shown as typed, never run


def test_mp_o_a_cancelled_placement_stays_in_the_register_as_cancelled(drive: Driver) -> None:
    case = apply(drive)
    plan(drive, case)
    drive.complete(case, "draft_agreement", "supervisor", AGREEMENT)
    drive.complete(case, "accept_secondee", "employee", ACCEPT["secondee"])
    drive._fresh().cancel(drive.user("hr"), case, "The host's funding was withdrawn.")
    row = register(drive, case)
    assert row.status == "cancelled"
    (v1,) = versions(drive, case)
    assert (v1.status, v1.secondee_answer, v1.home_answer) == ("withdrawn", "accept", None)


# ---------------------------------------------------------------------------------------- contacts (issue 16)


@pytest.mark.parametrize(("contact", "refused"), [
    ("host", "is not of Emily Wong's organisation"),   # another organisation's officer
    ("engineer", "has no standing"),                    # a colleague of hers, not in her line
    ("employee", "cannot be the applicant"),
    ("manager", None),                                  # her manager
    ("hr", None),                                       # HR of her organisation
])
def test_mp_h_the_home_contact_is_someone_the_policy_gives_standing(drive: Driver, contact: str,
                                                                    refused: str | None) -> None:
    data = {"route": "application", "employee": "employee", "home_contact": contact}
    if refused is None:
        assert drive.start("secondment", data, as_user="employee")
        return
    with pytest.raises(Invalid) as err:
        drive.start("secondment", data, as_user="employee")
    assert [p.field for p in err.value.problems] == ["home_contact"]
    assert refused in err.value.problems[0].message


@pytest.mark.parametrize(("contact", "refused"), [
    ("nobody", "no person with this username"),
    ("manager", "of Emily Wong's own organisation"),
    ("employee", "the secondee cannot also be the host contact"),
])
def test_mp_t_the_host_contact_works_for_the_host(drive: Driver, contact: str, refused: str) -> None:
    case = apply(drive)
    task = open_tasks(drive, case, "forecast")[0]
    forecast = {"forecast": {**FORECAST["forecast"], "host_contact": contact}}
    with pytest.raises(Invalid) as err:
        drive._fresh().complete_task(drive.user("supervisor"), task.id, forecast)
    assert [p.field for p in err.value.problems] == ["forecast.host_contact"]
    assert refused in err.value.problems[0].message
    drive.complete(case, "forecast", "supervisor", FORECAST)


def test_mp_o_the_register_counts_days_in_the_settings_time_zone(org: Runtime) -> None:
    """Issue 17: settings reach the hooks; the register read NTPSWF_TIMEZONE from the environment, so a time zone
    given in Settings was ignored. 2026-03-02 00:00 UTC is still 1 March in Los Angeles."""
    from dataclasses import replace

    from engine.policies.secondment.models import Placement

    elsewhere = Runtime(org.db, replace(org.settings, timezone="America/Los_Angeles"))
    case = Driver(elsewhere).start("secondment", {"route": "application", "employee": "employee",
                                                  "home_contact": "supervisor"}, as_user="employee")
    with org.db.read() as s:
        placement = s.scalars(select(Placement).where(Placement.instance_id == case)).one()
        assert placement.proposed_on == date(2026, 3, 1)
