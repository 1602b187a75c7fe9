"""The presenter's tools for slides, streams and recordings, on a session's control page: the
read-only view's address and the slide remote's key (made, replaced, revoked; shown once), who
may frame the view, and the 1920x1080 QR slide (``app.session_tokens``, ``app.routes.view``,
``app.routes.remote``, docs/slides.md).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app import export, i18n, presenter, session_tokens, sessions
from app.charts import qr as qr_charts
from app.db import SessionDep
from app.deps import NO_STORE, PublisherDep, SettingsDep, TemplatesDep, is_https, render
from app.errors import DomainError, NotFound
from app.models import TokenPurpose
from app.routes.api import join_url
from app.routes.presenter import (
    NEW_TOKEN_SECONDS,
    SHOWN_ONCE_COOKIE,
    _control_context,
    _error_key,
    _flag,
    _new_token_path,
    _new_token_signer,
    _short,
)
from app.security import PresenterPageDep

router = APIRouter(prefix="/presenter", tags=["presenter"], include_in_schema=False)


# --------------------------------------------------------------------------- in the slides

SLIDE_PURPOSES = {
    "view": TokenPurpose.view,
    "remote": TokenPurpose.remote,
    "moderator": TokenPurpose.moderator,
}


def _slide_purpose(purpose: str) -> TokenPurpose:
    found = SLIDE_PURPOSES.get(purpose)
    if found is None:
        raise NotFound(f"no token kind {purpose[:40]!r}", code="unknown_token_kind")
    return found


@router.post("/sessions/{code}/tokens/{purpose}", response_class=HTMLResponse)
def issue_token(
    code: str,
    purpose: str,
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    publisher: PublisherDep,
    _: PresenterPageDep,
) -> Response:
    """A new view address or remote key for the session (the old one stops working); the page
    shows it this once: only its hash is kept."""
    kind = _slide_purpose(purpose)
    poll = sessions.get_session(db, code)
    token = session_tokens.issue(db, poll.code, kind, publisher)
    # Back to the page, which shows the token once: carried over in a short-lived cookie of
    # that page alone, so that reloading the page neither shows it again nor makes another.
    response = RedirectResponse(
        f"/presenter/sessions/{poll.code}#slides", status_code=status.HTTP_303_SEE_OTHER
    )
    value = _new_token_signer(settings).dumps({"code": poll.code, "p": kind.value, "t": token})
    response.set_cookie(
        SHOWN_ONCE_COOKIE,
        value,
        max_age=NEW_TOKEN_SECONDS,
        path=_new_token_path(poll.code),
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )
    return response


@router.post("/sessions/{code}/tokens/{purpose}/revoke", response_class=HTMLResponse)
def revoke_token(
    code: str,
    purpose: str,
    db: SessionDep,
    publisher: PublisherDep,
    _: PresenterPageDep,
) -> Response:
    """The view address or remote key stops working at once (open views say they ended)."""
    kind = _slide_purpose(purpose)
    poll = sessions.get_session(db, code)
    session_tokens.revoke(db, poll.code, kind, publisher)
    where = "#moderator" if kind == TokenPurpose.moderator else "#slides"
    return RedirectResponse(
        f"/presenter/sessions/{poll.code}{where}", status_code=status.HTTP_303_SEE_OTHER
    )


@router.post("/sessions/{code}/view/framing", response_class=HTMLResponse)
def view_framing(
    code: str,
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    _: PresenterPageDep,
    framing: Annotated[str, Form(max_length=1000)] = "",
    anywhere: Annotated[str, Form(max_length=1)] = "",
) -> Response:
    """Who may frame the view: the operator's list (empty), some of its sites, or any site
    (``anywhere`` ticked, for a public talk)."""
    poll = sessions.get_session(db, code)
    chosen = session_tokens.ANYWHERE if _flag(anywhere) else framing
    try:
        session_tokens.set_framing(db, poll.code, settings.frame_ancestors, chosen)
    except DomainError as exc:
        db.rollback()
        context = _control_context(request, db, settings, poll)
        context["error"] = _error_key(exc)
        return render(request, "pages/presenter/control.html", context, exc.status)
    return RedirectResponse(
        f"/presenter/sessions/{poll.code}#slides", status_code=status.HTTP_303_SEE_OTHER
    )


@router.get("/sessions/{code}/qr-slide.{ext}")
def qr_slide(
    code: str,
    ext: str,
    db: SessionDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    _: PresenterPageDep,
) -> Response:
    """The QR slide at 1920x1080 as SVG or PNG, in the room's language: for decks that cannot
    show a web page."""
    if ext not in ("svg", "png"):
        raise NotFound("the QR slide is qr-slide.svg or qr-slide.png", code="no_chart")
    poll = sessions.get_session(db, code)
    view = presenter.session_view(db, poll)
    lang = i18n.supported(view.lang) or i18n.DEFAULT_LANGUAGE
    url = join_url(settings, poll.code)
    scan = i18n.translate(lang, "pres_scan_to_join")
    slide = qr_charts.qr_slide(view.title, scan, poll.code, url, _short(url), lang)
    svg = export.render_svg(templates.env, slide)
    filename = f"beliefgap-{poll.code}-qr-slide-{lang}.{ext}"
    headers = {"Content-Disposition": f'inline; filename="{filename}"', **NO_STORE}
    if ext == "svg":
        return Response(svg, media_type="image/svg+xml", headers=headers)
    return Response(export.svg_to_png(svg, zoom=1.0), media_type="image/png", headers=headers)
