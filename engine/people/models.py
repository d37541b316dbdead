"""People, organisations, logins and what they carry: tokens, server-side sessions, leave, rate-limit hits."""

from __future__ import annotations

from datetime import date, datetime
from typing import NamedTuple, Protocol

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.core.models import Base

ROLES = ("admin", "hr", "ocpe", "process_owner", "staff")
#: Roles only an administrator may give or take away, on every path (web, API, CSV import, command line).
PRIVILEGED_ROLES = frozenset({"admin", "hr", "ocpe", "process_owner"})


class Someone(Protocol):
    """Whom a task or a notice is for: a person's id and username (a `Person`, or a `PersonRef`)."""

    @property
    def id(self) -> int: ...

    @property
    def username(self) -> str: ...


class PersonRef(NamedTuple):
    """A person known by id and username only: what a hot path reads with one Core statement, where building the
    whole `Person` object would cost more than the query."""

    id: int
    username: str


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


class PayPoint(Base):
    """One pay point of a classification; `ordinal` orders the points (D19-1)."""

    __tablename__ = "pay_point"
    __table_args__ = (UniqueConstraint("classification", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    classification: Mapped[str] = mapped_column(String(20))
    code: Mapped[str] = mapped_column(String(20))
    ordinal: Mapped[int] = mapped_column(Integer)
    annual_salary: Mapped[int | None] = mapped_column(Integer)


class WorkGroup(Base):
    """A group of people an administrator keeps (Finance, Reviewers...): a lane of that name sends its tasks to
    every member's inbox, and one of them does each (issue 18)."""

    __tablename__ = "work_group"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(80))

    organisation: Mapped[Organisation | None] = relationship()


class WorkGroupMember(Base):
    """One person in one work group."""

    __tablename__ = "work_group_member"
    __table_args__ = (Index("ix_work_group_member_person", "person_id"),)

    group_id: Mapped[int] = mapped_column(ForeignKey("work_group.id"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), primary_key=True)
