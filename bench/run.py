"""beliefgap benchmark: one command, one machine, ratios to a baseline measured in the same run.

    .venv/bin/python bench/run.py                 # the full run (about 6 minutes)
    .venv/bin/python bench/run.py --smoke         # under a minute, to keep the benchmark working in CI
    .venv/bin/python bench/run.py --only room     # only the room stage (1000 and 2000 phones)
    .venv/bin/python bench/run.py --only page     # only the phone's page under wrk (and the baseline)
    .venv/bin/python bench/run.py --only room --room-sizes 500   # one room of 500 phones

Stages, each against a fresh uvicorn (one worker) on 127.0.0.1 with a temporary SQLite file:
1. baseline: GET /healthz, wrk at 64 connections;
2. votes: POST /api/v1/sessions/{code}/votes from distinct participants (wrk keeps no cookies,
   so every request is a new phone), 64 connections: throughput, p50/p99, refused, and the
   rows stored against the votes acknowledged;
3. fan-out: N open event streams on one session; from a vote's acknowledgement until every
   stream has received the update (p50/p99/max), and server memory per open stream;
4. burst: N distinct participants voting within 10 s while N streams listen;
5. the phone's page under wrk (64 connections, as a ratio to the baseline): the join page
   GET /j/{code} as a new phone each time (and the participants stored afterwards), and the
   form vote POST /j/{code}/vote round-robin over 2000 phones that loaded the page first (their
   cookies and CSRF tokens written into the Lua script; rows stored against the phones whose
   votes were acknowledged);
6. room (bench/room.py): N phones (1000, 2000) play exactly what a browser on the voting page
   sends: join in waves of 200 on the waiting screen and hold the event stream; the presenter
   opens the question; each phone does what its page design does (the old one fetches the panel
   on the state event, the new one receives it in a "panel" event) and answers through the form
   within 10 s. Time from the presenter's request until each phone holds the question
   (p50/p99/max, never within 30 s), panel requests, vote latency, failures, rows stored
   against 200s, server memory per phone, client and server CPU.
Prints a table and writes bench/results/latest.json (with --only: latest-only-<stages>.json).
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
import phone
import room

RESULTS_DIR = Path(__file__).resolve().parent / "results"
VOTE_BODY = '{"phase": "belief", "choice": "agree"}'
WRK_THREADS = 2


# --------------------------------------------------------------------------- wrk


def wrk(url: str, seconds: int, connections: int, script: Path | None = None) -> dict[str, Any]:
    command = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "5s",
    ]
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
    threads = re.findall(r"^bench thread (\d+) sent (\d+) acked (\d+)", out, re.M)
    result: dict[str, Any] = {
        "requests": total,
        "rps": rps,
        "p50_ms": percentiles.get("50"),
        "p99_ms": percentiles.get("99"),
        "refused": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": socket_errors,
    }
    if threads:  # printed by the Lua script's done(): per thread, requests built and 200s
        result["threads"] = [
            {"offset": int(o), "sent": int(n), "acked": int(a)} for o, n, a in threads
        ]
    return result


def stored_rows(database: Path, table: str = "response") -> int:
    with sqlite3.connect(database) as connection:
        return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


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


# --------------------------------------------------------------------------- the phone's page


def stage_page_join(seconds: int) -> dict[str, Any]:
    """GET /j/{code} as a new phone every time (wrk keeps no cookies): the page with the open
    question, for a phone it has not seen (``participants``: the rows in the participant table
    afterwards, one per page if the page joins the phone, fewer if joining waits for a vote)."""
    with tempfile.TemporaryDirectory() as tmp:
        server = _server.start(Path(tmp))
        try:
            code = _server.open_session(server)
            script = Path(tmp) / "join.lua"
            script.write_text(phone.JOIN_LUA)
            result = wrk(f"{server.url}/j/{code}", seconds, 64, script)
            server.stop()
            result["acknowledged"] = result["requests"] - result["refused"]
            result["participants"] = stored_rows(server.database, "participant")
            return result
        finally:
            server.stop()


def stage_page_vote(seconds: int, phones: int) -> dict[str, Any]:
    """POST /j/{code}/vote through the page's form, round-robin over ``phones`` phones that
    loaded the join page first. A phone answering again replaces its answer, so the rows to
    expect are the phones with at least one acknowledged vote: between ``phones_acked`` (each
    wrk thread goes through its share of the phones in order) and ``phones_sent`` (requests
    still in flight when wrk stops may commit too)."""
    with tempfile.TemporaryDirectory() as tmp:
        server = _server.start(Path(tmp))
        try:
            code = _server.open_session(server)
            prepared = phone.run(phone.prepare(server.port, code, phones))
            script = Path(tmp) / "form_vote.lua"
            script.write_text(phone.vote_lua(prepared, threads=WRK_THREADS))
            result = wrk(f"{server.url}/j/{code}/vote", seconds, 64, script)
            server.stop()  # let the last commits land before counting
            shares = [len(range(t["offset"], phones, WRK_THREADS)) for t in result["threads"]]
            result["phones"] = phones
            result["acknowledged"] = sum(t["acked"] for t in result["threads"])
            result["phones_acked"] = sum(
                min(n, t["acked"]) for n, t in zip(shares, result["threads"], strict=True)
            )
            result["phones_sent"] = sum(
                min(n, t["sent"]) for n, t in zip(shares, result["threads"], strict=True)
            )
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


async def _close_streams(streams: list[Stream], tasks: list[asyncio.Task[None]]) -> None:
    """Close the streams and let the loop run once more, so the sockets are really closed
    before the server is asked to stop (it waits for open connections, up to the kill)."""
    for s in streams:
        s.close()
    for task in tasks:
        task.cancel()
    await asyncio.sleep(0.2)


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
            await _close_streams(streams, tasks)
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
            await _close_streams(streams, tasks)
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


STAGES = ("http", "streams", "page", "room")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="a few seconds per stage, small N")
    parser.add_argument(
        "--skip-streams", action="store_true", help="only the HTTP stages (no fan-out, burst, room)"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=STAGES,
        help="run only these stages (repeatable): http = baseline and API votes, streams = "
        "fan-out and burst, page = the phone's page under wrk (with the baseline), room",
    )
    parser.add_argument(
        "--room-sizes", help="phones per room stage, comma-separated (default 1000,2000; smoke 50)"
    )
    parser.add_argument(
        "--page-phones", type=int, help="phones the form-vote stage rotates through (2000)"
    )
    args = parser.parse_args()
    seconds = 2 if args.smoke else 10
    sizes = [50] if args.smoke else [500, 1000, 2000]
    room_sizes = [50] if args.smoke else [1000, 2000]
    if args.room_sizes:
        room_sizes = [int(n) for n in args.room_sizes.split(",")]
    page_phones = args.page_phones or (200 if args.smoke else 2000)
    stages = set(args.only or STAGES)
    if args.skip_streams:
        stages -= {"streams", "room"}

    report: dict[str, Any] = {"machine": machine(), "smoke": args.smoke, "stages": sorted(stages)}
    if stages & {"http", "page"}:
        report["baseline"] = stage_baseline(seconds)
        baseline_rps = report["baseline"]["rps"]
    if "http" in stages:
        report["votes"] = stage_votes(seconds)
        report["votes"]["ratio_to_baseline"] = report["votes"]["rps"] / baseline_rps
        if not args.smoke:
            report["votes_full_sync"] = stage_votes(seconds, "FULL")
            report["votes_full_sync"]["ratio_to_baseline"] = (
                report["votes_full_sync"]["rps"] / baseline_rps
            )
    if "page" in stages:
        report["page_join"] = stage_page_join(seconds)
        report["page_join"]["ratio_to_baseline"] = report["page_join"]["rps"] / baseline_rps
        report["page_vote"] = stage_page_vote(seconds, page_phones)
        report["page_vote"]["ratio_to_baseline"] = report["page_vote"]["rps"] / baseline_rps
    if "streams" in stages:
        report["fanout"] = [asyncio.run(fanout(n, 3 if args.smoke else 10)) for n in sizes]
        report["burst"] = asyncio.run(burst(sizes[-1], 2.0 if args.smoke else 10.0))
    if "room" in stages:
        report["room"] = [
            room.stage_room(n, wave=25 if args.smoke else 200, window=2.0 if args.smoke else 10.0)
            for n in room_sizes
        ]

    print_table(report)
    RESULTS_DIR.mkdir(exist_ok=True)
    name = "latest.json" if args.only is None else f"latest-only-{'-'.join(sorted(stages))}.json"
    (RESULTS_DIR / name).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {RESULTS_DIR / name}")
    problems = check(report)
    for problem in problems:
        print(f"FAILED: {problem}")
    return 1 if problems else 0


def check(report: dict[str, Any]) -> list[str]:
    """No acknowledged answer may be missing from the database; in a smoke run every request
    must also succeed, so a broken benchmark shows up in CI."""
    problems = []
    if "votes" in report and report["votes"]["stored"] < report["votes"]["acknowledged"]:
        problems.append("API votes: fewer rows stored than votes acknowledged")
    if "page_join" in report:
        j = report["page_join"]  # (a page may join its phone lazily: no participant check)
        if report["smoke"] and (j["refused"] or j["socket_errors"]):
            problems.append("join page: refused or failed requests")
    if "page_vote" in report:
        f = report["page_vote"]
        if f["stored"] < f["phones_acked"]:
            problems.append("form vote: fewer rows stored than phones acknowledged")
        if report["smoke"] and (f["refused"] or f["socket_errors"] or not f["acknowledged"]):
            problems.append("form vote: refused or failed requests")
    for r in report.get("room", []):
        if r["stored"] < r["votes_ok"]:
            problems.append(f"room {r['phones']}: fewer rows stored than votes acknowledged")
        if report["smoke"] and (r["never_held"] or r["failures"] or r["votes_ok"] < r["phones"]):
            problems.append(
                f"room {r['phones']} ({r['design']} design): {r['never_held']} phones never "
                f"held the question, {r['failures']} failures {r['failure_kinds']}"
            )
    return problems


def _ms_cell(value: float | None) -> str:
    return f"{value:>10.1f}" if value is not None else f"{'-':>10}"


def _wrk_row(label: str, r: dict[str, Any]) -> str:
    return (
        f"{label:<28}{r['rps']:>10.0f}{_ms_cell(r['p50_ms'])}{_ms_cell(r['p99_ms'])}"
        f"{r['refused']:>10}"
    )


def print_table(report: dict[str, Any]) -> None:
    m = report["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}")
    if "baseline" in report:
        print(f"{'stage':<28}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'refused':>10}")
        print(_wrk_row("GET /healthz (baseline)", report["baseline"]))
    for key, label in (
        ("votes", "POST votes"),
        ("votes_full_sync", "POST votes (sync=FULL)"),
        ("page_join", "GET /j/{code} (new phone)"),
        ("page_vote", "POST /j/{code}/vote (form)"),
    ):
        if key in report:
            print(_wrk_row(label, report[key]))
    if "votes" in report:
        v = report["votes"]
        print(
            f"votes / baseline: {v['ratio_to_baseline']:.2f}; acknowledged {v['acknowledged']}, "
            f"stored {v['stored']}"
        )
    if "page_join" in report:
        j = report["page_join"]
        print(
            f"join page / baseline: {j['ratio_to_baseline']:.2f}; pages served {j['acknowledged']}, "
            f"participants stored {j['participants']}"
        )
    if "page_vote" in report:
        f = report["page_vote"]
        print(
            f"form vote / baseline: {f['ratio_to_baseline']:.2f}; acknowledged {f['acknowledged']} "
            f"over {f['phones']} phones; rows stored {f['stored']} (expected "
            f"{f['phones_acked']}..{f['phones_sent']})"
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
    for r in report.get("room", []):
        print(room.summary(r))


if __name__ == "__main__":
    raise SystemExit(main())
