"""The Bolt app (slack-bolt, asyncio): the listeners of every kind, registered per module with
``register(app, bot)`` (bolt-python's starter layout).

Built by :func:`create_app` from the settings and the core's engine and covenant; nothing is
built at import time. The Web API client talks to ``VERWIJSINDEX_SLACK_API_URL`` when set
(tests, proxies). Bolt verifies every HTTP request's signature and refuses a timestamp more
than five minutes off with 401 (api.slack.com/authentication/verifying-requests-from-slack).
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot import (
    absence_form,
    answers,
    commands,
    direct_messages,
    home_tab,
    installations,
    signals,
    transfers,
)
from bot.context import Bot
from bot.installations import authorize, distributed, oauth_settings
from bot.mrkdwn import unescape_slack_text
from bot.workspace import remember_workspace
from core.settings import Settings

log = logging.getLogger("verwijsindex.slack")

# Bolt and slack_sdk log request and response bodies at DEBUG; a signal's form holds a BSN.
# Their debug output stays off whatever the root level is (DOMAIN: no BSN in any log line).
QUIET_LOGGERS = ("slack_bolt", "slack_sdk", "verwijsindex.slack.bolt")


def web_client(settings: Settings) -> AsyncWebClient:
    """The app's client: the bot's token, or none for a distributed app (each request then gets
    its installation's token: bot.installations)."""
    if settings.slack_bot_token is None and not distributed(settings):
        raise ValueError("SLACK_BOT_TOKEN is not set: the Slack app needs the bot's token")
    base_url = settings.slack_api_url or AsyncWebClient.BASE_URL
    if not base_url.endswith("/"):
        base_url += "/"  # slack_sdk requests base_url + method
    if distributed(settings):
        return AsyncWebClient(base_url=base_url)
    assert settings.slack_bot_token is not None
    return AsyncWebClient(token=settings.slack_bot_token.get_secret_value(), base_url=base_url)


def quiet_slack_debug_logs() -> None:
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)


class _SameTokenFromEnvironment(logging.Filter):
    """Bolt also reads ``SLACK_BOT_TOKEN`` from the environment and warns that the client's token
    wins over it; they are the same token (both come from the settings), so the warning is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("As you gave `client` as well")


def create_app(bot: Bot) -> AsyncApp:
    settings = bot.settings
    quiet_slack_debug_logs()
    bolt_logger = logging.getLogger("verwijsindex.slack.bolt")
    if not any(isinstance(f, _SameTokenFromEnvironment) for f in bolt_logger.filters):
        bolt_logger.addFilter(_SameTokenFromEnvironment())
    signing_secret = settings.slack_signing_secret
    # Distributed (SLACK_CLIENT_ID/_SECRET): the OAuth install flow, and each request's token
    # from its workspace's installation; otherwise the one SLACK_BOT_TOKEN.
    multi: dict[str, Any] = {}
    if distributed(settings):
        multi = {
            "oauth_settings": oauth_settings(settings, bot.engine, bot.config.keys.ring),
            "authorize": authorize(bot.engine, bot.config.keys.ring),
        }
    app = AsyncApp(
        name="verwijsindex",
        logger=bolt_logger,
        signing_secret=signing_secret.get_secret_value() if signing_secret else "",
        client=web_client(settings),
        # Answer Slack as soon as a listener acknowledges; the work goes on after.
        process_before_response=False,
        **multi,
    )
    app.use(remember_workspace)  # after Bolt's authorize: the request's workspace
    app.use(unescape_slack_text)  # Slack's &amp; &lt; &gt; undone once, before any parsing
    installations.register(app, bot)
    signals.register(app, bot)
    direct_messages.register(app, bot)
    commands.register(app, bot)
    answers.register(app, bot)
    transfers.register(app, bot)
    home_tab.register(app, bot)
    absence_form.register(app, bot)  # the App Home's Afwezigheid melden
    return app
