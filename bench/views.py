"""The read-only view under a full room: `.venv/bin/python bench/views.py [--phones 2000]
[--views 200] [--changes 10]`.

Against one fresh uvicorn worker on SQLite: a session, its view address (made as the control
page makes it), ``phones`` phone streams (``/api/v1/sessions/{code}/events?view=phone``) and
``views`` view streams (``/view/{token}/events``) held open on raw sockets; then the presenter
moves the question ``changes`` times (open, close, ...), and each phone and view notes when the
``state`` event reaches it.

Measured: the time from each change's request until each stream has its ``state`` event
(p50/p99/max, views and phones apart), the server's memory per stream (RSS with the phones'
streams open, then with the views' too), the bytes each kind of stream received, and the
server's CPU time over the changes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx2 as httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _server
from phone import raise_fd_limit, read_chunk, read_head
from procs import tree_cpu_seconds, tree_rss_bytes

DEADLINE = 30.0


class Stream:
    """One event stream on a raw socket: when each ``state`` event arrived, bytes received."""

    def __init__(self) -> None:
        self.states: list[float] = []
        self.bytes = 0
        self.arrived = asyncio.Event()

    async def hold(self, port: int, path: str, ready: asyncio.Semaphore) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        status, _ = await read_head(reader)
        ready.release()
        if status != 200:
            raise RuntimeError(f"{path}: {status}")
        pending = b""
        try:
            while chunk := await read_chunk(reader):
                now = time.perf_counter()
                self.bytes += len(chunk)
                pending += chunk
                *events, pending = pending.split(b"\n\n")
                if any(event.startswith(b"event: state") for event in events):
                    self.states.append(now)
                    self.arrived.set()
        finally:
            writer.close()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def open_streams(
    port: int, paths: list[str]
) -> tuple[list[Stream], list[asyncio.Task[None]]]:
    streams = [Stream() for _ in paths]
    ready = asyncio.Semaphore(0)
    tasks = [
        asyncio.create_task(s.hold(port, p, ready)) for s, p in zip(streams, paths, strict=True)
    ]
    for _ in paths:
        await asyncio.wait_for(ready.acquire(), DEADLINE)
    # each has its snapshot's state
    await asyncio.wait_for(asyncio.gather(*(s.arrived.wait() for s in streams)), DEADLINE)
    return streams, tasks


async def main(phones: int, views: int, changes: int) -> dict[str, object]:
    raise_fd_limit()
    with tempfile.TemporaryDirectory() as tmp:
        server = _server.start(Path(tmp))
        try:
            pid = server.process.pid
            with httpx.Client(base_url=server.url, timeout=10) as presenter:
                code = presenter.post(
                    "/api/v1/sessions",
                    json={"talk": "emergence", "venue": "Bench"},
                    headers=server.auth,
                ).json()["code"]
                presenter.post(
                    "/presenter/login",
                    data={"token": server.admin_token},
                    headers={"Sec-Fetch-Site": "same-origin"},
                )
                page = presenter.post(
                    f"/presenter/sessions/{code}/tokens/view",
                    headers={"Sec-Fetch-Site": "same-origin"},
                )
                found = re.search(r'value="[^"]*/view/([^"]+)" data-token="view"', page.text)
                assert found is not None
                token = found.group(1)
            rss_start = tree_rss_bytes(pid)
            phone_streams, phone_tasks = await open_streams(
                server.port, [f"/api/v1/sessions/{code}/events?lang=en&view=phone"] * phones
            )
            rss_phones = tree_rss_bytes(pid)
            view_streams, view_tasks = await open_streams(
                server.port, [f"/view/{token}/events?lang=en"] * views
            )
            rss_views = tree_rss_bytes(pid)
            bytes_before = {id(s): s.bytes for s in phone_streams + view_streams}
            cpu_before = tree_cpu_seconds(pid)
            lat_views: list[float] = []
            lat_phones: list[float] = []
            async with httpx.AsyncClient(
                base_url=server.url, headers=server.auth, timeout=10
            ) as api:
                for change in range(changes):
                    action = "open" if change % 2 == 0 else "close"
                    seen = [len(s.states) for s in phone_streams + view_streams]
                    for s in phone_streams + view_streams:
                        s.arrived.clear()
                    t0 = time.perf_counter()
                    answer = await api.post(f"/api/v1/sessions/{code}/phases/belief/{action}")
                    answer.raise_for_status()
                    deadline = time.perf_counter() + DEADLINE
                    for s, before in zip(phone_streams + view_streams, seen, strict=True):
                        while len(s.states) <= before:
                            s.arrived.clear()
                            await asyncio.wait_for(
                                s.arrived.wait(), max(0.1, deadline - time.perf_counter())
                            )
                    for s, before in zip(phone_streams, seen[:phones], strict=True):
                        lat_phones.append(s.states[before] - t0)
                    for s, before in zip(view_streams, seen[phones:], strict=True):
                        lat_views.append(s.states[before] - t0)
            cpu = tree_cpu_seconds(pid) - cpu_before

            def per(streams: list[Stream]) -> float:
                if not streams:
                    return float("nan")
                return statistics.mean(s.bytes - bytes_before[id(s)] for s in streams) / changes

            result = {
                "phones": phones,
                "views": views,
                "changes": changes,
                "view_state_ms": {
                    q: round(percentile(lat_views, v) * 1000, 1)
                    for q, v in (("p50", 0.5), ("p99", 0.99), ("max", 1.0))
                },
                "phone_state_ms": {
                    q: round(percentile(lat_phones, v) * 1000, 1)
                    for q, v in (("p50", 0.5), ("p99", 0.99), ("max", 1.0))
                },
                "rss_kb_per_phone": round((rss_phones - rss_start) / max(phones, 1) / 1024, 1),
                "rss_kb_per_view": round((rss_views - rss_phones) / max(views, 1) / 1024, 1),
                "bytes_per_change_phone": round(per(phone_streams), 0),
                "bytes_per_change_view": round(per(view_streams), 0),
                "server_cpu_s_over_changes": round(cpu, 2),
            }
            for task in phone_tasks + view_tasks:
                task.cancel()
            await asyncio.gather(*phone_tasks, *view_tasks, return_exceptions=True)
            return result
        finally:
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phones", type=int, default=2000)
    parser.add_argument("--views", type=int, default=200)
    parser.add_argument("--changes", type=int, default=10)
    options = parser.parse_args()
    print(json.dumps(asyncio.run(main(options.phones, options.views, options.changes)), indent=2))
