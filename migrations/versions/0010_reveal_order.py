"""reveal order: when each phase of a session was last revealed (the phones list the newest first)

Revision ID: 0010_reveal_order
Revises: 0008_session_tokens
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_reveal_order"
down_revision: str | None = "0008_session_tokens"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("session_phase", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revealed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("session_phase", schema=None) as batch_op:
        batch_op.drop_column("revealed_at")
