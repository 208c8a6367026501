"""The Slack delivery worker against the fake Slack Web API on loopback: notifications to linked
professionals (and their stand-ins) arrive as direct messages with the right blocks and
buttons, an institution's channel gets its institution-level notifications, HTTP 429 is waited
out and the message still arrives exactly once, refusals that no retry changes are dead
letters, and no recorded Web API call carries a youth's identity."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.delivery import (
    SlackDelivery,
    SlackMessageRef,
    run_slack_delivery,
    slack_client,
)
from core.absence import declare_absence
from core.clock import utcnow
from core.config import CoreConfig
from core.covenant import bundled_covenant_path, load_covenant
from core.covenant.sync import sync_covenant
from core.db import transaction
from core.identity import IdentityKeys
from core.models import AuditEvent, Institution, OutboxMessage, Professional
from core.outbox import enqueue, list_outbox
from core.registration import RegisterYouth, register_youth
from core.settings import Settings
from core.signals import PlaceSignal, place_signal
from tests.bot.fake_slack_api import Call, FakeSlackApi
from tests.conftest import TEST_SECRET
from tests.core.conftest import CoreDriver, youth
from tests.core.test_privacy import _scan, _scenario
from tests.core.test_slack_templates import link_everyone_to_slack

ANNA = "a.devries@ggd-groningen.example"
PIETER = "p.bakker@ggd-groningen.example"
SANNE = "s.jansen@wij-groningen.example"
USERS = {ANNA: "UANNA01", PIETER: "UPIETER1", SANNE: "USANNE01"}
WIJ_CHANNEL = "CWIJ0001"
TOKEN = "xoxb-test-token"


@pytest.fixture(scope="module")
def config() -> CoreConfig:
    return CoreConfig(
        covenant=load_covenant(bundled_covenant_path()), keys=IdentityKeys(TEST_SECRET.encode())
    )


@pytest.fixture
def core(engine: Engine, config: CoreConfig) -> CoreDriver:
    with transaction(engine) as session:
        sync_covenant(session, config.covenant)
    return CoreDriver(engine, config)


@pytest.fixture
def api() -> Iterator[FakeSlackApi]:
    with FakeSlackApi() as fake:
        yield fake


@pytest.fixture
def settings(api: FakeSlackApi, database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,
        slack_api_url=api.url,
        slack_bot_token=TOKEN,
    )


@pytest.fixture
def delivery(engine: Engine, settings: Settings) -> SlackDelivery:
    return SlackDelivery(engine, slack_client(settings), worker_id="slack-test")


def _link(core: CoreDriver, users: dict[str, str], channels: dict[str, str] | None = None) -> None:
    with Session(core.engine) as session:
        for email, user_id in users.items():
            professional = session.exec(
                select(Professional).where(Professional.email == email)
            ).one()
            professional.slack_user_id = user_id
            session.add(professional)
        for institution_id, channel in (channels or {}).items():
            institution = session.get(Institution, institution_id)
            assert institution is not None
            institution.slack_channel = channel
            session.add(institution)
        session.commit()


def _match(core: CoreDriver, now: datetime | None = None) -> None:
    """GGD and WIJ register a child, Anna (GGD) and Sanne (WIJ) signal it: a match, and a
    coordination assigned to WIJ Groningen."""
    moment = now or utcnow()
    for institution, reference in (("ggd-groningen", "GGD-7"), ("wij-groningen", "WIJ-8")):
        registration = RegisterYouth(youth(), "Groningen", reference)
        by = core.institution(institution)

        def register(session: Session, r: RegisterYouth = registration, a: Any = by) -> Any:
            return register_youth(r, session=session, config=core.config, actor=a, now=moment)

        core.run(register)
    for email in (ANNA, SANNE):
        signaller = core.professional(email)

        def signal(session: Session, a: Any = signaller) -> Any:
            return place_signal(
                PlaceSignal(youth(), "Groningen", "laag", "ja"),
                session=session, config=core.config, actor=a, now=moment,
            )  # fmt: skip

        core.run(signal)


def _slack_rows(core: CoreDriver, **where: Any) -> list[OutboxMessage]:
    return [row for row in core.outbox(**where) if row.channel == "slack"]


def _posts(api: FakeSlackApi, channel: str | None = None) -> list[Call]:
    return [
        call
        for call in api.calls_to("chat.postMessage", succeeded=True)
        if channel is None or call.args["channel"] == channel
    ]


def _buttons(call: Call) -> list[dict[str, Any]]:
    return [
        element
        for block in call.args["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def _text(call: Call) -> str:
    return json.dumps(call.args["blocks"], ensure_ascii=False)


async def _deliver_all(delivery: SlackDelivery) -> None:
    for _ in range(20):
        report = await delivery.deliver_batch()
        if report.claimed == 0:
            return
    raise AssertionError("the outbox did not run dry")


# --- direct messages -----------------------------------------------------------------------


async def test_a_match_arrives_as_a_dm_with_its_blocks_and_contact_button(
    core: CoreDriver, api: FakeSlackApi, delivery: SlackDelivery
) -> None:
    _link(core, {ANNA: USERS[ANNA], SANNE: USERS[SANNE]})
    _match(core)
    rows = _slack_rows(core, kind="match")
    assert {row.recipient for row in rows} == {USERS[ANNA], USERS[SANNE]}

    await _deliver_all(delivery)

    for row in rows:
        [post] = [p for p in _posts(api, row.recipient) if p.args["blocks"][0]["text"]["text"]
                  == f"Match {row.reference}"]  # fmt: skip
        assert post.token == TOKEN
        assert post.args["text"].startswith(f"Match {row.reference} bij signaal")
        assert post.args["unfurl_links"] is False
        buttons = {button["action_id"]: button for button in _buttons(post)}
        assert set(buttons) == {  # contact, and consent after the match (issue 11.7)
            "antwoord_contact", "toestemming_gevraagd", "toestemming_gegeven",
            "toestemming_geweigerd",
        }
        button = buttons["antwoord_contact"]
        assert button["value"] == row.reply_token and row.reply_token
        partner = "Sanne Jansen" if row.recipient == USERS[ANNA] else "Anna de Vries"
        assert f"*{partner}*" in _text(post)
    with Session(core.engine) as session:
        for row in rows:
            stored = session.get(OutboxMessage, row.id)
            assert stored is not None and stored.status == "sent"
            ref = SlackMessageRef.parse(stored.message_id)
            assert ref is not None and ref.channel == f"D{row.recipient}" and ref.ts


async def test_an_institution_channel_gets_the_coordination_with_its_buttons(
    core: CoreDriver, api: FakeSlackApi, delivery: SlackDelivery
) -> None:
    _link(core, {}, {"wij-groningen": WIJ_CHANNEL})
    _match(core)
    [row] = _slack_rows(core, kind="coordinatie-toegewezen")
    assert row.recipient == WIJ_CHANNEL and row.recipient_role == "institution"

    await _deliver_all(delivery)

    assignment = [p for p in _posts(api, WIJ_CHANNEL) if "Procescoördinatie" in _text(p)]
    assert len(assignment) == 1
    buttons = _buttons(assignment[0])
    assert [b["action_id"] for b in buttons] == [
        "antwoord_akkoord", "antwoord_weiger", "antwoord_overdragen"
    ]  # fmt: skip
    assert {b["value"] for b in buttons} == {row.reply_token}
    assert "WIJ-8" in _text(assignment[0])  # WIJ's own kenmerk, the youth's only handle
    # Nothing went to a user: nobody is linked.
    assert {p.args["channel"] for p in _posts(api)} == {WIJ_CHANNEL}


async def test_a_stand_in_also_receives_the_dms_of_an_absent_professional(
    core: CoreDriver, api: FakeSlackApi, delivery: SlackDelivery
) -> None:
    _link(core, USERS)
    now = utcnow()
    today = now.date()
    anna = core.professional(ANNA)
    core.run(
        lambda s: declare_absence(
            ANNA, today, today + timedelta(days=7), PIETER, session=s, config=core.config,
            actor=anna, now=now,
        )
    )  # fmt: skip
    _match(core, now)

    await _deliver_all(delivery)

    [stand_in_row] = _slack_rows(core, kind="match", recipient_role="stand-in")
    assert stand_in_row.recipient == USERS[PIETER]
    [own_row] = _slack_rows(core, kind="match", recipient=USERS[ANNA])
    matches = [p for p in _posts(api, USERS[PIETER]) if '"Match M-' in _text(p)]
    assert len(matches) == 1
    assert "U ontvangt dit bericht als vervanger van *Anna de Vries*." in _text(matches[0])
    # The stand-in answers with a token of their own, not Anna's.
    [button] = [b for b in _buttons(matches[0]) if b["action_id"] == "antwoord_contact"]
    assert button["value"] == stand_in_row.reply_token != own_row.reply_token
    assert any('"Match M-' in _text(p) for p in _posts(api, USERS[ANNA]))
    # Pieter heard of the absence itself too.
    assert any("heeft u als vervanger opgegeven" in _text(p) for p in _posts(api, USERS[PIETER]))


# --- rate limits and failures --------------------------------------------------------------


async def test_http_429_is_waited_out_and_the_message_arrives_exactly_once(
    core: CoreDriver, api: FakeSlackApi, settings: Settings, engine: Engine
) -> None:
    _link(core, {ANNA: USERS[ANNA], SANNE: USERS[SANNE]})
    _match(core)
    rows = _slack_rows(core)
    api.rate_limit("chat.postMessage", times=1, retry_after=1)
    stop = asyncio.Event()
    worker = asyncio.create_task(
        run_slack_delivery(settings, stop, engine=engine, config=core.config, poll_interval=0.1)
    )
    try:
        await api.wait_for_async("chat.postMessage", count=len(rows), timeout=15)
        await asyncio.sleep(0.3)  # a duplicate would come now
    finally:
        stop.set()
        await asyncio.wait_for(worker, 5)

    calls = api.calls_to("chat.postMessage")
    limited = [c for c in calls if c.status == 429]
    assert len(limited) == 1
    delivered = [c for c in calls if c.ok]
    assert len(delivered) == len(rows)  # exactly once each
    keys = [(c.args["channel"], c.args["blocks"][0]["text"]["text"]) for c in delivered]
    assert len(set(keys)) == len(keys)
    # Nothing at all was sent within Slack's Retry-After.
    assert all(c.at - limited[0].at >= 0.95 for c in delivered if c.at > limited[0].at)
    # The refused one and the rest for that workspace waited in the outbox for the pause.
    retried = [r for r in _slack_rows(core) if r.attempts == 2]
    assert retried and all("HTTP 429" in (r.last_error or "") for r in retried)
    assert any("Retry-After 1 s" in (r.last_error or "") for r in retried)
    assert all(r.status == "sent" for r in _slack_rows(core))


@pytest.mark.parametrize(
    "error", ["channel_not_found", "user_not_found", "account_inactive", "not_in_channel",
              "is_archived"],
)  # fmt: skip
async def test_a_refusal_no_retry_can_change_is_a_dead_letter(
    core: CoreDriver, api: FakeSlackApi, delivery: SlackDelivery, error: str
) -> None:
    _link(core, {ANNA: USERS[ANNA]})
    _match(core)
    [row] = _slack_rows(core)
    api.fail("chat.postMessage", error)

    report = await delivery.deliver_batch()

    assert (report.claimed, report.failed, report.sent) == (1, 1, 0)
    with Session(core.engine) as session:
        [failed] = list_outbox(session, status="failed", channel="slack")
        assert failed.id == row.id and failed.attempts == 1
        assert failed.last_error == f"Slack chat.postMessage: HTTP 200, {error}"
        event = session.exec(
            select(AuditEvent).where(AuditEvent.action == "notification-failed")
        ).one()
        assert event.subject == f"outbox:{row.id}" and event.details["reason"] == "permanent"
    assert await delivery.deliver_batch() == type(report)()  # never tried again


async def test_slacks_own_trouble_is_retried_later(
    core: CoreDriver, api: FakeSlackApi, delivery: SlackDelivery
) -> None:
    _link(core, {ANNA: USERS[ANNA]})
    _match(core)
    api.fail("chat.postMessage", "internal_error")

    report = await delivery.deliver_batch()

    assert report.retried == 1
    [row] = _slack_rows(core)
    assert row.status == "pending" and row.attempts == 1
    assert row.next_attempt_at.replace(tzinfo=None) > utcnow().replace(tzinfo=None)


async def test_an_unreachable_slack_is_a_temporary_failure(
    core: CoreDriver, engine: Engine
) -> None:
    _link(core, {ANNA: USERS[ANNA]})
    _match(core)
    with FakeSlackApi() as gone:
        url = gone.url  # a loopback port nobody listens on once it has stopped
    client = AsyncWebClient(token=TOKEN, base_url=url, retry_handlers=[])
    report = await SlackDelivery(engine, client, worker_id="w").deliver_batch()
    assert report.retried == 1
    [row] = _slack_rows(core)
    assert row.status == "pending"
    assert row.last_error == "Slack unreachable: ClientConnectorError"


async def test_what_cannot_be_rendered_or_addressed_is_a_dead_letter(
    core: CoreDriver, api: FakeSlackApi, delivery: SlackDelivery
) -> None:
    with transaction(core.engine) as session:
        for key, recipient, context in (
            ("broken", "UANNA01", {"reference": "M-9"}),
            ("not-slack", "anna@example.org", {}),
        ):
            enqueue(
                session, kind="match", channel="slack", recipient=recipient,
                recipient_role="professional", reference="M-9", context=context,
                idempotency_key=key,
            )  # fmt: skip
    report = await delivery.deliver_batch()
    assert report.failed == 2 and api.calls_to("chat.postMessage") == []
    errors = sorted(row.last_error or "" for row in _slack_rows(core))
    assert errors == [
        "rendering failed: UndefinedError",
        "the recipient is not a Slack user or channel id",
    ]


# --- the worker's loop ---------------------------------------------------------------------


async def test_the_worker_wakes_on_new_work_and_stops_promptly(
    core: CoreDriver, api: FakeSlackApi, settings: Settings, engine: Engine
) -> None:
    _link(core, {ANNA: USERS[ANNA], SANNE: USERS[SANNE]})
    stop, wake = asyncio.Event(), asyncio.Event()
    worker = asyncio.create_task(
        run_slack_delivery(
            settings, stop, engine=engine, config=core.config, wake=wake, poll_interval=30
        )
    )
    await asyncio.sleep(0.2)  # the first, empty round
    await asyncio.to_thread(_match, core)
    wake.set()
    await api.wait_for_async("chat.postMessage", count=len(_slack_rows(core)), timeout=5)
    stop.set()
    await asyncio.wait_for(worker, 2)  # no 30-second poll to sit out


def test_a_missing_bot_token_is_a_clear_error(database_url: str) -> None:
    with pytest.raises(ValueError, match="SLACK_BOT_TOKEN"):
        slack_client(Settings(database_url=database_url, secret_key=TEST_SECRET))


def test_the_api_url_gets_its_trailing_slash(database_url: str) -> None:
    settings = Settings(
        database_url=database_url, secret_key=TEST_SECRET,
        slack_api_url="http://127.0.0.1:9/api", slack_bot_token=TOKEN,
    )  # fmt: skip
    assert slack_client(settings).base_url == "http://127.0.0.1:9/api/"


def test_message_references_round_trip() -> None:
    ref = SlackMessageRef("DUANNA01", "1790000000.000001")
    assert str(ref) == "slack:DUANNA01:1790000000.000001"
    assert SlackMessageRef.parse(str(ref)) == ref
    assert SlackMessageRef.parse("<abc@verwijsindex.localhost>") is None
    assert SlackMessageRef.parse(None) is None


# --- privacy -------------------------------------------------------------------------------


async def test_no_web_api_call_carries_a_youths_identity(
    core: CoreDriver, api: FakeSlackApi, delivery: SlackDelivery
) -> None:
    """The scenario that produces every kind, with every professional and institution in
    Slack, delivered for real: every call the fake recorded is scanned."""
    link_everyone_to_slack(core)
    _scenario(core)
    rows = _slack_rows(core)
    assert len(rows) > 40

    await _deliver_all(delivery)

    assert {row.status for row in _slack_rows(core)} == {"sent"}
    calls = api.calls
    assert len(calls) == len(rows)
    for call in calls:
        _scan(json.dumps(call.args, ensure_ascii=False), f"{call.method} to {call.args['channel']}")
    kinds = {row.kind for row in rows}
    assert "coordinatie-toegewezen" in kinds and "signaal-verloopt" in kinds


async def test_the_log_names_no_context_and_no_slack_id(
    core: CoreDriver, api: FakeSlackApi, delivery: SlackDelivery,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level("DEBUG", logger="bot")
    _link(core, {ANNA: USERS[ANNA], SANNE: USERS[SANNE]})
    _match(core)
    api.fail("chat.postMessage", "channel_not_found")
    await _deliver_all(delivery)
    assert "sent outbox:" in caplog.text
    for secret in (USERS[ANNA], USERS[SANNE], "Sanne Jansen", "Anna de Vries", "WIJ-8"):
        assert secret not in caplog.text
