"""``memory://``: one process; facts go straight to this process's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from app.live.facts import SessionChanged


class MemoryBackend:
    """One process: facts go straight to this process's event loop. Nothing can be missed, so it
    never asks for a resync."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deliver: Callable[[SessionChanged], None] | None = None

    async def connect(
        self,
        deliver: Callable[[SessionChanged], None],
        resync: Callable[[], None] | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._deliver = deliver

    async def disconnect(self) -> None:
        self._loop = None
        self._deliver = None

    def publish(self, fact: SessionChanged) -> None:
        loop, deliver = self._loop, self._deliver
        if loop is None or deliver is None:
            return  # not started (or stopped): nobody is listening
        try:
            loop.call_soon_threadsafe(deliver, fact)
        except RuntimeError:  # the loop closed meanwhile (shutdown)
            return
