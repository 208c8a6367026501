"""The municipality's regie by mail (issue 11.8): an escalation reaches the municipality's
contact at the loopback relay with REGIE / AANWIJZEN / AFGEROND; the contact's reply to its
``antwoord+TOKEN@`` address (accepted at RCPT, though the contact is no institution sender)
is carried out by the core; anyone else, or AFGEROND without a toelichting, gets a clear
foutmelding; the named institution accepts by its own reply as usual."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlmodel import Session, select

from core.clock import utcnow
from core.db import run_in_transaction
from core.follow_up import sweep_match_follow_up
from core.models import Coordination, Match, MunicipalityAction
from tests.core.conftest import BSN_A
from tests.mail_gateway.conftest import MAIL_DOMAIN, RunningGateway
from tests.mail_gateway.relay_sink import Received, RelaySink
from tests.mail_gateway.test_processing import mail, outcome, send
from tests.mail_gateway.test_refusal_privacy import service  # noqa: F401  (the gateway + relay)

ANNA = "a.devries@ggd-groningen.example"
PIETER = "p.bakker@ggd-groningen.example"
SANNE = "s.jansen@wij-groningen.example"
CONTACT = "regie.verwijsindex@gemeente-groningen.example"
WIJ = "verwijsindex@wij-groningen.example"
GGD = "verwijsindex@ggd-groningen.example"
IDENTITY = (BSN_A, "01-05-2016", "Geheimnaam")


def _text(received: Received) -> str:
    part = received.message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def _token(received: Received) -> str:
    found = re.fullmatch(r"antwoord\+(\w+)@.*", str(received.message["Reply-To"]))
    assert found is not None, received.message["Reply-To"]
    return found.group(1)


def _signal(running: RunningGateway, sender: str, reference: str) -> None:
    body = (
        f"BSN: {BSN_A}\nNaam: Testkind Geheimnaam\nGeboortedatum: 01-05-2016\n"
        f"Gemeente: Groningen\nKenmerk: {reference}\nCode: laag\nGeinformeerd: ja\n"
    )
    _, receipt = outcome(running, send(running, mail(sender, f"signaal@{MAIL_DOMAIN}", body)))
    assert receipt is not None and receipt.kind == "ontvangstbevestiging"


def _reply(running: RunningGateway, sender: str, token: str, body: str) -> tuple[str, str]:
    """The kind of the answer and its text (confirmation or first problem)."""
    message = mail(sender, f"antwoord+{token}@{MAIL_DOMAIN}", body, Subject="Re: verwijsindex")
    _, answer = outcome(running, send(running, message))
    assert answer is not None
    if answer.kind == "foutmelding":
        return answer.kind, answer.context["problems"][0]
    return answer.kind, answer.context["confirmation"]


def _no_identity(received: Received) -> None:
    raw = received.raw.decode("utf-8", "replace")
    for identity in IDENTITY:
        assert identity not in raw


def test_an_unassigned_coordination_is_decided_by_the_municipality_by_mail(
    service: RunningGateway,  # noqa: F811  (the fixture imported above)
    sink: RelaySink,
) -> None:
    _signal(service, ANNA, "GGD-4")
    _signal(service, SANNE, "WIJ-4")
    [to_wij] = sink.wait_for(1, kind="coordinatie-toegewezen")
    # Age 9 in the city of Groningen: only WIJ fits the rules; its decline leaves nobody.
    assert _reply(service, SANNE, _token(to_wij), "WEIGER vol deze maand\n")[0] == (
        "ontvangstbevestiging"
    )

    [escalation] = sink.wait_for(1, kind="coordinatie-escalatie")
    assert escalation.recipients == [CONTACT]
    text = _text(escalation)
    assert "REGIE (of TAKE OVER)" in text and "AFGEROND <toelichting> (of CLOSED" in text
    assert "- wij-groningen: WIJ Groningen" in text  # the id to put after AANWIJZEN
    _no_identity(escalation)
    token = _token(escalation)

    # A professional of an involved institution holds the address but is not the municipality.
    kind, problem = _reply(service, ANNA, token, "REGIE\n")
    assert kind == "foutmelding" and "contactpersoon van de gemeente" in problem
    kind, problem = _reply(service, CONTACT, token, "AFGEROND\n\nMet vriendelijke groet,\nGerda\n")
    assert kind == "foutmelding" and "geef na AFGEROND een toelichting op" in problem

    kind, confirmation = _reply(service, CONTACT, token, "Aanwijzen: wij-groningen\n")
    assert kind == "ontvangstbevestiging"
    assert "WIJ Groningen is aangewezen" in confirmation
    assignment = sink.wait_for(2, kind="coordinatie-toegewezen")[1]
    assert assignment.recipients == [WIJ]
    assert "aangewezen door de gemeente Groningen" in _text(assignment)
    # The parties are told; WIJ's mailbox hears it from its assignment, its signaller here.
    told = sink.wait_for(3, kind="gemeente-regie")
    assert sorted(r.recipients[0] for r in told) == [ANNA, SANNE, GGD]
    for received in told:
        _no_identity(received)
    assert _reply(service, SANNE, _token(assignment), "AKKOORD\n")[0] == "ontvangstbevestiging"
    with Session(service.gateway.engine) as session:
        coordination = session.exec(select(Coordination)).one()
        assert (coordination.status, coordination.institution_id) == ("accepted", "wij-groningen")
        [action] = session.exec(select(MunicipalityAction)).all()
        assert (action.action, action.institution_id) == ("assigned", "wij-groningen")


def test_a_stalled_match_taken_up_and_closed_with_a_reason_over_several_lines(
    service: RunningGateway,  # noqa: F811
    sink: RelaySink,
) -> None:
    _signal(service, ANNA, "GGD-5")
    _signal(service, PIETER, "GGD-6")  # one institution: a match, no coordination
    config = service.gateway.config

    def stall(session: Session) -> None:
        """The follow-up deadline passed (now, for the delivery worker's clock): escalate."""
        match = session.exec(select(Match)).one()
        match.follow_up_due_at = utcnow() - timedelta(minutes=1)
        session.add(match)
        session.flush()
        sweep_match_follow_up(session, config, utcnow())

    run_in_transaction(service.gateway.engine, stall)
    [escalation] = sink.wait_for(1, kind="match-escalatie", timeout=20)
    assert "Er is nu geen instelling om aan te wijzen" in _text(escalation)

    kind, confirmation = _reply(service, CONTACT, _token(escalation), "*Regie*\n")
    assert kind == "ontvangstbevestiging" and "voert regie over M-" in confirmation
    told = sink.wait_for(3, kind="gemeente-regie", timeout=20)
    [own] = [r for r in told if r.recipients == [CONTACT]]
    assert "AANWIJZEN" in _text(own) and own.message["Reply-To"]
    kind, confirmation = _reply(
        service,
        CONTACT,
        _token(own),
        "Afgerond: beide melders hebben elkaar gesproken;\nde hulp loopt via het wijkteam.\n\n"
        "Met vriendelijke groet,\nGerda Huizinga\n\n> Beste Gerda Huizinga,\n",
    )
    assert kind == "ontvangstbevestiging" and "afgerond" in confirmation
    with Session(service.gateway.engine) as session:
        actions = session.exec(select(MunicipalityAction).order_by(MunicipalityAction.id)).all()  # type: ignore[arg-type]
        assert [a.action for a in actions] == ["regie", "closed"]
        assert actions[1].note == (
            "beide melders hebben elkaar gesproken;\nde hulp loopt via het wijkteam."
        )
    closed = [r for r in sink.wait_for(5, kind="gemeente-regie", timeout=20) if r not in told]
    assert sorted(r.recipients[0] for r in closed) == [ANNA, PIETER]
    assert "de hulp loopt via het wijkteam." in _text(closed[0])
