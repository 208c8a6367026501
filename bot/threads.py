"""Threads and answered messages on the Slack side (``core.slack_threads`` keeps them).

* **In the thread.** A message to a recipient about a subject they already had a message about
  is posted in that first message's thread (``thread_ts``, in its channel: a DM's ``D…`` id).
  One that asks for an answer (a reminder) is broadcast to the conversation as well
  (``reply_broadcast``): a thread reply alone notifies nobody who never took part in the thread.
* **Answered elsewhere.** When a subject is answered (by mail or by another person's button),
  the thread's messages with buttons are updated with ``chat.update``: rendered again from their
  outbox row, the buttons replaced by the bot's ``antwoord-verwerkt`` line
  (``bot.answered.answered_blocks``), the same shape a pressed message gets.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.answered import answered_blocks, without_answers
from bot.texts import BotTexts
from core.db import run_in_transaction
from core.models import Channel
from core.outbox import OutboundNotification
from core.rendering import RenderedSlack
from core.slack_threads import (
    AnsweredMessage,
    DueUpdate,
    ThreadRoot,
    claim_due_updates,
    remember_root,
    reserve_root,
    root_for,
    update_done,
    update_failed,
)

log = logging.getLogger(__name__)

# chat.update's answers that no retry will change: the message is gone or may not be edited.
GONE = frozenset(
    {
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_blocks",
        "msg_too_long",
    }
)

Renderer = Callable[[OutboundNotification], RenderedSlack]
ClientFor = Callable[[OutboundNotification], Awaitable[AsyncWebClient]]
# Sends one chat.update; returns None when done, else Slack's error code (or "unreachable").
Updater = Callable[[AsyncWebClient, str, str, str, list[dict[str, object]]], Awaitable[str | None]]


class SlackThreads:
    def __init__(self, engine: Engine, texts: BotTexts) -> None:
        self.engine = engine
        self.texts = texts

    async def _run(self, work: Callable[[Session], object]) -> object:
        return await asyncio.to_thread(run_in_transaction, self.engine, work)

    async def root_for(self, notification: OutboundNotification) -> ThreadRoot | None:
        def find(session: Session) -> ThreadRoot | None:
            return root_for(
                session,
                recipient=notification.recipient,
                subject=notification.reference,
                professional_id=notification.professional_id,
                institution_id=notification.institution_id,
            )

        root = await self._run(find)
        return root if isinstance(root, ThreadRoot) else None

    async def reserve(self, notification: OutboundNotification) -> None:
        def keep(session: Session) -> None:
            reserve_root(
                session,
                recipient=notification.recipient,
                subject=notification.reference,
                professional_id=notification.professional_id,
                institution_id=notification.institution_id,
            )

        await self._run(keep)

    async def remember(self, notification: OutboundNotification, root: ThreadRoot) -> None:
        def keep(session: Session) -> None:
            remember_root(
                session,
                recipient=notification.recipient,
                subject=notification.reference,
                root=root,
                professional_id=notification.professional_id,
                institution_id=notification.institution_id,
                outbox_id=notification.id,
            )

        await self._run(keep)

    # -- answered elsewhere --------------------------------------------------------------------

    def line(self, answer: dict[str, object], answered_at: datetime) -> str:
        moment = answer.get("moment")
        return self.texts.render(
            "antwoord-verwerkt",
            name=str(answer.get("name") or ""),
            action=str(answer.get("action") or ""),
            argument=str(answer.get("argument") or ""),
            detail="",
            moment=datetime.fromisoformat(moment) if isinstance(moment, str) else answered_at,
        )

    async def show_answers(
        self, render: Renderer, client_for: ClientFor, update: Updater, *, limit: int = 20
    ) -> int:
        """Update the messages of every thread whose answer is due; returns how many threads.
        A message Slack will not let be updated any more is passed by; any other failure
        leaves the thread due, to be tried again after a pause (re-updating the messages
        already done is harmless: the same content)."""
        claimed = await self._run(lambda s: claim_due_updates(s, limit=limit))
        due = claimed if isinstance(claimed, list) else []
        for item in due:
            failed = await self._show(item, render, client_for, update)
            if failed:
                log.warning("updating the answered Slack messages failed (%s); later again", failed)
                await self._run(functools.partial(_failed, item))
            else:
                await self._run(functools.partial(_done, item))
        return len(due)

    async def _show(
        self, item: DueUpdate, render: Renderer, client_for: ClientFor, update: Updater
    ) -> str | None:
        for due in item.answers:
            line = self.line(due.answer, item.answered_at)
            for message in due.messages:
                error = await self._show_one(message, item, line, render, client_for, update)
                if error is not None and error not in GONE:
                    return error
        return None

    async def _show_one(
        self,
        message: AnsweredMessage,
        item: DueUpdate,
        line: str,
        render: Renderer,
        client_for: ClientFor,
        update: Updater,
    ) -> str | None:
        """One message: rendered again, and updated when it has buttons to make way (an
        executed transfer's own message, say, has none: it stays as it is)."""
        notification = _notification(message, item)
        try:
            blocks = render(notification).blocks
            client = await client_for(notification)
        except Exception as exc:  # no template, no installation any more: nothing to update
            log.info("answered message outbox:%s passed by: %s", message.outbox_id, exc)
            return None
        if without_answers(blocks) == blocks:
            return None
        return await update(
            client, message.channel, message.ts, line, answered_blocks(blocks, line)
        )


def _failed(item: DueUpdate, session: Session) -> None:
    update_failed(session, item)


def _done(item: DueUpdate, session: Session) -> None:
    update_done(session, item)


def _notification(message: AnsweredMessage, item: DueUpdate) -> OutboundNotification:
    """The outbox row of a posted message, enough to render it again and pick its token."""
    return OutboundNotification(
        id=message.outbox_id,
        kind=message.kind,
        channel=Channel.SLACK.value,
        recipient=message.channel,
        recipient_role="",
        reference="",
        context=message.context,
        reply_token=message.reply_token,
        in_reply_to=None,
        idempotency_key="",
        attempts=0,
        professional_id=item.professional_id,
        institution_id=item.institution_id,
    )
