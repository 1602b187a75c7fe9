"""Answers on a 4+ point scale as diverging stacked bars."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from app.charts.phase import is_likert
from app.charts.svg import (
    INK,
    MUTED,
    PAD,
    SMALL,
    WIDTH,
    Chart,
    Line,
    Rect,
    Text,
    draw_lines,
    draw_title,
    ink_on,
    option_colour,
    pct,
)
from app.i18n import translate

if TYPE_CHECKING:
    from app.results import PhaseResult


def scale_chart(phases: Sequence[PhaseResult], lang: str, title: str | None = None) -> Chart:
    """Diverging stacked bars: disagreeing options to the left of the centre, agreeing ones to the
    right, the middle option straddling it; one row per phase on the same scale."""
    rows = [p for p in phases if not p.is_estimate and is_likert(p)]
    chart = Chart("scale", title or translate(lang, "res_scale_title"), "", lang)
    y = draw_title(chart, chart.title, 0) + 10
    plot_w = WIDTH - 2 * PAD
    centre = PAD + plot_w / 2
    half = plot_w / 2
    bar_h = 44
    first = rows[0] if rows else None

    def side(result: PhaseResult) -> float:
        k = len(result.options)
        values = [o.share or 0.0 for o in result.options]
        middle = values[k // 2] / 2 if k % 2 else 0.0
        return max(sum(values[: k // 2]), sum(values[(k + 1) // 2 :])) + middle

    # one scale for every row, as wide as the longest side allows (with room to spare)
    widest = max((side(r) for r in rows), default=1.0)
    unit = half / max(0.25, min(1.0, widest * 1.1))
    for result in rows:
        y = (
            draw_lines(
                chart,
                translate(lang, "res_scale_row", question=_row_name(result, lang), n=result.n),
                PAD,
                y,
                plot_w,
                SMALL,
            )
            + 6
        )
        k = len(result.options)
        mid = k // 2 if k % 2 else None
        shares_ = [o.share or 0.0 for o in result.options]
        left_total = sum(shares_[: k // 2]) + (shares_[mid] / 2 if mid is not None else 0)
        x = centre - unit * left_total
        for index, option in enumerate(result.options):
            w = unit * shares_[index]
            colour = option_colour(option.key, index, k, True)
            if w > 0:
                chart.add(
                    Rect(
                        x,
                        y,
                        w,
                        bar_h,
                        colour,
                        stroke="#ffffff",
                        label=f"{option.label(lang)}: {pct(option.share)}",
                    )
                )
                if w >= 46:
                    chart.add(
                        Text(
                            x + w / 2,
                            y + bar_h / 2 + SMALL * 0.36,
                            pct(option.share),
                            SMALL,
                            anchor="middle",
                            weight="bold",
                            fill=ink_on(colour),
                        )
                    )
            x += w
        chart.rows.append(
            _row_name(result, lang)
            + ": "
            + ", ".join(f"{o.label(lang)} {pct(o.share)}" for o in result.options)
        )
        y += bar_h + 18
    first_bar = next((i for i, e in enumerate(chart.elements) if isinstance(e, Rect)), 0)
    chart.elements.insert(
        first_bar, Line(centre, y - 8 - (bar_h + 18) * len(rows), centre, y - 10, INK, 2, "5 4")
    )
    if first is not None:
        y += 4
        for index, option in enumerate(first.options):
            colour = option_colour(option.key, index, len(first.options), True)
            chart.add(Rect(PAD, y + 5, 22, 22, colour))
            y = draw_lines(chart, option.label(lang), PAD + 32, y, plot_w - 32, SMALL)
            y += 6
    note = translate(lang, "res_scale_note")
    y = draw_lines(chart, note, PAD, y, plot_w, SMALL, fill=MUTED)
    chart.height = y + PAD
    if first is not None and first.n and first.holds:
        held = sum(o.share or 0 for o in first.options if o.key in first.holds)
        chart.sentence = translate(lang, "res_scale_sentence", share=pct(held), n=first.n)
    else:
        chart.sentence = translate(lang, "res_no_answers")
    return chart


def _row_name(result: PhaseResult, lang: str) -> str:
    key = {"stance": "res_row_stance", "revote": "res_row_revote", "perceived": "res_row_perceived"}
    return translate(lang, key.get(result.kind.value, "res_row_stance"))
