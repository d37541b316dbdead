"""OCPE's placement register, the read side (MP-O): queries over the placement records that the projection
keeps, the statistics with small counts suppressed, the CSV exports and the report to stakeholders by period.

Suppression. Every count in a statistic that is under the threshold (5 unless the `register.suppression_threshold`
setting says otherwise) is shown as "<5", zero included. A table always shows its total (the number of placements
is on every report), so a single suppressed cell could be worked out as the total minus the others: then the next
smallest cell is withheld as well ("n.p.", not published). A total under the threshold is itself "<5".
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from engine.core.clock import CLOCK
from engine.core.errors import Invalid, NotFound, Problem
from engine.core.models import AuditEvent
from engine.policies.secondment.models import (
    Placement,
    PlacementAgreementVersion,
    PlacementConcern,
    PlacementReport,
    PlacementSelfIdentification,
)
from engine.policies.secondment.process import PROCESS_KEY, STATUS_LABELS, STATUSES
from engine.policies.secondment.self_identification import NOT_ANSWERED, QUESTIONS
from engine.policies.secondment.settings import placement_settings
from engine.workflow.models import ProcessInstance

DEFAULT_THRESHOLD = 5
THRESHOLD_SETTING = "register.suppression_threshold"
SECONDARY = "n.p."


# ---------------------------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class Period:
    """A reporting period; either end may be open."""

    start: date | None = None
    end: date | None = None

    @property
    def label(self) -> str:
        """How the period reads in a heading."""
        if self.start and self.end:
            return f"{self.start.isoformat()} to {self.end.isoformat()}"
        if self.start:
            return f"from {self.start.isoformat()}"
        if self.end:
            return f"to {self.end.isoformat()}"
        return "all placements"

    def query(self) -> dict[str, str]:
        """The period as URL query arguments."""
        out = {}
        if self.start:
            out["from"] = self.start.isoformat()
        if self.end:
            out["to"] = self.end.isoformat()
        return out


def parse_period(start: str | None, end: str | None) -> Period:
    """A period from `from`/`to` query arguments (YYYY-MM-DD, either may be blank)."""
    problems: list[Problem] = []
    dates: dict[str, date | None] = {}
    for name, text in (("from", start), ("to", end)):
        dates[name] = None
        if text:
            try:
                dates[name] = date.fromisoformat(text.strip())
            except ValueError:
                problems.append(Problem("Must be a date (YYYY-MM-DD).", field=name))
    if not problems and dates["from"] and dates["to"] and dates["to"] < dates["from"]:
        problems.append(Problem("The end of the period must not be before its start.", field="to"))
    if problems:
        raise Invalid("the period is not valid", problems)
    return Period(dates["from"], dates["to"])


def parse_status(status: str | None) -> str | None:
    """A status filter: blank, or one of the register's statuses."""
    if not status:
        return None
    if status not in STATUSES:
        raise Invalid("unknown status", [Problem("Must be one of: " + ", ".join(STATUSES) + ".", field="status")])
    return status


def in_period(period: Period) -> ColumnElement[bool]:
    """Placements whose time overlaps the period: from the start date (or the day proposed) to the actual or
    agreed end (or the start), so a proposal counts in the period it was made."""
    first = func.coalesce(Placement.start_date, Placement.proposed_on)
    last = func.coalesce(Placement.actual_end_date, Placement.end_date, Placement.start_date, Placement.proposed_on)
    clauses: list[ColumnElement[bool]] = []
    if period.end is not None:
        clauses.append(first <= period.end)
    if period.start is not None:
        clauses.append(last >= period.start)
    return and_(*clauses) if clauses else Placement.instance_id.is_not(None)


def placements(session: Session, period: Period, status: str | None = None) -> list[Placement]:
    """The placements of a period (optionally of one status), newest first."""
    query = select(Placement).where(in_period(period)).order_by(Placement.proposed_on.desc(),
                                                                 Placement.instance_id.desc())
    if status:
        query = query.where(Placement.status == status)
    return list(session.scalars(query))


def threshold(session: Session) -> int:
    """The smallest count a report may show (the `register.suppression_threshold` setting, never under 5)."""
    return max(DEFAULT_THRESHOLD, placement_settings(session)[THRESHOLD_SETTING])


# ---------------------------------------------------------------------------------------------- suppression


@dataclass(frozen=True)
class Cell:
    """One count of a statistic, as it may be shown."""

    key: str
    label: str
    count: int
    shown: str  # the number, "<5" or "n.p."
    suppressed: bool

    @property
    def value(self) -> int | None:
        """The count when it may be shown, else None."""
        return None if self.suppressed else self.count


@dataclass(frozen=True)
class Table:
    """A statistic: counts by category with their total, small counts suppressed."""

    key: str
    title: str
    cells: tuple[Cell, ...]
    total: int
    total_shown: str
    description: str = ""

    @property
    def largest(self) -> int:
        """The largest count that is shown (the scale of a chart)."""
        return max((c.count for c in self.cells if not c.suppressed), default=0)

    @property
    def any_suppressed(self) -> bool:
        """True when at least one count is withheld."""
        return any(c.suppressed for c in self.cells) or self.total_shown != str(self.total)


def suppress(key: str, title: str, counts: Sequence[tuple[str, str, int]], limit: int,
             description: str = "") -> Table:
    """Build a table from (key, label, count), withholding counts under `limit` and any count that would let
    a withheld one be worked out from the total."""
    total = sum(c for _, _, c in counts)
    small = f"<{limit}"
    primary = {k for k, _, c in counts if c < limit}
    secondary: set[str] = set()
    if len(primary) == 1 and total >= limit:
        rest = sorted((c, i, k) for i, (k, _, c) in enumerate(counts) if k not in primary)
        if rest:
            secondary.add(rest[0][2])
    cells = tuple(
        Cell(k, label, c, small if k in primary else SECONDARY if k in secondary else str(c),
             k in primary or k in secondary)
        for k, label, c in counts)
    return Table(key, title, cells, total, str(total) if total >= limit else small, description)


# ---------------------------------------------------------------------------------------------- statistics


def diversity(session: Session, period: Period, limit: int) -> list[Table]:
    """Counts of the placements of a period by each self-identification question (MP-O)."""
    ids = select(Placement.instance_id).where(in_period(period))
    total = int(session.scalar(select(func.count()).select_from(ids.subquery())) or 0)
    tables = []
    for q in QUESTIONS:
        column = getattr(PlacementSelfIdentification, q.key)
        rows: dict[str | None, int] = {value: int(n) for value, n in session.execute(
            select(column, func.count()).where(PlacementSelfIdentification.instance_id.in_(ids))
            .group_by(column)).all()}
        counts = [(value, label, rows.get(value, 0)) for value, label in q.options]
        answered = sum(c for _, _, c in counts)
        counts.append((NOT_ANSWERED[0], NOT_ANSWERED[1], total - answered))
        tables.append(suppress(q.key, q.label, counts, limit,
                               "Voluntary self-identification of the secondees; each placement counts once."))
    return tables


def status_table(session: Session, period: Period, limit: int) -> Table:
    """Placements of the period by where they stand."""
    rows: dict[str, int] = {status: int(n) for status, n in session.execute(
        select(Placement.status, func.count()).where(in_period(period)).group_by(Placement.status)).all()}
    counts = [(s, STATUS_LABELS[s], rows.get(s, 0)) for s in STATUSES]
    return suppress("status", "Placements by status", counts, limit)


def reporting_table(session: Session, period: Period, limit: int) -> Table:
    """Reports that have fallen due (progress reports, briefings, post-placement reports): on time or not."""
    row = session.execute(select(func.coalesce(func.sum(Placement.reports_on_time), 0),
                                 func.coalesce(func.sum(Placement.reports_late), 0),
                                 func.coalesce(func.sum(Placement.reports_missed), 0))
                          .where(in_period(period))).one()
    counts = [("on_time", "Filed on time", int(row[0])), ("late", "Filed late", int(row[1])),
              ("missed", "Not filed", int(row[2]))]
    return suppress("reports", "Reports that have fallen due", counts, limit,
                    "Progress reports, briefings and post-placement reports whose due date has passed.")


def objectives_table(session: Session, period: Period, limit: int) -> Table:
    """Objectives of the placements whose results were recorded: met, partly met, not met."""
    row = session.execute(select(func.coalesce(func.sum(Placement.objectives_met), 0),
                                 func.coalesce(func.sum(Placement.objectives_partly_met), 0),
                                 func.coalesce(func.sum(Placement.objectives_total), 0))
                          .where(in_period(period), Placement.objectives_met.is_not(None))).one()
    met, partly, total = (int(v or 0) for v in row)
    counts = [("met", "Met", met), ("partly_met", "Partly met", partly), ("not_met", "Not met", total - met - partly)]
    return suppress("objectives", "Performance objectives of completed placements", counts, limit)


def summary(session: Session, period: Period, limit: int) -> list[Table]:
    """The operational statistics of a period: status, reporting, objectives."""
    return [status_table(session, period, limit), reporting_table(session, period, limit),
            objectives_table(session, period, limit)]


# ---------------------------------------------------------------------------------------------- one placement


@dataclass
class PlacementDetail:
    """A placement with its agreement versions, timed steps and concerns."""

    placement: Placement
    versions: list[PlacementAgreementVersion]
    steps: list[PlacementReport]
    concerns: list[PlacementConcern]


def placement_detail(session: Session, instance_id: int) -> PlacementDetail:
    """Everything the register holds about one placement (the caller has checked access)."""
    placement = session.get(Placement, instance_id)
    if placement is None:
        raise NotFound("no such placement")
    versions = list(session.scalars(select(PlacementAgreementVersion).where(
        PlacementAgreementVersion.instance_id == instance_id).order_by(PlacementAgreementVersion.version)))
    steps = list(session.scalars(select(PlacementReport).where(PlacementReport.instance_id == instance_id)
                                 .order_by(PlacementReport.opened_at, PlacementReport.id)))
    concerns = list(session.scalars(select(PlacementConcern).where(PlacementConcern.instance_id == instance_id)
                                    .order_by(PlacementConcern.seq)))
    return PlacementDetail(placement, versions, steps, concerns)


# ---------------------------------------------------------------------------------------------- freshness


def _fingerprints(session: Session) -> dict[int, tuple[int, int]]:
    rows = session.execute(
        select(AuditEvent.instance_id, func.max(AuditEvent.id), func.count(AuditEvent.id))
        .join(ProcessInstance, ProcessInstance.id == AuditEvent.instance_id)
        .where(ProcessInstance.process_key == PROCESS_KEY).group_by(AuditEvent.instance_id)).all()
    return {int(i): (int(mx), int(n)) for i, mx, n in rows if i is not None}


def fingerprint(session: Session, instance_id: int) -> tuple[int, int]:
    """A case's audit trail as the register checks it: its newest event id and its number of events."""
    mx, n = session.execute(select(func.max(AuditEvent.id), func.count(AuditEvent.id))
                            .where(AuditEvent.instance_id == instance_id)).one()
    return int(mx or 0), int(n or 0)


def stale_placements(session: Session) -> list[int]:
    """The secondment cases whose register rows are missing or older than their audit trail."""
    have = {int(i): (int(e), int(n)) for i, e, n in session.execute(
        select(Placement.instance_id, Placement.synced_event_id, Placement.synced_event_count)).all()}
    return sorted(i for i, fp in _fingerprints(session).items() if have.get(i) != fp)


def overdue_placements(session: Session) -> list[int]:
    """The placements with a step still pending whose due time has passed: it is overdue now, with no event to
    say so (the register's outcomes follow the clock when read)."""
    return sorted(int(i) for i in session.scalars(select(PlacementReport.instance_id).where(
        PlacementReport.outcome == "pending", PlacementReport.due_at < CLOCK.now()).distinct()))


def open_opportunities(session: Session, today: date) -> list[Placement]:
    """Published development opportunities still open for expressions of interest (MP-H)."""
    return list(session.scalars(select(Placement).where(
        Placement.status == "published", or_(Placement.closing_date.is_(None), Placement.closing_date >= today))
        .order_by(Placement.closing_date, Placement.instance_id)))


def placements_of(session: Session, username: str) -> list[Placement]:
    """The placements a person takes part in, as secondee, home contact or host contact."""
    return list(session.scalars(select(Placement).where(or_(
        Placement.secondee == username, Placement.home_contact == username, Placement.host_contact == username))
        .order_by(Placement.proposed_on.desc(), Placement.instance_id.desc())))


# ---------------------------------------------------------------------------------------------- CSV

PLACEMENT_COLUMNS = (
    ("case", "Case"), ("secondee", "Secondee"), ("home_organisation", "Home organisation"),
    ("host_organisation", "Host organisation"), ("home_contact", "Home contact"), ("host_contact", "Host contact"),
    ("route", "Route"), ("status", "Status"), ("proposed_on", "Proposed on"), ("start_date", "Start"),
    ("end_date", "End (agreed)"), ("actual_end_date", "End (actual)"), ("ended_early", "Ended early"),
    ("extensions", "Extensions"), ("accepted_version", "Agreement version accepted"),
    ("objectives_met", "Objectives met"), ("objectives_total", "Objectives"), ("reports_due", "Reports due"),
    ("reports_on_time", "Reports on time"), ("reports_late", "Reports late"), ("reports_missed", "Reports not filed"),
    ("concerns_raised", "Concerns raised"), ("evaluation_value", "OCPE evaluation"),
)


def _csv_cell(value: Any) -> str:
    text = "" if value is None else "yes" if value is True else "no" if value is False else str(value)
    # A spreadsheet would run a cell that starts with a formula character: make it plain text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def placement_row(p: Placement) -> dict[str, Any]:
    """A placement as the register's table and CSV show it."""
    return {
        "case": p.instance_id, "secondee": p.secondee_name or p.secondee or "", "home_organisation":
        p.home_organisation, "host_organisation": p.host_organisation, "home_contact": p.home_contact,
        "host_contact": p.host_contact, "route": p.route, "status": STATUS_LABELS.get(p.status, p.status),
        "proposed_on": p.proposed_on, "start_date": p.start_date, "end_date": p.end_date,
        "actual_end_date": p.actual_end_date, "ended_early": p.ended_early, "extensions": p.extensions,
        "accepted_version": p.accepted_version or None, "objectives_met": p.objectives_met,
        "objectives_total": p.objectives_total, "reports_due": p.reports_due, "reports_on_time": p.reports_on_time,
        "reports_late": p.reports_late, "reports_missed": p.reports_missed, "concerns_raised": p.concerns_raised,
        "evaluation_value": p.evaluation_value,
    }


def _write(rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([_csv_cell(v) for v in row])
    return out.getvalue()


def placements_csv(rows: Iterable[Placement]) -> str:
    """The placements as CSV (one line each, no self-identification)."""
    lines: list[Sequence[Any]] = [[label for _, label in PLACEMENT_COLUMNS]]
    for p in rows:
        data = placement_row(p)
        lines.append([data[key] for key, _ in PLACEMENT_COLUMNS])
    return _write(lines)


def statistics_csv(period: Period, tables: Iterable[Table]) -> str:
    """The statistics of a period as CSV: suppressed counts stay suppressed."""
    lines: list[Sequence[Any]] = [["Period", "Statistic", "Category", "Count"]]
    for t in tables:
        for c in t.cells:
            lines.append([period.label, t.title, c.label, c.shown])
        lines.append([period.label, t.title, "Total", t.total_shown])
    return _write(lines)
