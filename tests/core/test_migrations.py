"""The Alembic migrations build exactly the schema of ``core.models``, on SQLite and PostgreSQL.

When a test here fails after a model change, the change needs a migration. Generate it with

    python -m core.migrations revision "what changed"

then read ``core/migrations/versions/NNNN_<slug>.py`` (autogenerate cannot see renames, data
moves or a changed partial-index WHERE clause) and commit it with the model change.
"""

from __future__ import annotations

import multiprocessing
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection, Engine

from core.db import create_db_engine
from core.migrations import (
    MIGRATIONS_DIR,
    alembic_config,
    current_revision,
    head_revision,
    pending_model_changes,
    upgrade_database,
)
from core.models import metadata

DDL_PREFIXES = ("CREATE", "ALTER", "DROP")


def _schema_snapshot(connection: Connection) -> dict[str, Any]:
    """Everything the database itself says about the tables, in a comparable form."""
    if connection.dialect.name == "sqlite":
        return _sqlite_snapshot(connection)
    return _postgresql_snapshot(connection)


def _sqlite_snapshot(connection: Connection) -> dict[str, Any]:
    snapshot: dict[str, Any] = {}
    tables = connection.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type = 'table' "
        "AND name NOT LIKE 'sqlite_%' AND name != 'alembic_version' ORDER BY name"
    ).scalars()
    for table in list(tables):
        columns = connection.exec_driver_sql(f'PRAGMA table_info("{table}")').all()
        foreign_keys = sorted(
            tuple(row[1:])
            for row in connection.exec_driver_sql(f'PRAGMA foreign_key_list("{table}")')
        )
        indexes = []
        for _seq, name, unique, origin, partial in connection.exec_driver_sql(
            f'PRAGMA index_list("{table}")'
        ).all():
            index_columns = [
                row[2] for row in connection.exec_driver_sql(f'PRAGMA index_info("{name}")')
            ]
            sql = connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)
            ).scalar()
            # Automatic indexes (UNIQUE constraints) are numbered by position: compare content.
            label = None if name.startswith("sqlite_autoindex") else name
            indexes.append((label, unique, origin, partial, tuple(index_columns), sql))
        table_sql = connection.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).scalar_one()
        snapshot[table] = {
            # The only table option that changes behaviour (sqlite_autoincrement=True: row ids
            # are never reused). The rest of the CREATE TABLE text depends on how it was built.
            "autoincrement": "AUTOINCREMENT" in table_sql.upper(),
            "columns": [tuple(c) for c in columns],
            "foreign_keys": foreign_keys,
            "indexes": sorted(indexes, key=repr),
        }
    return snapshot


def _postgresql_snapshot(connection: Connection) -> dict[str, Any]:
    # A dropped column leaves a gap in ordinal_position (it is pg_attribute.attnum): compare the
    # columns' order, not their numbers.
    columns = connection.execute(
        text(
            "SELECT table_name,"
            " row_number() OVER (PARTITION BY table_name ORDER BY ordinal_position),"
            " column_name, data_type,"
            " character_maximum_length, is_nullable, column_default"
            " FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name != 'alembic_version'"
            " ORDER BY table_name, ordinal_position"
        )
    ).all()
    constraints = connection.execute(
        text(
            "SELECT cl.relname, con.conname, con.contype, pg_get_constraintdef(con.oid)"
            " FROM pg_constraint con JOIN pg_class cl ON cl.oid = con.conrelid"
            " JOIN pg_namespace ns ON ns.oid = cl.relnamespace"
            " WHERE ns.nspname = current_schema() AND cl.relname != 'alembic_version'"
            " ORDER BY 1, 2"
        )
    ).all()
    indexes = connection.execute(
        text(
            "SELECT tablename, indexname, indexdef FROM pg_indexes"
            " WHERE schemaname = current_schema() AND tablename != 'alembic_version'"
            " ORDER BY 1, 2"
        )
    ).all()
    return {
        "columns": [tuple(r) for r in columns],
        "constraints": [tuple(r) for r in constraints],
        "indexes": [tuple(r) for r in indexes],
    }


def _table_names(engine: Engine) -> set[str]:
    """Tables visible without a schema name: on PostgreSQL, those in the search_path's schema."""
    with engine.connect() as connection:
        return set(inspect(connection).get_table_names())


def test_upgrade_builds_every_table_of_the_models(database_url: str) -> None:
    assert current_revision(database_url) is None

    revision = upgrade_database(database_url)

    assert revision == head_revision() is not None
    assert current_revision(database_url) == revision
    engine = create_db_engine(database_url)
    try:
        assert _table_names(engine) == set(metadata.tables) | {"alembic_version"}
        if engine.dialect.name == "postgresql":
            # The fixture's URL sets search_path to a fresh schema: everything, the version
            # table included, must land there and nowhere else.
            with engine.connect() as connection:
                schema = connection.execute(text("SELECT current_schema()")).scalar_one()
                assert schema.startswith("t_")
                count = connection.execute(
                    text("SELECT count(*) FROM information_schema.tables WHERE table_schema = :s"),
                    {"s": schema},
                ).scalar_one()
            assert count == len(metadata.tables) + 1
    finally:
        engine.dispose()


def test_migrations_match_the_models(database_url: str) -> None:
    # Fails when a model changed without a migration: see this module's docstring.
    upgrade_database(database_url)

    assert pending_model_changes(database_url) == []


def test_migrated_schema_is_the_create_all_schema(database_url: str) -> None:
    """Stricter than autogenerate, which ignores e.g. a partial index's WHERE clause: the suite
    runs on ``metadata.create_all`` databases, production on migrated ones — they must agree."""
    upgrade_database(database_url)
    engine = create_db_engine(database_url)
    try:
        with engine.connect() as connection:
            migrated = _schema_snapshot(connection)
        command.downgrade(alembic_config(database_url), "base")
        assert _table_names(engine) <= {"alembic_version"}
        metadata.create_all(engine)
        with engine.connect() as connection:
            created = _schema_snapshot(connection)
    finally:
        engine.dispose()

    assert migrated == created
    assert "uq_match_active_youth" in repr(migrated)
    assert "CASCADE" in repr(migrated)


def test_upgrading_twice_is_a_no_op(database_url: str) -> None:
    upgrade_database(database_url)
    engine = create_db_engine(database_url)
    statements: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    try:
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO municipality (name, contact_email, active) VALUES (:n, :e, :a)"),
                {"n": "Groningen", "e": "jeugd@groningen.example", "a": True},
            )
        with engine.connect() as connection:
            command.upgrade(alembic_config(database_url, connection=connection), "head")
            assert not connection.in_transaction()  # Alembic committed its own transaction
        with engine.connect() as connection:
            names = connection.execute(text("SELECT name FROM municipality")).scalars().all()
    finally:
        engine.dispose()

    assert names == ["Groningen"]
    assert not [s for s in statements if s.lstrip().upper().startswith(DDL_PREFIXES)]
    assert current_revision(database_url) == head_revision()


def test_upgrade_in_the_callers_transaction(database_url: str) -> None:
    """A connection already in a transaction is migrated inside it: the caller commits."""
    engine = create_db_engine(database_url)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(database_url, connection=connection), "head")
            assert connection.in_transaction()
        assert "youth" in _table_names(engine)
    finally:
        engine.dispose()
    assert current_revision(database_url) == head_revision()


_start_together: Any = None


def _share_barrier(barrier: Any) -> None:
    global _start_together
    _start_together = barrier


def _upgrade_in_step(database_url: str) -> str | None:
    _start_together.wait(timeout=60)
    return upgrade_database(database_url)


def test_concurrent_upgrades_of_one_database_all_succeed(database_url: str) -> None:
    """Several `serve` processes starting at once each upgrade the schema at startup."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(3, initializer=_share_barrier, initargs=(context.Barrier(3),)) as pool:
        results = pool.map(_upgrade_in_step, [database_url] * 3)

    assert results == [head_revision()] * 3
    assert pending_model_changes(database_url) == []


def test_upgrades_from_threads_of_one_process_take_turns(database_url: str) -> None:
    """Alembic's ``context`` is module-global; upgrade_database serialises its own callers."""
    barrier = threading.Barrier(3)
    results: list[str | None] = []
    errors: list[BaseException] = []

    def upgrade() -> None:
        try:
            barrier.wait(timeout=30)
            results.append(upgrade_database(database_url))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=upgrade) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert results == [head_revision()] * 3


def test_database_made_by_create_all_is_adopted(engine: Engine, database_url: str) -> None:
    # `engine` is the fixture that ran metadata.create_all on the database at database_url.
    assert current_revision(database_url) is None

    assert upgrade_database(database_url) == head_revision()
    assert pending_model_changes(database_url) == []


def test_unversioned_database_that_differs_is_refused(engine: Engine, database_url: str) -> None:
    with engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_signal_status_ends_on"))

    with pytest.raises(RuntimeError, match="no migration history"):
        upgrade_database(database_url)
    assert current_revision(database_url) is None


BATCH_REVISION = '''
"""Rebuild the youth table (what batch mode does for most ALTERs on SQLite)."""

import sqlalchemy as sa
from alembic import op

revision = "9001"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("youth", recreate="always") as batch_op:
        batch_op.add_column(sa.Column("note", sa.String(length=10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("youth", recreate="always") as batch_op:
        batch_op.drop_column("note")
'''


def test_sqlite_table_rebuild_keeps_the_rows_that_refer_to_it(tmp_path: Path) -> None:
    """Batch mode drops and recreates a table; with foreign keys enforced, the drop would
    cascade-delete every registration of every youth. env.py switches enforcement off."""
    url = f"sqlite:///{tmp_path / 'rebuild.db'}"
    scripts = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "9001_rebuild_youth.py").write_text(
        BATCH_REVISION.format(head=head_revision())
    )
    upgrade_database(url)
    engine = create_db_engine(url)
    try:
        with engine.begin() as connection:
            for statement in (
                "INSERT INTO municipality (name, contact_email, active)"
                " VALUES ('Groningen', 'g@example.org', 1)",
                "INSERT INTO institution (id, name, kind, notification_email, may_coordinate,"
                " active) VALUES ('ggd', 'GGD', 'ggd', 'ggd@example.org', 1, 1)",
                "INSERT INTO youth (id, identity_key, has_bsn, municipality, created_at, key_id,"
                " birth_date_encrypted, purge_month)"
                " VALUES (1, 'k', 1, 'Groningen', '2026-03-02', 'k1', x'00', '2039-05-01')",
                "INSERT INTO registration (youth_id, institution_id, reference, registered_at,"
                " status) VALUES (1, 'ggd', 'K-1', '2026-03-02', 'active')",
            ):
                connection.exec_driver_sql(statement)

        with engine.connect() as connection:
            config = alembic_config(url, connection=connection)
            config.set_main_option("script_location", str(scripts))
            command.upgrade(config, "head")
            # Enforcement is back on for the connection's next user.
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            connection.rollback()

        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM registration").scalar() == 1
            assert "note" in {c["name"] for c in inspect(connection).get_columns("youth")}
    finally:
        engine.dispose()
