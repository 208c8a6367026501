"""From a stored message to core commands and one answer: registrations (body and CSV),
signals and replies by mail, the receipts and error reports, and mail that gets no answer."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from dataclasses import replace
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid
from typing import Any

import pytest
from sqlmodel import Session, select

from core.clock import as_utc, local_date, utcnow
from core.config import CoreConfig
from core.models import (
    Coordination,
    InboundMessage,
    InboundStatus,
    OutboxMessage,
    Registration,
    Signal,
)
from mail_gateway.context import Gateway, build_gateway
from tests.core.conftest import BSN_A, BSN_B
from tests.mail_gateway.conftest import MAIL_DOMAIN, RunningGateway, wait_until

GGD = "verwijsindex@ggd-groningen.example"
WIJ = "verwijsindex@wij-groningen.example"


def mail(sender: str, to: str, body: str, **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = headers.pop("Subject", "Bericht")
    message["Message-ID"] = make_msgid(domain=sender.split("@")[1])
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


def block(bsn: str = BSN_A, reference: str = "GGD-1", **extra: str) -> str:
    lines = [
        f"BSN: {bsn}",
        "Geboortedatum: 01-05-2016",
        "Gemeente: Groningen",
        f"Kenmerk: {reference}",
    ]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def gateway(
    make_gateway: Callable[..., Gateway], run_gateway: Callable[..., RunningGateway]
) -> RunningGateway:
    return run_gateway(make_gateway(), ["smtp", "processing"])


def send(running: RunningGateway, message: EmailMessage, sender: str | None = None) -> str:
    with smtplib.SMTP("127.0.0.1", running.smtp_port, timeout=10) as smtp:
        smtp.sendmail(sender or message["From"], [message["To"]], message.as_bytes(policy=SMTP))
    return str(message["Message-ID"])


def outcome(
    running: RunningGateway, message_id: str
) -> tuple[InboundMessage, OutboxMessage | None]:
    def done() -> Any:
        with Session(running.gateway.engine) as session:
            row = session.exec(
                select(InboundMessage).where(InboundMessage.message_id == message_id)
            ).first()
            if row is None or row.status == InboundStatus.RECEIVED:
                return None
            answer = session.exec(
                select(OutboxMessage).where(OutboxMessage.in_reply_to == message_id)
            ).first()
            return row, answer

    return wait_until(done, what=f"processing of {message_id}")


def outbox(running: RunningGateway, kind: str) -> list[OutboxMessage]:
    with Session(running.gateway.engine) as session:
        return list(session.exec(select(OutboxMessage).where(OutboxMessage.kind == kind)).all())


def test_a_second_institution_registering_notifies_the_first_and_hears_who_is_involved(
    gateway: RunningGateway,
) -> None:
    first, answer = outcome(
        gateway, send(gateway, mail(GGD, f"registratie@{MAIL_DOMAIN}", block()))
    )
    assert first.status == InboundStatus.PROCESSED and first.raw == b""
    assert answer is not None and answer.kind == "ontvangstbevestiging"
    assert answer.context["accepted"][0]["others_involved"] == []
    second = send(gateway, mail(WIJ, f"registratie@{MAIL_DOMAIN}", block(reference="WIJ-7")))
    _, receipt = outcome(gateway, second)
    assert receipt is not None and receipt.recipient == WIJ
    [accepted] = receipt.context["accepted"]
    assert accepted["own_reference"] == "WIJ-7"
    assert [o["name"] for o in accepted["others_involved"]] == ["GGD Groningen"]
    [notice] = outbox(gateway, "nieuwe-betrokkenheid")
    assert notice.recipient == GGD and notice.context["own_reference"] == "GGD-1"


def test_good_and_bad_blocks_in_one_mail_each_get_their_line(gateway: RunningGateway) -> None:
    body = (
        "Goedemorgen,\n\n"
        + block(BSN_A, "GGD-1")
        + "---\n"
        + block("123456789", "GGD-2")
        + "---\n"
        + block(BSN_B, "GGD-3").replace("Gemeente: Groningen", "Gemeente: Atlantis")
        + "\nMet vriendelijke groet,\n-- \nGGD Groningen\nBSN: 999999999\n"
    )
    _, receipt = outcome(gateway, send(gateway, mail(GGD, f"registratie@{MAIL_DOMAIN}", body)))
    assert receipt is not None and receipt.kind == "ontvangstbevestiging"
    assert [a["line"] for a in receipt.context["accepted"]] == [3]
    refused = {r["line"]: (r["field"], r["reason"]) for r in receipt.context["refused"]}
    assert refused[8][0] == "BSN" and "elfproef" in refused[8][1]
    assert refused[13][0] == "Gemeente"
    assert "123456789" not in str(receipt.context), "a receipt never repeats a BSN"
    with Session(gateway.gateway.engine) as session:
        assert len(session.exec(select(Registration)).all()) == 1


def test_a_mail_without_fields_gets_an_error_report_and_is_kept(gateway: RunningGateway) -> None:
    row, answer = outcome(
        gateway, send(gateway, mail(GGD, f"registratie@{MAIL_DOMAIN}", "Zie bijlage.\n"))
    )
    assert answer is not None and answer.kind == "foutmelding"
    assert row.status == InboundStatus.FAILED and row.raw != b""
    assert answer.context["hint"]


def test_an_html_only_registration_is_read(gateway: RunningGateway) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = GGD, f"registratie@{MAIL_DOMAIN}", "x"
    message["Message-ID"] = make_msgid(domain="ggd-groningen.example")
    html = (
        f"<html><body><p>BSN: {BSN_A}<br>Geboortedatum: 01-05-2016<br>Gemeente: Groningen<br>"
        "Kenmerk: GGD-H</p></body></html>"
    )
    message.set_content(html, subtype="html", charset="windows-1252", cte="quoted-printable")
    _, receipt = outcome(gateway, send(gateway, message))
    assert receipt is not None and receipt.context["accepted"][0]["own_reference"] == "GGD-H"


def test_a_csv_attachment_is_imported_with_refused_rows_named(gateway: RunningGateway) -> None:
    message = mail(GGD, f"registratie@{MAIL_DOMAIN}", "Bijgaand de aanmeldingen.\n")
    rows = (
        "bsn;naam;geboortedatum;gemeente;kenmerk\r\n"
        f"{BSN_A};Één Kind;01-05-2016;Groningen;GGD-1\r\n"
        "123456789;Fout;01-05-2016;Groningen;GGD-2\r\n"
        f"{BSN_B};Twee;01-05-2016;Groningen;GGD-3\r\n"
    ).encode("cp1252")
    message.add_attachment(rows, maintype="text", subtype="csv", filename="aanmeldingen.csv")
    _, receipt = outcome(gateway, send(gateway, message))
    assert receipt is not None and receipt.kind == "ontvangstbevestiging"
    [summary] = receipt.context["summaries"]
    assert (summary["accepted"], summary["refused"]) == (2, 1)
    assert [(r["line"], r["field"]) for r in receipt.context["refused"]] == [(3, "BSN")]


def test_automatic_mail_is_kept_and_never_answered(gateway: RunningGateway) -> None:
    for headers in (
        {"Auto_Submitted": "auto-replied"},
        {"Precedence": "bulk"},
        {"Subject": "Automatisch antwoord: afwezig"},
    ):
        row, answer = outcome(
            gateway, send(gateway, mail(GGD, f"registratie@{MAIL_DOMAIN}", block(), **headers))
        )
        assert row.status == InboundStatus.IGNORED and answer is None


def test_a_signal_by_mail_and_a_second_makes_a_match_and_coordination(
    gateway: RunningGateway,
) -> None:
    fields = block(Code="laag", Geinformeerd="ja").replace("Kenmerk: GGD-1", "Kenmerk: eigen-1")
    _, first = outcome(
        gateway,
        send(gateway, mail("a.devries@ggd-groningen.example", f"signaal@{MAIL_DOMAIN}", fields)),
    )
    assert first is not None and first.context["accepted"][0]["action"] == "signaal"
    _, second = outcome(
        gateway,
        send(gateway, mail("s.jansen@wij-groningen.example", f"signaal@{MAIL_DOMAIN}", fields)),
    )
    assert second is not None and second.context["accepted"][0]["match"] == "M-1"
    with Session(gateway.gateway.engine) as session:
        assert len(session.exec(select(Signal)).all()) == 2
        assert session.exec(select(Coordination)).one().institution_id == "wij-groningen"


def _coordination_token(running: RunningGateway) -> tuple[str, str]:
    [assigned] = outbox(running, "coordinatie-toegewezen")
    assert assigned.reply_token and assigned.recipient == WIJ
    return assigned.reply_token, assigned.reference


@pytest.mark.parametrize(
    "body",
    [
        "Akkoord.\n\nOp ma 23 nov. 2026 om 10:12 schreef Verwijsindex Groningen <\n"
        "noreply@verwijsindex.localhost>:\n\n> Beste WIJ Groningen,\n> WEIGER <reden>\n",
        "AKKOORD\r\n\r\nMet vriendelijke groet,\r\nSanne\r\n\r\nVan: Verwijsindex\r\n"
        "Verzonden: maandag 23 november 2026 10:12\r\nAan: WIJ\r\nOnderwerp: C-1\r\n\r\nWEIGER\r\n",
    ],
    ids=["gmail-nl", "outlook-nl"],
)
def test_akkoord_by_reply_accepts_the_coordination(gateway: RunningGateway, body: str) -> None:
    test_a_signal_by_mail_and_a_second_makes_a_match_and_coordination(gateway)
    token, reference = _coordination_token(gateway)
    reply = mail(
        "s.jansen@wij-groningen.example",
        f"antwoord+{token}@{MAIL_DOMAIN}",
        body,
        Subject=f"Re: {reference}",
    )
    _, answer = outcome(gateway, send(gateway, reply))
    assert answer is not None and answer.kind == "ontvangstbevestiging"
    assert "geaccepteerd" in answer.context["confirmation"]
    with Session(gateway.gateway.engine) as session:
        assert session.exec(select(Coordination)).one().status == "accepted"
    assert outbox(gateway, "coordinatie-geaccepteerd")
    again = mail("s.jansen@wij-groningen.example", f"antwoord+{token}@{MAIL_DOMAIN}", "AKKOORD\n")
    _, refusal = outcome(gateway, send(gateway, again))
    assert refusal is not None and refusal.kind == "foutmelding"
    assert "al geantwoord" in refusal.context["problems"][0]


def test_a_reply_from_someone_else_and_an_unknown_token_get_clear_answers(
    gateway: RunningGateway,
) -> None:
    test_a_signal_by_mail_and_a_second_makes_a_match_and_coordination(gateway)
    token, _ = _coordination_token(gateway)
    stranger = mail(
        "a.devries@ggd-groningen.example", f"antwoord+{token}@{MAIL_DOMAIN}", "AKKOORD\n"
    )
    _, answer = outcome(gateway, send(gateway, stranger))
    assert answer is not None and answer.kind == "foutmelding"
    unknown = mail(WIJ, f"antwoord+{'a' * 32}@{MAIL_DOMAIN}", "AKKOORD\n")
    _, answer = outcome(gateway, send(gateway, unknown))
    assert answer is not None and "onbekend" in answer.context["problems"][0]
    with Session(gateway.gateway.engine) as session:
        assert session.exec(select(Coordination)).one().status == "pending"


def test_the_covenants_closing_days_push_a_coordination_deadline_set_by_mail(
    make_gateway: Callable[..., Gateway],
    run_gateway: Callable[..., RunningGateway],
    config: CoreConfig,
) -> None:
    """A region closed for the next three working days (covenant ``closing_days``): the
    coordination two signals by mail start is due three working days later than the national
    calendar says."""
    national = make_gateway()
    calendar = national.config.calendar
    # The region's date, not UTC's: from 23:00 UTC it is already tomorrow in Groningen, and
    # the deadline counts from the assignment's local date.
    today = calendar.add_working_days(local_date(utcnow(), calendar.tz), 0)
    closed = [calendar.add_working_days(today, n) for n in (1, 2, 3)]
    region = config.covenant.region.model_copy(update={"closing_days": tuple(closed)})
    closing_config = replace(config, covenant=config.covenant.model_copy(update={"region": region}))
    running = run_gateway(
        build_gateway(national.settings, national.engine, closing_config), ["smtp", "processing"]
    )
    fields = block(Code="laag", Geinformeerd="ja").replace("Kenmerk: GGD-1", "Kenmerk: eigen-1")
    for sender in ("a.devries@ggd-groningen.example", "s.jansen@wij-groningen.example"):
        outcome(running, send(running, mail(sender, f"signaal@{MAIL_DOMAIN}", fields)))
    with Session(running.gateway.engine) as session:
        coordination = session.exec(select(Coordination)).one()
        assigned_at = coordination.assigned_at
        due_at = coordination.due_at
    assert assigned_at is not None and due_at is not None
    days = coordination.response_working_days
    assert due_at == closing_config.calendar.deadline_after(assigned_at, days)
    national_due = national.config.calendar.deadline_after(assigned_at, days)
    assert (as_utc(due_at) - as_utc(national_due)).days >= 3
