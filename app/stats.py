"""The statistics behind every results view: pure functions over counts and linked answers.

Nothing here touches the database or HTTP. ``app.results`` gathers the answers, and an exported
file read back (``app.export``) gives the same inputs, so both produce the same numbers.

Every method, its source, its assumptions, how it is tested and what the app refuses to claim
are in docs/methods.md. In short:

- one proportion: Wilson score interval (Wilson 1927);
- difference of two independent proportions: Newcombe's hybrid score interval (Newcombe 1998,
  Stat Med 17:873, method 10), from the two Wilson intervals;
- difference of two proportions on the same people: Newcombe's paired hybrid score interval
  (Newcombe 1998, Stat Med 17:2635, method 10) with the continuity-corrected correlation phi;
- a mean: Student t interval; two means: Welch t interval; a mean estimate minus a share: the
  MOVER interval (Zou & Donner 2008), paired where the answers are linked;
- stance -> revote: exact McNemar test for two options, Stuart-Maxwell test of marginal
  homogeneity for more (with Bowker's test of symmetry beside it): tests of net change;
- pooling a talk's sessions: inverse-variance weights from each method's own variance, Cochran's
  Q, I^2, the DerSimonian-Laird tau^2, and the Hartung-Knapp-Sidik-Jonkman interval for few
  sessions.

Cells of a breakdown with fewer than ``MIN_CELL`` people are hidden where they are shown.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Any

import numpy as np

ALPHA = 0.05
Z95 = statistics.NormalDist().inv_cdf(1 - ALPHA / 2)
"""The 97.5% point of the standard normal (1.959964...)."""
MIN_CELL = 5
"""A breakdown cell with fewer people than this is shown as "too few"."""
HKSJ_BELOW = 10
"""Pooling fewer sessions than this uses the Hartung-Knapp-Sidik-Jonkman (t) interval."""

Interval = tuple[float, float]
Answer = str | float


# --------------------------------------------------------------------------- distributions
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


# --------------------------------------------------------------------------- small helpers


def too_few(count: int | None, minimum: int = MIN_CELL) -> bool:
    """True for a breakdown cell that must not be shown (it could identify people)."""
    return count is not None and 0 < count < minimum


def shown(count: int, minimum: int = MIN_CELL) -> int | None:
    """The count if it may be shown in a breakdown, None when it is "too few"."""
    return None if too_few(count, minimum) else count


def cell_range(
    table: Sequence[Sequence[int]], hidden: frozenset[tuple[int, int]], cell: tuple[int, int]
) -> tuple[float, float]:
    """The least and the most a hidden cell can hold for a reader who sees the shown cells and
    the row and column totals, each hidden cell any count from 0 (a linear programme: the table's
    polytope has integer corners, so these are the integer bounds)."""
    return cells_range(table, hidden, frozenset([cell]))


def cells_range(
    table: Sequence[Sequence[int]],
    hidden: frozenset[tuple[int, int]],
    cells: frozenset[tuple[int, int]],
) -> tuple[float, float]:
    """``cell_range`` for the sum of several cells."""
    from scipy.optimize import linprog

    rows, cols = len(table), len(table[0])
    a_eq = [[1.0 if k // cols == i else 0.0 for k in range(rows * cols)] for i in range(rows)]
    a_eq += [[1.0 if k % cols == j else 0.0 for k in range(rows * cols)] for j in range(cols)]
    b_eq = [float(sum(r)) for r in table] + [
        float(sum(table[i][j] for i in range(rows))) for j in range(cols)
    ]
    bounds = [
        (0.0, None) if (i, j) in hidden else (float(table[i][j]), float(table[i][j]))
        for i in range(rows)
        for j in range(cols)
    ]
    goal = [0.0] * (rows * cols)
    for i, j in cells:
        goal[i * cols + j] = 1.0
    low = linprog(goal, A_eq=a_eq, b_eq=b_eq, bounds=bounds).fun
    high = -linprog([-g for g in goal], A_eq=a_eq, b_eq=b_eq, bounds=bounds).fun
    return round(float(low), 6), round(float(high), 6)


def suppressed(
    table: Sequence[Sequence[int]], minimum: int = MIN_CELL
) -> frozenset[tuple[int, int]]:
    """The cells of a two-way table that must not be shown: every cell of 1 to ``minimum - 1``
    people and enough others (``_suppressed_lines``), or the whole table where that pattern would
    let a reader who knows this rule work a small cell out.

    The reader sees the shown cells, every row and column total (the phases' own charts give
    them) and which cells are hidden, and can redo this rule on every table that fits. A pattern
    is kept only if, among the tables with the same totals and shown cells that the rule hides
    the same way, no small cell takes a single value; the tables hidden whole must not agree on
    one either (``_hidden_whole``, or ``_pattern_holds`` where too many tables share the totals).
    Each decision depends on nothing but what is shown, so every table a reader cannot tell apart
    gets the same one. See docs/methods.md, "Small cells"."""
    return _suppressed(tuple(tuple(int(v) for v in row) for row in table), minimum)


@lru_cache(maxsize=1024)
def _suppressed(table: tuple[tuple[int, ...], ...], minimum: int) -> frozenset[tuple[int, int]]:
    rows = len(table)
    cols = len(table[0]) if rows else 0
    everything = frozenset((i, j) for i in range(rows) for j in range(cols))
    hidden = _suppressed_lines(table, minimum)
    if not hidden or hidden == everything:
        return hidden
    whole = _hidden_whole(
        tuple(sum(r) for r in table), tuple(sum(c) for c in zip(*table, strict=True)), minimum
    )
    if whole is not None:
        return everything if table in whole else hidden
    return hidden if _pattern_holds(table, hidden, minimum) else everything


TABLES_WALKED = 2_000
"""How many tables with one set of totals ``_hidden_whole`` walks, and how many that a pattern
could hide ``_pattern_holds`` walks before it gives up (and the whole table is hidden)."""


def _open_cells(
    row_totals: Sequence[int], col_totals: Sequence[int], cells: Iterable[tuple[int, int]]
) -> list[tuple[int, int]]:
    """The cells the totals alone leave uncertain (their Frechet bounds differ)."""
    people = sum(row_totals)
    return [
        (i, j)
        for i, j in sorted(cells)
        if max(0, row_totals[i] + col_totals[j] - people) < min(row_totals[i], col_totals[j])
    ]


def _one_small_value(values: set[int], minimum: int) -> bool:
    return len(values) == 1 and too_few(next(iter(values)), minimum)


@lru_cache(maxsize=256)
def _hidden_whole(
    row_totals: tuple[int, ...], col_totals: tuple[int, ...], minimum: int
) -> frozenset[tuple[tuple[int, ...], ...]] | None:
    """Of every table with these totals, the ones hidden whole; None when there are more than
    ``TABLES_WALKED``. A table is hidden whole when its own pattern covers it, or when, among
    the tables that pattern would hide the same way (same hidden cells, same shown counts and
    not hidden whole), a small cell takes one value. And where the tables hidden whole agree on a
    small cell, the first other table with a small cell that differs there joins them (it then
    leaves its pattern's group, which is checked again), until nothing changes."""
    start = _with_totals(row_totals, col_totals)
    everything = frozenset((i, j) for i in range(len(row_totals)) for j in range(len(col_totals)))
    tables = []
    for k, table in enumerate(_fills(start, everything)):
        if k >= TABLES_WALKED:
            return None
        tables.append(table)
    open_cells = _open_cells(row_totals, col_totals, everything)
    pattern = {t: _suppressed_lines(t, minimum) for t in tables}
    whole = {t for t in tables if pattern[t] == everything}
    while True:
        groups: dict[tuple[Any, ...], list[tuple[tuple[int, ...], ...]]] = {}
        for t in tables:
            if pattern[t] and t not in whole:
                shown_counts = tuple(t[i][j] for i, j in sorted(everything - pattern[t]))
                groups.setdefault((pattern[t], shown_counts), []).append(t)
        failing = [
            members
            for (hidden, _), members in groups.items()
            if any(
                _one_small_value({t[i][j] for t in members}, minimum)
                for i, j in open_cells
                if (i, j) in hidden
            )
        ]
        if failing:
            whole.update(t for members in failing for t in members)
            continue
        joining = None
        for i, j in open_cells:
            values = {t[i][j] for t in whole}
            if _one_small_value(values, minimum):
                joining = next(
                    (t for t in tables if pattern[t] and t not in whole and t[i][j] not in values),
                    None,
                )
                if joining is not None:
                    break
        if joining is None:
            return frozenset(whole)
        whole.add(joining)


def _with_totals(
    row_totals: Sequence[int], col_totals: Sequence[int]
) -> tuple[tuple[int, ...], ...]:
    """A table with these totals (the north-west corner rule)."""
    left_row, left_col = list(row_totals), list(col_totals)
    grid = [[0] * len(col_totals) for _ in row_totals]
    for i in range(len(row_totals)):
        for j in range(len(col_totals)):
            grid[i][j] = min(left_row[i], left_col[j])
            left_row[i] -= grid[i][j]
            left_col[j] -= grid[i][j]
    return tuple(tuple(r) for r in grid)


def _pattern_holds(
    table: Sequence[Sequence[int]], hidden: frozenset[tuple[int, int]], minimum: int
) -> bool:
    """Whether, over every table with the same totals and the same cells outside ``hidden`` that
    ``_suppressed_lines`` hides exactly as ``hidden``, each hidden cell that the totals alone
    leave open takes two values or never a small one. Walks the tables in an order fixed by what
    is shown (never by the hidden counts), so its answer is the same for all of them."""
    rows, cols = len(table), len(table[0])
    row_totals = [sum(r) for r in table]
    col_totals = [sum(table[i][j] for i in range(rows)) for j in range(cols)]
    seen: dict[tuple[int, int], set[int]] = {
        cell: set() for cell in _open_cells(row_totals, col_totals, hidden)
    }
    for k, other in enumerate(_fills(table, hidden)):
        if k >= TABLES_WALKED:
            return False
        if all(len(values) > 1 for values in seen.values()):
            return True
        if _suppressed_lines(other, minimum) == hidden:
            for i, j in seen:
                seen[i, j].add(other[i][j])
    return not any(_one_small_value(values, minimum) for values in seen.values())


def _fills(
    table: Sequence[Sequence[int]], hidden: frozenset[tuple[int, int]]
) -> Iterator[tuple[tuple[int, ...], ...]]:
    """Every table with the row and column totals of ``table`` and its cells outside ``hidden``,
    the hidden cells filled in lexicographic order."""
    rows, cols = len(table), len(table[0])
    free = sorted(hidden)
    grid = [list(r) for r in table]
    left_row = [sum(table[i][j] for j in range(cols) if (i, j) in hidden) for i in range(rows)]
    left_col = [sum(table[i][j] for i in range(rows) if (i, j) in hidden) for j in range(cols)]
    last_in_row = {i: k for k, (i, _) in enumerate(free)}
    last_in_col = {j: k for k, (_, j) in enumerate(free)}

    def fill(k: int) -> Iterator[tuple[tuple[int, ...], ...]]:
        if k == len(free):
            yield tuple(tuple(r) for r in grid)
            return
        i, j = free[k]
        most = min(left_row[i], left_col[j])
        if last_in_row[i] == k or last_in_col[j] == k:
            need = left_row[i] if last_in_row[i] == k else left_col[j]
            if last_in_col[j] == k and left_col[j] != need:
                return
            values: Iterable[int] = [need] if need <= most else []
        else:
            values = range(most + 1)
        for value in values:
            grid[i][j] = value
            left_row[i] -= value
            left_col[j] -= value
            yield from fill(k + 1)
            left_row[i] += value
            left_col[j] += value

    yield from fill(0)


def _suppressed_lines(table: Sequence[Sequence[int]], minimum: int) -> frozenset[tuple[int, int]]:
    """The cells of 1 to ``minimum - 1`` people, grown until no row or column holds exactly one
    hidden cell (the complement taken closes a pattern where it can, else is the smallest other
    cell; ``suppressed`` checks what that choice tells)."""
    rows = len(table)
    cols = len(table[0]) if rows else 0
    hidden = {(i, j) for i in range(rows) for j in range(cols) if too_few(table[i][j], minimum)}
    row_lines = [[(i, j) for j in range(cols)] for i in range(rows)]
    col_lines = [[(i, j) for i in range(rows)] for j in range(cols)]

    def crossing_hidden(cell: tuple[int, int], along_row: bool) -> int:
        # hidden cells on the other line through ``cell``: choosing a cell whose column (or
        # row) already hides one closes the pattern without starting a new line
        line = col_lines[cell[1]] if along_row else row_lines[cell[0]]
        return sum(1 for c in line if c in hidden)

    def crossing_total(cell: tuple[int, int], along_row: bool) -> int:
        line = col_lines[cell[1]] if along_row else row_lines[cell[0]]
        return sum(table[i][j] for i, j in line)

    changed = True
    while changed:
        changed = False
        for along_row, lines in ((True, row_lines), (False, col_lines)):
            for line in lines:
                if sum(1 for c in line if c in hidden) != 1:
                    continue
                others = [c for c in line if c not in hidden]
                if not others:
                    continue
                hidden.add(
                    min(
                        others,
                        key=lambda c: (
                            # a cell whose other line holds nobody is known to be 0
                            crossing_total(c, along_row) == 0,
                            -min(1, crossing_hidden(c, along_row)),
                            table[c[0]][c[1]] == 0,
                            table[c[0]][c[1]],
                        ),
                    )
                )
                changed = True
    return frozenset(hidden)


def shares(counts: Mapping[str, int]) -> dict[str, float | None]:
    """Each count as a fraction of their sum; None for every key when the sum is 0."""
    total = sum(counts.values())
    return {key: (count / total if total else None) for key, count in counts.items()}


# --------------------------------------------------------------------------- proportions


def wilson(count: int, n: int, z: float = Z95) -> Interval:
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
    d = p1 - p2
    lower = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = d + math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    variance = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
    return Difference(
        d,
        (lower, upper),
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
    est = p1 - p2
    dl1, du1, dl2, du2 = p1 - l1, u1 - p1, p2 - l2, u2 - p2
    lower = est - math.sqrt(max(0.0, dl1**2 - 2 * phi * dl1 * du2 + du2**2))
    upper = est + math.sqrt(max(0.0, du1**2 - 2 * phi * du1 * dl2 + dl2**2))
    # the large-sample variance of a paired difference: ((b + c) - (b - c)^2 / n) / n^2
    variance = ((b + c) - (b - c) ** 2 / n) / n**2
    return Difference(
        est,
        (lower, upper),
        "newcombe_paired_method10",
        n=n,
        variance=variance if variance > 0 else None,
        first=p1,
        first_ci95=(l1, u1),
        second=p2,
        second_ci95=(l2, u2),
    )


# --------------------------------------------------------------------------- means


@dataclass(frozen=True)
class MeanSummary:
    n: int
    mean: float | None
    median: float | None
    sd: float | None
    ci95: Interval | None
    """Student t interval of the mean (needs n >= 2)."""

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
    half = _t975(n - 1) * sd / math.sqrt(n)
    return MeanSummary(n, mean, median, sd, (mean - half, mean + half))


def welch_diff(first: Sequence[float], second: Sequence[float]) -> Difference | None:
    """mean(first) - mean(second) with a Welch t interval; None when either has n < 2."""
    n1, n2 = len(first), len(second)
    if n1 < 2 or n2 < 2:
        return None
    m1, m2 = math.fsum(first) / n1, math.fsum(second) / n2
    v1, v2 = statistics.variance(first) / n1, statistics.variance(second) / n2
    d = m1 - m2
    se2 = v1 + v2
    if se2 == 0:
        return Difference(d, (d, d), "welch_t", n=n1 + n2)
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


# --------------------------------------------------------------------------- paired tests


@dataclass(frozen=True)
class Test:
    name: str
    statistic: float
    df: int | None
    p_value: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "statistic": self.statistic,
            "df": self.df,
            "p_value": self.p_value,
        }


def mcnemar_exact(b: int, c: int) -> Test:
    """Exact McNemar test on the off-diagonal cells b, c: p = min(1, 2 P(X <= min(b, c)))."""
    low = min(b, c)
    p = min(1.0, 2 * _binom_cdf(low, b + c, 0.5)) if b + c else 1.0
    return Test("mcnemar_exact", float(low), None, p)


def stuart_maxwell(table: Sequence[Sequence[int]]) -> Test:
    """Stuart-Maxwell test of marginal homogeneity for a k x k table of paired answers.

    chi2 = d' V^-1 d over the first k-1 categories, with d the column minus row totals,
    V_ii = n_i. + n_.i - 2 n_ii and V_ij = -(n_ij + n_ji); k-1 degrees of freedom. When that V is
    singular (categories nobody moved into or out of), the full k x k V's pseudo-inverse is used
    with its rank as the degrees of freedom.
    """
    n = np.asarray(table, dtype=float)
    k = n.shape[0]
    row, col = n.sum(axis=1), n.sum(axis=0)
    d_full = col - row
    v_full = -(n + n.T)
    np.fill_diagonal(v_full, row + col - 2 * np.diag(n))
    if k < 2:
        return Test("stuart_maxwell", 0.0, 0, 1.0)
    v, d = v_full[:-1, :-1], d_full[:-1]
    df = k - 1
    if np.linalg.matrix_rank(v) == k - 1:
        statistic = float(d @ np.linalg.solve(v, d))
    else:
        df = int(np.linalg.matrix_rank(v_full))
        statistic = float(d_full @ np.linalg.pinv(v_full) @ d_full) if df else 0.0
    p = _chi2_sf(statistic, df) if df else 1.0
    return Test("stuart_maxwell", statistic, df, p)


def bowker(table: Sequence[Sequence[int]]) -> Test:
    """Bowker's test of symmetry: sum over i<j of (n_ij - n_ji)^2 / (n_ij + n_ji)."""
    n = np.asarray(table, dtype=float)
    k = n.shape[0]
    statistic = 0.0
    for i in range(k):
        for j in range(i + 1, k):
            total = n[i, j] + n[j, i]
            if total > 0:
                statistic += float((n[i, j] - n[j, i]) ** 2 / total)
    df = k * (k - 1) // 2
    return Test("bowker", statistic, df, _chi2_sf(statistic, df) if df else 1.0)


# --------------------------------------------------------------------------- pooling


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
    """Hartung-Knapp-Sidik-Jonkman interval of the random-effects estimate (t, k - 1 df)."""
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


# --------------------------------------------------------------------------- a session's data


@dataclass(frozen=True)
class PhaseSpec:
    """What the statistics need to know about a phase."""

    key: str
    kind: str
    options: tuple[str, ...] = ()
    of_key: str | None = None
    holds: tuple[str, ...] = ()
    min_value: float | None = None
    max_value: float | None = None

    @property
    def is_estimate(self) -> bool:
        return self.min_value is not None


@dataclass(frozen=True)
class Dataset:
    """A session's (or a pooled talk's) phases and answers.

    ``answers[phase_key][participant]`` is an option key or, for a % estimate phase, a number.
    A participant appears at most once per phase by construction.
    """

    phases: tuple[PhaseSpec, ...]
    answers: Mapping[str, Mapping[str, Answer]]

    def phase(self, key: str) -> PhaseSpec | None:
        return next((p for p in self.phases if p.key == key), None)

    def of(self, key: str) -> Mapping[str, Answer]:
        return self.answers.get(key, {})


@dataclass(frozen=True)
class PhaseStats:
    key: str
    n: int
    counts: dict[str, int] = field(default_factory=dict)
    shares: dict[str, float | None] = field(default_factory=dict)
    ci95: dict[str, Interval | None] = field(default_factory=dict)
    estimate: MeanSummary | None = None
    histogram: list[Bin] = field(default_factory=list)


def count_options(options: Sequence[str], answers: Iterable[Answer]) -> dict[str, int]:
    counts = dict.fromkeys(options, 0)
    for answer in answers:
        if isinstance(answer, str) and answer in counts:
            counts[answer] += 1
    return counts


def option_stats(key: str, counts: Mapping[str, int]) -> PhaseStats:
    n = sum(counts.values())
    return PhaseStats(
        key=key,
        n=n,
        counts=dict(counts),
        shares=shares(counts),
        ci95={option: (wilson(c, n) if n else None) for option, c in counts.items()},
    )


def estimate_stats(spec: PhaseSpec, values: Sequence[float]) -> PhaseStats:
    lower = spec.min_value if spec.min_value is not None else 0.0
    upper = spec.max_value if spec.max_value is not None else 100.0
    return PhaseStats(
        key=spec.key,
        n=len(values),
        estimate=mean_summary(values),
        histogram=histogram(values, lower, upper),
    )


def phase_stats(spec: PhaseSpec, answers: Mapping[str, Answer]) -> PhaseStats:
    if spec.is_estimate:
        return estimate_stats(spec, [float(v) for v in answers.values() if not isinstance(v, str)])
    return option_stats(spec.key, count_options(spec.options, answers.values()))


def _scale(spec: PhaseSpec) -> float:
    """The width of a % estimate's range, to turn an estimate into a fraction."""
    lower = spec.min_value or 0.0
    upper = spec.max_value if spec.max_value is not None else 100.0
    return (upper - lower) or 1.0


def _as_share(spec: PhaseSpec, value: float) -> float:
    return (value - (spec.min_value or 0.0)) / _scale(spec)


# --------------------------------------------------------------------------- the gap


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


def _t_interval(values: Sequence[float], lower: float = 0.0, upper: float = 1.0) -> Interval:
    """Student t 95% interval of a mean; with one value, all that the range allows."""
    summary = mean_summary(values)
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
    """The answers are linked, but the paired figures would show the estimates of a group of 1
    to 4 people, so the headline is the independent one (``estimate_shown``)."""

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
            only_stance=len(set(own) - set(values)),
            only_perceived=len(set(values) - set(own)),
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
        only_stance=len(set(own) - set(seen)),
        only_perceived=len(set(seen) - set(own)),
    )


# --------------------------------------------------------------------------- cross-tabs


Cell = tuple[int, int]


def _indexes(
    cells: frozenset[tuple[str, str]], rows: Sequence[str], cols: Sequence[str]
) -> frozenset[Cell]:
    """(row, column) answers as indexes, leaving out answers the table does not have."""
    return frozenset((rows.index(r), cols.index(c)) for r, c in cells if r in rows and c in cols)


@dataclass(frozen=True)
class CrossTab:
    """Participants who answered both phases: rows = first phase, columns = second."""

    rows_phase: str
    cols_phase: str
    rows: tuple[str, ...]
    cols: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]
    n: int
    also_hidden: frozenset[tuple[str, str]] = frozenset()
    """(row, column) answers hidden whatever the counts: a talk's pooled table hides every cell
    that one of its sessions hides (``analyze``)."""

    def cell(self, row: str, col: str) -> int:
        return self.counts[self.rows.index(row)][self.cols.index(col)]

    @cached_property
    def hidden(self) -> frozenset[tuple[int, int]]:
        """The (row, column) indexes of cells no output may show (``suppressed``)."""
        return suppressed(self.counts) | _indexes(self.also_hidden, self.rows, self.cols)

    def is_hidden(self, row: str, col: str) -> bool:
        return (self.rows.index(row), self.cols.index(col)) in self.hidden

    def hides_outside(self, rows: Sequence[str]) -> bool:
        """Whether a hidden cell lies in a row not among ``rows`` (a sum over those rows would
        then give it back)."""
        return any(self.rows[i] not in rows for i, _j in self.hidden)

    def row_total(self, row: str) -> int:
        return sum(self.counts[self.rows.index(row)])

    def row_share(self, row: str, col: str) -> float | None:
        total = self.row_total(row)
        return self.cell(row, col) / total if total else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows_phase,
            "cols": self.cols_phase,
            "n": self.n,
            "counts": {
                r: dict(zip(self.cols, self.counts[i], strict=True))
                for i, r in enumerate(self.rows)
            },
            "hidden": [[self.rows[i], self.cols[j]] for i, j in sorted(self.hidden)],
        }


def crosstab(
    rows_phase: PhaseSpec,
    rows_answers: Mapping[str, Answer],
    cols_phase: PhaseSpec,
    cols_answers: Mapping[str, Answer],
) -> CrossTab:
    rows, cols = rows_phase.options, cols_phase.options
    index_r = {k: i for i, k in enumerate(rows)}
    index_c = {k: i for i, k in enumerate(cols)}
    table = [[0] * len(cols) for _ in rows]
    n = 0
    for participant, first in rows_answers.items():
        second = cols_answers.get(participant)
        if isinstance(second, str) and first in index_r and second in index_c:
            table[index_r[str(first)]][index_c[second]] += 1
            n += 1
    return CrossTab(
        rows_phase=rows_phase.key,
        cols_phase=cols_phase.key,
        rows=tuple(rows),
        cols=tuple(cols),
        counts=tuple(tuple(r) for r in table),
        n=n,
    )


@dataclass(frozen=True)
class Ignorance:
    """Pluralistic ignorance in one number: of those who do not hold the view, how many think
    most of the field does."""

    non_holders: int
    perceive_majority: int

    @property
    def share(self) -> float | None:
        return self.perceive_majority / self.non_holders if self.non_holders else None


def ignorance(table: CrossTab, holds: Sequence[str]) -> Ignorance:
    non_holders = perceive = 0
    for i, row in enumerate(table.rows):
        if row in holds:
            continue
        for j, col in enumerate(table.cols):
            non_holders += table.counts[i][j]
            if col in holds:
                perceive += table.counts[i][j]
    return Ignorance(non_holders, perceive)


# --------------------------------------------------------------------------- the shift


@dataclass(frozen=True)
class Shift:
    """Stance -> revote over the participants who answered both (None until someone revoted)."""

    from_phase: str
    to_phase: str
    options: tuple[str, ...]
    matrix: tuple[tuple[int, ...], ...]
    n_paired: int
    only_first: int
    """Answered the stance phase but not the revote (dropped)."""
    only_second: int
    """Answered the revote but not the stance phase (dropped)."""
    test: Test | None
    symmetry: Test | None = None
    also_hidden: frozenset[tuple[str, str]] = frozenset()
    """As ``CrossTab.also_hidden``: (first, second) answers hidden whatever the counts."""

    def row_total(self, option: str) -> int:
        return sum(self.matrix[self.options.index(option)])

    def cell(self, first: str, second: str) -> int:
        return self.matrix[self.options.index(first)][self.options.index(second)]

    @cached_property
    def hidden(self) -> frozenset[tuple[int, int]]:
        """The (first, second) indexes of matrix cells no output may show (``suppressed``)."""
        return suppressed(self.matrix) | _indexes(self.also_hidden, self.options, self.options)

    def is_hidden(self, first: str, second: str) -> bool:
        return (self.options.index(first), self.options.index(second)) in self.hidden

    @property
    def changed_hidden(self) -> bool:
        """Whether the number who changed would give a hidden cell back (a hidden diagonal)."""
        return any(i == j for i, j in self.hidden)

    def row_share(self, first: str, second: str) -> float | None:
        total = self.row_total(first)
        return self.cell(first, second) / total if total else None

    def changed_share(self, first: str) -> float | None:
        total = self.row_total(first)
        if not total:
            return None
        return (total - self.cell(first, first)) / total

    @property
    def changed(self) -> int:
        return self.n_paired - sum(self.matrix[i][i] for i in range(len(self.options)))

    @property
    def dropped(self) -> int:
        return self.only_first + self.only_second

    def column_total(self, option: str) -> int:
        j = self.options.index(option)
        return sum(row[j] for row in self.matrix)


def shift(data: Dataset, revote_key: str | None = None) -> Shift | None:
    revote = next(
        (p for p in data.phases if p.kind == "revote" and revote_key in (None, p.key)), None
    )
    if revote is None or revote.of_key is None:
        return None
    stance = data.phase(revote.of_key)
    if stance is None or stance.is_estimate:
        return None
    first, second = data.of(stance.key), data.of(revote.key)
    options = stance.options
    index = {k: i for i, k in enumerate(options)}
    matrix = [[0] * len(options) for _ in options]
    valid_first = {p for p, a in first.items() if isinstance(a, str) and a in index}
    valid_second = {p for p, a in second.items() if isinstance(a, str) and a in index}
    if not valid_second:
        return None  # the revote has not been answered: no shift to show yet
    both = valid_first & valid_second
    for p in both:
        matrix[index[str(first[p])]][index[str(second[p])]] += 1
    if not both:
        test = None
        symmetry = None
    elif len(options) == 2:
        test = mcnemar_exact(matrix[0][1], matrix[1][0])
        symmetry = None
    else:
        test = stuart_maxwell(matrix)
        symmetry = bowker(matrix)
    return Shift(
        from_phase=stance.key,
        to_phase=revote.key,
        options=tuple(options),
        matrix=tuple(tuple(r) for r in matrix),
        n_paired=len(both),
        only_first=len(valid_first - valid_second),
        only_second=len(valid_second - valid_first),
        test=test,
        symmetry=symmetry,
    )


# --------------------------------------------------------------------------- everything at once


@dataclass(frozen=True)
class Analysis:
    phases: dict[str, PhaseStats]
    gap: Gap | None
    shift: Shift | None
    perceived_crosstab: CrossTab | None
    ignorance: Ignorance | None
    definition_crosstab: CrossTab | None


WIDENED = "_widened"
"""Ends the method name of an interval widened so that it gives no hidden cell back."""


def covering_paired(the_gap: Gap, table: CrossTab) -> Gap:
    """The gap with its paired interval widened so that it gives no hidden cell of ``table``
    (the stance x perceived cross-tab) back.

    Newcombe's paired interval depends on how many people both hold the view and think most of
    the field does: a cell (or a sum of cells) of that table. Where the table hides it, the
    interval, beside the shown cells and the totals, would tell it. The union of the intervals
    over every count the shown cells and the totals allow depends on nothing hidden, and still
    covers the difference at least 95% of the time (it contains the interval of the true count).
    The variance is the largest of theirs, so that pooling gives the room no more weight than the
    shown figures support. See docs/methods.md, "Small cells"."""
    paired = the_gap.paired
    if paired is None or the_gap.kind != "categorical" or not table.hidden:
        return the_gap
    if (table.rows_phase, table.cols_phase) != (the_gap.stance, the_gap.perceived):
        return the_gap
    both = frozenset(
        (i, j)
        for i, row in enumerate(table.rows)
        for j, col in enumerate(table.cols)
        if row in the_gap.holds and col in the_gap.holds
    )
    if not both & table.hidden or paired.n != table.n:
        return the_gap
    low, high = cells_range(table.counts, table.hidden, both)
    least, most = math.ceil(low - 1e-6), math.floor(high + 1e-6)
    if least >= most:
        return the_gap
    n = table.n
    own = sum(table.row_total(r) for r in table.rows if r in the_gap.holds)
    seen = sum(
        table.counts[i][j]
        for i in range(len(table.rows))
        for j, col in enumerate(table.cols)
        if col in the_gap.holds
    )
    figures = [
        newcombe_paired(a, seen - a, own - a, n - seen - own + a) for a in range(least, most + 1)
    ]
    variances = [f.variance for f in figures if f.variance is not None]
    widened = replace(
        paired,
        ci95=(min(f.ci95[0] for f in figures), max(f.ci95[1] for f in figures)),
        method=f"{paired.method}{WIDENED}",
        variance=max(variances) if variances else None,
    )
    return replace(the_gap, paired=widened)


def estimate_shown(the_gap: Gap, also: Hiding | None = None) -> Gap:
    """The 0-100 estimate gap as outputs may show it: no figure tells how the estimates of a
    group of 1 to 4 people came out (docs/methods.md, "Estimates").

    Public are the estimate phase's own figures (everyone who answered it), the stance's counts
    and how many answered both or only one question. The paired figures are over those who
    answered both: beside the phase's own, they give back the mean of those who answered only
    the estimate, and their own share tells the stance of those who gave the only estimates; so
    where either group has 1 to 4 people, the headline is the independent comparison, which
    uses the phases' own figures alone (``apart``). The split by own answer (false consensus) is
    shown only when neither group has 1 to 4 people (else the other's mean beside everyone's
    gives it back). Where it is not shown, the paired interval must not depend on it either: its
    correlation r of estimate and own answer is the split in another form (with the shown
    share and spread, r gives the two groups' means), so the interval is the union over every r
    from -1 to 1, the r = -1 one: [lower estimate - upper share, upper estimate - lower share];
    its variance for pooling is the largest any r allows.

    ``also``: a talk's pooled answers are apart, or hide their split, wherever one of its
    sessions does (else the pooled figure minus the other sessions' shown ones gives that
    session's back)."""
    paired, fc = the_gap.paired, the_gap.false_consensus
    if the_gap.kind != "estimate" or paired is None or fc is None:
        return the_gap
    also = also or Hiding()
    n, late = paired.n or 0, the_gap.only_perceived
    apart = too_few(n) or too_few(late) or also.apart
    split = not apart and not (too_few(fc.holders_n) or too_few(fc.others_n) or also.split)
    out = replace(the_gap, apart=apart, false_consensus=replace(fc, shown=split))
    if apart or split or paired.first_ci95 is None or paired.second_ci95 is None:
        return out
    (low1, high1), (low2, high2) = paired.first_ci95, paired.second_ci95
    variance = None
    if n >= 2 and paired.second is not None:
        # var(estimate - holds) = var(e) + var(h) - 2 r sd(e) sd(h) is largest at r = -1; sd(e)
        # is the one the estimate's t interval was drawn from
        sd_estimates = (high1 - low1) / 2 * math.sqrt(n) / _t975(n - 1)
        sd_flags = math.sqrt(paired.second * (1 - paired.second) * n / (n - 1))
        variance = (sd_estimates + sd_flags) ** 2 / n
    widened = replace(
        paired,
        ci95=(low1 - high2, high1 - low2),
        method=f"{paired.method}{WIDENED}",
        variance=variance or None,
    )
    return replace(out, paired=widened)


@dataclass(frozen=True)
class Hiding:
    """What an analysis hides whatever its own counts: a talk's pooled answers hide everything
    that one of its sessions hides, so that a pooled figure minus the other sessions' shown ones
    gives nothing hidden back (docs/methods.md, "Small cells" and "Estimates")."""

    cells: Mapping[str, frozenset[tuple[str, str]]] = field(default_factory=dict)
    """Table name ("shift", "stance_perceived", "definition_stance") -> (row, column) answers."""
    split: bool = False
    """The 0-100 estimates split by own answer (``FalseConsensus.shown``)."""
    apart: bool = False
    """The paired 0-100 estimate figures (``Gap.apart``)."""

    def __or__(self, other: Hiding) -> Hiding:
        names = set(self.cells) | set(other.cells)
        return Hiding(
            {n: self.cells.get(n, frozenset()) | other.cells.get(n, frozenset()) for n in names},
            self.split or other.split,
            self.apart or other.apart,
        )

    def of(self, table: str) -> frozenset[tuple[str, str]]:
        return self.cells.get(table, frozenset())


def hidden(analysis: Analysis) -> Hiding:
    """What an analysis hides, as answers (for ``analyze``'s ``also_hidden``)."""
    cells: dict[str, frozenset[tuple[str, str]]] = {}
    if analysis.shift is not None:
        options = analysis.shift.options
        cells["shift"] = frozenset((options[i], options[j]) for i, j in analysis.shift.hidden)
    for name, tab in (
        ("stance_perceived", analysis.perceived_crosstab),
        ("definition_stance", analysis.definition_crosstab),
    ):
        if tab is not None:
            cells[name] = frozenset((tab.rows[i], tab.cols[j]) for i, j in tab.hidden)
    the_gap = analysis.gap
    fc = the_gap.false_consensus if the_gap is not None else None
    return Hiding(
        cells,
        split=fc is not None and not fc.shown,
        apart=the_gap is not None and the_gap.apart,
    )


def analyze(data: Dataset, also_hidden: Hiding | None = None) -> Analysis:
    """Every statistic of a session (or of a talk's pooled answers). ``also_hidden``: what to
    hide whatever the counts; a talk's pooled answers hide everything that a session hides, so
    that a pooled figure minus the other sessions' shown ones gives nothing hidden back
    (docs/methods.md, "Small cells")."""
    also = also_hidden or Hiding()
    phases = {spec.key: phase_stats(spec, data.of(spec.key)) for spec in data.phases}
    the_gap = gap(data)
    perceived_tab = ignorance_ = definition_tab = None
    stance = next((p for p in data.phases if p.kind == "stance"), None)
    if stance is not None:
        perceived = next(
            (
                p
                for p in data.phases
                if p.kind == "perceived" and p.of_key == stance.key and not p.is_estimate
            ),
            None,
        )
        if perceived is not None:
            perceived_tab = replace(
                crosstab(stance, data.of(stance.key), perceived, data.of(perceived.key)),
                also_hidden=also.of("stance_perceived"),
            )
            if stance.holds:
                ignorance_ = ignorance(perceived_tab, stance.holds)
            if the_gap is not None:
                the_gap = covering_paired(the_gap, perceived_tab)
        choice = next((p for p in data.phases if p.kind == "choice" and not p.is_estimate), None)
        if choice is not None:
            definition_tab = replace(
                crosstab(choice, data.of(choice.key), stance, data.of(stance.key)),
                also_hidden=also.of("definition_stance"),
            )
    if the_gap is not None:
        the_gap = estimate_shown(the_gap, also)
    the_shift = shift(data)
    if the_shift is not None:
        the_shift = replace(the_shift, also_hidden=also.of("shift"))
    return Analysis(
        phases=phases,
        gap=the_gap,
        shift=the_shift,
        perceived_crosstab=perceived_tab,
        ignorance=ignorance_,
        definition_crosstab=definition_tab,
        # Prelec's "surprisingly popular" answer needs predictions about this room; the app asks
        # about the field, so the premise does not hold and nothing is claimed (docs/methods.md).
    )


def merge(datasets: Mapping[str, Dataset]) -> Dataset:
    """Pool sessions of one talk: the union of their answers, each participant id prefixed
    with its session's code (participants are never shared between sessions)."""
    phases: dict[str, PhaseSpec] = {}
    answers: dict[str, dict[str, Answer]] = {}
    for code, data in datasets.items():
        for spec in data.phases:
            phases.setdefault(spec.key, spec)
        for key, by_participant in data.answers.items():
            target = answers.setdefault(key, {})
            for participant, answer in by_participant.items():
                target[f"{code}:{participant}"] = answer
    return Dataset(phases=tuple(phases.values()), answers=answers)
