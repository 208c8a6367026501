"""indexes for reply tokens by subject and by the message carrying them

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 19:13:02

The App Home asks, for each item, for its subject's reply tokens and whether a Slack message
carries one; on a region's outbox of many thousands of rows both were full scans.
"""

from collections.abc import Sequence

import sqlmodel  # noqa: F401  (autogenerate may render sqlmodel's own column types)
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outboxmessage", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_outboxmessage_reply_token"), ["reply_token"], unique=False
        )

    with op.batch_alter_table("replytoken", schema=None) as batch_op:
        batch_op.create_index("ix_replytoken_subject", ["purpose", "subject_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("replytoken", schema=None) as batch_op:
        batch_op.drop_index("ix_replytoken_subject")

    with op.batch_alter_table("outboxmessage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outboxmessage_reply_token"))
