"""While ten clients hammer SMTP AUTH with wrong passwords, the rest of the process is answered
promptly: a registration through another SMTP session, and a signed Slack request to the real
Bolt endpoint running in the listener's event loop, as ``verwijsindex serve`` runs them.

The coupling's password is hashed as in production (``core.passwords.HASH_ITERATIONS``) and the
failure limits are lifted, so the flood keeps the password check busy all along: what is tested
is that the check never holds the event loop (nor the threads RCPT and DATA need)."""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
import socket
import threading
import time
from collections.abc import Callable

from bot.context import build_bot
from bot.service import run_endpoint
from core.passwords import HASH_ITERATIONS
from mail_gateway.context import Gateway
from tests.bot.conftest import ANNA, BOT_TOKEN, SIGNING_SECRET, SlackSender, slack_api  # noqa: F401
from tests.bot.fake_slack_api import FakeSlackApi
from tests.mail_gateway.certificates import LocalCertificate
from tests.mail_gateway.conftest import RunningGateway, free_port, wait_until
from tests.mail_gateway.test_smtp_auth import make_tls_gateway  # noqa: F401
from tests.mail_gateway.test_smtp_intake import GGD, REGISTRATIE, registration
from tests.mail_gateway.test_smtp_listener_limits import audited, plain, tls_session

FLOODERS = 10
# Generous for a loaded machine; with the check on the event loop, every step of a session
# waits behind the ten checks queued there, and a registration takes well over half a minute.
REGISTRATION_SECONDS = 8.0
SLACK_SECONDS = 5.0


def checks_in_flight(running: RunningGateway) -> int:
    """Password checks still under way in the gateway's event loop (those of clients that hung
    up go on to the end: InstitutionAuthenticator.authenticate)."""

    async def count() -> int:
        return sum(
            1
            for task in asyncio.all_tasks()
            if getattr(task.get_coro(), "__qualname__", "") == "InstitutionAuthenticator._check"
        )

    return asyncio.run_coroutine_threadsafe(count(), running._loop).result(10)


async def slack_endpoint(gateway: Gateway, stop: asyncio.Event) -> None:
    bot = build_bot(gateway.settings, gateway.engine, gateway.config)
    await run_endpoint(bot, stop)


class Flood:
    """``FLOODERS`` threads, each in its own TLS session sending AUTH with a wrong password."""

    def __init__(self, running: RunningGateway, certificate: LocalCertificate) -> None:
        self.running = running
        self.certificate = certificate
        self.attempts = 0
        self.sessions: list[smtplib.SMTP] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._hammer) for _ in range(FLOODERS)]

    def _hammer(self) -> None:
        try:
            with tls_session(self.running, self.certificate) as smtp:
                with self._lock:
                    self.sessions.append(smtp)
                while not self._stop.is_set():
                    code, _ = smtp.docmd("AUTH", plain("jeugdhulp-noord", "geraden"))
                    assert code == 535, code
                    with self._lock:
                        self.attempts += 1
        except BaseException as exc:
            if not self._stop.is_set():
                self.errors.append(exc)

    def running_in_full(self) -> bool:
        """Every session is open and the checks are under way."""
        return len(self.sessions) == FLOODERS and self.attempts > 0

    def __enter__(self) -> Flood:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for smtp in self.sessions:  # no need to wait for the answers to the last attempts
            with contextlib.suppress(OSError, AttributeError):
                smtp.sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
        for thread in self._threads:
            thread.join(60)


def test_while_ten_clients_hammer_auth_mail_and_slack_are_answered_promptly(
    make_tls_gateway: Callable[..., tuple[RunningGateway, LocalCertificate]],  # noqa: F811
    slack_api: FakeSlackApi,  # noqa: F811
) -> None:
    running, certificate = make_tls_gateway(
        iterations=HASH_ITERATIONS,
        also=[slack_endpoint],
        smtp_auth_max_failures=1_000_000,
        smtp_auth_failure_delay=0,
        smtp_max_sessions_per_peer=FLOODERS + 5,
        slack_port=free_port(),
        slack_api_url=slack_api.url,
        slack_signing_secret=SIGNING_SECRET,
        slack_bot_token=BOT_TOKEN,
    )
    settings = running.gateway.settings
    sender = SlackSender(f"http://127.0.0.1:{settings.slack_port}/slack/events", slack_api)
    with Flood(running, certificate) as flood:
        wait_until(flood.running_in_full, timeout=60, what="the flood to start")
        before = flood.attempts

        started = time.monotonic()
        with smtplib.SMTP("127.0.0.1", running.smtp_port, timeout=60) as smtp:
            smtp.ehlo("client.example")
            assert smtp.sendmail(GGD, [REGISTRATIE], registration()) == {}
        registration_seconds = time.monotonic() - started

        answer = sender.command("/verwijsindex", "help", ANNA)
        assert answer.status == 200 and "/verwijsindex afwezig" in answer.json()["text"]

        # Still going: the checks queued behind one another all along.
        wait_until(lambda: flood.attempts > before, timeout=30, what="the flood to go on")
    # Every attempt answered is in the audit log, and so are those whose clients hung up.
    wait_until(lambda: checks_in_flight(running) == 0, timeout=120, what="the last checks")
    assert audited(running.gateway.engine) >= flood.attempts
    assert not flood.errors, flood.errors[:1]
    assert registration_seconds < REGISTRATION_SECONDS
    assert answer.seconds < SLACK_SECONDS
