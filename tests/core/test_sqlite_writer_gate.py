"""SQLite writers queue on a file lock that is handed over at once (core.sqlite_writer_gate), and
readers through ``core.db.reading`` take no lock at all."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

from sqlalchemy import event, text

from core.db import create_db_engine, reading, transaction


def _engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = create_db_engine(f"sqlite:///{tmp_path / 'gate.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE item (id INTEGER PRIMARY KEY, note TEXT)"))
    return engine


def test_a_second_writer_waits_for_the_first_and_goes_on_the_moment_it_commits(
    tmp_path: Path,
) -> None:
    engine = _engine(tmp_path)
    first_in = threading.Event()
    release_first = threading.Event()
    second_began_at: list[float] = []
    first_committed_at: list[float] = []

    def first() -> None:
        with transaction(engine) as session:
            session.execute(text("INSERT INTO item (note) VALUES ('first')"))
            first_in.set()
            release_first.wait(5)
        first_committed_at.append(time.monotonic())

    def second() -> None:
        first_in.wait(5)
        with transaction(engine) as session:
            session.execute(text("INSERT INTO item (note) VALUES ('second')"))  # begins here
            second_began_at.append(time.monotonic())

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    first_in.wait(5)
    time.sleep(0.3)
    assert not second_began_at, "the second writer waited"
    release_first.set()
    for thread in threads:
        thread.join(10)

    assert second_began_at and first_committed_at
    # Handed over by the kernel, not found by SQLite's sleeping busy handler (which sleeps up to
    # 100 ms between looks once it has waited a while).
    assert second_began_at[0] - first_committed_at[0] < 0.5
    with engine.connect() as connection:
        notes = connection.execute(text("SELECT note FROM item ORDER BY id")).scalars().all()
    assert notes == ["first", "second"]
    engine.dispose()


def test_a_reader_neither_waits_for_a_writer_nor_holds_one_up(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    with transaction(engine) as writer:
        writer.execute(text("INSERT INTO item (note) VALUES ('uncommitted')"))
        done = threading.Event()
        seen: list[int] = []

        def read() -> None:
            with reading(engine).connect() as connection:
                seen.append(connection.execute(text("SELECT count(*) FROM item")).scalar_one())
            done.set()

        threading.Thread(target=read).start()
        assert done.wait(2), "the reader did not wait for the writer's lock"
    assert seen == [0]  # it saw the last commit, not the writer's work in progress
    engine.dispose()


def test_a_rolled_back_writer_lets_the_next_one_in(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    try:
        with transaction(engine) as session:
            session.execute(text("INSERT INTO item (note) VALUES ('gone')"))
            raise RuntimeError("the command failed")
    except RuntimeError:
        pass
    took = threading.Event()

    def write() -> None:
        with transaction(engine) as session:
            session.execute(text("INSERT INTO item (note) VALUES ('kept')"))
        took.set()

    threading.Thread(target=write).start()
    assert took.wait(2)
    engine.dispose()


def test_the_lock_file_is_private(tmp_path: Path) -> None:
    os.umask(0o022)
    engine = _engine(tmp_path)
    lock_file = tmp_path / "gate.db-writer.lock"
    assert lock_file.exists()
    assert stat.S_IMODE(lock_file.stat().st_mode) == 0o600
    engine.dispose()


def test_a_thread_that_writes_twice_at_once_is_not_left_waiting_for_itself(
    tmp_path: Path,
) -> None:
    """A second write transaction nested in a first, in one thread, cannot go on (SQLite has one
    writer), but it ends with SQLite's own "database is locked" after its busy timeout instead
    of queueing forever behind the lock its own thread holds."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'gate.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE item (id INTEGER PRIMARY KEY, note TEXT)"))
    impatient = create_db_engine(f"sqlite:///{tmp_path / 'gate.db'}")
    @event.listens_for(impatient, "connect")
    def _short_timeout(dbapi_connection: object, _record: object) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=200")  # type: ignore[attr-defined]

    with transaction(engine) as outer:
        outer.execute(text("INSERT INTO item (note) VALUES ('outer')"))
        started = time.monotonic()
        try:
            with transaction(impatient) as inner:
                inner.execute(text("INSERT INTO item (note) VALUES ('inner')"))
        except Exception as exc:
            assert "locked" in str(exc)
        else:
            raise AssertionError("the nested writer should have been refused")
        assert time.monotonic() - started < 5
    impatient.dispose()
    engine.dispose()
