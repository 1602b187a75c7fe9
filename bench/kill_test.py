"""Durability: SIGKILL the server during a vote burst, restart it, and check that no vote it
acknowledged was lost and that the database is intact. 20 trials by default.

    .venv/bin/python bench/kill_test.py [--trials 20]

A vote is acknowledged (200) only after its transaction commits. With SQLite in WAL mode and
synchronous=NORMAL a committed transaction survives the death of the process (it is in the WAL
file, which the next open replays); only a power cut could lose the last commits, which
synchronous=FULL would prevent at a cost measured by ``bench/run.py --synchronous FULL``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _server

CHOICES = ["agree", "disagree", "unsure"]


async def vote(port: int, code: str, choice: str) -> str | None:
    """One vote from a new phone; the participant id if it was acknowledged, else None."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = json.dumps({"phase": "belief", "choice": choice}).encode()
        writer.write(
            f"POST /api/v1/sessions/{code}/votes HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        response = await reader.read()
        writer.close()
    except (ConnectionError, OSError):
        return None
    head, _, payload = response.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        return None
    try:
        return str(json.loads(payload)["participant"])
    except ValueError:  # the process died between the status line and the body
        return None


async def burst(port: int, code: str, acknowledged: dict[str, str], stop: asyncio.Event) -> None:
    async def worker() -> None:
        while not stop.is_set():
            choice = random.choice(CHOICES)
            participant = await vote(port, code, choice)
            if participant is None:
                if stop.is_set():
                    return
                await asyncio.sleep(0.01)
                continue
            acknowledged[participant] = choice

    await asyncio.gather(*(worker() for _ in range(32)))


async def trial(number: int) -> tuple[int, int, str]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        server = _server.start(data)
        code = _server.open_session(server)
        acknowledged: dict[str, str] = {}
        stop = asyncio.Event()
        task = asyncio.create_task(burst(server.port, code, acknowledged, stop))
        await asyncio.sleep(random.uniform(0.5, 2.0))
        server.kill()  # mid-burst: requests are in flight, a batch may be half written
        stop.set()
        await task
        # The server must come back on the same files (recovery, migrations) and serve.
        restarted = _server.start(data)
        restarted.stop()
        with sqlite3.connect(data / "beliefgap.db") as db:
            integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
            stored = dict(
                db.execute(
                    "SELECT CAST(r.participant_id AS TEXT), o.key FROM response r "
                    "JOIN phase_option o ON o.id = r.option_id"
                ).fetchall()
            )
        lost = sum(1 for p, choice in acknowledged.items() if stored.get(p) != choice)
        print(
            f"trial {number:>2}: acknowledged {len(acknowledged):>5}, stored {len(stored):>5}, "
            f"lost {lost}, integrity {integrity}"
        )
        return len(acknowledged), lost, integrity


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    results = [asyncio.run(trial(i + 1)) for i in range(args.trials)]
    clean = sum(1 for _, lost, integrity in results if lost == 0 and integrity == "ok")
    print(f"\n{clean} of {args.trials} trials lost no acknowledged vote and passed integrity_check")
    return 0 if clean == args.trials else 1


if __name__ == "__main__":
    raise SystemExit(main())
