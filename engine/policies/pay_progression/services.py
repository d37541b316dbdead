"""Determination 19 services around the pay progression diagram.

* start a cycle from a recorded performance agreement (D19-3.1);
* appoint another person approved by the CEO to a role in a case (D19-6, D19-7, D19-8, D19-3.2);
* apply an approved progression to the people record (D19-4);
* keep evidence text out of task data (Document rows, `document:<id>` references in the data);
* deliver the notices the diagram writes into the case's `notices` list (scripts cannot do I/O).

The last two run as process hooks (engine.workflow.hooks) in the runtime's transaction: they take its session
and never commit, so they commit or roll back with the change that caused them.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.core.audit import audit
from engine.core.clock import CLOCK
from engine.core.config import Settings
from engine.core.errors import Conflict, Forbidden, Invalid, NotFound, Problem
from engine.core.models import AuditEvent
from engine.people.models import Person, Someone, User
from engine.policies.pay_progression.hooks import HOOKS
from engine.workflow.access import may_start, may_view_instance
from engine.workflow.assignment import (
    SUBJECT_LANE,
    ceo_office_members,
    heads_or_delegates_for,
    manager_of,
    person_by_username,
    resolve_lane,
    separate_from,
)
from engine.workflow.definitions import SPECS, latest_definition
from engine.workflow.models import Document, HumanTask, ProcessDefinition, ProcessInstance
from engine.workflow.notify import group_members, notify
from engine.workflow.runtime import Runtime

PROCESS = "pay_progression"
AGREEMENT_PROCESS = "performance_agreement"
#: The roles another person may be appointed to, and the clause that allows it.
APPOINTABLE = {
    "Supervisor": ("D19-6", "assess the employee and recommend, as a person approved by the CEO (cl. 6, 7)"),
    "Manager": ("D19-8", "consider the recommendation and decide, as an officer determined by the CEO (cl. 8)"),
    "CEO": ("D19-7", "receive a recommendation against and decide, as an appropriate officer (cl. 7)"),
    "FormerManager": ("D19-11", "assess the evidence from the former position (cl. 11)"),
}
#: Evidence fields of a submission that are kept as documents, not in task data.
EVIDENCE_TASKS = {"make_submission": "submission"}
REFERENCE = re.compile(r"document:(\d{1,12})")
SYSTEM = "system"


# --------------------------------------------------------------------------------------------- cycles


def _running_cycle(session: Session, row: ProcessInstance) -> int | None:
    return session.scalars(select(ProcessInstance.id).where(
        ProcessInstance.process_key == PROCESS, ProcessInstance.status == "running",
        ProcessInstance.subject_id == row.subject_id)).first()


def may_start_cycle_from(session: Session, user: User, row: ProcessInstance) -> bool:
    """D19-3.1: whether `user` may start the pay progression cycle from this agreement now (what the record page
    offers, and what start_cycle checks): an agreed performance agreement, no cycle running for the employee, and
    a caller who may start a case for the employee (HR, an administrator, the CEO's office)."""
    data = row.data or {}
    return (row.process_key == AGREEMENT_PROCESS and data.get("outcome") == "agreed"
            and _running_cycle(session, row) is None
            and may_start(session, user, PROCESS, {"employee": data.get("employee")}))


def start_cycle(runtime: Runtime, user: User, agreement_case: int) -> int:
    """D19-3.1: start the annual pay progression cycle from a recorded performance agreement."""
    with runtime.db.read() as s:
        row = s.get(ProcessInstance, agreement_case)
        if row is None or row.process_key != AGREEMENT_PROCESS or not may_view_instance(s, user, row):
            raise NotFound("no such performance agreement")
        employee = (row.data or {}).get("employee")
        started = _running_cycle(s, row)
        if started is None and not may_start_cycle_from(s, user, row):
            if (row.data or {}).get("outcome") != "agreed":
                raise Conflict("the performance agreement is not recorded as agreed yet",
                               [Problem("not agreed yet", field="agreement_case")])
            raise Forbidden("you may not start a pay progression case for this employee")
    if started is not None:
        raise Conflict(f"a pay progression case (#{started}) is already running for this employee",
                       [Problem(f"case #{started} is already running", field="agreement_case")])
    return runtime.start(user, PROCESS, {"employee": employee, "agreement_case": agreement_case})


# --------------------------------------------------------------------------------------------- appointments


def may_appoint(session: Session, user: User, organisation_id: int | None) -> bool:
    """D19-6/7/8: the CEO of the employee's organisation or a delegate of that CEO appoints; HR (and
    administrators) record an appointment on their behalf, naming who approved it."""
    return user.has_role("admin", "hr") or heads_or_delegates_for(session, user, organisation_id)


def may_appoint_in(session: Session, user: User, row: ProcessInstance) -> bool:
    """may_appoint for a running pay progression case (what the record page offers)."""
    if row.process_key != PROCESS or row.status != "running":
        return False
    subject = session.get(Person, row.subject_id) if row.subject_id else None
    return may_appoint(session, user, subject.organisation_id if subject else None)


def _approver(session: Session, user: User, approved_by: str | None, organisation_id: int | None) -> str:
    """The CEO or delegate approving: the user themself, or (for HR and admins) the one they name, who must be the
    CEO of the employee's organisation or a delegate of that CEO."""
    if heads_or_delegates_for(session, user, organisation_id):
        return user.username
    office = {p.username for p in ceo_office_members(session, organisation_id)} if organisation_id else set()
    if not approved_by or approved_by not in office:
        raise Invalid("the CEO or a delegate must approve", [Problem(
            "Name the CEO, or a CEO delegate, of the employee's organisation who approved this appointment.",
            field="approved_by")])
    return approved_by


def _separated_pairs(definition: ProcessDefinition) -> list[tuple[str, str | None, str, str | None]]:
    """(task, its lane, a task it must be separate from, that task's lane), from the diagram's `separateFrom`."""
    parsed = SPECS.get(definition)
    specs = {name: ts for spec in (parsed.spec, *parsed.subprocess_specs.values()) if spec is not None
             for name, ts in spec.task_specs.items()}
    pairs = []
    for name, ts in specs.items():
        for other in separate_from(ts):
            pairs.append((name, getattr(ts, "lane", None), other, getattr(specs.get(other), "lane", None)))
    return pairs


def _holder(session: Session, lane: str | None, assign: dict[str, Any], employee: Person,
            data: dict[str, Any]) -> str | None:
    """Who holds a person lane of a case now: its appointee, else the people records."""
    if lane is None:
        return None
    if assign.get(lane):
        return str(assign[lane])
    person: Person | None = None
    if lane == SUBJECT_LANE:
        person = employee
    elif lane == "Supervisor":
        person = employee.supervisor
    elif lane == "Manager":
        person = manager_of(employee)
    elif lane == "FormerManager":
        person = person_by_username(session, data.get("former_manager")
                                    or (data.get("transfer") or {}).get("former_manager"))
    return person.username if person is not None else None


def _separation_conflict(session: Session, definition: ProcessDefinition, instance_id: int | None, lane: str,
                         person: Person, assign: dict[str, Any], employee: Person,
                         data: dict[str, Any]) -> str | None:
    """Why `person` may not hold `lane` (separation of duties), or None: they did, or hold the role that does, a
    step that a step of `lane` must be separate from (whoever recommended does not decide; whoever decided does not
    review)."""
    completed: dict[str, set[str]] = {}
    if instance_id is not None:
        for name, by in session.execute(select(HumanTask.name, HumanTask.completed_by).where(
                HumanTask.instance_id == instance_id, HumanTask.state == "completed")):
            completed.setdefault(name, set()).add(by or "")
    for task, task_lane, other, other_lane in _separated_pairs(definition):
        for my_lane, theirs, their_lane in ((task_lane, other, other_lane), (other_lane, task, task_lane)):
            if my_lane != lane:
                continue
            if person.username in completed.get(theirs, set()):
                return (f"{person.name} took the step '{theirs}' of this case, which the {lane} role must be "
                        "separate from")
            if their_lane != lane and theirs not in completed and _holder(
                    session, their_lane, assign, employee, data) == person.username:
                return (f"{person.name} holds the {their_lane} role of this case, which the {lane} role must be "
                        "separate from (whoever recommends does not decide; whoever decides does not review)")
    return None


def appoint(runtime: Runtime, user: User, instance_id: int, lane: str, username: str, reason: str,
            approved_by: str | None = None) -> None:
    """Appoint another person approved by the CEO to a role in a running case; open tasks of that role move."""
    with runtime.db.read() as s:
        row = s.get(ProcessInstance, instance_id)
        employee = s.get(Person, row.subject_id) if row is not None and row.subject_id else None
        allowed = row is not None and employee is not None and may_appoint(s, user, employee.organisation_id)
        if row is None or row.process_key != PROCESS or not (allowed or may_view_instance(s, user, row)):
            raise NotFound("no such case")
        if not allowed:
            raise Forbidden("only the CEO of the employee's organisation, a delegate of that CEO, or HR on their "
                            "behalf may appoint")
        assert employee is not None
        if row.status != "running":
            raise Conflict(f"the case is {row.status}, not running")
        problems: list[Problem] = []
        if lane not in APPOINTABLE:
            problems.append(Problem(f"Must be one of: {', '.join(APPOINTABLE)}.", field="lane"))
        person = person_by_username(s, username)
        if person is None:
            problems.append(Problem("no person with this username", field="username"))
        elif person.id == row.subject_id:
            problems.append(Problem("the employee cannot be appointed to assess their own case", field="username"))
        elif lane in APPOINTABLE:
            data = row.data or {}
            conflict = _separation_conflict(s, runtime.definition_of(s, row), row.id, lane, person,
                                            dict(data.get("assign") or {}), employee, data)
            if conflict:
                problems.append(Problem(conflict, field="username"))
        if not (reason or "").strip():
            problems.append(Problem("This field is required.", field="reason"))
        if problems:
            raise Invalid("the appointment has errors", problems)
        assert person is not None
        approver = _approver(s, user, approved_by, employee.organisation_id)
    clause, role = APPOINTABLE[lane]
    entry = {"lane": lane, "username": username, "name": person.name, "approved_by": approver,
             "recorded_by": user.username, "on": CLOCK.now().date().isoformat(), "reason": reason.strip(),
             "clause": clause}
    with runtime.db.unit_of_work() as uow:  # the data and the open tasks change together, on the case as it is now
        session = uow.session
        case = runtime.lock_running_case(session, instance_id)
        data = case.data or {}
        changes = {"assign": {**(data.get("assign") or {}), lane: username},
                   "appointments": [*(data.get("appointments") or []), entry]}
        runtime.change_case_data(session, user.username, case, changes, (
            f"Determination 19, cl. {clause[4:]}: {approver} approved {person.name} to {role}: {reason.strip()}"))
        moved = []
        for task in session.scalars(select(HumanTask).where(
                HumanTask.instance_id == case.id, HumanTask.state == "open", HumanTask.lane == lane)):
            task.assignee_id, task.assigned_group = person.id, None
            moved.append(task.name)
        audit(session, case.id, user.username, "appointed", lane=lane, username=username,
              approved_by=approver, clause=clause, reason=reason.strip(), reassigned=moved)
        uow.commit()


@HOOKS.before_start(PROCESS)
def appointments_at_start(session: Session, user: User | None, actor: str, data: dict[str, Any]) -> dict[str, Any]:
    """Start data names an assessor, decider or reviewer (`assign`) only when the caller may appoint (the CEO of
    the employee's organisation, a delegate, or HR naming who approved, in `appointment.approved_by`); each is then
    recorded as an appointment, checked for separation of duties like one made later (D19-6, D19-7, D19-8)."""
    raw = data.get("assign")
    meta = data.pop("appointment", None)
    if raw in (None, "", {}):
        return data
    if not isinstance(raw, dict):
        raise Invalid("the case cannot start", [Problem("Must map roles to usernames.", field="assign")])
    employee = person_by_username(session, data.get("employee"))
    if employee is None:
        return data  # the starter refuses it, naming the field
    if user is None or not may_appoint(session, user, employee.organisation_id):
        raise Forbidden("only the CEO of the employee's organisation, a delegate of that CEO, or HR on their behalf "
                        "may name who assesses, decides or reviews", [Problem(
                            "You may not appoint people to this case's roles; leave this out, and the people "
                            "records decide who takes each step.", field="assign")])
    meta = meta if isinstance(meta, dict) else {}
    problems: list[Problem] = []
    approver = ""
    try:
        approver = _approver(session, user, meta.get("approved_by"), employee.organisation_id)
    except Invalid as exc:
        problems += [Problem(p.message, field="appointment.approved_by") for p in exc.problems]
    reason = str(meta.get("reason") or "").strip() or "named when the case was started"
    definition = latest_definition(session, PROCESS)
    entries = []
    for lane, username in raw.items():
        person = person_by_username(session, username)
        if lane not in APPOINTABLE:
            problems.append(Problem(f"only {', '.join(APPOINTABLE)} can be appointed", field=f"assign.{lane}"))
        elif person is None:
            problems.append(Problem("no person with this username", field=f"assign.{lane}"))
        elif person.id == employee.id:
            problems.append(Problem("the employee cannot be appointed to assess or decide their own case",
                                    field=f"assign.{lane}"))
        elif definition is not None and (conflict := _separation_conflict(
                session, definition, None, lane, person, raw, employee, data)):
            problems.append(Problem(conflict, field=f"assign.{lane}"))
        else:
            clause, _ = APPOINTABLE[lane]
            entries.append({"lane": lane, "username": username, "name": person.name, "approved_by": approver,
                            "recorded_by": actor, "on": CLOCK.now().date().isoformat(), "reason": reason,
                            "clause": clause})
    if problems:  # the roles first, then who approved
        raise Invalid("the case cannot start", sorted(problems, key=lambda p: p.field == "appointment.approved_by"))
    data["appointments"] = [*(data.get("appointments") or []), *entries]
    return data


# --------------------------------------------------------------------------------------------- people record


def progression_not_applicable(session: Session, row: ProcessInstance) -> str | None:
    """Why the case's progression cannot be applied to the people record (D19-4), or None when it can."""
    data = row.data or {}
    if data.get("outcome") != "progressed" or not data.get("new_pay_point"):
        return "the case has no approved progression to apply"
    if data.get("assessed_classification") != data.get("classification"):
        return "a higher duties progression is not applied to the nominal pay point"
    if session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.instance_id == row.id, AuditEvent.kind == "progression_applied")):
        return "this progression was already applied"
    person = session.get(Person, row.subject_id) if row.subject_id else None
    if person is None:
        return "the employee's record is gone"
    if person.pay_point != data.get("pay_point"):
        return f"{person.name} is now on {person.pay_point}, not {data.get('pay_point')}"
    return None


def may_apply_progression(session: Session, user: User, row: ProcessInstance) -> bool:
    """HR (or an administrator) may apply this case's approved progression now (what the record page offers)."""
    return (user.has_role("admin", "hr") and row.process_key == PROCESS
            and progression_not_applicable(session, row) is None)


def apply_progression(runtime: Runtime, user: User, instance_id: int) -> str:
    """D19-4: move the employee to the new pay point of an approved nominal-level progression (HR)."""
    if not user.has_role("admin", "hr"):
        raise Forbidden("only HR or an administrator may change pay points")
    with runtime.db.unit_of_work() as uow:
        s = uow.session
        row = s.get(ProcessInstance, instance_id)
        if row is None or row.process_key != PROCESS:
            raise NotFound("no such case")
        data = row.data or {}
        refused = progression_not_applicable(s, row)
        if refused is not None:
            raise NotFound(refused) if refused.endswith("is gone") else Conflict(refused)
        person = s.get(Person, row.subject_id)
        assert person is not None
        before, person.pay_point = person.pay_point, str(data["new_pay_point"])
        audit(s, instance_id, user.username, "progression_applied", clause="D19-4", before=before,
              after=person.pay_point, effective_date=data.get("effective_date"))
        uow.commit()
        return person.pay_point


# --------------------------------------------------------------------------------------------- hooks


def externalise_evidence(session: Session, instance_id: int, task_name: str, actor: str,
                         data: dict[str, Any]) -> dict[str, Any]:
    """Hook before a form's data enters the workflow: evidence text becomes `document:<id>` references.

    SpiffWorkflow copies task data into every later task; evidence can be long, so each text is stored
    once in `document` and the data keeps a reference. A reference the form sends back unchanged stays.
    """
    key = EVIDENCE_TASKS.get(task_name)
    submission = data.get(key) if key else None
    if key is None or not isinstance(submission, dict):
        return data
    submission = dict(submission)
    evidence = dict(submission.get("evidence") or {})
    for criterion, text in evidence.items():
        evidence[criterion] = _store(session, instance_id, f"{key}.evidence.{criterion}", text, actor)
    if evidence:
        submission["evidence"] = evidence
    if submission.get("evidence_former_position"):
        submission["evidence_former_position"] = _store(
            session, instance_id, f"{key}.evidence_former_position", submission["evidence_former_position"], actor)
    return {**data, key: submission}


def _store(session: Session, instance_id: int, field: str, text: Any, actor: str) -> Any:
    if not isinstance(text, str) or not text.strip():
        return text
    match = REFERENCE.fullmatch(text.strip())
    if match and (doc := session.get(Document, int(match.group(1)))) is not None and doc.instance_id == instance_id:
        return text.strip()
    doc = Document(instance_id=instance_id, field=field, content=text, created_at=CLOCK.now(), created_by=actor)
    session.add(doc)
    session.flush()
    return f"document:{doc.id}"


@HOOKS.display(PROCESS)
def resolve_documents(session: Session, instance_id: int, value: Any) -> Any:
    """`value` with every `document:<id>` reference to this case's documents replaced by the text."""
    if isinstance(value, dict):
        return {k: resolve_documents(session, instance_id, v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_documents(session, instance_id, v) for v in value]
    if isinstance(value, str) and (match := REFERENCE.fullmatch(value.strip())):
        doc = session.get(Document, int(match.group(1)))
        if doc is not None and doc.instance_id == instance_id:
            return doc.content
    return value


def deliver_notices(session: Session, instance: ProcessInstance) -> int:
    """Hook after a case is saved: send the notices the diagram added to `notices` since the last delivery.

    Each notice goes to the people of its lane (resolved like a task's lane) as an in-app notification,
    mailed by the outbox; an audit event per notice records who was told what, once.
    """
    notices = (instance.data or {}).get("notices")
    if not isinstance(notices, list) or not notices:
        return 0
    # Counted in the database; a query of the history first writes this transaction's events (engine.core.audit).
    delivered = session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.instance_id == instance.id, AuditEvent.kind == "notice_sent")) or 0
    sent = 0
    for index, item in enumerate(notices[delivered:], start=delivered):
        if not isinstance(item, dict):  # not a notice; counted, so it is never looked at again
            item = {"to": None, "subject": "(not a notice)", "body": ""}
        people = _lane_people(session, instance, str(item.get("to")))
        clause = item.get("clause")
        body = str(item.get("body", "")) + (f"\n\n({_clause_text(clause)})" if clause else "")
        notify(session, people, str(item.get("subject", "")), body, instance.id)
        audit(session, instance.id, SYSTEM, "notice_sent", index=index, to=item.get("to"),
              subject=item.get("subject"), clause=clause, recipients=sorted({p.username for p in people}))
        sent += 1
    return sent


def _lane_people(session: Session, instance: ProcessInstance, lane: str) -> list[Someone]:
    if lane not in APPOINTABLE and lane not in ("Employee", "HR"):
        return []
    assignment = resolve_lane(session, instance.process_key, lane, instance.data or {}, instance.started_by)
    if assignment.person is not None:
        return [assignment.person]
    return list(group_members(session, assignment.group)) if assignment.group else []


def _clause_text(clause: Any) -> str:
    text = str(clause)
    return f"Determination 19, cl. {text[4:]}" if text.startswith("D19-") else text


# --------------------------------------------------------------------------------------------- registration


@HOOKS.on_complete(PROCESS)
def _evidence_out_of_task_data(session: Session, instance: ProcessInstance, task: HumanTask, data: dict[str, Any],
                               actor: str) -> dict[str, Any]:
    return externalise_evidence(session, instance.id, task.name, actor, data)


@HOOKS.after_save(PROCESS)
@HOOKS.after_save(AGREEMENT_PROCESS)
def _send_notices(session: Session, instance: ProcessInstance, actor: str, settings: Settings) -> None:
    deliver_notices(session, instance)
