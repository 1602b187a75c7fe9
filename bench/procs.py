"""CPU time and memory of processes and of the whole machine (Linux, /proc): the server may be
one uvicorn process or a supervisor with its workers, and PostgreSQL is a postmaster with one
process per connection, so both are measured as process trees."""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (field 3 of the man page is [0])."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICKS


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            found.append(int(stat.parent.name))
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process, of its children it has reaped (a postmaster's finished backends)
    and of its live descendants: it only grows while the tree runs."""
    try:
        fields = _stat(pid)
    except OSError:
        return 0.0
    total = sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICKS
    for child in children(pid):
        total += tree_cpu_seconds(child)
    return total


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and its descendants (shared pages counted in each)."""
    total = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total = int(line.split()[1]) * 1024
                break
    except OSError:
        return 0
    return total + sum(tree_rss_bytes(child) for child in children(pid))


def parent(pid: int) -> int:
    return int(_stat(pid)[1])


def machine_busy_seconds() -> float:
    """CPU time all processes of the machine have used (/proc/stat: user, nice, system; not the
    interrupts, which carry our own traffic too): what the server, the database and the client
    did not use of it is other load, which would blur the figures."""
    user, nice, system = (int(x) for x in Path("/proc/stat").read_text().split()[1:4])
    return (user + nice + system) / TICKS


def sockets(pid: int) -> int:
    """Open sockets of a process (its connections, the listening one included)."""
    count = 0
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return 0
    for fd in descriptors:
        try:
            count += os.readlink(fd).startswith("socket:")
        except OSError:  # closed meanwhile (a busy server closes connections all the time)
            continue
    return count


def workers(pid: int) -> list[int]:
    """The processes serving requests: a uvicorn supervisor's workers (forked, or spawned beside
    multiprocessing's resource tracker), else itself."""
    found = []
    for child in children(pid):
        try:
            if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
        except OSError:
            continue
    return found or [pid]
