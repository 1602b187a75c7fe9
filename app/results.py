"""What a session's (or a talk's) answers add up to, gathered from the database for pages, the API,
live updates and exports.

Counting is a ``GROUP BY`` in SQL (``phase_results``, cheap enough for every live tick); the full
analysis (``session_results``, ``talk_results``) reads the session's answers in one query and
hands them to ``app.stats``. ``build_session_results`` needs no database, so an exported file read
back gives the very same results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import TYPE_CHECKING, Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from app import stats
from app.models import PhaseKind, PollSession, Response, Talk
from app.sessions import SessionPhaseView, session_phases, session_talk

if TYPE_CHECKING:
    from app.charts import Chart


def pick(texts: Mapping[str, str], lang: str) -> str:
    """A text in the wanted language, else the first one there is."""
    if lang in texts:
        return texts[lang]
    return next(iter(texts.values()), "")


# --------------------------------------------------------------------------- one phase


@dataclass(frozen=True)
class OptionResult:
    key: str
    labels: dict[str, str]
    count: int
    share: float | None
    """Fraction of the phase's n in [0, 1]; None while nobody has answered."""
    ci95: tuple[float, float] | None = None
    """Wilson 95% interval of the share (per option, not simultaneous)."""

    def label(self, lang: str) -> str:
        return pick(self.labels, lang)


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
    of_key: str | None = None
    holds: tuple[str, ...] = ()
    mean: float | None = None
    median: float | None = None
    ci95: tuple[float, float] | None = None
    """For a % estimate: Student t 95% interval of the mean."""
    histogram: list[stats.Bin] = field(default_factory=list)
    actual_share: float | None = None
    """For a % estimate of a stance: the share of the room that holds the view (0-1)."""

    @property
    def is_estimate(self) -> bool:
        return self.min_value is not None

    def question(self, lang: str) -> str:
        return pick(self.questions, lang)

    def chart(self, lang: str) -> Chart:
        from app import charts

        return charts.phase_chart(self, lang)


@dataclass(frozen=True)
class PhaseInfo:
    """A phase as the results need it, from the database or from an exported file."""

    spec: stats.PhaseSpec
    questions: dict[str, str]
    option_labels: dict[str, dict[str, str]]
    state: str = "closed"
    revealed: bool = False


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
        ),
        questions=dict(phase.questions),
        option_labels={o.key: dict(o.labels) for o in view.options},
        state=view.effective_state.value,
        revealed=view.state.revealed,
    )


def make_phase_result(
    info: PhaseInfo, phase: stats.PhaseStats, values: Sequence[float] = ()
) -> PhaseResult:
    spec = info.spec
    common: dict[str, Any] = {
        "key": spec.key,
        "kind": PhaseKind(spec.kind),
        "questions": info.questions,
        "state": info.state,
        "revealed": info.revealed,
        "n": phase.n,
        "min_value": spec.min_value,
        "max_value": spec.max_value,
        "of_key": spec.of_key,
        "holds": spec.holds,
    }
    if spec.is_estimate:
        summary = phase.estimate
        return PhaseResult(
            **common,
            values=list(values),
            mean=summary.mean if summary else None,
            median=summary.median if summary else None,
            ci95=summary.ci95 if summary else None,
            histogram=phase.histogram,
        )
    return PhaseResult(
        **common,
        options=[
            OptionResult(
                key=key,
                labels=info.option_labels.get(key, {"en": key}),
                count=phase.counts.get(key, 0),
                share=phase.shares.get(key),
                ci95=phase.ci95.get(key),
            )
            for key in spec.options
        ],
    )


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
    results = []
    for view in views:
        info = info_from_view(view)
        pid = view.phase.id or 0
        if info.spec.is_estimate:
            answers = values.get(pid, [])
            results.append(
                make_phase_result(info, stats.estimate_stats(info.spec, answers), answers)
            )
        else:
            tally = {o.key: counts.get((pid, o.id), 0) for o in view.options}
            results.append(make_phase_result(info, stats.option_stats(info.spec.key, tally)))
    return _with_actual_shares(results)


def _with_actual_shares(results: list[PhaseResult]) -> list[PhaseResult]:
    """Give each % estimate phase the actual share of the stance it estimates."""
    by_key = {r.key: r for r in results}
    out = []
    for result in results:
        stance = by_key.get(result.of_key or "")
        if result.is_estimate and stance is not None and stance.n and stance.holds:
            share = sum(o.count for o in stance.options if o.key in stance.holds) / stance.n
            result = _replace(result, actual_share=share)
        out.append(result)
    return out


def _replace(result: PhaseResult, **changes: Any) -> PhaseResult:
    from dataclasses import replace

    return replace(result, **changes)


# --------------------------------------------------------------------------- gap and shift


@dataclass(frozen=True)
class GapResult:
    """The belief gap with what a chart needs to name things. Context for ``_gap.html``."""

    stats: stats.Gap
    stance_questions: dict[str, str]
    perceived_questions: dict[str, str]
    option_labels: dict[str, dict[str, str]]
    perceived_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    pooled: bool = False
    """Over several sessions (a talk), not one room."""

    def __getattr__(self, name: str) -> Any:  # gap.difference, gap.self_share, ...
        if name == "stats":
            raise AttributeError(name)
        return getattr(self.stats, name)

    def view_label(self, lang: str) -> str:
        return " / ".join(pick(self.option_labels.get(h, {"en": h}), lang) for h in self.holds)

    def chart(self, lang: str, wide: bool = False) -> Chart:
        from app import charts

        return charts.gap_chart(self, lang, wide)


@dataclass(frozen=True)
class ShiftResult:
    """Stance -> revote with option labels. Context for ``_shift.html``."""

    stats: stats.Shift
    option_labels: dict[str, dict[str, str]]
    from_questions: dict[str, str] = field(default_factory=dict)
    holds: tuple[str, ...] = ()
    """The stance's options that hold the view: the sentence speaks about them first."""

    def __getattr__(self, name: str) -> Any:
        if name == "stats":
            raise AttributeError(name)
        return getattr(self.stats, name)

    def label(self, key: str, lang: str) -> str:
        return pick(self.option_labels.get(key, {"en": key}), lang)

    def chart(self, lang: str) -> Chart:
        from app import charts

        return charts.shift_chart(self, lang)

    def matrix_chart(self, lang: str) -> Chart:
        from app import charts

        return charts.shift_matrix_chart(self, lang)


@dataclass(frozen=True)
class SessionResults:
    """Everything a results view of one session shows. ``gap`` and ``shift`` are None when the
    talk or the data has no such pair."""

    phases: list[PhaseResult]
    gap: GapResult | None = None
    shift: ShiftResult | None = None
    code: str = ""
    venue: str = ""
    held_on: date | None = None
    language: str = "en"
    talk: str = ""
    titles: dict[str, str] = field(default_factory=dict)
    analysis: stats.Analysis | None = None
    infos: list[PhaseInfo] = field(default_factory=list)

    def phase(self, key: str) -> PhaseResult | None:
        return next((p for p in self.phases if p.key == key), None)

    def title(self, lang: str) -> str:
        return pick(self.titles, lang) if self.titles else self.talk

    def scale_chart(self, lang: str) -> Chart | None:
        """Diverging stacked bars when the stance is a 4+ point scale, else None."""
        from app import charts

        likert = [p for p in self.phases if not p.is_estimate and charts.is_likert(p)]
        return charts.scale_chart(likert, lang) if likert else None

    def charts(self, lang: str) -> dict[str, Chart]:
        from app import charts

        return charts.session_charts(self, lang)

    def labels(self, phase_key: str) -> dict[str, dict[str, str]]:
        info = next((i for i in self.infos if i.spec.key == phase_key), None)
        return info.option_labels if info else {}


@dataclass(frozen=True)
class SessionMeta:
    code: str = ""
    venue: str = ""
    held_on: date | None = None
    language: str = "en"
    talk: str = ""
    titles: dict[str, str] = field(default_factory=dict)


def build_session_results(
    infos: Sequence[PhaseInfo],
    data: stats.Dataset,
    meta: SessionMeta | None = None,
    pooled: bool = False,
) -> SessionResults:
    """The results of a session from its phases and answers (no database)."""
    meta = meta or SessionMeta()
    analysis = stats.analyze(data)
    phases = []
    for info in infos:
        values = (
            [float(v) for v in data.of(info.spec.key).values() if not isinstance(v, str)]
            if info.spec.is_estimate
            else []
        )
        phases.append(make_phase_result(info, analysis.phases[info.spec.key], values))
    phases = _with_actual_shares(phases)
    by_key = {i.spec.key: i for i in infos}
    gap = None
    if analysis.gap is not None:
        stance, perceived = by_key[analysis.gap.stance], by_key[analysis.gap.perceived]
        gap = GapResult(
            stats=analysis.gap,
            stance_questions=stance.questions,
            perceived_questions=perceived.questions,
            option_labels=stance.option_labels,
            perceived_labels=perceived.option_labels,
            pooled=pooled,
        )
    shift = None
    if analysis.shift is not None:
        stance = by_key[analysis.shift.from_phase]
        shift = ShiftResult(
            stats=analysis.shift,
            option_labels=stance.option_labels,
            from_questions=stance.questions,
            holds=stance.spec.holds,
        )
    return SessionResults(
        phases=phases,
        gap=gap,
        shift=shift,
        code=meta.code,
        venue=meta.venue,
        held_on=meta.held_on,
        language=meta.language,
        talk=meta.talk,
        titles=meta.titles,
        analysis=analysis,
        infos=list(infos),
    )


def _answers(db: Session, session_ids: Sequence[int]) -> dict[int, dict[str, dict[str, Any]]]:
    """session id -> phase key -> participant id -> option key or value (one query)."""
    from app.models import Phase, PhaseOption

    out: dict[int, dict[str, dict[str, Any]]] = {sid: {} for sid in session_ids}
    if not session_ids:
        return out
    query = (
        select(Response, Phase.key, PhaseOption.key)
        .join(Phase, col(Phase.id) == Response.phase_id)
        .join(PhaseOption, col(PhaseOption.id) == Response.option_id, isouter=True)
        .where(col(Response.session_id).in_(session_ids))
    )
    for response, phase_key, option_key in db.exec(query):
        answer = option_key if option_key is not None else response.value
        if answer is not None:
            by_phase = out[response.session_id].setdefault(phase_key, {})
            by_phase[str(response.participant_id)] = answer
    return out


def _meta(poll: PollSession, talk: Talk) -> SessionMeta:
    return SessionMeta(
        code=poll.code,
        venue=poll.venue,
        held_on=poll.held_on,
        language=poll.language,
        talk=talk.slug,
        titles=dict(talk.titles),
    )


def session_results(db: Session, poll: PollSession) -> SessionResults:
    talk = session_talk(db, poll)
    assert poll.id is not None
    infos = [info_from_view(v) for v in session_phases(db, poll)]
    answers = _answers(db, [poll.id])[poll.id]
    data = stats.Dataset(tuple(i.spec for i in infos), answers)
    return build_session_results(infos, data, _meta(poll, talk))


# --------------------------------------------------------------------------- a talk


@dataclass(frozen=True)
class ForestRow:
    code: str
    venue: str
    estimate: float
    ci95: tuple[float, float]
    n: int
    weight: float | None
    """Relative random-effects weight in the pooled estimate (None when not pooled)."""


@dataclass(frozen=True)
class TalkResults:
    slug: str
    titles: dict[str, str]
    languages: list[str]
    pooled: SessionResults
    sessions: list[SessionResults]
    meta: stats.Pooled | None
    forest: list[ForestRow]
    pooled_from: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Phase id -> the sessions whose answers to it are pooled (those whose talk version asks
    it as the newest version does); empty when every session's answers are pooled."""
    rehearsals: list[SessionMeta] = field(default_factory=list)
    """Sessions marked as rehearsals: listed apart, never pooled."""

    def title(self, lang: str) -> str:
        return pick(self.titles, lang)

    def forest_chart(self, lang: str) -> Chart:
        from app import charts

        return charts.forest_chart(self, lang)


def build_talk_results(
    slug: str,
    titles: dict[str, str],
    languages: list[str],
    sessions: Sequence[tuple[SessionMeta, Sequence[PhaseInfo], stats.Dataset]],
    pooled_from: Mapping[str, Sequence[str]] | None = None,
) -> TalkResults:
    """Each session on its own, all of them pooled (answers merged), and the gap pooled with
    inverse-variance weights (DerSimonian-Laird) over the sessions that have one.

    ``pooled_from`` (phase id -> session codes) limits each phase's pooled answers to those
    sessions (the talk's versions asked it alike, ``app.talks.poolable_phases``); the pooled
    view then names the phase as those sessions asked it."""
    per_session = [build_session_results(infos, data, meta) for meta, infos, data in sessions]
    pool = {key: set(codes) for key, codes in (pooled_from or {}).items()}

    def in_pool(key: str, code: str) -> bool:
        return pooled_from is None or code in pool.get(key, set())

    # The pooled view lists the talk's phases once, in the order of the longest session.
    infos_by_key: dict[str, PhaseInfo] = {}
    for session_meta, infos, _data in sessions:
        for info in infos:
            if in_pool(info.spec.key, session_meta.code):
                infos_by_key.setdefault(
                    info.spec.key,
                    PhaseInfo(info.spec, info.questions, info.option_labels, "closed", False),
                )
    merged = stats.merge(
        {
            meta.code: stats.Dataset(
                data.phases,
                {k: v for k, v in data.answers.items() if in_pool(k, meta.code)},
            )
            for meta, _i, data in sessions
        }
    )
    merged = stats.Dataset(tuple(i.spec for i in infos_by_key.values()), merged.answers)
    pooled = build_session_results(
        list(infos_by_key.values()),
        merged,
        SessionMeta(talk=slug, titles=titles, language=languages[0] if languages else "en"),
        pooled=True,
    )
    usable = [
        r
        for r in per_session
        if r.gap is not None
        and r.gap.difference.se > 0
        and in_pool(r.gap.stance, r.code)
        and in_pool(r.gap.perceived, r.code)
    ]
    meta = None
    weights: dict[str, float] = {}
    if usable:
        variances = [r.gap.difference.se**2 for r in usable if r.gap]
        meta = stats.pool([r.gap.difference.estimate for r in usable if r.gap], variances)
        raw = [1 / (v + meta.tau2) for v in variances]
        weights = {r.code: w / sum(raw) for r, w in zip(usable, raw, strict=True)}
    forest = [
        ForestRow(
            code=r.code,
            venue=r.venue,
            estimate=r.gap.difference.estimate,
            ci95=r.gap.difference.ci95,
            n=r.gap.self_n,
            weight=weights.get(r.code),
        )
        for r in per_session
        if r.gap is not None
    ]
    return TalkResults(
        slug=slug,
        titles=titles,
        languages=languages,
        pooled=pooled,
        sessions=per_session,
        meta=meta,
        forest=forest,
        pooled_from={k: tuple(v) for k, v in (pooled_from or {}).items()},
    )


def talk_results(db: Session, talk: Talk) -> TalkResults:
    gathered = list(
        db.exec(
            select(PollSession)
            .where(PollSession.talk_id == talk.id)
            .order_by(col(PollSession.held_on), col(PollSession.id))
        )
    )
    # Rehearsals are listed apart and never pooled.
    polls = [p for p in gathered if not p.rehearsal]
    rehearsals = [_meta(p, session_talk(db, p)) for p in gathered if p.rehearsal]
    answers = _answers(db, [p.id for p in polls if p.id is not None])
    sessions = []
    for poll in polls:
        infos = [info_from_view(v) for v in session_phases(db, poll)]
        data = stats.Dataset(tuple(i.spec for i in infos), answers.get(poll.id or 0, {}))
        sessions.append((_meta(poll, session_talk(db, poll)), infos, data))
    # Versions of the talk pool a phase only where they ask it alike (app.talks).
    from app.talks import existing_versions, poolable_phases

    versions = {v.id: v for v in existing_versions(db, talk)}
    poolable = poolable_phases({v.number: v.content for v in versions.values()})
    pooled_from = {
        key: [p.code for p in polls if versions[p.version_id].number in numbers]
        for key, numbers in poolable.items()
    }
    found = build_talk_results(
        talk.slug, dict(talk.titles), list(talk.languages), sessions, pooled_from
    )
    return replace(found, rehearsals=rehearsals)


# --------------------------------------------------------------------------- JSON


def _pair(interval: tuple[float, float] | None) -> list[float] | None:
    return [interval[0], interval[1]] if interval is not None else None


def _difference(diff: stats.Difference | None) -> dict[str, Any] | None:
    if diff is None:
        return None
    return {
        "difference": diff.estimate,
        "ci95": _pair(diff.ci95),
        "method": diff.method,
        "n": diff.n,
    }


def phase_json(result: PhaseResult) -> dict[str, Any]:
    base: dict[str, Any] = {"kind": result.kind.value, "n": result.n}
    if result.is_estimate:
        base.update(
            {
                "mean": result.mean,
                "median": result.median,
                "ci95": _pair(result.ci95),
                "ci95_method": "student_t",
                "range": [result.min_value, result.max_value],
                "histogram": [
                    {"lower": b.lower, "upper": b.upper, "count": b.count} for b in result.histogram
                ],
                "actual_share": result.actual_share,
            }
        )
        return base
    base.update(
        {
            "counts": {o.key: o.count for o in result.options},
            "shares": {o.key: o.share for o in result.options},
            "ci95": {o.key: _pair(o.ci95) for o in result.options},
            "ci95_method": "wilson",
        }
    )
    return base


def gap_json(gap: GapResult | None) -> dict[str, Any] | None:
    if gap is None:
        return None
    g = gap.stats
    out: dict[str, Any] = {
        "stance": g.stance,
        "perceived": g.perceived,
        "option": g.option,
        "holds": list(g.holds),
        "kind": g.kind,
        "self_n": g.self_n,
        "self_count": g.self_count,
        "self_share": g.self_share,
        "self_ci95": _pair(g.self_ci95),
        "perceived_n": g.perceived_n,
        "perceived_count": g.perceived_count,
        "perceived_share": g.perceived_share,
        "perceived_ci95": _pair(g.perceived_ci95),
        "difference": g.difference.estimate,
        "ci95": _pair(g.difference.ci95),
        "method": g.difference.method,
        "paired": _difference(g.paired),
        "options": {
            o.key: {
                "self_count": o.self_count,
                "self_share": o.self_share,
                "self_ci95": _pair(o.self_ci95),
                "perceived_count": o.perceived_count,
                "perceived_share": o.perceived_share,
                "perceived_ci95": _pair(o.perceived_ci95),
            }
            for o in g.options
        },
    }
    if g.kind == "estimate":
        fc = g.false_consensus
        out["false_consensus"] = (
            {
                "holders": {"n": fc.holders_n, "mean": fc.holders_mean},
                "others": {"n": fc.others_n, "mean": fc.others_mean},
                "difference": _difference(fc.difference),
            }
            if fc
            else None
        )
        errors = stats.histogram([e * 100 for e in g.errors], -100, 100, 20)
        out["errors_histogram"] = [
            {"lower": b.lower, "upper": b.upper, "count": b.count} for b in errors
        ]
    return out


def shift_json(shift: ShiftResult | None) -> dict[str, Any] | None:
    if shift is None:
        return None
    s = shift.stats
    return {
        "from": s.from_phase,
        "to": s.to_phase,
        "n_paired": s.n_paired,
        "dropped": {"only_from": s.only_first, "only_to": s.only_second, "total": s.dropped},
        "matrix": {a: {b: s.cell(a, b) for b in s.options} for a in s.options},
        "row_shares": {a: {b: s.row_share(a, b) for b in s.options} for a in s.options},
        "changed_share": {a: s.changed_share(a) for a in s.options},
        "changed": s.changed,
        "test": s.test.as_dict() if s.test else None,
        "symmetry": s.symmetry.as_dict() if s.symmetry else None,
    }


def results_json(results: SessionResults) -> dict[str, Any]:
    analysis = results.analysis
    out: dict[str, Any] = {
        "phases": {p.key: phase_json(p) for p in results.phases},
        "gap": gap_json(results.gap),
        "shift": shift_json(results.shift),
        "crosstabs": {},
        "surprisingly_popular": None,
        "too_few_below": stats.MIN_CELL,
    }
    if analysis is not None:
        if analysis.perceived_crosstab is not None:
            tab = analysis.perceived_crosstab.as_dict()
            if analysis.ignorance is not None:
                tab["non_holders"] = analysis.ignorance.non_holders
                tab["non_holders_perceiving_majority"] = analysis.ignorance.perceive_majority
                tab["non_holders_perceiving_majority_share"] = analysis.ignorance.share
            out["crosstabs"]["stance_perceived"] = tab
        if analysis.definition_crosstab is not None:
            out["crosstabs"]["definition_stance"] = analysis.definition_crosstab.as_dict()
        sp = analysis.surprisingly_popular
        if sp is not None:
            out["surprisingly_popular"] = {
                "stance": sp.stance,
                "perceived": sp.perceived,
                "holds": list(sp.holds),
                "actual_share": sp.actual,
                "mean_predicted_share": sp.predicted,
                "margin": sp.margin,
                "answer": sp.answer,
            }
    return out


def session_results_json(results: SessionResults) -> dict[str, Any]:
    return {
        "session": {
            "code": results.code,
            "venue": results.venue,
            "held_on": results.held_on.isoformat() if results.held_on else None,
            "language": results.language,
            "talk": results.talk,
        },
        **results_json(results),
    }


def talk_results_json(results: TalkResults) -> dict[str, Any]:
    pooled = results_json(results.pooled)
    return {
        "talk": {"slug": results.slug, "title": results.titles, "languages": results.languages},
        **pooled,
        "pooled": pooled,
        "meta": {
            "gap": {
                **(results.meta.as_dict() if results.meta else {"k": 0}),
                "sessions": [
                    {
                        "code": row.code,
                        "venue": row.venue,
                        "difference": row.estimate,
                        "ci95": list(row.ci95),
                        "n": row.n,
                        "weight": row.weight,
                    }
                    for row in results.forest
                ],
            }
        },
        "pooled_from": {key: list(codes) for key, codes in results.pooled_from.items()},
        "sessions": [
            {
                "code": s.code,
                "venue": s.venue,
                "held_on": s.held_on.isoformat() if s.held_on else None,
                "language": s.language,
                **results_json(s),
            }
            for s in results.sessions
        ],
        "rehearsals": [r.code for r in results.rehearsals],
    }
