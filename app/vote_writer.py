"""Group commit for votes: one writer thread, one transaction for the votes that arrived together.

A room votes in a burst. Committing each vote on its own costs a disk sync and a round of lock
hand-offs per vote; here the event loop validates each vote against a cached copy of its
session's phases (no database read), queues it, and a single writer thread takes everything
queued, writes it in one transaction with ``app.voting.write_ballots`` and commits. Only then
is each request answered, so a 200 always means committed. Phones' form votes and the JSON
API both come through here.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from anyio import to_thread
from sqlalchemy import Connection, Engine
from sqlmodel import Session

from app.errors import Conflict
from app.live import Publisher, SessionChanged
from app.models import VoteIn, VoteOut
from app.sessions import normalize_code
from app.voting import Ballot, SessionSpec, load_session_spec, validate_vote, write_ballots

log = logging.getLogger(__name__)

MAX_BATCH = 512


@dataclass
class _Pending:
    ballot: Ballot
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[VoteOut] = field(repr=False)


class VoteWriter:
    def __init__(self, engine: Engine, publisher: Callable[[], Publisher]) -> None:
        """``publisher`` returns the current publisher (the app may swap it when it starts)."""
        self._engine = engine
        self._publisher = publisher
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._specs: dict[str, SessionSpec] = {}
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0
        """How many transactions were committed (for tests and benchmarks)."""

    async def submit(self, code: str, token: str, vote: VoteIn) -> VoteOut:
        """Validate, queue and wait for the commit. Raises NotFound, Invalid or Conflict."""
        spec = await self.session_spec(normalize_code(code))
        ballot = validate_vote(spec, token, vote)
        self._ensure_started()
        loop = asyncio.get_running_loop()
        pending = _Pending(ballot=ballot, loop=loop, future=loop.create_future())
        self._queue.put(pending)
        return await pending.future

    async def session_spec(self, code: str) -> SessionSpec:
        """The session's phases and options (raises NotFound for an unknown code)."""
        # A session's phases and options never change while it exists, so one read serves
        # every later vote. The state of each phase is not cached: the write checks it.
        spec = self._specs.get(code)
        if spec is None:
            spec = await to_thread.run_sync(self._load_spec, code)
            self._specs[code] = spec
        return spec

    def _load_spec(self, code: str) -> SessionSpec:
        with Session(self._engine) as db:
            return load_session_spec(db, code)

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="vote-writer", daemon=True
                    )
                    self._thread.start()

    def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        with self._engine.connect() as connection:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                batch = [first]
                stop = False
                while len(batch) < MAX_BATCH:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        stop = True
                        break
                    batch.append(item)
                self._write(connection, batch)
                if stop:
                    return

    def _write(self, connection: Connection, batch: list[_Pending]) -> None:
        outcomes = self._commit(connection, batch)
        if len(batch) > 1 and isinstance(outcomes[0], Exception):
            # One bad ballot must not sink the others: retry each in its own transaction.
            outcomes = [self._commit(connection, [p])[0] for p in batch]
        changed = {
            p.ballot.session.id: p.ballot.session.code
            for p, outcome in zip(batch, outcomes, strict=True)
            if isinstance(outcome, VoteOut)
        }
        for session_id, code in changed.items():
            self._publisher().publish(
                SessionChanged(session_id=session_id, code=code, phases=False)
            )
        for pending, outcome in zip(batch, outcomes, strict=True):
            pending.loop.call_soon_threadsafe(_settle, pending.future, outcome)

    def _commit(
        self, connection: Connection, batch: list[_Pending]
    ) -> list[VoteOut | Conflict | Exception]:
        try:
            with connection.begin():
                outcomes = write_ballots(connection, [p.ballot for p in batch])
        except Exception as exc:
            log.exception("writing %d votes failed", len(batch))
            return [exc] * len(batch)
        self.batches += 1
        return list(outcomes)


def _settle(future: asyncio.Future[VoteOut], outcome: VoteOut | BaseException) -> None:
    if future.cancelled():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
