"""When Slack is on, and how it is reached (CONTRACT §1, §2)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import typer
from sqlalchemy.engine import Engine

import cli
from bot.context import build_bot
from bot.service import SlackMode, run_endpoint, slack_mode
from core.config import CoreConfig
from core.settings import Settings
from tests.bot.conftest import slack_settings
from tests.bot.fake_slack_api import FakeSlackApi

DISTRIBUTED = {"slack_client_id": "1.2", "slack_client_secret": "c"}


def _settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secrets: dict[str, str]) -> Settings:
    for name in (
        "SLACK_SIGNING_SECRET",
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "SLACK_CLIENT_ID",
        "SLACK_CLIENT_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env of the working copy
    return Settings(**secrets)


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
        # A distributed app: the client id and secret take the bot token's place.
        ({**DISTRIBUTED, "slack_signing_secret": "s"}, SlackMode.HTTP),
        (DISTRIBUTED, SlackMode.OFF),  # no way in for Slack's requests
        ({"slack_client_id": "1.2", "slack_signing_secret": "s"}, SlackMode.OFF),  # half of it
    ],
)
def test_slack_mode_follows_the_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secrets: dict[str, str], mode: SlackMode
) -> None:
    assert slack_mode(_settings(tmp_path, monkeypatch, secrets)) == mode


@pytest.mark.parametrize(
    ("secrets", "said"),
    [
        (
            {**DISTRIBUTED, "slack_signing_secret": "s"},
            "Slack op http://127.0.0.1:3000/slack/events",
        ),
        ({"slack_bot_token": "xoxb-1", "slack_app_token": "xapp-1"}, "Slack via Socket Mode"),
        (
            {},
            "Slack staat uit: zet SLACK_BOT_TOKEN of SLACK_CLIENT_ID + SLACK_CLIENT_SECRET, en "
            "SLACK_SIGNING_SECRET of SLACK_APP_TOKEN.",
        ),
        (DISTRIBUTED, "Slack staat uit: zet SLACK_SIGNING_SECRET of SLACK_APP_TOKEN."),
        (
            {"slack_bot_token": "xoxb-1"},
            "Slack staat uit: zet SLACK_SIGNING_SECRET of SLACK_APP_TOKEN.",
        ),
        (
            {"slack_client_id": "1.2", "slack_signing_secret": "s"},
            "Slack staat uit: zet SLACK_CLIENT_SECRET.",
        ),
    ],
)
def test_serve_says_what_slack_mode_decides_and_names_what_is_missing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    secrets: dict[str, str],
    said: str,
) -> None:
    """``serve``'s start says what bot.service decides (a distributed app without
    SLACK_BOT_TOKEN runs), and ``serve --only slack`` is refused exactly when Slack is off,
    naming the same missing settings."""
    settings = _settings(tmp_path, monkeypatch, secrets)
    cli._say_what_runs(settings, ["slack"], [], 0)
    assert said in capsys.readouterr().out.splitlines()
    if slack_mode(settings) == SlackMode.OFF:
        with pytest.raises(typer.BadParameter) as refused:
            cli.refuse_unconfigured_roles(settings, ["slack"])
        assert refused.value.message == "slack: " + said.removeprefix("Slack staat uit: ")[:-1]
    else:
        cli.refuse_unconfigured_roles(settings, ["slack"])


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
