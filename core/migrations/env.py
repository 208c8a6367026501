"""Alembic environment: run by ``alembic.command`` (see ``core.migrations``), never imported.

Online mode uses ``config.attributes["connection"]`` when a caller passes one (left open for the
caller), otherwise an engine from ``core.db.create_db_engine``, so SQLite gets the same pragmas
and ``BEGIN IMMEDIATE`` as the application.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import context
from alembic.autogenerate import compare_metadata
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from core.db import create_db_engine
from core.migrations import migration_options
from core.models import metadata

config = context.config
target_metadata = metadata

# Several `serve` processes may start against one PostgreSQL schema at the same moment.
PG_MIGRATION_LOCK = (
    "SELECT pg_advisory_xact_lock("
    "hashtext('verwijsindex-migrations:' || coalesce(current_schema(), '')))"
)


def run_migrations_offline() -> None:
    """``--sql`` mode: write the DDL instead of running it."""
    url = config.get_main_option("sqlalchemy.url")
    dialect_name = (url or "").split(":", 1)[0].split("+", 1)[0]
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **migration_options(dialect_name),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_migrations(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: set sqlalchemy.url or attributes['connection']")
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            _run_migrations(connection)
    finally:
        engine.dispose()


def _run_migrations(connection: Connection) -> None:
    dialect_name = connection.dialect.name
    with _sqlite_foreign_keys_off(connection):
        context.configure(connection=connection, **migration_options(dialect_name))
        # SQLite: the engine's "begin" listener makes this BEGIN IMMEDIATE, which queues
        # concurrent upgrades; PostgreSQL: the advisory lock does.
        with context.begin_transaction():
            if dialect_name == "postgresql":
                connection.execute(text(PG_MIGRATION_LOCK))
            _adopt_schema_created_without_migrations(connection)
            context.run_migrations()
            if dialect_name == "sqlite":
                _check_foreign_keys(connection)


@contextmanager
def _sqlite_foreign_keys_off(connection: Connection) -> Iterator[None]:
    """Batch mode rebuilds a SQLite table by copy, drop and rename; with foreign keys on, the
    drop would cascade-delete the rows that refer to it (registrations of a youth, ...).

    The pragma is a no-op inside a transaction, so it is set on the DBAPI connection before
    anything begins (our engines run the DBAPI connection in autocommit mode). A connection that
    is already in a transaction is migrated as it is: its owner answers for the pragma.
    """
    if connection.dialect.name != "sqlite" or connection.in_transaction():
        yield
        return
    dbapi_connection = connection.connection.driver_connection
    assert dbapi_connection is not None
    was_on = dbapi_connection.execute("PRAGMA foreign_keys").fetchone()[0]
    dbapi_connection.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        if was_on:
            dbapi_connection.execute("PRAGMA foreign_keys=ON")


def _check_foreign_keys(connection: Connection) -> None:
    """With enforcement off during the upgrade, verify afterwards (still inside the transaction,
    so a violation rolls the whole upgrade back)."""
    violations = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if violations:
        raise RuntimeError(f"migration left rows violating foreign keys: {violations[:10]}")


def _adopt_schema_created_without_migrations(connection: Connection) -> None:
    """A database made with ``metadata.create_all`` (tests, early installs) has the tables but no
    version: stamp it at head when its schema is exactly the models', refuse otherwise."""
    migration_context = context.get_context()
    if migration_context.get_current_revision() is not None:
        return
    existing = set(inspect(connection).get_table_names()) & set(target_metadata.tables)
    if not existing:
        return
    differences = compare_metadata(migration_context, target_metadata)
    if differences:
        raise RuntimeError(
            "the database has verwijsindex tables but no migration history, and they differ "
            f"from the models; migrate it by hand. Differences: {differences}"
        )
    migration_context.stamp(context.script, "heads")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
