"""Work comes to people (issue 12, item 4): an institution-admin who never used the bot is found
in Slack by their covenant address and linked; a coordination assignment reaches their DM with
the buttons; the reminder goes in that message's thread; and when the institution accepts by
e-mail (``AKKOORD`` through the real SMTP listener) the first message loses its buttons and says
who accepted — the thread's reminder too."""

from __future__ import annotations

import asyncio
import smtplib
import time
from collections.abc import Callable
from datetime import date, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot import proactive_linking
from bot.proactive_linking import ProactiveLinker
from core.clock import utcnow
from core.config import CoreConfig
from core.coordination import sweep_coordination
from core.db import run_in_transaction
from core.models import AuditEvent, Coordination, CoordinationStatus
from mail_gateway.context import Gateway
from tests.bot.conftest import ANNA, BOT_TOKEN, EVA, RunningSlack, slack_user_of
from tests.bot.fake_slack_api import Call, FakeSlackApi
from tests.bsns import valid_bsns
from tests.mail_gateway.conftest import (  # noqa: F401  (fixtures)
    MAIL_DOMAIN,
    RunningGateway,
    make_gateway,
    run_gateway,
    sink,
    wait_until,
)
from tests.mail_gateway.relay_sink import Received, RelaySink

HENK = "h.visser@ggd-groningen.example"  # GGD's institution-admin: never used the bot
HENK_SLACK = "UHVISSER1"
GGD_MAILBOX = "verwijsindex@ggd-groningen.example"
BIRTH = date(date.today().year - 2, 6, 1)  # two years old: the GGD coordinates (0 to 4)
BSN = valid_bsns(1, start_prefix=27_182_818)[0]
YOUTH = f"BSN: {BSN}\nGeboortedatum: {BIRTH:%d-%m-%Y}\nGemeente: Groningen\n"


def _buttons(call: Call) -> list[str]:
    return [
        element["action_id"]
        for block in call.args.get("blocks") or []
        if block.get("type") == "actions"
        for element in block["elements"]
    ]


def _texts(blocks: list[dict[str, Any]]) -> str:
    return "\n".join(
        str((block.get("text") or {}).get("text", ""))
        for block in blocks
        if isinstance(block.get("text"), dict)
    )


def _posts(api: FakeSlackApi, channel: str) -> list[Call]:
    return [
        c for c in api.calls_to("chat.postMessage", succeeded=True) if c.args["channel"] == channel
    ]


def _updates(api: FakeSlackApi, ts: str) -> list[Call]:
    return [c for c in api.calls_to("chat.update", succeeded=True) if c.args.get("ts") == ts]


def _mail(service: RunningGateway, sender: str, to: str, body: str, **headers: str) -> None:
    message = EmailMessage()
    message["From"], message["To"] = sender, to
    message["Subject"] = headers.pop("Subject", "Verwijsindex")
    message["Message-ID"] = make_msgid(domain=sender.split("@")[1])
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    with smtplib.SMTP("127.0.0.1", service.smtp_port, timeout=10) as smtp:
        smtp.sendmail(sender, [to], message.as_bytes(policy=SMTP))


def _arrived(sink: RelaySink, kind: str, to: str) -> Received:  # noqa: F811
    found = wait_until(
        lambda: [r for r in sink.messages(kind) if to in r.recipients], what=f"{kind} for {to}"
    )
    return found[-1]


@pytest.fixture
def service(
    make_gateway: Callable[..., Gateway],  # noqa: F811
    run_gateway: Callable[..., RunningGateway],  # noqa: F811
    sink: RelaySink,  # noqa: F811
) -> RunningGateway:
    return run_gateway(make_gateway(relay_url=sink.url))


@pytest.fixture
def slack_role(
    make_slack: Callable[..., RunningSlack],
    slack_api: FakeSlackApi,
    monkeypatch: pytest.MonkeyPatch,
) -> RunningSlack:
    """The Slack role as serve runs it (endpoint, delivery, proactive linking); Henk has a
    Slack account in the workspace but never wrote to the bot."""
    slack_api.add_user(HENK_SLACK, HENK, name="Henk Visser")
    monkeypatch.setattr(proactive_linking, "DEFAULT_SPACING", 0.0)
    monkeypatch.setattr(proactive_linking, "DEFAULT_TICK", 0.2)
    return make_slack(with_delivery=True)


def test_an_assignment_reaches_the_coordinator_by_dm_its_reminder_threads_and_akkoord_by_mail_updates_it(  # noqa: E501
    service: RunningGateway,
    slack_role: RunningSlack,
    slack_api: FakeSlackApi,
    sink: RelaySink,  # noqa: F811
    synced_engine: Engine,
    config: CoreConfig,
) -> None:
    # Linked proactively, in the logboek, before anyone needed him.
    wait_until(lambda: slack_user_of(synced_engine, HENK) == HENK_SLACK, what="Henk linked")
    assert not [c for c in slack_api.calls_to("users.info") if c.args.get("user") == HENK_SLACK]
    with Session(synced_engine) as session:
        linked = session.exec(select(AuditEvent).where(AuditEvent.action == "slack-linked")).all()
    assert any(
        e.details.get("by") == "lookup" and e.details["slack_user"] == HENK_SLACK for e in linked
    )

    # Two institutions signal a two-year-old: the GGD is to coordinate.
    signal = YOUTH + "Code: laag\nGeïnformeerd: ja\n"
    _mail(service, ANNA, f"signaal@{MAIL_DOMAIN}", signal)
    _mail(service, EVA, f"signaal@{MAIL_DOMAIN}", signal)
    assignment_mail = _arrived(sink, "coordinatie-toegewezen", GGD_MAILBOX)

    # The institution-admin gets it as a DM with the buttons (Slack only: the mailbox has the mail).
    [first] = wait_until(lambda: _posts(slack_api, HENK_SLACK), what="the DM to Henk")
    # (No "Overdragen": no other involved institution may coordinate.)
    assert _buttons(first) == ["antwoord_akkoord", "antwoord_weiger"]
    assert first.token == BOT_TOKEN and "thread_ts" not in first.args
    assert not [r for r in sink.messages() if HENK in r.recipients]
    dm, root_ts = first.response["channel"], first.response["ts"]

    # Halfway to the deadline the reminder goes in that message's thread, broadcast.
    with Session(synced_engine) as session:
        coordination = session.exec(select(Coordination)).one()
        assert coordination.institution_id == "ggd-groningen"
        coordination.remind_at = utcnow() - timedelta(seconds=1)  # halfway is now
        session.add(coordination)
        session.commit()
    counts = run_in_transaction(synced_engine, lambda s: sweep_coordination(s, config, utcnow()))
    assert counts["reminded"] == 1, counts
    [reminder] = wait_until(
        lambda: [c for c in _posts(slack_api, dm) if c.args.get("thread_ts") == root_ts],
        what="the reminder in the thread",
    )
    assert "herinnering" in str(reminder.args["text"]).lower() or "Herinnering" in str(
        reminder.args["blocks"]
    )
    assert _buttons(reminder) == _buttons(first)
    assert reminder.args.get("reply_broadcast") in (True, "true", "1", 1)
    reminder_mail = _arrived(sink, "coordinatie-herinnering", GGD_MAILBOX)
    assert reminder_mail is not None

    # Henk accepts by e-mail, replying to the assignment: the Slack messages follow.
    body = assignment_mail.message.get_body(("plain",)).get_content()
    _mail(
        service,
        HENK,
        str(assignment_mail.message["Reply-To"]),
        "AKKOORD\n\n" + "\n".join("> " + line for line in body.splitlines()),
        Subject="Re: " + str(assignment_mail.message["Subject"]),
        In_Reply_To=str(assignment_mail.message["Message-ID"]).strip(),
    )
    [update] = wait_until(lambda: _updates(slack_api, root_ts), what="the first message updated")
    assert update.args["channel"] == dm
    assert all(block.get("type") != "actions" for block in update.args["blocks"])
    assert "*Henk Visser* heeft de procescoördinatie geaccepteerd" in _texts(update.args["blocks"])
    kept = [b for b in first.args["blocks"] if b.get("type") == "header"]
    assert kept and kept[0] in update.args["blocks"]  # the facts stay, the buttons go
    [reminder_update] = wait_until(
        lambda: _updates(slack_api, reminder.response["ts"]), what="the reminder updated"
    )
    assert "antwoord_akkoord" not in str(reminder_update.args["blocks"])
    with Session(synced_engine) as session:
        assert session.exec(select(Coordination)).one().status == CoordinationStatus.ACCEPTED
    # Once: the worker's next rounds leave the answered messages alone.
    time.sleep(2.5)
    assert len(_updates(slack_api, root_ts)) == 1


def test_proactive_linking_asks_each_address_once_waits_out_rate_limits_and_takes_no_account(
    synced_engine: Engine, slack_api: FakeSlackApi
) -> None:
    slack_api.add_user(HENK_SLACK, HENK, name="Henk Visser")
    slack_api.rate_limit("users.lookupByEmail", 1, retry_after=0)
    client = AsyncWebClient(token=BOT_TOKEN, base_url=slack_api.url + "/", retry_handlers=[])
    linker = ProactiveLinker(synced_engine, client, distributed=False, spacing=0.0)

    linked = asyncio.run(linker.run_once())
    assert linked >= 2 and slack_user_of(synced_engine, HENK) == HENK_SLACK
    assert slack_user_of(synced_engine, ANNA) == "UANNA0001"
    statuses = [c.status for c in slack_api.calls_to("users.lookupByEmail")]
    assert statuses[0] == 429 and statuses[1] == 200  # Slack's pause waited out, then asked again
    with Session(synced_engine) as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.action == "slack-linked")).all()
    assert {e.details["by"] for e in events} == {"lookup"}
    assert {e.details["slack_team"] for e in events} == {slack_api.team_id}
    # Someone Slack does not know stays unlinked, and a second pass asks nobody again: the
    # linked are linked, the unknown were asked within the recheck time.
    assert slack_user_of(synced_engine, "i.mulder@ggd-groningen.example") is None
    asked = len(slack_api.calls_to("users.lookupByEmail"))
    assert asyncio.run(linker.run_once()) == 0
    assert len(slack_api.calls_to("users.lookupByEmail")) == asked
