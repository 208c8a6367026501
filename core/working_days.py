"""Working days as the Algemene termijnenwet (art. 3) counts them: Monday to Friday, minus New
Year's Day, Good Friday, Easter Monday, King's Day (the day it is celebrated), Liberation Day
(5 May, every year: the law does not follow the lustrum rule of the collective agreements),
Ascension Day, Whit Monday and both Christmas days — plus the region's own closing days from
the covenant (``[region] closing_days``, e.g. a collective closing day between Christmas and New
Year).

Response times of signal codes are counted in working days (covenant ``response_working_days``);
``CoreConfig.calendar`` is the region's calendar.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from core.clock import DEFAULT_TIMEZONE, end_of_local_day, local_date

LIBERATION_DAY = (5, 5)


@lru_cache(maxsize=64)
def _statutory_holidays(year: int) -> frozenset[date]:
    """The national days of art. 3 in ``year`` (``holidays`` knows the moving feasts and where
    King's Day falls; it keeps 5 May to lustrum years, the law does not)."""
    days = set(holidays.country_holidays("NL", years=year).keys())
    days.add(date(year, *LIBERATION_DAY))
    return frozenset(days)


@dataclass(frozen=True)
class WorkingCalendar:
    """The working days of a region: the statutory ones minus its own closing days."""

    closing_days: frozenset[date] = frozenset()
    tz: ZoneInfo = DEFAULT_TIMEZONE

    @classmethod
    def for_region(cls, closing_days: Iterable[date], tz: ZoneInfo) -> WorkingCalendar:
        return cls(frozenset(closing_days), tz)

    def is_working_day(self, day: date) -> bool:
        return (
            day.weekday() < 5
            and day not in _statutory_holidays(day.year)
            and day not in self.closing_days
        )

    def add_working_days(self, day: date, count: int) -> date:
        """The date ``count`` working days after ``day`` (``day`` itself does not count)."""
        current = day
        remaining = count
        while remaining > 0:
            current += timedelta(days=1)
            if self.is_working_day(current):
                remaining -= 1
        return current

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in (start, end]."""
        count = 0
        current = start
        while current < end:
            current += timedelta(days=1)
            if self.is_working_day(current):
                count += 1
        return count

    def deadline_after(self, moment: datetime, working_days: int) -> datetime:
        """End of the ``working_days``-th working day after ``moment`` (aware UTC).

        "Within 1 working day" of a Friday-afternoon assignment means: by Monday evening (or
        Tuesday after Easter Monday), so the deadline is the end of that local calendar day.
        """
        day = self.add_working_days(local_date(moment, self.tz), working_days)
        return end_of_local_day(day, self.tz)


# The national calendar in Dutch time, for what no region configures.
NATIONAL = WorkingCalendar()


def halfway(start: datetime, end: datetime) -> datetime:
    return start + (end - start) / 2
