"""What a placement needs before it starts, and who may be its contacts (MP-E, MP-H, MP-T): the start data
checked and completed from the people records; the home and host contacts checked wherever they are named."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core.config import Settings
from engine.core.errors import Invalid, Problem
from engine.people.models import Person, User
from engine.policies.secondment.hooks import HOOKS
from engine.policies.secondment.process import PROCESS_KEY, ROUTES
from engine.policies.secondment.settings import PLACEMENT_SETTINGS, placement_settings
from engine.workflow.assignment import person_by_username
from engine.workflow.models import HumanTask, ProcessInstance

# ---------------------------------------------------------------------------------------------- starting a placement


def prepare_secondment(session: Session, data: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Check a placement's start data and complete it from the people records (MP-E, MP-H).

    Only `route`, `employee` and `home_contact` are kept: nothing else (a lane appointment in `assign`, say) can
    be slipped into a case at its start. An application's home contact defaults to the applicant's supervisor.
    `defaults` carries the placement settings the draft agreement starts from.
    """
    problems: list[Problem] = []
    employee_name = data.get("employee") or None
    route = data.get("route") or ("application" if employee_name else "opportunity")
    if route not in ROUTES:
        problems.append(Problem("must be 'application' or 'opportunity'", field="route"))
    employee = person_by_username(session, employee_name)
    if route == "application" and employee is None:
        problems.append(Problem("no person with this username" if employee_name else "This field is required.",
                                field="employee"))
    if route == "opportunity" and employee_name:
        problems.append(Problem("an opportunity is published without a secondee; the home organisation selects "
                                "one later", field="employee"))
    home_name = data.get("home_contact") or None
    if home_name is not None and person_by_username(session, home_name) is None:
        problems.append(Problem("no person with this username", field="home_contact"))
    if problems:
        raise Invalid("the placement cannot start", problems)
    if home_name is None and employee is not None and employee.supervisor is not None:
        home_name = employee.supervisor.username
    if home_name is not None and home_name == employee_name:
        raise Invalid("the placement cannot start", [Problem(
            "the home organisation's contact cannot be the applicant", field="home_contact")])
    if home_name is not None and employee is not None and (
            problem := home_contact_problem(session, employee, person_by_username(session, home_name))):
        raise Invalid("the placement cannot start", [Problem(problem, field="home_contact")])
    values = placement_settings(session)
    defaults = {spec.key.split(".", 1)[1]: values[spec.key] for spec in PLACEMENT_SETTINGS
                if spec.key.startswith("secondment.")}
    return {"route": route, "employee": employee_name if route == "application" else None, "home_contact": home_name,
            "defaults": defaults}


def home_contact_problem(session: Session, employee: Person, contact: Person | None) -> str | None:
    """Why `contact` may not be the home organisation's contact for `employee`'s placement; None when they may.

    The home organisation's duties (MP-H) fall to the employee's line: her supervisor or anyone above in the
    line, her manager, her organisation's CEO or a CEO delegate, or an HR officer of her organisation."""
    if contact is None:
        return "no person with this username"
    if contact.id == employee.id:
        return "the home organisation's contact cannot be the secondee"
    if employee.organisation_id is not None and contact.organisation_id != employee.organisation_id:
        return (f"{contact.name} is not of {employee.name}'s organisation: the home contact is her supervisor, "
                "manager, CEO or CEO delegate, or HR of her organisation (Mobility policy, home organisation)")
    if contact.id == employee.manager_id or contact.ceo_delegate or contact.id in _line_above(employee):
        return None
    if employee.organisation is not None and employee.organisation.ceo_id == contact.id:
        return None
    login = session.scalars(select(User).where(User.person_id == contact.id, User.active.is_(True))).first()
    if login is not None and login.has_role("hr"):
        return None
    return (f"{contact.name} has no standing for {employee.name}: the home contact is her supervisor, manager, "
            "CEO or CEO delegate, or HR of her organisation (Mobility policy, home organisation)")


def _line_above(person: Person, levels: int = 10) -> set[int]:
    """The ids of the person's supervisor, the supervisor's supervisor, and so on up the line."""
    above: set[int] = set()
    current = person.supervisor
    while current is not None and current.id not in above and len(above) < levels:
        above.add(current.id)
        current = current.supervisor
    return above


def host_contact_problem(session: Session, employee: Person | None, contact_name: Any) -> str | None:
    """Why a person may not be the host organisation's contact; None when they may.

    The host's steps are the contact's, so she needs an active login; and she works for the host, an
    organisation on record other than the secondee's own."""
    contact = person_by_username(session, contact_name)
    if contact is None:
        return "no person with this username"
    if employee is not None and contact.id == employee.id:
        return "the secondee cannot also be the host contact"
    if session.scalars(select(User.id).where(User.person_id == contact.id, User.active.is_(True))).first() is None:
        return f"{contact.name} has no login: the host's steps are the host contact's"
    if contact.organisation_id is None:
        return f"{contact.name} has no organisation on record: the host contact works for the host organisation"
    if employee is not None and contact.organisation_id == employee.organisation_id:
        return (f"{contact.name} is of {employee.name}'s own organisation: the host contact works for the host "
                "organisation")
    return None


@HOOKS.on_complete(PROCESS_KEY)
def check_contacts(session: Session, row: ProcessInstance, task: HumanTask, data: dict[str, Any],
                   actor: str) -> dict[str, Any]:
    """The contacts a forecast or an agreement names have the standing the policy gives them (MP-H, MP-T)."""
    named: list[tuple[str, str, Any]] = []
    forecast, agreement = data.get("forecast"), data.get("agreement")
    if isinstance(forecast, dict) and "host_contact" in forecast:
        named.append(("host", "forecast.host_contact", forecast["host_contact"]))
    schedule = agreement.get("schedule1") if isinstance(agreement, dict) else None
    if isinstance(schedule, dict):
        named += [(side, f"agreement.schedule1.{side}_contact", schedule.get(f"{side}_contact"))
                  for side in ("home", "host") if f"{side}_contact" in schedule]
    if not named:
        return data
    employee = person_by_username(session, (row.data or {}).get("employee"))
    problems = []
    for side, where, name in named:
        if side == "host":
            problem = host_contact_problem(session, employee, name)
        else:
            contact = person_by_username(session, name)
            problem = (None if employee is None and contact is not None else
                       "no person with this username" if contact is None else
                       home_contact_problem(session, employee, contact) if employee is not None else None)
        if problem is not None:
            problems.append(Problem(problem, field=where))
    if problems:
        raise Invalid("the contacts named have no standing for this placement", problems)
    return data


# The placement's start data is checked and completed by its preparer, as the determination's cases are.
HOOKS.prepare(PROCESS_KEY)(prepare_secondment)
