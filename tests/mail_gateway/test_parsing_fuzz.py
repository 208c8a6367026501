"""Fuzzing the parsing layer: thousands of malformed messages — random bytes, and real mails
truncated, with broken boundaries, bogus charsets, huge header lines, NULs — go through
read_mail, block parsing, CSV rows, reply extraction and loop detection. Nothing may escape but
the refusals the API documents (InvalidInput), and every result has the promised types."""

from __future__ import annotations

import base64
import itertools
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import InvalidInput
from core.replies import ReplyAction
from mail_gateway.parsing.automatic import automatic_reason, is_out_of_office
from mail_gateway.parsing.blocks import (
    BlockResult,
    parse_registration_blocks,
    parse_signal_blocks,
    read_blocks,
)
from mail_gateway.parsing.csv_attachment import registration_rows
from mail_gateway.parsing.forwarded import read_forwarded
from mail_gateway.parsing.mime import Attachment, ParsedMail, read_mail
from mail_gateway.parsing.reply import extract_reply, parse_reply_command, strip_quoted
from mail_gateway.parsing.xlsx_attachment import registration_file_rows
from tests.core.test_import_files import workbook

FUZZ = settings(
    max_examples=1000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

pytestmark = pytest.mark.database_independent  # CI runs it once, on SQLite


def _seeds() -> list[bytes]:
    registration = EmailMessage()
    registration["From"] = "Jan Jansen <jan@wij-groningen.nl>"
    registration["To"] = "registratie@verwijsindex.localhost"
    registration["Subject"] = "Aanmelding Jéssica"
    registration["Message-ID"] = "<r1@wij-groningen.nl>"
    registration.set_content(
        "BSN: 123456782\nGeboortedatum: 01-05-2016\nGemeente: Groningen\n---\n"
        "BSN: 111222333\nGeboortedatum: 2015-06-02\nGemeente: Groningen\n",
        charset="iso-8859-1",
        cte="quoted-printable",
    )
    registration.add_alternative("<p>BSN: 123456782<br>Gemeente: Groningen</p>", subtype="html")

    csv_mail = EmailMessage()
    csv_mail["From"] = "koppeling@wij-groningen.nl"
    csv_mail["Subject"] = "Registraties"
    csv_mail.set_content("Zie bijlage.\n")
    csv_mail.add_attachment(
        "bsn;naam;geboortedatum;gemeente\n123456782;Jé;01-05-2016;Groningen\n".encode("cp1252"),
        maintype="application",
        subtype="vnd.ms-excel",
        filename="registraties.csv",
    )

    reply = EmailMessage()
    reply["From"] = "=?utf-8?q?Co=C3=B6rdinator?= <coordinator@ggd.nl>"
    reply["Subject"] = "RE: Procescoördinatie toegewezen"
    reply["In-Reply-To"] = "<n1@verwijsindex.localhost>"
    reply["References"] = "<n0@verwijsindex.localhost> <n1@verwijsindex.localhost>"
    reply.set_content(
        "Akkoord.\n\nOp ma 23 nov. 2026 om 10:12 schreef Verwijsindex <\n"
        "antwoord+t@vi.nl>:\n\n> Beste coördinator,\n> Antwoord met AKKOORD.\n"
    )
    reply.add_alternative(
        "<div>Akkoord.</div><blockquote><div>Beste coördinator</div></blockquote>",
        subtype="html",
    )

    html_only = (
        b"From: Piet <piet@ggd.nl>\r\nSubject: =?iso-8859-1?q?Aanmelding_J=E9ssica?=\r\n"
        b"Content-Type: text/html; charset=windows-1252\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(
            "<html><style>x{}</style><p>BSN: 123456782</p><div>Naam: Jé “S”</div></html>".encode(
                "cp1252"
            )
        )
    )
    dsn = (
        b"From: MAILER-DAEMON@mx.example\r\nSubject: Undelivered\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nNiet afgeleverd.\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\n"
        b"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: oud\r\n\r\nBSN: 1\r\n--b--\r\n"
    )
    fixtures = Path(__file__).parent / "fixtures"
    forwards = [
        (fixtures / "forwarded" / name).read_bytes()
        for name in ("gmail-nl.eml", "outlook-nl.eml", "attached-rfc822.eml")
    ]
    flowed = (fixtures / "replies" / "thunderbird.multi-line.eml").read_bytes()
    workbook_mail = EmailMessage()
    workbook_mail["From"] = "koppeling@wij-groningen.nl"
    workbook_mail["Subject"] = "Registraties"
    workbook_mail.set_content("Zie bijlage.\n")
    workbook_mail.add_attachment(
        workbook(["bsn", "geboortedatum", "gemeente"], [123456782, "01-05-2016", "Groningen"]),
        maintype="application",
        subtype="octet-stream",
        filename="registraties.xlsx",
    )
    return [
        registration.as_bytes(),
        csv_mail.as_bytes(),
        reply.as_bytes(),
        html_only,
        dsn,
        *forwards,
        flowed,
        workbook_mail.as_bytes(),
    ]


SEEDS = _seeds()
NASTY = [
    b"\x00",
    b"\r",
    b"\n\n",
    b"--",
    b"\r\n--b\r\n",
    b"=?",
    b"?=",
    b"=?utf-8?b?",
    b"=?x-bogus?q?=E9?=",
    b"charset=rot13",
    b'charset="utf-99"',
    b"boundary=",
    b"Content-Type: multipart/mixed; boundary=\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: x-uuencode\r\n",
    b"\xff\xfe",
    b"\xe9\x80\x81",
    b"<",
    b">",
    b"Op 1 jan om 1 schreef X:\n> ",
    b"-- \n",
    b"(((((",
    b'"\\',
    b"X-Huge: " + b"a" * 20_000 + b"\r\n",
    b"Subject: " + b"=?utf-8?q?x?= " * 500 + b"\r\n",
    b"From: " + b"a@b, " * 300 + b"\r\n",
]


@st.composite
def mutated_mails(draw: st.DrawFn) -> bytes:
    raw = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(raw)))
        operation = draw(
            st.sampled_from(["truncate", "delete", "insert", "nasty", "flip", "duplicate"])
        )
        if operation == "truncate":
            raw = raw[:position]
        elif operation == "delete":
            raw = raw[:position] + raw[position + draw(st.integers(1, 200)) :]
        elif operation == "insert":
            raw = raw[:position] + draw(st.binary(min_size=1, max_size=64)) + raw[position:]
        elif operation == "nasty":
            raw = raw[:position] + draw(st.sampled_from(NASTY)) + raw[position:]
        elif operation == "flip" and raw:
            index = min(position, len(raw) - 1)
            raw = raw[:index] + bytes([raw[index] ^ draw(st.integers(1, 255))]) + raw[index + 1 :]
        elif operation == "duplicate":
            end = min(len(raw), position + draw(st.integers(1, 400)))
            raw = raw[:end] + raw[position:end] + raw[end:]
    for old, new in draw(
        st.lists(
            st.sampled_from(
                [
                    (b"iso-8859-1", b"x-bogus"),
                    (b"utf-8", b"base64"),
                    (b'boundary="', b'boundary="X'),
                    (b"\r\n", b"\n"),
                    (b"\r\n", b"\r"),
                    (b"base64", b"quoted-printable"),
                    (b"text/plain", b"multipart/mixed"),
                ]
            ),
            max_size=2,
        )
    ):
        raw = raw.replace(old, new, 1)
    return raw


# Header values made of RFC 5322 specials and encoded-word fragments: the modern parser raises
# IndexError, AttributeError, TypeError... on many of these ('"', '<b@', '=?ba=?utf-8?q?<').
HEADER_TOKENS = [
    *"\"\\()<>@,;:.[]=?* \t'%",
    "=?utf-8?q?",
    "=?utf-8?b?",
    "=?",
    "?=",
    "a",
    "b",
    "utf-8''",
    "\x00",
    "é",
    "\r\n ",
    "filename=",
    "boundary=",
    "charset=",
]
HEADER_NAMES = [
    "From",
    "To",
    "Subject",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Content-Type",
    "Content-Disposition",
    "Content-Transfer-Encoding",
    "Auto-Submitted",
    "Precedence",
]


@st.composite
def mails_with_odd_headers(draw: st.DrawFn) -> bytes:
    raw = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(HEADER_NAMES))
        value = "".join(draw(st.lists(st.sampled_from(HEADER_TOKENS), min_size=1, max_size=14)))
        line = f"{name}: {value}\r\n".encode("utf-8", "surrogateescape")
        raw = line + raw if draw(st.booleans()) else raw.replace(f"{name}: ".encode(), line, 1)
    return raw


messages = st.one_of(
    st.binary(max_size=3000),
    mutated_mails(),
    mutated_mails(),
    mails_with_odd_headers(),
)


def _check_mail(mail: ParsedMail) -> None:
    assert isinstance(mail, ParsedMail)
    for optional in (mail.message_id, mail.from_address, mail.in_reply_to):
        assert optional is None or isinstance(optional, str)
    assert mail.message_id is None or mail.message_id.startswith("<")
    assert mail.from_address is None or "@" in mail.from_address
    strings = [mail.subject, mail.text, mail.auto_submitted, mail.content_type, *mail.defects]
    strings += mail.references + [a.filename for a in mail.attachments]
    strings += [value for values in mail.headers.values() for value in values]
    for text in strings:
        assert isinstance(text, str)
        text.encode("utf-8")  # storable and quotable: no lone surrogates
        assert "\x00" not in text
    assert all(isinstance(a, Attachment) and isinstance(a.payload, bytes) for a in mail.attachments)


def _check_blocks(results: list[BlockResult]) -> None:
    for result in results:
        assert isinstance(result.line, int) and result.line >= 1
        assert (result.command is None) != (result.refusal is None)
        if result.refusal is not None:
            assert isinstance(result.refusal.reason, str) and result.refusal.reason


def _check_text(text: str) -> None:
    _check_blocks(parse_registration_blocks(text))
    _check_blocks(parse_signal_blocks(text))
    body = read_blocks(text)
    assert all(isinstance(ignored.line, int) for ignored in body.ignored)
    reply = strip_quoted(text)
    assert isinstance(reply, str) and isinstance(extract_reply(text), str)
    try:
        action = parse_reply_command(reply)
    except InvalidInput as refused:
        # the fields parse_reply_command documents (H1/H2 added toestemming and toelichting)
        assert refused.field in (
            "antwoord", "reden", "instelling", "maanden", "toestemming", "toelichting"
        )  # fmt: skip
        assert refused.message
    else:
        assert isinstance(action, ReplyAction)
        assert action.keyword in (
            "accept", "decline", "hand-over", "contacted", "extend",
            "informed", "consent", "take-up", "assign", "close",
        )  # fmt: skip


@FUZZ
@given(messages, st.sampled_from([None, "", "<>", "jan@wij.nl"]))
def test_malformed_messages_never_raise(raw: bytes, envelope_sender: str | None) -> None:
    mail = read_mail(raw)
    _check_mail(mail)
    _check_text(mail.text)
    read = read_forwarded(mail)  # a forward: the forwarded part, never an exception
    _check_mail(read)
    assert isinstance(read.read_part, str) and read.from_address == mail.from_address
    if read is not mail:
        _check_text(read.text)
    reason = automatic_reason(mail, envelope_sender=envelope_sender)
    assert reason is None or isinstance(reason, str)
    assert isinstance(is_out_of_office(mail), bool)
    for attachment in read.registration_files:
        try:
            for row in itertools.islice(registration_file_rows(attachment), 50):
                assert isinstance(row.line, int) and isinstance(row.fields, dict)
        except InvalidInput as refused:  # a header the import cannot read, or no workbook
            assert refused.field in ("kopregel", "bestand")
    assert all(isinstance(unread, Attachment) for unread in read.unreadable_files)


body_lines = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "BSN: 123456782",
            "bsn = 111222333",
            "Geboortedatum: 01-05-2016",
            "Geboortedatum 31-02-2016",
            "Gemeente: Groningen",
            "BSN ouder: 100000009, 12",
            "Code: urgent",
            "Geïnformeerd: uitgesteld",
            "Looptijd: 99",
            "Einddatum: 2027-13-01",
            "Actie: afmelden",
            "---",
            "-- ",
            "> BSN: 1",
            "Van: x",
            "Verzonden: y",
            "Op ma 23 nov. 2026 om 10:12 schreef X <",
            "a@b>:",
            "AKKOORD",
            "WEIGER",
            "VERLENG 99",
            "\xa0",
            "",
        ]
    ),
)


@FUZZ
@given(st.lists(body_lines, max_size=40).map("\n".join))
def test_arbitrary_bodies_never_raise(text: str) -> None:
    _check_text(text)


@FUZZ
@given(st.binary(max_size=2000))
def test_arbitrary_csv_bytes_never_raise(data: bytes) -> None:
    attachment = Attachment("x.csv", "text/csv", b"bsn;naam;gemeente\n" + data)
    for row in itertools.islice(registration_rows(attachment), 100):
        assert isinstance(row.fields, dict)
