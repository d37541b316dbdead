"""A third policy, for tests only: "time off in lieu". It proves a policy plugs in without a change to the core:
its own process (processes/toy_leave.bpmn beside this file), its own lane (`Approver`: the person the request
names, checked by the start check), its own start check and its own script helper (`toil_return_date`), all
declared in one ProcessPackage that the registry loads from the `policies` setting
(`NTPSWF_POLICIES=pay_progression,secondment,tests.policies.toy.package`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from engine.core.config import Settings
from engine.core.dates import parse_date
from engine.core.errors import Invalid, Problem
from engine.people.models import Person
from engine.workflow.assignment import person_by_username
from engine.workflow.hooks import HookSet
from engine.workflow.registry import ProcessPackage

PROCESS = "toy_leave"
HOOKS = HookSet()
#: The most days of time off in lieu one request may take.
MOST_DAYS = 5


@HOOKS.prepare(PROCESS)
def check_request(session: Session, data: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The start check: the employee and the approver exist and differ, and the days are 1 to MOST_DAYS."""
    problems = []
    employee = person_by_username(session, data.get("employee"))
    if employee is None:
        problems.append(Problem("no person with this username", field="employee"))
    approver = person_by_username(session, data.get("approver"))
    if approver is None or (employee is not None and approver.id == employee.id):
        problems.append(Problem("name someone other than the employee", field="approver"))
    days = data.get("days")
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MOST_DAYS:
        problems.append(Problem(f"must be a whole number of days from 1 to {MOST_DAYS}", field="days"))
    if problems:
        raise Invalid("the request cannot start", problems)
    return {"employee": data["employee"], "approver": data["approver"], "days": days}


def approver(session: Session, data: Mapping[str, Any], subject: Person | None) -> Person | None:
    """The `Approver` lane: the person the request names."""
    return person_by_username(session, data.get("approver"))


def helpers(session: Session | None, settings: Settings) -> Mapping[str, Callable[..., Any]]:
    """`toil_return_date(first_day, days)`: the day the employee is back (calendar days, for the test)."""

    def toil_return_date(first_day: Any, days: Any) -> str:
        return (parse_date(first_day) + timedelta(days=int(days))).isoformat()

    return {"toil_return_date": toil_return_date}


PACKAGE = ProcessPackage(
    name="toy",
    title="Time off in lieu (test policy)",
    processes=frozenset({PROCESS}),
    hooks=HOOKS,
    helpers=helpers,
    lanes={"Approver": approver},
)
