"""One writer at a time on a SQLite file, handed over at once between processes.

Every transaction here starts with ``BEGIN IMMEDIATE`` (core.db), so SQLite admits one writer at a
time. A writer that finds the lock taken does not wait for it to be released: SQLite's busy
handler *sleeps* (1, 2, 5, 10, 15, 20, 25 … 100 ms) and looks again. With ``serve --workers``
three processes write by turns (intake, processing, delivery), and they spent most of a burst
asleep: the machine was 55 % busy at 140 mails a second, with no I/O wait
(tests/benchmarks/bench_smtp_ingest.py, issue 10).

So each connection first takes an exclusive ``flock`` on ``<database>-writer.lock``. The kernel
wakes the next waiter the moment the lock is released, so SQLite never sees a second writer and
never sleeps. The lock is released when the transaction ends (commit or rollback, including the
pool's rollback of a connection it takes back) and by the kernel when a process dies, so a
SIGKILLed writer never leaves it held. Every connection has its own open file, so threads of one
process queue up like processes do. Where ``fcntl`` is missing (Windows), SQLite's own busy
handler is the only queue, as before.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

LOCK_FILE_SUFFIX = "-writer.lock"
_writing_threads: set[int] = set()  # threads that hold a writer lock (through any connection)


class GatedConnection(sqlite3.Connection):
    """A sqlite3 connection that holds the file's writer lock for the length of a transaction."""

    def __init__(self, database: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self._gate: int | None = None
        self._held = False
        self._holder = 0
        name = os.fsdecode(database) if isinstance(database, (str, bytes, os.PathLike)) else ""
        if fcntl is not None and name and name != ":memory:" and not name.startswith("file:"):
            self._gate = os.open(name + LOCK_FILE_SUFFIX, os.O_RDWR | os.O_CREAT, 0o600)

    def take_writer_lock(self) -> None:
        """Wait until no other connection writes (called just before ``BEGIN IMMEDIATE``).

        A thread that already writes through another connection does not queue behind itself:
        that second transaction is left to SQLite's busy timeout, which ends it with "database
        is locked" instead of waiting forever."""
        thread = threading.get_ident()
        if self._gate is None or self._held or thread in _writing_threads:
            return
        fcntl.flock(self._gate, fcntl.LOCK_EX)  # releases the GIL while it waits
        self._held = True
        self._holder = thread
        _writing_threads.add(thread)

    def _release(self) -> None:
        if self._held and self._gate is not None:
            self._held = False
            _writing_threads.discard(self._holder)
            fcntl.flock(self._gate, fcntl.LOCK_UN)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            if not self.in_transaction:
                self._release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release()
            if self._gate is not None:
                os.close(self._gate)
                self._gate = None
