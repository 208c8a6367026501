"""When Slack is on, and how it is reached (CONTRACT §1, §2)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bot.context import build_bot
from bot.service import SlackMode, run_endpoint, slack_mode
from core.config import CoreConfig
from core.settings import Settings
from tests.bot.conftest import slack_settings
from tests.bot.fake_slack_api import FakeSlackApi


@pytest.mark.parametrize(
    ("secrets", "mode"),
    [
        ({}, SlackMode.OFF),
        ({"slack_signing_secret": "s"}, SlackMode.OFF),  # no bot token: nothing to talk with
        ({"slack_bot_token": "xoxb-1"}, SlackMode.OFF),  # HTTP without a secret: unverifiable
        ({"slack_bot_token": "xoxb-1", "slack_signing_secret": "s"}, SlackMode.HTTP),
        ({"slack_bot_token": "xoxb-1", "slack_app_token": "xapp-1"}, SlackMode.SOCKET),
        (
            {"slack_bot_token": "xoxb-1", "slack_signing_secret": "s", "slack_app_token": "xapp-1"},
            SlackMode.SOCKET,
        ),
    ],
)
def test_slack_mode_follows_the_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secrets: dict[str, str], mode: SlackMode
) -> None:
    for name in ("SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env of the working copy
    assert slack_mode(Settings(**secrets)) == mode


async def test_socket_mode_connects_out_with_the_app_token(
    tmp_path: Path,
    database_url: str,
    synced_engine: Engine,
    config: CoreConfig,
    slack_api: FakeSlackApi,
) -> None:
    """With an app token the bot opens a WebSocket to Slack (apps.connections.open) instead of
    listening; the fake Web API offers no WebSocket, so the bot keeps trying — and still stops
    at once when asked."""
    settings = slack_settings(
        tmp_path, database_url, slack_api.url, slack_app_token="xapp-1-verwijsindex"
    )
    assert slack_mode(settings) == SlackMode.SOCKET
    stop = asyncio.Event()
    endpoint = asyncio.create_task(run_endpoint(build_bot(settings, synced_engine, config), stop))
    [call] = await slack_api.wait_for_async("apps.connections.open", succeeded=False)
    assert call.token == "xapp-1-verwijsindex"
    stop.set()
    await asyncio.wait_for(endpoint, 5)
