"""Small cells: which cells of a breakdown no output may show, and what a reader who sees the
rest can work out about a hidden one (docs/methods.md, "Small cells")."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any

MIN_CELL = 5
"""A breakdown cell with fewer people than this is shown as "too few"."""


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
    if _more_tables_than(row_totals, col_totals, TABLES_WALKED):
        return None
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


def _more_tables_than(row_totals: Sequence[int], col_totals: Sequence[int], most: int) -> bool:
    """Whether more than ``most`` tables have these totals, counted without walking them for a
    3x3 table (for each of the first row's fills, the second row's are the lattice points of a
    box cut by a strip, counted in closed form); other shapes are walked."""
    if len(row_totals) != 3 or len(col_totals) != 3:
        start = _with_totals(row_totals, col_totals)
        everything = frozenset(
            (i, j) for i in range(len(row_totals)) for j in range(len(col_totals))
        )
        return any(k >= most for k, _ in enumerate(_fills(start, everything)))
    import numpy as np

    r0, r1, _r2 = row_totals
    c0, c1, c2 = col_totals
    a00, a01 = np.meshgrid(np.arange(min(r0, c0) + 1), np.arange(min(r0, c1) + 1), indexing="ij")
    a02 = r0 - a00 - a01
    ok = (a02 >= 0) & (a02 <= c2)
    left0, left1, left2 = c0 - a00, c1 - a01, c2 - a02

    def triangle(s: Any) -> Any:
        return np.where(s >= 0, (s + 1) * (s + 2) // 2, 0)

    def under(s: Any) -> Any:
        # pairs 0 <= x <= left0, 0 <= y <= left1 with x + y <= s
        return (
            triangle(s)
            - triangle(s - left0 - 1)
            - triangle(s - left1 - 1)
            + triangle(s - left0 - left1 - 2)
        )

    # the second row: a10 + a11 between r1 - left2 and r1 (a12 = r1 - a10 - a11 fits left2)
    count = np.where(ok, under(np.full_like(a00, r1)) - under(r1 - left2 - 1), 0)
    return int(count.sum()) > most


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


@lru_cache(maxsize=16)
def _lines(
    rows: int, cols: int
) -> tuple[list[list[tuple[int, int]]], dict[tuple[int, int], list[int]]]:
    """The lines of a table of this shape whose sums a reader knows or may be told (its rows,
    its columns and, in a square table, its diagonal), and the lines through each cell."""
    lines = [[(i, j) for j in range(cols)] for i in range(rows)]
    lines += [[(i, j) for i in range(rows)] for j in range(cols)]
    if rows == cols:
        lines.append([(i, i) for i in range(rows)])
    through = {
        (i, j): [k for k, line in enumerate(lines) if (i, j) in line]
        for i in range(rows)
        for j in range(cols)
    }
    return lines, through


def _suppressed_lines(table: Sequence[Sequence[int]], minimum: int) -> frozenset[tuple[int, int]]:
    """Nothing in a table without a cell of 1 to ``minimum - 1`` people. Otherwise every cell
    under ``minimum`` (0 included, where its row and column hold somebody), grown until no line
    holds exactly one hidden cell: a line is a row, a column and, in a square table, the diagonal
    (its sum is the number who kept their answer, which the revote slide may tell). The
    complement taken is a cell whose other line already hides one where there is such a cell,
    else the smallest; ``suppressed`` checks what that choice tells.

    Hiding the 0s and 1-4s alike means the other tables a reader cannot tell apart (cells moved
    around a cycle of hidden cells) are mostly hidden the same way: a pattern that hid only the
    1-4s changed as soon as a hidden 2 became a 0, which left the real table alone in its group
    and so hid the whole table."""
    rows = len(table)
    cols = len(table[0]) if rows else 0
    if not any(too_few(v, minimum) for row in table for v in row):
        return frozenset()
    row_totals = [sum(r) for r in table]
    col_totals = [sum(table[i][j] for i in range(rows)) for j in range(cols)]
    hidden = {
        (i, j)
        for i in range(rows)
        for j in range(cols)
        if table[i][j] < minimum and row_totals[i] and col_totals[j]
    }
    lines, through = _lines(rows, cols)

    def crossing_hidden(cell: tuple[int, int], line: int) -> int:
        # hidden cells on the other lines through ``cell``: choosing a cell whose other line
        # already hides one closes the pattern without starting a new line
        return sum(1 for k in through[cell] if k != line for c in lines[k] if c in hidden)

    changed = True
    while changed:
        changed = False
        for k, line in enumerate(lines):
            if sum(1 for c in line if c in hidden) != 1:
                continue
            # a cell in a row or column of nobody is known to be 0: it protects nothing
            others = [c for c in line if c not in hidden and row_totals[c[0]] and col_totals[c[1]]]
            if not others:
                continue
            hidden.add(min(others, key=lambda c: (-min(1, crossing_hidden(c, k)), -c[0], -c[1])))
            changed = True
    return frozenset(hidden)


def _alike(
    table: tuple[tuple[int, ...], ...], hidden: frozenset[tuple[int, int]], minimum: int
) -> list[tuple[tuple[int, ...], ...]] | None:
    """The tables a reader cannot tell apart from ``table`` shown as ``suppressed`` shows it
    (same totals, same shown cells, hidden the same way); None when there are too many to walk.

    Where the table is hidden whole, they are the tables ``_hidden_whole`` hides whole. Else
    they are the fills of the hidden cells that ``_suppressed_lines`` hides the same way and
    that are not hidden whole: ``suppressed`` keeps a pattern for all of them or for none, so
    redoing it on each is not needed."""
    rows, cols = len(table), len(table[0])
    row_totals = tuple(sum(r) for r in table)
    col_totals = tuple(sum(table[i][j] for i in range(rows)) for j in range(cols))
    whole = _hidden_whole(row_totals, col_totals, minimum)
    if len(hidden) == rows * cols:
        return None if whole is None else sorted(whole)
    alike = []
    for k, other in enumerate(_fills(table, hidden)):
        if k >= TABLES_WALKED:
            return None
        if _suppressed_lines(other, minimum) == hidden and (whole is None or other not in whole):
            alike.append(other)
    return alike


def sums_told(
    table: Sequence[Sequence[int]],
    levels: Sequence[Sequence[frozenset[tuple[int, int]]]],
    minimum: int = MIN_CELL,
) -> int:
    """Which of several ways of summing cells may be told beside a table shown as ``suppressed``
    shows it: the index of the first level (each a list of sums of cells, the most detailed
    first) whose sums give no small hidden cell away, ``len(levels)`` when none may be.

    The reader sees the shown cells, the row and column totals, which cells are hidden and the
    sums told, and knows this rule. Of the tables the reader cannot tell apart without the sums
    (same totals, same shown cells, hidden the same way), the tables with the same sums at a
    level are told them only if no small cell that the totals leave open takes a single value
    among them; a table none of whose levels may be told is told nothing, and if the tables told
    nothing would then agree on a small cell, none of them is told anything. Every decision
    depends only on what the reader sees, so every table it cannot tell apart gets the same.
    Where more than ``TABLES_WALKED`` tables share what is shown, nothing is told."""
    frozen = tuple(tuple(int(v) for v in row) for row in table)
    return _sums_told(frozen, tuple(tuple(level) for level in levels), minimum)


@lru_cache(maxsize=256)
def _sums_told(
    table: tuple[tuple[int, ...], ...],
    levels: tuple[tuple[frozenset[tuple[int, int]], ...], ...],
    minimum: int,
) -> int:
    hidden = _suppressed(table, minimum)
    if not hidden:
        return 0
    rows, cols = len(table), len(table[0])
    row_totals = tuple(sum(r) for r in table)
    col_totals = tuple(sum(table[i][j] for i in range(rows)) for j in range(cols))
    seen = tuple(table[i][j] for i in range(rows) for j in range(cols) if (i, j) not in hidden)
    key = (row_totals, col_totals, hidden, seen, levels, minimum)
    try:
        told = _TOLD[key]
    except KeyError:
        told = _told(table, hidden, levels, minimum)
        if len(_TOLD) >= 256:
            _TOLD.clear()
        _TOLD[key] = told
    return len(levels) if told is None else told.get(table, len(levels))


_TOLD: dict[tuple[Any, ...], dict[tuple[tuple[int, ...], ...], int] | None] = {}
"""``_told`` by what the reader sees (totals, hidden cells, shown counts, the sums, the
threshold): one decision for all the tables it cannot tell apart."""


def _told(
    table: tuple[tuple[int, ...], ...],
    hidden: frozenset[tuple[int, int]],
    levels: tuple[tuple[frozenset[tuple[int, int]], ...], ...],
    minimum: int,
) -> dict[tuple[tuple[int, ...], ...], int] | None:
    """``sums_told``'s decision for every table a reader cannot tell apart from ``table`` (the
    same totals, the same shown cells, hidden as ``hidden``), made once for all of them: the
    level each is told (tables told nothing are left out); None where there are too many such
    tables to walk."""
    rows, cols = len(table), len(table[0])
    row_totals = [sum(r) for r in table]
    col_totals = [sum(table[i][j] for i in range(rows)) for j in range(cols)]
    alike = _alike(table, hidden, minimum)
    if alike is None:
        return None
    open_cells = _open_cells(row_totals, col_totals, hidden)

    def pins(group: Sequence[tuple[tuple[int, ...], ...]]) -> bool:
        return any(_one_small_value({t[i][j] for t in group}, minimum) for i, j in open_cells)

    def sums(t: tuple[tuple[int, ...], ...], level: int) -> tuple[int, ...]:
        return tuple(sum(t[i][j] for i, j in cells) for cells in levels[level])

    told: dict[tuple[tuple[int, ...], ...], int] = {}
    left = list(alike)
    for level in range(len(levels)):
        groups: dict[tuple[int, ...], list[tuple[tuple[int, ...], ...]]] = {}
        for t in left:
            groups.setdefault(sums(t, level), []).append(t)
        for members in groups.values():
            if not pins(members):
                told.update((t, level) for t in members)
        left = [t for t in left if t not in told]
    # the tables told nothing must not agree on a small cell either: a group told something
    # joins them, one at a time, until they do not: a group whose joining is enough where there
    # is one, of the least detailed level, with the largest sums (the most people changed, the
    # least likely in a room where few change: the groups of typical rooms keep their sentence)
    while left and pins(left):
        told_groups: dict[tuple[int, tuple[int, ...]], list[tuple[tuple[int, ...], ...]]] = {}
        for t, level in told.items():
            told_groups.setdefault((level, sums(t, level)), []).append(t)
        if not told_groups:
            return {}
        key = min(
            told_groups,
            key=lambda k: (
                pins(left + told_groups[k]),
                -k[0],
                tuple(-v for v in k[1]),
                len(told_groups[k]),
            ),
        )
        for t in told_groups[key]:
            del told[t]
        left += told_groups[key]
    return told
