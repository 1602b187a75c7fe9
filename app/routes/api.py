"""The public JSON API (``/api/v1``) promised in API.md. Thin: each handler calls one service."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect
from starlette.routing import Route

from app import export, moderation, retention, sessions, voting
from app.db import SessionDep
from app.deps import (
    PublisherDep,
    SettingsDep,
    VoteIntake,
    VoteIntakeDep,
    participant_token,
    request_body,
    set_participant_cookie,
)
from app.errors import Invalid
from app.models import (
    SessionCreate,
    SessionCreated,
    SessionPublic,
    SessionUpdate,
    TalkPublic,
    TextState,
    VoteIn,
    VoteOut,
)
from app.published import create_unlinked_session
from app.routes.busy import Endpoint, PassOn
from app.routes.docs import PRESENTER, errors
from app.security import PresenterDep, new_participant_token
from app.settings import Settings
from app.voting import PhaseAction

router = APIRouter(prefix="/api/v1", tags=["api"])
votes = APIRouter(prefix="/api/v1", tags=["api"])
"""The vote alone, included ahead of every other router (``app.main``): a request is matched
against the routes in order, each included router's twice, and behind the pages', the stream's
and the API's other routes the matching was about a third of an API vote's CPU time."""


def join_url(settings: Settings, code: str) -> str:
    """The address a phone opens to join a session (what the QR code holds)."""
    return f"{settings.resolved_public_url}/j/{code}"


def dashboard_url(settings: Settings, code: str) -> str:
    return f"{settings.resolved_public_url}/presenter/sessions/{code}"


@router.get("/talks", response_model=list[TalkPublic], responses=errors(422, 503))
def list_talks(db: SessionDep, lang: str | None = None) -> list[TalkPublic]:
    return [sessions.talk_public(db, talk, lang) for talk in sessions.list_talks(db)]


@router.post(
    "/sessions",
    status_code=status.HTTP_201_CREATED,
    response_model=SessionCreated,
    responses=errors(400, *PRESENTER, 404, 413, 422, 503),
)
def create_session(
    body: SessionCreate, settings: SettingsDep, db: SessionDep, _: PresenterDep
) -> SessionCreated:
    """A session of the talk for a room of phones; or, with ``"unlinked": true``, a session of
    published counts (``source``, ``totals`` and optionally ``transitions``), which shows the
    independent comparison, pools with it and refuses votes (409)."""
    if body.unlinked:
        poll = create_unlinked_session(
            db,
            talk_slug=body.talk,
            venue=body.venue,
            source=body.source or "",
            totals=body.totals or {},
            transitions=body.transitions,
            held_on=body.held_on,
            language=body.language,
        )
    elif body.source is not None or body.totals is not None or body.transitions is not None:
        raise Invalid(
            "'source', 'totals' and 'transitions' are for an unlinked session "
            '(give "unlinked": true)',
            code="not_unlinked",
        )
    else:
        poll = sessions.create_session(
            db, talk_slug=body.talk, venue=body.venue, held_on=body.held_on, language=body.language
        )
    return SessionCreated(
        code=poll.code,
        join_url=join_url(settings, poll.code),
        dashboard_url=dashboard_url(settings, poll.code),
    )


@router.get("/sessions/{code}", response_model=SessionPublic, responses=errors(404, 422, 503))
def get_session(code: str, db: SessionDep) -> SessionPublic:
    return sessions.session_public(db, sessions.get_session(db, code))


@router.patch(
    "/sessions/{code}",
    response_model=SessionPublic,
    responses=errors(400, *PRESENTER, 404, 409, 413, 422, 503),
)
def update_session(
    code: str, body: SessionUpdate, db: SessionDep, publisher: PublisherDep, _: PresenterDep
) -> SessionPublic:
    """Rename the venue, mark a rehearsal (left out of pooled results), end a session (no more
    votes or phase changes) or take it up again, set the small-cell threshold (``min_cell``,
    default 5: breakdown cells with fewer people are hidden)."""
    given = body.model_dump(exclude_unset=True)
    if not given or any(value is None for value in given.values()):
        raise Invalid(
            "give at least one of 'venue', 'rehearsal', 'ended', 'min_cell', none of them null",
            code="empty_update",
        )
    poll = sessions.update_session(db, code, publisher, **given)
    return sessions.session_public(db, poll)


@router.delete(
    "/sessions/{code}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(*PRESENTER, 404, 413, 422, 503),
)
def delete_session(code: str, db: SessionDep, publisher: PublisherDep, _: PresenterDep) -> Response:
    """The session, its participants and their answers are gone (export them first)."""
    sessions.delete_session(db, code, publisher)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/sessions/{code}/phases/{phase_id}/{action}",
    response_model=SessionPublic,
    responses=errors(*PRESENTER, 404, 409, 413, 422, 503),
)
def change_phase(
    code: str,
    phase_id: str,
    action: PhaseAction,
    db: SessionDep,
    publisher: PublisherDep,
    _: PresenterDep,
    seconds: Annotated[int | None, Query(ge=1, le=voting.MAX_COUNTDOWN_SECONDS)] = None,
) -> SessionPublic:
    """``seconds`` (with ``open``) starts a countdown that closes the phase at zero."""
    poll = voting.change_phase(db, code, phase_id, action, publisher, seconds=seconds)
    return sessions.session_public(db, poll)


@votes.post(
    "/sessions/{code}/votes",
    response_model=VoteOut,
    responses=errors(400, 403, 404, 409, 413, 422, 429, 503),
)
async def vote(
    code: str,
    body: Annotated[VoteIn, Body()],
    request: Request,
    intake: VoteIntakeDep,
) -> Response:
    """Answer one phase as the participant in this session's cookie (set here when absent).

    Answered only after the vote is committed (group commit, see app.vote_writer). Too many
    votes from one participant, or new participants from one address, in a short time: 429."""
    return await _cast(request, code, body, intake)


async def quick_vote(request: Request) -> Response:
    """``vote`` ahead of the app's layers (``app.routes.busy``), for a JSON body that reads as
    a vote the way FastAPI reads it (``json.loads``, then the model): about a third of an API
    vote's CPU time was FastAPI's routing and resolution. Any other body goes on to ``vote``,
    whose answer to it (a 422 and its details) stays the documented one."""
    try:
        body = await request_body(request)
    except ClientDisconnect:  # the body was cut short: nobody is left to answer
        raise HTTPException(400, "the request body was cut short") from None
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise PassOn(body)
    try:
        cast = VoteIn.model_validate(json.loads(body))
    except (ValueError, RecursionError):  # a ValidationError is a ValueError
        raise PassOn(body) from None
    state = request.app.state
    intake = VoteIntake(state.vote_writer, state.limits)
    return await _cast(request, request.path_params["code"], cast, intake)


quick_routes = [
    Route(
        "/api/v1/sessions/{code}/votes",
        Endpoint(quick_vote),
        methods=["POST"],
        include_in_schema=False,
    )
]
"""The API's vote as a busy route (``app.routes.busy``); ``vote`` documents it."""


async def _cast(request: Request, code: str, body: VoteIn, intake: VoteIntake) -> Response:
    code = sessions.normalize_code(code)
    token = participant_token(request, code)
    new_token = token is None
    if token is None:
        token = new_participant_token()
    else:
        intake.limits.vote(code, token)
    intake.limits.first_vote(request.scope, code, token)
    stored = await intake.writer.submit(code, token, body)
    # Drawn here, not by response_model: the answer is already a VoteOut, and validating it
    # again cost a room's burst more than the write.
    response = Response(stored.model_dump_json(), media_type="application/json")
    if new_token:
        set_participant_cookie(request, response, code, token)
    return response


@router.delete(
    "/sessions/{code}/me",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(403, 404, 413, 422, 503),
)
def erase_me(code: str, request: Request, db: SessionDep, publisher: PublisherDep) -> Response:
    """Erase this phone's answers in the session (the participant in its cookie) and its
    participant row; live counts drop at once. Nothing stored for this phone is no error:
    204 all the same. The cookie stays, so the phone can answer again (as a new participant)."""
    code = sessions.normalize_code(code)
    retention.erase_participant(db, code, participant_token(request, code), publisher)
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers={"Cache-Control": "no-store"})


@router.get(
    "/sessions/{code}/export.csv",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "One row per answer."},
        **errors(*PRESENTER, 404, 422, 503),
    },
)
def export_csv(
    code: str, db: SessionDep, _: PresenterDep, bom: Annotated[bool, Query()] = False
) -> StreamingResponse:
    """Tidy CSV, one row per response (columns in API.md), formula-safe. ``bom=1``: with a
    byte-order mark, for Excel. An unlinked session's CSV has its published counts instead, one
    row per count (``session,venue,talk,held_on,linked,source,phase,from_choice,choice,count``,
    ``linked`` false)."""
    poll = sessions.get_session(db, code)
    lines = list(export.session_csv_lines(db, poll))
    if bom:
        lines.insert(0, export.UTF8_BOM)
    return StreamingResponse(
        iter(lines),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{export.csv_filename(poll.code, bom)}"'
        },
    )


@router.get("/sessions/{code}/export.json", responses=errors(*PRESENTER, 404, 422, 503))
def export_json(code: str, db: SessionDep, _: PresenterDep) -> Response:
    poll = sessions.get_session(db, code)
    return Response(
        json.dumps(export.session_document(db, poll), ensure_ascii=False, indent=2),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="beliefgap-{poll.code}.json"'},
    )


@router.get(
    "/sessions/{code}/text-answers",
    response_model=moderation.TextAnswersOut,
    responses=errors(*PRESENTER, 404, 422, 503),
)
def text_answers(
    code: str,
    db: SessionDep,
    _: PresenterDep,
    state: TextState = TextState.pending,
    phase: Annotated[str | None, Query(max_length=64)] = None,
) -> moderation.TextAnswersOut:
    """The session's open-text answers in ``state`` (the moderation queue: ``pending``, the
    default), oldest first, at most 200, and how many are in each state."""
    poll = sessions.get_session(db, code)
    return moderation.queue_json(moderation.queue(db, poll, state, phase))


@router.post(
    "/sessions/{code}/text-answers/moderate",
    response_model=moderation.ModerateOut,
    responses=errors(400, *PRESENTER, 404, 413, 422, 503),
)
def moderate_text_answers(
    code: str,
    body: moderation.ModerateIn,
    db: SessionDep,
    publisher: PublisherDep,
    _: PresenterDep,
) -> moderation.ModerateOut:
    """Move answers (their ``id``) to ``shown``, ``hidden`` or back to ``pending``; the cloud on
    the projector and the phones follows. An id not of this session refuses the whole move."""
    poll = sessions.get_session(db, code)
    return moderation.ModerateOut(moved=moderation.move(db, poll, body.ids, body.state, publisher))
