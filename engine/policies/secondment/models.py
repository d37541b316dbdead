"""OCPE's placement register (mobility policy, MP-O): a projection of each secondment case, rebuilt from
the case's audit trail and task rows, never from serialized workflow state."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from engine.core.models import Base


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
    # The projection's state after synced_event_id (secondment.projection: the case walk, the newest task row seen,
    # the task rows open then, the steps numbered so far): a step takes it up instead of walking the whole history.
    # None until the first update after the migration, which rebuilds. Deferred: the register's pages never read it.
    walk_state: Mapped[dict[str, Any] | None] = mapped_column(JSON, deferred=True)


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
    # A read finds the steps still pending past their due time (they are overdue now) without walking every step.
    __table_args__ = (Index("ix_placement_report_outcome_due", "outcome", "due_at"),)

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

    Written only by the secondee (secondment.self_identification), never part of the case data; the register shows
    it only as counts, with small counts suppressed."""

    __tablename__ = "placement_self_identification"

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), unique=True)
    gender: Mapped[str | None] = mapped_column(String(30))
    age_band: Mapped[str | None] = mapped_column(String(30))
    atsi: Mapped[str | None] = mapped_column(String(30))
    disability: Mapped[str | None] = mapped_column(String(30))
    cald: Mapped[str | None] = mapped_column(String(30))
    recorded_at: Mapped[datetime]
