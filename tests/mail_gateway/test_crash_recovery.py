"""Kill the service in the middle of a load and start it again: every message that was answered
``250`` is processed exactly once (issue 3, acceptance). Also: SIGTERM finishes in-flight work.
With ``--workers 2`` (issue 10.8) the same holds when the whole service (the parent and its
workers) is killed at once, and when one worker process is killed and the parent restarts it.

The service runs as a real process (``python -m cli serve``), fed by four persistent SMTP
connections, one registration per mail.
"""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.clock import as_utc, utcnow
from core.models import OutboxMessage, OutboxStatus
from mail_gateway.delivery.worker import BATCH_SIZE as DELIVERY_BATCH_SIZE
from tests.bsns import valid_bsns
from tests.mail_gateway.conftest import MAIL_DOMAIN, wait_until
from tests.mail_gateway.relay_sink import RelaySink
from tests.mail_gateway.serve_process import (
    RECEIPT,
    SENDER,
    Load,
    Service,
    all_processed,
    assert_each_processed_once,
    registration,
    running,
    stored_count,
)

MESSAGES = 500
CONNECTIONS = 4


@pytest.mark.parametrize("workers", [0, 2], ids=["one-process", "workers-2"])
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_every_message_answered_250_is_processed_exactly_once_after_a_restart(
    tmp_path: Path, database_url: str, empty_engine: Engine, signum: int, workers: int
) -> None:
    service = Service(tmp_path, database_url, workers=workers)
    service.start()
    try:
        if workers:
            service.wait_for_children(workers)
        load = Load(service.port, messages=MESSAGES, connections=CONNECTIONS)
        wait_until(
            lambda: stored_count(empty_engine) >= MESSAGES // 3,
            timeout=120,
            what="a third of the load to arrive",
        )
        if signum == signal.SIGKILL:
            service.kill_all()  # the parent and every worker at once
        else:
            children = service.children()
            assert service.kill(signal.SIGTERM) == 0, service.output()
            # The parent waited for its workers to drain before it exited.
            assert len(children) == workers
            assert not any(running(pid) for pid in children)
        answered = load.answered()
        # Stored is not yet answered: flow control (mail_gateway.flow) may be holding back the
        # 250 of one stored message per connection when the kill comes.
        assert MESSAGES // 3 - CONNECTIONS <= len(answered) < MESSAGES

        service.start()
        wait_until(
            lambda: all_processed(empty_engine),
            timeout=180,
            what="every stored message to be processed",
        )
    finally:
        service.stop()
    assert_each_processed_once(empty_engine, answered)


def test_a_killed_worker_process_is_restarted_and_every_mail_is_answered_once(
    tmp_path: Path, database_url: str, empty_engine: Engine
) -> None:
    """SIGKILL one of two worker processes in the middle of a load: the parent starts a new
    one, the mail the dead one held is taken up after its lease, every mail is processed and
    receipted once, and each receipt reaches the relay."""
    with RelaySink() as sink:
        service = Service(tmp_path, database_url, workers=2)
        service.env["VERWIJSINDEX_RELAY_URL"] = sink.url
        service.start()
        try:
            first = service.wait_for_children(2)
            load = Load(service.port, messages=MESSAGES, connections=CONNECTIONS)
            wait_until(
                lambda: stored_count(empty_engine) >= MESSAGES // 3,
                timeout=120,
                what="a third of the load to arrive",
            )
            victim = min(first)
            os.kill(victim, signal.SIGKILL)
            restarted = service.wait_for_children(2, besides={victim})
            answered = load.answered(stop=False)
            assert len(answered) == MESSAGES, "the listener in the parent took every mail"
            wait_until(
                lambda: all_processed(empty_engine),
                timeout=180,
                what="every stored message to be processed",
            )
            stored = assert_each_processed_once(empty_engine, answered)
            wait_until(
                lambda: {r.message["In-Reply-To"] for r in sink.messages(RECEIPT)} >= stored,
                timeout=120,
                what="a receipt for every mail at the relay",
            )
            arrived = sink.messages(RECEIPT)
        finally:
            service.stop()
    assert "Werkprocessen: 2 voor processing, delivery." in service.output()
    assert restarted & first == first - {victim}, "the other worker ran on"
    assert f"(pid {victim}) exited unexpectedly" in service.output()
    assert {r.message["In-Reply-To"] for r in arrived} == stored
    # One receipt per mail. The relay may see one twice only when the killed worker died
    # between the relay's 250 and recording it as sent: the same notification again, with the
    # same Message-ID (so the recipient's mail system can drop it), and only of its one batch.
    assert len({r.message["Message-ID"] for r in arrived}) == len(stored)
    assert len(arrived) - len(stored) <= DELIVERY_BATCH_SIZE


# -- notifications a killed delivery worker held (issue 9, item 13) --------------------------

OUTBOX_LEASE_SECONDS = 5
RECEIPTS = 3


def _receipts(engine: Engine) -> list[OutboxMessage]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(OutboxMessage).where(OutboxMessage.kind == "ontvangstbevestiging")
            ).all()
        )


def test_receipts_a_killed_worker_held_go_out_within_the_short_lease(
    tmp_path: Path, database_url: str, empty_engine: Engine
) -> None:
    """A delivery process claims the receipts and hangs on a relay that accepts the connection
    but never greets; it keeps renewing its claim past the lease. Killed, it leaves them
    claimed; the next delivery process sends them within seconds, not minutes."""
    intake = Service(tmp_path, database_url)
    intake.start("smtp", "processing")  # no delivery yet: the receipts wait, to be claimed at once
    bsns = valid_bsns(RECEIPTS, start_prefix=32_000_000)
    with smtplib.SMTP("127.0.0.1", intake.port, timeout=30) as smtp:
        for number, bsn in enumerate(bsns):
            smtp.sendmail(SENDER, [f"registratie@{MAIL_DOMAIN}"], registration(bsn, number))
    wait_until(lambda: len(_receipts(empty_engine)) == RECEIPTS, timeout=60, what="the receipts")
    assert intake.kill(signal.SIGTERM) == 0

    silent_relay = socket.socket()
    silent_relay.bind(("127.0.0.1", 0))
    silent_relay.listen(16)  # the kernel completes the handshakes; nobody ever answers
    stuck, restarted = Service(tmp_path, database_url), Service(tmp_path, database_url)
    for service in (stuck, restarted):
        service.env["VERWIJSINDEX_OUTBOX_LEASE_SECONDS"] = str(OUTBOX_LEASE_SECONDS)
    stuck.env["VERWIJSINDEX_RELAY_URL"] = (
        f"smtp://127.0.0.1:{silent_relay.getsockname()[1]}?timeout=300"
    )
    try:
        stuck.start("delivery")
        wait_until(
            lambda: {r.status for r in _receipts(empty_engine)} == {OutboxStatus.SENDING},
            timeout=60,
            what="the delivery process to claim the receipts",
        )
        time.sleep(OUTBOX_LEASE_SECONDS * 1.5)  # the first lease is long over by now
        for row in _receipts(empty_engine):  # still the live worker's: renewed, not up for grabs
            assert row.status == OutboxStatus.SENDING
            assert row.claimed_until is not None and as_utc(row.claimed_until) > utcnow()

        stuck.kill(signal.SIGKILL)
        killed_at = time.monotonic()
        with RelaySink() as sink:
            restarted.env["VERWIJSINDEX_RELAY_URL"] = sink.url
            restarted.start("delivery")
            arrived = sink.wait_for(RECEIPTS, kind=RECEIPT, timeout=40)
            took = time.monotonic() - killed_at
            wait_until(
                lambda: {r.status for r in _receipts(empty_engine)} == {OutboxStatus.SENT},
                timeout=10,
                what="the receipts to be recorded as sent",
            )
    finally:
        intake.stop()
        stuck.stop()
        restarted.stop()
        silent_relay.close()
    assert took < 30, f"the receipts went out {took:.0f} s after the kill"
    assert len({r.message["Message-ID"] for r in arrived}) == len(arrived) == RECEIPTS
