"""PostgreSQL for tests: a throwaway server, and a fresh database on it per test.

``python -m tests.pg run -- CMD ...`` starts a server of its own (initdb into a temporary
directory, in /dev/shm when it has room, as the ``postgres`` user when run as root, listening
on 127.0.0.1 on a free port),
runs CMD with ``BELIEFGAP_TEST_POSTGRES_URL`` pointing at it, then stops the server and removes
its files, whatever CMD did. With ``BELIEFGAP_TEST_POSTGRES_URL`` already set it starts nothing
and runs CMD against that server. ``make test-postgres`` and ``.ci/run`` use it.

The URL names a role that may create databases (``CREATEDB``); each test gets a database of
its own, ``bg_test_<random>``, dropped afterwards. A test that takes the server down and up
again (a database restart under a running app) starts a private one with
``restartable_cluster()``: a ``Cluster`` with ``stop()`` and ``start()``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
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
def fresh_database(url: str, template: str | None = None) -> Iterator[str]:
    """A new database on the server at ``url``, empty or a copy of the database ``template``;
    yields its URL, drops it afterwards (even with connections still open to it)."""
    import psycopg
    from psycopg import sql

    name = f"bg_test_{uuid.uuid4().hex[:12]}"
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        # A file copy: a migrated template is copied faster than the WAL-logged default.
        create += sql.SQL(" TEMPLATE {} STRATEGY FILE_COPY").format(sql.Identifier(template))
    with psycopg.connect(_admin_url(url), autocommit=True) as admin:
        admin.execute(create)
    try:
        yield database_url(url, name)
    finally:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        with psycopg.connect(_admin_url(url), autocommit=True) as admin:
            for attempt in range(40):
                try:
                    admin.execute(drop)
                    break
                except psycopg.errors.InsufficientPrivilege:
                    # a server process of another role (autovacuum, say) is at work in it
                    # for a moment: FORCE may not end it, so wait for it to finish
                    if attempt == 39:
                        raise
                    time.sleep(0.25)


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
    from tests.liveserver import free_port  # one claim on ports for all of a run's workers

    return free_port()


def _as_server_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: root runs it as ``postgres``."""
    if os.geteuid() != 0:
        return command
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--", *command]
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(command)]


@dataclass
class Cluster:
    """A throwaway PostgreSQL server of its own: ``restartable_cluster()`` makes one, running;
    ``stop()`` and ``start()`` take it down and up again on the same port and data (what a
    restart of the database does to the apps on it)."""

    bindir: Path
    root: Path
    port: int = field(default_factory=_free_port)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def url(self) -> str:
        """The URL of role ``beliefgap`` (CREATEDB) on database ``beliefgap``."""
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{ROLE}"

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def init(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )

    def start(self) -> None:
        """Start the server and wait until it takes connections."""
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c track_commit_timestamp=on"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            str(int(START_TIMEOUT)),
            "start",
        )
        _wait_until_ready(self.admin_url)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (what a restart does: sessions are ended, the server shuts
        down cleanly) or ``immediate`` (as a crash)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        if self.running:
            with contextlib.suppress(subprocess.CalledProcessError, RuntimeError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        try:
            subprocess.run(
                _as_server_user([str(self.bindir / program), *args]),
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        except subprocess.CalledProcessError as exc:
            output = (exc.stderr or b"").decode(errors="replace")
            server_log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"{program} failed:\n{output}\n{server_log}") from exc


SHARED_MEMORY = Path("/dev/shm")
SHARED_MEMORY_ROOM = 2 * 2**30
"""Free bytes /dev/shm must have to hold a throwaway server (its WAL alone may reach 1 GiB)."""


def _cluster_parent() -> str | None:
    """Where a throwaway server keeps its files: in memory (/dev/shm) when there is room, as
    they need not outlive it, else the temporary directory. On a disk, creating and dropping
    a database (once per test) costs a third of a second of file operations; in memory, 15 ms."""
    try:
        roomy = shutil.disk_usage(SHARED_MEMORY).free >= SHARED_MEMORY_ROOM
    except OSError:  # no /dev/shm here
        return None
    return str(SHARED_MEMORY) if roomy and os.access(SHARED_MEMORY, os.W_OK | os.X_OK) else None


@contextlib.contextmanager
def restartable_cluster() -> Iterator[Cluster]:
    """A PostgreSQL server of its own for the duration, running, with role ``beliefgap``
    (CREATEDB) and its database; removed afterwards, whatever happened."""
    root = Path(tempfile.mkdtemp(prefix="beliefgap-pg-", dir=_cluster_parent()))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    server = Cluster(bindir=_bindir(), root=root)
    try:
        server.init()
        server.start()
        import psycopg

        with psycopg.connect(server.admin_url, autocommit=True) as connection:
            connection.execute(f"CREATE ROLE {ROLE} LOGIN CREATEDB")
            connection.execute(f"CREATE DATABASE {ROLE} OWNER {ROLE}")
        yield server
    finally:
        server.remove()


@contextlib.contextmanager
def cluster() -> Iterator[str]:
    """A PostgreSQL server for the duration: yields its URL (role ``beliefgap``, CREATEDB)."""
    started = False
    try:
        with restartable_cluster() as server:
            started = True
            yield server.url
    except RuntimeError as exc:
        if started:
            raise
        raise SystemExit(f"PostgreSQL did not start:\n{exc}") from exc


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
