"""Registrations and signals forwarded by a colleague (issue 13.9): read from the forwarded part
(fixtures/forwarded/: Outlook in Dutch and English, Gmail in Dutch and English, a mail attached
whole), with the forwarding person as the sender — whose right to send is decided as for any
mail — and a receipt that says which part was read."""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest
from sqlmodel import Session, select

from core.models import Professional, Registration, Signal
from mail_gateway.parsing.forwarded import read_forwarded
from mail_gateway.parsing.mime import read_mail
from tests.core.conftest import BSN_A
from tests.mail_gateway.conftest import MAIL_DOMAIN, RunningGateway
from tests.mail_gateway.test_processing import (  # noqa: F401  (gateway: the fixture)
    block,
    gateway,
    mail,
    outcome,
    send,
)

FIXTURES = Path(__file__).parent / "fixtures" / "forwarded"
FORWARDER = "p.bakker@ggd-groningen.example"
NAMES = ["outlook-nl", "outlook-en", "gmail-nl", "gmail-en", "attached-rfc822"]


def test_every_form_has_a_fixture() -> None:
    assert sorted(NAMES) == sorted(p.stem for p in FIXTURES.glob("*.eml"))


@pytest.mark.parametrize("name", NAMES)
def test_the_forwarded_part_is_read(name: str) -> None:
    forwarding = read_mail((FIXTURES / f"{name}.eml").read_bytes())
    read = read_forwarded(forwarding)
    assert read.from_address == FORWARDER  # the sender is who forwarded it
    assert read.subject == forwarding.subject
    assert read.text.startswith("Goedemorgen,")  # line 1 is the forwarded message's first
    assert "a.devries@ggd-groningen.example" in read.read_part


@pytest.mark.parametrize("name", NAMES)
def test_a_forwarded_registration_is_registered_for_the_forwarder(
    gateway: RunningGateway,  # noqa: F811
    name: str,
) -> None:
    raw = (FIXTURES / f"{name}.eml").read_bytes()
    with smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=10) as smtp:
        smtp.sendmail(FORWARDER, [f"registratie@{MAIL_DOMAIN}"], raw)
    _, receipt = outcome(gateway, str(read_mail(raw).message_id))
    assert receipt is not None and receipt.kind == "ontvangstbevestiging", receipt.context
    assert receipt.recipient == FORWARDER
    accepted = receipt.context["accepted"]
    assert [(a["line"], a["own_reference"]) for a in accepted] == [(5, "GGD-FWD-1")]
    read_part = receipt.context["read_part"]
    kind = "bijgevoegde" if name == "attached-rfc822" else "doorgestuurde"
    assert f"het {kind} bericht van a.devries@ggd-groningen.example gelezen" in read_part
    assert "Als afzender geldt wie het doorstuurde" in read_part
    if name == "gmail-nl":  # its second block fails the elfproef: named by line and kenmerk
        [refused] = receipt.context["refused"]
        assert (refused["line"], refused["own_reference"]) == (11, "GGD-FWD-2")
    with Session(gateway.gateway.engine) as session:
        [registration] = session.exec(select(Registration)).all()
    assert registration.institution_id == "ggd-groningen"


def test_a_forward_from_someone_not_allowed_is_refused_before_data(
    gateway: RunningGateway,  # noqa: F811
) -> None:
    raw = (
        (FIXTURES / "gmail-nl.eml")
        .read_bytes()
        .replace(
            b"From: Petra Bakker <p.bakker@ggd-groningen.example>", b"From: <iemand@elders.example>"
        )
    )
    with (
        smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=10) as smtp,
        pytest.raises(smtplib.SMTPRecipientsRefused) as refused,
    ):
        smtp.sendmail("iemand@elders.example", [f"registratie@{MAIL_DOMAIN}"], raw)
    [(code, _)] = refused.value.recipients.values()
    assert code == 550  # the forwarded header's colleague does not make it allowed


def test_the_forwarders_own_fields_win(gateway: RunningGateway) -> None:  # noqa: F811
    own = block(reference="EIGEN-1")
    body = own + "\n---------- Doorgestuurd bericht ---------\nVan: X <x@y.example>\n\n"
    body += block(reference="ANDER-1")
    message = mail(FORWARDER, f"registratie@{MAIL_DOMAIN}", body, Subject="Fwd: aanmelding")
    _, receipt = outcome(gateway, send(gateway, message))
    assert receipt is not None and receipt.context["read_part"] == ""
    assert [a["own_reference"] for a in receipt.context["accepted"]] == ["EIGEN-1"]


def test_a_forwarded_signal_is_placed_in_the_forwarders_name(
    gateway: RunningGateway,  # noqa: F811
) -> None:
    fields = block(BSN_A, "S-EIGEN", Code="laag", Geinformeerd="ja")
    body = (
        "Kun jij deze plaatsen? Ik heb geen toegang vanaf huis.\n\n"
        "________________________________\n"
        "Van: Anna de Vries <a.devries@ggd-groningen.example>\n"
        "Verzonden: maandag 23 november 2026 16:40\n"
        "Aan: Petra Bakker <p.bakker@ggd-groningen.example>\n"
        "Onderwerp: signaal\n\n" + fields
    )
    message = mail(FORWARDER, f"signaal@{MAIL_DOMAIN}", body, Subject="Doorst: signaal")
    _, receipt = outcome(gateway, send(gateway, message))
    assert receipt is not None and receipt.kind == "ontvangstbevestiging", receipt.context
    assert receipt.context["accepted"][0]["action"] == "signaal"
    assert "doorgestuurde bericht" in receipt.context["read_part"]
    with Session(gateway.gateway.engine) as session:
        [signal] = session.exec(select(Signal)).all()
        professional = session.get(Professional, signal.professional_id)
    assert professional is not None and professional.email == FORWARDER


def test_of_several_attached_mails_the_first_is_read_and_the_others_are_named() -> None:
    raw = (FIXTURES / "attached-rfc822.eml").read_bytes()
    forwarding = read_mail(raw)
    [attached] = [a for a in forwarding.attachments if a.content_type == "message/rfc822"]
    forwarding.attachments.append(attached)
    read = read_forwarded(forwarding)
    assert read.text.startswith("Goedemorgen,")
    assert "Er was nog 1 bericht bijgevoegd; dat is niet gelezen" in read.read_part
    assert not [a for a in read.attachments if a.content_type.startswith("message/")]


def test_a_reply_with_outlooks_history_is_no_forward() -> None:
    body = (
        "Zie mijn vraag hieronder.\n\nVan: Verwijsindex\nVerzonden: maandag\nAan: Petra\n\nBSN: 1\n"
    )
    message = read_mail(
        mail(FORWARDER, f"registratie@{MAIL_DOMAIN}", body, Subject="RE: x").as_bytes()
    )
    assert read_forwarded(message) is message  # only a forward's subject makes Outlook's block one
