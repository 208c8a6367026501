"""The App Home tab (CONTRACT §5): on ``app_home_opened`` the user's overview is published
(``views.publish``), built by :func:`bot.home.build_home_view`. Someone who is not a linked
professional sees a polite refusal there instead.

*Vorige* / *Volgende* re-publish it at another offset. A button pressed on the Home is handled
by the notifications' own listeners (:mod:`bot.answers`, :mod:`bot.transfers`,
:mod:`bot.absence_form`), which call :func:`refresh_home` afterwards (through
:mod:`bot.interactions`): the answered item leaves the list, and what was done shows under the
title.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import Session

from bot.access import professional_of, refusal_text
from bot.blocks import section
from bot.context import Bot
from bot.errors import error_text
from bot.home import NEXT_PAGE, PREVIOUS_PAGE, build_home_view, offset_of
from bot.identity import Linked
from core.errors import UserError

log = logging.getLogger(__name__)


def _notice(text_md: str) -> dict[str, Any]:
    return {"type": "home", "blocks": [section(text_md)]}


def from_home(body: dict[str, Any]) -> bool:
    """Whether a button press came from the App Home (not from a message)."""
    return str((body.get("view") or {}).get("type") or "") == "home"


async def publish_home(
    bot: Bot, client: AsyncWebClient, user_id: str, *, offset: int = 0, notice: str = ""
) -> None:
    """Build the user's Home at ``offset`` (with ``notice`` under its title) and publish it."""
    resolution = await bot.identity.resolve(client, user_id)
    if isinstance(resolution, Linked):
        linked = resolution

        def build(session: Session) -> dict[str, Any]:
            return build_home_view(
                session,
                bot.config,
                professional_of(session, linked),
                offset=offset,
                notice=notice,
                renderer=bot.renderer,
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


async def refresh_home(
    bot: Bot, client: AsyncWebClient, body: dict[str, Any], *, notice: str = ""
) -> None:
    """After a press on the Home (``body``: the action's or the view's payload): publish it
    again at the page it showed, with ``notice``."""
    await publish_home(
        bot, client, str(body["user"]["id"]), offset=offset_of(body.get("view")), notice=notice
    )


def register(app: AsyncApp, bot: Bot) -> None:
    @app.event("app_home_opened")
    @bot.listener
    async def home_opened(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab", "home") != "home":
            return  # the Messages tab
        await publish_home(bot, client, str(event["user"]))

    @app.action(re.compile(f"^({PREVIOUS_PAGE}|{NEXT_PAGE})$"))
    @bot.listener
    async def turn_page(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        value = str(action.get("value") or "0")
        offset = int(value) if value.isascii() and value.isdigit() else 0
        await publish_home(bot, client, str(body["user"]["id"]), offset=offset)
