"""The ASGI app: ``create_app(settings)`` builds it; ``app.main:app`` is the default one.

Building the app migrates the database to the newest schema and loads the talk files, so
``uvicorn app.main:app`` in an empty directory gives a working server.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

from asgi_csrf import asgi_csrf
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from sqlmodel import Session

from app import i18n
from app.db import ROOT, make_engine, migrate
from app.errors import DomainError
from app.limits import BodyLimitMiddleware
from app.live import NullPublisher, Publisher
from app.routes import api, pages, presenter, results, stream
from app.security import LoginRequired
from app.settings import Settings
from app.talks import discover_talks, sync_talks
from app.vote_writer import VoteWriter

log = logging.getLogger("beliefgap")


def create_app(settings: Settings | None = None, *, publisher: Publisher | None = None) -> FastAPI:
    settings = (settings or Settings()).with_secrets()
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    with Session(engine) as db:
        sync_talks(db, discover_talks(settings.talks_dir))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(
        title="beliefgap",
        summary="Live audience polls that measure a belief gap",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.publisher = publisher or NullPublisher()
    app.state.templates = make_templates()
    app.state.vote_writer = VoteWriter(engine, lambda: app.state.publisher)

    # CSRF: HTML forms carry a signed token matching a cookie (double submit). The JSON API is
    # exempt: it accepts only application/json bodies, which a cross-site form cannot send, and
    # presenter calls carry a bearer token or a SameSite=Strict cookie.
    app.add_middleware(
        asgi_csrf,
        signing_secret=settings.secret_key,
        skip_if_scope=lambda scope: scope["path"].startswith("/api/"),
        send_csrf_failed=_csrf_failed,
    )
    app.add_middleware(BodyLimitMiddleware)
    app.add_exception_handler(LoginRequired, _login_required)  # type: ignore[arg-type]
    app.add_exception_handler(DomainError, _domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.mount("/static", StaticFiles(directory=ROOT / "static"), name="static")

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(api.router)
    app.include_router(stream.router)
    app.include_router(results.router)
    app.include_router(presenter.router)
    app.include_router(pages.router)
    return app


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=ROOT / "templates")
    env = templates.env
    env.autoescape = True  # every template, whatever its file name
    env.globals["t"] = i18n.t
    env.globals["csrf_token"] = csrf_token
    env.globals["LANGUAGES"] = i18n.LANGUAGES
    env.globals["LANGUAGE_NAMES"] = i18n.LANGUAGE_NAMES
    return templates


@pass_context
def csrf_token(context: Context) -> str:
    """The CSRF token for a form on this page: ``<input type="hidden" name="csrftoken"
    value="{{ csrf_token() }}">`` (htmx requests may send it as the ``x-csrftoken`` header)."""
    return str(context["request"].scope["csrftoken"]())


async def _csrf_failed(scope: Any, send: Any, _message_id: Any) -> None:
    body = (
        "<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width'>"
        "<title>Please reload</title><p style='font:18px system-ui;padding:1em'>"
        "This form has expired. Please go back and reload the page.<br>"
        "此表单已过期，请返回并刷新页面。</p>"
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [(b"content-type", b"text/html; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _login_required(request: Request, _exc: LoginRequired) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/presenter/login?next={quote(target, safe='')}", status_code=303)


async def _domain_error(_request: Request, exc: DomainError) -> JSONResponse:
    return JSONResponse({"detail": exc.detail, "code": exc.code}, status_code=exc.status)


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


def __getattr__(name: str) -> Any:
    """``app.main:app`` is built on first access, not on import, so importing this module (tests,
    the command line) never creates a database in the working directory."""
    global _default_app
    if name == "app":
        if _default_app is None:
            _default_app = create_app()
        return _default_app
    raise AttributeError(name)
