"""The ASGI app: ``create_app(settings)`` builds it; ``app.main:app`` is the default one.

Building the app migrates the database to the newest schema and loads the talk files, so
``uvicorn app.main:app`` in an empty directory gives a working server.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlmodel import Session

from app import i18n
from app.db import ROOT, make_engine, migrate
from app.errors import DomainError
from app.limits import BodyLimitMiddleware
from app.live import NullPublisher, Publisher
from app.routes import api
from app.settings import Settings
from app.talks import discover_talks, sync_talks

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

    app.add_middleware(BodyLimitMiddleware)
    app.add_exception_handler(DomainError, _domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.mount("/static", StaticFiles(directory=ROOT / "static"), name="static")

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(api.router)
    return app


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=ROOT / "templates")
    env = templates.env
    env.autoescape = True  # every template, whatever its file name
    env.globals["t"] = i18n.t
    env.globals["LANGUAGES"] = i18n.LANGUAGES
    env.globals["LANGUAGE_NAMES"] = i18n.LANGUAGE_NAMES
    return templates


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
