"""Messages in and out: inbound mail, the outbox, and reply tokens."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary
from sqlmodel import Field, SQLModel

from core.clock import utcnow


class ReplyPurpose(StrEnum):
    COORDINATION = "coordination"
    MATCH = "match"
    SIGNAL_EXPIRY = "signal-expiry"
    # The municipality's regie (core.regie): an escalated coordination, a stalled match.
    REGIE_COORDINATION = "regie-coordination"
    REGIE_MATCH = "regie-match"
    INFORMING = "informing"  # the reminder to inform youth/parents (core.informing)


class ReplyToken(SQLModel, table=True):
    # The tokens of a subject (the App Home, a subject answered: core.replies, core.overview).
    __table_args__ = (Index("ix_replytoken_subject", "purpose", "subject_id"),)

    id: int | None = Field(default=None, primary_key=True)
    token: str = Field(max_length=64, unique=True)
    purpose: str = Field(max_length=20)
    subject_id: int  # coordination, match or signal id, by purpose
    institution_id: str | None = Field(default=None, foreign_key="institution.id", max_length=64)
    professional_id: int | None = Field(default=None, foreign_key="professional.id")
    issued_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None
    used_action: str | None = Field(default=None, max_length=40)


class InboundStatus(StrEnum):
    RECEIVED = "received"
    PROCESSED = "processed"
    IGNORED = "ignored"  # automatic mail (RFC 3834), out-of-office, ...
    FAILED = "failed"  # could not be understood: kept for an administrator


class InboundMessage(SQLModel, table=True):
    """A message as it arrived, committed before the sender hears ``250`` (ARCHITECTURE, step 1).

    ``raw`` is sealed with the region's key: registrations carry BSNs, which are never stored in
    clear. It is emptied once the message has been processed (its content then lives on as core
    state); refused and ignored mail keeps it, for an administrator, until the retention sweep.
    """

    __table_args__ = (Index("ix_inbound_status_received", "status", "received_at"),)

    id: int | None = Field(default=None, primary_key=True)
    # One message per sender, Message-ID and mailbox (mail_gateway.intake.dedupe_key): the same
    # Message-ID may come to registratie@ and antwoord+...@, or from two institutions.
    dedupe_key: str = Field(max_length=64, unique=True)
    message_id: str = Field(max_length=998, index=True)
    transport: str = Field(max_length=10)
    mail_from: str = Field(max_length=320)
    rcpt_to: str = Field(max_length=320)
    mailbox: str = Field(default="", max_length=20)
    authenticated_as: str | None = Field(default=None, max_length=64)  # SMTP AUTH institution
    size: int = 0
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    received_at: datetime = Field(default_factory=utcnow)
    status: str = Field(default=InboundStatus.RECEIVED, max_length=10)
    institution_id: str | None = Field(default=None, max_length=64)
    attempts: int = 0
    claimed_until: datetime | None = None
    processed_at: datetime | None = None
    error: str | None = None


class ImapCursor(SQLModel, table=True):
    """How far an IMAP folder has been read (RFC 3501 §2.3.1.1): a new UIDVALIDITY means the
    UIDs were renumbered, so the folder is read again from the start (Message-IDs dedupe)."""

    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(max_length=400, unique=True)  # user@host:port/folder
    uidvalidity: int
    last_uid: int = 0
    updated_at: datetime = Field(default_factory=utcnow)


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"  # dead letter: permanent failure or attempts exhausted


class Channel(StrEnum):
    EMAIL = "email"
    SLACK = "slack"


class OutboxMessage(SQLModel, table=True):
    __table_args__ = (Index("ix_outbox_due", "status", "channel", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=200, unique=True)
    kind: str = Field(max_length=40, index=True)
    channel: str = Field(default=Channel.EMAIL, max_length=10)
    recipient: str = Field(max_length=320)  # e-mail address, or Slack user/channel id
    recipient_role: str = Field(max_length=20)  # professional, stand-in, institution, ...
    professional_id: int | None = Field(default=None, foreign_key="professional.id")
    institution_id: str | None = Field(default=None, max_length=64)
    reference: str = Field(max_length=100)  # S-12, M-3, C-7, R-40, T-2: what the message is about
    context: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    # Which message carries a token (core.slack_threads.carried_by_a_slack_message).
    reply_token: str | None = Field(default=None, max_length=64, index=True)
    in_reply_to: str | None = Field(default=None, max_length=998)
    status: str = Field(default=OutboxStatus.PENDING, max_length=10)
    attempts: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    next_attempt_at: datetime = Field(default_factory=utcnow)
    claimed_by: str | None = Field(default=None, max_length=100)
    claimed_until: datetime | None = None
    sent_at: datetime | None = None
    last_error: str | None = None
    message_id: str | None = Field(default=None, max_length=998)
