"""Engine, SQLite pragmas, migrations on start and the request-scoped database session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Annotated, Any

from alembic import command
from alembic.config import Config
from fastapi import Depends, Request
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, create_engine

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = ROOT / "migrations"

SQLITE_BUSY_TIMEOUT_MS = 5000

POSTGRES_POOL_SIZE = 5
POSTGRES_MAX_OVERFLOW = 5
"""Each app process holds at most 10 connections for requests, the vote writer and live renders,
plus 2 for live updates (``app.live.backends.postgres``): 12 per process, so PostgreSQL's default
``max_connections=100`` serves 8 processes (workers on every host together) with room for
psql and backups. More processes: raise ``max_connections`` or put PgBouncer in front (session
mode for the live-update connections)."""
MIGRATION_LOCK = 0x62656C6965  # "belie": one advisory lock key for this app's migrations
CONNECT_TIMEOUT = 10
"""Seconds to wait for PostgreSQL to accept a connection."""
STARTUP_LOCK = MIGRATION_LOCK + 1
"""Held around the whole start-up (migrations and talk files); another key than the migrations'
own lock, which a second connection takes inside it."""


def sqlalchemy_url(url: str) -> str:
    """The URL with the driver this app ships for its database: ``postgres://`` and
    ``postgresql://`` mean psycopg 3 (SQLAlchemy alone would look for psycopg2)."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() in ("postgres", "postgresql"):
        return f"postgresql+psycopg://{rest}"
    return url


def make_engine(url: str, *, synchronous: str = "NORMAL") -> Engine:
    """An engine for the URL; on SQLite with WAL, foreign keys, a busy timeout and the given
    ``synchronous`` level (NORMAL or FULL); on PostgreSQL (psycopg 3) with a pool sized for
    several processes on one server."""
    if synchronous not in ("NORMAL", "FULL"):
        raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
    url = sqlalchemy_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            create_private(Path(database))
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        event.listen(engine, "connect", partial(_sqlite_pragmas, synchronous))
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() == "psycopg":
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:
            raise RuntimeError(
                "PostgreSQL needs the psycopg driver: pip install 'beliefgap[postgres]'"
            ) from exc
    # A host that answers nothing (a network partition) must not hold start-up or a request
    # for the system's TCP timeout, about two minutes; a URL's own connect_timeout wins.
    connect_args = {} if "connect_timeout" in parsed.query else {"connect_timeout": CONNECT_TIMEOUT}
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=POSTGRES_POOL_SIZE,
        max_overflow=POSTGRES_MAX_OVERFLOW,
        connect_args=connect_args,
    )


def create_private(path: Path) -> None:
    """Create the SQLite file readable by its owner only (0600), unless it exists. SQLite gives
    its ``-wal`` and ``-shm`` files the database file's permissions, so they are private too.
    An existing file keeps the mode it has."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _sqlite_pragmas(synchronous: str, dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (results, live updates) proceed while a vote commits. synchronous=NORMAL
    # in WAL mode keeps every committed transaction across a process crash; only a power loss
    # can drop the last few commits (FULL prevents that; bench/run.py measures the cost).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would choke on a '%' in a password.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (creates the database when empty).

    On SQLite, foreign keys are off while the migrations run: batch mode rebuilds a table by
    copying it and dropping the old one, and with foreign keys on that drop would delete (or
    refuse to delete) the rows that refer to it. They are checked once the migrations are done
    (SQLite's own procedure for schema changes)."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:  # outside any transaction, where the pragma takes effect
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    # Processes starting together on one database migrate one after the other
                    # (the lock ends with the transaction; PostgreSQL's DDL is transactional).
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                    )
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise RuntimeError("a migration left rows whose foreign keys point nowhere")
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


@contextmanager
def startup_lock(engine: Engine) -> Iterator[None]:
    """Held while a process prepares the database (migrations, then the talk files): processes
    starting together on one PostgreSQL database take turns, so two workers never insert the
    same talk at once. Nothing to do on SQLite, which serves one process."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": STARTUP_LOCK})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": STARTUP_LOCK})
            connection.commit()


def get_db(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]
