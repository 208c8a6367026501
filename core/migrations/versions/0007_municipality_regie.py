"""the municipality's regie (issue 11.8)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 15:00:00

What a municipality's contact did with an escalation (REGIE, AANWIJZEN, AFGEROND) is one
``municipalityaction`` row each; a coordination the municipality took up has the new open
status ``municipality``, so the partial unique index of open coordinations (one per youth)
counts it too: autogenerate cannot see a changed WHERE clause, so the index is made anew here.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate may render sqlmodel's own column types)
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0007'
down_revision: str | Sequence[str] | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN_BEFORE = "status IN ('pending', 'accepted', 'unassigned')"
_OPEN_NOW = "status IN ('pending', 'accepted', 'unassigned', 'municipality')"


def upgrade() -> None:
    op.create_table('municipalityaction',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('municipality', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('coordination_id', sa.Integer(), nullable=True),
    sa.Column('match_id', sa.Integer(), nullable=True),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('institution_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['coordination_id'], ['coordination.id'], name=op.f('fk_municipalityaction_coordination_id_coordination'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], name=op.f('fk_municipalityaction_institution_id_institution')),
    sa.ForeignKeyConstraint(['match_id'], ['match.id'], name=op.f('fk_municipalityaction_match_id_match'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['municipality'], ['municipality.name'], name=op.f('fk_municipalityaction_municipality_municipality')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_municipalityaction')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('municipalityaction', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_municipalityaction_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_municipalityaction_coordination_id'), ['coordination_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_municipalityaction_match_id'), ['match_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_municipalityaction_municipality'), ['municipality'], unique=False)
    _open_coordination_index(_OPEN_BEFORE, _OPEN_NOW)


def downgrade() -> None:
    # A coordination the municipality had taken up waits for its decision again.
    op.execute("UPDATE coordination SET status = 'unassigned' WHERE status = 'municipality'")
    _open_coordination_index(_OPEN_NOW, _OPEN_BEFORE)
    with op.batch_alter_table('municipalityaction', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_municipalityaction_municipality'))
        batch_op.drop_index(batch_op.f('ix_municipalityaction_match_id'))
        batch_op.drop_index(batch_op.f('ix_municipalityaction_coordination_id'))
        batch_op.drop_index(batch_op.f('ix_municipalityaction_at'))

    op.drop_table('municipalityaction')


def _open_coordination_index(old: str, new: str) -> None:
    with op.batch_alter_table('coordination', schema=None) as batch_op:
        batch_op.drop_index('uq_coordination_open_youth', sqlite_where=sa.text(old), postgresql_where=sa.text(old))
        batch_op.create_index('uq_coordination_open_youth', ['youth_id'], unique=True, sqlite_where=sa.text(new), postgresql_where=sa.text(new))
