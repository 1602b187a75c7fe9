"""What the server logs about requests: the request line and its status, not who sent it; and,
on demand, what its event loop is waiting on.

uvicorn's access log starts each line with the client's address and port; with a timestamp
from the log collector, that joins every vote to a device on the room's network. Unless
``BELIEFGAP_LOG_CLIENT_ADDRESS`` is true, the address is left out: ``beliefgap serve`` logs
access lines without it (``uvicorn_log_config``), and an app under plain ``uvicorn
app.main:app`` puts ``-`` in its place (``hide_client_addresses``).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import signal
import threading
from collections.abc import Callable
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
