"""The real server: ``uvicorn app.main:app`` started in an empty directory."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx2 as httpx

from app import logs
from tests import liveserver


def test_uvicorn_in_an_empty_directory_creates_the_database_and_serves(tmp_path: Path) -> None:
    server = liveserver.start(tmp_path, "live-admin-token-0123456789", timeout=30)
    try:
        assert httpx.get(f"{server.url}/healthz", timeout=5).json() == {"status": "ok"}
        assert server.database.exists()
        assert (tmp_path / "secrets.json").exists()
        talks = httpx.get(f"{server.url}/api/v1/talks", timeout=5).json()
        assert {t["slug"] for t in talks} >= {"emergence", "emergence-scale"}
    finally:
        server.stop()


def test_sigusr1_logs_what_the_server_is_waiting_on(tmp_path: Path) -> None:
    """A room that sees requests with no answer can ask the server what it waits on: the signal
    logs every waiting task with the calls it stands in (the app's own countdown closer among
    them), and the server goes on serving."""
    server = liveserver.start(tmp_path, "live-admin-token-0123456789", timeout=30)
    try:
        server.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 30
        while "_close_countdowns" not in server.output():
            assert time.monotonic() < deadline, server.output()[-2000:]
            time.sleep(0.05)
        dump = server.output().split("tasks waiting (SIGUSR1)", 1)[1]
        assert "main.py" in dump and " > " in dump  # where each task stands, call by call
        assert httpx.get(f"{server.url}/healthz", timeout=5).json() == {"status": "ok"}
        assert "Traceback" not in server.output()
    finally:
        server.stop()


def test_the_benchmark_can_have_the_event_loop_s_stops_recorded(tmp_path: Path) -> None:
    """Off unless asked: nothing runs. Asked (the benchmark names a file), a loop held by a
    blocking call is recorded with its length and the moment it ended."""
    target = tmp_path / "stalls.txt"
    held_ms = 60

    def lines() -> list[list[str]]:
        return [line.split() for line in target.read_text().splitlines()]

    async def scenario() -> None:
        logs.watch_stalls({})()  # not asked: nothing to stop, nothing written
        assert not target.exists()
        stop = logs.watch_stalls({logs.STALLS_ENV: str(target)})
        try:
            await asyncio.sleep(2 * logs.STALL_WAKE_SECONDS)  # the watcher is waiting
            time.sleep(held_ms / 1000)  # noqa: ASYNC251 (the blocking call it must see)
            after = time.monotonic()
            # (the machine's load may add stops of its own, and collections have lines too)
            found: list[list[str]] = []
            while not found:  # what it waits for is in a file
                await asyncio.sleep(logs.STALL_WAKE_SECONDS)  # recorded once it runs again
                found = [x for x in lines() if x[3] == "loop" and float(x[1]) >= after]
        finally:
            stop()
        pid, end, ms, _kind, cpu_ms, loop_cpu_ms = found[0]
        assert int(pid) == os.getpid()
        assert float(ms) >= held_ms - 1000 * logs.STALL_WAKE_SECONDS
        assert float(end) <= time.monotonic()
        assert 0 <= float(cpu_ms) < float(ms)  # a blocking sleep waits, it does not work
        assert 0 <= float(loop_cpu_ms) <= float(cpu_ms) + 1  # the loop's thread: part of it

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_the_benchmark_can_have_the_server_s_cpu_profiled(tmp_path: Path) -> None:
    """Off unless asked: nothing written. Asked (the benchmark names a directory), the work of
    a thread started afterwards (a pool thread rendering, say) is in the profile written on
    stop, with the CPU time it used."""
    import pstats
    import threading

    logs.profile_threads({})()
    assert not list(tmp_path.iterdir())

    def busy_render() -> None:
        end = time.thread_time() + 0.05
        while time.thread_time() < end:
            pass

    stop = logs.profile_threads({logs.PROFILE_ENV: str(tmp_path)})
    try:
        worker = threading.Thread(target=busy_render)
        worker.start()
        worker.join()
    finally:
        stop()
    written = tmp_path / f"profile-{os.getpid()}.prof"
    stats = pstats.Stats(str(written)).stats  # type: ignore[attr-defined]
    cumulative = {name: row[3] for (_file, _line, name), row in stats.items()}
    assert cumulative["busy_render"] >= 0.04
