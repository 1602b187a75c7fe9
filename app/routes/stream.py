"""Server-sent events: ``GET /api/v1/sessions/{code}/events``, one endpoint for everyone.

Every connection first receives ``state`` (JSON: the phases' states) and ``results`` (the HTML
of ``partials/_revealed.html``). Presenter connections (bearer token or presenter cookie) also
get ``counts`` (``partials/presenter/_counts.html``: answers per phase, participants); audience
connections, and the phone page's own (``view=phone``) whoever opens it, get ``panel``
(``partials/audience/_panel.html`` as a phone that has not answered the open questions sees
it). Afterwards ``state`` and ``panel`` come again whenever phase states change, ``results``
and ``counts`` whenever what they show changes, at most a few times a second, and ``ping``
after a quiet spell (``BELIEFGAP_PING_SECONDS``). The Broadcaster (``app.live``) renders each
fragment once per tick and language and writes the same bytes to every stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import anyio
import anyio.to_thread
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from app import audience, i18n, sessions
from app.deps import BroadcasterDep, LimitsDep, SessionCacheDep, SettingsDep, participant_token
from app.live import Broadcaster, Frames, RenderRequest, encode_event
from app.models import PhaseStatePublic
from app.results import phase_results
from app.routes.docs import errors
from app.security import HANDOFF, is_presenter
from app.sessions import SessionCache

router = APIRouter(tags=["live"])
log = logging.getLogger(__name__)

SEND_TIMEOUT_SECONDS = 30
"""A client that takes no bytes for this long (a phone asleep with the socket open) is dropped."""
RECONNECT_MS = (1000, 5000)
"""How long a browser waits before reconnecting a dropped stream, drawn per connection, so a
room whose server restarts does not come back in the same millisecond."""
PANEL = "partials/audience/_panel.html"


class LiveRenderer:
    """Renders the live fragments of one session from the database (called in a worker
    thread by the Broadcaster)."""

    def __init__(
        self,
        engine: Engine,
        templates: Jinja2Templates,
        cache: SessionCache,
        key_figures: audience.KeyFigures | None = None,
    ) -> None:
        self.engine = engine
        self.templates = templates
        self.cache = cache
        self.key_figures = key_figures or audience.KeyFigures()
        """The phones' gap and movement, kept between ticks while their answers stay put."""

    def __call__(self, request: RenderRequest) -> Frames:
        """The fragments asked for. What a phase change sets (the session's row, its phases
        and their states) comes from the session cache, read once per change in this process:
        a snapshot or a live tick reads only the answers' counts, and nothing at all while no
        phase is revealed and no presenter or view asks for counts (the phones' results then
        show no answer)."""
        frames = Frames()
        content = self.cache.content(request.code)
        now = self.cache.phases(content)
        frames.timed = any(p.closes_at is not None for p in self.cache.state(content).open)
        if request.panel_langs:
            self._panels(request, frames)
        poll = now.poll
        if request.state:
            phases = sessions.phase_states(now.views)
            frames.state = encode_event("state", state_data(poll.code, poll.ended, phases))
        if not (request.results_langs or request.counts_langs or request.room_langs):
            return frames
        revealed = self.templates.get_template("partials/_revealed.html")
        if not (now.revealed or request.counts_langs or request.room_langs):
            room = audience.room_results([], ended=poll.ended)
            for lang in sorted(request.results_langs):
                frames.results[lang] = encode_event(
                    "results", revealed.render(room=room, lang=lang)
                )
            return frames
        with Session(self.engine) as db:
            results = phase_results(db, poll, now.views)
            if request.results_langs:
                room = audience.load_room_results(db, poll, results, self.key_figures, now.version)
                for lang in sorted(request.results_langs):
                    frames.results[lang] = encode_event(
                        "results", revealed.render(room=room, lang=lang)
                    )
            if request.counts_langs:
                counts = self.templates.get_template("partials/presenter/_counts.html")
                participants = sessions.participant_count(db, poll)
                for lang in sorted(request.counts_langs):
                    html = counts.render(
                        results=results,
                        participants=participants,
                        connections=request.connections,
                        lang=lang,
                    )
                    frames.counts[lang] = encode_event("counts", html)
            if request.room_langs:
                # What the projector shows the room of these counts: the answers of the
                # phases that have been open, the charts of the revealed ones.
                counts = self.templates.get_template("partials/presenter/_counts.html")
                seen = [r for r in results if r.state != "pending"]
                for lang in sorted(request.room_langs):
                    html = counts.render(results=seen, room=True, lang=lang)
                    frames.room[lang] = encode_event("counts", html)
        return frames

    def _panels(self, request: RenderRequest, frames: Frames) -> None:
        """The question panel as a phone without answers sees it, once per language."""
        content = self.cache.content(request.code)
        state = self.cache.state(content)
        template = self.templates.get_template(PANEL)
        for lang in sorted(request.panel_langs):
            view = audience.build_view(content, state, {}, lang, shared=True)
            html = template.render(lang=lang, view=view, error="")
            frames.panels[lang] = encode_event("panel", html)


def state_json(public: Any) -> str:
    """The ``state`` event's data for a ``SessionPublic`` (``state_data``)."""
    return state_data(public.code, public.ended, public.phases)


def state_data(code: str, ended: bool, phases: Sequence[PhaseStatePublic]) -> str:
    """The ``state`` event's data: ``{"code", "ended", "phases": [{"id", "kind", "state",
    "revealed", "closes_at"}]}``."""
    return json.dumps(
        {
            "code": code,
            "ended": ended,
            "phases": [
                {
                    "id": phase.id,
                    "kind": phase.kind.value,
                    "state": phase.state.value,
                    "revealed": phase.revealed,
                    "closes_at": _utc_iso(phase.closes_at),
                }
                for phase in phases
            ],
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _utc_iso(moment: datetime | None) -> str | None:
    """ISO 8601 with its offset (SQLite hands back naive datetimes, which are UTC)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


async def event_stream(
    broadcaster: Broadcaster,
    code: str,
    lang: str,
    presenter: bool,
    ping_seconds: float,
    *,
    room: bool = False,
    tag: str = "",
) -> AsyncIterator[bytes]:
    """One client's stream: subscribe, send the snapshot, then every update (a ping after
    ``ping_seconds`` without one) until the client leaves, falls too far behind, or the server
    shuts down. ``room`` and ``tag``: a read-only view's stream (``Broadcaster.subscribe``)."""
    # The subscriber's frames are read here, not through ``subscribe`` and ``frames``: each
    # is a generator (and the first an object) more that a room's thousands of streams hold
    # for their lives, and that every frame passes through.
    subscriber = broadcaster.add(code, lang, presenter, room=room, tag=tag)
    try:
        retry = f"retry: {random.randint(*RECONNECT_MS)}\n\n".encode()
        yield b"".join([retry, *await broadcaster.snapshot(subscriber)])  # one write
        while (frame := await subscriber.queue.get(ping_seconds)) is not None:
            yield frame
    finally:
        broadcaster.remove(subscriber)


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class EventStreamResponse(StreamingResponse):
    """A lean ``text/event-stream`` response: one task per stream, no per-stream ping task.
    Under ``RequestGuard`` it hands itself to the guard (``HANDOFF``) and streams from there,
    so an open stream holds no routing, exception-handling or dependency layers.

    Each write must complete within ``SEND_TIMEOUT_SECONDS``: a phone asleep with its socket
    open stops reading, and is then dropped instead of holding its buffers for ever. A client
    that leaves is seen at once (``_stream_until_left``)."""

    media_type = "text/event-stream"

    def __init__(
        self,
        content: AsyncIterator[bytes],
        *,
        on_close: Callable[[], None] | None = None,
        headers: Mapping[str, str] | None = None,
        status_code: int = 200,  # FastAPI reads this default to document the response
    ) -> None:
        super().__init__(content, status_code, headers=headers)
        self._on_close = on_close
        """Called once the stream has ended, however it ended (the limits count it closed)."""
        self._streaming: asyncio.Task[Any] | None = None
        """The task streaming, until it ends (``_stream_until_left``)."""
        self._left = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handoff = scope.get(HANDOFF)
        if handoff is not None:  # the guard runs it, once the route's chain is done
            handoff.append(self)
            return
        try:
            await self._stream_until_left(receive, send)
        finally:
            self.discard()

    async def _stream_until_left(self, receive: Receive, send: Send) -> None:
        """Stream while a task of its own waits for the client to leave, then cancel the
        stream. An ASGI 2.3 server such as uvicorn tells that only to ``receive``: its ``send``
        to a client that left returns as if it had written. One bare task and a callback
        rather than Starlette's task group (two tasks, their scopes and wrappers): a room
        holds thousands of idle streams."""
        task = asyncio.current_task()
        assert task is not None
        self._streaming, self._left = task, False
        listener = asyncio.ensure_future(_until_disconnect(receive))
        listener.add_done_callback(self._client_left)  # a bound method: no closure and cells
        try:
            await self.stream_response(send)
        except asyncio.CancelledError:
            if not self._left or task.uncancel() > 0:
                raise
        finally:
            self._streaming = None
            listener.cancel()

    def _client_left(self, _: asyncio.Future[None]) -> None:
        if self._streaming is not None:
            self._left = True
            self._streaming.cancel()

    def discard(self) -> None:
        """Count the stream closed (once), whether it ran or not."""
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()

    async def stream_response(self, send: Send) -> None:
        # Each write timed with asyncio's own timeout, not anyio's cancel scope (a third of the
        # CPU, paid by every stream for every frame a fan-out wakes it for), written out here
        # rather than in a closure that every open stream would hold.
        start = {"type": "http.response.start", "status": self.status_code}
        try:
            async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                await send({**start, "headers": self.raw_headers})
            async for chunk in self.body_iterator:
                async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                # Not kept while the stream waits for the next: the first chunk is this
                # stream's own snapshot (a few KB per phone in a room).
                del chunk
            async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except TimeoutError:
            log.info("dropping an event stream that stopped reading")


@router.get(
    "/api/v1/sessions/{code}/events",
    response_class=EventStreamResponse,
    responses={
        200: {"content": {"text/event-stream": {}}},
        **errors(404, 422, 429, 503, json_route=False),
    },
)
async def events(
    code: str,
    request: Request,
    cache: SessionCacheDep,
    broadcaster: BroadcasterDep,
    limits: LimitsDep,
    settings: SettingsDep,
    lang: Annotated[str | None, Query(max_length=16)] = None,
    view: Annotated[Literal["phone"] | None, Query()] = None,
) -> EventStreamResponse:
    """The session's live updates as server-sent events (``state``, ``results``, ``panel`` for
    phones, ``counts`` for the presenter, ``ping``). ``lang``: ``en`` or ``zh-Hans`` (default:
    the session's language). ``view=phone``: the audience page's stream, even in a browser
    that is also the presenter's. Too many streams open for one participant (its cookie), one
    address, one address without a cookie, or the whole server: 429 with Retry-After."""
    normalized = sessions.normalize_code(code)
    content = cache.cached_content(normalized)
    if content is None:  # NotFound -> 404
        content = await anyio.to_thread.run_sync(cache.content, normalized)
    chosen = i18n.supported(lang) or i18n.supported(content.language) or i18n.DEFAULT_LANGUAGE
    if not broadcaster.started:  # the server is stopping: come back to the next one
        raise HTTPException(503, "the server is restarting", headers={"Retry-After": "2"})
    # The presenter's screens (control page, projector) may carry a participant cookie too
    # (a phone tab in the same browser): only the audience's streams count per participant.
    # The presenter's login is in the database: looked up off the event loop (a phone's page
    # asks for view=phone and skips it).
    trusted = view != "phone" and await anyio.to_thread.run_sync(is_presenter, request)
    token = None if trusted else participant_token(request, content.code)
    participant = (content.code, token) if token else None
    closed = limits.open_stream(request.scope, participant, presenter=trusted)
    stream = event_stream(broadcaster, content.code, chosen, trusted, settings.ping_seconds)
    return EventStreamResponse(
        stream,
        on_close=closed,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
