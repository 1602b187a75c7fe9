"""Reading a package's data from the database (``gather_session``, ``gather_talk``): nothing
is written here, and nothing here writes bytes.

Every answer of ``Response`` is read with its stored ``payload`` (a ranking's order), whose cells
its format writes. Open text, whose answers sit in a table of their own and are moderated, is
read here too when it comes: the shown answers only, into a field of ``Gathered`` of its own,
written as a ``text_answers`` table beside ``responses``."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from app import export, predictions, results
from app.models import (
    Participant,
    Phase,
    PhaseOption,
    PollSession,
    Response,
    SessionPhase,
    Talk,
    TextAnswer,
    TextState,
)
from app.package.base import Answer, Gathered, Text, Total
from app.published import published_counts
from app.results.gather import only_sessions
from app.sessions import session_talk


def _phase_opened(db: Session, poll: PollSession) -> dict[str, datetime | None]:
    return {
        key: opened
        for key, opened in db.exec(
            select(Phase.key, SessionPhase.opened_at)
            .join(Phase, col(Phase.id) == SessionPhase.phase_id)
            .where(SessionPhase.session_id == poll.id)
        )
    }


def _responses(db: Session, poll: PollSession) -> list[Answer]:
    """The session's answers, one query, columns only (a room of 2,000 has 8,000), by phone and
    then phase: a phone's rows sit together, so the zip compresses its pseudonym."""
    opened = _phase_opened(db, poll)
    # more columns than sqlmodel's ``select`` is typed for, so SQLAlchemy's own
    query = (
        sa_select(
            col(Participant.public_id),
            col(Phase.key),
            col(PhaseOption.key),
            col(Response.value),
            col(Response.answered_at),
            col(Response.payload),
        )
        .join(Phase, col(Phase.id) == Response.phase_id)
        .join(Participant, col(Participant.id) == Response.participant_id)
        .join(PhaseOption, col(PhaseOption.id) == Response.option_id, isouter=True)
        .where(col(Response.session_id) == poll.id)
        .order_by(col(Participant.public_id), col(Phase.position))
    )
    code, language = poll.code, poll.language
    return [
        Answer(
            code, public_id, phase, choice, value, language, answered, opened.get(phase), payload
        )
        for public_id, phase, choice, value, answered, payload in db.connection().execute(query)
    ]


def _merge_phases(books: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    phases: dict[str, dict[str, Any]] = {}
    for book in books:
        for phase in book["phases"]:
            if phase["retired"]:
                continue
            phases.setdefault(phase["id"], phase)
    return list(phases.values())


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _session_row(db: Session, poll: PollSession, rows: list[Answer]) -> dict[str, Any]:
    from app.talks import existing_versions

    talk = session_talk(db, poll)
    numbers = {v.id: v.number for v in existing_versions(db, talk)}
    n: dict[str, int] = {}
    for row in rows:
        n[row.phase] = n.get(row.phase, 0) + 1
    participants: int | None = db.exec(
        select(func.count()).select_from(Participant).where(Participant.session_id == poll.id)
    ).one()
    if poll.unlinked:  # published counts: nobody is known, the totals say how many answered
        participants = None
        published = published_counts(db, poll)
        n = {phase: sum(counts.values()) for phase, counts in published.totals.items()}
    return {
        "code": poll.code,
        "venue": poll.venue,
        "held_on": poll.held_on.isoformat(),
        "language": poll.language,
        "talk_version": numbers.get(poll.version_id, 1),
        "rehearsal": poll.rehearsal,
        "ended": poll.ended,
        "linked": not poll.unlinked,  # published counts are no one's rows (``Total``)
        "source": poll.source or "",
        "participants": participants,
        "n": n,
    }


def _latest(polls: Sequence[PollSession], rows: Sequence[Answer]) -> datetime:
    moments = [_aware(p.created_at) for p in polls]
    moments += [_aware(p.ended_at) for p in polls if p.ended_at is not None]
    if rows:
        moments.append(_aware(max(r.answered_at for r in rows)))
    return max(moments).astimezone(UTC).replace(microsecond=0)


def _predictions(
    db: Session, polls: Sequence[PollSession], session_results: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """``predictions.json``: each session's locked prediction and amendments (with the text
    each hash is computed from) and the latest claims against its results; none, no file."""
    found = []
    for poll, figures in zip(polls, session_results, strict=True):
        record = predictions.record(poll, predictions.entries(db, poll), figures.get("gap"))
        if record is not None:
            found.append(record.model_dump(mode="json"))
    return {"predictions.json": {"sessions": found}} if found else {}


def _totals(db: Session, poll: PollSession) -> list[Total]:
    """An unlinked session's published counts as rows of ``totals``: each option's count per
    phase, then each published revote cell (``from_choice`` set)."""
    if not poll.unlinked:
        return []
    published = published_counts(db, poll)
    out = [
        Total(poll.code, phase, None, choice, count)
        for phase, counts in published.totals.items()
        for choice, count in counts.items()
    ]
    out += [
        Total(poll.code, phase, first, then, count)
        for phase, rows in published.transitions.items()
        for first, cells in rows.items()
        for then, count in cells.items()
    ]
    return out


def _texts(db: Session, poll: PollSession) -> list[Text]:
    """The session's shown open-text answers, in talk order, then by phone and slot."""
    query = (
        select(Participant.public_id, Phase.key, TextAnswer.slot, TextAnswer.text)
        .join(Participant, col(Participant.id) == TextAnswer.participant_id)
        .join(Phase, col(Phase.id) == TextAnswer.phase_id)
        .where(TextAnswer.session_id == poll.id, TextAnswer.state == TextState.shown)
        .order_by(col(Phase.position), col(Participant.public_id), col(TextAnswer.slot))
    )
    return [
        Text(poll.code, who, phase, slot + 1, text) for who, phase, slot, text in db.exec(query)
    ]


def gather_session(db: Session, poll: PollSession) -> Gathered:
    talk = session_talk(db, poll)
    rows = _responses(db, poll)
    found = results.session_results(db, poll)
    out = Gathered(
        kind="session",
        name=poll.code,
        slug=talk.slug,
        titles=dict(talk.titles),
        languages=list(talk.languages),
        sessions=[_session_row(db, poll, rows)],
        phases=_merge_phases([export.codebook(db, talk, poll.version_id)]),
        responses=rows,
        results_json=results.session_results_json(found),
        updated=_latest([poll], rows),
        totals=_totals(db, poll),
        texts=_texts(db, poll),
    )
    out.extras = _predictions(db, [poll], [out.results_json])
    return out


def gather_talk(db: Session, talk: Talk, only: Collection[str] | None = None) -> Gathered:
    """``only``: the codes of the pooled sessions to keep (a published version of the talk)."""
    pool = results.sessions_to_pool(db, talk)
    if only is not None:
        pool = only_sessions(pool, only)
    found = results.talk_results(db, talk, only=only)
    rows: list[Answer] = []
    held = []
    totals: list[Total] = []
    texts: list[Text] = []
    for poll in pool.polls:
        own = _responses(db, poll)
        held.append(_session_row(db, poll, own))
        rows.extend(own)
        totals += _totals(db, poll)
        texts += _texts(db, poll)
    versions = sorted({p.version_id for p in pool.polls}, reverse=True)
    books = [export.codebook(db, talk)] + [export.codebook(db, talk, v) for v in versions]
    out = Gathered(
        kind="talk",
        name=talk.slug,
        slug=talk.slug,
        titles=dict(talk.titles),
        languages=list(talk.languages),
        sessions=held,
        phases=_merge_phases(books),
        responses=rows,
        results_json=results.talk_results_json(found),
        updated=_latest(pool.polls, rows) if pool.polls else datetime(2000, 1, 1, tzinfo=UTC),
        totals=totals,
        texts=texts,
    )
    out.extras = _predictions(db, pool.polls, out.results_json["sessions"])
    return out
