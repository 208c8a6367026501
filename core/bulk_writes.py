"""Writing tens of thousands of rows in one transaction (the nightly registration import):
executemany straight through the DBAPI cursor on SQLite, ids known before the insert."""

from __future__ import annotations

import functools
import gc
import operator
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import LargeBinary, Table, func, insert
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection, Dialect

IN_CHUNK = 900  # bound parameters per IN (...) list: SQLite's limit is 999 on old builds

T = TypeVar("T")


def in_chunks(values: list[T]) -> Iterator[list[T]]:
    for start in range(0, len(values), IN_CHUNK):
        yield values[start : start + IN_CHUNK]


_collector = threading.Lock()
_pausing = 0  # threads inside collector_paused()
_was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while a batch builds its rows.

    A batch of 20 000 rows keeps some 10^5 container objects alive until it commits; the
    collector, run every 700 allocations, walks the young ones again and again and the whole
    heap as it grows: 10-15 % of an import (tests/benchmarks/bench_import.py), for rows that
    all stay alive anyway. Reference counting frees what is let go as always; the few reference
    cycles made meanwhile wait for the collector's next run after the batch. Nesting, and
    threads importing at the same time, are counted: the last one out switches the collector
    back on, if it was on."""
    global _pausing, _was_enabled
    with _collector:
        if _pausing == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pausing += 1
    try:
        yield
    finally:
        with _collector:
            _pausing -= 1
            if _pausing == 0 and _was_enabled:
                gc.enable()


def insert_rows(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """``INSERT INTO table`` of ``rows`` (dicts with the same keys), one executemany.

    On SQLite straight through the DBAPI cursor, with the statement and the bind processing
    SQLAlchemy compiles for these columns: the values stored are the same, without its per-row
    parameter handling, which costs more than SQLite's own insert of the row."""
    if not rows:
        return
    if connection.dialect.name != "sqlite":
        connection.execute(insert(table), rows)
        return
    plan = _plan(table, tuple(rows[0]), connection.dialect)
    connection.exec_driver_sql(plan.sql, plan.parameters(rows))


def next_sqlite_id(connection: Connection, table: Table) -> int:
    """The id SQLite gives the next row of an AUTOINCREMENT table: past the highest ever given
    (``sqlite_sequence``) and the highest present. Only while this transaction holds the write
    lock (BEGIN IMMEDIATE) is it still free when the insert comes."""
    given = connection.exec_driver_sql(
        "SELECT seq FROM sqlite_sequence WHERE name = ?", (table.name,)
    ).scalar()
    present = connection.execute(sa_select(func.max(table.c.id))).scalar()
    return max(given or 0, present or 0) + 1


@functools.lru_cache(maxsize=32)
def _plan(table: Table, keys: tuple[str, ...], dialect: Dialect) -> _InsertPlan:
    return _InsertPlan(table, keys, dialect)


class _InsertPlan:
    """A compiled positional INSERT and, per parameter, its key and SQLAlchemy bind processor."""

    def __init__(self, table: Table, keys: tuple[str, ...], dialect: Dialect):
        compiled = insert(table).compile(dialect=dialect, column_keys=list(keys))
        order = tuple(compiled.positiontup or ())
        if sorted(order) != sorted(keys):  # a column default SQLAlchemy would fill in
            raise AssertionError(f"INSERT INTO {table.name}: parameters {order}, rows {keys}")
        self.sql = compiled.string
        values = operator.itemgetter(*order)
        self._values = values if len(order) > 1 else lambda row: (values(row),)
        self._processed: list[tuple[int, Callable[[Any], Any]]] = [
            (position, processor)
            for position, key in enumerate(order)
            # sqlite3 stores bytes as a BLOB as they are: wrapping each in sqlite3.Binary (a
            # memoryview), as SQLAlchemy's processor does, stores the same at a cost per value.
            if not isinstance(table.c[key].type, LargeBinary)
            and (processor := table.c[key].type.dialect_impl(dialect).bind_processor(dialect))
        ]

    def parameters(self, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        values = list(map(self._values, rows))
        if not self._processed:
            return values
        # Column by column: one processor call per value, or per column when every row holds
        # the very same object (the batch's moment).
        columns = list(zip(*values, strict=True))
        for position, processor in self._processed:
            column = columns[position]
            if len(set(map(id, column))) == 1:
                columns[position] = (processor(column[0]),) * len(column)
            else:
                columns[position] = tuple(map(processor, column))
        return list(zip(*columns, strict=True))
