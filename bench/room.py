"""The room stage: N phones play exactly the requests a browser on the voting page sends.

Against one fresh uvicorn worker on SQLite, with a session created through the API and nothing
open yet (every phone starts on the waiting screen):

1. the phones join in waves (a room scanning the QR code): ``GET /j/{code}`` without cookies,
   keeping the cookies it sets and the page's CSRF token, then the page's event stream
   ``GET /api/v1/sessions/{code}/events?lang=en`` with those cookies, held open;
2. the presenter opens the question (t0 is taken just before the request is sent);
3. each phone does what its page does on the live update, in the design the join page shows
   (``phone.detect``): the old design fetches ``GET /j/{code}/panel`` when a ``state`` event's
   open phases differ from the panel's ``data-open``, and holds the question when that answer
   arrives; the new design receives the panel's HTML in a ``panel`` event and holds the
   question when its ``data-open`` lists the phase (it fetches the panel only for a phase it
   has already answered, which no phone here has);
4. each phone answers through the form (``POST /j/{code}/vote``) at a random moment within
   ``window`` seconds of holding the question.

Measured: from t0 until each phone holds the question (p50/p99/max, and how many never did
within ``deadline``), the panel requests sent and their latency, the votes' latency, failures,
the rows stored once the server has stopped against the 200s received, and the server's memory
per phone (RSS before the first join and with every phone's stream open). The client is one
asyncio loop (uvloop when installed) on raw sockets, parsing only event names, the ``state``
JSON (once per distinct payload) and the ``data-open`` attribute; its CPU time is reported next
to the server's, to show which side was the bottleneck.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _server
from phone import (
    ANSWERED,
    CHOICES,
    DATA_OPEN,
    Connection,
    HTTPFailure,
    Phone,
    open_keys,
    raise_fd_limit,
    read_chunk,
    read_head,
    run,
)

STREAM_LIMIT = 2**20


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _ms(values: list[float], q: float) -> float | None:
    value = _percentile(values, q)
    return None if value is None else 1000 * value


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time all processes of the machine have used (Linux, /proc/stat: user, nice, system;
    not the interrupts, which carry our own traffic too): what the server and the client did
    not use of it is other load, which would blur the figures."""
    user, nice, system = (int(x) for x in Path("/proc/stat").read_text().split()[1:4])
    return (user + nice + system) / os.sysconf("SC_CLK_TCK")


def stored_rows(database: Path) -> int:
    import sqlite3

    with sqlite3.connect(database) as connection:
        return int(connection.execute("SELECT count(*) FROM response").fetchone()[0])


class Seat:
    """One phone in the room: the browser (``Phone``), its event stream and what it shows."""

    __slots__ = (
        "fetching",
        "held_at",
        "joined_at",
        "phone",
        "ready",
        "stream",
    )

    def __init__(self, phone: Phone) -> None:
        self.phone = phone
        self.stream: asyncio.StreamWriter | None = None
        self.ready = asyncio.Event()  # the stream's first event has arrived
        self.fetching = False
        self.held_at: float | None = None
        self.joined_at = 0.0


class Room:
    def __init__(
        self, server: _server.Server, code: str, count: int, phase: str, window: float
    ) -> None:
        self.server = server
        self.code = code
        self.phase = phase
        self.window = window
        self.seats = [Seat(Phone(server.port, code)) for _ in range(count)]
        self.t0: float | None = None
        self.closing = False
        self.held = 0
        self.all_held = asyncio.Event()
        self.failures: Counter[str] = Counter()
        self.designs: Counter[str] = Counter()
        self.events: Counter[str] = Counter()
        self.join_latencies: list[float] = []
        self.panel_latencies: list[float] = []
        self.panel_before_t0 = 0
        self.vote_latencies: list[float] = []
        self.votes_sent = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.votes: list[asyncio.Task[None]] = []
        self.signatures: dict[bytes, str] = {}
        self.streaming = 0  # streams that delivered their first event

    # ------------------------------------------------------------------ joining

    async def join(self, seat: Seat) -> None:
        phone = seat.phone
        started = time.perf_counter()
        try:
            await phone.join()
        except (HTTPFailure, ConnectionError, OSError) as exc:
            self.failures[f"join: {exc}"[:60]] += 1
            seat.ready.set()
            return
        seat.joined_at = time.perf_counter()
        self.join_latencies.append(seat.joined_at - started)
        assert phone.design is not None
        self.designs[phone.design.name] += 1
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", self.server.port, limit=STREAM_LIMIT
            )
            seat.stream = writer
            writer.write(phone.events_head())
            await writer.drain()
            status, headers = await read_head(reader)
        except (HTTPFailure, ConnectionError, OSError) as exc:
            self.failures[f"stream: {exc}"[:60]] += 1
            seat.ready.set()
            return
        if status != 200:
            self.failures[f"stream: {status}"] += 1
            seat.ready.set()
            return
        chunked = dict(headers).get(b"transfer-encoding", b"").lower() == b"chunked"
        self._spawn(self.listen(seat, reader, chunked))
        try:
            await asyncio.wait_for(seat.ready.wait(), timeout=60)
        except TimeoutError:
            self.failures["stream: no first event in 60 s"] += 1
        else:
            self.streaming += 1

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # ------------------------------------------------------------------ the event stream

    async def listen(self, seat: Seat, reader: asyncio.StreamReader, chunked: bool) -> None:
        buffer = b""
        try:
            while True:
                piece = await read_chunk(reader) if chunked else await reader.read(65536)
                if not piece:
                    break
                if b"\r" in piece:
                    piece = piece.replace(b"\r\n", b"\n")
                buffer += piece
                while (end := buffer.find(b"\n\n")) >= 0:
                    block, buffer = buffer[:end], buffer[end + 2 :]
                    self.on_event(seat, block)
        except (HTTPFailure, ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        if not self.closing:
            self.failures["stream: closed by the server"] += 1

    def on_event(self, seat: Seat, block: bytes) -> None:
        """One server-sent event (its lines, without the blank line that ended it)."""
        name = b"message"
        data: list[bytes] = []
        for line in block.split(b"\n"):
            if line.startswith(b"data:"):
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif line.startswith(b"event:"):
                name = line[6:].strip()
        if not data:  # a comment (": ping") or an empty event: nothing is dispatched
            return
        seat.ready.set()
        self.events[name.decode()] += 1
        design = seat.phone.design
        assert design is not None
        if name == b"state" and design.state_fetch:
            signature = self.signature(b"\n".join(data))
            if signature != seat.phone.data_open and not seat.fetching:
                self._spawn(self.fetch_panel(seat))
        elif name == b"panel" and design.panel_event:
            found = DATA_OPEN.search(b"\n".join(data))
            if found is None or found.group(1).decode() == seat.phone.data_open:
                return  # already showing these questions
            signature = found.group(1).decode()
            if seat.phone.answered & open_keys(signature):
                if not seat.fetching:  # only this phone's own panel shows its answer
                    self._spawn(self.fetch_panel(seat))
            else:
                seat.phone.data_open = signature  # swapped in, no request
                self.check_held(seat)

    def signature(self, data: bytes) -> str:
        """``openSignature`` of static/js/audience.js, once per distinct ``state`` payload."""
        signature = self.signatures.get(data)
        if signature is None:
            parts = []
            for phase in json.loads(data)["phases"]:
                if phase["state"] == "open":
                    closes = phase.get("closes_at")
                    end = math.floor(datetime.fromisoformat(closes).timestamp()) if closes else ""
                    parts.append(f"{phase['id']}@{end}")
            signature = self.signatures[data] = ";".join(parts)
        return signature

    # ------------------------------------------------------------------ what the page does

    async def fetch_panel(self, seat: Seat) -> None:
        seat.fetching = True
        if self.t0 is None:
            self.panel_before_t0 += 1
        sent = time.perf_counter()
        try:
            async with asyncio.timeout(60):
                reply = await seat.phone.panel()
        except (HTTPFailure, ConnectionError, OSError, TimeoutError) as exc:
            self.failures[f"panel: {exc!r}"[:60]] += 1
            return
        finally:
            seat.fetching = False
        self.panel_latencies.append(time.perf_counter() - sent)
        if reply.status != 200:
            self.failures[f"panel: {reply.status}"] += 1
            return
        seat.phone.learn(reply.body)
        self.check_held(seat)

    def check_held(self, seat: Seat) -> None:
        if seat.held_at is not None or self.t0 is None:
            return
        if self.phase not in open_keys(seat.phone.data_open):
            return
        seat.held_at = time.perf_counter()
        self.held += 1
        self.votes.append(asyncio.create_task(self.answer(seat, random.uniform(0, self.window))))
        if self.held == len(self.seats):
            self.all_held.set()

    async def answer(self, seat: Seat, delay: float) -> None:
        await asyncio.sleep(delay)
        answered = ",".join(sorted(seat.phone.answered))
        self.votes_sent += 1
        sent = time.perf_counter()
        try:
            async with asyncio.timeout(60):
                reply = await seat.phone.vote(self.phase, random.choice(CHOICES), answered)
        except (HTTPFailure, ConnectionError, OSError, TimeoutError) as exc:
            self.failures[f"vote: {exc!r}"[:60]] += 1
            return
        if reply.status != 200:
            self.failures[f"vote: {reply.status}"] += 1
            return
        self.vote_latencies.append(time.perf_counter() - sent)
        if ANSWERED.search(reply.body) is None:  # the old design does not say; it has answered
            seat.phone.answered.add(self.phase)
        seat.phone.learn(reply.body)

    # ------------------------------------------------------------------ the presenter

    async def open_phase(self) -> float:
        connection = Connection(self.server.port)
        try:
            self.t0 = time.perf_counter()
            reply = await connection.request(
                f"POST /api/v1/sessions/{self.code}/phases/{self.phase}/open HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{self.server.port}\r\n"
                f"Authorization: Bearer {self.server.admin_token}\r\n"
            )
        finally:
            connection.close()
        if reply.status != 200:
            raise RuntimeError(f"the presenter could not open {self.phase}: {reply.status}")
        return time.perf_counter() - self.t0

    def close(self) -> None:
        self.closing = True
        for seat in self.seats:
            if seat.stream is not None:
                seat.stream.close()
            seat.phone.close()
        for task in list(self.tasks):
            task.cancel()


async def room(
    count: int,
    *,
    wave: int = 200,
    deadline: float = 30.0,
    window: float = 10.0,
    phase: str = "belief",
) -> dict[str, Any]:
    raise_fd_limit()
    with tempfile.TemporaryDirectory() as tmp:
        server = _server.start(Path(tmp))
        try:
            created = httpx.post(
                f"{server.url}/api/v1/sessions",
                json={"talk": "emergence", "venue": "Benchmark hall"},
                headers=server.auth,
                timeout=10,
            )
            created.raise_for_status()
            code = str(created.json()["code"])
            await asyncio.sleep(0.5)
            rss_before = server.rss_bytes()
            result = await _play(Room(server, code, count, phase, window), wave, deadline)
            result["memory_per_phone_kb"] = (
                (result.pop("rss_streaming") - rss_before) / count / 1024
            )
            result["rss_before_mb"] = rss_before / 2**20
            server.stop()  # let the last commits land before counting
            result["stored"] = stored_rows(server.database)
            return result
        finally:
            server.stop()


async def _play(room: Room, wave: int, deadline: float) -> dict[str, Any]:
    count = len(room.seats)
    server = room.server
    started = time.perf_counter()
    for first in range(0, count, wave):
        await asyncio.gather(*(room.join(seat) for seat in room.seats[first : first + wave]))
    joined_s = time.perf_counter() - started
    await asyncio.sleep(1.0)
    rss_streaming = server.rss_bytes()

    server_cpu, client_cpu = cpu_seconds(server.process.pid), time.process_time()
    busy = machine_busy_seconds()
    try:
        presenter_s = await room.open_phase()
        assert room.t0 is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(room.all_held.wait(), timeout=deadline)
        held_window_s = time.perf_counter() - room.t0
        server_cpu_held = cpu_seconds(server.process.pid) - server_cpu
        client_cpu_held = time.process_time() - client_cpu
        delays = [s.held_at - room.t0 for s in room.seats if s.held_at is not None]
        within = sum(1 for d in delays if d <= deadline)
        if room.votes:
            await asyncio.wait(room.votes, timeout=room.window + 60)
        votes_done_s = time.perf_counter() - room.t0
        server_cpu_all = cpu_seconds(server.process.pid) - server_cpu
        client_cpu_all = time.process_time() - client_cpu
        other_cpu = machine_busy_seconds() - busy - server_cpu_all - client_cpu_all
        await asyncio.sleep(0.5)
        rss_end = server.rss_bytes()
    finally:
        room.close()
        await asyncio.sleep(0.2)  # let the loop close the sockets before the server stops
    designs = dict(room.designs)
    return {
        "phones": count,
        "design": max(designs, key=designs.__getitem__) if designs else None,
        "designs": designs,
        "wave": wave,
        "joined_s": joined_s,
        "join_p50_ms": _ms(room.join_latencies, 0.5),
        "join_p99_ms": _ms(room.join_latencies, 0.99),
        "streams_open": room.streaming,
        "presenter_open_ms": 1000 * presenter_s,
        "deadline_s": deadline,
        "held": within,
        "never_held": count - within,
        "held_p50_ms": 1000 * statistics.median(delays) if delays else None,
        "held_p99_ms": _ms(delays, 0.99),
        "held_max_ms": 1000 * max(delays) if delays else None,
        "held_window_s": held_window_s,
        "panel_requests": len(room.panel_latencies)
        + sum(n for k, n in room.failures.items() if k.startswith("panel")),
        "panel_requests_before_open": room.panel_before_t0,
        "panel_p50_ms": _ms(room.panel_latencies, 0.5),
        "panel_p99_ms": _ms(room.panel_latencies, 0.99),
        "votes_sent": room.votes_sent,
        "votes_ok": len(room.vote_latencies),
        "vote_p50_ms": _ms(room.vote_latencies, 0.5),
        "vote_p99_ms": _ms(room.vote_latencies, 0.99),
        "votes_done_s": votes_done_s,
        "failures": sum(room.failures.values()),
        "failure_kinds": dict(room.failures),
        "events": dict(room.events),
        "server_cpu_until_held_s": server_cpu_held,
        "client_cpu_until_held_s": client_cpu_held,
        "server_cpu_s": server_cpu_all,
        "client_cpu_s": client_cpu_all,
        "other_cpu_s": max(0.0, other_cpu),
        "rss_streaming": rss_streaming,
        "rss_end_mb": rss_end / 2**20,
    }


def stage_room(count: int, **options: Any) -> dict[str, Any]:
    return run(room(count, **options))


def _f(value: float | None, unit: str = " ms") -> str:
    return "-" if value is None else f"{value:.0f}{unit}"


def summary(r: dict[str, Any]) -> str:
    """The stage's lines for the table of ``run.py``."""
    failures = f" {r['failure_kinds']}" if r["failures"] else ""
    return (
        f"room {r['phones']} phones ({r['design']} design): joined in {r['joined_s']:.1f} s "
        f"(page p50 {_f(r['join_p50_ms'])}, p99 {_f(r['join_p99_ms'])}), "
        f"{r['streams_open']} streams, {r['memory_per_phone_kb']:.0f} KB per phone\n"
        f"  holding the question after the presenter opened it: p50 {_f(r['held_p50_ms'])}, "
        f"p99 {_f(r['held_p99_ms'])}, max {_f(r['held_max_ms'])}; "
        f"never within {r['deadline_s']:.0f} s: {r['never_held']}\n"
        f"  panel requests {r['panel_requests']} (p50 {_f(r['panel_p50_ms'])}, "
        f"p99 {_f(r['panel_p99_ms'])}); votes {r['votes_ok']}/{r['votes_sent']} ok "
        f"(p50 {_f(r['vote_p50_ms'])}, p99 {_f(r['vote_p99_ms'])}); failures {r['failures']}"
        f"{failures}\n"
        f"  rows stored {r['stored']} vs 200s {r['votes_ok']}; CPU from open to all held: "
        f"server {r['server_cpu_until_held_s']:.1f} s, client {r['client_cpu_until_held_s']:.1f} s; "
        f"other processes until the votes were in: {r['other_cpu_s']:.1f} s"
    )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("phones", type=int, nargs="*", default=[50])
    parser.add_argument("--wave", type=int, default=200)
    arguments = parser.parse_args()
    for n in arguments.phones:
        print(json.dumps(stage_room(n, wave=arguments.wave), indent=2))
