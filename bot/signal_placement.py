"""Placing a stored signal form (``bot.signals`` stores it): the core command and the answer
the professional reads — the signal number, or why it was not placed. References, codes and
dates only (DOMAIN: Content-free)."""

from __future__ import annotations

from sqlmodel import Session

from bot.access import acting
from bot.context import Bot
from bot.errors import error_text
from bot.stored_submissions import StoredForm
from core.fields import collect_fields, parse_signal
from core.signals import PlaceSignal, SignalOutcome, place_signal

FORM_KIND = "signaal"


def confirmation(bot: Bot, outcome: SignalOutcome, command: PlaceSignal) -> str:
    return bot.texts.render(
        "signaal-geplaatst",
        number=outcome.number,
        own_reference=command.reference or "",
        code_label=bot.config.code_label(command.code),
        ends_on=outcome.ends_on,
        informed_party=outcome.informed_party,
        match_number=outcome.match_number or "",
        coordination_number=outcome.coordination_number or "",
    )


def place_stored_signal(session: Session, bot: Bot, form: StoredForm) -> tuple[str, str]:
    """Place the form's signal in ``session``; (the confirmation, the signal's number). A
    refusal is the core's user error."""
    command = parse_signal(collect_fields(list(form.pairs)))
    outcome = place_signal(
        command, session=session, config=bot.config, actor=acting(session, form.linked)
    )
    return confirmation(bot, outcome, command), outcome.number


def signal_refused(error: BaseException) -> str:
    return f"Het signaal is niet geplaatst. {error_text(error)}"
