"""Domain errors. Services raise them; the web layer turns each into its HTTP status.

Each carries a ``code`` (stable, for translations and clients) and an English ``detail``.
"""

from __future__ import annotations


class DomainError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    """The request is well-formed but the current state refuses it (e.g. the phase is closed)."""

    status = 409
    code = "conflict"


class Invalid(DomainError):
    """The request names something that does not exist in its context, or a value out of range."""

    status = 422
    code = "invalid"
