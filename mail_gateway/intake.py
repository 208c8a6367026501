"""Accept durably (ARCHITECTURE, step 1): one function that SMTP and IMAP both call, which
commits the sealed message before the sender is told it arrived."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from enum import StrEnum

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from core.clock import utcnow
from core.models import InboundMessage
from mail_gateway.mailboxes import Destination
from mail_gateway.vault import MessageVault

log = logging.getLogger(__name__)

MAX_MESSAGE_ID = 900


class Intake(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"  # the same Message-ID to the same mailbox: a retry, taken once


@dataclass(frozen=True)
class Envelope:
    transport: str  # smtp | imap
    mail_from: str
    rcpt_to: str
    destination: Destination
    institution_id: str | None = None
    authenticated_as: str | None = None


def message_id_of(raw: bytes) -> str:
    """The Message-ID header, or one derived from the bytes: a sender that sets none and
    retries after a 451 sends the same bytes, so the retry is still recognised."""
    try:
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw[:65536], headersonly=True)
        value = str(headers.get("Message-ID", "") or "").strip()
    except Exception:  # any header the parser chokes on: fall back to the digest
        value = ""
    value = " ".join(value.split())[:MAX_MESSAGE_ID]
    if value:
        return value
    return f"<sha256-{hashlib.sha256(raw).hexdigest()}@zonder-message-id>"


def dedupe_key(message_id: str, destination: Destination) -> str:
    mailbox = f"{destination.mailbox}+{destination.token or ''}"
    return hashlib.sha256(f"{message_id}\n{mailbox}".encode()).hexdigest()


def store_inbound(
    session: Session, vault: MessageVault, raw: bytes, envelope: Envelope
) -> tuple[Intake, int]:
    """Add the message to ``session`` (the caller commits); a duplicate is reported with the
    id of the row stored the first time."""
    message_id = message_id_of(raw)
    key = dedupe_key(message_id, envelope.destination)
    existing = session.exec(
        select(InboundMessage.id).where(InboundMessage.dedupe_key == key)
    ).first()
    if existing is not None:
        return Intake.DUPLICATE, existing
    row = InboundMessage(
        dedupe_key=key,
        message_id=message_id,
        transport=envelope.transport,
        mail_from=envelope.mail_from[:320],
        rcpt_to=envelope.rcpt_to[:320],
        mailbox=envelope.destination.mailbox.value,
        institution_id=envelope.institution_id,
        authenticated_as=envelope.authenticated_as,
        size=len(raw),
        raw=vault.seal(raw),
        received_at=utcnow(),
    )
    session.add(row)
    session.flush()
    assert row.id is not None
    return Intake.STORED, row.id


def accept_message(engine: Engine, vault: MessageVault, raw: bytes, envelope: Envelope) -> Intake:
    """Store and commit; a race with a simultaneous retry of the same message counts as a
    duplicate. Raises on a database fault (the SMTP side answers 451)."""
    try:
        with Session(engine) as session:
            outcome, row_id = store_inbound(session, vault, raw, envelope)
            session.commit()
    except IntegrityError:
        return Intake.DUPLICATE
    log.info(
        "inbound message %s %s via %s to %s (%d bytes)",
        row_id,
        outcome.value,
        envelope.transport,
        envelope.destination.mailbox.value,
        len(raw),
    )
    return outcome
