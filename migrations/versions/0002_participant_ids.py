"""participant public ids

Each participant gets a random public id, unique within its session, that exports and vote
answers show instead of the row id (a sequence over every session, which tells join order).
Rows that exist get one each.

Revision ID: 0002
Revises: 0005
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("public_id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )
    bind = op.get_bind()
    participant = sa.table("participant", sa.column("id", sa.Integer), sa.column("public_id"))
    ids = bind.execute(sa.select(participant.c.id)).scalars().all()
    # Unique over the whole table, so unique within each session too.
    fresh: set[str] = set()
    while len(fresh) < len(ids):
        fresh.add(secrets.token_hex(6))
    for row_id, public_id in zip(ids, fresh, strict=True):
        bind.execute(
            participant.update().where(participant.c.id == row_id).values(public_id=public_id)
        )
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.alter_column(
            "public_id", existing_type=sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False
        )
        batch_op.create_unique_constraint("uq_participant_public_id", ["session_id", "public_id"])


def downgrade() -> None:
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.drop_constraint("uq_participant_public_id", type_="unique")
        batch_op.drop_column("public_id")
