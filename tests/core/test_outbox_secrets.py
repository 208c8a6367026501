"""Secrets a notification carries, sealed in its outbox row (core.outbox_secrets): opened only
with the region's key, and dropped by the outbox once the row is sent or dead-lettered (by a
permanent failure, by its last attempt, or by a worker that never reported back) — kept while it
can still be delivered. The mail delivery worker renders a sealed link code; an unreadable seal
is a dead letter, not a mail with a hole in it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core import outbox
from core.db import transaction
from core.errors import SystemError_
from core.keyring import KeyRing
from core.models import OutboxMessage, OutboxStatus
from core.outbox import MAX_ATTEMPTS, SEALED_KEY
from core.outbox_secrets import opened_context, sealed_context
from tests.conftest import TEST_KEYRING
from tests.mail_gateway.relay_sink import RelaySink
from tests.mail_gateway.test_delivery import delivery_for

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CODE = "31415926"
OTHER_RING = KeyRing.of(b"another region's key, long enough to be one")


def _enqueue(engine: Engine, key: str, *, sealed: bool = True, ring: KeyRing = TEST_KEYRING) -> int:
    context = {
        "kind": "slack-koppelcode",
        "reference": f"K-{key}",
        "region": "Groningen",
        "recipient_name": "Karin Bakker",
        "recipient_role": "professional",
        "on_behalf_of": None,
        "asks_reply": False,
        "minutes": 15,
        "workspace": "GGD Groningen",
        **(sealed_context(ring, {"code": CODE}) if sealed else {"code": CODE}),
    }
    with transaction(engine) as session:
        assert outbox.enqueue(
            session,
            kind="slack-koppelcode",
            channel="email",
            recipient="k.bakker@jeugdhulp-noord.example",
            recipient_role="professional",
            reference=f"K-{key}",
            context=context,
            idempotency_key=key,
            now=T0,
        )
    [row] = [r for r in _rows(engine) if r.idempotency_key == key]
    assert row.id is not None
    return row.id


def _rows(engine: Engine) -> list[OutboxMessage]:
    with Session(engine) as session:
        return outbox.list_outbox(session, limit=100)


def _row(engine: Engine, notification_id: int) -> OutboxMessage:
    with Session(engine) as session:
        row = session.get(OutboxMessage, notification_id)
        assert row is not None
        return row


def _claim(engine: Engine, worker: str, now: datetime) -> list[int]:
    return [n.id for n in outbox.claim_due(engine, channel="email", worker_id=worker, now=now)]


def test_a_sealed_value_opens_with_the_regions_key_only() -> None:
    context = {"reference": "K-1", **sealed_context(TEST_KEYRING, {"code": CODE})}
    assert CODE not in repr(context) and set(context) == {"reference", SEALED_KEY}
    assert opened_context(TEST_KEYRING, context) == {"reference": "K-1", "code": CODE}
    assert opened_context(TEST_KEYRING, {"reference": "K-2"}) == {"reference": "K-2"}
    with pytest.raises(SystemError_, match="niet bekend"):
        opened_context(OTHER_RING, context)


def test_the_sealed_entry_goes_when_the_row_is_sent_or_dead_and_stays_while_it_may_go_out(
    engine: Engine,
) -> None:
    sent, dead, retried, plain = (_enqueue(engine, key) for key in ("a", "b", "c", "d"))
    clear = _enqueue(engine, "e", sealed=False)  # an unsealed row: left exactly as it was
    assert set(_claim(engine, "w1", T0)) == {sent, dead, retried, plain, clear}

    outbox.mark_sent_many(engine, [(sent, "<a@x>"), (plain, "<d@x>")], worker_id="w1", now=T0)
    outbox.mark_failed(engine, dead, worker_id="w1", error="550", permanent=True, now=T0)
    outbox.mark_failed(engine, retried, worker_id="w1", error="451", permanent=False, now=T0)
    outbox.mark_sent_many(engine, [(clear, "<e@x>")], worker_id="w1", now=T0)

    for gone in (sent, dead, plain):
        row = _row(engine, gone)
        assert row.status in (OutboxStatus.SENT, OutboxStatus.FAILED)
        assert SEALED_KEY not in row.context and "code" not in row.context
        assert row.context["workspace"] == "GGD Groningen"  # the rest of the context stays
    waiting = _row(engine, retried)
    assert waiting.status == OutboxStatus.PENDING
    assert opened_context(TEST_KEYRING, waiting.context)["code"] == CODE
    assert _row(engine, clear).context["code"] == CODE


def test_a_row_whose_worker_never_reported_back_loses_its_sealed_entry(engine: Engine) -> None:
    notification = _enqueue(engine, "a")
    moment = T0
    for _ in range(MAX_ATTEMPTS):
        assert _claim(engine, "w", moment) == [notification]
        moment += outbox.DEFAULT_LEASE + timedelta(seconds=1)  # the worker died
    assert SEALED_KEY in _row(engine, notification).context  # still deliverable until now
    assert _claim(engine, "w", moment) == []
    row = _row(engine, notification)
    assert row.status == OutboxStatus.FAILED and SEALED_KEY not in row.context


def test_the_mail_worker_renders_the_sealed_code_and_dead_letters_an_unreadable_one(
    engine: Engine, tmp_path: Path
) -> None:
    readable = _enqueue(engine, "a")
    unreadable = _enqueue(engine, "b", ring=OTHER_RING)  # sealed under a key not in the ring
    with RelaySink() as sink:
        report = delivery_for(engine, tmp_path, sink.url).deliver_batch(now=T0)
        assert (report.sent, report.failed) == (1, 1)
        [received] = sink.messages("slack-koppelcode")
    text = received.message.get_body(("plain",)).get_content()
    assert f"/verwijsindex koppel {CODE}" in text
    html = received.message.get_body(("html",)).get_content()
    assert f"<strong>{CODE}</strong>" in html
    failed = _row(engine, unreadable)
    assert failed.status == OutboxStatus.FAILED and SEALED_KEY not in failed.context
    assert (failed.last_error or "").endswith("rendering failed: SystemError_")
    assert SEALED_KEY not in _row(engine, readable).context
