"""The mobility and secondment policy's services: starting a placement, the secondee's voluntary
self-identification, the placement register's projection, and the demo's host organisations.

Three process hooks (engine.hooks) run in the runtime's transaction: the application's self-identification
answers are taken out of the form data before it reaches the case; the placement's register rows are rebuilt
after every save; OCPE is told of each new placement and the home contact of each concern raised.

The register is a projection. `sync_placements` rebuilds a placement's rows (engine.models.Placement and its
agreement versions, timed steps and concerns) from the case's audit trail (which task was completed by whom,
when, with what form data; which timers fired) and its task rows (when each step opened, was due, was done).
The runtime writes both in the same transaction as every change to the case; the serialized workflow is never
read, so the register does not depend on how SpiffWorkflow scopes data between parallel branches. A placement
is rebuilt whenever its audit trail changed since the last rebuild (fingerprint: newest event id and number of
events); rebuilding is idempotent, so a projection that lags catches up on the next read.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import hooks
from engine.access import may_view_instance
from engine.assignment import person_by_username
from engine.audit import write_pending
from engine.clock import CLOCK
from engine.config import Settings
from engine.db import Database
from engine.errors import Forbidden, Invalid, NotFound, Problem
from engine.models import (
    AuditEvent,
    HumanTask,
    Person,
    Placement,
    PlacementAgreementVersion,
    PlacementConcern,
    PlacementReport,
    PlacementSelfIdentification,
    ProcessInstance,
    Setting,
    User,
)
from engine.notify import group_members, notify
from engine.runtime import Runtime

log = logging.getLogger(__name__)

PROCESS_KEY = "secondment"
ROUTES = ("application", "opportunity")

# ---------------------------------------------------------------------------------------------- the diagram's names

#: Timed steps of a placement (BPMN element -> kind), as the register lists them.
STEP_KINDS: dict[str, str] = {
    "induct": "induction",
    "file_progress_report": "progress_report",
    "brief_home": "host_briefing",
    "brief_secondee": "home_brief",
    "propose_reentry": "reentry_proposal",
    "confirm_reentry": "reentry",
    "post_placement_report": "post_placement_report",
    "assess_placement": "host_assessment",
    "record_results": "objective_results",
    "evaluate_placement": "evaluation",
}
#: The steps that are reports (MP-E progress and post-placement reports, MP-T and MP-H briefings): "reports filed
#: on time" counts these.
REPORT_KINDS = frozenset({"progress_report", "host_briefing", "home_brief", "post_placement_report"})
#: Acceptance tasks -> (party, form key); the same forms serve the agreement and its extensions.
ACCEPTANCES: dict[str, tuple[str, str]] = {
    "accept_secondee": ("secondee", "acceptance_secondee"),
    "accept_home": ("home", "acceptance_home"),
    "accept_host": ("host", "acceptance_host"),
    "accept_ext_secondee": ("secondee", "acceptance_secondee"),
    "accept_ext_home": ("home", "acceptance_home"),
    "accept_ext_host": ("host", "acceptance_host"),
}
#: Opening this task starts an acceptance round: a new version of the agreement (one per round, like the
#: diagram's "Issue a new version" scripts).
ROUND_OPENERS = {"accept_home": "agreement", "accept_ext_home": "extension"}
CONCERN_TASKS = {"raise_concern_employee": "secondee", "raise_concern_home": "home organisation",
                 "raise_concern_host": "host organisation"}
CONCERN_FOLLOW_UPS = frozenset({"discuss_concern", "decide_concern"})

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


STATUSES = ("proposed", "published", "applied", "planning", "negotiating", "agreed", "in_progress",
            "post_placement", "closed", "not_supported", "cancelled")
STATUS_LABELS = {
    "proposed": "Proposed", "published": "Opportunity published", "applied": "Applied", "planning": "Planning",
    "negotiating": "Negotiating the agreement", "agreed": "Agreed, not started", "in_progress": "In progress",
    "post_placement": "Post-placement", "closed": "Closed", "not_supported": "Not supported",
    "cancelled": "Cancelled",
}

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


@hooks.on_complete(PROCESS_KEY)
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


# ---------------------------------------------------------------------------------------------- self-identification


@dataclass(frozen=True)
class Question:
    """One voluntary self-identification question, each with "prefer not to say"."""

    key: str
    label: str
    options: tuple[tuple[str, str], ...]

    def label_of(self, value: str | None) -> str:
        """The answer's label ("Not answered" for none)."""
        return dict(self.options).get(value or "", NOT_ANSWERED[1])


PREFER_NOT_TO_SAY = ("prefer_not_to_say", "Prefer not to say")
NOT_ANSWERED = ("not_answered", "Not answered")
QUESTIONS: tuple[Question, ...] = (
    Question("gender", "Gender", (("woman", "Woman or female"), ("man", "Man or male"),
                                  ("non_binary", "Non-binary"), ("different_term", "I use a different term"),
                                  PREFER_NOT_TO_SAY)),
    Question("age_band", "Age", (("under_25", "Under 25"), ("25_34", "25 to 34"), ("35_44", "35 to 44"),
                                 ("45_54", "45 to 54"), ("55_64", "55 to 64"), ("65_plus", "65 or over"),
                                 PREFER_NOT_TO_SAY)),
    Question("atsi", "Aboriginal and Torres Strait Islander status", (
        ("aboriginal", "Aboriginal"), ("torres_strait_islander", "Torres Strait Islander"),
        ("both", "Both Aboriginal and Torres Strait Islander"), ("neither", "Neither"), PREFER_NOT_TO_SAY)),
    Question("disability", "Disability", (("yes", "Yes"), ("no", "No"), PREFER_NOT_TO_SAY)),
    Question("cald", "Culturally and linguistically diverse background", (("yes", "Yes"), ("no", "No"),
                                                                         PREFER_NOT_TO_SAY)),
)


def parse_self_identification(answers: Mapping[str, Any]) -> dict[str, str | None]:
    """Check answers against the questions: each is one of its options, or blank (not answered)."""
    clean: dict[str, str | None] = {}
    problems: list[Problem] = []
    for q in QUESTIONS:
        value = answers.get(q.key)
        value = value.strip() if isinstance(value, str) else value
        if value in (None, ""):
            clean[q.key] = None
        elif isinstance(value, str) and value in dict(q.options):
            clean[q.key] = value
        else:
            problems.append(Problem("Must be one of: " + ", ".join(label for _, label in q.options) + ".",
                                    field=q.key))
    if problems:
        raise Invalid("the answers have errors", problems)
    return clean


def secondee_of(session: Session, row: ProcessInstance) -> str | None:
    """The username of a placement case's secondee (the applicant, or the selected employee)."""
    placement = session.get(Placement, row.id)
    if placement is not None and placement.secondee:
        return placement.secondee
    employee = (row.data or {}).get("employee")
    if isinstance(employee, str) and employee:
        return employee
    return row.subject.username if row.subject is not None else None


def _own_placement(session: Session, user: User, instance_id: int) -> ProcessInstance:
    row = session.get(ProcessInstance, instance_id)
    if row is None or row.process_key != PROCESS_KEY:
        raise NotFound("no such placement")
    person = user.person
    if person is None or secondee_of(session, row) != person.username:
        if may_view_instance(session, user, row):
            raise Forbidden("only the secondee answers these questions")
        raise NotFound("no such placement")
    return row


def self_identification(session: Session, user: User, instance_id: int) -> dict[str, str | None]:
    """The secondee's own answers for a placement (only they may read them)."""
    _own_placement(session, user, instance_id)
    row = session.scalars(select(PlacementSelfIdentification).where(
        PlacementSelfIdentification.instance_id == instance_id)).first()
    return {q.key: getattr(row, q.key) if row else None for q in QUESTIONS}


def record_self_identification(db: Database, user: User, instance_id: int, answers: Mapping[str, Any]) -> None:
    """Record (or replace) the secondee's voluntary answers; all blank withdraws them (MP-O).

    They are kept out of the case data, which the home and host contacts can read, and out of the audit trail;
    the register only ever shows them as counts, with small counts suppressed."""
    clean = parse_self_identification(answers)
    with db.unit_of_work() as uow:
        s = uow.session
        _own_placement(s, user, instance_id)
        row = s.scalars(select(PlacementSelfIdentification).where(
            PlacementSelfIdentification.instance_id == instance_id)).first()
        if not any(clean.values()):
            if row is not None:
                s.delete(row)
        else:
            if row is None:
                row = PlacementSelfIdentification(instance_id=instance_id, recorded_at=CLOCK.now())
                s.add(row)
            for key, value in clean.items():
                setattr(row, key, value)
            row.recorded_at = CLOCK.now()
        uow.commit()


# ---------------------------------------------------------------------------------------------- the projection


@dataclass
class _Version:
    number: int
    kind: str
    issued_at: datetime
    document: dict[str, Any]
    answers: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return len(self.answers) == 3

    @property
    def accepted(self) -> bool:
        return self.complete and all(a == "accept" for a, _ in self.answers.values())


@dataclass
class _Walk:
    """The state of a placement as its audit trail tells it, event after event."""

    route: str = "application"
    employee: str | None = None
    home_contact: str | None = None
    opportunity: dict[str, Any] | None = None
    application: dict[str, Any] | None = None
    forecast: dict[str, Any] | None = None
    draft: dict[str, Any] | None = None
    extension_end: str | None = None
    versions: list[_Version] = field(default_factory=list)
    accepted: _Version | None = None
    agreed_at: datetime | None = None
    extensions: int = 0
    selected: bool = False
    not_supported: bool = False
    planning: bool = False
    negotiating: bool = False
    started: bool = False
    post_started: bool = False
    early_last_day: str | None = None
    results: list[dict[str, Any]] | None = None
    evaluation_value: str | None = None
    concerns: list[dict[str, Any]] = field(default_factory=list)

    def feed(self, event: AuditEvent) -> None:
        """Take one audit event into account."""
        detail = event.detail or {}
        if event.kind == "started":
            data = detail.get("data") or {}
            self.route = data.get("route") or self.route
            self.employee = data.get("employee") or None
            self.home_contact = data.get("home_contact") or None
        elif event.kind == "task_opened":
            self._opened(str(detail.get("task")), event.at)
        elif event.kind == "task_completed":
            self._completed(str(detail.get("task")), detail.get("data") or {}, event)
        elif event.kind == "timer_fired" and detail.get("element") == "wait_for_start":
            self.started = True

    def _opened(self, task: str, at: datetime) -> None:
        if task == "forecast":
            self.planning = True
        elif task == "draft_agreement":
            self.negotiating = True
        elif task == "induct":
            self.started = True
        elif task == "post_placement_report":
            self.post_started = True
        if task in ROUND_OPENERS:
            kind = ROUND_OPENERS[task]
            base = self.draft if kind == "agreement" else (self.accepted.document if self.accepted else self.draft)
            document = copy.deepcopy(base or {})
            if kind == "extension" and self.extension_end:
                document.setdefault("schedule1", {})["end_date"] = self.extension_end
            self.versions.append(_Version(len(self.versions) + 1, kind, at, document))

    def _completed(self, task: str, data: dict[str, Any], event: AuditEvent) -> None:
        if task == "publish_opportunity":
            self.opportunity = data.get("opportunity")
        elif task == "select_secondee":
            self.employee = (data.get("selection") or {}).get("secondee") or self.employee
            self.selected = True
        elif task == "apply":
            self.application = data.get("application")
        elif task == "consider_application":
            self.not_supported = (data.get("endorsement") or {}).get("decision") == "decline"
        elif task == "forecast":
            self.forecast = data.get("forecast")
        elif task == "draft_agreement":
            self.draft = data.get("agreement")
        elif task == "plan_end":
            plan = data.get("end_plan") or {}
            self.extension_end = plan.get("new_end_date") if plan.get("decision") == "extend" else None
        elif task in ACCEPTANCES:
            self._answer(task, data, event)
        elif task in CONCERN_TASKS:
            concern = data.get("concern") or {}
            self.concerns.append({
                "raised_at": event.at, "raised_by": event.actor, "party": CONCERN_TASKS[task],
                "category": str(concern.get("category") or "other"), "urgent": bool(concern.get("urgent")),
                "details": str(concern.get("details") or "")})
        elif task == "decide_concern":
            decision = data.get("concern_decision") or {}
            if decision.get("decision") == "end_early" and self.started and not self.post_started:
                self.early_last_day = decision.get("last_day")
        elif task == "record_results":
            self.results = list((data.get("objective_results") or {}).get("results") or [])
        elif task == "evaluate_placement":
            self.evaluation_value = (data.get("evaluation") or {}).get("value")

    def _answer(self, task: str, data: dict[str, Any], event: AuditEvent) -> None:
        if not self.versions:
            return
        party, key = ACCEPTANCES[task]
        version = self.versions[-1]
        answer = data.get(key) or {}
        decision = str(answer.get("decision") or "")
        version.answers[party] = (decision, event.at)
        if decision != "accept":
            version.changes.append(f"{party}: {answer.get('changes') or ''}".strip())
        if version.accepted:
            self.accepted = version
            if version.kind == "extension":
                self.extensions += 1
            if self.agreed_at is None:
                self.agreed_at = event.at

    # ------------------------------------------------------------------ what the walk adds up to

    def status(self, instance_status: str) -> str:
        """Where the placement stands (one of STATUSES)."""
        if instance_status == "cancelled":
            return "cancelled"
        if self.not_supported:
            return "not_supported"
        if instance_status == "completed":
            return "closed"
        steps = [(self.post_started, "post_placement"), (self.started, "in_progress"),
                 (self.accepted is not None, "agreed"), (self.negotiating, "negotiating"),
                 (self.planning, "planning")]
        for reached, status in steps:
            if reached:
                return status
        if self.route == "opportunity" and not self.selected:
            return "published" if self.opportunity else "proposed"
        return "applied" if self.application else "proposed"

    def document(self) -> dict[str, Any]:
        """The agreement as it stands: the accepted version, else the latest draft."""
        if self.accepted is not None:
            return self.accepted.document
        return self.draft or {}


def _date(value: Any) -> date | None:
    if isinstance(value, str) and value:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _step_outcome(task: HumanTask, now: datetime) -> str:
    due = task.due_at
    if task.state == "completed":
        return "on_time" if due is None or (task.completed_at is not None and task.completed_at <= due) else "late"
    if task.state == "open":
        return "overdue" if due is not None and due < now else "pending"
    ended = task.completed_at or now
    return "missed" if due is not None and due < ended else "superseded"


def rebuild_placement(session: Session, row: ProcessInstance, timezone: str) -> Placement:
    """Rebuild one placement's register rows from its case's audit trail and task rows."""
    events = list(session.scalars(select(AuditEvent).where(AuditEvent.instance_id == row.id)
                                  .order_by(AuditEvent.id)))
    tasks = list(session.scalars(select(HumanTask).where(HumanTask.instance_id == row.id).order_by(HumanTask.id)))
    walk = _Walk()
    for event in events:
        walk.feed(event)
    placement = session.get(Placement, row.id)
    new = placement is None
    if placement is None:
        placement = Placement(instance_id=row.id)
    with session.no_autoflush:  # the row is only complete once filled
        _fill_placement(session, placement, row, walk, tasks, timezone)
    placement.synced_event_id = events[-1].id if events else 0
    placement.synced_event_count = len(events)
    placement.synced_at = CLOCK.now()
    if new:
        session.add(placement)
    session.flush()
    _add_children(session, placement, walk, tasks)
    return placement


def _fill_placement(session: Session, p: Placement, row: ProcessInstance, walk: _Walk, tasks: list[HumanTask],
                    timezone: str) -> None:
    doc = walk.document()
    s1: dict[str, Any] = doc.get("schedule1") or {}
    s2: dict[str, Any] = doc.get("schedule2") or {}
    forecast, opportunity, application = walk.forecast or {}, walk.opportunity or {}, walk.application or {}
    p.route = walk.route if walk.route in ROUTES else "application"
    p.status = walk.status(row.status)
    p.opportunity = walk.opportunity
    p.title = opportunity.get("title")
    p.closing_date = _date(opportunity.get("closing_date"))
    p.secondee = walk.employee
    secondee = person_by_username(session, walk.employee)
    p.secondee_name = secondee.name if secondee is not None else None
    p.home_organisation = s1.get("home_organisation") or (
        secondee.organisation.name if secondee is not None and secondee.organisation is not None else None)
    p.host_organisation = (s1.get("host_organisation") or forecast.get("host_organisation")
                           or opportunity.get("host_organisation") or application.get("preferred_host"))
    p.home_contact = s1.get("home_contact") or walk.home_contact
    p.host_contact = s1.get("host_contact") or forecast.get("host_contact")
    p.proposed_on = row.started_at.astimezone(ZoneInfo(timezone)).date()
    p.start_date = _date(s1.get("start_date") or forecast.get("proposed_start") or application.get("preferred_start")
                         or opportunity.get("proposed_start"))
    p.end_date = _date(s1.get("end_date") or forecast.get("proposed_end"))
    p.actual_end_date = None
    if walk.post_started:
        p.actual_end_date = _date(walk.early_last_day) or p.end_date
    p.ended_early = bool(p.actual_end_date and p.end_date and p.actual_end_date < p.end_date)
    p.agreed_at = walk.agreed_at
    p.version = len(walk.versions)
    p.accepted_version = walk.accepted.number if walk.accepted else 0
    p.extensions = walk.extensions
    p.objectives_total = len(s2.get("objectives") or [])
    results = walk.results
    p.objectives_met = None if results is None else sum(1 for r in results if r.get("result") == "met")
    p.objectives_partly_met = None if results is None else sum(1 for r in results if r.get("result") == "partly_met")
    if results is not None:
        p.objectives_total = len(results)
    now = CLOCK.now()
    outcomes = [_step_outcome(t, now) for t in tasks if STEP_KINDS.get(t.name) in REPORT_KINDS]
    p.reports_on_time = outcomes.count("on_time")
    p.reports_late = outcomes.count("late")
    p.reports_missed = outcomes.count("missed") + outcomes.count("overdue")
    p.reports_due = p.reports_on_time + p.reports_late + p.reports_missed
    p.concerns_raised = len(walk.concerns)
    p.concerns_open = sum(1 for t in tasks if t.name in CONCERN_FOLLOW_UPS and t.state == "open")
    p.evaluation_value = walk.evaluation_value


def _add_children(session: Session, p: Placement, walk: _Walk, tasks: list[HumanTask]) -> None:
    open_acceptances = any(t.name in ACCEPTANCES and t.state == "open" for t in tasks)
    versions: dict[Any, dict[str, Any]] = {}
    for i, v in enumerate(walk.versions):
        if v.accepted:
            status = "accepted"
        elif v.complete:
            status = "changes_requested"
        elif i == len(walk.versions) - 1 and open_acceptances:
            status = "pending"
        else:
            status = "withdrawn"
        values: dict[str, Any] = {"kind": v.kind, "issued_at": v.issued_at, "document": v.document,
                                  "status": status, "changes": v.changes}
        for party in ("secondee", "home", "host"):
            answer = v.answers.get(party)
            values[f"{party}_answer"], values[f"{party}_at"] = answer if answer else (None, None)
        versions[v.number] = values
    _sync_rows(session, PlacementAgreementVersion, p.instance_id, "version", versions)
    numbers: dict[str, int] = {}
    steps: dict[Any, dict[str, Any]] = {}
    now = CLOCK.now()
    for t in tasks:
        kind = STEP_KINDS.get(t.name)
        if kind is None:
            continue
        numbers[kind] = numbers.get(kind, 0) + 1
        done = t.state == "completed"
        steps[t.id] = {"kind": kind, "number": numbers[kind], "opened_at": t.created_at, "due_at": t.due_at,
                       "filed_at": t.completed_at if done else None, "filed_by": t.completed_by if done else None,
                       "outcome": _step_outcome(t, now)}
    _sync_rows(session, PlacementReport, p.instance_id, "task_id", steps)
    _sync_rows(session, PlacementConcern, p.instance_id, "seq",
               {i: c for i, c in enumerate(walk.concerns, start=1)})


def _sync_rows(session: Session, model: Any, instance_id: int, key: str, wanted: dict[Any, dict[str, Any]]) -> None:
    """Make a placement's rows of `model` exactly `wanted` (key -> column values), writing only what changed."""
    existing = {getattr(r, key): r for r in session.scalars(select(model).where(model.instance_id == instance_id))}
    for k, values in wanted.items():
        row = existing.pop(k, None)
        if row is None:
            session.add(model(instance_id=instance_id, **{key: k}, **values))
            continue
        for name, value in values.items():
            if getattr(row, name) != value:
                setattr(row, name, value)
    for row in existing.values():
        session.delete(row)


def _fingerprints(session: Session) -> dict[int, tuple[int, int]]:
    rows = session.execute(
        select(AuditEvent.instance_id, func.max(AuditEvent.id), func.count(AuditEvent.id))
        .join(ProcessInstance, ProcessInstance.id == AuditEvent.instance_id)
        .where(ProcessInstance.process_key == PROCESS_KEY).group_by(AuditEvent.instance_id)).all()
    return {int(i): (int(mx), int(n)) for i, mx, n in rows if i is not None}


def stale_placements(session: Session) -> list[int]:
    """The secondment cases whose register rows are missing or older than their audit trail."""
    have = {int(i): (int(e), int(n)) for i, e, n in session.execute(
        select(Placement.instance_id, Placement.synced_event_id, Placement.synced_event_count)).all()}
    return sorted(i for i, fp in _fingerprints(session).items() if have.get(i) != fp)


def sync_placements(session: Session, timezone: str) -> int:
    """Rebuild every stale placement in this session's transaction; returns how many were rebuilt."""
    stale = stale_placements(session)
    for instance_id in stale:
        row = session.get(ProcessInstance, instance_id)
        if row is not None:
            rebuild_placement(session, row, timezone)
    return len(stale)


def refresh_register(db: Database, timezone: str) -> int:
    """Bring the register up to date with every secondment case (a no-op read when nothing changed)."""
    with db.read() as s:
        if not stale_placements(s):
            return 0
    attempts = 3
    for attempt in range(1, attempts + 1):
        try:
            with db.unit_of_work() as uow:
                count = sync_placements(uow.session, timezone)
                uow.commit()
                return count
        except IntegrityError:
            # Another process rebuilt the same placement at the same moment; the next attempt sees its rows.
            if attempt == attempts:
                raise
            log.info("register refresh collided with another (attempt %s); retrying", attempt)
    return 0


# ---------------------------------------------------------------------------------------------- the demo

#: Host organisations' contacts for the demo: (username, name, organisation code, organisation name).
DEMO_HOSTS = [
    ("host", "Hana Ito (NT Health, host supervisor)", "NTH", "NT Health"),
    ("host2", "Ravi Patel (Charles Darwin University, host supervisor)", "CDU", "Charles Darwin University"),
]


def load_secondment_demo(runtime: Runtime) -> Iterator[str]:
    """Host organisations and their contacts (with logins), and two placements under way. Idempotent.

    Call it from engine.demo.load_demo after the processes are deployed."""
    load_host_people(runtime)
    yield f"{len(DEMO_HOSTS)} host organisation contacts for placements ({', '.join(h[0] for h in DEMO_HOSTS)})"
    with runtime.db.read() as s:
        if s.scalars(select(ProcessInstance.id).where(ProcessInstance.process_key == PROCESS_KEY)).first():
            return
    yield from _demo_cases(runtime)


def load_host_people(runtime: Runtime) -> None:
    """The demo's host organisations and their contacts, with logins (password: the demo password)."""
    from engine.demo import DEMO_PASSWORD
    from engine.users import PersonInput, create_user, hash_password, organisation_by_code, save_person

    with runtime.db.unit_of_work() as uow:
        s = uow.session
        password_hash: str | None = None
        for username, name, code, org_name in DEMO_HOSTS:
            org = organisation_by_code(s, code)
            assert org is not None
            org.name = org_name
            if person_by_username(s, username) is None:
                save_person(s, PersonInput(username=username, name=name, email=f"{username}@demo.ntps.example",
                                           classification="AO7", organisation=code, commenced_on="2023-07-01"))
            if s.scalars(select(User).where(User.username == username)).first() is None:
                password_hash = password_hash or hash_password(DEMO_PASSWORD)
                create_user(s, username, ["staff"], None, password_hash=password_hash, actor="demo")
        uow.commit()


def _demo_user(runtime: Runtime, username: str) -> User:
    with runtime.db.read() as s:
        user = s.scalars(select(User).where(User.username == username)).one()
        _ = user.person
        s.expunge(user)
        return user


def _demo_cases(runtime: Runtime) -> Iterator[str]:
    today = CLOCK.now().date()
    supervisor = _demo_user(runtime, "supervisor")
    case = publish_opportunity(runtime, supervisor)
    task = first_open_task(runtime.db, case, "publish_opportunity")
    assert task is not None
    runtime.complete_task(supervisor, task, {"opportunity": {
        "title": "Workforce data analyst, six months", "summary": "Join NT Health's workforce planning team to "
        "build the staffing model for the new wards.", "host_organisation": "NT Health",
        "host_position": "Senior Analyst (AO7)", "development_benefits": "Data analysis, workforce planning, "
        "working across agencies.", "eligibility": "AO5 to AO7 staff of the Darwin Port Corporation.",
        "proposed_start": date.fromordinal(today.toordinal() + 90).isoformat(), "proposed_months": 6,
        "closing_date": date.fromordinal(today.toordinal() + 21).isoformat(),
        "how_to_apply": "Talk to Sam Okafor before the closing date."}})
    yield f"placement case {case}: a development opportunity published by the supervisor"
    engineer = _demo_user(runtime, "engineer")
    case = apply_for_placement(runtime, engineer)
    yield f"placement case {case}: Tom Nguyen (engineer) has started an application"


# ---------------------------------------------------------------------------------------------- process hooks

#: The form field of the application that holds the voluntary self-identification answers.
SELF_ID_FIELD = "self_identification"


@hooks.on_complete(PROCESS_KEY)
def keep_self_identification_apart(session: Session, row: ProcessInstance, task: HumanTask, data: dict[str, Any],
                                   actor: str) -> dict[str, Any]:
    """The application's optional self-identification goes to its own table, never into the case (MP-O).

    The case data and its history are readable by the home and host contacts; these answers are for OCPE's
    counts only."""
    application = data.get("application")
    if task.name != "apply" or not isinstance(application, dict) or SELF_ID_FIELD not in application:
        return data
    answers = parse_self_identification(application.get(SELF_ID_FIELD) or {})
    clean = {**data, "application": {k: v for k, v in application.items() if k != SELF_ID_FIELD}}
    existing = session.scalars(select(PlacementSelfIdentification).where(
        PlacementSelfIdentification.instance_id == row.id)).first()
    if any(answers.values()):
        if existing is None:
            existing = PlacementSelfIdentification(instance_id=row.id, recorded_at=CLOCK.now())
            session.add(existing)
        for key, value in answers.items():
            setattr(existing, key, value)
        existing.recorded_at = CLOCK.now()
    return clean


@hooks.after_save(PROCESS_KEY)
def keep_register_in_step(session: Session, row: ProcessInstance, actor: str, settings: Settings) -> None:
    """Rebuild the placement's register rows in the same transaction as the change (MP-O, MP-H).

    A savepoint keeps a failure here from undoing the change to the case: the register then catches up on
    its next read (refresh_register)."""
    # The runtime saves without autoflush; the rebuild reads this change's audit events and task rows.
    # Both are written before the savepoint, so that a failed rebuild can never take them with it.
    write_pending(session)
    session.flush()
    try:
        with session.begin_nested():
            rebuild_placement(session, row, settings.timezone)
    except Exception:  # the register is derived data; the case change must not fail because of it
        log.exception("placement register rebuild of case %s failed; it will catch up on the next read", row.id)


@hooks.on_task_opened(PROCESS_KEY)
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
    if task.name not in CONTEXT_TASKS:
        return
    session.flush()  # the runtime saves without autoflush; the history read below includes this change
    context = task_context(session, row, task.name, settings.timezone)
    if context:
        task.instructions = (task.instructions or "") + "\n\n" + _literal(context)


#: Tasks whose instructions get the facts of their branch (see task_context).
CONTEXT_TASKS = frozenset({"discuss_concern", "decide_concern", "accept_ext_secondee", "accept_ext_home",
                           "accept_ext_host", "plan_end", "propose_reentry", "confirm_reentry"})


def _literal(text: str) -> str:
    # Instructions are a template over the case data; what people typed must show as typed, never run.
    return "{% raw %}" + text.replace("{%", "{ %").replace("%}", "% }") + "{% endraw %}"


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
    walk = _Walk()
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
        last_day = walk.early_last_day or end
        return f"The placement's last day is {last_day}." if last_day else None
    return None


def _plan_end_context(walk: _Walk, unissued_plan: dict[str, Any], end: str | None) -> str | None:
    """Why the end-of-placement decision is open: first time, a proposal refused by the check, or an extension
    one of the parties asked to change."""
    if unissued_plan.get("decision") == "extend" and end and str(unissued_plan.get("new_end_date", "")) <= end:
        return f"Please fix: an extension must end after the current end date, {end}."
    latest = walk.versions[-1] if walk.versions else None
    if latest is not None and latest.kind == "extension" and latest.complete and not latest.accepted:
        return ("The extension to " + str((latest.document.get("schedule1") or {}).get("end_date")) +
                " was not accepted. Changes asked for: " + "; ".join(latest.changes))
    return f"The agreed end date is {end}." if end else None


# The placement's start data is checked and completed by its preparer, as the determination's cases are.
hooks.prepare(PROCESS_KEY)(prepare_secondment)
