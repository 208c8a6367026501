"""The logboek: every state change and every view of a youth's data, hash-chained.

Each row's ``hash`` is SHA-256 over its own fields and the previous row's hash, so editing or
deleting any row breaks the chain from there on; ``verify_chain`` finds the first break.

Events are collected during a transaction and written in ``before_commit``: the chain's tail is
read and extended as the very last step, under an exclusive lock (PostgreSQL advisory lock;
SQLite's BEGIN IMMEDIATE already serializes writers). Taking that lock last keeps lock order
fixed, so it cannot deadlock with the youth row locks taken earlier in a command.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event, insert, text, update
from sqlalchemy import select as sa_select
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, select

from core.clock import utcnow
from core.models import AuditEvent, AuditHead

GENESIS_HASH = "0" * 64
AUDIT_LOCK_ID = 7_110_011  # arbitrary constant for pg_advisory_xact_lock
_PENDING = "audit_pending"


@dataclass(frozen=True)
class Actor:
    """Who does something, and through which channel (smtp, imap, slack, cli, system)."""

    kind: str  # professional | institution | system | municipality
    identifier: str  # e-mail, institution id, or job name
    channel: str
    professional_id: int | None = None
    institution_id: str | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.identifier}"


SYSTEM = Actor(kind="system", identifier="scheduler", channel="system")


def record(
    session: Session,
    actor: Actor,
    action: str,
    subject: str,
    *,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Queue an audit event; it is written, chained, in the same commit. Never pass identity."""
    session.info.setdefault(_PENDING, []).append(
        {
            "occurred_at": at or utcnow(),
            "actor": actor.label,
            "action": action,
            "subject": subject,
            "channel": actor.channel,
            "details": details or {},
        }
    )


@contextmanager
def savepoint(session: Session) -> Iterator[None]:
    """One item of a batch (a block of a registration mail): when it fails, its writes *and*
    the audit events it queued are undone, and the rest of the batch goes on."""
    pending = session.info.setdefault(_PENDING, [])
    mark = len(pending)
    nested = session.begin_nested()
    try:
        yield
    except BaseException:
        nested.rollback()
        del pending[mark:]
        raise
    nested.commit()


def event_hash(prev_hash: str, row: dict[str, Any]) -> str:
    payload = json.dumps(
        [
            prev_hash,
            row["occurred_at"].isoformat(timespec="microseconds"),
            row["actor"],
            row["action"],
            row["subject"],
            row["channel"],
            row["details"],
        ],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


@event.listens_for(OrmSession, "before_commit")
def _write_pending(session: OrmSession) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    session.flush()
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": AUDIT_LOCK_ID})
    head = connection.execute(sa_select(AuditHead).where(col(AuditHead.id) == 1)).first()
    prev = head.last_hash if head else GENESIS_HASH
    for row in pending:
        row["prev_hash"] = prev
        row["hash"] = prev = event_hash(prev, row)
    connection.execute(insert(AuditEvent), pending)
    last_id = connection.execute(
        sa_select(col(AuditEvent.id)).where(col(AuditEvent.hash) == prev)
    ).scalar_one()
    if head is None:
        connection.execute(
            insert(AuditHead).values(
                id=1, last_event_id=last_id, last_hash=prev, event_count=len(pending)
            )
        )
    else:
        connection.execute(
            update(AuditHead)
            .where(col(AuditHead.id) == 1)
            .values(
                last_event_id=last_id,
                last_hash=prev,
                event_count=AuditHead.event_count + len(pending),
            )
        )


@event.listens_for(OrmSession, "after_rollback")
def _drop_pending(session: OrmSession) -> None:
    session.info.pop(_PENDING, None)


@dataclass(frozen=True)
class ChainBreak:
    event_id: int
    reason: str


def _rows_in_order(session: Session, batch: int = 5000) -> Iterator[AuditEvent]:
    last_id = 0
    while True:
        rows = session.exec(
            select(AuditEvent)
            .where(col(AuditEvent.id) > last_id)
            .order_by(col(AuditEvent.id))
            .limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last_id = rows[-1].id or 0


def verify_chain(session: Session) -> tuple[int, ChainBreak | None]:
    """Walk the log in id order; return (events checked, first break or None)."""
    prev = GENESIS_HASH
    count = 0
    last_id = 0
    for row in _rows_in_order(session):
        count += 1
        last_id = row.id or 0
        if row.prev_hash != prev:
            return count, ChainBreak(last_id, "prev_hash does not match the previous event")
        expected = event_hash(prev, row.model_dump())
        if row.hash != expected:
            return count, ChainBreak(last_id, "contents were changed after writing")
        prev = row.hash
    head = session.get(AuditHead, 1)
    head_hash = head.last_hash if head else GENESIS_HASH
    head_count = head.event_count if head else 0
    if head_hash != prev or head_count != count:
        return count, ChainBreak(
            last_id,
            f"the log ends after {count} events but its head records {head_count}: "
            "events were deleted",
        )
    return count, None
