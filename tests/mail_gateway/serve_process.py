"""``verwijsindex serve`` as a real process on loopback, a load of registrations by SMTP, and
what the database says afterwards: for the crash, wake and worker tests.

Plain classes and functions, no fixtures: any test module may import them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import smtplib
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Set
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.models import AuditEvent, InboundMessage, InboundStatus, OutboxMessage
from tests.bsns import valid_bsns
from tests.conftest import TEST_SECRET
from tests.mail_gateway.conftest import MAIL_DOMAIN, free_port, wait_for_port, wait_until

SENDER = "koppeling@ggd-groningen.example"
RECEIPT = "ontvangstbevestiging"


class Service:
    """One ``serve`` process (and, with ``workers``, its children)."""

    def __init__(self, tmp_path: Path, database_url: str, *, workers: int = 0):
        self.port = 0  # chosen at each start
        self.workers = workers
        self.env = {
            **os.environ,
            "VERWIJSINDEX_DATABASE_URL": database_url,
            "VERWIJSINDEX_SECRET_KEY": TEST_SECRET,
            "VERWIJSINDEX_MAIL_DOMAIN": MAIL_DOMAIN,
            "VERWIJSINDEX_SMTP_HOST": "127.0.0.1",
            "VERWIJSINDEX_HTTP_PORT": "0",  # no health endpoint unless a test asks for one
            "VERWIJSINDEX_RELAY_URL": f"maildir:{tmp_path / 'verzonden'}",
            # Short, so what a killed process held is taken up again quickly.
            "VERWIJSINDEX_PROCESSING_LEASE_SECONDS": "5",
            "VERWIJSINDEX_OUTBOX_LEASE_SECONDS": "5",
        }
        self.cwd = tmp_path
        self.log = tmp_path / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *roles: str) -> None:
        """``serve`` with all roles, or ``--only`` each of ``roles``; returns once SMTP listens
        (when it runs)."""
        only = [argument for role in roles for argument in ("--only", role)]
        # A fresh port each start: the last one may have become some connection's local port
        # since (the machine runs other tests), and the listener could not bind it again.
        self.port = free_port()
        self.env["VERWIJSINDEX_SMTP_PORT"] = str(self.port)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "cli", "serve"),
                    *("--workers", str(self.workers), *only),
                ],
                env={**self.env, "COLUMNS": "500"},  # whole log lines, for the tests to read
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if not roles or "smtp" in roles:
            try:
                wait_for_port(self.port, timeout=60)
            except AssertionError as exc:
                raise AssertionError(f"{exc}; the service said:\n{self.output()[-5000:]}") from None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def children(self) -> set[int]:
        """The worker processes running now (Linux: the kernel's list of children)."""
        found: set[int] = set()
        for task in Path(f"/proc/{self.pid}/task").glob("*"):
            try:
                found.update(int(pid) for pid in (task / "children").read_text().split())
            except OSError:
                continue  # the thread ended meanwhile
        return found

    def wait_for_children(self, count: int, *, besides: Set[int] = frozenset()) -> set[int]:
        """Wait until ``count`` workers run, none of them one of ``besides``; returns them."""

        def running() -> set[int] | None:
            children = self.children()
            return children if len(children) == count and not children & besides else None

        found: set[int] = wait_until(running, timeout=60, what=f"{count} worker processes")
        return found

    def kill(self, signum: int) -> int:
        assert self.process is not None
        self.process.send_signal(signum)
        return self.process.wait(90)

    def kill_all(self) -> None:
        """SIGKILL the parent and every worker at once: a machine that lost power."""
        for pid in self.children():  # first: a parent killed first would stop them cleanly
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.kill(signal.SIGKILL)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill_all()
            self.process.wait(30)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def running(pid: int) -> bool:
    """Alive, and not merely a zombie waiting for whoever adopted it to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def registration(bsn: str, number: int) -> bytes:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = f"registratie@{MAIL_DOMAIN}"
    message["Subject"] = f"Aanmelding {number}"
    message["Message-ID"] = message_id(number)
    message.set_content(
        f"BSN: {bsn}\nGeboortedatum: 01-05-2016\nGemeente: Groningen\nKenmerk: GGD-{number}\n"
    )
    return message.as_bytes(policy=SMTP)


def message_id(number: int) -> str:
    return f"<last-{number}@ggd-groningen.example>"


def send_load(
    port: int, stop_after: threading.Event, *, messages: int, connections: int
) -> set[str]:
    """``connections`` connections, one registration per mail; returns the Message-IDs
    answered 250 (until the service dies, or ``stop_after``)."""
    bsns = valid_bsns(messages, start_prefix=31_000_000)
    answered: set[str] = set()
    lock = threading.Lock()

    def sender(offset: int) -> None:
        try:
            smtp = smtplib.SMTP("127.0.0.1", port, timeout=30)
            for number in range(offset, messages, connections):
                if stop_after.is_set():
                    return
                smtp.sendmail(
                    SENDER, [f"registratie@{MAIL_DOMAIN}"], registration(bsns[number], number)
                )
                with lock:
                    answered.add(message_id(number))
        except (smtplib.SMTPException, OSError):
            return  # the service died under us: what was not answered 250 is the sender's

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return answered


class Load:
    """:func:`send_load` in a thread of its own, to kill the service in the middle of it."""

    def __init__(self, port: int, *, messages: int, connections: int):
        self.stopped = threading.Event()
        self._answered: set[str] = set()
        self._thread = threading.Thread(
            target=lambda: self._answered.update(
                send_load(port, self.stopped, messages=messages, connections=connections)
            )
        )
        self._thread.start()

    def answered(self, *, stop: bool = True) -> set[str]:
        """Stop sending (or, without ``stop``, send the rest) and return the Message-IDs
        answered 250."""
        if stop:
            self.stopped.set()
        self._thread.join(120)
        return self._answered


def state(engine: Engine) -> dict[str, Any]:
    with Session(engine) as session:
        inbound = session.exec(select(InboundMessage)).all()
        receipts = session.exec(select(OutboxMessage).where(OutboxMessage.kind == RECEIPT)).all()
        created = session.exec(
            select(AuditEvent.subject).where(AuditEvent.action == "registration-created")
        ).all()
    return {"inbound": inbound, "receipts": receipts, "created": created}


def stored_count(engine: Engine) -> int:
    return len(state(engine)["inbound"])


def all_processed(engine: Engine) -> bool:
    rows = state(engine)["inbound"]
    return bool(rows) and all(r.status != InboundStatus.RECEIVED for r in rows)


def assert_each_processed_once(engine: Engine, answered: set[str]) -> set[str]:
    """Every message answered 250 is stored, processed, registered and receipted exactly once;
    returns the Message-IDs stored."""
    found = state(engine)
    stored = {row.message_id: row for row in found["inbound"]}
    assert answered <= set(stored), "a message answered 250 was lost"
    assert {row.status for row in found["inbound"]} == {InboundStatus.PROCESSED}
    receipts = Counter(row.in_reply_to for row in found["receipts"])
    assert all(receipts[mid] == 1 for mid in stored), "one receipt per message"
    created = Counter(found["created"])
    assert len(created) == len(stored) and set(created.values()) == {1}, (
        "each registration carried out exactly once"
    )
    with Session(engine) as session:
        assert not session.exec(
            select(InboundMessage).where(col(InboundMessage.raw) != b"")
        ).all(), "processed mail keeps no BSN"
    return set(stored)
