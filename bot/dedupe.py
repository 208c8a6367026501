"""Slack's retries never repeat an action (STYLE 8; ARCHITECTURE, step 1).

Slack sends an event again when it did not see ``200`` in time (``X-Slack-Retry-Num``, the same
``event_id``), and a view submission, a slash command or a button press can arrive twice through
a proxy or a client retry. Each request that changes something names itself with a key Slack
gave it (``event_id``, the view's id, the command's ``trigger_id``, the button's ``action_ts``),
and the key is stored as an :class:`InboundMessage` (``transport = 'slack'``) in the *same*
transaction as the core command: either both are committed or neither, so a retry finds the key
and does nothing, and a failed attempt leaves nothing behind that would block a second try.

The row keeps no payload (``raw`` is empty): the core's state already holds what the request
did. A form whose work follows the acknowledgement (a signal) is *stored* instead
(:func:`store_all`): the row stays ``received``, with the form sealed (a BSN is never stored in
clear), until it is processed (``bot.submission_processing``), and the same commit dedupes.

Two copies arriving at once: SQLite's ``BEGIN IMMEDIATE`` lets one commit first; on PostgreSQL
the second insert waits for the first and then fails the unique key, and
:func:`core.db.run_in_transaction` runs it again, when it finds the key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

from sqlmodel import Session, select

from core.clock import utcnow
from core.models import InboundMessage, InboundStatus

T = TypeVar("T")

TRANSPORT = "slack"


@dataclass(frozen=True)
class SlackRequest:
    """What identifies one request: ``kind`` (``view``, ``event``, ``command``, ``action``) and
    Slack's own id for it, and the Slack user who sent it."""

    kind: str
    slack_id: str
    user_id: str

    @property
    def dedupe_key(self) -> str:
        return hashlib.sha256(f"{TRANSPORT}\n{self.kind}\n{self.slack_id}".encode()).hexdigest()


@dataclass(frozen=True)
class Done(Generic[T]):
    """The work ran now; ``value`` is what it returned."""

    value: T


@dataclass(frozen=True)
class AlreadyDone:
    """A repeat of a request whose work was committed before."""


Outcome = Done[T] | AlreadyDone


def seen(session: Session, request: SlackRequest) -> bool:
    return (
        session.exec(
            select(InboundMessage.id).where(InboundMessage.dedupe_key == request.dedupe_key)
        ).first()
        is not None
    )


def _row(request: SlackRequest, **state: Any) -> InboundMessage:
    return InboundMessage(
        dedupe_key=request.dedupe_key,
        message_id=f"slack:{request.kind}:{request.slack_id}"[:998],
        transport=TRANSPORT,
        mail_from=request.user_id[:320],
        rcpt_to=f"slack:{request.kind}"[:320],
        mailbox="slack",
        **state,
    )


def remember(session: Session, request: SlackRequest) -> None:
    """Add the request's key (flushed at once: on PostgreSQL a concurrent copy waits here)."""
    now = utcnow()
    session.add(
        _row(request, raw=b"", received_at=now, status=InboundStatus.PROCESSED, processed_at=now)
    )
    session.flush()


def keep_waiting(
    session: Session, request: SlackRequest, sealed: bytes, *, held_for: timedelta
) -> int:
    """Add the request's key with its sealed form, waiting to be processed; returns the row's id.
    The storing process holds it (``held_for``, counted as the first attempt): it processes the
    form at once, and a recovery worker takes it only when that process died."""
    now = utcnow()
    row = _row(
        request,
        raw=sealed,
        size=len(sealed),
        received_at=now,
        status=InboundStatus.RECEIVED,
        attempts=1,
        claimed_until=now + held_for,
    )
    session.add(row)
    session.flush()
    assert row.id is not None
    return row.id


def once(request: SlackRequest, work: Callable[[Session], T]) -> Callable[[Session], Outcome[T]]:
    """``work`` wrapped for :func:`core.db.run_in_transaction`: run unless the request was
    handled before, and remember it in the same transaction."""

    def run(session: Session) -> Outcome[T]:
        if seen(session, request):
            return AlreadyDone()
        remember(session, request)
        return Done(work(session))

    return run


def store_all(
    forms: Sequence[tuple[SlackRequest, bytes]], held_for: timedelta
) -> Callable[[Session], list[Outcome[int]]]:
    """For :func:`core.db.run_in_transaction`: store each (request, sealed form) unless the
    request was seen before (or earlier in ``forms``: a retry that came with it); per form
    ``Done(row id)`` or :class:`AlreadyDone`. One commit for all: a group commit."""

    def run(session: Session) -> list[Outcome[int]]:
        outcomes: list[Outcome[int]] = []
        keys: set[str] = set()
        for request, sealed in forms:
            if request.dedupe_key in keys or seen(session, request):
                outcomes.append(AlreadyDone())
                continue
            keys.add(request.dedupe_key)
            outcomes.append(Done(keep_waiting(session, request, sealed, held_for=held_for)))
        return outcomes

    return run


def remember_refused(request: SlackRequest) -> Callable[[Session], bool]:
    """After a refusal: remember the request on its own, so a retry of an event or a command
    is not refused (and answered) a second time. Returns whether it was new."""

    def run(session: Session) -> bool:
        if seen(session, request):
            return False
        remember(session, request)
        return True

    return run
