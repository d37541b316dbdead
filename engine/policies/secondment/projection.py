"""OCPE's placement register as a projection of each secondment case (MP-O), kept in step by an after-save hook
(keep_register_in_step) in the runtime's transaction.

A placement's rows (secondment.models.Placement and its agreement versions, timed steps and concerns) follow from the
case's audit trail (which task was completed by whom, when, with what data; which timers fired) and its task rows
(when each step opened, was due, was done), both written in the transaction of every change to the case; the
serialized workflow is never read.

Incremental (issue 21): the placement keeps its walk's state (`walk_state`: the CaseWalk, the newest task row seen,
the task rows open then, the steps numbered so far) with the newest audit event fed (`synced_event_id`). A step feeds
only the events after it and reads only the task rows open then or now: bounded by what is open, not by the case's
age; the report counts move with the step rows that changed. `rebuild_placement` rebuilds from the whole history (a
new placement, one without state, a history changed behind the walk, `ntpswf register rebuild`); the two agree after
every step of the scenario suites (tests/policies/secondment/test_register_incremental.py). Reads (refresh_register)
catch up a placement whose history changed behind it, and make pending steps past their due time overdue (the clock,
not an event, decides that).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, undefer

from engine.core.audit import write_pending
from engine.core.clock import CLOCK
from engine.core.config import Settings
from engine.core.db import Database
from engine.core.models import AuditEvent
from engine.policies.secondment import register as reg
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

    def dump(self) -> dict[str, Any]:
        return {"number": self.number, "kind": self.kind, "issued_at": self.issued_at.isoformat(),
                "document": self.document, "changes": self.changes,
                "answers": {party: [answer, at.isoformat()] for party, (answer, at) in self.answers.items()}}

    @classmethod
    def load(cls, data: dict[str, Any]) -> _Version:
        answers = {str(party): (str(answer), datetime.fromisoformat(at)) for party, (answer, at)
                   in data["answers"].items()}
        return cls(int(data["number"]), str(data["kind"]), datetime.fromisoformat(data["issued_at"]),
                   dict(data["document"]), answers, [str(c) for c in data["changes"]])


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

    def dump(self) -> dict[str, Any]:
        """The walk as JSON, to be taken up again by `load` (the accepted version is named by its number)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _WALK_OBJECTS}
        out["versions"] = [v.dump() for v in self.versions]
        out["accepted"] = self.accepted.number if self.accepted is not None else None
        out["agreed_at"] = self.agreed_at.isoformat() if self.agreed_at is not None else None
        out["concerns"] = [{**c, "raised_at": c["raised_at"].isoformat()} for c in self.concerns]
        return out

    @classmethod
    def load(cls, data: dict[str, Any]) -> CaseWalk:
        """A walk from its JSON (`dump`)."""
        walk = cls(**{f.name: data[f.name] for f in fields(cls) if f.name not in _WALK_OBJECTS})
        walk.versions = [_Version.load(v) for v in data["versions"]]
        walk.accepted = walk.versions[int(data["accepted"]) - 1] if data["accepted"] else None
        walk.agreed_at = datetime.fromisoformat(data["agreed_at"]) if data["agreed_at"] else None
        walk.concerns = [{**c, "raised_at": datetime.fromisoformat(c["raised_at"])} for c in data["concerns"]]
        return walk


#: CaseWalk fields that are not plain JSON values (dump and load convert them).
_WALK_OBJECTS = frozenset({"versions", "accepted", "agreed_at", "concerns"})


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(value[:10]) if isinstance(value, str) and value else None
    except ValueError:
        return None


def _step_outcome(task: HumanTask, now: datetime) -> str:
    due = task.due_at
    if task.state == "completed":
        return "on_time" if due is None or (task.completed_at is not None and task.completed_at <= due) else "late"
    if task.state == "open":
        return "overdue" if due is not None and due < now else "pending"
    ended = task.completed_at or now
    return "missed" if due is not None and due < ended else "superseded"


#: The report count each outcome adds to (overdue is not filed; pending and superseded have not fallen due).
_COUNTED = {"on_time": "reports_on_time", "late": "reports_late", "missed": "reports_missed",
            "overdue": "reports_missed"}
#: The format of Placement.walk_state (a placement holding another is rebuilt), and its keys beside the walk.
STATE_FORMAT, _STATE_KEYS = 1, ("task_id", "open", "numbers")


_CHILD_ROWS = (PlacementAgreementVersion, PlacementReport, PlacementConcern)


class _Drift(Exception):
    """The history changed behind the walk (or its state cannot be read): the placement must be rebuilt."""


@dataclass
class _State:
    """What the projection keeps between steps (Placement.walk_state)."""

    walk: CaseWalk = field(default_factory=CaseWalk)
    task_id: int = 0  # the newest task row seen
    open: list[int] = field(default_factory=list)  # the task rows open at the last sync
    numbers: dict[str, int] = field(default_factory=dict)  # timed steps numbered so far, by kind

    def dump(self) -> dict[str, Any]:
        return {"format": STATE_FORMAT, "walk": self.walk.dump(), **{k: getattr(self, k) for k in _STATE_KEYS}}

    @classmethod
    def load(cls, data: dict[str, Any] | None) -> _State:
        if not data or data.get("format") != STATE_FORMAT:
            raise _Drift("no walk state of this format")
        try:
            return cls(CaseWalk.load(data["walk"]), int(data["task_id"]), [int(i) for i in data["open"]],
                       {str(k): int(v) for k, v in data["numbers"].items()})
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise _Drift(f"the walk state cannot be read: {exc!r}") from exc


# ---------------------------------------------------------------------------------------------- one placement


def _placement_of(session: Session, instance_id: int) -> Placement | None:
    """The placement's row, locked: a step and a read that catches up never write it at the same time."""
    return session.scalars(select(Placement).where(Placement.instance_id == instance_id).with_for_update()
                           .options(undefer(Placement.walk_state)).execution_options(populate_existing=True)).first()


def rebuild_placement(session: Session, row: ProcessInstance, timezone: str) -> Placement:
    """Rebuild one placement's register rows from its case's whole audit trail and task rows."""
    events = list(session.scalars(select(AuditEvent).where(AuditEvent.instance_id == row.id)
                                  .order_by(AuditEvent.id)))
    tasks = list(session.scalars(select(HumanTask).where(HumanTask.instance_id == row.id).order_by(HumanTask.id)))
    placement = _placement_of(session, row.id)
    if placement is None:
        placement = Placement(instance_id=row.id, synced_event_id=0, synced_event_count=0)
        session.add(placement)
    _apply(session, row, placement, _State(), events, tasks, timezone, full=True)
    return placement


def update_placement(session: Session, row: ProcessInstance, timezone: str,
                     expected: tuple[int, int] | None = None) -> Placement:
    """Bring one placement's register rows up to date with the audit events after `synced_event_id` and the task
    rows open then or now. Rebuilds instead when it has no walk state or the history changed behind the walk (a
    new task row no event opened; given `expected`, the case's newest event id and event count: an older event)."""
    placement = _placement_of(session, row.id)
    if placement is None:
        return rebuild_placement(session, row, timezone)
    try:
        state = _State.load(placement.walk_state)
        events = list(session.scalars(select(AuditEvent).where(
            AuditEvent.instance_id == row.id, AuditEvent.id > placement.synced_event_id).order_by(AuditEvent.id)))
        # Bounded by what is open: the case's open task rows (instance and state index) and those open at the last
        # sync (by id). One opened since is open now, unless a failed hook missed steps: then the walk rebuilds.
        tasks = list(session.scalars(select(HumanTask).where(or_(
            and_(HumanTask.instance_id == row.id, HumanTask.state == "open"), HumanTask.id.in_(state.open)))
            .order_by(HumanTask.id)))
        opened = sum(1 for e in events if e.kind == "task_opened")
        if opened != sum(1 for t in tasks if t.id > state.task_id):
            raise _Drift(f"{opened} task(s) opened since the last sync, but not as many new open task rows")
        if expected is not None and (events[-1].id if events else placement.synced_event_id,
                                     placement.synced_event_count + len(events)) != expected:
            raise _Drift("an audit event older than the walk's newest was written since")
        _apply(session, row, placement, state, events, tasks, timezone, full=False)
    except _Drift as drift:
        log.info("placement %s is rebuilt from its history: %s", row.id, drift)
        for added in [o for o in session.new if isinstance(o, _CHILD_ROWS)]:  # the rebuild writes its own
            session.expunge(added)
        return rebuild_placement(session, row, timezone)
    return placement


def _apply(session: Session, row: ProcessInstance, p: Placement, state: _State, events: list[AuditEvent],
           tasks: list[HumanTask], timezone: str, *, full: bool) -> None:
    """Feed the walk `events`, write the placement and the child rows `tasks` and the new events change (all of
    them when `full`), and keep the state for the next step."""
    walk = state.walk
    versions_before, concerns_before = len(walk.versions), len(walk.concerns)
    for event in events:
        walk.feed(event)
    open_names = [t.name for t in tasks if t.state == "open"]
    with session.no_autoflush:  # the row is only complete once filled
        _fill_placement(session, p, row, walk, open_names, timezone)
        if full:
            p.reports_on_time = p.reports_late = p.reports_missed = p.reports_due = 0
        if events:
            p.synced_event_id = events[-1].id
        p.synced_event_count = len(events) if full else p.synced_event_count + len(events)
        p.synced_at = CLOCK.now()
    if p in session.new:
        session.flush()  # the child rows refer to it
    _write_versions(session, p.instance_id, walk, 0 if full else max(versions_before - 1, 0),
                    any(name in ACCEPTANCES for name in open_names), prune=full)
    _write_steps(session, p, state, tasks, full)
    if full or len(walk.concerns) > concerns_before:
        _sync_rows(session, PlacementConcern, p.instance_id, "seq",
                   {i: c for i, c in enumerate(walk.concerns, start=1) if i > concerns_before},
                   _existing(session, PlacementConcern, p.instance_id, "seq", PlacementConcern.seq > concerns_before),
                   prune=full)
    state.task_id = max([state.task_id, *(t.id for t in tasks)])
    state.open = [t.id for t in tasks if t.state == "open"]
    p.walk_state = state.dump()


def _fill_placement(session: Session, p: Placement, row: ProcessInstance, walk: CaseWalk, open_names: list[str],
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
    p.concerns_raised = len(walk.concerns)
    p.concerns_open = sum(1 for name in open_names if name in CONCERN_FOLLOW_UPS)
    p.evaluation_value = walk.evaluation_value


def _existing(session: Session, model: Any, instance_id: int, key: str, *where: Any) -> dict[Any, Any]:
    """A placement's rows of `model` (those matching `where`) by `key`."""
    query = select(model).where(model.instance_id == instance_id, *where)
    return {getattr(r, key): r for r in session.scalars(query)}


def _write_versions(session: Session, instance_id: int, walk: CaseWalk, first: int, open_acceptances: bool,
                    prune: bool) -> None:
    """Write the agreement versions from index `first` on (an earlier one never changes: answers go to the last)."""
    versions: dict[Any, dict[str, Any]] = {}
    for i, v in enumerate(walk.versions[first:], start=first):
        status = ("accepted" if v.accepted else "changes_requested" if v.complete
                  else "pending" if i == len(walk.versions) - 1 and open_acceptances else "withdrawn")
        values: dict[str, Any] = {"kind": v.kind, "issued_at": v.issued_at, "document": v.document,
                                  "status": status, "changes": v.changes}
        for party in ("secondee", "home", "host"):
            answer = v.answers.get(party)
            values[f"{party}_answer"], values[f"{party}_at"] = answer if answer else (None, None)
        versions[v.number] = values
    if not versions and not prune:
        return
    existing = _existing(session, PlacementAgreementVersion, instance_id, "version",
                         PlacementAgreementVersion.version > (0 if prune else first))
    _sync_rows(session, PlacementAgreementVersion, instance_id, "version", versions, existing, prune)


def _write_steps(session: Session, p: Placement, state: _State, tasks: list[HumanTask], full: bool) -> None:
    """Write the timed steps of `tasks` (numbering the new ones) and move the report counts with their outcomes."""
    now = CLOCK.now()
    steps: dict[Any, dict[str, Any]] = {}
    kinds: dict[int, str] = {}
    for t in tasks:
        kind = STEP_KINDS.get(t.name)
        if kind is None:
            continue
        kinds[t.id] = kind
        done = t.state == "completed"
        values: dict[str, Any] = {"due_at": t.due_at, "filed_at": t.completed_at if done else None,
                                  "filed_by": t.completed_by if done else None, "outcome": _step_outcome(t, now)}
        if t.id > state.task_id:  # new since the last sync: a row of its own, numbered in order
            state.numbers[kind] = state.numbers.get(kind, 0) + 1
            values.update(kind=kind, number=state.numbers[kind], opened_at=t.created_at)
        steps[t.id] = values
    if not steps and not full:
        return
    existing = _existing(session, PlacementReport, p.instance_id, "task_id",
                         *(() if full else (PlacementReport.task_id.in_(list(steps)),)))
    for task_id, values in steps.items():
        if kinds[task_id] not in REPORT_KINDS:
            continue
        before = existing.get(task_id)
        if before is None and "number" not in values:
            raise _Drift(f"the timed step of task {task_id} has no row")
        if before is not None and not full:
            _count(p, before.outcome, -1)
        _count(p, values["outcome"], 1)
    _sync_rows(session, PlacementReport, p.instance_id, "task_id", steps, existing, prune=full)


def _count(p: Placement, outcome: str, sign: int) -> None:
    column = _COUNTED.get(outcome)
    if column is not None:
        setattr(p, column, getattr(p, column) + sign)
        p.reports_due += sign


def _sync_rows(session: Session, model: Any, instance_id: int, key: str, wanted: dict[Any, dict[str, Any]],
               existing: dict[Any, Any], prune: bool) -> None:
    """Make a placement's rows of `model` hold `wanted` (key -> column values), writing only what changed; with
    `prune`, delete the `existing` rows not wanted (it takes them out of `existing`)."""
    for k, values in wanted.items():
        row = existing.pop(k, None)
        if row is None:
            session.add(model(instance_id=instance_id, **{key: k}, **values))
            continue
        for name, value in values.items():
            if getattr(row, name) != value:
                setattr(row, name, value)
    for row in existing.values() if prune else ():
        session.delete(row)


# ---------------------------------------------------------------------------------------------- reads and repair


def mark_overdue(session: Session, p: Placement) -> None:
    """Make the placement's pending steps whose due time has passed overdue, with its report counts."""
    for step in session.scalars(select(PlacementReport).where(
            PlacementReport.instance_id == p.instance_id, PlacementReport.outcome == "pending",
            PlacementReport.due_at < CLOCK.now())):
        step.outcome = "overdue"
        if step.kind in REPORT_KINDS:
            _count(p, "overdue", 1)


def _refresh_one(session: Session, *, instance_id: int, timezone: str, rebuild: bool = False) -> bool:
    """Bring one placement up to date (its history, then the clock), or `rebuild` it; returns whether its history
    was stale."""
    row = session.get(ProcessInstance, instance_id)
    if row is None:
        return False
    if rebuild:
        rebuild_placement(session, row, timezone)
        return True
    placement = _placement_of(session, instance_id)  # locked: a step of the case waits for this read
    fingerprint = reg.fingerprint(session, instance_id)
    stale = placement is None or (placement.synced_event_id, placement.synced_event_count) != fingerprint
    if stale:
        placement = update_placement(session, row, timezone, fingerprint)
    assert placement is not None
    mark_overdue(session, placement)
    return stale


def refresh_register(db: Database, timezone: str) -> int:
    """Bring the register up to date with every secondment case and the clock (a read when nothing changed);
    each placement that needs it in a transaction of its own. Returns how many placements' history was stale."""
    with db.read() as s:
        todo = sorted({*reg.stale_placements(s), *reg.overdue_placements(s)})
    return sum(_retrying(db, partial(_refresh_one, instance_id=i, timezone=timezone)) for i in todo)


def _retrying(db: Database, step: Callable[[Session], bool], attempts: int = 3) -> int:
    for attempt in range(1, attempts + 1):
        try:
            with db.unit_of_work() as uow:
                changed = step(uow.session)
                uow.commit()
                return int(changed)
        except IntegrityError:  # another process wrote the same new placement: the next attempt sees its rows
            if attempt == attempts:
                raise
            log.info("register refresh collided with another (attempt %s); retrying", attempt)
    return 0


def rebuild_register(db: Database, timezone: str) -> int:
    """Rebuild every placement from its case's history (repair: `ntpswf register rebuild`), each in a transaction
    of its own; returns how many."""
    with db.read() as s:
        ids = list(s.scalars(select(ProcessInstance.id).where(ProcessInstance.process_key == PROCESS_KEY)
                             .order_by(ProcessInstance.id)))
    for instance_id in ids:
        _retrying(db, partial(_refresh_one, instance_id=instance_id, timezone=timezone, rebuild=True))
    return len(ids)


@HOOKS.after_save(PROCESS_KEY)
def keep_register_in_step(session: Session, row: ProcessInstance, actor: str, settings: Settings) -> None:
    """Update the placement's register rows with what this step changed, in the same transaction (MP-O, MP-H).

    A savepoint keeps a failure here from undoing the change to the case: the register then catches up on
    its next read (refresh_register)."""
    # The runtime saves without autoflush: this change's audit events and task rows are written before the
    # savepoint (the update reads them), so that a failed update can never take them with it.
    write_pending(session)
    session.flush()
    try:
        with session.begin_nested():
            update_placement(session, row, settings.timezone)
    except Exception:  # the register is derived data; the case change must not fail because of it
        log.exception("placement register update of case %s failed; it will catch up on the next read", row.id)
