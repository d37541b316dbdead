"""The REST API's request and response bodies as pydantic models.

Request models are what spectree validates each call against before the view runs; the same models,
with the response models, are what `/api/v1/openapi.json` publishes. Business rules (a supervisor who
must exist, a date that must be real, a policy refusal) stay in the engine and answer 422 from there.

Length limits mirror the database columns, so nothing a client sends can overflow a column (which
PostgreSQL, unlike SQLite, would refuse with a server error).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator
from pydantic_core import PydanticCustomError

#: Text that is not blank and carries no NUL character (PostgreSQL text cannot hold one).
_TEXT = r"^[^\x00]*[^\x00\s][^\x00]*$"
_OPTIONAL_TEXT = r"^[^\x00]*$"
#: A username: letters of any script, digits, '.', '_' and '-' (engine.people.users.is_username has the last word).
_USERNAME = r"^[\w.-]+$"
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
#: The largest id a row can have (PostgreSQL's `integer`); ids in URLs and cursors stop there.
MAX_ID = 2_147_483_647


def _text(max_length: int, description: str = "", **kw: Any) -> Any:
    return Field(min_length=1, max_length=max_length, pattern=_TEXT, description=description, **kw)


Username = Annotated[str, Field(min_length=1, max_length=80, pattern=_USERNAME,
                                description="a login name: letters, digits, '.', '_' and '-'")]
OptionalUsername = Annotated[str | None, Field(default=None, max_length=80, pattern=r"^[\w.-]*$")]
DateText = Annotated[str, Field(pattern=_DATE, json_schema_extra={"format": "date"},
                                description="a date, YYYY-MM-DD")]


def _example(example: dict[str, Any]) -> ConfigDict:
    """A request model's configuration with one example (shown in the docs, tried first by schemathesis)."""
    return ConfigDict(extra="ignore", json_schema_extra={"examples": [example]})


class _In(BaseModel):
    """Request bodies: unknown fields are ignored (API.md: clients may send more than we read)."""

    model_config = ConfigDict(extra="ignore")


class _Out(BaseModel):
    """Response bodies may carry more fields than documented (the contract grows by adding)."""

    model_config = ConfigDict(extra="allow")


# ------------------------------------------------------------------------------------------- errors


class ErrorItem(_Out):
    """One thing wrong: the field or BPMN element to blame, when there is one, and what is wrong."""

    field: str | None = Field(default=None, description="the request field to blame (dotted for nested data)")
    element: str | None = Field(default=None, description="the BPMN element to blame")
    message: str


class Errors(BaseModel):
    """Every 4xx answer: a list of problems."""

    errors: list[ErrorItem]


# ------------------------------------------------------------------------------------------- auth


class TokenIn(_In):
    """A username and password to exchange for a bearer token."""

    model_config = _example({"username": "hr", "password": "demo-pass-2026"})

    username: str = Field(min_length=1, max_length=200, pattern=_OPTIONAL_TEXT)
    password: str = Field(min_length=1, max_length=1024)


class TokenOut(_Out):
    """A bearer token and when it expires."""

    token: str
    expires_at: str = Field(json_schema_extra={"format": "date-time"})


class Me(_Out):
    """The caller."""

    username: str
    name: str
    roles: list[str]


# ------------------------------------------------------------------------------------------- people


class PersonIn(_In):
    """A new person record; `password` (optional) also gives them a staff login."""

    model_config = _example({
        "username": "jsmith", "name": "Jo Smith", "email": "jo.smith@example.org", "classification": "SPAO1",
        "pay_point": "SPAO1-1", "organisation": "DPC", "supervisor": "supervisor", "manager": "manager",
        "commenced_on": "2025-07-01"})

    username: Username
    name: str = _text(200)
    email: str = Field(min_length=3, max_length=254, pattern=r"^[^\x00@\s]+@[^\x00@\s]+$")
    classification: str = _text(20, "e.g. SPAO1, SPAO2, SPPO1, SPPO2, AO6")
    pay_point: str | None = Field(default=None, max_length=20, pattern=_OPTIONAL_TEXT, description="e.g. SPAO1-2")
    organisation: str | None = Field(default=None, max_length=40, pattern=_OPTIONAL_TEXT,
                                     description="organisation code (created on first mention)")
    supervisor: OptionalUsername = None
    manager: OptionalUsername = None
    commenced_on: str | None = Field(default=None, pattern=r"^([0-9]{4}-[0-9]{2}-[0-9]{2})?$",
                                     json_schema_extra={"format": "date"})
    ceo_delegate: StrictBool = False
    password: str | None = Field(default=None, min_length=12, max_length=1024,
                                 description="gives the person a staff login with this password (at least 12 "
                                 "characters, not a common or breached password, not their name)")


class PersonOut(_Out):
    """A person, with the people they supervise and manage."""

    username: str
    name: str
    email: str
    classification: str
    pay_point: str | None
    organisation: str | None
    supervisor: str | None
    manager: str | None
    commenced_on: str | None
    ceo_delegate: bool
    supervisor_of: list[str]
    manager_of: list[str]


class LeaveIn(_In):
    """A period of leave (D19-9d, D19-10)."""

    model_config = _example({"kind": "lwop", "start": "2026-03-10", "end": "2026-03-19",
                             "counts_as_service": False})

    kind: Literal["lwop", "ordinary", "extended"]
    start: DateText
    end: DateText
    counts_as_service: StrictBool


class LeaveOut(_Out):
    """The leave as recorded, and the running cases whose dates moved with it."""

    username: str
    kind: str
    start: str
    end: str
    counts_as_service: bool
    retimed_cases: list[int]


# ------------------------------------------------------------------------------------------- pay points


class PayPointOut(_Out):
    """One pay point of a classification (D19-1); `ordinal` 1 is the lowest."""

    classification: str
    code: str
    ordinal: int
    annual_salary: int | None


class PayPointList(_Out):
    """Every classification's pay points in order."""

    items: list[PayPointOut]


class PayPointIn(_In):
    """A pay point as PUT gives it."""

    code: str = Field(max_length=20, description="letters, digits and hyphens, e.g. SPAO1-2")
    annual_salary: int | None = Field(default=None, ge=0, le=9_999_999, description="whole dollars")


class PayPointsIn(_In):
    """A classification's whole list of pay points, lowest first; it replaces the list."""

    model_config = _example({"points": [{"code": "SPAO1-1", "annual_salary": 120000},
                                        {"code": "SPAO1-2", "annual_salary": 124000}]})

    points: list[PayPointIn] = Field(min_length=1, max_length=50)


# ------------------------------------------------------------------------------------------- processes


class _Filters(BaseModel):
    """The query of a filtered list: unknown parameters are refused (a misspelt filter is an error, not
    everything); a filter left out does not filter, and one given empty is an error."""

    model_config = ConfigDict(extra="forbid")


def _filter(description: str, schema_format: str | None = None, **kw: Any) -> Any:
    """An optional query parameter, documented as its type alone: a query string cannot carry null."""

    def absent_not_null(schema: dict[str, Any]) -> None:
        branches = [b for b in schema.pop("anyOf", []) if b.get("type") != "null"]
        if len(branches) == 1:
            schema.update(branches[0])
        schema.pop("default", None)
        if schema_format:
            schema["format"] = schema_format

    return Field(default=None, description=description, json_schema_extra=absent_not_null, **kw)


def _real_date(value: str | None) -> str | None:
    if value is not None:
        try:
            date.fromisoformat(value)
        except ValueError:
            raise PydanticCustomError("date_invalid", "Must be a date (YYYY-MM-DD).") from None
    return value


class Page(BaseModel):
    """Paging of a list: `limit` items after `cursor` (the `next` value of the previous page).

    Unknown query parameters are refused, so a misspelt `limt=5` is an error rather than 50 items."""

    model_config = ConfigDict(extra="forbid")

    cursor: int | None = _filter("from the previous page's next", ge=0, le=MAX_ID)
    limit: int = Field(default=50, ge=1, le=200)


InstanceStatus = Literal["running", "completed", "cancelled", "error"]


class InstanceFilters(_Filters):
    """Which cases to list (all of them given: cases matching every one), and which page."""

    process: str | None = _filter("only cases of this process (its key)", min_length=1, max_length=200,
                                  pattern=_OPTIONAL_TEXT)
    status: InstanceStatus | None = _filter("only cases with this status")
    subject: str | None = _filter("only cases about this person (their username)", min_length=1, max_length=80,
                                  pattern=_USERNAME)
    started_after: str | None = _filter("only cases started on this day or later (YYYY-MM-DD, local time)",
                                        pattern=_DATE, schema_format="date")
    started_before: str | None = _filter("only cases started before this day (YYYY-MM-DD, local time)",
                                         pattern=_DATE, schema_format="date")
    cursor: int | None = _filter("from the previous page's next", ge=0, le=MAX_ID)
    limit: int = Field(default=50, ge=1, le=200, description="at most this many cases (1-200)")

    _dates = field_validator("started_after", "started_before")(_real_date)


class PeopleFilters(_Filters):
    """Which people to list (all of them given: people matching every one), and which page."""

    q: str | None = _filter("only people whose name or username contains this text (any case)", min_length=1,
                            max_length=200, pattern=_OPTIONAL_TEXT)
    organisation: str | None = _filter("only people of this organisation (its code)", min_length=1, max_length=40,
                                       pattern=_OPTIONAL_TEXT)
    cursor: str = Field(default="", pattern=r"^[A-Za-z0-9_-]{0,500}$", description="from the previous page's next")
    limit: int = Field(default=50, ge=1, le=200, description="at most this many people (1-200)")


class ProcessOut(_Out):
    """The newest deployed version of a process."""

    key: str
    version: int
    name: str
    deployed_at: str = Field(json_schema_extra={"format": "date-time"})
    deployed_by: str
    executable: bool


class DeployedItem(_Out):
    """One process a deployment created (or found unchanged)."""

    key: str
    version: int


class DeployOut(_Out):
    """What a deployment produced: one entry per executable process."""

    processes: list[DeployedItem]


# ------------------------------------------------------------------------------------------- cases and tasks


class InstanceIn(_In):
    """Start a case of the newest version of a process."""

    model_config = _example({"process": "pay_progression", "data": {
        "employee": "employee", "agreement_start": "2025-06-30", "assessment_date": "2026-06-30"}})

    process: str = Field(min_length=1, max_length=200, pattern=_OPTIONAL_TEXT, description="the process key")
    data: dict[str, Any] = Field(default_factory=dict, description="the data the case starts from")


class CompleteIn(_In):
    """The task's form data."""

    model_config = _example({"data": {"invitation": {"message": "Please make your submission by 30 May."}}})

    data: dict[str, Any] = Field(default_factory=dict)


class GroupIn(_In):
    """A work group: a lane of that name sends its tasks to every member."""

    model_config = _example({"name": "Finance", "organisation": "DPC", "members": ["hr"]})

    name: str = Field(min_length=1, max_length=100)
    organisation: str | None = None
    members: list[str] = Field(default_factory=list, max_length=1000)


class MembersIn(_In):
    """A work group's members, by username (replaces them)."""

    model_config = _example({"members": ["hr", "manager"]})

    members: list[str] = Field(max_length=1000)


class GroupOut(_Out):
    """A work group with its members' usernames."""

    name: str
    organisation: str | None
    members: list[str]


class GroupList(_Out):
    """Every work group, by name."""

    items: list[GroupOut]


class MessageIn(_In):
    """A BPMN message (or signal) by name, with its payload for the case's data."""

    model_config = _example({"name": "payment_received", "data": {"amount": 1200}})

    name: str = Field(min_length=1, max_length=255)
    data: dict[str, Any] = Field(default_factory=dict)


class MessageStartOut(_Out):
    """The cases a message started: one per deployed process whose message start event has its name."""

    instances: list[int]


class InstanceSummary(_Out):
    """A case as lists show it (GET /instances/{id} has the rest)."""

    id: int
    process: str = Field(description="the process key")
    version: int
    title: str
    status: InstanceStatus
    subject: str | None = Field(description="the username of the person the case is about")
    started_at: str = Field(json_schema_extra={"format": "date-time"})
    ended_at: str | None = Field(json_schema_extra={"format": "date-time"})


class InstancePage(_Out):
    """A page of cases, newest first; `next` is the cursor of the next page, or null on the last one."""

    items: list[InstanceSummary]
    next: str | None


class PersonPage(_Out):
    """A page of people by username; `next` is the cursor of the next page, or null on the last one."""

    items: list[PersonOut]
    next: str | None


class TaskOut(_Out):
    """An open (or finished) user task."""

    id: int
    instance: int
    name: str = Field(description="the BPMN element id")
    title: str = Field(description="the BPMN element's label")
    lane: str | None
    assignee: str | None
    group: str | None = None
    group_label: str | None = Field(default=None, description="the group as people read it, e.g. \"the CEO's office\"")
    needs_appointment: bool = Field(default=False, description=(
        "no one on record may take the step (D19-6/7/8): it waits until HR or the CEO's office appoints someone"))
    due_at: str | None
    overdue: bool
    clause: str | None
    state: str | None = None


class TaskPage(_Out):
    """A page of tasks; `next` is the cursor of the next page, or null on the last one."""

    items: list[TaskOut]
    next: str | None


class Form(_Out):
    """The task's JSON Schema form and its UI schema."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    schema_: dict[str, Any] | None = Field(alias="schema")
    ui_schema: dict[str, Any] | None


class TaskDetail(TaskOut):
    """A task with its form, the data the form starts from, and whether the caller may complete it."""

    form: Form
    data: dict[str, Any]
    workable: bool
    instructions: str | None


class TimerOut(_Out):
    """A waiting timer."""

    name: str
    due_at: str | None


class EventOut(_Out):
    """One entry of a case's audit trail."""

    at: str | None
    actor: str
    kind: str
    detail: dict[str, Any]


class InstanceOut(_Out):
    """A case: status, data, open tasks, waiting timers, audit trail."""

    id: int
    process: str
    version: int
    status: InstanceStatus
    data: dict[str, Any]
    tasks: list[TaskOut]
    timers: list[TimerOut]
    events: list[EventOut]
