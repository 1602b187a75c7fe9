"""unlinked sessions (published totals) and the per-session small-cell threshold

A session can hold published counts instead of phones' answers: a flag and a source on
poll_session, its totals per option per phase, and the revote transitions that were published.
Every session gets its own small-cell threshold (5, the earlier fixed value, for the sessions
already there).

Revision ID: 0007_unlinked_sessions
Revises: 0009_predictions_publication
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007_unlinked_sessions"
down_revision: str | None = "0009_predictions_publication"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("poll_session", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("unlinked", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column(
                "source",
                sqlmodel.sql.sqltypes.AutoString(length=500),
                nullable=False,
                server_default="",
            )
        )
        batch_op.add_column(
            sa.Column("min_cell", sa.Integer(), nullable=False, server_default=sa.text("5"))
        )
    # The defaults were only for the rows already there; the app always writes the columns.
    with op.batch_alter_table("poll_session", schema=None) as batch_op:
        batch_op.alter_column("unlinked", server_default=None)
        batch_op.alter_column("source", server_default=None)
        batch_op.alter_column("min_cell", server_default=None)
    op.create_table(
        "session_total",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("phase_id", sa.Integer(), nullable=False),
        sa.Column("option_id", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["poll_session.id"],
            name=op.f("fk_session_total_session_id_poll_session"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["phase_id"], ["phase.id"], name=op.f("fk_session_total_phase_id_phase")
        ),
        sa.ForeignKeyConstraint(
            ["option_id"],
            ["phase_option.id"],
            name=op.f("fk_session_total_option_id_phase_option"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_total")),
        sa.UniqueConstraint("session_id", "phase_id", "option_id", name="uq_session_total_once"),
    )
    with op.batch_alter_table("session_total", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_session_total_session_id"), ["session_id"], unique=False
        )
    op.create_table(
        "session_transition",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("phase_id", sa.Integer(), nullable=False),
        sa.Column("from_option_id", sa.Integer(), nullable=False),
        sa.Column("to_option_id", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["poll_session.id"],
            name=op.f("fk_session_transition_session_id_poll_session"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["phase_id"], ["phase.id"], name=op.f("fk_session_transition_phase_id_phase")
        ),
        sa.ForeignKeyConstraint(
            ["from_option_id"],
            ["phase_option.id"],
            name=op.f("fk_session_transition_from_option_id_phase_option"),
        ),
        sa.ForeignKeyConstraint(
            ["to_option_id"],
            ["phase_option.id"],
            name=op.f("fk_session_transition_to_option_id_phase_option"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_transition")),
        sa.UniqueConstraint(
            "session_id",
            "phase_id",
            "from_option_id",
            "to_option_id",
            name="uq_session_transition",
        ),
    )
    with op.batch_alter_table("session_transition", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_session_transition_session_id"), ["session_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("session_transition", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_transition_session_id"))
    op.drop_table("session_transition")
    with op.batch_alter_table("session_total", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_total_session_id"))
    op.drop_table("session_total")
    with op.batch_alter_table("poll_session", schema=None) as batch_op:
        batch_op.drop_column("min_cell")
        batch_op.drop_column("source")
        batch_op.drop_column("unlinked")
