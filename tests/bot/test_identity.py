"""Linking Slack users to covenant professionals by their Slack e-mail (CONTRACT §5), cached
and checked again, against the fake Web API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.identity import Linked, RefusalReason, Refused, SlackIdentity
from core.models import AuditEvent
from tests.bot.conftest import ANNA, BOT_TOKEN, EVA, slack_user_of, user
from tests.bot.fake_slack_api import FakeSlackApi


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def identity(synced_engine: Engine, clock: Clock) -> SlackIdentity:
    return SlackIdentity(synced_engine, region="Groningen", ttl=600, negative_ttl=60, clock=clock)


@pytest.fixture
async def client(slack_api: FakeSlackApi) -> AsyncIterator[AsyncWebClient]:
    yield AsyncWebClient(token=BOT_TOKEN, base_url=slack_api.url)


def _audit(engine: Engine, action: str) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)).all())


async def test_a_user_is_linked_once_and_cached(
    identity: SlackIdentity,
    client: AsyncWebClient,
    slack_api: FakeSlackApi,
    synced_engine: Engine,
    clock: Clock,
) -> None:
    first = await identity.resolve(client, user(EVA))  # Slack reports her address upper-case
    assert isinstance(first, Linked)
    assert first.email == EVA and first.institution_id == "jeugdhulp-noord"
    assert slack_user_of(synced_engine, EVA) == user(EVA)
    clock.now += 599
    assert await identity.resolve(client, user(EVA)) == first
    assert len(slack_api.calls_to("users.info")) == 1
    clock.now += 2  # past the TTL: asked again, still the same person, nothing new logged
    assert await identity.resolve(client, user(EVA)) == first
    assert len(slack_api.calls_to("users.info")) == 2
    [linked] = _audit(synced_engine, "slack-linked")
    assert linked.details["slack_user"] == user(EVA)


async def test_a_deactivated_account_loses_access_and_its_link(
    identity: SlackIdentity,
    client: AsyncWebClient,
    slack_api: FakeSlackApi,
    synced_engine: Engine,
    clock: Clock,
) -> None:
    assert isinstance(await identity.resolve(client, user(ANNA)), Linked)
    slack_api.add_user(user(ANNA), ANNA, deleted=True)
    # Within the TTL the link stands; after it, Slack's word counts.
    assert isinstance(await identity.resolve(client, user(ANNA)), Linked)
    clock.now += 601
    assert await identity.resolve(client, user(ANNA)) == Refused(RefusalReason.DEACTIVATED)
    assert slack_user_of(synced_engine, ANNA) is None
    assert len(_audit(synced_engine, "slack-unlinked")) == 1


async def test_an_address_that_moved_to_another_account_moves_the_link(
    identity: SlackIdentity,
    client: AsyncWebClient,
    slack_api: FakeSlackApi,
    synced_engine: Engine,
    clock: Clock,
) -> None:
    assert isinstance(await identity.resolve(client, user(ANNA)), Linked)
    slack_api.add_user("UANNANEW1", ANNA)
    slack_api.add_user(user(ANNA), "anna@prive.example")
    moved = await identity.resolve(client, "UANNANEW1")
    assert isinstance(moved, Linked) and moved.email == ANNA
    assert slack_user_of(synced_engine, ANNA) == "UANNANEW1"
    clock.now += 601
    refused = await identity.resolve(client, user(ANNA))
    assert refused == Refused(RefusalReason.NOT_IN_COVENANT, "anna@prive.example")
    assert slack_user_of(synced_engine, ANNA) == "UANNANEW1"


async def test_refusals_are_cached_briefly(
    identity: SlackIdentity, client: AsyncWebClient, slack_api: FakeSlackApi, clock: Clock
) -> None:
    assert await identity.resolve(client, "UNOBODY01") == Refused(RefusalReason.UNKNOWN_USER)
    assert await identity.resolve(client, "UNOBODY01") == Refused(RefusalReason.UNKNOWN_USER)
    assert len(slack_api.calls_to("users.info")) == 1
    clock.now += 61
    slack_api.add_user("UNOBODY01", ANNA)  # meanwhile given a covenant address
    assert isinstance(await identity.resolve(client, "UNOBODY01"), Linked)


async def test_slack_unreachable_keeps_a_known_link_and_refuses_the_unknown(
    identity: SlackIdentity, client: AsyncWebClient, slack_api: FakeSlackApi, clock: Clock
) -> None:
    known = await identity.resolve(client, user(ANNA))
    clock.now += 601
    slack_api.fail("users.info", "internal_error")
    assert await identity.resolve(client, user(ANNA)) == known
    slack_api.rate_limit("users.info", 1)
    assert await identity.resolve(client, user(EVA)) == Refused(RefusalReason.UNAVAILABLE)
    # Not cached: the next request asks Slack again, and gets through.
    assert isinstance(await identity.resolve(client, user(EVA)), Linked)


async def test_a_user_without_an_address_is_refused(
    identity: SlackIdentity, client: AsyncWebClient, slack_api: FakeSlackApi
) -> None:
    slack_api.add_user("UNOMAIL01", "")
    assert await identity.resolve(client, "UNOMAIL01") == Refused(RefusalReason.NO_EMAIL)
    assert await identity.email_of(client, "UNOMAIL01") is None
    assert await identity.email_of(client, user(ANNA)) == ANNA
