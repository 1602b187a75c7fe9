"""Results gathered from the database: counts for every live tick, a session's answers, a talk's
sessions.

Counting is a ``GROUP BY`` in SQL (``phase_results``, cheap enough for every live tick); the full
analysis (``session_results``, ``talk_results``) reads the answers in one query and hands them to
``app.results.views`` (and through it to ``app.stats``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from app import formats, stats
from app.models import PollSession, Response, SessionTotal, Talk, TextAnswer, TextState
from app.published import Published, published_counts
from app.results.views import (
    PhaseInfo,
    PhaseResult,
    SessionMeta,
    SessionResults,
    TalkResults,
    _with_actual_shares,
    build_session_results,
    build_talk_results,
    make_phase_result,
    own_phase_result,
)
from app.sessions import (
    SessionPhaseView,
    session_phases,
    session_talk,
    session_talks,
    sessions_phases,
)


def info_from_view(view: SessionPhaseView) -> PhaseInfo:
    phase = view.phase
    return PhaseInfo(
        spec=stats.PhaseSpec(
            key=phase.key,
            kind=phase.kind.value,
            options=tuple(o.key for o in view.options),
            of_key=phase.of_key,
            holds=tuple(phase.holds),
            min_value=phase.min_value,
            max_value=phase.max_value,
            answer=phase.answer,
        ),
        questions=dict(phase.questions),
        option_labels={o.key: dict(o.labels) for o in view.options},
        state=view.effective_state.value,
        revealed=view.state.revealed,
        revealed_at=view.state.revealed_at,
    )


def phase_results(
    db: Session, poll: PollSession, views: Sequence[SessionPhaseView] | None = None
) -> list[PhaseResult]:
    """Every phase of the session in talk order, with its counts (one query for all phases);
    ``views``: the session's phases when the caller holds them (the live updates' cache)."""
    if views is None:
        views = session_phases(db, poll)
    counts: dict[tuple[int, int | None], int] = {}
    tallies = (
        select(SessionTotal.phase_id, SessionTotal.option_id, SessionTotal.count).where(
            SessionTotal.session_id == poll.id
        )
        if poll.unlinked  # published totals
        else select(Response.phase_id, Response.option_id, func.count())
        .where(Response.session_id == poll.id)
        .group_by(col(Response.phase_id), col(Response.option_id))
    )
    for phase_id, option_id, n in db.exec(tallies):
        counts[(phase_id, option_id)] = n
    estimate_ids = [v.phase.id for v in views if v.phase.min_value is not None]
    values: dict[int, list[float]] = {pid: [] for pid in estimate_ids if pid is not None}
    if estimate_ids:
        for phase_id, value in db.exec(
            select(Response.phase_id, Response.value).where(
                Response.session_id == poll.id, col(Response.phase_id).in_(estimate_ids)
            )
        ):
            if value is not None:
                values[phase_id].append(value)
    own_ids = [v.phase.id for v in views if formats.by_name(v.phase.answer).own_results]
    own: dict[int, list[Any]] = {pid: [] for pid in own_ids if pid is not None}
    text_ids = [v.phase.id for v in views if v.phase.answer == "text" and v.phase.id is not None]
    for phase_id, by_phone in text_answers(db, poll.id or 0, text_ids).items():
        own[phase_id] = list(by_phone.values())
    own_ids = [pid for pid in own_ids if pid not in text_ids]
    if own_ids:
        for phase_id, payload in db.exec(
            select(Response.phase_id, Response.payload).where(
                Response.session_id == poll.id, col(Response.phase_id).in_(own_ids)
            )
        ):
            if payload is not None:
                own[phase_id].append(payload)
    results = []
    for view in views:
        info = info_from_view(view)
        pid = view.phase.id or 0
        if pid in own:
            results.append(own_phase_result(info, {str(i): a for i, a in enumerate(own[pid])}))
        elif info.spec.is_estimate:
            answers = values.get(pid, [])
            results.append(
                make_phase_result(info, stats.estimate_stats(info.spec, answers), answers)
            )
        else:
            tally = {o.key: counts.get((pid, o.id), 0) for o in view.options}
            results.append(make_phase_result(info, stats.option_stats(info.spec.key, tally)))
    return _with_actual_shares(results)


def text_answers(
    db: Session, session_id: int, phase_ids: Sequence[int]
) -> dict[int, dict[int, list[tuple[str, str]]]]:
    """phase id -> participant id -> its open-text answers as ``(text, state)``, in slot order.
    The text of an answer that is not shown is never read: it is "" here, so no summary, chart
    or export built from these can show it."""
    out: dict[int, dict[int, list[tuple[str, str]]]] = {pid: {} for pid in phase_ids}
    if not phase_ids:
        return out
    shown_text = case((col(TextAnswer.state) == TextState.shown, col(TextAnswer.text)), else_="")
    query = (
        sa_select(
            col(TextAnswer.phase_id),
            col(TextAnswer.participant_id),
            shown_text,
            col(TextAnswer.state),
        )
        .where(col(TextAnswer.session_id) == session_id, col(TextAnswer.phase_id).in_(phase_ids))
        .order_by(col(TextAnswer.participant_id), col(TextAnswer.slot))
    )
    for phase_id, participant_id, text, state in db.execute(query):
        state = state.value if isinstance(state, TextState) else str(state)
        out[phase_id].setdefault(participant_id, []).append((text, state))
    return out


def _answers(db: Session, session_ids: Sequence[int]) -> dict[int, dict[str, dict[str, Any]]]:
    """session id -> phase key -> participant id -> option key or value (one query each)."""
    from app.models import Phase, PhaseOption, SessionPhase

    out: dict[int, dict[str, dict[str, Any]]] = {sid: {} for sid in session_ids}
    if not session_ids:
        return out
    # Columns, not Response objects: a room of 2,000 has 8,000 answers, and building an ORM
    # object for each took most of the time (the phones' results read this while votes arrive).
    # One query per session (on its index): a talk has a handful.
    for session_id in session_ids:
        query = (
            sa_select(
                col(Response.participant_id),
                col(Response.value),
                col(Response.payload),
                col(Phase.key),
                col(PhaseOption.key),
            )
            .join(Phase, col(Phase.id) == Response.phase_id)
            .join(PhaseOption, col(PhaseOption.id) == Response.option_id, isouter=True)
            .where(col(Response.session_id) == session_id)
        )
        for participant_id, value, payload, phase_key, option_key in db.execute(query):
            answer = option_key if option_key is not None else value
            if answer is None:
                answer = payload
            if answer is not None:
                out[session_id].setdefault(phase_key, {})[str(participant_id)] = answer
        text_phases = dict(  # the session's open-text phases (a handful of rows, indexed)
            db.execute(
                sa_select(col(Phase.id), col(Phase.key))
                .join(SessionPhase, col(SessionPhase.phase_id) == Phase.id)
                .where(col(SessionPhase.session_id) == session_id, col(Phase.answer) == "text")
            ).all()
        )
        for phase_id, by_phone in text_answers(db, session_id, list(text_phases)).items():
            out[session_id][text_phases[phase_id]] = {str(p): a for p, a in by_phone.items()}
    return out


def _meta(poll: PollSession, talk: Talk, published: Published | None = None) -> SessionMeta:
    return SessionMeta(
        code=poll.code,
        venue=poll.venue,
        held_on=poll.held_on,
        language=poll.language,
        talk=talk.slug,
        titles=dict(talk.titles),
        unlinked=poll.unlinked,
        source=poll.source,
        transitions=published.transitions if published else {},
        min_cell=poll.min_cell,
    )


def _session_data(
    db: Session,
    poll: PollSession,
    infos: Sequence[PhaseInfo],
    answers: dict[int, dict[str, dict[str, Any]]],
) -> tuple[stats.Dataset, Published | None]:
    """The session's data as the statistics see it: its answers, or an unlinked session's
    published totals (``stats.Dataset.from_totals``, linking nobody)."""
    specs = tuple(i.spec for i in infos)
    if poll.unlinked:
        published = published_counts(db, poll)
        return stats.Dataset.from_totals(specs, published.totals), published
    return stats.Dataset(specs, answers.get(poll.id or 0, {})), None


def session_results(db: Session, poll: PollSession) -> SessionResults:
    talk = session_talk(db, poll)
    assert poll.id is not None
    infos = [info_from_view(v) for v in session_phases(db, poll)]
    answers = {} if poll.unlinked else _answers(db, [poll.id])
    data, published = _session_data(db, poll, infos, answers)
    return build_session_results(infos, data, _meta(poll, talk, published))


@dataclass(frozen=True)
class Pool:
    """Which sessions of a talk its pooled results are built from, and from which of them each
    phase is pooled."""

    polls: list[PollSession]
    """The sessions pooled, oldest first (never a rehearsal)."""
    pooled_from: dict[str, list[str]]
    """Phase id -> codes of the sessions whose talk version asks it as the newest version does."""
    rehearsals: list[PollSession]
    """Rehearsal sessions: listed apart, never pooled."""


def sessions_to_pool(db: Session, talk: Talk) -> Pool:
    """The sessions of a talk that its pooled results are built from, oldest first, and for each
    phase the sessions whose answers to it may be pooled.

    The one place that chooses them, so that the talk's page, its JSON, its charts and its report
    agree: rehearsals are left out (listed apart), and a phase is pooled only over the sessions
    whose talk versions ask it alike (``app.talks.poolable_phases``).
    """
    from app.talks import existing_versions, poolable_phases

    gathered = list(
        db.exec(
            select(PollSession)
            .where(PollSession.talk_id == talk.id)
            .order_by(col(PollSession.held_on), col(PollSession.id))
        )
    )
    polls = [p for p in gathered if not p.rehearsal]
    versions = {v.id: v for v in existing_versions(db, talk)}
    poolable = poolable_phases({v.number: v.content for v in versions.values()})
    pooled_from = {
        key: [p.code for p in polls if versions[p.version_id].number in numbers]
        for key, numbers in poolable.items()
    }
    return Pool(polls, pooled_from, [p for p in gathered if p.rehearsal])


def only_sessions(pool: Pool, codes: Collection[str]) -> Pool:
    """The pool limited to the sessions ``codes`` (a published version of a talk), listing no
    rehearsals."""
    kept = [p for p in pool.polls if p.code in codes]
    pooled_from = {k: [c for c in v if c in codes] for k, v in pool.pooled_from.items()}
    return Pool(kept, pooled_from, [])


def talk_results(db: Session, talk: Talk, only: Collection[str] | None = None) -> TalkResults:
    """``only``: the codes of the pooled sessions to keep (a published version)."""
    pool = sessions_to_pool(db, talk)
    if only is not None:
        pool = only_sessions(pool, only)
    answers = _answers(db, [p.id for p in pool.polls if p.id is not None and not p.unlinked])
    phases = sessions_phases(db, pool.polls)
    talks = session_talks(db, [*pool.polls, *pool.rehearsals])
    gathered = []
    for poll in pool.polls:
        infos = [info_from_view(v) for v in phases[poll.id or 0]]
        data, published = _session_data(db, poll, infos, answers)
        gathered.append((_meta(poll, talks[poll.id or 0], published), infos, data))
    return build_talk_results(
        talk.slug,
        dict(talk.titles),
        list(talk.languages),
        gathered,
        pool.pooled_from,
        rehearsals=[_meta(p, talks[p.id or 0]) for p in pool.rehearsals],
    )
