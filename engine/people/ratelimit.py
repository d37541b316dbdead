"""A small database-backed rate limiter (sliding window); engine.people.logins builds the login throttle on it.

The limiter counts rows in `rate_limit_hit`, so every web process and host behind one database shares
the same counts (an in-memory limiter would let N gunicorn workers take N times the limit). Two
concurrent requests may both see the last free slot; the overshoot is at most the number of concurrent
requests, which is acceptable for slowing down password guessing.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from engine.core.clock import CLOCK
from engine.people.models import RateLimitHit


@dataclass(frozen=True)
class Limit:
    """At most `count` hits per `window` in one bucket."""

    count: int
    window: timedelta

    @classmethod
    def parse(cls, text: str) -> Limit:
        """'20/60' -> 20 hits per 60 seconds (how the limits are configured)."""
        count, _, seconds = text.partition("/")
        limit = cls(int(count), timedelta(seconds=int(seconds or 60)))
        if limit.count < 1 or limit.window <= timedelta(0):
            raise ValueError(f"not a rate limit: {text!r} (expected COUNT/SECONDS)")
        return limit


class RateLimited(Exception):
    """Too many requests in a bucket; `retry_after` is in whole seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


def _key(bucket: str) -> str:
    """A bucket name that fits the column (long names by their digest, so distinct names stay distinct)."""
    return bucket if len(bucket) <= 200 else "sha256:" + hashlib.sha256(bucket.encode()).hexdigest()


def _retry_after(session: Session, bucket: str, limit: Limit, now: datetime) -> int | None:
    """Seconds until the bucket has room again, or None when it has room now."""
    bucket = _key(bucket)
    since = now - limit.window
    hits = session.scalar(select(func.count()).select_from(RateLimitHit).where(
        RateLimitHit.bucket == bucket, RateLimitHit.at > since)) or 0
    if hits < limit.count:
        return None
    # The window frees up when the oldest hit that still counts falls out of it.
    oldest_counted = session.scalars(select(RateLimitHit.at).where(
        RateLimitHit.bucket == bucket, RateLimitHit.at > since).order_by(RateLimitHit.at.desc())
        .offset(limit.count - 1).limit(1)).first()
    if oldest_counted is None:  # pragma: no cover - counted above
        return 1
    return max(1, math.ceil((oldest_counted + limit.window - now).total_seconds()))


def hit(session: Session, bucket: str) -> None:
    """Count one request in `bucket`."""
    session.add(RateLimitHit(bucket=_key(bucket), at=CLOCK.now()))


def forget_old_hits(session: Session, older_than: timedelta) -> None:
    """Drop hits no window can count any more (keeps the table small)."""
    session.execute(delete(RateLimitHit).where(RateLimitHit.at < CLOCK.now() - older_than))


def check(session: Session, bucket: str, limit: Limit, message: str) -> None:
    """Raise RateLimited when `bucket` is full."""
    wait = _retry_after(session, bucket, limit, CLOCK.now())
    if wait is not None:
        raise RateLimited(message, wait)
