from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, select

from app.db import alembic_config, make_engine, migrate
from app.models import Participant, Phase, Response, SessionPhase
from app.sessions import create_session
from app.talkfile import discover_talks
from app.talks import sync_talks


@pytest.fixture
def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'test.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


def test_migrations_from_empty_create_every_table_and_match_the_models(engine) -> None:  # type: ignore[no-untyped-def]
    tables = set(inspect(engine).get_table_names())
    assert {
        "talk",
        "phase",
        "phase_option",
        "poll_session",
        "session_phase",
        "participant",
        "response",
        "presenter_login",
        "alembic_version",
    } <= tables
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == []


def test_migrating_twice_is_harmless(engine) -> None:  # type: ignore[no-untyped-def]
    migrate(engine)
    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == head


def test_the_database_files_are_private(tmp_path: Path) -> None:
    """The SQLite file and its -wal and -shm files: readable and writable by the owner only,
    whatever the umask lets other files be."""
    path = tmp_path / "data" / "private.db"
    old = os.umask(0o022)
    try:
        engine = make_engine(f"sqlite:///{path}")
        migrate(engine)
        with engine.connect() as connection:  # WAL mode: -wal and -shm exist while it is open
            connection.execute(text("SELECT 1 FROM talk")).all()
            files = [path, path.with_name("private.db-wal"), path.with_name("private.db-shm")]
            assert all(f.exists() for f in files)
            assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in files} == {
                f.name: 0o600 for f in files
            }
        engine.dispose()
    finally:
        os.umask(old)


def test_sqlite_runs_in_wal_with_foreign_keys(engine) -> None:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 5000


def test_the_database_refuses_a_second_answer_for_the_same_person_and_phase(engine) -> None:  # type: ignore[no-untyped-def]
    with Session(engine) as db:
        sync_talks(db, discover_talks())
        poll = create_session(db, talk_slug="emergence", venue="Cardiff")
        participant = Participant(session_id=poll.id or 0, token="t1")
        db.add(participant)
        db.commit()
        phase = db.exec(select(Phase).where(Phase.key == "belief")).first()
        assert phase is not None and phase.id is not None
        first = Response(
            session_id=poll.id or 0, phase_id=phase.id, participant_id=participant.id or 0
        )
        db.add(first)
        db.commit()
        db.add(
            Response(session_id=poll.id or 0, phase_id=phase.id, participant_id=participant.id or 0)
        )
        with pytest.raises(IntegrityError, match="UNIQUE"):
            db.commit()
        db.rollback()
        assert len(db.exec(select(Response)).all()) == 1


def test_a_session_gets_every_phase_of_its_talk_in_order(engine) -> None:  # type: ignore[no-untyped-def]
    with Session(engine) as db:
        sync_talks(db, discover_talks())
        poll = create_session(db, talk_slug="emergence-scale", venue="Milan")
        rows = db.exec(
            select(SessionPhase, Phase)
            .join(Phase)
            .where(SessionPhase.session_id == poll.id)
            .order_by(SessionPhase.position)
        ).all()  # type: ignore[arg-type]
        assert [phase.key for _, phase in rows] == ["definition", "belief", "field_pct", "revote"]
        assert {state.state for state, _ in rows} == {"pending"}
