"""Notifications: an in-app list, and e-mail sent from an outbox after the transaction commits.

Writing the notice in the same transaction as the change that caused it, and mailing it afterwards,
means no one is ever e-mailed about something that was rolled back.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core.clock import CLOCK
from engine.core.config import Settings
from engine.core.db import Database
from engine.people.groups import PREFIX as WORK_GROUP
from engine.people.groups import work_group_members
from engine.people.models import Person, Someone, User
from engine.workflow.assignment import ceo_office_members, needs_appointment
from engine.workflow.models import Notification

log = logging.getLogger(__name__)


def group_members(session: Session, group: str) -> list[Person]:
    """The people behind a task group: a work group's members (``group:<id>``); HR and OCPE by login role;
    ``ceo:<organisation>`` that organisation's CEO
    and delegates; a task waiting for an appointment (``appointment[:<organisation>]``) HR and that CEO's office,
    who may appoint."""
    kind, _, organisation = group.partition(":")
    if group.startswith(WORK_GROUP):  # a work group an administrator keeps: its members
        return work_group_members(session, group)
    if kind == "ceo":
        return ceo_office_members(session, int(organisation)) if organisation.isdigit() else []
    if needs_appointment(group):
        office = ceo_office_members(session, int(organisation)) if organisation.isdigit() else []
        return [*group_members(session, "hr"), *office]
    people = []
    for user in session.scalars(select(User).where(User.active.is_(True), User.person_id.is_not(None))):
        if group in user.roles and user.person is not None:
            people.append(user.person)
    return people


# ---------------------------------------------------------------------------------------------- times in notices


def _here(moment: datetime, timezone: str) -> datetime:
    """The moment in the organisation's time zone (a naive moment is UTC, as the database stores them)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(ZoneInfo(timezone))


def local_day(moment: datetime, timezone: str) -> str:
    """The day a due moment belongs to, in the organisation's time zone: a task due at 00:00 on the 1st is due
    by the end of the 31st (due dates are the end of a day)."""
    return (_here(moment, timezone) - timedelta(microseconds=1)).date().isoformat()


def opened_late(due: datetime | None, opened: datetime, timezone: str) -> str | None:
    """Why a task is overdue from the moment it opens (no task is born overdue without saying why): the date it is
    counted from had passed before it could open. None for a task that opens in time."""
    if due is None or due > opened:
        return None
    return (f"This step opened on {_here(opened, timezone).date().isoformat()}, after the date it was due (by the "
            f"end of {local_day(due, timezone)}): the date it is counted from had already passed when the step "
            "before it was done or the scheduler reached it. It shows as overdue from the start.")


def local_time(moment: datetime, timezone: str) -> str:
    """A moment as notices state it: the organisation's local date and time with the zone's name
    ('2027-02-16 09:00 ACST'), as pages show it; never bare UTC."""
    return _here(moment, timezone).strftime("%Y-%m-%d %H:%M %Z")


def due_words(due: datetime, timezone: str) -> str:
    """When something is due, in words: 'by the end of 2027-03-03' for a due date (the end of a local day, as a
    date in a diagram means), 'by 2027-03-03 16:00 ACST' for a due time (a duration counted from when it opened)."""
    if _here(due, timezone).time() == time(0, 0):
        return f"by the end of {local_day(due, timezone)}"
    return f"by {local_time(due, timezone)}"


def notify(session: Session, people: Iterable[Someone], subject: str, body: str, instance_id: int | None) -> int:
    """Queue a notice to each person (once each); returns how many were queued."""
    seen: set[int] = set()
    for person in people:
        if person.id in seen:
            continue
        seen.add(person.id)
        session.add(Notification(person_id=person.id, instance_id=instance_id, at=CLOCK.now(), subject=subject,
                                 body=body, read_at=None, emailed=False))
    return len(seen)


def send_pending(db: Database, settings: Settings, limit: int = 100) -> int:
    """Send queued notices by SMTP (NTPSWF_SMTP_URL); without it they stay in-app only."""
    if not settings.smtp_url:
        return 0
    sent = 0
    with db.unit_of_work() as uow:
        rows = list(uow.session.scalars(select(Notification).where(Notification.emailed.is_(False))
                                        .order_by(Notification.id).limit(limit)))
        if not rows:
            return 0
        try:
            with _smtp(settings.smtp_url) as smtp:
                for row in rows:
                    person = uow.session.get(Person, row.person_id)
                    if person is None or not person.email:
                        row.emailed = True
                        continue
                    msg = EmailMessage()
                    msg["From"] = settings.mail_from
                    msg["To"] = person.email
                    msg["Subject"] = row.subject
                    msg.set_content(row.body)
                    smtp.send_message(msg)
                    row.emailed = True
                    sent += 1
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("sending notifications failed (will retry): %s", exc)
        uow.commit()
    return sent


def _smtp(url: str) -> smtplib.SMTP:
    """smtp://user:pass@host:port or smtps://... (STARTTLS with ?starttls=1)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "localhost", parts.port
    if parts.scheme == "smtps":
        conn: smtplib.SMTP = smtplib.SMTP_SSL(host, port or 465, timeout=10)
    else:
        conn = smtplib.SMTP(host, port or 25, timeout=10)
        if "starttls=1" in (parts.query or ""):
            conn.starttls()
    if parts.username:
        conn.login(unquote(parts.username), unquote(parts.password or ""))
    return conn


def mark_all_read(db: Database, person_id: int) -> int:
    """Mark a person's unread notices read; returns how many."""
    count = 0
    with db.unit_of_work() as uow:
        for row in uow.session.scalars(select(Notification).where(Notification.person_id == person_id,
                                                                  Notification.read_at.is_(None))):
            row.read_at = CLOCK.now()
            count += 1
        uow.commit()
    return count
