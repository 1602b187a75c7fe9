"""Who may do what: the admin token, the presenter cookie, the participant cookie; which pages
may send a write (``forgery_refusal``); the headers that tell browsers what a page may load
(``content_security_policy``); and ``RequestGuard``, the one ASGI layer that applies both to
every request, with the limits on request bodies.

Every cookie value is signed with the secret key (itsdangerous), so a phone cannot pose as another
participant or as the presenter by editing a cookie. The participant cookie holds only a random
id, one cookie per session (its name carries the join code), so two sessions cannot be linked.
The presenter cookie names a login kept in the database, which logging out deletes.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import os
import secrets
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Protocol
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeSerializer
from itsdangerous.encoding import base64_encode
from sqlalchemy import Engine
from sqlmodel import Session, col, delete
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.limits import (
    BodyTooLarge,
    Limits,
    RequestTimedOut,
    body_limit,
    declared_too_large,
    limited_receive,
    refuse,
)
from app.models import PresenterLogin, utcnow

PARTICIPANT_COOKIE_PREFIX = "bg_p_"
PRESENTER_COOKIE = "bg_presenter"
PARTICIPANT_MAX_AGE = 365 * 24 * 3600


def token_matches(given: str, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def check_admin_token(request: Request, given: str) -> bool:
    """Whether ``given`` is the admin token, counted against its address's wrong tokens
    (``Limits.token_allowed``: ``TooManyRequests`` while they are used up, before the token
    is read). No token at all is no guess: it is refused without counting."""
    if not given:
        return False
    limits: Limits = request.app.state.limits
    limits.token_allowed(request.scope)
    if token_matches(given, request.app.state.settings.admin_token):
        return True
    limits.token_failed(request.scope)
    return False


# --------------------------------------------------------------------------- participants


def participant_cookie_name(code: str) -> str:
    return PARTICIPANT_COOKIE_PREFIX + code


@functools.lru_cache(maxsize=1024)
def _participant_serializer(secret_key: str, code: str) -> URLSafeSerializer:
    """One per session, kept: every vote of a new phone signs, every vote reads."""
    return URLSafeSerializer(secret_key, salt=f"participant:{code}")


_TOKEN_BYTES = 16
_TOKENS_PER_DRAW = 256
_drawn = bytearray()
_drawn_lock = threading.Lock()
# A forked child must not hand out the tokens its parent still holds.
os.register_at_fork(after_in_child=_drawn.clear)


def new_participant_token() -> str:
    """A random participant token (16 bytes, URL-safe base64), cut from one draw of the system's
    random source per 256 tokens: a room's first votes each hand out a new one, and a draw per
    token was a visible share of the vote's CPU time."""
    with _drawn_lock:
        if not _drawn:
            _drawn.extend(secrets.token_bytes(_TOKEN_BYTES * _TOKENS_PER_DRAW))
        raw = bytes(_drawn[-_TOKEN_BYTES:])
        del _drawn[-_TOKEN_BYTES:]
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


_VERIFIED_SIZE = 16384
_VERIFIED_COOKIE_LENGTH = 128
"""A participant cookie is about 70 characters; longer ones are checked, never kept."""
_verified: dict[tuple[str, str, str], str | None] = {}
_UNSEEN = ""  # no token is empty
_verified_lock = threading.Lock()


def _remember(key: tuple[str, str, str], token: str | None) -> None:
    with _verified_lock:
        if len(_verified) >= _VERIFIED_SIZE:
            del _verified[next(iter(_verified))]  # the oldest first
        _verified[key] = token


@functools.lru_cache(maxsize=1024)
def _participant_mac(secret_key: str, code: str) -> hmac.HMAC:
    """The HMAC of one session's participant cookies, with the key itsdangerous derives for
    them (its own ``derive_key``): copied for each new cookie, kept like the serializer."""
    key = _participant_serializer(secret_key, code).make_signer().derive_key()
    return hmac.new(key, digestmod=hashlib.sha1)


def sign_participant(secret_key: str, code: str, token: str) -> str:
    """A session's participant cookie value for ``token``: its JSON in URL-safe base64, a dot,
    and the HMAC-SHA1 of that under the serializer's key, as ``URLSafeSerializer.dumps``
    writes it (and ``read_participant`` reads it with itsdangerous). Built here, because
    itsdangerous builds a signer, derives its key and tries zlib on the payload for every
    value: a third of a new phone's join page. (``dumps`` would compress a payload that
    shrinks by more than a byte; no random token does, and ``loads`` reads both forms.)"""
    payload = base64_encode(json.dumps(token, ensure_ascii=False))
    mac = _participant_mac(secret_key, code).copy()
    mac.update(payload)
    value = (payload + b"." + base64_encode(mac.digest())).decode("ascii")
    _remember((secret_key, code, value), token)  # the phone's first vote sends it back
    return value


def read_participant(secret_key: str, code: str, cookie: str | None) -> str | None:
    """The participant token in a session's cookie, or None if absent or tampered with.

    What a cookie value says never changes (it carries no time, and the key, the session and
    the value name it whole), so the answer for the last ``_VERIFIED_SIZE`` values (signed
    here or read) is kept: a phone's votes check its signature once, not each time, and a
    vote was spending a twentieth of its time in the HMAC."""
    if not cookie:
        return None
    key = (secret_key, code, cookie)
    kept = _verified.get(key, _UNSEEN)
    if kept is not _UNSEEN:
        return kept
    try:
        token = _participant_serializer(secret_key, code).loads(cookie)
    except BadSignature:
        token = None
    found = token if isinstance(token, str) and 0 < len(token) <= 64 else None
    if len(cookie) <= _VERIFIED_COOKIE_LENGTH:
        _remember(key, found)
    return found


# --------------------------------------------------------------------------- presenter


def _login_signer(secret_key: str, admin_token: str) -> TimestampSigner:
    """Signs presenter logins for one admin token: its hash is in the salt, so that a new
    token ends every login made with an older one (the cookie no longer verifies)."""
    token = hashlib.sha256(admin_token.encode()).hexdigest()[:32]
    return TimestampSigner(secret_key, salt=f"presenter-login:{token}")


def _aware(moment: datetime) -> datetime:
    """SQLite gives back naive datetimes; every stored one is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def start_presenter_login(engine: Engine, secret_key: str, *, days: int, admin_token: str) -> str:
    """A new presenter login valid for ``days`` and while ``admin_token`` stays the admin
    token: its row, and the signed cookie value that names it. Logins that ran out are
    deleted on the way."""
    now = utcnow()
    login_id = secrets.token_urlsafe(32)
    with Session(engine) as db:
        db.exec(delete(PresenterLogin).where(col(PresenterLogin.expires_at) < now))
        db.add(PresenterLogin(id=login_id, created_at=now, expires_at=now + timedelta(days=days)))
        db.commit()
    return _login_signer(secret_key, admin_token).sign(login_id).decode()


def _login_id(
    secret_key: str, admin_token: str, cookie: str | None, max_age: int | None
) -> str | None:
    if not cookie or len(cookie) > 256:
        return None
    try:
        return _login_signer(secret_key, admin_token).unsign(cookie, max_age=max_age).decode()
    except (BadSignature, SignatureExpired, UnicodeDecodeError):
        return None


def presenter_login_valid(
    engine: Engine, secret_key: str, cookie: str | None, *, days: int, admin_token: str
) -> bool:
    """Whether the cookie names a login that has not ended: signed by us for this admin
    token, younger than ``days``, and not logged out (its row is still there and has not run
    out)."""
    login_id = _login_id(secret_key, admin_token, cookie, days * 24 * 3600)
    if login_id is None:
        return False
    with Session(engine) as db:
        login = db.get(PresenterLogin, login_id)
    return login is not None and _aware(login.expires_at) > utcnow()


def end_presenter_login(
    engine: Engine, secret_key: str, cookie: str | None, *, admin_token: str
) -> None:
    """Log out: the login the cookie names is deleted, so no copy of the cookie works again."""
    login_id = _login_id(secret_key, admin_token, cookie, None)
    if login_id is None:
        return
    with Session(engine) as db:
        db.exec(delete(PresenterLogin).where(col(PresenterLogin.id) == login_id))
        db.commit()


def is_presenter(request: Request) -> bool:
    """True for a valid ``Authorization: Bearer <admin token>`` or presenter cookie. A request
    that carries a bearer token is judged by the token alone (wrong ones are limited per
    address: ``check_admin_token``). Reads the database for a signed cookie: call it from a
    worker thread."""
    settings = request.app.state.settings
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer":
        return check_admin_token(request, credentials.strip())
    return presenter_login_valid(
        request.app.state.engine,
        settings.secret_key,
        request.cookies.get(PRESENTER_COOKIE),
        days=settings.presenter_login_days,
        admin_token=settings.admin_token,
    )


def require_presenter(request: Request) -> None:
    """Dependency for the admin API: 401 without credentials, 403 with wrong ones."""
    if is_presenter(request):
        return
    header = request.headers.get("authorization")
    if header:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="the admin token is not valid")
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail="presenter access needs the admin token (Authorization: Bearer ...)",
        headers={"WWW-Authenticate": "Bearer"},
    )


PresenterDep = Annotated[None, Depends(require_presenter)]


class LoginRequired(Exception):
    """Raised by presenter pages for a visitor without the presenter cookie: redirect to login."""


def require_presenter_page(request: Request) -> None:
    """Dependency for presenter HTML pages: a redirect to the login page for anyone else."""
    if not is_presenter(request):
        raise LoginRequired


PresenterPageDep = Annotated[None, Depends(require_presenter_page)]


# --------------------------------------------------------------------------- presenter login


def safe_next(target: str | None, default: str = "/presenter") -> str:
    """A local path to go to after login; anything else (another site, ``//host``, a
    backslash trick, a scheme) gives ``default``."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(ord(ch) < 32 for ch in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def set_presenter_cookie(response: Response, value: str, *, days: int, secure: bool) -> None:
    """Log the browser in: the signed login id in an HttpOnly, SameSite=Strict cookie (the
    admin token itself is never stored in the browser); Secure over HTTPS."""
    response.set_cookie(
        PRESENTER_COOKIE,
        value,
        max_age=days * 24 * 3600,
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/",
    )


def clear_presenter_cookie(response: Response, *, secure: bool) -> None:
    response.delete_cookie(
        PRESENTER_COOKIE, path="/", httponly=True, samesite="strict", secure=secure
    )


# --------------------------------------------------------------------------- forged requests

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL, lower case, the default port left out;
    None for anything else (``null``, another scheme, no host, a bad port)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.username is not None or parts.password is not None:
        return None
    host = parts.hostname.lower()
    if ":" in host:  # IPv6
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def forgery_refusal(
    method: str,
    headers: Mapping[str, str],
    own_origin: str | None,
    trusted: frozenset[str] = frozenset(),
) -> str | None:
    """Why a request must be refused as one another page may have sent with this browser's
    cookies, or None to let it through.

    A browser says where a request comes from: ``Sec-Fetch-Site`` (every current browser), or
    at least ``Origin`` on a write (older ones). Only a page of this very origin may write;
    ``none`` is the user's own doing (the address bar, a bookmark). A same-site page (another
    port, a sibling subdomain) is refused like a foreign one: it is a different origin, and
    SameSite cookies do not stop it. A request with neither header is no browser's (curl, a
    script), nor is a bearer-token request without cookies (a browser never adds that header
    to another site's request by itself): both pass, and their credentials decide."""
    if method in SAFE_METHODS:
        return None
    authorization = headers.get("authorization", "")
    if authorization.split(" ", 1)[0].lower() == "bearer" and "cookie" not in headers:
        return None
    site = headers.get("sec-fetch-site")
    if site is not None:
        if site.strip().lower() in ("same-origin", "none"):
            return None
        return f"the request came from another site or page (Sec-Fetch-Site: {site[:40]})"
    origin = headers.get("origin")
    if origin is None:
        return None
    found = origin_of(origin)
    if found is not None and (found == own_origin or found in trusted):
        return None
    return f"the request came from another origin ({origin[:100]})"


_FORGERY_PAGE = (
    "<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width'>"
    "<title>Refused</title><h1>Refused / 已拒绝</h1>"
    "<p>This request was sent from another site or page, so nothing was changed. Go back to "
    "the page and try again from there.</p>"
    "<p>此请求来自其他网站或页面，因此未做任何更改。请返回原页面后再试。</p>"
)


# --------------------------------------------------------------------------- response headers


def page_policy(frame_ancestors: str) -> str:
    """The Content-Security-Policy of the app's pages: scripts, styles and everything else from
    this origin only (no inline script or style, no eval), forms post only here."""
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; "
        f"frame-ancestors {frame_ancestors}"
    )


REPORT_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'"
)
"""The self-contained report (``.../report.html``): its own inline styles and nothing else."""

DOCS_POLICY = (
    "default-src 'self'; script-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
    "style-src 'self' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'self'"
)
"""``/docs`` when ``api_docs`` is on: Swagger UI from jsDelivr, started by an inline script."""


_SELF_POLICY = page_policy("'self'")


@functools.lru_cache(maxsize=16)
def _framed_policy(frame_ancestors: str) -> str:
    return page_policy(frame_ancestors)


def content_security_policy(path: str, *, frame_ancestors: str, docs: bool) -> str:
    """The Content-Security-Policy of the response to ``path``, the one place that decides it:
    the report keeps to its own inline styles; the projector and the login page may be framed
    by ``frame_ancestors`` (slides that show the projector); ``/docs`` loads Swagger UI when
    ``docs`` is on; every other page may be framed only by the app itself. A page that another
    site may frame gets its branch here."""
    if path.endswith("/report.html"):
        return REPORT_POLICY
    if "/projector" in path or path == "/presenter/login":
        return _framed_policy(frame_ancestors)
    if docs and path == "/docs":
        return DOCS_POLICY
    return _SELF_POLICY


_COMMON_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)
"""Every response: no content sniffing, and no other site learns a page's address (which on a
phone holds the session's join code)."""

HANDOFF = "beliefgap.handoff"
"""The scope key under which ``RequestGuard`` offers a long-lived response (an event stream) a
place to wait: the response puts itself in the list there and returns, the route and every
layer between (routing, exception handlers, dependencies' exit stacks) finish, and the guard
runs it. A stream then holds only the guard and the layers outside it, not the whole chain."""


class Deferred(Protocol):
    """A response handed to the guard (``HANDOFF``): run by it, or discarded if the route's
    chain failed after handing it over."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...

    def discard(self) -> None: ...


class RequestGuard:
    """The one ASGI layer in front of the app, for every HTTP request:

    - a write (POST, PUT, PATCH, DELETE, ...) that a browser says another page sent
      (``forgery_refusal``) is refused with 403 before its body is read: JSON under ``/api/``,
      a short page elsewhere. The request's own origin is its scheme (https behind a proxy that
      says so, see uvicorn's ``FORWARDED_ALLOW_IPS``) and Host; ``public_url`` names one more;
    - a write's body is held to its size (``app.limits.body_limit``: 413, also for a declared
      Content-Length over it) and to the request deadline (``request_timeout`` seconds for the
      whole request: 408; 0 turns it off; ``app.limits.limited_receive``);
    - every response gets what it does not set itself: the Content-Security-Policy
      (``content_security_policy``), ``X-Content-Type-Options: nosniff`` and
      ``Referrer-Policy: same-origin``;
    - a response handed over under ``HANDOFF`` (an event stream) runs here, once the route's
      chain is done.

    One layer instead of three: each request passes one coroutine and one wrapped ``send``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        public_url: str = "",
        frame_ancestors: str = "'self'",
        docs: bool = False,
        request_timeout: float = 0.0,
    ) -> None:
        self.app = app
        trusted = origin_of(public_url) if public_url else None
        self.trusted = frozenset({trusted} if trusted else ())
        self.frame_ancestors = frame_ancestors
        self.docs = docs
        self.request_timeout = request_timeout
        self._headers: dict[str, tuple[tuple[bytes, bytes], ...]] = {}

    def headers_for(self, path: str) -> tuple[tuple[bytes, bytes], ...]:
        """The headers every response to ``path`` carries (unless it sets them itself)."""
        policy = content_security_policy(path, frame_ancestors=self.frame_ancestors, docs=self.docs)
        found = self._headers.get(policy)
        if found is None:
            found = ((b"content-security-policy", policy.encode()), *_COMMON_HEADERS)
            self._headers[policy] = found
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.headers_for(scope["path"])
        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(item for item in extra if item[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        method = scope["method"]
        if method in SAFE_METHODS:
            await self._read(scope, receive, guarded_send)
            return
        reason = self._forgery(scope, method)
        if reason is not None:
            await _forgery_response(scope["path"], reason)(scope, receive, guarded_send)
            return
        path = scope["path"]
        limit = body_limit(path)
        if declared_too_large(scope, limit):
            await refuse(guarded_send, 413, f"request body over {limit} bytes")
            return
        received = scope["headers"]
        try:
            await self.app(
                scope, limited_receive(scope, receive, limit, self.request_timeout), guarded_send
            )
        except (BodyTooLarge, RequestTimedOut) as exc:
            if not started:
                await refuse(guarded_send, exc.status_code, exc.detail)
        else:
            _drop_headers(scope, received)

    async def _read(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A GET, HEAD or OPTIONS: the app, then the response it handed over, if any."""
        headers = scope["headers"]  # the server's own list (a Request copies it into the scope)
        handoff: list[Deferred] = []
        scope[HANDOFF] = handoff
        try:
            await self.app(scope, receive, send)
        except BaseException:
            for deferred in handoff:
                deferred.discard()
            raise
        finally:
            del scope[HANDOFF]
        if handoff:
            for key in _FINISHED_STACKS:  # closed already: nothing for the stream to hold
                scope.pop(key, None)
            _drop_headers(scope, headers)
            await handoff[0](scope, receive, send)
        else:
            _drop_headers(scope, headers)

    def _forgery(self, scope: Scope, method: str) -> str | None:
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:  # one pass for the few it reads, the first of each
            if name in _FORGERY_HEADERS and (key := name.decode("latin-1")) not in headers:
                headers[key] = value.decode("latin-1")
        host = headers.get("host", "")
        own = _own_origin(scope.get("scheme", "http"), host) if host else None
        return forgery_refusal(method, headers, own, self.trusted)


_FORGERY_HEADERS = frozenset({b"host", b"authorization", b"cookie", b"sec-fetch-site", b"origin"})
"""What ``forgery_refusal`` reads of a request (ASGI gives header names in lower case)."""


@functools.lru_cache(maxsize=256)
def _own_origin(scheme: str, host: str) -> str | None:
    """The origin a request reached, by its scheme and Host (kept: a room sends one Host)."""
    return origin_of(f"{scheme}://{host}")


def _drop_headers(scope: Scope, received: Any) -> None:
    """Let go of a request's headers once nothing reads them any more: a phone's browser sends
    about 17 (some 2 KB), which uvicorn keeps with an idle connection until its next request
    and a stream for its life, for every phone of a room. ``received``: the list the server
    put in the scope, which it holds itself; emptied in place, with the scope's copy (Starlette
    replaces the scope's list with a copy when a request's headers are read)."""
    for found in (received, scope.get("headers")):
        if isinstance(found, list):
            found.clear()


_FINISHED_STACKS = (
    "fastapi_astack",
    "fastapi_middleware_astack",
    "fastapi_inner_astack",
    "fastapi_function_astack",
)


def _forgery_response(path: str, reason: str) -> Response:
    response: Response
    if path.startswith("/api/"):
        response = JSONResponse({"detail": reason, "code": "cross_origin"}, 403)
    else:
        response = HTMLResponse(_FORGERY_PAGE, 403)
    response.headers["Cache-Control"] = "no-store"
    return response
