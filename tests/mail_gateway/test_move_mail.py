"""A youth who moves, by mail (issue 11.5): a registration sent to the real SMTP listener names
another municipality. Both municipalities' contacts get a verhuizing mail at the loopback relay
(references only), the Sociaal Team the new municipality's rules pick is asked to take the
coordination over, and its AKKOORD by reply moves it — until then WIJ Groningen keeps it."""

from __future__ import annotations

import re

from sqlmodel import Session, select

from core.models import AuditEvent, Coordination, CoordinationStatus, Youth
from tests.core.conftest import BSN_A
from tests.mail_gateway.conftest import MAIL_DOMAIN, RunningGateway
from tests.mail_gateway.relay_sink import RelaySink
from tests.mail_gateway.test_processing import mail, outcome, send
from tests.mail_gateway.test_refusal_privacy import service  # noqa: F401  (the gateway + relay)

SANNE = "s.jansen@wij-groningen.example"
EVA = "e.meijer@jeugdhulp-noord.example"
LOTTE = "l.hoekstra@sociaalteam-westerkwartier.example"
IDENTITY = (BSN_A, "01-05-2016", "Geheimnaam")


def _body(received: object) -> str:
    text = received.message.get_body(("plain",))  # type: ignore[attr-defined]
    assert text is not None
    return str(text.get_content())


def test_a_registration_by_mail_that_moves_the_youth_tells_both_municipalities(
    service: RunningGateway,  # noqa: F811  (the fixture imported above)
    sink: RelaySink,
) -> None:
    for sender, reference in ((SANNE, "WIJ-9"), (EVA, "JHN-9")):
        signal = (
            f"BSN: {BSN_A}\nNaam: Testkind Geheimnaam\nGeboortedatum: 01-05-2016\n"
            f"Gemeente: Groningen\nKenmerk: {reference}\nCode: laag\nGeinformeerd: ja\n"
        )
        _, receipt = outcome(service, send(service, mail(sender, f"signaal@{MAIL_DOMAIN}", signal)))
        assert receipt is not None and receipt.kind == "ontvangstbevestiging"
    sink.wait_for(1, kind="coordinatie-toegewezen")

    moved = f"BSN: {BSN_A}\nGeboortedatum: 01-05-2016\nGemeente: Westerkwartier\nKenmerk: JHN-9\n"
    _, receipt = outcome(service, send(service, mail(EVA, f"registratie@{MAIL_DOMAIN}", moved)))
    assert receipt is not None and receipt.kind == "ontvangstbevestiging"

    told = sink.wait_for(2, kind="verhuizing")
    assert sorted(r.recipients[0] for r in told) == [
        "regie.verwijsindex@gemeente-groningen.example",
        "verwijsindex@westerkwartier.example",
    ]
    with Session(service.gateway.engine) as session:
        youth = session.exec(select(Youth)).one()
        assert youth.municipality == "Westerkwartier"
        [event] = session.exec(select(AuditEvent).where(AuditEvent.action == "youth-moved")).all()
        assert event.channel == "smtp" and event.details["to"] == "Westerkwartier"
    for received in told:
        body = _body(received)
        assert f"J-{youth.id}" in str(received.message["Subject"])
        assert "van Groningen naar Westerkwartier" in body
        assert "Sociaal Team Westerkwartier gevraagd de" in body
        raw = received.raw.decode("utf-8", "replace")
        for identity in IDENTITY:
            assert identity not in raw

    [asked] = sink.wait_for(1, kind="coordinatie-overname")
    assert asked.recipients == ["verwijsindex@sociaalteam-westerkwartier.example"]
    assert "AKKOORD" in _body(asked)
    with Session(service.gateway.engine) as session:
        coordination = session.exec(select(Coordination)).one()
        assert coordination.institution_id == "wij-groningen", "kept until the newcomer says yes"
    token = re.fullmatch(r"antwoord\+(\w+)@.*", str(asked.message["Reply-To"]))
    assert token is not None
    reply = mail(LOTTE, f"antwoord+{token.group(1)}@{MAIL_DOMAIN}", "AKKOORD\n")
    _, answer = outcome(service, send(service, reply))
    assert answer is not None and answer.kind == "ontvangstbevestiging"
    with Session(service.gateway.engine) as session:
        coordination = session.exec(select(Coordination)).one()
        assert (coordination.institution_id, coordination.status) == (
            "sociaal-team-westerkwartier",
            CoordinationStatus.ACCEPTED,
        )
    # Both involved institutions (the old coordinator among them) and both reporters.
    accepted = sink.wait_for(4, kind="coordinatie-geaccepteerd")
    assert {r.recipients[0] for r in accepted} == {
        "verwijsindex@wij-groningen.example",
        "verwijsindex@jeugdhulp-noord.example",
        SANNE,
        EVA,
    }
