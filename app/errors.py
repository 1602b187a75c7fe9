"""Domain errors. Services raise them; the web layer turns each into its HTTP status.

Each carries a ``code`` (stable, for translations and clients) and an English ``detail``.

Also what tells a database fault from a bug: ``database_unavailable`` (the web layer answers
503, the vote writer refuses the batch), ``DatabaseUnreachable`` (the app cannot start: one
line, password hidden) and ``database_outage`` (an outage logged once, not per request).
"""

from __future__ import annotations

import logging
import math
import re
import sys
import threading
import time

from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout


class DomainError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    """The request is well-formed but the current state refuses it (e.g. the phase is closed)."""

    status = 409
    code = "conflict"


class Invalid(DomainError):
    """The request names something that does not exist in its context, or a value out of range."""

    status = 422
    code = "invalid"


class Unavailable(DomainError):
    """The database cannot be reached (or cannot serve) just now: nothing was done; the client
    may send the request again after ``Retry-After`` seconds."""

    status = 503
    code = "database_unavailable"


RETRY_AFTER_SECONDS = 2
"""What every 503 asks the client to wait (the ``Retry-After`` header)."""


class TooManyRequests(DomainError):
    """An abuse limit (``app.limits``) refused the request: nothing was done; the client may
    send it again after ``retry_after`` whole seconds (the ``Retry-After`` header)."""

    status = 429
    code = "too_many_requests"

    def __init__(self, detail: str, *, retry_after: float, code: str | None = None) -> None:
        super().__init__(detail, code=code)
        self.retry_after = max(1, math.ceil(retry_after))


def retry_after(exc: DomainError) -> int | None:
    """The seconds a refused client should wait before trying again, if the refusal says."""
    if isinstance(exc, TooManyRequests):
        return exc.retry_after
    return RETRY_AFTER_SECONDS if exc.status == 503 else None


# --------------------------------------------------------------------------- database faults


def database_unavailable(exc: BaseException) -> bool:
    """Whether the error says the database cannot be reached or cannot serve now (rather than
    that the request or the code is wrong): the connection was refused, failed or was lost
    (SQLAlchemy's ``OperationalError``, ``InterfaceError``, any ``DBAPIError`` that invalidated
    its connection, psycopg's own ``OperationalError``/``InterfaceError``), no pooled connection
    came free in time, or SQLite is locked by another process ("database is locked" is an
    ``OperationalError`` too)."""
    if isinstance(exc, PoolTimeout):
        return True
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc, (OperationalError, InterfaceError))
    psycopg = sys.modules.get("psycopg")  # never imported: the error cannot be one of its own
    return psycopg is not None and isinstance(
        exc, (psycopg.OperationalError, psycopg.InterfaceError)
    )


def transaction_rolled_back(exc: BaseException) -> bool:
    """A deadlock or serialization failure (SQLSTATE class 40): the server rolled the
    transaction back, and the same writes in another transaction may well succeed."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    return str(getattr(orig, "sqlstate", "") or "").startswith("40")


def reason(exc: BaseException) -> str:
    """The driver's own words for a database error, on one line (no SQL, no link)."""
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = " ".join(str(orig).split())
    return text or type(orig).__name__


def redacted_url(url: str) -> str:
    """The database URL for messages: as given, with its password (in the user part or a
    ``password=`` parameter) replaced by ``***``. Works on URLs that do not parse."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        user, at, host = rest.rpartition("@")
        name, colon, _password = user.partition(":")
        if colon:
            rest = f"{name}:***{at}{host}"
    return re.sub(r"(?i)(password=)[^&;\s]*", r"\1***", scheme + sep + rest)


class DatabaseUnreachable(RuntimeError):
    """The app cannot start: its database cannot be reached, or its URL or driver is wrong.
    The message is one line, with the password hidden."""

    def __init__(self, url: str, problem: str) -> None:
        password = _password(url)
        if password:
            problem = problem.replace(password, "***")
        super().__init__(f"cannot reach the database at {redacted_url(url)}: {problem}")


def _password(url: str) -> str:
    _scheme, sep, rest = url.partition("://")
    user = rest.rpartition("@")[0] if sep else ""
    return user.partition(":")[2]


def engine_problem(exc: BaseException) -> str | None:
    """What is wrong, in one line, for an error raised while making the engine (the URL does
    not parse, its dialect or driver is missing, the SQLite file's folder cannot be made)."""
    if isinstance(exc, NoSuchModuleError):
        return f"no such database dialect or driver ({exc})"
    if isinstance(exc, ArgumentError):
        return "not a database URL (e.g. postgresql://user:password@host:5432/beliefgap)"
    if isinstance(exc, ValueError):
        return f"not a valid database URL ({exc})"
    if isinstance(exc, ImportError):
        return f"its driver is not installed ({exc})"
    if isinstance(exc, OSError | RuntimeError):
        return str(exc)
    return None


def connect_problem(exc: BaseException) -> str | None:
    """What is wrong, in one line, for an error raised while first using the database (refused,
    unknown host, wrong password, no such database); None for an error that is not about
    reaching it (a failed migration, a bug: those keep their traceback)."""
    return reason(exc) if database_unavailable(exc) else None


class OutageLog:
    """Says once, as a warning without a traceback, that the database is out of reach; then at
    most every ``interval`` seconds how many more requests met the outage; and, when told, that
    it is back. Nothing heard for ``3 * interval`` seconds: the next fault is a new outage.
    Thread-safe: the vote writer and request threads share one."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0) -> None:
        self._log = logger
        self._interval = interval
        self._lock = threading.Lock()
        self._down = False
        self._unsaid = 0
        self._said_at = 0.0
        self._seen_at = 0.0

    def note(self, exc: BaseException, where: str) -> None:
        now = time.monotonic()
        with self._lock:
            first = not self._down or now - self._seen_at > 3 * self._interval
            self._down, self._seen_at = True, now
            if not first and now - self._said_at < self._interval:
                self._unsaid += 1
                return
            more, self._unsaid, self._said_at = self._unsaid + 1, 0, now
        if first:
            self._log.warning(
                "the database cannot be reached (%s): %s; answering 503 until it is back",
                where,
                reason(exc),
            )
        else:
            self._log.warning(
                "the database is still out of reach: %d more requests answered 503 (%s: %s)",
                more,
                where,
                reason(exc),
            )

    def recovered(self) -> None:
        """The database answered again (the vote writer committed)."""
        if not self._down:  # the usual case: no lock taken
            return
        with self._lock:
            was_down, self._down, unsaid, self._unsaid = self._down, False, self._unsaid, 0
        if was_down:
            self._log.warning(
                "the database is reachable again (%d more requests were answered 503)", unsaid
            )


database_outage = OutageLog(logging.getLogger("beliefgap.database"))
"""The app's one account of database outages (the vote writer and the web layer report to it)."""
