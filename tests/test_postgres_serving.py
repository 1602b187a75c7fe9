"""Serving a conference on PostgreSQL: ``beliefgap serve --workers 2`` behaves as one app and
stops promptly with streams open, and a rolling restart (start the new process, stop the old)
loses no acknowledged vote."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx2 as httpx
import psycopg
import pytest

from app.live.backends.postgres import libpq_url
from tests import liveserver, pg
from tests.conftest import ADMIN_TOKEN, SECRET_KEY
from tests.liveserver import LiveServer
from tests.test_postgres import until
from tests.test_stream import sse_events

pytestmark = pytest.mark.postgres

DEADLINE = 10.0
SERVE = (sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1")


@pytest.fixture
def database(postgres_server: str) -> Iterator[str]:
    with pg.fresh_database(postgres_server) as url:
        yield url


def env_for(url: str) -> dict[str, str]:
    return {"BELIEFGAP_DATABASE_URL": url, "BELIEFGAP_SECRET_KEY": SECRET_KEY}


def new_session(server: LiveServer) -> str:
    response = httpx.post(
        f"{server.url}/api/v1/sessions",
        json={"talk": "emergence", "venue": "Vienna"},
        headers=server.auth,
        timeout=DEADLINE,
    )
    response.raise_for_status()
    return str(response.json()["code"])


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_two_workers_serve_as_one_app_and_stop_promptly(database: str, tmp_path: Path) -> None:
    server = liveserver.start(
        tmp_path, ADMIN_TOKEN, env=env_for(database), command=SERVE, args=("--workers", "2")
    )
    try:
        workers = children(server.process.pid)
        assert len(workers) >= 2, f"expected two worker processes, saw {workers}"
        code = new_session(server)
        url = f"{server.url}/api/v1/sessions/{code}/events"
        with ExitStack() as stack:
            # Several phones, spread by the kernel over both workers' accept queues.
            phones = [
                sse_events(
                    stack.enter_context(
                        httpx.stream("GET", url, params={"view": "phone"}, timeout=DEADLINE)
                    )
                )
                for _ in range(8)
            ]
            for events in phones:
                until(events, "panel")
            httpx.post(
                f"{server.url}/api/v1/sessions/{code}/phases/belief/open",
                headers=server.auth,
                timeout=DEADLINE,
            ).raise_for_status()
            for events in phones:  # whichever worker took the presenter's request
                until(events, "panel", r'data-open="belief@"')

            started = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            try:
                server.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pytest.fail("two workers were still running 10 s after SIGTERM, streams open")
            took = time.monotonic() - started
        output = server.output()
        assert took < 4.0, f"stopping two workers took {took:.1f} s"
        assert "Traceback" not in output, output
        assert output.count("Application shutdown complete") == 2
        # Each worker started once: none was taken for hung while it loaded the app, killed
        # and replaced by the supervisor (spawned workers were, on a busy machine).
        assert output.count("Application startup complete") == 2, output
        assert "died" not in output, output
    finally:
        server.stop()


def test_a_rolling_restart_loses_no_acknowledged_vote(database: str, tmp_path: Path) -> None:
    """Phones keep voting while a new process starts and the old one stops; a phone whose vote
    was not acknowledged sends it again to whichever process answers."""
    old = liveserver.start(tmp_path / "old", ADMIN_TOKEN, env=env_for(database))
    new: LiveServer | None = None
    acknowledged: list[str] = []
    stop = threading.Event()
    code = new_session(old)
    httpx.post(
        f"{old.url}/api/v1/sessions/{code}/phases/belief/open", headers=old.auth, timeout=DEADLINE
    ).raise_for_status()
    servers = [old]

    def phones() -> None:
        while not stop.is_set():
            for attempt in range(50):
                target = servers[-1] if attempt else servers[0]
                try:
                    response = httpx.post(
                        f"{target.url}/api/v1/sessions/{code}/votes",
                        json={"phase": "belief", "choice": "agree"},
                        timeout=DEADLINE,
                    )
                except httpx.TransportError:
                    response = None
                if response is not None and response.status_code == 200:
                    acknowledged.append(response.json()["participant"])
                    break
                assert response is None or response.status_code == 503, response.text
                time.sleep(0.05)

    threads = [threading.Thread(target=phones) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        new = liveserver.start(tmp_path / "new", ADMIN_TOKEN, env=env_for(database))
        servers.append(new)
        time.sleep(0.5)
        old.process.send_signal(signal.SIGTERM)
        old.process.wait(timeout=10)
        servers[0] = new  # phones that come back find the new process
        time.sleep(1.0)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        results = httpx.get(
            f"{new.url}/api/v1/sessions/{code}/results", headers=new.auth, timeout=DEADLINE
        ).json()
        assert len(acknowledged) > 50
        assert results["phases"]["belief"]["n"] == len(set(acknowledged))
        assert len(set(acknowledged)) == len(acknowledged)  # each 200 a new phone
        assert "Traceback" not in old.output()
    finally:
        stop.set()
        old.stop()
        if new is not None:
            new.stop()


def test_processes_starting_together_on_an_empty_database_all_start(
    database: str, tmp_path: Path
) -> None:
    """Workers of a fresh deployment start at the same instant: they migrate and load the talk
    files in turn, and the talks exist once."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BELIEFGAP_")}
    env.update(env_for(database), PYTHONPATH=str(liveserver.ROOT))
    starts = [
        subprocess.Popen(
            [sys.executable, "-c", "from app.main import create_app; create_app()"],
            cwd=tmp_path,
            env={**env, "BELIEFGAP_DATA_DIR": str(tmp_path / str(n))},
            stderr=subprocess.PIPE,
        )
        for n in range(4)
    ]
    failures = [p.communicate(timeout=120)[1].decode() for p in starts]
    assert [p.returncode for p in starts] == [0, 0, 0, 0], "\n".join(failures)
    with psycopg.connect(libpq_url(database)) as connection:
        slugs = [row[0] for row in connection.execute("SELECT slug FROM talk ORDER BY slug")]
    assert slugs == ["emergence", "emergence-scale"]
