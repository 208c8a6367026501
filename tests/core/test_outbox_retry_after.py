"""A temporary failure that says when to come back (Slack's HTTP 429 ``Retry-After``) is
retried then, not after the outbox's own backoff; absurd values are kept within bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core import outbox
from core.db import transaction
from core.models import OutboxMessage, OutboxStatus
from core.outbox import BACKOFF_CAP, OutboundNotification, TemporaryDeliveryError

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def _enqueue(engine: Engine, key: str) -> int:
    with transaction(engine) as session:
        assert outbox.enqueue(
            session, kind="match", channel="slack", recipient="U123",
            recipient_role="professional", reference="M-1", context={}, idempotency_key=key,
            now=T0,
        )  # fmt: skip
        row = session.exec(
            select(OutboxMessage).where(OutboxMessage.idempotency_key == key)
        ).one()
        return row.id or 0


def _next_attempt(engine: Engine, row_id: int) -> tuple[str, datetime]:
    with Session(engine) as session:
        row = session.get(OutboxMessage, row_id)
        assert row is not None
        moment = row.next_attempt_at
        return row.status, moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        (timedelta(seconds=7), timedelta(seconds=7)),
        (timedelta(seconds=-5), timedelta(0)),
        (timedelta(days=3), BACKOFF_CAP),
    ],
)
def test_mark_failed_waits_as_long_as_it_was_told(
    engine: Engine, retry_after: timedelta, expected: timedelta
) -> None:
    row_id = _enqueue(engine, "k")
    [claimed] = outbox.claim_due(engine, channel="slack", worker_id="w", now=T0)
    status = outbox.mark_failed(
        engine, claimed.id, worker_id="w", error="HTTP 429", permanent=False,
        retry_after=retry_after, now=T0,
    )  # fmt: skip
    assert status == OutboxStatus.PENDING
    assert _next_attempt(engine, row_id) == ("pending", T0 + expected)


def test_deliver_due_passes_the_senders_retry_after_on(engine: Engine) -> None:
    row_id = _enqueue(engine, "k")

    def rate_limited(notification: OutboundNotification) -> str:
        raise TemporaryDeliveryError("ratelimited", retry_after=timedelta(seconds=3))

    report = outbox.deliver_due(
        engine, channel="slack", worker_id="w", send=rate_limited, now=T0
    )
    assert report.retried == 1
    assert _next_attempt(engine, row_id) == ("pending", T0 + timedelta(seconds=3))
    def claim(after: int) -> list[OutboundNotification]:
        moment = T0 + timedelta(seconds=after)
        return outbox.claim_due(engine, channel="slack", worker_id="w", now=moment)

    assert claim(2) == []
    [again] = claim(3)
    assert again.id == row_id and again.attempts == 2


def test_without_retry_after_the_backoff_applies(engine: Engine) -> None:
    row_id = _enqueue(engine, "k")
    outbox.claim_due(engine, channel="slack", worker_id="w", now=T0)
    outbox.mark_failed(engine, row_id, worker_id="w", error="x", permanent=False, now=T0)
    _, moment = _next_attempt(engine, row_id)
    low = outbox.BACKOFF_BASE * (1 - outbox.BACKOFF_JITTER)
    high = outbox.BACKOFF_BASE * (1 + outbox.BACKOFF_JITTER)
    assert T0 + low <= moment <= T0 + high
