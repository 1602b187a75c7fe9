"""What the presenter's screens show, and the one action they add to the domain: "next".

View-models for the dashboard, the control page and the projector, gathered from the database
with a few grouped queries. No HTTP here: the routes in ``app.routes.presenter`` render these.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import func
from sqlmodel import Session, col, select

from app import i18n
from app.errors import Conflict, NotFound
from app.live import Publisher
from app.models import (
    Participant,
    Phase,
    PhaseState,
    PollSession,
    SessionPhase,
    Talk,
    TalkVersion,
)
from app.results import (
    GapResult,
    PhaseResult,
    SessionResults,
    ShiftResult,
    phase_results,
    session_results,
)
from app.sessions import (
    SessionPhaseView,
    get_session,
    list_talks,
    participant_count,
    pick_language,
    refuse_if_ended,
    session_phases,
    session_talk,
)
from app.talkfile import BUNDLED_DIR
from app.voting import PhaseAction, change_phase


class SessionStatus(enum.StrEnum):
    not_started = "not_started"
    running = "running"
    finished = "finished"


def session_status(states: list[PhaseState]) -> SessionStatus:
    """Not started: every phase pending. Finished: none open and none pending. Else running."""
    if not states or all(s == PhaseState.pending for s in states):
        return SessionStatus.not_started
    if any(s == PhaseState.open for s in states) or any(s == PhaseState.pending for s in states):
        return SessionStatus.running
    return SessionStatus.finished


class SessionFilter(enum.StrEnum):
    """What the dashboard and ``beliefgap session list --state`` list."""

    running = "running"
    """Not ended (whatever its phases)."""
    ended = "ended"
    rehearsal = "rehearsal"


@dataclass(frozen=True)
class SessionOverview:
    code: str
    venue: str
    held_on: date
    language: str
    participants: int
    status: SessionStatus
    talk: str = ""
    rehearsal: bool = False
    ended: bool = False
    unlinked: bool = False
    """Published counts: nothing to run, open or end."""

    def matches(self, state: SessionFilter | None) -> bool:
        if state is None:
            return True
        if state == SessionFilter.ended:
            return self.ended
        if state == SessionFilter.rehearsal:
            return self.rehearsal
        return not self.ended

    @property
    def state_label(self) -> str:
        """The message id of the session's state (``pres_status_...``)."""
        return "ended" if self.ended else self.status.value


@dataclass(frozen=True)
class TalkOverview:
    slug: str
    titles: dict[str, str]
    languages: list[str]
    bundled: bool
    source: str
    phase_count: int
    sessions: list[SessionOverview]

    def title(self, lang: str) -> str:
        return i18n.text_in(self.titles, lang, self.languages)


def talk_overviews(
    db: Session, *, talk: str | None = None, state: SessionFilter | None = None
) -> list[TalkOverview]:
    """Every talk (or the one named) with its sessions (those in ``state``), newest first (four
    queries, whatever the number of sessions)."""
    talks = [t for t in list_talks(db) if talk is None or t.slug == talk]
    polls = db.exec(
        select(PollSession).order_by(
            col(PollSession.held_on).desc(), col(PollSession.created_at).desc()
        )
    ).all()
    participants: dict[int, int] = {
        session_id: n
        for session_id, n in db.exec(
            select(Participant.session_id, func.count()).group_by(col(Participant.session_id))
        )
    }
    states: dict[int, list[PhaseState]] = {}
    for session_id, phase_state in db.exec(select(SessionPhase.session_id, SessionPhase.state)):
        states.setdefault(session_id, []).append(PhaseState(phase_state))
    slugs = {t.id: t.slug for t in talks}
    by_talk: dict[int, list[SessionOverview]] = {}
    for poll in polls:
        assert poll.id is not None
        if poll.talk_id not in slugs:
            continue
        overview = SessionOverview(
            code=poll.code,
            venue=poll.venue,
            held_on=poll.held_on,
            language=poll.language,
            participants=participants.get(poll.id, 0),
            status=session_status(states.get(poll.id, [])),
            talk=slugs[poll.talk_id],
            rehearsal=poll.rehearsal,
            ended=poll.ended,
            unlinked=poll.unlinked,
        )
        if overview.matches(state):
            by_talk.setdefault(poll.talk_id, []).append(overview)
    return [
        TalkOverview(
            slug=talk.slug,
            titles=talk.titles,
            languages=talk.languages,
            bundled=_bundled(talk.source),
            source=talk.source,
            phase_count=_phase_count(db, talk),
            sessions=by_talk.get(talk.id or 0, []),
        )
        for talk in talks
    ]


def _bundled(source: str) -> bool:
    if source.startswith("bundled:"):
        return True
    return Path(source).resolve().parent == BUNDLED_DIR.resolve()


def _phase_count(db: Session, talk: Talk) -> int:
    return db.exec(
        select(func.count())
        .select_from(Phase)
        .join(TalkVersion, col(TalkVersion.id) == Phase.version_id)
        .where(
            Phase.talk_id == talk.id,
            TalkVersion.number == talk.version,
            col(Phase.retired).is_(False),
        )
    ).one()


# --------------------------------------------------------------------------- one session


def current_phase(views: list[SessionPhaseView]) -> SessionPhaseView | None:
    """The phase the room is on: the open one, else the one opened last, else None (nothing
    has started)."""
    for view in views:
        if view.is_open:
            return view
    started = [v for v in views if v.state.opened_at is not None]
    if not started:
        return None
    return max(started, key=lambda v: _aware(v.state.opened_at))


def _aware(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def seconds_left(view: SessionPhaseView, now: datetime | None = None) -> float | None:
    """Seconds until an open phase's countdown closes it, or None without a countdown."""
    if not view.is_open or view.state.closes_at is None:
        return None
    remaining = (_aware(view.state.closes_at) - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, remaining)


def next_pending(views: list[SessionPhaseView]) -> SessionPhaseView | None:
    """The first pending phase after the phase the room is on (or the first pending one)."""
    current = current_phase(views)
    start = views.index(current) + 1 if current is not None else 0
    for view in views[start:]:
        if view.state.state == PhaseState.pending:
            return view
    return next((v for v in views if v.state.state == PhaseState.pending), None)


def next_phase(
    db: Session, code: str, publisher: Publisher, *, seconds: int | None = None
) -> PollSession:
    """Close the open phase (if any) and open the next pending one (with an optional countdown).

    Raises Conflict when nothing is open and nothing is left to open."""
    poll = get_session(db, code)
    refuse_if_ended(poll)
    views = session_phases(db, poll)
    following = next_pending(views)
    open_views = [v for v in views if v.state.state == PhaseState.open]
    if not open_views and following is None:
        raise Conflict("every phase of this session has been asked", code="no_next_phase")
    for view in open_views:
        change_phase(db, poll.code, view.key, PhaseAction.close, publisher)
    if following is not None:
        change_phase(db, poll.code, following.key, PhaseAction.open, publisher, seconds=seconds)
    return poll


@dataclass(frozen=True)
class SessionView:
    """Everything the control page and the projector need about one session."""

    poll: PollSession
    talk: Talk
    lang: str
    """The language the talk's texts are shown in."""
    phases: list[SessionPhaseView]
    results: list[PhaseResult]
    participants: int
    current: SessionPhaseView | None
    following: SessionPhaseView | None

    @property
    def title(self) -> str:
        return i18n.text_in(self.talk.titles, self.lang, self.talk.languages)

    def result(self, key: str) -> PhaseResult | None:
        return next((r for r in self.results if r.key == key), None)

    def question(self, view: SessionPhaseView) -> str:
        return i18n.text_in(view.phase.questions, self.lang)

    def seconds_left(self, view: SessionPhaseView) -> float | None:
        return seconds_left(view)

    @property
    def status(self) -> SessionStatus:
        return session_status([v.effective_state for v in self.phases])


def session_view(db: Session, poll: PollSession, lang: str | None = None) -> SessionView:
    talk = session_talk(db, poll)
    phases = session_phases(db, poll)
    return SessionView(
        poll=poll,
        talk=talk,
        lang=pick_language(talk, lang or poll.language),
        phases=phases,
        results=phase_results(db, poll),
        participants=participant_count(db, poll),
        current=current_phase(phases),
        following=next_pending(phases),
    )


def projector_results(db: Session, poll: PollSession) -> SessionResults:
    """The whole session's results (the gap and the shift slides use them)."""
    return session_results(db, poll)


class Slide(enum.StrEnum):
    """What the projector shows of a phase once it is revealed."""

    gap = "gap"
    """The belief gap (a perceived phase)."""
    shift = "shift"
    """Before and after (a revote)."""
    phase = "phase"
    """The phase's own chart."""
    gap_waits = "gap_waits"
    """The phase's own chart, and a line saying the belief gap is shown when voting closes."""
    shift_waits = "shift_waits"
    """The phase's own chart, and a line saying how views moved is shown when voting closes."""

    @property
    def waits(self) -> bool:
        """Whether a figure of the people linked across phases waits for its phases to close."""
        return self in (Slide.gap_waits, Slide.shift_waits)


def revealed_slide(
    view: SessionPhaseView,
    gap: GapResult | None,
    shift: ShiftResult | None,
    phases: Sequence[SessionPhaseView] = (),
) -> Slide:
    """What Reveal puts on the projector for a phase: a perceived phase shows the belief gap and
    a revote the shift, once there is one; any other phase (and those, until then) its own
    chart. The projector and the control page's preview both ask here, so that the preview is
    what the room will see.

    The gap and the shift are figures of the people who answered both of their phases: redrawn
    after each vote, they would tell that person's pair of answers (docs/methods.md, "Live
    slides"). While either of their phases is open (``phases``: the session's, with their
    states) the phase's own chart is shown instead, its totals being public, with a line saying
    the figure comes when voting closes."""
    kind = view.phase.kind.value
    open_keys = {v.key for v in phases if v.is_open} | ({view.key} if view.is_open else set())
    if kind == "perceived" and gap is not None:
        if open_keys & {gap.stance, gap.perceived}:
            return Slide.gap_waits
        return Slide.gap
    if kind == "revote" and shift is not None:
        if open_keys & {shift.from_phase, shift.to_phase}:
            return Slide.shift_waits
        return Slide.shift
    return Slide.phase


def previewed_phase(view: SessionView, key: str = "") -> SessionPhaseView | None:
    """The phase the control page previews: the one asked for, else the phase the room is on,
    else the first (None for a talk without phases). Raises NotFound for an unknown phase."""
    if key:
        found = next((v for v in view.phases if v.key == key), None)
        if found is None:
            raise NotFound(f"no phase {key!r} in this session", code="unknown_phase")
        return found
    return view.current or (view.phases[0] if view.phases else None)
