"""``verwijsindex report`` (CONTRACT §6) through typer's CliRunner, on the known March of
test_report: the tables, ``--csv`` and ``--json`` show the same suppressed figures, the default
period is the last full month, and bad input is refused naming the option."""

from __future__ import annotations

import csv
import io

from core.clock import local_date, utcnow
from core.report import SUPPRESSED, WITHHELD_NOTE, ReportPeriod
from tests.core.conftest import CoreDriver
from tests.core.test_cli import Cli, as_json, ok
from tests.core.test_cli import cli as cli  # the CLI runner fixture
from tests.core.test_report import play_march

MARCH = ("--from", "01-03-2026", "--to", "2026-03-31")


def test_the_report_prints_every_section_as_a_table_with_the_note_on_small_numbers(
    core: CoreDriver, cli: Cli
) -> None:
    play_march(core)
    result = ok(cli("report", "--municipality", "groningen", *MARCH))
    out = result.stdout
    assert "Verwijsindex: cijfers over maart 2026 voor gemeente Groningen" in out
    for title in ("Signalen", "Matches", "Procescoördinatie", "Vastgelopen", "Informeren"):
        assert title in out
    rows: dict[str, str] = {}  # the first table's "totaal" is the signals'
    for line in out.splitlines():
        if line.count("│") > 2:
            rows.setdefault(line.split("│")[1].strip(), line)
    assert [cell.strip() for cell in rows["totaal"].split("│")[2:5]] == ["30", "<5", "5"]
    assert "│ 50 %" in rows["contact bevestigd door alle partners"]
    assert "│ 1,0" in rows["mediaan dagen tot acceptatie"]
    assert WITHHELD_NOTE.split(".")[0] in " ".join(out.split())


def test_csv_and_json_carry_the_same_figures(core: CoreDriver, cli: Cli) -> None:
    play_march(core)
    rows = list(
        csv.DictReader(
            io.StringIO(ok(cli("report", "--municipality", "Groningen", *MARCH, "--csv")).stdout),
            delimiter=";",
        )
    )
    data = as_json(cli("report", "--municipality", "Groningen", *MARCH, "--json"))
    assert (data["municipality"], data["from"], data["to"]) == (
        "Groningen",
        "2026-03-01",
        "2026-03-31",
    )
    assert [(r["onderdeel"], r["regel"], r["kolom"], r["waarde"]) for r in rows] == [
        (f["section"], f["row"], f["column"], f["value"]) for f in data["figures"]
    ]
    assert {r["gemeente"] for r in rows} == {"Groningen"}
    placed = {(r["regel"], r["kolom"]): r["waarde"] for r in rows}
    assert placed[("totaal", "geplaatst")] == "30"
    assert placed[("code urgent", "ingetrokken")] == SUPPRESSED
    region = as_json(cli("report", *MARCH, "--json"))
    assert region["municipality"] is None
    totals = {(f["row"], f["column"]): f["value"] for f in region["figures"]}
    assert totals[("totaal", "geplaatst")] == "32"


def test_the_default_is_the_last_full_month_and_bad_input_names_the_option(cli: Cli) -> None:
    data = as_json(cli("report", "--json"))
    expected = ReportPeriod.month_before(local_date(utcnow()))
    assert (data["from"], data["to"]) == (expected.first.isoformat(), expected.last.isoformat())
    result = cli("report", "--municipality", "Atlantis")
    assert result.exit_code == 1
    assert "Fout: --municipality: onbekende gemeente 'Atlantis'" in " ".join(result.output.split())
    backwards = cli("report", "--from", "10-03-2026", "--to", "01-03-2026")
    assert backwards.exit_code == 1
    assert "--to: de periode eindigt (01-03-2026) vóór ze begint (10-03-2026)" in " ".join(
        backwards.output.split()
    )
    nonsense = cli("report", "--from", "gisteren")
    assert nonsense.exit_code == 1
    assert "--from" in nonsense.output
