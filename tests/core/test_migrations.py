"""The Alembic migrations build exactly the schema of ``core.models``, on SQLite and PostgreSQL.

When a test here fails after a model change, the change needs a migration. Generate it with

    python -m core.migrations revision "what changed"

then read ``core/migrations/versions/NNNN_<slug>.py`` (autogenerate cannot see renames, data
moves or a changed partial-index WHERE clause) and commit it with the model change.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import threading
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from core.audit import use_keyring, verify_chain
from core.db import create_db_engine
from core.identity import IdentityKeys, YouthIdentity
from core.keyring import KeyRing, SecretKey
from core.migrations import (
    MIGRATIONS_DIR,
    alembic_config,
    current_revision,
    head_revision,
    pending_model_changes,
    upgrade_database,
)
from core.models import metadata
from core.sealing import IDENTITY_PURPOSE, INBOUND_MAIL_PURPOSE, Sealer
from tests.conftest import TEST_KEYRING, TEST_SECRET

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


# -- revision 0002: the logboek is keyed --------------------------------------------------------

_UNKEYED_EVENTS = sa.table(
    "auditevent",
    sa.column("occurred_at", sa.DateTime(timezone=True)),
    sa.column("actor", sa.String()),
    sa.column("action", sa.String()),
    sa.column("subject", sa.String()),
    sa.column("channel", sa.String()),
    sa.column("details", sa.JSON()),
    sa.column("prev_hash", sa.String()),
    sa.column("hash", sa.String()),
)


def _write_chain_at_0001(database_url: str, count: int) -> list[str]:
    """The logboek as the code before revision 0002 wrote it (its SHA-256, spelled out here as
    that code had it); returns the hashes."""
    prev, hashes = "0" * 64, []
    engine = create_db_engine(database_url)
    try:
        with engine.begin() as connection:
            for n in range(count):
                occurred_at = datetime(2026, 3, 2, 9, n, 0, 1234, tzinfo=UTC)
                row: dict[str, Any] = {
                    "occurred_at": occurred_at,
                    "actor": "system:scheduler",
                    "action": "test-event",
                    "subject": f"test:{n}",
                    "channel": "system",
                    "details": {"n": n, "why": "upgrade"},
                }
                payload = json.dumps(
                    [prev, occurred_at.isoformat(timespec="microseconds"),
                     row["actor"], row["action"], row["subject"], row["channel"], row["details"]],
                    sort_keys=True, separators=(",", ":"), default=str,
                )  # fmt: skip
                digest = hashlib.sha256(payload.encode()).hexdigest()
                connection.execute(
                    sa.insert(_UNKEYED_EVENTS).values(**row, prev_hash=prev, hash=digest)
                )
                prev = digest
                hashes.append(digest)
            connection.execute(
                text(
                    "INSERT INTO audithead (id, last_event_id, last_hash, event_count)"
                    " VALUES (1, :n, :h, :n)"
                ),
                {"n": count, "h": prev},
            )
    finally:
        engine.dispose()
    return hashes


def _verified(database_url: str) -> tuple[int, Any]:
    engine = create_db_engine(database_url)
    use_keyring(engine, TEST_KEYRING)
    try:
        with Session(engine) as session:
            return verify_chain(session)
    finally:
        engine.dispose()


def test_a_chain_written_at_0001_is_keyed_by_the_upgrade_and_then_verifies(
    database_url: str,
) -> None:
    upgrade_database(database_url, "0001")
    unkeyed = _write_chain_at_0001(database_url, 3)

    with pytest.raises(RuntimeError, match="needs the secret key"):
        upgrade_database(database_url)
    assert current_revision(database_url) == "0001"

    assert upgrade_database(database_url, keyring=TEST_KEYRING) == head_revision()
    assert _verified(database_url) == (3, None)
    engine = create_db_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT key_id, hash FROM auditevent")).all()
            head = connection.execute(text("SELECT key_id, mac FROM audithead")).one()
        assert {key_id for key_id, _ in rows} == {TEST_KEYRING.current.id}
        assert not {digest for _, digest in rows} & set(unkeyed)
        assert head.key_id == TEST_KEYRING.current.id and head.mac

        # Down again: the chain the code before 0002 verifies, exactly as it was.
        command.downgrade(alembic_config(database_url, keyring=TEST_KEYRING), "0001")
        with engine.connect() as connection:
            hashes = connection.execute(text("SELECT hash FROM auditevent ORDER BY id")).scalars()
            assert list(hashes) == unkeyed
    finally:
        engine.dispose()


def test_a_chain_broken_before_0002_stays_unkeyed_and_is_reported(database_url: str) -> None:
    upgrade_database(database_url, "0001")
    _write_chain_at_0001(database_url, 3)
    engine = create_db_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE auditevent SET subject = 'x' WHERE id = 2"))
    finally:
        engine.dispose()

    upgrade_database(database_url, keyring=TEST_KEYRING)
    count, chain_break = _verified(database_url)
    assert count == 1 and chain_break.event_id == 1 and "no MAC" in chain_break.reason


def _legacy_seal(secret: bytes, purpose: bytes, plaintext: bytes) -> bytes:
    """A value as revision 0002 sealed it: nonce || ciphertext, no key id."""
    nonce = os.urandom(12)
    return nonce + AESGCM(SecretKey(secret).derive(purpose)).encrypt(nonce, plaintext, None)


def test_0003_encrypts_the_clear_birth_dates_with_the_regions_key(database_url: str) -> None:
    secret = TEST_SECRET.encode()
    keys = IdentityKeys(secret)
    without_bsn = YouthIdentity(date(2019, 2, 11), surname="van Dijk", sex="X", name="Eva van Dijk")
    upgrade_database(database_url, "0002")
    engine = create_db_engine(database_url)
    mail = b"Subject: aanmelding\r\n\r\nBSN: 111222333\r\n"
    try:
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO municipality (name, contact_email, active) VALUES (:n, :e, :a)"),
                {"n": "Groningen", "e": "jeugd@groningen.example", "a": True},
            )
            insert_youth = text(
                "INSERT INTO youth (id, identity_key, has_bsn, bsn_encrypted, name_encrypted,"
                " birth_date, municipality, purge_on, created_at) VALUES (:id, :key, :has_bsn,"
                " :bsn, :name, :born, 'Groningen', :purge, '2026-03-02 09:00:00')"
            )
            for youth_id, key, bsn, name, born in (
                (1, keys.bsn_digest("111222333"), "111222333", "Testkind", date(2016, 5, 1)),
                (2, keys.identity_key(without_bsn), None, "Eva van Dijk", date(2019, 2, 11)),
            ):
                connection.execute(
                    insert_youth,
                    {
                        "id": youth_id,
                        "key": key,
                        "has_bsn": bsn is not None,
                        "bsn": _legacy_seal(secret, IDENTITY_PURPOSE, bsn.encode())
                        if bsn
                        else None,
                        "name": _legacy_seal(secret, IDENTITY_PURPOSE, name.encode()),
                        "born": born,
                        "purge": born.replace(year=born.year + 23),
                    },
                )
            connection.execute(
                text("INSERT INTO youthparent (youth_id, parent_key) VALUES (1, :key)"),
                {"key": keys.bsn_digest("100000009")},
            )
            connection.execute(
                text(
                    "INSERT INTO inboundmessage (dedupe_key, message_id, transport, mail_from,"
                    " rcpt_to, mailbox, size, raw, received_at, status, attempts) VALUES ('d',"
                    " '<m@x>', 'smtp', 'a@x', 'registratie@x', '', 1, :raw,"
                    " '2026-03-02 09:00:00', 'refused', 0)"
                ),
                {"raw": _legacy_seal(secret, INBOUND_MAIL_PURPOSE, mail)},
            )

        with pytest.raises(RuntimeError, match="needs the region's key"):
            upgrade_database(database_url)  # without the key: nothing changes
        assert current_revision(database_url) == "0002"

        upgrade_database(database_url, keyring=KeyRing.of(secret))

        with engine.connect() as connection:
            columns = {c["name"] for c in inspect(connection).get_columns("youth")}
            rows = connection.execute(
                text(
                    "SELECT key_id, bsn_encrypted, name_encrypted, birth_date_encrypted,"
                    " substitute_encrypted, purge_month FROM youth ORDER BY id"
                )
            ).all()
            parent_key_ids = connection.execute(text("SELECT key_id FROM youthparent")).all()
            [raw] = connection.execute(text("SELECT raw FROM inboundmessage")).scalars().all()
    finally:
        engine.dispose()
    assert "birth_date" not in columns and "purge_on" not in columns  # no clear birth date left
    assert [tuple(r) for r in parent_key_ids] == [(keys.key_id,)]
    with_bsn, alternative = rows
    assert with_bsn.key_id == alternative.key_id == keys.key_id
    assert keys.decrypt(bytes(with_bsn.bsn_encrypted)) == "111222333"
    assert keys.decrypt(bytes(with_bsn.name_encrypted)) == "Testkind"
    assert keys.decrypt_date(bytes(with_bsn.birth_date_encrypted)) == date(2016, 5, 1)
    assert str(with_bsn.purge_month) == "2039-05-01"  # text on SQLite
    assert keys.decrypt_date(bytes(alternative.birth_date_encrypted)) == date(2019, 2, 11)
    # Surname and sex found again from the name, so this youth can be rotated too.
    substitute = keys.decrypt(bytes(alternative.substitute_encrypted))
    assert keys.substitute_digest(substitute, date(2019, 2, 11)) == keys.identity_key(without_bsn)
    assert Sealer(keys.ring, INBOUND_MAIL_PURPOSE, unreadable="").open(bytes(raw)) == mail
