"""Broadcast backends: what carries facts between the app's processes, chosen by URL scheme.

The shape follows encode/broadcaster: ``memory://`` (this process only) and PostgreSQL
LISTEN/NOTIFY (``postgresql://``, ``postgres://``, ``postgresql+psycopg://``: every process on
that database). A backend's module, and so its driver, is imported only when its scheme is
asked for."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from app.live.facts import SessionChanged


class Backend(Protocol):
    async def connect(
        self, deliver: Callable[[SessionChanged], None], resync: Callable[[], None]
    ) -> None:
        """Start carrying facts. ``deliver`` is then called on the event loop for each fact from
        any process, this one included, once. ``resync`` is called on the event loop when facts
        may have been missed (a lost connection came back): everything may have changed."""

    async def disconnect(self) -> None: ...

    def publish(self, fact: SessionChanged) -> None:
        """Send a fact to every process (this one included); thread-safe, never blocks."""


POSTGRES_SCHEMES = ("postgres", "postgresql")


def scheme_of(url: str) -> str:
    """The URL's scheme without its driver: ``postgresql+psycopg://`` is ``postgresql``."""
    return url.partition("://")[0].partition("+")[0].lower()


def is_postgres(url: str) -> bool:
    return "://" in url and scheme_of(url) in POSTGRES_SCHEMES


def backend_for_url(url: str) -> Backend:
    """The backend for ``settings.broadcast_url``. Drivers are imported lazily, per scheme."""
    scheme = scheme_of(url)
    if scheme == "memory":
        from app.live.backends.memory import MemoryBackend

        return MemoryBackend()
    if scheme in POSTGRES_SCHEMES:
        from app.live.backends.postgres import PostgresBackend

        return PostgresBackend(url)
    raise ValueError(
        f"unknown broadcast backend '{url}' (supported: memory://, postgresql://user@host/db)"
    )


def is_in_process(url: str) -> bool:
    return scheme_of(url) == "memory"
