"""Bad input, one message after another on one listener (issue 3, acceptance): each gets the
answer CONTRACT §4 specifies, nothing accepted is lost, and the listener keeps serving.

One SMTP session to the real gateway (intake, processing and delivery roles) on loopback, its
notifications going to an aiosmtpd relay sink. In turn: a forged sender (refused at RCPT, and
an allowed envelope carrying someone else's From refused at DATA; nothing stored, nothing
mailed), an unknown mailbox, an oversized mail, a bad BSN, an unknown municipality, malformed
MIME, a CSV with good and bad rows, and at last a good registration. The details of each answer
are tested elsewhere (``test_smtp_intake``, ``test_processing``, ``test_parsing_mime``); here
it is the sequence that counts.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid

import pytest
from sqlmodel import Session, select

from core.models import InboundMessage, InboundStatus, Registration
from mail_gateway.context import Gateway
from tests.core.conftest import BSN_A, BSN_B, BSN_C
from tests.mail_gateway.conftest import MAIL_DOMAIN, RunningGateway, wait_until
from tests.mail_gateway.relay_sink import Received, RelaySink

GGD = "verwijsindex@ggd-groningen.example"
FORGER = "directie@kwaadwillend.example"
REGISTRATIE = f"registratie@{MAIL_DOMAIN}"
MAX_SIZE = 100_000


@pytest.fixture
def service(
    make_gateway: Callable[..., Gateway],
    run_gateway: Callable[..., RunningGateway],
    sink: RelaySink,
) -> RunningGateway:
    return run_gateway(make_gateway(relay_url=sink.url, max_message_size=MAX_SIZE))


def registration(body: str, *, sender: str = GGD, subject: str = "Aanmelding") -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, REGISTRATIE, subject
    message["Message-ID"] = make_msgid(domain="ggd-groningen.example")
    message.set_content(body)
    return message


def youth(bsn: str, reference: str, municipality: str = "Groningen") -> str:
    return (
        f"BSN: {bsn}\nGeboortedatum: 01-05-2016\nGemeente: {municipality}\nKenmerk: {reference}\n"
    )


def malformed_mime(message_id: str) -> bytes:
    """A multipart whose boundary parameter is never closed, a header line without a name, 8-bit
    garbage in the header section, a part under another boundary with broken base64, no close
    boundary: nothing in it reads as a registration."""
    return (
        f"From: {GGD}\r\nTo: {REGISTRATIE}\r\nSubject: Aanmelding\r\n"
        f"Message-ID: {message_id}\r\nMIME-Version: 1.0\r\n".encode()
        + b'Content-Type: multipart/mixed; boundary="grens\r\n'
        + b"\xff\xfe\x80 ???\r\n: lege naam\r\n\r\n"
        + b"--andere-grens\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n"
        + b"\r\n!!!dit is geen base64!!!\r\n--andere-grens\r\n"
    )


def answer_to(sink: RelaySink, message_id: str) -> Received:
    """The one notification the relay received in answer to ``message_id``."""

    def found() -> list[Received]:
        return [
            r for r in sink.messages() if (r.message["In-Reply-To"] or "").strip() == message_id
        ]

    [answer] = wait_until(found, what=f"the answer to {message_id} at the relay sink")
    return answer


def stored(service: RunningGateway, message_id: str | None = None) -> list[InboundMessage]:
    with Session(service.gateway.engine) as session:
        query = select(InboundMessage).order_by(InboundMessage.id)  # type: ignore[arg-type]
        if message_id is not None:
            query = query.where(InboundMessage.message_id == message_id)
        return list(session.exec(query).all())


def processed(service: RunningGateway, message_id: str) -> InboundMessage:
    def done() -> InboundMessage | None:
        rows = stored(service, message_id)
        return rows[0] if rows and rows[0].status != InboundStatus.RECEIVED else None

    row: InboundMessage = wait_until(done, what=f"processing of {message_id}")
    return row


def text_of(received: Received) -> str:
    body = received.message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def accepted(smtp: smtplib.SMTP, message: EmailMessage | bytes) -> None:
    raw = message if isinstance(message, bytes) else message.as_bytes(policy=SMTP)
    assert smtp.sendmail(GGD, [REGISTRATIE], raw) == {}


def test_each_bad_message_gets_its_answer_nothing_is_lost_and_the_listener_keeps_serving(
    service: RunningGateway, sink: RelaySink
) -> None:
    smtp = smtplib.SMTP("127.0.0.1", service.smtp_port, timeout=30)
    smtp.ehlo("client.ggd-groningen.example")

    # A forged envelope sender: refused at RCPT, before any data is sent.
    smtp.mail(FORGER)
    code, text = smtp.rcpt(REGISTRATIE)
    assert (code, text[:5]) == (550, b"5.7.1")
    smtp.rset()
    # An allowed envelope carrying another domain's From: refused at the end of DATA.
    forged = registration(youth(BSN_A, "NEP-1"), sender=FORGER)
    with pytest.raises(smtplib.SMTPDataError) as refused:
        smtp.sendmail(GGD, [REGISTRATIE], forged.as_bytes(policy=SMTP))
    assert (refused.value.smtp_code, refused.value.smtp_error[:5]) == (550, b"5.7.1")

    # An unknown mailbox.
    smtp.mail(GGD)
    code, text = smtp.rcpt(f"inschrijving@{MAIL_DOMAIN}")
    assert (code, text[:5]) == (550, b"5.1.1")
    smtp.rset()

    # Too large: refused at MAIL when the client announces the SIZE (RFC 1870), else while
    # the data comes in.
    huge = registration(youth(BSN_A, "GROOT-1") + ("x" * 70 + "\n") * (MAX_SIZE // 60))
    with pytest.raises(smtplib.SMTPSenderRefused) as too_large:
        smtp.sendmail(GGD, [REGISTRATIE], huge.as_bytes(policy=SMTP))
    assert too_large.value.smtp_code == 552
    smtp.mail(GGD)
    assert smtp.rcpt(REGISTRATIE)[0] == 250
    assert smtp.data(huge.as_bytes(policy=SMTP))[0] == 552

    assert stored(service) == [], "nothing refused is stored"

    # A BSN that fails the elfproef: accepted, then a receipt naming the line and the field.
    bad_bsn = registration("Goedemorgen,\n\n" + youth("123456789", "GGD-ELF"))
    accepted(smtp, bad_bsn)
    answer = answer_to(sink, bad_bsn["Message-ID"])
    assert answer.message["X-Verwijsindex-Type"] == "ontvangstbevestiging"
    assert "0 verwerkt, 1 niet verwerkt" in answer.message["Subject"]
    assert "Regel 3 (uw kenmerk GGD-ELF), veld BSN:" in text_of(answer)  # named by its Kenmerk
    assert "elfproef" in text_of(answer)
    assert "123456789" not in answer.raw.decode("ascii"), "an answer never repeats a BSN"
    assert processed(service, bad_bsn["Message-ID"]).status == InboundStatus.PROCESSED

    # A municipality outside the region.
    elsewhere = registration(youth(BSN_B, "GGD-GEM", municipality="Atlantis"))
    accepted(smtp, elsewhere)
    answer = answer_to(sink, elsewhere["Message-ID"])
    assert answer.message["X-Verwijsindex-Type"] == "ontvangstbevestiging"
    assert "Regel 1 (uw kenmerk GGD-GEM), veld Gemeente:" in text_of(answer)
    assert processed(service, elsewhere["Message-ID"]).status == InboundStatus.PROCESSED

    # Malformed MIME: an error report, and the message kept (sealed) for an administrator.
    broken_id = make_msgid(domain="ggd-groningen.example")
    broken = malformed_mime(broken_id)
    accepted(smtp, broken)
    answer = answer_to(sink, broken_id)
    assert answer.message["X-Verwijsindex-Type"] == "foutmelding"
    assert "niet verwerkt" in answer.message["Subject"]
    assert "kon niet worden verwerkt" in text_of(answer)
    assert "bewaard" in text_of(answer) and "beheerder" in text_of(answer)
    kept = processed(service, broken_id)
    assert kept.status == InboundStatus.FAILED
    assert service.gateway.vault.open(kept.raw) == broken

    # A CSV attachment with good and bad rows: the good ones imported, the bad ones named.
    batch = registration("Bijgaand de aanmeldingen van vannacht.\n", subject="Aanmeldingen")
    csv_rows = (
        "bsn;naam;geboortedatum;gemeente;kenmerk\r\n"
        f"{BSN_A};Kind Een;01-05-2016;Groningen;GGD-C1\r\n"
        "123456789;Kind Twee;01-05-2016;Groningen;GGD-C2\r\n"
        f"{BSN_C};Kind Drie;01-05-2016;Atlantis;GGD-C3\r\n"
        f"{BSN_B};Kind Vier;01-05-2016;Groningen;GGD-C4\r\n"
    )
    batch.add_attachment(csv_rows.encode(), maintype="text", subtype="csv", filename="nacht.csv")
    accepted(smtp, batch)
    answer = answer_to(sink, batch["Message-ID"])
    assert answer.message["X-Verwijsindex-Type"] == "ontvangstbevestiging"
    assert "2 verwerkt, 2 niet verwerkt" in answer.message["Subject"]
    body = text_of(answer)
    assert "Bijlage nacht.csv: 2 aangemeld" in body
    assert "Regel 3 (uw kenmerk GGD-C2), veld BSN:" in body  # a CSV row: its kenmerk too
    assert "Regel 4 (uw kenmerk GGD-C3), veld Gemeente:" in body
    assert processed(service, batch["Message-ID"]).status == InboundStatus.PROCESSED

    # After all that, on the same session, a good registration goes through as ever.
    good = registration(youth(BSN_C, "GGD-GOED"))
    accepted(smtp, good)
    answer = answer_to(sink, good["Message-ID"])
    assert answer.message["X-Verwijsindex-Type"] == "ontvangstbevestiging"
    assert answer.message["Auto-Submitted"] == "auto-replied"
    assert "Uw bericht is ontvangen en verwerkt." in text_of(answer)
    assert "GGD-GOED" in text_of(answer) and "Niet verwerkt" not in text_of(answer)
    assert processed(service, good["Message-ID"]).status == InboundStatus.PROCESSED
    assert smtp.noop()[0] == 250
    smtp.quit()

    # Nothing lost: every stored message has its outcome and exactly one answer, all to the
    # (authenticated) sender; nothing ever went to the forged address.
    rows = stored(service)
    assert [row.message_id for row in rows] == [
        bad_bsn["Message-ID"],
        elsewhere["Message-ID"],
        broken_id,
        batch["Message-ID"],
        good["Message-ID"],
    ]
    assert all(row.status != InboundStatus.RECEIVED for row in rows)
    answers = sink.messages("ontvangstbevestiging") + sink.messages("foutmelding")
    assert len(answers) == len(rows)
    assert all(r.recipients == [GGD] for r in answers)
    assert not [r for r in sink.messages() if any("kwaadwillend" in a for a in r.recipients)]
    with Session(service.gateway.engine) as session:
        references = sorted(r.reference for r in session.exec(select(Registration)).all())
    assert references == ["GGD-C1", "GGD-C4", "GGD-GOED"]
