"""What every button listener and every answer-form submission does alike: find out who it is
(:mod:`bot.access`), run the core command once (:mod:`bot.dedupe`), answer a refusal, wake the
Slack delivery worker, and show the outcome where the button was pressed.

The listeners (:mod:`bot.answers`, :mod:`bot.transfers`, :mod:`bot.absence_form`,
:mod:`bot.signals`) keep only what differs: which command, and which text.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import Session

from bot.access import who_is, who_submits
from bot.answered import MessagePlace, mark_answered
from bot.context import Bot
from bot.dedupe import AlreadyDone, Done, SlackRequest, once
from bot.errors import error_text
from bot.home_tab import from_home, refresh_home
from bot.identity import Linked
from bot.reply import ReplyTo
from bot.submission import FieldErrors, Submission
from core.errors import UserError

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Press:
    """A button pressed by a linked professional (on a message or on the App Home)."""

    bot: Bot
    client: AsyncWebClient
    body: dict[str, Any]
    reply: ReplyTo
    linked: Linked

    async def once(
        self, action: dict[str, Any], work: Callable[[Session], T], *, failed: str
    ) -> Done[T] | None:
        """``work`` run once for this press (a repeat of the press does nothing); ``None`` when
        there is nothing to show: refused (the presser hears why), or done before. ``failed``
        names the work in the log when it fails unexpectedly."""
        request = SlackRequest(
            "action", f"{action.get('action_ts')}:{action['action_id']}", self.reply.user_id
        )
        try:
            outcome = await self.bot.run(once(request, work))
        except Exception as error:
            if not isinstance(error, UserError):
                log.exception("%s failed", failed)
            await self.reply(error_text(error))
            return None
        self.bot.outbox_waiting.set()
        return None if isinstance(outcome, AlreadyDone) else outcome

    async def show(self, line: str, *, on_message: bool = True, else_reply: bool = True) -> None:
        """The outcome where the button was pressed: the message says who did what, without its
        buttons (``on_message``); the App Home is published again with ``line`` as its notice
        (the answered item leaves its list); else the presser hears it (``else_reply``)."""
        place = MessagePlace.of_action(self.body) if on_message else None
        if place is not None:
            await mark_answered(self.client, place, line)
        elif from_home(self.body):
            await refresh_home(self.bot, self.client, self.body, notice=line)
        elif else_reply:
            await self.reply(line)

    async def open(self, view: dict[str, Any], *, unopened: str, what: str) -> None:
        """Open the modal ``view``; when Slack refuses, the presser hears ``unopened`` (``what``
        names the modal in the log)."""
        try:
            await self.client.views_open(trigger_id=self.body["trigger_id"], view=view)
        except SlackApiError as exc:
            log.warning("views.open for %s failed: %s", what, exc.response.get("error"))
            await self.reply(unopened)


async def pressed(bot: Bot, client: AsyncWebClient, body: dict[str, Any]) -> Press | None:
    """Who pressed the button in ``body``; ``None`` (and a polite refusal) when it is not a
    linked professional."""
    user_id = body["user"]["id"]
    reply = ReplyTo(client, user_id, response_url=body.get("response_url"))
    linked = await who_is(bot, client, user_id, reply)
    return None if linked is None else Press(bot, client, body, reply, linked)


PressHandler = Callable[[Press, dict[str, Any]], Awaitable[None]]


def on_press(
    app: AsyncApp, bot: Bot, action_id: str | re.Pattern[str]
) -> Callable[[PressHandler], PressHandler]:
    """Register the decorated ``handler(press, action)`` for the button(s) ``action_id``: the
    press is acknowledged at once, and handled only when a linked professional pressed it."""

    def register(handler: PressHandler) -> PressHandler:
        @app.action(action_id)
        @bot.listener
        async def listener(
            ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
        ) -> None:
            await ack()
            press = await pressed(bot, client, body)
            if press is not None:
                await handler(press, action)

        return handler

    return register


@dataclass(frozen=True)
class Form:
    """A submitted modal whose core command decides its field errors (``bot.submission``:
    carried out before the acknowledgement)."""

    bot: Bot
    client: AsyncWebClient
    view: dict[str, Any]
    submission: Submission
    linked: Linked

    @property
    def reply(self) -> ReplyTo:
        return self.submission.reply

    async def once(
        self,
        work: Callable[[Session], T],
        *,
        busy_field: str,
        field_errors: FieldErrors | None = None,
    ) -> Done[T] | None:
        """``work`` run once for this view (a resubmission does nothing), then the modal closes;
        ``None`` when there is nothing to show: refused (on the fields ``field_errors`` names,
        else in the modal), or done before."""
        request = SlackRequest("view", str(self.view["id"]), self.reply.user_id)
        try:
            outcome = await self.submission.outcome(
                self.bot.run(once(request, work)), busy_field=busy_field
            )
        except Exception as error:
            await self.submission.refuse(error, field_errors)
            return None
        await self.submission.close()
        self.bot.outbox_waiting.set()
        return None if isinstance(outcome, AlreadyDone) else outcome


async def submitted(
    bot: Bot,
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    *,
    title: str,
    response_url: str | None = None,
) -> Form | None:
    """Who submitted the modal ``view`` (titled ``title``); ``None`` (the refusal replaces the
    modal) when it is not a linked professional. Answers after the acknowledgement go to
    ``response_url`` when the modal came from a command, else as a direct message."""
    user_id = body["user"]["id"]
    reply = ReplyTo(client, user_id, response_url=response_url or None)
    submission = Submission(ack, reply, title=title)
    linked = await who_submits(bot, client, user_id, submission)
    return None if linked is None else Form(bot, client, view, submission, linked)
