"""Replies as the mail clients of our users really send them (fixtures/replies/): Outlook
desktop, Outlook on the web, Gmail, Apple Mail, Thunderbird (format=flowed, bottom-posted too)
and the iPhone, each with a one-line and a multi-line WEIGER reason. Each goes through the real
SMTP listener, the processing worker and the core: the whole reason is what the coordination
records, and the next candidate is asked."""

from __future__ import annotations

import json
import smtplib
from pathlib import Path

import pytest
from sqlmodel import Session, select

from core.models import Coordination
from mail_gateway.parsing.mime import read_mail
from mail_gateway.parsing.reply import extract_reply, parse_reply_command
from tests.mail_gateway.conftest import MAIL_DOMAIN, RunningGateway
from tests.mail_gateway.test_processing import (  # noqa: F401  (gateway: the fixture)
    block,
    gateway,
    mail,
    outbox,
    outcome,
    send,
)

FIXTURES = Path(__file__).parent / "fixtures" / "replies"
REASONS: dict[str, str] = json.loads((FIXTURES / "reasons.json").read_text(encoding="utf-8"))
WIJ_PROFESSIONAL = "s.jansen@wij-groningen.example"


def fixture(name: str, token: str, reference: str) -> bytes:
    raw = (FIXTURES / name).read_bytes()
    return raw.replace(b"@@TOKEN@@", token.encode()).replace(b"@@REF@@", reference.encode())


def coordination_assigned_to_wij(running: RunningGateway) -> tuple[str, str]:
    """Two signals by mail make a match; the covenant assigns WIJ Groningen, which is asked
    by mail (with a reply token) to accept."""
    fields = block(Code="laag", Geinformeerd="ja").replace("Kenmerk: GGD-1", "Kenmerk: eigen-1")
    for professional in ("a.devries@ggd-groningen.example", WIJ_PROFESSIONAL):
        outcome(running, send(running, mail(professional, f"signaal@{MAIL_DOMAIN}", fields)))
    [assigned] = outbox(running, "coordinatie-toegewezen")
    assert assigned.reply_token
    return assigned.reply_token, assigned.reference


def test_every_fixture_is_named_with_its_reason() -> None:
    clients = {name.split(".")[0] for name in REASONS}
    assert clients == {
        "outlook-desktop", "outlook-web", "gmail", "apple-mail", "thunderbird", "iphone"
    }  # fmt: skip
    assert sorted(REASONS) == sorted(p.name for p in FIXTURES.glob("*.eml"))
    assert all("\n" in REASONS[name] for name in REASONS if ".multi-line." in name)


@pytest.mark.parametrize("name", sorted(REASONS))
def test_the_parser_reads_the_whole_reason(name: str) -> None:
    parsed = read_mail(fixture(name, "t0k3n", "C-1"))
    action = parse_reply_command(extract_reply(parsed.text))
    assert (action.keyword, action.argument) == ("decline", REASONS[name])


@pytest.mark.parametrize("name", sorted(REASONS))
def test_the_whole_reason_reaches_the_coordination(
    gateway: RunningGateway,  # noqa: F811
    name: str,
) -> None:
    token, reference = coordination_assigned_to_wij(gateway)
    raw = fixture(name, token, reference)
    message_id = str(read_mail(raw).message_id)
    with smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=10) as smtp:
        smtp.sendmail(WIJ_PROFESSIONAL, [f"antwoord+{token}@{MAIL_DOMAIN}"], raw)
    _, receipt = outcome(gateway, message_id)
    assert receipt is not None
    assert receipt.kind == "ontvangstbevestiging", receipt.context
    assert "geweigerd" in receipt.context["confirmation"]
    with Session(gateway.gateway.engine) as session:
        coordination = session.exec(select(Coordination)).one()
    [declined] = coordination.declined
    assert declined["institution_id"] == "wij-groningen"
    assert declined["reason"] == REASONS[name]
    assert coordination.institution_id != "wij-groningen"  # the next candidate is asked
