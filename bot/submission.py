"""Answering a view submission: the one place where the answer to Slack depends on the outcome.

Slack shows errors on a modal's fields only from the acknowledgement itself
(``response_action: errors``), and drops an answer after 3 seconds: nothing waits longer than
:data:`ANSWER_WITHIN` before answering. Two shapes:

* :meth:`Submission.outcome` — a form whose core command decides its field errors (a decline's
  reason) runs the command *before* acknowledging, so the modal closes only once the command is
  committed; when it takes longer (a busy database), the modal stays open with a "busy" note on
  a field — never an "ok" for work that a crash could still lose. Pressing again is safe (the
  command is remembered with Slack's id for the view: it never runs twice).
* :meth:`Submission.stored` — a form checked without the database (a signal) is stored first
  and processed after the acknowledgement (``bot.submission_processing``); the modal closes
  only once the form is stored. When storing takes longer, the modal stays open with a "busy"
  note on a field: pressing the button again is safe (the same view is stored once), and a form
  that was stored after all is still processed and answered.

The deadline counts from the moment the submission arrived (this object is made first), so
the time spent finding out who submitted (``users.info``, at most ``bot.identity``'s
``lookup_timeout``) comes off it. A job past the deadline is not interrupted. A refusal found
after the acknowledgement comes as a message.
"""

from __future__ import annotations

import asyncio
import logging
import time
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
BUSY_TEXT = (
    "Het is even druk: uw invoer is nog niet verwerkt. Druk zo nog eens op de knop "
    "(wat al verwerkt is, telt nooit dubbel)."
)

FieldErrors = Callable[[DomainError], dict[str, str] | None]


class Submission:
    def __init__(self, ack: AsyncAck, reply: ReplyTo, *, title: str) -> None:
        self._ack = ack
        self.reply = reply
        self.title = title
        self.acknowledged = False
        self._arrived = time.monotonic()

    async def outcome(self, job: Awaitable[T], *, busy_field: str) -> T:
        """The job's result; past the deadline the modal stays open with :data:`BUSY_TEXT` on
        the input block ``busy_field``."""
        busy = {"response_action": "errors", "errors": {busy_field: BUSY_TEXT}}
        return await self._within_deadline(job, busy)

    async def stored(self, job: Awaitable[T], *, busy: dict[str, str]) -> T:
        """The storing job's result; past the deadline the modal stays open with ``busy``
        (``{block_id: text}``) shown on its fields."""
        return await self._within_deadline(job, {"response_action": "errors", "errors": busy})

    async def _within_deadline(self, job: Awaitable[T], late_answer: dict[str, Any]) -> T:
        task = asyncio.ensure_future(job)
        left = ANSWER_WITHIN - (time.monotonic() - self._arrived)
        done, _ = await asyncio.wait({task}, timeout=max(left, 0.0))
        if not done:
            log.info("submission takes longer than %.1f s; answering first", ANSWER_WITHIN)
            await self.ack(**late_answer)
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
