"""A case's record for the personnel file: who decided what, when, and with what reason.

Built from the case's audit trail (every completed task with its form data, every date change with its
reason, timers, escalations, appointments, notices) and its current data, with the choices shown by the
labels of the forms they were made in and evidence read back from the documents it is stored in.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core.models import AuditEvent
from engine.people.models import Person
from engine.policies.pay_progression import services as d19
from engine.workflow.forms import choices
from engine.workflow.models import Document, HumanTask, ProcessInstance

OUTCOMES = {"progressed": "Progressed to the next pay point", "not_progressed": "Not progressed",
            "declined": "Declined to participate (not a failed assessment)",
            "no_submission": "No submission before the assessment date", "agreed": "Performance agreement recorded",
            # the placement (mobility policy)
            "completed": "Placement completed", "ended_early": "Placement ended early",
            "not_supported": "Application not supported by the home organisation"}
KINDS = {"started": "Case started", "task_completed": "Task completed", "retimed": "Case data changed",
         "timer_fired": "Timer fired", "escalated": "Overdue: escalated", "appointed": "Person appointed",
         "notice_sent": "Notice sent", "completed": "Case ended", "cancelled": "Case cancelled",
         "progression_applied": "Pay point changed in the people record", "incident": "Timer failed",
         "task_opened": "Task opened", "migrated": "Moved to another version", "reminded": "Reminder sent",
         "needs_appointment": "Waiting for an appointment"}
#: Form fields that carry the choice a person made, and those that carry their reasons (in display order).
DECISION_FIELDS = ("participate", "recommend", "approve", "agree", "basis", "special_circumstances", "supports",
                   "would_satisfy", "request", "new_information_accepted", "outcome", "lodged", "result",
                   "delay_caused_by_employee")
REASON_FIELDS = ("reason", "feedback", "grounds", "new_information", "comments", "summary", "delay_explanation",
                 "decline_reason", "new_timeframe_request", "message")
DATE_FIELDS = ("new_date", "lodged_on", "decided_on", "submission_due", "start", "end")


@dataclass
class Entry:
    """One line of the history."""

    at: datetime
    who: str
    who_name: str
    what: str
    clause: str | None = None
    decision: str = ""
    reason: str = ""
    details: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Record:
    """The whole record of one case."""

    instance_id: int
    title: str
    process: str
    status: str
    summary: list[tuple[str, str]]
    entries: list[Entry]
    evidence: list[tuple[str, str]]


def _field_schema(forms: dict[str, Any], form: str | None, path: list[str]) -> dict[str, Any]:
    schema: Any = forms.get(form) if form else None
    for part in path:
        if not isinstance(schema, dict):
            return {}
        props = dict(schema.get("properties") or {})
        for branch in [*(schema.get("allOf") or []), schema.get("then") or {}]:
            props = {**(branch.get("properties") or {}), **props} if isinstance(branch, dict) else props
        schema = props.get(part)
    return schema if isinstance(schema, dict) else {}


def _label(forms: dict[str, Any], form: str | None, path: list[str], value: Any) -> str:
    return _choice_title(_field_schema(forms, form, path), value)


def _choice_title(schema: dict[str, Any], value: Any) -> str:
    """The title a form gives a choice, else the value as text."""
    titled = [(alt["const"], str(alt.get("title", alt["const"]))) for alt in schema.get("oneOf") or []
              if isinstance(alt, dict) and "const" in alt]
    for option, title in titled or choices(schema) or []:
        if option == value:
            return title
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _item_text(schema: dict[str, Any], value: Any) -> str:
    """One item of a list as people read it: an object as 'Title: value, ...' by its form's titles, never as code."""
    if not isinstance(value, dict):
        return _choice_title(schema, value)
    raw = schema.get("properties")
    props: dict[str, Any] = raw if isinstance(raw, dict) else {}
    parts = []
    for key, item in value.items():
        if item in (None, "", [], {}):
            continue
        found = props.get(key)
        field: dict[str, Any] = found if isinstance(found, dict) else {}
        parts.append(f"{field.get('title') or str(key).replace('_', ' ')}: {_item_text(field, item)}")
    return ", ".join(parts)


def _flatten(data: Any, prefix: list[str]) -> list[tuple[list[str], Any]]:
    if isinstance(data, dict):
        out: list[tuple[list[str], Any]] = []
        for key, value in data.items():
            out += _flatten(value, [*prefix, str(key)])
        return out
    return [(prefix, data)]


def _task_entry(session: Session, row: ProcessInstance, event: AuditEvent, forms: dict[str, Any],
                task_forms: dict[str, str | None]) -> Entry:
    detail = event.detail or {}
    form = task_forms.get(str(detail.get("task")))
    data = d19.resolve_documents(session, row.id, detail.get("data") or {})
    entry = Entry(event.at, event.actor, "", str(detail.get("title") or detail.get("task")), detail.get("clause"))
    decisions, reasons = [], []
    for path, value in _flatten(data, []):
        name = path[-1]
        if value in (None, "", [], {}):
            continue
        if name in DECISION_FIELDS:
            decisions.append(_label(forms, form, path, value))
        elif name in REASON_FIELDS:
            reasons.append(f"{_field_schema(forms, form, path).get('title') or name}: {value}")
        else:
            schema = _field_schema(forms, form, path)
            items: dict[str, Any] = schema["items"] if isinstance(schema.get("items"), dict) else {}
            shown = "; ".join(_item_text(items, v) for v in value) if isinstance(value, list) \
                else _choice_title(schema, value)
            entry.details.append((str(schema.get("title") or ".".join(path)), shown))
    entry.decision, entry.reason = "; ".join(decisions), "\n".join(reasons)
    return entry


def _event_entry(event: AuditEvent) -> Entry:
    detail = event.detail or {}
    what = KINDS.get(event.kind, event.kind.replace("_", " "))
    entry = Entry(event.at, event.actor, "", what, detail.get("clause"))
    if event.kind == "retimed":
        entry.reason = str(detail.get("reason") or "")
        before, after = detail.get("before") or {}, detail.get("after") or {}
        for key in after:
            if key in ("assign", "appointments"):
                continue
            entry.details.append((key, f"{before.get(key)} → {after.get(key)}"))
    elif event.kind == "appointed":
        entry.decision = (f"{detail.get('username')} for the {detail.get('lane')} role, "
                          f"approved by {detail.get('approved_by')}")
        entry.reason = str(detail.get("reason") or "")
    elif event.kind == "needs_appointment":
        entry.decision = f"{detail.get('title')} ({detail.get('lane')} role)"
        entry.reason = str(detail.get("reason") or "")
    elif event.kind == "reminded":
        entry.decision = str(detail.get("title") or "")
        entry.details.append(("recipients", ", ".join(detail.get("recipients") or []) or "nobody on record"))
    elif event.kind in ("timer_fired", "escalated"):
        entry.decision = str(detail.get("name") or detail.get("title") or "")
        if detail.get("due_at"):
            entry.details.append(("due", str(detail["due_at"])))
    elif event.kind == "notice_sent":
        entry.decision = f"to {detail.get('to')}: {detail.get('subject')}"
        entry.details.append(("recipients", ", ".join(detail.get("recipients") or []) or "nobody on record"))
    elif event.kind == "cancelled":
        entry.reason = str(detail.get("reason") or "")
    elif event.kind == "completed":
        entry.decision = OUTCOMES.get(str(detail.get("outcome")), str(detail.get("outcome") or ""))
    elif event.kind == "progression_applied":
        entry.decision = f"{detail.get('before')} → {detail.get('after')} from {detail.get('effective_date')}"
    return entry


def _summary(data: dict[str, Any], names: dict[str, str]) -> list[tuple[str, str]]:
    def add(label: str, value: Any) -> None:
        if value not in (None, "", [], {}):
            out.append((label, str(value)))

    out: list[tuple[str, str]] = []
    employee = data.get("employee")
    add("Employee", f"{names.get(str(employee), employee)} ({employee})" if employee else None)
    add("Classification and pay point", f"{data.get('classification')} {data.get('pay_point') or ''}".strip()
        if data.get("classification") else None)
    if data.get("assessed_classification") and data.get("assessed_classification") != data.get("classification"):
        add("Assessed at (higher duties, cl. 12)",
            f"{data['assessed_classification']} {data.get('assessed_pay_point')}")
    add("Eligibility", (data.get("eligibility") or {}).get("reason"))
    add("Performance cycle", f"{data.get('agreement_start')} to {data.get('original_assessment_date')}"
        if data.get("agreement_start") else None)
    add("Annual assessment date (cl. 4)", data.get("original_assessment_date"))
    basis = data.get("agreement_basis") or {}
    if basis:
        add("Performance agreement (cl. 3(1), 5)", f"recorded in case #{basis.get('case')}"
            if basis.get("source") == "recorded" else "declared when the case was started")
    for moved in data.get("postponements") or []:
        add("Postponed (cl. 9, leave not counting as service)", f"{moved.get('days')} days: assessment date "
            f"{moved.get('from')} → {moved.get('to')} ({moved.get('reason')})")
    late = data.get("late_invitation") or {}
    add("Late invitation (cl. 3(2), 9)", late.get("text"))
    add("Revised assessment date (cl. 10)", data.get("revised_assessment_date"))
    hd = data.get("higher_duties_postponement") or {}
    if hd.get("days"):
        add("Higher duties not counted (cl. 12(2))",
            f"{hd['days']} days: assessment date {hd.get('from')} → {hd.get('to')}")
    for t in data.get("timeframes") or []:
        add("New timeframe (cl. 9/10)", f"{t.get('previous')} → {t.get('new_date')} ({t.get('basis')}), agreed "
            f"{t.get('agreed_on')}: {t.get('reason')}")
    for a in data.get("appointments") or []:
        add(f"Appointed ({a.get('clause')})", f"{a.get('name')} ({a.get('username')}) for the {a.get('lane')} role, "
            f"approved by {a.get('approved_by')} on {a.get('on')}: {a.get('reason')}")
    _outcome_lines(data, add)
    return out


def _outcome_lines(data: dict[str, Any], add: Callable[[str, Any], None]) -> None:
    """The summary's second half: the outcome, its date, reviews, lapses and the agreement recorded."""
    add("Outcome", OUTCOMES.get(str(data.get("outcome")), data.get("outcome")))
    add("New pay point", data.get("new_pay_point"))
    add("Effective from", data.get("effective_date"))
    if data.get("outcome") == "progressed" and data.get("decided_on"):
        delay = data.get("delay") or {}
        add("Decided on", data.get("decided_on"))
        add("Back-dated (cl. 9)", f"yes, {delay.get('days_after_assessment_date')} days after the assessment date"
            if data.get("backdated") else "no")
    review = data.get("review") or {}
    if review:
        add("CEO review (cl. 9)", f"received {review.get('requested_on')}, due {review.get('due')}"
            + (f", decided {review.get('decided_on')}: {review.get('outcome')}" if review.get("decided_on") else "")
            + (" (late)" if review.get("late") else ""))
    s59 = data.get("s59") or {}
    if s59:
        add("Section 59 review (cl. 9)", f"lodged {s59.get('lodged_on')}" + (f" ({s59['reference']})" if
            s59.get("reference") else "") + (f", decided {s59.get('decided_on')}: {s59.get('result')} — "
                                             f"{s59.get('summary')}" if s59.get("decided_on") else ""))
    for lapse in data.get("lapses") or []:
        add(f"Lapsed on {lapse.get('on')}", lapse.get("text"))
    credit = data.get("nominal_credit") or {}
    if credit:
        add(f"Nominal level ({credit.get('rule')})", ("counts" if credit.get("counts") else "does not count")
            + f": {credit.get('reason')}")
    agreement = data.get("agreement") or {}
    if data.get("outcome") == "agreed":
        add("Agreement (cl. 3(1))", f"{agreement.get('start')} to {agreement.get('end')}; supervisor "
            f"{agreement.get('supervisor')}, approver {agreement.get('approver')}")
        for i, target in enumerate(agreement.get("targets") or [], start=1):
            add(f"Target {i}", target)


def case_record(session: Session, row: ProcessInstance) -> Record:
    """The record of a case the caller may see (access is the caller's to check)."""
    forms = dict(row.definition.forms or {})
    task_forms = {t.name: t.form for t in session.scalars(select(HumanTask).where(HumanTask.instance_id == row.id))}
    events = list(session.scalars(select(AuditEvent).where(AuditEvent.instance_id == row.id)
                                  .order_by(AuditEvent.id)))
    names = {username: name for username, name in session.execute(select(Person.username, Person.name))}
    entries = []
    for event in events:
        if event.kind == "task_opened":
            continue
        entry = _task_entry(session, row, event, forms, task_forms) if event.kind == "task_completed" \
            else _event_entry(event)
        entry.who_name = names.get(event.actor, event.actor)
        entries.append(entry)
    evidence = [(doc.field, doc.content) for doc in session.scalars(
        select(Document).where(Document.instance_id == row.id).order_by(Document.id))]
    data = d19.resolve_documents(session, row.id, row.data or {})
    if not evidence:  # evidence not (yet) moved out of task data: read it from the submission
        submission = data.get("submission") or {}
        evidence = [(f"submission.evidence.{k}", str(v)) for k, v in (submission.get("evidence") or {}).items()]
        if submission.get("evidence_former_position"):
            evidence.append(("submission.evidence_former_position", str(submission["evidence_former_position"])))
    return Record(row.id, row.title, row.process_key, row.status, _summary(data, names), entries, evidence)


CSV_COLUMNS = ("case", "at_utc", "who", "who_name", "what", "clause", "decision", "reason", "details")


def record_csv(record: Record) -> str:
    """The history as CSV (one row per entry), for the personnel file or a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for e in record.entries:
        writer.writerow([record.instance_id, e.at.isoformat(), e.who, e.who_name, e.what, e.clause or "",
                         _safe(e.decision), _safe(e.reason), _safe("; ".join(f"{k}: {v}" for k, v in e.details))])
    return out.getvalue()


def _safe(text: str) -> str:
    """Neutralise spreadsheet formulas in free text (CSV injection): a leading = + - @ is quoted."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
