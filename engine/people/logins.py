"""Logging in: one throttling policy for the web and the API, and web sessions kept on the server.

Throttling (docs/security.md). Failed logins are counted in three buckets, each with a delay that grows with
the failures in its window: a username from one client address (strict: the guesser's own bucket), a client
address over every username (password spraying), and a username from anywhere (loose, and capped at a short
delay, so that a guesser elsewhere can slow the rightful user by seconds but never lock her out). A request
made while a bucket's delay runs is refused whatever the password, and is not counted. Every failed login is
audited. A successful login clears the username's bucket for that address.

Sessions. The browser's signed cookie holds a random session id; the database holds its SHA-256 with the
login, when it started and when it was last used. Logout, a password change and an administrator's "sign out
everywhere" end sessions at once; a session also ends after the idle and absolute lifetimes (settings).
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from engine.core.audit import audit
from engine.core.clock import CLOCK
from engine.core.config import Settings
from engine.core.db import Database
from engine.core.errors import NotFound
from engine.people.models import ApiToken, LoginSession, Person, RateLimitHit, User
from engine.people.ratelimit import Limit, RateLimited, check, forget_old_hits, hit
from engine.people.users import authenticate, issue_token

__all__ = [
    "LOGIN_REQUESTS_PER_CLIENT",
    "Backoff",
    "LoginPolicy",
    "attempt_login",
    "end_all_sessions",
    "end_session",
    "exchange_password_for_token",
    "login_overview",
    "session_user",
    "start_session",
]


@dataclass(frozen=True)
class Backoff:
    """`free` failures in `window` cost nothing; each one after doubles the wait, from `base` up to `cap` seconds."""

    free: int
    base_seconds: float
    cap_seconds: float
    window: timedelta

    def delay(self, failures: int) -> float:
        """Seconds to wait after the last of `failures` failures."""
        if failures < self.free:
            return 0.0
        return float(min(self.cap_seconds, self.base_seconds * 2 ** min(failures - self.free, 30)))


@dataclass(frozen=True)
class LoginPolicy:
    """The three failure buckets of docs/security.md."""

    per_username_and_client: Backoff = Backoff(free=5, base_seconds=2, cap_seconds=900, window=timedelta(minutes=15))
    per_client: Backoff = Backoff(free=100, base_seconds=2, cap_seconds=60, window=timedelta(minutes=15))
    per_username: Backoff = Backoff(free=20, base_seconds=1, cap_seconds=30, window=timedelta(minutes=15))

    @classmethod
    def with_free_failures(cls, limit: Limit) -> LoginPolicy:
        """The policy with `limit.count` free failures of one username from one address in `limit.window`."""
        return cls(per_username_and_client=Backoff(free=limit.count, base_seconds=2, cap_seconds=900,
                                                   window=limit.window))


#: Login requests (web form and API token, right or wrong) from one client address: a flood limit.
LOGIN_REQUESTS_PER_CLIENT = Limit(60, timedelta(minutes=1))


def _buckets(username: str, client: str, policy: LoginPolicy) -> list[tuple[str, Backoff]]:
    return [(f"login:failed:{username}@{client}", policy.per_username_and_client),
            (f"login:failed-client:{client}", policy.per_client),
            (f"login:failed:{username}", policy.per_username)]


def _wait(session: Session, bucket: str, backoff: Backoff, now: datetime) -> int:
    """Whole seconds the bucket still makes a login wait (0: none)."""
    failures, last = session.execute(select(func.count(), func.max(RateLimitHit.at)).where(
        RateLimitHit.bucket == _key(bucket), RateLimitHit.at > now - backoff.window)).one()
    delay = backoff.delay(failures or 0)
    if not delay or last is None:
        return 0
    remaining = (last + timedelta(seconds=delay) - now).total_seconds()
    return math.ceil(remaining) if remaining > 0 else 0


def _key(bucket: str) -> str:
    return bucket if len(bucket) <= 200 else "sha256:" + hashlib.sha256(bucket.encode()).hexdigest()


def attempt_login(db: Database, username: str, password: str, client: str, via: str,
                  policy: LoginPolicy | None = None,
                  per_client: Limit = LOGIN_REQUESTS_PER_CLIENT) -> int | None:
    """The id of the active login with this username and password, or None when they are wrong.

    Raises RateLimited, whatever the password, while one of the policy's delays runs or the client has asked
    too often; a refused request is not counted. `via` ("web", "api") is recorded with a failure."""
    policy = policy or LoginPolicy()
    # NUL can be typed into neither; PostgreSQL refuses it in text (bucket names, the audit's actor)
    username = username[:200].replace("\x00", "\ufffd")
    client = (client or "unknown")[:64].replace("\x00", "\ufffd")
    buckets = _buckets(username, client, policy)
    with db.unit_of_work() as uow:
        session = uow.session
        now = CLOCK.now()
        forget_old_hits(session, max(per_client.window, *(b.window for _, b in buckets)))
        check(session, f"login:requests:{client}", per_client,
              "too many login requests from this address; wait and try again")
        wait = max(_wait(session, bucket, backoff, now) for bucket, backoff in buckets)
        if wait:
            raise RateLimited("too many failed logins; wait and try again", wait)
        hit(session, f"login:requests:{client}")
        uow.commit()
    # The password hash is slow on purpose: check it outside a write transaction.
    with db.read() as session:
        user = authenticate(session, username, password)
        user_id = user.id if user is not None else None
    with db.unit_of_work() as uow:
        session = uow.session
        if user_id is None:
            for bucket, _ in buckets:
                hit(session, bucket)
            audit(session, None, username[:80] or "(empty)", "login_failed", via=via, client=client)
        else:
            session.execute(delete(RateLimitHit).where(RateLimitHit.bucket == _key(buckets[0][0])))
        uow.commit()
    return user_id


def exchange_password_for_token(db: Database, username: str, password: str, client: str,
                                policy: LoginPolicy | None = None,
                                per_client: Limit = LOGIN_REQUESTS_PER_CLIENT) -> tuple[str, datetime] | None:
    """A new API token for a username and password, or None when they are wrong (throttled as web logins are)."""
    user_id = attempt_login(db, username, password, client, "api", policy, per_client)
    if user_id is None:
        return None
    with db.unit_of_work() as uow:
        token = issue_token(uow.session, uow.session.get_one(User, user_id))
        uow.commit()
    return token


# ------------------------------------------------------------------------------------------------ sessions


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start_session(db: Database, user_id: int, client: str | None) -> str:
    """A new web session for a login; the answer is the id for the cookie (only its hash is stored)."""
    session_id = secrets.token_urlsafe(32)
    now = CLOCK.now()
    with db.unit_of_work() as uow:
        uow.session.add(LoginSession(token_hash=_digest(session_id), user_id=user_id, created_at=now,
                                     last_seen_at=now, client=(client or "")[:64] or None))
        uow.commit()
    return session_id


#: A session's last-seen time is written at most this often (not on every page view).
_TOUCH_EVERY = timedelta(minutes=1)


def session_user(db: Database, session_id: str, settings: Settings) -> User | None:
    """The active login of a live session, with its person loaded, detached; None when the session has ended.

    A session past its idle or absolute lifetime is ended here (recorded with the reason)."""
    now = CLOCK.now()
    with db.read() as s:
        row = s.execute(select(LoginSession, User).join(User, User.id == LoginSession.user_id)
                        .where(LoginSession.token_hash == _digest(session_id))).first()
        if row is None:
            return None
        login, user = row
        if login.ended_at is not None:
            return None
        reason = None
        if now - login.created_at >= timedelta(hours=settings.session_absolute_hours):
            reason = "absolute lifetime"
        elif now - login.last_seen_at >= timedelta(minutes=settings.session_idle_minutes):
            reason = "idle"
        elif not user.active:
            reason = "login deactivated"
        touch = reason is None and now - login.last_seen_at >= _TOUCH_EVERY
        _ = user.person
        s.expunge_all()
    if reason is not None or touch:
        with db.unit_of_work() as uow:
            values: dict[str, object] = {"last_seen_at": now}
            if reason is not None:
                values = {"ended_at": now, "end_reason": reason}
            uow.session.execute(update(LoginSession).where(LoginSession.id == login.id,
                                                           LoginSession.ended_at.is_(None)).values(**values))
            uow.commit()
    return None if reason is not None else user


def end_session(db: Database, session_id: str, reason: str = "logout") -> None:
    """End one session (logout)."""
    with db.unit_of_work() as uow:
        uow.session.execute(update(LoginSession).where(LoginSession.token_hash == _digest(session_id),
                                                       LoginSession.ended_at.is_(None))
                            .values(ended_at=CLOCK.now(), end_reason=reason))
        uow.commit()


def end_all_sessions(session: Session, user: User, reason: str) -> int:
    """End every web session of a login and revoke its API tokens (in the caller's transaction); how many ended."""
    now = CLOCK.now()
    ended = session.connection().execute(update(LoginSession).where(LoginSession.user_id == user.id,
                                                       LoginSession.ended_at.is_(None))
                            .values(ended_at=now, end_reason=reason)).rowcount
    ended += session.connection().execute(
        update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None), ApiToken.expires_at > now)
        .values(revoked_at=now)).rowcount
    return int(ended)


def login_overview(session: Session, settings: Settings) -> list[dict[str, object]]:
    """Every login with its person's name, roles, and live web sessions (count and last use), by username."""
    now = CLOCK.now()
    live = (select(LoginSession.user_id, func.count().label("n"), func.max(LoginSession.last_seen_at).label("last"))
            .where(LoginSession.ended_at.is_(None),
                   LoginSession.created_at > now - timedelta(hours=settings.session_absolute_hours),
                   LoginSession.last_seen_at > now - timedelta(minutes=settings.session_idle_minutes))
            .group_by(LoginSession.user_id).subquery())
    rows = session.execute(select(User, Person.name, live.c.n, live.c.last)
                           .outerjoin(Person, Person.id == User.person_id)
                           .outerjoin(live, live.c.user_id == User.id).order_by(User.username))
    return [{"id": user.id, "username": user.username, "name": name or user.username, "roles": list(user.roles),
             "active": user.active, "sessions": n or 0, "last_seen": last} for user, name, n, last in rows]


def sign_out_everywhere(session: Session, user_id: int, actor: str) -> tuple[str, int]:
    """An administrator ends every web session and API token of a login (audited); its username and how many
    ended. A step: the caller's unit of work commits it."""
    login = session.get(User, user_id)
    if login is None:
        raise NotFound("no such login")
    ended = end_all_sessions(session, login, "signed out by an administrator")
    audit(session, None, actor, "signed_out_everywhere", login=login.username, sessions_ended=ended)
    return login.username, ended
