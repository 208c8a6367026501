"""Processing a stored Slack form (``bot.stored_submissions``): one code path, whether the form
is processed at once or after a restart.

* **At once.** The listener stored the form (the commit that dedupes Slack's retry), closed the
  modal, and processes what it stored; the answer goes where the form was opened
  (``response_url``, else a DM).
* **After a restart.** A form still ``received`` when its lease ran out (the process died
  between the acknowledgement and the processing) is processed by the recovery worker
  (``bot.submission_recovery``). The modal is gone: the answer is a DM through the outbox,
  enqueued in the same transaction.

Exactly once: the row moves from ``received`` to ``processed`` in the same transaction as the
core command, with a guarded update only one process can win
(``core.inbound_claims.finish_waiting``), and its sealed form is emptied. A refusal (a user
error) is an outcome too, recorded with its answer in a transaction of its own. Anything else (a
bug, the database away) leaves the form waiting for the next attempt; after
``MAX_ATTEMPTS`` it fails and the sender gets the apology.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from bot.context import Bot
from bot.errors import APOLOGY
from bot.signal_placement import FORM_KIND, place_stored_signal, signal_refused
from bot.stored_submissions import FormVault, StoredForm
from core.clock import utcnow
from core.db import is_sqlite, run_in_transaction
from core.errors import UserError
from core.inbound_claims import MAX_ATTEMPTS, finish_waiting
from core.models import Channel, InboundMessage, InboundStatus
from core.outbox import NewNotification, enqueue_many

log = logging.getLogger(__name__)

# The outbox kind of an answer sent later (templates/slack/slack-uitkomst.blocks.j2).
ANSWER_KIND = "slack-uitkomst"
GAVE_UP_NOTE = "processing failed repeatedly; see the service log"
POSTGRES_AT_ONCE = 2  # forms processed at once on PostgreSQL (LiveProcessing)


@dataclass(frozen=True)
class Answer:
    text: str  # Slack mrkdwn, every value escaped (bot.texts)
    reference: str = ""  # what the logboek may name: the signal number


@dataclass(frozen=True)
class FormHandler:
    """``work`` runs the core command in the given transaction and returns (answer, reference);
    a user error it raises is a refusal, worded by ``refused``."""

    work: Callable[[Session, Bot, StoredForm], tuple[str, str]]
    refused: Callable[[BaseException], str]


HANDLERS: dict[str, FormHandler] = {
    FORM_KIND: FormHandler(place_stored_signal, signal_refused),
}


class _DoneElsewhere(Exception):
    """Another process recorded the form's outcome first: roll back, answer nothing."""


def process_stored(
    bot: Bot, vault: FormVault, inbound_id: int, *, later: bool, now: datetime | None = None
) -> Answer | None:
    """Process a stored form; its answer, or ``None`` when it was done elsewhere. ``later``:
    the answer goes to the outbox in the same transaction (the modal is gone)."""
    row = _waiting(bot, inbound_id)
    if row is None:
        return None
    form = vault.open(row.raw)
    handler = HANDLERS[form.kind]
    moment = now or utcnow()

    def work(session: Session) -> Answer:
        _finish(session, inbound_id, InboundStatus.PROCESSED, moment)
        text, reference = handler.work(session, bot, form)
        answer = Answer(text, reference)
        if later:
            _enqueue(session, inbound_id, row.mail_from, form.linked.professional_id, answer)
        return answer

    def refuse(error: UserError) -> Callable[[Session], Answer]:
        refusal = Answer(handler.refused(error))

        def record(session: Session) -> Answer:
            _finish(session, inbound_id, InboundStatus.PROCESSED, moment, note=error.code)
            if later:
                _enqueue(session, inbound_id, row.mail_from, form.linked.professional_id, refusal)
            return refusal

        return record

    try:
        try:
            return run_in_transaction(bot.engine, work)
        except UserError as error:  # rolled back: the refusal is the outcome
            return run_in_transaction(bot.engine, refuse(error))
    except _DoneElsewhere:
        return None


class LiveProcessing:
    """The live path: process what was just stored. The forms being stored come first (the
    modals wait for them): a form starts processing only when no form waits to be stored, and
    only a few at a time — on SQLite one, as it has one writer anyway, and threads queueing for
    its write lock would keep the stores waiting (its busy wait backs off up to 100 ms at a
    time); on PostgreSQL a few, whose round trips overlap. A failure is logged; the form stays
    stored and the recovery worker tries again after its lease (and answers by DM)."""

    def __init__(self, bot: Bot, vault: FormVault, *, stores_idle: asyncio.Event) -> None:
        self.bot = bot
        self.vault = vault
        self._stores_idle = stores_idle  # FormIntake.idle
        self._turns = asyncio.Semaphore(1 if is_sqlite(bot.engine) else POSTGRES_AT_ONCE)

    async def process(self, inbound_id: int) -> Answer | None:
        try:
            async with self._turns:
                await self._stores_idle.wait()
                return await asyncio.to_thread(
                    process_stored, self.bot, self.vault, inbound_id, later=False
                )
        except Exception:
            log.exception("stored Slack form %s failed; it is tried again later", inbound_id)
            return None
        finally:
            self.bot.outbox_waiting.set()  # the command's notifications, e.g. a match


def fail_if_exhausted(bot: Bot, inbound_id: int, *, now: datetime | None = None) -> bool:
    """After ``MAX_ATTEMPTS`` failed attempts the form fails (kept sealed for an administrator,
    until the retention sweep) and its sender gets the apology by DM. Whether it did."""
    row = _waiting(bot, inbound_id)
    if row is None or row.attempts < MAX_ATTEMPTS:
        return False
    apology = Answer(f"Uw formulier is niet verwerkt. {APOLOGY}")

    def fail(session: Session) -> None:
        status = InboundStatus.FAILED
        _finish(session, inbound_id, status, now or utcnow(), note=GAVE_UP_NOTE, erase=False)
        _enqueue(session, inbound_id, row.mail_from, None, apology)

    try:
        run_in_transaction(bot.engine, fail)
    except _DoneElsewhere:
        return False
    return True


def _waiting(bot: Bot, inbound_id: int) -> InboundMessage | None:
    with Session(bot.engine) as session:
        row = session.get(InboundMessage, inbound_id)
    if row is None or row.status != InboundStatus.RECEIVED or not row.raw:
        return None
    return row


def _finish(
    session: Session,
    inbound_id: int,
    status: InboundStatus,
    now: datetime,
    *,
    note: str | None = None,
    erase: bool = True,
) -> None:
    if not finish_waiting(session, [inbound_id], status=status, now=now, note=note, erase=erase):
        raise _DoneElsewhere


def _enqueue(
    session: Session,
    inbound_id: int,
    user_id: str,
    professional_id: int | None,
    answer: Answer,
) -> None:
    """The answer as a DM to the sender (a Slack user id is a DM channel for the bot)."""
    enqueue_many(
        session,
        [
            NewNotification(
                kind=ANSWER_KIND,
                channel=Channel.SLACK.value,
                recipient=user_id,
                recipient_role="professional",
                reference=answer.reference,
                context={"text": answer.text},
                idempotency_key=f"{ANSWER_KIND}:{inbound_id}",
                professional_id=professional_id,
            )
        ],
    )
