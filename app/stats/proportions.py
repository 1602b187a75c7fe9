"""Proportions: the Wilson interval of one share, the MOVER interval of a difference, and
Newcombe's intervals of two shares, independent or on the same people."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from app.stats.distributions import Z95, Interval


def shares(counts: Mapping[str, int]) -> dict[str, float | None]:
    """Each count as a fraction of their sum; None for every key when the sum is 0."""
    total = sum(counts.values())
    return {key: (count / total if total else None) for key, count in counts.items()}


def wilson(count: float, n: int, z: float = Z95) -> Interval:
    """Wilson score interval for count/n (clipped to [0, 1] against rounding)."""
    if n <= 0:
        raise ValueError("a proportion needs n > 0")
    if not 0 <= count <= n:
        raise ValueError("count must be between 0 and n")
    p = count / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Difference:
    """A difference of two proportions (or means) with its 95% interval.

    ``first`` and ``second`` are the two sides (estimate = first - second) with their own
    intervals, when they were computed on the same people as the difference.
    """

    estimate: float
    ci95: Interval
    method: str
    n: int | None = None
    """How many people the figure is computed on (for a paired interval: who answered both)."""
    variance: float | None = None
    """The method's own variance of the estimate (for inverse-variance pooling); None when the
    method has none to give (then the room cannot be pooled)."""
    first: float | None = None
    first_ci95: Interval | None = None
    second: float | None = None
    second_ci95: Interval | None = None

    @property
    def se(self) -> float:
        """The standard error implied by the interval's width (for display only: pooling uses
        ``variance``)."""
        return (self.ci95[1] - self.ci95[0]) / (2 * Z95)


def mover(
    first: float,
    first_ci: Interval,
    second: float,
    second_ci: Interval,
    r: float = 0.0,
) -> Interval:
    """The MOVER interval of ``first - second`` from the two sides' own intervals (Zou & Donner
    2008, Stat Med 27:1693; docs/methods.md, "The gap"), ``r`` the correlation of the two
    estimates (0 for independent samples). Newcombe's hybrid score intervals are this with two
    Wilson intervals (``r`` = phi for paired proportions)."""
    d = first - second
    dl1, du1 = first - first_ci[0], first_ci[1] - first
    dl2, du2 = second - second_ci[0], second_ci[1] - second
    lower = d - math.sqrt(max(0.0, dl1**2 - 2 * r * dl1 * du2 + du2**2))
    upper = d + math.sqrt(max(0.0, du1**2 - 2 * r * du1 * dl2 + dl2**2))
    return (lower, upper)


def newcombe_diff(count1: int, n1: int, count2: int, n2: int) -> Difference:
    """p1 - p2 for independent samples, Newcombe's hybrid score interval."""
    p1, p2 = count1 / n1, count2 / n2
    l1, u1 = wilson(count1, n1)
    l2, u2 = wilson(count2, n2)
    # Agresti & Caffo (2000): each share with one yes and one no added, so that a room where a
    # share is 0 or 1 has a variance (and enters a pooled estimate) like its interval says
    t1, t2 = (count1 + 1) / (n1 + 2), (count2 + 1) / (n2 + 2)
    variance = t1 * (1 - t1) / (n1 + 2) + t2 * (1 - t2) / (n2 + 2)
    return Difference(
        p1 - p2,
        mover(p1, (l1, u1), p2, (l2, u2)),
        "newcombe_hybrid_score",
        n=None,
        variance=variance if variance > 0 else None,
        first=p1,
        first_ci95=(l1, u1),
        second=p2,
        second_ci95=(l2, u2),
    )


def newcombe_paired(a: int, b: int, c: int, d: int) -> Difference:
    """p1 - p2 on the same people, Newcombe's paired hybrid score interval (method 10).

    The paired 2x2 table: ``a`` yes/yes, ``b`` yes on the first / no on the second, ``c`` no/yes,
    ``d`` no/no; p1 = (a+b)/n, p2 = (a+c)/n. phi, the correlation of the two answers, uses
    Newcombe's correction (ad - bc reduced by n/2 when positive, 0 when that makes it negative).
    """
    n = a + b + c + d
    if n <= 0:
        raise ValueError("a paired interval needs n > 0")
    x1, x2 = a + b, a + c
    p1, p2 = x1 / n, x2 / n
    l1, u1 = wilson(x1, n)
    l2, u2 = wilson(x2, n)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    phi = 0.0
    if margins > 0:
        cross = a * d - b * c
        if cross > n / 2:
            phi = (cross - n / 2) / math.sqrt(margins)
        elif cross < 0:
            phi = cross / math.sqrt(margins)
    # Bonett & Price (2012): the paired difference's variance with one added to each discordant
    # cell, defined where b = c = 0 (a room where everyone's own view equals their perception is
    # informative: its own interval is not zero-width) and no smaller than that interval allows
    t12, t21 = (b + 1) / (n + 2), (c + 1) / (n + 2)
    variance = (t12 + t21 - (t12 - t21) ** 2) / (n + 2)
    return Difference(
        p1 - p2,
        mover(p1, (l1, u1), p2, (l2, u2), phi),
        "newcombe_paired_method10",
        n=n,
        variance=variance if variance > 0 else None,
        first=p1,
        first_ci95=(l1, u1),
        second=p2,
        second_ci95=(l2, u2),
    )
