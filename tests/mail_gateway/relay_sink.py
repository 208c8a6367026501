"""An aiosmtpd sink standing in for the region's outgoing relay, on loopback.

It records every message (envelope, parsed message, raw bytes, arrival time, connection, login),
can answer chosen recipients with a 4xx or 5xx at RCPT, or every message at DATA, can be slow,
and can be stopped and started again on the same port (relay down, relay up). With
``tls_folder`` it offers STARTTLS with a self-signed certificate generated there and then (and
requires it); with ``credentials`` it requires SMTP AUTH (after STARTTLS, when TLS is on)::

    with RelaySink() as sink:
        settings = Settings(..., relay_url=sink.url)
        ...
        [received] = sink.wait_for(1, kind="match")

    sink = RelaySink(tls_folder=tmp_path / "tls", credentials=("relay", "geheim")).start()
    relay = relay_from_url(sink.url)          # smtp://relay:geheim@127.0.0.1:PORT?starttls=true
    relay.tls_context = sink.client_context()  # trusts exactly the sink's certificate

Plain functions and classes, no fixtures: any test module may import it.
"""

from __future__ import annotations

import asyncio
import email
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests import privacy_guard


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Received:
    envelope_from: str
    recipients: list[str]
    message: EmailMessage
    raw: bytes
    at: float  # time.monotonic() when DATA was answered
    peer: tuple[str, int] | None = None  # the client's address: one per connection
    login: str | None = None  # the SMTP AUTH user, if any


def _peer(session: Session) -> tuple[str, int] | None:
    peer: Any = session.peer
    return (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else None


@dataclass
class SinkHandler:
    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # lower-case recipient -> SMTP answer
    data_answer: str | None = None  # answer every DATA with this instead of storing
    data_delay: float = 0.0  # seconds before DATA is answered (a slow relay)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        answer = self.refuse.get(address.lower())
        if answer is not None:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        if self.data_answer is not None:
            return self.data_answer
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, _class=EmailMessage, policy=default)
        login = session.auth_data if isinstance(session.auth_data, str) else None
        with self.arrived:
            self.received.append(
                Received(
                    envelope_from=envelope.mail_from or "",
                    recipients=list(envelope.rcpt_tos),
                    message=message,
                    raw=raw,
                    at=time.monotonic(),
                    peer=_peer(session),
                    login=login,
                )
            )
            self.arrived.notify_all()
        return "250 2.0.0 Queued"


class RelaySink:
    def __init__(
        self,
        port: int | None = None,
        *,
        tls_folder: Path | None = None,
        credentials: tuple[str, str] | None = None,
        **controller_options: Any,
    ):
        self.port = port or free_port()
        self.handler = SinkHandler()
        privacy_guard.watch(self._privacy_texts)
        self.credentials = credentials
        self.options: dict[str, Any] = dict(controller_options)
        self.certificate = None
        if tls_folder is not None:
            from tests.mail_gateway.certificates import make_certificate

            self.certificate = make_certificate(tls_folder)
            self.options.setdefault("tls_context", self.certificate.server_context())
            self.options.setdefault("require_starttls", True)
        if credentials is not None:
            self.options.setdefault("authenticator", self._authenticate)
            self.options.setdefault("auth_required", True)
            self.options.setdefault("auth_require_tls", tls_folder is not None)
        self.logins: list[str] = []  # successful ones
        self.refused_logins: list[tuple[str, int]] = []  # the client address of each refusal
        self.controller: Controller | None = None

    # -- the relay's address ------------------------------------------------------------------

    @property
    def url(self) -> str:
        """A ``VERWIJSINDEX_RELAY_URL`` for this sink, credentials and STARTTLS included."""
        user = ""
        if self.credentials is not None:
            name, password = self.credentials
            user = f"{quote(name, safe='')}:{quote(password, safe='')}@"
        tls = "?starttls=true" if self.certificate is not None else ""
        return f"smtp://{user}127.0.0.1:{self.port}{tls}"

    def client_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts exactly this sink's certificate."""
        assert self.certificate is not None, "this sink has no TLS (give tls_folder)"
        return self.certificate.client_context()

    # -- up and down --------------------------------------------------------------------------

    def _privacy_texts(self) -> Iterator[tuple[str, str]]:
        """Every mail received, for the suite's privacy guard (tests/privacy_guard.py)."""
        with self.handler.lock:
            received = list(self.handler.received)
        for index, item in enumerate(received):
            for text in privacy_guard.mail_texts(item.message):
                yield f"relayed mail #{index + 1}", text

    @property
    def running(self) -> bool:
        return self.controller is not None

    def start(self) -> RelaySink:
        """Listen (again) on the same port."""
        assert self.controller is None, "the sink is running already"
        controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **self.options)
        deadline = time.monotonic() + 5
        while True:  # right after stop() the port may still be held for a moment
            try:
                controller.start()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.controller = controller
        return self

    def stop(self) -> None:
        """Stop listening and drop every connection (a relay that went down)."""
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def __enter__(self) -> RelaySink:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- behaviour ----------------------------------------------------------------------------

    def refuse_recipient(self, address: str, answer: str) -> None:
        """Answer RCPT TO ``address`` with ``answer`` (e.g. ``550 5.1.1 No such user``)."""
        self.handler.refuse[address.lower()] = answer

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert self.credentials is not None
        name, password = self.credentials
        if (
            isinstance(data, LoginPassword)
            and data.login.decode() == name
            and data.password.decode() == password
        ):
            self.logins.append(name)
            return AuthResult(success=True, auth_data=name)
        peer = _peer(session)
        if peer is not None:
            self.refused_logins.append(peer)
        return AuthResult(success=False, handled=False)

    # -- what arrived -------------------------------------------------------------------------

    def messages(self, kind: str | None = None) -> list[Received]:
        """Everything received so far (optionally one ``X-Verwijsindex-Type``), in order."""
        with self.handler.lock:
            found = list(self.handler.received)
        if kind is None:
            return found
        return [r for r in found if r.message["X-Verwijsindex-Type"] == kind]

    def wait_for(
        self, count: int, *, kind: str | None = None, timeout: float = 10.0
    ) -> list[Received]:
        """Block until at least ``count`` messages (of ``kind``) have arrived; AssertionError
        after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self.handler.arrived:
            while True:
                found = [
                    r
                    for r in self.handler.received
                    if kind is None or r.message["X-Verwijsindex-Type"] == kind
                ]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"{len(found)} of {count} messages{f' ({kind})' if kind else ''} "
                        f"arrived at the relay sink within {timeout} s"
                    )
                self.handler.arrived.wait(remaining)

    def connections(self) -> int:
        """How many connections delivered at least one message."""
        with self.handler.lock:
            return len({r.peer for r in self.handler.received})

    def clear(self) -> None:
        with self.handler.lock:
            self.handler.received.clear()
