"""Group commit for votes: one writer thread, one transaction for the votes that arrived together.

A room votes in a burst. Committing each vote on its own costs a disk sync and a round of lock
hand-offs per vote; here the event loop validates each vote against a cached copy of its
session's phases (no database read), queues it, and a single writer thread takes everything
queued, writes it in one transaction with ``app.voting.write_ballots`` and commits. Only then
is each request answered, so a 200 always means committed. Phones' form votes and the JSON
API both come through here.

A refused ballot (its phase is not open) is a normal outcome: ``write_ballots`` returns it as a
Conflict, writes nothing for it, and the transaction commits the others. A transaction that
fails (raises and rolls back) because of its ballots is written again, one vote per
transaction, so that one bad ballot cannot sink the others. The writer keeps one connection;
when it breaks, the writer logs, opens a new one and writes the batch again on it.

When the database cannot be reached (refused, lost again, SQLite locked by another process:
``app.errors.database_unavailable``), every vote of the batch is answered ``Unavailable`` (503,
Retry-After) at once, not tried again one by one against a server that is not there, and the
phones send them again. A 503 means the transaction did not commit, with one exception nobody
can rule out: the connection broke during COMMIT and the database stayed out of reach for the
second attempt. Such a vote may be stored; sent again with its participant cookie (as the
phone's page does), it stores the same answer again (an upsert by participant), so it is
counted once. A 200 always means committed.

Every vote gets an answer. A vote the writer has not answered within ``ANSWER_TIMEOUT_SECONDS``
is answered ``NotConfirmed`` (503, Retry-After) and logged with the writer's state: the phone's
page sends it again, and the upsert stores it once, whether or not the first one was written
after all. A phone must never show a vote as still being sent while the room's count has it.
And a writer thread that stopped without being closed (a bug) is started again by the next
vote, which takes what was queued.

``close()`` stops taking votes (a later ``submit`` raises WriterClosed, a 503), writes every vote
already queued and stops the thread.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

from anyio import to_thread
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from app.errors import (
    Conflict,
    DomainError,
    Unavailable,
    database_outage,
    database_unavailable,
    reason,
    transaction_rolled_back,
)
from app.live import Publisher, SessionChanged
from app.models import VoteIn, VoteOut
from app.sessions import SessionCache, SessionContent, normalize_code
from app.voting import Ballot, validate_vote, write_ballots

log = logging.getLogger(__name__)

MAX_BATCH = 512
CLOSE_TIMEOUT_SECONDS = 10.0
ANSWER_TIMEOUT_SECONDS = 20.0
"""The longest a vote waits for the writer's answer (a batch commits in well under a second;
SQLite's busy timeout is 5 s)."""


class WriterClosed(DomainError):
    """The app is shutting down: the vote was not taken (the phone may send it again)."""

    status = 503
    code = "shutting_down"


class NotConfirmed(DomainError):
    """The writer gave no answer in time: the vote may or may not be stored; sent again, it is
    stored once."""

    status = 503
    code = "vote_not_confirmed"


@dataclass
class _Pending:
    ballot: Ballot
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[VoteOut] = field(repr=False)


@dataclass(frozen=True)
class _Failed:
    """A transaction that raised and was rolled back: nothing in it was written."""

    error: Exception
    connection_lost: bool
    """The connection broke (it has been dropped; the next transaction opens a new one)."""
    unreachable: bool = False
    """The database cannot be reached or cannot serve now: trying each vote again on its own
    would only fail as many times."""
    during_commit: bool = False
    """Every statement had run: it was the COMMIT that failed (it may have gone through)."""


_Outcome = VoteOut | Conflict | Exception
"""What a vote's request is answered with: stored, refused, or the error of its transaction."""


class VoteWriter:
    def __init__(
        self,
        engine: Engine,
        publisher: Callable[[], Publisher],
        sessions: SessionCache | None = None,
        *,
        answer_timeout: float = ANSWER_TIMEOUT_SECONDS,
    ) -> None:
        """``publisher`` returns the current publisher (the app may swap it when it starts);
        ``sessions`` is where votes are checked against their session's phases (the app's
        cache, or one of the writer's own); ``answer_timeout``: how long a vote waits for its
        answer before it is answered 503."""
        self._engine = engine
        self._publisher = publisher
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._sessions = sessions if sessions is not None else SessionCache(engine)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        """Guards starting the thread, queueing and closing."""
        self._closed = False
        self._connection: Connection | None = None
        """The writer thread's connection; only that thread touches it."""
        self._answer_timeout = answer_timeout
        self.batches = 0
        """How many transactions were committed (for tests and benchmarks)."""
        self.unanswered = 0
        """How many votes were answered 503 for want of the writer's answer in time."""

    async def submit(self, code: str, token: str, vote: VoteIn) -> VoteOut:
        """Validate, queue and wait for the commit.

        Raises NotFound, Invalid or Conflict, WriterClosed after ``close()``, the error of a
        transaction that failed, or NotConfirmed when no answer came in ``answer_timeout``."""
        if self._closed:
            raise _closed()
        ballot = validate_vote(await self.session(normalize_code(code)), token, vote)
        loop = asyncio.get_running_loop()
        pending = _Pending(ballot=ballot, loop=loop, future=loop.create_future())
        with self._lock:
            # Checked and queued under the lock: nothing is queued behind close()'s stop marker,
            # where no thread would ever answer it.
            if self._closed:
                raise _closed()
            self._queue.put(pending)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="vote-writer", daemon=True)
                self._thread.start()
        # If the client leaves, this future is cancelled; the vote is written all the same. A
        # timer settles it with NotConfirmed if the writer has not in time (one timer handle:
        # asyncio.timeout's task bookkeeping was a visible share of a vote).
        timer = loop.call_later(self._answer_timeout, self._not_confirmed, pending.future)
        try:
            return await pending.future
        finally:
            timer.cancel()

    def _not_confirmed(self, future: asyncio.Future[VoteOut]) -> None:
        """A vote's answer did not come in time: it is answered 503 (the writer's later answer,
        if any, finds its future settled and is dropped)."""
        if future.done():
            return
        self.unanswered += 1
        thread = self._thread
        log.warning(
            "a vote had no answer from the writer in %gs: answered 503 (writer thread alive: %s, "
            "votes queued: %d, transactions committed: %d)",
            self._answer_timeout,
            thread is not None and thread.is_alive(),
            self._queue.qsize(),
            self.batches,
        )
        future.set_exception(NotConfirmed("the vote could not be confirmed in time; send it again"))

    async def session(self, code: str) -> SessionContent:
        """The session's phases and options (raises NotFound for an unknown code)."""
        # A session's phases and options never change while it exists, so one read serves
        # every later vote. The state of each phase is not cached: the write checks it.
        found = self._sessions.cached_content(code)
        if found is None:
            found = await to_thread.run_sync(self._sessions.content, code)
        return found

    def close(self, timeout: float = CLOSE_TIMEOUT_SECONDS) -> None:
        """Stop taking votes, write every vote already queued, then stop the thread.

        Idempotent, and fine when no vote ever came. Votes still queued if the thread has not
        finished within ``timeout`` seconds are refused with WriterClosed."""
        with self._lock:
            stopping = not self._closed
            self._closed = True
            thread = self._thread
            if stopping and thread is not None:
                self._queue.put(None)
        if thread is None:
            return
        thread.join(timeout)
        if thread.is_alive():
            log.error("the vote writer did not finish in %gs; refusing the votes queued", timeout)
            self._refuse_queued()

    def _refuse_queued(self) -> None:
        stop_marker = False
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stop_marker = True
            else:
                _answer(item, _closed())
        if stop_marker:
            self._queue.put(None)  # the thread still stops once its current batch is written

    # ----------------------------------------------------------------- the writer thread

    def _run(self) -> None:
        try:
            while True:
                batch, stop = self._next_batch()
                if batch:
                    try:
                        self._write(batch)
                    except Exception as exc:  # a bug: answer the votes rather than die silently
                        log.exception("the vote writer failed on %d votes", len(batch))
                        for pending in batch:
                            _answer(pending, exc)
                if stop:
                    return
        except BaseException:  # a bug: the next vote starts a new thread, which takes the queue
            log.critical("the vote writer thread stopped unexpectedly", exc_info=True)
            raise
        finally:
            self._drop_connection()

    def _next_batch(self) -> tuple[list[_Pending], bool]:
        """Everything queued (up to MAX_BATCH), waiting for the first; and whether to stop."""
        first = self._queue.get()
        if first is None:
            return [], True
        batch = [first]
        while len(batch) < MAX_BATCH:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _write(self, batch: list[_Pending]) -> None:
        outcomes = self._outcomes(batch)
        changed = {
            p.ballot.session.id: p.ballot.session.code
            for p, outcome in zip(batch, outcomes, strict=True)
            if isinstance(outcome, VoteOut)
        }
        for session_id, code in changed.items():
            try:
                self._publisher().publish(
                    SessionChanged(session_id=session_id, code=code, phases=False)
                )
            except Exception:  # the votes are committed: still answer them
                log.exception("publishing the votes of session %s failed", code)
        _answer_all(list(zip(batch, outcomes, strict=True)))

    def _outcomes(self, batch: list[_Pending]) -> list[_Outcome]:
        result = self._commit(batch)
        maybe_committed = isinstance(result, _Failed) and result.during_commit
        if isinstance(result, _Failed) and result.connection_lost:
            # Once more on a new connection. The writes are upserts, so writing again a
            # transaction whose commit went through just before the connection broke is harmless.
            result = self._commit(batch)
        if not isinstance(result, _Failed):
            database_outage.recovered()
            return list(result)
        if result.unreachable:
            self._unreachable(result, len(batch), maybe_committed)
            return [_unavailable() for _ in batch]
        if len(batch) == 1:
            return [result.error]
        # The transaction failed and wrote nothing: one bad ballot must not sink the others,
        # so each is written again in its own transaction.
        outcomes: list[_Outcome] = []
        for index, pending in enumerate(batch):
            single = self._commit([pending])
            if isinstance(single, _Failed) and single.unreachable:
                # The database went away meanwhile: the rest is refused, not tried.
                self._unreachable(single, len(batch) - index, False)
                outcomes.extend(_unavailable() for _ in batch[index:])
                break
            outcomes.append(single.error if isinstance(single, _Failed) else single[0])
        return outcomes

    def _unreachable(self, failed: _Failed, votes: int, maybe_committed: bool) -> None:
        database_outage.note(failed.error, f"the vote writer refused {votes} votes")
        if maybe_committed:
            log.warning(
                "the connection broke during the COMMIT of %d votes and the database is out of "
                "reach: they are answered 503 though they may be stored (sent again, each is "
                "stored once)",
                votes,
            )

    def _commit(self, batch: list[_Pending]) -> list[VoteOut | Conflict] | _Failed:
        """Write the batch in one transaction: an outcome per ballot (stored or refused), or
        _Failed when the transaction raised and was rolled back."""
        try:
            connection = self._connect()
        except Exception as exc:
            if database_unavailable(exc):  # reported by _outcomes, once per outage
                return _Failed(exc, connection_lost=False, unreachable=True)
            log.exception("the vote writer cannot connect to the database")
            return _Failed(exc, connection_lost=False)
        written = False
        ballots = [p.ballot for p in batch]
        alone = _one_statement(connection, ballots)
        try:
            with connection.begin(), _autocommit(connection, alone):
                outcomes = write_ballots(connection, ballots)
                written = True  # what fails from here on is the COMMIT
        except Exception as exc:
            # A statement that commits on its own may have gone through however it failed.
            written = written or alone
            lost = connection.invalidated or (
                isinstance(exc, DBAPIError) and exc.connection_invalidated
            )
            unreachable = database_unavailable(exc) and not transaction_rolled_back(exc)
            if lost:
                log.error(
                    "writing %d votes failed: the connection broke (%s)", len(batch), reason(exc)
                )
            elif not unreachable:
                log.exception("writing %d votes failed", len(batch))
            if lost or connection.closed or connection.in_transaction():
                self._drop_connection()
            return _Failed(exc, lost, unreachable=unreachable, during_commit=written)
        self.batches += 1
        return outcomes

    def _connect(self) -> Connection:
        connection = self._connection
        if connection is None or connection.closed or connection.invalidated:
            self._drop_connection()
            connection = self._connection = self._engine.connect()
        return connection

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with suppress(Exception):
                connection.close()


def _one_statement(connection: Connection, ballots: list[Ballot]) -> bool:
    """Whether the batch is written in one statement (PostgreSQL, no open text), which is a
    transaction by itself: sent in autocommit, it is one round trip instead of three (BEGIN,
    the statement, COMMIT). On a busy database server each round trip waits for the server's
    turn on a core, and the writer waited on them for most of a batch."""
    return connection.dialect.name == "postgresql" and all(b.text is None for b in ballots)


@contextmanager
def _autocommit(connection: Connection, on: bool) -> Iterator[None]:
    """The driver's connection in autocommit while the batch is written, if ``on``: the
    statement commits as it runs, and the transaction's BEGIN and COMMIT send nothing."""
    if not on:
        yield
        return
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.autocommit = True
    try:
        yield
    finally:
        if not connection.invalidated and not driver.closed:
            driver.autocommit = False


def _closed() -> WriterClosed:
    return WriterClosed("the server is shutting down; send the vote again in a moment")


def _unavailable() -> Unavailable:
    return Unavailable("the database cannot be reached; send the vote again in a moment")


def _answer(pending: _Pending, outcome: _Outcome) -> None:
    """Settle the vote's future on its event loop (from any thread)."""
    _answer_all([(pending, outcome)])


def _answer_all(answers: list[tuple[_Pending, _Outcome]]) -> None:
    """Settle many votes' futures: one wake-up of each event loop, not one per vote."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Pending, _Outcome]]] = {}
    for pending, outcome in answers:
        by_loop.setdefault(pending.loop, []).append((pending, outcome))
    for loop, settled in by_loop.items():
        with suppress(RuntimeError):  # its event loop has closed: nobody is waiting any more
            loop.call_soon_threadsafe(_settle_all, settled)


def _settle_all(answers: list[tuple[_Pending, _Outcome]]) -> None:
    for pending, outcome in answers:
        _settle(pending.future, outcome)


def _settle(future: asyncio.Future[VoteOut], outcome: _Outcome) -> None:
    if future.done():  # cancelled: the client left (its vote is written all the same)
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
