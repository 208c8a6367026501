"""The SMTP listener on loopback, driven by smtplib: what it answers, and that what it answers
250 to is stored, sealed and once (CONTRACT §4)."""

from __future__ import annotations

import hashlib
import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid

import pytest
from sqlmodel import Session, select

from core.db import transaction
from core.models import InboundMessage
from mail_gateway.context import Gateway
from tests.core.conftest import BSN_A
from tests.mail_gateway.conftest import MAIL_DOMAIN, RunningGateway

GGD = "verwijsindex@ggd-groningen.example"
REGISTRATIE = f"registratie@{MAIL_DOMAIN}"
SIGNAAL = f"signaal@{MAIL_DOMAIN}"


def registration(sender: str = GGD, *, message_id: str | None = None, body: str = "") -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = REGISTRATIE
    message["Subject"] = "Aanmelding"
    message["Message-ID"] = message_id or make_msgid(domain="ggd-groningen.example")
    message.set_content(
        body or f"BSN: {BSN_A}\nGeboortedatum: 01-05-2016\nGemeente: Groningen\nKenmerk: GGD-1\n"
    )
    return message.as_bytes(policy=SMTP)  # CRLF line ends, as a real client sends


@pytest.fixture
def smtp_gateway(
    make_gateway: Callable[..., Gateway], run_gateway: Callable[..., RunningGateway]
) -> RunningGateway:
    return run_gateway(make_gateway(max_message_size=200_000), ["smtp"])


def client(gateway: RunningGateway) -> smtplib.SMTP:
    connection = smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=10)
    connection.ehlo("client.example")
    return connection


def stored(gateway: RunningGateway) -> list[InboundMessage]:
    with Session(gateway.gateway.engine) as session:
        return list(session.exec(select(InboundMessage)).all())


def test_a_registration_from_an_allowed_sender_is_stored_sealed_before_250(
    smtp_gateway: RunningGateway,
) -> None:
    with client(smtp_gateway) as smtp:
        smtp.mail(GGD)
        assert smtp.rcpt(REGISTRATIE)[0] == 250
        code, _ = smtp.data(registration())
    assert code == 250
    [row] = stored(smtp_gateway)  # committed before the 250 was answered
    assert (row.mailbox, row.institution_id, row.transport) == (
        "registratie",
        "ggd-groningen",
        "smtp",
    )
    assert BSN_A.encode() not in row.raw, "the BSN must never be stored in clear"
    assert BSN_A.encode() in smtp_gateway.gateway.vault.open(row.raw)


def test_an_unknown_recipient_is_refused_at_rcpt(smtp_gateway: RunningGateway) -> None:
    with client(smtp_gateway) as smtp:
        smtp.mail(GGD)
        code, text = smtp.rcpt(f"iemand@{MAIL_DOMAIN}")
        assert (code, text[:5]) == (550, b"5.1.1")
        code, _ = smtp.rcpt("registratie@elders.example")
        assert code == 550
    assert stored(smtp_gateway) == []


def test_a_sender_outside_the_covenant_is_refused_with_5_7_1_and_never_bounced(
    smtp_gateway: RunningGateway,
) -> None:
    with client(smtp_gateway) as smtp:
        smtp.mail("aanvaller@kwaadwillend.example")
        code, text = smtp.rcpt(REGISTRATIE)
    assert (code, text[:5]) == (550, b"5.7.1")
    assert stored(smtp_gateway) == []


def test_signals_by_mail_only_from_professionals_whose_team_may_signal(
    smtp_gateway: RunningGateway,
) -> None:
    with client(smtp_gateway) as smtp:
        smtp.mail("a.devries@ggd-groningen.example")
        assert smtp.rcpt(SIGNAAL)[0] == 250
        smtp.rset()
        smtp.mail("j.vandijk@jeugdhulp-noord.example")  # CAT: may not signal
        assert smtp.rcpt(SIGNAAL)[:1] == (550,)
        smtp.rset()
        smtp.mail("verwijsindex@ggd-groningen.example")  # an institution, not a professional
        assert smtp.rcpt(SIGNAAL)[:1] == (550,)


def test_one_mailbox_per_transaction(smtp_gateway: RunningGateway) -> None:
    with client(smtp_gateway) as smtp:
        smtp.mail(GGD)
        assert smtp.rcpt(REGISTRATIE)[0] == 250
        code, text = smtp.rcpt(f"postmaster@{MAIL_DOMAIN}")
    assert (code, text[:5]) == (452, b"4.5.3")


def test_postmaster_takes_mail_from_anyone(smtp_gateway: RunningGateway) -> None:
    with client(smtp_gateway) as smtp:
        smtp.mail("iemand@ergens.example")
        assert smtp.rcpt("postmaster")[0] == 250
        assert smtp.data(registration("iemand@ergens.example"))[0] == 250
    assert [row.mailbox for row in stored(smtp_gateway)] == ["postmaster"]


def test_oversized_mail_is_refused_with_552_and_not_stored(smtp_gateway: RunningGateway) -> None:
    huge = registration(body=("x" * 70 + "\n") * 5_000)
    with client(smtp_gateway) as smtp:
        assert "size" in smtp.esmtp_features
        smtp.mail(GGD)
        smtp.rcpt(REGISTRATIE)
        code, _ = smtp.data(huge)
    assert code == 552
    assert stored(smtp_gateway) == []
    with client(smtp_gateway) as smtp:  # still serving
        assert smtp.noop()[0] == 250


def test_the_same_message_id_is_stored_once_however_often_it_arrives(
    smtp_gateway: RunningGateway,
) -> None:
    message = registration(message_id="<zelfde-bericht@ggd-groningen.example>")
    for _ in range(3):
        with client(smtp_gateway) as smtp:
            assert smtp.sendmail(GGD, [REGISTRATIE], message) == {}
    assert len(stored(smtp_gateway)) == 1


def test_a_message_without_message_id_is_recognised_by_its_bytes(
    smtp_gateway: RunningGateway,
) -> None:
    message = registration().replace(b"Message-ID:", b"X-Old-Message-ID:")
    for _ in range(2):
        with client(smtp_gateway) as smtp:
            smtp.sendmail(GGD, [REGISTRATIE], message)
    assert len(stored(smtp_gateway)) == 1


def test_a_database_fault_answers_451_without_details(
    smtp_gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mail_gateway.intake as intake

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("database is locked: secret internals")

    monkeypatch.setattr(intake, "store_inbound", broken)
    with client(smtp_gateway) as smtp:
        smtp.mail(GGD)
        smtp.rcpt(REGISTRATIE)
        code, text = smtp.data(registration())
    assert (code, text[:5]) == (451, b"4.3.0")
    assert b"secret" not in text and b"RuntimeError" not in text
    monkeypatch.undo()
    with client(smtp_gateway) as smtp:  # the retry goes through
        assert smtp.sendmail(GGD, [REGISTRATIE], registration()) == {}


WIJ = "verwijsindex@wij-groningen.example"


def test_one_institution_cannot_make_anothers_mail_vanish_by_reusing_its_message_id(
    smtp_gateway: RunningGateway,
) -> None:
    squatted = "<aanmelding-0042@ggd-groningen.example>"  # seen in a Cc, or simply guessed
    with client(smtp_gateway) as smtp:
        assert smtp.sendmail(WIJ, [REGISTRATIE], registration(WIJ, message_id=squatted)) == {}
        real = registration(message_id=squatted)
        assert smtp.sendmail(GGD, [REGISTRATIE], real) == {}
        assert smtp.sendmail(GGD, [REGISTRATIE], real) == {}  # GGD's own retry: once
    rows = stored(smtp_gateway)
    assert sorted((r.institution_id, r.message_id) for r in rows) == [
        ("ggd-groningen", squatted),
        ("wij-groningen", squatted),
    ]
    assert (
        smtp_gateway.gateway.vault.open(
            next(r for r in rows if r.institution_id == "ggd-groningen").raw
        )
        == real
    )


def test_a_message_stored_before_senders_were_keyed_is_still_a_duplicate_only_for_its_sender(
    smtp_gateway: RunningGateway,
) -> None:
    """Rows stored before the sender was part of the dedupe key keep their old key (Message-ID
    and mailbox): the sender's retry is still recognised, nobody else's mail is taken for it."""
    message_id = "<voor-de-upgrade@ggd-groningen.example>"
    old_key = hashlib.sha256(f"{message_id}\nregistratie+".encode()).hexdigest()
    with transaction(smtp_gateway.gateway.engine) as session:
        session.add(
            InboundMessage(
                dedupe_key=old_key,
                message_id=message_id,
                transport="smtp",
                mail_from=GGD,
                rcpt_to=REGISTRATIE,
                mailbox="registratie",
                institution_id="ggd-groningen",
                raw=b"",
                status="processed",
            )
        )
    with client(smtp_gateway) as smtp:
        assert smtp.sendmail(GGD, [REGISTRATIE], registration(message_id=message_id)) == {}
        assert smtp.sendmail(WIJ, [REGISTRATIE], registration(WIJ, message_id=message_id)) == {}
    assert sorted((r.institution_id, r.dedupe_key == old_key) for r in stored(smtp_gateway)) == [
        ("ggd-groningen", True),
        ("wij-groningen", False),
    ]
