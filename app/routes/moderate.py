"""Moderating open-text answers: the moderator's link, ``/moderate/<token>``, a co-host's phone
moderating one session's answers without the admin token; and the presenter's own queue on the
control page (``queue_router``: the queue alone, Show and Hide), behind the presenter's cookie.

The presenter makes (and replaces, and revokes) the link on the control page; the token names
its session (``app.session_tokens``, purpose ``moderator``), so it reaches nothing else: the
queue of pending answers with Show and Hide, and nothing of the presenter's pages. A revoked or
unknown token is a 404 page, counted against its address like a wrong admin token. The page
asks for the queue again every few seconds (it carries no presenter cookie, so it does not use
the presenter's event stream).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app import i18n, moderation, session_tokens, sessions
from app.db import SessionDep
from app.deps import NO_STORE, PublisherDep, choose_language, render
from app.errors import Invalid
from app.models import PollSession, TextState, TokenPurpose
from app.security import PresenterPageDep
from app.session_tokens import Grant

router = APIRouter(prefix="/moderate", include_in_schema=False)
queue_router = APIRouter(prefix="/presenter", include_in_schema=False)
PAGE = "pages/moderate.html"
QUEUE = "partials/presenter/_queue.html"


def moderator_grant(token: str, request: Request, db: SessionDep) -> Grant:
    """Dependency: the session of a live moderator token in the path; 404 for any other."""
    limits = request.app.state.limits
    limits.token_allowed(request.scope)
    grant = session_tokens.resolve(db, token, TokenPurpose.moderator)
    if grant is None:
        limits.token_failed(request.scope)
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="this moderator link is not valid")
    return grant


ModeratorDep = Annotated[Grant, Depends(moderator_grant)]


def _lang(request: Request) -> str:
    return choose_language(request, request.query_params.get("lang"))


def _context(db: SessionDep, grant: Grant, token: str, lang: str) -> dict[str, object]:
    poll = sessions.get_session(db, grant.code)
    base = f"/moderate/{token}"
    return {"queue": moderation.queue(db, poll), "poll": poll, "lang": lang, "base": base}


@router.get("/{token}", response_class=HTMLResponse)
def moderator_page(token: str, request: Request, db: SessionDep, grant: ModeratorDep) -> Response:
    context = _context(db, grant, token, _lang(request))
    return render(request, PAGE, context, headers=NO_STORE)


@router.get("/{token}/queue", response_class=HTMLResponse)
def moderator_queue(token: str, request: Request, db: SessionDep, grant: ModeratorDep) -> Response:
    """The queue alone (the page fetches it again every few seconds)."""
    context = _context(db, grant, token, _lang(request))
    return render(request, QUEUE, context, headers=NO_STORE)


@router.post("/{token}/{state}", response_class=HTMLResponse)
def moderator_move(
    token: str,
    state: TextState,
    request: Request,
    db: SessionDep,
    publisher: PublisherDep,
    grant: ModeratorDep,
    ids: Annotated[list[str], Form(max_length=moderation.MAX_MOVE)],
) -> Response:
    """Show or hide answers of the token's session: with htmx the queue back, without it a 303
    to the page."""
    try:
        numbers = [int(i) for i in ids]
    except ValueError:
        raise Invalid("answer ids are whole numbers", code="unknown_answer") from None
    poll = sessions.get_session(db, grant.code)
    moderation.move(db, poll, numbers, state, publisher)
    if request.headers.get("hx-request") != "true":
        return RedirectResponse(f"/moderate/{token}", status_code=status.HTTP_303_SEE_OTHER)
    context = _context(db, grant, token, _lang(request))
    return render(request, QUEUE, context, headers=NO_STORE)


# --------------------------------------------------------------------------- the control page's


@queue_router.get("/sessions/{code}/queue", response_class=HTMLResponse)
def moderation_queue(code: str, request: Request, db: SessionDep, _: PresenterPageDep) -> Response:
    """The control page's moderation queue alone (fetched again as answers arrive)."""
    poll = sessions.get_session(db, code)
    return render(request, QUEUE, _queue_context(request, db, poll))


def _queue_context(request: Request, db: SessionDep, poll: PollSession) -> dict[str, object]:
    lang = i18n.supported(request.query_params.get("lang") or "") or i18n.DEFAULT_LANGUAGE
    return {"queue": moderation.queue(db, poll), "poll": poll, "lang": lang}


@queue_router.post("/sessions/{code}/text-answers/{state}", response_class=HTMLResponse)
async def moderate(
    code: str,
    state: TextState,
    request: Request,
    db: SessionDep,
    publisher: PublisherDep,
    _: PresenterPageDep,
) -> Response:
    """Show or hide open-text answers (``ids``, one or several) from the control page's queue:
    with htmx the queue back, without it a 303 to the control page."""
    form = await request.form()
    try:
        ids = [int(str(i)) for i in form.getlist("ids")[: moderation.MAX_MOVE + 1]]
    except ValueError:
        raise Invalid("answer ids are whole numbers", code="unknown_answer") from None
    poll = sessions.get_session(db, code)
    moderation.move(db, poll, ids, state, publisher)
    if request.headers.get("hx-request") != "true":
        return RedirectResponse(
            f"/presenter/sessions/{poll.code}", status_code=status.HTTP_303_SEE_OTHER
        )
    return render(request, QUEUE, _queue_context(request, db, poll))
