"""The facts the domain publishes after each commit, and the publishers that carry them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SessionChanged:
    session_id: int
    code: str
    phases: bool
    """True when the session's state changed (a phase opened, closed, was revealed or hidden;
    the session was renamed, ended or deleted); False for answers only."""
    gone: bool = False
    """The session was deleted: forget it, end its streams."""

    @property
    def every_session(self) -> bool:
        """The fact ``EVERY_SESSION``: anything may have changed, for every session."""
        return self.code == ""


EVERY_SESSION = SessionChanged(session_id=0, code="", phases=True)
"""Handed to the Broadcaster's listeners when this process may have missed facts (its connection
to a shared broadcast backend broke and came back): whatever they keep of any session is stale."""


class Publisher(Protocol):
    def publish(self, fact: SessionChanged) -> None:
        """Called after the transaction commits, from any thread; must not block."""


class NullPublisher:
    """For the command line and for tests that do not watch live updates."""

    def publish(self, fact: SessionChanged) -> None:
        return None


class Publishers:
    """Several publishers as one: each fact goes to every one of them, in order."""

    def __init__(self, *targets: Publisher) -> None:
        self.targets = targets

    def publish(self, fact: SessionChanged) -> None:
        for target in self.targets:
            target.publish(fact)


class RecordingPublisher:
    """Keeps every fact; used by tests to check what the domain publishes."""

    def __init__(self) -> None:
        self.facts: list[SessionChanged] = []

    def publish(self, fact: SessionChanged) -> None:
        self.facts.append(fact)
