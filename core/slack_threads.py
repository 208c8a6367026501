"""Slack threads per recipient and subject, and the answered messages in them (CONTRACT §5).

* **Threads.** The first Slack message the app posts to a recipient (a user's DM, an
  institution's channel) about a subject — the outbox row's reference: ``C-4``, ``M-3``,
  ``S-12``, ``T-2`` — is kept (:func:`remember_root`); every later message to that recipient
  about the subject (a reminder, an escalation, a hand-over, an acceptance) goes in its thread
  (:func:`root_for`). Through the workspace it was posted in only: a recipient linked to another
  workspace since starts a new thread, the old channel is not the new token's.
* **Answered.** Every question a message with buttons asks is answered by a core event, whoever
  answered and however (mail, a button in someone's DM or channel, the App Home, the CLI):
  :data:`ANSWERS` says, per event type, which question it answers — the subject, the kinds of
  message that ask it, whose threads (an institution's, some professionals', the municipality
  contact's, or everyone's), who answered and how. :func:`on_answered` (one subscriber,
  ``core.notifications.subscribers``) marks those threads; the Slack worker then replaces the
  buttons of their messages of those kinds by a line saying who answered how
  (:func:`claim_due_updates`, ``bot.threads``). A message whose own button gave the answer was
  updated at once by the button's handler (``bot.answered``): it is passed by, known by its
  reply token being used — so nothing else spends a Slack message's token (the App Home
  answers with another: :func:`carried_by_a_slack_message`).
* **Which messages.** An answer covers the thread's messages of its kinds enqueued up to the
  answer (a question asked again later keeps its buttons) and not updated before: per kind the
  thread keeps the newest outbox id done, so one thread holds several questions (a signal's
  expiry warning and its reminder to inform) and a later answer never rewrites an earlier one.
  The thread's ``answer`` holds ``{"pending": [answer, ...], "through": {kind: outbox id}}``.

Not domain tables: a thread holds a Slack place and a reference, never a youth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, exists, func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped
from sqlmodel import Session, col, select

from core.clock import as_utc, local_date, utcnow
from core.config import CoreConfig
from core.events import (
    CoordinationAcceptedEvent,
    CoordinationAssignedEvent,
    CoordinationEscalatedEvent,
    CoordinationSuccessorDeclinedEvent,
    Event,
    MatchContactConfirmedEvent,
    MunicipalityActedEvent,
    SignalExtendedEvent,
    SignalInformedEvent,
    TransferExecutedEvent,
    TransferRejectedEvent,
)
from core.models import (
    Channel,
    Coordination,
    CoordinationSuccession,
    Institution,
    Match,
    Municipality,
    MunicipalityAction,
    MunicipalityActionKind,
    OutboxMessage,
    OutboxStatus,
    Professional,
    ReplyToken,
    Signal,
    SlackThread,
    TransferRequest,
)
from core.slack_links import workspace_of

UPDATE_LEASE = timedelta(minutes=2)  # a worker's hold on a claimed update
WAITING_RECHECK = timedelta(seconds=1)  # an answer to a message still in the outbox
MAX_UPDATE_ATTEMPTS = 8
_BACKOFF = timedelta(seconds=30)

# The kinds of message that ask each question (their templates show its buttons).
COORDINATION_QUESTION = (
    "coordinatie-toegewezen",
    "coordinatie-herinnering",
    "coordinatie-overgedragen",
    "coordinatie-overname",
)
REGIE_QUESTION = ("coordinatie-escalatie", "match-escalatie")  # REGIE, AANWIJZEN, AFGEROND
REGIE_NEXT_QUESTION = ("gemeente-regie",)  # after REGIE: AANWIJZEN or AFGEROND
MATCH_CONTACT_QUESTION = ("match", "gezinsmatch", "match-opvolging")  # CONTACT GELEGD
EXPIRY_QUESTION = ("signaal-verloopt",)  # VERLENG
INFORMING_QUESTION = ("informeren-herinnering",)  # GEINFORMEERD
TRANSFER_QUESTION = ("overdracht",)  # Overdracht uitvoeren (the request; an execution has none)


@dataclass(frozen=True)
class ThreadRoot:
    channel: str
    ts: str


@dataclass(frozen=True)
class Answer:
    """Who answered a subject's question and how (``accept``, ``decline``, ``hand-over``,
    ``contacted``, ``extend``, ``informed``, ``take-up``, ``assign``, ``close``, ``execute``,
    ``reject``: the actions of the bot's ``antwoord-verwerkt`` line), with its argument (a
    reason, an institution, a date, a count)."""

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


@dataclass(frozen=True)
class Whose:
    """Whose threads about the subject asked the question: an institution's (its channel, its
    people), some professionals', the municipality contact's (a thread that is neither a
    professional's nor an institution's), or — all empty — everyone's."""

    institution_id: str | None = None
    professional_ids: tuple[int, ...] = ()
    municipality: bool = False


@dataclass(frozen=True)
class Answered:
    """One question answered: about ``subject``, asked by messages of ``kinds``."""

    subject: str
    kinds: tuple[str, ...]
    answer: Answer
    whose: Whose = field(default_factory=Whose)


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
    if (
        thread is None
        or not thread.ts  # kept for a first message still on its way (reserve_root)
        or not _same_workspace(session, thread, professional_id, institution_id)
    ):
        return None
    return ThreadRoot(thread.channel, thread.ts)


def _add_thread(session: Session, thread: SlackThread) -> None:
    try:
        with session.begin_nested():
            session.add(thread)
    except IntegrityError:
        pass  # another worker's thread came first: it stays


def _whose_thread(
    session: Session, thread: SlackThread, professional_id: int | None, institution_id: str | None
) -> None:
    workspace = workspace_of(
        session, professional_id=professional_id, institution_id=institution_id
    )
    thread.enterprise_id = workspace.enterprise_id if workspace else None
    thread.team_id = workspace.team_id if workspace else None
    thread.professional_id, thread.institution_id = professional_id, institution_id


def reserve_root(
    session: Session,
    *,
    recipient: str,
    subject: str,
    professional_id: int | None,
    institution_id: str | None,
) -> None:
    """Before the first message to ``recipient`` about ``subject`` is posted: its thread, with
    no place yet, so that an answer given while the message is on its way (between Slack's
    "ok" and :func:`remember_root`) is kept in it by :func:`mark_answered` and shown once the
    message is on record, instead of finding no thread."""
    if _thread(session, recipient, subject) is not None:
        return
    thread = SlackThread(recipient=recipient, subject=subject, channel="", ts="")
    _whose_thread(session, thread, professional_id, institution_id)
    _add_thread(session, thread)


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
    """``root`` starts the thread of ``recipient`` about ``subject`` (the one kept for it by
    :func:`reserve_root`, with the answers given meanwhile, or replacing one in a workspace
    the recipient left). Two workers posting the first message at once: the first thread
    stays, the second message stands on its own."""
    thread = _thread(session, recipient, subject)
    if thread is None:
        thread = SlackThread(recipient=recipient, subject=subject, channel="", ts="")
    elif thread.ts and _same_workspace(session, thread, professional_id, institution_id):
        return  # another worker's first message came first
    else:
        thread.updated_through = outbox_id - 1  # an old thread's messages are out of reach
    thread.channel, thread.ts = root.channel, root.ts
    _whose_thread(session, thread, professional_id, institution_id)
    _add_thread(session, thread)


# -- answered ------------------------------------------------------------------------------------


@dataclass
class _State:
    """What a thread's ``answer`` column holds: the answers still to be shown and, per kind,
    the newest outbox id already done."""

    pending: list[dict[str, Any]]
    through: dict[str, int]

    @classmethod
    def of(cls, thread: SlackThread) -> _State:
        data = dict(thread.answer or {})
        if "name" in data:  # one answer, as kept before the kinds: a coordination's
            return cls([{**data, "kinds": list(COORDINATION_QUESTION)}], {})
        pending = [dict(a) for a in data.get("pending") or [] if isinstance(a, dict)]
        through = {str(k): int(v) for k, v in dict(data.get("through") or {}).items()}
        return cls(pending, through)

    def to_json(self) -> dict[str, Any]:
        return {"pending": self.pending, "through": self.through}


def _threads(session: Session, subject: str, whose: Whose) -> list[SlackThread]:
    query = select(SlackThread).where(SlackThread.subject == subject)
    if whose.institution_id is not None:
        query = query.where(SlackThread.institution_id == whose.institution_id)
    if whose.professional_ids:
        query = query.where(col(SlackThread.professional_id).in_(whose.professional_ids))
    if whose.municipality:
        query = query.where(
            col(SlackThread.professional_id).is_(None), col(SlackThread.institution_id).is_(None)
        )
    return list(session.exec(query).all())


def mark_answered(session: Session, answered: Answered, *, at: datetime) -> int:
    """``answered``'s threads are to show its answer instead of the buttons of their messages
    of its kinds, enqueued so far. A newer answer to the same question replaces one not shown
    yet. Returns how many threads."""
    threads = _threads(session, answered.subject, answered.whose)
    if not threads:
        return 0
    upto = session.exec(
        select(func.max(OutboxMessage.id)).where(OutboxMessage.reference == answered.subject)
    ).one()
    entry = {**answered.answer.to_json(at), "kinds": list(answered.kinds), "upto": upto or 0}
    for thread in threads:
        state = _State.of(thread)
        state.pending = [
            a for a in state.pending if not set(a.get("kinds") or ()) & set(answered.kinds)
        ]
        state.pending.append(entry)
        thread.answer = state.to_json()
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


def _professional_name(session: Session, professional_id: int | None) -> str:
    person = session.get(Professional, professional_id) if professional_id else None
    return person.name if person else "onbekend"


def _coordination_answered(session: Session, config: CoreConfig, event: Event) -> list[Answered]:
    """Accepted (also a take-over after a move), declined (the next one assigned, or all
    declined) or handed over — or nothing answered (a first assignment, a reassignment by the
    rules). An acceptance also settles the municipality's escalation about it."""
    coordination = session.get(Coordination, getattr(event, "coordination_id", 0))
    if coordination is None:
        return []
    number = coordination.number
    if isinstance(event, CoordinationAcceptedEvent):
        if coordination.institution_id is None:
            return []
        answer = Answer(
            _name_of(session, coordination.accepted_by or coordination.institution_id), "accept"
        )
        return [
            Answered(number, COORDINATION_QUESTION, answer, Whose(coordination.institution_id)),
            Answered(
                number, REGIE_QUESTION + REGIE_NEXT_QUESTION, answer, Whose(municipality=True)
            ),
        ]
    handed_over_from = getattr(event, "handed_over_from", None)
    if isinstance(event, CoordinationAssignedEvent) and handed_over_from:
        target = _name_of(session, coordination.institution_id)
        answer = Answer(_name_of(session, handed_over_from), "hand-over", target)
        return [Answered(number, COORDINATION_QUESTION, answer, Whose(handed_over_from))]
    last = coordination.declined[-1] if coordination.declined else None
    if last is not None and last.get("at") == event.at.isoformat():
        declined_by = str(last["institution_id"])
        answer = Answer(_name_of(session, declined_by), "decline", str(last["reason"]))
        return [Answered(number, COORDINATION_QUESTION, answer, Whose(declined_by))]
    return []


def _successor_declined(session: Session, config: CoreConfig, event: Event) -> list[Answered]:
    assert isinstance(event, CoordinationSuccessorDeclinedEvent)
    coordination = session.get(Coordination, event.coordination_id)
    succession = session.get(CoordinationSuccession, event.succession_id)
    if coordination is None or succession is None:
        return []
    name = _name_of(session, succession.answered_by or succession.institution_id)
    answer = Answer(name, "decline", succession.reason or "")
    return [
        Answered(
            coordination.number,
            ("coordinatie-overname",),
            answer,
            Whose(succession.institution_id),
        )
    ]


_REGIE_ACTIONS = {
    MunicipalityActionKind.REGIE.value: "take-up",
    MunicipalityActionKind.ASSIGNED.value: "assign",
    MunicipalityActionKind.CLOSED.value: "close",
}


def _municipality_acted(session: Session, config: CoreConfig, event: Event) -> list[Answered]:
    """The municipality's answer to its escalation (REGIE answers the escalation only: the
    municipality is asked next what it names or why it closes). A coordination it takes up,
    names a coordinator for or closes waits for no institution any more: their questions about
    it are settled too."""
    assert isinstance(event, MunicipalityActedEvent)
    action = session.get(MunicipalityAction, event.action_id)
    if action is None:
        return []
    coordination = session.get(Coordination, action.coordination_id or 0)
    match = session.get(Match, action.match_id or 0)
    subject = coordination.number if coordination else match.number if match else None
    municipality = session.get(Municipality, action.municipality)
    if subject is None or municipality is None:
        return []
    kind = _REGIE_ACTIONS.get(action.action, action.action)
    argument = action.note or ""
    if kind == "assign":
        argument = _name_of(session, action.institution_id)
    answer = Answer(municipality.contact_name or f"Gemeente {municipality.name}", kind, argument)
    kinds = REGIE_QUESTION if kind == "take-up" else REGIE_QUESTION + REGIE_NEXT_QUESTION
    found = [Answered(subject, kinds, answer, Whose(municipality=True))]
    if coordination is not None:
        found.append(Answered(subject, COORDINATION_QUESTION, answer))
    return found


def _contact_confirmed(session: Session, config: CoreConfig, event: Event) -> list[Answered]:
    """CONTACT GELEGD: the messages to the professionals it was confirmed for (and to whoever
    stands in for them today, who got their copies) and to the one who confirmed."""
    assert isinstance(event, MatchContactConfirmedEvent)
    match = session.get(Match, event.match_id)
    if match is None:
        return []
    # Lazily: core.notifications imports its subscribers, and with them this module.
    from core.notifications.recipients import current_stand_in

    people = {event.professional_id, *event.for_professional_ids}
    today = local_date(event.at, config.tz)
    for professional_id in event.for_professional_ids:
        stand_in = current_stand_in(session, professional_id, today)
        if stand_in is not None and stand_in.id is not None:
            people.add(stand_in.id)
    answer = Answer(_professional_name(session, event.professional_id), "contacted")
    whose = Whose(professional_ids=tuple(sorted(people)))
    return [Answered(match.number, MATCH_CONTACT_QUESTION, answer, whose)]


def _signal_extended(session: Session, config: CoreConfig, event: Event) -> list[Answered]:
    assert isinstance(event, SignalExtendedEvent)
    signal = session.get(Signal, event.signal_id)
    if signal is None:
        return []
    name = _professional_name(session, event.professional_id)
    answer = Answer(name, "extend", signal.ends_on.isoformat())
    return [Answered(signal.number, EXPIRY_QUESTION, answer)]


def _signal_informed(session: Session, config: CoreConfig, event: Event) -> list[Answered]:
    assert isinstance(event, SignalInformedEvent)
    signal = session.get(Signal, event.signal_id)
    if signal is None:
        return []
    answer = Answer(_professional_name(session, event.professional_id), "informed")
    return [Answered(signal.number, INFORMING_QUESTION, answer)]


def _transfer_answered(session: Session, config: CoreConfig, event: Event) -> list[Answered]:
    """Executed or turned down: every institution-admin's request message (the executed
    transfer's own messages have no button: bot.threads passes them by)."""
    assert isinstance(event, TransferExecutedEvent | TransferRejectedEvent)
    transfer = session.get(TransferRequest, event.transfer_id)
    if transfer is None:
        return []
    name = _professional_name(session, transfer.executed_by_id)  # who executed or rejected it
    if isinstance(event, TransferExecutedEvent):
        answer = Answer(name, "execute", str(transfer.signals_moved))
    else:
        answer = Answer(name, "reject")
    return [Answered(transfer.number, TRANSFER_QUESTION, answer)]


# Per event type: the questions it answers. One subscriber serves them all (on_answered).
ANSWERS: dict[type[Event], Callable[[Session, CoreConfig, Event], list[Answered]]] = {
    CoordinationAcceptedEvent: _coordination_answered,
    CoordinationAssignedEvent: _coordination_answered,
    CoordinationEscalatedEvent: _coordination_answered,
    CoordinationSuccessorDeclinedEvent: _successor_declined,
    MunicipalityActedEvent: _municipality_acted,
    MatchContactConfirmedEvent: _contact_confirmed,
    SignalExtendedEvent: _signal_extended,
    SignalInformedEvent: _signal_informed,
    TransferExecutedEvent: _transfer_answered,
    TransferRejectedEvent: _transfer_answered,
}


def on_answered(session: Session, config: CoreConfig, event: Event) -> None:
    """A question is answered (by anyone, by mail or Slack): the Slack messages that ask it
    lose their buttons (:data:`ANSWERS`)."""
    for answered in ANSWERS[type(event)](session, config, event):
        mark_answered(session, answered, at=event.at)


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
class DueAnswer:
    """One answer to show (name, action, argument, moment) and the messages to show it in."""

    answer: dict[str, Any]
    messages: list[AnsweredMessage]
    # A message it covers is still on its way (in the outbox): the answer stays to be shown
    # in it once it is posted.
    waiting: bool = False


@dataclass(frozen=True)
class DueUpdate:
    thread_id: int
    answered_at: datetime
    answers: list[DueAnswer]
    through: dict[str, int]  # per kind, the newest outbox id looked at
    professional_id: int | None
    institution_id: str | None

    @property
    def messages(self) -> list[AnsweredMessage]:
        return [message for due in self.answers for message in due.messages]


def _place(message_id: str | None) -> tuple[str, str] | None:
    if not message_id or not message_id.startswith("slack:"):
        return None
    channel, _, ts = message_id.removeprefix("slack:").partition(":")
    return (channel, ts) if channel and ts else None


def _answerable(
    session: Session, thread: SlackThread, state: _State
) -> tuple[list[DueAnswer], dict[str, int]]:
    """Per pending answer, the thread's posted messages it covers: of its kinds, after what
    was done for that kind, up to the answer; and whether one it covers is still on its way."""
    kinds = sorted({str(k) for a in state.pending for k in a.get("kinds") or ()})
    found = session.exec(
        select(OutboxMessage, ReplyToken.used_at)
        .join(ReplyToken, col(ReplyToken.token) == OutboxMessage.reply_token, isouter=True)
        .where(
            OutboxMessage.channel == Channel.SLACK.value,
            OutboxMessage.recipient == thread.recipient,
            OutboxMessage.reference == thread.subject,
            col(OutboxMessage.status).in_([OutboxStatus.SENT.value, OutboxStatus.PENDING.value]),
            col(OutboxMessage.kind).in_(kinds),
            col(OutboxMessage.id) > thread.updated_through,
        )
        .order_by(col(OutboxMessage.id))
    ).all()
    rows = [(row, used_at) for row, used_at in found if row.status == OutboxStatus.SENT]
    on_their_way = [(row.id, row.kind) for row, _ in found if row.status == OutboxStatus.PENDING]
    through = dict(state.through)
    due = []
    for answer in state.pending:
        answer_kinds, upto = set(answer.get("kinds") or ()), int(answer.get("upto") or 0)
        waiting = any(
            kind in answer_kinds and (not upto or (outbox_id or 0) <= upto)
            for outbox_id, kind in on_their_way
        )
        messages = []
        for row, used_at in rows:
            done = state.through.get(row.kind, 0)
            if row.kind not in answer_kinds or row.id is None or row.id <= done:
                continue
            if upto and row.id > upto:
                continue  # asked after the answer: a new question
            through[row.kind] = max(through.get(row.kind, 0), row.id)
            place = _place(row.message_id)
            if place is None or used_at is not None:
                continue  # its own button gave the answer: bot.answered updated it already
            messages.append(
                AnsweredMessage(row.id, row.kind, dict(row.context), row.reply_token, *place)
            )
        shown = {k: v for k, v in answer.items() if k not in ("kinds", "upto")}
        due.append(DueAnswer(shown, messages, waiting))
    return due, through


def carried_by_a_slack_message(token: Mapped[str]) -> ColumnElement[bool]:
    """Whether the reply token ``token`` is on the buttons of a Slack message. Once such a token
    is used, :func:`claim_due_updates` takes it that the message's own button gave the answer
    (its handler updated the message at once) and passes the message by; so whatever answers
    from elsewhere — the App Home's buttons (core.overview) — answers with another token, as a
    reply mail does, and the message is updated like after a mail."""
    return exists().where(
        col(OutboxMessage.reply_token) == token, col(OutboxMessage.channel) == Channel.SLACK.value
    )


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
        answers, through = _answerable(session, thread, _State.of(thread))
        due.append(
            DueUpdate(
                thread_id=thread.id or 0,
                answered_at=as_utc(thread.answered_at or now),
                answers=answers,
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
    state = _State.of(thread)
    for kind, newest in update.through.items():
        state.through[kind] = max(state.through.get(kind, 0), newest)
    shown = [due.answer for due in update.answers if not due.waiting]
    state.pending = [
        a
        for a in state.pending
        if {k: v for k, v in a.items() if k not in ("kinds", "upto")} not in shown
    ]
    thread.answer = state.to_json()
    if not state.pending:
        thread.update_due_at = None  # else a newer answer came meanwhile: it is due still
    elif any(due.waiting for due in update.answers):
        thread.update_due_at = utcnow() + WAITING_RECHECK  # looked at again when it is posted
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
