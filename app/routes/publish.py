"""Results that outlive the talk: a session's prediction locked before it (``app.predictions``),
and the permanent public results pages (``app.publication``): the API, the presenter's forms and
the public pages. Thin: each handler calls one service."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Form, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from app import i18n, package, predictions, publication, sessions
from app.db import SessionDep
from app.deps import SettingsDep, choose_language, render
from app.errors import DomainError, NotFound
from app.models import (
    PollSession,
    PredictionIn,
    PredictionOut,
    Publication,
    PublicationOut,
    PublishIn,
)
from app.routes.docs import PRESENTER, errors
from app.security import PresenterDep, PresenterPageDep
from app.settings import Settings

router = APIRouter(tags=["results"])
pages = APIRouter(include_in_schema=False)

API_ERRORS = errors(400, *PRESENTER, 404, 409, 413, 422, 503)


# --------------------------------------------------------------------------- the API


@router.get(
    "/api/v1/sessions/{code}/prediction",
    response_model=PredictionOut,
    responses=API_ERRORS,
)
def get_prediction(code: str, db: SessionDep, _: PresenterDep) -> PredictionOut:
    """The session's prediction, its amendments (each with the canonical text its SHA-256 is
    computed from), and the latest claims against the room's results."""
    poll = sessions.get_session(db, code)
    found = predictions.session_record(db, poll)
    if found is None:
        raise NotFound("the session has no prediction", code="no_prediction")
    return found


@router.post(
    "/api/v1/sessions/{code}/prediction",
    status_code=status.HTTP_201_CREATED,
    response_model=PredictionOut,
    responses=API_ERRORS,
)
def lock_prediction(
    code: str, body: PredictionIn, db: SessionDep, _: PresenterDep
) -> PredictionOut:
    """Lock the session's prediction (before its first phase opens; once). It can never be
    changed afterwards, only amended (``.../prediction/amendments``)."""
    poll = sessions.get_session(db, code)
    predictions.lock(db, poll, body)
    found = predictions.session_record(db, poll)
    assert found is not None
    return found


@router.post(
    "/api/v1/sessions/{code}/prediction/amendments",
    status_code=status.HTTP_201_CREATED,
    response_model=PredictionOut,
    responses=API_ERRORS,
)
def amend_prediction(
    code: str, body: PredictionIn, db: SessionDep, _: PresenterDep
) -> PredictionOut:
    """Amend the prediction, visibly: the amendment is time-stamped and hashed with the hash of
    the entry before it, says why (``text``), and its claims are the ones set against the
    results from then on. Amendments made after a phase opened say so."""
    poll = sessions.get_session(db, code)
    predictions.amend(db, poll, body)
    found = predictions.session_record(db, poll)
    assert found is not None
    return found


# --------------------------------------------------------------------------- the control page


def prediction_context(db: Session, poll: PollSession) -> dict[str, Any]:
    """What the control page's prediction box shows."""
    return {
        "prediction_entries": predictions.entries(db, poll),
        "prediction_open": not predictions.phase_opened(db, poll) and not poll.ended,
    }


FORM_ERRORS = {
    "prediction_locked": "pred_error_locked",
    "prediction_too_late": "pred_error_too_late",
    "no_prediction": "pred_error_none",
    "amendment_without_text": "pred_error_why",
    "session_ended": "pred_error_ended",
}

NumberField = Annotated[str, Form(max_length=32)]


def _form_prediction(fields: dict[str, str], text: str) -> PredictionIn:
    values: dict[str, Any] = {"text": text}
    for name, raw in fields.items():
        if raw.strip():
            values[name] = raw.strip().replace(",", ".")
    return PredictionIn.model_validate(values)


def _answer_form(
    request: Request,
    db: Session,
    settings: Any,
    poll: PollSession,
    fields: dict[str, str],
    text: str,
    amendment: bool,
) -> Response:
    from app.routes.presenter import _control_context

    try:
        given = _form_prediction(fields, text)
        if amendment:
            predictions.amend(db, poll, given)
        else:
            predictions.lock(db, poll, given)
    except (ValidationError, DomainError) as exc:
        db.rollback()
        status_code = exc.status if isinstance(exc, DomainError) else 422
        key = (
            FORM_ERRORS.get(exc.code, "pred_error_generic")
            if isinstance(exc, DomainError)
            else ("pred_error_malformed")
        )
        context = _control_context(request, db, settings, poll)
        context |= prediction_context(db, poll)
        context["prediction_error"] = key
        context["prediction_form"] = {**fields, "text": text, "amend": amendment}
        return render(request, "pages/presenter/control.html", context, status_code)
    return RedirectResponse(
        f"/presenter/sessions/{poll.code}#prediction", status_code=status.HTTP_303_SEE_OTHER
    )


@pages.post("/presenter/sessions/{code}/prediction", response_class=HTMLResponse)
def lock_prediction_form(
    code: str,
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    _: PresenterPageDep,
    own_below: NumberField = "",
    own_above: NumberField = "",
    perceived_below: NumberField = "",
    perceived_above: NumberField = "",
    gap: NumberField = "",
    gap_margin: NumberField = "",
    text: Annotated[str, Form(max_length=4000)] = "",
    amend: Annotated[str, Form(pattern="^(|1)$")] = "",
) -> Response:
    """The control page's prediction form: lock it (before the first question opens), or,
    with ``amend=1``, add an amendment."""
    poll = sessions.get_session(db, code)
    fields = {
        "own_below": own_below,
        "own_above": own_above,
        "perceived_below": perceived_below,
        "perceived_above": perceived_above,
        "gap": gap,
        "gap_margin": gap_margin,
    }
    return _answer_form(request, db, settings, poll, fields, text, amend == "1")


# --------------------------------------------------------------------------- publishing


def public_url(settings: Settings, publication_row: Publication) -> str:
    return f"{settings.resolved_public_url}/r/{publication_row.token}"


def _publication_out(db: Session, settings: Settings, row: Publication) -> PublicationOut:
    shown = publication.published(db, row, None) if row.withdrawn_at is None else None
    return PublicationOut(
        url=public_url(settings, row),
        version=shown.version if shown is not None else 1,
        licence=row.licence,
        published_at=row.published_at,
        withdrawn_at=row.withdrawn_at,
    )


@router.post(
    "/api/v1/sessions/{code}/publication",
    status_code=status.HTTP_201_CREATED,
    response_model=PublicationOut,
    responses=API_ERRORS,
)
def publish_session(
    code: str,
    body: PublishIn,
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    _: PresenterDep,
) -> PublicationOut:
    """Publish the session's results at a permanent public address (no login; small cells
    hidden as on every page). Published already: the same address."""
    poll = sessions.get_session(db, code)
    options = package.PackageOptions(licence=body.licence, contributors=tuple(body.contributors))
    row = publication.publish_session(db, poll, options)
    return _publication_out(db, settings, row)


@router.post(
    "/api/v1/talks/{slug}/publication",
    status_code=status.HTTP_201_CREATED,
    response_model=PublicationOut,
    responses=API_ERRORS,
)
def publish_talk(
    slug: str,
    body: PublishIn,
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    _: PresenterDep,
) -> PublicationOut:
    """Publish the talk's results over its sessions at a permanent public address; a new
    version with every session, each version at its own address."""
    talk = sessions.get_talk(db, slug)
    options = package.PackageOptions(licence=body.licence, contributors=tuple(body.contributors))
    row = publication.publish_talk(db, talk, options)
    return _publication_out(db, settings, row)


@router.delete(
    "/api/v1/publications/{token}",
    response_model=PublicationOut,
    responses=API_ERRORS,
)
def withdraw_publication(
    token: str, request: Request, db: SessionDep, settings: SettingsDep, _: PresenterDep
) -> PublicationOut:
    """Withdraw a publication: its address says from now on when it was withdrawn (410)."""
    row = publication.withdraw(db, token)
    return _publication_out(db, settings, row)


def publication_context(
    db: Session, settings: Settings, *, poll: PollSession | None = None, talk: Any = None
) -> dict[str, Any]:
    """What a results page's publication box shows."""
    row = (
        publication.active_for_session(db, poll)
        if poll is not None
        else publication.active_for_talk(db, talk)
    )
    return {
        "publication": row,
        "publication_url": public_url(settings, row) if row is not None else None,
    }


LicenceField = Annotated[str, Form(max_length=16)]


def _results_page(poll_code: str | None, slug: str | None) -> str:
    if poll_code is not None:
        return f"/presenter/sessions/{poll_code}/results#publication"
    return f"/presenter/talks/{slug}/results#publication"


@pages.post("/presenter/sessions/{code}/publish", response_class=HTMLResponse)
def publish_session_form(
    code: str,
    request: Request,
    db: SessionDep,
    _: PresenterPageDep,
    licence: LicenceField = package.DEFAULT_LICENCE,
    contributor: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    poll = sessions.get_session(db, code)
    names = (contributor.strip(),) if contributor.strip() else ()
    options = package.PackageOptions(licence=licence, contributors=names)
    publication.publish_session(db, poll, options)
    return RedirectResponse(_results_page(poll.code, None), status_code=status.HTTP_303_SEE_OTHER)


@pages.post("/presenter/talks/{slug}/publish", response_class=HTMLResponse)
def publish_talk_form(
    slug: str,
    request: Request,
    db: SessionDep,
    _: PresenterPageDep,
    licence: LicenceField = package.DEFAULT_LICENCE,
    contributor: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    talk = sessions.get_talk(db, slug)
    names = (contributor.strip(),) if contributor.strip() else ()
    options = package.PackageOptions(licence=licence, contributors=names)
    publication.publish_talk(db, talk, options)
    return RedirectResponse(_results_page(None, talk.slug), status_code=status.HTTP_303_SEE_OTHER)


@pages.post("/presenter/publications/{token}/withdraw", response_class=HTMLResponse)
def withdraw_form(token: str, request: Request, db: SessionDep, _: PresenterPageDep) -> Response:
    row = publication.withdraw(db, token)
    poll = db.get(PollSession, row.session_id) if row.session_id is not None else None
    if poll is not None:
        back = _results_page(poll.code, None)
    else:
        from app.models import Talk

        talk = db.get(Talk, row.talk_id)
        back = _results_page(None, talk.slug if talk is not None else "")
    return RedirectResponse(back, status_code=status.HTTP_303_SEE_OTHER)


# --------------------------------------------------------------------------- the public pages

PUBLIC_TTL_SECONDS = 30
"""How long a drawn public page is served as drawn. Publishing or withdrawing in this process
draws it again at once; another worker process sees the change within this time."""
PUBLIC_CACHE = {"Cache-Control": "public, no-cache", "Vary": "Accept-Language, Cookie"}
"""Browsers and proxies may keep a public page but ask again each time (a withdrawn page must
not be shown from a cache); the page's ETag makes asking again cheap."""
PUBLIC_PAGES_KEPT = 256


class PublicPages:
    """Public pages as drawn (status and HTML), by address, language and site; at most
    ``PUBLIC_PAGES_KEPT``, the least recently drawn go first."""

    def __init__(self) -> None:
        self._pages: OrderedDict[Hashable, tuple[Hashable, int, bytes, str]] = OrderedDict()
        self._lock = threading.Lock()
        self.draws = 0

    def get(self, key: Hashable, stamp: Hashable) -> tuple[int, bytes, str] | None:
        """Status, HTML and ETag of the page as drawn, if drawn with this stamp."""
        found = self._pages.get(key)
        return (found[1], found[2], found[3]) if found is not None and found[0] == stamp else None

    def draw(
        self, key: Hashable, stamp: Hashable, make: Callable[[], tuple[int, str]]
    ) -> tuple[int, bytes, str]:
        with self._lock:
            found = self.get(key, stamp)
            if found is None:
                self.draws += 1
                code, html = make()
                body = html.encode("utf-8")
                etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
                found = (code, body, etag)
                if code != 404:  # an unknown address is not kept: no growth by guessing
                    self._pages[key] = (stamp, *found)
                    self._pages.move_to_end(key)
                    while len(self._pages) > PUBLIC_PAGES_KEPT:
                        self._pages.popitem(last=False)
            return found


def _public_pages(request: Request) -> PublicPages:
    state = request.app.state
    pages_kept = getattr(state, "public_pages", None)
    if pages_kept is None:
        pages_kept = state.public_pages = PublicPages()
    return pages_kept


def _draw_public(request: Request, token: str, version: int | None, lang: str) -> tuple[int, str]:
    settings: Settings = request.app.state.settings
    templates = request.app.state.templates
    with Session(request.app.state.engine) as db:
        row = publication.by_token(db, token)
        context: dict[str, Any] = {"request": request, "lang": lang}
        if row is None:
            name, code = "pages/public_missing.html", 404
        elif row.withdrawn_at is not None:
            context["withdrawn"] = row.withdrawn_at
            name, code = "pages/public_withdrawn.html", 410
        else:
            url = public_url(settings, row)
            shown = publication.published(db, row, version, url)
            if shown is None:
                name, code = "pages/public_missing.html", 404
            else:
                prediction = None
                if shown.talk is not None:
                    context["talk_predictions"] = predictions.talk_records(
                        db, shown.polls, shown.talk.sessions
                    )
                if shown.session is not None:
                    from app import results

                    poll = shown.polls[0]
                    prediction = predictions.record(
                        poll, predictions.entries(db, poll), results.gap_json(shown.session.gap)
                    )
                context |= {
                    "shown": shown,
                    "url": url,
                    "prediction": prediction,
                    "citation": publication.citation_text(shown, url),
                    "licence": package.LICENCES[row.licence] | {"name": row.licence},
                }
                name, code = "pages/public_results.html", 200
        html = templates.get_template(name).render(context)
    return code, html


async def _public_response(
    request: Request, token: str, version: int | None, lang: str | None
) -> Response:
    """A public page as drawn (kept ``PUBLIC_TTL_SECONDS``): served from the event loop when
    drawn already, drawn in a worker thread otherwise."""
    chosen = i18n.supported(lang) or choose_language(request)
    stamp = (publication.changes(), int(time.monotonic() // PUBLIC_TTL_SECONDS))
    key = (token, version, chosen, str(request.base_url))
    cache = _public_pages(request)
    found = cache.get(key, stamp)
    if found is None:
        found = await anyio.to_thread.run_sync(
            lambda: cache.draw(key, stamp, lambda: _draw_public(request, token, version, chosen))
        )
    code, body, etag = found
    if code == 404:
        return Response(body, 404, headers={"Cache-Control": "no-store"}, media_type=HTML)
    headers = PUBLIC_CACHE | {"ETag": etag}
    if code == 200 and etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, code, headers=headers, media_type=HTML)


PublicLang = Annotated[str | None, Query(max_length=16)]
HTML = "text/html; charset=utf-8"


@pages.get("/r/{token}", response_class=HTMLResponse)
async def public_page(token: str, request: Request, lang: PublicLang = None) -> Response:
    """A published session's or talk's results, the newest version (no login)."""
    return await _public_response(request, token, None, lang)


def _version(text: str) -> int:
    """A version's number from its address; 0 (no such version) for anything else."""
    return int(text) if text.isdigit() and len(text) <= 6 else 0


@pages.get("/r/{token}/v{version}", response_class=HTMLResponse)
async def public_version(
    token: str, version: str, request: Request, lang: PublicLang = None
) -> Response:
    """One version of a published talk's results, at its own address for ever."""
    return await _public_response(request, token, _version(version), lang)


def _gone_or_missing(request: Request, token: str, version: int) -> Response:
    """The page a package's address answers when there is no package: the withdrawal (410)
    or the page that tells nothing (404)."""
    code, html = _draw_public(request, token, version, choose_language(request))
    return Response(html, code, headers={"Cache-Control": "no-store"}, media_type=HTML)


@pages.get("/r/{token}/v{version}/package.zip")
def public_package(token: str, version: str, request: Request, db: SessionDep) -> Response:
    """The version's dataset package, without the answer-level table (the page's rules)."""
    settings: Settings = request.app.state.settings
    number = _version(version)
    row = publication.by_token(db, token)
    if row is None or row.withdrawn_at is not None:
        return _gone_or_missing(request, token, number)
    url = public_url(settings, row)
    shown = publication.published(db, row, number, url)
    if shown is None:
        return _gone_or_missing(request, token, number)
    options = publication.options_of(row, url)
    options = package.PackageOptions(
        licence=options.licence, contributors=options.contributors, url=url, answers=False
    )
    if shown.is_talk:
        from app.models import Talk

        talk = db.get(Talk, row.talk_id)
        assert talk is not None
        gathered = package.gather_talk(db, talk, only={p.code for p in shown.polls})
    else:
        gathered = package.gather_session(db, shown.polls[0])
    content = package.build_zip(gathered, options)
    name = package.filename(gathered)
    return Response(
        content,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'} | PUBLIC_CACHE,
    )
