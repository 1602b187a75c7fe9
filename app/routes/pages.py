"""The audience's pages: the landing page with a code field, the voting page the QR code points
to (``/j/{code}``), its question panel (fetched again on live updates) and the vote form.

Thin: each handler reads the request, calls ``app.audience`` / ``app.voting`` and renders. Votes
go through the group-commit writer (``app.vote_writer``), like the JSON API. A refused vote never
shows an error page: with htmx the panel comes back with the message (and the refusal's status);
without scripts the form post is answered with a redirect to the page, which shows the message.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

import anyio.to_thread
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from app import audience, i18n, sessions, voting
from app.audience import AudienceView
from app.db import SessionDep
from app.errors import DomainError, Invalid, NotFound
from app.models import PollSession
from app.security import (
    PARTICIPANT_MAX_AGE,
    new_participant_token,
    participant_cookie_name,
    read_participant,
    sign_participant,
)

router = APIRouter(include_in_schema=False)

PAGE = "pages/audience/session.html"
PANEL = "partials/audience/_panel.html"
LANDING = "pages/audience/landing.html"
LANG_MAX_AGE = 365 * 24 * 3600
MAX_CODE_LENGTH = 32
NO_STORE = {"Cache-Control": "no-store, private", "Vary": "Cookie, Accept-Language"}

FormField = Annotated[str | None, Form()]


# --------------------------------------------------------------------------- helpers


def _language(request: Request, explicit: str | None) -> str:
    """An explicit ``lang`` (query or form) first, then the ``bg_lang`` cookie, then the
    browser's Accept-Language."""
    chosen = explicit if i18n.supported(explicit) else request.cookies.get(i18n.LANG_COOKIE)
    return i18n.negotiate(request.headers.get("accept-language"), chosen)


def _remember_language(request: Request, response: Response, explicit: str | None) -> None:
    lang = i18n.supported(explicit)
    if lang and request.cookies.get(i18n.LANG_COOKIE) != lang:
        response.set_cookie(i18n.LANG_COOKIE, lang, max_age=LANG_MAX_AGE, samesite="lax", path="/")


def _participant(request: Request, code: str) -> str | None:
    secret = request.app.state.settings.secret_key
    return read_participant(secret, code, request.cookies.get(participant_cookie_name(code)))


def _find(db: Session, code: str) -> PollSession | None:
    if not code or len(code) > MAX_CODE_LENGTH:
        return None
    try:
        return sessions.get_session(db, code)
    except NotFound:
        return None


def _refusal_text(lang: str, code: str, view: AudienceView | None, phase: str | None) -> str:
    question = view.question(phase) if view is not None else None
    low, high = 0.0, 100.0
    if question is not None and question.is_estimate:
        low, high = question.min_value or 0.0, question.max_value or 0.0
    return i18n.translate(lang, audience.refusal_message_id(code), min=f"{low:g}", max=f"{high:g}")


def _render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    templates = request.app.state.templates
    response: HTMLResponse = templates.TemplateResponse(
        request, name, {"request": request, **context}, status_code=status_code
    )
    response.headers.update(NO_STORE)
    return response


def _landing(
    request: Request, lang: str, *, code: str = "", error: str = "", status_code: int = 200
) -> HTMLResponse:
    return _render(
        request,
        LANDING,
        {"lang": lang, "code": code, "error": error, "switch_query": {}},
        status_code,
    )


def _unknown_code(request: Request, lang: str, code: str, *, panel: bool) -> HTMLResponse:
    shown = sessions.normalize_code(code)[:MAX_CODE_LENGTH]
    message = i18n.translate(lang, "aud_code_unknown", code=shown)
    if panel:
        return _render(request, PANEL, {"lang": lang, "view": None, "error": message}, 404)
    return _landing(request, lang, code=shown, error=message, status_code=404)


def _panel_context(lang: str, view: AudienceView, error: str = "") -> dict[str, Any]:
    return {"lang": lang, "view": view, "error": error}


# --------------------------------------------------------------------------- pages


@router.get("/", response_class=HTMLResponse)
def landing(
    request: Request, db: SessionDep, code: str | None = None, lang: str | None = None
) -> Response:
    """The landing page; with ``?code=`` (its form) it sends the phone to that session."""
    language = _language(request, lang)
    response: Response
    if code is None:
        response = _landing(request, language)
    else:
        normalized = sessions.normalize_code(code)
        poll = _find(db, normalized)
        if not normalized:
            message = i18n.translate(language, "aud_code_empty")
            response = _landing(request, language, error=message, status_code=422)
        elif poll is None:
            response = _unknown_code(request, language, normalized, panel=False)
        else:
            response = RedirectResponse(f"/j/{poll.code}", status_code=303)
    _remember_language(request, response, lang)
    return response


@router.get("/j/{code}", response_class=HTMLResponse)
def audience_page(
    code: str,
    request: Request,
    db: SessionDep,
    phase: str | None = None,
    lang: str | None = None,
    error: str | None = None,
) -> Response:
    """The page the QR code points to: joins the phone on first visit and shows one question."""
    language = _language(request, lang)
    canonical = sessions.normalize_code(code)
    poll = _find(db, canonical)
    response: Response
    if poll is None:
        response = _unknown_code(request, language, code, panel=False)
    elif poll.code != code:
        query = f"?{request.url.query}" if request.url.query else ""
        response = RedirectResponse(f"/j/{poll.code}{query}", status_code=307)
    else:
        token = _participant(request, poll.code)
        new_token = token is None
        if token is None:
            token = new_participant_token()
        if new_token or audience.participant_id(db, poll, token) is None:
            voting.join(db, poll.code, token)
        view = audience.audience_view(db, poll, token, language, wanted=phase, with_results=True)
        response = _render(
            request,
            PAGE,
            {
                **_panel_context(
                    language,
                    view,
                    _refusal_text(language, error, view, phase)
                    if error and audience.is_refusal_code(error)
                    else "",
                ),
                "switch_query": {"phase": view.current.key} if view.current else {},
            },
        )
        if new_token:
            settings = request.app.state.settings
            response.set_cookie(
                participant_cookie_name(poll.code),
                sign_participant(settings.secret_key, poll.code, token),
                max_age=PARTICIPANT_MAX_AGE,
                httponly=True,
                samesite="lax",
                path="/",
                secure=request.url.scheme == "https",
            )
    _remember_language(request, response, lang)
    return response


@router.get("/j/{code}/panel", response_class=HTMLResponse)
def audience_panel(
    code: str,
    request: Request,
    db: SessionDep,
    phase: str | None = None,
    lang: str | None = None,
) -> Response:
    """The question panel alone, for this phone: what live updates fetch when phases change."""
    language = _language(request, lang)
    poll = _find(db, sessions.normalize_code(code))
    if poll is None:
        return _unknown_code(request, language, code, panel=True)
    token = _participant(request, poll.code)
    view = audience.audience_view(db, poll, token, language, wanted=phase)
    return _render(request, PANEL, _panel_context(language, view))


@router.post("/j/{code}/vote", response_class=HTMLResponse)
async def audience_vote(
    code: str,
    request: Request,
    db: SessionDep,
    phase: FormField = None,
    choice: FormField = None,
    value: FormField = None,
    slider: FormField = None,
    initial: FormField = None,
    lang: FormField = None,
) -> Response:
    """A vote from the page's form: the panel back for htmx, a redirect to the page without it.

    The vote goes through the same group-commit writer as the JSON API (a room votes in a
    burst); the database reads for the panel run in a worker thread, off the event loop."""
    htmx = request.headers.get("hx-request") == "true"
    language = _language(request, lang)
    code = sessions.normalize_code(code)
    writer = request.app.state.vote_writer
    refusal: DomainError | None = None
    try:
        await writer.session_spec(code)  # NotFound for an unknown code
        token = _participant(request, code)
        if token is None:
            # No participant cookie: the phone never loaded the page (or dropped its cookies).
            # The form path never invents a participant; the page sets the cookie on reload.
            raise Invalid("the participant cookie is missing", code="no_participant")
        vote = audience.vote_from_form(
            {"phase": phase, "choice": choice, "value": value, "slider": slider, "initial": initial}
        )
        await writer.submit(code, token, vote)
    except NotFound:
        return _unknown_code(request, language, code, panel=htmx)
    except DomainError as exc:
        refusal = exc
    wanted = phase if phase and len(phase) <= audience.MAX_FIELD_LENGTH else None
    if not htmx:
        query: dict[str, str] = {}
        if wanted:
            query["phase"] = wanted
        if refusal is not None:
            query["error"] = refusal.code
        target = f"/j/{code}" + (f"?{urlencode(query)}" if query else "")
        return RedirectResponse(target, status_code=303)
    return await anyio.to_thread.run_sync(
        _panel_after_vote, request, db, code, language, wanted, refusal
    )


def _panel_after_vote(
    request: Request,
    db: Session,
    code: str,
    language: str,
    wanted: str | None,
    refusal: DomainError | None,
) -> Response:
    poll = _find(db, code)
    if poll is None:  # pragma: no cover (the writer found it a moment ago; sessions stay)
        return _unknown_code(request, language, code, panel=True)
    token = _participant(request, poll.code)
    view = audience.audience_view(db, poll, token, language, wanted=wanted)
    message = _refusal_text(language, refusal.code, view, wanted) if refusal else ""
    status_code = refusal.status if refusal is not None else 200
    return _render(request, PANEL, _panel_context(language, view, message), status_code)
