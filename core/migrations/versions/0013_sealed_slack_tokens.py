"""Slack secrets sealed at rest: bot tokens, link codes in the outbox (issue 12)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 16:00:00

An installation's bot token was kept in clear (``slackinstallation.bot_token``): a copy of the
database gave a working token of every workspace. It is now sealed under the region's key
(``bot_token_sealed``, core.slack_installations) and the clear column is dropped. A link code
waiting in the outbox (kind ``slack-koppelcode``, ``context.code``) is sealed in its row
(core.outbox_secrets); one already sent or dead-lettered loses its code.

Existing installations and waiting codes need the region's key for this: ``verwijsindex db
upgrade`` and ``serve`` pass it (``alembic_config(keyring=...)``); without it the upgrade of a
database that holds any stops before changing anything.

The downgrade **unseals**: the tokens go back in clear, and so do the codes of waiting rows (a
sent row's code is gone for good). It needs the key too when there is anything to unseal.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate may render sqlmodel's own column types)
from alembic import context, op

from core.keyring import KeyRing
from core.outbox import SEALED_KEY
from core.outbox_secrets import opened_context, sealed_context
from core.slack_installations import token_sealer

# revision identifiers, used by Alembic.
revision: str = '0013'
down_revision: str | Sequence[str] | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KIND = 'slack-koppelcode'  # core.slack_codes.KIND
WAITING = ('pending', 'sending')  # core.models.OutboxStatus: not yet sent nor dead

installation = sa.table(
    'slackinstallation',
    sa.column('id', sa.Integer),
    sa.column('bot_token', sa.String),
    sa.column('bot_token_sealed', sa.LargeBinary),
)
outbox = sa.table(
    'outboxmessage',
    sa.column('id', sa.Integer),
    sa.column('kind', sa.String),
    sa.column('status', sa.String),
    sa.column('context', sa.JSON),
)


def upgrade() -> None:
    connection = op.get_bind()
    tokens = connection.execute(sa.select(installation.c.id, installation.c.bot_token)).all()
    codes = _code_rows(connection, 'code')
    keyring = _keyring(tokens or [row for row in codes if row.status in WAITING], 'seals')

    with op.batch_alter_table('slackinstallation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bot_token_sealed', sa.LargeBinary(), nullable=True))
    if tokens:
        assert keyring is not None
        sealer = token_sealer(keyring)
        for installation_id, token in tokens:
            connection.execute(
                installation.update()
                .where(installation.c.id == installation_id)
                .values(bot_token_sealed=sealer.seal(token.encode()))
            )
    with op.batch_alter_table('slackinstallation', schema=None) as batch_op:
        batch_op.alter_column('bot_token_sealed', existing_type=sa.LargeBinary(), nullable=False)
        batch_op.drop_column('bot_token')

    for row in codes:
        kept = {key: value for key, value in row.context.items() if key != 'code'}
        if row.status in WAITING:
            assert keyring is not None
            kept.update(sealed_context(keyring, {'code': row.context['code']}))
        _set_context(connection, row.id, kept)


def downgrade() -> None:
    connection = op.get_bind()
    tokens = connection.execute(
        sa.select(installation.c.id, installation.c.bot_token_sealed)
    ).all()
    codes = _code_rows(connection, SEALED_KEY)
    keyring = _keyring(tokens or codes, 'unseals')

    with op.batch_alter_table('slackinstallation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bot_token', sa.String(length=300), nullable=True))
    if tokens:
        assert keyring is not None
        sealer = token_sealer(keyring)
        for installation_id, sealed in tokens:
            connection.execute(
                installation.update()
                .where(installation.c.id == installation_id)
                .values(bot_token=sealer.open(bytes(sealed)).decode())
            )
    with op.batch_alter_table('slackinstallation', schema=None) as batch_op:
        batch_op.alter_column('bot_token', existing_type=sa.String(length=300), nullable=False)
        batch_op.drop_column('bot_token_sealed')

    for row in codes:
        assert keyring is not None
        _set_context(connection, row.id, opened_context(keyring, row.context))


# -- data ---------------------------------------------------------------------------------------


def _code_rows(connection: sa.engine.Connection, key: str) -> list[Any]:
    """The link-code mails whose context holds ``key``."""
    rows = connection.execute(
        sa.select(outbox.c.id, outbox.c.status, outbox.c.context).where(outbox.c.kind == KIND)
    ).all()
    return [row for row in rows if key in (row.context or {})]


def _set_context(connection: sa.engine.Connection, outbox_id: int, values: dict[str, Any]) -> None:
    connection.execute(outbox.update().where(outbox.c.id == outbox_id).values(context=values))


def _keyring(rows: Sequence[Any], does: str) -> KeyRing | None:
    if not rows:
        return None
    keyring = context.config.attributes.get('keyring')
    if not isinstance(keyring, KeyRing):
        raise RuntimeError(
            f"revision 0013 {does} the Slack bot tokens and link codes already stored and needs "
            "the region's key: run `verwijsindex db upgrade` (or `serve`) with "
            'VERWIJSINDEX_SECRET_KEY set'
        )
    return keyring
