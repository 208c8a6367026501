"""Answering the user who asked, only them.

A slash command (and a modal opened from one) carries a ``response_url``: an answer posted there
is ephemeral in the channel where the user typed. Without one (a direct message, the App Home)
the answer is a direct message from the bot, as it is when the ``response_url`` fails (it lasts
30 minutes). Failing to answer is logged, never raised: the work it reports on is committed
already.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

log = logging.getLogger(__name__)

TIMEOUT = 10  # seconds for Slack to take an answer posted to a response_url


@dataclass(frozen=True)
class ReplyTo:
    client: AsyncWebClient
    user_id: str
    response_url: str | None = None
    channel: str | None = None  # a direct-message channel to answer in

    async def __call__(self, text: str, *, blocks: list[dict[str, Any]] | None = None) -> None:
        """Answer ``text``; with ``blocks`` (buttons) the text is the notification's fallback."""
        if self.response_url and await self._by_response_url(text, blocks):
            return
        try:
            await self.client.chat_postMessage(
                channel=self.channel or self.user_id, text=text, blocks=blocks
            )
        except (SlackApiError, ClientError, TimeoutError) as exc:
            log.warning("could not answer Slack user %s: %s", self.user_id, type(exc).__name__)

    async def _by_response_url(self, text: str, blocks: list[dict[str, Any]] | None) -> bool:
        assert self.response_url is not None
        try:
            response = await AsyncWebhookClient(self.response_url, timeout=TIMEOUT).send(
                text=text, blocks=blocks, response_type="ephemeral", replace_original=False
            )
        except (ClientError, TimeoutError) as exc:
            log.warning("response_url failed (%s); answering by DM", type(exc).__name__)
            return False
        if response.status_code != 200:
            log.warning("response_url answered %s; answering by DM", response.status_code)
            return False
        return True
