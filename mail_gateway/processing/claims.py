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

__all__ = ["DEFAULT_LEASE", "MAX_ATTEMPTS", "claim_next", "release_claims", "renew_claims"]


def claim_next(
    engine: Engine,
    *,
    lease: timedelta = DEFAULT_LEASE,
    now: datetime | None = None,
    limit: int = 1,
) -> list[int]:
    """Claim up to ``limit`` waiting mails, oldest first (``core.inbound_claims.claim_next``)."""
    return _claim_queue(engine, queue=InboundQueue.MAIL, lease=lease, now=now, limit=limit)
