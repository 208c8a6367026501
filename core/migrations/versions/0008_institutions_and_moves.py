"""institutions that leave, youths that move (issue 11.4/11.5)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 15:00:00

A youth who moves outside the covenant keeps its last covenant municipality (whose contact keeps
regie) and records where it went; a move within the covenant may propose another coordinator,
who takes over only once it accepts (coordinationsuccession). An institution that leaves is the
existing ``institution.active``: no schema change.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate may render sqlmodel's own column types)
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0008'
down_revision: str | Sequence[str] | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('youth', schema=None) as batch_op:
        batch_op.add_column(sa.Column('moved_out_to', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
        batch_op.add_column(sa.Column('moved_out_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table('coordinationsuccession',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('coordination_id', sa.Integer(), nullable=False),
    sa.Column('from_institution_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('institution_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('rule_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('rule_reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('occasion', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('proposed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answered_by', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.ForeignKeyConstraint(['coordination_id'], ['coordination.id'], name=op.f('fk_coordinationsuccession_coordination_id_coordination'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['from_institution_id'], ['institution.id'], name=op.f('fk_coordinationsuccession_from_institution_id_institution')),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], name=op.f('fk_coordinationsuccession_institution_id_institution')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coordinationsuccession'))
    )
    with op.batch_alter_table('coordinationsuccession', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coordinationsuccession_coordination_id'), ['coordination_id'], unique=False)
        batch_op.create_index('uq_succession_open_coordination', ['coordination_id'], unique=True, sqlite_where=sa.text("status = 'proposed'"), postgresql_where=sa.text("status = 'proposed'"))


def downgrade() -> None:
    with op.batch_alter_table('coordinationsuccession', schema=None) as batch_op:
        batch_op.drop_index('uq_succession_open_coordination', sqlite_where=sa.text("status = 'proposed'"), postgresql_where=sa.text("status = 'proposed'"))
        batch_op.drop_index(batch_op.f('ix_coordinationsuccession_coordination_id'))

    op.drop_table('coordinationsuccession')
    with op.batch_alter_table('youth', schema=None) as batch_op:
        batch_op.drop_column('moved_out_at')
        batch_op.drop_column('moved_out_to')
