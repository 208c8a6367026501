"""One family, one coordinator, by mail: two siblings' signals sent to the real SMTP listener
start one coordination, and its assignment mail (delivered to the loopback relay) names both
signals by reference, never a youth's identity."""

from __future__ import annotations

from sqlmodel import Session, select

from core.models import Coordination, CoordinationMember
from tests.core.conftest import BSN_A, BSN_B, BSN_PARENT
from tests.mail_gateway.conftest import MAIL_DOMAIN, RunningGateway
from tests.mail_gateway.relay_sink import RelaySink
from tests.mail_gateway.test_processing import mail, outcome, send
from tests.mail_gateway.test_refusal_privacy import service  # noqa: F401  (the gateway + relay)

ANNA = "a.devries@ggd-groningen.example"
SANNE = "s.jansen@wij-groningen.example"


def signal(bsn: str, birth: str, reference: str) -> str:
    return (
        f"BSN: {bsn}\nGeboortedatum: {birth}\nGemeente: Groningen\nKenmerk: {reference}\n"
        f"BSN ouder: {BSN_PARENT}\nCode: laag\nGeinformeerd: ja\n"
    )


def test_two_siblings_signals_by_mail_get_one_coordination_and_one_assignment_mail(
    service: RunningGateway,  # noqa: F811  (the fixture imported above)
    sink: RelaySink,
) -> None:
    # Each child is known to one institution only: together the family has two.
    younger = signal(BSN_B, "01-06-2023", "GGD-jong")
    older = signal(BSN_A, "01-05-2016", "WIJ-oud")
    for sender, body in ((ANNA, younger), (SANNE, older)):
        _, receipt = outcome(service, send(service, mail(sender, f"signaal@{MAIL_DOMAIN}", body)))
        assert receipt is not None and receipt.kind == "ontvangstbevestiging"
    [assignment] = sink.wait_for(1, kind="coordinatie-toegewezen")
    with Session(service.gateway.engine) as session:
        coordination = session.exec(select(Coordination)).one()
        members = session.exec(
            select(CoordinationMember).where(CoordinationMember.coordination_id == coordination.id)
        ).all()
    assert coordination.institution_id == "wij-groningen"
    assert len(members) == 2
    assert assignment.recipients == ["verwijsindex@wij-groningen.example"]
    text = assignment.message.get_body(("plain",))
    assert text is not None
    body = text.get_content()
    assert coordination.number in str(assignment.message["Subject"])
    assert "Signaal S-1" in body and "Signaal S-2" in body
    assert "- GGD Groningen" in body and "- WIJ Groningen" in body  # the family's involved
    for identity in (BSN_A, BSN_B, BSN_PARENT, "01-05-2016", "01-06-2023"):
        assert identity not in assignment.raw.decode("utf-8", "replace")
    assert len(sink.wait_for(1, kind="coordinatie-toegewezen")) == 1
