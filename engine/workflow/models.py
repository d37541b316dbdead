"""The workflow engine's tables: deployed definitions, drafts, cases, their tasks, timers, notices and documents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.core.models import Base
from engine.people.models import Person


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


class PassedElement(Base):
    """An element a case's workflow passed, kept when compaction takes its finished task out of the live state
    (engine.workflow.compaction): with the tasks still in the workflow, the case's whole path."""

    __tablename__ = "passed_element"
    __table_args__ = (Index("ix_passed_element_instance", "instance_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"))
    element: Mapped[str] = mapped_column(String(200))  # the BPMN id
    state: Mapped[str] = mapped_column(String(12))  # completed / cancelled
    # When the task reached that state, as SpiffWorkflow records it (seconds since the epoch, wall clock): the
    # path's order.
    changed_at: Mapped[float] = mapped_column(Float)


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
