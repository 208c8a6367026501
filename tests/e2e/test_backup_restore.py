"""``verwijsindex backup`` and ``restore`` (issue 13.5) of the embedded database, through the real
console command."""

from __future__ import annotations

import sqlite3
import stat
import threading
from pathlib import Path

from tests.e2e.test_data_dir import _verwijsindex

KEY = "de-sleutel-van-de-regio-die-lang-genoeg-is-0123456789"
OTHER_KEY = "een-andere-sleutel-die-ook-lang-genoeg-is-9876543210"


def _events(database: Path) -> int:
    with sqlite3.connect(database) as connection:
        count = connection.execute("SELECT count(*) FROM auditevent").fetchone()[0]
    connection.close()
    return int(count)


def test_a_backup_restores_into_a_fresh_folder_and_refuses_what_it_must(tmp_path: Path) -> None:
    live, fresh = tmp_path / "live", tmp_path / "fresh"
    settings = {"VERWIJSINDEX_SECRET_KEY": KEY}
    made = _verwijsindex(tmp_path, "sweep", VERWIJSINDEX_DATA_DIR=str(live), **settings)
    assert made.returncode == 0, made.stderr

    # Taken while another process keeps writing to the database: still one consistent copy.
    stop = threading.Event()

    def keep_writing() -> None:
        while not stop.is_set():
            _verwijsindex(tmp_path, "sweep", VERWIJSINDEX_DATA_DIR=str(live), **settings)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        copy = tmp_path / "backups" / "verwijsindex-1.db"
        copy.parent.mkdir()
        taken = _verwijsindex(
            tmp_path, "backup", str(copy), VERWIJSINDEX_DATA_DIR=str(live), **settings
        )
    finally:
        stop.set()
        writer.join(120)
    assert taken.returncode == 0, taken.stderr
    assert "Backup gemaakt" in taken.stdout
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    # The copy is one file: no -wal or -shm left beside it by its check.
    assert [path.name for path in copy.parent.iterdir()] == [copy.name]
    with sqlite3.connect(copy) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    connection.close()
    events_in_copy = _events(copy)
    assert events_in_copy > 0

    again = _verwijsindex(
        tmp_path, "backup", str(copy), VERWIJSINDEX_DATA_DIR=str(live), **settings
    )
    assert again.returncode == 1 and "bestaat al" in again.stderr  # never overwrites a backup

    wrong_key = _verwijsindex(
        tmp_path,
        "restore",
        str(copy),
        VERWIJSINDEX_DATA_DIR=str(fresh),
        VERWIJSINDEX_SECRET_KEY=OTHER_KEY,
    )
    assert wrong_key.returncode == 1 and "sleutel" in wrong_key.stderr
    assert not (fresh / "verwijsindex.db").exists()
    # Without a key set, the key a refusal would have generated is not left behind either.
    no_key = _verwijsindex(tmp_path, "restore", str(copy), VERWIJSINDEX_DATA_DIR=str(fresh))
    assert no_key.returncode == 1 and "sleutel" in no_key.stderr
    assert not (fresh / ".verwijsindex-secret").exists()
    assert not (fresh / "verwijsindex.db").exists()

    restored = _verwijsindex(
        tmp_path, "restore", str(copy), VERWIJSINDEX_DATA_DIR=str(fresh), **settings
    )
    assert restored.returncode == 0, restored.stderr
    assert _events(fresh / "verwijsindex.db") == events_in_copy
    works = _verwijsindex(tmp_path, "audit", "verify", VERWIJSINDEX_DATA_DIR=str(fresh), **settings)
    assert works.returncode == 0, works.stdout + works.stderr  # the logboek's chain is whole

    over = _verwijsindex(
        tmp_path, "restore", str(copy), VERWIJSINDEX_DATA_DIR=str(live), **settings
    )
    assert over.returncode == 1 and "--replace" in over.stderr
    replaced = _verwijsindex(
        tmp_path, "restore", str(copy), "--replace", VERWIJSINDEX_DATA_DIR=str(live), **settings
    )
    assert replaced.returncode == 0, replaced.stderr
    assert (live / "verwijsindex.db.before-restore").exists()


def test_postgresql_and_strange_files_are_refused_with_a_reason(tmp_path: Path) -> None:
    postgres = _verwijsindex(
        tmp_path,
        "backup",
        str(tmp_path / "x.db"),
        VERWIJSINDEX_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:5432/test",
        VERWIJSINDEX_SECRET_KEY=KEY,
    )
    assert postgres.returncode == 1 and "pg_dump" in postgres.stderr
    not_a_database = tmp_path / "notities.txt"
    not_a_database.write_text("geen database\n")
    strange = _verwijsindex(
        tmp_path,
        "restore",
        str(not_a_database),
        VERWIJSINDEX_DATA_DIR=str(tmp_path / "data"),
        VERWIJSINDEX_SECRET_KEY=KEY,
    )
    assert strange.returncode == 1 and "geen leesbare SQLite-database" in strange.stderr
