"""What the people of a placement are told: notices when a step opens for someone else's attention, and the
context a task page shows (the agreement as it stands, the concern being discussed, the end being planned)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core.clock import CLOCK
from engine.core.config import Settings
from engine.core.models import AuditEvent
from engine.policies.secondment.hooks import HOOKS
from engine.policies.secondment.process import CONCERN_TASKS, PROCESS_KEY
from engine.policies.secondment.projection import CaseWalk
from engine.workflow.assignment import person_by_username
from engine.workflow.casedata import add_note
from engine.workflow.models import HumanTask, ProcessInstance
from engine.workflow.notify import group_members, notify


@HOOKS.on_task_opened(PROCESS_KEY)
def tell_the_people_concerned(session: Session, row: ProcessInstance, task: HumanTask, settings: Settings) -> None:
    """OCPE is told of every new placement (MP-H "inform OCPE of placements"); the home organisation is told when
    a concern is raised, so that it keeps contact with the host (MP-H); and a task that acts on one branch's
    facts (a concern, a proposed extension) carries them in its instructions."""
    data = row.data or {}
    if task.name == "note_placement":
        notify(session, group_members(session, "ocpe"), f"New placement: {row.title}",
               f"All three parties have accepted the bilateral agreement of case #{row.id}; the placement is in "
               "the register.", row.id)
    elif task.name == "discuss_concern":
        home = person_by_username(session, data.get("home_contact"))
        if home is not None:
            notify(session, [home], f"Concern raised: {row.title}",
                   f"A concern about the placement in case #{row.id} was raised; the host organisation is "
                   "discussing it with the parties.", row.id)
    # (A step born overdue says why in every process: the runtime adds it, engine.workflow.notify.opened_late.)
    if task.name in CONTEXT_TASKS:
        session.flush()  # the runtime saves without autoflush; the history read below includes this change
        note = task_context(session, row, task.name, settings.timezone)
        if note:
            task.instructions = add_note(task.instructions, note)


#: Tasks whose instructions get the facts of their branch (see task_context).
CONTEXT_TASKS = frozenset({"discuss_concern", "decide_concern", "accept_ext_secondee", "accept_ext_home",
                           "accept_ext_host", "plan_end", "propose_reentry", "confirm_reentry"})


def _local_day(at: datetime, timezone: str) -> str:
    return at.astimezone(ZoneInfo(timezone)).date().isoformat()


def task_context(session: Session, row: ProcessInstance, name: str, timezone: str) -> str | None:
    """The facts a task of the placement acts on, from the case's history.

    SpiffWorkflow keeps each parallel branch's data apart, and the case snapshot shows one branch only; these
    facts (which concern, which proposed end date) are taken from the audit trail instead."""
    events = list(session.scalars(select(AuditEvent).where(AuditEvent.instance_id == row.id)
                                  .order_by(AuditEvent.id)))
    completed = [e for e in events if e.kind == "task_completed"]

    def last(names: Iterable[str]) -> AuditEvent | None:
        wanted = set(names)
        return next((e for e in reversed(completed) if (e.detail or {}).get("task") in wanted), None)

    def data_of(event: AuditEvent | None, key: str) -> dict[str, Any]:
        value = ((event.detail or {}).get("data") or {}).get(key) if event is not None else None
        return value if isinstance(value, dict) else {}

    if name == "discuss_concern":
        raised = last(CONCERN_TASKS)
        if raised is None:
            return None
        concern = data_of(raised, "concern")
        party = CONCERN_TASKS[str((raised.detail or {}).get("task"))]
        urgent = " It is marked urgent." if concern.get("urgent") else ""
        return (f"The concern, raised by the {party} ({raised.actor}) on {_local_day(raised.at, timezone)} about "
                f"{concern.get('category', 'other')}: {concern.get('details', '')}{urgent}")
    if name == "decide_concern":
        discussion = data_of(last({"discuss_concern"}), "concern_discussion")
        return f"What the host recorded of its discussion: {discussion.get('summary', '')}" if discussion else None
    walk = CaseWalk()
    for event in events:
        walk.feed(event)
    end = (walk.document().get("schedule1") or {}).get("end_date")
    if name in ("accept_ext_secondee", "accept_ext_home", "accept_ext_host"):
        plan = data_of(last({"plan_end"}), "end_plan")
        return (f"Version {len(walk.versions)} proposes to move the end date from {end} to "
                f"{plan.get('new_end_date')}. Reason: {plan.get('reason', '')}") if plan else None
    if name == "plan_end":
        plan_event = last({"plan_end"})
        opened = [e.id for e in events if e.kind == "task_opened" and (e.detail or {}).get("task") == "accept_ext_home"]
        unissued = plan_event is not None and (not opened or plan_event.id > opened[-1])
        return _plan_end_context(walk, data_of(plan_event, "end_plan") if unissued else {}, end)
    if name in ("propose_reentry", "confirm_reentry"):
        return _reentry_context(name, walk.early_last_day or end, events, timezone)
    return None


def _reentry_context(name: str, last_day: str | None, events: list[AuditEvent], timezone: str) -> str | None:
    """The last day the re-entry is arranged for; whether it moved since the arrangements were first asked for
    (an early end decided after the end was settled); and why the step is due today when its usual date passed."""
    if not last_day:
        return None
    text = f"The placement's last day is {last_day}."
    opened = sum(1 for e in events if e.kind == "task_opened" and (e.detail or {}).get("task") == name)
    if opened > 1:
        text += (" The last day changed after the re-entry arrangements were first asked for: they are asked for "
                 "again, for the new last day.")
    usual = last_day if name == "confirm_reentry" else _days_before(last_day, 7)
    today = _local_day(CLOCK.now(), timezone)
    if usual and usual < today:
        what = "by the last day" if name == "confirm_reentry" else "7 days before the last day"
        text += f" It is usually due {what} ({usual}); that date has passed, so it is due by the end of today, {today}."
    return text


def _days_before(day: str, days: int) -> str | None:
    try:
        return (date.fromisoformat(day[:10]) - timedelta(days=days)).isoformat()
    except ValueError:
        return None


def _plan_end_context(walk: CaseWalk, unissued_plan: dict[str, Any], end: str | None) -> str | None:
    """Why the end-of-placement decision is open: first time, a proposal refused by the check, or an extension
    one of the parties asked to change."""
    if unissued_plan.get("decision") == "extend" and end and str(unissued_plan.get("new_end_date", "")) <= end:
        return f"Please fix: an extension must end after the current end date, {end}."
    latest = walk.versions[-1] if walk.versions else None
    if latest is not None and latest.kind == "extension" and latest.complete and not latest.accepted:
        return ("The extension to " + str((latest.document.get("schedule1") or {}).get("end_date")) +
                " was not accepted. Changes asked for: " + "; ".join(latest.changes))
    return f"The agreed end date is {end}." if end else None
