"""Replies are proven like registrations (issue 9): with DKIM required, an unsigned AKKOORD to
``antwoord+TOKEN@`` is refused in the SMTP dialogue of the real listener, changes nothing, and
sends its (possibly forged) sender nothing; the same reply signed by the institution's domain
is taken."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid
from typing import Any

import pytest
from sqlmodel import Session, select

from core.models import (
    AuditEvent,
    Channel,
    Coordination,
    CoordinationStatus,
    InboundMessage,
    InboundStatus,
    Match,
    OutboxMessage,
    OutboxStatus,
)
from mail_gateway.context import Gateway
from tests.core.conftest import BSN_A
from tests.mail_gateway.conftest import MAIL_DOMAIN, RunningGateway, wait_until
from tests.mail_gateway.relay_sink import Received, RelaySink
from tests.mail_gateway.test_sender_authentication import SigningDomain

GGD = "verwijsindex@ggd-groningen.example"
WIJ = "verwijsindex@wij-groningen.example"
# Allowed for WIJ by its covenant domain, and the addressee of nothing the system sends: any
# mail the relay gets for this address would be an answer to the refused reply.
FORGED_SENDER = "teamleider@wij-groningen.example"
YOUTH = f"BSN: {BSN_A}\nGeboortedatum: 01-05-2016\nGemeente: Groningen\n"


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningDomain]:
    return {d: SigningDomain(d) for d in ("ggd-groningen.example", "wij-groningen.example")}


@pytest.fixture
def service(
    make_gateway: Callable[..., Gateway],
    run_gateway: Callable[..., RunningGateway],
    sink: RelaySink,
    keys: dict[str, SigningDomain],
) -> RunningGateway:
    gateway = make_gateway(verify_dkim=True, relay_url=sink.url)

    def dns(name: bytes, timeout: int = 5) -> bytes | None:  # the keys published for the test
        return next((k.txt for k in keys.values() if k.dns(name) is not None), None)

    gateway.authenticator.dns_lookup = dns
    return run_gateway(gateway)


def mail(sender: str, to: str, body: str, **headers: str) -> bytes:
    message = EmailMessage()
    message["From"], message["To"] = sender, to
    message["Subject"] = headers.pop("Subject", "Verwijsindex")
    message["Message-ID"] = make_msgid(domain=sender.split("@")[1])
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message.as_bytes(policy=SMTP)


def send(service: RunningGateway, sender: str, to: str, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", service.smtp_port, timeout=10) as smtp:
        smtp.sendmail(sender, [to], raw)


def signed(
    keys: dict[str, SigningDomain], sender: str, to: str, body: str, **headers: str
) -> bytes:
    return keys[sender.split("@")[1]].sign(mail(sender, to, body, **headers))


def arrived(sink: RelaySink, kind: str, to: str) -> Received:
    return wait_until(
        lambda: next((r for r in sink.messages(kind) if to in r.recipients), None),
        what=f"{kind} for {to} at the relay",
    )


def all_sent(service: RunningGateway) -> bool:
    service.wake()
    with Session(service.gateway.engine) as session:
        waiting = session.exec(
            select(OutboxMessage).where(
                OutboxMessage.channel == Channel.EMAIL, OutboxMessage.status != OutboxStatus.SENT
            )
        ).all()
        unprocessed = session.exec(
            select(InboundMessage).where(InboundMessage.status == InboundStatus.RECEIVED)
        ).all()
    return not waiting and not unprocessed


def state(service: RunningGateway) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int, int]:
    """Every coordination and match as stored, the number of audit events and stored mails."""
    with Session(service.gateway.engine) as session:
        coordinations = [c.model_dump() for c in session.exec(select(Coordination)).all()]
        matches = [m.model_dump() for m in session.exec(select(Match)).all()]
        events = len(session.exec(select(AuditEvent)).all())
        inbound = len(session.exec(select(InboundMessage)).all())
    return coordinations, matches, events, inbound


def test_an_unsigned_reply_is_refused_and_changes_nothing_while_dkim_is_required(
    service: RunningGateway, sink: RelaySink, keys: dict[str, SigningDomain]
) -> None:
    registratie = f"registratie@{MAIL_DOMAIN}"
    send(service, GGD, registratie, signed(keys, GGD, registratie, YOUTH + "Kenmerk: GGD-1\n"))
    send(service, WIJ, registratie, signed(keys, WIJ, registratie, YOUTH + "Kenmerk: WIJ-1\n"))
    signal = YOUTH + "Code: laag\nGeïnformeerd: ja\n"
    for professional in ("a.devries@ggd-groningen.example", "s.jansen@wij-groningen.example"):
        send(
            service,
            professional,
            f"signaal@{MAIL_DOMAIN}",
            signed(keys, professional, f"signaal@{MAIL_DOMAIN}", signal),
        )
    assignment = arrived(sink, "coordinatie-toegewezen", WIJ)
    reply_to = str(assignment.message["Reply-To"])
    assert reply_to.startswith("antwoord+")
    wait_until(lambda: all_sent(service), what="the story so far delivered")
    before = state(service)
    assert [c["status"] for c in before[0]] == [CoordinationStatus.PENDING]
    assert len(before[1]) == 1

    answer = {
        "Subject": "Re: " + str(assignment.message["Subject"]),
        "In_Reply_To": str(assignment.message["Message-ID"]).strip(),
    }
    unsigned = mail(FORGED_SENDER, reply_to, "AKKOORD\n", **answer)
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(service, FORGED_SENDER, reply_to, unsigned)
    assert (refused.value.smtp_code, refused.value.smtp_error[:5]) == (550, b"5.7.1")
    # Signed, but by someone else's domain: no better.
    forged = keys["ggd-groningen.example"].sign(unsigned)
    with pytest.raises(smtplib.SMTPDataError):
        send(service, FORGED_SENDER, reply_to, forged)
    assert state(service) == before, "no coordination, match, audit event or stored message"

    # The same answer signed by WIJ's domain is taken: the refusal was the signature's doing.
    jansen = "s.jansen@wij-groningen.example"
    send(service, jansen, reply_to, signed(keys, jansen, reply_to, "AKKOORD\n", **answer))
    arrived(sink, "coordinatie-geaccepteerd", GGD)
    wait_until(lambda: all_sent(service), what="the accepted reply's notifications delivered")
    coordinations, _, events, inbound = state(service)
    assert [c["status"] for c in coordinations] == [CoordinationStatus.ACCEPTED]
    assert (events > before[2], inbound) == (True, before[3] + 1)
    backscatter = [r for r in sink.messages() if FORGED_SENDER in r.recipients]
    assert backscatter == [], "nothing is ever sent to the sender of a refused reply"
