"""A prediction locked before the talk: what the presenter expects of a session's room, written
before its first phase opens, hashed, never changed; amendable only by an amendment that is
itself time-stamped, hashed and shown.

Each entry is stored with the canonical JSON text it was hashed from (keys sorted, no spaces,
UTF-8, whole numbers without a decimal point), so a reader can recompute its SHA-256 from the
package or the API alone; an amendment's text names the hash of the entry before it.

``checks`` sets the latest entry's claims against the room's figures (the gap's own share,
perceived share and their difference, as the results show them).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.errors import Conflict, Invalid, NotFound
from app.models import (
    ClaimCheck,
    PollSession,
    Prediction,
    PredictionEntry,
    PredictionIn,
    PredictionOut,
    SessionPhase,
)

CLAIMS = ("own_below", "own_above", "perceived_below", "perceived_above", "gap")
FORMAT = 1
"""The version of the canonical text's layout."""


def _plain(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def canonical_text(
    code: str,
    number: int,
    claims: dict[str, float],
    text: str,
    created_at: datetime,
    previous: str | None,
) -> str:
    """The JSON text an entry's hash is computed from."""
    moment = created_at.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    document = {
        "format": FORMAT,
        "session": code,
        "number": number,
        "claims": {k: _plain(v) for k, v in claims.items()},
        "text": text,
        "created_at": moment,
        "previous": previous,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def entries(db: Session, poll: PollSession) -> list[Prediction]:
    return list(
        db.exec(
            select(Prediction)
            .where(Prediction.session_id == poll.id)
            .order_by(col(Prediction.number))
        )
    )


def phase_opened(db: Session, poll: PollSession) -> bool:
    """Whether any phase of the session has opened (or is past pending)."""
    states = db.exec(
        select(SessionPhase.state, SessionPhase.opened_at).where(SessionPhase.session_id == poll.id)
    ).all()
    return any(opened is not None or state != "pending" for state, opened in states)


def _write(
    db: Session, poll: PollSession, number: int, given: PredictionIn, previous: str | None
) -> Prediction:
    now = datetime.now(UTC).replace(microsecond=0)
    claims = given.claims()
    text = canonical_text(poll.code, number, claims, given.text, now, previous)
    entry = Prediction(
        session_id=poll.id or 0,
        number=number,
        claims={k: _plain(v) for k, v in claims.items()},
        text=given.text,
        after_opening=number > 0 and phase_opened(db, poll),
        canonical=text,
        sha256=sha256(text),
        created_at=now,
    )
    db.add(entry)
    try:
        db.commit()
    except IntegrityError as exc:  # two at once: the other one was first
        db.rollback()
        raise Conflict(
            "the prediction changed meanwhile: load it again", code="prediction_changed"
        ) from exc
    db.refresh(entry)
    return entry


def lock(db: Session, poll: PollSession, given: PredictionIn) -> Prediction:
    """Lock the session's prediction: only before its first phase opens, only once."""
    if poll.ended:
        raise Conflict("the session has ended", code="session_ended")
    if entries(db, poll):
        raise Conflict(
            "the prediction is locked: it cannot be changed, only amended (visibly)",
            code="prediction_locked",
        )
    if phase_opened(db, poll):
        raise Conflict(
            "a prediction can only be locked before the session's first question opens",
            code="prediction_too_late",
        )
    return _write(db, poll, 0, given, None)


def amend(db: Session, poll: PollSession, given: PredictionIn) -> Prediction:
    """Add an amendment: its claims replace the latest ones, and it says why (``text``)."""
    found = entries(db, poll)
    if not found:
        raise NotFound("the session has no prediction to amend", code="no_prediction")
    if not given.text:
        raise Invalid("an amendment must say why (text)", code="amendment_without_text")
    return _write(db, poll, found[-1].number + 1, given, found[-1].sha256)


# --------------------------------------------------------------------------- against results


@dataclass(frozen=True)
class Figures:
    """The room's figures a prediction speaks of, in percent (gap: percentage points)."""

    own: float | None = None
    perceived: float | None = None
    gap: float | None = None


def figures_of(gap: dict[str, Any] | None) -> Figures:
    """From a results JSON ``gap`` (``app.results.gap_json``)."""
    if not gap:
        return Figures()
    return Figures(
        own=100 * gap["self_share"] if gap.get("self_n") else None,
        perceived=100 * gap["perceived_share"] if gap.get("perceived_n") else None,
        gap=100 * gap["difference"] if gap.get("difference") is not None else None,
    )


def checks(claims: dict[str, Any], figures: Figures) -> list[ClaimCheck]:
    out = []
    for claim in CLAIMS:
        if claim not in claims:
            continue
        predicted = float(claims[claim])
        margin = float(claims["gap_margin"]) if claim == "gap" else None
        what = claim.partition("_")[0]
        result = {"own": figures.own, "perceived": figures.perceived, "gap": figures.gap}[what]
        held: bool | None = None
        if result is not None:
            if claim.endswith("_below"):
                held = result < predicted
            elif claim.endswith("_above"):
                held = result > predicted
            else:
                held = abs(result - predicted) <= (margin or 0)
        out.append(
            ClaimCheck(claim=claim, predicted=predicted, margin=margin, result=result, held=held)
        )
    return out


def entry_model(entry: Prediction) -> PredictionEntry:
    return PredictionEntry(
        number=entry.number,
        claims=dict(entry.claims),
        text=entry.text,
        created_at=entry.created_at,
        after_opening=entry.after_opening,
        canonical=entry.canonical,
        sha256=entry.sha256,
    )


def record(
    poll: PollSession, found: list[Prediction], gap: dict[str, Any] | None
) -> PredictionOut | None:
    """The session's prediction with its amendments and the latest claims against the room."""
    if not found:
        return None
    return PredictionOut(
        session=poll.code,
        entries=[entry_model(e) for e in found],
        checks=checks(found[-1].claims, figures_of(gap)),
    )


def session_record(db: Session, poll: PollSession) -> PredictionOut | None:
    from app import results

    found = entries(db, poll)
    if not found:
        return None
    gap = results.session_results_json(results.session_results(db, poll)).get("gap")
    return record(poll, found, gap)


def talk_records(
    db: Session, polls: list[PollSession], found: list[Any]
) -> list[tuple[PollSession, PredictionOut]]:
    """Each pooled session's prediction against its own result (``found``: the talk results'
    ``sessions``, in the same order as ``polls``); sessions without one are left out."""
    from app import results

    out = []
    for poll, session in zip(polls, found, strict=True):
        made = record(poll, entries(db, poll), results.gap_json(session.gap))
        if made is not None:
            out.append((poll, made))
    return out
