"""Every command's help reads as plain text (issue 13.7): no type shown for a flag (typer would
print ``<bool>``), no RST literals from the docstrings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import typer
from typer.testing import CliRunner

from core.cli.app import app
from tests.conftest import TEST_SECRET


def _command_paths(command: object, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        if not getattr(sub, "hidden", False):
            yield from _command_paths(sub, (*path, name))


def test_every_help_is_plain() -> None:
    runner = CliRunner()
    paths = list(_command_paths(typer.main.get_command(app)))
    assert len(paths) > 20
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.output, path
        assert "``" not in result.output, path


def test_the_counting_verbose_flag_reads_as_a_flag() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.output.splitlines() if "--verbose" in line]
    assert "-v" in line and "<int>" not in line, line
    assert "[default: 0]" not in result.output


def test_the_sweep_names_every_count_in_words(tmp_path: Path) -> None:
    from core.scheduler import count_label

    runner = CliRunner()
    result = runner.invoke(
        app,
        ["sweep", "--json"],
        env={"VERWIJSINDEX_DATA_DIR": str(tmp_path), "VERWIJSINDEX_SECRET_KEY": TEST_SECRET},
    )
    assert result.exit_code == 0, result.output
    keys = json.loads(result.stdout)
    assert keys and all(count_label(key) != key.replace("_", " ") for key in keys), keys
    table = runner.invoke(
        app,
        ["sweep"],
        env={"VERWIJSINDEX_DATA_DIR": str(tmp_path), "VERWIJSINDEX_SECRET_KEY": TEST_SECRET},
    )
    assert "purge_adults" not in table.stdout and "jongeren van 23" in table.stdout
