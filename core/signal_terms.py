"""How long a signal may live (Jeugdwet 7.1.4.5): read by the commands and the notifications."""

from __future__ import annotations

from datetime import date

from dateutil.relativedelta import relativedelta

MAX_SIGNAL_YEARS = 2  # Jeugdwet: a signal lives at most 2 years after placing


def latest_end_date(placed_on: date) -> date:
    return placed_on + relativedelta(years=MAX_SIGNAL_YEARS)
