"""What people do to placements outside a task: apply (MP-E), publish an opportunity (MP-H), find a case's
open step."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from engine.core.db import Database
from engine.people.models import User
from engine.policies.secondment.process import PROCESS_KEY
from engine.policies.secondment.self_identification import (
    parse_self_identification,
    record_self_identification,
)
from engine.policies.secondment.start_checks import prepare_secondment
from engine.workflow.models import HumanTask
from engine.workflow.runtime import Runtime


def apply_for_placement(runtime: Runtime, user: User, home_contact: str | None = None,
                        self_identification: Mapping[str, Any] | None = None) -> int:
    """An employee applies for a placement (MP-E); returns the new case's id.

    The optional self-identification goes to its own table, never into the case (see record_self_identification).
    """
    with runtime.db.read() as s:
        data = prepare_secondment(s, {"route": "application", "employee": user.username,
                                      "home_contact": home_contact or None}, runtime.settings)
    answers = parse_self_identification(self_identification or {})
    instance_id = runtime.start(user, PROCESS_KEY, data)
    if any(answers.values()):
        record_self_identification(runtime.db, user, instance_id, answers)
    return instance_id


def publish_opportunity(runtime: Runtime, user: User) -> int:
    """The home organisation starts publishing a development opportunity (MP-H); returns the case id.

    The person who starts it is the home organisation's contact for the placement."""
    with runtime.db.read() as s:
        data = prepare_secondment(s, {"route": "opportunity", "home_contact": user.username}, runtime.settings)
    return runtime.start(user, PROCESS_KEY, data)


def first_open_task(db: Database, instance_id: int, name: str) -> int | None:
    """The id of the case's open task with this BPMN id, if any (to send a user straight to it)."""
    with db.read() as s:
        return s.scalars(select(HumanTask.id).where(HumanTask.instance_id == instance_id, HumanTask.name == name,
                                                    HumanTask.state == "open").order_by(HumanTask.id)).first()
