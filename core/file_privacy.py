"""Files on disk that only the service's own user may read (issue 9: files are private).

What the service writes itself is created private whatever the umask:

* the SQLite database, ``0600`` (:func:`create_private_file`, called by ``core.db`` before
  SQLite opens it). SQLite gives its ``-wal``, ``-shm`` and ``-journal`` files the mode of the
  database file (``findCreateFileMode`` and ``robust_open`` in its unix VFS, which undo the
  umask too), so no process-wide ``os.umask`` change is needed: that would reach every file any
  thread of the process creates, at any moment, libraries' and the operator's included;
* the generated secret key file, ``0600`` (``core.settings``);
* the outgoing maildir, ``0700`` folders and ``0600`` message files
  (``mail_gateway.delivery.relay``).

Kept inbound mail is sealed inside the database; nothing else of a youth is written to disk.

Files that already exist keep their mode: an administrator may have chosen it. ``serve`` calls
:func:`warn_if_readable_by_others` at start, which names each such file that its group or
others can read.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy.engine import make_url

from core.settings import Settings

log = logging.getLogger(__name__)

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIRECTORY_MODE = 0o700
# The last: the writers' lock of core.sqlite_writer_gate.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal", "-writer.lock")
# A file is exposed when group or others may read it; a folder also when they may enter it
# (with x alone, a file whose name is known can be opened).
_FILE_EXPOSED = stat.S_IRGRP | stat.S_IROTH
_DIRECTORY_EXPOSED = _FILE_EXPOSED | stat.S_IXGRP | stat.S_IXOTH


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for any other database, an in-memory one, or a
    ``file:`` URI (SQLite opens that itself, with its own options)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def create_private_file(path: Path) -> bool:
    """Create an empty ``0600`` file at ``path`` unless something is there already; returns
    whether it did. A missing folder is left for the caller's own open to report."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except (FileExistsError, FileNotFoundError):
        return False
    try:
        os.fchmod(descriptor, PRIVATE_FILE_MODE)  # exactly 0600, even under an odd umask
    finally:
        os.close(descriptor)
    return True


def private_paths(settings: Settings, *, extra: Iterable[Path] = ()) -> list[Path]:
    """The files (and folders) of this installation that must stay private: the SQLite
    database and its companions, the secret key file, the ``.env`` file (secrets and tokens),
    the TLS private key, and ``extra`` (the transports' own, e.g. the outgoing maildir)."""
    paths: list[Path] = []
    database = sqlite_file(settings.database_url)
    if database is not None:
        paths.append(database)
        paths.extend(database.with_name(database.name + suffix) for suffix in SQLITE_COMPANIONS)
    paths.append(settings.secret_file)
    env_file = settings.model_config.get("env_file")
    if isinstance(env_file, str | os.PathLike):
        paths.append(Path(env_file))
    if settings.smtp_tls_key is not None:
        paths.append(settings.smtp_tls_key)
    paths.extend(extra)
    return paths


def readable_by_others(path: Path) -> bool:
    """Whether the group or others can read ``path`` (a folder: read or enter it); False when
    there is nothing at ``path``."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return False
    exposed = _DIRECTORY_EXPOSED if stat.S_ISDIR(mode) else _FILE_EXPOSED
    return bool(mode & exposed)


def warn_if_readable_by_others(paths: Iterable[Path]) -> list[Path]:
    """Log a warning for every existing path in ``paths`` that others can read; returns them.
    The warning names the path and its mode, never what is in it."""
    exposed = [path for path in paths if readable_by_others(path)]
    for path in exposed:
        mode = stat.S_IMODE(path.stat().st_mode)
        wanted = PRIVATE_DIRECTORY_MODE if path.is_dir() else PRIVATE_FILE_MODE
        log.warning(
            "%s is readable by others (mode %04o): it holds private data; chmod %04o %s",
            path,
            mode,
            wanted,
            path,
        )
    return exposed
