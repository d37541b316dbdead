"""How times and dates read on pages: in the organisation's time zone, with its name (never bare UTC)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from flask import Flask


def _moment(value: object) -> datetime | None:
    """A datetime from a datetime or an ISO text (as the API-shaped dictionaries carry them)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def register(app: Flask, timezone: str) -> None:
    """Add the `local` (date, time and zone) and `local_date` filters for the organisation's time zone."""
    zone = ZoneInfo(timezone)

    def local(value: object, seconds: bool = False) -> str:
        moment = _moment(value)
        if moment is None:
            return "" if value is None else str(value)
        if moment.tzinfo is None:  # stored times are UTC (engine.workflow.models.UTCDateTime)
            moment = moment.replace(tzinfo=UTC)
        moment = moment.astimezone(zone)
        return moment.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")

    def local_date(value: object) -> str:
        if isinstance(value, date) and not isinstance(value, datetime):
            return value.isoformat()
        moment = _moment(value)
        if moment is None:
            return "" if value is None else str(value)[:10]
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(zone).date().isoformat()

    app.add_template_filter(local, "local")
    app.add_template_filter(local_date, "local_date")
