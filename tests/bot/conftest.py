"""Fixtures for the Slack bot: the real Bolt app behind its HTTP endpoint on a free loopback
port, in a background thread with its own event loop (as ``serve`` runs it), talking to the fake
Slack Web API; and a client that signs requests exactly as Slack does.

Slack signs ``v0:{timestamp}:{body}`` with HMAC-SHA256 and the app's signing secret, and sends
``X-Slack-Request-Timestamp`` and ``X-Slack-Signature: v0=<hex>``
(api.slack.com/authentication/verifying-requests-from-slack). Slash commands are form fields;
interactivity is a form field ``payload`` holding JSON; events are JSON.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.context import Bot, build_bot
from bot.service import run_endpoint, run_slack
from core.config import CoreConfig
from core.models import Institution, Professional
from core.settings import Settings
from tests.bot.fake_slack_api import FakeSlackApi
from tests.conftest import TEST_SECRET
from tests.core.conftest import config  # noqa: F401  (the session-wide covenant fixture)
from tests.mail_gateway.conftest import free_port, synced_engine, wait_for_port  # noqa: F401

REPOSITORY = Path(__file__).resolve().parents[2]
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-verwijsindex-test"
TEAM_ID = "T0VERWIJS"

# The example covenant's people as Slack users (CONTRACT §5: linked by their Slack e-mail).
ANNA = "a.devries@ggd-groningen.example"  # GGD, JGZ: may signal
PIETER = "p.bakker@ggd-groningen.example"  # GGD, JGZ
SANNE = "s.jansen@wij-groningen.example"  # WIJ Groningen: coordinates in the city
EVA = "e.meijer@jeugdhulp-noord.example"  # Jeugdhulp Noord, Plusteam: may signal
THIJS = "t.boer@jeugdhulp-noord.example"  # Jeugdhulp Noord, Plusteam
JOOST = "j.vandijk@jeugdhulp-noord.example"  # Jeugdhulp Noord, CAT: may not signal
WENDY = "w.postma@jeugdhulp-noord.example"  # Jeugdhulp Noord, secretariat
RUUD = "r.bos@jeugdhulp-noord.example"  # Jeugdhulp Noord, institution-admin
KARIN = "k.deboer@jeugdhulp-noord.example"  # Jeugdhulp Noord, senior
SLACK_USERS = {
    ANNA: "UANNA0001",
    PIETER: "UPIETER01",
    SANNE: "USANNE001",
    EVA: "UEVA00001",
    THIJS: "UTHIJS001",
    JOOST: "UJOOST001",
    WENDY: "UWENDY001",
    RUUD: "URUUD0001",
    KARIN: "UKARIN001",
}
STRANGER = "USTRANGER"  # a Slack user whose address is not in the covenant
DEACTIVATED = "UGONE0001"  # a deactivated Slack account of a covenant professional
WIJ_CHANNEL = "CWIJ00001"  # WIJ Groningen's channel for institution-level notifications


def user(email: str) -> str:
    return SLACK_USERS[email]


def sign(body: str, timestamp: str, secret: str = SIGNING_SECRET) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class SlackAnswer:
    status: int
    body: str
    seconds: float

    def json(self) -> dict[str, Any]:
        return json.loads(self.body) if self.body else {}


class SlackSender:
    """Sends requests to the endpoint as Slack does: signed, form- or JSON-encoded."""

    def __init__(self, url: str, api: FakeSlackApi, secret: str = SIGNING_SECRET) -> None:
        self.url = url
        self.api = api
        self.secret = secret
        self._ids = itertools.count(1)

    def next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08d}"

    def post(
        self,
        body: str,
        content_type: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SlackAnswer:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        request = urllib.request.Request(
            self.url,
            data=body.encode(),
            method="POST",
            headers={
                "Content-Type": content_type,
                "X-Slack-Request-Timestamp": stamp,
                "X-Slack-Signature": signature or sign(body, stamp, self.secret),
                **(headers or {}),
            },
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                text = response.read().decode()
                status = response.status
        except urllib.error.HTTPError as error:
            text, status = error.read().decode(), error.code
        return SlackAnswer(status, text, time.monotonic() - started)

    def command(
        self, name: str, text: str, email: str | None = None, *, user_id: str | None = None,
        trigger_id: str | None = None, response_url: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SlackAnswer:  # fmt: skip
        fields = {
            "token": "unused-verification-token",
            "team_id": TEAM_ID,
            "team_domain": "verwijsindex-test",
            "channel_id": "CGENERAL1",
            "channel_name": "algemeen",
            "user_id": user_id or user(email or ""),
            "user_name": (email or "onbekend").split("@")[0],
            "command": name,
            "text": text,
            "api_app_id": "A0VERWIJS",
            "response_url": response_url or self.api.response_url(self.next_id("cmd")),
            "trigger_id": trigger_id or self.next_id("trigger."),
        }
        return self.post(urlencode(fields), "application/x-www-form-urlencoded", headers=headers)

    def interact(
        self, payload: dict[str, Any], *, headers: dict[str, str] | None = None
    ) -> SlackAnswer:
        body = urlencode({"payload": json.dumps(payload)})
        return self.post(body, "application/x-www-form-urlencoded", headers=headers)

    def event(
        self, event: dict[str, Any], *, event_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SlackAnswer:  # fmt: skip
        envelope = {
            "token": "unused-verification-token",
            "team_id": TEAM_ID,
            "api_app_id": "A0VERWIJS",
            "event": event,
            "type": "event_callback",
            "event_id": event_id or self.next_id("Ev"),
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM_ID, "user_id": "U0BOT", "is_bot": True}],
        }
        return self.post(json.dumps(envelope), "application/json", headers=headers)

    # -- payloads -----------------------------------------------------------------------------

    def view_submission(
        self, view: dict[str, Any], values: dict[str, Any], email: str, *,
        view_id: str | None = None, user_id: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """The payload Slack sends when ``view`` (as the app opened it) is submitted."""
        return {
            "type": "view_submission",
            "team": {"id": TEAM_ID, "domain": "verwijsindex-test"},
            "user": {"id": user_id or user(email), "team_id": TEAM_ID},
            "api_app_id": "A0VERWIJS",
            "trigger_id": self.next_id("trigger."),
            "view": {
                **view,
                "id": view_id or self.next_id("V"),
                "team_id": TEAM_ID,
                "hash": self.next_id("hash."),
                "state": {"values": values},
            },
        }

    def block_action(
        self, email: str, action_id: str, value: str, *, channel: str, ts: str,
        blocks: list[dict[str, Any]] | None = None, user_id: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        return {
            "type": "block_actions",
            "team": {"id": TEAM_ID, "domain": "verwijsindex-test"},
            "user": {"id": user_id or user(email), "team_id": TEAM_ID},
            "api_app_id": "A0VERWIJS",
            "trigger_id": self.next_id("trigger."),
            "container": {"type": "message", "message_ts": ts, "channel_id": channel},
            "channel": {"id": channel},
            "message": {"type": "message", "ts": ts, "text": "", "blocks": blocks or []},
            "response_url": self.api.response_url(self.next_id("act")),
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": "antwoord",
                    "value": value,
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }


class RunningSlack:
    """The Bolt endpoint in its own thread and event loop, as ``serve`` runs it."""

    def __init__(self, bot: Bot, *, with_delivery: bool = False) -> None:
        self.bot = bot
        self.with_delivery = with_delivery
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="slack", daemon=True)
        self._ready = threading.Event()
        self.failure: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.bot.settings.slack_port}/slack/events"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def main() -> None:
            self._stop = asyncio.Event()
            self._ready.set()
            if self.with_delivery:
                bot = self.bot
                await run_slack(bot.settings, bot.engine, bot.config, self._stop, bot=bot)
            else:
                await run_endpoint(self.bot, self._stop)

        try:
            self._loop.run_until_complete(main())
        except BaseException as exc:  # surfaced by stop()
            self.failure = exc
        finally:
            self._ready.set()

    def start(self) -> RunningSlack:
        self._thread.start()
        self._ready.wait(10)
        wait_for_port(self.bot.settings.slack_port)
        return self

    def stop(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        assert not self._thread.is_alive(), "the Slack endpoint did not stop within 30 s"
        if self.failure is not None:
            raise self.failure


def slack_settings(tmp_path: Path, database_url: str, api_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "secret_key": TEST_SECRET,
        "secret_file": tmp_path / "unused-secret",
        "relay_url": f"maildir:{tmp_path / 'verzonden'}",
        "slack_host": "127.0.0.1",
        "slack_port": free_port(),
        "slack_api_url": api_url,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_bot_token": BOT_TOKEN,
    }
    values.update(overrides)
    return Settings(**values)


def serve_environment(tmp_path: Path, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a ``verwijsindex serve`` subprocess: this suite's database and key,
    none of the caller's own Slack or verwijsindex settings, and ``extra``."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "VERWIJSINDEX_"))
    }
    environment.update(
        {
            "PYTHONPATH": str(REPOSITORY),
            "VERWIJSINDEX_DATABASE_URL": database_url,
            "VERWIJSINDEX_SECRET_KEY": TEST_SECRET,
            "VERWIJSINDEX_RELAY_URL": f"maildir:{tmp_path / 'verzonden'}",
            "VERWIJSINDEX_HTTP_PORT": "0",  # no health endpoint unless a test asks for one
            **extra,
        }
    )
    return environment


def slack_serve_environment(
    tmp_path: Path, database_url: str, api: FakeSlackApi, port: int, **extra: str
) -> dict[str, str]:
    """:func:`serve_environment` with Slack on (HTTP on ``port``, the fake Web API)."""
    return serve_environment(
        tmp_path,
        database_url,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        VERWIJSINDEX_SLACK_PORT=str(port),
        VERWIJSINDEX_SLACK_API_URL=api.url,
        **extra,
    )


def add_covenant_users(api: FakeSlackApi) -> None:
    for email, user_id in SLACK_USERS.items():
        api.add_user(user_id, email.upper() if email == EVA else email, name=email.split("@")[0])
    api.add_user(STRANGER, "iemand@elders.example", name="Iemand van Elders")
    api.add_user(DEACTIVATED, PIETER, deleted=True, name="Pieter (oud account)")


@pytest.fixture
def slack_api() -> Iterator[FakeSlackApi]:
    with FakeSlackApi(team_id=TEAM_ID) as api:
        add_covenant_users(api)
        yield api


@pytest.fixture
def wij_channel(synced_engine: Engine) -> str:  # noqa: F811
    """WIJ Groningen has a Slack channel for its institution-level notifications."""
    with Session(synced_engine) as session:
        institution = session.get(Institution, "wij-groningen")
        assert institution is not None
        institution.slack_channel = WIJ_CHANNEL
        session.add(institution)
        session.commit()
    return WIJ_CHANNEL


@pytest.fixture
def make_slack(
    tmp_path: Path,
    database_url: str,
    synced_engine: Engine,  # noqa: F811
    config: CoreConfig,  # noqa: F811
    slack_api: FakeSlackApi,
) -> Iterator[Callable[..., RunningSlack]]:
    running: list[RunningSlack] = []

    def start(*, with_delivery: bool = False, **overrides: Any) -> RunningSlack:
        settings = slack_settings(tmp_path, database_url, slack_api.url, **overrides)
        bot = build_bot(settings, synced_engine, config)
        instance = RunningSlack(bot, with_delivery=with_delivery).start()
        running.append(instance)
        return instance

    yield start
    for instance in running:
        instance.stop()


@pytest.fixture
def slack(make_slack: Callable[..., RunningSlack]) -> RunningSlack:
    return make_slack()


@pytest.fixture
def sender(slack: RunningSlack, slack_api: FakeSlackApi) -> SlackSender:
    return SlackSender(slack.url, slack_api)


def slack_user_of(engine: Engine, email: str) -> str | None:
    with Session(engine) as session:
        professional = session.exec(select(Professional).where(Professional.email == email)).one()
        return professional.slack_user_id
