"""What the OpenAPI document says about errors: every status an operation can answer with,
each with the ``{"detail": ...}`` body the error handlers send (app/main.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorOut(BaseModel):
    """An error: ``detail`` says what went wrong (a sentence, or for a malformed request the
    list of fields and problems); ``code`` is a stable name for it, when there is one."""

    detail: str | list[dict[str, Any]]
    code: str | None = None


DESCRIPTIONS = {
    400: "The body cannot be read as JSON text (it is not UTF-8).",
    401: "No admin token: send `Authorization: Bearer <token>` or log in as the presenter.",
    403: "The admin token is not valid, or the request came from another site's page.",
    404: "No such session, talk, phase or chart.",
    409: "Refused in the current state (e.g. the phase is not open).",
    413: "The request body is too large.",
    422: "The request is malformed: the detail lists every problem.",
    429: "Too many requests (or too many wrong admin tokens from this address): `Retry-After` "
    "says when to try again.",
    503: "The database cannot be reached, the server is stopping, or a vote could not be "
    "confirmed in time: `Retry-After` says when to try again (a vote sent again is stored once).",
}

PRESENTER = (401, 403, 429)
"""What an operation that needs the admin token adds (429: too many wrong tokens came from the
client's address)."""


ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}


def errors(*codes: int, json_route: bool = True) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status with its description and the error model.

    Errors are JSON whatever the route answers with when it succeeds (app/main.py's handlers);
    FastAPI would file a ``model`` under the route's own media type, so a route that answers
    with HTML or an event stream (``json_route=False``) names the schema itself (the JSON
    routes register it)."""
    if json_route:
        return {code: {"model": ErrorOut, "description": DESCRIPTIONS[code]} for code in codes}
    return {
        code: {
            "description": DESCRIPTIONS[code],
            "content": {"application/json": {"schema": ERROR_REF}},
        }
        for code in codes
    }
