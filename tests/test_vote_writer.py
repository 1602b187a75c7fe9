"""Votes through the JSON API go through one writer that commits the votes arriving together."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app import vote_writer
from app.errors import Conflict, retry_after
from app.live import RecordingPublisher
from app.models import (
    Participant,
    Phase,
    PhaseOption,
    Response,
    SessionPhase,
    VoteIn,
    VoteOut,
)
from app.vote_writer import NotConfirmed, VoteWriter, WriterClosed, _Pending
from app.voting import Ballot, validate_vote
from tests.conftest import new_session, on_postgres, phase_action
from tests.test_audience import HX, error_text, soup_of, visit


def count(app: FastAPI, table: type) -> int:
    with Session(app.state.engine) as db:
        return db.exec(select(func.count()).select_from(table)).one()


async def vote_many(
    app: FastAPI, code: str, bodies: list[dict], cookies: dict | None = None
) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)

    async def one(body: dict) -> httpx.Response:
        # A client per vote: each is a different phone unless it carries the same cookie.
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", cookies=cookies
        ) as client:
            return await client.post(f"/api/v1/sessions/{code}/votes", json=body)

    return list(await asyncio.gather(*(one(b) for b in bodies)))


def test_a_burst_of_votes_is_committed_in_few_transactions(
    app: FastAPI, client: TestClient
) -> None:
    code = new_session(client)
    phase_action(client, code, "belief", "open")
    choices = ["agree", "disagree", "unsure"]
    responses = asyncio.run(
        vote_many(app, code, [{"phase": "belief", "choice": choices[i % 3]} for i in range(200)])
    )
    assert [r.status_code for r in responses] == [200] * 200
    assert len({r.json()["participant"] for r in responses}) == 200
    assert count(app, Response) == 200
    assert app.state.vote_writer.batches < 200  # votes that arrived together shared a commit
    exported = client.get(
        f"/api/v1/sessions/{code}/export.json",
        headers={"Authorization": "Bearer test-admin-token-0123456789"},
    ).json()
    stored = sorted(r["choice"] for r in exported["responses"])
    assert stored == sorted(choices[i % 3] for i in range(200))


def test_fifty_identical_votes_from_one_phone_leave_one_row(
    app: FastAPI, client: TestClient
) -> None:
    code = new_session(client)
    phase_action(client, code, "belief", "open")
    first = client.post(
        f"/api/v1/sessions/{code}/votes", json={"phase": "belief", "choice": "agree"}
    )
    cookie = {f"bg_p_{code}": first.cookies[f"bg_p_{code}"]}
    responses = asyncio.run(
        vote_many(app, code, [{"phase": "belief", "choice": "unsure"}] * 50, cookie)
    )
    assert [r.status_code for r in responses] == [200] * 50
    assert {r.json()["participant"] for r in responses} == {first.json()["participant"]}
    assert count(app, Response) == 1
    assert count(app, Participant) == 1


def test_the_phase_state_is_checked_at_write_time_not_cached(
    app: FastAPI, client: TestClient
) -> None:
    code = new_session(client)
    phase_action(client, code, "belief", "open")
    assert (
        client.post(
            f"/api/v1/sessions/{code}/votes", json={"phase": "belief", "choice": "agree"}
        ).status_code
        == 200
    )
    phase_action(client, code, "belief", "close")
    client.cookies.clear()
    refused = client.post(
        f"/api/v1/sessions/{code}/votes", json={"phase": "belief", "choice": "agree"}
    )
    assert refused.status_code == 409
    assert count(app, Response) == 1
    assert count(app, Participant) == 1  # the refused phone was not registered either


def test_a_vote_after_the_countdown_ran_out_is_refused(app: FastAPI, client: TestClient) -> None:
    code = new_session(client)
    phase_action(client, code, "belief", "open", seconds=30)
    with Session(app.state.engine) as db:
        for state in db.exec(select(SessionPhase).where(SessionPhase.closes_at != None)):  # noqa: E711
            state.closes_at = datetime.now(UTC) - timedelta(seconds=1)
            db.add(state)
        db.commit()
    refused = client.post(
        f"/api/v1/sessions/{code}/votes", json={"phase": "belief", "choice": "agree"}
    )
    assert refused.status_code == 409
    assert count(app, Response) == 0
    state = client.get(f"/api/v1/sessions/{code}").json()["phases"][1]
    assert state["state"] == "closed"


# --------------------------------------------------------------------------- the writer itself
# These drive a VoteWriter of their own on the app's engine (a real SQLite file). To land votes
# in one batch, all but the last are queued before the thread starts; the last is submitted,
# which starts the thread, and the thread's first batch takes everything queued.


@pytest.fixture
def writer(app: FastAPI, client: TestClient, publisher: RecordingPublisher) -> Iterator[VoteWriter]:
    vote_writer = VoteWriter(app.state.engine, lambda: publisher)
    yield vote_writer
    vote_writer.close()


@pytest.fixture
def code(client: TestClient) -> str:
    """A session whose 'definition' phase has closed and whose 'belief' phase is open."""
    code = new_session(client)
    phase_action(client, code, "definition", "open")
    phase_action(client, code, "definition", "close")
    phase_action(client, code, "belief", "open")
    return code


LATE = VoteIn(phase="definition", choice="d1")
ON_TIME = VoteIn(phase="belief", choice="agree")


async def ballot(writer: VoteWriter, code: str, token: str, vote: VoteIn) -> Ballot:
    return validate_vote(await writer.session(code), token, vote)


async def write_in_one_batch(
    writer: VoteWriter, code: str, queued: list[Ballot], last: tuple[str, VoteIn]
) -> list[VoteOut | BaseException]:
    assert writer._thread is None, "the thread must not have started"
    loop = asyncio.get_running_loop()
    futures: list[asyncio.Future[VoteOut]] = []
    for b in queued:
        futures.append(loop.create_future())
        writer._queue.put(_Pending(ballot=b, loop=loop, future=futures[-1]))
    results = await asyncio.gather(*futures, writer.submit(code, *last), return_exceptions=True)
    return list(results)


def stored_tokens(app: FastAPI) -> dict[str, list[str]]:
    """Each stored answer's participant token, by phase key."""
    with Session(app.state.engine) as db:
        rows = db.exec(
            select(Phase.key, Participant.token)
            .join(Response, col(Response.phase_id) == Phase.id)
            .join(Participant, col(Participant.id) == Response.participant_id)
        ).all()
    found: dict[str, list[str]] = {}
    for key, token in rows:
        found.setdefault(key, []).append(token)
    return {key: sorted(tokens) for key, tokens in found.items()}


def participant_tokens(app: FastAPI) -> set[str]:
    with Session(app.state.engine) as db:
        return set(db.exec(select(Participant.token)).all())


@contextmanager
def write_lock(app: FastAPI) -> Iterator[sqlite3.Connection]:
    """Hold the database's write lock from another connection (the writer waits for it, up to
    its busy timeout) until the caller rolls back. SQLite only (make suite-on-postgres leaves
    these tests out): anywhere else sqlite3 would create a stray file named after the database."""
    if app.state.engine.dialect.name != "sqlite":
        pytest.fail("this test holds SQLite's write lock: run it on SQLite")
    locker = sqlite3.connect(app.state.engine.url.database, isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")
        yield locker
    finally:
        if locker.in_transaction:
            locker.execute("ROLLBACK")
        locker.close()


def test_a_refused_ballot_shares_the_commit_of_its_batch(
    app: FastAPI, writer: VoteWriter, code: str, publisher: RecordingPublisher
) -> None:
    async def scenario() -> list[VoteOut | BaseException]:
        late = await ballot(writer, code, "late-phone", LATE)
        return await write_in_one_batch(writer, code, [late], ("on-time-phone", ON_TIME))

    refused, stored = asyncio.run(scenario())
    assert writer.batches == 1  # one commit for both, no vote-by-vote rewrite
    assert isinstance(refused, Conflict)
    assert (refused.status, refused.code) == (409, "phase_not_open")
    assert isinstance(stored, VoteOut)
    assert (stored.phase, stored.choice) == ("belief", "agree")
    assert stored_tokens(app) == {"belief": ["on-time-phone"]}
    assert participant_tokens(app) == {"on-time-phone"}  # the late phone was not registered
    assert len([f for f in publisher.facts if not f.phases]) == 1  # one live update for both


def test_a_phone_twice_in_one_batch_is_one_participant_with_its_last_answer(
    app: FastAPI, writer: VoteWriter, code: str
) -> None:
    async def scenario() -> list[VoteOut | BaseException]:
        queued = [
            await ballot(writer, code, "phone-a", ON_TIME),
            await ballot(writer, code, "phone-a", LATE),
            await ballot(writer, code, "phone-b", ON_TIME),
        ]
        return await write_in_one_batch(
            writer, code, queued, ("phone-a", VoteIn(phase="belief", choice="disagree"))
        )

    first, late, other, last = asyncio.run(scenario())
    assert writer.batches == 1
    assert isinstance(first, VoteOut) and isinstance(last, VoteOut) and isinstance(other, VoteOut)
    assert isinstance(late, Conflict) and late.code == "phase_not_open"
    assert first.participant == last.participant != other.participant
    assert stored_tokens(app) == {"belief": ["phone-a", "phone-b"]}
    assert participant_tokens(app) == {"phone-a", "phone-b"}
    with Session(app.state.engine) as db:
        choices = db.exec(
            select(Participant.token, PhaseOption.key)
            .join(Response, col(Response.option_id) == PhaseOption.id)
            .join(Participant, col(Participant.id) == Response.participant_id)
            .order_by(Participant.token)
        ).all()
    assert choices == [("phone-a", "disagree"), ("phone-b", "agree")]  # the later answer stands


def test_a_ballot_that_raises_sinks_only_itself(
    app: FastAPI, writer: VoteWriter, code: str
) -> None:
    async def scenario() -> list[VoteOut | BaseException]:
        first = await ballot(writer, code, "phone-1", ON_TIME)
        # An option that does not exist: its answer violates a foreign key, after its
        # participant row was written in the same transaction.
        broken = dataclasses.replace(
            await ballot(writer, code, "phone-broken", ON_TIME), option_id=10**6
        )
        late = await ballot(writer, code, "phone-late", LATE)
        return await write_in_one_batch(
            writer,
            code,
            [first, broken, late],
            ("phone-4", VoteIn(phase="belief", choice="unsure")),
        )

    first, broken, late, last = asyncio.run(scenario())
    assert isinstance(first, VoteOut)
    assert isinstance(broken, IntegrityError)
    assert isinstance(late, Conflict) and late.code == "phase_not_open"
    assert isinstance(last, VoteOut) and last.choice == "unsure"
    assert stored_tokens(app) == {"belief": ["phone-1", "phone-4"]}
    assert participant_tokens(app) == {"phone-1", "phone-4"}  # nothing partial of the bad one
    with Session(app.state.engine) as db:
        choices = db.exec(
            select(PhaseOption.key)
            .join(Response, col(Response.option_id) == PhaseOption.id)
            .join(Participant, col(Participant.id) == Response.participant_id)
            .order_by(Participant.token)
        ).all()
    assert choices == ["agree", "unsure"]


def test_close_writes_every_queued_vote_then_refuses_new_ones(
    app: FastAPI, writer: VoteWriter, code: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vote_writer, "MAX_BATCH", 16)  # many batches left when close() comes
    votes = [(f"phone-{i:03}", LATE if i % 5 == 0 else ON_TIME) for i in range(150)]

    async def scenario() -> tuple[list[VoteOut | BaseException], int]:
        await writer.session(code)
        with write_lock(app) as locker:  # the writer's first batch waits for the lock
            tasks = [asyncio.create_task(writer.submit(code, t, v)) for t, v in votes]
            for _ in range(3):
                await asyncio.sleep(0)
            assert writer._thread is not None and writer._thread.is_alive()
            queued = writer._queue.qsize()
            closing = asyncio.create_task(asyncio.to_thread(writer.close))
            for _ in range(1000):  # until close() has stopped taking votes
                if writer._closed:
                    break
                await asyncio.sleep(0.005)
            assert not any(t.done() for t in tasks)
            locker.execute("ROLLBACK")
            await closing
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
        with pytest.raises(WriterClosed) as refused:
            await writer.submit(code, "phone-after-close", ON_TIME)
        assert (refused.value.status, refused.value.code) == (503, "shutting_down")
        return list(results), queued

    results, queued_at_close = asyncio.run(scenario())
    assert queued_at_close > 16  # close() came with batches still queued
    assert writer._thread is not None and not writer._thread.is_alive()
    stored = sorted(r.participant for r in results if isinstance(r, VoteOut))
    refused = [r for r in results if not isinstance(r, VoteOut)]
    assert len(stored) == 120
    assert len(refused) == 30
    assert all(isinstance(r, Conflict) and r.code == "phase_not_open" for r in refused)
    assert stored_tokens(app) == {"belief": sorted(t for t, v in votes if v is ON_TIME)}
    with Session(app.state.engine) as db:
        shown = db.exec(
            select(Participant.public_id).join(
                Response, col(Response.participant_id) == Participant.id
            )
        ).all()
        assert sorted(shown) == stored
    writer.close()  # a second close does nothing


def test_close_that_times_out_refuses_what_the_thread_has_not_taken(
    app: FastAPI, writer: VoteWriter, code: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vote_writer, "MAX_BATCH", 4)

    async def scenario() -> list[VoteOut | BaseException]:
        await writer.session(code)
        with write_lock(app) as locker:
            tasks = [
                asyncio.create_task(writer.submit(code, f"p{i:02}", ON_TIME)) for i in range(20)
            ]
            for _ in range(3):
                await asyncio.sleep(0)
            await asyncio.to_thread(writer.close, 0.2)  # the first batch is stuck on the lock
            locker.execute("ROLLBACK")
        return list(await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10))

    results = asyncio.run(scenario())
    assert writer._thread is not None
    writer._thread.join(10)
    assert not writer._thread.is_alive()
    acknowledged = sorted(r.participant for r in results if isinstance(r, VoteOut))
    assert 1 <= len(acknowledged) <= 4  # the batch in flight is written
    assert all(isinstance(r, WriterClosed) for r in results if not isinstance(r, VoteOut))
    with Session(app.state.engine) as db:
        shown = db.exec(
            select(Participant.public_id).join(
                Response, col(Response.participant_id) == Participant.id
            )
        ).all()
        assert sorted(shown) == acknowledged


def test_close_before_any_vote_then_submit_is_refused(app: FastAPI, code: str) -> None:
    writer = VoteWriter(app.state.engine, RecordingPublisher)
    writer.close()
    writer.close()
    with pytest.raises(WriterClosed):
        asyncio.run(writer.submit(code, "phone", ON_TIME))
    assert writer._thread is None
    assert count(app, Response) == 0


def test_a_vote_after_shutdown_gets_503_through_the_api(
    app: FastAPI, client: TestClient, code: str
) -> None:
    app.state.vote_writer.close()  # what the app's shutdown does; it closes it again at exit
    response = client.post(
        f"/api/v1/sessions/{code}/votes", json={"phase": "belief", "choice": "agree"}
    )
    assert response.status_code == 503
    assert response.json()["code"] == "shutting_down"
    assert count(app, Response) == 0


def test_a_client_that_leaves_does_not_trouble_the_writer(
    app: FastAPI, writer: VoteWriter, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> VoteOut:
        await writer.session(code)
        with write_lock(app) as locker:
            leaving = asyncio.create_task(writer.submit(code, "phone-left", ON_TIME))
            staying = asyncio.create_task(writer.submit(code, "phone-stayed", ON_TIME))
            await asyncio.sleep(0)
            leaving.cancel()
            locker.execute("ROLLBACK")
        await staying
        return await writer.submit(code, "phone-later", ON_TIME)

    with caplog.at_level(logging.WARNING):
        later = asyncio.run(scenario())
    assert later.phase == "belief"
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    # The vote of the phone that left was queued, so it was written.
    assert stored_tokens(app) == {"belief": ["phone-later", "phone-left", "phone-stayed"]}


def test_the_writer_reconnects_when_its_connection_breaks(
    app: FastAPI, writer: VoteWriter, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def vote(token: str) -> VoteOut:
        return await writer.submit(code, token, ON_TIME)

    asyncio.run(vote("phone-1"))
    connection = writer._connection
    assert connection is not None
    dbapi_connection = connection.connection.dbapi_connection
    assert dbapi_connection is not None
    dbapi_connection.close()  # as if the database had gone away under the writer
    with caplog.at_level(logging.ERROR):
        second = asyncio.run(vote("phone-2"))
    assert second.phase == "belief"
    assert any("connection broke" in r.getMessage() for r in caplog.records)
    assert writer._connection is not None and writer._connection is not connection
    asyncio.run(vote("phone-3"))
    assert stored_tokens(app) == {"belief": ["phone-1", "phone-2", "phone-3"]}


# --------------------------------------------------------------------------- every vote is answered


class ThreadKilled(BaseException):
    """What stops a thread that ``except Exception`` does not catch."""


def test_a_vote_the_writer_does_not_answer_in_time_gets_503_and_sent_again_is_stored_once(
    app: FastAPI, code: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever holds the writer up, the phone gets an answer: 503, so its page sends the vote
    again; the first one, written after all, and the second are one answer."""
    writer = VoteWriter(app.state.engine, RecordingPublisher, answer_timeout=0.2)
    stalled = threading.Event()
    release = threading.Event()
    write = vote_writer.write_ballots

    def stalling(connection: Connection, ballots: list[Ballot]) -> list[VoteOut | Conflict]:
        if not release.is_set():
            stalled.set()
            release.wait(30)
        return write(connection, ballots)

    monkeypatch.setattr(vote_writer, "write_ballots", stalling)

    async def scenario() -> tuple[BaseException | VoteOut, VoteOut]:
        first = await asyncio.wait_for(
            asyncio.gather(writer.submit(code, "phone", ON_TIME), return_exceptions=True), 30
        )
        assert stalled.is_set()
        release.set()
        again = await asyncio.wait_for(writer.submit(code, "phone", ON_TIME), 30)
        return first[0], again

    try:
        with caplog.at_level(logging.WARNING):
            first, again = asyncio.run(scenario())
    finally:
        release.set()
        writer.close()
    assert isinstance(first, NotConfirmed)
    assert retry_after(first) is not None  # the page sends it again after Retry-After
    assert again.phase == "belief"
    assert stored_tokens(app) == {"belief": ["phone"]}
    assert writer.unanswered == 1
    assert any("no answer from the writer" in r.getMessage() for r in caplog.records)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_writer_thread_that_stopped_is_started_again_by_the_next_vote(
    app: FastAPI, code: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = VoteWriter(app.state.engine, RecordingPublisher, answer_timeout=0.2)
    killed = threading.Event()
    write = VoteWriter._write

    def dying(self: VoteWriter, batch: list[_Pending]) -> None:
        if not killed.is_set():
            killed.set()
            raise ThreadKilled
        write(self, batch)

    monkeypatch.setattr(VoteWriter, "_write", dying)

    async def scenario() -> tuple[BaseException | VoteOut, VoteOut]:
        lost = await asyncio.wait_for(
            asyncio.gather(writer.submit(code, "phone-1", ON_TIME), return_exceptions=True), 30
        )
        later = await asyncio.wait_for(writer.submit(code, "phone-2", ON_TIME), 30)
        return lost[0], later

    try:
        lost, later = asyncio.run(scenario())
    finally:
        writer.close()
    assert isinstance(lost, NotConfirmed)  # its page sends it again
    assert later.phase == "belief"
    assert stored_tokens(app) == {"belief": ["phone-2"]}


def test_a_phone_whose_vote_is_not_confirmed_in_time_is_told_to_send_it_again(
    app: FastAPI, client: TestClient, code: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the page: with htmx a 503 with Retry-After (the page's script sends the vote
    again); without scripts the page with the message, in the phone's language."""
    app.state.vote_writer.close()
    app.state.vote_writer = VoteWriter(
        app.state.engine, RecordingPublisher, app.state.sessions, answer_timeout=0.2
    )
    release = threading.Event()
    write = vote_writer.write_ballots

    def stalling(connection: Connection, ballots: list[Ballot]) -> list[VoteOut | Conflict]:
        release.wait(30)
        return write(connection, ballots)

    monkeypatch.setattr(vote_writer, "write_ballots", stalling)
    data = {"phase": "belief", "choice": "agree", "lang": "en"}
    try:
        visit(client, code)
        answer = client.post(f"/j/{code}/vote", data=data, headers=HX)
        assert answer.status_code == 503
        assert answer.headers["Retry-After"]
        visit(client, code, params={"lang": "zh-Hans"})  # the phone's choice of language
        plain = client.post(f"/j/{code}/vote", data={"phase": "belief", "choice": "agree"})
        assert plain.status_code == 200  # followed the redirect to the page
        assert error_text(soup_of(plain.text)) == "你的答案未能及时确认，请再次提交。"
    finally:
        release.set()


def test_a_batch_of_choices_is_one_round_trip_on_postgresql(
    app: FastAPI, writer: VoteWriter, code: str, tmp_path: Path
) -> None:
    """On PostgreSQL a batch without open text is one statement, sent in autocommit: no BEGIN
    and COMMIT each waiting for the server (the writer waited on them most of a batch); the
    connection is back in transactions afterwards, for a batch of several statements."""
    if not on_postgres():
        pytest.skip("PostgreSQL's round trips (SQLite runs in the process)")
    from psycopg.pq import Trace

    asyncio.run(writer.submit(code, "phone-1", ON_TIME))  # the writer's connection is up
    assert writer._connection is not None
    driver = writer._connection.connection.driver_connection
    trace = tmp_path / "trace.txt"
    with trace.open("w") as out:
        driver.pgconn.trace(out.fileno())
        driver.pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS)
        try:
            asyncio.run(writer.submit(code, "phone-2", ON_TIME))
        finally:
            driver.pgconn.untrace()
    sent = [line for line in trace.read_text().splitlines() if line.startswith("F")]
    assert sum(1 for line in sent if "\tSync" in line or "\tQuery" in line) == 1, sent
    assert not any("BEGIN" in line or "COMMIT" in line for line in sent)
    assert driver.autocommit is False
    assert stored_tokens(app) == {"belief": ["phone-1", "phone-2"]}
