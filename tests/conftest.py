"""Every test gets its own app on its own SQLite file in a temporary directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.live import RecordingPublisher
from app.main import create_app
from app.settings import Settings

ADMIN_TOKEN = "test-admin-token-0123456789"
SECRET_KEY = "test-secret-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        admin_token=ADMIN_TOKEN,
        secret_key=SECRET_KEY,
        public_url="http://testserver",
    )


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def app(settings: Settings, publisher: RecordingPublisher) -> FastAPI:
    return create_app(settings, publisher=publisher)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def live_app(settings: Settings) -> FastAPI:
    """The app with its real broadcaster as the publisher (no recording stand-in)."""
    return create_app(settings)


@pytest.fixture
def live_client(live_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(live_app) as client:
        yield client


def new_session(client: TestClient, talk: str = "emergence", venue: str = "Copenhagen") -> str:
    response = client.post("/api/v1/sessions", json={"talk": talk, "venue": venue}, headers=AUTH)
    assert response.status_code == 201, response.text
    return str(response.json()["code"])


def phase_action(client: TestClient, code: str, phase: str, action: str, **params: int) -> dict:
    response = client.post(
        f"/api/v1/sessions/{code}/phases/{phase}/{action}", headers=AUTH, params=params
    )
    assert response.status_code == 200, response.text
    return dict(response.json())
