"""Answering the user who asked, only them.

A slash command (and a modal opened from one) carries a ``response_url``: an answer posted there
is ephemeral in the channel where the user typed. Without one (a direct message, the App Home)
the answer is a direct message from the bot. Failing to answer is logged, never raised: the
work it reports on is committed already.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import ClientError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplyTo:
    client: AsyncWebClient
    user_id: str
    response_url: str | None = None
    channel: str | None = None  # a direct-message channel to answer in

    async def __call__(self, text: str) -> None:
        try:
            if self.response_url:
                response = await AsyncWebhookClient(self.response_url).send(
                    text=text, response_type="ephemeral", replace_original=False
                )
                if response.status_code == 200:
                    return
                log.warning("response_url answered %s; answering by DM", response.status_code)
            await self.client.chat_postMessage(channel=self.channel or self.user_id, text=text)
        except (SlackApiError, ClientError, TimeoutError) as exc:
            log.warning("could not answer Slack user %s: %s", self.user_id, type(exc).__name__)
