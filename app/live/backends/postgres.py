"""PostgreSQL LISTEN/NOTIFY: facts reach every app process on the same database.

Two connections per process, both in autocommit, both on this process's event loop (psycopg 3,
async), and both visible in ``pg_stat_activity`` by their ``application_name``:

- **listen** (``beliefgap-listen``) runs ``LISTEN beliefgap`` and hands each notification's fact
  to the Broadcaster. Every process hears every fact once, its own included: that is how this
  process's streams hear of this process's commits, so there is no second, local path and no
  fact reaches the Broadcaster twice. When the connection is lost (the server restarted, a
  failover, an idle-connection reaper), it reconnects with backoff and jitter and, once
  ``LISTEN`` is in place again, asks for a resync: whatever was notified meanwhile is lost, so
  every cache drops what it keeps and every stream gets a fresh snapshot, read after ``LISTEN``
  (subscribe first, then snapshot: nothing is missed). A quiet connection is checked with a
  ``SELECT 1`` every ``CHECK_SECONDS``, and TCP keepalives catch a peer that vanished.
- **notify** (``beliefgap-notify``) sends. ``publish`` is called from any thread (the vote
  writer's, request threads) and must not block: it only hands the fact to the event loop, where
  facts wait in a small table, one entry per session (a later fact about the same session merges
  into the waiting one: "changed" is idempotent, and phase changes stick). A sender task takes
  everything waiting and sends it in one statement, ``SELECT pg_notify(...) FROM unnest(...)``,
  so a burst of commits costs one round trip. When sending fails, the facts go back to wait and
  are sent once a new connection is up (at worst twice, which is harmless: a fact only says
  "look again").

The payload is the fact as JSON: ``{"session_id": 42, "code": "ABC234", "phases": true}``.
NOTIFY is scoped to the database, so several deployments never hear each other unless they
share a database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable
from dataclasses import replace
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from app.live.facts import SessionChanged

log = logging.getLogger("beliefgap.live.postgres")

CHANNEL = "beliefgap"
LISTEN_APPLICATION = "beliefgap-listen"
NOTIFY_APPLICATION = "beliefgap-notify"
CONNECT_TIMEOUT_SECONDS = 10
CHECK_SECONDS = 30.0
"""A listener connection that heard nothing for this long is checked with ``SELECT 1``."""
CHECK_TIMEOUT_SECONDS = 10.0
RECONNECT_FIRST_SECONDS = 0.1
RECONNECT_MAX_SECONDS = 5.0
STABLE_SECONDS = 30.0
"""A connection that lived this long starts its next reconnection from the shortest delay."""
FLUSH_SECONDS = 2.0
"""On shutdown, how long facts still waiting may take to be sent."""
VOTES_GATHER_SECONDS = 0.02
"""After a NOTIFY that carried only new votes, how long facts gather before the next one: in a
burst the writer commits a batch every few milliseconds, and one NOTIFY per batch cost the event
loop more than the streams gain (their results are drawn at most every few hundred ms). A phase
change is sent at once."""


def libpq_url(url: str) -> str:
    """The URL libpq understands: SQLAlchemy's ``postgresql+psycopg://`` loses its driver."""
    scheme, rest = url.split("://", 1)
    return f"{scheme.partition('+')[0]}://{rest}"


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(libpq_url(url))
    if parts.password is None:
        return urlunsplit(parts)
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def encode(fact: SessionChanged) -> str:
    data: dict[str, object] = {"session_id": fact.session_id, "code": fact.code}
    data["phases"] = fact.phases
    if fact.gone:  # only when set: a process of the previous release reads the rest alike
        data["gone"] = True
    return json.dumps(data, separators=(",", ":"))


def decode(payload: str) -> SessionChanged | None:
    """The fact in a notification's payload, or None for one that is not ours."""
    try:
        data = json.loads(payload)
        session_id, code, phases = data["session_id"], data["code"], data["phases"]
    except (ValueError, TypeError, KeyError):
        return None
    if not (isinstance(session_id, int) and isinstance(code, str) and isinstance(phases, bool)):
        return None
    if not code:
        return None
    gone = data.get("gone", False)
    if not isinstance(gone, bool):
        return None
    return SessionChanged(session_id=session_id, code=code, phases=phases, gone=gone)


def _merged(earlier: SessionChanged, later: SessionChanged) -> SessionChanged:
    """Two facts about one session as one: phase changes and deletions stick."""
    return replace(later, phases=earlier.phases or later.phases, gone=earlier.gone or later.gone)


def _backoff(delay: float) -> float:
    """The delay with jitter, so that the processes of a deployment do not reconnect in step."""
    return delay * random.uniform(0.5, 1.5)


class PostgresBackend:
    def __init__(self, url: str, channel: str = CHANNEL) -> None:
        self.url = url
        self.channel = channel
        self._conninfo = libpq_url(url)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deliver: Callable[[SessionChanged], None] | None = None
        self._resync: Callable[[], None] | None = None
        self._waiting: dict[str, SessionChanged] = {}
        """Facts not yet sent, one per session; touched on the event loop only."""
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        """Set while nothing waits to be sent."""
        self._listener: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self.reconnects = 0
        """How many times the listener connection was lost and made again."""
        self.listener_pid: int | None = None
        """The server process of the current listener connection (for tests and operators)."""

    # ---------------------------------------------------------------- life cycle

    async def connect(
        self, deliver: Callable[[SessionChanged], None], resync: Callable[[], None]
    ) -> None:
        """Listen, then start the listener and sender tasks. The first connection must succeed
        (a wrong URL fails the start, with the reason); later losses are retried forever."""
        self._loop = asyncio.get_running_loop()
        self._deliver, self._resync = deliver, resync
        self._waiting = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        try:
            connection = await self._listen_connection()
        except (psycopg.Error, OSError) as exc:
            self._loop = None
            raise RuntimeError(
                f"cannot listen for live updates on {redacted(self.url)}: {exc}"
            ) from exc
        self._listener = self._loop.create_task(self._listen(connection), name="live-listen")
        self._sender = self._loop.create_task(self._send(), name="live-notify")

    async def disconnect(self) -> None:
        """Send what is still waiting (briefly), then close both connections."""
        loop = self._loop
        if loop is None:
            return
        await asyncio.sleep(0)  # facts handed over from other threads join the waiting ones
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), FLUSH_SECONDS)
        self._loop = None
        tasks = [t for t in (self._listener, self._sender) if t is not None]
        self._listener = self._sender = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # ---------------------------------------------------------------- sending

    def publish(self, fact: SessionChanged) -> None:
        loop = self._loop
        if loop is None:
            return  # not started (or stopped): nobody is listening
        try:
            loop.call_soon_threadsafe(self._enqueue, fact)
        except RuntimeError:  # the loop closed meanwhile (shutdown)
            return

    def _enqueue(self, fact: SessionChanged) -> None:
        if self._sender is None:
            return
        earlier = self._waiting.get(fact.code)
        if earlier is not None:
            fact = _merged(earlier, fact)
        self._waiting[fact.code] = fact
        self._idle.clear()
        self._wake.set()

    async def _send(self) -> None:
        connection: psycopg.AsyncConnection | None = None
        delay = RECONNECT_FIRST_SECONDS
        statement = sql.SQL("SELECT pg_notify({}, payload) FROM unnest(%s::text[]) AS payload")
        query = statement.format(sql.Literal(self.channel))
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._waiting:
                    batch, self._waiting = self._waiting, {}
                    try:
                        if connection is None or connection.closed:
                            connection = await self._connection(NOTIFY_APPLICATION)
                        await connection.execute(query, ([encode(f) for f in batch.values()],))
                        delay = RECONNECT_FIRST_SECONDS
                        await self._gather_votes()
                    except (psycopg.OperationalError, psycopg.InterfaceError, OSError) as exc:
                        log.warning(
                            "sending %d live updates failed (%s); again in %.1fs",
                            len(batch),
                            exc,
                            delay,
                        )
                        for fact in batch.values():
                            later = self._waiting.get(fact.code)
                            self._waiting[fact.code] = (
                                fact if later is None else _merged(fact, later)
                            )
                        await _close(connection)
                        connection = None
                        await asyncio.sleep(_backoff(delay))
                        delay = min(delay * 2, RECONNECT_MAX_SECONDS)
                    except Exception:  # a bug, not an outage: never spin on it
                        log.exception("sending %d live updates failed", len(batch))
                self._idle.set()
        finally:
            await _close(connection)

    async def _gather_votes(self) -> None:
        """Wait up to VOTES_GATHER_SECONDS while only new votes wait to be sent."""
        deadline = asyncio.get_running_loop().time() + VOTES_GATHER_SECONDS
        while not any(f.phases for f in self._waiting.values()):
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), left)

    # ---------------------------------------------------------------- listening

    async def _connection(self, application: str) -> psycopg.AsyncConnection:
        return await psycopg.AsyncConnection.connect(
            self._conninfo,
            autocommit=True,
            application_name=application,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            # A peer that vanished without a word (a host gone, a NAT that forgot us) shows up
            # within about a minute, even while nothing is sent.
            keepalives=1,
            keepalives_idle=30,
            keepalives_interval=10,
            keepalives_count=3,
        )

    async def _listen_connection(self) -> psycopg.AsyncConnection:
        connection = await self._connection(LISTEN_APPLICATION)
        try:
            await connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        except BaseException:
            await _close(connection)
            raise
        self.listener_pid = connection.info.backend_pid
        return connection

    async def _listen(self, connection: psycopg.AsyncConnection) -> None:
        assert self._loop is not None
        loop = self._loop
        delay = RECONNECT_FIRST_SECONDS
        try:
            while True:
                connected_at = loop.time()
                try:
                    await self._receive(connection)
                except (psycopg.Error, OSError, TimeoutError) as exc:
                    log.warning("live updates: lost the listening connection (%s)", exc)
                await _close(connection)
                if loop.time() - connected_at > STABLE_SECONDS:
                    delay = RECONNECT_FIRST_SECONDS
                while True:
                    await asyncio.sleep(_backoff(delay))
                    delay = min(delay * 2, RECONNECT_MAX_SECONDS)
                    try:
                        connection = await self._listen_connection()
                        break
                    except (psycopg.Error, OSError) as exc:
                        log.warning("live updates: cannot listen again yet (%s)", exc)
                self.reconnects += 1
                log.info("live updates: listening again; every stream gets a fresh snapshot")
                if self._resync is not None:
                    self._resync()
        finally:
            await _close(connection)

    async def _receive(self, connection: psycopg.AsyncConnection) -> None:
        """Hand over notifications until the connection fails (raises)."""
        while True:
            async for notify in connection.notifies(timeout=CHECK_SECONDS):
                self._handle(notify.payload)
            await asyncio.wait_for(connection.execute("SELECT 1"), CHECK_TIMEOUT_SECONDS)

    def _handle(self, payload: str) -> None:
        fact = decode(payload)
        if fact is None:
            log.warning("ignoring a notification on channel %s: %.100r", self.channel, payload)
            return
        if self._deliver is None:
            return
        try:
            self._deliver(fact)
        except Exception:  # a listener's bug must not stop live updates
            log.exception("delivering a live update for session %s failed", fact.code)


async def _close(connection: psycopg.AsyncConnection | None) -> None:
    if connection is not None and not connection.closed:
        with contextlib.suppress(Exception):
            await connection.close()
