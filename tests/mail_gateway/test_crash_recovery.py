"""Kill the service in the middle of a load and start it again: every message that was answered
``250`` is processed exactly once (issue 3, acceptance). Also: SIGTERM finishes in-flight work.

The service runs as a real process (``python -m cli serve``), fed by four persistent SMTP
connections, one registration per mail.
"""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.clock import as_utc, utcnow
from core.models import AuditEvent, InboundMessage, InboundStatus, OutboxMessage, OutboxStatus
from tests.bsns import valid_bsns
from tests.conftest import TEST_SECRET
from tests.mail_gateway.conftest import MAIL_DOMAIN, free_port, wait_for_port, wait_until
from tests.mail_gateway.relay_sink import RelaySink

SENDER = "koppeling@ggd-groningen.example"
MESSAGES = 500
CONNECTIONS = 4


class Service:
    def __init__(self, tmp_path: Path, database_url: str):
        self.port = free_port()
        self.env = {
            **os.environ,
            "VERWIJSINDEX_DATABASE_URL": database_url,
            "VERWIJSINDEX_SECRET_KEY": TEST_SECRET,
            "VERWIJSINDEX_MAIL_DOMAIN": MAIL_DOMAIN,
            "VERWIJSINDEX_SMTP_HOST": "127.0.0.1",
            "VERWIJSINDEX_SMTP_PORT": str(self.port),
            "VERWIJSINDEX_RELAY_URL": f"maildir:{tmp_path / 'verzonden'}",
            # Short, so a message claimed by the killed process is taken up again quickly.
            "VERWIJSINDEX_PROCESSING_LEASE_SECONDS": "5",
        }
        self.cwd = tmp_path
        self.log = tmp_path / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *roles: str) -> None:
        """``serve`` with all roles, or ``--only`` each of ``roles``; returns once SMTP listens
        (when it runs)."""
        only = [argument for role in roles for argument in ("--only", role)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli", "serve", *only],
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if not roles or "smtp" in roles:
            wait_for_port(self.port, timeout=60)

    def kill(self, signum: int) -> int:
        assert self.process is not None
        self.process.send_signal(signum)
        return self.process.wait(60)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)


def registration(bsn: str, number: int) -> bytes:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = f"registratie@{MAIL_DOMAIN}"
    message["Subject"] = f"Aanmelding {number}"
    message["Message-ID"] = f"<last-{number}@ggd-groningen.example>"
    message.set_content(
        f"BSN: {bsn}\nGeboortedatum: 01-05-2016\nGemeente: Groningen\nKenmerk: GGD-{number}\n"
    )
    return message.as_bytes(policy=SMTP)


def send_load(port: int, stop_after: threading.Event) -> set[str]:
    """Four connections, one registration per mail; returns the Message-IDs answered 250."""
    bsns = valid_bsns(MESSAGES, start_prefix=31_000_000)
    answered: set[str] = set()
    lock = threading.Lock()

    def sender(offset: int) -> None:
        try:
            smtp = smtplib.SMTP("127.0.0.1", port, timeout=30)
            for number in range(offset, MESSAGES, CONNECTIONS):
                if stop_after.is_set():
                    return
                smtp.sendmail(
                    SENDER, [f"registratie@{MAIL_DOMAIN}"], registration(bsns[number], number)
                )
                with lock:
                    answered.add(f"<last-{number}@ggd-groningen.example>")
        except (smtplib.SMTPException, OSError):
            return  # the service died under us: what was not answered 250 is the sender's

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return answered


def _state(engine: Engine) -> dict[str, Any]:
    with Session(engine) as session:
        inbound = session.exec(select(InboundMessage)).all()
        receipts = session.exec(
            select(OutboxMessage).where(OutboxMessage.kind == "ontvangstbevestiging")
        ).all()
        created = session.exec(
            select(AuditEvent.subject).where(AuditEvent.action == "registration-created")
        ).all()
    return {"inbound": inbound, "receipts": receipts, "created": created}


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_every_message_answered_250_is_processed_exactly_once_after_a_restart(
    tmp_path: Path, database_url: str, empty_engine: Engine, signum: int
) -> None:
    service = Service(tmp_path, database_url)
    service.start()
    try:
        stop_sending = threading.Event()
        result: dict[str, set[str]] = {}
        load = threading.Thread(
            target=lambda: result.setdefault("answered", send_load(service.port, stop_sending))
        )
        load.start()
        wait_until(
            lambda: len(_state(empty_engine)["inbound"]) >= MESSAGES // 3,
            timeout=120,
            what="a third of the load to arrive",
        )
        status = service.kill(signum)
        stop_sending.set()
        load.join(120)
        answered = result["answered"]
        if signum == signal.SIGTERM:
            assert status == 0, service.log.read_text()
        # Stored is not yet answered: flow control (mail_gateway.flow) may be holding back the
        # 250 of one stored message per connection when the kill comes.
        assert MESSAGES // 3 - CONNECTIONS <= len(answered) < MESSAGES

        service.start()

        def all_done() -> bool:
            rows = _state(empty_engine)["inbound"]
            return all(r.status != InboundStatus.RECEIVED for r in rows)

        wait_until(all_done, timeout=180, what="every stored message to be processed")
    finally:
        service.stop()
    state = _state(empty_engine)
    stored = {row.message_id: row for row in state["inbound"]}
    assert answered <= set(stored), "a message answered 250 was lost"
    assert {row.status for row in state["inbound"]} == {InboundStatus.PROCESSED}
    receipts = Counter(row.in_reply_to for row in state["receipts"])
    assert all(receipts[message_id] == 1 for message_id in stored), "one receipt per message"
    created = Counter(state["created"])
    assert len(created) == len(stored) and set(created.values()) == {1}, (
        "each registration carried out exactly once"
    )
    with Session(empty_engine) as session:
        assert not session.exec(
            select(InboundMessage).where(col(InboundMessage.raw) != b"")
        ).all(), "processed mail keeps no BSN"


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
            arrived = sink.wait_for(RECEIPTS, kind="ontvangstbevestiging", timeout=40)
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
