"""talk versions: every edit of a talk makes a new version; a session keeps its own

Existing talks become version 1, built from their rows as they are today, and every existing
session is attached to it (its phases and answers already point at those rows).

Revision ID: 0004
Revises: 0001
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _content(conn: sa.Connection, talk: Any) -> dict[str, Any]:
    """The talk's definition in the talk file format's structure, from its live rows (the same
    shape ``app.talks.talk_to_dict`` writes)."""
    phases = conn.execute(
        sa.text(
            "SELECT id, key, kind, questions, of_key, holds, min_value, max_value FROM phase "
            "WHERE talk_id = :talk AND NOT retired ORDER BY position"
        ),
        {"talk": talk.id},
    ).all()
    out = []
    for phase in phases:
        entry: dict[str, Any] = {
            "id": phase.key,
            "kind": phase.kind,
            "question": _json(phase.questions),
        }
        if phase.of_key is not None:
            entry["of"] = phase.of_key
        if phase.kind == "stance":
            entry["holds"] = _json(phase.holds)
        if phase.min_value is not None:
            entry["range"] = [_number(phase.min_value), _number(phase.max_value)]
        else:
            options = conn.execute(
                sa.text(
                    "SELECT key, labels FROM phase_option WHERE phase_id = :phase AND NOT retired "
                    "ORDER BY position"
                ),
                {"phase": phase.id},
            ).all()
            entry["options"] = [{"id": o.key, "label": _json(o.labels)} for o in options]
        out.append(entry)
    return {
        "slug": talk.slug,
        "languages": _json(talk.languages),
        "title": _json(talk.titles),
        "phases": out,
    }


def _json(value: Any) -> Any:
    import json

    return json.loads(value) if isinstance(value, str) else value


def upgrade() -> None:
    op.create_table(
        "talk_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("talk_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["talk_id"], ["talk.id"], name=op.f("fk_talk_version_talk_id_talk"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_talk_version")),
        sa.UniqueConstraint("talk_id", "number", name="uq_talk_version_number"),
    )
    with op.batch_alter_table("talk_version", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_talk_version_talk_id"), ["talk_id"], unique=False)
    with op.batch_alter_table("talk", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("phase", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("poll_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version_id", sa.Integer(), nullable=True))

    conn = op.get_bind()
    versions = sa.table(
        "talk_version",
        sa.column("talk_id", sa.Integer()),
        sa.column("number", sa.Integer()),
        sa.column("content", sa.JSON()),
        sa.column("digest", sa.String()),
        sa.column("source", sa.String()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    for talk in conn.execute(
        sa.text("SELECT id, slug, titles, languages, source, digest FROM talk")
    ).all():
        conn.execute(
            versions.insert().values(
                talk_id=talk.id,
                number=1,
                content=_content(conn, talk),
                digest=talk.digest,
                source=talk.source,
                created_at=now,
            )
        )
        version_id = conn.execute(
            sa.text("SELECT id FROM talk_version WHERE talk_id = :talk AND number = 1"),
            {"talk": talk.id},
        ).scalar_one()
        for table in ("phase", "poll_session"):
            conn.execute(
                sa.text(f"UPDATE {table} SET version_id = :version WHERE talk_id = :talk"),  # noqa: S608
                {"version": version_id, "talk": talk.id},
            )

    with op.batch_alter_table("phase", schema=None) as batch_op:
        batch_op.alter_column("version_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_constraint("uq_phase_talk_key", type_="unique")
        batch_op.create_unique_constraint("uq_phase_version_key", ["version_id", "key"])
        batch_op.create_index(batch_op.f("ix_phase_version_id"), ["version_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_phase_version_id_talk_version"),
            "talk_version",
            ["version_id"],
            ["id"],
            ondelete="CASCADE",
        )
    with op.batch_alter_table("poll_session", schema=None) as batch_op:
        batch_op.alter_column("version_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_index(
            batch_op.f("ix_poll_session_version_id"), ["version_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_poll_session_version_id_talk_version"),
            "talk_version",
            ["version_id"],
            ["id"],
        )


def downgrade() -> None:
    """Back to one set of rows per talk: only version 1 can stay (later versions' phases would
    clash on the talk's phase ids), so this refuses when a talk has more than one version."""
    conn = op.get_bind()
    if conn.execute(sa.text("SELECT count(*) FROM talk_version WHERE number > 1")).scalar_one():
        raise RuntimeError("cannot downgrade: some talks have more than one version")
    with op.batch_alter_table("poll_session", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_poll_session_version_id_talk_version"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_poll_session_version_id"))
        batch_op.drop_column("version_id")
    with op.batch_alter_table("phase", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_phase_version_id_talk_version"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_phase_version_id"))
        batch_op.drop_constraint("uq_phase_version_key", type_="unique")
        batch_op.create_unique_constraint("uq_phase_talk_key", ["talk_id", "key"])
        batch_op.drop_column("version_id")
    with op.batch_alter_table("talk", schema=None) as batch_op:
        batch_op.drop_column("version")
    with op.batch_alter_table("talk_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_talk_version_talk_id"))
    op.drop_table("talk_version")
