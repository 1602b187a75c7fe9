"""A phone's browser on the voting page, as raw HTTP/1.1 over asyncio streams (cheap enough to
play thousands of phones from one process): the join page, its cookies and CSRF token, the
requests htmx sends (the panel, the form vote), and which page design the server serves.

Used by the room stage (``room.py``) and by the wrk stages of the phone's page (``run.py``),
which get their phones' cookies and tokens from ``prepare``.
"""

from __future__ import annotations

import asyncio
import html
import re
import resource
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote_plus

CHOICES = ("agree", "disagree", "unsure")

# What Chrome on an Android phone sends, header for header (names, values and order as Chromium
# 156 sends them, captured from the app's own pages in headless Chromium; the platform hints
# and the user agent are a phone's, not the headless browser's).
USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Mobile Safari/537.36"
)
CLIENT_HINTS = (
    'sec-ch-ua: "Chromium";v="156", "Google Chrome";v="156", "Not:A-Brand";v="8"\r\n'
    "sec-ch-ua-mobile: ?1\r\n"
    'sec-ch-ua-platform: "Android"\r\n'
)
PAGE_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,"
    "*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
)
ACCEPT_ENCODING = "gzip, deflate, br, zstd"
ACCEPT_LANGUAGE = "en-GB,en;q=0.9"
NAVIGATION = (
    f"Connection: keep-alive\r\n{CLIENT_HINTS}Upgrade-Insecure-Requests: 1\r\n"
    f"User-Agent: {USER_AGENT}\r\nAccept: {PAGE_ACCEPT}\r\n"
    # the QR code's address opened from the camera: no page sent it
    "Sec-Fetch-Site: none\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-User: ?1\r\n"
    f"Sec-Fetch-Dest: document\r\nAccept-Encoding: {ACCEPT_ENCODING}\r\n"
    f"Accept-Language: {ACCEPT_LANGUAGE}\r\n"
)
"""The join page's request headers after ``Host`` (and before a ``Cookie``)."""

DATA_OPEN = re.compile(rb'data-open="([^"]*)"')
FORM_TOKEN = re.compile(rb'name="csrftoken"\s+value="([^"]+)"')
HX_TOKEN = re.compile(rb'x-csrftoken(?:"|&#34;|&quot;)\s*:\s*(?:"|&#34;|&quot;)([^"&]+)')
PANEL_TAG = re.compile(rb'<section\b[^>]*\bid="aud-panel"[^>]*>', re.S)
HX_TRIGGER = re.compile(rb'hx-trigger="([^"]*)"')
PANEL_SWAP = re.compile(rb'sse-swap="(?:[^"]*,\s*)?panel(?:\s*,[^"]*)?"|hx-trigger="[^"]*sse:panel')
SCRIPT_STREAM = re.compile(rb'<div\b[^>]*\bclass="aud-live"[^>]*\bdata-events="', re.S)
STREAM_URL = re.compile(rb'(?:sse-connect|data-events)="([^"]+)"')
ANSWERED = re.compile(rb'data-answered="([^"]*)"')

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when it is installed (a leaner client), else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def raise_fd_limit() -> int:
    """Lift this process's open-file limit to its hard limit (two sockets per phone)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# --------------------------------------------------------------------------- page designs


@dataclass(frozen=True)
class Design:
    """What the page's script does on live updates, read from the join page's HTML.

    ``state_fetch`` (the old design): ``#aud-panel`` has ``hx-trigger="sse:state, ..."``, and on
    each ``state`` event the script compares the open phases' signature with ``data-open`` and
    fetches ``/j/{code}/panel`` when they differ. ``panel_event`` (the new design): an element
    with ``sse-swap="panel"``, or ``.aud-live`` with ``data-events`` (the page's script holds the
    stream itself); the stream carries the panel's HTML in ``panel`` events, which the page
    swaps in when their ``data-open`` differs from the panel's, unless the phone answered one
    of the open phases (then it fetches its own panel)."""

    state_fetch: bool
    panel_event: bool

    @property
    def name(self) -> str:
        if self.state_fetch and self.panel_event:
            return "old+new"
        if self.panel_event:
            return "new"
        return "old" if self.state_fetch else "static"


def detect(html: bytes) -> Design:
    tag = PANEL_TAG.search(html)
    trigger = HX_TRIGGER.search(tag.group(0)) if tag else None
    return Design(
        state_fetch=bool(trigger and b"sse:state" in trigger.group(1)),
        panel_event=PANEL_SWAP.search(html) is not None or SCRIPT_STREAM.search(html) is not None,
    )


def open_keys(data_open: str) -> set[str]:
    """``belief@;field@1767225600`` -> ``{"belief", "field"}``."""
    return {part.split("@", 1)[0] for part in data_open.split(";") if part}


# --------------------------------------------------------------------------- raw HTTP/1.1


class HTTPFailure(Exception):
    pass


@dataclass
class Reply:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        return next((v for k, v in self.headers if k == name), None)


async def read_head(reader: asyncio.StreamReader) -> tuple[int, list[tuple[bytes, bytes]]]:
    status_line = await reader.readline()
    if not status_line:
        raise HTTPFailure("connection closed before the response")
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
        raise HTTPFailure(f"bad status line {status_line!r}")
    headers: list[tuple[bytes, bytes]] = []
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n"):
            return int(parts[1]), headers
        if not line:
            raise HTTPFailure("connection closed in the response head")
        name, _, value = line.partition(b":")
        headers.append((name.strip().lower(), value.strip()))


async def read_chunk(reader: asyncio.StreamReader) -> bytes:
    """One chunk of a chunked body; b"" at its end."""
    size_line = await reader.readline()
    if not size_line:
        raise HTTPFailure("connection closed in a chunked body")
    size = int(size_line.split(b";", 1)[0].strip(), 16)
    if size == 0:
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):  # trailers
            pass
        return b""
    piece = await reader.readexactly(size + 2)
    return piece[:-2]


async def read_body(reader: asyncio.StreamReader, headers: list[tuple[bytes, bytes]]) -> bytes:
    values = dict(headers)
    if b"content-length" in values:
        return await reader.readexactly(int(values[b"content-length"]))
    if values.get(b"transfer-encoding", b"").lower() == b"chunked":
        pieces = []
        while piece := await read_chunk(reader):
            pieces.append(piece)
        return b"".join(pieces)
    return await reader.read()


class Connection:
    """One keep-alive connection to the server, opened again when the server has closed it
    (uvicorn closes idle ones after 5 s), as a browser's connection pool does: a request that
    fails on a reused connection before any answer is sent once more on a new one."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.opened = 0

    async def _open(self) -> None:
        self.close()
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.opened += 1

    async def request(self, head: str, body: bytes = b"") -> Reply:
        """``head``: the request line and headers, without the final blank line."""
        for attempt in (0, 1):
            reused = self.reader is not None and not self.reader.at_eof()
            if not reused:
                await self._open()
            assert self.reader is not None and self.writer is not None
            try:
                self.writer.write(
                    f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
                    if body or head.startswith("POST")
                    else f"{head}\r\n".encode()
                )
                await self.writer.drain()
                status, headers = await read_head(self.reader)
            except (ConnectionError, HTTPFailure, OSError):
                self.close()
                if reused and attempt == 0:
                    continue
                raise
            try:
                payload = await read_body(self.reader, headers)
            except (ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
                self.close()
                raise HTTPFailure(f"connection lost in the body: {exc!r}") from exc
            if dict(headers).get(b"connection", b"").lower() == b"close":
                self.close()
            return Reply(status, headers, payload)
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


# --------------------------------------------------------------------------- one phone


@dataclass(eq=False)
class Phone:
    """One phone's browser: its cookies, its CSRF token and its keep-alive connection."""

    port: int
    code: str
    lang: str = "en"
    cookies: dict[str, str] = field(default_factory=dict)
    token: str = ""
    design: Design | None = None
    data_open: str = ""
    answered: set[str] = field(default_factory=set)
    events_path: str = ""
    connection: Connection | None = None

    def __post_init__(self) -> None:
        self.connection = Connection(self.port)
        self.host = f"127.0.0.1:{self.port}"
        self.page_url = f"http://{self.host}/j/{self.code}"

    @property
    def cookie(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def _cookie(self) -> str:
        return f"Cookie: {self.cookie}\r\n" if self.cookies else ""

    def _fetched(self, before: str, accept: str = "*/*") -> str:
        """The headers of a request the page's script sends (htmx, EventSource) after ``Host``,
        with ``before`` where Chromium puts a request's own (htmx's, the stream's)."""
        return (
            f"Connection: keep-alive\r\n{before}{CLIENT_HINTS}User-Agent: {USER_AGENT}\r\n"
            f"Accept: {accept}\r\nSec-Fetch-Site: same-origin\r\nSec-Fetch-Mode: cors\r\n"
            f"Sec-Fetch-Dest: empty\r\nReferer: {self.page_url}\r\n"
            f"Accept-Encoding: {ACCEPT_ENCODING}\r\nAccept-Language: {ACCEPT_LANGUAGE}\r\n"
            f"{self._cookie()}"
        )

    def _htmx(self, *more: str) -> str:
        token = f"x-csrftoken: {self.token}\r\n" if self.token else ""  # pages of old servers
        return f"HX-Request: true\r\nHX-Current-URL: {self.page_url}\r\n{token}" + "".join(
            f"{line}\r\n" for line in more
        )

    async def join(self) -> bytes:
        """``GET /j/{code}`` as a new phone: keeps the cookies it sets and the page's token."""
        assert self.connection is not None
        reply = await self.connection.request(self.join_head())
        if reply.status != 200:
            raise HTTPFailure(f"join page: {reply.status}")
        for name, value in reply.headers:
            if name == b"set-cookie":
                pair = value.split(b";", 1)[0].decode()
                key, _, val = pair.partition("=")
                self.cookies[key.strip()] = val.strip()
        if f"bg_p_{self.code}" not in self.cookies:
            raise HTTPFailure("join page without a participant cookie")
        # Servers before the origin check put an anti-forgery token in the page; newer ones
        # have none (the browser's Sec-Fetch-Site header does that job).
        match = FORM_TOKEN.search(reply.body) or HX_TOKEN.search(reply.body)
        self.token = match.group(1).decode() if match else ""
        self.design = detect(reply.body)
        self.learn(reply.body)
        stream = STREAM_URL.search(reply.body)
        self.events_path = (
            html.unescape(stream.group(1).decode())
            if stream
            else f"/api/v1/sessions/{self.code}/events?lang={self.lang}"
        )
        return reply.body

    def learn(self, page: bytes) -> None:
        """What a panel drawn for this phone shows: the open phases (``data-open``) and, in the
        new design, the phases it answered (``data-answered``)."""
        tag = PANEL_TAG.search(page)
        if tag is None:
            return
        found = DATA_OPEN.search(tag.group(0))
        self.data_open = found.group(1).decode() if found else ""
        answered = ANSWERED.search(tag.group(0))
        if answered is not None:
            self.answered = {key for key in answered.group(1).decode().split(",") if key}

    def events_head(self) -> bytes:
        stream = "Cache-Control: no-cache\r\nPragma: no-cache\r\n"
        return (
            f"GET {self.events_path} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"{self._fetched(stream, accept='text/event-stream')}\r\n"
        ).encode()

    def join_head(self) -> str:
        """The join page's request line and headers (without the blank line that ends them)."""
        return f"GET /j/{self.code} HTTP/1.1\r\nHost: {self.host}\r\n{NAVIGATION}{self._cookie()}"

    def panel_head(self) -> str:
        htmx = self._htmx("HX-Trigger: aud-panel", "HX-Target: aud-panel")
        return (
            f"GET /j/{self.code}/panel?lang={self.lang} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"{self._fetched(htmx)}"
        )

    def vote_head(self) -> str:
        """The form vote's request line and headers, but its ``Content-Length``."""
        htmx = self._htmx(
            "HX-Target: aud-panel",
            "Content-Type: application/x-www-form-urlencoded",
            f"Origin: http://{self.host}",
        )
        return f"POST /j/{self.code}/vote HTTP/1.1\r\nHost: {self.host}\r\n{self._fetched(htmx)}"

    async def panel(self) -> Reply:
        """What htmx sends for ``hx-get`` on ``#aud-panel``."""
        assert self.connection is not None
        return await self.connection.request(self.panel_head())

    async def vote(
        self, phase: str, choice: str, answered: str = "", text: str | None = None
    ) -> Reply:
        """What htmx sends when a button of the form is tapped (``text``: the open-text form's
        send button, the text field's content)."""
        assert self.connection is not None
        answer = f"choice={choice}" if text is None else f"text={quote_plus(text)}&slot=0"
        body = (
            f"csrftoken={self.token}&phase={phase}&lang={self.lang}&{answer}&answered={answered}"
        ).encode()
        return await self.connection.request(self.vote_head(), body)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


async def prepare(port: int, code: str, count: int, concurrency: int = 64) -> list[Phone]:
    """``count`` phones that have loaded the join page (cookies and token kept)."""
    phones = [Phone(port, code) for _ in range(count)]
    queue = iter(phones)

    async def worker() -> None:
        for phone in queue:
            await phone.join()
            phone.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return phones


def vote_lua(phones: list[Phone], phase: str = "belief", threads: int = 2) -> str:
    """A wrk script voting through the form, round-robin over ``phones`` (thread k as phones
    k, k+threads, ...); ``done`` prints per thread the requests built and the 200s received."""
    first = phones[0]
    rows = ",\n".join(f'  {{"{p.cookie}", "{p.token}"}}' for p in phones)
    # what the page's htmx sends with a vote, as ``Phone.vote`` sends it, but the cookie and
    # the token, which change from phone to phone
    fetched = "\n".join(
        f'    ["{name}"] = "{value}",'
        for name, value in _lua_headers(first.vote_head().split("\r\n", 1)[1])
        if name.lower() not in ("host", "cookie", "x-csrftoken")
    )
    choices = ", ".join(f'"{c}"' for c in CHOICES)
    return f"""-- generated by bench/phone.py: {len(phones)} phones voting through the page's form
local phones = {{
{rows}
}}
local choices = {{{choices}}}
local stride = {threads}
local path = "/j/{first.code}/vote"
local threads = {{}}
local counter = 0

function setup(thread)
  thread:set("offset", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  sent, acked, position = 0, 0, offset
end

function request()
  local p = phones[position % #phones + 1]
  position = position + stride
  sent = sent + 1
  local body = "csrftoken=" .. p[2] .. "&phase={phase}&lang=en&choice="
    .. choices[sent % #choices + 1] .. "&answered="
  local headers = {{
{fetched}
    ["Cookie"] = p[1],
  }}
  if p[2] ~= "" then headers["x-csrftoken"] = p[2] end
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  if status == 200 then acked = acked + 1 end
end

function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    io.write(string.format("bench thread %d sent %d acked %d\\n",
      t:get("offset"), t:get("sent"), t:get("acked")))
  end
end
"""


def _lua_headers(block: str) -> list[tuple[str, str]]:
    """``block`` (header lines) as (name, value) pairs for a wrk script, quoted for Lua."""
    pairs = []
    for line in block.split("\r\n"):
        if line:
            name, _, value = line.partition(": ")
            pairs.append((name, value.replace("\\", "\\\\").replace('"', '\\"')))
    return pairs


JOIN_LUA = (
    "-- generated by bench/phone.py: a new phone (no cookies) loading the join page\n"
    + "".join(f'wrk.headers["{name}"] = "{value}"\n' for name, value in _lua_headers(NAVIGATION))
)
