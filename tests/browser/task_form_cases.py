"""Every user task form of both policies, each with how to reach its task and how to fill it.

One `FormCase` per form file (tests/browser/test_task_forms.py checks that the BPMN user tasks name exactly these
forms, so a new form without a case fails). `reach` drives a fresh case through the real runtime, as the people
in the lanes would, to the point where the task is open (moving the frozen clock and firing timers where a timer
must pass); `fill` is what the person types on the page (field path -> value); `blank` is the required field
left empty on the first try; `broken` is a cross-field rule broken on the second try (the field it names must carry
the error). The data of the policy tests is reused, so the browser proves the same answers the engine accepts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from engine.policies.pay_progression.leave import record_leave
from engine.workflow.models import ProcessInstance
from tests.policies.pay_progression.test_pay_progression import (
    INVITE,
    RECOMMEND_YES,
    REFUSE,
    REVIEW,
    START,
    SUBMIT,
)
from tests.policies.secondment.test_secondment_flow import (
    ACCEPT,
    AGREEMENT,
    APPLICATION,
    ASSESSMENT,
    CONCERN,
    EXPECTATIONS,
    FORECAST,
    POST_REPORT,
    REENTRY,
    REENTRY_PROPOSAL,
    agreed,
    apply,
    at,
    plan,
    poll,
    results,
    started,
)
from tests.workflow.driver import Driver

Reach = Callable[[Driver], int]


@dataclass(frozen=True)
class FormCase:
    form: str  # the form file
    task: str  # the BPMN user task that shows it
    user: str  # the demo person who works it
    reach: Reach
    fill: dict[str, Any]  # field path -> value (a list ticks checkboxes, None clears)
    blank: str  # a required field left empty on the first try
    broken: tuple[dict[str, Any], str] | None = None  # a cross-field rule broken, and the field that names it
    later: dict[str, Any] = field(default_factory=dict)  # fields to fill only for the valid submission


# ------------------------------------------------------------------ pay progression (Determination 19)


def _cancel_cycles(d: Driver) -> None:
    """Cancel the running cycles (the demo's, an earlier test's): one cycle per employee at a time (D19-5)."""
    with d.runtime.db.read() as s:
        running = list(s.scalars(select(ProcessInstance.id).where(
            ProcessInstance.process_key == "pay_progression", ProcessInstance.status == "running")))
    for case in running:
        d.runtime.cancel(d.user("admin"), case, "Browser test: one cycle per employee")


def _fresh_cycle(d: Driver, start: dict[str, Any] | None = None) -> int:
    """A new cycle for Emily Wong, assessed on 30 June 2026."""
    _cancel_cycles(d)
    return d.start("pay_progression", start or START)


def _invited(d: Driver, start: dict[str, Any] | None = None) -> int:
    case = _fresh_cycle(d, start)
    d.complete(case, "invite_submission", "supervisor", INVITE)
    return case


def _submitted(d: Driver, start: dict[str, Any] | None = None) -> int:
    case = _invited(d, start)
    d.complete(case, "make_submission", "employee", SUBMIT)
    return case


def _recommended(d: Driver) -> int:
    case = _submitted(d)
    d.complete(case, "recommend", "supervisor", RECOMMEND_YES)
    return case


def _refused(d: Driver) -> int:
    case = _recommended(d)
    d.complete(case, "decide", "manager", REFUSE)
    return case


def _review_asked(d: Driver) -> int:
    case = _refused(d)
    d.complete(case, "consider_review", "employee", REVIEW)
    return case


def _confirmed(d: Driver) -> int:
    case = _review_asked(d)
    d.complete(case, "ceo_review", "ceo", {"review_decision": {
        "new_information_accepted": "not_accepted", "outcome": "confirm", "reason": "No criterion shown."}})
    return case


def _s59_lodged(d: Driver) -> int:
    case = _confirmed(d)
    d.complete(case, "consider_s59", "employee", {"s59_request": {
        "lodged": "lodged", "lodged_on": "2026-03-02", "reference": "OCPE-2026-117"}})
    return case


def _new_timeframe_asked(d: Driver) -> int:
    case = _invited(d)
    record_leave(d.runtime, d.user("hr"), "employee", {
        "kind": "extended", "start": "2026-02-02", "end": "2026-05-01", "counts_as_service": True})
    d.complete(case, "make_submission", "employee", {"submission": {
        "participate": "new_timeframe", "new_timeframe_request": "Three months' leave, February to April."}})
    return case


TRANSFER = {"former_position": "Senior Port Administrative Officer 1, Marine Pilotage", "former_manager": "ceo",
            "former_start": "2024-06-03", "former_end": "2025-06-27"}
PARTIAL = [{"start": "2025-09-01", "end": "2025-09-30", "classification": "SPAO2", "full_duties": False}]
YEAR_ON_HD = [{"start": "2025-06-30", "end": "2026-06-29", "classification": "SPAO2", "full_duties": True}]


def _former_to_assess(d: Driver) -> int:
    case = _invited(d, {**START, "transfer": TRANSFER})
    d.complete(case, "make_submission", "employee", {"submission": {
        **SUBMIT["submission"], "evidence_former_position": "Ran the pilotage roster rebuild."}})
    return case


def _nominal_to_assess(d: Driver) -> int:
    case = _submitted(d, {**START, "higher_duties": YEAR_ON_HD,
                          "higher_duties_level": {"classification": "SPAO2", "pay_point": "SPAO2-1"}})
    d.complete(case, "recommend", "supervisor", RECOMMEND_YES)
    d.complete(case, "decide", "manager", REFUSE)
    return case


def _agreement_to_record(d: Driver) -> int:
    _cancel_cycles(d)
    return d.start("performance_agreement", {"employee": "employee", "agreement": {
        "start": "2025-07-01", "end": "2026-07-01", "targets": ["Deliver the berth booking system"],
        "supervisor": "supervisor", "approver": "manager"}})


PAY_PROGRESSION = [
    FormCase("invite_submission.json", "invite_submission", "supervisor", _fresh_cycle,
             {"invitation.message": "Please make your submission by 29 May.",
              "invitation.submission_due": "2026-05-29"},
             "invitation.message", ({"invitation.submission_due": "2026-07-15"}, "invitation.submission_due")),
    FormCase("make_submission.json", "make_submission", "employee", _invited,
             {"submission.participate": "submit", "submission.targets_met": True,
              "submission.criteria": ["new_projects"],
              "submission.evidence.new_projects": "Delivered the wharf booking system two months early."},
             "submission.participate",
             ({"submission.evidence.new_projects": None}, "submission.evidence")),
    FormCase("recommend.json", "recommend", "supervisor", _submitted,
             {"recommendation.recommend": "approve"}, "recommendation.recommend",
             ({"recommendation.recommend": "not_approve", "recommendation.employee_advised": True},
              "recommendation.reason")),
    FormCase("decide.json", "decide", "manager", _recommended,
             {"decision.approve": "approve"}, "decision.approve",
             ({"decision.approve": "refuse"}, "decision.reason")),
    FormCase("d19_review_request.json", "consider_review", "employee", _refused,
             {"review_request.request": "review",
              "review_request.grounds": "The wharf system was a new project, delivered early."},
             "review_request.grounds",
             ({"review_request.grounds": None}, "review_request.grounds")),
    FormCase("d19_ceo_review.json", "ceo_review", "ceo", _review_asked,
             {"review_decision.new_information_accepted": "not_accepted", "review_decision.outcome": "confirm",
              "review_decision.reason": "The original evidence does not show a criterion."},
             "review_decision.reason"),
    FormCase("d19_s59_request.json", "consider_s59", "employee", _confirmed,
             {"s59_request.lodged": "lodged", "s59_request.lodged_on": "2026-03-02",
              "s59_request.reference": "OCPE-2026-117"},
             "s59_request.lodged", ({"s59_request.lodged_on": "2026-03-20"}, "s59_request.lodged_on")),
    FormCase("d19_s59_outcome.json", "record_s59_outcome", "hr", _s59_lodged,
             {"s59_outcome.decided_on": "2026-03-02", "s59_outcome.result": "progression",
              "s59_outcome.summary": "The review found the wharf system met the new projects criterion."},
             "s59_outcome.summary", ({"s59_outcome.decided_on": "2026-03-01"}, "s59_outcome.decided_on")),
    FormCase("d19_new_timeframe.json", "agree_new_timeframe", "supervisor", _new_timeframe_asked,
             {"new_timeframe.agree": "agree", "new_timeframe.basis": "extended_leave",
              "new_timeframe.new_date": "2026-09-30",
              "new_timeframe.reason": "Three months of extended leave; three more months of duty."},
             "new_timeframe.reason", ({"new_timeframe.new_date": "2026-06-01"}, "new_timeframe.new_date")),
    FormCase("d19_former_assessment.json", "assess_former_position", "ceo", _former_to_assess,
             {"former_assessment.supports": "yes",
              "former_assessment.comments": "The roster rebuild was a new project delivered early."},
             "former_assessment.comments"),
    FormCase("d19_higher_duties.json", "assess_higher_duties", "manager",
             lambda d: _fresh_cycle(d, {**START, "higher_duties": PARTIAL}),
             {"hd_assessment.special_circumstances": "do_not_exist",
              "hd_assessment.reason": "Only the rostering half of the role was performed."},
             "hd_assessment.reason"),
    FormCase("d19_nominal_level.json", "assess_nominal_level", "manager", _nominal_to_assess,
             {"nominal_assessment.would_satisfy": "yes",
              "nominal_assessment.reason": "At SPAO1 the same projects exceed the targets."},
             "nominal_assessment.reason"),
    FormCase("d19_performance_agreement.json", "record_agreement", "hr", _agreement_to_record,
             {}, "agreement.supervisor", ({"agreement.end": "2025-06-01"}, "agreement.end"),
             later={"agreement.supervisor": "supervisor", "agreement.end": "2026-07-01"}),
]


# ------------------------------------------------------------------ placements (the mobility policy)


def _application(d: Driver) -> int:
    return d.start("secondment", {"route": "application", "employee": "employee", "home_contact": "supervisor"},
                   as_user="employee")


def _applied(d: Driver) -> int:
    case = _application(d)
    d.complete(case, "apply", "employee", APPLICATION)
    return case


def _opportunity(d: Driver) -> int:
    return d.start("secondment", {"route": "opportunity", "employee": None, "home_contact": "supervisor"},
                   as_user="supervisor")


OPPORTUNITY = {"opportunity.title": "Workforce data analyst", "opportunity.summary": "Build the ward staffing model.",
               "opportunity.host_organisation": "NT Health", "opportunity.development_benefits": "Modelling.",
               "opportunity.eligibility": "SPAO1 and above.", "opportunity.proposed_start": "2026-04-01",
               "opportunity.proposed_months": 12, "opportunity.closing_date": "2026-03-16",
               "opportunity.how_to_apply": "Talk to Sam."}


def _published(d: Driver) -> int:
    case = _opportunity(d)
    d.complete(case, "publish_opportunity", "supervisor", {"opportunity": {
        k.split(".", 1)[1]: v for k, v in OPPORTUNITY.items()}})
    return case


def _forecast_made(d: Driver) -> int:
    case = apply(d)
    d.complete(case, "forecast", "supervisor", FORECAST)
    return case


def _planned(d: Driver) -> int:
    case = apply(d)
    plan(d, case)
    return case


def _drafted(d: Driver) -> int:
    case = _planned(d)
    d.complete(case, "draft_agreement", "supervisor", AGREEMENT)
    return case


def _second_month(d: Driver) -> int:
    case = started(d)
    at("2026-05-01", 1)
    poll(d)
    return case


def _concern_raised(d: Driver) -> int:
    case = started(d)
    d.complete(case, "raise_concern_employee", "employee", CONCERN)
    return case


def _concern_discussed(d: Driver) -> int:
    case = started(d)
    at("2026-06-10")
    poll(d)
    d.complete(case, "raise_concern_host", "host", CONCERN)
    d.complete(case, "discuss_concern", "host", {"concern_discussion": {
        "discussed_with": ["secondee", "home"], "summary": "Cannot be fixed here.", "outcome": "refer"}})
    return case


def _near_the_end(d: Driver) -> int:
    case = started(d)
    at("2027-02-17", 1)  # 42 days before the end: the reminder to plan it
    poll(d)
    return case


def _end_planned(d: Driver) -> int:
    case = _near_the_end(d)
    d.complete(case, "plan_end", "supervisor", {"end_plan": {"decision": "end_as_agreed"}})
    return case


def _reentry_proposed(d: Driver) -> int:
    case = _end_planned(d)
    d.complete(case, "propose_reentry", "employee", REENTRY_PROPOSAL)
    return case


def _over(d: Driver) -> int:
    case = _reentry_proposed(d)
    d.complete(case, "confirm_reentry", "supervisor", REENTRY)
    at("2027-04-01", 1)
    poll(d)
    return case


def _assessed(d: Driver) -> int:
    case = _over(d)
    d.complete(case, "post_placement_report", "employee", POST_REPORT)
    d.complete(case, "assess_placement", "host", ASSESSMENT)
    return case


def _results_recorded(d: Driver) -> int:
    case = _assessed(d)
    d.complete(case, "record_results", "supervisor", results(met=1))
    return case


def _accepting(party: str) -> Reach:
    def reach(d: Driver) -> int:
        case = _drafted(d)
        for other, username in (("secondee", "employee"), ("home", "supervisor"), ("host", "host")):
            if other != party:
                d.complete(case, f"accept_{other}", username, ACCEPT[other])
        return case
    return reach


def _accept(party: str, username: str) -> FormCase:
    key = f"acceptance_{party}"
    return FormCase(f"secondment_accept_{party}.json", f"accept_{party}", username, _accepting(party),
                    {f"{key}.decision": "accept"}, f"{key}.decision",
                    ({f"{key}.decision": "request_changes"}, f"{key}.changes"))


_A = "application."
_F = "forecast."
_E = "expectations."
_S1 = "agreement.schedule1."
SECONDMENT = [
    FormCase("secondment_opportunity.json", "publish_opportunity", "supervisor", _opportunity, OPPORTUNITY,
             "opportunity.title", ({"opportunity.closing_date": "2026-04-15"}, "opportunity.closing_date")),
    FormCase("secondment_selection.json", "select_secondee", "supervisor", _published,
             {"selection.secondee": "employee", "selection.reasons": "Strongest case."}, "selection.reasons"),
    FormCase("secondment_application.json", "apply", "employee", _application,
             {_A + "aspirations": "Lead workforce planning for a health service.",
              _A + "commitment": "Full time for twelve months.",
              _A + "learning_goals.0": "Workforce modelling with real rostering data",
              _A + "preferred_host": "NT Health", _A + "preferred_start": "2026-04-01",
              _A + "preferred_months": 12, _A + "self_identification.gender": "non_binary",
              _A + "self_identification.age_band": "25_34"},
             _A + "aspirations", ({_A + "preferred_start": "2026-01-05"}, _A + "preferred_start")),
    FormCase("secondment_endorsement.json", "consider_application", "supervisor", _applied,
             {"endorsement.decision": "endorse", "endorsement.development_value": "Builds our planning."},
             "endorsement.decision", ({"endorsement.decision": "decline"}, "endorsement.reasons")),
    FormCase("secondment_forecast.json", "forecast", "supervisor", apply,
             {_F + "host_organisation": "NT Health", _F + "host_contact": "host",
              _F + "proposed_start": "2026-04-01", _F + "proposed_end": "2027-03-31",
              _F + "risks.0.risk": "The rostering project loses its lead", _F + "risks.0.likelihood": "medium",
              _F + "risks.0.mitigation": "Clerk acts in the role",
              _F + "objectives.0.objective": "Build the staffing model", _F + "objectives.0.measure": "Adopted"},
             _F + "risks.0.mitigation", ({_F + "proposed_end": "2026-03-31"}, _F + "proposed_end")),
    FormCase("secondment_expectations.json", "agree_expectations", "host",
             _forecast_made,
             {_E + "decision": "agree", **{_E + k: v for k, v in EXPECTATIONS["expectations"].items()
                                           if k != "decision"}},
             "expectations.decision"),
    FormCase("secondment_agreement.json", "draft_agreement", "supervisor", _planned,
             {_S1 + "home_organisation": "Darwin Port Corporation", _S1 + "end_date": "2027-03-31",
              _S1 + "home_position": "Senior Port Administrative Officer 1",
              "agreement.schedule2.leave": "Applied for at home, approved with the host's agreement.",
              "agreement.schedule2.reentry": "Returns to her substantive position.",
              "agreement.schedule2.early_termination.conditions": "Any party, with reasons."},
             "agreement.schedule2.leave", ({_S1 + "end_date": "2026-03-15"}, _S1 + "end_date")),
    _accept("secondee", "employee"),
    _accept("home", "supervisor"),
    _accept("host", "host"),
    FormCase("secondment_ocpe_notice.json", "note_placement", "ocpe", agreed,
             {"ocpe_notice.noted": True}, "ocpe_notice.noted"),
    FormCase("secondment_induction.json", "induct", "host", started,
             {"induction.inducted_on": "2026-04-01", "induction.covered": ["business", "safety", "resources"],
              "induction.resources": "Laptop and access."},
             "induction.resources", ({"induction.inducted_on": "2026-03-20"}, "induction.inducted_on")),
    FormCase("secondment_progress_report.json", "file_progress_report", "employee", _second_month,
             {"progress_report.objectives_progress": "Model drafted.", "progress_report.learning_progress": "Kept.",
              "progress_report.feedback_sought": True}, "progress_report.objectives_progress"),
    FormCase("secondment_host_briefing.json", "brief_home", "host", _second_month,
             {"host_briefing.performance": "meets", "host_briefing.progress": "On track."},
             "host_briefing.progress"),
    FormCase("secondment_home_brief.json", "brief_secondee", "supervisor", _second_month,
             {"home_brief.events": "New harbour master appointed.", "home_brief.host_contacted": True},
             "home_brief.events"),
    FormCase("secondment_concern.json", "raise_concern_employee", "employee", started,
             {"concern.category": "work", "concern.details": "Workload doubled after the ward opening."},
             "concern.details"),
    FormCase("secondment_concern_discussion.json", "discuss_concern", "host", _concern_raised,
             {"concern_discussion.discussed_with": ["secondee", "home"], "concern_discussion.summary": "Scope cut.",
              "concern_discussion.outcome": "resolved"}, "concern_discussion.summary"),
    FormCase("secondment_concern_decision.json", "decide_concern", "supervisor", _concern_discussed,
             {"concern_decision.decision": "continue", "concern_decision.actions": "Host confirms in writing.",
              "concern_decision.reason": "Managed."},
             "concern_decision.reason",
             ({"concern_decision.decision": "end_early", "concern_decision.last_day": "2026-06-12"},
              "concern_decision.last_day")),
    FormCase("secondment_end_plan.json", "plan_end", "supervisor", _near_the_end,
             {"end_plan.decision": "end_as_agreed"}, "end_plan.decision",
             ({"end_plan.decision": "extend", "end_plan.new_end_date": "2027-03-01", "end_plan.reason": "Short."},
              "end_plan.new_end_date")),
    FormCase("secondment_reentry_proposal.json", "propose_reentry", "employee", _end_planned,
             {"reentry_proposal.return_position": "SPAO1 rostering lead", "reentry_proposal.return_date": "2027-04-01",
              "reentry_proposal.sharing_learning": "A lunchtime session."},
             "reentry_proposal.sharing_learning",
             ({"reentry_proposal.return_date": "2027-03-01"}, "reentry_proposal.return_date")),
    FormCase("secondment_reentry.json", "confirm_reentry", "supervisor", _reentry_proposed,
             {"reentry.return_position": "SPAO1 rostering lead", "reentry.return_date": "2027-04-01",
              "reentry.arrangements": "Back in the rostering team.", "reentry.agreed_with_employee": True},
             "reentry.arrangements", ({"reentry.return_date": "2027-03-01"}, "reentry.return_date")),
    FormCase("secondment_post_report.json", "post_placement_report", "employee", _over,
             {"post_report.objectives": "Model adopted.", "post_report.learning": "Both goals met.",
              "post_report.applying_learning": "Our own rostering model."}, "post_report.learning"),
    FormCase("secondment_host_assessment.json", "assess_placement", "host", _over,
             {"host_assessment.performance": "exceeds", "host_assessment.development": "Steady growth."},
             "host_assessment.development"),
    FormCase("secondment_objective_results.json", "record_results", "supervisor", _assessed,
             {"objective_results.results.0.result": "met", "objective_results.results.0.evidence": "The report.",
              "objective_results.results.1.result": "not_met", "objective_results.results.1.evidence": "None."},
             "objective_results.results.0.evidence"),
    FormCase("secondment_evaluation.json", "evaluate_placement", "ocpe", _results_recorded,
             {"evaluation.value": "high", "evaluation.lessons": "Cross-agency placements pay off.",
              "evaluation.report_to_stakeholders": True}, "evaluation.lessons"),
]

CASES: dict[str, FormCase] = {c.form: c for c in PAY_PROGRESSION + SECONDMENT}
