"""Engines, sessions and transactions for SQLite (embedded) and PostgreSQL (production).

SQLite: WAL, foreign keys on, and every transaction starts with ``BEGIN IMMEDIATE`` so writers
queue up instead of failing halfway with "database is locked"; they queue on a file lock that is
handed over at once, not on SQLite's sleeping busy handler (core.sqlite_writer_gate).
PostgreSQL: row locks (``SELECT ... FOR UPDATE``) on the youth serialize commands about the same
youth; partial unique indexes settle the remaining races and :func:`run_in_transaction` retries
the loser.

A new SQLite database file is created ``0600`` whatever the umask (core.file_privacy): it
holds sealed identities, the logboek and kept mail.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlmodel import Session, create_engine

from core.audit import use_keyring
from core.file_privacy import create_private_file, sqlite_file
from core.settings import Settings
from core.sqlite_writer_gate import GatedConnection

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRYABLE_PG_CODES = {"40001", "40P01"}  # serialization_failure, deadlock_detected
SQLITE_WAL_SWITCH_SECONDS = 30.0
_READ_ONLY = "verwijsindex_read_only"
_READERS: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def create_db_engine(url: str, *, echo: bool = False) -> Engine:
    parsed = make_url(url)
    # hide_parameters: a database error's text (logged with its traceback) would otherwise quote
    # the statement's values, among them a youth's birth date (DOMAIN: no identity in any log).
    if parsed.get_backend_name() == "sqlite":
        database_file = sqlite_file(url)
        if database_file is not None:
            create_private_file(database_file)  # before SQLite creates it 0644
        engine = create_engine(
            url,
            echo=echo,
            hide_parameters=True,
            connect_args={"check_same_thread": False, "timeout": 60, "factory": GatedConnection},
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(
        url, echo=echo, hide_parameters=True, pool_pre_ping=True, pool_size=10, max_overflow=20
    )


def service_engine(settings: Settings) -> Engine:
    """The engine every part of the service works on: ``settings.database_url`` with the region's
    keyring bound, so the logboek it writes is MACed (core.audit refuses to write without it)."""
    engine = create_db_engine(settings.database_url)
    use_keyring(engine, settings.keyring())
    return engine


def reading(engine: Engine) -> Engine:
    """``engine`` for work that only reads. On SQLite its transactions start deferred and take no
    writer lock: a WAL reader sees the last commit and neither waits for a writer nor holds one
    up (a claim query or a look at the backlog need not queue behind a processing run). Writing
    through it is a mistake: the upgrade to a writer could fail at once with "database is
    locked". On PostgreSQL it is the engine itself."""
    if not is_sqlite(engine):
        return engine
    reader = _READERS.get(engine)
    if reader is None:
        reader = _READERS[engine] = engine.execution_options(**{_READ_ONLY: True})
    return reader


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from pysqlite so BEGIN IMMEDIATE can be issued.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            _switch_to_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(_READ_ONLY):
            connection.exec_driver_sql("BEGIN DEFERRED")  # a WAL reader: no lock, no wait
            return
        raw = connection.connection.driver_connection
        if isinstance(raw, GatedConnection):
            raw.take_writer_lock()  # the kernel hands it over at once (core.sqlite_writer_gate)
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _switch_to_wal(cursor: Any) -> None:
    """WAL is kept in the file, so only the first connection to a new database switches it;
    when several processes do that at once, SQLite answers "database is locked" at once,
    without waiting (the busy timeout does not cover it). Try again for a while."""
    deadline = time.monotonic() + SQLITE_WAL_SWITCH_SECONDS
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception. The commit is the
    command boundary: the domain events the command published reach their subscribers first,
    in the same commit; a rollback forgets them (core.unit_of_work)."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def _is_retryable(exc: Exception) -> bool:
    if isinstance(exc, IntegrityError):
        return True  # a concurrent command won a unique index; redo with the new state
    if isinstance(exc, DBAPIError):
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if code in RETRYABLE_PG_CODES:
            return True
        if isinstance(exc, OperationalError) and "locked" in str(exc.orig):
            return True
    return False


def run_in_transaction(engine: Engine, work: Callable[[Session], T], *, attempts: int = 5) -> T:
    """Run ``work`` in a transaction, retrying when it lost a race to a concurrent command."""
    for attempt in range(1, attempts + 1):
        try:
            with transaction(engine) as session:
                return work(session)
        except (IntegrityError, DBAPIError) as exc:
            if attempt == attempts or not _is_retryable(exc):
                raise
            log.info("transaction lost a race (attempt %d), retrying: %s", attempt, type(exc))
            time.sleep(0.01 * attempt)
    raise AssertionError("unreachable")
