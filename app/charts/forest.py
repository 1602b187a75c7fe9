"""Pooling: the gap per venue with its interval, and the pooled estimate as a diamond."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from app.charts.sentences import points_text
from app.charts.svg import (
    FIELD,
    GRID,
    INK,
    MUTED,
    NOTE_LINES,
    PAD,
    SMALL,
    YOU,
    Chart,
    Line,
    Path,
    Rect,
    Text,
    draw_lines,
    draw_title,
    fmt,
    interval,
    number,
    points,
    text_width,
    wrap,
)
from app.i18n import translate

if TYPE_CHECKING:
    from app.results import TalkResults


def forest_chart(talk: TalkResults, lang: str) -> Chart:
    """The gap per venue with its 95% interval, and the pooled estimate as a diamond."""
    width = 540
    chart = Chart("forest", translate(lang, "res_forest_title"), "", lang, width=width)
    y = draw_title(chart, chart.title, 0, width) + 10
    rows = talk.forest
    meta = talk.meta
    # the value column is as wide as its widest figure, so no whisker or diamond runs under it
    shown = [text_width(f"{points(r.estimate)} {interval(r.ci95)}", SMALL) for r in rows]
    if meta is not None:
        shown.append(text_width(f"{points(meta.random)} {interval(meta.ci95)}", SMALL, True))
    label_w, value_w = 150, max([132.0, *shown]) + 12
    left, right = PAD + label_w, width - PAD - value_w
    values = [0.0] + [v for r in rows for v in r.ci95]
    if meta is not None:
        values += list(meta.ci95)
    # a gap lies in [-1, 1]: the axis never reaches past it
    lo = max(-1.0, math.floor(min(values) * 10) / 10)
    hi = min(1.0, math.ceil(max(values) * 10) / 10)
    if hi - lo < 0.2:
        hi = lo + 0.2

    def x_of(v: float) -> float:
        return left + (right - left) * (v - lo) / (hi - lo)

    row_h = 52
    top = y
    chart.add(
        Text(PAD, y + SMALL, translate(lang, "res_forest_venue"), SMALL, weight="bold"),
        Text(
            width - PAD,
            y + SMALL,
            translate(lang, "res_forest_gap"),
            SMALL,
            anchor="end",
            weight="bold",
        ),
    )
    y += SMALL * 1.6
    for row in rows:
        names = wrap(row.venue, label_w - 12, SMALL, max_lines=2)
        # published counts say so on a line of their own, under the code
        sublines = 2 if row.source else 1
        block = len(names) * SMALL * 1.1 + sublines * (SMALL - 4) * 1.1
        height = max(row_h, block + 12)
        extra = height - row_h
        mid = y + height / 2
        ny = y + (height - block) / 2 + SMALL * 0.9
        for name in names:
            chart.add(Text(PAD, ny, name, SMALL))
            ny += SMALL * 1.1
        chart.add(Text(PAD, ny, f"{row.code} · n={row.n}", SMALL - 4, fill=MUTED))
        if row.source:
            ny += (SMALL - 4) * 1.1
            chart.add(Text(PAD, ny, translate(lang, "res_unlinked_badge"), SMALL - 4, fill=MUTED))
        chart.add(Line(x_of(row.ci95[0]), mid, x_of(row.ci95[1]), mid, INK, 2.5))
        size = 8 + 14 * math.sqrt(row.weight or 0.05)
        # a room that cannot enter the pooled estimate is drawn hollow and says why
        fill = YOU if row.excluded is None else "#ffffff"
        chart.add(Rect(x_of(row.estimate) - size / 2, mid - size / 2, size, size, fill, stroke=INK))
        if row.excluded is not None:
            reason = translate(lang, f"res_forest_excluded_{row.excluded}")
            chart.add(Text(left, y + height - 2, reason, SMALL - 4, fill=MUTED))
        chart.add(
            Text(
                width - PAD,
                mid + SMALL * 0.35,
                f"{points(row.estimate)} {interval(row.ci95)}",
                SMALL,
                anchor="end",
            )
        )
        chart.rows.append(
            f"{row.venue} ({row.code}): {points(row.estimate)} {interval(row.ci95)}, n={row.n}"
            + (f" ({translate(lang, 'res_unlinked_badge')}: {row.source})" if row.source else "")
            + (
                f" ({translate(lang, f'res_forest_excluded_{row.excluded}')})"
                if row.excluded
                else ""
            )
        )
        y += row_h + extra
    if meta is not None:
        chart.add(Line(PAD, y + 4, width - PAD, y + 4, GRID, 1))
        mid = y + row_h / 2 + 8
        a, b, c = x_of(meta.ci95[0]), x_of(meta.random), x_of(meta.ci95[1])
        chart.add(
            Path(
                f"M{fmt(a)},{fmt(mid)} L{fmt(b)},{fmt(mid - 14)} "
                f"L{fmt(c)},{fmt(mid)} L{fmt(b)},{fmt(mid + 14)} Z",
                FIELD,
                1.0,
                INK,
                label="pooled",
            )
        )
        chart.add(
            Text(
                PAD, mid + SMALL * 0.35, translate(lang, "res_forest_pooled"), SMALL, weight="bold"
            )
        )
        chart.add(
            Text(
                width - PAD,
                mid + SMALL * 0.35,
                f"{points(meta.random)} {interval(meta.ci95)}",
                SMALL,
                anchor="end",
                weight="bold",
            )
        )
        y += row_h + 12
    zero = x_of(0.0)
    chart.add(Line(zero, top + SMALL * 1.4, zero, y, MUTED, 2, "6 5"))
    chart.add(Line(left, y, right, y, INK, 2))
    step = 0.1 if hi - lo <= 0.8 else 0.2 if hi - lo <= 1.2 else 0.5
    tick = math.ceil(lo / step - 1e-9) * step
    while tick <= hi + 1e-9:
        chart.add(Line(x_of(tick), y, x_of(tick), y + 8, INK, 2))
        chart.add(
            Text(
                x_of(tick),
                y + 8 + SMALL * 1.05,
                f"{tick * 100:+.0f}" if abs(tick) > 1e-9 else "0",
                SMALL - 4,
                anchor="middle",
            )
        )
        tick += step
    y += 8 + SMALL * 1.5
    chart.add(
        Text(
            (left + right) / 2,
            y + SMALL * 0.8,
            translate(lang, "res_forest_axis"),
            SMALL - 2,
            anchor="middle",
            fill=MUTED,
        )
    )
    y += SMALL * 1.4
    if meta is not None:
        note = translate(
            lang,
            "res_forest_note",
            k=meta.k,
            i2=number(meta.i2 * 100),
            tau2=number(meta.tau2, 4),
            q=number(meta.q, 1),
            df=meta.df,
            interval=translate(
                lang, "res_forest_hksj" if meta.uses_hksj else "res_forest_z", df=meta.df
            ),
        )
        if meta.clipped:
            note += " " + translate(lang, "res_forest_clipped")
        if talk.independent:
            note += " " + translate(lang, "res_forest_independent")
        excluded = [row for row in rows if row.excluded]
        if excluded:
            note += " " + translate(
                lang,
                "res_forest_left_out",
                rooms=translate(lang, "res_list_separator").join(
                    f"{row.venue} ({row.code})" for row in excluded
                ),
            )
        chart.sentence = translate(
            lang,
            "res_forest_sentence_unpinned" if meta.covers_bounds else "res_forest_sentence",
            k=meta.k,
            points=points_text(points(meta.random), lang),
            ci=interval(meta.ci95),
        )
    else:
        can = talk.poolable
        note = translate(lang, "res_forest_too_few" if can else "res_forest_empty", k=can)
        if can and talk.independent:
            note += " " + translate(lang, "res_forest_independent")
        chart.sentence = note
    published = [row for row in rows if row.source]
    if published:
        # published counts name their source, and say why they are compared apart
        note += " " + translate(
            lang,
            "res_forest_published",
            sources=translate(lang, "res_list_separator").join(
                f"{row.code}: {row.source}" for row in published
            ),
        )
    y = draw_lines(chart, note, PAD, y, width - 2 * PAD, SMALL, NOTE_LINES, fill=MUTED)
    chart.height = y + PAD
    return chart
