"""The app under uvicorn for benchmarks: the tests' live server, tuned for load (no access
log, a deep accept backlog), plus a session with its first question open."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx2 as httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.logs import PROFILE_ENV  # noqa: E402
from tests.liveserver import LiveServer as Server  # noqa: E402
from tests.liveserver import start as _start  # noqa: E402

ADMIN_TOKEN = "bench-admin-token-0123456789"
BENCH_ARGS = ("--no-access-log", "--log-level", "warning", "--backlog", "4096")

MANY_NEW_PHONES = {"BELIEFGAP_LIMIT_NEW_PARTICIPANT_BURST": "0"}
"""For stages whose load generator plays tens of thousands of new phones from one address (wrk
keeps no cookies, the kill test's burst makes a new phone per vote): the limit on new
participants per address refuses them past a hall's worth, so these stages turn it off. Every
other stage, the room first of all, runs with the app's defaults."""

COOKIELESS_STREAMS = {"BELIEFGAP_LIMIT_COOKIELESS_STREAMS_PER_ADDRESS": "0"}
"""For stages that open thousands of event streams without a participant cookie from one
address (fan-out, burst, the two-process stage): the app caps those per address far below a
hall, since a phone's stream always carries its cookie. The room stage's phones send theirs."""

__all__ = [
    "ADMIN_TOKEN",
    "COOKIELESS_STREAMS",
    "MANY_NEW_PHONES",
    "Server",
    "open_session",
    "start",
]


def start(data_dir: Path, extra_env: dict[str, str] | None = None) -> Server:
    """The app under uvicorn; ``BELIEFGAP_BENCH_PROFILE`` in the bench's environment is passed
    on (``app.logs.profile_threads``: each stage's server writes its CPU profile there)."""
    profiling = {PROFILE_ENV: os.environ[PROFILE_ENV]} if os.environ.get(PROFILE_ENV) else {}
    return _start(data_dir, ADMIN_TOKEN, env={**profiling, **(extra_env or {})}, args=BENCH_ARGS)


def open_session(server: Server, talk: str = "emergence", phase: str = "belief") -> str:
    created = httpx.post(
        f"{server.url}/api/v1/sessions",
        json={"talk": talk, "venue": "Benchmark hall"},
        headers=server.auth,
        timeout=10,
    )
    created.raise_for_status()
    code = str(created.json()["code"])
    opened = httpx.post(
        f"{server.url}/api/v1/sessions/{code}/phases/{phase}/open", headers=server.auth, timeout=10
    )
    opened.raise_for_status()
    return code
