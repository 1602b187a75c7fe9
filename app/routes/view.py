"""The read-only live view: ``/view/{token}``, what the projector shows the room, for slides,
streams and recordings, at an address the presenter hands out (``app.session_tokens``).

It reads and sets no cookie, carries no control, and follows the presenter over the session's
own event stream (``/view/{token}/events``: ``state`` and the room's ``counts``, see
``app.live.Broadcaster.subscribe``). Its ``frame-ancestors`` is the operator's list
(``BELIEFGAP_FRAME_ANCESTORS``), or the presenter's narrower choice, or any site where the
presenter said so; every other page keeps its own. A revoked address ends its streams (the
frame says so) and answers 404 like an address that never was.

Display modes, as query parameters: ``phase`` (a phase to show whatever the room is on),
``mode`` (``overlay``: transparent, chart and count only, for video; ``qr``: the QR code only),
``theme`` (``light`` or ``dark``), ``palette`` (``cb``: a palette told apart without red and
green, and the bars marked).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import anyio.to_thread
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from sqlmodel import Session

from app import i18n, session_tokens, sessions
from app.db import SessionDep
from app.deps import (
    BroadcasterDep,
    EngineDep,
    LimitsDep,
    SettingsDep,
    TemplatesDep,
    render,
)
from app.live import Broadcaster, SessionChanged, encode_event
from app.models import TokenPurpose
from app.routes.presenter import stage_context
from app.routes.stream import EventStreamResponse, event_stream
from app.security import page_policy
from app.session_tokens import Grant
from app.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter(prefix="/view", tags=["view"], include_in_schema=False)

Mode = Literal["overlay", "qr"]
Theme = Literal["light", "dark"]
Palette = Literal["cb"]

GONE_PAGE = (
    "<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width'>"
    "<title>Not found</title><p>This view does not exist, or has ended.<br>"
    "此视图不存在或已结束。</p>"
).encode()
"""The answer to every token that opens nothing: unknown, malformed or revoked alike."""

HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def gone() -> Response:
    """No live view token: 404, the same bytes whatever the reason."""
    return Response(GONE_PAGE, 404, media_type="text/html; charset=utf-8", headers=HEADERS)


def _grant(engine: Engine, token: str) -> Grant | None:
    with Session(engine) as db:
        return session_tokens.resolve(db, token, TokenPurpose.view)


def policy(operator: str, grant: Grant) -> str:
    """The view's Content-Security-Policy: the pages' own, framed as the session allows."""
    return page_policy(session_tokens.frame_ancestors(operator, grant.frame_ancestors))


class DisplayMode:
    """The display mode a view's address asks for (its query), as a dependency of the page and
    of its slide, which is fetched again with the same query."""

    def __init__(
        self,
        phase: Annotated[str, Query(max_length=64)] = "",
        mode: Mode | None = None,
        theme: Theme = "light",
        palette: Palette | None = None,
    ) -> None:
        self.phase = phase
        asked = {"phase": phase, "mode": mode, "theme": theme, "palette": palette}
        self.context: dict[str, Any] = {
            "mode": mode or "",
            "theme": theme,
            "palette": palette or "",
            "query": urlencode({key: value for key, value in asked.items() if value}),
        }


def _render_view(
    template: str,
    token: str,
    request: Request,
    db: Session,
    settings: Settings,
    templates: Jinja2Templates,
    modes: DisplayMode,
) -> Response:
    """The view's page or its slide: the projector's, with no control, in the mode asked."""
    grant = session_tokens.resolve(db, token, TokenPurpose.view)
    if grant is None:
        return gone()
    poll = sessions.get_session(db, grant.code)
    context = stage_context(request, db, settings, templates, poll, pinned=modes.phase)
    base = f"/view/{token}"
    context.update(modes.context)
    context["readonly"] = True
    context["stage_url"] = f"{base}/stage?{modes.context['query']}"
    context["events_url"] = f"{base}/events?lang={context['lang']}"
    headers = {**HEADERS, "Content-Security-Policy": policy(settings.frame_ancestors, grant)}
    return render(request, template, context, headers=headers)


@router.get("/{token}", response_class=HTMLResponse)
def view_page(
    token: str,
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    modes: Annotated[DisplayMode, Depends()],
) -> Response:
    """The view: the projector's slide, live, without a control."""
    return _render_view("pages/view.html", token, request, db, settings, templates, modes)


@router.get("/{token}/stage", response_class=HTMLResponse)
def view_stage(
    token: str,
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    modes: Annotated[DisplayMode, Depends()],
) -> Response:
    """The view's slide, fetched again on each ``state`` event."""
    template = "partials/presenter/_stage.html"
    return _render_view(template, token, request, db, settings, templates, modes)


async def view_stream(
    broadcaster: Broadcaster, engine: Engine, grant: Grant, lang: str, ping_seconds: float
) -> AsyncIterator[bytes]:
    """A view's stream: the session's, as a read-only view subscribes to it, tagged with its
    token's hash so that ``RevokedViews`` can end it. Once subscribed, the token is read
    again: one revoked between the request and the subscription would otherwise stay open
    until the next change of state."""
    frames = event_stream(
        broadcaster, grant.code, lang, False, ping_seconds, room=True, tag=grant.token_hash
    )
    try:
        first = await anext(frames)
        digests = {grant.token_hash}
        if not await anyio.to_thread.run_sync(session_tokens.live_hashes, engine, digests):
            yield farewell(lang)
            return
        yield first
        async for frame in frames:
            yield frame
    finally:
        await frames.aclose()  # type: ignore[attr-defined]


def farewell(lang: str) -> bytes:
    """The last event of a revoked view's stream: the frame says the view has ended."""
    return encode_event("ended", i18n.translate(lang, "view_ended"))


class RevokedViews:
    """Ends the open streams of revoked view addresses (a Broadcaster listener).

    Revoking publishes a change of the session's state, which reaches every process; there the
    hashes of that session's open views are read once, together, and the streams of those that
    no longer work get ``farewell`` and end. The views themselves do nothing more than a
    phone's stream does for an update."""

    def __init__(self, engine: Engine, broadcaster: Broadcaster) -> None:
        self.engine = engine
        self.broadcaster = broadcaster
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self, fact: SessionChanged) -> None:
        if not (fact.phases or fact.every_session):
            return  # answers only: no token was revoked
        found = self.broadcaster.tags(None if fact.every_session else fact.code)
        if not found:
            return
        task = asyncio.get_running_loop().create_task(self._end_revoked(found))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _end_revoked(self, found: dict[str, set[str]]) -> None:
        digests = set().union(*found.values())
        try:
            live = await anyio.to_thread.run_sync(session_tokens.live_hashes, self.engine, digests)
        except Exception:
            log.exception("reading the open views' tokens failed")
            return
        for code, tags in found.items():
            for tag in tags - live:
                self.broadcaster.end_tagged(code, tag, farewell)


@router.get("/{token}/events", response_class=EventStreamResponse)
async def view_events(
    token: str,
    engine: EngineDep,
    broadcaster: BroadcasterDep,
    limits: LimitsDep,
    settings: SettingsDep,
    request: Request,
    lang: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    """The view's live updates: ``state`` and the room's ``counts``, then ``ended`` once its
    address is revoked."""
    grant = await anyio.to_thread.run_sync(_grant, engine, token)
    if grant is None:
        return gone()
    if not broadcaster.started:  # the server is stopping: come back to the next one
        raise HTTPException(503, "the server is restarting", headers={"Retry-After": "2"})
    chosen = i18n.supported(lang) or i18n.DEFAULT_LANGUAGE
    closed = limits.open_stream(request.scope, None)
    stream = view_stream(broadcaster, engine, grant, chosen, settings.ping_seconds)
    return EventStreamResponse(
        stream, on_close=closed, headers={**HEADERS, "X-Accel-Buffering": "no"}
    )
