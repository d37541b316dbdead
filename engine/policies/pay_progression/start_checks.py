"""What each process needs before it starts: the data checked, completed from the people records,
and the policy's refusals (each naming the rule that refused).

Determination 19's eligibility rules are DMN decision tables deployed with the process
(`processes/pay_progression/d19_*.dmn`); the starter computes the facts they read
and runs them, so a case that would be refused never exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core.clock import CLOCK
from engine.core.config import Settings
from engine.core.errors import Invalid, Problem
from engine.people.models import Leave, Person
from engine.policies.pay_progression import rules as d19_rules
from engine.policies.pay_progression import settings as d19_settings
from engine.policies.pay_progression import timing as policy
from engine.policies.pay_progression.helpers import d19_helpers, next_pay_point, pay_points
from engine.policies.pay_progression.hooks import HOOKS
from engine.workflow.assignment import known_lanes, person_by_username
from engine.workflow.definitions import latest_definition
from engine.workflow.helpers import script_helpers
from engine.workflow.models import ProcessDefinition, ProcessInstance
from engine.workflow.scripts import make_script_engine

#: D19-1: the classifications Determination 19 covers (the scope table decides; this is for people lists).
D19_CLASSIFICATIONS = ("SPAO1", "SPAO2", "SPPO1", "SPPO2")
#: Lanes a case may appoint someone to at its start (D19-3.2, D19-6, D19-7, D19-8 "other appropriate officer").
APPOINTABLE_LANES = ("Supervisor", "Manager", "CEO", "FormerManager")
#: The field a refusal points at, by the rule that refused.
RULE_FIELDS = {"D19-1": "employee", "D19-5": "assessment_date", "D19-11": "transfer", "D19-12": "higher_duties_level"}

#: Leave that postpones the assessment date when it does not count as service (D19-9d; D19-10 extended leave).
POSTPONING_LEAVE = ("lwop", "extended")


# ------------------------------------------------------------------------------------------ parsing


def _date(data: dict[str, Any], name: str, problems: list[Problem], field: str | None = None,
          required: bool = True) -> date | None:
    value = data.get(name)
    if value in (None, ""):
        if required:
            problems.append(Problem("This field is required.", field=field or name))
        return None
    try:
        parsed = policy.parse_date(value)
    except policy.DateOutOfRange as exc:
        problems.append(Problem(f"The date {exc!s}.", field=field or name))
        return None
    except (ValueError, TypeError):
        problems.append(Problem("Must be a date (YYYY-MM-DD).", field=field or name))
        return None
    data[name] = parsed.isoformat()
    return parsed


def _person(data: dict[str, Any], name: str, session: Session, problems: list[Problem],
            field: str | None = None) -> Person | None:
    person = person_by_username(session, data.get(name))
    if person is None:
        problems.append(Problem("no person with this username", field=field or name))
    return person


def _periods(raw: Any, field: str, problems: list[Problem]) -> list[dict[str, Any]]:
    """D19-12 higher duties periods: [{start, end, classification, full_duties}]."""
    if raw in (None, "", []):
        return []
    if not isinstance(raw, list):
        problems.append(Problem("Must be a list of periods.", field=field))
        return []
    periods = []
    for i, item in enumerate(raw):
        where = f"{field}.{i}"
        if not isinstance(item, dict):
            problems.append(Problem("Must be an object with start, end, classification, full_duties.", field=where))
            continue
        item = dict(item)
        start = _date(item, "start", problems, f"{where}.start")
        end = _date(item, "end", problems, f"{where}.end")
        if start and end and end < start:
            problems.append(Problem("the period ends before it starts", field=f"{where}.end"))
        if not isinstance(item.get("classification"), str) or not item["classification"].strip():
            problems.append(Problem("This field is required.", field=f"{where}.classification"))
        if not isinstance(item.get("full_duties"), bool):
            problems.append(Problem("Must be true (all the duties of the higher level) or false.",
                                    field=f"{where}.full_duties"))
        periods.append({"start": item.get("start"), "end": item.get("end"),
                        "classification": str(item.get("classification", "")).strip().upper(),
                        "full_duties": item.get("full_duties")})
    return periods


def _assign(session: Session, raw: Any, problems: list[Problem]) -> dict[str, str]:
    if raw in (None, "", {}):
        return {}
    if not isinstance(raw, dict):
        problems.append(Problem("Must map lanes to usernames.", field="assign"))
        return {}
    clean: dict[str, str] = {}
    for lane, username in raw.items():
        if lane not in known_lanes() or lane not in APPOINTABLE_LANES:
            problems.append(Problem(f"only {', '.join(APPOINTABLE_LANES)} can be appointed", field=f"assign.{lane}"))
        elif person_by_username(session, username) is None:
            problems.append(Problem("no person with this username", field=f"assign.{lane}"))
        else:
            clean[lane] = str(username)
    return clean


def _agreement_from_case(session: Session, raw: Any, employee: Person | None, problems: list[Problem]
                         ) -> dict[str, Any] | None:
    """D19-3.1: the dates of a recorded performance agreement (a completed performance_agreement case)."""
    try:
        case_id = int(raw)
    except (TypeError, ValueError):
        case_id = 0
    if isinstance(raw, bool) or not 0 < case_id <= 2_147_483_647:  # past any table's ids: SQLite overflowed (500)
        problems.append(Problem("Must be the number of a performance agreement case.", field="agreement_case"))
        return None
    row = session.get(ProcessInstance, case_id)
    agreement = (row.data or {}).get("agreement") if row is not None else None
    if (row is None or row.process_key != "performance_agreement" or row.status != "completed"
            or (row.data or {}).get("outcome") != "agreed" or not isinstance(agreement, dict)):
        problems.append(Problem("not a recorded performance agreement", field="agreement_case"))
        return None
    if employee is not None and row.subject_id != employee.id:
        problems.append(Problem("this agreement is another employee's", field="agreement_case"))
        return None
    return agreement


# ------------------------------------------------------------------------------------------ decisions


def _decision(session: Session, settings: Settings, definition: ProcessDefinition, table: str,
              data: dict[str, Any], key: str) -> d19_rules.Verdict:
    engine = make_script_engine({**script_helpers(session, settings), **d19_helpers(session, settings)},
                                time_limit_seconds=settings.script_time_limit_seconds,
                                memory_mb=settings.script_memory_mb)
    return d19_rules.verdict(d19_rules.decide(definition, table, data, engine), key)


def _refuse_unless(verdict: d19_rules.Verdict, field: str | None = None) -> None:
    if not verdict.passed:
        where = field or RULE_FIELDS.get(verdict.rule, "employee")
        raise Invalid(f"the case cannot start ({verdict.rule or 'no rule matched'})",
                      [Problem(verdict.reason or "refused by the decision table", field=where)])


def _definition(session: Session, key: str) -> ProcessDefinition:
    definition = latest_definition(session, key)
    if definition is None:  # the runtime checks first; this keeps the starter usable on its own
        raise Invalid(f"no process '{key}' is deployed", [Problem(f"no process '{key}' is deployed", field="process")])
    return definition


def _months_on(periods: list[dict[str, Any]], classification: str, ending: date,
               away: list[policy.Period]) -> int:
    """Months of higher duties at `classification`, continuous or in broken periods (D19-12(1)), added up by
    calendar days with leave that is not service taken out, counted back from the assessment date."""
    spans = [(policy.parse_date(p["start"]), policy.parse_date(p["end"])) for p in periods
             if p["classification"] == classification]
    days = policy.days_in(spans) - _overlap(spans, away)
    return policy.months_of_days(days, ending)


def _overlap(spans: list[policy.Period], away: list[policy.Period]) -> int:
    """Days of `away` that fall inside the union of `spans`."""
    return sum(policy.days_within(away, s, e) for s, e in _merged(spans))


def _merged(spans: list[policy.Period]) -> list[policy.Period]:
    merged: list[list[date]] = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1] + timedelta(days=1):
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged]


def _not_service(session: Session, employee: Person) -> list[tuple[policy.Period, str]]:
    """The employee's recorded leave that does not count as service (LWOP, extended leave), whenever recorded."""
    rows = session.scalars(select(Leave).where(Leave.person_id == employee.id, Leave.counts_as_service.is_(False),
                                               Leave.kind.in_(POSTPONING_LEAVE)).order_by(Leave.start))
    return [((row.start, row.end), row.kind) for row in rows]


def _running_cycle(session: Session, employee: Person) -> int | None:
    return session.scalar(select(ProcessInstance.id).where(
        ProcessInstance.process_key == "pay_progression", ProcessInstance.status == "running",
        ProcessInstance.subject_id == employee.id).order_by(ProcessInstance.id).limit(1))


def _recorded_agreement(session: Session, employee: Person) -> tuple[int, dict[str, Any]] | None:
    """The employee's newest recorded performance agreement (a completed, agreed performance_agreement case)."""
    rows = session.scalars(select(ProcessInstance).where(
        ProcessInstance.process_key == "performance_agreement", ProcessInstance.status == "completed",
        ProcessInstance.subject_id == employee.id).order_by(ProcessInstance.id.desc()))
    for row in rows:
        agreement = (row.data or {}).get("agreement")
        if (row.data or {}).get("outcome") == "agreed" and isinstance(agreement, dict):
            return row.id, agreement
    return None


# ------------------------------------------------------------------------------------------ pay progression


@dataclass
class _Start:
    """A pay progression start whose data passed the checks (D19-1, D19-5, D19-11, D19-12)."""

    employee: Person
    start: date
    assessment: date
    recorded: tuple[int, dict[str, Any]] | None  # (case, agreement) of the recorded performance agreement, if any
    declared: bool  # the starter declares an agreement in place
    transfer: dict[str, Any] | None
    periods: list[dict[str, Any]]  # higher duties
    level: dict[str, str] | None  # the higher duties level assessed, if any
    assign: dict[str, str]


def prepare_pay_progression(session: Session, data: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Check a pay progression start (D19-1, D19-5, D19-11, D19-12) and fill in what the records know."""
    checked = _checked_start(session, data)
    rules = d19_settings.load(session)
    # D19-9d, D19-10: leave that does not count as service postpones the assessment date, whenever it was recorded.
    leave = _not_service(session, checked.employee)
    postponements = _postpone_for_leave(data, checked, leave)
    facts = _facts(session, data, checked, rules, [span for span, _ in leave])
    definition = _definition(session, "pay_progression")
    _refuse_unless(_decision(session, settings, definition, d19_rules.SCOPE, {"facts": facts}, "scope"),
                   "higher_duties_level" if checked.level else "employee")
    _refuse_unless(_decision(session, settings, definition, d19_rules.ELIGIBILITY, {"facts": facts}, "eligibility"))
    return _completed(data, checked, rules, facts, postponements)


def _checked_start(session: Session, data: dict[str, Any]) -> _Start:
    """The start data checked against the records; Invalid naming every field that is wrong."""
    problems: list[Problem] = []
    employee = _person(data, "employee", session, problems)
    recorded: tuple[int, dict[str, Any]] | None = None
    if data.get("agreement_case") not in (None, ""):
        agreement = _agreement_from_case(session, data["agreement_case"], employee, problems)
        if agreement is not None:
            data["agreement_case"] = int(data["agreement_case"])
            recorded = (data["agreement_case"], agreement)
            data.setdefault("agreement_start", agreement.get("start"))
            data.setdefault("assessment_date", agreement.get("end"))
    elif employee is not None:
        recorded = _recorded_agreement(session, employee)
    start = _date(data, "agreement_start", problems)
    assessment = _date(data, "assessment_date", problems)
    if start and assessment and start >= assessment:
        problems.append(Problem("the assessment date must be after the agreement start", field="assessment_date"))
    if employee is not None and (running := _running_cycle(session, employee)) is not None:
        problems.append(Problem(f"case #{running} is already running for this employee: one cycle at a time "
                                "(Determination 19, cl. 5)", field="employee"))
    if (employee is not None and start is not None and employee.commenced_on is not None
            and start < employee.commenced_on and data.get("transfer") in (None, "", {})):
        problems.append(Problem(f"the cycle cannot start before {employee.name} commenced in the agency "
                                f"({employee.commenced_on.isoformat()}) (Determination 19, cl. 5)",
                                field="agreement_start"))
    declared = data.get("agreement_in_place", True)
    if not isinstance(declared, bool):
        problems.append(Problem("Must be true or false.", field="agreement_in_place"))
    transfer = _transfer(session, data, start, problems)
    if transfer is not None and employee is not None and transfer.get("former_manager") == employee.username:
        problems.append(Problem("the employee never assesses their own case (Determination 19, cl. 6, 11)",
                                field="transfer.former_manager"))
    periods = _periods(data.get("higher_duties"), "higher_duties", problems)
    level = _higher_level(session, data.get("higher_duties_level"), problems)
    assign = _assign(session, data.get("assign"), problems)
    if problems:
        raise Invalid("the case cannot start", problems)
    assert employee is not None and start is not None and assessment is not None
    return _Start(employee, start, assessment, recorded, declared is True, transfer, periods, level, assign)


def _postpone_for_leave(data: dict[str, Any], checked: _Start, leave: list[tuple[policy.Period, str]]
                        ) -> list[dict[str, Any]]:
    """D19-9d: move the assessment date by the days of leave that do not count as service (in `checked` and
    `data`); the postponements to record (none when nothing moved)."""
    start, assessment = checked.start, checked.assessment
    postponed = policy.postponement(start, assessment, [span for span, _ in leave])
    if not postponed:
        return []
    moved = policy.postpone_for_lwop(assessment, postponed)
    checked.assessment = moved
    data["assessment_date"] = moved.isoformat()
    return [{
        "days": postponed, "from": assessment.isoformat(), "to": moved.isoformat(), "clause": "D19-9d",
        "leave": [{"kind": kind, "start": s.isoformat(), "end": e.isoformat()} for (s, e), kind in leave
                  if e >= start and s <= moved],
        "reason": f"{postponed} days of leave that do not count as service, recorded before the case started"}]


def _basis(data: dict[str, Any], checked: _Start) -> tuple[dict[str, Any], bool]:
    """The performance agreement the cycle rests on (recorded, or declared at the start), and whether it is in
    place for this cycle (D19-5)."""
    start, recorded = checked.start, checked.recorded
    if recorded is not None and not (recorded[1].get("start") == start.isoformat() or data.get("agreement_case")):
        recorded = None  # the newest recorded agreement is another period's: the start declares this one
    if recorded is not None:
        basis: dict[str, Any] = {"source": "recorded", "case": recorded[0], "start": recorded[1].get("start"),
                                 "end": recorded[1].get("end")}
    else:
        basis = {"source": "declared at start", "start": start.isoformat(), "end": checked.assessment.isoformat()}
    return basis, checked.declared and (recorded is None or _covers(recorded[1], start))


def _facts(session: Session, data: dict[str, Any], checked: _Start, rules: Any, away: list[policy.Period]
           ) -> dict[str, Any]:
    """What the scope and eligibility tables read (D19-1, D19-5, D19-11, D19-12)."""
    employee, start, assessment, level, transfer = (checked.employee, checked.start, checked.assessment,
                                                    checked.level, checked.transfer)
    classification = level["classification"] if level else employee.classification
    pay_point = level["pay_point"] if level else employee.pay_point
    former = [(policy.parse_date(transfer["former_start"]), policy.parse_date(transfer["former_end"]))
              ] if transfer else []
    # Service is counted by calendar days, inclusive, with leave that is not service taken out (D19-5, D19-11).
    cycle_days = (assessment - start).days + 1 - policy.days_within(away, start, assessment)
    before_start = [(s, min(e, start - timedelta(days=1))) for s, e in former if s < start]
    former_days = policy.days_in(before_start) - _overlap(before_start, away)
    basis, in_place = _basis(data, checked)
    data["agreement_basis"] = basis
    return {
        "name": employee.name, "classification": classification, "pay_point": pay_point,
        "nominal_classification": employee.classification,
        "pay_point_known": pay_point in pay_points(session, classification),
        "has_next_pay_point": next_pay_point(session, classification, pay_point) is not None,
        "commencement_date": rules.commencement_date.isoformat(),
        "commenced_on": employee.commenced_on.isoformat() if employee.commenced_on else None,
        "months_since_commencement": policy.whole_months(rules.commencement_date, assessment),
        "agreement_in_place": in_place,
        "higher_duties_level": level is not None,
        "higher_duties_months": _months_on(checked.periods, classification, assessment, away) if level else 0,
        "transfer": transfer is not None,
        "cycle_start": start.isoformat(), "assessment_date": assessment.isoformat(),
        "service_days": cycle_days, "leave_days_not_service": policy.days_within(away, start, assessment),
        "cycle_months": policy.months_of_days(cycle_days, assessment),
        "combined_months": policy.months_of_days(cycle_days + former_days, assessment),
        "months_required": rules.cycle_months,
    }


def _completed(data: dict[str, Any], checked: _Start, rules: Any, facts: dict[str, Any],
               postponements: list[dict[str, Any]]) -> dict[str, Any]:
    """The start data as the diagram reads it: the records' values, the facts, the periods, the appointments."""
    employee, periods, transfer, assign = checked.employee, checked.periods, checked.transfer, checked.assign
    data.pop("agreement_in_place", None)
    data.update({
        "classification": employee.classification, "pay_point": employee.pay_point,
        "assessed_classification": facts["classification"], "assessed_pay_point": facts["pay_point"],
        "facts": facts, "periods": rules.periods(), "notices": [], "window_closed": False,
        "higher_duties": periods, "lapses": [],
        # D19-12(2): partial or short periods count only where special circumstances are found.
        "higher_duties_to_judge": [p for p in periods if p["full_duties"] is False],
        "nominal_is_senior": employee.classification in set(D19_CLASSIFICATIONS),
    })
    if postponements:
        data["postponements"] = postponements
    data.setdefault("original_assessment_date", data["assessment_date"])
    data.setdefault("submission_closes", data["assessment_date"])
    # Keys the diagram's conditions read are always present (None when they do not apply).
    data.update({"transfer": transfer, "higher_duties_level": checked.level, "revised_assessment_date": None,
                 "timeframes": [], "progressed_by": "decision"})
    if transfer is not None and transfer.get("former_manager"):
        assign.setdefault("FormerManager", transfer["former_manager"])
    if assign:
        data["assign"] = assign
    else:
        data.pop("assign", None)
    return data


def _covers(agreement: dict[str, Any], start: date) -> bool:
    """True when a recorded agreement is the one for a cycle starting on `start`."""
    return agreement.get("start") == start.isoformat()


def _transfer(session: Session, data: dict[str, Any], new_start: date | None, problems: list[Problem]
              ) -> dict[str, Any] | None:
    """D19-11: the former position at the same level: {former_position, former_manager, former_start, former_end}."""
    raw = data.get("transfer")
    if raw in (None, "", {}):
        return None
    if not isinstance(raw, dict):
        problems.append(Problem("Must describe the former position.", field="transfer"))
        return None
    transfer = {k: raw.get(k) for k in ("former_position", "former_manager", "former_start", "former_end")}
    if not isinstance(transfer["former_position"], str) or not transfer["former_position"].strip():
        problems.append(Problem("This field is required.", field="transfer.former_position"))
    if transfer["former_manager"] not in (None, ""):
        _person(transfer, "former_manager", session, problems, "transfer.former_manager")
    else:
        transfer["former_manager"] = None
    first = _date(transfer, "former_start", problems, "transfer.former_start")
    last = _date(transfer, "former_end", problems, "transfer.former_end")
    if first and last and last < first:
        problems.append(Problem("the former position ends before it starts", field="transfer.former_end"))
    if last and new_start and last >= new_start:
        problems.append(Problem("the former position must end before the new one starts", field="transfer.former_end"))
    return transfer


def _higher_level(session: Session, raw: Any, problems: list[Problem]) -> dict[str, str] | None:
    """D19-12(4)-(5): assessment at the higher duties level: {classification, pay_point} acted in."""
    if raw in (None, "", {}):
        return None
    if not isinstance(raw, dict):
        problems.append(Problem("Must give the classification and pay point acted in.", field="higher_duties_level"))
        return None
    classification = str(raw.get("classification") or "").strip().upper()
    point = str(raw.get("pay_point") or "").strip().upper()
    if not classification:
        problems.append(Problem("This field is required.", field="higher_duties_level.classification"))
    if point not in pay_points(session, classification):
        problems.append(Problem(f"not a pay point of {classification or 'that classification'}",
                                field="higher_duties_level.pay_point"))
    return {"classification": classification, "pay_point": point}


# ------------------------------------------------------------------------------------------ performance agreement


def prepare_performance_agreement(session: Session, data: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """D19-3.1 / D19-3.3: check who the agreement is for and when it must be in place."""
    problems: list[Problem] = []
    employee = _person(data, "employee", session, problems)
    setup_due = _date(data, "setup_due", problems, required=False)
    agreement = data.get("agreement")
    if agreement not in (None, "", {}):
        agreement = _agreement_values(session, agreement, problems)
    if problems:
        raise Invalid("the case cannot start", problems)
    assert employee is not None
    rules = d19_settings.load(session)
    facts = {"name": employee.name, "classification": employee.classification}
    _refuse_unless(_decision(session, settings, _definition(session, "performance_agreement"), d19_rules.SCOPE,
                             {"facts": facts}, "scope"), "employee")
    # D19-3.3: within two months of the determination's commencement (staff already employed then) or of
    # commencement in the agency (later starters); a renewal may name its own due date.
    base = max(employee.commenced_on or CLOCK.now().date(), rules.commencement_date)
    due = setup_due or policy.agreement_setup_due(base, rules.agreement_setup_months)
    data.update({"classification": employee.classification, "pay_point": employee.pay_point,
                 "commenced_on": employee.commenced_on.isoformat() if employee.commenced_on else None,
                 "setup_due": due.isoformat(), "periods": rules.periods(), "facts": facts,
                 "agreement_given": bool(agreement)})
    if agreement:
        data["agreement"] = agreement
    else:  # a draft the set-up form starts from: the people records' supervisor and manager
        manager = employee.manager or (employee.supervisor.supervisor if employee.supervisor else None)
        data["agreement"] = {k: v for k, v in (
            ("supervisor", employee.supervisor.username if employee.supervisor else None),
            ("approver", manager.username if manager else None)) if v}
    return data


def _agreement_values(session: Session, raw: Any, problems: list[Problem]) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        problems.append(Problem("Must be the agreement's start, end, targets, supervisor and approver.",
                                field="agreement"))
        return None
    agreement = {k: raw.get(k) for k in ("start", "end", "targets", "supervisor", "approver")}
    start = _date(agreement, "start", problems, "agreement.start")
    end = _date(agreement, "end", problems, "agreement.end", required=False)
    if start and end is None:  # D19-2: the agreement covers a 12-month period ending on the assessment date
        end = policy.add_months(start, d19_settings.load(session).cycle_months)
        agreement["end"] = end.isoformat()
    if start and end and end <= start:
        problems.append(Problem("the agreement must end after it starts", field="agreement.end"))
    targets = agreement["targets"]
    if not isinstance(targets, list) or not [t for t in targets if isinstance(t, str) and t.strip()]:
        problems.append(Problem("At least one performance target is required.", field="agreement.targets"))
    else:
        agreement["targets"] = [t.strip() for t in targets if isinstance(t, str) and t.strip()]
    for role in ("supervisor", "approver"):
        _person(agreement, role, session, problems, f"agreement.{role}")
    return agreement


HOOKS.prepare("pay_progression")(prepare_pay_progression)
HOOKS.prepare("performance_agreement")(prepare_performance_agreement)
