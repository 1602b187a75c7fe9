"""What one event stream holds for its life, for the thousands a room opens: its bounded queue
of frames, the ``ping`` after a quiet spell (one timer per event loop for all of them), and the
encoding of server-sent events. The Broadcaster (``app.live.broadcaster``) hands them frames."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.live.broadcaster import _Channel

log = logging.getLogger("beliefgap.live")


PING = b"event: ping\ndata:\n\n"
"""Sent after a quiet spell: keeps proxies from closing the stream, lets a page see that its
stream is alive, and makes a client that vanished show up as a failed write."""


LINE_END = re.compile(r"\r\n|\r|\n")


def encode_event(event: str, data: str) -> bytes:
    """One server-sent event. Multi-line data becomes one ``data:`` line per line (the browser
    joins them back with newlines). A browser ends a line at CR as well as LF: a lone CR in a
    label must not start a line of its own, which could set the event's id, retry or type."""
    lines = "".join(f"data: {line}\n" for line in LINE_END.split(data))
    return f"event: {event}\n{lines}\n".encode()


PING_STEPS = 4
"""A quiet stream gets its ``ping`` between its quiet time and a quarter more: the streams'
clock ticks four times per quiet time."""


class _Pinger:
    """The streams of one event loop waiting for a frame with the same quiet time: one timer
    for all of them wakes those that have been quiet that long with a ``ping``, instead of a
    timeout (an object, a timer and its context) per stream and per frame."""

    __slots__ = ("due", "key", "loop", "quiet", "timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, quiet: float, key: tuple[int, float]):
        self.loop = loop
        self.quiet = quiet
        self.key = key
        self.due: dict[FrameQueue, float] = {}
        self.timer: asyncio.TimerHandle | None = None

    def add(self, queue: FrameQueue) -> None:
        self.due[queue] = self.loop.time() + self.quiet
        if self.timer is None:
            self.timer = self.loop.call_later(self.quiet / PING_STEPS, self._tick)

    def _tick(self) -> None:
        self.timer = None
        now = self.loop.time()
        for queue in [queue for queue, due in self.due.items() if due <= now]:
            del self.due[queue]
            queue.put_nowait(PING)  # it waits for a frame: its queue is empty
        if self.due:
            self.timer = self.loop.call_later(self.quiet / PING_STEPS, self._tick)
        elif _PINGERS.get(self.key) is self:
            del _PINGERS[self.key]


_PINGERS: dict[tuple[int, float], _Pinger] = {}
"""By event loop (its id, checked against the loop itself) and quiet time; each is dropped
once no stream of it waits."""


def _pinger(quiet: float) -> _Pinger:
    loop = asyncio.get_running_loop()
    key = (id(loop), quiet)
    pinger = _PINGERS.get(key)
    if pinger is None or pinger.loop is not loop:
        for other in [k for k, p in _PINGERS.items() if p.loop.is_closed()]:
            del _PINGERS[other]  # a loop that ended with streams still waiting (tests)
        pinger = _PINGERS[key] = _Pinger(loop, quiet, key)
    return pinger


class FrameQueue:
    """The bounded queue of one stream's frames, with one reader: what ``asyncio.Queue`` does
    here, in a fraction of its memory (no deques, no event; a room holds thousands of these,
    idle most of the time). ``put_nowait`` raises ``asyncio.QueueFull`` past ``maxsize``."""

    __slots__ = ("_items", "_maxsize", "_waiter")

    def __init__(self, maxsize: int) -> None:
        self._items: list[bytes | None] = []
        self._maxsize = maxsize
        self._waiter: asyncio.Future[None] | None = None

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    def put_nowait(self, item: bytes | None) -> None:
        if 0 < self._maxsize <= len(self._items):
            raise asyncio.QueueFull
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def get_nowait(self) -> bytes | None:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.pop(0)

    async def get(self, ping_after: float | None = None) -> bytes | None:
        """The next frame; with ``ping_after``, ``PING`` once the queue has stayed empty about
        that many seconds (up to a quarter more, ``PING_STEPS``)."""
        while not self._items:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            pinger = _pinger(ping_after) if ping_after is not None else None
            if pinger is not None:
                pinger.add(self)
            try:
                await waiter
            finally:
                self._waiter = None
                if pinger is not None:
                    pinger.due.pop(self, None)
        return self._items.pop(0)


class Subscriber:
    """One open event stream: its language, whether it is the presenter (counts), a read-only
    view (what the projector shows the room: state and the room's counts, no results) or a
    phone (the pushed question panel), its bounded queue."""

    __slots__ = ("channel", "closed", "code", "lang", "presenter", "queue", "room", "tag")

    def __init__(
        self,
        code: str,
        lang: str,
        presenter: bool,
        queue_size: int,
        room: bool = False,
        tag: str = "",
    ) -> None:
        self.code = code
        self.lang = lang
        self.presenter = presenter
        self.room = room and not presenter
        self.tag = tag
        """What opened the stream, for ``Broadcaster.end_tagged`` (a view's token hash)."""
        self.queue = FrameQueue(queue_size)
        self.closed = False
        self.channel: _Channel | None = None
        """Its session's subscribers (``Broadcaster.add``), until it is removed."""

    @property
    def phone(self) -> bool:
        return not self.presenter and not self.room

    def offer(self, frame: bytes) -> None:
        if self.closed:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            log.info("disconnecting a slow client of session %s", self.code)
            self.close()

    def close(self, last: bytes = b"") -> None:
        """End the stream: whatever is queued is dropped; the reader gets ``last`` (if any),
        then None."""
        if self.closed:
            return
        self.closed = True
        while not self.queue.empty():
            self.queue.get_nowait()
        if last:
            self.queue.put_nowait(last)
        self.queue.put_nowait(None)

    async def frames(self, ping_after: float | None = None) -> AsyncIterator[bytes]:
        """The queued frames until the stream ends; with ``ping_after``, a ``ping`` event after
        that many seconds of quiet (``FrameQueue.get``)."""
        while (frame := await self.queue.get(ping_after)) is not None:
            yield frame
