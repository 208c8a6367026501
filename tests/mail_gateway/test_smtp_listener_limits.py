"""The listener's limits with real sockets on loopback: sessions per peer and in total, the idle
timeout, and failed SMTP AUTH (growing delay, then 421; the same answer, as slowly, whether or
not the login exists; every failure audited without the password).

Linux answers on all of 127.0.0.0/8, so a client bound to 127.0.0.2 is another peer."""

from __future__ import annotations

import asyncio
import base64
import smtplib
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aiosmtpd.smtp import LoginPassword
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.models import AuditEvent
from core.passwords import HASH_ITERATIONS, hash_password, verify_password
from mail_gateway.context import Gateway, build_gateway
from mail_gateway.smtp_limits import LoginThrottle
from mail_gateway.smtp_server import InstitutionAuthenticator
from tests.mail_gateway.certificates import LocalCertificate
from tests.mail_gateway.conftest import RunningGateway, gateway_settings, wait_until
from tests.mail_gateway.test_smtp_auth import (  # noqa: F401
    PASSWORD,
    coupling_config,
    make_tls_gateway,
)
from tests.mail_gateway.test_smtp_intake import GGD, REGISTRATIE, registration

TlsGateway = Callable[..., tuple[RunningGateway, LocalCertificate]]
OTHER_PEER = "127.0.0.2"


def greeting(port: int, source: str = "127.0.0.1") -> tuple[bytes, socket.socket]:
    """The listener's first line to a new connection from ``source``, and the socket."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    return read_line(sock), sock


def read_line(sock: socket.socket) -> bytes:
    line = b""
    while not line.endswith(b"\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        line += chunk
    return line


def closed_by_listener(sock: socket.socket, within: float = 10.0) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False
    finally:
        sock.close()


def refused_then_closed(port: int, source: str = "127.0.0.1") -> bool:
    line, sock = greeting(port, source)
    return line.startswith(b"421 4.7.0 ") and closed_by_listener(sock)


def test_sessions_beyond_the_cap_per_peer_are_refused_with_421_and_closed(
    make_gateway: Callable[..., Gateway], run_gateway: Callable[..., RunningGateway]
) -> None:
    running = run_gateway(make_gateway(smtp_max_sessions_per_peer=2), ["smtp"])
    held = [greeting(running.smtp_port)[1] for _ in range(2)]
    try:
        assert refused_then_closed(running.smtp_port)
        assert accepted(running.smtp_port, OTHER_PEER)  # a count of its own
        held.pop().close()
        # The slot comes back when that session has ended.
        wait_until(lambda: accepted(running.smtp_port), timeout=10, what="the slot back")
    finally:
        for sock in held:
            sock.close()


def accepted(port: int, source: str = "127.0.0.1") -> bool:
    line, sock = greeting(port, source)
    sock.close()
    return line.startswith(b"220 ")


def test_sessions_beyond_the_total_cap_are_refused_whatever_the_peer(
    make_gateway: Callable[..., Gateway], run_gateway: Callable[..., RunningGateway]
) -> None:
    running = run_gateway(make_gateway(smtp_max_sessions=2), ["smtp"])
    held = [greeting(running.smtp_port)[1] for _ in range(2)]
    try:
        assert refused_then_closed(running.smtp_port, OTHER_PEER)
    finally:
        for sock in held:
            sock.close()


def test_an_idle_session_is_closed_but_not_one_whose_message_is_still_arriving(
    make_gateway: Callable[..., Gateway], run_gateway: Callable[..., RunningGateway]
) -> None:
    running = run_gateway(make_gateway(smtp_idle_timeout=2.5), ["smtp"])
    idle = socket.create_connection(("127.0.0.1", running.smtp_port), timeout=10)
    assert read_line(idle).startswith(b"220 ")
    idle_since = time.monotonic()
    with smtplib.SMTP("127.0.0.1", running.smtp_port, timeout=10) as slow:
        slow.ehlo("client.example")
        slow.mail(GGD)
        assert slow.rcpt(REGISTRATIE)[0] == 250
        slow.putcmd("data")
        assert slow.getreply()[0] == 354
        message = registration()
        size = len(message) // 8 + 1
        chunks = [message[i : i + size] for i in range(0, len(message), size)]
        assert message.endswith(b"\r\n") and len(chunks) == 8
        for chunk in chunks:  # 4 s in all, more than the timeout, never 2.5 s without bytes
            slow.send(chunk)
            time.sleep(0.5)
        slow.send(b".\r\n")
        assert slow.getreply()[0] == 250
    assert closed_by_listener(idle, within=10.0 - (time.monotonic() - idle_since))


def plain(login: str, password: str) -> str:
    return "PLAIN " + base64.b64encode(f"\0{login}\0{password}".encode()).decode()


def tls_session(
    running: RunningGateway, certificate: LocalCertificate, source: str = "127.0.0.1"
) -> smtplib.SMTP:
    smtp = smtplib.SMTP("127.0.0.1", running.smtp_port, timeout=30, source_address=(source, 0))
    smtp.ehlo("ecd.example")
    smtp.starttls(context=certificate.client_context())
    smtp.ehlo("ecd.example")
    return smtp


def timed_auth(smtp: smtplib.SMTP, login: str, password: str) -> tuple[int, bytes, float]:
    started = time.monotonic()
    code, text = smtp.docmd("AUTH", plain(login, password))
    return code, text, time.monotonic() - started


def test_failed_logins_wait_longer_each_time_then_get_421_for_the_peer_and_the_login(
    make_tls_gateway: TlsGateway,  # noqa: F811
) -> None:
    running, certificate = make_tls_gateway(smtp_auth_max_failures=3, smtp_auth_failure_delay=0.3)
    with tls_session(running, certificate) as smtp:
        first = timed_auth(smtp, "jeugdhulp-noord", "geraden")
        second = timed_auth(smtp, "jeugdhulp-noord", "nog-eens-geraden")
        third = timed_auth(smtp, "jeugdhulp-noord", "weer-mis")
        assert (first[0], second[0]) == (535, 535)
        assert first[2] >= 0.3 and second[2] >= 0.6  # 0.3 s, doubled
        assert third[0] == 421 and third[1].startswith(b"4.7.0 ")
        assert smtp.sock is not None and closed_by_listener(smtp.sock)
    # Refused from this peer even with the right password, without a check ...
    with tls_session(running, certificate) as smtp:
        assert smtp.docmd("AUTH", plain("jeugdhulp-noord", PASSWORD))[0] == 421
    # ... and for this login from any peer; another login from another peer is still checked.
    with tls_session(running, certificate, OTHER_PEER) as smtp:
        assert smtp.docmd("AUTH", plain("jeugdhulp-noord", PASSWORD))[0] == 421
    with tls_session(running, certificate, OTHER_PEER) as smtp:
        assert smtp.docmd("AUTH", plain("ggd-groningen", "geraden"))[0] == 535


def test_an_unknown_login_is_answered_like_a_wrong_password_as_slowly_and_audited_alike(
    make_tls_gateway: TlsGateway,  # noqa: F811
) -> None:
    # A real (costly) hash, and no delay or limit, so what is compared is the check alone.
    running, certificate = make_tls_gateway(
        iterations=HASH_ITERATIONS, smtp_auth_max_failures=100, smtp_auth_failure_delay=0
    )
    one_check = min(hash_check_seconds() for _ in range(2))
    answers: dict[str, list[tuple[int, bytes, float]]] = {}
    with tls_session(running, certificate) as smtp:
        for login in ("jeugdhulp-noord", "bestaat-niet", "ggd-groningen"):  # ggd: no password
            answers[login] = [timed_auth(smtp, login, f"geraden-{n}") for n in range(3)]
    assert len({(code, text) for tries in answers.values() for code, text, _ in tries}) == 1
    for login, tries in answers.items():
        assert tries[0][0] == 535
        assert min(seconds for *_, seconds in tries) >= 0.5 * one_check, login

    with Session(running.gateway.engine) as session:
        events = session.exec(
            select(AuditEvent).where(col(AuditEvent.action) == "smtp-auth-failed")
        ).all()
    assert {(e.actor, e.subject, e.channel) for e in events} == {
        ("peer:127.0.0.1", f"login:{login}", "smtp") for login in answers
    }
    assert len(events) == 9
    assert not any("geraden" in f"{e.actor}{e.subject}{e.details}" for e in events)


def hash_check_seconds() -> float:
    stored = hash_password("x", iterations=HASH_ITERATIONS)
    started = time.monotonic()
    verify_password("y", stored)
    return time.monotonic() - started


def test_a_client_that_hangs_up_during_the_check_is_counted_and_audited_all_the_same(
    tmp_path: Path, database_url: str, engine: Engine
) -> None:
    # aiosmtpd cancels a session's work when its client hangs up; the check must not go with it.
    config = coupling_config(tmp_path, engine, iterations=HASH_ITERATIONS)
    gateway = build_gateway(gateway_settings(tmp_path, database_url), engine, config)
    throttle = LoginThrottle(max_failures=1, window=60.0, base_delay=0)

    async def hang_up_during_the_check() -> None:
        logins = InstitutionAuthenticator(gateway, throttle)
        attempt = asyncio.create_task(
            logins.authenticate("192.0.2.1", LoginPassword(b"jeugdhulp-noord", b"geraden"))
        )
        await asyncio.sleep(0.05)  # inside the check: it takes far longer than this
        assert not attempt.done()
        attempt.cancel()
        with pytest.raises(asyncio.CancelledError):
            await attempt
        for _ in range(600):
            if throttle.refuses("192.0.2.1", "jeugdhulp-noord") and audited(engine):
                return
            await asyncio.sleep(0.05)

    asyncio.run(hang_up_during_the_check())
    assert throttle.refuses("192.0.2.1", "jeugdhulp-noord")
    assert audited(engine) == 1


def audited(engine: Engine) -> int:
    with Session(engine) as session:
        return len(
            session.exec(
                select(AuditEvent).where(col(AuditEvent.action) == "smtp-auth-failed")
            ).all()
        )
