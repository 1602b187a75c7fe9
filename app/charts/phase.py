"""One phase: bars per option with Wilson whiskers, or a histogram of 0-100 estimates; and the
phases answered on a 4+ point scale as diverging stacked bars."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from app import formats
from app.charts.sentences import phase_sentence
from app.charts.svg import (
    GRID,
    INK,
    LABEL,
    MUTED,
    NOTE_LINES,
    PAD,
    SLIDE,
    SLIDE_TEXT,
    SMALL,
    WIDTH,
    Chart,
    Line,
    Rect,
    Text,
    draw_lines,
    draw_title,
    ink_on,
    interval,
    number,
    option_colour,
    pct,
    text_width,
)
from app.i18n import translate

if TYPE_CHECKING:
    from app.results import PhaseResult


def is_likert(result: PhaseResult) -> bool:
    return result.kind.value in ("stance", "revote", "perceived") and len(result.options) >= 4


def phase_chart(
    result: PhaseResult, lang: str, wide: bool = False, slide_width: float | None = None
) -> Chart:
    """The phase's chart; ``wide``: the landscape variant the projector shows; ``slide_width``
    narrows it (beside the QR code: ``BESIDE_QR``), its labels as large, where the chart has a
    narrower variant (``narrows``)."""
    if result.summary is not None:  # a format that draws its own (app.formats)
        return formats.summarising(result.answer).chart(result, lang, wide, slide_width)
    if result.is_estimate:
        return estimate_chart(result, lang, wide, slide_width)
    return bar_chart(result, lang, wide, slide_width)


def narrows(result: PhaseResult) -> bool:
    """Whether the phase's chart has a narrower variant for beside the QR code (``phase_chart``'s
    ``slide_width``): a format's own chart may not (the word cloud keeps its one shape)."""
    return result.summary is None or formats.summarising(result.answer).narrows


def phone_chart(result: PhaseResult, lang: str) -> Chart:
    """The phase's chart on a phone: a format's narrower variant where it has one (the word
    cloud's), else ``phase_chart``."""
    if result.summary is not None:
        own = formats.summarising(result.answer)
        drawn = getattr(own, "phone_chart", None)
        if drawn is not None:
            return cast("Chart", drawn(result, lang))
    return phase_chart(result, lang)


def _bar_row(
    chart: Chart,
    result: PhaseResult,
    index: int,
    x: float,
    y: float,
    col_w: float,
    text: float,
    wide: bool,
    ids: str = "",
) -> float:
    """One option: its label (wrapped to the column), its bar with the Wilson whisker, and the
    share and count beside it; ``ids`` ends its bar's id (each drawing of a slide has its own).
    Returns the y below the row."""
    option = result.options[index]
    lang = chart.lang
    value_room = 170 if wide else 140
    plot_x, plot_w = x, col_w - value_room
    bar_h = 30 if wide else 36
    # the projector's text is measured generously; allow its lines a little more room
    y = draw_lines(chart, option.label(lang), x, y, col_w * (1.1 if wide else 1.0), text)
    y += 4 if wide else 8
    colour = option_colour(option.key, index, len(result.options), is_likert(result))
    share = option.share or 0.0
    chart.add(Rect(plot_x, y, plot_w, bar_h, "#eeeeee"))
    # drawn even at 0% (zero width), so that a live update can grow it smoothly
    chart.add(
        Rect(
            plot_x,
            y,
            plot_w * share,
            bar_h,
            colour,
            label=f"{option.label(lang)}: {pct(option.share)}",
            id=f"bar-{result.key}-{option.key}{ids}",
        )
    )
    end = plot_x + plot_w * share
    if option.ci95 is not None and result.n:
        lo, hi = (plot_x + plot_w * v for v in option.ci95)
        mid = y + bar_h / 2
        chart.add(
            Line(lo, mid, hi, mid, INK, 2.5),
            Line(lo, mid - 10, lo, mid + 10, INK, 2.5),
            Line(hi, mid - 10, hi, mid + 10, INK, 2.5),
        )
        end = max(end, hi)
    value = f"{pct(option.share)} ({option.count})" if result.n else "–"
    baseline = y + bar_h / 2 + text * 0.36
    if end + 10 + text_width(value, text, True) > x + col_w - 4:
        inside = plot_x + plot_w * share - 8
        chart.add(Text(inside, baseline, value, text, "end", "bold", ink_on(colour)))
    else:
        chart.add(Text(end + 10, baseline, value, text, weight="bold"))
    chart.rows.append(
        f"{option.label(lang)}: {pct(option.share)} ({option.count}) {interval(option.ci95)}"
    )
    return y + bar_h + (12 if wide else 18)


def bar_chart(
    result: PhaseResult, lang: str, wide: bool = False, slide_width: float | None = None
) -> Chart:
    """Horizontal bars, one per option, with Wilson 95% whiskers and the share and count.

    ``wide``: the projector's landscape variant, SLIDE units wide with SLIDE_TEXT labels and no
    title (the slide's sentence stands above it); four or more options sit in two columns, so
    that five long definitions fit a 16:9 slide without shrinking their labels. ``slide_width``
    (with ``wide``): narrower, beside the QR code, in one column.
    """
    if not wide:
        chart = Chart(f"phase-{result.key}", result.question(lang), "", lang)
        y = draw_title(chart, chart.title, 0) + 10
        for index in range(len(result.options)):
            y = _bar_row(chart, result, index, PAD, y, WIDTH - 2 * PAD, LABEL, False)
        width: float = WIDTH
        small = SMALL
    else:
        width, small = slide_width or SLIDE, SLIDE_TEXT
        chart = Chart(f"phase-{result.key}", result.question(lang), "", lang, width=width)
        k = len(result.options)
        columns = 2 if k >= 4 and slide_width is None else 1
        ids = "-beside-qr" if slide_width else "-wide"
        gutter = 40
        col_w = (width - 2 * PAD - gutter * (columns - 1)) / columns
        per_column = math.ceil(k / columns)
        bottom = y0 = 8.0
        for column in range(columns):
            y = y0
            x = PAD + column * (col_w + gutter)
            for index in range(column * per_column, min(k, (column + 1) * per_column)):
                y = _bar_row(chart, result, index, x, y, col_w, SLIDE_TEXT, True, ids)
            bottom = max(bottom, y)
        y = bottom
    y += 4
    note = translate(lang, "res_bars_note", n=result.n)
    y = draw_lines(chart, note, PAD, y, width - 2 * PAD, small, NOTE_LINES, fill=MUTED)
    chart.height = y + PAD
    chart.sentence = phase_sentence(result, lang)
    return chart


def estimate_chart(
    result: PhaseResult, lang: str, wide: bool = False, slide_width: float | None = None
) -> Chart:
    """Histogram of % estimates, with the mean (and its t interval) and this room's own share.
    ``wide``: landscape, SLIDE units wide with larger text (the projector); ``slide_width``
    (with ``wide``): narrower and lower, beside the QR code."""
    width: float = (slide_width or SLIDE) if wide else WIDTH
    small = SLIDE_TEXT if wide else SMALL
    chart = Chart(f"phase-{result.key}", result.question(lang), "", lang, width=width)
    y = (draw_title(chart, chart.title, 0) if not wide else 0.0) + 16
    lower = result.min_value or 0.0
    upper = result.max_value if result.max_value is not None else 100.0
    span = (upper - lower) or 1.0
    left, right = PAD + (60 if wide else 44), width - PAD - (30 if wide else 22)
    plot_w = right - left
    label_band = 2 * (small * 1.3) + 8
    top = y + label_band
    plot_h = (180 if slide_width else 300) if wide else 240
    base = top + plot_h
    peak = max((b.count for b in result.histogram), default=0) or 1

    def x_of(value: float) -> float:
        return left + plot_w * (value - lower) / span

    chart.add(Line(left, base, right, base, INK, 2))
    ticks = 5
    for i in range(ticks + 1):
        value = lower + span * i / ticks
        chart.add(
            Line(x_of(value), base, x_of(value), base + 8, INK, 2),
            Text(x_of(value), base + 8 + small * 1.1, f"{value:g}", small, anchor="middle"),
        )
    for step in (peak, math.ceil(peak / 2)):
        yy = base - plot_h * step / peak
        chart.add(
            Line(left, yy, right, yy, GRID, 1),
            Text(left - 8, yy + small * 0.35, str(step), small, anchor="end", fill=MUTED),
        )
    for b in result.histogram:
        if b.count:
            h = plot_h * b.count / peak
            chart.add(
                Rect(
                    x_of(b.lower) + 2,
                    base - h,
                    x_of(b.upper) - x_of(b.lower) - 4,
                    h,
                    "#56B4E9",
                    label=f"{b.lower:g}–{b.upper:g}: {b.count}",
                )
            )
    markers: list[tuple[float, str, str, str | None]] = []
    if result.mean is not None:
        if result.ci95 is not None:
            lo = x_of(max(lower, result.ci95[0]))
            hi = x_of(min(upper, result.ci95[1]))
            chart.add(Rect(lo, top, max(hi - lo, 2), plot_h, "#0072B2", label=None, pattern="ci"))
        mean_text = translate(lang, "res_mean_marker", value=number(result.mean))
        markers.append((x_of(result.mean), mean_text, "#0072B2", None))
    if result.actual_share is not None:
        actual = lower + span * result.actual_share
        markers.append(
            (
                x_of(actual),
                translate(lang, "res_actual_marker", value=number(actual)),
                "#D55E00",
                "8 6",
            )
        )
    markers.sort(key=lambda m: m[0])
    for index, (x, text, colour, dash) in enumerate(markers):
        chart.add(Line(x, top - 4, x, base, colour, 4, dash))
        label_y = y + small * 1.1 + index * (small * 1.3)
        text_w = text_width(text, small, True)
        anchor_x = min(max(x, left + text_w / 2), right - text_w / 2)
        chart.add(
            Text(
                anchor_x,
                label_y,
                text,
                small,
                anchor="middle",
                weight="bold",
                fill=colour if colour != "#0072B2" else "#005a8c",
            )
        )
    y = base + 8 + small * 1.1 + 10
    axis = translate(lang, "res_estimate_axis")
    chart.add(Text((left + right) / 2, y + small * 1.1, axis, small, anchor="middle", fill=MUTED))
    y += small * 1.4 + 6
    note = translate(lang, "res_estimate_note", n=result.n)
    y = draw_lines(chart, note, PAD, y, width - 2 * PAD, small, NOTE_LINES, fill=MUTED)
    chart.height = y + PAD
    chart.patterns = True
    same = len(set(result.values)) == 1
    if result.mean is None:
        chart.sentence = translate(lang, "res_no_answers")
    elif same:
        # everyone gave the same estimate: said in words, with no interval of zero width
        chart.sentence = translate(
            lang,
            "res_estimate_sentence_same"
            if result.actual_share is None
            else "res_estimate_sentence_same_actual",
            mean=number(result.mean),
            n=result.n,
            actual=pct(result.actual_share),
        )
    elif result.actual_share is not None:
        chart.sentence = translate(
            lang,
            "res_estimate_sentence_actual",
            mean=number(result.mean),
            ci=interval(result.ci95, 1.0),
            actual=pct(result.actual_share),
        )
    else:
        chart.sentence = translate(
            lang,
            "res_estimate_sentence",
            mean=number(result.mean),
            median=number(result.median or 0),
            n=result.n,
        )
    chart.rows = [chart.sentence] + [
        f"{b.lower:g}–{b.upper:g}: {b.count}" for b in result.histogram
    ]
    return chart


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
    y = draw_lines(chart, note, PAD, y, plot_w, SMALL, NOTE_LINES, fill=MUTED)
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
