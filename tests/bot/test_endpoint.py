"""The HTTP endpoint: only requests signed with the app's signing secret, and only recent ones,
reach a listener (api.slack.com/authentication/verifying-requests-from-slack)."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from tests.bot.conftest import ANNA, SlackSender, sign
from tests.bot.fake_slack_api import FakeSlackApi


def _help_body(sender: SlackSender) -> str:
    return urlencode(
        {
            "command": "/verwijsindex",
            "text": "help",
            "user_id": "UANNA0001",
            "team_id": "T0VERWIJS",
            "channel_id": "CGENERAL1",
            "trigger_id": sender.next_id("trigger."),
            "response_url": sender.api.response_url("help"),
        }
    )


def test_a_signed_request_is_answered(sender: SlackSender) -> None:
    answer = sender.command("/verwijsindex", "help", ANNA)
    assert answer.status == 200
    assert "/verwijsindex afwezig" in answer.json()["text"]
    assert answer.json()["response_type"] == "ephemeral"


def test_a_bad_signature_is_refused_with_401(sender: SlackSender, slack_api: FakeSlackApi) -> None:
    body = _help_body(sender)
    stamp = str(int(time.time()))
    forged = sign(body, stamp, secret="not-the-signing-secret")
    answer = sender.post(
        body, "application/x-www-form-urlencoded", timestamp=int(stamp), signature=forged
    )
    assert answer.status == 401
    assert "afwezig" not in answer.body
    assert slack_api.calls == []


def test_a_tampered_body_is_refused_with_401(sender: SlackSender) -> None:
    body = _help_body(sender)
    stamp = str(int(time.time()))
    signature = sign(body, stamp)
    answer = sender.post(
        body.replace("help", "mijn"),
        "application/x-www-form-urlencoded",
        timestamp=int(stamp),
        signature=signature,
    )
    assert answer.status == 401


def test_a_timestamp_older_than_five_minutes_is_refused_with_401(
    sender: SlackSender, slack_api: FakeSlackApi
) -> None:
    body = _help_body(sender)
    old = int(time.time()) - 5 * 60 - 30
    # Correctly signed, but with the old timestamp: a replayed request.
    answer = sender.post(body, "application/x-www-form-urlencoded", timestamp=old)
    assert answer.status == 401
    recent = int(time.time()) - 4 * 60
    assert sender.post(body, "application/x-www-form-urlencoded", timestamp=recent).status == 200
    assert slack_api.calls_to("views.open") == []


def test_other_paths_are_not_found(sender: SlackSender) -> None:
    other = SlackSender(sender.url.replace("/slack/events", "/slack/other"), sender.api)
    assert other.command("/verwijsindex", "help", ANNA).status == 404
