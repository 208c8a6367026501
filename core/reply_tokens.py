"""Reply tokens: ``antwoord+TOKEN@`` addresses and Slack buttons that answer a notification.

A token is issued to one institution or one professional, for one subject (a coordination, a
match, a signal), and may be used by that party only.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, timedelta

from sqlmodel import Session, select

from core.clock import as_utc, utcnow
from core.errors import Conflict, NotFound
from core.models import ReplyToken

TOKEN_LIFETIME = timedelta(days=90)


def issue_token(
    session: Session,
    *,
    purpose: str,
    subject_id: int,
    institution_id: str | None = None,
    professional_id: int | None = None,
    now: datetime | None = None,
) -> str:
    issued = now or utcnow()
    # 160 bits in lower-case base32: safe in a local part and in a URL, and unharmed by mail
    # systems that fold the case of addresses (RFC 5321 lets them treat local parts as they like).
    token = base64.b32encode(secrets.token_bytes(20)).decode().lower()
    session.add(
        ReplyToken(
            token=token,
            purpose=purpose,
            subject_id=subject_id,
            institution_id=institution_id,
            professional_id=professional_id,
            issued_at=issued,
            expires_at=issued + TOKEN_LIFETIME,
        )
    )
    return token


def find_token(session: Session, token: str) -> ReplyToken | None:
    """The token's record for a cheap early check (the SMTP listener's RCPT); what acts on it
    goes through :func:`resolve_token`."""
    return session.exec(select(ReplyToken).where(ReplyToken.token == token.strip().lower())).first()


def resolve_token(
    session: Session, token: str, *, now: datetime | None = None, reusable: bool = False
) -> ReplyToken:
    """The token's record, or a user error a transport can show as it is.

    The row stays locked until the answer commits (PostgreSQL), so two answers arriving at once
    on one token (a mail and a Slack button) cannot both be carried out. ``reusable``: the
    answer records a status that may change again (consent after a match), so a token already
    used for another answer still serves it.
    """
    row = session.exec(
        select(ReplyToken).where(ReplyToken.token == token.strip().lower()).with_for_update()
    ).first()
    if row is None:
        raise NotFound("dit antwoordadres is onbekend; antwoord op het oorspronkelijke bericht")
    if row.used_at is not None and not reusable:
        raise Conflict("op dit bericht is al geantwoord; het antwoord is eerder verwerkt")
    if as_utc(row.expires_at) < (now or utcnow()):
        raise Conflict("dit antwoordadres is verlopen; neem contact op met de verwijsindex")
    return row


def mark_used(row: ReplyToken, action: str, *, now: datetime | None = None) -> None:
    row.used_at = now or utcnow()
    row.used_action = action
