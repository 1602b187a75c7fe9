"""session lifecycle: rehearsal sessions and ended sessions

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("poll_session", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("rehearsal", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True))
    # The default was only for the rows already there; the app always writes the column.
    with op.batch_alter_table("poll_session", schema=None) as batch_op:
        batch_op.alter_column("rehearsal", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("poll_session", schema=None) as batch_op:
        batch_op.drop_column("ended_at")
        batch_op.drop_column("rehearsal")
