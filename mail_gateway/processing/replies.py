"""``antwoord+TOKEN@`` (or a reply found by In-Reply-To): the keyword calls the core."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session

from core import audit
from core.config import CoreConfig
from core.errors import UserError
from core.outbox import reply_token_answered
from core.replies import answer
from mail_gateway.context import Gateway
from mail_gateway.parsing.mime import ParsedMail
from mail_gateway.parsing.reply import extract_reply, parse_reply_command
from mail_gateway.processing.handler import Handler, Opened
from mail_gateway.processing.receipts import Outcome

KEYWORDS_HINT = (
    "Antwoord met één woord op de eerste regel: AKKOORD, WEIGER <reden>, OVERDRAGEN "
    "<instelling-id>, CONTACT GELEGD, VERLENG [maanden], GEINFORMEERD of TOESTEMMING "
    "GEVRAAGD|GEGEVEN|GEWEIGERD (de gemeente: REGIE, AANWIJZEN <instelling-id> of AFGEROND "
    "<toelichting>) — welke passen, staat in het bericht waarop u antwoordt."
)


def token_from_thread(session: Session, mail: ParsedMail) -> str | None:
    """The fallback when a reply reached another of our addresses: the notification it
    answers, found by the Message-IDs it refers to."""
    referenced = [mail.in_reply_to, *reversed(mail.references)]
    ids = [m for m in referenced if m]
    if not ids:
        return None
    return reply_token_answered(session, ids)


def answer_reply(
    session: Session,
    config: CoreConfig,
    mail: ParsedMail,
    token: str,
    sender: str,
    channel: str,
    outcome: Outcome,
    now: datetime,
) -> None:
    try:
        action = parse_reply_command(extract_reply(mail.text))
        with audit.savepoint(session):
            outcome.confirmation = answer(
                token,
                action,
                sender=sender,
                channel=channel,
                session=session,
                config=config,
                now=now,
            )
    except UserError as error:
        outcome.problems.append(error.message)
        outcome.hint = KEYWORDS_HINT


class Replies(Handler[None]):
    """Keyword answers, each in a savepoint: one reply that is refused leaves the others."""

    def handle(
        self,
        session: Session,
        gateway: Gateway,
        items: Sequence[Opened],
        prepared: Sequence[None],
        outcomes: Sequence[Outcome],
        now: datetime,
    ) -> None:
        for item, outcome in zip(items, outcomes, strict=True):
            answer_reply(
                session,
                gateway.config,
                item.mail,
                item.token,
                item.stored.mail_from,
                "email",
                outcome,
                now,
            )
