"""The CLI's listings (``core.cli.runtime.table``) never fold or cut an address or id (issue
13.7): a table that fits is a table; narrower than its values need, each row becomes a record,
one whole line per value. Printed through the CLI's own console, at 60 and 200 columns and
piped, and through the real command with ``COLUMNS=60``."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.text import Text
from typer.testing import CliRunner, Result

from core.cli import app
from core.cli.runtime import PIPED_WIDTH, Listing, stdout, table
from tests import privacy_guard
from tests.conftest import TEST_SECRET

# 250 characters, a valid address (local part 64, labels of at most 63)
ADDRESS = "a" * 64 + "@" + "b" * 60 + "." + "c" * 60 + "." + "d" * 55 + ".example"
SHORT = "a.devries@ggd-groningen.example"


def printed(listing: Listing, columns: int | None, monkeypatch: pytest.MonkeyPatch) -> str:
    """What the CLI prints for ``listing`` with COLUMNS set (None: piped, no COLUMNS)."""
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", str(columns))
    output = io.StringIO()
    stdout(output).print(listing)
    return output.getvalue()


def outbox(*recipients: str, kind: str = "nieuwe-betrokkenheid") -> Listing:
    listing = table("Outbox", "Id", "Soort", "Ontvanger", "Status")
    for number, recipient in enumerate(recipients, start=1):
        listing.add_row(str(number), kind, recipient, Text("sent", style="green"))
    return listing


@pytest.mark.parametrize("columns", [60, 200, None])
def test_a_250_character_address_is_printed_whole(
    columns: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert len(ADDRESS) == 250
    text = printed(outbox(SHORT, ADDRESS), columns, monkeypatch)

    assert text.splitlines() == [
        "Outbox",
        "Id: 1",
        "Soort: nieuwe-betrokkenheid",
        f"Ontvanger: {SHORT}",
        "Status: sent",
        "",
        "Id: 2",
        "Soort: nieuwe-betrokkenheid",
        f"Ontvanger: {ADDRESS}",
        "Status: sent",
    ]


def test_piped_output_has_the_fixed_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert stdout(io.StringIO()).width == PIPED_WIDTH


@pytest.mark.parametrize("columns", [60, 200, None])
def test_a_table_that_fits_stays_a_table_with_whole_cells(
    columns: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = printed(outbox(SHORT, kind="match"), columns, monkeypatch)

    row = next(line for line in text.splitlines() if line.startswith("│ 1"))
    assert [cell.strip() for cell in row.strip("│").split("│")] == [
        "1",
        "match",
        SHORT,
        "sent",
    ]


def test_the_width_a_table_needs_is_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    """At exactly its width the table is drawn, one column less and it becomes records."""
    natural = max(len(line) for line in printed(outbox(SHORT), 500, monkeypatch).splitlines())

    assert "┃" in printed(outbox(SHORT), natural, monkeypatch)
    assert SHORT in printed(outbox(SHORT), natural, monkeypatch)
    narrower = printed(outbox(SHORT), natural - 1, monkeypatch)
    assert "┃" not in narrower and f"Ontvanger: {SHORT}" in narrower.splitlines()


def test_prose_columns_wrap_between_words_and_the_rest_stays_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reason = "de geboortedatum is geen datum die wij kunnen lezen: " * 3
    listing = table("Geweigerde regels", "Regel", "Afzender", "Reden", prose=("Reden",))
    listing.add_row("3", SHORT, reason.strip())

    text = printed(listing, 60, monkeypatch)

    assert "┃" in text
    assert any(f"│ {SHORT} │" in line for line in text.splitlines())
    assert max(len(line) for line in text.splitlines()) <= 60
    words = " ".join(
        line.split("│")[3].strip() for line in text.splitlines() if line.count("│") == 4
    ).split()
    assert " ".join(words) == reason.strip()


def test_a_key_value_table_becomes_key_value_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    listing = table(None, "", "")
    listing.show_header = False
    listing.add_row("Regio", "Groningen")
    listing.add_row("Adres", ADDRESS)

    assert printed(listing, 60, monkeypatch).splitlines() == [
        "Regio: Groningen",
        f"Adres: {ADDRESS}",
    ]


def test_a_row_label_heads_its_record(monkeypatch: pytest.MonkeyPatch) -> None:
    listing = table("Signalen", "", "Groningen", ADDRESS)
    listing.add_row("Geplaatst", "5", "7")
    listing.add_row("Beëindigd", "<5", "0")

    assert printed(listing, 60, monkeypatch).splitlines() == [
        "Signalen",
        "Geplaatst",
        "  Groningen: 5",
        f"  {ADDRESS}: 7",
        "",
        "Beëindigd",
        "  Groningen: <5",
        f"  {ADDRESS}: 0",
    ]


# -- through the real command ---------------------------------------------------------------------

Cli = Callable[..., Result]
BSN = "111222333"


@pytest.fixture
def cli(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("VERWIJSINDEX_DATABASE_URL", database_url)
    monkeypatch.setenv("VERWIJSINDEX_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("VERWIJSINDEX_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("VERWIJSINDEX_COVENANT", raising=False)
    monkeypatch.setenv("COLUMNS", "60")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    outputs: list[tuple[str, str]] = []
    privacy_guard.watch(lambda: outputs)

    def invoke(*args: str) -> Result:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        outputs.append((f"CLI 'verwijsindex {' '.join(args[:2])}'", result.output))
        assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}"
        return result

    return invoke


def test_audit_list_at_60_columns_shows_the_whole_address(cli: Cli, tmp_path: Path) -> None:
    rows = tmp_path / "registraties.csv"
    rows.write_text(
        f"bsn;naam;geboortedatum;gemeente;kenmerk\n{BSN};Testkind;01-05-2016;Groningen;GGD-1\n",
        encoding="utf-8",
    )
    cli("import", "--institution", "ggd-groningen", str(rows), "--json")
    cli("youth", "show", "--bsn", BSN, "--by", ADDRESS, "--json")

    listing = cli("audit", "list", "--action", "youth-viewed").stdout
    as_json = json.loads(cli("audit", "list", "--action", "youth-viewed", "--json").stdout)

    assert [event["actor"] for event in as_json] == [f"operator:{ADDRESS}"]
    assert f"Actor: operator:{ADDRESS}" in listing.splitlines()
    assert "Actie: youth-viewed" in listing.splitlines()
    assert "…" not in listing
