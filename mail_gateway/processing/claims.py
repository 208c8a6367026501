"""Which inbound messages a processing worker takes, with a lease, so several workers (or
several ``serve`` processes on one PostgreSQL database) never process one message twice and a
crashed worker's message is taken up again. The claim itself lives in the core
(``core.inbound_claims``), shared with the Slack bot's stored submissions; this worker takes
the mail queue (SMTP and IMAP)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from core.inbound_claims import (
    DEFAULT_LEASE,
    MAX_ATTEMPTS,
    InboundQueue,
    release_claims,
    renew_claims,
)
from core.inbound_claims import claim_next as _claim_queue

__all__ = [
    "BATCH_SIZE",
    "DEFAULT_LEASE",
    "MAX_ATTEMPTS",
    "claim_next",
    "release_claims",
    "renew_claims",
]

# Messages a worker claims at once (one run); a handler may take fewer together. A larger batch
# saves little more and holds SQLite's writer longer. The listener's flow control holds its
# answers at one run of backlog (mail_gateway.flow).
BATCH_SIZE = 50


def claim_next(
    engine: Engine,
    *,
    lease: timedelta = DEFAULT_LEASE,
    now: datetime | None = None,
    limit: int = 1,
) -> list[int]:
    """Claim up to ``limit`` waiting mails, oldest first (``core.inbound_claims.claim_next``)."""
    return _claim_queue(engine, queue=InboundQueue.MAIL, lease=lease, now=now, limit=limit)
