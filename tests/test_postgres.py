"""The app on a real PostgreSQL server (``BELIEFGAP_TEST_POSTGRES_URL``; ``make test-postgres``
starts a throwaway one): migrations, votes and results in one process; then two uvicorn
processes on one database behaving as one server: live updates cross, concurrent votes from one
phone leave one row, no vote is stored after a close commits, and a lost LISTEN connection comes
back with a fresh snapshot for every stream."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect, text
from sqlmodel import SQLModel

from app.live import SessionChanged
from app.live.backends.postgres import LISTEN_APPLICATION, PostgresBackend, libpq_url
from app.main import create_app
from app.settings import Settings
from tests import liveserver, pg
from tests.conftest import ADMIN_TOKEN, AUTH, SECRET_KEY, new_session, phase_action
from tests.liveserver import LiveServer
from tests.test_stream import sse_events

pytestmark = pytest.mark.postgres

DEADLINE = 10.0


def settings_for(tmp_path: Path, database_url: str = "") -> Settings:
    return Settings(
        data_dir=tmp_path,
        admin_token=ADMIN_TOKEN,
        secret_key=SECRET_KEY,
        public_url="http://testserver",
        database_url=database_url,
    )


# --------------------------------------------------------------------------- one process

ROOM = [  # (definition, belief, field, revote) per phone
    ("d1", "agree", "disagree", "agree"),
    ("d2", "agree", "disagree", "disagree"),
    ("d1", "disagree", "agree", "disagree"),
    ("other", "unsure", "disagree", "agree"),
    ("d3", "agree", "unsure", "agree"),
    ("d1", "disagree", "disagree", "unsure"),
    ("d4", "agree", "agree", "agree"),
]
PHASES = ("definition", "belief", "field", "revote")


def run_room(client: TestClient) -> dict:
    """The same room on any database: every phone answers every phase, one changes its mind."""
    code = new_session(client)
    for phase in PHASES:
        phase_action(client, code, phase, "open")
    for answers in ROOM:
        client.cookies.clear()
        for phase, choice in zip(PHASES, answers, strict=True):
            response = client.post(
                f"/api/v1/sessions/{code}/votes", json={"phase": phase, "choice": choice}
            )
            assert response.status_code == 200, response.text
    changed = client.post(
        f"/api/v1/sessions/{code}/votes", json={"phase": "revote", "choice": "unsure"}
    )
    assert changed.status_code == 200  # the last phone changes its revote: replaced, not added
    phase_action(client, code, "belief", "close")
    late = client.post(
        f"/api/v1/sessions/{code}/votes", json={"phase": "belief", "choice": "agree"}
    )
    assert late.status_code == 409
    results = client.get(f"/api/v1/sessions/{code}/results", headers=AUTH).json()
    del results["session"]
    return dict(results)


def test_the_app_on_postgresql_migrates_stores_votes_and_gives_the_results_sqlite_gives(
    tmp_path: Path, postgres_database: str
) -> None:
    settings = settings_for(tmp_path / "pg", postgres_database)
    assert settings.broadcast_url == postgres_database  # live updates follow the database
    app = create_app(settings)
    engine: Engine = app.state.engine
    assert engine.dialect.name == "postgresql"
    assert isinstance(app.state.broadcaster.backend, PostgresBackend)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        assert compare_metadata(MigrationContext.configure(connection), SQLModel.metadata) == []
    assert {"participant", "response", "session_phase"} <= set(inspect(engine).get_table_names())
    with TestClient(app) as client:
        on_postgres = run_room(client)
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT count(*) FROM response")).scalar()
    assert stored == len(ROOM) * len(PHASES)
    assert on_postgres["phases"]["belief"]["n"] == len(ROOM)
    assert on_postgres["phases"]["revote"]["counts"] == {"agree": 3, "disagree": 2, "unsure": 2}

    with TestClient(create_app(settings_for(tmp_path / "sqlite"))) as client:
        on_sqlite = run_room(client)
    assert on_postgres == on_sqlite


def test_an_explicit_memory_backend_wins_over_the_database(postgres_database: str) -> None:
    settings = Settings(database_url=postgres_database, broadcast_url="memory://")
    assert settings.broadcast_url == "memory://"


def test_the_backend_delivers_every_fact_to_every_process_once(postgres_database: str) -> None:
    """Two backends on one database, as two processes would have: each hears its own facts and
    the other's, once each; a fact published from another thread never blocks it."""

    async def scenario() -> tuple[list[SessionChanged], list[SessionChanged], float]:
        heard: tuple[list[SessionChanged], list[SessionChanged]] = ([], [])
        both = asyncio.Event()

        def hear(which: int) -> Callable[[SessionChanged], None]:
            def deliver(fact: SessionChanged) -> None:
                heard[which].append(fact)
                if min(len(heard[0]), len(heard[1])) >= 2:
                    both.set()

            return deliver

        first, second = PostgresBackend(postgres_database), PostgresBackend(postgres_database)
        await first.connect(hear(0), lambda: None)
        await second.connect(hear(1), lambda: None)
        try:
            fact = SessionChanged(session_id=7, code="ABC234", phases=True)
            started = time.monotonic()
            await asyncio.to_thread(first.publish, fact)
            blocked = time.monotonic() - started
            second.publish(SessionChanged(session_id=8, code="XYZ789", phases=False))
            await asyncio.wait_for(both.wait(), DEADLINE)
            await asyncio.sleep(0.3)  # a second copy of either would arrive by now
        finally:
            await first.disconnect()
            await second.disconnect()
        return heard[0], heard[1], blocked

    first, second, blocked = asyncio.run(scenario())
    expected = [
        SessionChanged(session_id=7, code="ABC234", phases=True),
        SessionChanged(session_id=8, code="XYZ789", phases=False),
    ]
    assert sorted(first, key=str) == expected  # the two processes' facts in either order
    assert sorted(second, key=str) == expected
    assert blocked < 0.5


def test_a_lost_listener_reconnects_and_asks_for_a_resync(postgres_database: str) -> None:
    async def scenario() -> tuple[int, list[SessionChanged], int, int | None]:
        heard: list[SessionChanged] = []
        resynced, arrived = asyncio.Event(), asyncio.Event()

        def deliver(fact: SessionChanged) -> None:
            heard.append(fact)
            arrived.set()

        backend = PostgresBackend(postgres_database)
        await backend.connect(deliver, resynced.set)
        try:
            lost = backend.listener_pid
            async with await psycopg.AsyncConnection.connect(
                libpq_url(postgres_database), autocommit=True
            ) as admin:
                await admin.execute("SELECT pg_terminate_backend(%s)", (lost,))
            await asyncio.wait_for(resynced.wait(), DEADLINE)
            backend.publish(SessionChanged(session_id=1, code="ABC234", phases=False))
            await asyncio.wait_for(arrived.wait(), DEADLINE)
            return backend.reconnects, heard, lost or 0, backend.listener_pid
        finally:
            await backend.disconnect()

    reconnects, heard, lost, listening = asyncio.run(scenario())
    assert reconnects == 1
    assert listening is not None and listening != lost
    assert heard == [SessionChanged(session_id=1, code="ABC234", phases=False)]


def test_an_unreachable_broadcast_backend_fails_the_start_with_the_reason() -> None:
    backend = PostgresBackend("postgresql://nobody:secret@127.0.0.1:1/none")

    async def scenario() -> None:
        await backend.connect(lambda fact: None, lambda: None)

    with pytest.raises(
        RuntimeError, match=r"cannot listen for live updates on .*127\.0\.0\.1"
    ) as e:
        asyncio.run(scenario())
    assert "secret" not in str(e.value)


# --------------------------------------------------------------------------- two processes


@dataclass
class Pair:
    a: LiveServer
    b: LiveServer
    database_url: str

    def api(self, server: LiveServer) -> httpx.Client:
        return httpx.Client(base_url=server.url, headers=server.auth, timeout=DEADLINE)

    def new_session(self, venue: str) -> str:
        with self.api(self.a) as api:
            response = api.post("/api/v1/sessions", json={"talk": "emergence", "venue": venue})
            response.raise_for_status()
            return str(response.json()["code"])

    def act(self, server: LiveServer, code: str, phase: str, action: str) -> None:
        with self.api(server) as api:
            api.post(f"/api/v1/sessions/{code}/phases/{phase}/{action}").raise_for_status()

    def sql(self, query: str, *params: object) -> list[tuple]:
        with psycopg.connect(libpq_url(self.database_url), autocommit=True) as connection:
            return list(connection.execute(query, params or None).fetchall())


@pytest.fixture(scope="module")
def pair(postgres_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Two app processes on one PostgreSQL database, each with its own data directory (and so
    nothing shared but the database and the secret key, as on two hosts)."""
    with pg.fresh_database(postgres_server) as url:
        env = {"BELIEFGAP_DATABASE_URL": url, "BELIEFGAP_SECRET_KEY": SECRET_KEY}
        a = liveserver.start(tmp_path_factory.mktemp("a"), ADMIN_TOKEN, env=env)
        try:
            b = liveserver.start(tmp_path_factory.mktemp("b"), ADMIN_TOKEN, env=env)
            try:
                yield Pair(a, b, url)
            finally:
                b.stop()
        finally:
            a.stop()


def until(events: Iterator[tuple[str, str]], name: str, pattern: str = "") -> str:
    """Events until one called ``name`` whose data matches ``pattern``, within the deadline
    (each read also times out on its own)."""
    deadline = time.monotonic() + DEADLINE
    for event, data in events:
        if event == name and re.search(pattern, data):
            return data
        if time.monotonic() > deadline:
            break
    pytest.fail(f"no '{name}' event matching {pattern!r} within {DEADLINE}s")


def until_all(events: Iterator[tuple[str, str]], wanted: dict[str, str]) -> dict[str, str]:
    """Events until each name in ``wanted`` came with data matching its pattern, in any order."""
    deadline = time.monotonic() + DEADLINE
    seen: dict[str, str] = {}
    for event, data in events:
        if event in wanted and event not in seen and re.search(wanted[event], data):
            seen[event] = data
            if len(seen) == len(wanted):
                return seen
        if time.monotonic() > deadline:
            break
    pytest.fail(f"within {DEADLINE}s, only {sorted(seen)} of {sorted(wanted)}")


def vote(server: LiveServer, code: str, phase: str, choice: str, cookies: dict | None = None):  # type: ignore[no-untyped-def]
    return httpx.post(
        f"{server.url}/api/v1/sessions/{code}/votes",
        json={"phase": phase, "choice": choice},
        cookies=cookies,
        timeout=DEADLINE,
    )


def test_a_vote_and_a_phase_change_on_one_process_reach_streams_on_the_other(pair: Pair) -> None:
    code = pair.new_session("Lyon")
    events_url = f"{pair.b.url}/api/v1/sessions/{code}/events"
    with (
        httpx.stream("GET", events_url, headers=pair.b.auth, timeout=DEADLINE) as presenter,
        httpx.stream("GET", events_url, params={"view": "phone"}, timeout=DEADLINE) as phone,
    ):
        phone_events, presenter_events = sse_events(phone), sse_events(presenter)
        until(phone_events, "panel")
        until(presenter_events, "counts")
        pair.act(pair.a, code, "belief", "open")
        until(phone_events, "panel", r'data-open="belief@"')
        assert '"id":"belief","kind":"stance","state":"open"' in until(presenter_events, "state")
        assert vote(pair.a, code, "belief", "agree").status_code == 200
        counts = until(presenter_events, "counts", r'id="n-belief"[^>]*>1<')
        assert "1 answered" in counts


def test_fifty_identical_votes_from_one_phone_on_both_processes_leave_one_row(pair: Pair) -> None:
    code = pair.new_session("Turin")
    pair.act(pair.b, code, "belief", "open")
    first = vote(pair.a, code, "belief", "agree")
    assert first.status_code == 200
    cookies = dict(first.cookies)
    assert any(name.startswith("bg_p_") for name in cookies)
    start = threading.Barrier(50)

    def again(i: int) -> tuple[int, str]:
        start.wait(DEADLINE)
        response = vote((pair.a, pair.b)[i % 2], code, "belief", "agree", cookies)
        return response.status_code, response.json().get("participant", "")

    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(again, range(50)))
    assert {status for status, _ in answers} == {200}
    assert {who for _, who in answers} == {first.json()["participant"]}
    rows = pair.sql(
        "SELECT count(*), count(DISTINCT participant_id) FROM response r "
        "JOIN poll_session s ON s.id = r.session_id WHERE s.code = %s",
        code,
    )
    assert rows == [(1, 1)]
    participants = pair.sql(
        "SELECT count(*) FROM participant p JOIN poll_session s ON s.id = p.session_id "
        "WHERE s.code = %s",
        code,
    )
    assert participants == [(1,)]


@dataclass(frozen=True)
class Attempt:
    sent: float
    answered: float
    status: int
    participant: str | None


def wait_for_attempts(
    attempts: list[Attempt], lock: threading.Lock, enough: Callable[[list[Attempt]], bool]
) -> None:
    """Wait while the phones vote on their threads until ``enough`` holds of their attempts so
    far: a count of votes, not a guess of time, so a loaded machine only makes it take longer."""
    deadline = time.monotonic() + 60
    while True:
        with lock:
            if enough(list(attempts)):
                return
        assert time.monotonic() < deadline, f"the phones made only {len(attempts)} attempts"
        time.sleep(0.05)


def stored(attempts: list[Attempt]) -> int:
    return sum(a.status == 200 for a in attempts)


def sent_after(moment: float) -> Callable[[list[Attempt]], bool]:
    """Enough votes sent after ``moment`` have been answered: a few from every phone."""
    return lambda attempts: sum(a.sent > moment for a in attempts) >= 30


def test_no_vote_is_stored_after_the_close_commits(pair: Pair) -> None:
    """New phones vote as fast as they can on both processes while the presenter closes the
    phase: every vote sent after the close was answered is refused, every vote answered 200 is
    stored and committed before the close, and nothing else is stored."""
    code = pair.new_session("Porto")
    pair.act(pair.a, code, "belief", "open")
    stop = threading.Event()
    attempts: list[Attempt] = []
    lock = threading.Lock()

    def phone(i: int) -> None:
        server = (pair.a, pair.b)[i % 2]
        with httpx.Client(base_url=server.url, timeout=DEADLINE) as client:
            while not stop.is_set():
                client.cookies.clear()  # a new phone each time
                sent = time.monotonic()
                response = client.post(
                    f"/api/v1/sessions/{code}/votes", json={"phase": "belief", "choice": "agree"}
                )
                answered = time.monotonic()
                who = response.json().get("participant") if response.status_code == 200 else None
                with lock:
                    attempts.append(Attempt(sent, answered, response.status_code, who))

    with ThreadPoolExecutor(24) as pool:
        phones = [pool.submit(phone, i) for i in range(24)]
        wait_for_attempts(attempts, lock, lambda attempts: stored(attempts) > 60)
        close_sent = time.monotonic()
        pair.act(pair.b, code, "belief", "close")
        close_answered = time.monotonic()
        wait_for_attempts(attempts, lock, sent_after(close_answered))
        stop.set()
        for running in phones:
            running.result()

    assert {a.status for a in attempts} <= {200, 409}, {a.status for a in attempts}
    stored_ok = {a.participant for a in attempts if a.status == 200}
    assert len(stored_ok) > 50, "the phones should have voted a lot before the close"
    after = [a for a in attempts if a.sent > close_answered]
    assert after, "the phones should have kept voting after the close"
    assert {a.status for a in after} == {409}
    before = [a for a in attempts if a.answered < close_sent]
    assert {a.status for a in before} == {200}

    rows = pair.sql(
        "SELECT p.public_id FROM response r JOIN participant p ON p.id = r.participant_id "
        "JOIN poll_session s ON s.id = r.session_id WHERE s.code = %s",
        code,
    )
    assert {who for (who,) in rows} == stored_ok
    assert len(rows) == len(stored_ok)
    participants = pair.sql(
        "SELECT count(*) FROM participant p JOIN poll_session s ON s.id = p.session_id "
        "WHERE s.code = %s",
        code,
    )
    assert participants == [(len(stored_ok),)]  # nobody was registered by a refused vote

    if pair.sql("SHOW track_commit_timestamp") == [("on",)]:  # tests/pg.py's server has it
        order = pair.sql(
            "SELECT max(pg_xact_commit_timestamp(r.xmin)) < ("
            "  SELECT pg_xact_commit_timestamp(sp.xmin) FROM session_phase sp"
            "  JOIN phase p ON p.id = sp.phase_id"
            "  WHERE sp.session_id = s.id AND p.key = 'belief')"
            " FROM response r JOIN poll_session s ON s.id = r.session_id WHERE s.code = %s"
            " GROUP BY s.id",
            code,
        )
        assert order == [(True,)], "a vote committed after the close"


def test_a_lost_listener_comes_back_and_its_streams_get_a_fresh_snapshot(pair: Pair) -> None:
    code = pair.new_session("Ghent")
    pair.act(pair.a, code, "belief", "open")
    pair.act(pair.a, code, "belief", "reveal")
    events_url = f"{pair.b.url}/api/v1/sessions/{code}/events"
    with httpx.stream("GET", events_url, params={"view": "phone"}, timeout=DEADLINE) as phone:
        events = sse_events(phone)
        until(events, "panel", r'data-open="belief@"')
        before = {pid for (pid,) in listeners(pair)}
        assert len(before) == 2  # one per process
        killed = pair.sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s",
            LISTEN_APPLICATION,
        )
        assert killed == [(True,), (True,)]
        # Voted while the listeners are (most likely) still away: not lost for B's stream.
        assert vote(pair.a, code, "belief", "agree").status_code == 200
        # The resync: a fresh snapshot (state and panel again, though no phase changed), and
        # the vote in the results.
        seen = until_all(
            events,
            {"state": '"state":"open"', "panel": r'data-open="belief@"', "results": r"\(1\)"},
        )
        assert set(seen) == {"state", "panel", "results"}
        deadline = time.monotonic() + DEADLINE
        while len(set(listeners(pair)) - {(pid,) for pid in before}) < 2:
            assert time.monotonic() < deadline, "the listeners did not come back"
            time.sleep(0.05)
        assert vote(pair.a, code, "belief", "disagree").status_code == 200
        until(events, "results", r"(?s)\(1\).*\(1\)")  # agree and disagree, one each
    assert "lost the listening connection" in pair.b.output()


def listeners(pair: Pair) -> list[tuple]:
    return pair.sql(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = %s",
        LISTEN_APPLICATION,
    )


def test_no_vote_is_stored_after_the_end_commits_and_both_processes_learn_it(
    pair: Pair,
) -> None:
    """Phones vote on both processes while the presenter ends the session on one: every vote
    sent after the end was answered is refused (409), nothing answered 200 is missing, nothing
    else is stored; a phone streaming from the other process is told at once, and deleting the
    session there ends its stream."""
    code = pair.new_session("Lisbon")
    pair.act(pair.a, code, "belief", "open")
    stop = threading.Event()
    attempts: list[Attempt] = []
    lock = threading.Lock()

    def phone(i: int) -> None:
        server = (pair.a, pair.b)[i % 2]
        with httpx.Client(base_url=server.url, timeout=DEADLINE) as client:
            while not stop.is_set():
                client.cookies.clear()
                sent = time.monotonic()
                response = client.post(
                    f"/api/v1/sessions/{code}/votes", json={"phase": "belief", "choice": "agree"}
                )
                answered = time.monotonic()
                who = response.json().get("participant") if response.status_code == 200 else None
                with lock:
                    attempts.append(Attempt(sent, answered, response.status_code, who))

    events_url = f"{pair.a.url}/api/v1/sessions/{code}/events"
    with httpx.stream("GET", events_url, params={"view": "phone"}, timeout=DEADLINE) as stream:
        phone_events = sse_events(stream)
        until(phone_events, "panel", r'data-open="belief@"')
        with ThreadPoolExecutor(16) as pool:
            phones = [pool.submit(phone, i) for i in range(16)]
            wait_for_attempts(attempts, lock, lambda attempts: stored(attempts) > 30)
            end_sent = time.monotonic()
            with pair.api(pair.b) as api:
                api.patch(f"/api/v1/sessions/{code}", json={"ended": True}).raise_for_status()
            end_answered = time.monotonic()
            wait_for_attempts(attempts, lock, sent_after(end_answered))
            stop.set()
            for running in phones:
                running.result()
        assert "This session has ended" in until(phone_events, "panel", r'data-open="!ended"')
        rows = pair.sql(
            "SELECT p.public_id FROM response r JOIN poll_session s ON s.id = r.session_id "
            "JOIN participant p ON p.id = r.participant_id WHERE s.code = %s",
            code,
        )
        assert {who for (who,) in rows} == {a.participant for a in attempts if a.status == 200}
        with pair.api(pair.b) as api:
            assert api.delete(f"/api/v1/sessions/{code}").status_code == 204
        for _event in phone_events:  # the stream ends (a reconnection would get a 404)
            pass
    assert httpx.get(f"{pair.a.url}/api/v1/sessions/{code}", timeout=DEADLINE).status_code == 404

    assert {a.status for a in attempts} <= {200, 409}, {a.status for a in attempts}
    stored_ok = {a.participant for a in attempts if a.status == 200}
    assert len(stored_ok) > 20, "the phones should have voted before the end"
    after = [a for a in attempts if a.sent > end_answered]
    assert after and {a.status for a in after} == {409}
    assert {a.status for a in attempts if a.answered < end_sent} <= {200}
