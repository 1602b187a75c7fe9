"""Means of numbers (a 0-100 estimate): the t interval of one mean, Welch's of two, the
histogram, and the MOVER interval of a mean estimate minus a share."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from app.stats.distributions import Interval, _t975
from app.stats.proportions import Difference, mover, wilson


@dataclass(frozen=True)
class MeanSummary:
    n: int
    mean: float | None
    median: float | None
    sd: float | None
    ci95: Interval | None
    """Student t interval of the mean (needs n >= 2, and answers that differ: where everyone gave
    the same answer it would have zero width, so there is none)."""

    @property
    def se(self) -> float | None:
        if self.sd is None or self.n < 2:
            return None
        return self.sd / math.sqrt(self.n)


def mean_summary(values: Sequence[float]) -> MeanSummary:
    n = len(values)
    if n == 0:
        return MeanSummary(0, None, None, None, None)
    mean = math.fsum(values) / n
    median = float(statistics.median(values))
    if n < 2:
        return MeanSummary(n, mean, median, None, None)
    sd = statistics.stdev(values)
    if sd == 0:
        # everyone gave the same answer: a t interval of zero width would claim certainty
        return MeanSummary(n, mean, median, sd, None)
    half = _t975(n - 1) * sd / math.sqrt(n)
    return MeanSummary(n, mean, median, sd, (mean - half, mean + half))


def welch_diff(first: Sequence[float], second: Sequence[float]) -> Difference | None:
    """mean(first) - mean(second) with a Welch t interval; None when either has n < 2 or neither
    group's answers vary."""
    n1, n2 = len(first), len(second)
    if n1 < 2 or n2 < 2:
        return None
    m1, m2 = math.fsum(first) / n1, math.fsum(second) / n2
    v1, v2 = statistics.variance(first) / n1, statistics.variance(second) / n2
    d = m1 - m2
    se2 = v1 + v2
    if se2 == 0:
        return None  # both groups unanimous: a zero-width interval would claim certainty
    df = se2**2 / (v1**2 / (n1 - 1) + v2**2 / (n2 - 1))
    half = _t975(df) * math.sqrt(se2)
    return Difference(d, (d - half, d + half), "welch_t", n=n1 + n2)


@dataclass(frozen=True)
class Bin:
    lower: float
    upper: float
    count: int


def histogram(
    values: Iterable[float], lower: float = 0.0, upper: float = 100.0, bins: int = 10
) -> list[Bin]:
    """Equal-width bins over [lower, upper]; the last bin includes its upper edge."""
    width = (upper - lower) / bins
    counts = [0] * bins
    for value in values:
        index = int((value - lower) // width) if width > 0 else 0
        counts[min(max(index, 0), bins - 1)] += 1
    return [Bin(lower + i * width, lower + (i + 1) * width, c) for i, c in enumerate(counts)]


def _t_interval(values: Sequence[float], lower: float = 0.0, upper: float = 1.0) -> Interval:
    """Student t 95% interval of a mean; with one value, all that the range allows. Where every
    value is the same (the t interval would have zero width), the Wilson score interval at the
    mean: a 0-1 answer with mean m varies at most as a yes/no answer with share m does, so this
    is the interval of the widest spread such a room's answers could have come from."""
    summary = mean_summary(values)
    if summary.mean is not None and summary.n >= 2 and summary.ci95 is None:
        span = upper - lower
        share = min(1.0, max(0.0, (summary.mean - lower) / span))
        low, high = wilson(share * summary.n, summary.n)
        return (lower + low * span, lower + high * span)
    if summary.ci95 is None:
        return (lower, upper)
    return summary.ci95


def _correlation(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's r, 0 when either side does not vary."""
    if len(x) < 2:
        return 0.0
    sx, sy = statistics.pstdev(x), statistics.pstdev(y)
    if sx == 0 or sy == 0:
        return 0.0
    mx, my = math.fsum(x) / len(x), math.fsum(y) / len(y)
    cov = math.fsum((a - mx) * (b - my) for a, b in zip(x, y, strict=True)) / len(x)
    return max(-1.0, min(1.0, cov / (sx * sy)))


def estimate_minus_share(
    estimates: Sequence[float], holds: Sequence[bool], paired: bool
) -> Difference:
    """Mean 0-1 estimate minus the share who hold the view, both estimated: the MOVER interval
    from the estimate's t interval and the share's Wilson interval (docs/methods.md, "The gap
    with a 0-100 estimate").

    ``paired``: ``estimates[i]`` and ``holds[i]`` are one person's answers, and the correlation of
    the two enters the interval; otherwise the two lists are independent samples. A unanimous room
    still has an interval for its share (Wilson's), so the result is never as narrow as if the
    share were known.
    """
    n_e, n_s = len(estimates), len(holds)
    if n_e == 0 or n_s == 0 or (paired and n_e != n_s):
        raise ValueError("an estimate gap needs answers on both sides (one each when paired)")
    mean = math.fsum(estimates) / n_e
    count = sum(1 for h in holds if h)
    share = count / n_s
    mean_ci = _t_interval(estimates)
    share_ci = wilson(count, n_s)
    flags = [1.0 if h else 0.0 for h in holds]
    r = _correlation(estimates, flags) if paired else 0.0
    ci = mover(mean, mean_ci, share, share_ci, r)
    variance: float | None
    if paired:
        diffs = [e - f for e, f in zip(estimates, flags, strict=True)]
        variance = statistics.variance(diffs) / n_e if n_e >= 2 else None
        method = "mover_paired_t_wilson"
    else:
        variance = (
            statistics.variance(estimates) / n_e + share * (1 - share) / n_s if n_e >= 2 else None
        )
        method = "mover_t_wilson"
    if not variance and n_e >= 2:
        # every difference alike (a unanimous room that all gave one estimate): the variance the
        # interval's two sides have at the boundary, each share with one yes and one no added
        # (Agresti & Caffo 2000; the estimate side as a share at its mean, as its interval is),
        # so the room enters a pooled estimate instead of being dropped for "no spread"
        sd_e = statistics.stdev(estimates)
        held = (count + 1) / (n_s + 2)
        at_mean = (mean * n_e + 1) / (n_e + 2)
        variance = (sd_e**2 / n_e if sd_e > 0 else at_mean * (1 - at_mean) / (n_e + 2)) + held * (
            1 - held
        ) / (n_s + 2)
    return Difference(
        mean - share,
        ci,
        method,
        n=n_e if paired else None,
        variance=variance if variance else None,
        first=mean,
        first_ci95=mean_ci,
        second=share,
        second_ci95=share_ci,
    )
