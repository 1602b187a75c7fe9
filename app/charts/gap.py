"""The belief gap: the room's own answers against what it thinks the field holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.charts.sentences import (
    gap_label,
    gap_left_out,
    gap_plain_sentence,
    gap_sentence,
    gap_sides,
    points_text,
)
from app.charts.svg import (
    FIELD,
    GRID,
    INK,
    LABEL,
    MUTED,
    NOTE_LINES,
    PAD,
    SLIDE,
    SLIDE_TEXT,
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
    size,
    text_width,
    wrap,
)
from app.i18n import translate
from app.results import pick

if TYPE_CHECKING:
    from app.results import GapResult


def gap_chart(
    gap: GapResult,
    lang: str,
    wide: bool = False,
    plain: bool = False,
    slide_width: float | None = None,
) -> Chart:
    """Grouped bars, you vs the field per option, the gap labelled in points with its interval.
    ``wide`` lays it out in landscape instead of portrait.

    ``plain``: the room's version (the projector, phones): one plain sentence, two bars with
    whiskers per option (or, for a 0-100 estimate, the own share and the mean estimate) and one
    short caption; the intervals' figures, the methods and who is left out stay on the results
    page (the default). ``wide`` and ``plain``: the projector's slide, SLIDE units wide with
    SLIDE_TEXT labels and no title (the slide's sentence stands above it); ``slide_width``
    narrows it (beside the QR code while the phase is open: ``BESIDE_QR``), labels as large."""
    if plain:
        return _plain_chart(gap, lang, wide, slide_width)
    if gap.stats.kind == "estimate":
        return _gap_estimate_chart(gap, lang, wide)
    g = gap.stats
    width: float = WIDE if wide else WIDTH
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
    bracket_only = wide and len(g.holds) == 1
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
    chart.add(Text(width - PAD, base - plot_h - 6, "100%", SMALL - 2, anchor="end", fill=MUTED))
    chart.add(Text(width - PAD, base - plot_h / 2 - 6, "50%", SMALL - 2, anchor="end", fill=MUTED))
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
            bracket_points = shown_points(option.perceived_share or 0.0, option.self_share or 0.0)
            bracket_text = translate(
                lang,
                "res_points_bracket" if bracket_only else "res_points_short",
                points=bracket_points,
                size=size(bracket_points),
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
    y = draw_lines(chart, note, PAD, y, width - 2 * PAD, SMALL, NOTE_LINES, fill=MUTED)
    chart.height = y + PAD
    chart.rows.insert(0, headline)
    chart.rows.append(gap_left_out(gap, lang))
    return chart


def _gap_estimate_chart(gap: GapResult, lang: str, wide: bool = False) -> Chart:
    """Room's actual share vs the mean estimate of the field, as two horizontal bars, and the
    estimates split by own answer (false consensus)."""
    g = gap.stats
    width: float = WIDE if wide else WIDTH
    chart = Chart(
        "gap", translate(lang, "res_gap_title"), gap_sentence(gap, lang), lang, width=width
    )
    y = draw_title(chart, chart.title, 0, width) + 6
    headline = gap_label(gap, lang)
    y = draw_lines(chart, headline, PAD, y + 8, width - 2 * PAD, VALUE + 2, weight="bold") + 14
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
            points=points_text(points(fc.difference.estimate), lang),
            ci=interval(fc.difference.ci95),
        )
    y = draw_lines(chart, note, PAD, y, width - 2 * PAD, SMALL, NOTE_LINES, fill=MUTED)
    chart.height = y + PAD
    chart.rows.insert(0, headline)
    chart.rows.append(gap_left_out(gap, lang))
    return chart


# --------------------------------------------------------------------------- the room's version

SLIDE_HEIGHT = 540
"""The plain slide's height in SLIDE units: about the shape of the space a 16:9 slide leaves under
a two-line sentence, so that the chart fills it and its labels stay at 28 px or more at 1280x720."""
PHONE_HEIGHT = 560


BESIDE_QR = 780
"""The plain slide's width beside the QR code: the shape left of a 16:9 slide once the code takes
its third, so that its labels stay at 28 px or more at 1280x720 there too."""


def _plain_chart(gap: GapResult, lang: str, wide: bool, narrow: float | None = None) -> Chart:
    g = gap.stats
    width: float = narrow or (SLIDE if wide else WIDTH)
    text: float = SLIDE_TEXT if wide else LABEL
    chart = Chart("gap", translate(lang, "res_gap_title"), gap_plain_sentence(gap, lang), lang)
    chart.width = width
    chart.patterns = True
    if g.linked and g.headline.n:
        caption = translate(lang, "res_slide_caption_paired", n=g.headline.n)
    else:
        caption = translate(
            lang, "res_slide_caption_independent", n_self=g.self_n, n_perceived=g.perceived_n
        )
    # ids let a live update move the bars; each drawing of the slide has its own
    ids = "-beside-qr" if narrow else "-slide" if wide else ""
    if g.kind == "estimate":
        _plain_estimate(chart, gap, text, caption, wide, ids)
    else:
        _plain_bars(chart, gap, text, caption, wide, ids)
    chart.rows.insert(0, chart.sentence)
    chart.rows.append(caption)
    return chart


def _value_size(value: str, room: float, text: float, largest: float) -> float:
    """The largest size up to ``largest``, never below ``text``, at which ``value`` fits
    ``room`` (bold digits and "%" run wider than ``text_width`` allows them: 15% more)."""
    size = largest
    while size > text and text_width(value, size, True) * 1.15 > room:
        size -= 1
    return size


def _plain_bars(
    chart: Chart, gap: GapResult, text: float, caption: str, wide: bool, ids: str
) -> None:
    """Two vertical bars per option, you and what you think most of the field thinks, each with
    its Wilson whisker and its share; the options that hold the view are named in bold."""
    g = gap.stats
    lang = chart.lang
    width = chart.width
    value_size = text * (4 / 3)
    line = text * 1.2
    y = 0.0
    # legend: one line where it fits, else one entry a line
    box = text * 1.1
    legend = (
        (YOU, None, translate(lang, "res_slide_you")),
        (FIELD, "hatch", translate(lang, "res_slide_field")),
    )
    one_line = sum(box + 12 + text_width(t, text) + 36 for _c, _p, t in legend) - 36
    if one_line <= width - 2 * PAD:
        x: float = PAD
        for colour, pattern, label in legend:
            chart.add(Rect(x, y + 4, box, box, colour, stroke=INK, pattern=pattern))
            chart.add(Text(x + box + 12, y + text, label, text))
            x += box + 12 + text_width(label, text) + 36
        y += line + 8
    else:
        for colour, pattern, label in legend:
            chart.add(Rect(PAD, y + 4, box, box, colour, stroke=INK, pattern=pattern))
            y = draw_lines(chart, label, PAD + box + 12, y, width - 2 * PAD - box - 12, text) + 8
    axis = text_width("100%", text) + 12
    left, right = PAD + axis, width - PAD
    options = list(g.shown_options)
    k = max(1, len(options))
    group_w = (right - left) / k
    bar_w = min(group_w * 0.42, 170.0 if wide else 80.0)
    names = [pick(gap.option_labels.get(o.key, {"en": o.key}), lang) for o in options]
    labels = [wrap(name, group_w - 12, text, max_lines=4) for name in names]
    labels_h = max((len(lines) for lines in labels), default=1) * line + 8
    captions = wrap(caption, width - 2 * PAD, text, max_lines=4)
    caption_h = len(captions) * line + 14
    top = y + value_size * 1.3 + 8
    height = SLIDE_HEIGHT if wide else PHONE_HEIGHT
    plot_h = max(180.0, height - top - labels_h - caption_h - PAD)
    base = top + plot_h
    for level, dash in ((0.5, "6 6"), (1.0, None)):
        yy = base - plot_h * level
        chart.add(
            Line(left, yy, right, yy, GRID, 1.5, dash),
            Text(left - 10, yy + text * 0.35, pct(level), text, anchor="end", fill=MUTED),
        )
    for index, option in enumerate(options):
        cx = left + group_w * (index + 0.5)
        held = option.key in g.holds
        for offset, share, ci, colour, pattern, series in (
            (-1, option.self_share, option.self_ci95, YOU, None, "you"),
            (1, option.perceived_share, option.perceived_ci95, FIELD, "hatch", "field"),
        ):
            bx = cx - bar_w - 4 if offset < 0 else cx + 4
            h = plot_h * max(0.0, min(1.0, share or 0.0))
            chart.add(
                Rect(
                    bx,
                    base - h,
                    bar_w,
                    h,
                    colour,
                    stroke=INK,
                    pattern=pattern,
                    label=f"{translate(lang, 'res_slide_' + series)}: {pct(share)}",
                    id=f"gap-{option.key}-{series}{ids}",
                )
            )
            top_of = base - h
            if ci is not None and share is not None:
                lo, hi = (base - plot_h * max(0.0, min(1.0, v)) for v in ci)
                mx, cap = bx + bar_w / 2, min(12.0, bar_w / 4)
                chart.add(
                    Line(mx, lo, mx, hi, INK, 3),
                    Line(mx - cap, hi, mx + cap, hi, INK, 3),
                    Line(mx - cap, lo, mx + cap, lo, INK, 3),
                )
                top_of = min(top_of, hi)
            value = pct(share)
            size = _value_size(value, bar_w + 4, text, value_size)
            chart.add(
                Text(bx + bar_w / 2, top_of - 10, value, size, anchor="middle", weight="bold")
            )
        ly = base + 4
        for text_line in labels[index]:
            ly += line
            chart.add(
                Text(cx, ly, text_line, text, anchor="middle", weight="bold" if held else "normal")
            )
        chart.rows.append(
            f"{names[index]}: {pct(option.self_share)} / {pct(option.perceived_share)}"
        )
    chart.add(Line(left, base, right, base, INK, 2))
    y = base + labels_h + 6
    for text_line in captions:
        y += line
        chart.add(Text(PAD, y, text_line, text, fill=MUTED))
    chart.height = y + PAD


def _plain_estimate(
    chart: Chart, gap: GapResult, text: float, caption: str, wide: bool, ids: str
) -> None:
    """Two horizontal bars on one 0-100% scale: the share of you who hold the view, and your
    average estimate of the field's share, each with its whisker."""
    lang = chart.lang
    width = chart.width
    own, own_ci, seen, seen_ci = gap_sides(gap)
    value_size = text * (4 / 3)
    line = text * 1.2
    left, right = PAD, chart.width - PAD - text_width("100%", value_size, True) - 16
    plot_w = right - left
    captions = wrap(caption, width - 2 * PAD, text, max_lines=4)
    rows = (
        (translate(lang, "res_slide_row_you", view=gap.view_label(lang)), own, own_ci, YOU, None),
        (translate(lang, "res_slide_row_estimate"), seen, seen_ci, FIELD, "hatch"),
    )
    wrapped = [wrap(label, width - 2 * PAD, text, max_lines=3) for label, *_rest in rows]
    fixed = sum(len(lines) * line + 10 for lines in wrapped) + 24 * len(rows)
    fixed += text * 1.6 + 10 + len(captions) * line + 14 + PAD
    height = SLIDE_HEIGHT if wide else PHONE_HEIGHT
    bar_h = max(48.0, min(130.0 if wide else 90.0, (height - fixed) / len(rows)))
    y = 0.0
    start = None
    for (label, share, ci, colour, pattern), lines, series in zip(
        rows, wrapped, ("you", "field"), strict=True
    ):
        for text_line in lines:
            y += line
            chart.add(Text(PAD, y, text_line, text))
        y += 10
        start = y if start is None else start
        clipped = max(0.0, min(1.0, share))
        chart.add(
            Rect(
                left,
                y,
                plot_w * clipped,
                bar_h,
                colour,
                stroke=INK,
                pattern=pattern,
                label=f"{label}: {pct(share)}",
                id=f"gap-estimate-{series}{ids}",
            )
        )
        end = left + plot_w * clipped
        mid = y + bar_h / 2
        if ci is not None:
            lo, hi = (left + plot_w * max(0.0, min(1.0, v)) for v in ci)
            cap = min(16.0, bar_h / 4)
            chart.add(
                Line(lo, mid, hi, mid, INK, 3),
                Line(lo, mid - cap, lo, mid + cap, INK, 3),
                Line(hi, mid - cap, hi, mid + cap, INK, 3),
            )
            end = max(end, hi)
        chart.add(Text(end + 12, mid + value_size * 0.36, pct(share), value_size, weight="bold"))
        chart.rows.append(f"{label}: {pct(share)}")
        y += bar_h + 24
    # the scale under both bars, with a dashed line at one half
    top = start or 0.0
    bottom = y - 24
    half = left + plot_w / 2
    chart.elements.insert(0, Line(half, top - 6, half, bottom + 6, GRID, 1.5, "6 6"))
    chart.add(Line(left, bottom + 6, right, bottom + 6, INK, 2))
    for share in (0.0, 0.5, 1.0):
        x = left + plot_w * share
        anchor = "start" if share == 0 else "end" if share == 1 else "middle"
        chart.add(
            Line(x, bottom + 6, x, bottom + 14, INK, 2),
            Text(x, bottom + 14 + text * 1.05, pct(share), text, anchor=anchor, fill=MUTED),
        )
    y = bottom + 14 + text * 1.6
    for text_line in captions:
        y += line
        chart.add(Text(PAD, y, text_line, text, fill=MUTED))
    chart.height = y + PAD
