"""The IMAP poller as ``serve`` runs it, against a real Dovecot: IDLE wakes it at once, a server
without IDLE is polled, a server that goes away (cleanly with BYE, or killed) is connected to
again, a stop is prompt, and a message goes all the way to its receipt."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid
from functools import partial
from typing import Any

import pytest
from imapclient import IMAPClient
from sqlmodel import Session, select

from core.models import ImapCursor, InboundMessage, InboundStatus, OutboxMessage
from mail_gateway import imap_poller
from mail_gateway.context import Gateway
from mail_gateway.imap_poller import connect, run_imap_poller
from mail_gateway.imap_url import ImapAccount
from tests.core.conftest import BSN_A
from tests.mail_gateway.conftest import MAIL_DOMAIN, RunningGateway, wait_until
from tests.mail_gateway.dovecot import Dovecot, dovecot  # noqa: F401  (the fixture)

GGD = "verwijsindex@ggd-groningen.example"


def registration(reference: str = "GGD-1") -> tuple[str, bytes]:
    mail = EmailMessage()
    mail["From"] = GGD
    mail["To"] = f"registratie@{MAIL_DOMAIN}"
    mail["Subject"] = "Aanmelding"
    mail["Message-ID"] = message_id = make_msgid(domain="ggd-groningen.example")
    mail.set_content(
        f"BSN: {BSN_A}\nGeboortedatum: 01-05-2016\nGemeente: Groningen\nKenmerk: {reference}\n"
    )
    return message_id, mail.as_bytes(policy=SMTP)


def stored_ids(gateway: Gateway) -> set[str]:
    with Session(gateway.engine) as session:
        return set(session.exec(select(InboundMessage.message_id)).all())


def polled_once(gateway: Gateway) -> bool:
    with Session(gateway.engine) as session:
        return session.exec(select(ImapCursor)).first() is not None


class BackgroundPoller:
    """``run_imap_poller`` in its own thread and event loop, as ``serve`` would run it."""

    def __init__(self, gateway: Gateway, **options: Any):
        self.gateway = gateway
        self.options = options
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="imap-poller", daemon=True)
        self.ready = threading.Event()

    def _run(self) -> None:
        async def main() -> None:
            self.stop_event = asyncio.Event()
            self.ready.set()
            await run_imap_poller(self.gateway, stop=self.stop_event, **self.options)

        try:
            self.loop.run_until_complete(main())
        except BaseException as exc:
            self.failure = exc
        finally:
            self.ready.set()

    def start(self) -> BackgroundPoller:
        self.thread.start()
        self.ready.wait(10)
        return self

    def stop(self) -> float:
        began = time.monotonic()
        if self.stop_event is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(30)
        assert not self.thread.is_alive(), "the IMAP poller did not stop"
        if self.failure is not None:
            raise self.failure
        return time.monotonic() - began

    def wait_for(self, message_id: str, timeout: float = 15.0) -> None:
        wait_until(
            lambda: message_id in stored_ids(self.gateway) or not self.thread.is_alive(),
            timeout,
            what=f"the poller to store {message_id}",
        )
        assert self.thread.is_alive(), f"the poller died: {self.failure!r}"


@pytest.fixture
def imap_gateway(make_gateway: Callable[..., Gateway], dovecot: Dovecot) -> Gateway:  # noqa: F811
    return make_gateway(imap_url=dovecot.imap_url())


@pytest.fixture
def start_poller(imap_gateway: Gateway) -> Iterator[Callable[..., BackgroundPoller]]:
    pollers: list[BackgroundPoller] = []

    def start(**options: Any) -> BackgroundPoller:
        poller = BackgroundPoller(imap_gateway, **options).start()
        pollers.append(poller)
        return poller

    yield start
    for poller in pollers:
        poller.stop()


def test_idle_wakes_the_poller_at_once(
    start_poller: Callable[..., BackgroundPoller],
    imap_gateway: Gateway,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    poller = start_poller(poll_interval=600.0)  # only IDLE can bring the message in quickly
    wait_until(lambda: polled_once(imap_gateway), what="the first poll")
    time.sleep(0.3)  # into IDLE
    message_id, raw = registration()

    dovecot.append(raw)
    began = time.monotonic()
    poller.wait_for(message_id, timeout=5.0)

    assert time.monotonic() - began < 3.0
    # Set on the poller's loop just after the commit: the processing worker is woken.
    wait_until(imap_gateway.inbound_waiting.is_set, 2.0, what="the processing worker's wake-up")
    wait_until(lambda: len(dovecot.messages("Verwerkt")) == 1, 5.0, what="the move")
    assert poller.stop() < 3.0, "a stop while idling is noticed within the IDLE slice"


def test_mail_that_arrives_just_before_idle_begins_is_not_left_waiting(
    start_poller: Callable[..., BackgroundPoller],
    dovecot: Dovecot,  # noqa: F811
) -> None:
    # Dovecot reports what arrived between the last command and IDLE only when IDLE ends.
    message_id, raw = registration()

    class AppendsJustBeforeIdle(IMAPClient):
        appended = False

        def idle(self) -> Any:
            if not AppendsJustBeforeIdle.appended:
                AppendsJustBeforeIdle.appended = True
                dovecot.append(raw)
            return super().idle()

    poller = start_poller(
        poll_interval=600.0,
        client_factory=lambda account: connect(account, client_class=AppendsJustBeforeIdle),
    )
    began = time.monotonic()
    poller.wait_for(message_id, timeout=10.0)
    assert time.monotonic() - began < 5.0


class WithoutIdle(IMAPClient):
    def capabilities(self) -> tuple[bytes, ...]:
        return tuple(c for c in super().capabilities() if c != b"IDLE")


def without_idle(account: ImapAccount) -> IMAPClient:
    return connect(account, client_class=WithoutIdle)


def test_a_server_without_idle_is_polled_every_interval(
    start_poller: Callable[..., BackgroundPoller],
    imap_gateway: Gateway,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    poller = start_poller(poll_interval=0.5, client_factory=without_idle)
    wait_until(lambda: polled_once(imap_gateway), what="the first poll")
    message_id, raw = registration()
    dovecot.append(raw)
    poller.wait_for(message_id, timeout=5.0)
    assert poller.stop() < 3.0


def test_the_poller_connects_again_after_the_server_went_away(
    start_poller: Callable[..., BackgroundPoller],
    dovecot: Dovecot,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    poller = start_poller(poll_interval=600.0, backoff=0.2, max_backoff=1.0)
    first_id, first = registration("GGD-1")
    dovecot.append(first)
    poller.wait_for(first_id)

    dovecot.stop()  # a clean shutdown: Dovecot says BYE to the idling poller
    time.sleep(1.0)  # the poller finds nobody there, and backs off
    dovecot.start()
    second_id, second = registration("GGD-2")
    dovecot.append(second)
    poller.wait_for(second_id)

    dovecot.kill()  # no BYE, no FIN from a process: the connection just dies
    dovecot.start()
    third_id, third = registration("GGD-3")
    dovecot.append(third)
    poller.wait_for(third_id)

    assert len(dovecot.messages("INBOX")) == 0
    # Killed halfway through a move, a message may be copied twice; it is stored once.
    assert len(dovecot.messages("Verwerkt")) >= 3
    with Session(poller.gateway.engine) as session:
        assert len(session.exec(select(InboundMessage)).all()) == 3
    assert "connecting again" in caplog.text
    poller.stop()


def test_a_stored_message_is_processed_and_answered(
    make_gateway: Callable[..., Gateway],
    run_gateway: Callable[..., RunningGateway],
    dovecot: Dovecot,  # noqa: F811
) -> None:
    gateway = make_gateway(imap_url=dovecot.imap_url())
    waiting_id, waiting = registration("GGD-1")
    dovecot.append(waiting)  # there before the service starts
    running = run_gateway(gateway, ["imap", "processing"])
    wait_until(lambda: polled_once(gateway), what="the first poll")
    later_id, later = registration("GGD-2")
    dovecot.append(later)  # arrives while the poller idles

    def answered(message_id: str) -> OutboxMessage | None:
        with Session(gateway.engine) as session:
            row = session.exec(
                select(InboundMessage).where(InboundMessage.message_id == message_id)
            ).first()
            if row is None or row.status == InboundStatus.RECEIVED:
                return None
            return session.exec(
                select(OutboxMessage).where(OutboxMessage.in_reply_to == message_id)
            ).first()

    for message_id in (waiting_id, later_id):
        receipt = wait_until(partial(answered, message_id), what=f"the receipt of {message_id}")
        assert (receipt.kind, receipt.recipient) == ("ontvangstbevestiging", GGD)
    running.stop()


def test_a_server_that_hangs_does_not_hold_up_a_stop(
    start_poller: Callable[..., BackgroundPoller],
    imap_gateway: Gateway,
    dovecot: Dovecot,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(imap_poller, "STOP_GRACE_SECONDS", 0.5)
    poller = start_poller(poll_interval=0.3)
    wait_until(lambda: polled_once(imap_gateway), what="the first poll")
    dovecot.freeze()  # the next command after IDLE waits for an answer that never comes
    try:
        time.sleep(1.0)
        assert poller.stop() < 5.0, "not the 120 s read timeout"
    finally:
        dovecot.thaw()


def test_a_refused_login_is_reported_and_retried_not_fatal(
    make_gateway: Callable[..., Gateway],
    dovecot: Dovecot,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    gateway = make_gateway(imap_url=dovecot.imap_url().replace(dovecot.password, "verkeerd"))
    poller = BackgroundPoller(gateway, backoff=0.1, max_backoff=0.2).start()
    wait_until(
        lambda: sum("LoginError" in r.message for r in caplog.records) >= 2,
        what="two login attempts",
    )
    assert poller.thread.is_alive()
    assert all(r.levelname == "ERROR" for r in caplog.records if "LoginError" in r.message)
    assert "verkeerd" not in caplog.text
    poller.stop()
