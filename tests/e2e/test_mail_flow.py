"""End to end over real SMTP on loopback (issue 3, acceptance): institutions register by mail,
the first hears of the second, professionals signal by mail, the coordinator accepts by replying
in Gmail's Dutch style, and every notification arrives at the relay sink."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid

import pytest
from sqlmodel import Session, select

from core.models import Coordination
from mail_gateway.context import Gateway
from tests.core.conftest import BSN_A
from tests.mail_gateway.conftest import MAIL_DOMAIN, RunningGateway, wait_until
from tests.mail_gateway.relay_sink import Received, RelaySink

GGD = "verwijsindex@ggd-groningen.example"
WIJ = "verwijsindex@wij-groningen.example"
YOUTH = f"BSN: {BSN_A}\nGeboortedatum: 01-05-2016\nGemeente: Groningen\n"


@pytest.fixture
def service(
    make_gateway: Callable[..., Gateway],
    run_gateway: Callable[..., RunningGateway],
    sink: RelaySink,
) -> RunningGateway:
    return run_gateway(make_gateway(relay_url=sink.url))


def send(service: RunningGateway, sender: str, to: str, body: str, **headers: str) -> str:
    message = EmailMessage()
    message["From"], message["To"] = sender, to
    message["Subject"] = headers.pop("Subject", "Verwijsindex")
    message["Message-ID"] = make_msgid(domain=sender.split("@")[1])
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    with smtplib.SMTP("127.0.0.1", service.smtp_port, timeout=10) as smtp:
        smtp.sendmail(sender, [to], message.as_bytes(policy=SMTP))
    return str(message["Message-ID"])


def arrived(sink: RelaySink, kind: str, to: str, count: int = 1) -> list[Received]:
    def found() -> list[Received] | None:
        matching = [r for r in sink.messages(kind) if to in r.recipients]
        return matching if len(matching) >= count else None

    return wait_until(found, what=f"{kind} for {to} at the relay")


def test_registrations_signals_and_an_akkoord_reply_end_to_end(
    service: RunningGateway, sink: RelaySink
) -> None:
    send(service, GGD, f"registratie@{MAIL_DOMAIN}", YOUTH + "Kenmerk: GGD-1\n")
    arrived(sink, "ontvangstbevestiging", GGD)
    wij_message = send(service, WIJ, f"registratie@{MAIL_DOMAIN}", YOUTH + "Kenmerk: WIJ-1\n")

    [notice] = arrived(sink, "nieuwe-betrokkenheid", GGD)
    assert "WIJ Groningen" in notice.message.get_body(("plain",)).get_content()
    assert "GGD-1" in notice.message.get_body(("plain",)).get_content()
    [receipt] = arrived(sink, "ontvangstbevestiging", WIJ)
    assert receipt.message["In-Reply-To"].strip() == wij_message
    assert receipt.message["Auto-Submitted"] == "auto-replied"
    assert "GGD Groningen" in receipt.message.get_body(("plain",)).get_content()

    signal = YOUTH + "Code: laag\nGeïnformeerd: ja\n"
    send(service, "a.devries@ggd-groningen.example", f"signaal@{MAIL_DOMAIN}", signal)
    send(service, "s.jansen@wij-groningen.example", f"signaal@{MAIL_DOMAIN}", signal)
    [assignment] = arrived(sink, "coordinatie-toegewezen", WIJ)
    arrived(sink, "match", "a.devries@ggd-groningen.example")
    reply_to = str(assignment.message["Reply-To"])
    assert (
        reply_to.startswith("antwoord+")
        and "AKKOORD" in assignment.message.get_body(("plain",)).get_content()
    )

    quoted = "\n".join(
        "> " + line for line in assignment.message.get_body(("plain",)).get_content().splitlines()
    )
    send(
        service,
        "s.jansen@wij-groningen.example",
        reply_to,
        "AKKOORD\n\nOp ma 23 nov. 2026 om 10:12 schreef Verwijsindex Groningen <"
        f"\nnoreply@{MAIL_DOMAIN}>:\n\n{quoted}\n",
        Subject="Re: " + str(assignment.message["Subject"]),
        In_Reply_To=str(assignment.message["Message-ID"]).strip(),
    )
    arrived(sink, "coordinatie-geaccepteerd", GGD)
    with Session(service.gateway.engine) as session:
        assert session.exec(select(Coordination)).one().status == "accepted"
    for received in sink.messages():
        body = received.raw.decode("utf-8", "replace")
        assert BSN_A not in body, f"the BSN travelled in {received.message['X-Verwijsindex-Type']}"
