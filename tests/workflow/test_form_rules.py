"""Cross-field rules declared in the form files (issue 19): checked at submit, before anything is saved, each error
beside its field; the rules themselves checked when a form is deployed.

The mistakes of the issue were saved ("Done. The case has moved on.") and then came back ("Please fix"): a "submit
by" after the assessment date, an induction in 2030, an early end with 1 day's notice against the agreed 14, a
return date before the last day. Each is now refused naming its field, and the case is left as it was."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.core.config import PROJECT_ROOT
from engine.core.errors import Invalid
from engine.core.models import AuditEvent
from engine.policies.secondment.demo import load_host_people
from engine.workflow.form_rules import check, rule_problems
from engine.workflow.forms import check_schema, validate
from engine.workflow.runtime import Runtime
from tests.policies.pay_progression.test_pay_progression import INVITE, REFUSE, REVIEW, START, SUBMIT
from tests.policies.secondment.test_secondment_flow import (
    CONCERN,
    FORECAST,
    INDUCTION,
    REENTRY,
    REENTRY_PROPOSAL,
    agreement,
    apply,
    at,
    open_tasks,
    plan,
    poll,
    started,
)
from tests.workflow.driver import Driver
from tests.workflow.test_definitions import problems, process, user_task

FORMS = PROJECT_ROOT / "forms"
TODAY = dt.date(2026, 3, 2)  # the tests' frozen clock (T0), in Darwin


def form(name: str) -> dict[str, Any]:
    folder = "secondment" if name.startswith("secondment_") else "pay_progression"
    schema: dict[str, Any] = json.loads((FORMS / folder / name).read_text())
    return schema


@pytest.fixture
def drive(org: Runtime) -> Iterator[Driver]:
    load_host_people(org)
    driver = Driver(org)
    yield driver
    driver.runtime.db.dispose()


def _audit_count(d: Driver, case: int) -> int:
    with d.runtime.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.instance_id == case)) or 0)


def _refused(d: Driver, case: int, name: str, username: str, data: dict[str, Any]) -> dict[str, list[str]]:
    """Submit `data` to the case's open task `name`: it must be refused and leave the case as it was (the same
    open task, the same data, no audit event); the refusal's {field: [messages]}."""
    task = open_tasks(d, case, name)[-1]
    before, audited = d.instance(case).data, _audit_count(d, case)
    with pytest.raises(Invalid) as err:
        d.runtime.complete_task(d.user(username), task.id, data)
    assert open_tasks(d, case, name)[-1].id == task.id
    assert d.instance(case).data == before and _audit_count(d, case) == audited  # nothing was saved
    out: dict[str, list[str]] = {}
    for p in err.value.problems:
        out.setdefault(p.field or "", []).append(p.message)
    return out


# ------------------------------------------------------------------------------------- the policies' forms, run


def test_d19_3_2_an_invitation_due_after_the_assessment_date_is_refused_beside_its_field(drive: Driver) -> None:
    case = drive.start("pay_progression", START)  # assessment date 30 June 2026
    late = {"invitation": {**INVITE["invitation"], "submission_due": "2026-07-15"}}
    errors = _refused(drive, case, "invite_submission", "supervisor", late)
    assert list(errors) == ["invitation.submission_due"]
    assert "in advance of the annual assessment date, 30 June 2026 (Determination 19, cl. 5)" in errors[
        "invitation.submission_due"][0]
    past = {"invitation": {**INVITE["invitation"], "submission_due": "2026-02-27"}}
    assert "cannot be in the past" in _refused(drive, case, "invite_submission", "supervisor", past)[
        "invitation.submission_due"][0]
    drive.complete(case, "invite_submission", "supervisor",
                   {"invitation": {**INVITE["invitation"], "submission_due": "2026-05-30"}})
    assert drive.open_tasks(case) == ["make_submission"]


def test_d19_9c_a_section_59_outcome_decided_before_it_was_lodged_is_refused_beside_its_field(
        drive: Driver) -> None:
    case = drive.start("pay_progression", START)
    drive.complete(case, "invite_submission", "supervisor", INVITE)
    drive.complete(case, "make_submission", "employee", SUBMIT)
    drive.complete(case, "recommend", "supervisor", {"recommendation": {"recommend": "approve"}})
    drive.complete(case, "decide", "manager", REFUSE)
    drive.complete(case, "consider_review", "employee", REVIEW)
    drive.complete(case, "ceo_review", "ceo", {"review_decision": {
        "new_information_accepted": "not_accepted", "outcome": "confirm", "reason": "No criterion is shown."}})
    future = {"s59_request": {"lodged": "lodged", "lodged_on": "2026-03-09"}}
    assert "cannot be lodged in the future" in _refused(drive, case, "consider_s59", "employee", future)[
        "s59_request.lodged_on"][0]
    drive.complete(case, "consider_s59", "employee", {"s59_request": {"lodged": "lodged", "lodged_on": "2026-03-02"}})
    early = {"s59_outcome": {"decided_on": "2026-03-01", "result": "decision_stands", "summary": "Dismissed."}}
    errors = _refused(drive, case, "record_s59_outcome", "hr", early)
    assert errors == {"s59_outcome.decided_on": [
        "Determination 19, cl. 9: the outcome cannot be decided before the review was lodged (2 March 2026)."]}


def test_d19_3_1_an_agreement_longer_than_the_cycle_or_before_commencement_is_refused_beside_its_field(
        drive: Driver) -> None:
    case = drive.start("performance_agreement", {"employee": "employee"})  # commenced 15 January 2024
    base = {"targets": ["Run the berth system"], "supervisor": "supervisor", "approver": "manager"}
    long = {"agreement": {**base, "start": "2026-03-09", "end": "2027-09-09"}}
    errors = _refused(drive, case, "set_up_agreement", "supervisor", long)
    assert list(errors) == ["agreement.end"] and "covers a 12 month period" in errors["agreement.end"][0]
    before = {"agreement": {**base, "start": "2023-07-01", "end": "2024-07-01"}}
    errors = _refused(drive, case, "set_up_agreement", "supervisor", before)
    assert errors == {"agreement.start": ["The agreement cannot start before the employee commenced in the agency, "
                                          "on 15 January 2024 (Determination 19, cl. 3)."]}
    backwards = {"agreement": {**base, "start": "2026-03-09", "end": "2026-03-01"}}
    assert list(_refused(drive, case, "set_up_agreement", "supervisor", backwards)) == ["agreement.end"]


def test_mp_h_a_forecast_ending_before_it_starts_is_refused_beside_its_field(drive: Driver) -> None:
    case = apply(drive)
    backwards = {"forecast": {**FORECAST["forecast"], "proposed_end": "2026-03-31"}}
    errors = _refused(drive, case, "forecast", "supervisor", backwards)
    assert errors == {"forecast.proposed_end": ["The placement must end after it starts (1 April 2026)."]}


def test_mp_0_an_agreement_for_someone_else_or_with_one_person_as_both_contacts_is_refused(drive: Driver) -> None:
    case = apply(drive)
    plan(drive, case)
    errors = _refused(drive, case, "draft_agreement", "supervisor", agreement(secondee="engineer"))
    assert errors == {"agreement.schedule1.secondee": [
        "The secondee must be employee, the employee this placement is for."]}
    errors = _refused(drive, case, "draft_agreement", "supervisor", agreement(host_contact="supervisor"))
    assert errors == {"agreement.schedule1.host_contact": ["The home and host contacts must be different people."]}


def test_mp_t_an_induction_dated_outside_the_placement_is_refused_beside_its_field(drive: Driver) -> None:
    case = started(drive)  # 1 April 2026 to 31 March 2027
    in_2030 = {"induction": {**INDUCTION["induction"], "inducted_on": "2030-04-02"}}
    errors = _refused(drive, case, "induct", "host", in_2030)
    assert errors == {"induction.inducted_on": [
        "The induction is part of the placement: its date must be between the start, 1 April 2026, and the end, "
        "31 March 2027."]}
    drive.complete(case, "induct", "host", INDUCTION)


def test_mp_l_an_early_end_with_less_notice_than_agreed_is_refused_beside_its_field(drive: Driver) -> None:
    case = started(drive)  # the agreement gives 14 days' notice of an early end
    at("2026-06-10")
    poll(drive)
    drive.complete(case, "raise_concern_host", "host", CONCERN)
    drive.complete(case, "discuss_concern", "host", {"concern_discussion": {
        "discussed_with": ["secondee", "home"], "summary": "Cannot be fixed here.", "outcome": "refer"}})
    tomorrow = {"concern_decision": {"decision": "end_early", "last_day": "2026-06-11", "reason": "Gone."}}
    errors = _refused(drive, case, "decide_concern", "supervisor", tomorrow)
    assert errors == {"concern_decision.last_day": [
        "The agreement's early termination terms give 14 days' notice: the last day must be at least 14 days after "
        "today (10 June 2026)."]}
    after_end = {"concern_decision": {"decision": "end_early", "last_day": "2027-05-01", "reason": "Gone."}}
    assert "before the agreed end date, 31 March 2027" in _refused(
        drive, case, "decide_concern", "supervisor", after_end)["concern_decision.last_day"][0]
    drive.complete(case, "decide_concern", "supervisor", {"concern_decision": {
        "decision": "end_early", "last_day": "2026-06-24", "reason": "The role no longer exists."}})
    assert "propose_reentry" in drive.open_tasks(case)


def test_mp_e_a_return_date_before_the_last_day_is_refused_beside_its_field(drive: Driver) -> None:
    case = started(drive)
    at("2027-02-17", 1)
    poll(drive)
    drive.complete(case, "plan_end", "supervisor", {"end_plan": {"decision": "end_as_agreed"}})
    early = {"reentry_proposal": {**REENTRY_PROPOSAL["reentry_proposal"], "return_date": "2027-03-01"}}
    errors = _refused(drive, case, "propose_reentry", "employee", early)
    assert errors == {"reentry_proposal.return_date": [
        "You return when the placement is over: the date cannot be before its last day, 31 March 2027."]}
    drive.complete(case, "propose_reentry", "employee", REENTRY_PROPOSAL)
    confirmed = {"reentry": {**REENTRY["reentry"], "return_date": "2027-01-04"}}
    assert list(_refused(drive, case, "confirm_reentry", "supervisor", confirmed)) == ["reentry.return_date"]
    drive.complete(case, "confirm_reentry", "supervisor", REENTRY)


# ------------------------------------------------------------------------------------- the forms, by validation


@pytest.mark.parametrize(("name", "data", "field"), [
    ("secondment_opportunity.json", {"opportunity": {"closing_date": "2026-03-01"}}, "opportunity.closing_date"),
    ("secondment_opportunity.json", {"opportunity": {"closing_date": "2026-05-01", "proposed_start": "2026-04-01"}},
     "opportunity.closing_date"),
    ("secondment_application.json", {"application": {"preferred_start": "2026-01-01"}},
     "application.preferred_start"),
    ("d19_new_timeframe.json", {"new_timeframe": {"agree": "agree", "new_date": "2026-03-02"}},
     "new_timeframe.new_date"),
])
def test_mp_h_mp_e_d19_10_dates_in_the_past_or_out_of_order_are_refused_beside_their_field(
        name: str, data: dict[str, Any], field: str) -> None:
    assert field in validate(form(name), data, {}, TODAY)


def test_every_form_declares_sound_rules_and_the_forms_the_issue_names_have_them() -> None:
    with_rules = set()
    for path in sorted(FORMS.glob("*/*.json")):
        schema = json.loads(path.read_text())
        if path.name.endswith("_ui.json"):
            continue
        assert check_schema(schema) == [], path.name
        if schema.get("x-rules"):
            with_rules.add(path.name)
    assert {"invite_submission.json", "d19_performance_agreement.json", "d19_s59_outcome.json",
            "secondment_forecast.json", "secondment_agreement.json", "secondment_induction.json",
            "secondment_concern_decision.json", "secondment_reentry.json", "secondment_reentry_proposal.json",
            } <= with_rules


# ------------------------------------------------------------------------------------- the rule language


DATES = {"type": "object", "properties": {
    "a": {"type": "object", "properties": {"start": {"type": "string", "format": "date"},
                                           "end": {"type": "string", "format": "date"},
                                           "kind": {"type": "string"}, "who": {"type": "string"}}}}}


def rules(*declared: dict[str, Any]) -> dict[str, Any]:
    return {**DATES, "x-rules": list(declared)}


def errors_of(schema: dict[str, Any], start: str | None = None, end: str | None = None,
              case: dict[str, Any] | None = None, **more: Any) -> dict[str, list[str]]:
    values = {k: v for k, v in (("start", start), ("end", end)) if v is not None} | more
    assert rule_problems(schema) == []
    return check(schema, {"a": values}, case, TODAY)


@pytest.mark.parametrize(("op", "holds", "fails"), [
    ("before", "2026-03-01", "2026-03-02"), ("after", "2026-03-03", "2026-03-02"),
    ("on_or_before", "2026-03-02", "2026-03-03"), ("on_or_after", "2026-03-02", "2026-03-01"),
])
def test_dates_compare_with_a_literal_another_field_a_case_value_or_today(op: str, holds: str, fails: str) -> None:
    for value, case, extra in (("2026-03-02", None, {}), ({"today": True}, None, {}),
                               ({"case": "cycle.due"}, {"cycle": {"due": "2026-03-02"}}, {}),
                               ({"field": "a.end"}, None, {"end": "2026-03-02"})):
        schema = rules({"field": "a.start", "op": op, "value": value})
        assert errors_of(schema, holds, case=case, **extra) == {}, (op, value)
        assert list(errors_of(schema, fails, case=case, **extra)) == ["a.start"], (op, value)
    assert errors_of(rules({"field": "a.start", "op": "before", "value": "2026-03-02"}), "2026-03-05") == {
        "a.start": ["Must be before 2 March 2026."]}


def test_within_a_range_of_case_dates_either_end_optional() -> None:
    placement = {"start_date": "2026-04-01", "end_date": "2027-03-31"}
    schema = rules({"field": "a.start", "op": "within",
                    "value": {"from": {"case": "start_date"}, "to": {"case": "end_date"}}})
    assert errors_of(schema, "2026-04-01", case=placement) == errors_of(schema, "2027-03-31", case=placement) == {}
    assert errors_of(schema, "2030-04-02", case=placement) == {
        "a.start": ["Must be between 1 April 2026 and 31 March 2027."]}
    assert errors_of(schema, "2026-03-31", case={"start_date": "2026-04-01"}) == {
        "a.start": ["Must be on or after 1 April 2026."]}


def test_notice_periods_count_days_or_months_from_a_date() -> None:
    notice = {"field": "a.end", "op": "at_least_days_after", "value": {"today": True},
              "days": {"case": "terms.notice_days"}, "message": "Give {days} days' notice: after {value}."}
    case = {"terms": {"notice_days": 14}}
    assert errors_of(rules(notice), end="2026-03-16", case=case) == {}
    assert errors_of(rules(notice), end="2026-03-03", case=case) == {
        "a.end": ["Give 14 days' notice: after 2 March 2026."]}
    ahead = {"field": "a.start", "op": "at_least_days_before", "value": {"field": "a.end"}, "days": 7}
    assert errors_of(rules(ahead), "2026-03-01", "2026-03-08") == {}
    assert errors_of(rules(ahead), "2026-03-02", "2026-03-08") == {
        "a.start": ["Must be at least 7 days before 8 March 2026."]}
    cycle = {"field": "a.end", "op": "not_more_than_months_after", "value": {"field": "a.start"}, "months": 12}
    assert errors_of(rules(cycle), "2025-06-30", "2026-06-30") == {}
    assert list(errors_of(rules(cycle), "2025-06-30", "2026-07-01")) == ["a.end"]
    recent = {"field": "a.start", "op": "not_more_than_days_before", "value": {"today": True}, "days": 30}
    assert errors_of(rules(recent), "2026-01-31") == {} and list(errors_of(rules(recent), "2026-01-30")) == ["a.start"]


def test_equality_and_conditions() -> None:
    same = {"field": "a.who", "op": "equals", "value": {"case": "employee"}}
    assert errors_of(rules(same), who="emily", case={"employee": "emily"}) == {}
    assert errors_of(rules(same), who="tom", case={"employee": "emily"}) == {"a.who": ["Must be emily."]}
    other = {"field": "a.who", "op": "not_equals", "value": {"field": "a.kind"}}
    assert errors_of(rules(other), who="x", kind="x") == {"a.who": ["Must not be x."]}
    only_early = {"field": "a.end", "op": "before", "value": {"case": "end_date"},
                  "when": {"field": "a.kind", "equals": "early"}}
    case = {"end_date": "2026-06-30"}
    assert errors_of(rules(only_early), end="2026-07-30", kind="as_agreed", case=case) == {}
    assert list(errors_of(rules(only_early), end="2026-07-30", kind="early", case=case)) == ["a.end"]
    listed = {**only_early, "when": {"field": "a.kind", "in": ["early", "urgent"]}}
    assert list(errors_of(rules(listed), end="2026-07-30", kind="urgent", case=case)) == ["a.end"]


def test_a_rule_is_skipped_while_it_cannot_be_checked() -> None:
    """A case value the diagram has not set yet, an empty field (required-ness is the schema's) and a value that
    is not a date (its format error is the schema's) skip the rule."""
    schema = rules({"field": "a.start", "op": "before", "value": {"case": "assessment_date"}},
                   {"field": "a.end", "op": "after", "value": {"field": "a.start"}})
    assert errors_of(schema, "2030-01-01") == {}  # no case at all
    assert errors_of(schema, "2030-01-01", case={"assessment_date": None}) == {}
    assert errors_of(schema, end="2020-01-01") == {}  # no start to compare with
    assert check(schema, {"a": {"start": "soon"}}, {"assessment_date": "2026-06-30"}, TODAY) == {}
    assert validate(schema, {"a": {"start": "soon"}}, {"assessment_date": "2026-06-30"}, TODAY) == {
        "a.start": ["Must be a date (YYYY-MM-DD)."]}


def test_rules_errors_join_the_schemas_in_the_same_shape() -> None:
    schema = {**rules({"field": "a.end", "op": "after", "value": {"field": "a.start"}}), "required": ["b"]}
    assert validate(schema, {"a": {"start": "2026-03-02", "end": "2026-03-01"}}, None, TODAY) == {
        "b": ["This field is required."], "a.end": ["Must be after 2 March 2026."]}


# ------------------------------------------------------------------------------------- malformed rules, at deploy


@pytest.mark.parametrize(("rule", "problem"), [
    ({"field": "a.start", "op": "sooner", "value": "2026-01-01"}, "x-rules[0].op: unknown op 'sooner'"),
    ({"field": "a.begin", "op": "before", "value": "2026-01-01"}, "x-rules[0].field: 'a.begin' is not a field"),
    ({"field": "a.kind", "op": "before", "value": "2026-01-01"}, "x-rules[0].field: 'a.kind' is not a date field"),
    ({"field": "a.start", "op": "before", "value": "next week"}, "x-rules[0].value: 'next week' is not a date"),
    ({"field": "a.start", "op": "before", "value": {"field": "a.ghost"}}, "x-rules[0].value.field: 'a.ghost' is not"),
    ({"field": "a.start", "op": "before", "value": {"eval": "1+1"}}, "x-rules[0].value: unknown operand 'eval'"),
    ({"field": "a.start", "op": "before"}, "x-rules[0].value: required"),
    ({"field": "a.start", "op": "at_least_days_after", "value": {"today": True}}, "x-rules[0].days: required"),
    ({"field": "a.start", "op": "at_least_days_after", "value": {"today": True}, "days": -3},
     "x-rules[0].days: must be a whole number of 0 or more"),
    ({"field": "a.start", "op": "before", "value": {"today": True}, "when": {"field": "a.kind"}},
     "x-rules[0].when: takes"),
    ({"field": "a.start", "op": "before", "value": {"today": True}, "hint": "x"}, "x-rules[0].hint: unknown key"),
    ({"field": "a.who", "op": "person_exists", "value": True}, "x-rules[0].op: 'person_exists' needs the people"),
    ("before", "x-rules[0]: must be an object"),
])
def test_a_malformed_rule_is_named_and_refused_at_deploy(rule: Any, problem: str) -> None:
    schema = {**DATES, "x-rules": [rule]}
    found = check_schema(schema)
    assert any(p.startswith(problem) for p in found), found
    assert check(schema, {"a": {"start": "2026-01-01", "kind": "x", "who": "x"}}, {}, TODAY) == {}  # never applied
    task = user_task('<spiffworkflow:properties><spiffworkflow:property name="formJsonSchemaFilename" '
                     'value="f.json" /></spiffworkflow:properties>')
    deployed = problems(process(task), {"f.json": schema})
    assert any(p.element == "t1" and f"form 'f.json': {problem}" in p.message for p in deployed), deployed


def test_rules_must_be_a_list() -> None:
    assert rule_problems({**DATES, "x-rules": {"field": "a.start"}}) == ["x-rules: must be a list of rules"]
    assert rule_problems(DATES) == [] and rule_problems([]) == []


def test_the_rules_live_in_the_form_files_only_as_data() -> None:
    """No Python per form: a rule is JSON that this module reads; nothing in it is run."""
    hostile = {"field": "a.start", "op": "before", "value": {"case": "__class__.__mro__"}}
    assert check(rules(hostile), {"a": {"start": "2026-01-01"}}, {"x": 1}, TODAY) == {}
