"""Calendar dates every process reads: 'YYYY-MM-DD' parsing within the years a record may hold, whole months
forward (29 Feb -> 28 Feb), and a local time of day as an ISO timer.

Pure functions: no clock, no I/O."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The ignore covers machines without types-python-dateutil (a dev dependency); with it, it is unused.
from dateutil.relativedelta import relativedelta  # type: ignore[import-untyped, unused-ignore]

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def add_months(d: date, months: int) -> date:
    """Move ``d`` by calendar months, clamping to the month's last day (31 Jan + 1 month = 28/29 Feb)."""
    # relativedelta clamps rather than overflowing into the next month, which is what "two months
    # before 31 December" means to people: 31 October, not 1 November.
    result: date = d + relativedelta(months=months)
    return result


#: The dates any record of the service may hold: a date outside them is a typing mistake (0001-01-01, 9999-12-31),
#: and refusing it keeps every sum of days and months far from the calendar's ends.
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2199, 12, 31)


class DateOutOfRange(ValueError):
    """A well-formed date outside EARLIEST_DATE .. LATEST_DATE."""


def parse_date(value: str | date) -> date:
    """A date from ``YYYY-MM-DD`` text or a date (a datetime gives its date), between EARLIEST_DATE and
    LATEST_DATE; ValueError names a bad value (DateOutOfRange one outside the range)."""
    if isinstance(value, datetime):
        parsed = value.date()
    elif isinstance(value, date):
        parsed = value
    elif isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        try:
            parsed = date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"not a valid date (expected YYYY-MM-DD): {value!r}") from None
    else:
        raise ValueError(f"not a valid date (expected YYYY-MM-DD): {value!r}")
    if not EARLIEST_DATE <= parsed <= LATEST_DATE:
        raise DateOutOfRange(f"must be between {EARLIEST_DATE.isoformat()} and {LATEST_DATE.isoformat()}")
    return parsed


def to_iso_timer(d: date, tz: str = "Australia/Darwin", at: time = time(9, 0)) -> str:
    """ISO 8601 date-time with UTC offset for a BPMN timeDate timer: ``at`` local time on day ``d``."""
    if at.tzinfo is not None:
        raise ValueError("'at' must be a local wall-clock time without tzinfo; the zone comes from 'tz'")
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone: {tz!r}") from None
    return datetime.combine(d, at, tzinfo=zone).isoformat()
