"""Helpers that walk secondment cases through the real runtime, as the people in the lanes would.

Named test_*.py so that it belongs to this area's tests; it holds no tests itself. The placement in these
helpers runs from 1 April 2026 to 31 March 2027 (T0 is 2 March 2026): NT Health hosts Emily Wong (`employee`),
Sam Okafor (`supervisor`) is the home contact, Hana Ito (`host`) the host contact.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from engine.core.clock import CLOCK
from engine.policies.secondment.models import Placement, PlacementAgreementVersion, PlacementReport
from engine.policies.secondment.projection import refresh_register
from engine.workflow.models import HumanTask
from engine.workflow.timers import TimerService
from tests.workflow.driver import Driver

START_DATE = "2026-04-01"
END_DATE = "2027-03-31"

APPLICATION = {"application": {
    "aspirations": "Lead workforce planning for a health service within five years.",
    "commitment": "Full time for twelve months; I will keep a learning journal.",
    "learning_goals": ["Workforce modelling with real rostering data", "Leading a cross-agency working group"],
    "preferred_host": "NT Health", "preferred_start": START_DATE, "preferred_months": 12}}
ENDORSE = {"endorsement": {"decision": "endorse", "development_value": "Builds our planning capability."}}
FORECAST = {"forecast": {
    "host_organisation": "NT Health", "host_contact": "host", "host_position": "Senior Analyst (AO7)",
    "proposed_start": START_DATE, "proposed_end": END_DATE, "hours_per_week": 36.75,
    "risks": [{"risk": "The port's rostering project loses its lead for a year", "likelihood": "medium",
               "mitigation": "Clerk acts in the role with weekly check-ins"}],
    "objectives": [
        {"objective": "Build the staffing model for the new wards", "measure": "Adopted by the planning committee"},
        {"objective": "Run the cross-agency rostering working group", "measure": "Six meetings with minutes"},
    ]}}
EXPECTATIONS = {"expectations": {
    "decision": "agree", "performance_expectations": "Deliver the staffing model by December.",
    "feedback_process": "Fortnightly one-to-ones with the director.",
    "development_recording": "Learning journal reviewed monthly; assessed against the goals at the end.",
    "learning_opportunities": "Ward planning committee; rostering system training.",
    "induction_plan": "Day one with the workforce team; WHS induction in week one.",
    "resources": "Laptop, rostering system access, desk in the planning unit.",
    "safety": "Standard office WHS induction; no clinical areas without escort."}}
AGREEMENT: dict[str, Any] = {"agreement": {
    "schedule1": {
        "home_organisation": "Darwin Port Corporation", "host_organisation": "NT Health",
        "home_contact": "supervisor", "host_contact": "host", "secondee": "employee",
        "home_position": "Senior Port Administrative Officer 1", "host_position": "Senior Analyst (AO7)",
        "start_date": START_DATE, "end_date": END_DATE, "hours_per_week": 36.75,
        "salary_paid_by": "home", "costs_paid_by": "host", "cost_arrangements": "NT Health pays travel."},
    "schedule2": {
        "objectives": copy.deepcopy(FORECAST["forecast"]["objectives"]),
        "learning_goals": list(APPLICATION["application"]["learning_goals"]),
        "reporting_months": 1, "leave": "Applied for at home, approved with the host's agreement.",
        "reentry": "Returns to her substantive position.",
        "early_termination": {"notice_days": 14, "conditions": "Any party, with reasons, after discussion."},
        "timing": {"induction_days": 5, "report_days": 10, "reminder_days": 42, "post_report_days": 28}}}}
ACCEPT = {party: {f"acceptance_{party}": {"decision": "accept"}} for party in ("secondee", "home", "host")}
ACCEPTORS = {"secondee": "employee", "home": "supervisor", "host": "host"}
INDUCTION = {"induction": {"inducted_on": "2026-04-02", "covered": ["business", "safety", "resources"],
                           "resources": "Laptop and access."}}
PROGRESS = {"progress_report": {"objectives_progress": "Model drafted.", "learning_progress": "Journal kept.",
                                "feedback_sought": True}}
BRIEFING = {"host_briefing": {"performance": "meets", "progress": "On track."}}
HOME_BRIEF = {"home_brief": {"events": "New harbour master appointed.", "host_contacted": True}}
CONCERN = {"concern": {"category": "work", "details": "Workload doubled after the ward opening was brought forward."}}
REENTRY_PROPOSAL = {"reentry_proposal": {"return_position": "SPAO1 rostering lead", "return_date": "2027-04-01",
                                         "sharing_learning": "A lunchtime session on workforce models."}}
REENTRY = {"reentry": {"return_position": "SPAO1 rostering lead", "return_date": "2027-04-01",
                       "arrangements": "Back in the rostering team; presents the model in April.",
                       "agreed_with_employee": True}}
POST_REPORT = {"post_report": {"objectives": "Model adopted.", "learning": "Both goals met.",
                               "applying_learning": "Our own rostering model."}}
ASSESSMENT = {"host_assessment": {"performance": "exceeds", "development": "Journal shows steady growth."}}
EVALUATION = {"evaluation": {"value": "high", "lessons": "Cross-agency placements pay off.",
                             "report_to_stakeholders": True}}


def results(met: int = 2) -> dict[str, Any]:
    """The home organisation's record of which objectives were met (the first `met` of two)."""
    out = []
    for i, o in enumerate(FORECAST["forecast"]["objectives"]):
        out.append({**o, "result": "met" if i < met else "not_met", "evidence": "See the post-placement report."})
    return {"objective_results": {"results": out}}


def agreement(**schedule1: Any) -> dict[str, Any]:
    """The agreement with some Schedule 1 particulars changed."""
    doc = copy.deepcopy(AGREEMENT)
    doc["agreement"]["schedule1"].update(schedule1)
    return doc


def at(day: str, hour: int = 0) -> None:
    """Move the frozen clock to 00:00 UTC (+hour) on `day` (never backwards)."""
    target = datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(hours=hour)
    assert target >= CLOCK.now(), f"the clock only moves forward ({CLOCK.now()} -> {target})"
    CLOCK.advance(target - CLOCK.now())


def poll(d: Driver) -> int:
    """One scheduler tick, as the real scheduler runs it: fire due timers, escalate late tasks."""
    return TimerService(d.runtime).poll()


def apply(d: Driver) -> int:
    """Emily applies (MP-E) and her supervisor endorses it (MP-H): the case waits for the forecast."""
    case = d.start("secondment", {"route": "application", "employee": "employee", "home_contact": "supervisor"},
                   as_user="employee")
    d.complete(case, "apply", "employee", APPLICATION)
    d.complete(case, "consider_application", "supervisor", ENDORSE)
    return case


def plan(d: Driver, case: int) -> None:
    """The home forecasts and sets objectives (MP-H); the host agrees expectations (MP-T)."""
    d.complete(case, "forecast", "supervisor", FORECAST)
    d.complete(case, "agree_expectations", "host", EXPECTATIONS)


def accept_all(d: Driver, case: int, prefix: str = "accept") -> None:
    """All three parties accept the version in front of them."""
    for party, username in ACCEPTORS.items():
        d.complete(case, f"{prefix}_{party}", username, ACCEPT[party])


def agreed(d: Driver) -> int:
    """A placement agreed by all three parties, waiting for its start date."""
    case = apply(d)
    plan(d, case)
    d.complete(case, "draft_agreement", "supervisor", AGREEMENT)
    accept_all(d, case)
    return case


def started(d: Driver) -> int:
    """A placement on its first day (1 April 2026, after 9 am Darwin time)."""
    case = agreed(d)
    at("2026-04-01", 1)
    poll(d)
    return case


def open_tasks(d: Driver, case: int, name: str | None = None) -> list[HumanTask]:
    """The case's open task rows (optionally of one element), oldest first."""
    with d.runtime.db.read() as s:
        q = select(HumanTask).where(HumanTask.instance_id == case, HumanTask.state == "open")
        if name:
            q = q.where(HumanTask.name == name)
        rows = list(s.scalars(q.order_by(HumanTask.id)))
        for r in rows:
            _ = r.assignee
        return rows


def tasks_named(d: Driver, case: int, name: str) -> list[HumanTask]:
    """Every task row of one element, in any state, oldest first."""
    with d.runtime.db.read() as s:
        return list(s.scalars(select(HumanTask).where(HumanTask.instance_id == case, HumanTask.name == name)
                              .order_by(HumanTask.id)))


def complete_oldest(d: Driver, case: int, name: str, username: str, data: dict[str, Any]) -> None:
    """Complete the oldest open task of one element (several may be open at once)."""
    task = open_tasks(d, case, name)[0]
    d._fresh().complete_task(d.user(username), task.id, data)


def complete_newest(d: Driver, case: int, name: str, username: str, data: dict[str, Any]) -> None:
    """Complete the most recently opened task of one element."""
    task = open_tasks(d, case, name)[-1]
    d._fresh().complete_task(d.user(username), task.id, data)


def register(d: Driver, case: int) -> Placement:
    """The case's row in OCPE's register, brought up to date first."""
    refresh_register(d.runtime.db, d.runtime.settings.timezone)
    with d.runtime.db.read() as s:
        row = s.get(Placement, case)
        assert row is not None
        return row


def versions(d: Driver, case: int) -> list[PlacementAgreementVersion]:
    """The case's agreement versions in the register, oldest first."""
    refresh_register(d.runtime.db, d.runtime.settings.timezone)
    with d.runtime.db.read() as s:
        return list(s.scalars(select(PlacementAgreementVersion).where(
            PlacementAgreementVersion.instance_id == case).order_by(PlacementAgreementVersion.version)))


def steps(d: Driver, case: int, kind: str | None = None) -> list[PlacementReport]:
    """The case's timed steps in the register (optionally of one kind), in order."""
    refresh_register(d.runtime.db, d.runtime.settings.timezone)
    with d.runtime.db.read() as s:
        q = select(PlacementReport).where(PlacementReport.instance_id == case)
        if kind:
            q = q.where(PlacementReport.kind == kind)
        return list(s.scalars(q.order_by(PlacementReport.id)))
