"""When Slack is on, and how it is reached (CONTRACT §1, §2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.service import SlackMode, slack_mode
from core.settings import Settings


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
