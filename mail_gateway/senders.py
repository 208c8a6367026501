"""Who may send to which mailbox: the cheap check at RCPT (CONTRACT §4).

A refusal here is an SMTP answer (``550 5.7.1``) to the connected client, never a bounce
mailed to an address that may be forged. It is not the last word: the core checks the acting
institution or professional again when it carries out the command (STYLE: authorisation in
the core), and DKIM or an upstream server's verdict is checked on the whole message
(``mail_gateway.authentication``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from core.actors import (
    find_professional,
    institution_for_sender,
    professional_and_team,
    sender_allowed,
)
from core.models import Institution, Professional
from core.reply_tokens import find_token
from mail_gateway.mailboxes import Destination, Mailbox


@dataclass(frozen=True)
class SenderDecision:
    allowed: bool
    institution_id: str | None = None
    professional_id: int | None = None
    reason: str = ""  # English, for the SMTP answer and the log (no message content)


def check_sender(
    session: Session,
    destination: Destination,
    mail_from: str,
    *,
    authenticated_as: str | None = None,
) -> SenderDecision:
    mail_from = mail_from.strip().lower()
    if destination.mailbox is Mailbox.POSTMASTER:
        return SenderDecision(True)  # RFC 5321 §4.5.1: postmaster takes mail from anyone
    if destination.mailbox is Mailbox.REGISTRATION:
        return _registration_sender(session, mail_from, authenticated_as)
    if destination.mailbox is Mailbox.SIGNAL:
        return _signal_sender(session, mail_from)
    return _reply_sender(session, mail_from, destination.token or "")


def _registration_sender(
    session: Session, mail_from: str, authenticated_as: str | None
) -> SenderDecision:
    if authenticated_as is not None:
        # An automatic coupling that logged in speaks for its institution; its envelope sender
        # must still be one of that institution's addresses, so a leaked password cannot be
        # used to pose as someone else's mail.
        institution = session.get(Institution, authenticated_as)
        if (
            institution is not None
            and institution.active
            and sender_allowed(institution, mail_from)
        ):
            return SenderDecision(True, institution_id=institution.id)
        return SenderDecision(False, reason="sender is not an address of the logged-in institution")
    if not mail_from:
        return SenderDecision(False, reason="a null sender cannot register")
    institution = institution_for_sender(session, mail_from)
    if institution is None:
        return SenderDecision(False, reason="sender is not allowed for any covenant institution")
    return SenderDecision(True, institution_id=institution.id)


def _signal_sender(session: Session, mail_from: str) -> SenderDecision:
    row = professional_and_team(session, mail_from)
    if row is None or not row[0].active:
        return SenderDecision(False, reason="sender is not a covenant professional")
    professional, team = row
    if not team.may_signal:
        return SenderDecision(False, reason="sender's team may not place signals")
    return SenderDecision(
        True, institution_id=professional.institution_id, professional_id=professional.id
    )


def _reply_sender(session: Session, mail_from: str, token: str) -> SenderDecision:
    """Replies: the addressee of the token, or — so an unknown or stale token still gets a
    clear answer — anyone the covenant knows. A delivery report (null sender) is taken in and
    kept, never answered (RFC 3834)."""
    if not mail_from:
        return SenderDecision(True)
    row = find_token(session, token)
    if row is not None:
        if row.institution_id:
            institution = session.get(Institution, row.institution_id)
            if institution is not None and sender_allowed(institution, mail_from):
                return SenderDecision(True, institution_id=institution.id)
        if row.professional_id:
            professional = session.get(Professional, row.professional_id)
            if professional is not None and professional.email == mail_from:
                return SenderDecision(
                    True,
                    institution_id=professional.institution_id,
                    professional_id=professional.id,
                )
    known_professional = find_professional(session, mail_from)
    if known_professional is not None and known_professional.active:
        return SenderDecision(True, institution_id=known_professional.institution_id)
    institution = institution_for_sender(session, mail_from)
    if institution is not None:
        return SenderDecision(True, institution_id=institution.id)
    return SenderDecision(False, reason="sender is not known in the covenant")
