"""The presenter's pages: login, the dashboard, a session's control page and the projector.

Pages refuse anyone without the presenter cookie with a redirect to the login page. Phase
actions are plain forms (they work without JavaScript: a 303 back to the page); with htmx they
answer with the fragment to swap in. Every action ends in ``app.voting.change_phase``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Form, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeTimedSerializer
from jinja2 import TemplateNotFound
from markupsafe import Markup

from app import i18n, moderation, presenter, session_tokens, sessions, voting
from app.db import SessionDep
from app.deps import (
    EngineDep,
    PublisherDep,
    SettingsDep,
    TemplatesDep,
    is_https,
    render,
)
from app.errors import DomainError, Invalid, TooManyRequests
from app.models import PollSession, SessionToken, TokenPurpose
from app.routes.api import join_url
from app.security import (
    PRESENTER_COOKIE,
    PresenterPageDep,
    check_admin_token,
    clear_presenter_cookie,
    end_presenter_login,
    is_presenter,
    safe_next,
    set_presenter_cookie,
    start_presenter_login,
)
from app.settings import Settings

router = APIRouter(prefix="/presenter", tags=["presenter"], include_in_schema=False)


def qr_svg(url: str) -> Markup:
    """The QR code of a join URL as inline SVG that scales to its box (no width/height)."""
    svg = segno.make(url, error="m").svg_inline(border=2, omitsize=True, svgclass="qr__svg")
    # segno writes the SVG itself; the URL is encoded as modules, never as text.
    return Markup(svg)  # noqa: S704


def _short(url: str) -> str:
    return url.split("://", 1)[-1]


# --------------------------------------------------------------------------- login


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> Response:
    target = safe_next(next)
    if is_presenter(request):
        return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
    return render(request, "pages/presenter/login.html", {"next": target, "error": False})


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    settings: SettingsDep,
    engine: EngineDep,
    token: Annotated[str, Form(max_length=512)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/presenter",
) -> Response:
    target = safe_next(next)
    try:
        accepted = check_admin_token(request, token.strip())
    except TooManyRequests as exc:
        page = render(
            request,
            "pages/presenter/login.html",
            {"next": target, "error": False, "wait": exc.retry_after},
            status_code=exc.status,
        )
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    if not accepted:
        return render(
            request,
            "pages/presenter/login.html",
            {"next": target, "error": True},
            status_code=status.HTTP_401_UNAUTHORIZED,
        )
    response = RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
    days = settings.presenter_login_days
    cookie = start_presenter_login(
        engine, settings.secret_key, days=days, admin_token=settings.admin_token
    )
    set_presenter_cookie(response, cookie, days=days, secure=is_https(request))
    return response


@router.post("/logout")
def logout(request: Request, settings: SettingsDep, engine: EngineDep) -> Response:
    """End the login on the server (a saved copy of the cookie stops working) and in the
    browser."""
    end_presenter_login(
        engine,
        settings.secret_key,
        request.cookies.get(PRESENTER_COOKIE),
        admin_token=settings.admin_token,
    )
    response = RedirectResponse("/presenter/login", status_code=status.HTTP_303_SEE_OTHER)
    clear_presenter_cookie(response, secure=is_https(request))
    return response


# --------------------------------------------------------------------------- dashboard


@router.get("", response_class=HTMLResponse)
def dashboard(
    request: Request,
    db: SessionDep,
    _: PresenterPageDep,
    talk: Annotated[str, Query(max_length=64)] = "",
    state: Annotated[str, Query(max_length=16)] = "",
    deleted: Annotated[str, Query(max_length=12)] = "",
) -> Response:
    """Every talk with its sessions; ``talk`` and ``state`` (running, ended, rehearsal) narrow
    the list down."""
    if state and state not in presenter.SessionFilter.__members__:
        return _dashboard(request, db, error="pres_error_filter", status_code=422)
    return _dashboard(
        request,
        db,
        talk=talk or None,
        state=presenter.SessionFilter(state) if state else None,
        notice=("pres_deleted", deleted) if deleted else None,
    )


def _dashboard(
    request: Request,
    db: SessionDep,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
    talk: str | None = None,
    state: presenter.SessionFilter | None = None,
    notice: tuple[str, str] | None = None,
) -> HTMLResponse:
    return render(
        request,
        "pages/presenter/dashboard.html",
        {
            "talks": presenter.talk_overviews(db, talk=talk, state=state),
            "all_talks": sessions.list_talks(db),
            "filter": {"talk": talk or "", "state": state.value if state else ""},
            "states": list(presenter.SessionFilter),
            "notice": notice,
            "today": date.today().isoformat(),
            "error": error,
            "form": form or {},
        },
        status_code=status_code,
    )


@router.post("/sessions", response_class=HTMLResponse)
def create_session(
    request: Request,
    db: SessionDep,
    _: PresenterPageDep,
    talk: Annotated[str, Form(max_length=64)] = "",
    venue: Annotated[str, Form(max_length=200)] = "",
    held_on: Annotated[str, Form(max_length=32)] = "",
    language: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    form = {"talk": talk, "venue": venue, "held_on": held_on, "language": language}
    try:
        day = date.fromisoformat(held_on) if held_on.strip() else None
    except ValueError:
        return _dashboard(request, db, error="pres_error_date", form=form, status_code=422)
    try:
        poll = sessions.create_session(
            db, talk_slug=talk, venue=venue, held_on=day, language=language or None
        )
    except DomainError as exc:
        return _dashboard(request, db, error=_error_key(exc), form=form, status_code=exc.status)
    return RedirectResponse(
        f"/presenter/sessions/{poll.code}", status_code=status.HTTP_303_SEE_OTHER
    )


def _error_key(exc: DomainError) -> str:
    known = {
        "session_ended": "pres_error_ended",
        "empty_venue": "pres_error_venue",
        "unknown_talk": "pres_error_talk",
        "unknown_language": "pres_error_language",
        "phase_not_open": "pres_error_not_open",
        "no_next_phase": "pres_error_no_next",
        "bad_countdown": "pres_error_countdown",
        "unknown_phase": "pres_error_phase",
        "unknown_session": "pres_error_session",
        "bad_min_cell": "pres_error_min_cell",
        "unlinked_session": "pres_error_unlinked",
        "bad_framing": "slides_error_framing",
        "no_view_token": "slides_error_no_view",
    }
    return known.get(exc.code, "pres_error_generic")


# --------------------------------------------------------------------------- one session


def _session_context(
    request: Request, db: SessionDep, settings: Settings, poll: PollSession
) -> dict[str, Any]:
    view = presenter.session_view(db, poll, request.query_params.get("lang"))
    url = join_url(settings, poll.code)
    return {
        "view": view,
        "poll": poll,
        "join_url": url,
        "short_url": _short(url),
        "qr": qr_svg(url),
    }


@router.get("/sessions/{code}", response_class=HTMLResponse)
def control_page(
    code: str, request: Request, db: SessionDep, settings: SettingsDep, _: PresenterPageDep
) -> Response:
    from app.routes.publish import prediction_context

    poll = sessions.get_session(db, code)
    context = _control_context(request, db, settings, poll) | prediction_context(db, poll)
    fresh = _read_new_token(request, settings, poll.code)
    if fresh is None:
        return render(request, "pages/presenter/control.html", context)
    context["new_token"] = fresh
    response = render(request, "pages/presenter/control.html", context)
    response.delete_cookie(
        SHOWN_ONCE_COOKIE, path=_new_token_path(poll.code), httponly=True, samesite="strict"
    )
    return response


@router.get("/sessions/{code}/preview", response_class=HTMLResponse)
def control_preview(
    code: str,
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    _: PresenterPageDep,
    phase: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """The control page's preview of what Reveal puts on the projector for ``phase`` (else the
    phase the room is on); the page fetches it again as answers come in."""
    poll = sessions.get_session(db, code)
    context = _control_context(request, db, settings, poll, phase)
    return render(request, "partials/presenter/_preview.html", context)


@router.get("/sessions/{code}/panel", response_class=HTMLResponse)
def control_panel(
    code: str, request: Request, db: SessionDep, settings: SettingsDep, _: PresenterPageDep
) -> Response:
    """The control strip and the phase list (htmx swaps it in when the phases change)."""
    poll = sessions.get_session(db, code)
    context = _session_context(request, db, settings, poll)
    return render(request, "partials/presenter/_panel.html", context)


@router.get("/sessions/{code}/projector", response_class=HTMLResponse)
def projector_page(
    code: str,
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    _: PresenterPageDep,
) -> Response:
    poll = sessions.get_session(db, code)
    if poll.unlinked:  # published counts: no room to show a QR code to; their results instead
        return RedirectResponse(
            f"/presenter/sessions/{poll.code}/results", status_code=status.HTTP_303_SEE_OTHER
        )
    context = stage_context(request, db, settings, templates, poll)
    return render(request, "pages/presenter/projector.html", context)


@router.get("/sessions/{code}/projector/stage", response_class=HTMLResponse)
def projector_stage(
    code: str,
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    _: PresenterPageDep,
) -> Response:
    poll = sessions.get_session(db, code)
    context = stage_context(request, db, settings, templates, poll)
    return render(request, "partials/presenter/_stage.html", context)


def stage_context(
    request: Request,
    db: SessionDep,
    settings: Settings,
    templates: Jinja2Templates,
    poll: PollSession,
    pinned: str = "",
) -> dict[str, Any]:
    """What the projector's slide needs (the read-only view's too); ``pinned``: draw that
    phase (NotFound if there is no such phase) rather than the one the room is on."""
    context = _session_context(request, db, settings, poll)
    view: presenter.SessionView = context["view"]
    # The projector speaks the session's language (the room's), not the laptop's.
    context["lang"] = i18n.supported(view.lang) or i18n.DEFAULT_LANGUAGE
    full = presenter.projector_results(db, poll)
    env = templates.env
    context["gap"] = full.gap if _has_template(env, "partials/charts/_gap.html") else None
    context["shift"] = full.shift if _has_template(env, "partials/charts/_shift.html") else None
    shown = presenter.previewed_phase(view, pinned) if pinned else view.current
    if pinned:
        context["pinned"] = shown
    if shown is not None:
        context["shows"] = presenter.revealed_slide(
            shown, context["gap"], context["shift"], view.phases
        )
    return context


def _control_context(
    request: Request,
    db: SessionDep,
    settings: Settings,
    poll: PollSession,
    phase: str = "",
) -> dict[str, Any]:
    """The control page's context, with the preview of what Reveal puts on the projector for
    ``phase`` (else the phase the room is on): the projector's own chart, in the room's
    language."""
    context = _session_context(request, db, settings, poll)
    view: presenter.SessionView = context["view"]
    target = presenter.previewed_phase(view, phase)
    full = presenter.projector_results(db, poll)
    context["preview"] = target
    context["queue"] = _queue(db, poll, view)
    room = sessions.pick_language(view.talk, poll.language)
    context["room_lang"] = i18n.supported(room) or i18n.DEFAULT_LANGUAGE
    context["gap"], context["shift"] = full.gap, full.shift
    context["tokens"] = _token_rows(db, poll)
    context["frame_ancestors"] = settings.frame_ancestors
    context["public_url"] = settings.resolved_public_url
    if target is not None:
        context["result"] = view.result(target.key)
        context["shows"] = presenter.revealed_slide(target, full.gap, full.shift, view.phases)
    return context


def _queue(db: SessionDep, poll: PollSession, view: presenter.SessionView) -> Any:
    """The moderation queue, when the session has an open-text phase."""
    if not any(r.answer == "text" for r in view.results):
        return None
    return moderation.queue(db, poll)


def _token_rows(db: SessionDep, poll: PollSession) -> dict[str, SessionToken | None]:
    """The session's live view address and remote key (their rows: the tokens are not kept)."""
    return {
        purpose.value: session_tokens.live_token(db, poll, purpose)
        for purpose in (TokenPurpose.view, TokenPurpose.remote, TokenPurpose.moderator)
    }


def _has_template(env: Any, name: str) -> bool:
    try:
        env.get_template(name)
    except TemplateNotFound:
        return False
    return True


def _parse_seconds(seconds: str) -> int | None:
    text = seconds.strip()
    if not text:
        return None
    if not text.isdigit():
        raise Invalid("a countdown is a whole number of seconds", code="bad_countdown")
    return int(text)


def _after_action(
    request: Request,
    db: SessionDep,
    settings: Settings,
    templates: Jinja2Templates,
    code: str,
    view: str,
    error: DomainError | None = None,
) -> Response:
    """htmx: the fragment to swap in (with a message if the action was refused); a plain
    form: back to the page."""
    poll = sessions.get_session(db, code)
    if request.headers.get("hx-request") != "true":
        if error is not None:
            context = _control_context(request, db, settings, poll)
            context["error"] = _error_key(error)
            return render(request, "pages/presenter/control.html", context, error.status)
        target = f"/presenter/sessions/{poll.code}"
        if view == "stage":
            target += "/projector"
        return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
    if view == "stage":
        context = stage_context(request, db, settings, templates, poll)
        template = "partials/presenter/_stage.html"
    else:
        context = _session_context(request, db, settings, poll)
        template = "partials/presenter/_panel.html"
    if error is not None:
        context["error"] = _error_key(error)
    return render(request, template, context, error.status if error else 200)


@router.post("/sessions/{code}/phases/{phase}/{action}", response_class=HTMLResponse)
def phase_action(
    code: str,
    phase: str,
    action: voting.PhaseAction,
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    publisher: PublisherDep,
    _: PresenterPageDep,
    seconds: Annotated[str, Form(max_length=8)] = "",
    view: Annotated[str, Query(pattern="^(panel|stage)$")] = "panel",
) -> Response:
    poll = sessions.get_session(db, code)
    try:
        countdown = _parse_seconds(seconds) if action == voting.PhaseAction.open else None
        voting.change_phase(db, poll.code, phase, action, publisher, seconds=countdown)
    except DomainError as exc:
        db.rollback()
        return _after_action(request, db, settings, templates, poll.code, view, exc)
    return _after_action(request, db, settings, templates, poll.code, view)


@router.post("/sessions/{code}/next", response_class=HTMLResponse)
def next_action(
    code: str,
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    publisher: PublisherDep,
    _: PresenterPageDep,
    seconds: Annotated[str, Form(max_length=8)] = "",
    view: Annotated[str, Query(pattern="^(panel|stage)$")] = "panel",
) -> Response:
    """Close the open phase and open the next pending one."""
    poll = sessions.get_session(db, code)
    try:
        presenter.next_phase(db, poll.code, publisher, seconds=_parse_seconds(seconds))
    except DomainError as exc:
        db.rollback()
        return _after_action(request, db, settings, templates, poll.code, view, exc)
    return _after_action(request, db, settings, templates, poll.code, view)


# --------------------------------------------------------------------------- a session's life


def _back(target: str, code: str) -> str:
    return f"/presenter/sessions/{code}" if target == "control" else "/presenter"


def _flag(text: str) -> bool | None:
    """A form's yes/no field: "1" or "0"; absent or empty leaves the setting as it is."""
    if text == "":
        return None
    if text in ("0", "1"):
        return text == "1"
    raise Invalid("a yes/no field takes 1 or 0", code="bad_flag")


@router.post("/sessions/{code}/update", response_class=HTMLResponse)
def update_session(
    code: str,
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    publisher: PublisherDep,
    _: PresenterPageDep,
    venue: Annotated[str | None, Form(max_length=200)] = None,
    rehearsal: Annotated[str, Form(max_length=1)] = "",
    ended: Annotated[str, Form(max_length=1)] = "",
    min_cell: Annotated[str, Form(max_length=8)] = "",
    back: Annotated[str, Form(pattern="^(dashboard|control)$")] = "dashboard",
) -> Response:
    """Rename the venue, mark or unmark a rehearsal, end a session or take it up again, set
    the small-cell threshold; then back to the page the form was on."""
    poll = sessions.get_session(db, code)
    try:
        if min_cell.strip() and not min_cell.strip().isdigit():
            raise Invalid("the small-cell threshold is a whole number", code="bad_min_cell")
        sessions.update_session(
            db,
            poll.code,
            publisher,
            venue=venue,
            rehearsal=_flag(rehearsal),
            ended=_flag(ended),
            min_cell=int(min_cell) if min_cell.strip() else None,
        )
    except DomainError as exc:
        db.rollback()
        if back == "control":
            context = _control_context(request, db, settings, poll)
            context["error"] = _error_key(exc)
            return render(request, "pages/presenter/control.html", context, exc.status)
        return _dashboard(request, db, error=_error_key(exc), status_code=exc.status)
    return RedirectResponse(_back(back, poll.code), status_code=status.HTTP_303_SEE_OTHER)


@router.get("/sessions/{code}/delete", response_class=HTMLResponse)
def delete_page(code: str, request: Request, db: SessionDep, _: PresenterPageDep) -> Response:
    """Asks before deleting, and offers the export first."""
    poll = sessions.get_session(db, code)
    return _delete_page(request, db, poll)


def _delete_page(
    request: Request, db: SessionDep, poll: PollSession, error: bool = False
) -> HTMLResponse:
    view = presenter.session_view(db, poll)
    return render(
        request,
        "pages/presenter/delete.html",
        {"poll": poll, "view": view, "error": error},
        status_code=422 if error else 200,
    )


@router.post("/sessions/{code}/delete", response_class=HTMLResponse)
def delete_session(
    code: str,
    request: Request,
    db: SessionDep,
    publisher: PublisherDep,
    _: PresenterPageDep,
    confirm: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """Deletes once the presenter typed the session's code."""
    poll = sessions.get_session(db, code)
    if sessions.normalize_code(confirm) != poll.code:
        return _delete_page(request, db, poll, error=True)
    sessions.delete_session(db, poll.code, publisher)
    return RedirectResponse(
        f"/presenter?deleted={poll.code}", status_code=status.HTTP_303_SEE_OTHER
    )


# --------------------------------------------------------------------------- a token shown once

SHOWN_ONCE_COOKIE = "bg_shown_once"
NEW_TOKEN_SECONDS = 120


def _new_token_path(code: str) -> str:
    return f"/presenter/sessions/{code}"


def _new_token_signer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt="new-session-token")


def _read_new_token(request: Request, settings: Settings, code: str) -> dict[str, str] | None:
    """The token just made for this session, from the cookie ``issue_token`` set, if any."""
    cookie = request.cookies.get(SHOWN_ONCE_COOKIE)
    if not cookie or len(cookie) > 512:
        return None
    try:
        found = _new_token_signer(settings).loads(cookie, max_age=NEW_TOKEN_SECONDS)
    except BadSignature:
        return None
    if not isinstance(found, dict) or found.get("code") != code:
        return None
    return {"purpose": str(found.get("p", "")), "token": str(found.get("t", ""))}
