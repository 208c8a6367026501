"""Turn one notification into outbox rows: one per recipient and channel, each idempotent.

E-mail always; Slack too when the professional is linked to a Slack user, or the institution
has a channel in the covenant (the bot's delivery worker sends those).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from core import outbox
from core.config import CoreConfig
from core.models import Channel, OutboxMessage
from core.notifications.recipients import Recipient
from core.reply_tokens import issue_token


@dataclass(frozen=True)
class ReplyRequest:
    """The notification asks for an answer about this subject (CONTRACT §4, Replies)."""

    purpose: str
    subject_id: int


def notify(
    session: Session,
    config: CoreConfig,
    *,
    kind: str,
    recipients: Iterable[Recipient],
    reference: str,
    context: dict[str, Any],
    key: str,
    now: datetime,
    reply: ReplyRequest | None = None,
) -> int:
    """Enqueue ``kind`` for every recipient; ``key`` identifies the occasion, so the same
    occasion never notifies the same recipient twice. Returns the number of rows added."""
    rows = []
    for recipient in recipients:
        for channel, address in channels(recipient):
            if _exists(session, idempotency_key(kind, key, recipient, channel, address)):
                continue  # before a reply token is issued for nothing
            token = _token_for(session, recipient, reply, now) if reply else None
            rows.append(
                notification_row(
                    config,
                    kind=kind,
                    recipient=recipient,
                    channel=channel,
                    address=address,
                    reference=reference,
                    context=context,
                    key=key,
                    reply_token=token,
                )
            )
    return outbox.enqueue_many(session, rows, now=now)


def notification_row(
    config: CoreConfig,
    *,
    kind: str,
    recipient: Recipient,
    channel: str,
    address: str,
    reference: str,
    context: dict[str, Any],
    key: str,
    reply_token: str | None = None,
) -> outbox.NewNotification:
    """One outbox row of ``kind`` for ``recipient`` on one channel: its context with the keys
    every template relies on, and its idempotency key. Shared by :func:`notify` and the
    set-wise registration executor (core.registration_apply), which writes chain notices for
    thousands of rows at once."""
    return outbox.NewNotification(
        kind=kind,
        channel=channel,
        recipient=address,
        recipient_role=recipient.role,
        reference=reference,
        context={
            **context,
            **common_context(
                config, kind, reference, recipient, asks_reply=reply_token is not None
            ),
        },
        idempotency_key=idempotency_key(kind, key, recipient, channel, address),
        professional_id=recipient.professional_id,
        institution_id=recipient.institution_id,
        reply_token=reply_token,
    )


def common_context(
    config: CoreConfig, kind: str, reference: str, recipient: Recipient, *, asks_reply: bool
) -> dict[str, Any]:
    """Keys every template may rely on."""
    return {
        "kind": kind,
        "reference": reference,
        "region": config.covenant.region.name,
        "recipient_name": recipient.name,
        "recipient_role": recipient.role,
        "on_behalf_of": recipient.on_behalf_of,
        "asks_reply": asks_reply,
    }


def already_notified(session: Session, kind: str, key: str, recipient: Recipient) -> bool:
    """Whether ``kind`` for occasion ``key`` is in the outbox for ``recipient`` on every one of
    its channels: a job whose notification is costly to make (the monthly report's charts)
    asks first; :func:`notify` would add nothing anyway."""
    return all(
        _exists(session, idempotency_key(kind, key, recipient, channel, address))
        for channel, address in channels(recipient)
    )


def idempotency_key(kind: str, key: str, recipient: Recipient, channel: str, address: str) -> str:
    return f"{kind}:{key}:{recipient.role}:{channel}:{address}"[:200]


def channels(recipient: Recipient) -> list[tuple[str, str]]:
    channels = [(Channel.EMAIL.value, recipient.address)] if recipient.mail else []
    if recipient.slack_id:
        channels.append((Channel.SLACK.value, recipient.slack_id))
    return channels


def _exists(session: Session, idempotency_key: str) -> bool:
    return (
        session.exec(
            select(OutboxMessage.id).where(OutboxMessage.idempotency_key == idempotency_key)
        ).first()
        is not None
    )


def _token_for(session: Session, recipient: Recipient, reply: ReplyRequest, now: datetime) -> str:
    # A professional's (or stand-in's) token is personal; an institution's is for its mailbox.
    return issue_token(
        session,
        purpose=reply.purpose,
        subject_id=reply.subject_id,
        professional_id=recipient.professional_id,
        institution_id=None if recipient.professional_id else recipient.institution_id,
        now=now,
    )
