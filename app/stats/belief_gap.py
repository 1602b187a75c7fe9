"""The belief gap: the share of the room holding a view vs the share who think the field holds
it, or vs the mean 0-100 estimate of the field's share."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from app.stats.data import Dataset, _as_share, count_options
from app.stats.distributions import Answer, Interval
from app.stats.estimates import estimate_minus_share, mean_summary, welch_diff
from app.stats.proportions import Difference, newcombe_diff, newcombe_paired, wilson


@dataclass(frozen=True)
class GapOption:
    """One option of the grouped bars: the room's own share vs the share perceiving it."""

    key: str
    self_count: int
    self_share: float | None
    self_ci95: Interval | None
    perceived_count: int
    perceived_share: float | None
    perceived_ci95: Interval | None


@dataclass(frozen=True)
class FalseConsensus:
    """Mean % estimate among those who hold the view vs among those who don't (linked)."""

    holders_n: int
    holders_mean: float | None
    others_n: int
    others_mean: float | None
    difference: Difference | None
    shown: bool = True
    """Whether outputs may show the two groups' means (``estimate_shown``): never when a group
    has 1 to 4 people, since the other's mean beside everyone's gives it back."""


@dataclass(frozen=True)
class Gap:
    """Share of the room holding a view vs share who think the field holds it (categorical), or
    vs the mean 0-100 estimate of the field's share (estimate).

    ``difference`` compares everyone who answered either question as two independent samples;
    ``paired`` compares the people who answered both, and is the headline wherever there are any
    (``headline``). ``only_stance`` and ``only_perceived`` count the people left out of it.
    """

    stance: str
    perceived: str
    holds: tuple[str, ...]
    kind: str
    """``categorical`` (perceived is a choice on the same scale) or ``estimate`` (0-100 %)."""
    self_n: int
    self_count: int
    self_share: float
    self_ci95: Interval
    perceived_n: int
    perceived_share: float
    perceived_ci95: Interval | None
    difference: Difference
    """perceived share minus own share, everyone who answered either (independent samples)."""
    perceived_count: int | None = None
    paired: Difference | None = None
    """The same difference on the participants who answered both phases."""
    options: tuple[GapOption, ...] = ()
    paired_options: tuple[GapOption, ...] = ()
    """``options`` on the people who answered both (what the chart shows when there are any)."""
    errors: tuple[float, ...] = ()
    """For a % estimate: each estimate (as a fraction) minus the room's actual share."""
    false_consensus: FalseConsensus | None = None
    only_stance: int = 0
    """Answered the stance question but not the perceived one (left out of ``paired``)."""
    only_perceived: int = 0
    """Answered the perceived question but not the stance one (left out of ``paired``)."""
    apart: bool = False
    """The answers are linked, but the paired figures would give back a hidden cell of the
    stance x perceived table (``covering_paired``) or the estimates of a group of 1 to 4 people
    (``estimate_shown``), so the headline is the independent comparison of the two phases'
    public totals."""

    @property
    def option(self) -> str:
        return "+".join(self.holds)

    @property
    def linked(self) -> bool:
        """Whether the headline is paired (some people answered both questions, and showing
        them gives no small group's estimates back)."""
        return self.paired is not None and not self.apart

    @property
    def headline(self) -> Difference:
        """The figure to show: paired where answers are linked, else the independent one."""
        return self.paired if self.linked and self.paired is not None else self.difference

    @property
    def shown_options(self) -> tuple[GapOption, ...]:
        return self.paired_options if self.linked else self.options


def _holds(answer: Answer | None, holds: Sequence[str]) -> bool:
    return isinstance(answer, str) and answer in holds


def _gap_options(
    keys: Sequence[str], own: Sequence[Answer], seen: Sequence[Answer]
) -> tuple[GapOption, ...]:
    own_counts = count_options(keys, own)
    seen_counts = count_options(keys, seen)
    n_own, n_seen = sum(own_counts.values()), sum(seen_counts.values())
    return tuple(
        GapOption(
            key=key,
            self_count=own_counts[key],
            self_share=own_counts[key] / n_own if n_own else None,
            self_ci95=wilson(own_counts[key], n_own) if n_own else None,
            perceived_count=seen_counts[key],
            perceived_share=seen_counts[key] / n_seen if n_seen else None,
            perceived_ci95=wilson(seen_counts[key], n_seen) if n_seen else None,
        )
        for key in keys
    )


def gap(
    data: Dataset, stance_key: str | None = None, perceived_key: str | None = None
) -> Gap | None:
    """The belief gap between a stance phase and the perceived phase that refers to it.

    None when the talk has no such pair, the stance phase names no ``holds`` options, or either
    phase has no answers yet.
    """
    stance = next(
        (p for p in data.phases if p.kind == "stance" and (stance_key in (None, p.key))), None
    )
    if stance is None or not stance.holds:
        return None
    perceived = next(
        (
            p
            for p in data.phases
            if p.kind == "perceived" and p.of_key == stance.key and (perceived_key in (None, p.key))
        ),
        None,
    )
    if perceived is None:
        return None
    own_all = data.of(stance.key)
    own = {p: a for p, a in own_all.items() if isinstance(a, str) and a in stance.options}
    self_n = len(own)
    if self_n == 0:
        return None
    self_count = sum(1 for a in own.values() if a in stance.holds)
    self_share = self_count / self_n
    self_ci = wilson(self_count, self_n)
    seen_all = data.of(perceived.key)

    if perceived.is_estimate:
        values = {
            p: _as_share(perceived, float(v)) for p, v in seen_all.items() if not isinstance(v, str)
        }
        if not values:
            return None
        both = [p for p in own if p in values]
        summary = mean_summary(list(values.values()))
        assert summary.mean is not None
        independent = estimate_minus_share(
            list(values.values()), [a in stance.holds for a in own.values()], paired=False
        )
        paired = (
            estimate_minus_share(
                [values[p] for p in both], [own[p] in stance.holds for p in both], paired=True
            )
            if both
            else None
        )
        holders = [values[p] for p in both if _holds(own[p], stance.holds)]
        others = [values[p] for p in both if not _holds(own[p], stance.holds)]
        consensus = FalseConsensus(
            holders_n=len(holders),
            holders_mean=(math.fsum(holders) / len(holders)) if holders else None,
            others_n=len(others),
            others_mean=(math.fsum(others) / len(others)) if others else None,
            difference=welch_diff(holders, others),
        )
        return Gap(
            stance=stance.key,
            perceived=perceived.key,
            holds=stance.holds,
            kind="estimate",
            self_n=self_n,
            self_count=self_count,
            self_share=self_share,
            self_ci95=self_ci,
            perceived_n=summary.n,
            perceived_share=summary.mean,
            perceived_ci95=summary.ci95,
            difference=independent,
            paired=paired,
            errors=tuple(f - self_share for f in values.values()),
            false_consensus=consensus,
            only_stance=len(set(own) - set(values) - data.apart),
            only_perceived=len(set(values) - set(own) - data.apart),
        )

    seen = {p: a for p, a in seen_all.items() if isinstance(a, str) and a in perceived.options}
    perceived_n = len(seen)
    if perceived_n == 0:
        return None
    perceived_count = sum(1 for a in seen.values() if a in stance.holds)
    both = [p for p in own if p in seen]
    paired = None
    paired_options: tuple[GapOption, ...] = ()
    if both:
        a = b = c = d = 0
        for p in both:
            thinks, is_ = _holds(seen[p], stance.holds), _holds(own[p], stance.holds)
            if thinks and is_:
                a += 1
            elif thinks:
                b += 1
            elif is_:
                c += 1
            else:
                d += 1
        paired = newcombe_paired(a, b, c, d)
        paired_options = _gap_options(
            stance.options, [own[p] for p in both], [seen[p] for p in both]
        )
    return Gap(
        stance=stance.key,
        perceived=perceived.key,
        holds=stance.holds,
        kind="categorical",
        self_n=self_n,
        self_count=self_count,
        self_share=self_share,
        self_ci95=self_ci,
        perceived_n=perceived_n,
        perceived_count=perceived_count,
        perceived_share=perceived_count / perceived_n,
        perceived_ci95=wilson(perceived_count, perceived_n),
        difference=newcombe_diff(perceived_count, perceived_n, self_count, self_n),
        paired=paired,
        options=_gap_options(stance.options, list(own.values()), list(seen.values())),
        paired_options=paired_options,
        only_stance=len(set(own) - set(seen) - data.apart),
        only_perceived=len(set(seen) - set(own) - data.apart),
    )
