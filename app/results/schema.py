"""The results JSON of a session and of a talk, as pydantic models (so ``/openapi.json`` documents
it; the shape is the HTTP contract's "Results shape", which these models extend).

Shares are fractions in [0, 1]; every interval is ``[lower, upper]`` at 95%, with the method
named beside it. What each figure means is in docs/methods.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from app import formats, stats
from app.results.views import GapResult, PhaseResult, SessionResults, ShiftResult, TalkResults

Pair = list[float]
"""An interval: [lower, upper]."""


class Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class BinJSON(Model):
    lower: float
    upper: float
    count: int


class ChoicePhaseJSON(Model):
    """A phase answered by choosing an option."""

    kind: str
    n: int
    counts: dict[str, int] = Field(description="option id -> how many chose it")
    shares: dict[str, float | None] = Field(description="option id -> count / n (null at n = 0)")
    ci95: dict[str, Pair | None] = Field(description="option id -> Wilson 95% interval")
    ci95_method: Literal["wilson"] = "wilson"


class EstimatePhaseJSON(Model):
    """A 0-100 estimate phase."""

    kind: str
    n: int
    mean: float | None
    median: float | None
    ci95: Pair | None = Field(
        description="Student t 95% interval of the mean (n >= 2; null where every answer is the"
        " same, as an interval of zero width would claim certainty)"
    )
    ci95_method: Literal["student_t"] = "student_t"
    range: list[float | None]
    histogram: list[BinJSON]
    actual_share: float | None = Field(
        description="the share of the room that holds the view this phase estimates"
    )


class DifferenceJSON(Model):
    difference: float
    ci95: Pair | None
    method: str
    n: int | None = Field(None, description="people the figure is computed on")


class GapDifferenceJSON(DifferenceJSON):
    """A gap on one set of people, with its two sides (perceived - self = difference)."""

    self_share: float | None = None
    self_ci95: Pair | None = None
    perceived_share: float | None = None
    perceived_ci95: Pair | None = None


class GapOptionJSON(Model):
    self_count: int
    self_share: float | None
    self_ci95: Pair | None
    perceived_count: int
    perceived_share: float | None
    perceived_ci95: Pair | None


class GroupMeanJSON(Model):
    n: int
    mean: float | None


class FalseConsensusJSON(Model):
    holders: GroupMeanJSON
    others: GroupMeanJSON
    difference: DifferenceJSON | None


class GapJSON(Model):
    """The room's own share of a view against the share who think most of the field holds it
    (categorical) or the mean 0-100 estimate of the field (estimate)."""

    stance: str
    perceived: str
    option: str
    holds: list[str]
    kind: Literal["categorical", "estimate"]
    self_n: int
    self_count: int
    self_share: float
    self_ci95: Pair | None
    perceived_n: int
    perceived_count: int | None
    perceived_share: float
    perceived_ci95: Pair | None
    difference: float = Field(
        description="perceived minus own share, everyone who answered either question, as "
        "independent samples (the headline only where answers cannot be linked)"
    )
    ci95: Pair | None
    method: str
    paired: GapDifferenceJSON | None = Field(
        description="the same difference on the people who answered both phases: the headline "
        "wherever there are any"
    )
    headline: Literal["paired", "independent"]
    only_stance: int | None = Field(
        description="answered the stance question only (null for published totals: unknown)"
    )
    only_perceived: int | None = Field(
        description="answered the perceived question only (null for published totals: unknown)"
    )
    options: dict[str, GapOptionJSON]
    paired_options: dict[str, GapOptionJSON] = Field(
        description="options on the people who answered both phases"
    )
    false_consensus: FalseConsensusJSON | None = None
    errors_histogram: list[BinJSON] | None = None
    merged: bool = Field(
        False,
        description="answers of every session merged into one room: a descriptive figure; the "
        "pooled estimate over sessions is meta.gap",
    )


class TestJSON(Model):
    name: str
    statistic: float
    df: int | None
    p_value: float


class DroppedJSON(Model):
    only_from: int
    only_to: int
    total: int


class ShiftJSON(Model):
    """Stance -> revote on the people who answered both."""

    from_: str = Field(alias="from")
    to: str
    n_paired: int
    dropped: DroppedJSON
    matrix: dict[str, dict[str, int]] = Field(description="raw counts, for the presenter")
    hidden: list[list[str]] = Field(
        description="[from, to] of every cell that pages, charts and sentences do not show"
    )
    row_shares: dict[str, dict[str, float | None]]
    changed_share: dict[str, float | None]
    changed: int
    test: TestJSON | None
    symmetry: TestJSON | None


class CrosstabJSON(Model):
    rows: str
    cols: str
    n: int
    counts: dict[str, dict[str, int]] = Field(description="raw counts, for the presenter")
    hidden: list[list[str]] = Field(
        description="[row, column] of every cell that pages, charts and sentences do not show "
        "(fewer than 5 people, or a cell that would give one back)"
    )
    non_holders: int | None = None
    non_holders_perceiving_majority: int | None = None
    non_holders_perceiving_majority_share: float | None = None


if TYPE_CHECKING:
    PhaseJSON = ChoicePhaseJSON | EstimatePhaseJSON | BaseModel
else:  # one arm per answer format: option, number, then those that summarise their own
    PhaseJSON = Union[
        (ChoicePhaseJSON, EstimatePhaseJSON, *(f.result_model for f in formats.summarisers()))
    ]


class ResultsJSON(Model):
    phases: dict[str, PhaseJSON]
    gap: GapJSON | None
    shift: ShiftJSON | None
    crosstabs: dict[str, CrosstabJSON]
    surprisingly_popular: None = Field(
        description="always null: Prelec's premise needs predictions about this room, and the "
        "app asks about the field (docs/methods.md)"
    )
    too_few_below: int = Field(description="breakdown cells under this many people are hidden")


class HeldJSON(Model):
    code: str
    venue: str
    held_on: str | None
    language: str
    unlinked: bool = Field(
        False,
        description="published totals per phase, not linked answers: the gap is the independent "
        "comparison, and nothing that pairs two phases (cross-tabs, shift) is given",
    )
    source: str | None = Field(None, description="where an unlinked session's counts come from")
    transitions: dict[str, dict[str, dict[str, int]]] | None = Field(
        None,
        description="an unlinked session's published revote rows: revote phase -> first answer "
        "-> answer in the revote -> count (only the rows that were published)",
    )


class SessionInfoJSON(HeldJSON):
    talk: str


class SessionResultsJSON(ResultsJSON):
    session: SessionInfoJSON


class TalkInfoJSON(Model):
    slug: str
    title: dict[str, str]
    languages: list[str]


class ForestRowJSON(Model):
    code: str
    venue: str
    difference: float
    ci95: Pair
    n: int
    weight: float | None
    method: str
    source: str | None = Field(None, description="an unlinked session's source")
    excluded: str | None = Field(
        description=(
            "why the room cannot enter the pooled estimate (one_person, no_spread, other_version)"
        )
    )


class PooledGapJSON(Model):
    k: int
    estimate: float | None = None
    ci95: Pair | None = Field(
        None,
        description=(
            "HKSJ (t) interval with fewer than 10 sessions, else normal (z); cut at ±1"
            " (ci95_clipped says when)"
        ),
    )
    ci95_method: str | None = None
    ci95_clipped: bool | None = Field(
        None,
        description="the interval reached past ±1, the widest a gap can be, and is cut there",
    )
    random_ci95_z: Pair | None = None
    hksj_ci95: Pair | None = None
    fixed: float | None = None
    fixed_ci95: Pair | None = None
    q: float | None = None
    df: int | None = None
    q_p_value: float | None = None
    i2: float | None = None
    tau2: float | None = None
    method: str | None = None
    sessions: list[ForestRowJSON]


class MetaJSON(Model):
    gap: PooledGapJSON


class TalkSessionJSON(HeldJSON, ResultsJSON):
    pass


class TalkResultsJSON(ResultsJSON):
    """The talk's results pooled over its sessions (also under ``pooled``), the gap pooled over
    sessions under ``meta``, and each session's own results under ``sessions``."""

    talk: TalkInfoJSON
    pooled: ResultsJSON
    meta: MetaJSON
    pooled_from: dict[str, list[str]] = Field(
        description=(
            "phase id -> codes of the sessions whose answers to it are pooled (their talk"
            " version asks it as the newest version does)"
        )
    )
    sessions: list[TalkSessionJSON]
    rehearsals: list[str] = Field(
        description="codes of the sessions marked as rehearsals: listed apart, never pooled"
    )


# --------------------------------------------------------------------------- building them


def _pair(interval: tuple[float, float] | None) -> Pair | None:
    return [interval[0], interval[1]] if interval is not None else None


def _difference(diff: stats.Difference | None) -> DifferenceJSON | None:
    if diff is None:
        return None
    return DifferenceJSON(
        difference=diff.estimate, ci95=_pair(diff.ci95), method=diff.method, n=diff.n
    )


def _gap_difference(diff: stats.Difference | None) -> GapDifferenceJSON | None:
    if diff is None:
        return None
    return GapDifferenceJSON(
        difference=diff.estimate,
        ci95=_pair(diff.ci95),
        method=diff.method,
        n=diff.n,
        perceived_share=diff.first,
        perceived_ci95=_pair(diff.first_ci95),
        self_share=diff.second,
        self_ci95=_pair(diff.second_ci95),
    )


def _options(options: tuple[stats.GapOption, ...]) -> dict[str, GapOptionJSON]:
    return {
        o.key: GapOptionJSON(
            self_count=o.self_count,
            self_share=o.self_share,
            self_ci95=_pair(o.self_ci95),
            perceived_count=o.perceived_count,
            perceived_share=o.perceived_share,
            perceived_ci95=_pair(o.perceived_ci95),
        )
        for o in options
    }


def _bins(bins: list[stats.Bin]) -> list[BinJSON]:
    return [BinJSON(lower=b.lower, upper=b.upper, count=b.count) for b in bins]


def phase_model(result: PhaseResult) -> PhaseJSON:
    if result.summary is not None:
        return formats.summarising(result.answer).result_json(result)
    if result.is_estimate:
        return EstimatePhaseJSON(
            kind=result.kind.value,
            n=result.n,
            mean=result.mean,
            median=result.median,
            ci95=_pair(result.ci95),
            range=[result.min_value, result.max_value],
            histogram=_bins(result.histogram),
            actual_share=result.actual_share,
        )
    return ChoicePhaseJSON(
        kind=result.kind.value,
        n=result.n,
        counts={o.key: o.count for o in result.options},
        shares={o.key: o.share for o in result.options},
        ci95={o.key: _pair(o.ci95) for o in result.options},
    )


def gap_model(gap: GapResult | None) -> GapJSON | None:
    if gap is None:
        return None
    g = gap.stats
    out = GapJSON(
        stance=g.stance,
        perceived=g.perceived,
        option=g.option,
        holds=list(g.holds),
        kind="estimate" if g.kind == "estimate" else "categorical",
        self_n=g.self_n,
        self_count=g.self_count,
        self_share=g.self_share,
        self_ci95=_pair(g.self_ci95),
        perceived_n=g.perceived_n,
        perceived_count=g.perceived_count,
        perceived_share=g.perceived_share,
        perceived_ci95=_pair(g.perceived_ci95),
        difference=g.difference.estimate,
        ci95=_pair(g.difference.ci95),
        method=g.difference.method,
        paired=_gap_difference(g.paired),
        headline="paired" if g.linked else "independent",
        only_stance=None if gap.unlinked else g.only_stance,
        only_perceived=None if gap.unlinked else g.only_perceived,
        options=_options(g.options),
        paired_options=_options(g.paired_options),
        merged=gap.pooled,
    )
    if g.kind == "estimate":
        fc = g.false_consensus
        out.false_consensus = (
            FalseConsensusJSON(
                holders=GroupMeanJSON(n=fc.holders_n, mean=fc.holders_mean),
                others=GroupMeanJSON(n=fc.others_n, mean=fc.others_mean),
                difference=_difference(fc.difference),
            )
            if fc
            else None
        )
        out.errors_histogram = _bins(stats.histogram([e * 100 for e in g.errors], -100, 100, 20))
    return out


def _test(test: stats.Test | None) -> TestJSON | None:
    if test is None:
        return None
    return TestJSON(name=test.name, statistic=test.statistic, df=test.df, p_value=test.p_value)


def shift_model(shift: ShiftResult | None) -> ShiftJSON | None:
    if shift is None:
        return None
    s = shift.stats
    return ShiftJSON(
        from_=s.from_phase,
        to=s.to_phase,
        n_paired=s.n_paired,
        dropped=DroppedJSON(only_from=s.only_first, only_to=s.only_second, total=s.dropped),
        matrix={a: {b: s.cell(a, b) for b in s.options} for a in s.options},
        hidden=[[s.options[i], s.options[j]] for i, j in sorted(s.hidden)],
        row_shares={a: {b: s.row_share(a, b) for b in s.options} for a in s.options},
        changed_share={a: s.changed_share(a) for a in s.options},
        changed=s.changed,
        test=_test(s.test),
        symmetry=_test(s.symmetry),
    )


def _results_fields(results: SessionResults) -> dict[str, Any]:
    analysis = results.analysis
    crosstabs: dict[str, CrosstabJSON] = {}
    if analysis is not None:
        if analysis.perceived_crosstab is not None:
            tab = CrosstabJSON(**analysis.perceived_crosstab.as_dict())
            if analysis.ignorance is not None:
                tab.non_holders = analysis.ignorance.non_holders
                tab.non_holders_perceiving_majority = analysis.ignorance.perceive_majority
                tab.non_holders_perceiving_majority_share = analysis.ignorance.share
            crosstabs["stance_perceived"] = tab
        if analysis.definition_crosstab is not None:
            crosstabs["definition_stance"] = CrosstabJSON(**analysis.definition_crosstab.as_dict())
    return {
        "phases": {p.key: phase_model(p) for p in results.phases},
        "gap": gap_model(results.gap),
        "shift": shift_model(results.shift),
        "crosstabs": crosstabs,
        "surprisingly_popular": None,
        "too_few_below": results.min_cell,
    }


def _held(results: SessionResults) -> dict[str, Any]:
    return {
        "code": results.code,
        "venue": results.venue,
        "held_on": results.held_on.isoformat() if results.held_on else None,
        "language": results.language,
        "unlinked": results.unlinked,
        "source": results.source if results.unlinked else None,
        "transitions": results.transitions if results.unlinked else None,
    }


def results_model(results: SessionResults) -> ResultsJSON:
    return ResultsJSON(**_results_fields(results))


def session_results_model(results: SessionResults) -> SessionResultsJSON:
    return SessionResultsJSON(
        session=SessionInfoJSON(**_held(results), talk=results.talk),
        **_results_fields(results),
    )


def talk_results_model(results: TalkResults) -> TalkResultsJSON:
    pooled = _results_fields(results.pooled)
    # too few rooms to pool (stats.POOL_FROM): k says how many could enter, with no estimate
    meta = results.meta.as_dict() if results.meta else {"k": results.poolable}
    return TalkResultsJSON(
        talk=TalkInfoJSON(slug=results.slug, title=results.titles, languages=results.languages),
        **pooled,
        pooled=ResultsJSON(**pooled),
        meta=MetaJSON(
            gap=PooledGapJSON(
                **meta,
                sessions=[
                    ForestRowJSON(
                        code=row.code,
                        venue=row.venue,
                        difference=row.estimate,
                        ci95=list(row.ci95),
                        n=row.n,
                        weight=row.weight,
                        method=row.method,
                        source=row.source or None,
                        excluded=row.excluded,
                    )
                    for row in results.forest
                ],
            )
        ),
        pooled_from={key: list(codes) for key, codes in results.pooled_from.items()},
        sessions=[TalkSessionJSON(**_held(s), **_results_fields(s)) for s in results.sessions],
        rehearsals=[r.code for r in results.rehearsals],
    )


def _plain(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True)


def results_json(results: SessionResults) -> dict[str, Any]:
    return _plain(results_model(results))


def session_results_json(results: SessionResults) -> dict[str, Any]:
    return _plain(session_results_model(results))


def talk_results_json(results: TalkResults) -> dict[str, Any]:
    return _plain(talk_results_model(results))


def phase_json(result: PhaseResult) -> dict[str, Any]:
    return _plain(phase_model(result))


def gap_json(gap: GapResult | None) -> dict[str, Any] | None:
    model = gap_model(gap)
    return _plain(model) if model is not None else None


def shift_json(shift: ShiftResult | None) -> dict[str, Any] | None:
    model = shift_model(shift)
    return _plain(model) if model is not None else None
