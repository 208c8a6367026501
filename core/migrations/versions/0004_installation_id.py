"""this installation's random id

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 17:15:00

One row with an id drawn now, so notification Message-IDs of this database differ from those of
any other database on the same mail domain, even one that shares the secret key (a test copy, a
second region's trial) — RFC 5322 §3.6.4: a Message-ID is never issued twice.
"""

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate may render sqlmodel's own column types)
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    installation = op.create_table(
        'installation',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('installation_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_installation')),
    )
    op.bulk_insert(
        installation,
        [{'id': 1, 'installation_id': secrets.token_hex(16), 'created_at': datetime.now(UTC)}],
    )


def downgrade() -> None:
    op.drop_table('installation')
