"""Chart geometry for server-rendered SVG: every number, position and text of a chart.

Each function turns results (``app.results``) into a ``Chart``: a list of drawing primitives
(rectangles, lines, paths, texts) in a fixed coordinate system (``viewBox``), which
``templates/partials/charts/_svg.html`` writes out as SVG. The same SVG is shown on phones, on the
projector, on the results pages and in the exports (and turned into PNG), so a chart looks the
same everywhere.

Charts take results; results never import charts. Pure: no database, no HTTP. Texts are
translated here (``app.i18n.translate``) because their length decides the layout (labels are
wrapped to fit).

- ``svg``: the primitives, the palette and the text helpers;
- ``phase`` (one phase; the phases on a 4+ point scale), ``gap``, ``shift``, ``forest``: one
  module per kind of chart;
- ``sentences``: the plain sentences that say what a chart shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.charts.forest import forest_chart
from app.charts.gap import BESIDE_QR, gap_chart
from app.charts.phase import (
    bar_chart,
    estimate_chart,
    is_likert,
    narrows,
    phase_chart,
    phone_chart,
    scale_chart,
)
from app.charts.sentences import (
    gap_label,
    gap_sentence,
    held_table,
    matrix_sentence,
    movement_sentence,
    shift_sentence,
    test_text,
    view_label,
)
from app.charts.shift import shift_chart, shift_matrix_chart
from app.charts.svg import (
    FONT,
    WIDE,
    WIDTH,
    Chart,
    Element,
    Line,
    Path,
    Rect,
    Text,
    fmt,
    interval,
    number,
    pct,
    points,
    shorten,
    shown_points,
    text_width,
    wrap,
)

if TYPE_CHECKING:
    from app.results import SessionResults

__all__ = [
    "BESIDE_QR",
    "FONT",
    "WIDE",
    "WIDTH",
    "Chart",
    "Element",
    "Line",
    "Path",
    "Rect",
    "Text",
    "bar_chart",
    "estimate_chart",
    "fmt",
    "forest_chart",
    "gap_chart",
    "gap_label",
    "gap_sentence",
    "held_table",
    "interval",
    "is_likert",
    "matrix_sentence",
    "movement_sentence",
    "narrows",
    "number",
    "pct",
    "phase_chart",
    "phone_chart",
    "points",
    "scale_chart",
    "scale_of",
    "session_charts",
    "shift_chart",
    "shift_matrix_chart",
    "shift_sentence",
    "shorten",
    "shown_points",
    "test_text",
    "text_width",
    "view_label",
    "wrap",
]


def scale_of(results: SessionResults, lang: str) -> Chart | None:
    """Diverging stacked bars when the stance is a 4+ point scale, else None."""
    likert = [p for p in results.phases if not p.is_estimate and is_likert(p)]
    return scale_chart(likert, lang) if likert else None


def session_charts(results: SessionResults, lang: str, tests: bool = True) -> dict[str, Chart]:
    """Every chart of a session by the name used in URLs and exports (as on the results pages:
    ``tests`` adds the test of net change where there are enough people for it)."""
    out: dict[str, Chart] = {}
    if results.gap is not None:
        out["gap"] = gap_chart(results.gap, lang)
        out["gap-wide"] = gap_chart(results.gap, lang, wide=True)
    if results.shift is not None:
        out["shift"] = shift_chart(results.shift, lang, tests)
        out["shift-matrix"] = shift_matrix_chart(results.shift, lang, tests)
    scale = scale_of(results, lang)
    if scale is not None:
        out["scale"] = scale
    for phase in results.phases:
        out[f"phase-{phase.key}"] = phase_chart(phase, lang)
    return out
