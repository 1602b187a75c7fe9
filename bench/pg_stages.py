"""The PostgreSQL stages of ``run.py``: a conference on one server, as ``beliefgap serve
--workers 2`` runs it, and two processes on one database.

One throwaway PostgreSQL server (``tests.pg.cluster``, fsync off: the figures are the app's, not
the disk's) for the whole part, or the one ``BELIEFGAP_TEST_POSTGRES_URL`` names; a fresh
database per stage (``tests.pg.fresh_database``):

1. ``pg_baseline`` and ``pg_votes``, on one ``beliefgap serve --workers 2`` (``python -m
   app.cli serve``: no access log, log level info): ``GET /healthz`` under wrk (64
   connections), the 2-worker baseline; then API votes from distinct phones under wrk, as a
   ratio to that baseline, and the rows stored (``SELECT count(*) FROM response``, once the
   server has stopped) against the votes acknowledged; with the CPU time of the server's
   processes, of the database's and of the rest of the machine (wrk) during each;
2. ``pg_cross``: two uvicorn processes (one worker each, ports of their own) on the same
   database; N event streams on process B, and one on process A; votes on process A, one at a
   time: from A's 200 until every stream on B has the update, until the first stream on B has
   it (the hop between processes, through LISTEN/NOTIFY), and until A's own stream has it;
3. ``conference``: S sessions of P phones at once on ``--workers 2``, through the page as in the
   room stage (``room.conference``); each session's presenter opens the question, all at the
   same moment unless ``stagger`` says otherwise.

``BELIEFGAP_BENCH_PROFILE=DIR`` in the bench's environment is passed on to the ``--workers``
servers: each worker writes the CPU profile of all its threads to DIR when it stops
(``app.logs.profile_threads``; ``python -m pstats DIR/profile-PID.prof``). It slows the servers
down about twice: take the stage's figures from a run without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _server
import room
from load import VOTE_LUA, close_streams, open_streams, percentile, vote, wrk
from phone import raise_fd_limit, run
from procs import machine_busy_seconds, parent, tree_cpu_seconds, workers

from app.logs import PROFILE_ENV
from tests import liveserver, pg

SERVE = (sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1")
SECRET_KEY = "bench-secret-key-0123456789abcdef"
WORKERS = 2
LOG_PROBLEMS = ("Traceback", "ERROR", "WARNING", "CRITICAL")


def missing() -> str | None:
    """Why the PostgreSQL stages cannot run here, or None."""
    if pg.server_url():
        return None
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[postgres]')"
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")) and not shutil.which("initdb"):
        return "PostgreSQL is not installed (no initdb; apt-get install postgresql)"
    return None


@contextlib.contextmanager
def server_url() -> Iterator[str]:
    """The PostgreSQL server for the whole part: ``BELIEFGAP_TEST_POSTGRES_URL`` when set, else
    a throwaway one."""
    url = pg.server_url()
    if url is not None:
        yield url
        return
    with pg.cluster() as started:
        yield started


def env_for(url: str) -> dict[str, str]:
    return {"BELIEFGAP_DATABASE_URL": url, "BELIEFGAP_SECRET_KEY": SECRET_KEY}


def start_workers(
    data_dir: Path, url: str, workers: int = WORKERS, env: dict[str, str] | None = None
) -> _server.Server:
    """``beliefgap serve --workers N`` on the database at ``url``; waits for its workers."""
    raise_fd_limit()  # the workers inherit it: two sockets per phone
    profiling = {PROFILE_ENV: os.environ[PROFILE_ENV]} if os.environ.get(PROFILE_ENV) else {}
    server = liveserver.start(
        data_dir,
        _server.ADMIN_TOKEN,
        env={**env_for(url), **profiling, **(env or {})},
        command=SERVE,
        args=("--workers", str(workers), "--no-access-log"),  # as the docstring above says
    )
    deadline = time.monotonic() + 30  # /healthz answers as soon as the first worker is up
    while server.output().count("Application startup complete") < workers:
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"{workers} workers did not start:\n{server.output()}")
        time.sleep(0.1)
    return server


def start_one(data_dir: Path, url: str) -> _server.Server:
    """One uvicorn worker (the bench's options: no access log, deep backlog) on ``url``."""
    raise_fd_limit()
    return _server.start(data_dir, extra_env={**env_for(url), **_server.COOKIELESS_STREAMS})


def count_rows(url: str, table: str = "response") -> int:
    import psycopg

    with psycopg.connect(pg._admin_url(url)) as connection:
        row = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def postmaster_pid(url: str) -> int | None:
    """The database server's main process, when it runs on this machine: the parent of the
    backend serving a connection of ours (read while that backend still runs)."""
    import psycopg

    with psycopg.connect(pg._admin_url(url)) as connection:
        row = connection.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        try:
            pid = parent(int(row[0]))
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            return None
    return pid if name in ("postgres", "postmaster") else None


def log_problems(*servers: _server.Server, limit: int = 10) -> dict[str, Any]:
    """Lines of the servers' logs that report a problem (the bench's servers log warnings and
    errors only, ``beliefgap serve`` logs at info without an access log)."""
    lines = [
        line
        for server in servers
        for line in server.output().splitlines()
        if any(word in line for word in LOG_PROBLEMS)
    ]
    return {"count": len(lines), "first": lines[:limit]}


class CpuMeter:
    """CPU seconds used by the server's processes, the database's and the rest of the machine
    (wrk, the client, anything else) from ``__init__`` to ``stop``."""

    def __init__(self, server: _server.Server, database_pid: int | None) -> None:
        self.pids = {"server": server.process.pid, "database": database_pid}
        self.started = time.perf_counter()
        self.before = {k: tree_cpu_seconds(p) if p else 0.0 for k, p in self.pids.items()}
        self.busy = machine_busy_seconds()

    def stop(self) -> dict[str, float]:
        used = {
            f"{k}_s": (tree_cpu_seconds(p) if p else 0.0) - self.before[k]
            for k, p in self.pids.items()
        }
        used["rest_of_machine_s"] = max(
            0.0, machine_busy_seconds() - self.busy - sum(used.values())
        )
        used["elapsed_s"] = time.perf_counter() - self.started
        return used


def workers_of(server: _server.Server) -> int:
    """The server's worker processes (uvicorn spawns them; a resource tracker runs beside)."""
    return len(workers(server.process.pid))


# --------------------------------------------------------------------------- the stages


def stage_workers(cluster: str, seconds: int) -> dict[str, dict[str, Any]]:
    """On one ``beliefgap serve --workers 2``: wrk on the bare ``/healthz`` (the 2-worker
    baseline), then wrk on the API votes; returns both, the votes with their ratio to it."""
    with pg.fresh_database(cluster) as url, tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        server = start_workers(Path(tmp), url, env=_server.MANY_NEW_PHONES)
        started_s = time.perf_counter() - began
        try:
            database = postmaster_pid(url)
            meter = CpuMeter(server, database)
            baseline = wrk(f"{server.url}/healthz", seconds, 64)
            baseline["cpu"] = meter.stop()
            baseline["workers"] = workers_of(server)
            baseline["workers_started_s"] = started_s
            code = _server.open_session(server)
            script = Path(tmp) / "vote.lua"
            script.write_text(VOTE_LUA)
            meter = CpuMeter(server, database)
            votes = wrk(f"{server.url}/api/v1/sessions/{code}/votes", seconds, 64, script)
            votes["cpu"] = meter.stop()
            votes["workers"] = workers_of(server)
            server.stop()  # let the last commits land before counting
            votes["acknowledged"] = votes["requests"] - votes["refused"]
            votes["stored"] = count_rows(url)
            votes["ratio_to_baseline"] = votes["rps"] / baseline["rps"]
            votes["log_problems"] = baseline["log_problems"] = log_problems(server)
            return {"pg_baseline": baseline, "pg_votes": votes}
        finally:
            server.stop()


async def _cross(url: str, tmp: Path, count: int, votes: int) -> dict[str, Any]:
    a = start_one(tmp / "a", url)
    try:
        b = start_one(tmp / "b", url)  # after A: A has migrated the database
        try:
            code = _server.open_session(a)
            # Reveal, so audience streams carry the results as they change.
            httpx.post(
                f"{a.url}/api/v1/sessions/{code}/phases/belief/reveal", headers=a.auth, timeout=10
            ).raise_for_status()
            await asyncio.sleep(0.5)
            streams, tasks = await open_streams(b.port, code, count)
            local, local_tasks = await open_streams(a.port, code, 1)
            await asyncio.sleep(1.0)
            every, first, own = [], [], []
            for _ in range(votes):
                for s in (*streams, *local):
                    s.changed.clear()
                acknowledged = await vote(a.port, code)
                await asyncio.wait_for(
                    asyncio.gather(*(s.changed.wait() for s in (*streams, *local))), timeout=30
                )
                arrivals = [s.last("results") for s in streams]
                every.append(max(arrivals) - acknowledged)
                first.append(min(arrivals) - acknowledged)
                own.append(local[0].last("results") - acknowledged)
                await asyncio.sleep(0.3)
            await close_streams([*streams, *local], [*tasks, *local_tasks])
        finally:
            b.stop()
    finally:
        a.stop()

    def figures(values: list[float]) -> dict[str, float]:
        return {
            "p50_ms": 1000 * statistics.median(values),
            "p99_ms": 1000 * percentile(values, 0.99),
            "max_ms": 1000 * max(values),
        }

    return {
        "streams": count,
        "votes": votes,
        "stored": count_rows(url),
        "all_on_b": figures(every),
        "first_on_b": figures(first),
        "own_on_a": figures(own),
        "log_problems": log_problems(a, b),
    }


def stage_cross(cluster: str, streams: int, votes: int) -> dict[str, Any]:
    with pg.fresh_database(cluster) as url, tempfile.TemporaryDirectory() as tmp:
        return run(_cross(url, Path(tmp), streams, votes))


def stage_conference(
    cluster: str,
    sessions: int,
    phones: int,
    *,
    wave: int,
    window: float,
    stagger: float,
    deadline: float = 30.0,
) -> dict[str, Any]:
    with pg.fresh_database(cluster) as url, tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        server = start_workers(Path(tmp), url, env=room.watching_stalls(Path(tmp)))
        started_s = time.perf_counter() - began
        try:
            workers = workers_of(server)
            result = run(
                room.conference(
                    server,
                    sessions,
                    phones,
                    wave=wave,
                    deadline=deadline,
                    window=window,
                    stagger=stagger,
                    database_pid=postmaster_pid(url),
                    stalls=Path(tmp),
                )
            )
            server.stop()  # let the last commits land before counting
            result["workers"] = workers
            result["workers_started_s"] = started_s
            result["stored"] = count_rows(url)
            result["log_problems"] = log_problems(server)
            return result
        finally:
            server.stop()
