"""What every statistic shares: the 95% level, the types of an interval and an answer, and the
t, chi-squared and binomial distributions."""

from __future__ import annotations

import statistics

ALPHA = 0.05
Z95 = statistics.NormalDist().inv_cdf(1 - ALPHA / 2)
"""The 97.5% point of the standard normal (1.959964...)."""

Interval = tuple[float, float]
Answer = str | float


# scipy.special's (the same numbers as scipy.stats' to 1e-15), imported on first use: the
# server starts without them, over a second sooner than with scipy.stats.


def _t975(df: float) -> float:
    """The 97.5% point of Student's t on ``df`` degrees of freedom."""
    from scipy import special

    return float(special.stdtrit(df, 1 - ALPHA / 2))


def _chi2_sf(statistic: float, df: float) -> float:
    """P(X >= statistic) for X chi-squared on ``df`` degrees of freedom."""
    from scipy import special

    return float(special.chdtrc(df, statistic))


def _binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X binomial on ``n`` trials of probability ``p``."""
    from scipy import special

    return float(special.bdtr(k, n, p))
