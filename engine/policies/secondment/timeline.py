"""A placement's dates on its case's timeline (engine.workflow.timeline): when applications close (an opportunity),
when it starts, each report cycle, the agreed end (before and after an extension), when it actually ended, and the
re-entry date (MP-L, MP-E, MP-H).

Read only, from the case data and the agreement versions the parties accepted (kept in step with the case by the
register's after_save hook); the generic timeline adds the tasks (the reports filed, those due) and timers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from itertools import pairwise
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core.dates import add_months
from engine.policies.secondment.hooks import HOOKS
from engine.policies.secondment.models import PlacementAgreementVersion
from engine.policies.secondment.process import PROCESS_KEY
from engine.workflow.models import ProcessInstance
from engine.workflow.timeline import Mark, as_date

#: More report cycles than any placement has (five years of monthly reports): a bound, not a rule.
MAX_CYCLES = 60


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@HOOKS.timeline(PROCESS_KEY)
def placement_marks(session: Session, row: ProcessInstance, timezone: str) -> Iterator[Mark]:
    """The dates of a placement."""
    data: dict[str, Any] = row.data or {}
    closing = as_date(_dict(data.get("opportunity")).get("closing_date"))
    if closing is not None:
        yield Mark("Applications close", closing, "milestone", clause="MP-L")
    # The placement's dates as its data object keeps them (the snapshot's own `end_date` can be another branch's).
    dates = _dict(_dict(data.get("data_objects")).get("placement_dates"))
    start = as_date(dates.get("start_date") or data.get("start_date"))
    end = as_date(dates.get("end_date") or data.get("end_date"))
    if start is None:
        return
    yield Mark("Placement starts", start, "milestone", clause="MP-L")
    actual = as_date(dates.get("actual_end_date"))
    yield from report_cycles(start, actual or end, data.get("reporting_months"))
    yield from _end_marks(_agreed_ends(session, row.id), end, actual, bool(dates.get("ended_early")))
    reentry = _dict(data.get("reentry")) or _dict(data.get("reentry_proposal"))
    returns = as_date(reentry.get("return_date"))
    if returns is not None:
        agreed = bool(data.get("reentry"))
        yield Mark("Re-entry: back at home" if agreed else "Re-entry proposed", returns, "milestone", clause="MP-H")


def report_cycles(start: date, last_day: date | None, months: Any) -> Iterator[Mark]:
    """MP-L: each reporting date of the placement, every `months` months from its start up to its last day."""
    if last_day is None or not isinstance(months, int) or isinstance(months, bool) or months < 1:
        return
    for n in range(1, MAX_CYCLES + 1):
        day = add_months(start, n * months)
        if day > last_day:
            return
        yield Mark(f"Report cycle {n}", day, "milestone", clause="MP-L")


def _agreed_ends(session: Session, instance_id: int) -> list[date]:
    """The end date of each version of the agreement all three parties accepted (the first, then each extension),
    as the register keeps them in step with the case (MP-0)."""
    ends: list[date] = []
    for document in session.scalars(select(PlacementAgreementVersion.document).where(
            PlacementAgreementVersion.instance_id == instance_id, PlacementAgreementVersion.status == "accepted")
            .order_by(PlacementAgreementVersion.version)):
        day = as_date(_dict(_dict(document).get("schedule1")).get("end_date"))
        if day is not None and (not ends or ends[-1] != day):
            ends.append(day)
    return ends


def _end_marks(agreed: list[date], end: date | None, actual: date | None, early: bool) -> Iterator[Mark]:
    """The agreed end (each extension moved it: every earlier agreed end points at the next) and the actual end."""
    if end is None:
        return
    ends = [*agreed, end] if not agreed or agreed[-1] != end else agreed
    for before, after in pairwise(ends):
        yield Mark("Agreed end (before the extension)", before, "moved-from", clause="MP-L", moved_to=after,
                   note="the placement was extended")
    yield Mark("Agreed end", end, "milestone", clause="MP-L", moved=len(ends) > 1,
               note=f"moved from {ends[0].isoformat()}" if len(ends) > 1 else "")
    if actual is not None and (actual != end or early):
        yield Mark("Placement ended early" if early else "Placement ended", actual, "milestone", clause="MP-L")
