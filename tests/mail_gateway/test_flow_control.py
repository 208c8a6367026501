"""Flow control (``mail_gateway.flow``): when the work behind the listener piles up, the 250 for
a stored message is held back a little, never refused, and released as soon as the backlog is
down again; notifications waiting for a retry do not count."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core import outbox
from core.clock import utcnow
from core.db import transaction
from core.models import InboundMessage, InboundStatus
from mail_gateway import flow
from mail_gateway.context import Gateway
from mail_gateway.flow import Backlog
from mail_gateway.intake import Envelope, accept_message
from mail_gateway.mailboxes import Destination, Mailbox
from tests.core.conftest import BSN_A, BSN_B, BSN_C
from tests.mail_gateway.conftest import RunningGateway, wait_until
from tests.mail_gateway.test_smtp_intake import GGD, REGISTRATIE, registration


def answer_times(gateway: RunningGateway, bodies: list[str]) -> list[float]:
    """Send each on one connection; how long each took to be answered 250."""
    times = []
    with smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=30) as smtp:
        for body in bodies:
            started = time.monotonic()
            assert smtp.sendmail(GGD, [REGISTRATIE], registration(body=body)) == {}
            times.append(time.monotonic() - started)
    return times


def body(bsn: str, reference: str) -> str:
    return f"BSN: {bsn}\nGeboortedatum: 01-05-2016\nGemeente: Groningen\nKenmerk: {reference}\n"


@pytest.fixture
def small_backlog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flow, "DEFAULT_LIMIT", 1)
    monkeypatch.setattr(flow, "DEFAULT_REFRESH", 0.0)


def test_over_the_limit_the_answer_waits_at_most_max_delay_and_is_250(
    small_backlog: None,
    make_gateway: Callable[..., Gateway],
    run_gateway: Callable[..., RunningGateway],
) -> None:
    # max_delay well above what one SMTP transaction takes on a loaded machine (CI runs the
    # SQLite and PostgreSQL suites side by side), so held and not held cannot be confused.
    gateway = run_gateway(make_gateway(smtp_flow_max_delay=2.0), ["smtp"])  # nothing processes
    first, second = answer_times(gateway, [body(BSN_A, "F-1"), body(BSN_B, "F-2")])
    assert first < 1.5, "one waiting message is within the limit"
    assert 1.95 <= second < 10, "two are over it: held for max_delay, then accepted anyway"
    with Session(gateway.gateway.engine) as session:
        assert len(session.exec(select(InboundMessage)).all()) == 2


def test_the_answer_goes_out_as_soon_as_the_backlog_is_worked_off(
    small_backlog: None,
    make_gateway: Callable[..., Gateway],
    run_gateway: Callable[..., RunningGateway],
) -> None:
    gateway = run_gateway(
        make_gateway(smtp_flow_max_delay=20.0), ["smtp", "processing", "delivery"]
    )
    times = answer_times(gateway, [body(BSN_A, "F-1"), body(BSN_B, "F-2"), body(BSN_C, "F-3")])
    assert max(times) < 10, f"held until the timeout instead of until processed: {times}"

    def processed() -> bool:
        with Session(gateway.gateway.engine) as session:
            rows = session.exec(select(InboundMessage)).all()
        return len(rows) == 3 and all(r.status == InboundStatus.PROCESSED for r in rows)

    wait_until(processed, what="the three registrations processed")


def test_the_backlog_counts_unprocessed_mail_and_due_email_not_retries(
    synced_engine: Engine, make_gateway: Callable[..., Gateway]
) -> None:
    backlog = Backlog(synced_engine)
    assert backlog.count() == 0
    with transaction(synced_engine) as session:
        for number, moment in enumerate([None, utcnow() + timedelta(minutes=5)]):
            outbox.enqueue(
                session,
                kind="foutmelding",
                channel="email",
                recipient=GGD,
                recipient_role="sender",
                reference=f"B-{number}",
                context={},
                idempotency_key=f"flow:{number}",
                now=moment,  # the second is waiting for a retry in five minutes
            )
    assert backlog.count() == 1
    gateway = make_gateway()
    accept_message(
        synced_engine,
        gateway.vault,
        registration(),
        Envelope("smtp", GGD, REGISTRATIE, Destination(Mailbox.REGISTRATION), "ggd-groningen"),
    )
    assert backlog.count() == 2
