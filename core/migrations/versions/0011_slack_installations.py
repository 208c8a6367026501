"""Slack installations, OAuth states, link codes; Slack identities by workspace (issue 12)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 10:00:00

The app is distributable: one installation per workspace or Enterprise Grid org, kept here with
the OAuth ``state`` values of installs under way (hashed). A professional's Slack link becomes
``(enterprise_id, team_id, user_id)``: the workspace whose installation knows the user, so
delivery picks that installation's token. A Slack Connect user whose address Slack hides links
themselves with a one-time code mailed to their covenant address (only its hash is kept).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate may render sqlmodel's own column types)
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0011'
down_revision: str | Sequence[str] | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('slackinstallation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workspace_key', sa.String(length=90), nullable=False),
    sa.Column('enterprise_id', sa.String(length=40), nullable=True),
    sa.Column('team_id', sa.String(length=40), nullable=True),
    sa.Column('is_enterprise_install', sa.Boolean(), nullable=False),
    sa.Column('team_name', sa.String(length=200), nullable=True),
    sa.Column('app_id', sa.String(length=40), nullable=True),
    sa.Column('bot_id', sa.String(length=40), nullable=True),
    sa.Column('bot_user_id', sa.String(length=40), nullable=True),
    sa.Column('bot_token', sa.String(length=300), nullable=False),
    sa.Column('bot_scopes', sa.String(length=2000), nullable=False),
    sa.Column('installer_user_id', sa.String(length=40), nullable=True),
    sa.Column('installed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_slackinstallation')),
    sa.UniqueConstraint('workspace_key', name=op.f('uq_slackinstallation_workspace_key'))
    )
    op.create_table('slackoauthstate',
    sa.Column('state_hash', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('state_hash', name=op.f('pk_slackoauthstate'))
    )
    op.create_table('slacklinkcode',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('professional_id', sa.Integer(), nullable=False),
    sa.Column('enterprise_id', sa.String(length=40), nullable=True),
    sa.Column('team_id', sa.String(length=40), nullable=True),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('failed_attempts', sa.Integer(), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['professional_id'], ['professional.id'], name=op.f('fk_slacklinkcode_professional_id_professional')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_slacklinkcode')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_slacklinkcode_code_hash'))
    )
    with op.batch_alter_table('slacklinkcode', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_slacklinkcode_professional_id'), ['professional_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_slacklinkcode_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('professional', schema=None) as batch_op:
        batch_op.add_column(sa.Column('slack_enterprise_id', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('slack_team_id', sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f('ix_professional_slack_team_id'), ['slack_team_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('professional', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_professional_slack_team_id'))
        batch_op.drop_column('slack_team_id')
        batch_op.drop_column('slack_enterprise_id')

    with op.batch_alter_table('slacklinkcode', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_slacklinkcode_user_id'))
        batch_op.drop_index(batch_op.f('ix_slacklinkcode_professional_id'))

    op.drop_table('slacklinkcode')
    op.drop_table('slackoauthstate')
    op.drop_table('slackinstallation')
