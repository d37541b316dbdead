"""Start the year's pay progression cycles (Determination 19) for every officer whose cycle ends in a window.

Dates. An officer's annual assessment date comes from the records, not from a typed-in date:
- the cycle after their latest pay progression case (not cancelled) starts on that case's assessment date;
- with no case yet, the first cycle starts on the day they commenced (`person.commenced_on`, D19-5);
- a cycle lasts 12 calendar months (D19-2, D19-4), postponed day for day by recorded leave without pay
  that does not count as service, for its days within the cycle (D19-9d, `policy.postponement`, the rule
  recording leave applies to running cases).
An officer is in the window when the assessment date of their next cycle falls in it; the case starts
with that cycle's agreement start and assessment date.

Each start is `Runtime.start` in its own transaction (audited there as `started`), so one refusal does not
undo the others; the policy's refusals (a classification Determination 19 does not cover, the top pay point,
too little service) come back as `Invalid` and are reported as the reason an officer was skipped. The run is
a `BulkJob` row: any web process can report its progress, and the summary outlives the process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core.audit import audit
from engine.core.clock import CLOCK
from engine.core.config import Settings
from engine.core.db import Database
from engine.core.errors import Conflict, EngineError, Invalid, NotFound, Problem
from engine.core.models import BulkJob
from engine.people.models import Leave, PayPoint, Person, User
from engine.policies.pay_progression import start_checks
from engine.policies.pay_progression import timing as policy
from engine.workflow.models import ProcessInstance
from engine.workflow.runtime import Runtime

log = logging.getLogger(__name__)

PROCESS = "pay_progression"
KIND = "annual_pay_progression"
#: A running job that has not moved for this long was interrupted (its process died); another may start.
STALE_AFTER = timedelta(minutes=10)
#: The widest window one run may cover (a year and a bit: one cycle per officer).
MAX_WINDOW = timedelta(days=400)


@dataclass(frozen=True)
class Cycle:
    """One officer's next annual cycle."""

    username: str
    name: str
    agreement_start: date
    assessment_date: date
    basis: str  # how the dates were worked out, in words
    invite_overdue: bool = False  # the invitation is due before today: the case starts with it overdue (D19-3.2)


@dataclass(frozen=True)
class Skip:
    """An officer who will not (or did not) get a case, and why."""

    username: str
    name: str
    reason: str
    assessment_date: date | None = None


@dataclass
class JobStatus:
    """A bulk job as pages, the API of the progress bar and the command line show it."""

    id: int
    status: str
    total: int
    done: int
    started: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    started_by: str = ""
    error: str | None = None

    @property
    def finished(self) -> bool:
        """True when the job will not move any more."""
        return self.status in ("finished", "failed")

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON (what the progress bar polls)."""
        return {"id": self.id, "status": self.status, "total": self.total, "done": self.done,
                "started": len(self.started), "skipped": len(self.skipped), "finished": self.finished,
                "error": self.error}


# ------------------------------------------------------------------------------------------- dates


def next_cycle(start: date, lwop: list[tuple[date, date]], not_before: date) -> tuple[date, date]:
    """The first cycle from `start` whose assessment date is on or after `not_before`: (start, assessment date)."""
    for _ in range(500):  # a cycle a year: centuries of service end the loop long before this
        nominal = policy.add_months(start, 12)
        # the same rule record_leave applies to running cases: days of the cycle from its start on
        end = policy.postpone_for_lwop(nominal, policy.postponement(start, nominal, lwop))
        if end >= not_before:
            return start, end
        start = end
    raise ValueError(f"no cycle from {start} reaches {not_before}")  # pragma: no cover


def _last_cases(session: Session) -> dict[int, ProcessInstance]:
    """Each person's latest pay progression case that was not cancelled."""
    latest: dict[int, ProcessInstance] = {}
    rows = session.scalars(select(ProcessInstance).where(
        ProcessInstance.process_key == PROCESS, ProcessInstance.status != "cancelled",
        ProcessInstance.subject_id.is_not(None)).order_by(ProcessInstance.id))
    for row in rows:
        assert row.subject_id is not None
        latest[row.subject_id] = row
    return latest


def _running(session: Session) -> dict[int, int]:
    """Person id -> the id of their running pay progression case."""
    rows = session.execute(select(ProcessInstance.subject_id, ProcessInstance.id).where(
        ProcessInstance.process_key == PROCESS, ProcessInstance.status == "running"))
    return {subject: instance for subject, instance in rows if subject is not None}


def _lwop(session: Session) -> dict[int, list[tuple[date, date]]]:
    periods: dict[int, list[tuple[date, date]]] = {}
    for leave in session.scalars(select(Leave).where(Leave.kind.in_(("lwop", "extended")),
                                                     Leave.counts_as_service.is_(False))):
        periods.setdefault(leave.person_id, []).append((leave.start, leave.end))
    return periods


def _case_date(case: ProcessInstance) -> date | None:
    try:
        return policy.parse_date(str((case.data or {}).get("assessment_date")))
    except ValueError:
        return None


def plan_cycles(session: Session, window_start: date, window_end: date) -> tuple[list[Cycle], list[Skip]]:
    """Who gets a case for the window (with their dates), and who is left out before any start is tried."""
    check_window(window_start, window_end)
    last, running, lwop = _last_cases(session), _running(session), _lwop(session)
    officers = set(session.scalars(select(PayPoint.classification)))
    cycles: list[Cycle] = []
    skips: list[Skip] = []
    for person in session.scalars(select(Person).order_by(Person.username)):
        case = last.get(person.id)
        base = _case_date(case) if case is not None else None
        if case is not None and base is not None and window_start <= base <= window_end:
            reason = (f"already has a running pay progression case (#{case.id})" if case.status == "running"
                      else f"this cycle already has a case (#{case.id}, {case.status})")
            skips.append(Skip(person.username, person.name, reason, base))
            continue
        if case is not None and base is not None:
            basis = f"12 months after the last cycle's assessment date ({base.isoformat()}, case #{case.id})"
            start = base
        elif person.commenced_on is not None:
            basis = f"anniversary of commencement ({person.commenced_on.isoformat()})"
            start = person.commenced_on
        else:
            if person.classification in officers:
                skips.append(Skip(person.username, person.name, "no commencement date on record (and no earlier "
                                                                "case) to count the 12 months from"))
            continue
        agreement_start, assessment = next_cycle(start, lwop.get(person.id, []), window_start)
        if assessment > window_end:
            continue
        postponed = (assessment - policy.add_months(agreement_start, 12)).days
        if postponed:
            basis += f", postponed {postponed} days for leave without pay (D19-9d)"
        if person.id in running:
            skips.append(Skip(person.username, person.name, f"already has a running pay progression case "
                                                            f"(#{running[person.id]})", assessment))
            continue
        cycles.append(Cycle(person.username, person.name, agreement_start, assessment, basis))
    return cycles, skips


def _start_data(cycle: Cycle) -> dict[str, Any]:
    # The starter postpones the nominal date for the leave on record (D19-9d), as it does for any start; the plan's
    # date is that postponed date, by the same rule.
    return {"employee": cycle.username, "agreement_start": cycle.agreement_start.isoformat(),
            "assessment_date": policy.add_months(cycle.agreement_start, 12).isoformat()}


def preview_cycles(session: Session, settings: Settings, window_start: date, window_end: date
                   ) -> tuple[list[Cycle], list[Skip]]:
    """plan_cycles, with each cycle put through the start check a real start runs (D19-1, 5, 11, 12: scope and
    eligibility), so the preview counts what will really start and says why the others will not; and each cycle
    whose invitation is due before today is flagged (it would start overdue). Reads only."""
    planned, skips = plan_cycles(session, window_start, window_end)
    today = CLOCK.now().astimezone(ZoneInfo(settings.timezone)).date()
    cycles: list[Cycle] = []
    for cycle in planned:
        try:
            data = start_checks.prepare_pay_progression(session, _start_data(cycle), settings)
        except EngineError as exc:
            skips.append(Skip(cycle.username, cycle.name, _reason(exc), cycle.assessment_date))
            continue
        months = int((data.get("periods") or {}).get("invite_months", 2))
        due = policy.invite_due(policy.parse_date(data["assessment_date"]), months)
        cycles.append(replace(cycle, invite_overdue=due < today))
    return cycles, skips


def check_window(window_start: date, window_end: date) -> None:
    """A window is a start and an end date, in order, at most about a year apart."""
    if window_end < window_start:
        raise Invalid("the window ends before it starts", [Problem("must not be before the start", field="to")])
    if window_end - window_start > MAX_WINDOW:
        raise Invalid("the window is too wide", [Problem(
            f"at most {MAX_WINDOW.days} days: one cycle per officer", field="to")])


# ------------------------------------------------------------------------------------------- the job


def _status(job: BulkJob) -> JobStatus:
    results = job.results or {}
    return JobStatus(id=job.id, status=job.status, total=job.total, done=job.done,
                     started=list(results.get("started", [])), skipped=list(results.get("skipped", [])),
                     params=dict(job.params or {}), started_by=job.started_by, error=job.error)


def job_status(db: Database, job_id: int, kind: str = KIND) -> JobStatus:
    """The job's progress and results (a running job nobody has moved for a while shows as failed)."""
    with db.read() as s:
        job = s.get(BulkJob, job_id)
        if job is None or job.kind != kind:
            raise NotFound("no such job")
        status = _status(job)
        if job.status in ("queued", "running") and CLOCK.now() - job.updated_at > STALE_AFTER:
            status.status, status.error = "failed", "interrupted: the process running it stopped"
        return status


def recent_jobs(db: Database, kind: str = KIND, limit: int = 10) -> list[JobStatus]:
    """The latest jobs of a kind, newest first."""
    with db.read() as s:
        return [_status(j) for j in s.scalars(select(BulkJob).where(BulkJob.kind == kind)
                                              .order_by(BulkJob.id.desc()).limit(limit))]


def create_job(db: Database, actor: str, window_start: date, window_end: date) -> int:
    """Queue a run for the window; Conflict while another run is under way (two would start cases twice)."""
    check_window(window_start, window_end)
    now = CLOCK.now()
    with db.unit_of_work() as uow:
        session = uow.session
        for other in session.scalars(select(BulkJob).where(BulkJob.kind == KIND,
                                                           BulkJob.status.in_(("queued", "running")))):
            if now - other.updated_at > STALE_AFTER:
                other.status, other.error, other.finished_at = "failed", "interrupted", now
            else:
                raise Conflict(f"another run (#{other.id}, by {other.started_by}) is still starting cycles; "
                               "wait for it to finish")
        job = BulkJob(kind=KIND, status="queued", params={"from": window_start.isoformat(),
                                                           "to": window_end.isoformat()},
                      total=0, done=0, results={"started": [], "skipped": []}, started_by=actor,
                      created_at=now, updated_at=now)
        session.add(job)
        session.flush()
        job_id = job.id
        uow.commit()
    return job_id


def _record(db: Database, job_id: int, **changes: Any) -> JobStatus:
    """Write progress in its own short transaction and hand back the new state."""
    with db.unit_of_work() as uow:
        job = uow.session.get_one(BulkJob, job_id)
        results = {"started": list((job.results or {}).get("started", [])),
                   "skipped": list((job.results or {}).get("skipped", []))}
        for key in ("started", "skipped"):
            results[key].extend(changes.pop(key, []))
        job.results = results  # a new object: JSON columns do not see changes made in place
        job.done = len(results["started"]) + len(results["skipped"])
        for key, value in changes.items():
            setattr(job, key, value)
        job.updated_at = CLOCK.now()
        status = _status(job)
        uow.commit()
    return status


def _skip_dict(skip: Skip) -> dict[str, Any]:
    return {"username": skip.username, "name": skip.name, "reason": skip.reason,
            "assessment_date": skip.assessment_date.isoformat() if skip.assessment_date else None}


def _reason(exc: EngineError) -> str:
    return "; ".join(p.message for p in exc.problems) or exc.message


def _start_one(runtime: Runtime, user: User | None, actor: str, job_id: int, cycle: Cycle) -> dict[str, Any]:
    """Start one officer's case; the outcome as a 'started' or 'skipped' entry."""
    with runtime.db.read() as s:
        person = s.scalars(select(Person).where(Person.username == cycle.username)).first()
        running = _running(s).get(person.id) if person is not None else None
    if running is not None:  # started by someone else since the plan was made
        return {"skipped": _skip_dict(Skip(cycle.username, cycle.name, f"already has a running pay progression "
                                                                       f"case (#{running})", cycle.assessment_date))}
    data = _start_data(cycle)
    try:
        instance = runtime.start(user, PROCESS, data, actor=actor)
    except EngineError as exc:
        return {"skipped": _skip_dict(Skip(cycle.username, cycle.name, _reason(exc), cycle.assessment_date))}
    except Exception:  # one officer's failure must not stop the others; the log has the details
        log.exception("bulk job %s: starting %s failed", job_id, cycle.username)
        return {"skipped": _skip_dict(Skip(cycle.username, cycle.name, "an internal error (logged); try this "
                                                                       "officer again on their own",
                                           cycle.assessment_date))}
    return {"started": {"username": cycle.username, "name": cycle.name, "instance": instance,
                        "agreement_start": data["agreement_start"],
                        "assessment_date": cycle.assessment_date.isoformat(), "basis": cycle.basis}}


def run_job(runtime: Runtime, job_id: int, user: User | None, actor: str,
            progress: Callable[[JobStatus], None] | None = None) -> JobStatus:
    """Start every officer's cycle for the job's window, one transaction each, recording progress as it goes."""
    db = runtime.db
    status = job_status(db, job_id)
    window_start, window_end = (date.fromisoformat(status.params["from"]), date.fromisoformat(status.params["to"]))
    try:
        with db.read() as s:
            cycles, skips = plan_cycles(s, window_start, window_end)
        status = _record(db, job_id, status="running", total=len(cycles) + len(skips),
                         skipped=[_skip_dict(s) for s in skips])
        if progress:
            progress(status)
        for cycle in cycles:
            outcome = _start_one(runtime, user, actor, job_id, cycle)
            status = _record(db, job_id, started=[outcome["started"]] if "started" in outcome else [],
                             skipped=[outcome["skipped"]] if "skipped" in outcome else [])
            if progress:
                progress(status)
        status = _record(db, job_id, status="finished", finished_at=CLOCK.now())
    except Exception as exc:
        log.exception("bulk job %s failed", job_id)
        status = _record(db, job_id, status="failed", finished_at=CLOCK.now(), error=str(exc)[:2000])
    with db.unit_of_work() as uow:
        audit(uow.session, None, actor, "annual_cycles_run", job=job_id, window=status.params,
              status=status.status, started=[s["username"] for s in status.started],
              skipped={s["username"]: s["reason"] for s in status.skipped})
        uow.commit()
    if progress:
        progress(status)
    return status
