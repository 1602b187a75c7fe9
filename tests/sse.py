"""Reading server-sent events as a browser does: one write may carry several events (a fan-out
joins what one stream gets into a single send), each ends at a blank line."""

from __future__ import annotations


def split(chunk: bytes) -> list[bytes]:
    """The events in one write, each with its closing blank line."""
    return [event + b"\n\n" for event in chunk.split(b"\n\n") if event]


def parse(event: bytes) -> tuple[str, str]:
    """An event's type and its data lines joined with newlines."""
    name, data = "", []
    for line in event.decode().split("\n"):
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
    return name, "\n".join(data)
