"""The view models of results: what a page, a chart or the JSON shows of a session or a talk.

Built from ``app.stats`` figures without the database (``build_session_results``,
``build_talk_results``), so an exported file read back gives the very same results. Charts take
these (``app.charts``); nothing here draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime
from typing import Any

from app import formats, i18n, stats
from app.models import PhaseKind

pick = i18n.text_in
"""A text in the wanted language, else the first one there is (``app.i18n.text_in``)."""


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
    answer: str = "option"
    """The phase's answer format (``app.formats``)."""
    summary: Any = None
    """What a format that summarises its own answers made of them (a ranking's mean ranks):
    None for ``option`` and ``number`` phases, whose figures are the fields above."""
    revealed_at: datetime | None = None
    """When it was revealed, where known (from the database; not in exports)."""

    @property
    def is_estimate(self) -> bool:
        return self.min_value is not None

    def question(self, lang: str) -> str:
        return pick(self.questions, lang)


@dataclass(frozen=True)
class PhaseInfo:
    """A phase as the results need it, from the database or from an exported file."""

    spec: stats.PhaseSpec
    questions: dict[str, str]
    option_labels: dict[str, dict[str, str]]
    state: str = "closed"
    revealed: bool = False
    revealed_at: datetime | None = None
    """When the phase was revealed (only from the database: an exported file has no time)."""


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
        "revealed_at": info.revealed_at,
        "n": phase.n,
        "min_value": spec.min_value,
        "max_value": spec.max_value,
        "of_key": spec.of_key,
        "holds": spec.holds,
        "answer": spec.answer,
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


def own_phase_result(info: PhaseInfo, answers: Mapping[str, Any]) -> PhaseResult:
    """The result of a phase whose format summarises its own answers (``own_results``)."""
    spec = info.spec
    answer = formats.summarising(spec.answer)
    options = [
        OptionResult(key, info.option_labels.get(key, {"en": key}), 0, None) for key in spec.options
    ]
    return PhaseResult(
        key=spec.key,
        kind=PhaseKind(spec.kind),
        questions=info.questions,
        state=info.state,
        revealed=info.revealed,
        revealed_at=info.revealed_at,
        n=len(answers),
        options=options,
        of_key=spec.of_key,
        answer=spec.answer,
        summary=answer.summarize(spec.options, list(answers.values())),
    )


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
    unlinked: bool = False
    """Published totals: nobody's two answers are linked (``SessionMeta.unlinked``)."""

    def __getattr__(self, name: str) -> Any:  # gap.difference, gap.self_share, ...
        if name == "stats":
            raise AttributeError(name)
        return getattr(self.stats, name)

    def view_label(self, lang: str) -> str:
        return " / ".join(pick(self.option_labels.get(h, {"en": h}), lang) for h in self.holds)


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


@dataclass(frozen=True)
class SessionMeta:
    """Which session: its code, venue, date, language, and its talk's slug and titles."""

    code: str = ""
    venue: str = ""
    held_on: date | None = None
    language: str = "en"
    talk: str = ""
    titles: dict[str, str] = field(default_factory=dict)
    unlinked: bool = False
    """Published counts (totals per phase), not linked answers: no cross-tabs, no shift."""
    source: str = ""
    """Where an unlinked session's counts come from (a citation or a link)."""
    transitions: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    """An unlinked session's published revote rows: phase -> first answer -> then -> count."""
    min_cell: int = stats.MIN_CELL
    """Breakdown cells with fewer people than this are hidden (the session's setting)."""


@dataclass(frozen=True, kw_only=True)
class SessionResults(SessionMeta):
    """Everything a results view of one session shows, with the session's ``SessionMeta``.
    ``gap`` and ``shift`` are None when the talk or the data has no such pair."""

    phases: list[PhaseResult]
    gap: GapResult | None = None
    shift: ShiftResult | None = None
    analysis: stats.Analysis | None = None
    infos: list[PhaseInfo] = field(default_factory=list)

    def phase(self, key: str) -> PhaseResult | None:
        return next((p for p in self.phases if p.key == key), None)

    def title(self, lang: str) -> str:
        return pick(self.titles, lang) if self.titles else self.talk

    def labels(self, phase_key: str) -> dict[str, dict[str, str]]:
        info = next((i for i in self.infos if i.spec.key == phase_key), None)
        return info.option_labels if info else {}

    def option_label(self, phase_key: str, option: str, lang: str) -> str:
        return pick(self.labels(phase_key).get(option, {"en": option}), lang)


def build_session_results(
    infos: Sequence[PhaseInfo],
    data: stats.Dataset,
    meta: SessionMeta | None = None,
    pooled: bool = False,
    also_hidden: stats.Hiding | None = None,
) -> SessionResults:
    """The results of a session from its phases and answers (no database). ``also_hidden``: what
    it hides whatever the counts (``stats.analyze``)."""
    meta = meta or SessionMeta()
    own = {i.spec.key for i in infos if formats.by_name(i.spec.answer).own_results}
    if own:  # the statistics of roles read option and number phases only
        data = stats.Dataset(tuple(p for p in data.phases if p.key not in own), data.answers)
    analysis = stats.analyze(data, also_hidden, meta.min_cell)
    phases = []
    for info in infos:
        if info.spec.key in own:
            phases.append(own_phase_result(info, data.of(info.spec.key)))
            continue
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
            unlinked=meta.unlinked,
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
        **{f.name: getattr(meta, f.name) for f in fields(SessionMeta)},
        phases=phases,
        gap=gap,
        shift=shift,
        analysis=analysis,
        infos=list(infos),
    )


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
    method: str = ""
    source: str = ""
    """An unlinked session's source: the forest plot names it."""
    excluded: str | None = None
    """Why the room cannot enter the pooled estimate: ``one_person`` (a single answer has no
    variance), ``no_spread`` (every answer alike, so the method's variance is 0) or
    ``other_version`` (its talk version asks one of the gap's questions unlike the newest)."""


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
    independent: bool = False
    """Some rooms' headline is paired and others' independent, so every room enters the forest
    plot and the pool with its independent comparison (one estimand per pool)."""

    @property
    def poolable(self) -> int:
        """How many rooms could enter a pooled gap (fewer than ``stats.POOL_FROM`` give none)."""
        return sum(1 for row in self.forest if row.excluded is None)

    def title(self, lang: str) -> str:
        return pick(self.titles, lang)


def build_talk_results(
    slug: str,
    titles: dict[str, str],
    languages: list[str],
    sessions: Sequence[tuple[SessionMeta, Sequence[PhaseInfo], stats.Dataset]],
    pooled_from: Mapping[str, Sequence[str]] | None = None,
    rehearsals: Sequence[SessionMeta] = (),
) -> TalkResults:
    """Each session on its own, all of them pooled (answers merged), and the gap pooled with
    inverse-variance weights (DerSimonian-Laird) over the sessions that have one.

    ``pooled_from`` (phase id -> session codes) limits each phase's pooled answers to those
    sessions (the talk's versions asked it alike, ``app.talks.poolable_phases``); the pooled
    view then words the phase as those sessions asked it, and a session enters the pooled gap
    only if both of its gap's phases are pooled from it. ``rehearsals`` are only listed."""
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
                linked=data.linked,
                apart=data.apart,
            )
            for meta, _i, data in sessions
        }
    )
    # published totals link nobody: with no linked session, nothing pairs two phases
    merged = stats.Dataset(
        tuple(i.spec for i in infos_by_key.values()),
        merged.answers,
        linked=not sessions or any(data.linked for _m, _i, data in sessions),
        apart=merged.apart,
    )
    # What one session hides stays hidden in the pooled answers (a cell, the estimates' split,
    # the paired estimates): else the pooled figure minus the other sessions' shown ones would
    # give it back.
    hidden_somewhere = stats.Hiding()
    for r in per_session:
        if r.analysis is not None:
            hidden_somewhere |= stats.hidden(r.analysis)
    pooled = build_session_results(
        list(infos_by_key.values()),
        merged,
        SessionMeta(
            talk=slug,
            titles=titles,
            language=languages[0] if languages else "en",
            # the pooled tables hide at the most careful of the sessions' thresholds
            min_cell=max([stats.MIN_CELL, *(m.min_cell for m, _i, _d in sessions)]),
        ),
        pooled=True,
        also_hidden=hidden_somewhere,
    )
    forest = []
    # one estimand per pool: where some rooms' headline is paired and others' independent, every
    # room enters with the independent comparison of its two questions' totals, which each has
    linked = {r.gap.stats.linked for r in per_session if r.gap is not None}
    independent = len(linked) > 1
    figures = {}
    for r in per_session:
        if r.gap is None:
            continue
        head = r.gap.stats.difference if independent else r.gap.stats.headline
        figures[r.code] = head
        n = head.n if head.n is not None else r.gap.self_n
        excluded = None
        if not (in_pool(r.gap.stance, r.code) and in_pool(r.gap.perceived, r.code)):
            excluded = "other_version"
        elif n < 2:
            excluded = "one_person"
        elif head.variance is None or head.variance <= 0:
            # every method's variance is defined at the boundary (docs/methods.md, "Pooling"),
            # so this is left for a method that has none
            excluded = "no_spread"
        forest.append(
            ForestRow(
                code=r.code,
                venue=r.venue,
                estimate=head.estimate,
                ci95=head.ci95,
                n=n,
                weight=None,
                method=head.method,
                source=r.source if r.unlinked else "",
                excluded=excluded,
            )
        )
    usable = [(row, figures[row.code].variance) for row in forest if row.excluded is None]
    meta = None
    # no pooled gap from fewer than POOL_FROM rooms: they are shown side by side
    if len(usable) >= stats.POOL_FROM:
        variances = [float(v or 0) for _row, v in usable]
        meta = stats.pool([row.estimate for row, _v in usable], variances, bounds=(-1.0, 1.0))
        raw = [1 / (v + meta.tau2) for v in variances]
        weights = {row.code: w / sum(raw) for (row, _v), w in zip(usable, raw, strict=True)}
        forest = [replace(row, weight=weights.get(row.code)) for row in forest]
    return TalkResults(
        slug=slug,
        titles=titles,
        languages=languages,
        pooled=pooled,
        sessions=per_session,
        meta=meta,
        forest=forest,
        independent=independent,
        pooled_from={k: tuple(v) for k, v in (pooled_from or {}).items()},
        rehearsals=list(rehearsals),
    )
