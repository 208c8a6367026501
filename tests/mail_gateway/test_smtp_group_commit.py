"""Group commit at the SMTP listener (``mail_gateway.intake.GroupIntake``): messages whose DATA
ends together are stored in one transaction, each answered 250 only once its row is committed;
a group that fails is stored one by one; a transaction takes one thread hop at DATA and none at
RCPT while the covenant's senders are in memory."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from email.utils import make_msgid
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

import mail_gateway.intake as intake
from core.models import InboundMessage
from mail_gateway.context import Gateway
from tests.mail_gateway.conftest import RunningGateway
from tests.mail_gateway.test_smtp_intake import GGD, REGISTRATIE, client, registration

SESSIONS = 8


@pytest.fixture
def smtp_gateway(
    make_gateway: Callable[..., Gateway], run_gateway: Callable[..., RunningGateway]
) -> RunningGateway:
    return run_gateway(make_gateway(), ["smtp"])


def committed(engine: Engine, message_id: str) -> bool:
    """Whether another connection sees the message's row: it is committed."""
    with Session(engine) as session:
        found = session.exec(
            select(InboundMessage.id).where(col(InboundMessage.message_id) == message_id)
        ).first()
    return found is not None


def send_together(
    gateway: RunningGateway, message_ids: list[str], *, hold_first: float = 0.0
) -> dict[str, tuple[int, bool]]:
    """One session per message, their DATA sent at once; per Message-ID the answer's code and
    whether the row was committed when the answer came."""
    engine = gateway.gateway.engine
    answers: dict[str, tuple[int, bool]] = {}
    start = threading.Barrier(len(message_ids))

    def session(number: int, message_id: str) -> None:
        with client(gateway) as smtp:
            smtp.mail(GGD)
            smtp.rcpt(REGISTRATIE)
            start.wait()
            if number:
                time.sleep(hold_first)  # the first group is being stored: the rest queue up
            code, _ = smtp.data(registration(message_id=message_id))
            answers[message_id] = (code, committed(engine, message_id))

    threads = [
        threading.Thread(target=session, args=(number, message_id))
        for number, message_id in enumerate(message_ids)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return answers


def slow_first_store(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The first message's store takes ``seconds``: the others arrive while it is stored."""
    store = intake.store_inbound
    calls: list[int] = []

    def slow(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            time.sleep(seconds)
        return store(*args, **kwargs)

    monkeypatch.setattr(intake, "store_inbound", slow)


def test_messages_arriving_together_share_a_commit_and_each_250_follows_it(
    smtp_gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = smtp_gateway.gateway.engine
    commits: list[float] = []

    def count(_connection: Any) -> None:
        commits.append(time.monotonic())

    slow_first_store(monkeypatch, 0.5)
    event.listen(engine, "commit", count)
    try:
        message_ids = [make_msgid(domain="ggd-groningen.example") for _ in range(SESSIONS)]
        answers = send_together(smtp_gateway, message_ids, hold_first=0.1)
    finally:
        event.remove(engine, "commit", count)

    assert answers == {message_id: (250, True) for message_id in message_ids}
    # The first alone, the seven that arrived meanwhile together (the checks' own reads
    # commit nothing: a read-only SQLAlchemy session ends with a rollback).
    assert len(commits) == 2, commits


def test_a_group_that_fails_is_stored_one_by_one(
    smtp_gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    message_ids = [make_msgid(domain="ggd-groningen.example") for _ in range(SESSIONS)]
    bad = message_ids[-1]
    store = intake.store_inbound
    calls: list[int] = []

    def failing(session: Session, arrived: Sequence[intake.Arrived]) -> Any:
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.5)  # the first alone; the rest form a group meanwhile
        if any(item.message_id == bad for item in arrived):
            raise RuntimeError("this message cannot be stored")
        return store(session, arrived)

    monkeypatch.setattr(intake, "store_inbound", failing)
    answers = send_together(smtp_gateway, message_ids, hold_first=0.1)

    assert answers[bad] == (451, False)
    assert {answers[m] for m in message_ids if m != bad} == {(250, True)}
    assert len(calls) > len(message_ids), "the failed group was stored again, one by one"


def test_one_thread_hop_per_transaction_and_none_at_rcpt(
    smtp_gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    with client(smtp_gateway) as smtp:  # the first RCPT loads the covenant's senders
        assert smtp.sendmail(GGD, [REGISTRATIE], registration()) == {}
    hops: list[str] = []
    to_thread = asyncio.to_thread

    async def counting(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(function, "__name__", repr(function)))
        return await to_thread(function, *args, **kwargs)

    import mail_gateway.smtp_server as smtp_server

    monkeypatch.setattr(smtp_server.asyncio, "to_thread", counting)
    with client(smtp_gateway) as smtp:
        smtp.mail(GGD)
        assert smtp.rcpt(REGISTRATIE)[0] == 250
        assert hops == [], "the sender check needs no thread"
        assert smtp.data(registration())[0] == 250
    # The listener's own hop; flow control's count of the backlog is shared by all sessions
    # (at most one per 50 ms) and none here: nothing is processed, so it is not asked.
    assert [hop for hop in hops if hop != "count"] == ["_authenticate_and_store"]


def test_a_refused_sender_is_refused_from_memory_too(smtp_gateway: RunningGateway) -> None:
    for _ in range(2):  # the first answer loads the senders, the second reads them in memory
        with client(smtp_gateway) as smtp:
            smtp.mail("iemand@elders.example")
            code, text = smtp.rcpt(REGISTRATIE)
            assert (code, text[:5]) == (550, b"5.7.1")
