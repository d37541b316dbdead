"""Leave records and their effect on running cases (D19-9d, D19-10)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select

from engine import policy
from engine.clock import CLOCK
from engine.errors import Invalid, Problem
from engine.models import Leave, ProcessInstance, User
from engine.runtime import Runtime
from engine.users import get_person

LEAVE_KINDS = ("lwop", "ordinary", "extended")


def _parse(payload: dict[str, Any]) -> tuple[str, date, date, bool]:
    problems: list[Problem] = []
    kind = payload.get("kind")
    if kind not in LEAVE_KINDS:
        problems.append(Problem(f"Must be one of: {', '.join(LEAVE_KINDS)}.", field="kind"))
    dates: dict[str, date] = {}
    for name in ("start", "end"):
        try:
            dates[name] = policy.parse_date(payload.get(name))  # type: ignore[arg-type]  # checked by parse_date
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


def record_leave(runtime: Runtime, user: User, username: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Record leave; LWOP that does not count as service postpones running cases' assessment dates."""
    kind, start, end, counts = _parse(payload)
    with runtime.db.unit_of_work() as uow:
        person = get_person(uow.session, username)
        uow.session.add(Leave(person_id=person.id, kind=kind, start=start, end=end, counts_as_service=counts,
                              recorded_at=CLOCK.now(), recorded_by=user.username))
        cases = list(uow.session.scalars(select(ProcessInstance.id).where(
            ProcessInstance.subject_id == person.id, ProcessInstance.status == "running",
            ProcessInstance.process_key == "pay_progression")))
        uow.commit()
    retimed: list[int] = []
    if kind == "lwop" and not counts:
        days = policy.lwop_days(start, end)
        for instance_id in cases:
            with runtime.db.read() as s:
                row = s.get(ProcessInstance, instance_id)
                current = row.data.get("assessment_date") if row else None
            if not current:
                continue
            new_date = policy.postpone_for_lwop(policy.parse_date(current), days)
            changes = {"assessment_date": new_date.isoformat(),
                       "invite_due": policy.invite_due(new_date).isoformat()}
            runtime.update_case_data(
                user.username, instance_id, changes,
                f"Determination 19, cl. 9: {days} days of leave without pay ({start} to {end}) that do not count "
                f"as service postpone the annual assessment date from {current} to {new_date.isoformat()}")
            retimed.append(instance_id)
    return {"username": username, "kind": kind, "start": start.isoformat(), "end": end.isoformat(),
            "counts_as_service": counts, "retimed_cases": retimed}
