"""CSV attachments as registration rows: delimiters, charsets, streaming."""

from __future__ import annotations

import codecs
import tracemalloc
import types
from collections.abc import Callable
from email.message import EmailMessage

import pytest

from core.errors import InvalidInput
from mail_gateway.parsing.csv_attachment import (
    registration_rows,
    registration_rows_from_bytes,
)
from mail_gateway.parsing.mime import Attachment, read_mail
from tests.bsns import valid_bsns

HEADER = "bsn;naam;geboortedatum;gemeente;kenmerk;hulpverlener;bsn_ouder;einddatum;actie"


def _csv_mail(data: bytes, subtype: str = "csv", filename: str = "registraties.csv") -> bytes:
    message = EmailMessage()
    message["From"] = "koppeling@wij-groningen.nl"
    message["To"] = "registratie@verwijsindex.localhost"
    message["Subject"] = "Registraties"
    message.set_content("Zie bijlage.\n")
    maintype = "text" if subtype == "csv" else "application"
    message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


def test_rows_of_a_mailed_csv_with_semicolons() -> None:
    data = (
        f"{HEADER}\r\n"
        "123456782;Jéssica;01-05-2016;Groningen;K-1;jan@wij.nl;100000009;;\r\n"
        "\r\n"
        "111222333;Sanne;2015-06-02;Groningen;K-2;;;01-01-2027;afmelden\r\n"
    ).encode()
    (attachment,) = read_mail(_csv_mail(data)).csv_attachments
    rows = list(registration_rows(attachment))
    assert [row.line for row in rows] == [2, 4]  # physical lines; the blank one skipped
    assert rows[0].fields["bsn"] == "123456782"
    assert rows[0].fields["naam"] == "Jéssica"
    assert rows[0].fields["bsn_ouder"] == "100000009"
    assert rows[1].fields["actie"] == "afmelden"
    assert all(row.refusal is None for row in rows)


def test_commas_and_a_byte_order_mark() -> None:
    data = (
        codecs.BOM_UTF8
        + "BSN,Naam,Geboortedatum,Gemeente\n123456782,Jé,01-05-2016,Ten Boer\n".encode()
    )
    (row,) = registration_rows_from_bytes(data)
    assert row.fields == {
        "bsn": "123456782",
        "naam": "Jé",
        "geboortedatum": "01-05-2016",
        "gemeente": "Ten Boer",
    }


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: text.encode("cp1252"),
        lambda text: text.encode("utf-8"),
        lambda text: codecs.BOM_UTF8 + text.encode("utf-8"),
        lambda text: text.encode("utf-16"),
    ],
    ids=["windows-1252", "utf-8", "utf-8-bom", "utf-16"],
)
def test_charsets(encode: Callable[[str], bytes]) -> None:
    data = encode("bsn;naam;gemeente\n123456782;Jéssica “Sanne” – €;Súdwest-Fryslân\n")
    (row,) = registration_rows_from_bytes(data)
    assert row.fields["naam"] == "Jéssica “Sanne” – €"
    assert row.fields["gemeente"] == "Súdwest-Fryslân"


def test_wrong_charset_does_not_crash() -> None:
    # Declared UTF-8 by the mail, Windows-1252 in fact, with a byte Windows leaves undefined.
    data = "bsn;naam\n123456782;Jé\x81ssica\n".encode("latin-1")
    message = read_mail(_csv_mail(data))
    (row,) = registration_rows(message.csv_attachments[0])
    assert row.fields["naam"] == "Jé\ufffdssica"


def test_nul_bytes_are_dropped() -> None:
    (row,) = registration_rows_from_bytes(b"bsn;naam\n123456782;J\x00an\n")
    assert row.fields["naam"] == "Jan"


def test_too_many_values_is_a_refused_row_not_an_error() -> None:
    rows = list(registration_rows_from_bytes(b"bsn;naam\n1;2;3\n123456782;Jan\n"))
    assert rows[0].refusal is not None
    assert rows[0].refusal.line == 2
    assert rows[1].fields["naam"] == "Jan"


def test_unknown_column_refuses_the_file() -> None:
    rows = registration_rows_from_bytes(b"bsn;schoenmaat\n123456782;42\n")
    with pytest.raises(InvalidInput) as refused:
        next(rows)
    assert refused.value.field == "kopregel"


def test_empty_file_is_refused() -> None:
    with pytest.raises(InvalidInput):
        list(registration_rows_from_bytes(b""))


def test_a_field_over_the_csv_limit_ends_the_file_with_a_refused_row() -> None:
    data = b'bsn;naam\n123456782;Jan\n111222333;"' + b"x" * 200_000 + b'"\n012345672;Piet\n'
    rows = list(registration_rows_from_bytes(data))
    assert [row.fields.get("naam") for row in rows[:1]] == ["Jan"]
    assert len(rows) == 2
    refusal = rows[1].refusal
    assert refusal is not None
    assert (refusal.line, refusal.field) == (3, "bestand")
    assert "regel 3" in refusal.reason


def test_100000_rows_are_streamed_not_listed() -> None:
    bsns = valid_bsns(1000)
    lines = [HEADER]
    for number in range(100_000):
        bsn = bsns[number % len(bsns)]
        lines.append(f"{bsn};Naam {number};01-05-2016;Groningen;K-{number};;;;")
    data = ("\r\n".join(lines) + "\r\n").encode("cp1252")
    attachment = Attachment("groot.csv", "application/vnd.ms-excel", data)
    assert attachment.is_csv

    rows = registration_rows(attachment)
    assert isinstance(rows, types.GeneratorType)  # nothing is read before it is asked for
    tracemalloc.start()
    try:
        count = 0
        last_line = 0
        for row in rows:
            count += 1
            last_line = row.line
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (count, last_line) == (100_000, 100_001)
    # A list of these 100,000 rows takes ~70 MB; streaming holds a row, the csv reader's and
    # decoder's buffers (~0.2 MB measured).
    assert peak < 2_000_000, f"peak {peak} bytes while reading {len(data)} bytes"
