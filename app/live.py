"""Live updates: the domain publishes small facts after each commit; subscribers render and fan out.

Only the fact is published ("session 42 changed, and its phase states did"), never HTML: each
process renders once per tick and shares the bytes with all its subscribers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SessionChanged:
    session_id: int
    code: str
    phases: bool
    """True when phase states changed (open, close, reveal, hide); False for answers only."""


class Publisher(Protocol):
    def publish(self, fact: SessionChanged) -> None:
        """Called after the transaction commits, from any thread; must not block."""


class NullPublisher:
    """For the command line and for tests that do not watch live updates."""

    def publish(self, fact: SessionChanged) -> None:
        return None


class RecordingPublisher:
    """Keeps every fact; used by tests to check what the domain publishes."""

    def __init__(self) -> None:
        self.facts: list[SessionChanged] = []

    def publish(self, fact: SessionChanged) -> None:
        self.facts.append(fact)
