"""PostgreSQL for tests: a throwaway server, and a fresh database on it per test.

``python -m tests.pg run -- CMD ...`` starts a server of its own (initdb into a temporary
directory, as the ``postgres`` user when run as root, listening on 127.0.0.1 on a free port),
runs CMD with ``BELIEFGAP_TEST_POSTGRES_URL`` pointing at it, then stops the server and removes
its files, whatever CMD did. With ``BELIEFGAP_TEST_POSTGRES_URL`` already set it starts nothing
and runs CMD against that server. ``make test-postgres`` and ``.ci/run`` use it.

The URL names a role that may create databases (``CREATEDB``); each test gets a database of
its own, ``bg_test_<random>``, dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

URL_ENV = "BELIEFGAP_TEST_POSTGRES_URL"
"""The server for the ``postgres`` tests: ``postgresql://user[:password]@host:port/database``."""
DATABASE_ENV = "BELIEFGAP_TEST_DATABASE"
"""``postgres``: the ``settings`` fixture puts every test's app on a fresh PostgreSQL database."""
ROLE = "beliefgap"
START_TIMEOUT = 60.0


def server_url() -> str | None:
    return os.environ.get(URL_ENV) or None


def _admin_url(url: str) -> str:
    """psycopg's spelling of the URL (no SQLAlchemy driver suffix)."""
    scheme, rest = url.split("://", 1)
    return f"{scheme.partition('+')[0]}://{rest}"


def database_url(url: str, database: str) -> str:
    """The server URL with another database, in SQLAlchemy's spelling for psycopg 3."""
    parts = urlsplit(_admin_url(url))
    return urlunsplit(parts._replace(scheme="postgresql+psycopg", path=f"/{database}"))


@contextlib.contextmanager
def fresh_database(url: str) -> Iterator[str]:
    """A new empty database on the server at ``url``; yields its URL, drops it afterwards (even
    with connections still open to it)."""
    import psycopg
    from psycopg import sql

    name = f"bg_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_url(url), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield database_url(url, name)
    finally:
        with psycopg.connect(_admin_url(url), autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


# --------------------------------------------------------------------------- a server of its own


def _bindir() -> Path:
    """The newest installed PostgreSQL's programs (Debian keeps them off the PATH)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise SystemExit(
        "PostgreSQL is not installed (no initdb): apt-get install postgresql, "
        "or set BELIEFGAP_TEST_POSTGRES_URL to a server of your own"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_server_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: root runs it as ``postgres``."""
    if os.geteuid() != 0:
        return command
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--", *command]
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(command)]


@contextlib.contextmanager
def cluster() -> Iterator[str]:
    """A PostgreSQL server for the duration: yields its URL (role ``beliefgap``, CREATEDB)."""
    bindir = _bindir()
    root = Path(tempfile.mkdtemp(prefix="beliefgap-pg-"))
    data = root / "data"
    port = _free_port()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    log = root / "server.log"
    run = {"check": True, "stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}
    try:
        subprocess.run(
            _as_server_user(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
            ),
            **run,  # type: ignore[call-overload]
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c track_commit_timestamp=on"
        )
        subprocess.run(
            _as_server_user(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(log),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    str(int(START_TIMEOUT)),
                    "start",
                ]
            ),
            **run,  # type: ignore[call-overload]
        )
        admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        _wait_until_ready(admin)
        import psycopg

        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f"CREATE ROLE {ROLE} LOGIN CREATEDB")
            connection.execute(f"CREATE DATABASE {ROLE} OWNER {ROLE}")
        yield f"postgresql://{ROLE}@127.0.0.1:{port}/{ROLE}"
    except subprocess.CalledProcessError as exc:
        output = (exc.stderr or b"").decode(errors="replace")
        server_log = log.read_text(errors="replace") if log.exists() else ""
        raise SystemExit(f"PostgreSQL did not start:\n{output}\n{server_log}") from exc
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                _as_server_user(
                    [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
                ),
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        shutil.rmtree(root, ignore_errors=True)


def _wait_until_ready(url: str) -> None:
    import psycopg

    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2) as connection:
                connection.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "run" or argv[1] != "--" or len(argv) < 3:
        print("usage: python -m tests.pg run -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    command = argv[2:]
    if server_url():
        return subprocess.call(command)

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)  # leave through the cluster's cleanup

    signal.signal(signal.SIGTERM, stop)
    with cluster() as url:
        print(f"PostgreSQL for the tests: {url}", file=sys.stderr, flush=True)
        return subprocess.call(command, env={**os.environ, URL_ENV: url})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
