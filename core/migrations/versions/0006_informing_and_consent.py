"""informing and consent (issue 11.6/11.7)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 15:00:00

Informing (Jeugdwet 7.1.5): when "ja" was recorded, and the one reminder to a reporter who had
not yet informed. Signals placed informed get their placing time as the moment (the figures
count informed signals). Consent after a match: one current status per match and institution.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate may render sqlmodel's own column types)
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0006'
down_revision: str | Sequence[str] | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INFORMING_PENDING = "status = 'active' AND informed <> 'ja' AND informing_reminded_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table('signal', schema=None) as batch_op:
        batch_op.add_column(sa.Column('informed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('informing_reminded_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_signal_informing_pending', ['placed_at'], unique=False, sqlite_where=sa.text(INFORMING_PENDING), postgresql_where=sa.text(INFORMING_PENDING))
    op.execute("UPDATE signal SET informed_at = placed_at WHERE informed = 'ja'")
    op.create_table('matchconsent',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('match_id', sa.Integer(), nullable=False),
    sa.Column('institution_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by_professional_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], name=op.f('fk_matchconsent_institution_id_institution')),
    sa.ForeignKeyConstraint(['match_id'], ['match.id'], name=op.f('fk_matchconsent_match_id_match'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['recorded_by_professional_id'], ['professional.id'], name=op.f('fk_matchconsent_recorded_by_professional_id_professional'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_matchconsent')),
    sa.UniqueConstraint('match_id', 'institution_id', name=op.f('uq_matchconsent_match_id'))
    )
    with op.batch_alter_table('matchconsent', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_matchconsent_match_id'), ['match_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('matchconsent', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_matchconsent_match_id'))

    op.drop_table('matchconsent')
    with op.batch_alter_table('signal', schema=None) as batch_op:
        batch_op.drop_index('ix_signal_informing_pending', sqlite_where=sa.text(INFORMING_PENDING), postgresql_where=sa.text(INFORMING_PENDING))
        batch_op.drop_column('informing_reminded_at')
        batch_op.drop_column('informed_at')
