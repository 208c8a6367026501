"""How long a signal may live (Jeugdwet 7.1.4.5): read by the commands and the notifications."""

from __future__ import annotations

from datetime import date

from dateutil.relativedelta import relativedelta

MAX_SIGNAL_YEARS = 2  # Jeugdwet: a signal lives at most 2 years after placing


def latest_end_date(placed_on: date) -> date:
    return placed_on + relativedelta(years=MAX_SIGNAL_YEARS)


# How a signal's life ends (SignalEndedEvent.reason). DOMAIN, Lifetime: an ended signal goes to
# the archive for 5 years, except one withdrawn as unjustified or removed on a justified request
# to correct it or objection to it (Jeugdwet 7.1.4.6; AVG art. 16, 17, 21): that one is deleted,
# so it is never matched or recalled again.
UNJUSTIFIED = "unjustified"
REMOVED = "removed"
DELETED_ON_END = frozenset({UNJUSTIFIED, REMOVED})


# The reporter's institution left the covenant (issue 11.4): archived like any ended signal;
# the others hear it once per party from core.institution_departure, not per signal.
INSTITUTION_LEFT = "institution-left"


def archived_on_end(reason: str) -> bool:
    return reason not in DELETED_ON_END
