"""The studio's scenario lab (issue 20): "Try this draft" runs a process's scenarios (scenarios/<policy>/<key>/, and
those of the processes its diagram calls) against what runs and against the draft, each in a throw-away database with
the clock the scenario gives (engine.workflow.scenarios), and reports side by side which scenarios changed outcome,
date or path, and where, and which fail with the draft.

What is tried is what deploying from the tables page would deploy (dmn_drafts.draft_bundle: the newest version's
files with the saved diagram draft and table drafts in place of theirs); every other process runs its newest version.
Who may try or deploy is the studio's rule (versions.require_owner). A run is bounded: at most MAX_SCENARIOS, and no
scenario starts after TIME_BUDGET seconds on either side (those are reported as not run); a run of the D19 library
takes a few seconds per side, which the studio waits for in its request. Each report is kept as a BulkJob row (kind
"scenario_lab"): its page reads it, and a try or a deployment of the same drafts (the same fingerprint: files,
scenarios and day) within RECENT reuses a complete one instead of running again.

A deployment whose draft fails or changes a scenario (or leaves one not run) needs the owner's confirmation and a
reason; the deployment then audits the scenarios, the actor and the reason (kind "deployed_despite_scenarios").
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core.clock import CLOCK
from engine.core.config import Settings
from engine.core.db import Database
from engine.core.errors import Invalid, NotFound, Problem
from engine.core.models import BulkJob
from engine.people.models import User
from engine.workflow import dmn_drafts, versions
from engine.workflow.bundles import BPMN_NS, Bundle, Deployed, safe_xml
from engine.workflow.definitions import list_latest
from engine.workflow.scenario_format import Scenario, ScenarioFormatError, load_scenario, scenario_files
from engine.workflow.scenarios import Change, ScenarioResult, Sources, compare, run_scenarios
from engine.workflow.versions import definition, require_owner

KIND = "scenario_lab"
#: The most scenarios one try runs (per side), and the seconds after which no further scenario starts (per side).
MAX_SCENARIOS = 100
TIME_BUDGET = 60.0
#: How long a report stands for a deployment of the same drafts.
RECENT = timedelta(hours=1)
#: The field a deployment needs ticked, and its words, when scenarios fail or change.
CONFIRM_FIELD = "confirm"
CONFIRM_LABEL = "I have read the changed scenarios and deploy anyway"
MAX_REASON = 2000
_SHOWN = ("passed", "status", "outcome", "effective_date", "ended_at", "path", "failures")


@dataclass(frozen=True)
class LabInputs:
    """What one try runs: the live and draft files (every other process's newest version beside them), the
    scenarios, the library files that could not be read, and a fingerprint of all of it."""

    key: str
    live: Sources
    draft: Sources
    draft_hash: str
    scenarios: list[Scenario]
    unreadable: list[str]
    fingerprint: str


@dataclass
class LabReport:
    """A try's report as kept (JSON-ready): one row per scenario, live against draft."""

    key: str
    fingerprint: str
    draft_hash: str
    tried_at: str
    tried_by: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    job_id: int | None = None

    @property
    def changed(self) -> list[dict[str, Any]]:
        """Rows whose outcome, date, end, path or passing differ between live and draft."""
        return [r for r in self.rows if r["changed"]]

    @property
    def failing(self) -> list[dict[str, Any]]:
        """Rows that fail with the draft."""
        return [r for r in self.rows if r["draft"] is not None and not r["draft"]["passed"]]

    @property
    def not_run(self) -> list[dict[str, Any]]:
        """Rows the bound stopped (on either side)."""
        return [r for r in self.rows if r["live"] is None or r["draft"] is None]

    @property
    def needs_confirmation(self) -> bool:
        """A deployment of these drafts needs the owner's confirmation."""
        return bool(self.changed or self.failing or self.not_run or self.unreadable)

    def as_dict(self) -> dict[str, Any]:
        """As kept in the BulkJob row."""
        return {"key": self.key, "fingerprint": self.fingerprint, "draft_hash": self.draft_hash,
                "tried_at": self.tried_at, "tried_by": self.tried_by, "rows": self.rows,
                "unreadable": self.unreadable}


class ConfirmationNeeded(Invalid):
    """A deployment refused because scenarios fail or changed and the owner did not confirm; carries the report."""

    def __init__(self, report: LabReport, problems: list[Problem]) -> None:
        super().__init__("scenarios fail or changed with these drafts: confirm to deploy anyway", problems)
        self.report = report


# --------------------------------------------------------------------------- what is tried


def _called_keys(bundle: Bundle) -> set[str]:
    keys: set[str] = set()
    for name, text in bundle.sources.items():
        if name.lower().endswith(".bpmn"):
            keys |= {str(c.get("calledElement")) for c in safe_xml(name, text).iter(f"{{{BPMN_NS}}}callActivity")
                     if c.get("calledElement")}
    return keys


def _files(bundle: Bundle, others: Sequence[Any]) -> dict[str, bytes | str]:
    """The bundle's files and forms, then every other process's newest version (its files where names differ)."""
    files: dict[str, bytes | str] = dict(bundle.sources)
    files.update({name: json.dumps(schema, sort_keys=True) for name, schema in bundle.forms.items()})
    for row in others:
        for name, text in row.sources.items():
            files.setdefault(name, text)
        for name, schema in row.forms.items():
            files.setdefault(name, json.dumps(schema, sort_keys=True))
    return files


def _library(keys: Sequence[str], root: Path | None) -> tuple[list[Scenario], list[str], dict[str, str]]:
    """The scenarios of these processes, the files that could not be read (with why), and each file's hash."""
    scenarios: list[Scenario] = []
    unreadable: list[str] = []
    hashes: dict[str, str] = {}
    paths = [p for key in keys for p in (scenario_files(process=key) if root is None
                                         else scenario_files(root, process=key))]
    for path in paths:
        hashes[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        try:
            scenarios.append(load_scenario(path))
        except ScenarioFormatError as exc:
            unreadable.append(str(exc))
    return scenarios, unreadable, hashes


def lab_inputs(session: Session, key: str, root: Path | None = None) -> LabInputs:
    """What trying the process's drafts runs (NotFound when the process was never deployed)."""
    live_row = definition(session, key)
    live = Bundle(sources=dict(live_row.sources), forms=dict(live_row.forms))
    draft = dmn_drafts.draft_bundle(session, key)
    others = [row for row in list_latest(session) if row.key != key]
    keys = [key, *sorted(_called_keys(draft) - {key})]
    scenarios, unreadable, hashes = _library(keys, root)
    live_files, draft_files = _files(live, others), _files(draft, others)
    fingerprint = hashlib.sha256(json.dumps(  # today's date too: a scenario without a start date starts today
        {"live": _hash_files(live_files), "draft": _hash_files(draft_files), "scenarios": hashes,
         "day": CLOCK.now().date().isoformat()},
        sort_keys=True).encode()).hexdigest()
    return LabInputs(key, Sources(live_files), Sources(draft_files), dmn_drafts.bundle_hash(draft),
                     scenarios, unreadable, fingerprint)


def _hash_files(files: dict[str, bytes | str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        raw = files[name]
        digest.update(name.encode() + b"\0" + (raw.encode() if isinstance(raw, str) else raw) + b"\0")
    return digest.hexdigest()


# --------------------------------------------------------------------------- running


def _bounded(scenarios: Sequence[Scenario], budget: float) -> Iterator[Scenario]:
    """The first MAX_SCENARIOS scenarios, until the budget (seconds from the first) is spent: none starts after
    it (the rest are reported as not run)."""
    deadline = time.monotonic() + budget
    for scenario in scenarios[:MAX_SCENARIOS]:
        if time.monotonic() >= deadline:
            return
        yield scenario


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _summary(result: ScenarioResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    shown = {name: _plain(getattr(result, name)) for name in _SHOWN if name != "failures"}
    shown["failures"] = [{"where": f.where, "message": f.message} for f in result.failures]
    return shown


_FIELD_NAMES = {"status": "status", "outcome": "outcome", "effective_date": "effective date", "ended_at": "end event"}


def _where(changes: Sequence[Change], draft: ScenarioResult | None) -> str:
    """Where a scenario parts from what runs, as people read it: where the draft fails, which results changed,
    and where its path parts."""
    parts: list[str] = []
    if draft is not None and draft.failures:
        parts.append(f"fails at {draft.failures[0].where}")
    fields = [_FIELD_NAMES[c.field] for c in changes if c.field in _FIELD_NAMES]
    if fields:
        parts.append(f"changed: {', '.join(fields)}")
    parts += [f"path {c.where}" for c in changes if c.field == "path"]
    if any(c.field == "passed" and c.after for c in changes):
        parts.append("now passes")
    return "; ".join(parts)


def _row(scenario: Scenario, live: ScenarioResult | None, draft: ScenarioResult | None) -> dict[str, Any]:
    changes = compare([live], [draft]) if live is not None and draft is not None else []
    return {"name": scenario.name, "file": scenario.file, "clauses": list(scenario.clauses),
            "live": _summary(live), "draft": _summary(draft),
            "changes": [{"field": c.field, "before": _plain(c.before), "after": _plain(c.after), "where": c.where}
                        for c in changes],
            "changed": bool(changes), "where": _where(changes, draft)}


def run_lab(inputs: LabInputs, settings: Settings, actor: str, budget: float = TIME_BUDGET) -> LabReport:
    """Run the scenarios against the live files and the draft (straight through: make test runs the library with
    a save/restore too), and compare them scenario by scenario."""
    sides: list[dict[tuple[str | None, str], ScenarioResult]] = []
    for sources in (inputs.live, inputs.draft):
        results = run_scenarios(_bounded(inputs.scenarios, budget), sources, settings, modes=("straight",))
        sides.append({(r.file, r.name): r for r in results})
    report = LabReport(inputs.key, inputs.fingerprint, inputs.draft_hash, CLOCK.now().isoformat(), actor,
                       unreadable=list(inputs.unreadable))
    for scenario in inputs.scenarios:
        found = (scenario.file, scenario.name)
        report.rows.append(_row(scenario, sides[0].get(found), sides[1].get(found)))
    return report


# --------------------------------------------------------------------------- keeping reports


def _keep(db: Database, report: LabReport) -> LabReport:
    now = CLOCK.now()
    with db.unit_of_work() as uow:
        job = BulkJob(kind=KIND, status="finished", params={"process": report.key, "fingerprint": report.fingerprint,
                                                           "draft_hash": report.draft_hash},
                      total=len(report.rows), done=len(report.rows) - len(report.not_run),
                      results=report.as_dict(), started_by=report.tried_by, created_at=now, updated_at=now,
                      finished_at=now)
        uow.session.add(job)
        uow.session.flush()
        report.job_id = job.id
        uow.commit()
    return report


def _report_of(job: BulkJob) -> LabReport:
    kept = dict(job.results)
    return LabReport(kept["key"], kept["fingerprint"], kept["draft_hash"], kept["tried_at"], kept["tried_by"],
                     list(kept["rows"]), list(kept.get("unreadable") or []), job.id)


def try_draft(db: Database, user: User, key: str, settings: Settings, budget: float = TIME_BUDGET,
              root: Path | None = None) -> LabReport:
    """Try the process's drafts against its scenarios; the report is kept (its job_id names its page). A complete
    report of the same fingerprint kept within RECENT is the answer again: trying twice runs nothing twice."""
    require_owner(user)
    with db.read() as session:
        _require_drafts(session, user, key)
        inputs = lab_inputs(session, key, root)
        since = CLOCK.now() - RECENT
        for job in session.scalars(select(BulkJob).where(BulkJob.kind == KIND, BulkJob.created_at >= since)
                                   .order_by(BulkJob.id.desc()).limit(50)):
            if (job.params or {}).get("fingerprint") == inputs.fingerprint and job.done == job.total:
                return _report_of(job)
    return _keep(db, run_lab(inputs, settings, user.username, budget))


def _require_drafts(session: Session, user: User, key: str) -> None:
    """Invalid when the process has no saved draft to try (table or diagram)."""
    if versions.saved_draft(session, key) is None and not any(
            t.draft for t in dmn_drafts.table_files(session, user, key)):
        raise Invalid("nothing to try", [Problem("no decision table or diagram of this process has a saved draft",
                                                 field="draft")])


def report(db: Database, user: User, key: str, job_id: int) -> LabReport:
    """A kept report of the process (NotFound when it is not one)."""
    require_owner(user)
    with db.read() as session:
        job = session.get(BulkJob, job_id)
        if job is None or job.kind != KIND or (job.params or {}).get("process") != key:
            raise NotFound(f"no tried draft {job_id} of process '{key}'")
        return _report_of(job)


def current_fingerprint(db: Database, user: User, key: str, root: Path | None = None) -> str:
    """The fingerprint of the process's drafts as they stand (a report of another one is out of date)."""
    require_owner(user)
    with db.read() as session:
        return lab_inputs(session, key, root).fingerprint


# --------------------------------------------------------------------------- deploying


def _confirmation(report: LabReport, confirm: Any, reason: Any) -> dict[str, Any] | None:
    """What the deployment audits when scenarios fail or changed (None when none did); ConfirmationNeeded naming
    the field when the owner did not tick it or gave no reason."""
    if not report.needs_confirmation:
        return None
    problems: list[Problem] = []
    if confirm not in ("yes", "on", "true", True):
        problems.append(Problem(f"tick '{CONFIRM_LABEL}': {len(report.failing)} scenario(s) fail and "
                                f"{len(report.changed)} changed with these drafts", field=CONFIRM_FIELD))
    text = reason.strip() if isinstance(reason, str) else ""
    if not text:
        problems.append(Problem("say why you deploy despite the changed scenarios", field="reason"))
    elif len(text) > MAX_REASON:
        problems.append(Problem(f"at most {MAX_REASON} characters", field="reason"))
    if problems:
        raise ConfirmationNeeded(report, problems)
    return {"reason": text, "lab": report.job_id, "failed": [r["name"] for r in report.failing],
            "changed": [r["name"] for r in report.changed], "not_run": [r["name"] for r in report.not_run],
            "unreadable": report.unreadable}


def deploy_tables(db: Database, user: User, key: str, settings: Settings, confirm: Any = None, reason: Any = None,
                  budget: float = TIME_BUDGET, root: Path | None = None) -> tuple[list[Deployed], LabReport]:
    """Deploy the process's table drafts (dmn_drafts.deploy_tables) once the scenario lab has tried them: when a
    scenario fails or changed, only with the owner's confirmation and reason, which are audited."""
    require_owner(user)
    with db.read() as session:
        if not any(table.draft for table in dmn_drafts.table_files(session, user, key)):
            raise Invalid("nothing to deploy", [Problem("no decision table of this process has a saved draft",
                                                        field="filename")])
    problems = dmn_drafts.draft_problems(db, user, key)
    if problems:  # named cell by cell, before any scenario runs
        raise Invalid("the drafts cannot be deployed", problems)
    lab = try_draft(db, user, key, settings, budget, root)
    confirmed = _confirmation(lab, confirm, reason)
    return dmn_drafts.deploy_tables(db, user, key, expected_hash=lab.draft_hash, confirmed=confirmed), lab
