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
4. each phone answers through the form (``POST /j/{code}/vote``): one in ``AT_OPEN_EVERY``
   the moment it holds the question (a tap right as the question appears, while the server is
   still sending it to the rest of the room), the others at a random moment within ``window``
   seconds of holding it.

Measured: from t0 until each phone holds the question (p50/p99/max, and how many never did
within ``deadline``), the panel requests sent and their latency, the votes' latency (those sent
at the opening apart), the votes still without an answer ``deadline`` seconds after they were
sent (``unanswered``, apart from failures: a phone that shows its vote as still being sent),
failures, the rows stored once the server has stopped against the 200s received, and the
server's memory per phone (RSS before the first join and with every phone's stream open), and
the longest stop of the server's event loop (``longest_stops``). The
client is one asyncio loop (uvloop when installed) on raw sockets, parsing only event names,
the ``state`` JSON (once per distinct payload) and the ``data-open`` attribute; its CPU time is
reported next to the server's (its whole process tree: with several workers, all of them)
and, when given, the database server's, to show which side was the bottleneck.

``conference`` plays several rooms at once on a running server (``pg_stages``: two workers on
PostgreSQL): one session per room, their phones joining interleaved in waves of ``wave``, each
session's presenter opening its question at the same moment (or ``stagger`` seconds after the
previous one), each phone measured from its own session's t0.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import math
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
from procs import machine_busy_seconds, sockets, tree_cpu_seconds, tree_rss_bytes, workers

from app.logs import STALLS_ENV

STREAM_LIMIT = 2**20
AT_OPEN_EVERY = 4
"""One phone in this many answers the moment it holds the question (its vote is "sent at the
opening"); the others within ``window`` seconds."""


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _ms(values: list[float], q: float) -> float | None:
    value = _percentile(values, q)
    return None if value is None else 1000 * value


STALLS_FILE = "loop-stalls.txt"


def watching_stalls(directory: Path) -> dict[str, str]:
    """The environment that has the server's processes record their event loops' stops in
    ``directory`` (``app.logs.watch_stalls``; read back with ``longest_stops``)."""
    return {STALLS_ENV: str(directory / STALLS_FILE)}


def longest_stops(directory: Path, marks: dict[str, float]) -> dict[str, Any]:
    """The longest stop of any server process's event loop while the phones joined
    (``joining`` to ``joined``) and from the opening until the votes were in (``opened`` to
    ``votes_in``), and the longest garbage collection over both: milliseconds, 0 when none
    reached the recorded minimum (``app.logs.STALL_RECORDED_SECONDS``)."""
    try:
        lines = (directory / STALLS_FILE).read_text().splitlines()
    except OSError:
        lines = []
    stops = []
    for line in lines:
        try:
            _pid, end, ms, kind, cpu, own = line.split()
            stops.append((float(end), float(ms), kind, float(cpu), float(own)))
        except ValueError:
            continue

    def within(start: str, stop: str, loop: bool = True) -> list[tuple[float, float, float]]:
        """(milliseconds, the process's CPU milliseconds within them, the stopped thread's) of
        each stop."""
        return [
            (ms, cpu, own)
            for end, ms, kind, cpu, own in stops
            if marks[start] <= end <= marks[stop] and (kind == "loop") == loop
        ]

    room = within("opened", "votes_in")
    return {
        "loop_stop_join_ms": max((ms for ms, _, _ in within("joining", "joined")), default=0.0),
        "loop_stop_room_ms": max((ms for ms, _, _ in room), default=0.0),
        # The longest stop counted in the process's CPU time (every thread's: at most what it
        # would last with a core to itself): on a busy machine a stop outlasts its work.
        "loop_stop_room_cpu_ms": max((min(ms, cpu) for ms, cpu, _ in room), default=0.0),
        # ... and in the loop thread's own: the work the loop did in it (the process's also
        # counts the writer's and the renders' threads, which do not stop the loop on their own).
        "loop_stop_room_loop_cpu_ms": max((min(ms, own) for ms, _, own in room), default=0.0),
        "loop_stops_room_over_100ms": sum(1 for ms, _, _ in room if ms > 100),
        "collection_longest_ms": max(
            (ms for ms, _, _ in within("joining", "votes_in", loop=False)), default=0.0
        ),
        "collection_longest_cpu_ms": max(
            (min(ms, cpu) for ms, cpu, _ in within("joining", "votes_in", loop=False)),
            default=0.0,
        ),
    }


def stored_rows(database: Path, table: str = "response") -> int:
    import sqlite3

    assert table in ("response", "text_answer")
    with sqlite3.connect(database) as connection:
        return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


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
        self,
        server: _server.Server,
        code: str,
        count: int,
        phase: str,
        window: float,
        deadline: float = 30.0,
        texts: list[str] | None = None,
    ) -> None:
        self.texts = texts
        """An open-text question: each phone sends one of these (else it taps an option)."""
        self.server = server
        self.code = code
        self.phase = phase
        self.window = window
        self.deadline = deadline
        """How long a vote may go without an answer before it counts as unanswered."""
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
        self.at_open_latencies: list[float] = []
        """Votes sent the moment their phone held the question (and answered 200)."""
        self.votes_sent = 0
        self.votes_at_open = 0
        self.unanswered: list[bool] = []
        """Each vote without an answer within ``deadline``: whether it was sent at the opening."""
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
        at_open = self.held % AT_OPEN_EVERY == 1 or AT_OPEN_EVERY == 1
        delay = 0.0 if at_open else random.uniform(0, self.window)
        self.votes.append(asyncio.create_task(self.answer(seat, delay)))
        if self.held == len(self.seats):
            self.all_held.set()

    async def answer(self, seat: Seat, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        answered = ",".join(sorted(seat.phone.answered))
        self.votes_sent += 1
        sent = time.perf_counter()
        at_open = not delay
        self.votes_at_open += at_open
        try:
            async with asyncio.timeout(self.deadline):
                text = random.choice(self.texts) if self.texts else None
                reply = await seat.phone.vote(
                    self.phase, random.choice(CHOICES), answered, text=text
                )
        except TimeoutError:
            self.unanswered.append(at_open)
            return
        except (HTTPFailure, ConnectionError, OSError) as exc:
            self.failures[f"vote: {exc!r}"[:60]] += 1
            return
        if reply.status != 200:
            self.failures[f"vote: {reply.status}"] += 1
            return
        self.vote_latencies.append(time.perf_counter() - sent)
        if at_open:
            self.at_open_latencies.append(self.vote_latencies[-1])
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


def new_session(server: _server.Server, talk: str = "emergence") -> str:
    """A session created through the API, nothing open yet (every phone starts waiting)."""
    created = httpx.post(
        f"{server.url}/api/v1/sessions",
        json={"talk": talk, "venue": "Benchmark hall"},
        headers=server.auth,
        timeout=10,
    )
    created.raise_for_status()
    return str(created.json()["code"])


async def room(
    count: int,
    *,
    wave: int = 200,
    deadline: float = 30.0,
    window: float = 10.0,
    phase: str = "belief",
    talk: dict[str, Any] | None = None,
    texts: list[str] | None = None,
) -> dict[str, Any]:
    """One room on a fresh uvicorn worker with a temporary SQLite file (``talk``: a talk of
    its own, stored first; ``texts``: the phase is open text, each phone sends one of these)."""
    raise_fd_limit()
    with tempfile.TemporaryDirectory() as tmp:
        server = _server.start(Path(tmp), extra_env=watching_stalls(Path(tmp)))
        try:
            if talk is not None:
                stored = httpx.post(
                    f"{server.url}/api/v1/talks", json=talk, headers=server.auth, timeout=10
                )
                stored.raise_for_status()
            code = new_session(server, talk["slug"] if talk is not None else "emergence")
            await asyncio.sleep(0.5)
            rss_before = tree_rss_bytes(server.process.pid)
            result = await play(
                server,
                [Room(server, code, count, phase, window, deadline, texts)],
                wave=wave,
                deadline=deadline,
                stalls=Path(tmp),
            )
            result["memory_per_phone_kb"] = (
                (result.pop("rss_streaming") - rss_before) / count / 1024
            )
            result["rss_before_mb"] = rss_before / 2**20
            server.stop()  # let the last commits land before counting
            result["stored"] = stored_rows(server.database)
            if texts:
                result["texts_stored"] = stored_rows(server.database, "text_answer")
            return result
        finally:
            server.stop()


async def conference(
    server: _server.Server,
    sessions: int,
    phones: int,
    *,
    wave: int = 200,
    deadline: float = 30.0,
    window: float = 10.0,
    stagger: float = 0.0,
    phase: str = "belief",
    database_pid: int | None = None,
    stalls: Path | None = None,
) -> dict[str, Any]:
    """``sessions`` rooms of ``phones`` phones at once on a running server (several workers, a
    shared database): each session's presenter opens the question, all at the same moment
    (``stagger`` 0) or one after the other ``stagger`` seconds apart. The caller stops the
    server and counts the rows stored. ``database_pid``: the database server's main process,
    whose process tree's CPU time is reported beside the app's. ``stalls``: the directory of
    ``watching_stalls`` the server was started with."""
    raise_fd_limit()
    codes = [new_session(server) for _ in range(sessions)]
    await asyncio.sleep(0.5)
    rss_before = tree_rss_bytes(server.process.pid)
    rooms = [Room(server, code, phones, phase, window, deadline) for code in codes]
    result = await play(
        server,
        rooms,
        wave=wave,
        deadline=deadline,
        stagger=stagger,
        database_pid=database_pid,
        stalls=stalls,
    )
    result["memory_per_phone_kb"] = (
        (result.pop("rss_streaming") - rss_before) / (sessions * phones) / 1024
    )
    result["rss_before_mb"] = rss_before / 2**20
    return result


async def play(
    server: _server.Server,
    rooms: list[Room],
    *,
    wave: int,
    deadline: float,
    stagger: float = 0.0,
    database_pid: int | None = None,
    stalls: Path | None = None,
) -> dict[str, Any]:
    """Join every room's phones (in waves of ``wave``, the rooms' phones interleaved, as rooms
    filling at the same time), open the question in every room, measure until every phone
    holds it and until the votes are in."""
    order = sorted(
        ((i, n) for n, room in enumerate(rooms) for i in range(len(room.seats))),
    )
    seats = [(rooms[n], rooms[n].seats[i]) for i, n in order]
    count = len(seats)
    pid = server.process.pid

    def database_cpu() -> float:
        return tree_cpu_seconds(database_pid) if database_pid is not None else 0.0

    started = time.perf_counter()
    marks = {"joining": time.monotonic()}  # the server's clock: when its loop stopped
    server_cpu, client_cpu, db_cpu = tree_cpu_seconds(pid), time.process_time(), database_cpu()
    for first in range(0, count, wave):
        await asyncio.gather(*(room.join(seat) for room, seat in seats[first : first + wave]))
    joined_s = time.perf_counter() - started
    marks["joined"] = time.monotonic()
    join_cpu = {
        "server_cpu_join_s": tree_cpu_seconds(pid) - server_cpu,
        "client_cpu_join_s": time.process_time() - client_cpu,
    }
    if database_pid is not None:
        join_cpu["database_cpu_join_s"] = database_cpu() - db_cpu
    await asyncio.sleep(1.0)
    rss_streaming = tree_rss_bytes(pid)
    sockets_per_worker = [sockets(worker) for worker in workers(pid)]

    async def open_after(room: Room, delay: float) -> float:
        if delay:
            await asyncio.sleep(delay)
        return await room.open_phase()

    server_cpu, client_cpu, db_cpu = tree_cpu_seconds(pid), time.process_time(), database_cpu()
    busy = machine_busy_seconds()
    # The load generator's own garbage collections stay out of what it measures: thousands of
    # phones are objects of this one process, and a full collection of them (up to 73 ms in a
    # room of 5,000) is a pause no phone of a real room has. What was built while joining is
    # frozen, and the collector waits until the votes are in (reference counting frees the rest).
    gc.collect()
    gc.freeze()
    gc.disable()
    marks["opened"] = time.monotonic()
    try:
        presenter = await asyncio.gather(
            *(open_after(room, i * stagger) for i, room in enumerate(rooms))
        )
        t0 = min(room.t0 for room in rooms if room.t0 is not None)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(room.all_held.wait() for room in rooms)), timeout=deadline
            )
        held_window_s = time.perf_counter() - t0
        server_cpu_held = tree_cpu_seconds(pid) - server_cpu
        client_cpu_held = time.process_time() - client_cpu
        db_cpu_held = database_cpu() - db_cpu
        votes = [task for room in rooms for task in room.votes]
        if votes:  # each vote gives up on its answer after ``deadline`` seconds
            await asyncio.wait(votes, timeout=max(room.window for room in rooms) + deadline + 30)
        votes_done_s = time.perf_counter() - t0
        marks["votes_in"] = time.monotonic()
        server_cpu_all = tree_cpu_seconds(pid) - server_cpu
        client_cpu_all = time.process_time() - client_cpu
        db_cpu_all = database_cpu() - db_cpu
        other_cpu = machine_busy_seconds() - busy - server_cpu_all - client_cpu_all - db_cpu_all
        await asyncio.sleep(0.5)
        rss_end = tree_rss_bytes(pid)
    finally:
        gc.enable()
        gc.unfreeze()
        for room in rooms:
            room.close()
        await asyncio.sleep(0.2)  # let the loop close the sockets before the server stops

    def delays(room: Room) -> list[float]:
        t0 = room.t0
        if t0 is None:
            return []
        return [s.held_at - t0 for s in room.seats if s.held_at is not None]

    every_delay = [d for room in rooms for d in delays(room)]
    within = sum(1 for d in every_delay if d <= deadline)
    designs: Counter[str] = sum((room.designs for room in rooms), Counter())
    failures: Counter[str] = sum((room.failures for room in rooms), Counter())
    events: Counter[str] = sum((room.events for room in rooms), Counter())
    panel_latencies = [x for room in rooms for x in room.panel_latencies]
    vote_latencies = [x for room in rooms for x in room.vote_latencies]
    at_open_latencies = [x for room in rooms for x in room.at_open_latencies]
    unanswered = [x for room in rooms for x in room.unanswered]
    join_latencies = [x for room in rooms for x in room.join_latencies]
    result: dict[str, Any] = {
        "phones": count,
        "sessions": len(rooms),
        "phones_per_session": len(rooms[0].seats),
        "stagger_s": stagger,
        "design": max(designs, key=designs.__getitem__) if designs else None,
        "designs": dict(designs),
        "wave": wave,
        "joined_s": joined_s,
        **join_cpu,
        "join_p50_ms": _ms(join_latencies, 0.5),
        "join_p99_ms": _ms(join_latencies, 0.99),
        "streams_open": sum(room.streaming for room in rooms),
        "presenter_open_ms": 1000 * max(presenter),
        "deadline_s": deadline,
        "held": within,
        "never_held": count - within,
        "held_p50_ms": 1000 * statistics.median(every_delay) if every_delay else None,
        "held_p99_ms": _ms(every_delay, 0.99),
        "held_max_ms": 1000 * max(every_delay) if every_delay else None,
        "held_window_s": held_window_s,
        "panel_requests": len(panel_latencies)
        + sum(n for k, n in failures.items() if k.startswith("panel")),
        "panel_requests_before_open": sum(room.panel_before_t0 for room in rooms),
        "panel_p50_ms": _ms(panel_latencies, 0.5),
        "panel_p99_ms": _ms(panel_latencies, 0.99),
        "votes_sent": sum(room.votes_sent for room in rooms),
        "votes_ok": len(vote_latencies),
        "vote_p50_ms": _ms(vote_latencies, 0.5),
        "vote_p99_ms": _ms(vote_latencies, 0.99),
        "votes_at_open": sum(room.votes_at_open for room in rooms),
        "vote_at_open_p50_ms": _ms(at_open_latencies, 0.5),
        "vote_at_open_p99_ms": _ms(at_open_latencies, 0.99),
        # the votes sent later in the window, as most of a room sends them
        "vote_later_p99_ms": _ms(
            list((Counter(vote_latencies) - Counter(at_open_latencies)).elements()), 0.99
        ),
        # Votes with no answer within the deadline: the phone shows them as still being sent.
        "unanswered": len(unanswered),
        "unanswered_at_open": sum(unanswered),
        "votes_done_s": votes_done_s,
        "failures": sum(failures.values()),
        # Refused by an abuse limit (app.limits): a hall behind one address must see none.
        "refused_429": sum(n for kind, n in failures.items() if kind.endswith(": 429")),
        "failure_kinds": dict(failures),
        "events": dict(events),
        "server_cpu_until_held_s": server_cpu_held,
        "client_cpu_until_held_s": client_cpu_held,
        "server_cpu_s": server_cpu_all,
        "client_cpu_s": client_cpu_all,
        "other_cpu_s": max(0.0, other_cpu),
        "rss_streaming": rss_streaming,
        "rss_end_mb": rss_end / 2**20,
        "sockets_per_worker": sockets_per_worker,
    }
    if stalls is not None:
        result.update(longest_stops(stalls, marks))
    if database_pid is not None:
        result["database_cpu_until_held_s"] = db_cpu_held
        result["database_cpu_s"] = db_cpu_all
    if len(rooms) > 1:
        result["per_session"] = [
            {
                "code": room.code,
                "presenter_open_ms": 1000 * seconds,
                "held_p50_ms": _ms(delays(room), 0.5),
                "held_p99_ms": _ms(delays(room), 0.99),
                "held_max_ms": _ms(delays(room), 1.0),
                "never_held": len(room.seats) - sum(1 for d in delays(room) if d <= deadline),
                "votes_ok": len(room.vote_latencies),
                "unanswered": len(room.unanswered),
                "failures": sum(room.failures.values()),
            }
            for room, seconds in zip(rooms, presenter, strict=True)
        ]
    return result


def stage_room(count: int, **options: Any) -> dict[str, Any]:
    return run(room(count, **options))


def _f(value: float | None, unit: str = " ms") -> str:
    return "-" if value is None else f"{value:.0f}{unit}"


def summary(r: dict[str, Any]) -> str:
    """The stage's lines for the table of ``run.py`` (a room, or a conference of several)."""
    failures = f" {r['failure_kinds']}" if r["failures"] else ""
    sessions = r.get("sessions", 1)
    joining = ""
    if "server_cpu_join_s" in r:  # CPU while joining: the machine's other load stretches time
        joining = f" (server CPU {r['server_cpu_join_s']:.1f} s"
        if "database_cpu_join_s" in r:
            joining += f", database {r['database_cpu_join_s']:.1f} s"
        joining += ")"
    if sessions > 1:
        opened = (
            "at the same moment" if not r["stagger_s"] else f"{1000 * r['stagger_s']:.0f} ms apart"
        )
        title = (
            f"conference: {sessions} sessions x {r['phones_per_session']} phones, the questions "
            f"opened {opened} ({r['design']} design): joined in {r['joined_s']:.1f} s{joining}"
        )
    else:
        title = (
            f"room {r['phones']} phones ({r['design']} design): joined in {r['joined_s']:.1f} s"
            f"{joining}"
        )
    database = (
        f", database {r['database_cpu_until_held_s']:.1f} s"
        if "database_cpu_until_held_s" in r
        else ""
    )
    lines = (
        f"{title} (page p50 {_f(r['join_p50_ms'])}, p99 {_f(r['join_p99_ms'])}), "
        f"{r['streams_open']} streams, {r['memory_per_phone_kb']:.0f} KB per phone\n"
        f"  holding the question after the presenter opened it: p50 {_f(r['held_p50_ms'])}, "
        f"p99 {_f(r['held_p99_ms'])}, max {_f(r['held_max_ms'])}; "
        f"never within {r['deadline_s']:.0f} s: {r['never_held']}\n"
        f"  panel requests {r['panel_requests']} (p50 {_f(r['panel_p50_ms'])}, "
        f"p99 {_f(r['panel_p99_ms'])}); votes {r['votes_ok']}/{r['votes_sent']} ok "
        f"(p50 {_f(r['vote_p50_ms'])}, p99 {_f(r['vote_p99_ms'])}; the {r['votes_at_open']} sent "
        f"the moment the question showed p50 {_f(r['vote_at_open_p50_ms'])}, "
        f"p99 {_f(r['vote_at_open_p99_ms'])}); failures {r['failures']}"
        f"{failures}, 429s {r.get('refused_429', 0)}\n"
        f"  votes unanswered {r['deadline_s']:.0f} s after they were sent: {r['unanswered']} "
        f"(sent at the opening: {r['unanswered_at_open']})\n"
        f"  rows stored {r['stored']} vs 200s {r['votes_ok']}; CPU in the "
        f"{r['held_window_s']:.2f} s from open to all held: server "
        f"{r['server_cpu_until_held_s']:.1f} s, client {r['client_cpu_until_held_s']:.1f} s"
        f"{database}; other processes until the votes were in: {r['other_cpu_s']:.1f} s"
    )
    if "loop_stop_room_ms" in r:

        def stop(ms: float) -> str:
            return f"{ms:.0f} ms" if ms else "< 20 ms"

        lines += (
            f"\n  the event loop's longest stop (any worker): {stop(r['loop_stop_room_ms'])} from "
            f"the opening until the votes were in ({r['loop_stops_room_over_100ms']} over "
            f"100 ms; counted in the server's CPU time {stop(r['loop_stop_room_cpu_ms'])}, in "
            f"its loop thread's {stop(r.get('loop_stop_room_loop_cpu_ms', 0.0))}), "
            f"{stop(r['loop_stop_join_ms'])} while joining; longest garbage collection "
            f"{stop(r['collection_longest_ms'])} (CPU {stop(r['collection_longest_cpu_ms'])})"
        )
    if len(r.get("sockets_per_worker", [])) > 1:
        lines += f"\n  sockets per worker with every phone connected: {r['sockets_per_worker']}"
    if sessions > 1:
        worst = max(r["per_session"], key=lambda x: x["held_max_ms"] or 0)
        lines += (
            f"\n  per session: held p99 {_f(min(x['held_p99_ms'] or 0 for x in r['per_session']))}"
            f"..{_f(max(x['held_p99_ms'] or 0 for x in r['per_session']))}; slowest session "
            f"{worst['code']}: max {_f(worst['held_max_ms'])}, its presenter's request "
            f"{_f(worst['presenter_open_ms'])}"
        )
    return lines


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("phones", type=int, nargs="*", default=[50])
    parser.add_argument("--wave", type=int, default=200)
    arguments = parser.parse_args()
    for n in arguments.phones:
        print(json.dumps(stage_room(n, wave=arguments.wave), indent=2))
