"""Slack threads and answered messages (issue 12.4)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 15:40:03

Follow-ups about a subject (a coordination, a match, a signal) go in the thread of the first
Slack message to that recipient: its channel and ts are kept per (recipient, subject), with the
answer that replaces the buttons of the thread's messages once the subject is answered.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate may render sqlmodel's own column types)
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0012'
down_revision: str | Sequence[str] | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('slackthread',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recipient', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.String(length=100), nullable=False),
    sa.Column('channel', sa.String(length=40), nullable=False),
    sa.Column('ts', sa.String(length=40), nullable=False),
    sa.Column('enterprise_id', sa.String(length=40), nullable=True),
    sa.Column('team_id', sa.String(length=40), nullable=True),
    sa.Column('professional_id', sa.Integer(), nullable=True),
    sa.Column('institution_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answer', sa.JSON(), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_through', sa.Integer(), nullable=False),
    sa.Column('update_due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('update_attempts', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_slackthread')),
    sa.UniqueConstraint('recipient', 'subject', name=op.f('uq_slackthread_recipient'))
    )
    with op.batch_alter_table('slackthread', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_slackthread_subject'), ['subject'], unique=False)
        batch_op.create_index(batch_op.f('ix_slackthread_update_due_at'), ['update_due_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('slackthread', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_slackthread_update_due_at'))
        batch_op.drop_index(batch_op.f('ix_slackthread_subject'))

    op.drop_table('slackthread')
