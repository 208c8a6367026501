"""Arguments of ``/verwijsindex`` subcommands: people and dates.

A colleague is named by a Slack mention (``<@U123|naam>``: the slash command must have "Escape
channels, users, and links" switched on, see README) or by e-mail address (Slack sends a typed
address as ``<mailto:a@b|a@b>``). A mentioned user counts only when linked to a covenant
professional, the same way as the user who types (:mod:`bot.identity`).
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from slack_sdk.web.async_client import AsyncWebClient

from bot.identity import SlackIdentity
from core.errors import InvalidInput
from core.fields import parse_date
from core.free_text import quote

_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|([^>]*))?>$")
_MAILTO = re.compile(r"^<mailto:([^|>]+)(?:\|[^>]*)?>$")
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_REFERENCE = re.compile(r"^[A-Za-z]-?[0-9]+$")


async def person_email(
    identity: SlackIdentity, client: AsyncWebClient, word: str, *, field: str
) -> str:
    """The covenant e-mail address of the colleague ``word`` names."""
    mention = _MENTION.match(word)
    if mention is not None:
        email = await identity.email_of(client, mention.group(1))
        if email is None:
            # Plain text, escaped by the answer (bot.errors): the name Slack put in the mention.
            who = f"@{mention.group(2)}" if mention.group(2) else "de genoemde collega"
            raise InvalidInput(
                f"{who} is niet gekoppeld aan een hulpverlener in het convenant", field=field
            )
        return email
    mailto = _MAILTO.match(word)
    address = mailto.group(1) if mailto else word
    if _ADDRESS.match(address):
        return address.strip().lower()
    raise InvalidInput(
        f"{quote(word)} herken ik niet als collega; gebruik een @-vermelding of een e-mailadres",
        field=field,
    )


def day(word: str, *, field: str, today: date) -> date:
    """``DD-MM-JJJJ`` (or ``JJJJ-MM-DD``), ``vandaag`` or ``morgen``."""
    text = word.strip().lower()
    if text == "vandaag":
        return today
    if text == "morgen":
        return today + timedelta(days=1)
    return parse_date(word, field)


def months(word: str | None) -> int | None:
    if word is None:
        return None
    if not word.isascii() or not word.isdigit():
        raise InvalidInput("geef het aantal maanden als getal, bijvoorbeeld 6", field="maanden")
    return int(word)


def reference(word: str, letter: str, *, field: str) -> str:
    """``S-12``, ``s12`` or ``12`` as ``S-12``."""
    text = word.strip()
    if text.isascii() and text.isdigit():
        return f"{letter}-{text}"
    if _REFERENCE.match(text) and text[0].upper() == letter:
        return f"{letter}-{text.lstrip(text[0]).lstrip('-')}"
    raise InvalidInput(
        f"{quote(text, limit=20)} is geen {letter}-nummer (bijvoorbeeld {letter}-12)",
        field=field,
    )
