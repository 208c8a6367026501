"""``bot/manifest.yml`` (issue 12.3): Slack's app manifest parses, and it and the app agree —
every slash command and event the app listens to is in it and reaches a listener, its request
URLs are the paths the endpoint serves, and its scopes are exactly those the Web API methods the
code calls need (minimal: nothing unused)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.engine import Engine

from bot import installations
from bot.app import create_app
from bot.context import build_bot
from bot.server import EVENTS_PATH, http_application
from core.config import CoreConfig
from core.settings import Settings
from tests.bot.conftest import ANNA, REPOSITORY, SlackSender, slack_settings, user

BOT = REPOSITORY / "bot"
MANIFEST = BOT / "manifest.yml"

# The bot scope each Web API method needs (docs.slack.dev/reference/methods/<method>).
METHOD_SCOPES: dict[str, set[str]] = {
    "auth.test": set(),
    "chat.postMessage": {"chat:write"},
    "chat.postEphemeral": {"chat:write"},
    "chat.update": {"chat:write"},
    "conversations.open": {"im:write"},
    "users.info": {"users:read"},
    "users.lookupByEmail": {"users:read.email"},
    "views.open": set(),
    "views.publish": set(),
    "views.push": set(),
    "views.update": set(),
}
# Scopes that come with a feature rather than a method: slash commands; the DMs users write
# (message.im); and users.info's profile.email, by which bot.identity links a professional.
FEATURE_SCOPES = {"commands", "im:history", "users:read.email"}
_API_CALL = re.compile(r"""\.api_call\(\s*["']([a-z]+\.[A-Za-z.]+)["']""")
_COMMAND = re.compile(r"""@app\.command\(\s*["'](/[a-z0-9_-]+)["']""")
_EVENT = re.compile(r"""@app\.event\(\s*["']([a-z_]+)["']""")


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    loaded = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _sources() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in sorted(BOT.glob("*.py")))


def _client_methods() -> dict[str, str]:
    """slack_sdk's client method (``chat_postMessage``) for each Web API method it calls
    (``chat.postMessage``): every method the code could call, of any family."""
    methods = {}
    for name, function in inspect.getmembers(AsyncWebClient, inspect.isfunction):
        if not name.startswith("_"):
            called = _API_CALL.findall(inspect.getsource(function))
            if len(called) == 1:
                methods[name] = called[0]
    return methods


def web_api_methods(sources: str | None = None) -> set[str]:
    """The Web API methods ``sources`` (the bot's code) call, by client method or api_call."""
    sources = _sources() if sources is None else sources
    named = {
        method for name, method in _client_methods().items() if re.search(rf"\.{name}\(", sources)
    }
    return named | set(_API_CALL.findall(sources))


def _commands(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["command"]: c for c in manifest["features"]["slash_commands"]}


def _urls(manifest: dict[str, Any]) -> list[str]:
    settings = manifest["settings"]
    return [
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
        *(command["url"] for command in manifest["features"]["slash_commands"]),
    ]


def test_the_manifest_is_slacks_format_with_the_app_home_and_a_bot_user(
    manifest: dict[str, Any],
) -> None:
    assert manifest["display_information"]["name"] == "Verwijsindex"
    assert len(manifest["display_information"]["description"]) <= 140  # Slack's limit
    home = manifest["features"]["app_home"]
    assert home["home_tab_enabled"] is True and home["messages_tab_enabled"] is True
    assert manifest["features"]["bot_user"]["display_name"]
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    for url in [*_urls(manifest), *manifest["oauth_config"]["redirect_urls"]]:
        assert urlsplit(url).scheme == "https", url  # Slack takes https request URLs only


def test_every_web_api_call_is_found_whatever_its_family() -> None:
    code = (
        "await client.chat_postMessage(channel=c)\n"
        "answer = await self.client.users_lookupByEmail(email=e)\n"
        "await client.team_info()\n"
        "await client.conversations_open(users=u)\n"
        "await client.api_call('bots.info')\n"
        "client.chat_postMessage_later(x)  # not a client method\n"
    )
    found = web_api_methods(code)
    assert found == {
        "chat.postMessage", "users.lookupByEmail", "team.info", "conversations.open", "bots.info"
    }  # fmt: skip


def test_its_scopes_are_exactly_what_the_code_uses(manifest: dict[str, Any]) -> None:
    methods = web_api_methods()
    assert {
        "auth.test", "chat.postMessage", "chat.update", "users.info", "users.lookupByEmail",
        "views.open", "views.publish",
    } <= methods  # fmt: skip
    unknown = methods - METHOD_SCOPES.keys()
    assert not unknown, f"add the scopes of {sorted(unknown)} to METHOD_SCOPES"
    needed = set().union(*(METHOD_SCOPES[m] for m in methods)) | FEATURE_SCOPES
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert scopes == needed
    assert "im:write" not in scopes  # nothing opens a DM by conversations.open
    # The OAuth install asks for the same scopes as the manifest.
    assert set(installations.BOT_SCOPES) == scopes
    assert "user" not in manifest["oauth_config"]["scopes"]  # no user token


def test_every_command_and_event_the_app_listens_to_is_in_the_manifest(
    manifest: dict[str, Any],
) -> None:
    sources = _sources()
    assert set(_commands(manifest)) == set(_COMMAND.findall(sources))
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    # The "message" listener answers direct messages only (bot.direct_messages): message.im.
    listened = {"message.im" if e == "message" else e for e in _EVENT.findall(sources)}
    assert events == listened
    for command in _commands(manifest).values():
        # A colleague is named by mention: arguments.py needs <@U123> (CONTRACT §5).
        assert command["should_escape"] is True, command["command"]


def test_every_request_url_is_a_path_the_endpoint_serves(
    manifest: dict[str, Any], tmp_path: Path, database_url: str, synced_engine: Engine,
    config: CoreConfig,
) -> None:  # fmt: skip
    assert {urlsplit(url).path for url in _urls(manifest)} == {EVENTS_PATH}
    hosts = {urlsplit(url).netloc for url in [*_urls(manifest)]}
    [redirect] = manifest["oauth_config"]["redirect_urls"]
    assert urlsplit(redirect).path == installations.REDIRECT_PATH
    assert hosts == {urlsplit(redirect).netloc}  # one public host to fill in
    # A distributed app's endpoint (SLACK_CLIENT_ID/SECRET) serves all of them.
    settings = slack_settings(
        tmp_path, database_url, "http://127.0.0.1:9/api/",
        slack_bot_token=None, slack_client_id="1.2", slack_client_secret="geheim",
    )  # fmt: skip
    web_app = http_application(create_app(build_bot(settings, synced_engine, config)))
    routes = {(route.method, route.resource.canonical) for route in web_app.router.routes()}
    assert ("POST", EVENTS_PATH) in routes
    assert ("GET", installations.REDIRECT_PATH) in routes
    assert ("GET", installations.INSTALL_PATH) in routes


def test_every_command_and_event_in_the_manifest_reaches_a_listener(
    manifest: dict[str, Any], sender: SlackSender
) -> None:
    # Bolt answers 404 to a request no listener takes: each must be taken.
    for name in _commands(manifest):
        assert sender.command(name, "help", ANNA).status == 200, name
    harmless = {
        "app_home_opened": {"type": "app_home_opened", "user": user(ANNA), "tab": "messages"},
        "message.im": {"type": "message", "channel_type": "im", "channel": "D1", "user": "U0BOT",
                       "bot_id": "B0BOT", "text": "x", "ts": "1.000001"},
        "tokens_revoked": {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": []}},
        "app_uninstalled": {"type": "app_uninstalled"},
    }  # fmt: skip
    for event in manifest["settings"]["event_subscriptions"]["bot_events"]:
        assert sender.event(harmless[event]).status == 200, event


def test_the_readmes_slack_chapter_names_the_manifest_and_the_settings_as_they_are(
    manifest: dict[str, Any],
) -> None:
    readme = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    start = readme.index("\n## Slack")
    chapter = readme[start : readme.index("\n## ", start + 1)]
    for name in [
        *manifest["oauth_config"]["scopes"]["bot"],
        *manifest["settings"]["event_subscriptions"]["bot_events"],
        installations.INSTALL_PATH,
        installations.REDIRECT_PATH,
        EVENTS_PATH,
    ]:
        assert name in chapter, name
    # Every variable an administrator is told to set is one the settings read.
    read = {
        str(field.validation_alias or f"VERWIJSINDEX_{name.upper()}")
        for name, field in Settings.model_fields.items()
    }
    named = set(re.findall(r"\b(?:SLACK|VERWIJSINDEX)_[A-Z_]+\b", chapter))
    assert {"SLACK_BOT_TOKEN", "SLACK_CLIENT_ID", "SLACK_SIGNING_SECRET"} <= named
    assert named <= read, sorted(named - read)
