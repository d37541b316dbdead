"""SQLAlchemy 2 typed models: people, logins, deployed definitions, instances, tasks, timers, audit."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

ROLES = ("admin", "hr", "ocpe", "process_owner", "staff")
#: Roles only an administrator may give or take away, on every path (web, API, CSV import, command line).
PRIVILEGED_ROLES = frozenset({"admin", "hr", "ocpe", "process_owner"})


class UTCDateTime(TypeDecorator[datetime]):
    """Store datetimes as UTC and always hand back aware datetimes (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base for every table."""

    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[str]: JSON()}


def table_of(model: type[Base]) -> Table:
    """A model's table, typed, for the statements that read and write columns rather than objects."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def column_length(model: type[Base], column: str) -> int:
    """The most characters a text column holds (PostgreSQL refuses more; SQLite would store them)."""
    kind = table_of(model).c[column].type
    assert isinstance(kind, String) and kind.length is not None
    return kind.length


class Organisation(Base):
    """An agency or external organisation (home or host of a placement)."""

    __tablename__ = "organisation"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    ceo_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", use_alter=True, name="fk_org_ceo"))


class Person(Base):
    """A people record: what lanes resolve against (supervisor, manager, CEO delegate...)."""

    __tablename__ = "person"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    classification: Mapped[str] = mapped_column(String(20))
    pay_point: Mapped[str | None] = mapped_column(String(20))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"))
    supervisor_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    commenced_on: Mapped[date | None] = mapped_column(Date)
    ceo_delegate: Mapped[bool] = mapped_column(Boolean, default=False)

    organisation: Mapped[Organisation | None] = relationship(foreign_keys=[organisation_id])
    supervisor: Mapped[Person | None] = relationship(remote_side=[id], foreign_keys=[supervisor_id])
    manager: Mapped[Person | None] = relationship(remote_side=[id], foreign_keys=[manager_id])


class User(Base):
    """A login. Standing over other people comes from the linked Person record, not from roles."""

    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    roles: Mapped[list[str]] = mapped_column(default=list)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]

    person: Mapped[Person | None] = relationship()

    def has_role(self, *roles: str) -> bool:
        """True when the user holds any of `roles`."""
        return any(r in self.roles for r in roles)


class ApiToken(Base):
    """A bearer token for the REST API; only its SHA-256 is stored."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class LoginSession(Base):
    """A web login session. The browser's cookie holds a random id; only its SHA-256 is stored.

    A session ends at logout, at a password change, when an administrator signs the person out everywhere,
    or after the idle or absolute lifetime (settings); an ended session never opens a page again."""

    __tablename__ = "login_session"
    __table_args__ = (Index("ix_login_session_user", "user_id", "ended_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(40))
    client: Mapped[str | None] = mapped_column(String(64))


class PayPoint(Base):
    """One pay point of a classification; `ordinal` orders the points (D19-1)."""

    __tablename__ = "pay_point"
    __table_args__ = (UniqueConstraint("classification", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    classification: Mapped[str] = mapped_column(String(20))
    code: Mapped[str] = mapped_column(String(20))
    ordinal: Mapped[int] = mapped_column(Integer)
    annual_salary: Mapped[int | None] = mapped_column(Integer)


class ProcessDefinition(Base):
    """One deployed version of one executable process, with the sources and forms it was built from."""

    __tablename__ = "process_definition"
    __table_args__ = (UniqueConstraint("key", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(300))
    # filename -> BPMN/DMN XML text: large, and only needed to parse a version once or to show its files
    sources: Mapped[dict[str, Any]] = mapped_column(JSON, deferred=True)
    forms: Mapped[dict[str, Any]] = mapped_column(JSON)  # filename -> parsed JSON
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    executable: Mapped[bool] = mapped_column(Boolean, default=True)
    deployed_at: Mapped[datetime]
    deployed_by: Mapped[str] = mapped_column(String(80))


class ProcessInstance(Base):
    """A running or finished case. `lock_version` makes a concurrent second writer fail, not overwrite."""

    __tablename__ = "process_instance"
    __table_args__ = (Index("ix_instance_status", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("process_definition.id"))
    process_key: Mapped[str] = mapped_column(String(200), index=True)
    title: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20))  # running / completed / cancelled / error
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # snapshot of workflow data
    serialized: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime]
    started_by: Mapped[str] = mapped_column(String(80))
    updated_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    lock_version: Mapped[int] = mapped_column(Integer, nullable=False)

    definition: Mapped[ProcessDefinition] = relationship()
    subject: Mapped[Person | None] = relationship()

    __mapper_args__ = {"version_id_col": lock_version}


class HumanTask(Base):
    """An open or finished user task, with the person or group it was assigned to when it opened."""

    __tablename__ = "human_task"
    __table_args__ = (
        # Ending with the id, an inbox page (open tasks of a person or group, oldest first) is read in order from
        # the index: without it PostgreSQL walked the primary key and filtered, O(all tasks) per page.
        Index("ix_task_assignee_state_id", "assignee_id", "state", "id"),
        Index("ix_task_group_state_id", "assigned_group", "state", "id"),
        Index("ix_task_instance_state", "instance_id", "state"),
        Index("ix_task_remind_at", "remind_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"))
    spiff_task_id: Mapped[str] = mapped_column(String(36))
    name: Mapped[str] = mapped_column(String(200))  # BPMN element id
    title: Mapped[str] = mapped_column(String(300))
    lane: Mapped[str | None] = mapped_column(String(100))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    assigned_group: Mapped[str | None] = mapped_column(String(60))
    state: Mapped[str] = mapped_column(String(20))  # open / completed / cancelled
    form: Mapped[str | None] = mapped_column(String(200))
    ui_form: Mapped[str | None] = mapped_column(String(200))
    clause: Mapped[str | None] = mapped_column(String(40))
    instructions: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    due_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    completed_by: Mapped[str | None] = mapped_column(String(80))
    escalated_at: Mapped[datetime | None]
    # When the assignee is reminded that the task falls due (its `remindBefore` before `due_at`); None once
    # reminded, or when the task has no reminder.
    remind_at: Mapped[datetime | None]
    # The task's own data when it opened, as far as its form and instructions read it: with parallel branches
    # the case's snapshot can hold another branch's values. None for tasks opened before it was kept.
    context: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    instance: Mapped[ProcessInstance] = relationship()
    assignee: Mapped[Person | None] = relationship()


class Timer(Base):
    """A WAITING timer task's due time: the database, not memory, is the source of truth for timers."""

    __tablename__ = "timer"
    __table_args__ = (
        Index("ix_timer_state_due", "state", "due_at"),
        Index("ix_timer_instance", "instance_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"))
    spiff_task_id: Mapped[str] = mapped_column(String(36))
    element: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(10))  # date / duration / cycle
    due_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(12))  # waiting / claimed / fired / failed / closed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    last_error: Mapped[str | None] = mapped_column(Text)


class AuditEvent(Base):
    """Append-only history of a case: who did what, when, and with what reason."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_instance", "instance_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"))
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(60))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Notification(Base):
    """An in-app notice to a person (the e-mail copy goes through SMTP when configured)."""

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_person", "person_id", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"))
    at: Mapped[datetime]
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    read_at: Mapped[datetime | None]
    emailed: Mapped[bool] = mapped_column(Boolean, default=False)


class Document(Base):
    """Large user input (evidence text) kept out of task data, which SpiffWorkflow copies into every task."""

    __tablename__ = "document"

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    field: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(80))


class Setting(Base):
    """An administrator-editable setting (periods the determination fixes, with its values as defaults)."""

    __tablename__ = "setting"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(String(500))


class Leave(Base):
    """A period of leave (D19-9d, D19-10): LWOP that does not count as service moves assessment dates."""

    __tablename__ = "leave"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # lwop / ordinary / extended
    start: Mapped[date] = mapped_column(Date)
    end: Mapped[date] = mapped_column(Date)
    counts_as_service: Mapped[bool] = mapped_column(Boolean)
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(String(80))


class RateLimitHit(Base):
    """One counted request in a rate-limited bucket (token requests per client, failed logins per username).

    Kept in the database, not in process memory, so the limit holds across gunicorn workers and hosts."""

    __tablename__ = "rate_limit_hit"
    __table_args__ = (Index("ix_rate_limit_bucket_at", "bucket", "at"), Index("ix_rate_limit_at", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    bucket: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime]


class BulkJob(Base):
    """A long HR action (the annual pay progression starts) whose progress any web process can report."""

    __tablename__ = "bulk_job"
    __table_args__ = (Index("ix_bulk_job_kind_status", "kind", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))  # queued / running / finished / failed
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    results: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # {"started": [...], "skipped": [...]}
    started_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class ProcessDraft(Base):
    """A process owner's unfinished edit of one process (one draft per process key), kept between sessions."""

    __tablename__ = "process_draft"

    id: Mapped[int] = mapped_column(primary_key=True)
    process_key: Mapped[str] = mapped_column(String(200), unique=True)
    filename: Mapped[str] = mapped_column(String(200))
    xml: Mapped[str] = mapped_column(Text)
    forms: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # filename -> parsed JSON
    base_version: Mapped[int | None] = mapped_column(Integer)  # the version the edit started from
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(80))


# ---------------------------------------------------------------------------------------------- placements
# OCPE's placement register (mobility policy, MP-O): a projection of each secondment case, rebuilt by
# engine.secondment from the case's audit trail and task rows, never from serialized workflow state.


class Placement(Base):
    """One secondment case as the register shows it: parties, dates, status, objectives, reporting."""

    __tablename__ = "placement"

    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), primary_key=True)
    route: Mapped[str] = mapped_column(String(20))  # application / opportunity
    status: Mapped[str] = mapped_column(String(20), index=True)
    title: Mapped[str | None] = mapped_column(String(300))  # the published opportunity's title
    opportunity: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    closing_date: Mapped[date | None] = mapped_column(Date)
    secondee: Mapped[str | None] = mapped_column(String(80))
    secondee_name: Mapped[str | None] = mapped_column(String(200))
    home_organisation: Mapped[str | None] = mapped_column(String(200))
    host_organisation: Mapped[str | None] = mapped_column(String(200))
    home_contact: Mapped[str | None] = mapped_column(String(80))
    host_contact: Mapped[str | None] = mapped_column(String(80))
    proposed_on: Mapped[date] = mapped_column(Date)
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)  # agreed, after any extension
    actual_end_date: Mapped[date | None] = mapped_column(Date)
    agreed_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=0)  # latest version issued for acceptance
    accepted_version: Mapped[int] = mapped_column(Integer, default=0)  # latest accepted by all three
    extensions: Mapped[int] = mapped_column(Integer, default=0)
    ended_early: Mapped[bool] = mapped_column(Boolean, default=False)
    objectives_total: Mapped[int] = mapped_column(Integer, default=0)
    objectives_met: Mapped[int | None] = mapped_column(Integer)  # None until the home organisation records it
    objectives_partly_met: Mapped[int | None] = mapped_column(Integer)
    reports_due: Mapped[int] = mapped_column(Integer, default=0)
    reports_on_time: Mapped[int] = mapped_column(Integer, default=0)
    reports_late: Mapped[int] = mapped_column(Integer, default=0)
    reports_missed: Mapped[int] = mapped_column(Integer, default=0)
    concerns_raised: Mapped[int] = mapped_column(Integer, default=0)
    concerns_open: Mapped[int] = mapped_column(Integer, default=0)
    evaluation_value: Mapped[str | None] = mapped_column(String(20))
    synced_event_id: Mapped[int] = mapped_column(Integer, default=0)
    synced_event_count: Mapped[int] = mapped_column(Integer, default=0)
    synced_at: Mapped[datetime]


class PlacementAgreementVersion(Base):
    """One version of a placement's bilateral agreement and each party's answer to it (MP-0)."""

    __tablename__ = "placement_agreement_version"
    __table_args__ = (UniqueConstraint("instance_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("placement.instance_id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))  # agreement / extension
    issued_at: Mapped[datetime]
    document: Mapped[dict[str, Any]] = mapped_column(JSON)  # Schedules 1 and 2
    status: Mapped[str] = mapped_column(String(20))  # pending / accepted / changes_requested / withdrawn
    secondee_answer: Mapped[str | None] = mapped_column(String(20))
    secondee_at: Mapped[datetime | None]
    home_answer: Mapped[str | None] = mapped_column(String(20))
    home_at: Mapped[datetime | None]
    host_answer: Mapped[str | None] = mapped_column(String(20))
    host_at: Mapped[datetime | None]
    changes: Mapped[list[str]] = mapped_column(JSON, default=list)  # "party: what should change"


class PlacementReport(Base):
    """A timed step of a placement (induction, progress report, briefing...) and whether it was on time."""

    __tablename__ = "placement_report"

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("placement.instance_id"), index=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("human_task.id"), unique=True)
    kind: Mapped[str] = mapped_column(String(30))
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per kind
    opened_at: Mapped[datetime]
    due_at: Mapped[datetime | None]
    filed_at: Mapped[datetime | None]
    filed_by: Mapped[str | None] = mapped_column(String(80))
    outcome: Mapped[str] = mapped_column(String(20))  # on_time / late / overdue / pending / missed / superseded


class PlacementConcern(Base):
    """A concern raised by a party during a placement (MP-L), as the register lists it."""

    __tablename__ = "placement_concern"
    __table_args__ = (UniqueConstraint("instance_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("placement.instance_id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, ... in the order raised
    raised_at: Mapped[datetime]
    raised_by: Mapped[str] = mapped_column(String(80))
    party: Mapped[str] = mapped_column(String(30))
    category: Mapped[str] = mapped_column(String(30))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    details: Mapped[str] = mapped_column(Text)


class PlacementSelfIdentification(Base):
    """A secondee's voluntary, confidential self-identification for OCPE's diversity statistics (MP-O).

    Written only by the secondee through engine.secondment, never part of the case data; the register shows it
    only as counts, with small counts suppressed."""

    __tablename__ = "placement_self_identification"

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), unique=True)
    gender: Mapped[str | None] = mapped_column(String(30))
    age_band: Mapped[str | None] = mapped_column(String(30))
    atsi: Mapped[str | None] = mapped_column(String(30))
    disability: Mapped[str | None] = mapped_column(String(30))
    cald: Mapped[str | None] = mapped_column(String(30))
    recorded_at: Mapped[datetime]
