"""The pay progression demo: two cases whose supervisor has an invitation to send. Idempotent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from sqlalchemy import select

from engine.core.clock import CLOCK
from engine.core.dates import add_months
from engine.workflow.models import ProcessInstance
from engine.workflow.runtime import Runtime

PROCESS = "pay_progression"


def load_pay_progression_demo(runtime: Runtime) -> Iterator[str]:
    """Start a cycle for two demo employees, assessed 75 days from today, unless a cycle already exists."""
    with runtime.db.read() as s:
        if s.scalars(select(ProcessInstance.id).where(ProcessInstance.process_key == PROCESS).limit(1)).first():
            return
    assessment = CLOCK.now().date() + timedelta(days=75)
    for employee in ("employee", "engineer"):
        runtime.start(None, PROCESS, {
            "employee": employee, "agreement_start": add_months(assessment, -12).isoformat(),
            "assessment_date": assessment.isoformat()}, actor="hr")
    yield "2 pay progression cases started (the supervisor has two invitations to send)"
