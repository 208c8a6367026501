"""Working days: Monday to Friday, minus Dutch public holidays (the ``holidays`` package).

Response times of signal codes are counted in working days (covenant ``response_working_days``).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from core.clock import DEFAULT_TIMEZONE, end_of_local_day, local_date


@lru_cache(maxsize=64)
def _dutch_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("NL", years=year).keys())


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _dutch_holidays(day.year)


def add_working_days(day: date, count: int) -> date:
    """The date ``count`` working days after ``day`` (``day`` itself does not count)."""
    current = day
    remaining = count
    while remaining > 0:
        current += timedelta(days=1)
        if is_working_day(current):
            remaining -= 1
    return current


def working_days_between(start: date, end: date) -> int:
    """Working days in (start, end]."""
    count = 0
    current = start
    while current < end:
        current += timedelta(days=1)
        if is_working_day(current):
            count += 1
    return count


def deadline_after(
    moment: datetime, working_days: int, tz: ZoneInfo = DEFAULT_TIMEZONE
) -> datetime:
    """End of the ``working_days``-th working day after ``moment`` (aware UTC).

    "Within 1 working day" of a Friday-afternoon assignment means: by Monday evening (or
    Tuesday after Easter Monday), so the deadline is the end of that local calendar day.
    """
    return end_of_local_day(add_working_days(local_date(moment, tz), working_days), tz)


def halfway(start: datetime, end: datetime) -> datetime:
    return start + (end - start) / 2
