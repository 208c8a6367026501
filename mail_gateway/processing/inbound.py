"""A stored inbound message as the processing steps see it, how its outcome is recorded, and
its answer: what the one-by-one path (``worker``) and the batch path (``batch``) share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, update
from sqlmodel import Session, col, select

from core import outbox
from core.actors import find_professional
from core.inbound_claims import finish_waiting
from core.models import InboundMessage, InboundStatus, Institution
from mail_gateway.context import Gateway
from mail_gateway.mailboxes import Mailbox
from mail_gateway.parsing.mime import ParsedMail
from mail_gateway.processing.receipts import (
    ERROR_REPORT,
    Addressee,
    Outcome,
    answer_notification,
)

_inbound: Table = InboundMessage.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Stored:
    """An inbound row's envelope, read once; the message itself is opened from the vault."""

    id: int
    message_id: str
    transport: str
    mail_from: str
    rcpt_to: str
    mailbox: Mailbox
    institution_id: str | None
    attempts: int


class AlreadyDone(Exception):
    """Another worker finished this message first."""


def load_waiting(session: Session, ids: Sequence[int]) -> list[tuple[Stored, bytes]]:
    """The rows among ``ids`` still waiting (``received``), in the order of ``ids``, with
    their sealed raw bytes."""
    rows = session.exec(
        select(InboundMessage).where(
            col(InboundMessage.id).in_(list(ids)),
            InboundMessage.status == InboundStatus.RECEIVED,
        )
    ).all()
    by_id = {row.id: row for row in rows}
    return [
        (
            Stored(
                row.id or 0,
                row.message_id,
                row.transport,
                row.mail_from,
                row.rcpt_to,
                Mailbox(row.mailbox),
                row.institution_id,
                row.attempts,
            ),
            row.raw,
        )
        for inbound_id in ids
        if (row := by_id.get(inbound_id)) is not None
    ]


def finish(
    session: Session,
    stored: Sequence[Stored],
    status: InboundStatus,
    now: datetime,
    note: str | None = None,
) -> None:
    """Claim the outcome of these messages for this transaction: the first statement, so the
    rows are locked and a second worker's transaction finds them no longer ``received``.
    :class:`AlreadyDone` (and the caller's transaction rolled back) when any was done."""
    ids = [message.id for message in stored]
    if not finish_waiting(session, ids, status=status, now=now, note=note):
        raise AlreadyDone


class Addressees:
    """Who the answer to a message goes to, looked up once per sender within a transaction
    (a client system's burst comes from one address)."""

    def __init__(self, session: Session):
        self.session = session
        self._known: dict[tuple[str, str | None], Addressee] = {}

    def of(self, stored: Stored) -> Addressee | None:
        if not stored.mail_from:
            return None
        key = (stored.mail_from, stored.institution_id)
        if key not in self._known:
            self._known[key] = self._look_up(stored)
        return self._known[key]

    def _look_up(self, stored: Stored) -> Addressee:
        professional = find_professional(self.session, stored.mail_from)
        if professional is not None:
            return Addressee(
                stored.mail_from, professional.name, professional.institution_id, professional.id
            )
        institution = (
            self.session.get(Institution, stored.institution_id) if stored.institution_id else None
        )
        return Addressee(
            stored.mail_from,
            institution.name if institution else stored.mail_from,
            stored.institution_id,
        )


@dataclass(frozen=True)
class Answered:
    """A message of a run with what processing it came to, for its answer."""

    stored: Stored
    mail: ParsedMail
    outcome: Outcome


def answer_all(
    session: Session,
    gateway: Gateway,
    answered: Sequence[Answered],
    now: datetime,
) -> list[str]:
    """Enqueue each message's receipt or error report (one way into the outbox, set-wise) and
    record what is kept of it; returns each message's final status."""
    addressees = Addressees(session)
    notifications: list[outbox.NewNotification] = []
    statuses: list[str] = []
    not_understood: list[int] = []
    for item in answered:
        addressee = addressees.of(item.stored)
        if addressee is None:  # no address to answer (a bounce's empty MAIL FROM)
            statuses.append(InboundStatus.PROCESSED.value)
            continue
        notification = answer_notification(
            gateway.config,
            inbound_id=item.stored.id,
            message_id=item.stored.message_id,
            addressee=addressee,
            outcome=item.outcome,
            subject=item.mail.subject or "",
        )
        notifications.append(notification)
        if notification.kind == ERROR_REPORT:
            not_understood.append(item.stored.id)
            statuses.append(InboundStatus.FAILED.value)
        else:
            statuses.append(InboundStatus.PROCESSED.value)
    outbox.enqueue_many(session, notifications, now=now)
    if not_understood:
        # Not understood: keep the message (sealed) for an administrator.
        session.execute(
            update(_inbound)
            .where(_inbound.c.id.in_(not_understood))
            .values(status=InboundStatus.FAILED.value, error="not understood")
        )
    # The rest lives on as core state: no BSN is kept in the mail store.
    kept = set(not_understood)
    erased = [item.stored.id for item in answered if item.stored.id not in kept]
    if erased:
        session.execute(update(_inbound).where(_inbound.c.id.in_(erased)).values(raw=b""))
    return statuses
