"""Who may do what: the admin token, the presenter cookie, the participant cookie.

Every cookie value is signed with the secret key (itsdangerous), so a phone cannot pose as another
participant or as the presenter by editing a cookie. The participant cookie holds only a random
id, one cookie per session (its name carries the join code), so two sessions cannot be linked.
"""

from __future__ import annotations

import functools
import hmac
import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request, Response, status
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeSerializer

PARTICIPANT_COOKIE_PREFIX = "bg_p_"
PRESENTER_COOKIE = "bg_presenter"
PRESENTER_MAX_AGE = 14 * 24 * 3600
PARTICIPANT_MAX_AGE = 365 * 24 * 3600


def token_matches(given: str, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


# --------------------------------------------------------------------------- participants


def participant_cookie_name(code: str) -> str:
    return PARTICIPANT_COOKIE_PREFIX + code


@functools.lru_cache(maxsize=1024)
def _participant_serializer(secret_key: str, code: str) -> URLSafeSerializer:
    """One per session, kept: every vote of a new phone signs, every vote reads."""
    return URLSafeSerializer(secret_key, salt=f"participant:{code}")


def new_participant_token() -> str:
    return secrets.token_urlsafe(16)


def sign_participant(secret_key: str, code: str, token: str) -> str:
    return str(_participant_serializer(secret_key, code).dumps(token))


def read_participant(secret_key: str, code: str, cookie: str | None) -> str | None:
    """The participant token in a session's cookie, or None if absent or tampered with."""
    if not cookie:
        return None
    try:
        token = _participant_serializer(secret_key, code).loads(cookie)
    except BadSignature:
        return None
    return token if isinstance(token, str) and 0 < len(token) <= 64 else None


# --------------------------------------------------------------------------- presenter


def sign_presenter(secret_key: str) -> str:
    return TimestampSigner(secret_key, salt="presenter").sign("presenter").decode()


def presenter_cookie_valid(secret_key: str, cookie: str | None) -> bool:
    if not cookie:
        return False
    try:
        TimestampSigner(secret_key, salt="presenter").unsign(cookie, max_age=PRESENTER_MAX_AGE)
    except (BadSignature, SignatureExpired):
        return False
    return True


def is_presenter(request: Request) -> bool:
    """True for a valid ``Authorization: Bearer <admin token>`` or presenter cookie."""
    settings = request.app.state.settings
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and token_matches(credentials.strip(), settings.admin_token):
        return True
    return presenter_cookie_valid(settings.secret_key, request.cookies.get(PRESENTER_COOKIE))


def require_presenter(request: Request) -> None:
    """Dependency for the admin API: 401 without credentials, 403 with wrong ones."""
    if is_presenter(request):
        return
    header = request.headers.get("authorization")
    if header:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="the admin token is not valid")
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail="presenter access needs the admin token (Authorization: Bearer ...)",
        headers={"WWW-Authenticate": "Bearer"},
    )


PresenterDep = Annotated[None, Depends(require_presenter)]


class LoginRequired(Exception):
    """Raised by presenter pages for a visitor without the presenter cookie: redirect to login."""


def require_presenter_page(request: Request) -> None:
    """Dependency for presenter HTML pages: a redirect to the login page for anyone else."""
    if not is_presenter(request):
        raise LoginRequired


PresenterPageDep = Annotated[None, Depends(require_presenter_page)]


# --------------------------------------------------------------------------- presenter login


def safe_next(target: str | None, default: str = "/presenter") -> str:
    """A local path to go to after login; anything else (another site, ``//host``, a
    backslash trick, a scheme) gives ``default``."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(ord(ch) < 32 for ch in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def set_presenter_cookie(response: Response, secret_key: str, *, secure: bool) -> None:
    """Log the browser in: a signed, HttpOnly, SameSite=Strict cookie (the token itself is
    never stored in the browser)."""
    response.set_cookie(
        PRESENTER_COOKIE,
        sign_presenter(secret_key),
        max_age=PRESENTER_MAX_AGE,
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/",
    )


def clear_presenter_cookie(response: Response, *, secure: bool) -> None:
    response.delete_cookie(
        PRESENTER_COOKIE, path="/", httponly=True, samesite="strict", secure=secure
    )
