"""Answers of the same people to two phases: the cross-tabs, the shift from stance to revote
and its tests of net change (McNemar, Stuart-Maxwell, Bowker)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from app.stats.data import Dataset, PhaseSpec
from app.stats.disclosure import MIN_CELL, sums_told
from app.stats.distributions import Answer, _binom_cdf, _chi2_sf


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


Cell = tuple[int, int]


def _suppressed_cells(table: Sequence[Sequence[int]], minimum: int = MIN_CELL) -> frozenset[Cell]:
    """``suppressed`` (app.stats.disclosure) as the package names it, looked up there at each
    call: ``app.stats.suppressed`` is the name the rest of the app and the tests know it by (the
    disclosure tests stand in for it there). ``minimum``: the session's threshold."""
    from app import stats

    if minimum == MIN_CELL:
        return stats.suppressed(table)
    return stats.suppressed(table, minimum)


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
    minimum: int = MIN_CELL
    """Cells with fewer people than this are hidden (the session's threshold)."""

    def cell(self, row: str, col: str) -> int:
        return self.counts[self.rows.index(row)][self.cols.index(col)]

    @cached_property
    def hidden(self) -> frozenset[tuple[int, int]]:
        """The (row, column) indexes of cells no output may show (``suppressed``)."""
        return _suppressed_cells(self.counts, self.minimum) | _indexes(
            self.also_hidden, self.rows, self.cols
        )

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
    minimum: int = MIN_CELL
    """Cells with fewer people than this are hidden (the session's threshold)."""

    def row_total(self, option: str) -> int:
        return sum(self.matrix[self.options.index(option)])

    def cell(self, first: str, second: str) -> int:
        return self.matrix[self.options.index(first)][self.options.index(second)]

    @cached_property
    def hidden(self) -> frozenset[tuple[int, int]]:
        """The (first, second) indexes of matrix cells no output may show (``suppressed``)."""
        return _suppressed_cells(self.matrix, self.minimum) | _indexes(
            self.also_hidden, self.options, self.options
        )

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
        only_first=len(valid_first - valid_second - data.apart),
        only_second=len(valid_second - valid_first - data.apart),
        test=test,
        symmetry=symmetry,
    )


@dataclass(frozen=True)
class Movement:
    """How many of the paired people changed their answer, and, where the talk names the view,
    how many moved to it and away from it (``towards`` and ``away`` are None when only the
    number who changed may be told)."""

    changed: int
    n: int
    towards: int | None = None
    away: int | None = None


def movement(
    shift: Shift, holds: Sequence[str] = (), minimum: int | None = None
) -> Movement | None:
    """What may be said of how the room moved (``sums_told``): who changed, and who moved to an
    answer that holds the view from one that does not, or away; None where even the number who
    changed would give a hidden cell back, and where the table hides cells whatever the counts
    (a talk's pooled table)."""
    if not shift.n_paired or shift.also_hidden:
        return None
    k = len(shift.options)
    held = {i for i, o in enumerate(shift.options) if o in holds}
    changed = frozenset((i, j) for i in range(k) for j in range(k) if i != j)
    towards = frozenset((i, j) for i, j in changed if i not in held and j in held)
    away = frozenset((i, j) for i, j in changed if i in held and j not in held)
    levels = [[changed, towards], [changed]] if held and len(held) < k else [[changed]]
    level = sums_told(shift.matrix, levels, shift.minimum if minimum is None else minimum)
    if level == len(levels):
        return None

    def total(cells: frozenset[tuple[int, int]]) -> int:
        return sum(shift.matrix[i][j] for i, j in cells)

    if len(levels[level]) == 2:
        return Movement(total(changed), shift.n_paired, total(towards), total(away))
    return Movement(total(changed), shift.n_paired)


@dataclass(frozen=True)
class HeldTable:
    """The revote matrix coarsened to whether each answer holds the view, before x after: what
    the revote slide's sentence says, as a table (given the public totals, its four counts
    follow from "towards" alone, so it tells nothing the sentence does not)."""

    kept: int
    """Held the view before and after (between two answers that hold it, if several do)."""
    left: int
    """Held it before, not after: "away"."""
    came: int
    """Did not hold it before, did after: "towards"."""
    neither: int
    """Held it neither time (moves between two answers that do not hold it included)."""
    changed: int
    n: int


def held_table(
    shift: Shift, holds: Sequence[str] = (), minimum: int | None = None
) -> HeldTable | None:
    """``movement``'s direction as a 2x2 table, where the direction may be told; None else."""
    moved = movement(shift, holds, minimum)
    if moved is None or moved.towards is None or moved.away is None:
        return None
    before = sum(shift.row_total(o) for o in shift.options if o in holds)
    return HeldTable(
        kept=before - moved.away,
        left=moved.away,
        came=moved.towards,
        neither=moved.n - before - moved.towards,
        changed=moved.changed,
        n=moved.n,
    )
