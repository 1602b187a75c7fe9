"""Web glue in one place: typed dependencies for what the app holds (settings, templates, the
vote writer, the broadcaster, the session cache, the abuse limits), the language a request is
answered in, one render helper and the participant cookie. Routes take these instead of reading
``request.app.state`` themselves.

The dependencies are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in the
thread pool, a hop per request that a room of phones would pay thousands of times.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar
from urllib.parse import unquote_plus

from fastapi import Depends, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from starlette.requests import ClientDisconnect

from app import i18n
from app.limits import Limits
from app.live import Broadcaster, Publisher
from app.security import (
    PARTICIPANT_MAX_AGE,
    participant_cookie_name,
    read_participant,
    sign_participant,
)
from app.sessions import SessionCache
from app.settings import Settings
from app.vote_writer import VoteWriter

LANG_MAX_AGE = 365 * 24 * 3600
NO_STORE = {"Cache-Control": "no-store, private", "Vary": "Cookie, Accept-Language"}


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


async def _engine(request: Request) -> Engine:
    return request.app.state.engine


async def _templates(request: Request) -> Jinja2Templates:
    return request.app.state.templates


async def _broadcaster(request: Request) -> Broadcaster:
    return request.app.state.broadcaster


async def _publisher(request: Request) -> Publisher:
    return request.app.state.publisher


async def _sessions(request: Request) -> SessionCache:
    return request.app.state.sessions


async def _shared_pages(request: Request) -> SharedPages[bytes]:
    return request.app.state.shared_pages


async def _limits(request: Request) -> Limits:
    return request.app.state.limits


@dataclass(frozen=True)
class VoteIntake:
    """What a vote route takes: the vote writer and the abuse limits, as one dependency (each
    dependency is a resolution per request, and a room's votes are the busiest route)."""

    writer: VoteWriter
    limits: Limits


async def _vote_intake(request: Request) -> VoteIntake:
    state = request.app.state
    return VoteIntake(state.vote_writer, state.limits)


@dataclass(slots=True)
class PhonePath:
    """What the phone's busiest routes (the join page, its panel, the vote form) take from the
    app, in one read. Those routes are plain Starlette routes taking only the request: FastAPI's
    resolution of a route's dependencies and query parameters was about half of a join page's
    CPU time and a fifth of a form vote's, and a room sends these by the thousand."""

    sessions: SessionCache
    engine: Engine
    templates: Jinja2Templates
    pages: SharedPages[bytes]
    """The join page of phones without answers, encoded, by session, language and site."""
    panels: SharedPages[bytes]
    """The vote form's answers, encoded, kept by what they show (``app.routes.pages``)."""
    limits: Limits
    writer: VoteWriter


def phone_path(request: Request) -> PhonePath:
    state = request.app.state
    return PhonePath(
        state.sessions,
        state.engine,
        state.templates,
        state.shared_pages,
        state.vote_panels,
        state.limits,
        state.vote_writer,
    )


SettingsDep = Annotated[Settings, Depends(_settings)]
EngineDep = Annotated[Engine, Depends(_engine)]
TemplatesDep = Annotated[Jinja2Templates, Depends(_templates)]
BroadcasterDep = Annotated[Broadcaster, Depends(_broadcaster)]
PublisherDep = Annotated[Publisher, Depends(_publisher)]
SessionCacheDep = Annotated[SessionCache, Depends(_sessions)]
SharedPagesDep = Annotated["SharedPages[bytes]", Depends(_shared_pages)]
LimitsDep = Annotated[Limits, Depends(_limits)]
VoteIntakeDep = Annotated[VoteIntake, Depends(_vote_intake)]


# --------------------------------------------------------------------------- language


def choose_language(
    request: Request, explicit: str | None = None, default: str | None = None
) -> str:
    """The interface language: an explicit ``lang`` (query or form) first, then the ``bg_lang``
    cookie (the language switch), then ``default`` (a session's pages: the session's language),
    then the browser's Accept-Language, then English."""
    cookie = request.cookies.get(i18n.LANG_COOKIE)
    accept = request.headers.get("accept-language")
    if len(accept or "") + len(explicit or "") + len(cookie or "") > _LANGUAGE_KEPT_LENGTH:
        return _pick_language(explicit, cookie, default, accept)
    return _kept_language(explicit, cookie, default, accept)


_LANGUAGE_KEPT_LENGTH = 256
"""What a browser sends is a few dozen characters: longer requests are answered, not kept."""


def _pick_language(
    explicit: str | None, cookie: str | None, default: str | None, accept: str | None
) -> str:
    chosen = explicit if i18n.supported(explicit) else cookie
    if not i18n.supported(chosen) and i18n.supported(default):
        return i18n.supported(default) or i18n.DEFAULT_LANGUAGE
    return i18n.negotiate(accept, chosen)


_kept_language = functools.lru_cache(maxsize=1024)(_pick_language)
"""The answer for what a room's phones send, kept: the same few headers thousands of times."""


async def _language(
    request: Request, lang: Annotated[str | None, Query(max_length=16)] = None
) -> str:
    return choose_language(request, lang)


LanguageDep = Annotated[str, Depends(_language)]
"""The language for this request, from its ``lang`` query parameter, cookie or headers."""


def remember_language(request: Request, response: Response, explicit: str | None) -> None:
    """Keep an explicit choice (the language switch) in the ``bg_lang`` cookie."""
    lang = i18n.supported(explicit)
    if lang and request.cookies.get(i18n.LANG_COOKIE) != lang:
        response.set_cookie(i18n.LANG_COOKIE, lang, max_age=LANG_MAX_AGE, samesite="lax", path="/")


# --------------------------------------------------------------------------- forms


async def form_fields(request: Request) -> dict[str, str]:
    """A posted form's fields (the first value of each). A browser's form is
    ``application/x-www-form-urlencoded``, read here straight from the body (the body limit
    bounds it): a room votes at once, and the general form parser costs more than the vote's
    own write. Anything else goes through Starlette's parser, which takes no files."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    try:
        if content_type == "application/x-www-form-urlencoded":
            return urlencoded_fields((await request_body(request)).decode("utf-8", "replace"))
        form = await request.form(max_files=0)  # a malformed body is Starlette's clear 400
    except ClientDisconnect:  # the body was cut short: nobody is left to answer
        raise HTTPException(400, "the request body was cut short") from None
    return {name: value for name, value in form.items() if isinstance(value, str)}


async def request_body(request: Request) -> bytes:
    """The request's body, read from its messages as ``Request.body`` reads them, without the
    async generator and context manager it goes through (a few µs of a form vote). Only for
    a body nothing has read yet (the first reader of a busy route's body, ``app.routes.busy``)."""
    chunks: list[bytes] = []
    while True:
        message = await request.receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect


def urlencoded_fields(body: str) -> dict[str, str]:
    """The first value of each field of an urlencoded form, as ``parse_qsl(body,
    keep_blank_values=True)`` reads them: a vote's few short fields need no percent-decoding
    as a rule, and the general parser decoded each name and value anyway (a twentieth of a
    form vote)."""
    fields: dict[str, str] = {}
    for part in body.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "%" in name or "+" in name:
            name = unquote_plus(name)
        if name not in fields:
            fields[name] = unquote_plus(value) if "%" in value or "+" in value else value
    return fields


# --------------------------------------------------------------------------- rendering


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    status_code: int = 200,
    *,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """A template as the response (``lang`` defaults to the request's language); never stored
    by a browser or a proxy unless ``headers`` say otherwise."""
    templates: Jinja2Templates = request.app.state.templates
    context = {"request": request, **context}
    context.setdefault("lang", choose_language(request))
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers.update(NO_STORE if headers is None else headers)
    return response


NO_STORE_RAW = tuple((name.lower().encode(), value.encode()) for name, value in NO_STORE.items())
HTML_TYPE = (b"content-type", b"text/html; charset=utf-8")


class PageResponse(Response):
    """An HTML answer whose body is bytes already, with its headers as bytes: what a room's
    phones are sent by the thousand (a page drawn once for all of them is encoded once).
    Starlette's ``Response`` encodes its content and builds its headers anew for every
    answer. Never stored by a browser or a proxy (``NO_STORE``) unless ``headers`` say
    otherwise; more headers (a cookie) may be added to ``raw_headers`` afterwards."""

    media_type = "text/html"

    def __init__(
        self,
        body: bytes,
        status_code: int = 200,
        headers: tuple[tuple[bytes, bytes], ...] = NO_STORE_RAW,
    ) -> None:
        self.status_code = status_code
        self.body = body
        self.background = None
        self.raw_headers = [(b"content-length", b"%d" % len(body)), HTML_TYPE, *headers]


def is_https(request: Request) -> bool:
    """Whether the browser reached us over HTTPS (directly, or as a trusted proxy says)."""
    return request.scope.get("scheme") == "https"


# --------------------------------------------------------------------------- participants


def participant_token(request: Request, code: str) -> str | None:
    """The participant token in the session's signed cookie, or None (absent or tampered)."""
    secret = request.app.state.settings.secret_key
    return read_participant(secret, code, request.cookies.get(participant_cookie_name(code)))


def set_participant_cookie(request: Request, response: Response, code: str, token: str) -> None:
    """Give the browser its participant cookie for one session: signed, HttpOnly, Lax, Secure
    over HTTPS.

    The header is written here rather than through ``Response.set_cookie``, whose cookie
    library was a tenth of a new phone's vote: the name is ``bg_p_`` and a session code, the
    value URL-safe base64 and dots, so neither needs quoting."""
    value = sign_participant(request.app.state.settings.secret_key, code, token)
    secure = "; Secure" if is_https(request) else ""
    header = (
        f"{participant_cookie_name(code)}={value}; HttpOnly; Max-Age={PARTICIPANT_MAX_AGE}; "
        f"Path=/; SameSite=lax{secure}"
    )
    response.raw_headers.append((b"set-cookie", header.encode("latin-1")))


# --------------------------------------------------------------------------- shared pages


Page = TypeVar("Page", str, bytes)


@dataclass(frozen=True)
class _Drawn(Generic[Page]):
    stamp: Hashable
    html: Page


class SharedPages(Generic[Page]):
    """Pages drawn once for many browsers: one per key (say a session, a language and the site's
    address), kept while its stamp (what it was drawn from) stays the same, and served as
    drawn: a page holds nothing of one browser's own. At most ``size`` pages are kept, the
    least recently drawn go first (keys carry request headers, so a client must not be able to
    grow this without bound)."""

    def __init__(self, size: int = 256) -> None:
        self._pages: OrderedDict[Hashable, _Drawn[Page]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()
        self.draws = 0
        """How many pages were drawn (for tests)."""

    def get(self, key: Hashable, stamp: Hashable) -> Page | None:
        drawn = self._pages.get(key)
        return drawn.html if drawn is not None and drawn.stamp == stamp else None

    def keep(self, key: Hashable, stamp: Hashable, html: Page) -> None:
        """Keep a page drawn elsewhere (on the event loop: nothing waits here for a drawing)."""
        with self._lock:
            self._pages[key] = _Drawn(stamp, html)
            self._pages.move_to_end(key)
            while len(self._pages) > self._size:
                self._pages.popitem(last=False)

    def draw(self, key: Hashable, stamp: Hashable, make: Callable[[], Page]) -> Page:
        """The page for ``key`` and ``stamp``, drawn by ``make()`` unless it already was (call
        it in a worker thread: browsers that arrive together wait for one drawing)."""
        with self._lock:
            found = self.get(key, stamp)
            if found is None:
                self.draws += 1
                found = make()
                self._pages[key] = _Drawn(stamp, found)
                self._pages.move_to_end(key)
                while len(self._pages) > self._size:
                    self._pages.popitem(last=False)
            return found
