"""Files are private (issue 9): the SQLite database and its -wal/-shm files are created 0600
whatever the umask, and the start-up check names every private file others can read."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from core.db import create_db_engine
from core.file_privacy import private_paths, warn_if_readable_by_others
from core.settings import Settings
from tests.conftest import TEST_SECRET


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o002], ids=["umask-022", "umask-002"])
def permissive_umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def test_a_new_sqlite_database_and_its_wal_and_shm_are_private(
    tmp_path: Path, permissive_umask: int
) -> None:
    database = tmp_path / "verwijsindex.db"
    engine = create_db_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
            connection.execute(text("INSERT INTO t VALUES (1)"))
        with engine.connect() as connection:  # WAL and shared memory exist while one is open
            connection.execute(text("SELECT x FROM t")).all()
            files = [database, tmp_path / "verwijsindex.db-wal", tmp_path / "verwijsindex.db-shm"]
            assert {path.name: _mode(path) for path in files} == {
                path.name: 0o600 for path in files
            }
    finally:
        engine.dispose()


def test_an_existing_database_keeps_its_mode(tmp_path: Path) -> None:
    database = tmp_path / "verwijsindex.db"
    database.touch()
    database.chmod(0o640)  # the administrator's choice; serve warns about it
    engine = create_db_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
    finally:
        engine.dispose()
    assert _mode(database) == 0o640


def test_the_check_names_each_private_file_others_can_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where Settings reads its .env
    database = tmp_path / "verwijsindex.db"
    settings = Settings(
        database_url=f"sqlite:///{database}",
        secret_key=TEST_SECRET,
        secret_file=tmp_path / ".verwijsindex-secret",
    )
    database.write_bytes(b"")
    database.chmod(0o644)
    (tmp_path / "verwijsindex.db-wal").write_bytes(b"")
    (tmp_path / "verwijsindex.db-wal").chmod(0o600)
    settings.secret_file.write_text("geheim\n")
    settings.secret_file.chmod(0o640)
    maildir = tmp_path / "verzonden"
    maildir.mkdir(mode=0o700)
    maildir.chmod(0o711)  # others can enter it and open a message whose name they know
    private = tmp_path / "prive"
    private.mkdir(mode=0o700)
    Path(".env").write_text("SLACK_BOT_TOKEN=xoxb-geheim\n")
    Path(".env").chmod(0o604)

    with caplog.at_level(logging.WARNING, logger="core.file_privacy"):
        exposed = warn_if_readable_by_others(
            private_paths(settings, extra=[maildir, private, tmp_path / "absent"])
        )

    assert exposed == [database, settings.secret_file, Path(".env"), maildir]
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 4
    assert all("readable by others" in warning for warning in warnings)
    assert str(database) in warnings[0] and "0644" in warnings[0]
    assert "geheim" not in caplog.text
