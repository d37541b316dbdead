"""OCPE's placement register as a projection of each secondment case (MP-O), kept in step by an after-save hook
(keep_register_in_step) in the runtime's transaction.

`sync_placements` rebuilds a placement's rows (secondment.models.Placement and its agreement versions, timed steps
and concerns) from the case's audit trail (which task was completed by whom, when, with what form data; which
timers fired) and its task rows (when each step opened, was due, was done). The runtime writes both in the same
transaction as every change to the case; the serialized workflow is never read, so the register does not depend on
how SpiffWorkflow scopes data between parallel branches. A placement is rebuilt whenever its audit trail changed
since the last rebuild (fingerprint: newest event id and number of events); rebuilding is idempotent, so a
projection that lags catches up on the next read.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.core.audit import write_pending
from engine.core.clock import CLOCK
from engine.core.config import Settings
from engine.core.db import Database
from engine.core.models import AuditEvent
from engine.policies.secondment.hooks import HOOKS
from engine.policies.secondment.models import (
    Placement,
    PlacementAgreementVersion,
    PlacementConcern,
    PlacementReport,
)
from engine.policies.secondment.process import (
    ACCEPTANCES,
    CONCERN_FOLLOW_UPS,
    CONCERN_TASKS,
    PROCESS_KEY,
    REPORT_KINDS,
    ROUND_OPENERS,
    ROUTES,
    STEP_KINDS,
    log,
)
from engine.workflow.assignment import person_by_username
from engine.workflow.models import HumanTask, ProcessInstance

# ---------------------------------------------------------------------------------------------- the projection


@dataclass
class _Version:
    number: int
    kind: str
    issued_at: datetime
    document: dict[str, Any]
    answers: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return len(self.answers) == 3

    @property
    def accepted(self) -> bool:
        return self.complete and all(a == "accept" for a, _ in self.answers.values())


@dataclass
class CaseWalk:
    """The state of a placement as its audit trail tells it, event after event."""

    route: str = "application"
    employee: str | None = None
    home_contact: str | None = None
    opportunity: dict[str, Any] | None = None
    application: dict[str, Any] | None = None
    forecast: dict[str, Any] | None = None
    draft: dict[str, Any] | None = None
    extension_end: str | None = None
    versions: list[_Version] = field(default_factory=list)
    accepted: _Version | None = None
    agreed_at: datetime | None = None
    extensions: int = 0
    selected: bool = False
    not_supported: bool = False
    planning: bool = False
    negotiating: bool = False
    started: bool = False
    post_started: bool = False
    early_last_day: str | None = None
    results: list[dict[str, Any]] | None = None
    evaluation_value: str | None = None
    concerns: list[dict[str, Any]] = field(default_factory=list)

    def feed(self, event: AuditEvent) -> None:
        """Take one audit event into account."""
        detail = event.detail or {}
        if event.kind == "started":
            data = detail.get("data") or {}
            self.route = data.get("route") or self.route
            self.employee = data.get("employee") or None
            self.home_contact = data.get("home_contact") or None
        elif event.kind == "task_opened":
            self._opened(str(detail.get("task")), event.at)
        elif event.kind == "task_completed":
            self._completed(str(detail.get("task")), detail.get("data") or {}, event)
        elif event.kind == "timer_fired" and detail.get("element") == "wait_for_start":
            self.started = True

    def _opened(self, task: str, at: datetime) -> None:
        if task == "forecast":
            self.planning = True
        elif task == "draft_agreement":
            self.negotiating = True
        elif task == "induct":
            self.started = True
        elif task == "post_placement_report":
            self.post_started = True
        if task in ROUND_OPENERS:
            kind = ROUND_OPENERS[task]
            base = self.draft if kind == "agreement" else (self.accepted.document if self.accepted else self.draft)
            document = copy.deepcopy(base or {})
            if kind == "extension" and self.extension_end:
                document.setdefault("schedule1", {})["end_date"] = self.extension_end
            self.versions.append(_Version(len(self.versions) + 1, kind, at, document))

    def _completed(self, task: str, data: dict[str, Any], event: AuditEvent) -> None:
        if task == "publish_opportunity":
            self.opportunity = data.get("opportunity")
        elif task == "select_secondee":
            self.employee = (data.get("selection") or {}).get("secondee") or self.employee
            self.selected = True
        elif task == "apply":
            self.application = data.get("application")
        elif task == "consider_application":
            self.not_supported = (data.get("endorsement") or {}).get("decision") == "decline"
        elif task == "forecast":
            self.forecast = data.get("forecast")
        elif task == "draft_agreement":
            self.draft = data.get("agreement")
        elif task == "plan_end":
            plan = data.get("end_plan") or {}
            self.extension_end = plan.get("new_end_date") if plan.get("decision") == "extend" else None
        elif task in ACCEPTANCES:
            self._answer(task, data, event)
        elif task in CONCERN_TASKS:
            concern = data.get("concern") or {}
            self.concerns.append({
                "raised_at": event.at, "raised_by": event.actor, "party": CONCERN_TASKS[task],
                "category": str(concern.get("category") or "other"), "urgent": bool(concern.get("urgent")),
                "details": str(concern.get("details") or "")})
        elif task == "decide_concern":
            decision = data.get("concern_decision") or {}
            if decision.get("decision") == "end_early" and self.started and not self.post_started:
                self.early_last_day = decision.get("last_day")
        elif task == "record_results":
            self.results = list((data.get("objective_results") or {}).get("results") or [])
        elif task == "evaluate_placement":
            self.evaluation_value = (data.get("evaluation") or {}).get("value")

    def _answer(self, task: str, data: dict[str, Any], event: AuditEvent) -> None:
        if not self.versions:
            return
        party, key = ACCEPTANCES[task]
        version = self.versions[-1]
        answer = data.get(key) or {}
        decision = str(answer.get("decision") or "")
        version.answers[party] = (decision, event.at)
        if decision != "accept":
            version.changes.append(f"{party}: {answer.get('changes') or ''}".strip())
        if version.accepted:
            self.accepted = version
            if version.kind == "extension":
                self.extensions += 1
            if self.agreed_at is None:
                self.agreed_at = event.at

    # ------------------------------------------------------------------ what the walk adds up to

    def status(self, instance_status: str) -> str:
        """Where the placement stands (one of STATUSES)."""
        if instance_status == "cancelled":
            return "cancelled"
        if self.not_supported:
            return "not_supported"
        if instance_status == "completed":
            return "closed"
        steps = [(self.post_started, "post_placement"), (self.started, "in_progress"),
                 (self.accepted is not None, "agreed"), (self.negotiating, "negotiating"),
                 (self.planning, "planning")]
        for reached, status in steps:
            if reached:
                return status
        if self.route == "opportunity" and not self.selected:
            return "published" if self.opportunity else "proposed"
        return "applied" if self.application else "proposed"

    def document(self) -> dict[str, Any]:
        """The agreement as it stands: the accepted version, else the latest draft."""
        if self.accepted is not None:
            return self.accepted.document
        return self.draft or {}


def _date(value: Any) -> date | None:
    if isinstance(value, str) and value:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _step_outcome(task: HumanTask, now: datetime) -> str:
    due = task.due_at
    if task.state == "completed":
        return "on_time" if due is None or (task.completed_at is not None and task.completed_at <= due) else "late"
    if task.state == "open":
        return "overdue" if due is not None and due < now else "pending"
    ended = task.completed_at or now
    return "missed" if due is not None and due < ended else "superseded"


def rebuild_placement(session: Session, row: ProcessInstance, timezone: str) -> Placement:
    """Rebuild one placement's register rows from its case's audit trail and task rows."""
    events = list(session.scalars(select(AuditEvent).where(AuditEvent.instance_id == row.id)
                                  .order_by(AuditEvent.id)))
    tasks = list(session.scalars(select(HumanTask).where(HumanTask.instance_id == row.id).order_by(HumanTask.id)))
    walk = CaseWalk()
    for event in events:
        walk.feed(event)
    placement = session.get(Placement, row.id)
    new = placement is None
    if placement is None:
        placement = Placement(instance_id=row.id)
    with session.no_autoflush:  # the row is only complete once filled
        _fill_placement(session, placement, row, walk, tasks, timezone)
    placement.synced_event_id = events[-1].id if events else 0
    placement.synced_event_count = len(events)
    placement.synced_at = CLOCK.now()
    if new:
        session.add(placement)
    session.flush()
    _add_children(session, placement, walk, tasks)
    return placement


def _fill_placement(session: Session, p: Placement, row: ProcessInstance, walk: CaseWalk, tasks: list[HumanTask],
                    timezone: str) -> None:
    doc = walk.document()
    s1: dict[str, Any] = doc.get("schedule1") or {}
    s2: dict[str, Any] = doc.get("schedule2") or {}
    forecast, opportunity, application = walk.forecast or {}, walk.opportunity or {}, walk.application or {}
    p.route = walk.route if walk.route in ROUTES else "application"
    p.status = walk.status(row.status)
    p.opportunity = walk.opportunity
    p.title = opportunity.get("title")
    p.closing_date = _date(opportunity.get("closing_date"))
    p.secondee = walk.employee
    secondee = person_by_username(session, walk.employee)
    p.secondee_name = secondee.name if secondee is not None else None
    p.home_organisation = s1.get("home_organisation") or (
        secondee.organisation.name if secondee is not None and secondee.organisation is not None else None)
    p.host_organisation = (s1.get("host_organisation") or forecast.get("host_organisation")
                           or opportunity.get("host_organisation") or application.get("preferred_host"))
    p.home_contact = s1.get("home_contact") or walk.home_contact
    p.host_contact = s1.get("host_contact") or forecast.get("host_contact")
    p.proposed_on = row.started_at.astimezone(ZoneInfo(timezone)).date()
    p.start_date = _date(s1.get("start_date") or forecast.get("proposed_start") or application.get("preferred_start")
                         or opportunity.get("proposed_start"))
    p.end_date = _date(s1.get("end_date") or forecast.get("proposed_end"))
    p.actual_end_date = None
    if walk.post_started:
        p.actual_end_date = _date(walk.early_last_day) or p.end_date
    p.ended_early = bool(p.actual_end_date and p.end_date and p.actual_end_date < p.end_date)
    p.agreed_at = walk.agreed_at
    p.version = len(walk.versions)
    p.accepted_version = walk.accepted.number if walk.accepted else 0
    p.extensions = walk.extensions
    p.objectives_total = len(s2.get("objectives") or [])
    results = walk.results
    p.objectives_met = None if results is None else sum(1 for r in results if r.get("result") == "met")
    p.objectives_partly_met = None if results is None else sum(1 for r in results if r.get("result") == "partly_met")
    if results is not None:
        p.objectives_total = len(results)
    now = CLOCK.now()
    outcomes = [_step_outcome(t, now) for t in tasks if STEP_KINDS.get(t.name) in REPORT_KINDS]
    p.reports_on_time = outcomes.count("on_time")
    p.reports_late = outcomes.count("late")
    p.reports_missed = outcomes.count("missed") + outcomes.count("overdue")
    p.reports_due = p.reports_on_time + p.reports_late + p.reports_missed
    p.concerns_raised = len(walk.concerns)
    p.concerns_open = sum(1 for t in tasks if t.name in CONCERN_FOLLOW_UPS and t.state == "open")
    p.evaluation_value = walk.evaluation_value


def _add_children(session: Session, p: Placement, walk: CaseWalk, tasks: list[HumanTask]) -> None:
    open_acceptances = any(t.name in ACCEPTANCES and t.state == "open" for t in tasks)
    versions: dict[Any, dict[str, Any]] = {}
    for i, v in enumerate(walk.versions):
        if v.accepted:
            status = "accepted"
        elif v.complete:
            status = "changes_requested"
        elif i == len(walk.versions) - 1 and open_acceptances:
            status = "pending"
        else:
            status = "withdrawn"
        values: dict[str, Any] = {"kind": v.kind, "issued_at": v.issued_at, "document": v.document,
                                  "status": status, "changes": v.changes}
        for party in ("secondee", "home", "host"):
            answer = v.answers.get(party)
            values[f"{party}_answer"], values[f"{party}_at"] = answer if answer else (None, None)
        versions[v.number] = values
    _sync_rows(session, PlacementAgreementVersion, p.instance_id, "version", versions)
    numbers: dict[str, int] = {}
    steps: dict[Any, dict[str, Any]] = {}
    now = CLOCK.now()
    for t in tasks:
        kind = STEP_KINDS.get(t.name)
        if kind is None:
            continue
        numbers[kind] = numbers.get(kind, 0) + 1
        done = t.state == "completed"
        steps[t.id] = {"kind": kind, "number": numbers[kind], "opened_at": t.created_at, "due_at": t.due_at,
                       "filed_at": t.completed_at if done else None, "filed_by": t.completed_by if done else None,
                       "outcome": _step_outcome(t, now)}
    _sync_rows(session, PlacementReport, p.instance_id, "task_id", steps)
    _sync_rows(session, PlacementConcern, p.instance_id, "seq",
               {i: c for i, c in enumerate(walk.concerns, start=1)})


def _sync_rows(session: Session, model: Any, instance_id: int, key: str, wanted: dict[Any, dict[str, Any]]) -> None:
    """Make a placement's rows of `model` exactly `wanted` (key -> column values), writing only what changed."""
    existing = {getattr(r, key): r for r in session.scalars(select(model).where(model.instance_id == instance_id))}
    for k, values in wanted.items():
        row = existing.pop(k, None)
        if row is None:
            session.add(model(instance_id=instance_id, **{key: k}, **values))
            continue
        for name, value in values.items():
            if getattr(row, name) != value:
                setattr(row, name, value)
    for row in existing.values():
        session.delete(row)


def _fingerprints(session: Session) -> dict[int, tuple[int, int]]:
    rows = session.execute(
        select(AuditEvent.instance_id, func.max(AuditEvent.id), func.count(AuditEvent.id))
        .join(ProcessInstance, ProcessInstance.id == AuditEvent.instance_id)
        .where(ProcessInstance.process_key == PROCESS_KEY).group_by(AuditEvent.instance_id)).all()
    return {int(i): (int(mx), int(n)) for i, mx, n in rows if i is not None}


def stale_placements(session: Session) -> list[int]:
    """The secondment cases whose register rows are missing or older than their audit trail."""
    have = {int(i): (int(e), int(n)) for i, e, n in session.execute(
        select(Placement.instance_id, Placement.synced_event_id, Placement.synced_event_count)).all()}
    return sorted(i for i, fp in _fingerprints(session).items() if have.get(i) != fp)


def sync_placements(session: Session, timezone: str) -> int:
    """Rebuild every stale placement in this session's transaction; returns how many were rebuilt."""
    stale = stale_placements(session)
    for instance_id in stale:
        row = session.get(ProcessInstance, instance_id)
        if row is not None:
            rebuild_placement(session, row, timezone)
    return len(stale)


def refresh_register(db: Database, timezone: str) -> int:
    """Bring the register up to date with every secondment case (a no-op read when nothing changed)."""
    with db.read() as s:
        if not stale_placements(s):
            return 0
    attempts = 3
    for attempt in range(1, attempts + 1):
        try:
            with db.unit_of_work() as uow:
                count = sync_placements(uow.session, timezone)
                uow.commit()
                return count
        except IntegrityError:
            # Another process rebuilt the same placement at the same moment; the next attempt sees its rows.
            if attempt == attempts:
                raise
            log.info("register refresh collided with another (attempt %s); retrying", attempt)
    return 0


@HOOKS.after_save(PROCESS_KEY)
def keep_register_in_step(session: Session, row: ProcessInstance, actor: str, settings: Settings) -> None:
    """Rebuild the placement's register rows in the same transaction as the change (MP-O, MP-H).

    A savepoint keeps a failure here from undoing the change to the case: the register then catches up on
    its next read (refresh_register)."""
    # The runtime saves without autoflush; the rebuild reads this change's audit events and task rows.
    # Both are written before the savepoint, so that a failed rebuild can never take them with it.
    write_pending(session)
    session.flush()
    try:
        with session.begin_nested():
            rebuild_placement(session, row, settings.timezone)
    except Exception:  # the register is derived data; the case change must not fail because of it
        log.exception("placement register rebuild of case %s failed; it will catch up on the next read", row.id)
