"""Time in the core: aware UTC everywhere (SQLModel stores it so); the covenant's time zone
only to decide calendar days (end dates, working days, birthdays)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

DEFAULT_TIMEZONE = ZoneInfo("Europe/Amsterdam")


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """Aware UTC; a naive value is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def local_date(moment: datetime, tz: ZoneInfo = DEFAULT_TIMEZONE) -> date:
    return as_utc(moment).astimezone(tz).date()


def end_of_local_day(day: date, tz: ZoneInfo = DEFAULT_TIMEZONE) -> datetime:
    return datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=tz).astimezone(UTC)


def start_of_local_day(day: date, tz: ZoneInfo = DEFAULT_TIMEZONE) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
