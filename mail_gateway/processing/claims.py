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
    """Claim up to ``limit`` waiting messages, oldest first; returns their ids in that order.
    Claimed messages the worker does not begin at once go back with :func:`release_claims`."""
    now = now or utcnow()
    oldest = select(_c.id).where(_claimable(now)).order_by(_c.received_at, _c.id).limit(limit)
    # One statement: whoever changes a row first has it. The condition is checked again on the
    # row itself (PostgreSQL re-reads a row another transaction has just changed; SQLite's
    # immediate transaction holds off other claimers anyway), so no row is claimed twice.
    with engine.begin() as connection:
        rows = connection.execute(
            update(_inbound)
            .where(_c.id.in_(oldest.scalar_subquery()), _claimable(now))
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
    with engine.begin() as connection:
        connection.execute(
            update(_inbound)
            .where(_c.id.in_(inbound_ids), _c.status == InboundStatus.RECEIVED.value)
            .values(claimed_until=None, attempts=_c.attempts - 1)
        )
