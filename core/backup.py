"""Backup and restore of an embedded (SQLite) database (issue 13.5).

A backup is taken with SQLite's online backup API while the service runs, in one step: the copy
is one consistent moment (a WAL reader's snapshot, WAL included) and writers go on meanwhile. (In
small steps, every write of the service in between would start the copy over.) It is
written ``0600`` (it holds what the database holds: sealed identities, the logboek, kept mail)
and checked (``PRAGMA integrity_check``) before it is reported done.

A restore copies a backup back into the configured database, the same way. It refuses a file
that is not a verwijsindex database, one whose key the configuration does not hold (it could
neither match nor read it), and an existing database unless asked to replace it (the old one is
then kept beside it as ``<name>.before-restore``). The service must be stopped meanwhile; the
schema is brought up to this release's afterwards.

PostgreSQL is backed up with its own tools (``pg_dump``/``pg_restore``: README, "Backup").
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, create_engine

from core.file_privacy import create_private_file, sqlite_file
from core.keyring import KeyRing


class BackupError(Exception):
    """Why a backup or restore was not done (Dutch, for the operator)."""


@dataclass(frozen=True)
class BackupReport:
    path: Path
    size: int
    revision: str | None


def backup(database_url: str, target: Path) -> BackupReport:
    source = _sqlite_database(database_url)
    if not source.exists():
        raise BackupError(f"er is geen database in {source}")
    if target.exists():
        raise BackupError(f"{target} bestaat al; kies een nieuwe bestandsnaam")
    create_private_file(target)
    try:
        _copy(source, target)
        _check_integrity(target)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return BackupReport(target, target.stat().st_size, _revision(target))


def restore(database_url: str, backup_file: Path, ring: KeyRing, *, replace: bool) -> BackupReport:
    target = _sqlite_database(database_url)
    if not backup_file.is_file():
        raise BackupError(f"{backup_file} bestaat niet")
    _check_integrity(backup_file)
    revision = _revision(backup_file)
    if revision is None:
        raise BackupError(f"{backup_file} is geen verwijsindex-database (geen schemaversie)")
    unknown = _unknown_key(backup_file, ring)
    if unknown is not None:
        raise BackupError(
            f"{backup_file} is geschreven met sleutel {unknown}, die deze instellingen niet "
            "hebben: zet VERWIJSINDEX_SECRET_KEY (of VERWIJSINDEX_PREVIOUS_SECRET_KEYS) op de "
            "sleutel van toen"
        )
    if target.exists() and target.stat().st_size > 0:
        if not replace:
            raise BackupError(
                f"{target} bestaat al; herstel met --replace (de huidige blijft bewaard als "
                f"{target.name}.before-restore)"
            )
        kept = target.with_name(target.name + ".before-restore")
        kept.unlink(missing_ok=True)
        _copy(target, kept)
    else:
        create_private_file(target)
    _copy(backup_file, target)
    return BackupReport(target, target.stat().st_size, revision)


def _sqlite_database(database_url: str) -> Path:
    path = sqlite_file(database_url)
    if path is None:
        raise BackupError(
            "backup en restore zijn er voor een SQLite-database; maak van PostgreSQL een "
            "backup met pg_dump (README, 'Backup')"
        )
    return path


def _copy(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as origin, sqlite3.connect(target) as copy:
        origin.execute("PRAGMA busy_timeout=60000")
        copy.execute("PRAGMA busy_timeout=60000")
        origin.backup(copy)  # every page in one step: one snapshot
        # The copy took the service's WAL mode along; a read-only look at a WAL database (the
        # checks below) leaves -wal and -shm files beside it that it cannot remove. A copy is
        # one file; the service switches its database to WAL again when it opens it.
        copy.execute("PRAGMA journal_mode=DELETE")
    origin.close()
    copy.close()


def _check_integrity(path: Path) -> None:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            result = connection.execute("PRAGMA integrity_check").fetchone()
        connection.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is geen leesbare SQLite-database ({exc})") from None
    if not result or result[0] != "ok":
        raise BackupError(f"{path} is beschadigd: {result[0] if result else 'geen antwoord'}")


def _revision(path: Path) -> str | None:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        try:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError:
            row = None
    connection.close()
    return row[0] if row else None


def _unknown_key(path: Path, ring: KeyRing) -> str | None:
    from core.key_rotation import unknown_key_in_use

    # Read-only, and no engine of the service's kind: nothing is written beside the backup.
    engine = create_engine(
        "sqlite://", creator=lambda: sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    )
    try:
        with Session(engine) as session:
            return unknown_key_in_use(session, ring)
    finally:
        engine.dispose()
