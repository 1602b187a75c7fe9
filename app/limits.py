"""What a client may ask of the server: request bodies, votes, new participants, event
streams, wrong admin tokens, and the time its request may take.

- Bodies are capped while they stream in (no Content-Length is no way round). Votes are tiny;
  anything over ``VOTE_BODY_LIMIT`` on a vote path (API or phone form) is refused with 413
  before the app reads it. A talk sent to the talk API has a cap of its own
  (``TALK_BODY_LIMIT``); other requests get a larger one.
- ``Limits`` (the app's ``app.state.limits``): votes per participant, new participants per
  address (at their first vote), event streams per participant, per address, without a
  cookie per address and across all addresses, wrong admin tokens per address. Each
  refusal is ``TooManyRequests``, answered 429 with Retry-After. Counted in memory, per
  process: nothing is stored.
- A deadline on each request (``BELIEFGAP_REQUEST_TIMEOUT``): its body must be in within it,
  counted from the request's first byte (``beliefgap serve``) or from the moment the app gets
  it (any other server), else 408. ``HeaderTimeoutProtocol``, uvicorn's HTTP protocol with a
  deadline on request headers, times the part no app can see.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import secrets
import threading
import time
from collections.abc import Callable, Hashable
from functools import cache
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.types import Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.errors import TooManyRequests
from app.settings import Settings

VOTE_BODY_LIMIT = 4 * 1024
DEFAULT_BODY_LIMIT = 1024 * 1024
TALK_BODY_LIMIT = 512 * 1024
"""A talk sent to the API (TOML or JSON). A real talk is a few KB (the bundled ones: 3 KB for
four phases in two languages); the largest the checks allow, with texts of a usual length (40
phases of five options in 8 languages, three of them Chinese, Japanese or Korean), is 290 KB as
TOML. Reading and checking a talk grows with its size, so it gets a cap of its own. The
editor's form keeps the general 1 MiB: the same talk is 640 KB as a form, its Chinese
percent-encoded."""
TALK_PATHS = ("/api/v1/talks",)

REQUEST_STARTED = "beliefgap.request_started"
"""The scope key in which ``HeaderTimeoutProtocol`` leaves when a request's first byte came (the
event loop's clock), so that the request deadline also counts the time its headers took."""


def body_limit(path: str) -> int:
    """The most bytes a request body to ``path`` may hold."""
    if path.endswith(("/votes", "/vote")):  # the API's and the phone form's votes
        return VOTE_BODY_LIMIT
    if path.startswith(TALK_PATHS):
        return TALK_BODY_LIMIT
    return DEFAULT_BODY_LIMIT


class BodyTooLarge(HTTPException):
    """An HTTPException, so that a framework reading the body answers 413 instead of 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes")


class RequestTimedOut(HTTPException):
    """The body did not arrive within the request deadline: an HTTPException, so that a
    framework reading the body answers 408 instead of 400."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            408, f"the request was not sent within {seconds:g} s", {"Connection": "close"}
        )


def declared_too_large(scope: Scope, limit: int) -> bool:
    """Whether the request's Content-Length is over ``limit`` (or no number at all)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return not value.isdigit() or int(value) > limit
    return False


def limited_receive(scope: Scope, receive: Receive, limit: int, seconds: float) -> Receive:
    """``receive`` held to ``limit`` bytes of body (``BodyTooLarge``) and to the request
    deadline, ``seconds`` for the whole request, headers and body (``RequestTimedOut``; 0: no
    deadline). Under ``beliefgap serve`` the deadline counts from the request's first byte
    (``REQUEST_STARTED``), elsewhere from the moment the server hands the request to the app
    (and the server's own header timeout covers the headers). ``app.security.RequestGuard``
    answers either exception with 413 or 408 if no response has begun."""
    received = 0
    complete = False
    loop = asyncio.get_running_loop()
    deadline = scope.get("extensions", {}).get(REQUEST_STARTED, loop.time()) + seconds

    async def limited() -> Message:
        nonlocal received, complete
        if complete or seconds <= 0:  # the body is in: what follows is the disconnect
            message = await receive()
        else:
            # A timer, not a task per read (wait_for): every vote passes here.
            if loop.time() >= deadline:
                raise RequestTimedOut(seconds)
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise RequestTimedOut(seconds) from None
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
            complete = not message.get("more_body", False)
        return message

    return limited


async def refuse(send: Send, status: int, detail: str) -> None:
    """A short JSON refusal (413, 408) sent before the app has answered."""
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if status == 408:  # the rest of the body may still come: the connection ends here
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# --------------------------------------------------------------------------- abuse limits
#
# A room of phones behind one NAT shares one address, and so may a device that floods. They are
# told apart by what each phone does and a flood does not (docs/limits.md):
# - A phone keeps its participant cookie. A cookie costs nothing until its first vote, so the
#   join page is never what a flood spends: the new participants of an address are counted at
#   their first vote, with a burst for a whole hall (5,000 phones and more).
# - A phone's event stream carries its cookie. Streams without one (a script, a device that
#   drops cookies) have a small cap per address of their own, so they cannot take the streams
#   of the hall's phones; every stream counts against the address's cap (a hall and more) and
#   against one cap across all addresses, which answers 429 before memory runs out.
# What a single phone may do is limited by its participant cookie. Everything is counted in
# this process's memory, never stored or logged: addresses only as a keyed hash (the key is
# random per process), forgotten once their counters are back at rest.

SWEEP_SECONDS = 30.0
"""How often buckets back at rest (full again) are forgotten."""
MAX_KEYS = 200_000
"""The most keys a set of buckets holds; past it the oldest are forgotten (which only forgives)."""
STREAM_RETRY_AFTER_SECONDS = 10
"""What a refused event stream is told to wait: streams end when their phones leave."""
MAX_VOTERS = 500_000
"""The most participants whose first vote a process remembers (about 70 bytes each); past it
the oldest are forgotten, and such a participant's next vote counts as a first one again."""


def address_key(scope: Scope, salt: bytes) -> bytes:
    """Who a request comes from, as the limits count it: the client's address as the server
    saw it (behind a trusted proxy, uvicorn puts the forwarded address in ``scope["client"]``),
    an IPv6 address by its /64 network (one device or one network's phones may hold a whole
    /64), hashed with ``salt`` so that the address itself is never kept."""
    client = scope.get("client")
    host = client[0] if client else ""
    if ":" in host:  # IPv6 (an IPv4 address, a unix socket or a test client is used as it is)
        try:
            parsed = ipaddress.IPv6Address(host)
        except ValueError:
            pass
        else:
            mapped = parsed.ipv4_mapped
            host = (
                str(mapped)
                if mapped is not None
                else str(ipaddress.IPv6Network((parsed, 64), strict=False))
            )
    return hashlib.blake2b(host.encode(), key=salt, digest_size=16).digest()


class TokenBuckets:
    """One token bucket per key: it holds up to ``burst`` tokens, gains ``rate`` a second, and
    each request takes one. A bucket that would be full again is the same as none, so buckets
    at rest are forgotten every ``SWEEP_SECONDS`` and memory follows the clients active in the
    last minute or so (at most ``max_keys``). ``rate`` or ``burst`` 0: no limit."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: dict[Hashable, list[float]] = {}  # key -> [tokens, when counted]
        self._lock = threading.Lock()
        self._swept = clock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0 and self.burst > 0

    def take(self, key: Hashable) -> float:
        """Take a token from ``key``'s bucket: 0 when there was one, else the seconds until
        there will be (nothing is taken then)."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        with self._lock:
            if now - self._swept > SWEEP_SECONDS:
                self._sweep(now)
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self._max_keys:
                    del self._buckets[next(iter(self._buckets))]
                self._buckets[key] = [self.burst - 1.0, now]
                return 0.0
            tokens = min(float(self.burst), bucket[0] + (now - bucket[1]) * self.rate)
            bucket[1] = now
            if tokens >= 1.0:
                bucket[0] = tokens - 1.0
                return 0.0
            bucket[0] = tokens
            return (1.0 - tokens) / self.rate

    def wait(self, key: Hashable) -> float:
        """The seconds until ``key``'s bucket holds a token (0: it does); nothing is taken."""
        if not self.enabled:
            return 0.0
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                return 0.0
            tokens = min(float(self.burst), bucket[0] + (self._clock() - bucket[1]) * self.rate)
            return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def _sweep(self, now: float) -> None:
        self._swept = now
        full = [
            key
            for key, (tokens, counted) in self._buckets.items()
            if tokens + (now - counted) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


class OpenCounts:
    """How many of something (event streams) each key holds open right now, against a cap
    (0: no cap). A key whose count falls to zero is forgotten, so memory follows what is open."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._open: dict[Hashable, int] = {}

    def full(self, key: Hashable) -> bool:
        return self.cap > 0 and self._open.get(key, 0) >= self.cap

    def add(self, key: Hashable) -> None:
        self._open[key] = self._open.get(key, 0) + 1

    def remove(self, key: Hashable) -> None:
        left = self._open.get(key, 0) - 1
        if left > 0:
            self._open[key] = left
        else:
            self._open.pop(key, None)

    def __len__(self) -> int:
        return len(self._open)


class Limits:
    """The app's abuse limits, from its settings (``BELIEFGAP_LIMIT_*``), counted per process.

    - votes per participant (a session's participant cookie): a token bucket;
    - new participants per address, counted at a participant's first vote (a cookie-less API
      vote, or the first vote of a cookie the join page handed out): a token bucket with a
      burst for a whole hall. The join page only looks: while an address's bucket is empty,
      a phone without a cookie is held back, nothing is taken;
    - open event streams: per participant, per address, per address without a participant
      cookie, and across all addresses: caps;
    - wrong admin tokens per address (the login form, bearer tokens): a token bucket that only
      failures drain; while it is empty, every token from that address is refused unread.

    Each check raises ``TooManyRequests`` (429 with Retry-After) or lets the request through.
    Called from the event loop only (the stream counts take no lock)."""

    def __init__(self, settings: Settings) -> None:
        self._salt = secrets.token_bytes(16)
        self.votes = TokenBuckets(settings.limit_votes_per_second, settings.limit_vote_burst)
        self.new_participants = TokenBuckets(
            settings.limit_new_participants_per_second, settings.limit_new_participant_burst
        )
        self._voters: dict[int, None] = {}  # hashes of (session, participant) that have voted
        self.streams_per_participant = OpenCounts(settings.limit_streams_per_participant)
        self.streams_per_address = OpenCounts(settings.limit_streams_per_address)
        self.cookieless_streams = OpenCounts(settings.limit_cookieless_streams_per_address)
        self.open_streams = 0
        self.stream_cap = settings.limit_open_streams
        self.failed_logins = TokenBuckets(
            settings.limit_failed_logins_per_minute / 60, settings.limit_failed_login_burst
        )

    def address(self, scope: Scope) -> bytes:
        return address_key(scope, self._salt)

    def vote(self, code: str, token: str) -> None:
        """A vote from the participant ``token`` of session ``code``."""
        wait = self.votes.take((code, token))
        if wait:
            raise TooManyRequests(
                "too many votes from this participant in a short time; send it again later",
                code="too_many_votes",
                retry_after=wait,
            )

    def first_vote(self, scope: Scope, code: str, token: str) -> None:
        """Before a vote of participant ``token`` of session ``code`` is stored: its first
        vote (in this process) takes a new participant from its address's bucket, or is
        refused while that is empty. Every later vote passes: only first votes count."""
        if not self.new_participants.enabled:
            return
        key = hash((code, token))
        if key in self._voters:
            return
        wait = self.new_participants.take(self.address(scope))
        if wait:
            raise TooManyRequests(
                "too many new participants from this address in a short time; try again later",
                code="too_many_new_participants",
                retry_after=wait,
            )
        if len(self._voters) >= MAX_VOTERS:
            del self._voters[next(iter(self._voters))]
        self._voters[key] = None

    def may_join(self, scope: Scope) -> None:
        """Before the join page hands a cookie to the client of ``scope``: refused while its
        address has no new participant left (nothing is taken: a cookie costs nothing until it
        votes, so a device that reloads the page without cookies spends nothing)."""
        wait = self.new_participants.wait(self.address(scope))
        if wait:
            raise TooManyRequests(
                "too many new participants from this address in a short time; try again later",
                code="too_many_new_participants",
                retry_after=wait,
            )

    def token_allowed(self, scope: Scope) -> None:
        """Before an admin token from the client of ``scope`` is read: refused while that
        address has used up its wrong tokens (even the right token waits, or guessing would go
        on at full speed behind the 429s)."""
        if not self.failed_logins.enabled:
            return
        wait = self.failed_logins.wait(self.address(scope))
        if wait:
            raise TooManyRequests(
                "too many wrong admin tokens from this address; wait before trying again",
                code="too_many_failed_logins",
                retry_after=wait,
            )

    def token_failed(self, scope: Scope) -> None:
        """A wrong admin token came from the client of ``scope``."""
        self.failed_logins.take(self.address(scope))

    def open_stream(
        self, scope: Scope, participant: tuple[str, str] | None, *, presenter: bool = False
    ) -> Callable[[], None]:
        """Count an event stream opened by the client of ``scope`` (``participant``: its
        session code and participant token, if its cookie has one; ``presenter``: the
        presenter's screens, which carry no participant cookie and are not counted as
        cookie-less). Returns the function that counts it closed (call it exactly once)."""
        if self.stream_cap > 0 and self.open_streams >= self.stream_cap:
            raise TooManyRequests(
                "the server holds as many event streams as it may; try again shortly",
                code="too_many_streams",
                retry_after=STREAM_RETRY_AFTER_SECONDS,
            )
        address = self.address(scope)
        by_address, by_participant = self.streams_per_address, self.streams_per_participant
        cookieless = self.cookieless_streams if participant is None and not presenter else None
        if participant is not None and by_participant.full(participant):
            raise TooManyRequests(
                "this participant has too many event streams open; close one",
                code="too_many_streams",
                retry_after=STREAM_RETRY_AFTER_SECONDS,
            )
        if by_address.full(address) or (cookieless is not None and cookieless.full(address)):
            raise TooManyRequests(
                "too many event streams open from this address",
                code="too_many_streams",
                retry_after=STREAM_RETRY_AFTER_SECONDS,
            )
        self.open_streams += 1
        by_address.add(address)
        if participant is not None:
            by_participant.add(participant)
        if cookieless is not None:
            cookieless.add(address)
        closed = False

        def close() -> None:
            nonlocal closed
            if closed:
                return
            closed = True
            self.open_streams -= 1
            by_address.remove(address)
            if participant is not None:
                by_participant.remove(participant)
            if cookieless is not None:
                cookieless.remove(address)

        return close


# --------------------------------------------------------------------------- slow headers

REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 29\r\nconnection: close\r\n\r\nthe request headers were slow"
)


@cache
def configured_header_timeout() -> float:
    """``BELIEFGAP_HEADER_TIMEOUT``, read once per process."""
    return Settings().header_timeout


class _HeaderDeadline(asyncio.Protocol):
    """A deadline on uvicorn's HTTP/1.1 protocols for each request's headers: counted from the
    moment the connection opens, or from the first byte of each later request on a kept-alive
    connection, until the headers are complete. A connection past it is closed (with 408 if
    the request had begun). uvicorn itself only times the wait between requests, and a client
    that sends its headers a byte at a time (slowloris) would hold a connection for ever.

    A request whose headers are in is not timed by this: its body is held to the request
    deadline by the app (``limited_receive``, which this protocol tells when the request's
    first byte came), an event stream by its own send timeout."""

    header_timeout: float | None = None
    """Seconds; None reads ``BELIEFGAP_HEADER_TIMEOUT``; 0 turns the deadline off."""

    if TYPE_CHECKING:
        cycle: Any
        loop: asyncio.AbstractEventLoop
        transport: asyncio.Transport
        connections: set[Any]

    _header_timer: asyncio.TimerHandle | None = None
    _header_begun = False
    _request_started: float | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm_header_deadline()

    def data_received(self, data: bytes) -> None:
        before = self.cycle
        if before is None or before.response_complete:  # these bytes start a request
            if self._header_timer is None:
                self._arm_header_deadline()
            self._header_begun = True
            if self._request_started is None:
                self._request_started = self.loop.time()
        super().data_received(data)
        if self.cycle is not before:  # its headers are complete: the app has the request
            self._disarm_header_deadline()
            if self.cycle is not None and self._request_started is not None:
                # The app's task has not run yet: it finds when the request began (the request
                # deadline counts from there, limited_receive).
                extensions = self.cycle.scope.setdefault("extensions", {})
                extensions[REQUEST_STARTED] = self._request_started
            self._request_started = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        seconds = self.header_timeout
        if seconds is None:
            seconds = configured_header_timeout()
        if seconds > 0:
            self._header_begun = False
            self._header_timer = self.loop.call_later(seconds, self._header_deadline_passed)

    def _disarm_header_deadline(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_deadline_passed(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self not in self.connections:  # closed, or upgraded
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a response is still being sent: the next request waits for it
        if self._header_begun:
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()


class HeaderTimeoutHttpTools(_HeaderDeadline, HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on request headers."""


class HeaderTimeoutH11(_HeaderDeadline, H11Protocol):
    """uvicorn's h11 protocol with a deadline on request headers."""


HeaderTimeoutProtocol = HeaderTimeoutHttpTools
"""What ``beliefgap serve`` runs, and what ``uvicorn app.main:app --http
app.limits:HeaderTimeoutProtocol`` runs: httptools, uvicorn's own choice (uvicorn[standard])."""
