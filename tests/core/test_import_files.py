"""Registration files as institutions really make them (issue 13.8): a CSV saved by Dutch
Excel (Windows-1252, ``;``, sometimes a byte-order mark) and an ``.xlsx`` workbook, through
``verwijsindex import`` and through the core's one reader; an ``.xls`` or a zip bomb refused
with a Dutch answer naming the file's problem."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest
from sqlmodel import Session, select

from core import bulk_import
from core.bulk_import import (
    csv_encoding,
    open_csv_text,
    read_registration_file,
    read_registration_xlsx,
)
from core.db import create_db_engine
from core.errors import InvalidInput
from core.models import Registration
from tests.core.test_cli import BSN, OTHER_BSN, Cli, as_json, cli  # noqa: F401  (cli: fixture)

HEADER = ["bsn", "naam", "geboortedatum", "gemeente", "kenmerk"]
# A BSN with a leading zero: Excel stores it as the number 12345672.
ZERO_BSN = "012345672"


def workbook(*rows: list[object], title: str = "Aanmeldingen") -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def registrations(database_url: str) -> list[Registration]:
    engine = create_db_engine(database_url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(Registration)).all())
    finally:
        engine.dispose()


def test_a_dutch_excel_csv_imports(cli: Cli, tmp_path: Path, database_url: str) -> None:  # noqa: F811
    # "CSV (gescheiden door lijstscheidingsteken)": Windows-1252, ';', CRLF, an é and a ë.
    data = (
        "BSN;Naam;Geboortedatum;Gemeente;Kenmerk\r\n"
        f"{BSN};Renée Coëlho;01-05-2016;Groningen;GGD-é1\r\n"
        f"{OTHER_BSN};Zoë;14-03-2012;Groningen;GGD-2\r\n"
    ).encode("cp1252")
    assert b"\xe9" in data  # not valid UTF-8: this crashed the import before
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    report = as_json(cli("import", "--institution", "ggd-groningen", str(path), "--json"))
    assert (report["accepted"], report["refused"]) == (2, [])
    assert sorted(r.reference for r in registrations(database_url)) == ["GGD-2", "GGD-é1"]


def test_a_csv_with_a_byte_order_mark_imports(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    path = tmp_path / "export.csv"
    path.write_bytes(
        "\ufeffbsn;naam;geboortedatum;gemeente;kenmerk\n"
        f"{BSN};Jörn;01-05-2016;Groningen;K-1\n".encode()
    )
    report = as_json(cli("import", "--institution", "ggd-groningen", str(path), "--json"))
    assert report["accepted"] == 1


def test_an_xlsx_imports_with_numbers_and_dates_as_excel_stores_them(
    cli: Cli,  # noqa: F811
    tmp_path: Path,
    database_url: str,
) -> None:
    path = tmp_path / "aanmeldingen.xlsx"
    path.write_bytes(
        workbook(
            ["BSN", "Naam", "Geboortedatum", "Gemeente", "Kenmerk"],
            [int(ZERO_BSN), "Nul Voorop", datetime(2016, 5, 1), "Groningen", 4711],
            [],
            [int(BSN), "Twee", date(2015, 2, 3), "Groningen", "GGD-2"],
            ["123456789", "Fout", "01-05-2016", "Groningen", "GGD-3"],
        )
    )
    result = cli("import", "--institution", "ggd-groningen", str(path), "--json")
    assert result.exit_code == 1  # one row refused
    report = json.loads(result.stdout)
    assert report["accepted"] == 2
    assert [(r["line"], r["field"]) for r in report["refused"]] == [(5, "BSN")]
    assert sorted(r.reference for r in registrations(database_url)) == ["4711", "GGD-2"]


def test_an_xls_is_refused_naming_what_to_send(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    path = tmp_path / "oud.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512)
    result = cli("import", "--institution", "ggd-groningen", str(path))
    assert result.exit_code == 1
    assert ".xls" in result.stderr and "xlsx" in result.stderr and "CSV" in result.stderr


# --- the one reader ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (b"bsn;naam\n1;Jan\n", "utf-8"),
        ("bsn;naam\n1;Zoë\n".encode(), "utf-8"),
        ("bsn;naam\n1;Zoë\n".encode("cp1252"), "cp1252"),
        (b"\xef\xbb\xbfbsn;naam\n", "utf-8-sig"),
        ("bsn;naam\n".encode("utf-16"), "utf-16"),
    ],
)
def test_csv_encoding(data: bytes, encoding: str) -> None:
    stream = io.BytesIO(data)
    stream.seek(0)
    assert csv_encoding(stream) == encoding
    assert stream.tell() == 0  # left where it was, for the reader


def test_a_utf8_character_split_across_chunks_is_still_utf8(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bulk_import, "_DECODE_CHUNK", 3)
    assert csv_encoding(io.BytesIO("abë".encode() * 10)) == "utf-8"


def test_undefined_windows_1252_bytes_read_as_replacement() -> None:
    with open_csv_text(io.BytesIO(b"bsn;naam\n1;A\x81\xe9\n")) as stream:
        assert stream.read().endswith("A\ufffdé\n")


def test_xlsx_cells_become_the_text_a_csv_would_hold() -> None:
    rows = list(
        read_registration_file(
            io.BytesIO(
                workbook(
                    [None],  # an empty first row: the header is the first row with a value
                    ["BSN", "BSN ouder", "Geboortedatum", "Kenmerk", "Gemeente"],
                    [12345672, 12345672.0, datetime(2016, 5, 1, 0, 0), 12.5, " Groningen "],
                    [123, None, "2016-05-01", True, None],
                )
            ),
            "lijst.xlsx",
        )
    )
    assert [row.line for row in rows] == [3, 4]
    assert rows[0].fields == {
        "bsn": ZERO_BSN,
        "bsn_ouder": ZERO_BSN,
        "geboortedatum": "01-05-2016",
        "kenmerk": "12.5",
        "gemeente": "Groningen",
    }
    # Too short for a BSN that lost its zero: left for the BSN check to refuse.
    assert rows[1].fields["bsn"] == "123"
    assert rows[1].fields["geboortedatum"] == "2016-05-01"


def test_an_xlsx_with_an_unknown_column_is_refused_like_a_csv() -> None:
    data = workbook(["bsn", "schoenmaat"], [int(BSN), 42])
    with pytest.raises(InvalidInput) as refused:
        list(read_registration_xlsx(io.BytesIO(data)))
    assert refused.value.field == "kopregel" and "schoenmaat" in refused.value.message


def test_an_empty_workbook_and_a_broken_one_are_refused() -> None:
    with pytest.raises(InvalidInput) as empty:
        list(read_registration_xlsx(io.BytesIO(workbook())))
    assert empty.value.field == "kopregel"
    with pytest.raises(InvalidInput) as broken:
        list(read_registration_file(io.BytesIO(b"PK\x03\x04 not really a zip"), "x.xlsx"))
    assert broken.value.field == "bestand" and "xlsx" in broken.value.message


def test_a_zip_bomb_is_refused_before_it_is_unpacked() -> None:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"<" + b" " * (50 * 2**20))  # 50 MB
    assert len(data.getvalue()) < 2**20
    with pytest.raises(InvalidInput) as refused:
        list(read_registration_xlsx(io.BytesIO(data.getvalue())))
    assert refused.value.field == "bestand" and "MB" in refused.value.message


def test_the_row_limit_holds_for_workbooks_and_csv_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk_import, "MAX_FILE_ROWS", 2)
    data = workbook(
        HEADER, *([int(BSN), "x", "01-05-2016", "Groningen", f"K-{i}"] for i in range(5))
    )
    rows = list(read_registration_xlsx(io.BytesIO(data)))
    assert [row.line for row in rows] == [2, 3, 4]
    assert rows[-1].refusal is not None and rows[-1].refusal.field == "bestand"
    assert "splits het bestand" in rows[-1].refusal.reason
    csv_data = ("bsn;kenmerk\n" + "".join(f"{BSN};K-{i}\n" for i in range(5))).encode()
    csv_rows = list(read_registration_file(io.BytesIO(csv_data), "a.csv"))
    assert len(csv_rows) == 3 and csv_rows[-1].refusal is not None
