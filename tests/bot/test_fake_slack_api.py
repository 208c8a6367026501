"""The fake Slack Web API answers slack_sdk's AsyncWebClient as Slack would."""

from __future__ import annotations

import json
from collections.abc import Iterator

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.bot.fake_slack_api import FakeSlackApi


@pytest.fixture
def api() -> Iterator[FakeSlackApi]:
    with FakeSlackApi() as fake:
        yield fake


def _client(api: FakeSlackApi) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=api.url)


async def test_users_info_and_auth_test(api: FakeSlackApi) -> None:
    api.add_user("U1", "a.jansen@ggd.example", name="Anna Jansen")
    api.add_user("U2", "oud@ggd.example", deleted=True)
    client = _client(api)

    assert (await client.auth_test())["user_id"] == api.bot_user_id
    user = (await client.users_info(user="U1"))["user"]
    assert user["profile"]["email"] == "a.jansen@ggd.example"
    assert user["real_name"] == "Anna Jansen"
    assert user["deleted"] is False
    assert (await client.users_info(user="U2"))["user"]["deleted"] is True
    with pytest.raises(SlackApiError) as refused:
        await client.users_info(user="U404")
    assert refused.value.response["error"] == "user_not_found"
    assert [c.args["user"] for c in api.calls_to("users.info")] == ["U1", "U2", "U404"]


async def test_post_message_records_parsed_blocks_and_answers_increasing_ts(
    api: FakeSlackApi,
) -> None:
    client = _client(api)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "Match M-3"}}]
    first = await client.chat_postMessage(channel="U1", text="Match M-3", blocks=blocks)
    second = await client.chat_postMessage(channel="C9", text="Signaal S-12")

    assert first["channel"] == "DU1" and second["channel"] == "C9"
    assert float(second["ts"]) > float(first["ts"])
    call = api.calls_to("chat.postMessage")[0]
    assert call.args["blocks"] == blocks and call.token == "xoxb-test"

    updated = await client.chat_update(channel=first["channel"], ts=first["ts"], text="klaar")
    assert updated["ts"] == first["ts"]
    dm = await client.conversations_open(users="U1")
    assert dm["channel"]["id"] == "DU1"
    ephemeral = await client.chat_postEphemeral(channel="C9", user="U1", text="ok")
    assert ephemeral["message_ts"]


async def test_views_answer_with_an_id(api: FakeSlackApi) -> None:
    client = _client(api)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "Signaal afgeven"}}]
    view = {"type": "modal", "callback_id": "signaal", "title": {"type": "plain_text",
            "text": "Signaal"}, "blocks": blocks}
    opened = await client.views_open(trigger_id="123.456", view=view)
    assert opened["view"]["id"].startswith("V")
    assert opened["view"]["callback_id"] == "signaal"
    updated = await client.views_update(view_id=opened["view"]["id"], view=view)
    assert updated["view"]["id"] == opened["view"]["id"]
    await client.views_push(trigger_id="1.2", view=view)
    await client.views_publish(user_id="U1", view={"type": "home", "blocks": blocks})
    assert api.calls_to("views.publish")[0].args["view"]["type"] == "home"
    assert [c.method for c in api.calls] == [
        "views.open", "views.update", "views.push", "views.publish"
    ]


async def test_form_encoded_blocks_are_parsed(api: FakeSlackApi) -> None:
    blocks = [{"type": "divider"}]
    async with aiohttp.ClientSession() as session, session.post(
        api.url + "chat.postMessage",
        data={"channel": "C1", "blocks": json.dumps(blocks)},
        headers={"Authorization": "Bearer xoxb-test"},
    ) as response:
        assert (await response.json())["ok"] is True
    assert api.calls_to("chat.postMessage")[0].args["blocks"] == blocks


async def test_missing_token_is_not_authed(api: FakeSlackApi) -> None:
    with pytest.raises(SlackApiError) as refused:
        await AsyncWebClient(base_url=api.url).chat_postMessage(channel="C1", text="x")
    assert refused.value.response["error"] == "not_authed"
    assert api.calls_to("chat.postMessage")[0].token is None


async def test_rate_limit_answers_429_with_retry_after_then_recovers(api: FakeSlackApi) -> None:
    api.rate_limit("chat.postMessage", times=2, retry_after=7)
    client = _client(api)
    for _ in range(2):
        with pytest.raises(SlackApiError) as limited:
            await client.chat_postMessage(channel="C1", text="x")
        assert limited.value.response.status_code == 429
        assert limited.value.response.headers["Retry-After"] == "7"
    assert (await client.chat_postMessage(channel="C1", text="x"))["ok"] is True
    assert len(api.calls_to("chat.postMessage")) == 3
    assert len(api.calls_to("chat.postMessage", succeeded=True)) == 1


async def test_fail_answers_the_scripted_error_then_recovers(api: FakeSlackApi) -> None:
    api.fail("chat.postMessage", "account_inactive")
    client = _client(api)
    with pytest.raises(SlackApiError) as failed:
        await client.chat_postMessage(channel="U1", text="x")
    assert failed.value.response["error"] == "account_inactive"
    assert (await client.chat_postMessage(channel="U1", text="x"))["ok"] is True


async def test_wait_for_async_and_response_url(api: FakeSlackApi) -> None:
    async with aiohttp.ClientSession() as session, session.post(
        api.response_url("abc"), json={"text": "Signaal geplaatst"}
    ) as response:
        assert response.status == 200
    calls = await api.wait_for_async("response_url")
    assert calls[0].args["text"] == "Signaal geplaatst"
    with pytest.raises(AssertionError):
        await api.wait_for_async("chat.update", timeout=0.1)


def test_stop_releases_the_port() -> None:
    api = FakeSlackApi().start()
    url = api.url
    api.stop()
    with pytest.raises(RuntimeError):
        _ = api.url
    assert url.startswith("http://127.0.0.1:") and url.endswith("/api/")
