"""Flow control for the SMTP listener: a sender that delivers faster than the gateway can
process and answer is slowed to its pace, instead of building a queue whose receipts arrive
minutes late (the idea of Postfix's ``in_flow_delay``).

The backlog is the work accepted mail has still to cause: stored messages not yet processed,
plus e-mail notifications due to be sent now (a notification waiting for its retry after a
failure does not count, so a relay that is down does not slow the intake). When the backlog is
over ``limit``, the ``250`` for a new message is held until it is back at the limit, for at most
``max_delay`` seconds. The message is committed before the wait, so nothing is at risk: a sender
that gives up waiting sends it again, and the retry is recognised by its Message-ID. Nothing is
ever refused for being busy, and a listener whose workers are elsewhere or stopped holds each
answer ``max_delay`` at most. The backlog is counted in the database (so workers in other
processes count too), at most once per ``refresh`` seconds for all sessions together.

Why not simply answer at once: the intake is far cheaper than processing and delivery, so a
burst is taken in much faster than it is answered. Measured with every role in one process on
SQLite (``tests/benchmarks/bench_smtp_ingest.py``, 2,000 registrations on four connections):
without flow control the mails were taken in at 65/s, processed at 48/s and answered at 44/s,
the receipts piling up in the outbox: about 20 s from sending to receipt at p95. With it, all
three move at about 40/s (the price: some 10 % of throughput, as the work no longer happens in
separate waves) and p95 is 0.75 s.

The limit is one full processing run (``mail_gateway.processing.claims.BATCH_SIZE``): a run's
cost is mostly per run, not per mail (one transaction, its audit events, the answers enqueued
together), so a backlog held at a few mails keeps every run small. Measured with
``serve --workers 2`` on SQLite (same benchmark): a limit of 10 gave 188 msg/s, 6.3 ms CPU per
mail and p95 128 ms; 50 gives 265 msg/s, 5.2 ms and p95 218 ms; 100 no more than 50.
"""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy import Table, and_, func, select
from sqlalchemy.engine import Engine

from core.clock import utcnow
from core.db import reading
from core.models import Channel, InboundMessage, InboundStatus, OutboxMessage, OutboxStatus
from mail_gateway.processing.claims import BATCH_SIZE

log = logging.getLogger(__name__)

# One full processing run (see above): a quarter of a second of work on SQLite with two
# workers, so a receipt is still sent well within a second when senders keep coming faster
# than the gateway can answer them.
DEFAULT_LIMIT = BATCH_SIZE
# RFC 5321 §4.5.3.2.6 gives a client 10 minutes for the answer to DATA; Postfix's in_flow_delay
# is 1 s by default.
DEFAULT_MAX_DELAY = 1.0
DEFAULT_REFRESH = 0.05

_inbound: Table = InboundMessage.__table__  # type: ignore[attr-defined]
_outbox: Table = OutboxMessage.__table__  # type: ignore[attr-defined]


class Backlog:
    """What the listener's answers wait for (one per listener, shared by its sessions)."""

    def __init__(
        self,
        engine: Engine,
        *,
        limit: int | None = None,
        max_delay: float | None = None,
        refresh: float | None = None,
    ):
        self.engine = engine
        self.limit = DEFAULT_LIMIT if limit is None else limit
        self.max_delay = DEFAULT_MAX_DELAY if max_delay is None else max_delay
        self.refresh = DEFAULT_REFRESH if refresh is None else refresh
        self._count = 0
        self._counted_at = float("-inf")
        self._lock = asyncio.Lock()  # binds to the listener's loop when first used

    def count(self) -> int:
        """Stored messages not yet processed and e-mail due to go out (both by an index)."""
        unprocessed = (
            select(func.count())
            .select_from(_inbound)
            .where(_inbound.c.status == InboundStatus.RECEIVED.value)
            .scalar_subquery()
        )
        undelivered = (
            select(func.count())
            .select_from(_outbox)
            .where(
                and_(
                    _outbox.c.status == OutboxStatus.PENDING.value,
                    _outbox.c.channel == Channel.EMAIL.value,
                    _outbox.c.next_attempt_at <= utcnow(),
                )
            )
            .scalar_subquery()
        )
        with reading(self.engine).connect() as connection:
            waiting = connection.execute(select(unprocessed + undelivered)).scalar_one()
        return int(waiting)

    async def current(self) -> int:
        """The backlog, counted afresh when the last count is older than ``refresh``."""
        async with self._lock:  # one count for all the sessions that ask at once
            if time.monotonic() - self._counted_at >= self.refresh:
                self._count = await asyncio.to_thread(self.count)
                self._counted_at = time.monotonic()
            return self._count

    async def wait_for_room(self) -> float:
        """Wait while the backlog is over the limit, ``max_delay`` at most; returns how long.
        A fault while counting ends the wait: flow control never costs a message."""
        if self.max_delay <= 0:
            return 0.0
        started = time.monotonic()
        deadline = started + self.max_delay
        try:
            while await self.current() > self.limit:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                await asyncio.sleep(min(self.refresh, remaining))
        except Exception:
            log.warning("could not count the backlog; answering without waiting")
        return time.monotonic() - started
