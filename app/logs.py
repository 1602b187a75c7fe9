"""What the server logs about requests: the request line and its status, not who sent it; on
demand, what its event loop is waiting on; and, for the benchmark, how long its loop stops.

uvicorn's access log starts each line with the client's address and port; with a timestamp
from the log collector, that joins every vote to a device on the room's network. Unless
``BELIEFGAP_LOG_CLIENT_ADDRESS`` is true, the address is left out: ``beliefgap serve`` logs
access lines without it (``uvicorn_log_config``), and an app under plain ``uvicorn
app.main:app`` puts ``-`` in its place (``hide_client_addresses``).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import gc
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ACCESS_LOGGER = "uvicorn.access"
ACCESS_FORMAT = '%(levelprefix)s "%(request_line)s" %(status_code)s'
ACCESS_FORMAT_WITH_ADDRESS = '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s'
HIDDEN = "-"


class ClientAddressFilter(logging.Filter):
    """Replaces the client's address in uvicorn's access records (their first argument)."""

    def __init__(self) -> None:
        super().__init__("beliefgap-client-address")
        self.hide = True

    def filter(self, record: logging.LogRecord) -> bool:
        if self.hide and isinstance(record.args, tuple) and record.args:
            record.args = (HIDDEN, *record.args[1:])
        return True


def hide_client_addresses(log_client_address: bool) -> None:
    """Take the address out of access records (or, when asked, keep it). Idempotent: one
    filter on the access logger, whose choice the latest app made."""
    logger = logging.getLogger(ACCESS_LOGGER)
    found = next((f for f in logger.filters if isinstance(f, ClientAddressFilter)), None)
    if found is None:
        found = ClientAddressFilter()
        logger.addFilter(found)
    found.hide = not log_client_address


def uvicorn_log_config(log_client_address: bool) -> dict[str, Any]:
    """uvicorn's logging set-up, with access lines that name no client unless asked to."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["access"]["fmt"] = (
        ACCESS_FORMAT_WITH_ADDRESS if log_client_address else ACCESS_FORMAT
    )
    return config


# --------------------------------------------------------------------------- what is waiting

DUMP_SIGNAL = "SIGUSR1"
"""``kill -USR1 <pid>`` makes a server process log every request and job its event loop is
waiting on, and where (``log_waiting_tasks``): what to send when a room sees requests that get
no answer. Each worker process answers for itself."""
DUMP_FRAMES = 12


def log_waiting_tasks(logger: logging.Logger) -> int:
    """Log each unfinished task of the running event loop: its name, the coroutine's frames from
    the outermost in (file, line, function), and what it awaits. Returns how many. No request's
    data is logged, only where the code stands."""
    tasks = [task for task in asyncio.all_tasks() if not task.done()]
    logger.warning("%d tasks waiting (%s)", len(tasks), DUMP_SIGNAL)
    for task in tasks:
        frames = [
            f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno} {frame.f_code.co_name}"
            for frame in _awaiting(task.get_coro())
        ]
        waiting = getattr(task, "_fut_waiter", None)
        logger.warning(
            "task %s: %s; awaits %s",
            task.get_name(),
            " > ".join(frames) or "(not started)",
            type(waiting).__name__ if waiting is not None else "nothing (ready to run)",
        )
    return len(tasks)


def _awaiting(coro: Any) -> list[Any]:
    """The frames of a coroutine and of what it awaits, in turn: where the task stands, from
    its outermost call in (a task's own stack shows only its first frame). The innermost
    ``DUMP_FRAMES`` are kept."""
    frames: list[Any] = []
    while coro is not None and len(frames) < 200:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        frames.append(frame)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return frames[-DUMP_FRAMES:]


def dump_waiting_tasks_on_signal(logger: logging.Logger) -> Callable[[], None]:
    """Log the waiting tasks whenever the process gets ``DUMP_SIGNAL`` (where there is one, in
    the main thread of a running loop); returns a function that stops listening."""
    number = getattr(signal, DUMP_SIGNAL, None)
    if number is None or threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(number, log_waiting_tasks, logger)
    except (NotImplementedError, RuntimeError, ValueError):  # no signals on this loop
        return lambda: None

    def stop() -> None:
        loop.remove_signal_handler(number)

    return stop


# --------------------------------------------------------------------------- how long it stops

STALLS_ENV = "BELIEFGAP_BENCH_LOOP_STALLS"
"""Set by the benchmark only (never in production): a file to which each server process appends
every stop of its event loop of ``STALL_RECORDED_SECONDS`` or more, and every garbage collection
as long, one line each: ``<pid> <monotonic clock at its end> <milliseconds> <loop|gc0|gc1|gc2>
<milliseconds of the process's CPU time within it> <milliseconds of the CPU time of the thread
it stopped: the loop's, or the one that collected>``. The machine's monotonic clock is the
benchmark's too, so it tells which stage a stop fell in; the CPU time tells the process's own
work from the time it waited for a core (on a busy machine a stop can last several times the
work that caused it), and the thread's, the loop's own work from its other threads' (the
writer's, the renders')."""
STALL_WAKE_SECONDS = 0.01
"""The watching task wakes this often: how late it wakes is how long the loop could not run."""
STALL_RECORDED_SECONDS = 0.02


def watch_stalls(environ: Mapping[str, str] | None = None) -> Callable[[], None]:
    """When ``STALLS_ENV`` names a file, record this process's event-loop stops and long garbage
    collections there until the returned function is called; else do nothing. Call on the
    running loop."""
    target = (os.environ if environ is None else environ).get(STALLS_ENV, "")
    if not target:
        return lambda: None
    out = open(target, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 (closed by stop)
    pid = os.getpid()

    def record(end: float, seconds: float, kind: str, cpu: float, own: float) -> None:
        if seconds >= STALL_RECORDED_SECONDS and not out.closed:
            out.write(
                f"{pid} {end:.4f} {1000 * seconds:.1f} {kind} {1000 * cpu:.1f} {1000 * own:.1f}\n"
            )

    collecting: list[tuple[float, float, float]] = []

    def collection(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            collecting[:] = [(time.monotonic(), time.process_time(), time.thread_time())]
        elif collecting:
            end, cpu, own = time.monotonic(), time.process_time(), time.thread_time()
            began, began_cpu, began_own = collecting.pop()
            kind = f"gc{info.get('generation', '')}"
            record(end, end - began, kind, cpu - began_cpu, own - began_own)

    async def watch() -> None:
        expected = time.monotonic() + STALL_WAKE_SECONDS
        cpu, own = time.process_time(), time.thread_time()
        while True:
            await asyncio.sleep(STALL_WAKE_SECONDS)
            now, now_cpu, now_own = time.monotonic(), time.process_time(), time.thread_time()
            record(now, now - expected, "loop", now_cpu - cpu, now_own - own)
            expected, cpu, own = now + STALL_WAKE_SECONDS, now_cpu, now_own

    gc.callbacks.append(collection)
    task = asyncio.get_running_loop().create_task(watch(), name="stall-watch")

    def stop() -> None:
        task.cancel()
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(collection)
        out.close()

    return stop


# --------------------------------------------------------------------------- where its CPU goes

PROFILE_ENV = "BELIEFGAP_BENCH_PROFILE"
"""Set by the benchmark only (never in production): a directory in which each server process
writes ``profile-<pid>.prof`` when it stops, the CPU time (``time.thread_time``) of every
function in every thread of the process (the event loop, the thread pool, the vote writer),
merged; read it with ``python -m pstats``. The profiler slows the process down about twice:
its figures say where the CPU goes, not how fast anything is. A call another thread is still
inside when the profile is written (a pool thread waiting for work) is charged with a clock that
is not its own: read the waits' figures (lock, queue) as noise."""


def profile_threads(environ: Mapping[str, str] | None = None) -> Callable[[], None]:
    """When ``PROFILE_ENV`` names a directory, profile this thread and every thread started
    after this call until the returned function is called, which writes the merged profile;
    else do nothing."""
    target = (os.environ if environ is None else environ).get(PROFILE_ENV, "")
    if not target:
        return lambda: None
    import cProfile
    import pstats

    profiles: list[cProfile.Profile] = []

    def start(*_: Any) -> None:
        # A new thread's first call: it gets a profiler of its own, which replaces this hook.
        profile = cProfile.Profile(time.thread_time)
        profiles.append(profile)
        profile.enable()

    threading.setprofile(start)
    start()

    def stop() -> None:
        threading.setprofile(None)
        for profile in profiles:
            with contextlib.suppress(ValueError):
                profile.disable()  # this thread's; the others' stats are taken as they stand
        stats = None
        for profile in profiles:
            profile.snapshot_stats()
            if stats is None:
                stats = pstats.Stats(profile)
            else:
                stats.add(profile)
        if stats is not None:
            stats.dump_stats(str(Path(target) / f"profile-{os.getpid()}.prof"))

    return stop
