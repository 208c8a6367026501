"""one coordination per family: coordination members

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 12:45:00

A coordination now covers a family: the youth it started for and the siblings that joined it
(issue 11, "1 gezin, 1 plan, 1 procescoördinator"). Every existing coordination gets its own
youth as its one member; ended coordinations' members have left when the coordination ended.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate may render sqlmodel's own column types)
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('coordinationmember',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('coordination_id', sa.Integer(), nullable=False),
    sa.Column('youth_id', sa.Integer(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('joined_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('left_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['coordination_id'], ['coordination.id'], name=op.f('fk_coordinationmember_coordination_id_coordination'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['youth_id'], ['youth.id'], name=op.f('fk_coordinationmember_youth_id_youth'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coordinationmember'))
    )
    with op.batch_alter_table('coordinationmember', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coordinationmember_coordination_id'), ['coordination_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_coordinationmember_youth_id'), ['youth_id'], unique=False)
        batch_op.create_index('uq_coordination_member_open_youth', ['youth_id'], unique=True, sqlite_where=sa.text('left_at IS NULL'), postgresql_where=sa.text('left_at IS NULL'))
    # Data move: each coordination so far covered exactly its own youth.
    op.execute(
        "INSERT INTO coordinationmember (coordination_id, youth_id, reason, joined_at, left_at) "
        "SELECT id, youth_id, '', assigned_at, "
        "CASE WHEN status = 'ended' THEN COALESCE(ended_at, assigned_at) END FROM coordination"
    )


def downgrade() -> None:
    with op.batch_alter_table('coordinationmember', schema=None) as batch_op:
        batch_op.drop_index('uq_coordination_member_open_youth', sqlite_where=sa.text('left_at IS NULL'), postgresql_where=sa.text('left_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_coordinationmember_youth_id'))
        batch_op.drop_index(batch_op.f('ix_coordinationmember_coordination_id'))

    op.drop_table('coordinationmember')
