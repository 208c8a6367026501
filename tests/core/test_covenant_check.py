"""``verwijsindex covenant check`` reports every problem of a file in one run (issue 13.7), and
``serve`` refuses the same file with the same problems: both load it through one loader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from core.cli import app
from core.cli.runtime import EXIT_CONFIGURATION
from core.covenant import bundled_covenant_path
from tests.conftest import TEST_SECRET

Cli = Callable[..., Result]
REPO = Path(__file__).resolve().parents[2]

# A bad e-mail address (a value), a duplicate institution id and a professional of an
# institution the file does not have (two references), each in another part of the file.
EDITS = (
    (
        'notification_email = "verwijsindex@ggd-groningen.example"',
        'notification_email = "verwijsindex-bij-ggd"',
    ),
    ('id = "scholengroep-noordkust"', 'id = "jeugdhulp-noord"'),
    ('institution = "scholengroep-noordkust"', 'institution = "jeugdhulp-noord"'),
    ('institution = "wij-groningen"', 'institution = "wij-stad"'),
)
EXPECTED = [
    (
        "institutions[0].notification_email",
        "instelling 'ggd-groningen'",
        "'verwijsindex-bij-ggd' is geen geldig e-mailadres (verwacht: naam@domein.nl)",
    ),
    (
        "institutions[5].id",
        "instelling 'jeugdhulp-noord'",
        "instellings-id 'jeugdhulp-noord' komt dubbel voor (al gebruikt bij institutions[4])",
    ),
    (
        "professionals[6].institution",
        "hulpverlener 's.jansen@wij-groningen.example'",
        "instelling 'wij-stad' bestaat niet (bekend: 'ggd-groningen', 'wij-groningen', "
        "'sociaal-team-westerkwartier', 'sociaal-team-midden-groningen', 'jeugdhulp-noord', "
        "'politie-noord-nederland')",
    ),
]


@pytest.fixture
def cli(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("VERWIJSINDEX_DATABASE_URL", database_url)
    monkeypatch.setenv("VERWIJSINDEX_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("VERWIJSINDEX_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("VERWIJSINDEX_COVENANT", raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    text = bundled_covenant_path().read_text(encoding="utf-8")
    for old, new in EDITS:
        assert old in text, f"test is stale: {old!r} not in the example"
        text = text.replace(old, new, 1)
    path = tmp_path / "convenant.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_check_reports_value_and_reference_problems_in_one_run(cli: Cli, broken: Path) -> None:
    result = cli("covenant", "check", str(broken))

    assert result.exit_code == EXIT_CONFIGURATION == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == f"Het convenant {broken} is niet bruikbaar (3 problemen):"
    assert lines[1:] == [f"  - {path} ({item}): {message}" for path, item, message in EXPECTED]


def test_check_as_json_lists_every_problem_with_its_item(cli: Cli, broken: Path) -> None:
    result = cli("covenant", "check", str(broken), "--json")

    assert result.exit_code == 2
    answer = json.loads(result.stdout)
    assert answer["valid"] is False and answer["source"] == str(broken)
    assert [(p["path"], p["item"], p["message"]) for p in answer["problems"]] == EXPECTED
    assert {(p["line"], p["column"]) for p in answer["problems"]} == {(None, None)}


def test_serve_refuses_the_file_with_the_same_problems(
    cli: Cli, broken: Path, tmp_path: Path
) -> None:
    checked = cli("covenant", "check", str(broken))
    # The console script as an operator starts it; the covenant is loaded before anything runs.
    served = subprocess.run(
        [sys.executable, "-m", "cli", "--covenant", str(broken), "serve", "--workers", "0"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "80"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert served.returncode == 2, served.stderr
    assert served.stdout == ""
    assert served.stderr == checked.stderr
