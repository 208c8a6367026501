"""read_mail on the mail institutions' clients really send: every charset, transfer encoding,
HTML-only body and kind of breakage, and never an exception."""

from __future__ import annotations

import base64
import codecs
from email.message import EmailMessage

import pytest

from mail_gateway.parsing.mime import Attachment, ParsedMail, read_mail

BODY = "BSN: 123456782\nNaam: Jéssica “Sanne” de Vries – €\nGemeente: Groningen\n"


def _mail(body: bytes, *, headers: str = "", content: str = "text/plain") -> bytes:
    head = (
        "From: Jan Jansen <Jan.Jansen@WIJ-Groningen.nl>\r\n"
        "To: registratie@verwijsindex.localhost\r\n"
        "Subject: Aanmelding\r\n"
        "Message-ID: <abc.123@wij-groningen.nl>\r\n"
        "MIME-Version: 1.0\r\n"
        f"Content-Type: {content}\r\n"
        f"{headers}"
        "\r\n"
    )
    return head.encode("ascii") + body


def _assert_clean(mail: ParsedMail) -> None:
    for text in [mail.text, mail.subject, *mail.defects]:
        text.encode("utf-8")  # no lone surrogates
        assert "\x00" not in text


# --- headers -----------------------------------------------------------------------------------


def test_headers_of_an_ordinary_mail() -> None:
    message = EmailMessage()
    message["From"] = "Jan Jansen <Jan.Jansen@WIJ-Groningen.nl>"
    message["To"] = "registratie@verwijsindex.localhost"
    message["Subject"] = "Aanmelding jeugdige – spoed"
    message["Message-ID"] = "<abc.123@wij-groningen.nl>"
    message["In-Reply-To"] = "<notificatie-1@verwijsindex.localhost>"
    message["References"] = "<eerste@x.nl> <notificatie-1@verwijsindex.localhost>"
    message["Auto-Submitted"] = "No"
    message["X-Extra"] = "een"
    message["X-Extra"] = "twee"
    message.set_content(BODY)

    mail = read_mail(message.as_bytes())

    assert mail.message_id == "<abc.123@wij-groningen.nl>"
    assert mail.from_address == "jan.jansen@wij-groningen.nl"
    assert mail.subject == "Aanmelding jeugdige – spoed"
    assert mail.in_reply_to == "<notificatie-1@verwijsindex.localhost>"
    assert mail.references == ["<eerste@x.nl>", "<notificatie-1@verwijsindex.localhost>"]
    assert mail.auto_submitted == "no"
    assert mail.header("x-extra") == "een"
    assert mail.header("X-EXTRA") == "een"
    assert mail.header_all("x-extra") == ["een", "twee"]
    assert mail.header("x-absent") == ""
    assert mail.text == BODY
    assert mail.content_type == "text/plain"
    assert mail.defects == []


def test_encoded_words_in_headers() -> None:
    raw = _mail(
        b"tekst",
        headers=(
            "X-Naam: =?iso-8859-1?q?J=E9ssica_=80?=\r\n"
            "X-Utf: =?utf-8?b?Q2/DtnJkaW5hdGll?= =?utf-8?q?_=E2=80=93_klaar?=\r\n"
        ),
    ).replace(b"Subject: Aanmelding", b"Subject: =?utf-8?q?Aanmelding_J=C3=A9ssica?=")
    mail = read_mail(raw)
    assert mail.subject == "Aanmelding Jéssica"
    assert mail.header("x-naam") == "Jéssica €"  # iso-8859-1 read as Windows-1252: 0x80 is €
    assert mail.header("x-utf") == "Coördinatie – klaar"


def test_encoded_word_with_an_unknown_charset_is_guessed() -> None:
    mail = read_mail(_mail(b"x", headers="X-Raar: =?x-bogus?q?caf=E9?=\r\n"))
    assert mail.header("x-raar") == "café"


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Aanmelding Jéssica – spoed".encode(), "Aanmelding Jéssica – spoed"),
        ("Aanmelding Jéssica – spoed".encode("cp1252"), "Aanmelding Jéssica – spoed"),
    ],
    ids=["utf-8", "windows-1252"],
)
def test_undeclared_8bit_in_headers(subject: bytes, expected: str) -> None:
    raw = _mail(b"x").replace(b"Subject: Aanmelding", b"Subject: " + subject)
    raw = raw.replace(b"From: Jan Jansen", b"From: J\xe9ssica Jansen")  # Windows-1252 in From
    mail = read_mail(raw)
    assert mail.subject == expected
    assert mail.from_address == "jan.jansen@wij-groningen.nl"
    assert mail.header("from").startswith("Jéssica Jansen")
    _assert_clean(mail)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("<abc@x.nl>", "<abc@x.nl>"),
        ("  <abc@x.nl>  (comment)", "<abc@x.nl>"),
        ("abc@x.nl", "<abc@x.nl>"),
        ("not a message id", None),
        ("", None),
    ],
)
def test_message_id_normalised(header: str, expected: str | None) -> None:
    raw = _mail(b"x").replace(b"<abc.123@wij-groningen.nl>", header.encode())
    assert read_mail(raw).message_id == expected


def test_missing_message_id() -> None:
    raw = _mail(b"x").replace(b"Message-ID: <abc.123@wij-groningen.nl>\r\n", b"")
    assert read_mail(raw).message_id is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Jan.Jansen@WIJ-Groningen.NL", "jan.jansen@wij-groningen.nl"),
        ('"Jansen, Jan" <jan@wij.nl>', "jan@wij.nl"),
        ("=?utf-8?q?Jansen=2C_Jan?= <jan@wij.nl>", "jan@wij.nl"),
        ('"registratie@ggd.nl" <kwaad@elders.example>', "kwaad@elders.example"),
        ("jan@wij.nl (Jan Jansen)", "jan@wij.nl"),
        ("Jan Jansen", None),
        ("<>", None),
        ("@@@", None),
        ("jan@wij.nl, piet@elders.example", None),  # ambiguous: not ours to pick one
        ("Jan <jan@wij.nl>, jan@WIJ.nl", "jan@wij.nl"),  # the same address twice
    ],
)
def test_from_address(header: str, expected: str | None) -> None:
    raw = _mail(b"x").replace(b"Jan Jansen <Jan.Jansen@WIJ-Groningen.nl>", header.encode())
    assert read_mail(raw).from_address == expected


def test_two_from_headers_are_ambiguous() -> None:
    raw = _mail(b"x", headers="From: kwaad@elders.example\r\n")
    mail = read_mail(raw)
    assert mail.from_address is None
    assert "more than one From header" in mail.defects


def test_huge_header_line_is_cut_and_the_mail_still_read() -> None:
    raw = _mail(b"BSN: 123456782\n", headers="X-Huge: " + "a" * 200_000 + "\r\n")
    mail = read_mail(raw)
    assert mail.text == "BSN: 123456782\n"
    assert len(mail.header("x-huge")) <= 16384
    assert any("longer than" in defect for defect in mail.defects)


# --- bodies: charsets and transfer encodings ---------------------------------------------------


@pytest.mark.parametrize(
    ("charset", "encoding", "body"),
    [
        ("utf-8", "8bit", BODY.encode()),
        ("utf-8", "quoted-printable", codecs.encode(BODY.encode(), "quopri")),
        ("utf-8", "base64", base64.encodebytes(BODY.encode())),
        ("windows-1252", "8bit", BODY.encode("cp1252")),
        ("windows-1252", "quoted-printable", codecs.encode(BODY.encode("cp1252"), "quopri")),
        ("windows-1252", "base64", base64.encodebytes(BODY.encode("cp1252"))),
        # Outlook: Windows-1252 bytes (curly quotes, en dash, euro) labelled ISO-8859-1.
        ("iso-8859-1", "8bit", BODY.encode("cp1252")),
        ("iso-8859-1", "quoted-printable", codecs.encode(BODY.encode("cp1252"), "quopri")),
        ("ISO-8859-1", "base64", base64.encodebytes(BODY.encode("cp1252"))),
        ('"latin1"', "8bit", BODY.encode("cp1252")),
        ("us-ascii", "8bit", BODY.encode()),  # mislabelled UTF-8
        ("us-ascii", "8bit", BODY.encode("cp1252")),  # mislabelled Windows-1252
    ],
)
def test_body_charsets_and_transfer_encodings(charset: str, encoding: str, body: bytes) -> None:
    raw = _mail(
        body,
        content=f"text/plain; charset={charset}",
        headers=f"Content-Transfer-Encoding: {encoding}\r\n",
    )
    mail = read_mail(raw)
    assert mail.text == BODY
    _assert_clean(mail)


def test_undeclared_charset_utf8_and_windows_1252() -> None:
    assert read_mail(_mail(BODY.encode())).text == BODY
    assert read_mail(_mail(BODY.encode("cp1252"))).text == BODY


def test_latin1_label_on_utf8_bytes_reads_utf8() -> None:
    mail = read_mail(_mail(BODY.encode(), content="text/plain; charset=iso-8859-1"))
    assert mail.text == BODY
    assert any("the text is UTF-8" in defect for defect in mail.defects)


def test_utf8_label_on_windows_1252_bytes_reads_windows_1252() -> None:
    mail = read_mail(_mail(BODY.encode("cp1252"), content="text/plain; charset=utf-8"))
    assert mail.text == BODY
    assert any("not valid UTF-8" in defect for defect in mail.defects)


def test_bytes_windows_leaves_undefined_do_not_fail() -> None:
    mail = read_mail(_mail(b"Naam: A\x81B\x9dC \x80", content="text/plain; charset=iso-8859-1"))
    assert mail.text == "Naam: A\x81B\x9dC €"


@pytest.mark.parametrize("charset", ["x-unknown", "rot13", "base64", "zlib", "utf-99", '""'])
def test_unknown_or_non_text_charset_is_guessed(charset: str) -> None:
    mail = read_mail(_mail(BODY.encode(), content=f"text/plain; charset={charset}"))
    assert mail.text == BODY


def test_broken_base64_gives_what_it_can_and_a_defect() -> None:
    good = base64.b64encode(b"BSN: 123456782\nGemeente: Groningen\n").decode()
    raw = _mail(
        (good[:30] + "!!*&" + good[30:-3] + "\r\n").encode(),  # junk, and cut short
        headers="Content-Transfer-Encoding: base64\r\n",
    )
    mail = read_mail(raw)
    assert mail.text.startswith("BSN: 123456782\nGemeente: Gron")
    assert any("base64" in defect.lower() for defect in mail.defects)


def test_nul_and_control_characters_are_removed_from_the_text() -> None:
    mail = read_mail(_mail(b"BSN:\x00 123456782\x07\nNaam: A\x1bB\n"))
    assert mail.text == "BSN: 123456782\nNaam: AB\n"


# --- HTML-only and multipart -------------------------------------------------------------------

OUTLOOK_HTML = """<html xmlns:o="urn:schemas-microsoft-com:office:office">
<head><meta charset="windows-1252"><style><!-- p.MsoNormal {margin:0cm;} --></style>
<title>Aanmelding</title></head>
<body lang="NL"><div class="WordSection1">
<p class="MsoNormal">Beste collega,<o:p></o:p></p>
<p class="MsoNormal"><o:p>&nbsp;</o:p></p>
<p class="MsoNormal"><b>BSN:</b> 123456782<o:p></o:p></p>
<p class="MsoNormal">Naam: J&eacute;ssica &#8220;Sanne&#8221; de
   Vries &ndash; &euro;</p>
<div>Gemeente: Groningen<br>Kenmerk: K-1<br/>Hulpverlener: jan@wij.nl</div>
<table><tr><td>Einddatum</td><td>: 01-01-2027</td></tr></table>
<script>document.write("BSN: 999999999")</script>
</div></body></html>"""


def test_html_only_mail_becomes_readable_text() -> None:
    raw = _mail(
        OUTLOOK_HTML.encode("cp1252"),
        content="text/html; charset=iso-8859-1",
        headers="Content-Transfer-Encoding: 8bit\r\n",
    )
    mail = read_mail(raw)
    lines = [line for line in mail.text.split("\n") if line.strip()]
    assert lines == [
        "Beste collega,",
        "BSN: 123456782",
        "Naam: Jéssica “Sanne” de Vries – €",
        "Gemeente: Groningen",
        "Kenmerk: K-1",
        "Hulpverlener: jan@wij.nl",
        "Einddatum : 01-01-2027",
    ]
    assert "Aanmelding" not in mail.text  # <title> dropped
    assert "MsoNormal" not in mail.text and "999999999" not in mail.text


def test_html_only_in_base64_utf8() -> None:
    html = "<div>AKKOORD&nbsp;</div><div><br></div><div>Groet,<br>Jan</div>"
    raw = _mail(
        base64.encodebytes(html.encode()),
        content='text/html; charset="UTF-8"',
        headers="Content-Transfer-Encoding: base64\r\n",
    )
    assert read_mail(raw).text == "AKKOORD\n\nGroet,\nJan"


def test_html_blockquote_is_marked_as_quoted() -> None:
    html = (
        '<div dir="ltr">AKKOORD</div><br><div class="gmail_quote"><div class="gmail_attr">'
        "Op ma 23 nov. 2026 om 10:12 schreef Verwijsindex &lt;a@b.nl&gt;:<br></div>"
        "<blockquote><div>Beste,<br><br>U bent toegewezen.</div></blockquote></div>"
    )
    text = read_mail(_mail(html.encode(), content="text/html; charset=utf-8")).text
    assert text.split("\n") == [
        "AKKOORD",
        "",
        "Op ma 23 nov. 2026 om 10:12 schreef Verwijsindex <a@b.nl>:",
        "> Beste,",
        ">",
        "> U bent toegewezen.",
    ]


def _alternative(plain: str, html: str) -> bytes:
    message = EmailMessage()
    message["From"] = "jan@wij.nl"
    message["Subject"] = "x"
    message.set_content(plain)
    message.add_alternative(html, subtype="html")
    return message.as_bytes()


def test_text_plain_preferred_over_html() -> None:
    mail = read_mail(_alternative("BSN: 123456782\n", "<p>Iets anders</p>"))
    assert mail.text == "BSN: 123456782\n"
    assert mail.content_type == "multipart/alternative"


def test_empty_text_plain_falls_back_to_html() -> None:
    mail = read_mail(_alternative("\n", "<p>BSN: 123456782</p>"))
    assert mail.text == "BSN: 123456782"


def test_missing_boundary_parameter_is_repaired_from_the_body() -> None:
    body = b"--grens\r\nContent-Type: text/plain\r\n\r\nBSN: 123456782\r\n--grens--\r\n"
    mail = read_mail(_mail(body, content="multipart/mixed"))
    assert mail.text.strip() == "BSN: 123456782"
    assert any("boundary" in defect for defect in mail.defects)


def test_wrong_boundary_is_repaired_from_the_body() -> None:
    body = (
        b"--echt\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\nNaam: J=E9ssica\r\n"
        b"--echt\r\nContent-Type: text/csv; name=lijst.csv\r\n\r\nbsn;naam\r\n--echt--\r\n"
    )
    mail = read_mail(_mail(body, content='multipart/mixed; boundary="gelogen"'))
    assert mail.text.strip() == "Naam: Jéssica"
    assert [a.filename for a in mail.csv_attachments] == ["lijst.csv"]


def test_multipart_without_any_delimiter_is_read_as_text() -> None:
    mail = read_mail(_mail(b"BSN: 123456782\r\n", content='multipart/mixed; boundary="x"'))
    assert mail.text.strip() == "BSN: 123456782"


def test_forwarded_mail_attachment_is_not_body_text() -> None:
    inner = EmailMessage()
    inner["From"] = "iemand@elders.example"
    inner["Subject"] = "oud"
    inner.set_content("BSN: 999999999\n")
    outer = EmailMessage()
    outer["From"] = "jan@wij.nl"
    outer.set_content("Zie bijlage.\n")
    outer.add_attachment(inner)
    mail = read_mail(outer.as_bytes())
    assert mail.text == "Zie bijlage.\n"
    assert [a.content_type for a in mail.attachments] == ["message/rfc822"]
    assert b"BSN: 999999999" in mail.attachments[0].payload


def test_deeply_nested_multiparts_stop_at_a_limit() -> None:
    body = "".join(
        f'--b{level}\r\nContent-Type: multipart/mixed; boundary="b{level + 1}"\r\n\r\n'
        for level in range(60)
    )
    body += "--b60\r\nContent-Type: text/plain\r\n\r\nBSN: 123456782\r\n"
    mail = read_mail(_mail(body.encode(), content='multipart/mixed; boundary="b0"'))
    assert mail.text == ""  # too deep to be a mail anyone wrote
    assert any("nested deeper" in defect for defect in mail.defects)


# --- attachments -------------------------------------------------------------------------------


def _with_attachment(data: bytes, maintype: str, subtype: str, filename: str | None) -> bytes:
    message = EmailMessage()
    message["From"] = "koppeling@wij.nl"
    message["Subject"] = "Registraties"
    message.set_content("Zie bijlage.\n")
    message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


@pytest.mark.parametrize(
    ("maintype", "subtype", "filename", "is_csv"),
    [
        ("text", "csv", "registraties.csv", True),
        ("text", "csv", None, True),
        ("application", "vnd.ms-excel", "registraties.csv", True),  # Windows' type for .csv
        ("application", "vnd.ms-excel", None, True),
        ("application", "vnd.ms-excel", "registraties.xls", False),  # a real spreadsheet
        ("application", "octet-stream", "REGISTRATIES.CSV", True),
        ("application", "octet-stream", "registraties.txt", False),
        ("text", "plain", "registraties.csv", True),
        ("application", "pdf", "brief.csv.pdf", False),
        ("image", "png", "logo.png", False),
    ],
)
def test_csv_attachments_recognised(
    maintype: str, subtype: str, filename: str | None, is_csv: bool
) -> None:
    mail = read_mail(_with_attachment(b"bsn;naam\n", maintype, subtype, filename))
    assert mail.text == "Zie bijlage.\n"
    assert len(mail.attachments) == 1
    attachment = mail.attachments[0]
    assert attachment.content_type == f"{maintype}/{subtype}"
    assert attachment.filename == (filename or "")
    assert attachment.is_csv is is_csv
    assert mail.csv_attachments == ([attachment] if is_csv else [])


def test_attachment_filename_with_8bit_and_rfc2231() -> None:
    message = EmailMessage()
    message["From"] = "koppeling@wij.nl"
    message.set_content("x")
    message.add_attachment(b"a", maintype="text", subtype="csv", filename="overzicht–ü.csv")
    mail = read_mail(message.as_bytes())
    assert mail.attachments[0].filename == "overzicht–ü.csv"


@pytest.mark.parametrize(
    ("data", "encoding", "first_line"),
    [
        (codecs.BOM_UTF8 + "bsn;naam\r\n1;Jé\r\n".encode(), "utf-8-sig", "bsn;naam\r\n"),
        ("bsn;naam\n1;Jé\n".encode(), "utf-8", "bsn;naam\n"),
        ("bsn;naam\n1;Jé “S” €\n".encode("cp1252"), "cp1252", "bsn;naam\n"),
        ("bsn;naam\n".encode("utf-16"), "utf-16", "bsn;naam\n"),
    ],
)
def test_attachment_text_stream_detects_its_charset(
    data: bytes, encoding: str, first_line: str
) -> None:
    attachment = Attachment("a.csv", "text/csv", data)
    assert attachment.encoding == encoding
    with attachment.open_text() as stream:
        assert stream.readline() == first_line
        rest = stream.read()
    assert "\ufffd" not in rest


def test_attachment_stream_survives_undefined_windows_bytes() -> None:
    with Attachment("a.csv", "text/csv", b"bsn;naam\n1;A\x81B\n").open_text() as stream:
        assert stream.read() == "bsn;naam\n1;A\ufffdB\n"


def test_attachment_decoded_from_base64() -> None:
    mail = read_mail(_with_attachment("bsn;naam\n1;Jé\n".encode(), "text", "csv", "a.csv"))
    with mail.attachments[0].open_text() as stream:
        assert stream.read() == "bsn;naam\n1;Jé\n"


# --- never raises ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\x00\x00",
        b"garbage without headers",
        b"From:\r\n\r\n",
        b"From: <<<@@@>>>\r\nSubject: =?utf-8?b?====?=\r\n\r\n",
        b"Content-Type: text/plain; charset=\r\n\r\n\xff\xfe",
        b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n--\r\n",
        b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 a\r\n!!!\r\n",
        b"Content-Type: ;;;===\r\nContent-Disposition: attachment; filename*=bogus''%%%\r\n\r\nx",
        b"Message-ID: <" + b"a" * 5000 + b"@x>\r\n\r\n",
        b"\r\n\r\n\r\n",
        b"From: a@b\r\n\tcontinued\r\n broken: header\r\n\r\nbody",
    ],
)
def test_malformed_input_never_raises(raw: bytes) -> None:
    mail = read_mail(raw)
    assert isinstance(mail, ParsedMail)
    assert isinstance(mail.text, str)
    _assert_clean(mail)


# Header values on which the modern parser (policy=default) raises IndexError, AttributeError,
# TypeError or UnboundLocalError (found by fuzzing Python 3.11's email package).
PARSER_CRASHERS = [
    '"',
    "<@\r\n \\:",
    "\x00:\t;?=*.)@",
    "=?ba=?utf-8?q?<",
    "?=;%:@ @,\r\n .;",
    "\t.=:.[;.aa ",
    "a=?utf-8?q?;,@);a*",
    "<b@",
    "=\\\\aa@[",
    "\x00=??\r\n @\t[\t",
]


@pytest.mark.parametrize("value", PARSER_CRASHERS)
@pytest.mark.parametrize(
    "name",
    ["From", "To", "Subject", "Message-ID", "References", "Content-Type", "Content-Disposition"],
)
def test_headers_the_modern_parser_chokes_on(name: str, value: str) -> None:
    raw = f"{name}: {value}\r\nSubject: Aanmelding\r\n\r\nBSN: 123456782\r\n".encode()
    if name != "From":
        raw = b"From: jan@wij.nl\r\n" + raw
    mail = read_mail(raw)
    assert mail.text == "BSN: 123456782\n"
    assert mail.attachments == []
    assert mail.from_address == (None if name == "From" else "jan@wij.nl")
    _assert_clean(mail)
