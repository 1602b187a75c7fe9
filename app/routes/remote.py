"""The slide remote: ``/api/v1/remote/...``, moving one session's phases with the session's
remote key (``Authorization: Bearer <key>``, made on the control page) instead of the admin
token, so that a deck on another site can drive the poll (static/js/reveal-beliefgap.js).

The key names its session: no path here takes a session code, so no key reaches another
session, and it opens, closes, reveals and moves to the next phase, nothing else (no hide, no
export, no delete: those keep needing the admin token). Wrong keys count against their address
like wrong admin tokens. A browser on another origin may call these routes (CORS, without
credentials: the key is the only authority, and no cookie is read).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from app import presenter, session_tokens, sessions, voting
from app.db import SessionDep
from app.deps import PublisherDep
from app.errors import DomainError, retry_after
from app.models import SessionPublic, TokenPurpose
from app.routes.docs import errors
from app.session_tokens import Grant

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST",
    "Access-Control-Allow-Headers": "Authorization",
    "Access-Control-Max-Age": "600",
    "Cache-Control": "no-store",
}
"""Any page may call the remote with its key (never with cookies: ``*`` forbids them)."""


class CorsRoute(APIRoute):
    """A route whose every answer, refusals too, carries ``CORS``: a deck on another origin
    reads why it was refused (an unknown phase, a wrong key) instead of a bare network error.
    Refusals are shaped as the app's handlers shape them (``{"detail", "code"}``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def with_cors(request: Request) -> Response:
            response: Response
            try:
                response = await handler(request)
            except DomainError as exc:
                wait = retry_after(exc)
                response = JSONResponse(
                    {"detail": exc.detail, "code": exc.code},
                    exc.status,
                    headers={"Retry-After": str(wait)} if wait is not None else None,
                )
            except HTTPException as exc:
                response = JSONResponse({"detail": exc.detail}, exc.status_code, exc.headers)
            except RequestValidationError as exc:
                detail = [
                    {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type")}
                    for e in exc.errors()
                ]
                response = JSONResponse({"detail": detail}, 422)
            response.headers.update(CORS)
            return response

        return with_cors


router = APIRouter(prefix="/api/v1/remote", tags=["remote"], route_class=CorsRoute)


class RemoteAction(enum.StrEnum):
    """What a remote key may do to a phase."""

    open = "open"
    close = "close"
    reveal = "reveal"


def remote_grant(request: Request, db: SessionDep) -> Grant:
    """Dependency: the session of the remote key in ``Authorization: Bearer``; 401 without
    one, 403 for a key that opens nothing (unknown, revoked, another kind of token), counted
    against the address like a wrong admin token (429 once they are used up)."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="the remote needs its key (Authorization: Bearer ...)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    limits = request.app.state.limits
    limits.token_allowed(request.scope)
    grant = session_tokens.resolve(db, key, TokenPurpose.remote)
    if grant is None:
        limits.token_failed(request.scope)
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="the remote key is not valid")
    return grant


RemoteDep = Annotated[Grant, Depends(remote_grant)]
REMOTE_ERRORS = errors(401, 403, 404, 409, 413, 422, 429, 503)


def _answer(db: SessionDep, code: str) -> SessionPublic:
    return sessions.session_public(db, sessions.get_session(db, code))


@router.get("", response_model=SessionPublic, responses=REMOTE_ERRORS)
def remote_session(db: SessionDep, grant: RemoteDep) -> SessionPublic:
    """The key's session and its phases' states."""
    return _answer(db, grant.code)


@router.post("/phases/{phase_id}/{action}", response_model=SessionPublic, responses=REMOTE_ERRORS)
def remote_phase(
    phase_id: str,
    action: RemoteAction,
    db: SessionDep,
    publisher: PublisherDep,
    grant: RemoteDep,
    seconds: Annotated[int | None, Query(ge=1, le=voting.MAX_COUNTDOWN_SECONDS)] = None,
) -> SessionPublic:
    """Open (``seconds``: with a countdown), close or reveal one phase of the key's session."""
    voting.change_phase(
        db, grant.code, phase_id, voting.PhaseAction(action.value), publisher, seconds=seconds
    )
    return _answer(db, grant.code)


@router.post("/next", response_model=SessionPublic, responses=REMOTE_ERRORS)
def remote_next(
    db: SessionDep,
    publisher: PublisherDep,
    grant: RemoteDep,
    seconds: Annotated[int | None, Query(ge=1, le=voting.MAX_COUNTDOWN_SECONDS)] = None,
) -> SessionPublic:
    """Close the open phase and open the next pending one."""
    presenter.next_phase(db, grant.code, publisher, seconds=seconds)
    return _answer(db, grant.code)


@router.options("", include_in_schema=False)
@router.options("/{rest:path}", include_in_schema=False)
def preflight(rest: str = "") -> Response:
    """A browser asks before sending the key from another origin."""
    return Response(status_code=status.HTTP_204_NO_CONTENT)
