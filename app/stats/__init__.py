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

Each job in a module of its own; every name is also here, as ``app.stats.NAME`` (the rest of the
app and the tests use these, never the modules):

- ``distributions``: the 95% level, ``Interval`` and ``Answer``, the t, chi-squared and binomial
  distributions;
- ``disclosure``: which cells of a breakdown are hidden (``MIN_CELL``, ``suppressed``);
- ``proportions``: Wilson, the MOVER interval, Newcombe's differences, independent and paired;
- ``estimates``: means, Welch, histograms, a mean estimate minus a share;
- ``data``: a session's phases and answers (``Dataset``) and each phase's own figures;
- ``belief_gap``: the gap between the room's view and what it thinks the field holds;
- ``paired``: cross-tabs, the shift from stance to revote and its tests of net change;
- ``pooling``: a talk's sessions merged, an effect pooled over them;
- ``analysis``: all of a session's statistics at once, and the intervals widened so that they give
  no hidden cell back.

Modules import only the ones above them in this list, never the rest of the app (``paired``
finds ``suppressed`` through the package, when called, so that one name stands for it).
"""

from __future__ import annotations

from app.stats.analysis import (
    WIDENED,
    Analysis,
    Hiding,
    analyze,
    covering_paired,
    estimate_shown,
    hidden,
)
from app.stats.belief_gap import (
    FalseConsensus,
    Gap,
    GapOption,
    gap,
)
from app.stats.data import (
    Dataset,
    PhaseSpec,
    PhaseStats,
    count_options,
    estimate_stats,
    option_stats,
    phase_stats,
)
from app.stats.disclosure import (
    MIN_CELL,
    TABLES_WALKED,
    cell_range,
    cells_range,
    shown,
    sums_told,
    suppressed,
    too_few,
)
from app.stats.distributions import (
    ALPHA,
    Z95,
    Answer,
    Interval,
)
from app.stats.estimates import (
    Bin,
    MeanSummary,
    estimate_minus_share,
    histogram,
    mean_summary,
    welch_diff,
)
from app.stats.paired import (
    Cell,
    CrossTab,
    HeldTable,
    Ignorance,
    Movement,
    Shift,
    Test,
    bowker,
    crosstab,
    held_table,
    ignorance,
    mcnemar_exact,
    movement,
    shift,
    stuart_maxwell,
)
from app.stats.pooling import (
    HKSJ_BELOW,
    POOL_FROM,
    Pooled,
    merge,
    pool,
)
from app.stats.proportions import (
    Difference,
    mover,
    newcombe_diff,
    newcombe_paired,
    shares,
    wilson,
)

__all__ = [
    "ALPHA",
    "HKSJ_BELOW",
    "MIN_CELL",
    "POOL_FROM",
    "TABLES_WALKED",
    "WIDENED",
    "Z95",
    "Analysis",
    "Answer",
    "Bin",
    "Cell",
    "CrossTab",
    "Dataset",
    "Difference",
    "FalseConsensus",
    "Gap",
    "GapOption",
    "HeldTable",
    "Hiding",
    "Ignorance",
    "Interval",
    "MeanSummary",
    "Movement",
    "PhaseSpec",
    "PhaseStats",
    "Pooled",
    "Shift",
    "Test",
    "analyze",
    "bowker",
    "cell_range",
    "cells_range",
    "count_options",
    "covering_paired",
    "crosstab",
    "estimate_minus_share",
    "estimate_shown",
    "estimate_stats",
    "gap",
    "held_table",
    "hidden",
    "histogram",
    "ignorance",
    "mcnemar_exact",
    "mean_summary",
    "merge",
    "movement",
    "mover",
    "newcombe_diff",
    "newcombe_paired",
    "option_stats",
    "phase_stats",
    "pool",
    "shares",
    "shift",
    "shown",
    "stuart_maxwell",
    "sums_told",
    "suppressed",
    "too_few",
    "welch_diff",
    "wilson",
]
