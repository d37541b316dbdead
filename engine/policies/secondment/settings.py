"""The placement settings an administrator keeps (the defaults a draft agreement starts from, the report
cycle), with the clause each comes from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from engine.core.clock import CLOCK
from engine.core.db import Database
from engine.core.errors import Forbidden, Invalid, Problem
from engine.core.models import AuditEvent, Setting
from engine.people.models import User


@dataclass(frozen=True)
class PlacementSetting:
    """A period the policy leaves open, kept as an administrator setting with the documented default."""

    key: str
    label: str
    default: int
    minimum: int
    maximum: int


#: The policy is silent on these; each placement's agreement (Schedule 2) starts from these values and the parties
#: may agree others. Changing a setting affects placements proposed afterwards, never a running one.
PLACEMENT_SETTINGS: tuple[PlacementSetting, ...] = (
    PlacementSetting("secondment.induction_days", "Induction within (days of the start)", 5, 1, 60),
    PlacementSetting("secondment.report_days", "Reports and briefings due (days after each reporting date)",
                     10, 1, 60),
    PlacementSetting("secondment.reminder_days", "Reminder before the end date (days)", 42, 7, 180),
    PlacementSetting("secondment.post_report_days", "Post-placement report due (days after the end)", 28, 7, 120),
    PlacementSetting("secondment.notice_days", "Early termination notice (days)", 14, 0, 180),
    PlacementSetting("register.suppression_threshold", "Smallest count a report may show", 5, 5, 50),
)


def placement_settings(session: Session) -> dict[str, int]:
    """Every placement setting's current value (its default when never changed)."""
    values: dict[str, int] = {}
    for spec in PLACEMENT_SETTINGS:
        row = session.get(Setting, spec.key)
        try:
            values[spec.key] = int(row.value) if row is not None else spec.default
        except ValueError:
            values[spec.key] = spec.default
    return values


def save_placement_settings(db: Database, user: User, form: Mapping[str, Any]) -> None:
    """Change the placement settings (administrators and OCPE); every field is checked before anything changes."""
    if not user.has_role("admin", "ocpe"):
        raise Forbidden("only administrators and OCPE change the placement settings")
    problems: list[Problem] = []
    values: dict[str, int] = {}
    for spec in PLACEMENT_SETTINGS:
        text = str(form.get(spec.key, "")).strip()
        if not text.isdigit() or not spec.minimum <= int(text) <= spec.maximum:
            problems.append(Problem(f"Must be a whole number from {spec.minimum} to {spec.maximum}.", field=spec.key))
        else:
            values[spec.key] = int(text)
    if problems:
        raise Invalid("the settings have errors", problems)
    with db.unit_of_work() as uow:
        s = uow.session
        before = placement_settings(s)
        for key, value in values.items():
            row = s.get(Setting, key)
            if row is None:
                s.add(Setting(key=key, value=str(value)))
            else:
                row.value = str(value)
        changed = {k: {"from": before[k], "to": v} for k, v in values.items() if before[k] != v}
        if changed:
            s.add(AuditEvent(instance_id=None, at=CLOCK.now(), actor=user.username, kind="settings_changed",
                             detail={"settings": changed}))
        uow.commit()
