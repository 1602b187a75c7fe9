"""Moderating open-text answers: the presenter's queue and moving answers between pending, shown
and hidden. No HTTP: the API and the control page call these.

Every move commits and publishes that the session's answers changed, so the projector's cloud,
the phones' (once revealed) and the control page's queue follow. Only the presenter (and a
moderator) ever reads the text of an answer that is not shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import func, update
from sqlmodel import Session, col, select

from app.errors import Invalid
from app.live import Publisher, SessionChanged
from app.models import Phase, PollSession, TextAnswer, TextState, utcnow

MAX_QUEUE = 200
"""Answers the queue lists at once (the oldest first); the rest wait their turn."""
MAX_MOVE = 500
MAX_ID = 2**63 - 1
"""The largest answer id the databases can hold (a larger one names no answer)."""
"""Answers one move may name."""


@dataclass(frozen=True)
class Queued:
    id: int
    phase: str
    slot: int
    text: str
    state: TextState
    answered_at: datetime


@dataclass(frozen=True)
class Queue:
    answers: list[Queued]
    counts: dict[str, int]
    """state -> how many answers of the session's text phases are in it."""


def queue(
    db: Session,
    poll: PollSession,
    state: TextState = TextState.pending,
    phase: str | None = None,
    limit: int = MAX_QUEUE,
) -> Queue:
    """The session's open-text answers in ``state`` (of one phase, or all), oldest first, with
    the counts of every state."""
    where = [col(TextAnswer.session_id) == poll.id]
    if phase is not None:
        where.append(col(Phase.key) == phase)
    rows = db.exec(
        select(TextAnswer, Phase.key)
        .join(Phase, col(Phase.id) == TextAnswer.phase_id)
        .where(*where, col(TextAnswer.state) == state)
        .order_by(col(TextAnswer.answered_at), col(TextAnswer.id))
        .limit(limit)
    ).all()
    counts = {s.value: 0 for s in TextState}
    for found, n in db.exec(
        select(TextAnswer.state, func.count())
        .join(Phase, col(Phase.id) == TextAnswer.phase_id)
        .where(*where)
        .group_by(col(TextAnswer.state))
    ):
        counts[TextState(found).value] = n
    answers = [
        Queued(a.id or 0, key, a.slot, a.text, TextState(a.state), a.answered_at) for a, key in rows
    ]
    return Queue(answers, counts)


def move(
    db: Session,
    poll: PollSession,
    ids: Sequence[int],
    state: TextState,
    publisher: Publisher,
) -> int:
    """Put the session's answers ``ids`` in ``state``; how many moved. An id of another session
    or of no answer is refused (Invalid) and nothing moves. An answer the blocklist hid is
    moved like any other: the presenter decides."""
    wanted = set(ids)
    if not wanted:
        raise Invalid("name at least one answer", code="no_answers")
    if any(not 1 <= i <= MAX_ID for i in wanted):  # no row has it, and the database's integers
        raise Invalid("no such answer in this session", code="unknown_answer")  # end there
    if len(wanted) > MAX_MOVE:
        raise Invalid(f"at most {MAX_MOVE} answers at once", code="too_many_answers")
    found = db.exec(
        select(func.count()).where(
            col(TextAnswer.session_id) == poll.id, col(TextAnswer.id).in_(wanted)
        )
    ).one()
    if found != len(wanted):
        raise Invalid("no such answer in this session", code="unknown_answer")
    result = db.exec(
        update(TextAnswer)
        .where(
            col(TextAnswer.session_id) == poll.id,
            col(TextAnswer.id).in_(wanted),
            col(TextAnswer.state) != state,
        )
        .values(state=state, decided_at=utcnow())
    )
    db.commit()
    assert poll.id is not None
    publisher.publish(SessionChanged(session_id=poll.id, code=poll.code, phases=False))
    return int(result.rowcount or 0)


# --------------------------------------------------------------------------- the API's shapes


class TextAnswerOut(BaseModel):
    id: int
    phase: str
    slot: int
    text: str
    state: TextState
    answered_at: datetime


class TextAnswersOut(BaseModel):
    """A session's open-text answers in one state (the presenter's queue)."""

    answers: list[TextAnswerOut]
    counts: dict[str, int] = PydanticField(description="state -> answers in it")


class ModerateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[Annotated[int, PydanticField(ge=1, le=MAX_ID)]] = PydanticField(
        min_length=1, max_length=MAX_MOVE
    )
    state: TextState


class ModerateOut(BaseModel):
    moved: int = PydanticField(description="answers whose state changed")


def queue_json(found: Queue) -> TextAnswersOut:
    return TextAnswersOut(
        answers=[
            TextAnswerOut(
                id=a.id,
                phase=a.phase,
                slot=a.slot,
                text=a.text,
                state=a.state,
                answered_at=a.answered_at,
            )
            for a in found.answers
        ],
        counts=found.counts,
    )
