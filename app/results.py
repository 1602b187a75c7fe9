"""What a session's answers add up to, gathered from the database for pages, the API and live
updates. Counting is a ``GROUP BY`` in SQL; the arithmetic lives in ``app.stats`` (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.models import PhaseKind, PollSession, Response
from app.sessions import SessionPhaseView, session_phases


@dataclass(frozen=True)
class OptionResult:
    key: str
    labels: dict[str, str]
    count: int
    share: float | None
    """Fraction of the phase's n in [0, 1]; None while nobody has answered."""


@dataclass(frozen=True)
class PhaseResult:
    """One phase's tally. Context for ``partials/_phase_result.html``."""

    key: str
    kind: PhaseKind
    questions: dict[str, str]
    state: str
    revealed: bool
    n: int
    options: list[OptionResult] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    """The answers of a % estimate phase (no options), in no particular order."""
    min_value: float | None = None
    max_value: float | None = None

    @property
    def is_estimate(self) -> bool:
        return self.min_value is not None


def phase_results(db: Session, poll: PollSession) -> list[PhaseResult]:
    """Every phase of the session in talk order, with its counts (one query for all phases)."""
    views = session_phases(db, poll)
    counts: dict[tuple[int, int | None], int] = {}
    for phase_id, option_id, n in db.exec(
        select(Response.phase_id, Response.option_id, func.count())
        .where(Response.session_id == poll.id)
        .group_by(col(Response.phase_id), col(Response.option_id))
    ):
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
    return [_phase_result(view, counts, values) for view in views]


def _phase_result(
    view: SessionPhaseView,
    counts: dict[tuple[int, int | None], int],
    values: dict[int, list[float]],
) -> PhaseResult:
    phase = view.phase
    assert phase.id is not None
    if phase.min_value is not None:
        answers = values.get(phase.id, [])
        n = len(answers)
        options: list[OptionResult] = []
    else:
        answers = []
        n = sum(counts.get((phase.id, o.id), 0) for o in view.options)
        options = [
            OptionResult(
                key=o.key,
                labels=o.labels,
                count=counts.get((phase.id, o.id), 0),
                share=counts.get((phase.id, o.id), 0) / n if n else None,
            )
            for o in view.options
        ]
    return PhaseResult(
        key=phase.key,
        kind=phase.kind,
        questions=phase.questions,
        state=view.effective_state.value,
        revealed=view.state.revealed,
        n=n,
        options=options,
        values=answers,
        min_value=phase.min_value,
        max_value=phase.max_value,
    )


@dataclass(frozen=True)
class SessionResults:
    """Everything a results view of one session shows. ``gap`` and ``shift`` are None when the
    talk or the data has no such pair."""

    phases: list[PhaseResult]
    gap: object | None = None
    shift: object | None = None


def session_results(db: Session, poll: PollSession) -> SessionResults:
    return SessionResults(phases=phase_results(db, poll))
