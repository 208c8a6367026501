"""Stored inbound messages waiting to be processed: which worker takes which (a claim with a
lease), and the guarded update that records a message's outcome exactly once.

One home for both transports that store before they answer: the gateway's mail (SMTP and
IMAP, ``mail_gateway.processing``) and the Slack bot's form submissions (``bot``). Each takes
only its own queue's rows, so several workers (or several ``serve`` processes on one PostgreSQL
database) never process one message twice and a crashed worker's message is taken up again
after its lease.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, Table, and_, or_, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.clock import utcnow
from core.models import InboundMessage, InboundStatus
from core.wake import Wake, announce

DEFAULT_LEASE = timedelta(minutes=2)  # renewed while a worker works (a large CSV takes minutes)
MAX_ATTEMPTS = 5
SLACK_TRANSPORT = "slack"

_inbound: Table = InboundMessage.__table__  # type: ignore[attr-defined]
_c = _inbound.c


class InboundQueue(StrEnum):
    MAIL = "mail"  # SMTP and IMAP: the gateway's processing worker
    SLACK = "slack"  # form submissions stored by the Slack bot


def _in_queue(queue: InboundQueue) -> ColumnElement[bool]:
    if queue is InboundQueue.SLACK:
        return _c.transport == SLACK_TRANSPORT
    return _c.transport != SLACK_TRANSPORT


def _claimable(queue: InboundQueue, now: datetime) -> ColumnElement[bool]:
    return and_(
        _c.status == InboundStatus.RECEIVED.value,
        _in_queue(queue),
        or_(_c.claimed_until.is_(None), _c.claimed_until < now),
    )


def claim_next(
    engine: Engine,
    *,
    queue: InboundQueue,
    lease: timedelta = DEFAULT_LEASE,
    now: datetime | None = None,
    limit: int = 1,
) -> list[int]:
    """Claim up to ``limit`` waiting messages of ``queue``, oldest first; returns their ids in
    that order. Claimed messages the worker does not begin at once go back with
    :func:`release_claims`."""
    now = now or utcnow()
    oldest = (
        select(_c.id).where(_claimable(queue, now)).order_by(_c.received_at, _c.id).limit(limit)
    )
    # One statement: whoever changes a row first has it. The condition is checked again on the
    # row itself (PostgreSQL re-reads a row another transaction has just changed; SQLite's
    # immediate transaction holds off other claimers anyway), so no row is claimed twice.
    with engine.begin() as connection:
        rows = connection.execute(
            update(_inbound)
            .where(_c.id.in_(oldest.scalar_subquery()), _claimable(queue, now))
            .values(claimed_until=now + lease, attempts=_c.attempts + 1)
            .returning(_c.id, _c.received_at)
        ).all()
    return [inbound_id for inbound_id, _ in sorted(rows, key=lambda row: (row[1], row[0]))]


def renew_claims(engine: Engine, inbound_ids: list[int], lease: timedelta) -> None:
    """Keep holding messages that take long (a large CSV attachment, a long batch)."""
    with engine.begin() as connection:
        connection.execute(
            update(_inbound)
            .where(_c.id.in_(inbound_ids), _c.status == InboundStatus.RECEIVED.value)
            .values(claimed_until=utcnow() + lease)
        )


def release_claims(engine: Engine, inbound_ids: list[int]) -> None:
    """Hand messages back at once, not begun: for any worker to take (and not counted as an
    attempt)."""
    if not inbound_ids:
        return
    with Session(engine) as session, session.begin():
        session.execute(
            update(_inbound)
            .where(_c.id.in_(inbound_ids), _c.status == InboundStatus.RECEIVED.value)
            .values(claimed_until=None, attempts=_c.attempts - 1)
        )
        # Free again: a worker in another process may take them now, not at its next poll.
        announce(session, Wake.INBOUND)


def finish_waiting(
    session: Session,
    inbound_ids: Sequence[int],
    *,
    status: InboundStatus,
    now: datetime,
    note: str | None = None,
    erase: bool = False,
) -> bool:
    """Record the outcome of these messages in the caller's transaction; whether all of them
    were still waiting. Make it the transaction's first statement: it locks the rows, so a
    second worker's transaction finds them no longer ``received``; on ``False`` the caller rolls
    back (another worker was first). ``erase`` empties the stored bytes: their content lives on
    as core state."""
    values: dict[str, object] = {
        "status": status.value,
        "processed_at": now,
        "claimed_until": None,
        "error": note,
    }
    if erase:
        values["raw"] = b""
    result = session.execute(
        update(_inbound)
        .where(_c.id.in_(list(inbound_ids)), _c.status == InboundStatus.RECEIVED.value)
        .values(**values)
    )
    return bool(result.rowcount == len(inbound_ids))  # type: ignore[attr-defined]
