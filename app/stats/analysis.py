"""Every statistic of a session at once, and what its figures may show beside the hidden
cells: intervals widened so that they give no small cell or small group back."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from app.stats.belief_gap import Gap, gap
from app.stats.data import Dataset, PhaseStats, phase_stats
from app.stats.disclosure import MIN_CELL, cells_range, too_few
from app.stats.paired import CrossTab, Ignorance, Shift, crosstab, ignorance, shift


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
    """The gap as outputs may show it beside the hidden cells of ``table`` (the stance x
    perceived cross-tab): where the paired figures would give one back, the headline is the
    independent comparison of the two phases' public totals (``apart``).

    Newcombe's paired interval depends on how many people both hold the view and think most of
    the field does: a cell (or a sum of cells) of that table. Where the table hides it, the
    interval, beside the shown cells and the totals, would tell it. An interval widened to cover
    every count the totals allow did not tell it, but was wider than the independent one in every
    room where it applied, and the room reads width as uncertainty; the independent comparison
    uses nothing but each phase's own totals, and its label says why it is not paired. See
    docs/methods.md, "Small cells"."""
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
    if math.ceil(low - 1e-6) >= math.floor(high + 1e-6):
        return the_gap  # the totals pin that count: the paired interval tells nothing hidden
    return replace(the_gap, apart=True)


def estimate_shown(the_gap: Gap, also: Hiding | None = None, minimum: int = MIN_CELL) -> Gap:
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
    share and spread, r gives the two groups' means), so the headline is the independent
    comparison there too (an interval widened over every r was wider than the independent one,
    and the room reads width as uncertainty).

    ``also``: a talk's pooled answers are apart, or hide their split, wherever one of its
    sessions does (else the pooled figure minus the other sessions' shown ones gives that
    session's back)."""
    paired, fc = the_gap.paired, the_gap.false_consensus
    if the_gap.kind != "estimate" or paired is None or fc is None:
        return the_gap
    also = also or Hiding()
    n, late = paired.n or 0, the_gap.only_perceived
    apart = too_few(n, minimum) or too_few(late, minimum) or also.apart
    split = not apart and not (
        too_few(fc.holders_n, minimum) or too_few(fc.others_n, minimum) or also.split
    )
    # where the split is hidden, the paired interval's r (the split in another form) would give
    # it back: the headline is then the independent comparison too
    return replace(the_gap, apart=apart or not split, false_consensus=replace(fc, shown=split))


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


def analyze(data: Dataset, also_hidden: Hiding | None = None, minimum: int = MIN_CELL) -> Analysis:
    """Every statistic of a session (or of a talk's pooled answers). ``also_hidden``: what to
    hide whatever the counts; a talk's pooled answers hide everything that a session hides, so
    that a pooled figure minus the other sessions' shown ones gives nothing hidden back
    (docs/methods.md, "Small cells"). ``minimum``: the session's small-cell threshold."""
    also = also_hidden or Hiding()
    phases = {spec.key: phase_stats(spec, data.of(spec.key)) for spec in data.phases}
    the_gap = gap(data)
    perceived_tab = ignorance_ = definition_tab = None
    if not data.linked:
        # published totals: the independent comparison, and nothing that pairs two phases
        return Analysis(phases, the_gap, None, None, None, None)
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
                minimum=minimum,
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
                minimum=minimum,
            )
    if the_gap is not None:
        the_gap = estimate_shown(the_gap, also, minimum)
    the_shift = shift(data)
    if the_shift is not None:
        the_shift = replace(the_shift, also_hidden=also.of("shift"), minimum=minimum)
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
