"""Load tools shared by the stages: wrk (and its output parsed), API votes from new phones, and
raw event streams that note when each event arrives."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from pathlib import Path
from typing import Any

VOTE_BODY = '{"phase": "belief", "choice": "agree"}'
WRK_THREADS = 2

VOTE_LUA = (
    'wrk.method = "POST"\n'
    f"wrk.body = '{VOTE_BODY}'\n"
    'wrk.headers["Content-Type"] = "application/json"\n'
)
"""API votes under wrk: wrk keeps no cookies, so every request is a new phone."""


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


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


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

    def last(self, name: str) -> float:
        """When the latest event of that name arrived."""
        return next(t for t, event in reversed(self.events) if event == name)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def open_streams(
    port: int, code: str, count: int
) -> tuple[list[Stream], list[asyncio.Task[None]]]:
    streams = [Stream() for _ in range(count)]
    path = f"/api/v1/sessions/{code}/events"
    for start in range(0, count, 200):  # connect in waves, as phones do after a QR code
        batch = streams[start : start + 200]
        await asyncio.gather(*(s.open(port, path) for s in batch))
    tasks = [asyncio.create_task(s.read()) for s in streams]
    await asyncio.wait_for(asyncio.gather(*(s.first.wait() for s in streams)), timeout=120)
    return streams, tasks


async def vote(port: int, code: str) -> float:
    """One API vote from a new participant; returns the moment its 200 arrived."""
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


async def close_streams(streams: list[Stream], tasks: list[asyncio.Task[None]]) -> None:
    """Close the streams and let the loop run once more, so the sockets are really closed
    before the server is asked to stop (it waits for open connections, up to the kill)."""
    for s in streams:
        s.close()
    for task in tasks:
        task.cancel()
    await asyncio.sleep(0.2)
