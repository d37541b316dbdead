"""The table of decision tables edited in the studio and not yet deployed (one draft per process and file)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.core.models import Base


class DecisionTableDraft(Base):
    """A process owner's edit of one DMN file of a process, deployed with the process as its next version."""

    __tablename__ = "decision_table_draft"
    __table_args__ = (UniqueConstraint("process_key", "filename"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    process_key: Mapped[str] = mapped_column(String(200))
    filename: Mapped[str] = mapped_column(String(200))
    xml: Mapped[str] = mapped_column(Text)
    base_version: Mapped[int | None] = mapped_column(Integer)  # the version the edit started from
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(80))
