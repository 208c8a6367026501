"""Informing and consent by mail (issue 11.6, 11.7), through the real SMTP listener and the
loopback relay: ``Geïnformeerd: nee`` without a reason is refused naming the field; the reminder
to inform arrives by mail and a ``GEINFORMEERD`` reply records it; ``TOESTEMMING GEGEVEN`` on the
match mail records consent, the partner hears the fact, and ``CONTACT GELEGD`` still answers the
same mail. No mail carries a youth's identity."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from core.clock import utcnow
from core.models import MatchConsent, MatchMember, Signal
from core.scheduler import sweep
from tests.core.conftest import BSN_A
from tests.mail_gateway.conftest import MAIL_DOMAIN, RunningGateway
from tests.mail_gateway.relay_sink import Received, RelaySink
from tests.mail_gateway.test_processing import mail, outcome, send
from tests.mail_gateway.test_refusal_privacy import service  # noqa: F401  (the gateway + relay)

ANNA = "a.devries@ggd-groningen.example"
SANNE = "s.jansen@wij-groningen.example"
BIRTH = "01-05-2016"


def signal_body(informed: str, reason: str | None = None, reference: str = "GGD-9") -> str:
    body = (
        f"BSN: {BSN_A}\nGeboortedatum: {BIRTH}\nGemeente: Groningen\nKenmerk: {reference}\n"
        f"Code: laag\nGeïnformeerd: {informed}\n"
    )
    return body + (f"Reden uitstel: {reason}\n" if reason else "")


def text_of(received: Received) -> str:
    part = received.message.get_body(("plain",))
    assert part is not None
    return " ".join(str(part.get_content()).split())  # lines are wrapped


def assert_no_identity(received: Received) -> None:
    raw = received.raw.decode("utf-8", "replace")
    for needle in (BSN_A, BIRTH, "2016-05-01"):
        assert needle not in raw


def reply(service: RunningGateway, sender: str, notification: Received, body: str) -> str:  # noqa: F811
    answer = mail(
        sender,
        str(notification.message["Reply-To"]),
        body,
        Subject=f"Re: {notification.message['Subject']}",
    )
    _, receipt = outcome(service, send(service, answer))
    assert receipt is not None
    if receipt.kind == "foutmelding":
        return "FOUT: " + " | ".join(receipt.context["problems"])
    return str(receipt.context["confirmation"])


def test_not_informed_needs_a_reason_and_the_reminder_is_answered_by_geinformeerd(
    service: RunningGateway,  # noqa: F811
    sink: RelaySink,
) -> None:
    bare = mail(ANNA, f"signaal@{MAIL_DOMAIN}", signal_body("nee"))
    _, refusal = outcome(service, send(service, bare))
    assert refusal is not None and refusal.context["accepted"] == []
    [(field, reason)] = [(r["field"], r["reason"]) for r in refusal.context["refused"]]
    assert field == "Reden uitstel" and "bij Geïnformeerd 'nee'" in reason
    engine = service.gateway.engine
    with Session(engine) as session:
        assert session.exec(select(Signal)).first() is None

    good = mail(ANNA, f"signaal@{MAIL_DOMAIN}", signal_body("nee", "nog geen contact gehad"))
    _, receipt = outcome(service, send(service, good))
    assert receipt is not None and receipt.kind == "ontvangstbevestiging"
    # Placed ten days ago: the reminder is due (five working days, the default).
    with Session(engine) as session:
        session.execute(update(Signal).values(placed_at=utcnow() - timedelta(days=10)))
        session.commit()
    assert sweep(engine, service.gateway.config)["informing_reminders"] == 1
    service.wake()
    [reminder] = sink.wait_for(1, kind="informeren-herinnering")
    assert reminder.recipients == [ANNA]
    assert str(reminder.message["Reply-To"]).startswith("antwoord+")
    assert reminder.message["X-Verwijsindex-Ref"] == "S-1"
    text = text_of(reminder)
    assert "Bij de leeftijd van de jongere nu: de ouders." in text
    assert "GEINFORMEERD (of INFORMED)" in text
    assert_no_identity(reminder)

    assert "jongere en/of de ouders geïnformeerd" in reply(
        service, ANNA, reminder, "GEINFORMEERD\n"
    )
    with Session(engine) as session:
        signal = session.exec(select(Signal)).one()
    assert signal.informed == "ja" and signal.informed_at is not None
    assert "al geantwoord" in reply(service, ANNA, reminder, "Geïnformeerd\n")
    assert sweep(engine, service.gateway.config)["informing_reminders"] == 0


def test_consent_by_reply_to_the_match_mail_is_told_to_the_partner(
    service: RunningGateway,  # noqa: F811
    sink: RelaySink,
) -> None:
    for sender, reference in ((ANNA, "GGD-9"), (SANNE, "WIJ-9")):
        body = signal_body("ja", reference=reference)
        _, receipt = outcome(service, send(service, mail(sender, f"signaal@{MAIL_DOMAIN}", body)))
        assert receipt is not None and receipt.kind == "ontvangstbevestiging"
    matches = sink.wait_for(2, kind="match")
    [to_anna] = [m for m in matches if m.recipients == [ANNA]]
    assert "TOESTEMMING GEGEVEN (of CONSENT GIVEN)" in text_of(to_anna)

    assert reply(service, ANNA, to_anna, "TOESTEMMING\n").startswith("FOUT: ")
    assert "toestemming gevraagd" in reply(service, ANNA, to_anna, "Toestemming gevraagd\n")
    assert "contact gelegd" in reply(service, ANNA, to_anna, "CONTACT GELEGD\n")
    assert "toestemming gegeven" in reply(service, ANNA, to_anna, "*TOESTEMMING GEGEVEN*\n")
    engine = service.gateway.engine
    with Session(engine) as session:
        [consent] = session.exec(select(MatchConsent)).all()
        confirmed = session.exec(
            select(MatchMember).where(col(MatchMember.contact_confirmed_at).is_not(None))
        ).all()
    assert (consent.institution_id, consent.status) == ("ggd-groningen", "given")
    assert len(confirmed) == 1

    told = sink.wait_for(2, kind="match-toestemming")
    assert all(m.recipients == [SANNE] for m in told)
    latest = text_of(told[-1])
    assert "GGD Groningen heeft bij match M-1 toestemming gekregen" in latest
    assert "de inhoud zelf gaat nooit via de verwijsindex" in latest
    assert str(told[-1].message["Subject"]).endswith("GGD Groningen — gegeven")
    for received in [to_anna, *told]:
        assert_no_identity(received)
