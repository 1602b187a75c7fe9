"""Bad input and faults around the database: a database that cannot be reached at start-up
stops the server with one clear line and nothing written; while it is away, requests get 503
with Retry-After (never a 500) and a vote answered 503 stored nothing; when it is back, votes
are taken again and live streams catch up.

Without a marker on SQLite (and an unreachable PostgreSQL address); ``postgres``: a private
PostgreSQL server is stopped and started again under a running app."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx
import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, func
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, select

from app import db as app_db
from app.errors import (
    DatabaseUnreachable,
    database_outage,
    database_unavailable,
    redacted_url,
    transaction_rolled_back,
)
from app.live.backends.postgres import libpq_url
from app.main import create_app
from app.models import Participant, Response
from app.settings import Settings
from app.vote_writer import VoteWriter
from tests import liveserver, pg
from tests.conftest import ADMIN_TOKEN, AUTH, SECRET_KEY, new_session, phase_action
from tests.test_audience import HX, form_data, soup_of
from tests.test_postgres import until, until_all
from tests.test_stream import sse_events
from tests.test_vote_writer import write_lock

PASSWORD = "s3cret-pw"
SERVE = (sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1")
DEADLINE = 10.0


@pytest.fixture(autouse=True)
def fresh_outage_log() -> Iterator[None]:
    """The app's outage log is one per process: each test starts and ends with no outage."""
    database_outage.recovered()
    yield
    database_outage.recovered()


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BELIEFGAP_")}
    return {**env, "PYTHONPATH": str(liveserver.ROOT), **extra}


def closed_port_url() -> str:
    """PostgreSQL on 127.0.0.1 at a port nobody listens on: refused at once."""
    return f"postgresql://bg:{PASSWORD}@127.0.0.1:{liveserver.free_port()}/beliefgap"


def serve(data_dir: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    """``beliefgap serve`` with nothing set but the database (so it would generate secrets)."""
    data_dir.mkdir(exist_ok=True)
    return subprocess.run(  # our own interpreter, fixed arguments
        [*SERVE, "--port", str(liveserver.free_port())],
        cwd=data_dir,
        env=clean_env(BELIEFGAP_DATA_DIR=str(data_dir), BELIEFGAP_DATABASE_URL=database_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_clear_line(result: subprocess.CompletedProcess[str], url: str, why: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert result.stdout == "", output  # it never said it was running
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, output
    line = lines[0]
    assert line.startswith(f"beliefgap: cannot reach the database at {redacted_url(url)}: "), line
    assert re.search(why, line), line
    assert "Traceback" not in output
    assert PASSWORD not in output
    return line


# --------------------------------------------------------------------------- start-up


@pytest.mark.parametrize(
    ("url", "why"),
    [
        pytest.param(closed_port_url(), r"Connection refused", id="unreachable"),
        pytest.param(
            f"postgresql://bg:{PASSWORD}@127.0.0.1:port/beliefgap",
            r"not a valid database URL",
            id="malformed",
        ),
        pytest.param("a database, please", r"not a database URL", id="not-a-url"),
        pytest.param(
            f"nosuchdb://bg:{PASSWORD}@127.0.0.1/beliefgap", r"dialect or driver", id="no-driver"
        ),
    ],
)
def test_serve_without_its_database_says_so_in_one_line_and_writes_nothing(
    tmp_path: Path, url: str, why: str
) -> None:
    started = time.monotonic()
    result = serve(tmp_path / "data", url)
    assert time.monotonic() - started < 30
    line = assert_one_clear_line(result, url, why)
    if url.startswith("postgresql://bg:"):
        assert "postgresql://bg:***@127.0.0.1:" in line
    assert list((tmp_path / "data").iterdir()) == []  # no secrets, no database file


def test_serve_with_a_sqlite_file_it_cannot_make_says_so(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    url = f"sqlite:///{tmp_path / 'a-file' / 'beliefgap.db'}"
    result = serve(tmp_path / "data", url)
    assert_one_clear_line(result, url, r"File exists|Not a directory")
    assert list((tmp_path / "data").iterdir()) == []


def test_create_app_without_its_database_raises_one_line_before_writing_anything(
    tmp_path: Path,
) -> None:
    url = closed_port_url()
    with pytest.raises(DatabaseUnreachable) as raised:
        create_app(Settings(data_dir=tmp_path, database_url=url))
    message = str(raised.value)
    assert message.startswith("cannot reach the database at postgresql://bg:***@127.0.0.1:")
    assert "Connection refused" in message
    assert "\n" not in message and PASSWORD not in message
    assert list(tmp_path.iterdir()) == []  # not even the generated secrets


def test_uvicorn_without_its_database_fails_with_that_line(tmp_path: Path) -> None:
    url = closed_port_url()
    result = subprocess.run(  # our own interpreter, fixed arguments
        [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(liveserver.free_port())],
        cwd=tmp_path,
        env=clean_env(BELIEFGAP_DATA_DIR=str(tmp_path), BELIEFGAP_DATABASE_URL=url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"app.errors.DatabaseUnreachable: cannot reach the database at {redacted_url(url)}: "
    ), result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == []


def test_passwords_are_hidden_however_the_url_is_written() -> None:
    assert redacted_url("postgresql://u:p@ss/w@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redacted_url("postgresql://u@h/db?password=x&sslmode=require") == (
        "postgresql://u@h/db?password=***&sslmode=require"
    )
    assert redacted_url("sqlite:///data/beliefgap.db") == "sqlite:///data/beliefgap.db"
    assert redacted_url("no url at all") == "no url at all"


def test_what_counts_as_the_database_being_away() -> None:
    locked = OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
    assert database_unavailable(locked)
    assert database_unavailable(psycopg.OperationalError("connection refused"))
    bad_ballot = IntegrityError("INSERT", {}, sqlite3.IntegrityError("FOREIGN KEY failed"))
    assert not database_unavailable(bad_ballot)
    deadlock = OperationalError("INSERT", {}, psycopg.errors.DeadlockDetected("deadlock"))
    assert transaction_rolled_back(deadlock)  # tried again vote by vote, not refused
    assert not transaction_rolled_back(locked)


# --------------------------------------------------------------------------- SQLite faults


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        admin_token=ADMIN_TOKEN,
        secret_key=SECRET_KEY,
        public_url="http://testserver",
    )


def count(app: FastAPI, table: type) -> int:
    with Session(app.state.engine) as db:
        return db.exec(select(func.count()).select_from(table)).one()


def warnings_of(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage()]


def test_a_locked_database_refuses_the_whole_batch_at_once_and_stores_nothing(
    sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(app_db, "SQLITE_BUSY_TIMEOUT_MS", 200)  # "database is locked" soon
    app = create_app(sqlite_settings)
    with TestClient(app) as client:
        code = new_session(client)
        phase_action(client, code, "belief", "open")
        writer: VoteWriter = app.state.vote_writer
        attempts: list[int] = []
        commit = writer._commit

        def counted(batch: list[Any]) -> Any:
            attempts.append(len(batch))
            return commit(batch)

        monkeypatch.setattr(writer, "_commit", counted)
        transport = httpx.ASGITransport(app=app)

        async def votes(n: int) -> list[httpx.Response]:
            async def one(i: int) -> httpx.Response:
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://testserver"
                ) as phone:
                    return await phone.post(
                        f"/api/v1/sessions/{code}/votes",
                        json={"phase": "belief", "choice": "agree"},
                    )

            return list(await asyncio.gather(*(one(i) for i in range(n))))

        with caplog.at_level(logging.INFO), write_lock(app):
            refused = asyncio.run(votes(40))
        assert {r.status_code for r in refused} == {503}
        assert {r.json()["code"] for r in refused} == {"database_unavailable"}
        assert {r.headers.get("retry-after") for r in refused} == {"2"}
        assert all(not r.cookies for r in refused)  # no participant was handed out
        # One attempt per batch (40 votes in a few batches), not one more per vote.
        assert sum(attempts) == 40, attempts
        assert len(attempts) <= 4, attempts
        assert count(app, Response) == 0 and count(app, Participant) == 0
        assert len(warnings_of(caplog, "the database cannot be reached")) == 1
        assert [r for r in caplog.records if r.exc_info] == []  # no traceback per vote

        with caplog.at_level(logging.INFO):
            stored = asyncio.run(votes(3))
        assert {r.status_code for r in stored} == {200}
        assert count(app, Response) == 3
        assert len(warnings_of(caplog, "the database is reachable again")) == 1


@contextmanager
def database_away(app: FastAPI) -> Iterator[None]:
    """Every new connection fails as a missing SQLite file would; the pool is emptied and the
    vote writer's own connection broken, so nothing reaches the database until the block ends."""

    def refuse(*_args: object) -> None:
        raise sqlite3.OperationalError("unable to open database file")

    engine = app.state.engine
    event.listen(engine, "do_connect", refuse)
    engine.dispose()
    writer: VoteWriter = app.state.vote_writer
    if writer._connection is not None:
        dbapi_connection = writer._connection.connection.dbapi_connection
        assert dbapi_connection is not None
        dbapi_connection.close()
    try:
        yield
    finally:
        event.remove(engine, "do_connect", refuse)


def test_while_the_database_is_away_every_request_gets_503_and_one_warning(
    sqlite_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(sqlite_settings)
    with TestClient(app) as client:
        code = new_session(client)
        phase_action(client, code, "belief", "open")
        phone = TestClient(app)
        page = soup_of(phone.get(f"/j/{code}").text)
        form = {**form_data(page), "phase": "belief", "choice": "agree", "lang": "en"}
        assert phone.post(f"/j/{code}/vote", data=form, headers=HX).status_code == 200
        before = count(app, Response)

        with caplog.at_level(logging.INFO), database_away(app):
            api_vote = client.post(
                f"/api/v1/sessions/{code}/votes", json={"phase": "belief", "choice": "disagree"}
            )
            form_vote = phone.post(f"/j/{code}/vote", data={**form, "choice": "unsure"}, headers=HX)
            answered_page = phone.get(f"/j/{code}")
            unknown_page = client.get("/j/ZZZ999")
            panel = phone.get(f"/j/{code}/panel")
            api_session = client.get(f"/api/v1/sessions/{code}")
            stream = client.get("/api/v1/sessions/ZZZ999/events")
            dashboard = client.get(f"/presenter/sessions/{code}", headers=AUTH)
            results = client.get(f"/api/v1/sessions/{code}/results", headers=AUTH)

        assert api_vote.status_code == 503
        assert api_vote.json()["code"] == "database_unavailable"
        assert form_vote.status_code == 503  # not swapped in: the page sends it again
        for response in (api_vote, answered_page, unknown_page, panel, api_session, stream):
            assert response.status_code == 503, (response.url, response.text)
            assert response.headers["retry-after"] == "2", response.url
        for response in (dashboard, results):
            assert response.status_code == 503, (response.url, response.text)
        for response in (api_session, stream, results):
            assert response.json() == {
                "detail": "the database cannot be reached; try again in a moment",
                "code": "database_unavailable",
            }
        for response in (answered_page, unknown_page, panel, dashboard):
            assert response.headers["content-type"].startswith("text/html")
            assert "Please try again in a moment" in response.text
            assert "请稍后再试" in response.text
        assert len(warnings_of(caplog, "the database cannot be reached")) == 1
        assert [r for r in caplog.records if r.exc_info] == []  # no traceback per request

        # Back: the pool connects again and the votes refused above can be sent again.
        assert count(app, Response) == before
        again = phone.post(f"/j/{code}/vote", data={**form, "choice": "unsure"}, headers=HX)
        assert again.status_code == 200
        assert phone.get(f"/j/{code}").status_code == 200
        assert client.get(f"/api/v1/sessions/{code}").status_code == 200


def test_any_other_database_error_is_still_a_bug(
    sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(sqlite_settings)

    def broken(*_args: object) -> None:
        raise IntegrityError("SELECT", {}, sqlite3.IntegrityError("a bug"))

    monkeypatch.setattr(app.state.sessions, "content", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/j/ZZZ999").status_code == 500


# --------------------------------------------------------------------------- PostgreSQL


@pytest.mark.postgres
def test_serve_with_a_database_that_does_not_exist_says_so(
    postgres_server: str, tmp_path: Path
) -> None:
    parts = libpq_url(postgres_server).split("@", 1)[1].split("/", 1)[0]
    url = f"postgresql://beliefgap:{PASSWORD}@{parts}/no_such_database"
    result = serve(tmp_path / "data", url)
    assert_one_clear_line(result, url, r'database "no_such_database" does not exist')
    assert list((tmp_path / "data").iterdir()) == []


def stored_participants(url: str, code: str) -> list[str]:
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        rows = connection.execute(
            "SELECT p.public_id FROM response r JOIN participant p ON p.id = r.participant_id "
            "JOIN poll_session s ON s.id = r.session_id WHERE s.code = %s",
            (code,),
        ).fetchall()
    return sorted(who for (who,) in rows)


class Phones:
    """Phones that keep voting as the page does: load the page (its participant cookie), send
    the vote, and on a 503 or a network error send it again until it is taken."""

    def __init__(self, base: str, code: str) -> None:
        self.base, self.code = base, code
        self.acknowledged: list[str] = []
        self.statuses: list[int] = []
        self.missing_retry_after = 0
        self.errors: list[BaseException] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def _until_taken(self, send: Any) -> httpx.Response:
        deadline = time.monotonic() + 60
        while True:
            try:
                response: httpx.Response | None = send()
            except httpx.TransportError:
                response = None
            if response is not None:
                with self.lock:
                    self.statuses.append(response.status_code)
                    if response.status_code == 503 and "retry-after" not in response.headers:
                        self.missing_retry_after += 1
                if response.status_code != 503:
                    return response
            assert time.monotonic() < deadline, "a phone could not vote for a minute"
            time.sleep(0.05)

    def run(self) -> None:
        try:
            self._vote_until_stopped()
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.errors.append(exc)

    def _vote_until_stopped(self) -> None:
        while not self.stop.is_set():
            with httpx.Client(base_url=self.base, timeout=DEADLINE) as phone:
                page = self._until_taken(lambda: phone.get(f"/j/{self.code}"))
                assert page.status_code == 200, page.text
                vote = self._until_taken(
                    lambda: phone.post(
                        f"/api/v1/sessions/{self.code}/votes",
                        json={"phase": "belief", "choice": "agree"},
                    )
                )
                assert vote.status_code == 200, vote.text
                with self.lock:
                    self.acknowledged.append(vote.json()["participant"])


@pytest.mark.postgres
def test_a_database_restart_during_a_talk_loses_no_acknowledged_vote(tmp_path: Path) -> None:
    with ExitStack() as stack:
        server = stack.enter_context(pg.restartable_cluster())
        app = liveserver.start(
            tmp_path,
            ADMIN_TOKEN,
            env={"BELIEFGAP_DATABASE_URL": server.url, "BELIEFGAP_SECRET_KEY": SECRET_KEY},
        )
        stack.callback(app.stop)
        api = stack.enter_context(httpx.Client(base_url=app.url, timeout=DEADLINE))
        created = api.post(
            "/api/v1/sessions", json={"talk": "emergence", "venue": "Oslo"}, headers=app.auth
        )
        code = created.json()["code"]
        for action in ("open", "reveal"):
            api.post(
                f"/api/v1/sessions/{code}/phases/belief/{action}", headers=app.auth
            ).raise_for_status()

        # A phone on the page: its stream open, its vote sent from the page's form.
        phone = stack.enter_context(httpx.Client(base_url=app.url, timeout=DEADLINE))
        page = phone.get(f"/j/{code}")
        assert page.status_code == 200
        form = {**form_data(soup_of(page.text)), "phase": "belief", "lang": "en"}
        stream = stack.enter_context(
            httpx.stream(
                "GET",
                f"{app.url}/api/v1/sessions/{code}/events",
                params={"view": "phone"},
                timeout=DEADLINE,
            )
        )
        events = sse_events(stream)
        until(events, "panel", r'data-open="belief@"')
        voted = phone.post(f"/j/{code}/vote", data={**form, "choice": "agree"}, headers=HX)
        assert voted.status_code == 200
        until(events, "results", r"\(1\)")

        phones = Phones(app.url, code)
        threads = [threading.Thread(target=phones.run) for _ in range(4)]
        for thread in threads:
            thread.start()
        stack.callback(lambda: [t.join(timeout=90) for t in threads])
        stack.callback(phones.stop.set)
        time.sleep(0.5)

        server.stop("fast")  # the database restarts: first it goes away
        try:
            time.sleep(0.5)
            api_vote = api.post(
                f"/api/v1/sessions/{code}/votes", json={"phase": "belief", "choice": "disagree"}
            )
            form_vote = phone.post(f"/j/{code}/vote", data={**form, "choice": "unsure"}, headers=HX)
            answered_page = phone.get(f"/j/{code}")
            session_get = api.get(f"/api/v1/sessions/{code}")
            dashboard = api.get(f"/presenter/sessions/{code}", headers=app.auth)
            time.sleep(1.0)
        finally:
            server.start()  # ... and comes back
        assert api_vote.status_code == 503, api_vote.text
        assert api_vote.json()["code"] == "database_unavailable"
        assert api_vote.headers["retry-after"] == "2"
        assert "bg_p_" not in api_vote.headers.get("set-cookie", "")
        assert form_vote.status_code == 503, form_vote.text
        for response in (answered_page, session_get, dashboard):
            assert response.status_code == 503, (response.url, response.text)
            assert response.headers["retry-after"] == "2"

        # The listener is back: the stream gets a fresh snapshot though nothing changed.
        until_all(events, {"state": '"state":"open"', "panel": r'data-open="belief@"'})
        # Votes are taken again within a few seconds (the pool reconnects).
        deadline = time.monotonic() + DEADLINE
        while True:
            again = phone.post(f"/j/{code}/vote", data={**form, "choice": "unsure"}, headers=HX)
            if again.status_code == 200:
                break
            assert again.status_code == 503, again.text
            assert time.monotonic() < deadline, "votes were still refused after the restart"
            time.sleep(0.2)
        time.sleep(1.0)  # the phones vote after the restart too
        phones.stop.set()
        for thread in threads:
            thread.join(timeout=90)
            assert not thread.is_alive()

        assert phones.errors == []
        assert set(phones.statuses) <= {200, 503}, set(phones.statuses)
        assert 503 in phones.statuses, "the phones should have met the outage"
        assert phones.missing_retry_after == 0
        # Every vote answered 200 is stored, and nothing else: each phone sent its vote until
        # it was taken, and a 503 stored nothing (or, sent again, the same answer once).
        stored = stored_participants(server.url, code)
        assert len(set(phones.acknowledged)) == len(phones.acknowledged)
        assert set(phones.acknowledged) <= set(stored)
        assert len(stored) == len(phones.acknowledged) + 1  # and the page's phone

        # A new phone's vote after the restart reaches the stream.
        late = httpx.post(
            f"{app.url}/api/v1/sessions/{code}/votes",
            json={"phase": "belief", "choice": "disagree"},
            timeout=DEADLINE,
        )
        assert late.status_code == 200, late.text
        until(events, "results", rf"n = {len(stored) + 1}<")
        assert len(stored_participants(server.url, code)) == len(stored) + 1
    output = app.output()
    assert "Exception in ASGI application" not in output, output  # no request failed with one
    assert not re.search(r'" 5\d\d (?!Service Unavailable)', output), output  # 503s only
    assert output.count("the database cannot be reached") == 1, output  # once, not per request
    assert "the database is reachable again" in output
