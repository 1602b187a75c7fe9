"""The ASGI app: ``create_app(settings)`` builds it; ``app.main:app`` is the default one.

Building the app migrates the database to the newest schema and loads the talk files, so
``uvicorn app.main:app`` in an empty directory gives a working server.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from types import FrameType
from typing import Any
from urllib.parse import quote

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app import charts, formats, i18n, logs, voting
from app.audience import KeyFigures
from app.db import ROOT, make_engine, migrate, startup_lock
from app.deps import SharedPages
from app.errors import (
    RETRY_AFTER_SECONDS,
    DatabaseUnreachable,
    DomainError,
    connect_problem,
    database_outage,
    database_unavailable,
    engine_problem,
    retry_after,
)
from app.limits import Limits
from app.live import Broadcaster, Publisher, Publishers, is_in_process
from app.published import sync_published
from app.routes import (
    api,
    busy,
    moderate,
    pages,
    presenter,
    publish,
    published,
    remote,
    results,
    slides,
    stream,
    talks,
    view,
)
from app.routes.stream import LiveRenderer
from app.security import LoginRequired, RequestGuard
from app.sessions import SessionCache
from app.settings import Settings
from app.talkfile import discover_talks
from app.talks import sync_talks
from app.vote_writer import VoteWriter

log = logging.getLogger("beliefgap")


def create_app(settings: Settings | None = None, *, publisher: Publisher | None = None) -> FastAPI:
    settings = settings or Settings()
    # The database first: an app that cannot reach it stops here (DatabaseUnreachable, one
    # line) having written nothing, not even generated secrets.
    engine = prepare_database(settings)
    settings = settings.with_secrets()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        broadcaster: Broadcaster = app.state.broadcaster
        if is_in_process(settings.broadcast_url) and (workers := worker_count()) > 1:
            raise RuntimeError(
                f"{workers} workers with the in-process broadcast backend (memory://): live "
                "updates would reach only the clients of the worker that took the vote. Run one "
                "worker, or set BELIEFGAP_BROADCAST_URL to a shared backend."
            )
        await broadcaster.start()
        closer = asyncio.create_task(_close_countdowns(app))
        restore = _end_streams_on_stop_signals(broadcaster)
        stop_dumps = logs.dump_waiting_tasks_on_signal(log)
        _freeze_startup_objects()
        stop_watching = logs.watch_stalls()  # the benchmark's, off unless it asks
        stop_profiling = logs.profile_threads()  # the same
        try:
            yield
        finally:
            stop_profiling()
            stop_watching()
            restore()
            stop_dumps()
            broadcaster.end_streams()
            closer.cancel()
            await anyio.to_thread.run_sync(app.state.vote_writer.close)
            await broadcaster.stop()
            with suppress(asyncio.CancelledError):
                await closer
            engine.dispose()

    app = FastAPI(
        title="beliefgap",
        summary="Live audience polls that measure a belief gap",
        version="0.1.0",
        lifespan=lifespan,
        # Swagger UI loads from a CDN: only when asked for (the schema is always served).
        docs_url="/docs" if settings.api_docs else None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    logs.hide_client_addresses(settings.log_client_address)
    app.state.templates = make_templates()
    # What every phone of a session shares, kept in this process. Facts reach it twice: from
    # this process's commits at once (before anything else hears of them), and from every
    # process through the broadcaster.
    app.state.sessions = SessionCache(engine)
    # The broadcaster fans live updates out to event streams; it is the publisher the domain
    # reports its commits to, unless a test passes its own.
    # The gap and the movement the phones show, kept while their answers stay put: the live
    # results and the phones' own pages share them.
    app.state.key_figures = KeyFigures()
    app.state.broadcaster = Broadcaster(
        settings.broadcast_url,
        LiveRenderer(engine, app.state.templates, app.state.sessions, app.state.key_figures),
    )
    app.state.broadcaster.listen(app.state.sessions.publish)
    app.state.broadcaster.listen(view.RevokedViews(engine, app.state.broadcaster))
    app.state.publisher = Publishers(
        app.state.sessions, publisher if publisher is not None else app.state.broadcaster
    )
    app.state.vote_writer = VoteWriter(engine, lambda: app.state.publisher, app.state.sessions)
    app.state.shared_pages = SharedPages()
    app.state.vote_panels = SharedPages(size=pages.VOTE_PANELS_KEPT)
    app.state.limits = Limits(settings)
    # Talks are read, checked and stored in worker threads, a few at a time (app.routes.talks).
    app.state.talk_work = anyio.CapacityLimiter(talks.TALK_WORKERS)

    # One layer in front of every request: a write that a browser says another page sent is
    # refused before its body is read (CSRF: the JSON API included, whatever credentials it
    # carries); bodies are held to their size and the request deadline; every response gets the
    # headers that say what a page may load and who may frame it; event streams run here.
    # Inside the guard, what a room sends by the thousand is answered ahead of the app's own
    # layers (app.routes.busy).
    app.add_middleware(busy.BusyRoutes, routes=[*pages.phone_routes, *api.quick_routes])
    app.add_middleware(
        RequestGuard,
        public_url=settings.public_url,
        frame_ancestors=settings.frame_ancestors,
        docs=settings.api_docs,
        request_timeout=settings.request_timeout,
    )
    app.add_exception_handler(LoginRequired, _login_required)  # type: ignore[arg-type]
    app.add_exception_handler(DomainError, _domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(PoolTimeout, _database_error)
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(405, _method_not_allowed)  # type: ignore[arg-type]
    app.mount("/static", StaticFiles(directory=ROOT / "static"), name="static")

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        # async: answered on the event loop, no hop to the thread pool (the benchmark's
        # baseline is this route: a bare request, nothing more).
        return {"status": "ok"}

    # What a room sends by the thousand first: a request is matched against the routes in
    # order (an included router's twice). The phone's own routes (answered before the app's
    # layers too, app.routes.busy), then the API's vote and the event stream.
    app.router.routes[:0] = pages.phone_routes  # ahead of /openapi.json and /static too
    app.include_router(api.votes)
    app.include_router(stream.router)
    app.include_router(pages.router)
    app.include_router(api.router)
    app.include_router(remote.router)
    app.include_router(talks.router)
    app.include_router(talks.pages)
    app.include_router(results.router)
    app.include_router(publish.router)
    app.include_router(publish.pages)
    app.include_router(presenter.router)
    app.include_router(slides.router)
    app.include_router(published.router)
    app.include_router(view.router)
    app.include_router(moderate.router)
    app.include_router(moderate.queue_router)
    return app


def prepare_database(settings: Settings) -> Engine:
    """The engine, the schema migrated and the talk files loaded. A database that cannot be
    reached, or a URL or driver that is wrong, raises DatabaseUnreachable: one line naming the
    database (password hidden) and the reason."""
    url = settings.resolved_database_url
    try:
        engine = make_engine(url, synchronous=settings.sqlite_synchronous)
    except Exception as exc:
        if (problem := engine_problem(exc)) is None:
            raise
        raise DatabaseUnreachable(url, problem) from None
    try:
        with startup_lock(engine):
            migrate(engine)
            with Session(engine) as db:
                sync_talks(db, discover_talks(settings.talks_dir))
                if settings.published_polls:
                    sync_published(db)
    except Exception as exc:
        engine.dispose()
        if (problem := connect_problem(exc)) is None:
            raise
        raise DatabaseUnreachable(url, problem) from None
    return engine


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _end_streams_on_stop_signals(broadcaster: Broadcaster) -> Callable[[], None]:
    """When the server is told to stop (Ctrl+C, SIGTERM), end the event streams at once.

    uvicorn waits for every open response to finish before it runs the lifespan shutdown, and
    an event stream never finishes by itself: with phones connected, a stop would wait for ever.
    The server's own handler still runs; this only goes first. Returns a function that puts the
    previous handlers back. Outside the main thread (a test client) there is nothing to do."""
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {}

    def handle(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(broadcaster.end_streams)
        handler = previous.get(signum)
        if callable(handler):
            handler(signum, frame)
        elif handler == signal.SIG_DFL:  # nobody else listens: stop as the default would
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    for signum in STOP_SIGNALS:
        previous[signum] = signal.getsignal(signum)
        signal.signal(signum, handle)

    def restore() -> None:
        for signum, handler in previous.items():
            if signal.getsignal(signum) is handle:
                signal.signal(signum, handler)

    return restore


COUNTDOWN_CHECK_SECONDS = 1.0
_frozen = False

COLLECTOR_THRESHOLDS = (50_000, 20, 10)
"""The cyclic collector's thresholds for a server process (Python's default: 700, 10, 10).

A room of phones is tens of thousands of long-lived objects per thousand open streams, and a
full collection scans them all: with 2,000 streams it stops the server for about 0.4 s. With the
default thresholds the objects that votes leave in flight are promoted to the oldest generation
fast enough to set off a full collection every few seconds while a room answers, which put that
pause into the vote latency and, before, into the moment a question opened (bench/room.py: votes
p99 about 0.3-0.5 s, none of it in the database). Young collections a hundred times rarer
promote far less, so a room voting sees no full collection at all; each young collection scans
at most 50,000 objects (a few milliseconds)."""


def _freeze_startup_objects() -> None:
    """Objects created at start-up live as long as the process: keeping them out of the
    collector's scans, and collecting young objects less often (``COLLECTOR_THRESHOLDS``), avoids
    long pauses with thousands of open streams. Once per process."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()
        gc.set_threshold(*COLLECTOR_THRESHOLDS)


async def _close_countdowns(app: FastAPI) -> None:
    """Close every phase whose countdown ran out, about once a second."""
    while True:
        await asyncio.sleep(COUNTDOWN_CHECK_SECONDS)
        try:
            await anyio.to_thread.run_sync(_close_expired, app.state.engine, app.state.publisher)
        except Exception as exc:
            if database_unavailable(exc):
                database_outage.note(exc, "closing expired countdowns")
            else:
                log.exception("closing expired countdowns failed")


def _close_expired(engine: Engine, publisher: Publisher) -> None:
    with Session(engine) as db:
        voting.close_expired(db, publisher)


def worker_count(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """How many worker processes the server was asked for (uvicorn ``--workers``, gunicorn
    ``-w``, or ``WEB_CONCURRENCY``, which both read); 1 when none is named."""
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    found = environ.get("WEB_CONCURRENCY", "")
    for index, arg in enumerate(argv):
        if arg in ("--workers", "-w") and index + 1 < len(argv):
            found = argv[index + 1]
        elif arg.startswith("--workers="):
            found = arg.partition("=")[2]
    return int(found) if found.strip().isdigit() else 1


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=ROOT / "templates")
    env = templates.env
    env.autoescape = True  # every template, whatever its file name
    # Templates ship with the code: no file-date check on every render (a few % of a vote).
    env.auto_reload = False
    env.globals["t"] = i18n.t
    env.globals["charts"] = charts
    env.globals["formats"] = formats
    env.globals["LANGUAGES"] = i18n.LANGUAGES
    env.globals["LANGUAGE_NAMES"] = i18n.LANGUAGE_NAMES
    return templates


async def _login_required(request: Request, _exc: LoginRequired) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/presenter/login?next={quote(target, safe='')}", status_code=303)


async def _domain_error(_request: Request, exc: DomainError) -> JSONResponse:
    # Every 503 (the database is away, the server is stopping) and 429 (a limit) says when to
    # come back.
    wait = retry_after(exc)
    headers = {"Retry-After": str(wait)} if wait is not None else None
    return JSONResponse(
        {"detail": exc.detail, "code": exc.code}, status_code=exc.status, headers=headers
    )


_UNAVAILABLE_PAGE = (
    "<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width'>"
    "<title>Please try again</title><p>"
    "The server cannot reach its database just now. Please try again in a moment.<br>"
    "服务器暂时无法连接数据库，请稍后再试。</p>"
).encode()


async def _database_error(request: Request, exc: Exception) -> Response:
    """The database cannot be reached (refused, lost, locked, no pooled connection free): 503
    with Retry-After and a short body, JSON under /api/, a small page elsewhere. Logged as one
    warning per outage (then a count now and then), not a traceback per request. Any other
    database error is a bug and stays a 500."""
    if not database_unavailable(exc):
        raise exc
    database_outage.note(exc, f"{request.method} {request.url.path}")
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"}
    if request.url.path.startswith("/api/"):
        body = {"detail": "the database cannot be reached; try again in a moment"}
        return JSONResponse({**body, "code": "database_unavailable"}, 503, headers=headers)
    return HTMLResponse(_UNAVAILABLE_PAGE, 503, headers=headers)


ANSWERED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


async def _method_not_allowed(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """405 whose ``Allow`` names every method the address answers. Each route holds one method,
    so the route that refused knows only its own: every route is asked instead."""
    allowed = [
        method
        for method in ANSWERED_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    ]
    return JSONResponse(
        {"detail": exc.detail}, status_code=405, headers={"Allow": ", ".join(allowed)}
    )


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with where and what, without echoing the input (it may be huge, or NaN, which JSON
    cannot carry)."""
    detail = [
        {
            "loc": list(error.get("loc", ())),
            "msg": error.get("msg", ""),
            "type": error.get("type", ""),
        }
        for error in exc.errors()
    ]
    return JSONResponse({"detail": detail}, status_code=422)


_default_app: FastAPI | None = None


def use_app(built: FastAPI) -> None:
    """``app.main:app`` is this app from now on (``beliefgap serve`` hands the app it built to
    the workers it forks)."""
    global _default_app
    _default_app = built


def __getattr__(name: str) -> Any:
    """``app.main:app`` is built on first access, not on import, so importing this module (tests,
    the command line) never creates a database in the working directory."""
    global _default_app
    if name == "app":
        if _default_app is None:
            _default_app = create_app()
        return _default_app
    raise AttributeError(name)
