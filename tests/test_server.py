"""The real server: ``uvicorn app.main:app`` started in an empty directory."""

from __future__ import annotations

from pathlib import Path

import httpx2 as httpx

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
