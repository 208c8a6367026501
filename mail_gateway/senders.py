"""Who may send to which mailbox: the cheap check at RCPT (CONTRACT §4).

A refusal here is an SMTP answer (``550 5.7.1``) to the connected client, never a bounce
mailed to an address that may be forged. It is not the last word: the core checks the acting
institution or professional again when it carries out the command (STYLE: authorisation in
the core), and DKIM or an upstream server's verdict is checked on the whole message
(``mail_gateway.authentication``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.regie_subjects import may_answer
from core.reply_tokens import find_token
from core.sender_directory import SenderDirectory, cached_sender_directory, sender_directory
from mail_gateway.mailboxes import Destination, Mailbox

# The one mailbox whose check reads more than the covenant: a reply's token is in the database.
NEEDS_DATABASE = frozenset({Mailbox.REPLY})


@dataclass(frozen=True)
class SenderDecision:
    allowed: bool
    institution_id: str | None = None
    professional_id: int | None = None
    reason: str = ""  # English, for the SMTP answer and the log (no message content)


def decide_without_database(
    engine: Engine, destination: Destination, mail_from: str, *, authenticated_as: str | None
) -> SenderDecision | None:
    """The decision from the covenant in memory (no query, so no thread needed), or None when
    it needs the database: a reply, or the directory not yet loaded."""
    directory = cached_sender_directory(engine)
    if directory is None or destination.mailbox in NEEDS_DATABASE:
        return None
    return _decide(directory, None, destination, mail_from, authenticated_as)


def check_sender(
    session: Session,
    destination: Destination,
    mail_from: str,
    *,
    authenticated_as: str | None = None,
) -> SenderDecision:
    directory = sender_directory(session.get_bind().engine)
    return _decide(directory, session, destination, mail_from, authenticated_as)


def _decide(
    directory: SenderDirectory,
    session: Session | None,
    destination: Destination,
    mail_from: str,
    authenticated_as: str | None,
) -> SenderDecision:
    mail_from = mail_from.strip().lower()
    if destination.mailbox is Mailbox.POSTMASTER:
        return SenderDecision(True)  # RFC 5321 §4.5.1: postmaster takes mail from anyone
    if destination.mailbox is Mailbox.REGISTRATION:
        return _registration_sender(directory, mail_from, authenticated_as)
    if destination.mailbox is Mailbox.SIGNAL:
        return _signal_sender(directory, mail_from)
    assert session is not None  # NEEDS_DATABASE
    return _reply_sender(directory, session, mail_from, destination.token or "")


def _registration_sender(
    directory: SenderDirectory, mail_from: str, authenticated_as: str | None
) -> SenderDecision:
    if authenticated_as is not None:
        # An automatic coupling that logged in speaks for its institution; its envelope sender
        # must still be one of that institution's addresses, so a leaked password cannot be
        # used to pose as someone else's mail.
        institution = directory.institution(authenticated_as)
        if (
            institution is not None
            and institution.active
            and directory.allows(institution, mail_from)
        ):
            return SenderDecision(True, institution_id=institution.id)
        return SenderDecision(False, reason="sender is not an address of the logged-in institution")
    if not mail_from:
        return SenderDecision(False, reason="a null sender cannot register")
    institution = directory.institution_for_sender(mail_from)
    if institution is None:
        return SenderDecision(False, reason="sender is not allowed for any covenant institution")
    return SenderDecision(True, institution_id=institution.id)


def _signal_sender(directory: SenderDirectory, mail_from: str) -> SenderDecision:
    professional = directory.professional(mail_from)
    if professional is None or not professional.active:
        return SenderDecision(False, reason="sender is not a covenant professional")
    if not professional.may_signal:
        return SenderDecision(False, reason="sender's team may not place signals")
    return SenderDecision(
        True, institution_id=professional.institution_id, professional_id=professional.id
    )


def _reply_sender(
    directory: SenderDirectory, session: Session, mail_from: str, token: str
) -> SenderDecision:
    """Replies: the addressee of the token, or — so an unknown or stale token still gets a
    clear answer — anyone the covenant knows. A delivery report (null sender) is taken in and
    kept, never answered (RFC 3834)."""
    if not mail_from:
        return SenderDecision(True)
    row = find_token(session, token)
    if row is not None:
        institution = directory.institution(row.institution_id)
        if institution is not None and directory.allows(institution, mail_from):
            return SenderDecision(True, institution_id=institution.id)
        addressee = directory.professionals_by_id.get(row.professional_id or 0)
        if addressee is not None and addressee.email == mail_from:
            return SenderDecision(
                True, institution_id=addressee.institution_id, professional_id=addressee.id
            )
        if may_answer(session, row.purpose, row.subject_id, mail_from):
            return SenderDecision(True)  # the municipality's contact, on its escalation
    known_professional = directory.professional(mail_from)
    if known_professional is not None and known_professional.active:
        return SenderDecision(True, institution_id=known_professional.institution_id)
    institution = directory.institution_for_sender(mail_from)
    if institution is not None:
        return SenderDecision(True, institution_id=institution.id)
    return SenderDecision(False, reason="sender is not known in the covenant")
