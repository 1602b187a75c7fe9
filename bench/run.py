"""beliefgap benchmark: one command, one machine, ratios to a baseline measured in the same run.

    .venv/bin/python bench/run.py            # the full run (about 2 minutes)
    .venv/bin/python bench/run.py --smoke    # a few seconds, to keep the benchmark working in CI

Stages, each against a fresh uvicorn (one worker) on 127.0.0.1 with a temporary SQLite file:
1. baseline: GET /healthz, wrk at 64 connections;
2. votes: POST /api/v1/sessions/{code}/votes from distinct participants (wrk keeps no cookies,
   so every request is a new phone), 64 connections: throughput, p50/p99, refused, and the
   rows stored against the votes acknowledged;
3. fan-out: N open event streams on one session; from a vote's acknowledgement until every
   stream has received the update (p50/p99/max), and server memory per open stream;
4. burst: N distinct participants voting within 10 s while N streams listen.
Prints a table and writes bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _server

RESULTS_DIR = Path(__file__).resolve().parent / "results"
VOTE_BODY = '{"phase": "belief", "choice": "agree"}'


# --------------------------------------------------------------------------- wrk


def wrk(url: str, seconds: int, connections: int, script: Path | None = None) -> dict[str, Any]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    if script is not None:
        command += ["-s", str(script)]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(out: str) -> dict[str, Any]:
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    percentiles = {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M)}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    socket_errors = sum(int(x) for x in errors.groups()) if errors else 0
    return {
        "requests": total,
        "rps": rps,
        "p50_ms": percentiles.get("50"),
        "p99_ms": percentiles.get("99"),
        "refused": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": socket_errors,
    }


def stored_rows(database: Path) -> int:
    with sqlite3.connect(database) as connection:
        return int(connection.execute("SELECT count(*) FROM response").fetchone()[0])


def stage_baseline(seconds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        server = _server.start(Path(tmp))
        try:
            return wrk(f"{server.url}/healthz", seconds, 64)
        finally:
            server.stop()


def stage_votes(seconds: int, synchronous: str = "NORMAL") -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        server = _server.start(Path(tmp), extra_env={"BELIEFGAP_SQLITE_SYNCHRONOUS": synchronous})
        try:
            code = _server.open_session(server)
            script = Path(tmp) / "vote.lua"
            script.write_text(
                'wrk.method = "POST"\n'
                f"wrk.body = '{VOTE_BODY}'\n"
                'wrk.headers["Content-Type"] = "application/json"\n'
            )
            result = wrk(f"{server.url}/api/v1/sessions/{code}/votes", seconds, 64, script)
            server.stop()  # let the last commits land before counting
            result["acknowledged"] = result["requests"] - result["refused"]
            result["stored"] = stored_rows(server.database)
            return result
        finally:
            server.stop()


# --------------------------------------------------------------------------- event streams


class Stream:
    """One raw HTTP connection reading the session's event stream, noting when events arrive."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str]] = []
        self.first = asyncio.Event()
        self.changed = asyncio.Event()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self, port: int, path: str) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port, limit=2**22)
        self.writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        await self.writer.drain()

    async def read(self) -> None:
        assert self.reader is not None
        try:
            while True:
                line = await self.reader.readline()
                if not line:
                    return
                if line.startswith(b"event:"):
                    name = line[6:].strip().decode()
                    self.events.append((time.perf_counter(), name))
                    self.first.set()
                    if name == "results":
                        self.changed.set()
        except (ConnectionError, asyncio.CancelledError):
            return

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def _open_streams(
    server: _server.Server, code: str, count: int
) -> tuple[list[Stream], list[asyncio.Task[None]]]:
    streams = [Stream() for _ in range(count)]
    path = f"/api/v1/sessions/{code}/events"
    for start in range(0, count, 200):  # connect in waves, as phones do after a QR code
        batch = streams[start : start + 200]
        await asyncio.gather(*(s.open(server.port, path) for s in batch))
    tasks = [asyncio.create_task(s.read()) for s in streams]
    await asyncio.wait_for(asyncio.gather(*(s.first.wait() for s in streams)), timeout=120)
    return streams, tasks


async def _vote(port: int, code: str) -> float:
    """One vote from a new participant; returns the moment its 200 arrived."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = VOTE_BODY.encode()
    writer.write(
        f"POST /api/v1/sessions/{code}/votes HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    status = await reader.readline()
    acknowledged = time.perf_counter()
    await reader.read()
    writer.close()
    if b" 200 " not in status:
        raise RuntimeError(f"vote refused: {status!r}")
    return acknowledged


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def fanout(count: int, votes: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        server = _server.start(Path(tmp))
        try:
            code = _server.open_session(server)
            # Reveal, so audience streams carry the results as they change.
            import httpx2 as httpx

            httpx.post(
                f"{server.url}/api/v1/sessions/{code}/phases/belief/reveal", headers=server.auth
            ).raise_for_status()
            await asyncio.sleep(0.5)
            rss_before = server.rss_bytes()
            streams, tasks = await _open_streams(server, code, count)
            await asyncio.sleep(1.0)
            per_stream = (server.rss_bytes() - rss_before) / count
            delays: list[float] = []
            for _ in range(votes):
                for s in streams:
                    s.changed.clear()
                acknowledged = await _vote(server.port, code)
                await asyncio.wait_for(
                    asyncio.gather(*(s.changed.wait() for s in streams)), timeout=30
                )
                arrivals = [
                    next(t for t, name in reversed(s.events) if name == "results") for s in streams
                ]
                delays.append(max(arrivals) - acknowledged)
                await asyncio.sleep(0.3)
            for s in streams:
                s.close()
            for task in tasks:
                task.cancel()
            return {
                "streams": count,
                "votes": votes,
                "all_reached_p50_ms": 1000 * statistics.median(delays),
                "all_reached_p99_ms": 1000 * _percentile(delays, 0.99),
                "all_reached_max_ms": 1000 * max(delays),
                "memory_per_stream_kb": per_stream / 1024,
            }
        finally:
            server.stop()


async def burst(count: int, window: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        server = _server.start(Path(tmp))
        try:
            code = _server.open_session(server)
            streams, tasks = await _open_streams(server, code, count)
            started = time.perf_counter()
            latencies: list[float] = []
            failures = 0

            async def one(delay: float) -> None:
                nonlocal failures
                await asyncio.sleep(delay)
                sent = time.perf_counter()
                try:
                    latencies.append(await _vote(server.port, code) - sent)
                except (RuntimeError, ConnectionError):
                    failures += 1

            await asyncio.gather(*(one(window * i / count) for i in range(count)))
            elapsed = time.perf_counter() - started
            await asyncio.sleep(1.0)
            for s in streams:
                s.close()
            for task in tasks:
                task.cancel()
            server.stop()
            return {
                "participants": count,
                "streams": count,
                "elapsed_s": elapsed,
                "acknowledged": len(latencies),
                "refused_or_failed": failures,
                "stored": stored_rows(server.database),
                "vote_p50_ms": 1000 * statistics.median(latencies) if latencies else None,
                "vote_p99_ms": 1000 * _percentile(latencies, 0.99) if latencies else None,
            }
        finally:
            server.stop()


# --------------------------------------------------------------------------- main


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    import os

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": platform.platform(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="a few seconds per stage, small N")
    parser.add_argument("--skip-streams", action="store_true", help="only the HTTP stages")
    args = parser.parse_args()
    seconds = 2 if args.smoke else 10
    sizes = [50] if args.smoke else [500, 1000, 2000]

    report: dict[str, Any] = {"machine": machine(), "smoke": args.smoke}
    report["baseline"] = stage_baseline(seconds)
    report["votes"] = stage_votes(seconds)
    report["votes"]["ratio_to_baseline"] = report["votes"]["rps"] / report["baseline"]["rps"]
    if not args.smoke:
        report["votes_full_sync"] = stage_votes(seconds, "FULL")
        report["votes_full_sync"]["ratio_to_baseline"] = (
            report["votes_full_sync"]["rps"] / report["baseline"]["rps"]
        )
    if not args.skip_streams:
        report["fanout"] = [asyncio.run(fanout(n, 3 if args.smoke else 10)) for n in sizes]
        report["burst"] = asyncio.run(burst(sizes[-1], 2.0 if args.smoke else 10.0))

    print_table(report)
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {RESULTS_DIR / 'latest.json'}")
    votes = report["votes"]
    return 0 if votes["stored"] >= votes["acknowledged"] else 1


def print_table(report: dict[str, Any]) -> None:
    m = report["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}")
    b, v = report["baseline"], report["votes"]
    print(f"{'stage':<28}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'refused':>10}")
    print(
        f"{'GET /healthz (baseline)':<28}{b['rps']:>10.0f}{b['p50_ms']:>10.1f}{b['p99_ms']:>10.1f}{b['refused']:>10}"
    )
    print(
        f"{'POST votes':<28}{v['rps']:>10.0f}{v['p50_ms']:>10.1f}{v['p99_ms']:>10.1f}{v['refused']:>10}"
    )
    if "votes_full_sync" in report:
        s = report["votes_full_sync"]
        print(
            f"{'POST votes (sync=FULL)':<28}{s['rps']:>10.0f}{s['p50_ms']:>10.1f}{s['p99_ms']:>10.1f}{s['refused']:>10}"
        )
    print(
        f"votes / baseline: {v['ratio_to_baseline']:.2f}; acknowledged {v['acknowledged']}, stored {v['stored']}"
    )
    for f in report.get("fanout", []):
        print(
            f"fan-out {f['streams']:>5} streams: all reached p50 {f['all_reached_p50_ms']:.0f} ms, "
            f"p99 {f['all_reached_p99_ms']:.0f} ms, max {f['all_reached_max_ms']:.0f} ms; "
            f"{f['memory_per_stream_kb']:.1f} KB per stream"
        )
    if "burst" in report:
        u = report["burst"]
        print(
            f"burst: {u['participants']} votes in {u['elapsed_s']:.1f} s with {u['streams']} streams: "
            f"acknowledged {u['acknowledged']}, failed {u['refused_or_failed']}, stored {u['stored']}, "
            f"p50 {u['vote_p50_ms']:.0f} ms, p99 {u['vote_p99_ms']:.0f} ms"
        )


if __name__ == "__main__":
    raise SystemExit(main())
