"""The audience's pages: the landing page with a code field, the voting page the QR code points
to (``/j/{code}``), a phone's own question panel and the vote form.

Built for a room that acts at the same instant. What is the same for every phone comes from
the session cache (``app.sessions.SessionCache``): the voting page of a phone without answers
is drawn once per session, language and state and served as it is to all of them (forgery
is stopped by the request's own headers, ``app.security.RequestGuard``, not by tokens in
pages that expire on a phone left open); a question that opens travels to the phones in the
live stream, not as thousands of requests; a vote is answered with the panel drawn from
cached data, with no query beyond the group-commit write (``app.vote_writer``). Only a phone
that has answered something has its own answers read.

A refused vote never shows an error page: with htmx the panel comes back with the message (and
the refusal's status); without scripts the form post is answered with a redirect to the page,
which shows the message. Opening the page creates nothing: a phone becomes a participant with
its first answer (link previews and prefetchers never count as "joined").
"""

from __future__ import annotations

import functools
import random
import time
from typing import Any
from urllib.parse import urlencode

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import escape
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.routing import Route
from starlette.types import Scope

from app import audience, i18n, sessions
from app.audience import Answer, AudienceView
from app.deps import (
    NO_STORE,
    NO_STORE_RAW,
    PageResponse,
    SessionCacheDep,
    choose_language,
    form_fields,
    participant_token,
    phone_path,
    remember_language,
    render,
    set_participant_cookie,
)
from app.errors import DomainError, Invalid, NotFound, TooManyRequests, retry_after
from app.formats.base import MAX_FIELD_LENGTH
from app.limits import Limits
from app.routes.busy import Endpoint
from app.security import new_participant_token
from app.sessions import LiveState, SessionCache, SessionContent

router = APIRouter(include_in_schema=False)

PAGE = "pages/audience/session.html"
WAIT = "pages/audience/wait.html"
PANEL = "partials/audience/_panel.html"
LANDING = "pages/audience/landing.html"
MAX_CODE_LENGTH = 32
WAIT_JITTER_SECONDS = 4
"""A join page held back by a limit loads again up to this much later than Retry-After."""
VOTE_PANELS_KEPT = 1024
"""Vote-form answers kept (about 2 KB each): per session, language and phone's answers."""
SHARED_PAGE_SECONDS = 1.0
"""How long a shared page may show revealed results or a countdown that have moved on (the
live stream brings the current ones as soon as the page connects)."""

# --------------------------------------------------------------------------- helpers


async def _content(cache: SessionCache, code: str) -> SessionContent | None:
    """The session's texts by normalized code, or None for no such session."""
    if not code or len(code) > MAX_CODE_LENGTH:
        return None
    found = cache.cached_content(code)
    if found is not None:
        return found
    try:
        return await anyio.to_thread.run_sync(cache.content, code)
    except NotFound:
        return None


async def _state(cache: SessionCache, content: SessionContent) -> LiveState:
    found = cache.cached_state(content)
    if found is not None:
        return found
    return await anyio.to_thread.run_sync(cache.state, content)


def _refusal_text(lang: str, code: str, view: AudienceView | None, phase: str | None) -> str:
    question = view.question(phase) if view is not None else None
    low, high = 0.0, 100.0
    if question is not None and question.is_estimate:
        low, high = question.min_value or 0.0, question.max_value or 0.0
    limit = question.settings.get("max_chars", 40) if question is not None else 40
    return i18n.translate(
        lang, audience.refusal_message_id(code), min=f"{low:g}", max=f"{high:g}", limit=limit
    )


def _landing(
    request: Request, lang: str, *, code: str = "", error: str = "", status_code: int = 200
) -> HTMLResponse:
    return render(
        request,
        LANDING,
        {"lang": lang, "code": code, "error": error, "switch_query": {}},
        status_code,
    )


def _unknown_code(request: Request, lang: str, code: str, *, panel: bool) -> HTMLResponse:
    shown = sessions.normalize_code(code)[:MAX_CODE_LENGTH]
    message = i18n.translate(lang, "aud_code_unknown", code=shown)
    if panel:
        return render(request, PANEL, {"lang": lang, "view": None, "error": message}, 404)
    return _landing(request, lang, code=shown, error=message, status_code=404)


def _new_participant_refused(limits: Limits, request: Request) -> TooManyRequests | None:
    try:
        limits.may_join(request.scope)
    except TooManyRequests as exc:
        return exc
    return None


def _wait_page(request: Request, lang: str, code: str, refusal: TooManyRequests) -> HTMLResponse:
    """The join page held back (429): it loads again by itself a little after Retry-After,
    each phone at its own moment, so a waiting room does not come back all at once."""
    seconds = refusal.retry_after + random.randint(0, WAIT_JITTER_SECONDS)
    context = {"lang": lang, "code": code, "seconds": seconds, "switch_query": {}}
    headers = {**NO_STORE, "Retry-After": str(refusal.retry_after)}
    return render(request, WAIT, context, 429, headers=headers)


def _phone_language(request: Request, lang: str | None, content: SessionContent | None) -> str:
    """A session page's language: the phone's own choice first, else the session's, kept to the
    talk's languages (an English talk is English on every phone, buttons and all)."""
    language = choose_language(request, lang, content.language if content else None)
    return _talk_language(content.languages, language) if content else language


_talk_language = functools.lru_cache(maxsize=256)(audience.phone_language)
"""The interface language a talk offers a phone asking for a language, kept (by the talk's
languages and the language asked for: a handful of pairs)."""


def _page_context(lang: str, view: AudienceView, error: str = "") -> dict[str, Any]:
    return {
        "lang": lang,
        "view": view,
        "error": error,
        "switch_query": {"phase": view.current.key} if view.current else {},
    }


def _site(scope: Scope) -> tuple[Any, ...]:
    """What a request's ``base_url`` is made of (the scheme, the Host header or the server's
    address, the root path), as a key for pages that show it: Starlette builds and parses the
    URL for each request, about a sixth of a join page."""
    host = next((value for name, value in scope["headers"] if name == b"host"), None)
    server = scope.get("server")
    return (scope.get("scheme"), host, server and tuple(server), scope.get("root_path", ""))


def _page_stamp(version: int, state: LiveState) -> tuple[Any, ...]:
    """When a shared voting page must be drawn again: after each phase change (``version``,
    taken before ``state`` was read, so a change in between draws again rather than keeping a
    page older than its stamp); with results revealed or a countdown running, also every
    ``SHARED_PAGE_SECONDS``."""
    moving = bool(state.revealed) or any(p.closes_at is not None for p in state.open)
    second = int(time.monotonic() / SHARED_PAGE_SECONDS) if moving else None
    return (version, second)


def _draw_page(
    request: Request,
    engine: Engine,
    templates: Jinja2Templates,
    content: SessionContent,
    state: LiveState,
    answers: dict[str, Answer],
    lang: str,
    *,
    wanted: str | None = None,
    error_code: str | None = None,
) -> str:
    """The whole voting page as HTML (reads the revealed results; runs in a worker thread)."""
    results = None
    if state.revealed:
        shared = request.app.state
        version = shared.sessions.versions(content.code)[0]  # before anything is read
        with Session(engine) as db:
            poll = sessions.get_session(db, content.code)
            results = audience.load_room_results(db, poll, kept=shared.key_figures, version=version)
    view = audience.build_view(content, state, answers, lang, wanted=wanted, results=results)
    error = _refusal_text(lang, error_code, view, wanted) if error_code else ""
    return templates.get_template(PAGE).render(
        {"request": request, **_page_context(lang, view, error)}
    )


def _own_answers(engine: Engine, content: SessionContent, token: str | None) -> dict[str, Answer]:
    if token is None:
        return {}
    with Session(engine) as db:
        return audience.own_answers(db, content, token)


# --------------------------------------------------------------------------- pages


@router.get("/", response_class=HTMLResponse)
async def landing(
    request: Request, cache: SessionCacheDep, code: str | None = None, lang: str | None = None
) -> Response:
    """The landing page; with ``?code=`` (its form) it sends the phone to that session."""
    language = choose_language(request, lang)
    response: Response
    if code is None:
        response = _landing(request, language)
    else:
        normalized = sessions.normalize_code(code)
        content = await _content(cache, normalized)
        if not normalized:
            message = i18n.translate(language, "aud_code_empty")
            response = _landing(request, language, error=message, status_code=422)
        elif content is None:
            response = _unknown_code(request, language, normalized, panel=False)
        else:
            response = RedirectResponse(f"/j/{content.code}", status_code=303)
    remember_language(request, response, lang)
    return response


async def audience_page(request: Request) -> Response:
    """The page the QR code points to: one question, the phone's own answer to it, the revealed
    results. A phone without answers gets the page drawn for all of them. A phone without a
    participant cookie gets one, unless too many new participants came from its address in a
    short time: then a page that loads again by itself (429). Query: ``phase`` (the question
    wanted), ``lang``, ``error`` (a refusal's code, from the form without scripts)."""
    code: str = request.path_params["code"]
    params = request.query_params
    phase, lang, error = params.get("phase"), params.get("lang"), params.get("error")
    path = phone_path(request)
    cache, engine, templates, pages = path.sessions, path.engine, path.templates, path.pages
    content = await _content(cache, sessions.normalize_code(code))
    # The session's language is the phones' default; the phone's own choice wins.
    language = _phone_language(request, lang, content)
    response: Response
    token = participant_token(request, content.code) if content is not None else None
    if content is None:
        response = _unknown_code(request, language, code, panel=False)
    elif content.code != code:
        query = f"?{request.url.query}" if request.url.query else ""
        response = RedirectResponse(f"/j/{content.code}{query}", status_code=307)
    elif content.unlinked:  # published counts: nothing to answer, no participant made
        message = i18n.translate(language, "aud_code_published", code=content.code)
        response = _landing(request, language, code=content.code, error=message, status_code=409)
    elif token is None and (held := _new_participant_refused(path.limits, request)) is not None:
        response = _wait_page(request, language, content.code, held)
    else:
        version = cache.versions(content.code)[0]
        state = await _state(cache, content)
        answers = (
            await anyio.to_thread.run_sync(_own_answers, engine, content, token) if token else {}
        )
        error_code = error if error and audience.is_refusal_code(error) else None
        if answers or phase or error_code:
            html = await anyio.to_thread.run_sync(
                lambda: _draw_page(
                    request,
                    engine,
                    templates,
                    content,
                    state,
                    answers,
                    language,
                    wanted=phase,
                    error_code=error_code,
                ).encode()
            )
        else:
            key = (content.code, language, _site(request.scope))
            stamp = _page_stamp(version, state)
            shared = pages.get(key, stamp)
            if shared is None:
                shared = await anyio.to_thread.run_sync(
                    lambda: pages.draw(
                        key,
                        stamp,
                        lambda: _draw_page(
                            request, engine, templates, content, state, {}, language
                        ).encode(),
                    )
                )
            html = shared
        response = PageResponse(html)
        if token is None:
            set_participant_cookie(request, response, content.code, new_participant_token())
    remember_language(request, response, lang)
    return response


@router.get("/privacy", response_class=HTMLResponse)
async def privacy(request: Request, code: str | None = None, lang: str | None = None) -> Response:
    """The privacy note: what is stored about a phone, for how long, how to erase it.
    ``code``: the session to link back to (only a well-formed code is)."""
    language = choose_language(request, lang)
    back = sessions.normalize_code(code or "")
    if len(back) > MAX_CODE_LENGTH or not (back.isascii() and back.isalnum()):
        back = ""
    context = {
        "lang": language,
        "retention_days": request.app.state.settings.retention_days,
        "back": back,
        "switch_query": {"code": back} if back else {},
    }
    response = render(request, "pages/audience/privacy.html", context)
    remember_language(request, response, lang)
    return response


async def audience_panel(request: Request) -> Response:
    """The question panel alone, for this phone: what its page fetches when a pushed panel
    would hide its own answer, and to catch up after a network blip. Query: ``phase``,
    ``lang``."""
    code: str = request.path_params["code"]
    phase, lang = request.query_params.get("phase"), request.query_params.get("lang")
    path = phone_path(request)
    cache, engine = path.sessions, path.engine
    content = await _content(cache, sessions.normalize_code(code))
    language = _phone_language(request, lang, content)
    if content is None:
        return _unknown_code(request, language, code, panel=True)
    token = participant_token(request, content.code)
    state = await _state(cache, content)
    answers = await anyio.to_thread.run_sync(_own_answers, engine, content, token)
    view = audience.build_view(content, state, answers, language, wanted=phase)
    return render(request, PANEL, {"lang": language, "view": view, "error": ""})


async def audience_vote(request: Request) -> Response:
    """A vote from the page's form: with htmx the panel back, with the chosen answer marked as
    recorded (drawn from the session cache, no query but the write); without it a redirect to
    the page. ``answered`` (the page's script sends it) names the phases the phone answered
    before, so the list of other open questions shows which are done. Too many votes from
    this phone in a short time: 429 with Retry-After (without htmx, the page with the message;
    with it, the panel, which the page's script does not swap in: it sends the vote again
    after Retry-After)."""
    code: str = request.path_params["code"]
    path = phone_path(request)
    cache, templates, engine = path.sessions, path.templates, path.engine
    htmx = request.headers.get("hx-request") == "true"
    form = await form_fields(request)
    phase, lang = form.get("phase"), form.get("lang")
    content = await _content(cache, sessions.normalize_code(code))
    language = _phone_language(request, lang, content)
    if content is None:
        return _unknown_code(request, language, code, panel=htmx)
    refusal: DomainError | None = None
    wanted = phase if phase and len(phase) <= MAX_FIELD_LENGTH else None
    answers = audience.answered_from_form(form.get("answered"), content)
    token = participant_token(request, content.code)
    try:
        if token is None:
            # No participant cookie: the phone never loaded the page (or dropped its cookies).
            # The form path never invents a participant; the page sets the cookie on reload.
            raise Invalid("the participant cookie is missing", code="no_participant")
        path.limits.vote(content.code, token)
        path.limits.first_vote(request.scope, content.code, token)
        vote = audience.vote_from_form(form, content)
        stored = await path.writer.submit(content.code, token, vote)
        given = stored.ranking if stored.text is None else {stored.slot: stored.text}
        answers[stored.phase] = Answer(stored.choice, stored.value, given)
    except DomainError as exc:
        refusal = exc
    wait = retry_after(refusal) if refusal is not None else None
    if not htmx and isinstance(refusal, TooManyRequests):
        html = await _refusal_page(
            request, cache, engine, templates, content, token, language, wanted, refusal.code
        )
        return HTMLResponse(html, refusal.status, headers={**NO_STORE, "Retry-After": str(wait)})
    if not htmx:
        query: dict[str, str] = {}
        if wanted:
            query["phase"] = wanted
        if refusal is not None:
            query["error"] = refusal.code
        target = f"/j/{content.code}" + (f"?{urlencode(query)}" if query else "")
        return RedirectResponse(target, status_code=303)
    state = await _state(cache, content)
    kept = _panel_key(content, state, language, wanted, answers) if refusal is None else None
    panel = path.panels.get(kept[0], state) if kept is not None else None
    if panel is None:
        drawn = kept[1] if kept is not None else answers
        view = audience.build_view(content, state, drawn, language, wanted=wanted)
        message = _refusal_text(language, refusal.code, view, wanted) if refusal else ""
        panel = (
            templates.get_template(PANEL)
            .render(request=request, lang=language, view=view, error=message)
            .encode()
        )
        if kept is not None:
            path.panels.keep(kept[0], state, panel)
    if kept is not None and kept[2]:
        panel = _own_texts(panel.decode(), kept[2]).encode()
    if refusal is None:
        return PageResponse(panel)
    headers = [*NO_STORE_RAW]
    if wait is not None:
        headers.append((b"retry-after", str(wait).encode()))
    if isinstance(refusal, TooManyRequests):  # the page's script says why it sends it again
        headers.append((b"x-refusal", refusal.code.encode()))
    return PageResponse(panel, refusal.status, tuple(headers))


phone_routes: list[Route] = [
    Route("/j/{code}", Endpoint(audience_page), methods=["GET"], include_in_schema=False),
    Route("/j/{code}/vote", Endpoint(audience_vote), methods=["POST"], include_in_schema=False),
    Route("/j/{code}/panel", Endpoint(audience_panel), methods=["GET"], include_in_schema=False),
]
"""The routes a room sends by the thousand (the join page, the vote form, the panel): plain
Starlette routes, answered ahead of the app's own layers (``app.routes.busy``), and also the
app's first routes (``app.main``: a path under a root path reaches them there). Inside an
included router they were matched twice after the routes ahead of them, FastAPI's way, and
that was about a sixth of a join page's CPU time."""


def _panel_key(
    content: SessionContent,
    state: LiveState,
    lang: str,
    wanted: str | None,
    answers: dict[str, Answer],
) -> tuple[tuple[Any, ...], dict[str, Answer], dict[str, str]] | None:
    """What the panel answering a vote shows, when it is the same for every phone that sends
    the same (kept with the live state it was drawn from, the ``stamp``): the session, the
    language, the question asked for and the phone's answers (the one just stored, and the
    phases its page says it answered). A room votes on one question with a few options, so a
    phone's vote is mostly answered with a panel drawn for another; drawing it was about a
    fifth of a vote. A phone's own text goes in afterwards: the panel is drawn with a mark
    where each text stands (``_OWN_TEXT``), then the mark is replaced by the text escaped as
    the template escapes it. Returns the key, the answers to draw the panel from and each
    mark's text; None (draw it as it is) while a countdown runs (the panel shows the seconds
    left) and for a ranking."""
    if any(phase.closes_at is not None for phase in state.open):
        return None
    drawn: dict[str, Answer] = {}
    texts: dict[str, str] = {}
    shown: list[tuple[Any, ...]] = []
    for key, answer in answers.items():
        payload = answer.payload
        if payload is not None and not isinstance(payload, dict):
            return None  # a ranking: its order is drawn into the panel
        if payload:
            marked = {slot: _OWN_TEXT.format(phase=key, slot=slot) for slot in payload}
            texts.update({marked[slot]: str(text) for slot, text in payload.items()})
            answer = Answer(answer.choice, answer.value, marked)
        drawn[key] = answer
        slots = tuple(sorted(payload, key=str)) if payload else None
        shown.append((key, answer.choice, answer.value, slots))
    return (content.code, content.id, lang, wanted, frozenset(shown)), drawn, texts


_OWN_TEXT = "\ue000{phase}\ue001{slot}\ue002"
"""Where a phone's own text stands in a kept panel (private-use characters: a talk's texts
and the template have none, and the template's escaping leaves them as they are)."""


def _own_texts(panel: str, texts: dict[str, str]) -> str:
    for mark, text in texts.items():
        panel = panel.replace(mark, str(escape(text)))
    return panel


async def _refusal_page(
    request: Request,
    cache: SessionCache,
    engine: Engine,
    templates: Jinja2Templates,
    content: SessionContent,
    token: str | None,
    lang: str,
    wanted: str | None,
    error_code: str,
) -> str:
    """The whole voting page for this phone with a refusal's message (a form post without
    htmx that is answered with the page itself rather than a redirect)."""
    state = await _state(cache, content)
    answers = await anyio.to_thread.run_sync(_own_answers, engine, content, token)
    return await anyio.to_thread.run_sync(
        lambda: _draw_page(
            request,
            engine,
            templates,
            content,
            state,
            answers,
            lang,
            wanted=wanted,
            error_code=error_code,
        )
    )
