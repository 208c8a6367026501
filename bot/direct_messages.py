"""Direct messages to the bot: a DM never places a signal. One that looks like a signal
(:func:`bot.typed_signal.looks_like_signal`) gets a warning and a button that opens the
``/signaal`` form; anything else gets the short help.

A bot cannot delete a user's own message, and Slack keeps a DM in its history: a BSN typed there
stays. So the answer asks the user to delete it, repeats none of it (the button carries only the
fields that identify no one, :func:`bot.typed_signal.button_value`), and the form — where
identity belongs — opens from the button, because ``views.open`` needs the ``trigger_id`` a
click provides and a message event has none.

Events are acknowledged by Bolt before this runs. Slack resends an event it thinks was lost
(``X-Slack-Retry-Num``, the same ``event_id``): the ``event_id`` is remembered with the warning,
so a resent event is not answered twice.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.access import who_is
from bot.blocks import plain, section
from bot.context import Bot
from bot.dedupe import SlackRequest, remember_refused
from bot.reply import ReplyTo
from bot.signals import OPEN_FORM_ACTION
from bot.typed_signal import button_value, looks_like_signal, typed_signal

OPEN_FORM_LABEL = "Signaal-formulier openen"


def _is_direct_message(event: dict[str, Any]) -> bool:
    """A person's own new message in the bot's DM (not an edit, a join or a bot's message)."""
    return (
        event.get("channel_type") == "im"
        and not event.get("subtype")
        and not event.get("bot_id")
        and bool(event.get("user"))
    )


def use_the_form_blocks(text: str, button_value: str) -> list[dict[str, Any]]:
    return [
        section(text),
        {
            "type": "actions",
            "block_id": "signaal",
            "elements": [
                {
                    "type": "button",
                    "action_id": OPEN_FORM_ACTION,
                    "text": plain(OPEN_FORM_LABEL),
                    "style": "primary",
                    "value": button_value,
                }
            ],
        },
    ]


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
        text = str(event.get("text") or "")
        linked = await who_is(bot, client, user_id, reply)
        if linked is None:
            return
        if not looks_like_signal(text):
            await reply(bot.help_text())
            return
        # The event's id; the message's own channel and ts identify it as well as a fallback.
        slack_id = body.get("event_id") or f"{event.get('channel')}:{event.get('ts')}"
        if not await bot.run(remember_refused(SlackRequest("event", str(slack_id), user_id))):
            return  # a resent event: the warning was given
        warning = bot.texts.render("identiteit-in-chat", where="bericht")
        await reply(warning, blocks=use_the_form_blocks(warning, button_value(typed_signal(text))))
