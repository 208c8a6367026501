"""An answer given while the Slack message asking the question is on its way (still in the
outbox, or posted but not yet on record) is shown in it once it is posted (core.slack_threads)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.clock import utcnow
from core.db import run_in_transaction
from core.models import Channel, OutboxMessage, OutboxStatus, SlackThread
from core.outbox import enqueue
from core.slack_threads import (
    TRANSFER_QUESTION,
    Answer,
    Answered,
    ThreadRoot,
    claim_due_updates,
    mark_answered,
    remember_root,
    reserve_root,
    root_for,
    update_done,
)

SUBJECT = "T-9"
RECIPIENT = "URUUD0001"
REJECTED = Answered(SUBJECT, TRANSFER_QUESTION, Answer("Ruud", "reject"))


def _queued(engine: Engine, number: int) -> int:
    """A transfer request for Slack in the outbox; returns its id."""

    def add(session: Session) -> int:
        enqueue(
            session,
            kind="overdracht",
            channel=Channel.SLACK.value,
            recipient=RECIPIENT,
            recipient_role="institution-admin",
            reference=SUBJECT,
            context={},
            idempotency_key=f"transfer-request-{number}",
        )
        session.flush()
        return max(session.exec(select(OutboxMessage.id)).all(), key=lambda i: i or 0) or 0

    return run_in_transaction(engine, add)


def _posted(engine: Engine, outbox_id: int, ts: str) -> None:
    """What the Slack worker records once Slack said "ok": the row sent, with its place."""

    def mark(session: Session) -> None:
        row = session.get(OutboxMessage, outbox_id)
        assert row is not None
        row.status, row.message_id, row.sent_at = OutboxStatus.SENT, f"slack:D1:{ts}", utcnow()
        session.add(row)

    run_in_transaction(engine, mark)


def _reserve(session: Session) -> None:
    reserve_root(
        session, recipient=RECIPIENT, subject=SUBJECT, professional_id=None, institution_id=None
    )


def _remember(session: Session, outbox_id: int, ts: str) -> None:
    remember_root(
        session,
        recipient=RECIPIENT,
        subject=SUBJECT,
        root=ThreadRoot("D1", ts),
        professional_id=None,
        institution_id=None,
        outbox_id=outbox_id,
    )


def _answer(engine: Engine) -> int:
    return run_in_transaction(engine, lambda s: mark_answered(s, REJECTED, at=utcnow()))


def _claim(engine: Engine, *, after: timedelta = timedelta(0)):
    return run_in_transaction(engine, lambda s: claim_due_updates(s, now=utcnow() + after))


def test_an_answer_between_slacks_ok_and_the_record_reaches_the_message(engine: Engine) -> None:
    request = _queued(engine, 1)
    run_in_transaction(engine, _reserve)  # the worker, before posting
    assert _answer(engine) == 1  # Slack has the message; the worker has not recorded it yet
    run_in_transaction(engine, lambda s: _remember(s, request, "111.1"))
    _posted(engine, request, "111.1")

    [update] = _claim(engine)
    assert [(m.outbox_id, m.ts) for m in update.messages] == [(request, "111.1")]
    run_in_transaction(engine, lambda s: update_done(s, update))
    assert _claim(engine, after=timedelta(minutes=5)) == []  # shown once


def test_an_answer_to_a_message_still_in_the_outbox_waits_for_it(engine: Engine) -> None:
    first = _queued(engine, 1)
    run_in_transaction(engine, _reserve)
    run_in_transaction(engine, lambda s: _remember(s, first, "111.1"))
    _posted(engine, first, "111.1")
    again = _queued(engine, 2)  # asked again; Slack is slow to take it
    assert _answer(engine) == 1

    [update] = _claim(engine)
    assert [m.outbox_id for m in update.messages] == [first]
    assert update.answers[0].waiting
    run_in_transaction(engine, lambda s: update_done(s, update))
    with Session(engine) as session:
        thread = session.exec(select(SlackThread)).one()
        assert thread.answer and thread.answer["pending"], "kept for the message on its way"

    _posted(engine, again, "222.2")
    [later] = _claim(engine, after=timedelta(seconds=2))
    assert [m.outbox_id for m in later.messages] == [again]  # the first is not done twice
    assert not later.answers[0].waiting
    run_in_transaction(engine, lambda s: update_done(s, later))
    assert _claim(engine, after=timedelta(minutes=5)) == []


def test_a_thread_kept_for_a_message_on_its_way_is_no_root_yet(engine: Engine) -> None:
    run_in_transaction(engine, _reserve)
    with Session(engine) as session:
        assert (
            root_for(
                session,
                recipient=RECIPIENT,
                subject=SUBJECT,
                professional_id=None,
                institution_id=None,
            )
            is None
        )


def test_two_workers_posting_first_messages_at_once_keep_the_first_thread(engine: Engine) -> None:
    first, second = _queued(engine, 1), _queued(engine, 2)
    run_in_transaction(engine, _reserve)
    run_in_transaction(engine, _reserve)
    run_in_transaction(engine, lambda s: _remember(s, first, "111.1"))
    run_in_transaction(engine, lambda s: _remember(s, second, "222.2"))
    with Session(engine) as session:
        assert [t.ts for t in session.exec(select(SlackThread)).all()] == ["111.1"]
