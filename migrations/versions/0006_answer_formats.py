"""answer formats: each phase names its format and may have settings; a response may carry a
format's own answer (a ranking); open-text answers with their moderation state

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("phase", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("answer", sa.String(length=16), nullable=False, server_default="option")
        )
        batch_op.add_column(sa.Column("settings", sa.JSON(), nullable=True))
    # Phases from before formats had names: a range made a 0-100 estimate.
    op.execute("UPDATE phase SET answer = 'number' WHERE min_value IS NOT NULL")
    with op.batch_alter_table("phase", schema=None) as batch_op:
        batch_op.alter_column("answer", server_default=None)
    with op.batch_alter_table("response", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payload", sa.JSON(), nullable=True))
    op.create_table(
        "text_answer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("phase_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("text", sa.String(length=800), nullable=False),
        sa.Column("norm", sa.String(length=800), nullable=False),
        sa.Column("state", sa.Enum("pending", "shown", "hidden", name="textstate"), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participant.id"],
            name=op.f("fk_text_answer_participant_id_participant"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["phase_id"], ["phase.id"], name=op.f("fk_text_answer_phase_id_phase")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["poll_session.id"],
            name=op.f("fk_text_answer_session_id_poll_session"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_text_answer")),
        sa.UniqueConstraint(
            "session_id", "phase_id", "participant_id", "slot", name="uq_text_answer_slot"
        ),
    )
    with op.batch_alter_table("text_answer", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_text_answer_participant_id"), ["participant_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_text_answer_phase_id"), ["phase_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_text_answer_session_id"), ["session_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("text_answer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_text_answer_session_id"))
        batch_op.drop_index(batch_op.f("ix_text_answer_phase_id"))
        batch_op.drop_index(batch_op.f("ix_text_answer_participant_id"))
    op.drop_table("text_answer")
    sa.Enum(name="textstate").drop(op.get_bind(), checkfirst=True)
    with op.batch_alter_table("response", schema=None) as batch_op:
        batch_op.drop_column("payload")
    with op.batch_alter_table("phase", schema=None) as batch_op:
        batch_op.drop_column("settings")
        batch_op.drop_column("answer")
