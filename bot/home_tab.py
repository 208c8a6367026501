"""The App Home tab (CONTRACT §5): on ``app_home_opened`` the user's overview is published
(``views.publish``), built by :func:`bot.home.build_home_view`. Someone who is not a linked
professional sees a polite refusal there instead.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import Session

from bot.access import professional_of, refusal_text
from bot.blocks import section
from bot.context import Bot
from bot.errors import error_text
from bot.home import build_home_view
from bot.identity import Linked
from core.errors import UserError

log = logging.getLogger(__name__)


def _notice(text_md: str) -> dict[str, Any]:
    return {"type": "home", "blocks": [section(text_md)]}


def register(app: AsyncApp, bot: Bot) -> None:
    @app.event("app_home_opened")
    @bot.listener
    async def publish_home(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab", "home") != "home":
            return  # the Messages tab
        user_id = str(event["user"])
        resolution = await bot.identity.resolve(client, user_id)
        if isinstance(resolution, Linked):
            linked = resolution

            def build(session: Session) -> dict[str, Any]:
                return build_home_view(
                    session, bot.config, professional_of(session, linked), renderer=bot.renderer
                )

            try:
                view = await bot.run(build)
            except Exception as error:
                if not isinstance(error, UserError):
                    log.exception("building the App Home failed")
                view = _notice(error_text(error))
        else:
            view = _notice(refusal_text(bot, resolution))
        try:
            await client.views_publish(user_id=user_id, view=view)
        except SlackApiError as exc:
            log.warning("views.publish failed: %s", exc.response.get("error"))
