"""What each process needs before it starts: the data checked, completed from the people records,
and the policy's refusals (each naming the rule that refused)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from engine import policy
from engine.assignment import person_by_username
from engine.config import Settings
from engine.errors import Invalid, Problem
from engine.scripthelpers import next_pay_point

#: D19-1: the classifications Determination 19 covers.
D19_CLASSIFICATIONS = ("SPAO1", "SPAO2", "SPPO1", "SPPO2")

Preparer = Callable[[Session, dict[str, Any], Settings], dict[str, Any]]


def _date_field(data: dict[str, Any], name: str, problems: list[Problem]) -> None:
    value = data.get(name)
    if value in (None, ""):
        problems.append(Problem("This field is required.", field=name))
        return
    try:
        data[name] = policy.parse_date(value).isoformat()
    except ValueError:
        problems.append(Problem("Must be a date (YYYY-MM-DD).", field=name))


def prepare_pay_progression(session: Session, data: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Check a pay progression start (D19-1) and fill in what the people records know."""
    problems: list[Problem] = []
    employee = person_by_username(session, data.get("employee"))
    if employee is None:
        problems.append(Problem("no person with this username", field="employee"))
    _date_field(data, "assessment_date", problems)
    _date_field(data, "agreement_start", problems)
    if problems:
        raise Invalid("the case cannot start", problems)
    assert employee is not None
    if employee.classification not in D19_CLASSIFICATIONS:
        raise Invalid("not covered by Determination 19", [Problem(
            f"Determination 19, cl. 1: pay progression applies to {', '.join(D19_CLASSIFICATIONS)}; "
            f"{employee.name} is {employee.classification}", field="employee")])
    if next_pay_point(session, employee.classification, employee.pay_point) is None:
        raise Invalid("no next pay point", [Problem(
            f"Determination 19, cl. 1: {employee.name} is on pay point {employee.pay_point}, the top point of "
            f"{employee.classification}; there is no next point to progress to", field="employee")])
    if data["agreement_start"] >= data["assessment_date"]:
        raise Invalid("dates out of order", [Problem(
            "the assessment date must be after the agreement start", field="assessment_date")])
    data["classification"] = employee.classification
    data["pay_point"] = employee.pay_point
    data.setdefault("original_assessment_date", data["assessment_date"])
    return data


PREPARERS: dict[str, Preparer] = {"pay_progression": prepare_pay_progression}


def prepare(session: Session, process_key: str, data: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Run the process's preparer, if it has one; other processes start with their data as given."""
    preparer = PREPARERS.get(process_key)
    return preparer(session, data, settings) if preparer else data
