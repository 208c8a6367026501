"""RFC 3834 loop protection: which mail is never answered, and which is an absence notice."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from mail_gateway.parsing.automatic import automatic_reason, is_delivery_report, is_out_of_office
from mail_gateway.parsing.mime import ParsedMail, read_mail

DSN_REASON = "delivery-status-notification"


def _mail(subject: str = "RE: Procescoördinatie toegewezen", **headers: str) -> ParsedMail:
    message = EmailMessage()
    message["From"] = headers.pop("From", "Jan Jansen <jan@wij-groningen.nl>")
    message["To"] = "antwoord+t0k3n@verwijsindex.localhost"
    message["Subject"] = subject
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("AKKOORD\n")
    return read_mail(message.as_bytes())


def test_an_ordinary_reply_may_be_answered() -> None:
    mail = _mail()
    assert automatic_reason(mail, envelope_sender="jan@wij-groningen.nl") is None
    assert automatic_reason(mail) is None
    assert not is_out_of_office(mail)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Auto_Submitted": "auto-generated"}, "auto-submitted"),
        ({"Auto_Submitted": "auto-replied"}, "auto-submitted"),
        ({"Auto_Submitted": "Auto-Notified; owner-email=x@y.nl"}, "auto-submitted"),
        ({"Precedence": "bulk"}, "precedence-bulk"),
        ({"Precedence": "Junk"}, "precedence-junk"),
        ({"Precedence": "list"}, "precedence-list"),
        ({"List_Id": "Nieuwsbrief <nieuws.ggd.nl>"}, "list"),
        ({"List_Unsubscribe": "<mailto:afmelden@ggd.nl>"}, "list"),
        (
            {"From": "Mail Delivery System <MAILER-DAEMON@mx.wij.nl>"},
            "delivery-status-notification",
        ),
        ({"X_Failed_Recipients": "jan@wij.nl"}, "delivery-status-notification"),
    ],
)
def test_automatic_mail_is_never_answered(headers: dict[str, str], reason: str) -> None:
    assert automatic_reason(_mail(**headers), envelope_sender="x@wij.nl") == reason


def test_auto_submitted_no_may_be_answered() -> None:
    assert automatic_reason(_mail(Auto_Submitted="no"), envelope_sender="x@wij.nl") is None


@pytest.mark.parametrize("sender", ["", "<>", " <> "])
def test_null_sender_is_never_answered(sender: str) -> None:
    assert automatic_reason(_mail(), envelope_sender=sender) == "null-sender"


DSN = b"""\
From: Mail Delivery Subsystem <postmaster@mx.wij-groningen.nl>
To: noreply@verwijsindex.localhost
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="grens"

--grens
Content-Type: text/plain

Uw bericht kon niet worden afgeleverd.
--grens
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.wij-groningen.nl

Final-Recipient: rfc822; onbekend@wij-groningen.nl
Action: failed
Status: 5.1.1
--grens
Content-Type: message/rfc822

From: Verwijsindex <noreply@verwijsindex.localhost>
Subject: Nieuwe betrokkenheid

Er is een nieuwe betrokkenheid.
--grens--
"""


def test_delivery_status_notification() -> None:
    mail = read_mail(DSN.replace(b"postmaster@", b"bounces@"))
    assert is_delivery_report(mail)
    assert automatic_reason(mail, envelope_sender="bounces@x.nl") == "delivery-status-notification"
    assert mail.text.strip() == "Uw bericht kon niet worden afgeleverd."  # not the original


def test_read_receipt_is_automatic_too() -> None:
    mail = read_mail(
        DSN.replace(b"delivery-status;", b"disposition-notification;").replace(
            b"message/delivery-status", b"message/disposition-notification"
        )
    )
    assert automatic_reason(mail, envelope_sender="jan@wij.nl") == "delivery-status-notification"


@pytest.mark.parametrize(
    ("subject", "headers"),
    [
        ("Automatisch antwoord: Procescoördinatie toegewezen (C-12)", {}),
        ("Afwezig: Procescoördinatie toegewezen", {}),
        ("Out of Office: Coordination assigned", {}),
        ("Automatic reply: Coordination assigned", {}),
        ("Autoreply: afwezig tot 1 december", {}),
        ("Auto-Reply: x", {}),
        ("RE: Procescoördinatie toegewezen", {"X_Autoreply": "yes"}),
        ("RE: Procescoördinatie toegewezen", {"X_Autorespond": "Vakantie"}),
        ("RE: Procescoördinatie toegewezen", {"X_MS_Exchange_Inbox_Rules_Loop": "jan@wij.nl"}),
        ("RE: Procescoördinatie toegewezen", {"Precedence": "auto_reply"}),
        ("RE: Procescoördinatie toegewezen", {"Auto_Submitted": "auto-replied"}),
    ],
)
def test_out_of_office(subject: str, headers: dict[str, str]) -> None:
    assert is_out_of_office(_mail(subject, **headers))


@pytest.mark.parametrize(
    "subject",
    [
        "RE: Procescoördinatie toegewezen",
        "Afwezigheid jeugdconsulent: overdracht",  # about an absence, not an absence notice
        "Re: Automatisch antwoord gezien?",
        "",
    ],
)
def test_not_out_of_office(subject: str) -> None:
    assert not is_out_of_office(_mail(subject))


def test_x_autoreply_no_is_not_out_of_office() -> None:
    assert not is_out_of_office(_mail(X_Autoreply="no"))


def test_broken_mail_is_not_mistaken_for_automatic() -> None:
    mail = read_mail(b"\x00garbage")
    assert automatic_reason(mail, envelope_sender="a@b.nl") is None
    assert not is_out_of_office(mail)
