"""Which inbound messages a processing worker takes, with a lease, so several workers (or
several ``serve`` processes on one PostgreSQL database) never process one message twice and a
crashed worker's message is taken up again."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Table, and_, or_, select, update
from sqlalchemy.engine import Engine

from core.clock import utcnow
from core.models import InboundMessage, InboundStatus

DEFAULT_LEASE = timedelta(minutes=2)  # renewed while a worker works (a large CSV takes minutes)
MAX_ATTEMPTS = 5

_inbound: Table = InboundMessage.__table__  # type: ignore[attr-defined]
_c = _inbound.c


def _claimable(now: datetime):  # type: ignore[no-untyped-def]
    return and_(
        _c.status == InboundStatus.RECEIVED.value,
        or_(_c.claimed_until.is_(None), _c.claimed_until < now),
    )


def claim_next(
    engine: Engine,
    *,
    lease: timedelta = DEFAULT_LEASE,
    now: datetime | None = None,
    limit: int = 1,
) -> list[int]:
    """Claim up to ``limit`` waiting messages, oldest first; returns their ids. One at a time by
    default: a message claimed but not yet begun would wait out its lease if the worker died."""
    now = now or utcnow()
    claimed = []
    # One short transaction: the oldest waiting rows, then a conditional update per row:
    # whoever changes it first has it (works the same on SQLite and PostgreSQL, without SKIP
    # LOCKED; on SQLite the immediate transaction holds off other claimers anyway).
    with engine.begin() as connection:
        candidates = (
            connection.execute(
                select(_c.id).where(_claimable(now)).order_by(_c.received_at, _c.id).limit(limit)
            )
            .scalars()
            .all()
        )
        for inbound_id in candidates:
            result = connection.execute(
                update(_inbound)
                .where(_c.id == inbound_id, _claimable(now))
                .values(claimed_until=now + lease, attempts=_c.attempts + 1)
            )
            if result.rowcount == 1:
                claimed.append(inbound_id)
    return claimed


def renew_claims(engine: Engine, inbound_ids: list[int], lease: timedelta) -> None:
    """Keep holding messages that take long (a large CSV attachment, a long batch)."""
    with engine.begin() as connection:
        connection.execute(
            update(_inbound)
            .where(_c.id.in_(inbound_ids), _c.status == InboundStatus.RECEIVED.value)
            .values(claimed_until=utcnow() + lease)
        )


def release_claim(engine: Engine, inbound_id: int) -> None:
    """Hand a message back at once (a clean stop before it was begun)."""
    with engine.begin() as connection:
        connection.execute(
            update(_inbound)
            .where(_c.id == inbound_id, _c.status == InboundStatus.RECEIVED.value)
            .values(claimed_until=None)
        )
