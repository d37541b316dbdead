"""Leave records and their effect on running pay progression cases (D19-9d, D19-10).

* Leave without pay that does not count as service postpones the annual assessment date by its days
  (D19-9d), in running cases too: every date that hangs on it moves, and with it the waiting timers and
  the due dates of open tasks (`Runtime.update_case_data`), with the reason in the case's history.
* Ordinary leave is part of the 12-month cycle (D19-10): nothing changes.
* Extended leave is recorded in the case and the supervisor is told that a new timeframe may be agreed
  (D19-10); the agreement itself is a step of the diagram.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core.clock import CLOCK
from engine.core.errors import Conflict, Invalid, Problem
from engine.people.models import Leave, User
from engine.people.users import get_person
from engine.policies.pay_progression import timing as policy
from engine.workflow.models import ProcessInstance
from engine.workflow.runtime import Runtime

LEAVE_KINDS = ("lwop", "ordinary", "extended")
#: Kinds of leave that postpone the assessment date when they do not count as service (D19-9d, D19-10).
POSTPONING = ("lwop", "extended")
#: Dates of a pay progression case that move with the annual assessment date (D19-9d).
MOVING_DATES = ("assessment_date", "original_assessment_date", "submission_closes", "revised_assessment_date")


def _parse(payload: dict[str, Any]) -> tuple[str, date, date, bool]:
    problems: list[Problem] = []
    kind = payload.get("kind")
    if kind not in LEAVE_KINDS:
        problems.append(Problem(f"Must be one of: {', '.join(LEAVE_KINDS)}.", field="kind"))
    dates: dict[str, date] = {}
    for name in ("start", "end"):
        try:
            dates[name] = policy.parse_date(payload.get(name))  # type: ignore[arg-type]  # checked by parse_date
        except policy.DateOutOfRange as exc:
            problems.append(Problem(f"The date {exc}.", field=name))
        except (ValueError, TypeError):
            problems.append(Problem("Must be a date (YYYY-MM-DD).", field=name))
    counts = payload.get("counts_as_service")
    if not isinstance(counts, bool):
        problems.append(Problem("Must be true or false.", field="counts_as_service"))
    if not problems and dates["end"] < dates["start"]:
        problems.append(Problem("the leave ends before it starts", field="end"))
    if problems:
        raise Invalid("the leave record has errors", problems)
    return str(kind), dates["start"], dates["end"], bool(counts)


def postponed_dates(data: dict[str, Any], start: date, end: date) -> tuple[int, dict[str, Any]]:
    """D19-9d: the days LWOP postpones this case's assessment date by, and the changed dates."""
    current = data.get("assessment_date")
    cycle_start = data.get("agreement_start")
    if not current or not cycle_start:
        return 0, {}
    days = policy.lwop_postponement(policy.parse_date(cycle_start), policy.parse_date(current), (start, end))
    if days == 0:
        return 0, {}
    changes: dict[str, Any] = {}
    for key in MOVING_DATES:
        if data.get(key):
            changes[key] = policy.postpone_for_lwop(policy.parse_date(data[key]), days).isoformat()
    months = int((data.get("periods") or {}).get("invite_months", 2))
    changes["invite_due"] = policy.invite_due(policy.parse_date(changes["assessment_date"]), months).isoformat()
    return days, changes


def record_leave(runtime: Runtime, user: User, username: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Record leave and apply its effect on the person's running pay progression cases.

    One transaction: the leave and every case it moves commit together or not at all, and each case's dates are
    moved from its data as it is under its lock (two periods of leave recorded at once both postpone it)."""
    kind, start, end, counts = _parse(payload)
    retimed: list[int] = []
    told: list[int] = []
    with runtime.db.unit_of_work() as uow:
        session = uow.session
        person = get_person(session, username)
        session.add(Leave(person_id=person.id, kind=kind, start=start, end=end, counts_as_service=counts,
                          recorded_at=CLOCK.now(), recorded_by=user.username))
        moves_dates = kind == "extended" or (kind == "lwop" and not counts)
        cases = list(session.scalars(select(ProcessInstance.id).where(
            ProcessInstance.subject_id == person.id, ProcessInstance.status == "running",
            ProcessInstance.process_key == "pay_progression").order_by(ProcessInstance.id))) if moves_dates else []
        for instance_id in cases:  # locked in id order, as the timers lock theirs
            try:
                row = runtime.lock_running_case(session, instance_id)
            except Conflict:
                continue  # it ended since the list was read
            if kind == "extended":
                _tell_supervisor(runtime, session, user, row, start, end)
                told.append(instance_id)
            # D19-9d: leave that does not count as service postpones the assessment date; extended leave that is
            # not service (issue 15) postpones exactly as leave without pay does.
            if not counts and kind in POSTPONING and _postpone(runtime, session, user, row, start, end, kind):
                retimed.append(instance_id)
        uow.commit()
    return {"username": username, "kind": kind, "start": start.isoformat(), "end": end.isoformat(),
            "counts_as_service": counts, "retimed_cases": retimed, "new_timeframe_possible": told}


def _postpone(runtime: Runtime, session: Session, user: User, row: ProcessInstance, start: date,
              end: date, kind: str = "lwop") -> bool:
    """D19-9d: move the case's dates for leave without pay that does not count as service; False if it falls
    outside the case's cycle."""
    data = row.data or {}
    days, changes = postponed_dates(data, start, end)
    if not changes:
        return False
    runtime.change_case_data(
        session, user.username, row, changes,
        f"Determination 19, cl. 9: {days} days of {_WORDS.get(kind, kind)} ({start} to {end}) that do not count "
        f"as service postpone the annual assessment date from {data['assessment_date']} to "
        f"{changes['assessment_date']}")
    return True


_WORDS = {"lwop": "leave without pay", "extended": "extended leave"}


def _tell_supervisor(runtime: Runtime, session: Session, user: User, row: ProcessInstance, start: date,
                     end: date) -> None:
    """D19-10: extended leave is recorded in the case and the supervisor is told a new timeframe may be agreed."""
    data = row.data or {}
    leave = [*(data.get("extended_leave") or []), {"start": start.isoformat(), "end": end.isoformat()}]
    notice = {"to": "Supervisor", "clause": "D19-10",
              "subject": f"Extended leave: a new timeframe may be agreed ({(data.get('facts') or {}).get('name')})",
              "body": f"Extended leave from {start} to {end} was recorded. Where it leaves too little duty to judge "
                      "the targets and criteria by the assessment date, you may agree a new timeframe for the "
                      "submission; the progression then applies from the revised assessment date."}
    runtime.change_case_data(session, user.username, row, {
        "extended_leave": leave, "notices": [*(data.get("notices") or []), notice]},
        f"Determination 19, cl. 10: extended leave from {start} to {end} recorded; ordinary leave stays inside "
        "the cycle, extended leave may lead the supervisor to agree a new timeframe")
