"""The public results page of a talk with 10 sessions against bare ``GET /healthz``, both under
wrk (64 connections) on one uvicorn worker with a temporary SQLite file (target: the page at
>= 0.5x the baseline's requests per second; it is drawn once and then served as drawn).

    .venv/bin/python bench/public_page.py
    .venv/bin/python bench/public_page.py --seconds 10 --phones 2000
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

import httpx2 as httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _server
from load import wrk
from package import seed
from sqlmodel import Session

from app.main import prepare_database
from app.settings import Settings

TARGET = 0.5
CONNECTIONS = 64


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--phones", type=int, default=300, help="phones per session")
    parser.add_argument("--seconds", type=int, default=5, help="of wrk per address")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="beliefgap-bench-public-") as folder:
        data_dir = Path(folder)
        settings = Settings(data_dir=data_dir, admin_token=_server.ADMIN_TOKEN, secret_key="x" * 32)
        engine = prepare_database(settings)
        with Session(engine) as db:
            seed(db, args.sessions, args.phones, random.Random(28))
        engine.dispose()
        server = _server.start(data_dir)
        try:
            published = httpx.post(
                f"{server.url}/api/v1/talks/emergence/publication",
                json={},
                headers=server.auth,
                timeout=30,
            )
            published.raise_for_status()
            page = published.json()["url"]
            first = httpx.get(page, timeout=60)  # drawn once
            assert first.status_code == 200, first.status_code
            baseline = wrk(f"{server.url}/healthz", args.seconds, CONNECTIONS)
            public = wrk(page, args.seconds, CONNECTIONS)
        finally:
            server.stop()
    ratio = public["rps"] / baseline["rps"]
    print(
        f"GET /healthz: {baseline['rps']:.0f} req/s (p99 {baseline['p99_ms']:.1f} ms)\n"
        f"GET the public page of {args.sessions} sessions ({len(first.content) / 1000:.0f} kB):"
        f" {public['rps']:.0f} req/s (p99 {public['p99_ms']:.1f} ms), "
        f"{ratio:.2f}x the baseline (target >= {TARGET}x); refused {public['refused']}"
    )
    return 0 if ratio >= TARGET and public["refused"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
