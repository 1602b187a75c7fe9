"""The belief gap: the room's own answers against what it thinks the field holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.charts.sentences import gap_label, gap_left_out, gap_sentence, gap_sides
from app.charts.svg import (
    FIELD,
    GRID,
    INK,
    MUTED,
    NARROW,
    NOTE_LINES,
    PAD,
    SMALL,
    VALUE,
    WIDE,
    WIDTH,
    YOU,
    Chart,
    Line,
    Rect,
    Text,
    draw_lines,
    draw_title,
    interval,
    pct,
    points,
    shown_points,
    text_width,
)
from app.i18n import translate
from app.results import pick

if TYPE_CHECKING:
    from app.results import GapResult


def gap_chart(gap: GapResult, lang: str, wide: bool = False, compact: bool = False) -> Chart:
    """Grouped bars, you vs the field per option, the gap labelled in points with its interval.
    ``wide`` lays it out in landscape (for a projector) instead of portrait; ``compact`` is the
    phones' portrait: narrower, the gap on the bracket alone, no note (the results page has
    it)."""
    if gap.stats.kind == "estimate":
        return _gap_estimate_chart(gap, lang, wide, compact)
    g = gap.stats
    width: float = WIDE if wide else NARROW if compact else WIDTH
    chart = Chart(
        "gap", translate(lang, "res_gap_title"), gap_sentence(gap, lang), lang, width=width
    )
    chart.patterns = True
    y = draw_title(chart, chart.title, 0, width) + 6
    # legend: the two series differ by colour and by hatching, and are named
    n_self = g.headline.n if g.linked and g.headline.n else g.self_n
    n_seen = g.headline.n if g.linked and g.headline.n else g.perceived_n
    legend = (
        (YOU, None, translate(lang, "res_series_you", n=n_self)),
        (FIELD, "hatch", translate(lang, "res_series_field", n=n_seen)),
    )
    one_line = 2 * (36 + 30) + sum(text_width(text, SMALL) for _c, _p, text in legend)
    if wide and one_line <= width - 2 * PAD:
        x: float = PAD
        for colour, pattern, text in legend:
            chart.add(Rect(x, y + 6, 26, 22, colour, stroke=INK, pattern=pattern))
            chart.add(Text(x + 36, y + SMALL * 1.2, text, SMALL))
            x += 36 + text_width(text, SMALL) + 30
        y += SMALL * 1.2 + 12
    else:
        for colour, pattern, text in legend:
            chart.add(Rect(PAD, y + 6, 26, 22, colour, stroke=INK, pattern=pattern))
            y = draw_lines(chart, text, PAD + 36, y, width - 2 * PAD - 36, SMALL)
            y += 6
    headline = gap_label(gap, lang)
    # landscape: the bracket over the view's bars carries the interval, no separate headline
    bracket_only = (wide or compact) and len(g.holds) == 1
    if not bracket_only:
        y = draw_lines(chart, headline, PAD, y + 6, width - 2 * PAD, VALUE + 2, weight="bold")
    y += 34
    top = y + VALUE * 1.3
    plot_h = 240 if wide else 260
    base = top + plot_h
    groups = list(g.shown_options)
    k = len(groups)
    group_w = (width - 2 * PAD) / k
    bar_w = min(110.0 if wide else 72.0, group_w * 0.36)
    chart.add(Line(PAD, base, width - PAD, base, INK, 2))
    for tick in (0.25, 0.5, 0.75, 1.0):
        yy = base - plot_h * tick
        chart.add(Line(PAD, yy, width - PAD, yy, GRID, 1, "4 4"))
    if not compact:  # on a phone the bracket's label needs the room; every bar has its value
        chart.add(Text(width - PAD, base - plot_h - 6, "100%", SMALL - 2, anchor="end", fill=MUTED))
        chart.add(
            Text(width - PAD, base - plot_h / 2 - 6, "50%", SMALL - 2, anchor="end", fill=MUTED)
        )
    label_size = SMALL if k <= 3 else SMALL - 2
    max_label_y = base
    for index, option in enumerate(groups):
        cx = PAD + group_w * (index + 0.5)
        tops = []
        for offset, share, ci, colour, pattern, series in (
            (-1, option.self_share, option.self_ci95, YOU, None, "you"),
            (1, option.perceived_share, option.perceived_ci95, FIELD, "hatch", "field"),
        ):
            x = cx + (offset - 1) * bar_w / 2 + (3 if offset > 0 else -3)
            h = plot_h * (share or 0)
            chart.add(
                Rect(
                    x,
                    base - h,
                    bar_w,
                    h,
                    colour,
                    stroke=INK,
                    pattern=pattern,
                    label=f"{series}: {pct(share)}",
                )
            )
            bar_top = base - h
            if ci is not None:
                lo_y, hi_y = base - plot_h * ci[0], base - plot_h * ci[1]
                mx = x + bar_w / 2
                chart.add(
                    Line(mx, lo_y, mx, hi_y, INK, 2.5),
                    Line(mx - 9, hi_y, mx + 9, hi_y, INK, 2.5),
                    Line(mx - 9, lo_y, mx + 9, lo_y, INK, 2.5),
                )
                bar_top = min(bar_top, hi_y)
            chart.add(
                Text(
                    x + bar_w / 2,
                    bar_top - 8,
                    pct(share),
                    VALUE - (2 if k > 3 else 0),
                    anchor="middle",
                    weight="bold",
                )
            )
            tops.append(bar_top)
        label = gap.option_labels.get(option.key, {"en": option.key})
        ly = draw_lines(
            chart, pick(label, lang), cx, base + 2, group_w - 8, label_size, anchor="middle"
        )
        max_label_y = max(max_label_y, ly)
        if len(g.holds) == 1 and option.key == g.holds[0]:
            # a bracket over the view's two bars, labelled with the gap
            bracket_text = translate(
                lang,
                "res_points_bracket" if bracket_only else "res_points_short",
                points=shown_points(option.perceived_share or 0.0, option.self_share or 0.0),
                ci=interval(g.headline.ci95),
            )
            bracket_w = text_width(bracket_text, VALUE, True)
            y_top = min(tops) - VALUE * 1.2 - 8
            x1, x2 = cx - bar_w / 2 - 3, cx + bar_w / 2 + 3
            chart.add(
                Line(x1, y_top, x2, y_top, INK, 2.5),
                Line(x1, y_top, x1, y_top + 10, INK, 2.5),
                Line(x2, y_top, x2, y_top + 10, INK, 2.5),
                Text(
                    min(max(cx, PAD + bracket_w / 2), width - PAD - bracket_w / 2),
                    y_top - 8,
                    bracket_text,
                    VALUE,
                    anchor="middle",
                    weight="bold",
                ),
            )
        chart.rows.append(
            f"{pick(label, lang)}: {pct(option.self_share)} / {pct(option.perceived_share)}"
        )
    y = max_label_y + 10
    note = translate(lang, "res_gap_note") + " " + gap_left_out(gap, lang)
    if not compact:
        y = draw_lines(chart, note, PAD, y, width - 2 * PAD, SMALL, NOTE_LINES, fill=MUTED)
    chart.height = y + PAD
    chart.rows.insert(0, headline)
    chart.rows.append(gap_left_out(gap, lang))
    return chart


def _gap_estimate_chart(
    gap: GapResult, lang: str, wide: bool = False, compact: bool = False
) -> Chart:
    """Room's actual share vs the mean estimate of the field, as two horizontal bars, and the
    estimates split by own answer (false consensus)."""
    g = gap.stats
    width: float = WIDE if wide else NARROW if compact else WIDTH
    chart = Chart(
        "gap", translate(lang, "res_gap_title"), gap_sentence(gap, lang), lang, width=width
    )
    y = draw_title(chart, chart.title, 0, width) + 6
    headline = gap_label(gap, lang)
    if not compact:  # on a phone the sentence above the chart says it
        y = draw_lines(chart, headline, PAD, y + 8, width - 2 * PAD, VALUE + 2, weight="bold")
    y += 14
    own, own_ci, seen, seen_ci = gap_sides(gap)
    n_self = g.headline.n if g.linked and g.headline.n else g.self_n
    n_seen = g.headline.n if g.linked and g.headline.n else g.perceived_n
    plot_w = width - 2 * PAD - 140
    rows: list[tuple[str, float | None, tuple[float, float] | None, str, str | None]] = [
        (
            translate(lang, "res_row_room", view=gap.view_label(lang), n=n_self),
            own,
            own_ci,
            YOU,
            None,
        ),
        (
            translate(lang, "res_row_estimate", n=n_seen),
            seen,
            seen_ci,
            FIELD,
            "hatch",
        ),
    ]
    fc = g.false_consensus
    # the split needs linked answers; where the headline is apart, how many of those who gave
    # the paired figures hold the view is not shown either
    if fc is not None and g.linked:
        for n, mean, key in (
            (fc.holders_n, fc.holders_mean, "res_row_holders"),
            (fc.others_n, fc.others_mean, "res_row_others"),
        ):
            rows.append(
                (
                    translate(lang, key, n=n),
                    # both groups or neither: beside everyone's mean, one gives the other back
                    mean if fc.shown else None,
                    None,
                    "#56B4E9",
                    "hatch",
                )
            )
    for text, share, ci, colour, pattern in rows:
        y = draw_lines(chart, text, PAD, y, width - 2 * PAD, SMALL) + 6
        chart.add(Rect(PAD, y, plot_w, 34, "#eeeeee"))
        if share is not None:
            chart.add(
                Rect(
                    PAD,
                    y,
                    plot_w * max(0.0, min(1.0, share)),
                    34,
                    colour,
                    stroke=INK,
                    pattern=pattern,
                )
            )
        end = PAD + plot_w * max(0.0, min(1.0, share or 0))
        if ci is not None:
            lo, hi = (PAD + plot_w * max(0.0, min(1.0, v)) for v in ci)
            mid = y + 17
            chart.add(
                Line(lo, mid, hi, mid, INK, 2.5),
                Line(lo, mid - 9, lo, mid + 9, INK, 2.5),
                Line(hi, mid - 9, hi, mid + 9, INK, 2.5),
            )
            end = max(end, hi)
        value = pct(share) if share is not None else translate(lang, "res_too_few")
        chart.add(Text(end + 10, y + 17 + VALUE * 0.36, value, VALUE, weight="bold"))
        chart.rows.append(f"{text}: {value}")
        y += 34 + 16
    chart.patterns = True
    note = translate(lang, "res_gap_estimate_note") + " " + gap_left_out(gap, lang)
    if fc is not None and fc.shown and fc.difference is not None:
        note += " " + translate(
            lang,
            "res_false_consensus_note",
            points=points(fc.difference.estimate),
            ci=interval(fc.difference.ci95),
        )
    if not compact:
        y = draw_lines(chart, note, PAD, y, width - 2 * PAD, SMALL, NOTE_LINES, fill=MUTED)
    chart.height = y + PAD
    chart.rows.insert(0, headline)
    chart.rows.append(gap_left_out(gap, lang))
    return chart
