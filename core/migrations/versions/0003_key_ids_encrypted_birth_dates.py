"""key ids on keyed data, birth dates encrypted

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 16:30:00

Youths and parent links get the id of the region key their digest was made with (``key_id``);
sealed values (identity fields, inbound mail) get a header naming their key (core.sealing);
the birth date is stored encrypted, with only the month of the 23rd birthday in clear
(``purge_month``); a youth without BSN keeps its encrypted surname|sex so that its digest can be
made again under a new key.

Existing rows need the region's key for this (it encrypts the birth dates, and opens each sealed
value to learn which ring key it is under): ``verwijsindex db upgrade`` and ``serve`` pass it
(``alembic_config(keyring=...)``); without it the upgrade of a database that holds youths or
mail stops before changing anything. A youth without BSN whose surname and sex cannot be found
again (its name is not "first names + surname") keeps no source for its digest: `keys status`
counts it.
"""

import os
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from alembic import context, op
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.identity import (
    SEXES,
    IdentityKeys,
    YouthIdentity,
    purge_month,
    substitute_identity,
    twenty_third_birthday,
)
from core.keyring import KeyRing, SecretKey
from core.sealing import IDENTITY_PURPOSE, INBOUND_MAIL_PURPOSE, Sealer, sealed_key_id

# revision identifiers, used by Alembic.
revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000
# SQLite batch mode rebuilds the table: keep youth numbers never given out twice.
KEEP_AUTOINCREMENT = {'sqlite_autoincrement': True}
LEGACY_NONCE = 12  # before 0003 a sealed value was nonce || ciphertext, under the one key

youth = sa.table(
    'youth',
    sa.column('id', sa.Integer),
    sa.column('identity_key', sa.String),
    sa.column('has_bsn', sa.Boolean),
    sa.column('bsn_encrypted', sa.LargeBinary),
    sa.column('name_encrypted', sa.LargeBinary),
    sa.column('birth_date', sa.Date),
    sa.column('purge_on', sa.Date),
    sa.column('key_id', sa.String),
    sa.column('birth_date_encrypted', sa.LargeBinary),
    sa.column('substitute_encrypted', sa.LargeBinary),
    sa.column('purge_month', sa.Date),
)
youthparent = sa.table(
    'youthparent', sa.column('youth_id', sa.Integer), sa.column('key_id', sa.String)
)
inbound = sa.table('inboundmessage', sa.column('id', sa.Integer), sa.column('raw', sa.LargeBinary))


def upgrade() -> None:
    with op.batch_alter_table('youth', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column('key_id', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('birth_date_encrypted', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('substitute_encrypted', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('purge_month', sa.Date(), nullable=True))
    with op.batch_alter_table('youthparent', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_id', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('parent_bsn_encrypted', sa.LargeBinary(), nullable=True))

    _seal_existing_rows(op.get_bind())

    with op.batch_alter_table('youth', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.alter_column('key_id', existing_type=sa.String(length=8), nullable=False)
        batch_op.alter_column(
            'birth_date_encrypted', existing_type=sa.LargeBinary(), nullable=False
        )
        batch_op.alter_column('purge_month', existing_type=sa.Date(), nullable=False)
        batch_op.drop_index(batch_op.f('ix_youth_purge_on'))
        batch_op.create_index(batch_op.f('ix_youth_purge_month'), ['purge_month'], unique=False)
        batch_op.drop_column('purge_on')
        batch_op.drop_column('birth_date')
    with op.batch_alter_table('youthparent', schema=None) as batch_op:
        batch_op.alter_column('key_id', existing_type=sa.String(length=8), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('youth', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column('birth_date', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('purge_on', sa.Date(), nullable=True))

    _unseal_to_legacy(op.get_bind())

    with op.batch_alter_table('youthparent', schema=None) as batch_op:
        batch_op.drop_column('parent_bsn_encrypted')
        batch_op.drop_column('key_id')
    with op.batch_alter_table('youth', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.alter_column('birth_date', existing_type=sa.Date(), nullable=False)
        batch_op.alter_column('purge_on', existing_type=sa.Date(), nullable=False)
        batch_op.drop_index(batch_op.f('ix_youth_purge_month'))
        batch_op.create_index(batch_op.f('ix_youth_purge_on'), ['purge_on'], unique=False)
        batch_op.drop_column('purge_month')
        batch_op.drop_column('substitute_encrypted')
        batch_op.drop_column('birth_date_encrypted')
        batch_op.drop_column('key_id')


# -- data ---------------------------------------------------------------------------------------


def _keyring(connection: sa.engine.Connection) -> KeyRing | None:
    has_rows = connection.execute(sa.select(youth.c.id).limit(1)).first() or connection.execute(
        sa.select(inbound.c.id).where(inbound.c.raw != b'').limit(1)
    ).first()
    if not has_rows:
        return None
    keyring = context.config.attributes.get('keyring')
    if not isinstance(keyring, KeyRing):
        raise RuntimeError(
            "revision 0003 encrypts the birth dates already stored and needs the region's key: "
            'run `verwijsindex db upgrade` (or `serve`) with VERWIJSINDEX_SECRET_KEY set'
        )
    return keyring


def _open_legacy(keyring: KeyRing, purpose: bytes, sealed: bytes) -> tuple[SecretKey, bytes]:
    """A value sealed before key ids: try each ring key (the tag tells which one it is)."""
    for key in keyring.keys:
        try:
            plain = AESGCM(key.derive(purpose)).decrypt(
                sealed[:LEGACY_NONCE], sealed[LEGACY_NONCE:], None
            )
        except InvalidTag:
            continue
        return key, plain
    raise RuntimeError(
        'revision 0003: a stored value opens with none of the region keys; put the key it was '
        'written with in VERWIJSINDEX_SECRET_KEY or VERWIJSINDEX_PREVIOUS_SECRET_KEYS'
    )


def _batches(connection: sa.engine.Connection, query: Any, id_column: Any) -> Iterator[list[Any]]:
    after = 0
    while rows := connection.execute(
        query.where(id_column > after).order_by(id_column).limit(BATCH)
    ).all():
        yield rows
        after = rows[-1][0]


def _seal_existing_rows(connection: sa.engine.Connection) -> None:
    keyring = _keyring(connection)
    if keyring is None:
        return
    query = sa.select(
        youth.c.id,
        youth.c.identity_key,
        youth.c.has_bsn,
        youth.c.bsn_encrypted,
        youth.c.name_encrypted,
        youth.c.birth_date,
    )
    for rows in _batches(connection, query, youth.c.id):
        updates = [_sealed_youth(keyring, *row) for row in rows]
        connection.execute(
            youth.update()
            .where(youth.c.id == sa.bindparam('b_id'))
            .values(
                bsn_encrypted=sa.bindparam('bsn_encrypted'),
                name_encrypted=sa.bindparam('name_encrypted'),
                key_id=sa.bindparam('key_id'),
                birth_date_encrypted=sa.bindparam('birth_date_encrypted'),
                substitute_encrypted=sa.bindparam('substitute_encrypted'),
                purge_month=sa.bindparam('purge_month'),
            ),
            updates,
        )
    # A parent link was digested with the key of the youth's own digest (there was one key).
    connection.execute(
        youthparent.update().values(
            key_id=sa.select(youth.c.key_id)
            .where(youth.c.id == youthparent.c.youth_id)
            .scalar_subquery()
        )
    )
    mail = sa.select(inbound.c.id, inbound.c.raw).where(inbound.c.raw != b'')
    for rows in _batches(connection, mail, inbound.c.id):
        for message_id, raw in rows:
            key, plain = _open_legacy(keyring, INBOUND_MAIL_PURPOSE, raw)
            sealed = Sealer(KeyRing(key), INBOUND_MAIL_PURPOSE, unreadable='').seal(plain)
            connection.execute(
                inbound.update().where(inbound.c.id == message_id).values(raw=sealed)
            )


def _sealed_youth(
    keyring: KeyRing,
    youth_id: int,
    identity_key: str,
    has_bsn: bool,
    bsn_encrypted: bytes | None,
    name_encrypted: bytes | None,
    birth_date: date,
) -> dict[str, Any]:
    opened = {
        column: _open_legacy(keyring, IDENTITY_PURPOSE, value)
        for column, value in (('bsn_encrypted', bsn_encrypted), ('name_encrypted', name_encrypted))
        if value is not None
    }
    # The row stays under the key it was written with; `keys rotate` moves it afterwards.
    key = next(iter(opened.values()))[0] if opened else keyring.current
    sealer = Sealer(KeyRing(key), IDENTITY_PURPOSE, unreadable='')
    values: dict[str, Any] = {
        'b_id': youth_id,
        'bsn_encrypted': None,
        'name_encrypted': None,
        'key_id': key.id,
        'birth_date_encrypted': sealer.seal(birth_date.isoformat().encode()),
        'substitute_encrypted': None,
        'purge_month': purge_month(birth_date),
    }
    for column, (_, plain) in opened.items():
        values[column] = sealer.seal(plain)
    if not has_bsn and 'name_encrypted' in opened:
        name = opened['name_encrypted'][1].decode()
        substitute = _recover_substitute(
            IdentityKeys(KeyRing(key)), identity_key, name, birth_date
        )
        if substitute is not None:
            values['substitute_encrypted'] = sealer.seal(substitute.encode())
    return values


def _recover_substitute(
    keys: IdentityKeys, identity_key: str, name: str, birth_date: date
) -> str | None:
    """Surname and sex were not kept before 0003, only digested: the stored name is the
    surname or "first names surname", so try each tail of its words with each sex."""
    words = name.split()
    for start in range(len(words)):
        for sex in SEXES:
            identity = YouthIdentity(birth_date, surname=' '.join(words[start:]), sex=sex)
            substitute = substitute_identity(identity)
            assert substitute is not None
            if keys.substitute_digest(substitute, birth_date) == identity_key:
                return substitute
    return None


def _unseal_to_legacy(connection: sa.engine.Connection) -> None:
    """Back to 0002's form: clear birth dates, values sealed without header under one key."""
    keyring = _keyring(connection)
    if keyring is None:
        return
    identity = Sealer(keyring, IDENTITY_PURPOSE, unreadable='')
    query = sa.select(
        youth.c.id, youth.c.key_id, youth.c.bsn_encrypted, youth.c.name_encrypted,
        youth.c.birth_date_encrypted,
    )
    for rows in _batches(connection, query, youth.c.id):
        for youth_id, key_id, bsn, name, born in rows:
            if key_id != keyring.current.id:
                raise RuntimeError(
                    'revision 0003 downgrade: run `verwijsindex keys rotate` first (before 0003 '
                    'there was one key)'
                )
            birth_date = date.fromisoformat(identity.open(born).decode())
            connection.execute(
                youth.update()
                .where(youth.c.id == youth_id)
                .values(
                    bsn_encrypted=_legacy(keyring, IDENTITY_PURPOSE, identity, bsn),
                    name_encrypted=_legacy(keyring, IDENTITY_PURPOSE, identity, name),
                    birth_date=birth_date,
                    purge_on=twenty_third_birthday(birth_date),
                )
            )
    mail = Sealer(keyring, INBOUND_MAIL_PURPOSE, unreadable='')
    query = sa.select(inbound.c.id, inbound.c.raw).where(inbound.c.raw != b'')
    for rows in _batches(connection, query, inbound.c.id):
        for message_id, raw in rows:
            connection.execute(
                inbound.update()
                .where(inbound.c.id == message_id)
                .values(raw=_legacy(keyring, INBOUND_MAIL_PURPOSE, mail, raw))
            )


def _legacy(keyring: KeyRing, purpose: bytes, sealer: Sealer, sealed: bytes | None) -> bytes | None:
    if sealed is None:
        return None
    if sealed_key_id(sealed) != keyring.current.id:
        raise RuntimeError('revision 0003 downgrade: run `verwijsindex keys rotate` first')
    nonce = os.urandom(LEGACY_NONCE)
    return nonce + AESGCM(keyring.current.derive(purpose)).encrypt(
        nonce, sealer.open(sealed), None
    )
