"""Working days (core.working_days): response times of signal codes are counted in working days,
Monday to Friday minus the days of the Algemene termijnenwet (art. 3) and the region's own
closing days, and a deadline is the end of the local day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.working_days import NATIONAL, WorkingCalendar, halfway

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
is_working_day = NATIONAL.is_working_day
add_working_days = NATIONAL.add_working_days
working_days_between = NATIONAL.working_days_between


def deadline_after(moment: datetime, days: int, tz: ZoneInfo = AMSTERDAM) -> datetime:
    return WorkingCalendar(tz=tz).deadline_after(moment, days)


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=AMSTERDAM)


def end_of_day_utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=AMSTERDAM).astimezone(UTC)


# --- which days count ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "day",
    [date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4), date(2026, 3, 5), date(2026, 3, 6)],
    ids=["monday", "tuesday", "wednesday", "thursday", "friday"],
)
def test_weekdays_outside_holidays_are_working_days(day: date) -> None:
    assert is_working_day(day)


@pytest.mark.parametrize("day", [date(2026, 3, 7), date(2026, 3, 8)], ids=["saturday", "sunday"])
def test_weekends_are_not_working_days(day: date) -> None:
    assert not is_working_day(day)


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 1, 1),  # Nieuwjaarsdag (Thursday)
        date(2026, 4, 6),  # Tweede paasdag
        date(2026, 4, 27),  # Koningsdag (Monday)
        date(2026, 5, 14),  # Hemelvaartsdag
        date(2026, 5, 25),  # Tweede pinksterdag
        date(2026, 12, 25),  # Eerste kerstdag (Friday)
        date(2025, 12, 25),  # Eerste kerstdag (Thursday)
        date(2025, 12, 26),  # Tweede kerstdag (Friday)
        date(2025, 5, 5),  # Bevrijdingsdag in a lustrum year (Monday)
        date(2026, 5, 5),  # Bevrijdingsdag in any other year too (Tuesday): art. 3
        date(2027, 5, 5),  # (Wednesday)
        date(2026, 4, 3),  # Goede Vrijdag
        date(2027, 3, 26),  # Goede Vrijdag 2027
        date(2025, 4, 21),  # Tweede paasdag 2025
        date(2025, 5, 29),  # Hemelvaartsdag 2025
        date(2025, 6, 9),  # Tweede pinksterdag 2025
    ],
    ids=str,
)
def test_dutch_public_holidays_on_weekdays_are_not_working_days(day: date) -> None:
    assert day.weekday() < 5, "the example must fall on a weekday to prove anything"
    assert not is_working_day(day)


def test_kings_day_moves_to_saturday_when_27_april_is_a_sunday() -> None:
    # 2025: 27 April is a Sunday, so Koningsdag is celebrated on Saturday 26 April; the Monday
    # after is an ordinary working day.
    assert not is_working_day(date(2025, 4, 26))
    assert is_working_day(date(2025, 4, 28))


# --- counting ------------------------------------------------------------------------------------


def test_adding_working_days_skips_the_weekend() -> None:
    friday = date(2026, 3, 6)
    assert add_working_days(friday, 1) == date(2026, 3, 9)  # Monday
    assert add_working_days(friday, 5) == date(2026, 3, 13)  # next Friday


def test_the_start_day_itself_does_not_count() -> None:
    monday = date(2026, 3, 2)
    assert add_working_days(monday, 1) == date(2026, 3, 3)


def test_adding_working_days_skips_easter_monday() -> None:
    friday_before_easter = date(2026, 4, 3)
    assert add_working_days(friday_before_easter, 1) == date(2026, 4, 7)  # Monday 6 April off


def test_adding_working_days_skips_kings_day() -> None:
    friday = date(2026, 4, 24)
    assert add_working_days(friday, 1) == date(2026, 4, 28)  # Monday 27 April is Koningsdag


def test_adding_working_days_skips_ascension_day() -> None:
    wednesday = date(2026, 5, 13)
    assert add_working_days(wednesday, 1) == date(2026, 5, 15)  # Thursday 14 May: Hemelvaart


def test_adding_working_days_skips_whit_monday() -> None:
    friday = date(2026, 5, 22)
    assert add_working_days(friday, 1) == date(2026, 5, 26)  # Monday 25 May: Pinksteren


def test_adding_working_days_skips_both_christmas_days_and_new_year() -> None:
    wednesday = date(2025, 12, 24)
    # Thu 25 and Fri 26 December, the weekend, then Mon 29, Tue 30, Wed 31, (Thu 1 January).
    assert add_working_days(wednesday, 1) == date(2025, 12, 29)
    assert add_working_days(wednesday, 4) == date(2026, 1, 2)


def test_adding_working_days_skips_liberation_day_in_a_lustrum_year() -> None:
    friday = date(2025, 5, 2)
    assert add_working_days(friday, 1) == date(2025, 5, 6)  # Monday 5 May 2025 is a day off


def test_working_days_between_counts_the_end_but_not_the_start() -> None:
    monday = date(2026, 3, 2)
    assert working_days_between(monday, monday) == 0
    assert working_days_between(monday, date(2026, 3, 3)) == 1
    assert working_days_between(monday, date(2026, 3, 9)) == 5  # across one weekend
    assert working_days_between(date(2026, 4, 24), date(2026, 4, 28)) == 1  # Koningsdag


def test_working_days_between_is_the_inverse_of_adding_working_days() -> None:
    start = date(2025, 12, 19)
    for count in range(0, 15):
        assert working_days_between(start, add_working_days(start, count)) == count


# --- deadlines -----------------------------------------------------------------------------------


def test_deadline_one_working_day_after_a_friday_is_the_end_of_monday() -> None:
    friday_afternoon = local(2026, 3, 6, 15, 30)
    due = deadline_after(friday_afternoon, 1, AMSTERDAM)
    assert due.tzinfo is not None and due.utcoffset() == timedelta(0), "aware UTC"
    assert due == datetime(2026, 3, 9, 22, 59, 59, tzinfo=UTC)  # Monday 23:59:59 CET
    assert due.astimezone(AMSTERDAM).date() == date(2026, 3, 9)


def test_deadline_accepts_a_utc_moment_and_uses_the_local_calendar_day() -> None:
    # Friday 23:30 UTC is already Saturday in Amsterdam: one working day later is still Monday.
    late_friday_utc = datetime(2026, 3, 6, 23, 30, tzinfo=UTC)
    assert deadline_after(late_friday_utc, 1, AMSTERDAM) == end_of_day_utc(date(2026, 3, 9))
    # Sunday 23:30 UTC is Monday 00:30 in Amsterdam: the deadline is the end of Tuesday.
    late_sunday_utc = datetime(2026, 3, 8, 23, 30, tzinfo=UTC)
    assert deadline_after(late_sunday_utc, 1, AMSTERDAM) == end_of_day_utc(date(2026, 3, 10))


def test_deadline_uses_summer_time_after_the_clock_change() -> None:
    friday = local(2026, 3, 27, 10)  # clocks go forward on Sunday 29 March
    assert deadline_after(friday, 1, AMSTERDAM) == datetime(2026, 3, 30, 21, 59, 59, tzinfo=UTC)


def test_a_holiday_inside_a_deadline_pushes_it_one_day() -> None:
    monday_before_ascension = local(2026, 5, 11, 9)
    # Five working days: Tue 12, Wed 13, (Thu 14 Hemelvaart), Fri 15, Mon 18, Tue 19.
    assert deadline_after(monday_before_ascension, 5, AMSTERDAM) == end_of_day_utc(
        date(2026, 5, 19)
    )
    ordinary_monday = local(2026, 3, 2, 9)
    assert deadline_after(ordinary_monday, 5, AMSTERDAM) == end_of_day_utc(date(2026, 3, 9))


def test_urgent_deadline_over_kings_day_weekend_is_the_end_of_tuesday() -> None:
    friday = local(2026, 4, 24, 14)
    assert deadline_after(friday, 1, AMSTERDAM) == end_of_day_utc(date(2026, 4, 28))


def test_the_national_calendar_counts_in_dutch_time() -> None:
    friday = local(2026, 3, 6, 15, 30)
    assert NATIONAL.tz == AMSTERDAM
    assert NATIONAL.deadline_after(friday, 1) == deadline_after(friday, 1, AMSTERDAM)


def test_liberation_day_is_a_day_off_every_year_not_only_in_lustrum_years() -> None:
    monday = date(2026, 5, 4)
    assert add_working_days(monday, 1) == date(2026, 5, 6)  # Tuesday 5 May 2026 is off


def test_the_regions_closing_days_are_skipped_too() -> None:
    closed = WorkingCalendar.for_region([date(2026, 12, 28), date(2026, 12, 29)], AMSTERDAM)
    wednesday = date(2026, 12, 23)
    # Thu 24, (Fri 25, Sat, Sun, Mon 28 and Tue 29 closed), Wed 30.
    assert NATIONAL.add_working_days(wednesday, 2) == date(2026, 12, 28)
    assert closed.add_working_days(wednesday, 2) == date(2026, 12, 30)
    assert not closed.is_working_day(date(2026, 12, 28))
    assert closed.working_days_between(wednesday, date(2026, 12, 30)) == 2


def test_halfway_lies_midway_between_two_moments() -> None:
    start = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    end = datetime(2026, 3, 4, 8, 0, tzinfo=UTC)
    assert halfway(start, end) == datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
