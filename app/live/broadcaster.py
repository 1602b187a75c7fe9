"""The Broadcaster: live updates for this process's event streams.

Only the fact is published ("session 42 changed, and its phase states did"), never HTML: a
backend chosen by URL (``app.live.backends``) carries facts between processes, and the
Broadcaster keeps the subscribers of this process, coalesces bursts per session, renders once per
tick and fans the same bytes out to every stream that wants them.

About 600 lines, as one module on purpose: the subscribers, the coalescing tick, the snapshots
a new stream may share and the fan-out's passes all read the same per-session state, and
splitting them would pass that state across modules on the path every live update takes. What
one stream holds (its queue, its quiet timer) is ``app.live.streams``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread

from app.live.backends import backend_for_url
from app.live.facts import EVERY_SESSION, SessionChanged
from app.live.streams import Subscriber

log = logging.getLogger("beliefgap.live")

TICK_SECONDS = 0.2
"""Coalescing window: at most one render per session per tick, whatever the vote rate."""
STATE_DELAY_SECONDS = 0.005
"""A phase change waits only this long, enough to take in the other facts of the same request
(a countdown that starts with the question)."""
SNAPSHOT_GATHER_SECONDS = 0.02
"""Clients connecting within this window share one snapshot render (a room scanning the QR)."""
SNAPSHOT_KEEP_SECONDS = 3.0
"""A snapshot is handed to the clients that connect after it for this long, unless a fact about
its session arrives meanwhile; not a presenter's (its counts carry the connections) nor one
that shows a countdown (``Frames.timed``). A hall joining reads the database a few times a
minute per session instead of once per few phones (on PostgreSQL with ten sessions filling at
once it had rendered a snapshot for every 1.3 phones)."""
FAN_OUT_PASS_SECONDS = 0.01
"""A fan-out wakes as many streams at a time as the event loop writes in about this much of its
CPU time, then lets the loop run other work (the votes sent at that moment) before the next
streams. A vote sent the moment its phone holds the question needs a few turns of the loop (read,
writer, answer), each as long as a pass: with 50 ms passes the votes sent at the opening of a
room of 5,000 waited p99 331-338 ms and the loop stopped up to 95 ms; with 10 ms passes, 152 ms
and 37 ms, while the question reached every phone at p99 430 ms instead of 370 (rooms of 1,000
and 2,000 within a few ms of before, the conference of 10 x 500 faster: p99 591 ms against
715)."""
FAN_OUT_FIRST_COST = 40e-6
"""The CPU time a woken stream's write is taken to cost until a fan-out has measured it."""
FAN_OUT_LEARN_FROM = 50
"""Only a pass that woke at least this many streams tells what a stream's write costs (a small
one is mostly the other work the loop ran in the same pass)."""
SETTLE_STREAMS = 500
"""Once this many streams have opened since the last time, and none for ``SETTLE_SECONDS``, the
objects that hold them are kept out of the collector's scans (``gc.freeze``): a room's streams
live as long as the talk, and a collection that scanned the 100-odd objects of each of 5,000
streams stopped the event loop for a tenth of a second or more, in the middle of the votes. A
frozen object that is no longer referenced is still freed at once (reference counting); one
held only in a reference cycle waits for the next ``_settle`` that finds most of the frozen
streams ended."""
SETTLE_SECONDS = 0.3
QUEUE_SIZE = 16
"""Frames a client may lag behind before it is disconnected (its browser reconnects and gets a
fresh snapshot)."""


@dataclass(frozen=True)
class RenderRequest:
    """What to render for one session: the state (JSON), results per language, for phones the
    question panel per language, and for presenter connections the counts per language."""

    code: str
    state: bool
    results_langs: frozenset[str]
    counts_langs: frozenset[str]
    connections: int = 0
    """Open audience connections to this session, for the presenter's counts."""
    panel_langs: frozenset[str] = frozenset()
    room_langs: frozenset[str] = frozenset()
    """For read-only views: the counts the room sees on the projector, per language."""


@dataclass
class Frames:
    """Encoded server-sent events, ready to write to every client that wants them."""

    state: bytes | None = None
    results: dict[str, bytes] = field(default_factory=dict)
    counts: dict[str, bytes] = field(default_factory=dict)
    panels: dict[str, bytes] = field(default_factory=dict)
    room: dict[str, bytes] = field(default_factory=dict)
    """The room's counts (sent as ``counts`` to read-only views)."""
    timed: bool = False
    """What they show moves on with time alone (a countdown runs): not kept for later
    clients."""


Renderer = Callable[[RenderRequest], Frames]
"""Synchronous (it reads the database); the Broadcaster runs it in a worker thread."""


SnapshotKey = tuple[str, bool, bool, bool]
"""Who shares a snapshot: language, presenter, phone, read-only view."""


@dataclass
class _Channel:
    code: str
    subscribers: set[Subscriber] = field(default_factory=set)
    presenters: int = 0
    """How many of the subscribers are presenter streams (a room has thousands of phones)."""
    rooms: int = 0
    """How many are read-only views (not counted as the audience's connections)."""
    dirty_state: bool = False
    dirty_results: bool = False
    dirty_counts: bool = False
    timer: asyncio.TimerHandle | None = None
    rendering: bool = False
    last: dict[tuple[str, str], bytes] = field(default_factory=dict)
    snapshots: dict[SnapshotKey, asyncio.Future[Frames]] = field(default_factory=dict)
    kept: dict[SnapshotKey, tuple[float, Frames]] = field(default_factory=dict)
    """Snapshots rendered lately, with when their render began (``SNAPSHOT_KEEP_SECONDS``)."""
    generation: int = 0
    """Counts the facts about the session: a snapshot whose render saw another count than the
    current one may have read the database before a change, and is not kept."""

    @property
    def dirty(self) -> bool:
        return self.dirty_state or self.dirty_results or self.dirty_counts


class Broadcaster:
    """Live updates for this process. It is also the app's Publisher: the domain calls
    ``publish`` after each commit, from any thread."""

    def __init__(
        self,
        url: str,
        render: Renderer,
        *,
        tick: float = TICK_SECONDS,
        queue_size: int = QUEUE_SIZE,
        snapshot_keep: float = SNAPSHOT_KEEP_SECONDS,
    ) -> None:
        self.url = url
        self.backend = backend_for_url(url)
        self.render = render
        self.tick = tick
        self.snapshot_keep = snapshot_keep
        self.queue_size = queue_size
        self.renders = 0
        """How many renders ran (snapshots and updates): coalescing keeps it low."""
        self.resyncs = 0
        """How many times the backend reported that facts may have been missed."""
        self._channels: dict[str, _Channel] = {}
        self._listeners: list[Callable[[SessionChanged], None]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._wake_cost = FAN_OUT_FIRST_COST
        """Seconds of the loop's CPU time a woken stream's write takes, as fan-outs measured."""
        self._opened = 0
        """Streams opened since their objects were last frozen (``SETTLE_STREAMS``)."""
        self._opened_then = 0
        self._frozen_streams = 0
        """Streams open when the collector's objects were last frozen."""
        self._ended = 0
        """Streams ended since then."""
        self._settling: asyncio.TimerHandle | None = None
        """The call of ``_settle`` to come, if any."""

    # ---------------------------------------------------------------- life cycle

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        await self.backend.connect(self._on_fact, self._on_resync)

    def end_streams(self) -> None:
        """The server is stopping: end every open stream now and take no new ones, so the
        server need not wait for pages that never close (their browsers reconnect, to the next
        process in a rolling restart). Live facts keep flowing until ``stop``. Event loop only."""
        if self._stopping:
            return
        self._stopping = True
        for channel in self._channels.values():
            for subscriber in list(channel.subscribers):
                subscriber.close()

    async def stop(self) -> None:
        """End every stream and stop rendering; returns promptly."""
        self._stopping = True
        if self._settling is not None:
            self._settling.cancel()
            self._settling = None
        await self.backend.disconnect()
        for channel in self._channels.values():
            if channel.timer is not None:
                channel.timer.cancel()
            for subscriber in list(channel.subscribers):
                subscriber.close()
            for future in channel.snapshots.values():
                future.cancel()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2)
        self._channels.clear()

    @property
    def started(self) -> bool:
        return self._loop is not None and not self._stopping

    # ---------------------------------------------------------------- publishing

    def publish(self, fact: SessionChanged) -> None:
        self.backend.publish(fact)

    def listen(self, listener: Callable[[SessionChanged], None]) -> None:
        """Also hand every fact that reaches this process (from any process) to ``listener``,
        on the event loop, before anything is rendered for it (caches drop what it changed).

        When facts may have been missed (the backend's connection broke and came back), the
        listener gets ``EVERY_SESSION`` (``fact.every_session``): whatever it keeps of any
        session is stale."""
        self._listeners.append(listener)

    def _on_resync(self) -> None:
        """Facts may have been missed: every listener forgets everything, and every stream of
        this process gets a fresh snapshot (state, results, counts and panel, sent even where
        they look unchanged)."""
        self.resyncs += 1
        for listener in self._listeners:
            listener(EVERY_SESSION)
        if self._stopping:
            return
        log.info("resynchronising the live streams of %d sessions", len(self._channels))
        for channel in self._channels.values():
            channel.generation += 1
            channel.kept.clear()
            channel.last.clear()
            channel.dirty_state = channel.dirty_results = channel.dirty_counts = True
            self._schedule(channel)

    def _on_fact(self, fact: SessionChanged) -> None:
        for listener in self._listeners:
            listener(fact)
        channel = self._channels.get(fact.code)
        if channel is None or self._stopping:
            return  # nobody watches this session in this process
        channel.generation += 1
        channel.kept.clear()
        if fact.gone:  # the session was deleted: its streams end (a reconnection gets a 404)
            for subscriber in list(channel.subscribers):
                subscriber.close()
            return
        channel.dirty_results = True
        channel.dirty_counts = True
        if fact.phases:
            channel.dirty_state = True
        self._schedule(channel)

    def _schedule(self, channel: _Channel) -> None:
        """Render the channel after a tick, or at once when its phase states changed: votes
        coalesce, but a question that opens or closes goes to every phone without waiting (a
        presenter changes phases at most about once a second). One render runs at a time per
        channel; a change during it is rendered right after."""
        if self._stopping or channel.rendering or self._loop is None:
            return
        delay = STATE_DELAY_SECONDS if channel.dirty_state else self.tick
        if channel.timer is not None:
            if channel.timer.when() <= self._loop.time() + delay:
                return
            channel.timer.cancel()
        channel.timer = self._loop.call_later(delay, self._flush_soon, channel)

    def _flush_soon(self, channel: _Channel) -> None:
        channel.timer = None
        self._spawn(self._flush(channel))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self, channel: _Channel) -> None:
        channel.rendering = True
        try:
            subscribers = list(channel.subscribers)
            request = RenderRequest(
                code=channel.code,
                state=channel.dirty_state,
                results_langs=(
                    frozenset(s.lang for s in subscribers if not s.room)
                    if channel.dirty_results
                    else frozenset()
                ),
                counts_langs=(
                    frozenset(s.lang for s in subscribers if s.presenter)
                    if channel.dirty_counts
                    else frozenset()
                ),
                connections=self._connections(channel),
                panel_langs=(
                    frozenset(s.lang for s in subscribers if s.phone)
                    if channel.dirty_state
                    else frozenset()
                ),
                room_langs=(
                    frozenset(s.lang for s in subscribers if s.room)
                    if channel.dirty_counts
                    else frozenset()
                ),
            )
            # Reset before reading: a commit after this point marks the channel dirty again.
            channel.dirty_state = channel.dirty_results = channel.dirty_counts = False
            if not subscribers or not (
                request.state or request.results_langs or request.counts_langs or request.room_langs
            ):
                return
            frames = await self._render(request)
            if frames is None:
                return
            await self._fan_out(channel, frames)
        finally:
            channel.rendering = False
            if channel.dirty and channel.subscribers and not self._stopping:
                self._schedule(channel)
            elif not channel.subscribers:
                self._forget(channel)

    async def _render(self, request: RenderRequest) -> Frames | None:
        self.renders += 1
        try:
            return await anyio.to_thread.run_sync(self.render, request)
        except Exception:
            log.exception("rendering live updates for session %s failed", request.code)
            return None

    async def _fan_out(self, channel: _Channel, frames: Frames) -> None:
        fresh: dict[tuple[str, str], bytes] = {}
        if frames.state is not None:
            fresh[("state", "")] = frames.state
        for lang, frame in frames.results.items():
            if channel.last.get(("results", lang)) != frame:
                fresh[("results", lang)] = frame
        for lang, frame in frames.counts.items():
            if channel.last.get(("counts", lang)) != frame:
                fresh[("counts", lang)] = frame
        for lang, frame in frames.panels.items():
            if channel.last.get(("panel", lang)) != frame:
                fresh[("panel", lang)] = frame
        for lang, frame in frames.room.items():
            if channel.last.get(("room", lang)) != frame:
                fresh[("room", lang)] = frame
        channel.last.update(fresh)
        # What one subscriber gets, joined into one write: a room of phones is a single send
        # each for a question that opens (state and panel), the same bytes for each language.
        joined: dict[tuple[str, bool, bool], bytes] = {}
        subscribers = list(channel.subscribers)
        woken = 0
        batch = self._fan_out_batch()
        for subscriber in subscribers:
            key = (subscriber.lang, subscriber.presenter, subscriber.room)
            out = joined.get(key)
            if out is None:
                if subscriber.room:
                    parts: tuple[tuple[str, str], ...] = (
                        ("state", ""),
                        ("room", subscriber.lang),
                    )
                else:
                    third = "counts" if subscriber.presenter else "panel"
                    parts = (("state", ""), ("results", subscriber.lang), (third, subscriber.lang))
                out = joined[key] = b"".join(fresh[part] for part in parts if part in fresh)
            if not out or subscriber.closed:
                continue  # not woken: nothing for the pass to count (nor to learn from)
            subscriber.offer(out)
            woken += 1
            if woken == batch:
                # The streams handed a frame so far write it before the next ones are woken:
                # the loop runs every woken stream in one pass, which for a room of thousands
                # held everything else (the votes sent at that moment) for a fifth of a second.
                await self._pass(woken)
                woken, batch = 0, self._fan_out_batch()
        if woken >= FAN_OUT_LEARN_FROM:  # the last pass: measured too, for the next fan-out
            await self._pass(woken)

    async def _pass(self, woken: int) -> None:
        """Let the loop run the ``woken`` streams' writes (and whatever else is ready), timing
        it in the loop thread's CPU."""
        began = time.thread_time()
        await asyncio.sleep(0)
        self._learn_wake_cost(time.thread_time() - began, woken)

    def _fan_out_batch(self) -> int:
        """How many streams the next pass of a fan-out wakes (``FAN_OUT_PASS_SECONDS``)."""
        return max(FAN_OUT_LEARN_FROM, int(FAN_OUT_PASS_SECONDS / self._wake_cost))

    def _learn_wake_cost(self, spent: float, woken: int) -> None:
        """A pass of ``woken`` streams took ``spent`` seconds of the loop's CPU time (their
        writes, and whatever else was ready: counted as theirs, which only makes passes
        smaller). Averaged with what was known, so one pass beside a burst of votes does not
        halve the next fan-out's passes on its own."""
        if woken >= FAN_OUT_LEARN_FROM:
            measured = min(max(spent / woken, 1e-6), 1e-3)
            self._wake_cost = (self._wake_cost + measured) / 2

    # ---------------------------------------------------------------- subscribing

    @asynccontextmanager
    async def subscribe(
        self, code: str, lang: str, presenter: bool = False, room: bool = False, tag: str = ""
    ) -> AsyncIterator[Subscriber]:
        """Register a stream for a session (``room``: a read-only view; ``tag``: what opened
        it, see ``end_tagged``). Subscribe first, then take the snapshot: a change committed in
        between is delivered after it, so nothing is missed."""
        subscriber = self.add(code, lang, presenter, room, tag)
        try:
            yield subscriber
        finally:
            self.remove(subscriber)

    def add(
        self, code: str, lang: str, presenter: bool = False, room: bool = False, tag: str = ""
    ) -> Subscriber:
        """``subscribe`` without its context manager (an object and a generator fewer for each
        of a room's thousands of streams): the caller must ``remove`` the subscriber, however
        its stream ends."""
        if not self.started:
            raise RuntimeError("the broadcaster is not running")
        channel = self._channels.get(code)
        if channel is None:
            channel = self._channels[code] = _Channel(code)
        subscriber = Subscriber(code, lang, presenter, self.queue_size, room, tag)
        subscriber.channel = channel
        channel.subscribers.add(subscriber)
        channel.presenters += presenter
        channel.rooms += subscriber.room
        self._connections_changed(channel, subscriber)
        self._opened += 1
        if self._opened >= SETTLE_STREAMS and self._settling is None and self._loop is not None:
            self._settling = self._loop.call_later(SETTLE_SECONDS, self._settle)
        return subscriber

    def _settle(self) -> None:
        """Streams opened by the hundred and none lately (a room has joined): move every object
        the collector tracks out of its scans, after a collection of the youngest objects (a
        few milliseconds: the garbage of the requests that opened them). When most of the
        streams open at the last freeze have ended, the frozen objects go back to the
        collector first, so that those held only in cycles are freed too."""
        self._settling = None
        if self._stopping:
            return
        if self._opened != self._opened_then:  # still joining
            self._opened_then = self._opened
            assert self._loop is not None
            self._settling = self._loop.call_later(SETTLE_SECONDS, self._settle)
            return
        if self._ended > self._frozen_streams / 2:
            gc.unfreeze()
            gc.collect()
        else:
            gc.collect(0)
        gc.freeze()
        self._frozen_streams = sum(len(channel.subscribers) for channel in self._channels.values())
        self._opened = self._opened_then = self._ended = 0

    def remove(self, subscriber: Subscriber) -> None:
        """The stream of ``subscriber`` (from ``add``) has ended."""
        subscriber.closed = True
        channel, subscriber.channel = subscriber.channel, None
        if channel is None:  # removed already
            return
        self._ended += 1
        channel.subscribers.discard(subscriber)
        channel.presenters -= subscriber.presenter
        channel.rooms -= subscriber.room
        if channel.subscribers:
            self._connections_changed(channel, subscriber)
        elif not channel.rendering and not channel.snapshots:
            self._forget(channel)

    def _connections(self, channel: _Channel) -> int:
        return len(channel.subscribers) - channel.presenters - channel.rooms

    def _connections_changed(self, channel: _Channel, subscriber: Subscriber) -> None:
        if subscriber.phone and channel.presenters:
            channel.dirty_counts = True
            self._schedule(channel)

    def _forget(self, channel: _Channel) -> None:
        if self._channels.get(channel.code) is channel and not channel.subscribers:
            if channel.timer is not None:
                channel.timer.cancel()
            del self._channels[channel.code]

    def tags(self, code: str | None = None) -> dict[str, set[str]]:
        """The tags of this process's open streams, by session (of ``code`` only, if given)."""
        found: dict[str, set[str]] = {}
        channels = [self._channels.get(code)] if code else list(self._channels.values())
        for channel in channels:
            if channel is None:
                continue
            tags = {s.tag for s in channel.subscribers if s.tag}
            if tags:
                found[channel.code] = tags
        return found

    def end_tagged(self, code: str, tag: str, last: Callable[[str], bytes]) -> int:
        """End the session's streams opened with ``tag`` (a revoked view's), each with
        ``last(its language)`` as its last event. Event loop only. Returns how many ended."""
        channel = self._channels.get(code)
        ended = 0
        for subscriber in list(channel.subscribers) if channel else ():
            if subscriber.tag == tag and not subscriber.closed:
                subscriber.close(last(subscriber.lang))
                ended += 1
        return ended

    def subscriber_count(self, code: str) -> int:
        channel = self._channels.get(code)
        return len(channel.subscribers) if channel else 0

    async def snapshot(self, subscriber: Subscriber) -> list[bytes]:
        """The current state for a new stream: ``state``, ``results``, (presenter) ``counts``
        and (phone) ``panel``.

        Streams connecting together share one render, but only one that starts reading after
        they subscribed, or one that began less than ``snapshot_keep`` seconds ago with no fact
        about the session since: a change committed after it began comes as a fact, which
        reaches this stream, subscribed, as an update."""
        assert self._loop is not None
        channel = self._channels[subscriber.code]
        key = (subscriber.lang, subscriber.presenter, subscriber.phone, subscriber.room)
        kept = channel.kept.get(key)
        if kept is not None and self._loop.time() - kept[0] < self.snapshot_keep:
            frames = kept[1]
        else:
            future = channel.snapshots.get(key)
            if future is None:
                future = channel.snapshots[key] = self._loop.create_future()
                self._loop.call_later(
                    SNAPSHOT_GATHER_SECONDS, self._start_snapshot, channel, key, future
                )
            frames = await asyncio.shield(future)
        out = [frames.state] if frames.state is not None else []
        if subscriber.lang in frames.results:
            out.append(frames.results[subscriber.lang])
        if subscriber.presenter and subscriber.lang in frames.counts:
            out.append(frames.counts[subscriber.lang])
        if subscriber.phone and subscriber.lang in frames.panels:
            out.append(frames.panels[subscriber.lang])
        if subscriber.room and subscriber.lang in frames.room:
            out.append(frames.room[subscriber.lang])
        return out

    def _start_snapshot(
        self,
        channel: _Channel,
        key: SnapshotKey,
        future: asyncio.Future[Frames],
    ) -> None:
        if channel.snapshots.get(key) is future:
            del channel.snapshots[key]
        assert self._loop is not None
        lang, presenter, phone, room = key
        began, generation = self._loop.time(), channel.generation
        request = RenderRequest(
            code=channel.code,
            state=True,
            results_langs=frozenset() if room else frozenset({lang}),
            counts_langs=frozenset({lang}) if presenter else frozenset(),
            connections=self._connections(channel),
            panel_langs=frozenset({lang}) if phone else frozenset(),
            room_langs=frozenset({lang}) if room else frozenset(),
        )

        async def run() -> None:
            try:
                frames = await self._render(request)
            except asyncio.CancelledError:
                if not future.done():
                    future.cancel()
                raise
            if not channel.subscribers and not channel.rendering and not channel.snapshots:
                self._forget(channel)
            if future.done():
                return
            if frames is None:
                future.set_exception(RuntimeError("the snapshot could not be rendered"))
            else:
                if not (presenter or frames.timed) and channel.generation == generation:
                    channel.kept[key] = (began, frames)
                future.set_result(frames)

        if not future.done():
            self._spawn(run())
