"""Deleting answers: a phone's own (erase, while its session runs) and every answer older than
the retention period (``beliefgap purge``).

What a purge deletes: the answers given before the cutoff, then the participants left with no
answer. Sessions stay (their venue, date and phase states hold nothing about anyone, and the
presenter's list keeps them, with no answers); a session goes only when the presenter deletes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, func
from sqlmodel import Session, col, select

from app.live import Publisher, SessionChanged
from app.models import Participant, PollSession, Response, utcnow
from app.sessions import get_session


def erase_participant(db: Session, code: str, token: str | None, publisher: Publisher) -> int:
    """Delete this phone's answers in the session and its participant row, and publish the
    change (live counts drop). Returns how many answers went; erasing twice, or a phone that
    never answered, deletes nothing and is no error. Raises NotFound for an unknown session."""
    poll = get_session(db, code)
    assert poll.id is not None
    if token is None:
        return 0
    participant_id = db.exec(
        select(Participant.id).where(Participant.session_id == poll.id, Participant.token == token)
    ).first()
    if participant_id is None:
        return 0
    answers = db.execute(delete(Response).where(col(Response.participant_id) == participant_id))
    db.execute(delete(Participant).where(col(Participant.id) == participant_id))
    db.commit()
    publisher.publish(SessionChanged(session_id=poll.id, code=poll.code, phases=False))
    return int(answers.rowcount or 0)  # type: ignore[attr-defined]


@dataclass
class Purged:
    cutoff: datetime
    answers: int = 0
    participants: int = 0
    sessions: dict[str, int] = field(default_factory=dict)
    """Answers deleted per session code."""


def purge(db: Session, older_than_days: int, *, dry_run: bool = False) -> Purged:
    """Delete (or with ``dry_run`` only count) the answers given more than ``older_than_days``
    days ago and the participants they leave without answers, in one transaction."""
    if older_than_days < 1:
        raise ValueError("the number of days must be 1 or more")
    cutoff = utcnow() - timedelta(days=older_than_days)
    report = Purged(cutoff=cutoff)
    old = col(Response.answered_at) < cutoff
    per_session = db.exec(
        select(PollSession.code, func.count(col(Response.id)))
        .join(PollSession, col(PollSession.id) == Response.session_id)
        .where(old)
        .group_by(col(PollSession.code))
        .order_by(col(PollSession.code))
    ).all()
    report.sessions = {code: int(n) for code, n in per_session}
    report.answers = sum(report.sessions.values())
    # Participants whose every answer is old (or who have none left): gone with them.
    recent = exists().where(
        col(Response.participant_id) == Participant.id, col(Response.answered_at) >= cutoff
    )
    left_over = (col(Participant.joined_at) < cutoff) & ~recent
    report.participants = int(
        db.exec(select(func.count(col(Participant.id))).where(left_over)).one()
    )
    if dry_run:
        return report
    db.execute(delete(Response).where(old))
    db.execute(delete(Participant).where(left_over))
    db.commit()
    return report
