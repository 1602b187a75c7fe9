"""Pooling a talk's sessions: their answers merged, and one effect pooled with inverse-variance
weights (DerSimonian-Laird, HKSJ for few sessions)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.stats.data import Dataset, PhaseSpec
from app.stats.distributions import Z95, Answer, Interval, _chi2_sf, _t975

POOL_FROM = 3
"""No pooled estimate from fewer rooms: with 2, the HKSJ interval rests on a t quantile with 1
degree of freedom (12.7) and says little but the spread of the two rooms; they are shown side by
side instead."""

HKSJ_BELOW = 10
"""Pooling fewer sessions than this uses the Hartung-Knapp-Sidik-Jonkman (t) interval."""


@dataclass(frozen=True)
class Pooled:
    """Inverse-variance pooling of one effect (the gap) over k sessions."""

    k: int
    fixed: float
    fixed_ci95: Interval
    random: float
    random_ci95: Interval
    q: float
    df: int
    q_p_value: float | None
    i2: float
    tau2: float
    method: str = "inverse_variance_dersimonian_laird"
    hksj_ci95: Interval | None = None
    """Hartung-Knapp-Sidik-Jonkman interval of the random-effects estimate (t, k - 1 df), with the
    modified scale max(1, q): never narrower than the DerSimonian-Laird variance with a t
    quantile."""
    bounds: Interval | None = None
    """The range the effect can take; the shown interval is cut there (a gap lies in [-1, 1],
    and HKSJ on two or three sessions that disagree can reach far past it)."""

    @property
    def uses_hksj(self) -> bool:
        """With fewer than ``HKSJ_BELOW`` sessions the interval is HKSJ's, not the normal one."""
        return self.hksj_ci95 is not None and self.k < HKSJ_BELOW

    @property
    def unclipped_ci95(self) -> Interval:
        """HKSJ's interval with fewer than ``HKSJ_BELOW`` sessions, else the normal one."""
        if self.uses_hksj and self.hksj_ci95 is not None:
            return self.hksj_ci95
        return self.random_ci95

    @property
    def ci95(self) -> Interval:
        """The interval shown with the pooled estimate, cut at ``bounds``."""
        lo, hi = self.unclipped_ci95
        if self.bounds is None:
            return lo, hi
        return max(lo, self.bounds[0]), min(hi, self.bounds[1])

    @property
    def clipped(self) -> bool:
        """The interval reaches past the range the effect can take."""
        return self.ci95 != self.unclipped_ci95

    @property
    def covers_bounds(self) -> bool:
        """The interval spans every value the effect can take: the sessions do not pin it down."""
        return self.bounds is not None and self.ci95 == self.bounds

    @property
    def interval_method(self) -> str:
        return "hartung_knapp_sidik_jonkman_t" if self.uses_hksj else "normal_z"

    def as_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "estimate": self.random,
            "ci95": list(self.ci95),
            "ci95_method": self.interval_method,
            "ci95_clipped": self.clipped,
            "random_ci95_z": list(self.random_ci95),
            "hksj_ci95": list(self.hksj_ci95) if self.hksj_ci95 else None,
            "fixed": self.fixed,
            "fixed_ci95": list(self.fixed_ci95),
            "q": self.q,
            "df": self.df,
            "q_p_value": self.q_p_value,
            "i2": self.i2,
            "tau2": self.tau2,
            "method": self.method,
        }


def pool(
    effects: Sequence[float], variances: Sequence[float], bounds: Interval | None = None
) -> Pooled:
    """Fixed and random effects (DerSimonian-Laird) pooling; Q, I^2 and tau^2 truncated at 0.

    ``bounds``, when given, is the range the effect can take: the shown interval is cut there."""
    if not effects or len(effects) != len(variances):
        raise ValueError("pooling needs one variance per effect, and at least one effect")
    if any(v <= 0 for v in variances):
        raise ValueError("every variance must be positive")
    y = np.asarray(effects, dtype=float)
    w = 1 / np.asarray(variances, dtype=float)
    k = len(y)
    sw = float(w.sum())
    fixed = float((w * y).sum() / sw)
    q = float((w * (y - fixed) ** 2).sum())
    df = k - 1
    c = sw - float((w**2).sum()) / sw
    tau2 = max(0.0, (q - df) / c) if c > 0 else 0.0
    i2 = max(0.0, (q - df) / q) if q > 0 else 0.0
    w_re = 1 / (np.asarray(variances, dtype=float) + tau2)
    random = float((w_re * y).sum() / w_re.sum())
    se_fixed = math.sqrt(1 / sw)
    se_random = math.sqrt(1 / float(w_re.sum()))
    hksj = None
    if k >= 2:
        # Hartung-Knapp-Sidik-Jonkman: the random-effects variance rescaled by the weighted
        # spread of the effects, with a t quantile on k - 1 degrees of freedom
        scale = float((w_re * (y - random) ** 2).sum()) / df
        # the modified Knapp-Hartung scale max(1, q) (Roever, Knapp & Friede 2015): rooms that
        # agree more than their own intervals expect do not narrow the interval below DL's
        scale = max(1.0, scale)
        half = _t975(df) * math.sqrt(scale / float(w_re.sum()))
        hksj = (random - half, random + half)
    return Pooled(
        k=k,
        fixed=fixed,
        fixed_ci95=(fixed - Z95 * se_fixed, fixed + Z95 * se_fixed),
        random=random,
        random_ci95=(random - Z95 * se_random, random + Z95 * se_random),
        q=q,
        df=df,
        q_p_value=_chi2_sf(q, df) if df > 0 else None,
        i2=i2,
        tau2=tau2,
        hksj_ci95=hksj,
        bounds=bounds,
    )


def merge(datasets: Mapping[str, Dataset]) -> Dataset:
    """Pool sessions of one talk: the union of their answers, each participant id prefixed
    with its session's code (participants are never shared between sessions)."""
    phases: dict[str, PhaseSpec] = {}
    answers: dict[str, dict[str, Answer]] = {}
    apart: set[str] = set()
    for code, data in datasets.items():
        for spec in data.phases:
            phases.setdefault(spec.key, spec)
        for key, by_participant in data.answers.items():
            target = answers.setdefault(key, {})
            for participant, answer in by_participant.items():
                target[f"{code}:{participant}"] = answer
        apart.update(f"{code}:{participant}" for participant in data.apart)
    return Dataset(phases=tuple(phases.values()), answers=answers, apart=frozenset(apart))
