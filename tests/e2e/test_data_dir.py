"""One setting for the service's files (issue 13.4: ``VERWIJSINDEX_DATA_DIR``), and no silent new
key: a database written under one key is never opened with another."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

from alembic import command

from core.keyring import KeyRing
from core.migrations import alembic_config, current_revision
from tests.bot.conftest import REPOSITORY

KEY_A = "de-sleutel-waaronder-de-database-geschreven-is-0123"
KEY_B = "een-andere-sleutel-die-lang-genoeg-is-0123456789"


def _verwijsindex(cwd: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("VERWIJSINDEX_")
    }
    environment.update({"PYTHONPATH": str(REPOSITORY), "COLUMNS": "300", **settings})
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env=environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_data_dir_holds_the_database_the_maildir_and_the_generated_key(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = _verwijsindex(elsewhere, "sweep", VERWIJSINDEX_DATA_DIR=str(data))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (data / "verwijsindex.db").is_file()
    assert (data / ".verwijsindex-secret").is_file()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert not list(elsewhere.iterdir()), "nothing is written in the working folder"
    # The same data from another working folder: the same key, so it starts.
    again = _verwijsindex(tmp_path, "sweep", VERWIJSINDEX_DATA_DIR=str(data))
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_database_is_never_opened_with_a_key_it_was_not_written_under(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    database = f"sqlite:///{first / 'verwijsindex.db'}"
    made = _verwijsindex(first, "sweep", VERWIJSINDEX_DATABASE_URL=database)
    assert made.returncode == 0, made.stdout + made.stderr

    # Started from another folder, the generated key there would be a new one.
    refused = _verwijsindex(second, "sweep", VERWIJSINDEX_DATABASE_URL=database)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "de database is geschreven met sleutel" in refused.stderr
    assert "refusing to start" in refused.stderr
    assert not (second / ".verwijsindex-secret").exists(), "a refusal generates no key"
    # The same with a key set by mistake.
    wrong = _verwijsindex(
        first,
        "sweep",
        VERWIJSINDEX_DATABASE_URL=database,
        VERWIJSINDEX_SECRET_KEY="een-andere-sleutel-die-lang-genoeg-is-0123456789",
    )
    assert wrong.returncode == 2 and "VERWIJSINDEX_SECRET_KEY" in wrong.stderr
    # keys status still runs: it is how the administrator finds out what is where.
    status = _verwijsindex(second, "keys", "status", VERWIJSINDEX_DATABASE_URL=database)
    assert status.returncode in (0, 1), status.stdout + status.stderr
    # The right key opens it again.
    right = _verwijsindex(first, "sweep", VERWIJSINDEX_DATABASE_URL=database)
    assert right.returncode == 0, right.stdout + right.stderr


def test_a_missing_data_dir_is_made_private_by_db_upgrade(tmp_path: Path) -> None:
    data = tmp_path / "nog" / "niet" / "daar"
    made = _verwijsindex(tmp_path, "db", "upgrade", VERWIJSINDEX_DATA_DIR=str(data))
    assert made.returncode == 0, made.stdout + made.stderr
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert (data / "verwijsindex.db").is_file() and (data / ".verwijsindex-secret").is_file()


def _dump(database: Path) -> list[str]:
    with sqlite3.connect(database) as connection:
        lines = list(connection.iterdump())
    connection.close()
    return lines


def test_db_upgrade_under_another_key_is_refused_before_any_migration(tmp_path: Path) -> None:
    database = tmp_path / "verwijsindex.db"
    url = f"sqlite:///{database}"
    made = _verwijsindex(
        tmp_path, "sweep", VERWIJSINDEX_DATABASE_URL=url, VERWIJSINDEX_SECRET_KEY=KEY_A
    )
    assert made.returncode == 0, made.stdout + made.stderr
    # One release back: 0013 (which seals the Slack tokens under the key) still to run.
    command.downgrade(alembic_config(url, keyring=KeyRing.of(KEY_A.encode())), "0012")
    before = _dump(database)

    refused = _verwijsindex(
        tmp_path, "db", "upgrade", VERWIJSINDEX_DATABASE_URL=url, VERWIJSINDEX_SECRET_KEY=KEY_B
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "de database is geschreven met sleutel" in refused.stderr
    assert current_revision(url) == "0012", "no migration ran"
    assert _dump(database) == before, "nothing changed"

    upgraded = _verwijsindex(
        tmp_path, "db", "upgrade", VERWIJSINDEX_DATABASE_URL=url, VERWIJSINDEX_SECRET_KEY=KEY_A
    )
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert current_revision(url) != "0012"
