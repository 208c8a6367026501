"""The outbox: idempotent enqueue, claims with leases, retries, dead letters, the logboek, and
several workers at once (PostgreSQL and SQLite)."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core import outbox
from core.audit import Actor, verify_chain
from core.clock import utcnow
from core.db import transaction
from core.errors import Conflict, NotFound
from core.models import AuditEvent, OutboxMessage, OutboxStatus
from core.outbox import (
    MAX_ATTEMPTS,
    DeliveryReport,
    OutboundNotification,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
LEASE = outbox.DEFAULT_LEASE
SECRET = "Jantje de Vries, geboren 1-1-2012"  # context a template may see; logs and logboek not
ADMIN = Actor(kind="professional", identifier="beheer@example.org", channel="cli")


def _enqueue(
    engine: Engine,
    key: str,
    *,
    channel: str = "email",
    kind: str = "match",
    reference: str = "M-1",
    now: datetime = T0,
) -> int:
    with transaction(engine) as session:
        added = outbox.enqueue(
            session,
            kind=kind,
            channel=channel,
            recipient="hulp@example.org",
            recipient_role="professional",
            reference=reference,
            context={"note": SECRET},
            idempotency_key=key,
            now=now,
        )
        assert added
        row = session.exec(select(OutboxMessage).where(OutboxMessage.idempotency_key == key)).one()
        assert row.id is not None
        return row.id


def _row(engine: Engine, notification_id: int) -> OutboxMessage:
    with Session(engine) as session:
        row = session.get(OutboxMessage, notification_id)
        assert row is not None
        return row


def _events(engine: Engine, action: str) -> list[AuditEvent]:
    with Session(engine) as session:
        query = select(AuditEvent).where(AuditEvent.action == action).order_by(col(AuditEvent.id))
        return list(session.exec(query).all())


def _assert_chain_intact(engine: Engine) -> None:
    with Session(engine) as session:
        _, chain_break = verify_chain(session)
    assert chain_break is None


def _claim(
    engine: Engine, worker: str = "w1", *, now: datetime = T0, limit: int = 20
) -> list[OutboundNotification]:
    return outbox.claim_due(engine, channel="email", worker_id=worker, limit=limit, now=now)


# -- enqueue ----------------------------------------------------------------------------------


def test_enqueue_ignores_a_duplicate_key(engine: Engine) -> None:
    def add(session: Session, key: str) -> bool:
        return outbox.enqueue(
            session,
            kind="match",
            channel="email",
            recipient="hulp@example.org",
            recipient_role="professional",
            reference="M-1",
            context={"note": SECRET},
            idempotency_key=key,
        )

    with transaction(engine) as session:
        assert add(session, "match:1:professional:email") is True
        assert add(session, "match:1:professional:email") is False
    with transaction(engine) as session:
        assert add(session, "match:1:professional:email") is False
        assert add(session, "match:2:professional:email") is True
    with Session(engine) as session:
        rows = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all()
    assert [row.idempotency_key for row in rows] == [
        "match:1:professional:email",
        "match:2:professional:email",
    ]
    assert rows[0].status == OutboxStatus.PENDING
    assert rows[0].context == {"note": SECRET}


def test_enqueue_many_adds_a_set_at_once_and_only_what_is_new(engine: Engine) -> None:
    def note(key: str, recipient: str = "hulp@example.org") -> outbox.NewNotification:
        return outbox.NewNotification(
            kind="nieuwe-betrokkenheid",
            channel="email",
            recipient=recipient,
            recipient_role="institution",
            reference="R-1",
            context={"n": key},
            idempotency_key=key,
        )

    with transaction(engine) as session:
        assert outbox.enqueue_many(session, []) == 0
        assert outbox.enqueue_many(session, [note("k1"), note("k2"), note("k1")]) == 2
    with transaction(engine) as session:
        # Keys already there add nothing; the first of a key given twice is the one kept.
        batch = [note(f"k{i}") for i in range(1, 1200)]
        assert outbox.enqueue_many(session, batch) == 1197
    with Session(engine) as session:
        rows = session.exec(select(OutboxMessage)).all()
    assert len(rows) == 1199 and len({row.idempotency_key for row in rows}) == 1199
    assert all(row.status == OutboxStatus.PENDING for row in rows)


def test_enqueue_belongs_to_the_callers_transaction(engine: Engine) -> None:
    with pytest.raises(RuntimeError), transaction(engine) as session:
        outbox.enqueue(
            session,
            kind="match",
            channel="email",
            recipient="hulp@example.org",
            recipient_role="professional",
            reference="M-1",
            context={},
            idempotency_key="rolled-back",
        )
        raise RuntimeError("the command failed after enqueueing")
    with Session(engine) as session:
        assert session.exec(select(OutboxMessage)).all() == []


def test_enqueue_rejects_an_unknown_channel_and_an_overlong_key(engine: Engine) -> None:
    with transaction(engine) as session:
        common: dict[str, Any] = {
            "kind": "match",
            "recipient": "hulp@example.org",
            "recipient_role": "professional",
            "reference": "M-1",
            "context": {},
        }
        with pytest.raises(ValueError):
            outbox.enqueue(session, channel="fax", idempotency_key="k", **common)
        with pytest.raises(ValueError):
            outbox.enqueue(session, channel="email", idempotency_key="k" * 201, **common)


# -- claims -----------------------------------------------------------------------------------


def test_claim_honours_next_attempt_at_and_channel(engine: Engine) -> None:
    first = _enqueue(engine, "a", now=T0)
    later = _enqueue(engine, "b", now=T0 + timedelta(seconds=20))  # within the first's lease
    _enqueue(engine, "c", channel="slack", now=T0)

    assert _claim(engine, now=T0 - timedelta(seconds=1)) == []
    claimed = _claim(engine, now=T0)
    assert [n.id for n in claimed] == [first]
    assert claimed[0].attempts == 1
    assert claimed[0].context == {"note": SECRET}
    assert [n.id for n in _claim(engine, now=T0 + timedelta(seconds=20))] == [later]

    row = _row(engine, first)
    assert row.status == OutboxStatus.SENDING
    assert row.claimed_by == "w1"
    assert row.claimed_until == T0 + LEASE


def test_claim_takes_the_oldest_first_up_to_the_limit(engine: Engine) -> None:
    ids = [_enqueue(engine, f"k{i}", now=T0 + timedelta(seconds=10 - i)) for i in range(5)]
    claimed = _claim(engine, now=T0 + timedelta(minutes=1), limit=3)
    assert [n.id for n in claimed] == ids[::-1][:3]


def test_expired_lease_is_claimed_again_a_live_one_is_not(engine: Engine) -> None:
    notification_id = _enqueue(engine, "a")
    assert len(_claim(engine, "w1", now=T0)) == 1

    assert _claim(engine, "w2", now=T0 + LEASE) == []  # lease still running (until, not past)
    reclaimed = _claim(engine, "w2", now=T0 + LEASE + timedelta(seconds=1))
    assert [n.id for n in reclaimed] == [notification_id]
    assert reclaimed[0].attempts == 2
    assert _row(engine, notification_id).claimed_by == "w2"


def test_mark_sent_records_the_delivery_in_the_logboek(engine: Engine) -> None:
    notification_id = _enqueue(engine, "a", reference="M-7")
    _claim(engine, "w1")
    assert outbox.mark_sent(
        engine, notification_id, worker_id="w1", message_id="<m1@example.org>", now=T0
    )

    row = _row(engine, notification_id)
    assert (row.status, row.sent_at, row.message_id) == (
        OutboxStatus.SENT,
        T0,
        "<m1@example.org>",
    )
    [event] = _events(engine, "notification-sent")
    assert event.actor == "system:delivery:w1"
    assert event.channel == "email"
    assert event.subject == f"outbox:{notification_id}"
    assert event.details == {
        "kind": "match",
        "reference": "M-7",
        "recipient_role": "professional",
        "channel": "email",
    }
    assert _claim(engine, "w2", now=T0 + timedelta(days=1)) == []  # sent is final
    _assert_chain_intact(engine)


def test_a_worker_whose_claim_was_taken_over_cannot_record_an_outcome(engine: Engine) -> None:
    notification_id = _enqueue(engine, "a")
    _claim(engine, "slow", now=T0)
    _claim(engine, "fast", now=T0 + LEASE + timedelta(seconds=1))

    assert outbox.mark_sent(engine, notification_id, worker_id="slow") is False
    status = outbox.mark_failed(
        engine, notification_id, worker_id="slow", error="timeout", permanent=True
    )
    assert status == OutboxStatus.SENDING
    row = _row(engine, notification_id)
    assert (row.status, row.claimed_by, row.last_error) == (OutboxStatus.SENDING, "fast", None)

    assert outbox.mark_sent(engine, notification_id, worker_id="fast") is True
    assert len(_events(engine, "notification-sent")) == 1
    assert _events(engine, "notification-failed") == []


def test_an_expired_claim_not_yet_taken_over_may_still_be_recorded(engine: Engine) -> None:
    notification_id = _enqueue(engine, "a")
    _claim(engine, "slow", now=T0)
    later = T0 + LEASE + timedelta(minutes=1)
    assert outbox.mark_sent(engine, notification_id, worker_id="slow", now=later) is True
    assert _claim(engine, "w2", now=later) == []


# -- failures ---------------------------------------------------------------------------------


def test_temporary_failure_backs_off_then_retries(engine: Engine) -> None:
    notification_id = _enqueue(engine, "a")
    _claim(engine, now=T0)
    status = outbox.mark_failed(
        engine, notification_id, worker_id="w1", error="421 try later", permanent=False, now=T0
    )
    assert status == OutboxStatus.PENDING

    row = _row(engine, notification_id)
    assert row.last_error == "421 try later"
    assert row.claimed_until is None
    assert T0 + timedelta(seconds=24) <= row.next_attempt_at <= T0 + timedelta(seconds=36)
    assert _claim(engine, "w2", now=T0 + timedelta(seconds=23)) == []
    [retry] = _claim(engine, "w2", now=T0 + timedelta(seconds=37))
    assert retry.attempts == 2
    assert _events(engine, "notification-failed") == []


def test_permanent_failure_is_a_dead_letter_at_once(engine: Engine) -> None:
    notification_id = _enqueue(engine, "a", reference="S-3")
    _claim(engine)
    status = outbox.mark_failed(
        engine, notification_id, worker_id="w1", error="550 no such user", permanent=True, now=T0
    )
    assert status == OutboxStatus.FAILED
    assert _row(engine, notification_id).last_error == "550 no such user"
    assert _claim(engine, "w2", now=T0 + timedelta(days=30)) == []

    [event] = _events(engine, "notification-failed")
    assert event.details == {
        "kind": "match",
        "reference": "S-3",
        "recipient_role": "professional",
        "channel": "email",
        "reason": "permanent",
        "attempts": 1,
    }
    assert SECRET not in str(event.details)
    _assert_chain_intact(engine)


def test_temporary_failures_end_as_a_dead_letter_after_max_attempts(engine: Engine) -> None:
    notification_id = _enqueue(engine, "a")
    moment = T0
    statuses = []
    for _ in range(MAX_ATTEMPTS):
        [claimed] = _claim(engine, now=moment)
        statuses.append(
            outbox.mark_failed(
                engine,
                claimed.id,
                worker_id="w1",
                error="x" * 5000,
                permanent=False,
                now=moment,
            )
        )
        moment = _row(engine, notification_id).next_attempt_at

    assert statuses == [OutboxStatus.PENDING] * (MAX_ATTEMPTS - 1) + [OutboxStatus.FAILED]
    row = _row(engine, notification_id)
    assert row.attempts == MAX_ATTEMPTS
    assert row.last_error == "x" * outbox.MAX_ERROR_LENGTH
    [event] = _events(engine, "notification-failed")
    assert event.details["reason"] == "attempts-exhausted"
    _assert_chain_intact(engine)


def test_a_row_that_keeps_killing_its_worker_ends_as_a_dead_letter(engine: Engine) -> None:
    notification_id = _enqueue(engine, "a")
    moment = T0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        [claimed] = _claim(engine, f"w{attempt}", now=moment)
        assert claimed.attempts == attempt
        moment += LEASE + timedelta(seconds=1)  # the worker died: its lease runs out

    assert _claim(engine, "w99", now=moment) == []
    row = _row(engine, notification_id)
    assert row.status == OutboxStatus.FAILED
    [event] = _events(engine, "notification-failed")
    assert event.actor == f"system:delivery:w{MAX_ATTEMPTS}"
    assert event.details["reason"] == "lease-expired"
    _assert_chain_intact(engine)


def test_mark_failed_on_an_unknown_row(engine: Engine) -> None:
    with pytest.raises(NotFound):
        outbox.mark_failed(engine, 999, worker_id="w1", error="x", permanent=True)


class _Midpoint(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2


def test_backoff_doubles_from_30_seconds_up_to_6_hours() -> None:
    nominal = [outbox.backoff(n, rng=_Midpoint()) for n in range(1, 13)]
    assert nominal[:5] == [timedelta(seconds=s) for s in (30, 60, 120, 240, 480)]
    assert nominal[-2:] == [timedelta(hours=6)] * 2
    assert nominal == sorted(nominal)

    rng = random.Random(7)
    for attempts in (1, 5, 9, 10, 12, 1000):
        for _ in range(200):
            delay = outbox.backoff(attempts, rng=rng)
            expected = outbox.backoff(attempts, rng=_Midpoint())
            assert expected * 0.8 <= delay <= min(expected * 1.2, timedelta(hours=6))


# -- deliver_due ------------------------------------------------------------------------------


def test_deliver_due_handles_each_kind_of_outcome(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    ok = _enqueue(engine, "ok", reference="M-1")
    busy = _enqueue(engine, "busy", reference="M-2")
    gone = _enqueue(engine, "gone", reference="M-3")
    bug = _enqueue(engine, "bug", reference="M-4")

    def send(notification: OutboundNotification) -> str | None:
        if notification.id == busy:
            raise TemporaryDeliveryError("421 4.3.2 busy")
        if notification.id == gone:
            raise PermanentDeliveryError("550 5.1.1 unknown")
        if notification.id == bug:
            raise KeyError("recipient_nmae")
        return f"<{notification.idempotency_key}@verwijsindex.example>"

    with caplog.at_level(logging.INFO, logger="core.outbox"):
        report = outbox.deliver_due(engine, channel="email", worker_id="w1", send=send, now=T0)

    assert report == DeliveryReport(claimed=4, sent=1, retried=2, failed=1)
    assert _row(engine, ok).message_id == "<ok@verwijsindex.example>"
    assert _row(engine, busy).status == OutboxStatus.PENDING
    assert _row(engine, gone).status == OutboxStatus.FAILED
    bug_row = _row(engine, bug)
    assert (bug_row.status, bug_row.last_error) == (
        OutboxStatus.PENDING,
        "KeyError: 'recipient_nmae'",
    )

    [unexpected] = [r for r in caplog.records if r.exc_info]
    assert f"outbox:{bug}" in unexpected.getMessage()
    assert SECRET not in caplog.text
    assert "hulp@example.org" not in caplog.text
    assert len(_events(engine, "notification-sent")) == 1
    assert len(_events(engine, "notification-failed")) == 1
    _assert_chain_intact(engine)


def test_deliver_due_records_a_failure_at_once_and_the_deliveries_together(
    engine: Engine,
) -> None:
    """A failure is committed on its own before the next send; the deliveries of the batch are
    recorded together afterwards, in one transaction with their logboek events."""
    ok = [_enqueue(engine, f"ok{i}", now=T0 + timedelta(seconds=i)) for i in range(3)]
    bad = _enqueue(engine, "bad", now=T0 + timedelta(seconds=3))
    last = _enqueue(engine, "last", now=T0 + timedelta(seconds=4))
    seen_while_sending_last: list[tuple[str, str]] = []
    commits: list[int] = []

    def count_commit(_connection: Any) -> None:
        commits.append(1)

    def send(notification: OutboundNotification) -> str | None:
        if notification.id == bad:
            raise PermanentDeliveryError("550")
        if notification.id == last:
            seen_while_sending_last.append((_row(engine, bad).status, _row(engine, ok[0]).status))
            event.listen(engine, "commit", count_commit)  # from the last send on
        return f"<{notification.idempotency_key}@verwijsindex.example>"

    try:
        report = outbox.deliver_due(
            engine, channel="email", worker_id="w1", send=send, now=T0 + timedelta(seconds=4)
        )
    finally:
        event.remove(engine, "commit", count_commit)
    assert report == DeliveryReport(claimed=5, sent=4, failed=1)
    assert seen_while_sending_last == [(OutboxStatus.FAILED, OutboxStatus.SENDING)]
    assert len(commits) == 1, "the four deliveries in one transaction"
    for notification_id in [*ok, last]:
        row = _row(engine, notification_id)
        assert row.status == OutboxStatus.SENT
        assert row.message_id == f"<{row.idempotency_key}@verwijsindex.example>"
    assert sorted(e.subject for e in _events(engine, "notification-sent")) == sorted(
        f"outbox:{i}" for i in [*ok, last]
    )
    _assert_chain_intact(engine)


def test_deliveries_made_before_a_round_breaks_off_are_still_recorded(engine: Engine) -> None:
    first = _enqueue(engine, "first", now=T0)
    _enqueue(engine, "second", now=T0 + timedelta(seconds=1))

    def send(notification: OutboundNotification) -> str | None:
        if notification.id != first:
            raise KeyboardInterrupt  # not a delivery failure: the round itself ends
        return "<first@verwijsindex.example>"

    with pytest.raises(KeyboardInterrupt):
        outbox.deliver_due(
            engine, channel="email", worker_id="w1", send=send, now=T0 + timedelta(seconds=1)
        )
    assert _row(engine, first).status == OutboxStatus.SENT
    assert len(_events(engine, "notification-sent")) == 1


def test_mark_sent_many_records_only_what_the_worker_still_holds(engine: Engine) -> None:
    mine, taken = _enqueue(engine, "mine"), _enqueue(engine, "taken")
    _claim(engine, "w1", limit=2)
    with transaction(engine) as session:  # as if w1's lease ran out and w2 claimed the row
        row = session.get(OutboxMessage, taken)
        assert row is not None
        row.claimed_by = "w2"

    recorded = outbox.mark_sent_many(
        engine, [(mine, "<m@x>"), (taken, "<t@x>")], worker_id="w1", now=T0
    )

    assert recorded == {mine}
    assert (_row(engine, mine).status, _row(engine, mine).message_id) == (
        OutboxStatus.SENT,
        "<m@x>",
    )
    assert _row(engine, taken).status == OutboxStatus.SENDING
    assert [e.subject for e in _events(engine, "notification-sent")] == [f"outbox:{mine}"]
    _assert_chain_intact(engine)


def test_renew_extends_only_the_claims_this_worker_still_holds(engine: Engine) -> None:
    sent, held, other = (_enqueue(engine, key) for key in ("sent", "held", "other"))
    _claim(engine, "w1", limit=2)
    _claim(engine, "w2")
    outbox.mark_sent(engine, sent, worker_id="w1")
    later = T0 + timedelta(seconds=20)

    renewed = outbox.renew(
        engine, [sent, held, other], worker_id="w1", lease=timedelta(seconds=30), now=later
    )

    assert renewed == 1
    assert _row(engine, held).claimed_until == later + timedelta(seconds=30)
    assert _row(engine, sent).claimed_until is None
    assert _row(engine, other).claimed_until == T0 + LEASE


def test_a_live_worker_keeps_its_claim_past_the_first_lease(engine: Engine) -> None:
    """However slow the relay, the claim is renewed while the batch is sent: nobody else gets
    its rows, and none of them is sent twice."""
    ids = [_enqueue(engine, f"k{i}", now=T0 + timedelta(seconds=i)) for i in range(3)]
    lease = timedelta(seconds=0.6)
    rival_got: list[list[OutboundNotification]] = []

    def slow_send(notification: OutboundNotification) -> str | None:
        time.sleep(0.5)  # three of these take two and a half leases
        if notification.id == ids[1]:  # the first lease is over by now
            rival_got.append(
                outbox.claim_due(engine, channel="email", worker_id="rival", lease=lease)
            )
        return None

    report = outbox.deliver_due(
        engine, channel="email", worker_id="w1", send=slow_send, lease=lease
    )

    assert report == DeliveryReport(claimed=3, sent=3)
    assert rival_got == [[]]
    assert {_row(engine, i).status for i in ids} == {OutboxStatus.SENT}
    assert [event.subject for event in _events(engine, "notification-sent")] == [
        f"outbox:{i}" for i in ids
    ]


def test_the_rest_of_the_batch_goes_back_when_the_claim_cannot_be_renewed(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [_enqueue(engine, f"k{i}", now=T0 + timedelta(seconds=i)) for i in range(3)]

    def database_away(*args: Any, **kwargs: Any) -> int:
        raise ConnectionError("database unreachable")

    monkeypatch.setattr(outbox, "renew", database_away)

    def slow_send(notification: OutboundNotification) -> str | None:
        time.sleep(0.4)  # past half the lease, with no renewal in between
        return None

    report = outbox.deliver_due(
        engine, channel="email", worker_id="w1", send=slow_send, lease=timedelta(seconds=0.6)
    )
    assert report == DeliveryReport(claimed=3, sent=1, released=2)
    for notification_id in ids[1:]:
        row = _row(engine, notification_id)
        assert (row.status, row.attempts, row.claimed_until) == (OutboxStatus.PENDING, 0, None)


# -- administration ---------------------------------------------------------------------------


def test_an_administrator_puts_a_dead_letter_back(engine: Engine) -> None:
    notification_id = _enqueue(engine, "a")
    _claim(engine)
    outbox.mark_failed(engine, notification_id, worker_id="w1", error="550", permanent=True)

    later = T0 + timedelta(days=1)
    outbox.retry_failed(engine, notification_id, actor=ADMIN, now=later)
    row = _row(engine, notification_id)
    assert (row.status, row.attempts, row.next_attempt_at) == (OutboxStatus.PENDING, 0, later)
    [event] = _events(engine, "notification-retried")
    assert (event.actor, event.channel) == ("professional:beheer@example.org", "cli")
    assert [n.id for n in _claim(engine, now=later)] == [notification_id]

    with pytest.raises(Conflict):
        outbox.retry_failed(engine, notification_id, actor=ADMIN)
    with pytest.raises(NotFound):
        outbox.retry_failed(engine, 999, actor=ADMIN)
    _assert_chain_intact(engine)


def test_list_outbox_newest_first_with_filters(engine: Engine) -> None:
    oldest = _enqueue(engine, "a", kind="match", now=T0)
    middle = _enqueue(engine, "b", kind="coordination", now=T0 + timedelta(minutes=1))
    newest = _enqueue(engine, "c", kind="match", channel="slack", now=T0 + timedelta(minutes=2))
    _claim(engine, now=T0)

    with Session(engine) as session:
        assert [r.id for r in outbox.list_outbox(session)] == [newest, middle, oldest]
        assert [r.id for r in outbox.list_outbox(session, kind="match")] == [newest, oldest]
        assert [r.id for r in outbox.list_outbox(session, channel="email")] == [middle, oldest]
        assert [r.id for r in outbox.list_outbox(session, status="sending")] == [oldest]
        assert [r.id for r in outbox.list_outbox(session, limit=1)] == [newest]


# -- several workers at once ------------------------------------------------------------------


@pytest.mark.postgres
def test_claims_pass_over_rows_another_transaction_has_locked(pg_engine: Engine) -> None:
    ids = [_enqueue(pg_engine, f"k{i}", now=T0 + timedelta(seconds=i)) for i in range(10)]
    with pg_engine.connect() as other:
        other.begin()
        other.execute(
            select(OutboxMessage.id).where(col(OutboxMessage.id).in_(ids[:3])).with_for_update()
        )
        with ThreadPoolExecutor(1) as pool:  # must not wait for the lock
            claimed = pool.submit(_claim, pg_engine, now=T0 + timedelta(minutes=1)).result(10)
        other.rollback()
    assert [n.id for n in claimed] == ids[3:]


@pytest.mark.parametrize(
    "engine_fixture", [pytest.param("pg_engine", marks=pytest.mark.postgres), "sqlite_engine"]
)
def test_four_workers_send_every_row_exactly_once(
    engine_fixture: str, request: pytest.FixtureRequest
) -> None:
    engine: Engine = request.getfixturevalue(engine_fixture)
    rows = 500
    start = utcnow() - timedelta(seconds=1)
    with transaction(engine) as session:
        for i in range(rows):
            outbox.enqueue(
                session,
                kind="match",
                channel="email",
                recipient=f"p{i}@example.org",
                recipient_role="professional",
                reference=f"M-{i}",
                context={},
                idempotency_key=f"match:{i}",
                now=start,
            )

    calls: Counter[int] = Counter()
    calls_lock = threading.Lock()
    ready = threading.Barrier(4)

    def send(notification: OutboundNotification) -> str | None:
        with calls_lock:
            calls[notification.id] += 1
        return None

    def work(worker: str) -> list[DeliveryReport]:
        ready.wait()
        reports = []
        while True:
            report = outbox.deliver_due(
                engine, channel="email", worker_id=worker, send=send, limit=7
            )
            reports.append(report)
            if report.claimed == 0:
                return reports

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(work, [f"worker-{n}" for n in range(4)]))

    assert len(calls) == rows
    assert set(calls.values()) == {1}
    reports = [report for worker_reports in results for report in worker_reports]
    assert sum(r.sent for r in reports) == rows
    assert sum(r.claimed for r in reports) == rows
    with Session(engine) as session:
        statuses = session.exec(select(OutboxMessage.status)).all()
    assert Counter(statuses) == {OutboxStatus.SENT: rows}
    assert len(_events(engine, "notification-sent")) == rows
    _assert_chain_intact(engine)
