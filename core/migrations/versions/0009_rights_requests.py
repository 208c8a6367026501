"""correction, deletion, objection requests (issue 11.11)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 15:00:00

A youth's or parent's request to correct, delete or object (AVG art. 16, 17, 21), as the region's
administrator records it: its kind, the requester's role (never an identity), the date received
and the 4-week deadline, and the decision. The link to the youth is cleared when the youth is
purged; the request itself stays, as the record that it was answered.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate may render sqlmodel's own column types)
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0009'
down_revision: str | Sequence[str] | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('rightsrequest',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('youth_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('requester_role', sa.String(length=30), nullable=False),
    sa.Column('received_on', sa.Date(), nullable=False),
    sa.Column('deadline_on', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome_note', sa.String(length=1000), nullable=True),
    sa.Column('changes', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['decided_by_id'], ['professional.id'], name=op.f('fk_rightsrequest_decided_by_id_professional')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['professional.id'], name=op.f('fk_rightsrequest_recorded_by_id_professional')),
    sa.ForeignKeyConstraint(['youth_id'], ['youth.id'], name=op.f('fk_rightsrequest_youth_id_youth'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rightsrequest')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('rightsrequest', schema=None) as batch_op:
        batch_op.create_index('ix_rightsrequest_status_deadline', ['status', 'deadline_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_rightsrequest_youth_id'), ['youth_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('rightsrequest', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rightsrequest_youth_id'))
        batch_op.drop_index('ix_rightsrequest_status_deadline')

    op.drop_table('rightsrequest')
