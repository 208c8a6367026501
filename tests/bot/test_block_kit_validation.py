"""The fake Slack Web API checks every message and view as Slack does (slack_sdk's Block Kit
models and Slack's documented limits, :mod:`demo.block_kit`): what Slack would refuse is
answered ``invalid_blocks`` and fails the test that sent it. Every notification kind, the bot's
own modals at their largest, and the confirm dialogs of the consequential buttons pass it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import answers, transfers
from bot.blocks import notice_view
from bot.signal_form import signal_modal
from core.config import CoreConfig
from core.models import OutboxMessage
from core.rendering import TemplateRenderer
from demo import block_kit
from tests.bot.fake_slack_api import FakeSlackApi
from tests.core.conftest import core  # noqa: F401  (the core driver the scenario needs)
from tests.core.test_slack_templates import renderer, rows, slack_context  # noqa: F401

SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "Match M-3"}}
BUTTON = {"type": "button", "action_id": "antwoord_akkoord", "value": "token",
          "text": {"type": "plain_text", "text": "Akkoord"}}  # fmt: skip


def _modal(**changes: Any) -> dict[str, Any]:
    view = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Signaal"},
        "blocks": [SECTION],
    }
    return {**view, **changes}


INVALID: dict[str, tuple[str, dict[str, Any], str]] = {
    "51 blocks": ("chat.postMessage", {"channel": "U1", "blocks": [SECTION] * 51}, "at most 50"),
    "a section of 3001 characters": (
        "chat.update",
        {
            "channel": "C1",
            "ts": "1.2",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}],
        },
        "3000",
    ),
    "an unknown attribute": (
        "chat.postMessage",
        {"channel": "U1", "blocks": [{**SECTION, "text": {**SECTION["text"], "emoji": True}}]},
        "emoji",
    ),
    "an unknown block type": (
        "chat.postMessage",
        {"channel": "U1", "blocks": [{"type": "sectie"}]},
        "block type",
    ),
    "a button text of 76 characters": (
        "chat.postEphemeral",
        {
            "channel": "C1",
            "user": "U1",
            "blocks": [
                {
                    "type": "actions",
                    "elements": [{**BUTTON, "text": {"type": "plain_text", "text": "x" * 76}}],
                }
            ],
        },
        "75",
    ),
    "a button value of 2001 characters": (
        "chat.postMessage",
        {
            "channel": "U1",
            "blocks": [{"type": "actions", "elements": [{**BUTTON, "value": "x" * 2001}]}],
        },
        "2000",
    ),
    "a header in mrkdwn": (
        "chat.postMessage",
        {"channel": "U1", "blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}]},
        "plain_text",
    ),
    "a block_id used twice": (
        "chat.postMessage",
        {"channel": "U1", "blocks": [{**SECTION, "block_id": "a"}, {**SECTION, "block_id": "a"}]},
        "used twice",
    ),
    "an empty text": (
        "chat.postMessage",
        {"channel": "U1", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": " "}}]},
        "empty",
    ),
    "a confirm text of 301 characters": (
        "chat.postMessage",
        {
            "channel": "U1",
            "blocks": [
                {
                    "type": "actions",
                    "elements": [
                        {
                            **BUTTON,
                            "confirm": {
                                "title": {"type": "plain_text", "text": "Zeker?"},
                                "text": {"type": "plain_text", "text": "x" * 301},
                                "confirm": {"type": "plain_text", "text": "Ja"},
                                "deny": {"type": "plain_text", "text": "Nee"},
                            },
                        }
                    ],
                }
            ],
        },
        "300",
    ),
    "a modal title of 25 characters": (
        "views.open",
        {"trigger_id": "1.2", "view": _modal(title={"type": "plain_text", "text": "x" * 25})},
        "24",
    ),
    "a modal with inputs and no submit": (
        "views.push",
        {
            "trigger_id": "1.2",
            "view": _modal(
                blocks=[
                    {
                        "type": "input",
                        "block_id": "reden",
                        "label": {"type": "plain_text", "text": "Reden"},
                        "element": {"type": "plain_text_input", "action_id": "waarde"},
                    }
                ]
            ),
        },
        "submit",
    ),
    "a view of 101 blocks": (
        "views.publish",
        {"user_id": "U1", "view": {"type": "home", "blocks": [SECTION] * 101}},
        "at most 100",
    ),
    "private_metadata of 3001 characters": (
        "views.update",
        {"view_id": "V1", "view": _modal(private_metadata="x" * 3001)},
        "3000",
    ),
    "a text input longer than Slack allows": (
        "views.open",
        {
            "trigger_id": "1.2",
            "view": _modal(
                submit={"type": "plain_text", "text": "Ok"},
                blocks=[
                    {
                        "type": "input",
                        "block_id": "reden",
                        "label": {"type": "plain_text", "text": "Reden"},
                        "element": {
                            "type": "plain_text_input",
                            "action_id": "waarde",
                            "max_length": 3001,
                        },
                    }
                ],
            ),
        },
        "max_length",
    ),
}


@pytest.fixture
def api() -> Any:
    with FakeSlackApi() as fake:
        yield fake


@pytest.mark.parametrize("case", sorted(INVALID))
async def test_what_slack_would_refuse_is_answered_invalid_blocks_and_kept(
    api: FakeSlackApi, case: str
) -> None:
    method, args, problem = INVALID[case]
    client = AsyncWebClient(token="xoxb-test", base_url=api.url)
    with pytest.raises(SlackApiError) as refused:
        await client.api_call(method, json=args)
    assert refused.value.response["error"] == "invalid_blocks"
    [invalid] = api.take_invalid()  # taken: this test sent it on purpose
    assert invalid.method == method
    assert any(problem in line for line in invalid.problems), invalid.problems
    assert "x" * 20 not in " ".join(invalid.problems)  # names the problem, quotes no text


async def test_a_message_text_past_4000_characters_is_too_long(api: FakeSlackApi) -> None:
    client = AsyncWebClient(token="xoxb-test", base_url=api.url)
    with pytest.raises(SlackApiError) as refused:
        await client.chat_postMessage(channel="U1", text="x" * 4001)
    assert refused.value.response["error"] == "msg_too_long"
    assert len(api.take_invalid()) == 1
    assert (await client.chat_postMessage(channel="U1", text="x" * 4000))["ok"] is True


def test_a_response_url_payload_is_checked_too(api: FakeSlackApi) -> None:
    body = json.dumps({"text": "x", "blocks": [SECTION] * 51}).encode()
    request = urllib.request.Request(
        api.response_url("a"), data=body, headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 400
    assert [p.method for p in api.take_invalid()] == ["response_url"]


async def test_the_suite_fails_a_test_whose_payload_slack_would_refuse() -> None:
    api = FakeSlackApi().start()
    client = AsyncWebClient(token="xoxb-test", base_url=api.url)
    with pytest.raises(SlackApiError):
        await client.chat_postMessage(channel="U1", text="x", blocks=[SECTION] * 51)
    with pytest.raises(AssertionError, match="what Slack would refuse") as failed:
        api.stop()  # the fixtures stop the fake at teardown: the test fails there
    assert "chat.postMessage: 51 blocks" in str(failed.value)


# --- what the app sends passes --------------------------------------------------------------


def test_every_notification_kind_passes_the_fakes_checks(
    renderer: TemplateRenderer,  # noqa: F811
    rows: list[OutboxMessage],  # noqa: F811
) -> None:
    for row in rows:
        message = renderer.render_slack_message(row.kind, slack_context(row))
        args = {"channel": row.recipient, "text": message.text, "blocks": message.blocks}
        assert block_kit.problems("chat.postMessage", args) == [], f"{row.kind} #{row.id}"


CONFIRMED = {
    "antwoord_akkoord", "antwoord_weiger", "antwoord_overdragen", "overdracht_uitvoeren",
    "antwoord_regie", "antwoord_afronden",
}  # fmt: skip


def test_consequential_buttons_ask_for_confirmation_and_others_do_not(
    renderer: TemplateRenderer,  # noqa: F811
    rows: list[OutboxMessage],  # noqa: F811
) -> None:
    seen: set[str] = set()
    for row in rows:
        for block in renderer.render_slack(row.kind, slack_context(row)):
            for element in block.get("elements") or [] if block["type"] == "actions" else []:
                confirm = element.get("confirm")
                if element["action_id"] not in CONFIRMED:
                    assert confirm is None, element["action_id"]
                    continue
                seen.add(element["action_id"])
                assert confirm["title"]["text"].endswith("?"), element["action_id"]
                assert confirm["deny"]["text"] == "Annuleren"
                assert confirm.get("style") in (None, element.get("style"))
    assert seen == CONFIRMED


def test_the_bots_own_modals_pass_at_their_largest(config: CoreConfig) -> None:
    long_names = [(f"instelling-{n}", "Jeugdhulp & Zorg " * 10) for n in range(150)]
    metadata = "x" * 2500
    views = {
        "decline": answers._reason_modal(metadata),
        "hand over": answers._hand_over_modal(metadata, long_names),
        "assign": answers._assign_modal(metadata, long_names),
        "close": answers._close_modal(metadata),
        "senior": transfers._senior_modal(
            [(f"s{n}@x.example", "Senior " * 20) for n in range(150)], {"from": "a", "to": "b"}
        ),
        "signal form": signal_modal(
            config, {"kenmerk": "K" * 500, "code": "laag"}, notes=["Let op: " * 400] * 12,
            metadata={"response_url": "https://hooks.slack.com/" + "x" * 500, "channel": "C1"},
        ),
        "notice": notice_view("Coördinatie weigeren en nog veel meer", "Tekst " * 1000),
    }  # fmt: skip
    for name, view in views.items():
        method = "views.update" if name == "notice" else "views.open"
        assert block_kit.problems(method, {"view": view}) == [], name
