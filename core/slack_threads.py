"""Slack threads per recipient and subject, and the answered messages in them (CONTRACT §5).

* **Threads.** The first Slack message the app posts to a recipient (a user's DM, an
  institution's channel) about a subject — the outbox row's reference: ``C-4``, ``M-3``,
  ``S-12`` — is kept (:func:`remember_root`); every later message to that recipient about the
  subject (a reminder, an escalation, a hand-over, an acceptance) goes in its thread
  (:func:`root_for`). Through the workspace it was posted in only: a recipient linked to another
  workspace since starts a new thread, the old channel is not the new token's.
* **Answered.** When a subject's question is answered — by anyone, by mail or Slack — the core's
  event reaches :func:`on_coordination_answered` (one of ``core.notifications.subscribers``),
  which marks the subject's threads of the institution that answered; the Slack worker then
  replaces the buttons of their messages by a line saying who answered how
  (:func:`claim_due_updates`, ``bot.threads``). A message whose own button gave the answer was
  updated at once by the button's handler (``bot.answered``): it is passed by.

Not domain tables: a thread holds a Slack place and a reference, never a youth.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.clock import as_utc, utcnow
from core.config import CoreConfig
from core.events import (
    CoordinationAcceptedEvent,
    CoordinationAssignedEvent,
    CoordinationEscalatedEvent,
)
from core.models import (
    Channel,
    Coordination,
    Institution,
    OutboxMessage,
    OutboxStatus,
    Professional,
    ReplyToken,
    SlackThread,
)
from core.slack_links import workspace_of

UPDATE_LEASE = timedelta(minutes=2)  # a worker's hold on a claimed update
MAX_UPDATE_ATTEMPTS = 8
_BACKOFF = timedelta(seconds=30)


@dataclass(frozen=True)
class ThreadRoot:
    channel: str
    ts: str


@dataclass(frozen=True)
class Answer:
    """Who answered a subject's question, how (``accept``, ``decline``, ``hand-over``: the
    actions of the bot's ``antwoord-verwerkt`` line) and when."""

    name: str
    action: str
    argument: str = ""

    def to_json(self, at: datetime) -> dict[str, Any]:
        return {
            "name": self.name,
            "action": self.action,
            "argument": self.argument,
            "moment": as_utc(at).isoformat(),
        }


# -- threads -----------------------------------------------------------------------------------


def _thread(session: Session, recipient: str, subject: str) -> SlackThread | None:
    return session.exec(
        select(SlackThread).where(
            SlackThread.recipient == recipient, SlackThread.subject == subject
        )
    ).first()


def _same_workspace(
    session: Session, thread: SlackThread, professional_id: int | None, institution_id: str | None
) -> bool:
    now = workspace_of(session, professional_id=professional_id, institution_id=institution_id)
    if now is None or (thread.enterprise_id is None and thread.team_id is None):
        return True  # one workspace (SLACK_BOT_TOKEN), or nothing known to compare
    return (now.enterprise_id, now.team_id) == (thread.enterprise_id, thread.team_id)


def root_for(
    session: Session,
    *,
    recipient: str,
    subject: str,
    professional_id: int | None,
    institution_id: str | None,
) -> ThreadRoot | None:
    """The message a new one to ``recipient`` about ``subject`` replies to, if any."""
    thread = _thread(session, recipient, subject)
    if thread is None or not _same_workspace(session, thread, professional_id, institution_id):
        return None
    return ThreadRoot(thread.channel, thread.ts)


def remember_root(
    session: Session,
    *,
    recipient: str,
    subject: str,
    root: ThreadRoot,
    professional_id: int | None,
    institution_id: str | None,
    outbox_id: int,
) -> None:
    """``root`` starts the thread of ``recipient`` about ``subject`` (replacing one in a
    workspace the recipient left). Two workers posting the first message at once: the first
    thread stays, the second message stands on its own."""
    workspace = workspace_of(
        session, professional_id=professional_id, institution_id=institution_id
    )
    thread = _thread(session, recipient, subject)
    if thread is None:
        thread = SlackThread(recipient=recipient, subject=subject, channel="", ts="")
    else:
        thread.updated_through = outbox_id - 1  # the old thread's messages are out of reach
    thread.channel, thread.ts = root.channel, root.ts
    thread.enterprise_id = workspace.enterprise_id if workspace else None
    thread.team_id = workspace.team_id if workspace else None
    thread.professional_id, thread.institution_id = professional_id, institution_id
    try:
        with session.begin_nested():
            session.add(thread)
    except IntegrityError:
        pass


# -- answered ------------------------------------------------------------------------------------


def mark_answered(
    session: Session, subject: str, answer: Answer, *, institution_id: str | None, at: datetime
) -> int:
    """The question about ``subject`` to ``institution_id`` (its channel, its people) is
    answered: their threads' buttons are to make way for ``answer``. Returns how many threads."""
    query = select(SlackThread).where(SlackThread.subject == subject)
    if institution_id is not None:
        query = query.where(SlackThread.institution_id == institution_id)
    threads = session.exec(query).all()
    for thread in threads:
        thread.answer = answer.to_json(at)
        thread.answered_at = at
        thread.update_due_at = at
        thread.update_attempts = 0
        session.add(thread)
    return len(threads)


def _name_of(session: Session, identifier: str | None) -> str:
    """A person (``accepted_by`` is an address) or else an institution, by name."""
    if identifier and "@" in identifier:
        person = session.exec(
            select(Professional).where(Professional.email == identifier.strip().lower())
        ).first()
        if person is not None:
            return person.name
    institution = session.get(Institution, identifier) if identifier else None
    return institution.name if institution else (identifier or "onbekend")


def _coordination_answer(
    session: Session, coordination: Coordination, event: Any
) -> tuple[Answer, str] | None:
    """Who answered the coordination's question, how, and for which institution — or None
    when the event answers nothing (a first assignment, a reassignment by the rules)."""
    if isinstance(event, CoordinationAcceptedEvent):
        if coordination.institution_id is None:
            return None
        name = _name_of(session, coordination.accepted_by or coordination.institution_id)
        return Answer(name, "accept"), coordination.institution_id
    handed_over_from = getattr(event, "handed_over_from", None)
    if isinstance(event, CoordinationAssignedEvent) and handed_over_from:
        target = _name_of(session, coordination.institution_id)
        return Answer(_name_of(session, handed_over_from), "hand-over", target), handed_over_from
    last = coordination.declined[-1] if coordination.declined else None
    if last is not None and last.get("at") == event.at.isoformat():
        declined_by = str(last["institution_id"])
        return Answer(_name_of(session, declined_by), "decline", str(last["reason"])), declined_by
    return None


def on_coordination_answered(
    session: Session,
    config: CoreConfig,
    event: CoordinationAcceptedEvent | CoordinationAssignedEvent | CoordinationEscalatedEvent,
) -> None:
    """Accepted, declined (the next one assigned, or all declined) or handed over: the
    answering institution's Slack messages about it lose their buttons."""
    coordination = session.get(Coordination, event.coordination_id)
    if coordination is None:
        return
    found = _coordination_answer(session, coordination, event)
    if found is not None:
        answer, institution_id = found
        mark_answered(
            session, coordination.number, answer, institution_id=institution_id, at=event.at
        )


# -- the Slack worker's side ---------------------------------------------------------------------


@dataclass(frozen=True)
class AnsweredMessage:
    """A posted message with buttons to replace: how to render it again, and where it is."""

    outbox_id: int
    kind: str
    context: dict[str, Any]
    reply_token: str | None
    channel: str
    ts: str


@dataclass(frozen=True)
class DueUpdate:
    thread_id: int
    answered_at: datetime
    answer: dict[str, Any]
    messages: list[AnsweredMessage]
    through: int  # the newest outbox id looked at
    professional_id: int | None
    institution_id: str | None


def _place(message_id: str | None) -> tuple[str, str] | None:
    if not message_id or not message_id.startswith("slack:"):
        return None
    channel, _, ts = message_id.removeprefix("slack:").partition(":")
    return (channel, ts) if channel and ts else None


def _answerable(session: Session, thread: SlackThread) -> tuple[list[AnsweredMessage], int]:
    rows = session.exec(
        select(OutboxMessage, ReplyToken.used_at)
        .join(ReplyToken, col(ReplyToken.token) == OutboxMessage.reply_token, isouter=True)
        .where(
            OutboxMessage.channel == Channel.SLACK.value,
            OutboxMessage.recipient == thread.recipient,
            OutboxMessage.reference == thread.subject,
            OutboxMessage.status == OutboxStatus.SENT.value,
            col(OutboxMessage.reply_token).is_not(None),
            col(OutboxMessage.id) > thread.updated_through,
        )
        .order_by(col(OutboxMessage.id))
    ).all()
    messages = []
    through = thread.updated_through
    for row, used_at in rows:
        through = max(through, row.id or 0)
        place = _place(row.message_id)
        if place is None or used_at is not None:
            continue  # its own button gave the answer: bot.answered updated it already
        messages.append(
            AnsweredMessage(row.id or 0, row.kind, dict(row.context), row.reply_token, *place)
        )
    return messages, through


def claim_due_updates(
    session: Session, *, now: datetime | None = None, limit: int = 20
) -> list[DueUpdate]:
    """Threads whose answer is still to be shown, claimed for ``UPDATE_LEASE`` (PostgreSQL
    skips the rows another worker is claiming; SQLite serialises writers)."""
    now = now or utcnow()
    threads = session.exec(
        select(SlackThread)
        .where(col(SlackThread.update_due_at) <= now)
        .order_by(col(SlackThread.update_due_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    due = []
    for thread in threads:
        thread.update_due_at = now + UPDATE_LEASE
        session.add(thread)
        messages, through = _answerable(session, thread)
        due.append(
            DueUpdate(
                thread_id=thread.id or 0,
                answered_at=as_utc(thread.answered_at or now),
                answer=dict(thread.answer or {}),
                messages=messages,
                through=through,
                professional_id=thread.professional_id,
                institution_id=thread.institution_id,
            )
        )
    return due


def update_done(session: Session, update: DueUpdate) -> None:
    thread = session.get(SlackThread, update.thread_id)
    if thread is None:
        return
    thread.updated_through = max(thread.updated_through, update.through)
    if thread.answered_at is not None and as_utc(thread.answered_at) == update.answered_at:
        thread.update_due_at = None  # else a newer answer came meanwhile: it is due still
    session.add(thread)


def update_failed(session: Session, update: DueUpdate, *, now: datetime | None = None) -> bool:
    """A temporary failure: try again after a growing pause, at most ``MAX_UPDATE_ATTEMPTS``
    times. Returns whether it will be tried again."""
    thread = session.get(SlackThread, update.thread_id)
    if thread is None:
        return False
    thread.update_attempts += 1
    again = thread.update_attempts < MAX_UPDATE_ATTEMPTS
    thread.update_due_at = (
        (now or utcnow()) + _BACKOFF * 2 ** (thread.update_attempts - 1) if again else None
    )
    session.add(thread)
    return again
