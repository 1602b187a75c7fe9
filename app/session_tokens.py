"""Per-session capabilities: the read-only view's address, the slide remote's key, and later the
open-text moderator's link.

A token is 128 random bits (22 URL-safe characters); only its SHA-256 is stored
(``SessionToken``), so the plain token is shown once, to the presenter who made it. A session
has at most one live token per purpose: making a new one revokes the old. Revoking publishes a
change of state, so every process closes the streams opened with the old token
(``app.routes.view.RevokedViews`` reads ``live_hashes`` on each change of state).

Looking a token up costs the same whatever the answer: one indexed read by hash for the live
row of that purpose, so an unknown token and a revoked one are refused alike.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, col, select, update

from app import sessions
from app.errors import Invalid
from app.live import Publisher, SessionChanged
from app.models import PollSession, SessionToken, TokenPurpose, utcnow

TOKEN_BYTES = 16
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{22}")
"""What ``new_token`` makes: anything else is refused before the database is asked."""

ANYWHERE = "*"
"""A view's framing that lets any site frame it (an explicit choice, for public talks)."""


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Grant:
    """A live token's session and what the view may be framed by."""

    token_hash: str
    session_id: int
    code: str
    frame_ancestors: str | None


def resolve(db: Session, token: str, purpose: TokenPurpose) -> Grant | None:
    """The session a live token of ``purpose`` opens, or None (malformed, unknown, revoked,
    another purpose: the same None)."""
    if not TOKEN_PATTERN.fullmatch(token):
        return None
    digest = token_hash(token)
    row = db.exec(
        select(SessionToken, PollSession.code)
        .join(PollSession, col(PollSession.id) == SessionToken.session_id)
        .where(
            col(SessionToken.token_hash) == digest,
            col(SessionToken.purpose) == purpose.value,
            col(SessionToken.revoked_at).is_(None),
        )
    ).first()
    if row is None:
        return None
    found, code = row
    return Grant(digest, found.session_id, code, found.frame_ancestors)


def live_hashes(engine: Engine, digests: set[str]) -> set[str]:
    """Which of these token hashes still work (one read for every open view of a process)."""
    if not digests:
        return set()
    with Session(engine) as db:
        rows = db.exec(
            select(SessionToken.token_hash).where(
                col(SessionToken.token_hash).in_(sorted(digests)),
                col(SessionToken.revoked_at).is_(None),
            )
        ).all()
    return set(rows)


def live_token(db: Session, poll: PollSession, purpose: TokenPurpose) -> SessionToken | None:
    """The session's live token of ``purpose`` (its row: the token itself is not kept)."""
    return db.exec(
        select(SessionToken).where(
            col(SessionToken.session_id) == poll.id,
            col(SessionToken.purpose) == purpose.value,
            col(SessionToken.revoked_at).is_(None),
        )
    ).first()


def _revoke_live(db: Session, poll: PollSession, purpose: TokenPurpose) -> int:
    result = db.exec(
        update(SessionToken)
        .where(
            col(SessionToken.session_id) == poll.id,
            col(SessionToken.purpose) == purpose.value,
            col(SessionToken.revoked_at).is_(None),
        )
        .values(revoked_at=utcnow())
    )
    return int(result.rowcount or 0)


def _ended_streams(publisher: Publisher, poll: PollSession) -> None:
    assert poll.id is not None
    publisher.publish(SessionChanged(session_id=poll.id, code=poll.code, phases=True))


def issue(db: Session, code: str, purpose: TokenPurpose, publisher: Publisher) -> str:
    """A new token of ``purpose`` for the session, replacing (revoking) the live one; the view's
    framing carries over. Returns the plain token: it is not kept anywhere."""
    poll = sessions.get_session(db, code)
    old = live_token(db, poll, purpose)
    framing = old.frame_ancestors if old is not None else None
    replaced = _revoke_live(db, poll, purpose)
    token = new_token()
    assert poll.id is not None
    db.add(
        SessionToken(
            session_id=poll.id,
            purpose=purpose.value,
            token_hash=token_hash(token),
            frame_ancestors=framing,
        )
    )
    db.commit()
    if replaced:
        _ended_streams(publisher, poll)
    return token


def revoke(db: Session, code: str, purpose: TokenPurpose, publisher: Publisher) -> bool:
    """Revoke the session's live token of ``purpose``; its open streams end. False: none was
    live."""
    poll = sessions.get_session(db, code)
    revoked = _revoke_live(db, poll, purpose)
    db.commit()
    if revoked:
        _ended_streams(publisher, poll)
    return bool(revoked)


def narrowed_framing(operator: str, chosen: str) -> str | None:
    """The view's framing from the presenter's choice: ``""`` is the operator's list (None),
    ``*`` any site, else a space-separated subset of the operator's sources (``Invalid``
    otherwise: a presenter narrows the list, never widens it except by the explicit ``*``)."""
    sources = chosen.split()
    if not sources:
        return None
    if sources == [ANYWHERE]:
        return ANYWHERE
    allowed = set(operator.split())
    outside = [source for source in sources if source not in allowed]
    if outside:
        raise Invalid(
            f"{outside[0][:100]!r} is not on the operator's list of framing sites",
            code="bad_framing",
        )
    return " ".join(dict.fromkeys(sources))


def set_framing(db: Session, code: str, operator: str, chosen: str) -> None:
    """Who may frame the session's view (``narrowed_framing``); needs a live view token."""
    poll = sessions.get_session(db, code)
    framing = narrowed_framing(operator, chosen)
    row = live_token(db, poll, TokenPurpose.view)
    if row is None:
        raise Invalid("the session has no view address yet", code="no_view_token")
    row.frame_ancestors = framing
    db.add(row)
    db.commit()


def frame_ancestors(operator: str, framing: str | None) -> str:
    """The view's ``frame-ancestors`` sources: the presenter's choice, else the operator's."""
    return operator if framing is None else framing
