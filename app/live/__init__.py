"""Live updates: the domain publishes small facts after each commit; subscribers render and fan out.

Only the fact is published ("session 42 changed, and its phase states did"), never HTML: each
process renders once per tick and shares the bytes with all its subscribers.

- ``app.live.facts``: the facts and the publishers that carry them;
- ``app.live.broadcaster``: this process's event streams, rendered once per tick and fanned out;
- ``app.live.streams``: what one stream holds for its life (its queue, its quiet timer);
- ``app.live.backends``: what carries facts between processes, chosen by URL scheme
  (``memory://``, or PostgreSQL LISTEN/NOTIFY), each driver imported only when its scheme is used.
"""

from app.live.backends import Backend, backend_for_url, is_in_process, is_postgres
from app.live.backends.memory import MemoryBackend
from app.live.broadcaster import (
    QUEUE_SIZE,
    SNAPSHOT_GATHER_SECONDS,
    TICK_SECONDS,
    Broadcaster,
    Frames,
    Renderer,
    RenderRequest,
)
from app.live.facts import (
    EVERY_SESSION,
    NullPublisher,
    Publisher,
    Publishers,
    RecordingPublisher,
    SessionChanged,
)
from app.live.streams import PING, Subscriber, encode_event

__all__ = [
    "EVERY_SESSION",
    "PING",
    "QUEUE_SIZE",
    "SNAPSHOT_GATHER_SECONDS",
    "TICK_SECONDS",
    "Backend",
    "Broadcaster",
    "Frames",
    "MemoryBackend",
    "NullPublisher",
    "Publisher",
    "Publishers",
    "RecordingPublisher",
    "RenderRequest",
    "Renderer",
    "SessionChanged",
    "Subscriber",
    "backend_for_url",
    "encode_event",
    "is_in_process",
    "is_postgres",
]
