"""Answering a view submission: the one place where the answer to Slack depends on the outcome.

Slack shows errors on a modal's fields only from the acknowledgement itself
(``response_action: errors``), so a submission runs its core command *before* acknowledging —
but never longer than :data:`ANSWER_WITHIN`: Slack drops an answer after 3 seconds. When the
command takes longer (a busy database), the modal is acknowledged with a "being processed" view
and the outcome follows as a message; the command itself is not interrupted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from slack_bolt.async_app import AsyncAck

from bot.blocks import notice_view
from bot.errors import error_text
from bot.reply import ReplyTo
from core.errors import DomainError, UserError

log = logging.getLogger(__name__)

T = TypeVar("T")

ANSWER_WITHIN = 2.0  # seconds; Slack waits 3 s for the answer to a view submission
PENDING_TEXT = (
    "Uw invoer wordt verwerkt. U krijgt zo een bericht van de verwijsindex met de uitkomst."
)

FieldErrors = Callable[[DomainError], dict[str, str] | None]


class Submission:
    def __init__(self, ack: AsyncAck, reply: ReplyTo, *, title: str) -> None:
        self._ack = ack
        self.reply = reply
        self.title = title
        self.acknowledged = False

    async def outcome(self, job: Awaitable[T]) -> T:
        """The job's result; past the deadline the modal is acknowledged first."""
        task = asyncio.ensure_future(job)
        done, _ = await asyncio.wait({task}, timeout=ANSWER_WITHIN)
        if not done:
            log.info("submission takes longer than %.1f s; answering later", ANSWER_WITHIN)
            await self.ack(response_action="update", view=notice_view(self.title, PENDING_TEXT))
        return await task

    async def ack(self, **answer: Any) -> None:
        if not self.acknowledged:
            self.acknowledged = True
            await self._ack(**answer)

    async def close(self) -> None:
        """Done: the modal closes (if it is still waiting for its answer)."""
        await self.ack()

    async def refuse(self, error: BaseException, field_errors: FieldErrors | None = None) -> None:
        """Show why: on the fields when it names one, else in the modal, else as a message."""
        if not isinstance(error, UserError):
            log.error("a Slack submission failed", exc_info=error)
        text = error_text(error)
        if self.acknowledged:
            await self.reply(text)
            return
        errors = field_errors(error) if field_errors and isinstance(error, DomainError) else None
        if errors:
            await self.ack(response_action="errors", errors=errors)
        else:
            await self.ack(response_action="update", view=notice_view(self.title, text))

    async def refuse_with(self, text: str) -> None:
        if self.acknowledged:
            await self.reply(text)
        else:
            await self.ack(response_action="update", view=notice_view(self.title, text))
