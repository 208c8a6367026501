"""keyed audit chain: every logboek row and the head carry an HMAC and the id of its key

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 15:52:08.840004

The rows written before this revision are chained with plain SHA-256, which anyone with access
to the database can recompute. The upgrade checks that chain and, when it is intact, MACs every
row and the head with the region's current key (core.audit.key_unkeyed_chain): from then on
only the key can make a chain that verifies. That needs the key, so when the logboek has rows
the upgrade must be run by ``verwijsindex`` itself (``db upgrade``, or any command, which
upgrades first): ``upgrade_database(..., keyring=settings.keyring())`` hands it over. A chain
that is already broken is left unkeyed, so ``audit verify`` keeps reporting it.
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate may render sqlmodel's own column types)
from alembic import context, op

from core.audit import key_unkeyed_chain, unkey_chain
from core.keyring import KeyRing

# revision identifiers, used by Alembic.
revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("verwijsindex.migrations")


def _keyring_for_existing_rows() -> KeyRing | None:
    """The keyring passed by ``upgrade_database``; None when the logboek is empty (nothing to
    key); an error when it has rows and no key came along."""
    connection = op.get_bind()
    if connection.execute(sa.text("SELECT count(*) FROM auditevent")).scalar_one() == 0:
        return None
    keyring = context.config.attributes.get("keyring")
    if not isinstance(keyring, KeyRing):
        raise RuntimeError(
            "revision 0002 MACs the existing logboek and needs the secret key: run "
            "'verwijsindex db upgrade' with VERWIJSINDEX_SECRET_KEY set"
        )
    return keyring


def upgrade() -> None:
    with op.batch_alter_table('auditevent', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_id', sa.String(length=8), nullable=True))

    with op.batch_alter_table('audithead', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_id', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('mac', sa.String(length=64), nullable=True))

    keyring = _keyring_for_existing_rows()
    if keyring is not None:
        count, chain_break = key_unkeyed_chain(op.get_bind(), keyring)
        if chain_break is not None:
            log.warning(
                "logboek left unkeyed: its unkeyed chain breaks at event %d (%s)",
                chain_break.event_id,
                chain_break.reason,
            )
        else:
            log.info("logboek keyed: %d events MACed with key %s", count, keyring.current.id)


def downgrade() -> None:
    keyring = _keyring_for_existing_rows()
    if keyring is not None:
        _count, chain_break = unkey_chain(op.get_bind(), keyring)
        if chain_break is not None:
            raise RuntimeError(
                f"the logboek breaks at event {chain_break.event_id} ({chain_break.reason}): "
                "it cannot be written back as the unkeyed chain"
            )

    with op.batch_alter_table('audithead', schema=None) as batch_op:
        batch_op.drop_column('mac')
        batch_op.drop_column('key_id')

    with op.batch_alter_table('auditevent', schema=None) as batch_op:
        batch_op.drop_column('key_id')
