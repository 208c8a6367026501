"""Waking the workers of every process: "a message is waiting", "the outbox has work".

A worker sleeps on an :class:`asyncio.Event` and otherwise polls every second or two. Within a
process the code that stores a row sets the event itself (instant). For the workers of other
processes (``serve --workers N``, ``serve --only ...``, several machines on one database) the
writing transaction announces what it wrote (:func:`announce`), and a :func:`listen` task in
each process sets that process's events. Polling stays as the fallback: a wake that is lost (a
listener reconnecting) costs at most one poll interval, never a message.

* **PostgreSQL**: ``NOTIFY`` in the writing transaction, so it is delivered only when the row
  is committed (and never for a rollback); one per channel and transaction, however many rows.
  The listener holds one dedicated connection with ``LISTEN``, reconnects with back-off when it
  drops, and wakes everyone after each (re)connect (what was announced meanwhile).
* **SQLite**: nothing to announce. The listener asks ``PRAGMA data_version`` on a dedicated
  connection every :data:`SQLITE_POLL_SECONDS`: it changes whenever *another* connection, of
  any process, committed a change to the file. Measured on this machine: 1.5 µs a poll, against
  2.3 µs for reading a counter row, which would also cost an ``UPDATE`` of one hot row (and a
  WAL page) in every intake and enqueue transaction and a table of its own. Its imprecision —
  any commit wakes both kinds of worker — costs an idle worker one empty claim, and an empty
  claim changes nothing, so it wakes no one in turn. With the hop to a thread and the timer, an
  idle process spends about 7 ms of CPU a second on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any

from sqlalchemy.engine import URL, Engine
from sqlmodel import Session

log = logging.getLogger(__name__)

SQLITE_POLL_SECONDS = 0.05
RECONNECT_FIRST_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 30.0
# libpq TCP keepalives on the listening connection: a server that vanished without closing
# the connection (a network fault) is noticed in about 25 s instead of the kernel's hours.
POSTGRES_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}
_ANNOUNCED = "verwijsindex.wake.announced"


class Wake(StrEnum):
    """What there is to do; the value is the PostgreSQL channel."""

    INBOUND = "verwijsindex_inbound"  # a stored message waits for processing
    OUTBOX = "verwijsindex_outbox"  # notifications wait for delivery


# The events to set for each kind of wake, in the process that listens.
Listeners = Mapping[Wake, Sequence[asyncio.Event]]


def announce(session: Session, wake: Wake) -> None:
    """In the transaction that wrote the rows: wake every process's workers once it commits."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return  # SQLite: each listener sees the commit itself (data_version)
    transaction = session.get_transaction()
    announced: tuple[Any, set[Wake]] | None = session.info.get(_ANNOUNCED)
    if announced is None or announced[0] is not transaction:
        announced = (transaction, set())
        session.info[_ANNOUNCED] = announced
    if wake in announced[1]:
        return  # PostgreSQL folds them into one anyway; this saves the round trip
    connection.exec_driver_sql(f"NOTIFY {wake.value}")
    announced[1].add(wake)


async def listen(engine: Engine, listeners: Listeners, stop: asyncio.Event) -> None:
    """Set ``listeners``' events on every wake from any process, until ``stop``."""
    if engine.dialect.name == "postgresql":
        await _listen_postgres(engine.url, listeners, stop)
    elif engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        await _watch_sqlite(str(engine.url.database), listeners, stop)
    # else an in-memory database: one process only, whose writers wake it directly


def _wake(listeners: Listeners, wakes: Iterable[Wake]) -> None:
    for wake in wakes:
        for event in listeners.get(wake, ()):
            event.set()


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


# -- SQLite -----------------------------------------------------------------------------------


def _open_sqlite(database: str) -> sqlite3.Connection:
    # Never written through, so its own commits cannot hide anyone's from data_version.
    connection = sqlite3.connect(database, check_same_thread=False, timeout=5)
    connection.execute("PRAGMA query_only=ON")
    return connection


def _data_version(connection: sqlite3.Connection) -> int:
    return int(connection.execute("PRAGMA data_version").fetchone()[0])


async def _watch_sqlite(database: str, listeners: Listeners, stop: asyncio.Event) -> None:
    connection = await asyncio.to_thread(_open_sqlite, database)
    try:
        last = await asyncio.to_thread(_data_version, connection)
        while not stop.is_set():
            await asyncio.sleep(SQLITE_POLL_SECONDS)  # cheaper than a wait_for on stop, 20×/s
            try:
                # In a thread: the read may wait a moment for a checkpoint's lock.
                version = await asyncio.to_thread(_data_version, connection)
            except sqlite3.Error as exc:
                log.warning("wake poll failed (%s); the workers poll meanwhile", exc)
                continue
            if version != last:
                last = version
                _wake(listeners, Wake)
    finally:
        connection.close()


# -- PostgreSQL -------------------------------------------------------------------------------


async def _listen_postgres(url: URL, listeners: Listeners, stop: asyncio.Event) -> None:
    # psycopg is the [postgres] extra: imported only where PostgreSQL is used.
    import psycopg
    from psycopg.conninfo import make_conninfo

    conninfo = make_conninfo(
        url.set(drivername="postgresql").render_as_string(hide_password=False),
        application_name=f"verwijsindex-wake-{os.getpid()}",
        **POSTGRES_KEEPALIVES,
    )
    delay = RECONNECT_FIRST_SECONDS
    while not stop.is_set():
        try:
            connection = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
        except (psycopg.Error, OSError) as exc:
            log.warning("wake listener cannot connect (%s); again in %.1f s", exc, delay)
        else:
            try:
                await _hear(connection, listeners, stop)
            except (psycopg.Error, OSError) as exc:
                log.warning("wake listener lost its connection (%s); reconnecting", exc)
            finally:
                await connection.close()  # not ``async with``: that commits, on a lost one too
            delay = RECONNECT_FIRST_SECONDS  # it worked until now: retry soon
            if stop.is_set():
                return
        if await _stopped_within(stop, delay):
            return
        delay = min(delay * 2, RECONNECT_MAX_SECONDS)


async def _hear(connection: Any, listeners: Listeners, stop: asyncio.Event) -> None:
    """LISTEN on every channel and wake for each notification until ``stop`` (or until the
    connection ends); raises the connection's error."""
    for wake in Wake:
        await connection.execute(f"LISTEN {wake.value}")
    _wake(listeners, Wake)  # whatever was announced while no one listened here

    async def hear() -> None:
        async for notification in connection.notifies():
            with contextlib.suppress(ValueError):  # a channel of another version: ignore
                _wake(listeners, [Wake(notification.channel)])

    hearing = asyncio.ensure_future(hear())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({hearing, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        hearing.cancel()
        stopping.cancel()
        # Both done before the connection closes under them.
        await asyncio.gather(hearing, stopping, return_exceptions=True)
    if not hearing.cancelled():
        hearing.result()  # the connection's error, if that is what ended it
