"""Durability: SIGKILL the server during a vote burst, restart it, and check that no vote it
acknowledged was lost and that the database is intact. 20 trials by default.

    .venv/bin/python bench/kill_test.py [--trials 20]
    .venv/bin/python bench/kill_test.py --postgres [--trials 20]

With ``--postgres``: two app processes on one PostgreSQL database (a throwaway server, or
``BELIEFGAP_TEST_POSTGRES_URL``), phones voting on both and holding streams on both; SIGKILL of
one mid-burst. Checked each trial: no vote either process acknowledged is lost, the other
process keeps acknowledging votes after the kill, its streams keep receiving updates, and a
phone of the killed one that reconnects to it gets a fresh snapshot.

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
from load import Stream

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


async def burst(
    port: int, code: str, acknowledged: dict[str, str], stop: asyncio.Event, workers: int = 32
) -> None:
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

    await asyncio.gather(*(worker() for _ in range(workers)))


async def trial(number: int) -> tuple[int, int, str]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        server = _server.start(data, extra_env=_server.MANY_NEW_PHONES)
        code = _server.open_session(server)
        acknowledged: dict[str, str] = {}
        stop = asyncio.Event()
        task = asyncio.create_task(burst(server.port, code, acknowledged, stop))
        await asyncio.sleep(random.uniform(0.5, 2.0))
        server.kill()  # mid-burst: requests are in flight, a batch may be half written
        stop.set()
        await task
        # The server must come back on the same files (recovery, migrations) and serve.
        restarted = _server.start(data, extra_env=_server.MANY_NEW_PHONES)
        restarted.stop()
        with sqlite3.connect(data / "beliefgap.db") as db:
            integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
            stored = dict(
                db.execute(
                    "SELECT p.public_id, o.key FROM response r "
                    "JOIN participant p ON p.id = r.participant_id "
                    "JOIN phase_option o ON o.id = r.option_id"
                ).fetchall()
            )
        lost = sum(1 for p, choice in acknowledged.items() if stored.get(p) != choice)
        print(
            f"trial {number:>2}: acknowledged {len(acknowledged):>5}, stored {len(stored):>5}, "
            f"lost {lost}, integrity {integrity}"
        )
        return len(acknowledged), lost, integrity


STORED_SQL = (
    "SELECT p.public_id, o.key FROM response r JOIN participant p ON p.id = r.participant_id "
    "JOIN phase_option o ON o.id = r.option_id"
)


async def postgres_trial(number: int, database: str, tmp: Path) -> tuple[int, int, str]:
    """Two processes on ``database``; SIGKILL one mid-burst (see the module's docstring)."""
    import httpx2 as httpx
    import psycopg
    from pg_stages import env_for

    from app.live.backends.postgres import libpq_url

    a = _server.start(
        tmp / f"a{number}", extra_env={**env_for(database), **_server.MANY_NEW_PHONES}
    )
    b = _server.start(
        tmp / f"b{number}", extra_env={**env_for(database), **_server.MANY_NEW_PHONES}
    )
    problems: list[str] = []
    try:
        code = _server.open_session(a)
        httpx.post(
            f"{a.url}/api/v1/sessions/{code}/phases/belief/reveal", headers=a.auth, timeout=10
        ).raise_for_status()  # so phones' streams carry the results as votes arrive
        streams = {"a": [Stream() for _ in range(10)], "b": [Stream() for _ in range(10)]}
        path = f"/api/v1/sessions/{code}/events"
        for name, server in (("a", a), ("b", b)):
            await asyncio.gather(*(s.open(server.port, path) for s in streams[name]))
        readers = [asyncio.create_task(s.read()) for group in streams.values() for s in group]
        acknowledged: dict[str, str] = {}
        after_kill: dict[str, str] = {}
        stop, stop_b = asyncio.Event(), asyncio.Event()
        on_a = asyncio.create_task(burst(a.port, code, acknowledged, stop, 16))
        on_b = asyncio.create_task(burst(b.port, code, acknowledged, stop_b, 16))
        await asyncio.sleep(random.uniform(0.5, 2.0))
        a.kill()  # mid-burst: a batch may be half written, its LISTEN connection dies with it
        stop.set()
        await on_a
        for s in streams["b"]:
            s.changed.clear()
        tail = asyncio.create_task(burst(b.port, code, after_kill, stop_b, 4))
        await asyncio.sleep(1.0)
        stop_b.set()
        await asyncio.gather(on_b, tail)
        acknowledged.update(after_kill)
        if not after_kill:
            problems.append("the other process acknowledged nothing after the kill")
        try:
            await asyncio.wait_for(
                asyncio.gather(*(s.changed.wait() for s in streams["b"])), timeout=5
            )
        except TimeoutError:
            problems.append("the other process's streams stopped receiving updates")
        # A phone of the killed process comes back to the survivor and starts from a snapshot.
        back = Stream()
        await back.open(b.port, path)
        reader = asyncio.create_task(back.read())
        try:
            await asyncio.wait_for(back.first.wait(), timeout=5)
        except TimeoutError:
            problems.append("a reconnecting phone got no snapshot")
        for s in [*streams["a"], *streams["b"], back]:
            s.close()
        for task in [*readers, reader]:
            task.cancel()
        with psycopg.connect(libpq_url(database)) as connection:
            stored = dict(connection.execute(STORED_SQL).fetchall())
        lost = sum(1 for p, choice in acknowledged.items() if stored.get(p) != choice)
        verdict = "ok" if not problems else "; ".join(problems)
        print(
            f"trial {number:>2}: acknowledged {len(acknowledged):>5} ({len(after_kill)} after "
            f"the kill), stored {len(stored):>5}, lost {lost}, {verdict}"
        )
        return len(acknowledged), lost, verdict
    finally:
        a.stop()
        b.stop()


async def postgres_trials(trials: int) -> list[tuple[int, int, str]]:
    from pg_stages import server_url

    from tests import pg

    results = []
    with server_url() as cluster, tempfile.TemporaryDirectory() as tmp:
        for number in range(1, trials + 1):
            with pg.fresh_database(cluster) as database:
                results.append(await postgres_trial(number, database, Path(tmp)))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--postgres", action="store_true", help="two processes on PostgreSQL")
    args = parser.parse_args()
    if args.postgres:
        results = asyncio.run(postgres_trials(args.trials))
    else:
        results = [asyncio.run(trial(i + 1)) for i in range(args.trials)]
    clean = sum(1 for _, lost, integrity in results if lost == 0 and integrity == "ok")
    checks = "the other process kept serving" if args.postgres else "passed integrity_check"
    print(f"\n{clean} of {args.trials} trials lost no acknowledged vote and {checks}")
    return 0 if clean == args.trials else 1


if __name__ == "__main__":
    raise SystemExit(main())
