"""Direct messages to the bot: ``signaal bsn=... code=...`` places a signal (CONTRACT §5);
anything else gets the short help.

Events are acknowledged by Bolt before this runs. Slack resends an event it thinks was lost
(``X-Slack-Retry-Num``, the same ``event_id``): the ``event_id`` is remembered with the signal,
and with a refusal, so a resent event neither places nor refuses twice.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.access import who_is
from bot.context import Bot
from bot.dedupe import AlreadyDone, SlackRequest, remember_refused
from bot.errors import error_text
from bot.inline_fields import split_fields
from bot.reply import ReplyTo
from bot.signals import confirmation, place_from_slack
from core.errors import InvalidInput, UserError
from core.fields import collect_fields, parse_signal

log = logging.getLogger(__name__)

SIGNAL_WORDS = ("signaal", "signal")


def _is_direct_message(event: dict[str, Any]) -> bool:
    """A person's own new message in the bot's DM (not an edit, a join or a bot's message)."""
    return (
        event.get("channel_type") == "im"
        and not event.get("subtype")
        and not event.get("bot_id")
        and bool(event.get("user"))
    )


def register(app: AsyncApp, bot: Bot) -> None:
    @app.event("message")
    @bot.listener
    async def direct_message(
        body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient
    ) -> None:
        if not _is_direct_message(event):
            return
        user_id = str(event["user"])
        reply = ReplyTo(client, user_id, channel=event.get("channel"))
        text = str(event.get("text") or "").strip()
        first, _, rest = text.partition(" ")
        if first.lower().rstrip(":") not in SIGNAL_WORDS:
            if await who_is(bot, client, user_id, reply) is not None:
                await reply(bot.help_text())
            return
        linked = await who_is(bot, client, user_id, reply)
        if linked is None:
            return
        # The event's id; the message's own channel and ts identify it as well as a fallback.
        slack_id = body.get("event_id") or f"{event.get('channel')}:{event.get('ts')}"
        request = SlackRequest("event", str(slack_id), user_id)
        inline = split_fields(rest)
        try:
            if inline.problems:
                raise InvalidInput("; ".join(inline.problems))
            command = parse_signal(collect_fields(inline.pairs))
            outcome = await place_from_slack(bot, linked, request, command)
        except UserError as error:
            if await bot.run(remember_refused(request)):
                await reply(error_text(error))
            return
        except Exception:
            log.exception("a signal by direct message failed")
            await reply(error_text(RuntimeError()))
            return
        if isinstance(outcome, AlreadyDone):
            return
        await reply(confirmation(bot, outcome.value, command))
