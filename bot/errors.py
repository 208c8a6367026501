"""The one table from the core's errors to what a Slack user reads (STYLE 4).

A user error's Dutch message is safe to show as it is (the core never puts a youth's identity
in one); a system error or a bug is logged and shown as a plain apology. The core's messages
are plain text (mail shows them too), so the answer escapes them for mrkdwn here, once
(``gebruik: `/verwijsindex afwezig <van> <tot>``` must not become a link).
"""

from __future__ import annotations

from core.errors import Conflict, DomainError, InvalidInput, NotAllowed, NotFound, UserError
from core.rendering import slack_escape

APOLOGY = (
    "Er ging iets mis bij de verwijsindex; er is niets vastgelegd. Probeer het over een paar "
    "minuten opnieuw, of neem contact op met de functioneel beheerder."
)
SLACK_UNAVAILABLE = (
    "Slack is op dit moment niet bereikbaar voor de verwijsindex, zodat wij niet kunnen nagaan "
    "wie u bent. Probeer het over een paar minuten opnieuw."
)

LEADS: tuple[tuple[type[UserError], str], ...] = (
    (InvalidInput, "Dat klopt niet helemaal"),
    (NotAllowed, "Dat mag niet"),
    (NotFound, "Niet gevonden"),
    (Conflict, "Dat kan nu niet"),
    (UserError, "Dat lukte niet"),
)


def error_text(error: BaseException) -> str:
    """A Dutch sentence for a Slack user (mrkdwn); for anything but a user error, the
    apology."""
    if not isinstance(error, UserError):
        return APOLOGY
    lead = next(text for kind, text in LEADS if isinstance(error, kind))
    return f"{lead}: {slack_escape(describe(error))}"


def describe(error: DomainError) -> str:
    message = error.message.rstrip(".")
    return f"{error.field}: {message}." if error.field else f"{message}."
