"""Recording answers and moving phases: the only place that writes them, commits and publishes.

A vote is one transaction: register the participant (an upsert), check under the write lock that
the phase is open, then upsert the answer on the ``uq_response_once`` constraint. Answering again
replaces the earlier answer in the database itself; nothing is read, changed in Python and
written back, so concurrent answers from one phone can never leave two rows.
"""

from __future__ import annotations

import enum
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import literal_column
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from app.errors import Conflict, Invalid
from app.live import Publisher, SessionChanged
from app.models import (
    Participant,
    Phase,
    PhaseOption,
    PhaseState,
    PollSession,
    Response,
    SessionPhase,
    VoteIn,
    VoteOut,
    utcnow,
)
from app.sessions import get_session, phase_is_open

MAX_COUNTDOWN_SECONDS = 3600


class PhaseAction(enum.StrEnum):
    open = "open"
    close = "close"
    reveal = "reveal"
    hide = "hide"


def _insert(db: Session, table: Any) -> Any:
    """An INSERT that supports ON CONFLICT on this database (SQLite or PostgreSQL)."""
    dialect = db.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table)


def ensure_participant(db: Session, session_id: int, token: str) -> int:
    """The participant id for a cookie token, registering it on first sight. Does not commit."""
    stmt = _insert(db, Participant).values(session_id=session_id, token=token, joined_at=utcnow())
    # DO UPDATE (to the same value) rather than DO NOTHING so that RETURNING always yields the id.
    stmt = stmt.on_conflict_do_update(
        index_elements=["session_id", "token"], set_={"token": stmt.excluded.token}
    ).returning(literal_column("id"))
    return int(db.exec(stmt).scalar_one())


def join(db: Session, code: str, token: str) -> int:
    """Register a phone in a session (idempotent) and commit; returns the participant id."""
    poll = get_session(db, code)
    assert poll.id is not None
    participant_id = ensure_participant(db, poll.id, token)
    db.commit()
    return participant_id


def record_vote(db: Session, code: str, token: str, vote: VoteIn, publisher: Publisher) -> VoteOut:
    """Store one answer, replacing the participant's earlier answer to the same phase.

    Raises NotFound (no such session), Invalid (unknown phase or option, value missing, of the
    wrong kind or out of range) or Conflict (the phase is not open). A refused vote changes
    nothing: the transaction is rolled back whole.
    """
    poll = get_session(db, code)
    assert poll.id is not None
    phase = db.exec(
        select(Phase)
        .join(SessionPhase, col(SessionPhase.phase_id) == Phase.id)
        .where(SessionPhase.session_id == poll.id, Phase.key == vote.phase)
    ).first()
    if phase is None:
        raise Invalid(f"no phase '{vote.phase}' in this session", code="unknown_phase")
    assert phase.id is not None
    option_id, value = _validate_answer(db, phase, vote)

    try:
        # The first statement writes, so the transaction holds the write lock before the phase's
        # state is read below: a close that commits meanwhile cannot slip between check and write.
        participant_id = ensure_participant(db, poll.id, token)
        state = db.exec(
            select(SessionPhase).where(
                SessionPhase.session_id == poll.id, SessionPhase.phase_id == phase.id
            )
        ).one()
        if not phase_is_open(state):
            raise Conflict(f"phase '{phase.key}' is not open", code="phase_not_open")
        answered_at = utcnow()
        stmt = _insert(db, Response).values(
            session_id=poll.id,
            phase_id=phase.id,
            participant_id=participant_id,
            option_id=option_id,
            value=value,
            answered_at=answered_at,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["session_id", "phase_id", "participant_id"],
            set_={
                "option_id": stmt.excluded.option_id,
                "value": stmt.excluded.value,
                "answered_at": stmt.excluded.answered_at,
            },
        )
        db.exec(stmt)
        db.commit()
    except BaseException:
        db.rollback()
        raise
    publisher.publish(SessionChanged(session_id=poll.id, code=poll.code, phases=False))
    return VoteOut(
        session=poll.code,
        phase=phase.key,
        participant=str(participant_id),
        choice=vote.choice if option_id is not None else None,
        value=value,
        answered_at=answered_at,
    )


def _validate_answer(db: Session, phase: Phase, vote: VoteIn) -> tuple[int | None, float | None]:
    if phase.min_value is not None and phase.max_value is not None:
        if vote.choice is not None:
            raise Invalid(
                f"phase '{phase.key}' takes a number ('value'), not a choice", code="wrong_type"
            )
        if vote.value is None or not math.isfinite(vote.value):
            raise Invalid(f"phase '{phase.key}' needs a 'value'", code="missing_value")
        if not phase.min_value <= vote.value <= phase.max_value:
            raise Invalid(
                f"'value' must be between {phase.min_value:g} and {phase.max_value:g}",
                code="out_of_range",
            )
        return None, float(vote.value)
    if vote.value is not None:
        raise Invalid(f"phase '{phase.key}' takes a 'choice', not a number", code="wrong_type")
    if vote.choice is None:
        raise Invalid(f"phase '{phase.key}' needs a 'choice'", code="missing_choice")
    option = db.exec(
        select(PhaseOption).where(
            PhaseOption.phase_id == phase.id,
            PhaseOption.key == vote.choice,
            col(PhaseOption.retired).is_(False),
        )
    ).first()
    if option is None:
        raise Invalid(f"phase '{phase.key}' has no option '{vote.choice}'", code="unknown_option")
    return option.id, None


def change_phase(
    db: Session,
    code: str,
    phase_key: str,
    action: PhaseAction,
    publisher: Publisher,
    *,
    seconds: int | None = None,
) -> PollSession:
    """Open (optionally with a countdown), close, reveal or hide one phase of a session.

    Opening a closed phase reopens it (more time for the room); opening an open one restarts its
    countdown, or stops it when no ``seconds`` are given. Closing a phase that is not open
    is a Conflict. Reveal and hide work in every state.
    """
    poll = get_session(db, code)
    row = db.exec(
        select(SessionPhase)
        .join(Phase, col(Phase.id) == SessionPhase.phase_id)
        .where(SessionPhase.session_id == poll.id, Phase.key == phase_key)
    ).first()
    if row is None:
        raise Invalid(f"no phase '{phase_key}' in this session", code="unknown_phase")
    if seconds is not None and not 1 <= seconds <= MAX_COUNTDOWN_SECONDS:
        raise Invalid(
            f"a countdown must be 1 to {MAX_COUNTDOWN_SECONDS} seconds", code="bad_countdown"
        )
    now = datetime.now(UTC)
    if action == PhaseAction.open:
        row.state = PhaseState.open
        row.opened_at = now
        row.closes_at = now + timedelta(seconds=seconds) if seconds is not None else None
    elif action == PhaseAction.close:
        if row.state != PhaseState.open:
            raise Conflict(f"phase '{phase_key}' is not open", code="phase_not_open")
        row.state = PhaseState.closed
        row.closes_at = None
    elif action == PhaseAction.reveal:
        row.revealed = True
    else:
        row.revealed = False
    db.add(row)
    db.commit()
    assert poll.id is not None
    publisher.publish(SessionChanged(session_id=poll.id, code=poll.code, phases=True))
    return poll


def close_expired(db: Session, publisher: Publisher, now: datetime | None = None) -> list[str]:
    """Close every open phase whose countdown has run out; returns the codes of their sessions."""
    now = now or datetime.now(UTC)
    rows = db.exec(
        select(SessionPhase, PollSession)
        .join(PollSession, col(PollSession.id) == SessionPhase.session_id)
        .where(SessionPhase.state == PhaseState.open, col(SessionPhase.closes_at).is_not(None))
    ).all()
    changed: dict[int, str] = {}
    for state, poll in rows:
        if not phase_is_open(state, now):
            state.state = PhaseState.closed
            db.add(state)
            assert poll.id is not None
            changed[poll.id] = poll.code
    if changed:
        db.commit()
        for session_id, code in changed.items():
            publisher.publish(SessionChanged(session_id=session_id, code=code, phases=True))
    return list(changed.values())
