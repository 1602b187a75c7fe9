"""Stance -> revote: the flow between the two answers and the matrix of who moved where."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.charts.sentences import matrix_sentence, shift_sentence, test_text
from app.charts.svg import (
    GRID,
    INK,
    MUTED,
    NARROW,
    NOTE_LINES,
    PAD,
    SLIDE,
    SLIDE_TEXT,
    SMALL,
    VALUE,
    Chart,
    Path,
    Rect,
    Text,
    draw_lines,
    draw_title,
    fmt,
    ink_on,
    option_colour,
    pct,
    widest_word,
    wrap,
)
from app.i18n import translate

if TYPE_CHECKING:
    from app.results import ShiftResult


def shift_chart(
    shift: ShiftResult, lang: str, tests: bool = False, compact: bool = False, wide: bool = False
) -> Chart:
    """The stance -> revote flow: two stacked columns joined by ribbons (an alluvial plot).
    Each column's totals are shown (a phase's own totals are public); the flows that
    ``stats.suppressed`` hides are left out, and a note says so. ``compact``: the phones'
    variant, narrower and shorter, so its labels read larger on a small screen; ``wide``: the
    projector's, SLIDE units wide with SLIDE_TEXT labels and no title (the slide's sentence
    stands above it), so that it reads from the back of a hall at 1280x720 too."""
    s = shift.stats
    width = SLIDE if wide else NARROW if compact else 580
    small = SLIDE_TEXT if wide else SMALL
    chart = Chart(
        "shift", translate(lang, "res_shift_title"), shift_sentence(shift, lang), lang, width=width
    )
    y = 0.0 if wide else draw_title(chart, chart.title, 0, width) + 8
    side = 330 if wide else 126 if compact else 156
    node_w = 28 if wide else 20
    left_x, right_x = PAD + side, width - PAD - side - node_w
    chart.add(
        _heading(left_x + node_w / 2, y, translate(lang, "res_before"), small),
        _heading(right_x + node_w / 2, y, translate(lang, "res_after"), small),
    )
    y += small * 1.6
    total_h = 300 if compact else 380
    gap_px = 16
    k = len(s.options)
    n = s.n_paired or 1
    scale = (total_h - gap_px * (k - 1)) / n
    colours = {o: option_colour(o, i, k, k == 5) for i, o in enumerate(s.options)}

    def column(totals: list[int]) -> list[float]:
        tops, yy = [], y
        for t in totals:
            tops.append(yy)
            yy += t * scale + gap_px
        return tops

    left_totals = [s.row_total(o) for o in s.options]
    right_totals = [s.column_total(o) for o in s.options]
    left_tops, right_tops = column(left_totals), column(right_totals)
    left_fill = list(left_tops)
    right_fill = list(right_tops)
    hidden = 0
    for i, a in enumerate(s.options):
        for j, b in enumerate(s.options):
            count = s.matrix[i][j]
            if not count:
                continue
            if s.is_hidden(a, b):
                # not drawn, and no room kept for it in place: the space a hidden flow left
                # would show its size (each node's hidden flows end up together at its foot)
                hidden += 1
                continue
            h = count * scale
            y0, y1 = left_fill[i], right_fill[j]
            left_fill[i] += h
            right_fill[j] += h
            x0, x1 = left_x + node_w, right_x
            mx = (x0 + x1) / 2
            d = (
                f"M{fmt(x0)},{fmt(y0)} C{fmt(mx)},{fmt(y0)} {fmt(mx)},{fmt(y1)} "
                f"{fmt(x1)},{fmt(y1)} "
                f"L{fmt(x1)},{fmt(y1 + h)} C{fmt(mx)},{fmt(y1 + h)} {fmt(mx)},{fmt(y0 + h)} "
                f"{fmt(x0)},{fmt(y0 + h)} Z"
            )
            label = f"{shift.label(a, lang)} → {shift.label(b, lang)}: {count}"
            chart.add(Path(d, colours[a], 0.45, label=label))
            chart.rows.append(label)
            if h >= small + 4:
                chart.add(Text(x0 + 8, y0 + h / 2 + small * 0.35, str(count), small, weight="bold"))
    bottom = y + total_h
    for tops, totals, x, anchor, tx in (
        (left_tops, left_totals, left_x, "end", left_x - 10),
        (right_tops, right_totals, right_x, "start", right_x + node_w + 10),
    ):
        below = y  # labels never overlap: each starts below the previous one
        for o, top, total in zip(s.options, tops, totals, strict=True):
            h = total * scale
            if total:
                chart.add(Rect(x, top, node_w, max(h, 2), colours[o], stroke=INK))
            # a phase's own totals are public (its bar chart shows them): never hidden here
            total_text = str(total)
            lines = wrap(shift.label(o, lang), side - 16, small, max_lines=2)
            block = (len(lines) + 1) * small * 1.1
            start = max(top + max(h, 2) / 2 - block / 2, below)
            ly = start
            for line in lines:
                ly += small * 1.1
                chart.add(Text(tx, ly - small * 0.2, line, small, anchor=anchor))
            ly += small * 1.1
            chart.add(Text(tx, ly - small * 0.2, total_text, small, anchor=anchor, weight="bold"))
            below = start + block + 6
        bottom = max(bottom, below)
    y = bottom + 14
    note = translate(lang, "res_shift_note", n=s.n_paired, dropped=s.dropped)
    if hidden:
        note += " " + translate(lang, "res_flows_hidden")
    note += " " + test_text(s, lang, tests)
    y = draw_lines(chart, note, PAD, y, width - 2 * PAD, small, NOTE_LINES, fill=MUTED)
    chart.height = y + PAD
    return chart


def shift_matrix_chart(shift: ShiftResult, lang: str, tests: bool = False) -> Chart:
    """The stance x revote matrix as a heat map of row shares, with the share that changed."""
    s = shift.stats
    k = len(s.options)
    row_w = 140
    # Headings wrap only between words: each column is at least as wide as its widest word.
    changed_label = translate(lang, "res_changed")
    changed_w = max(96.0, widest_word(changed_label, SMALL, bold=True) + 8)
    word_w = max((widest_word(shift.label(o, lang), SMALL) for o in s.options), default=0.0)
    width = max(540 + max(0, k - 3) * 80, 2 * PAD + row_w + changed_w + k * (word_w + 8))
    chart = Chart(
        "shift-matrix",
        translate(lang, "res_matrix_title"),
        matrix_sentence(shift, lang),
        lang,
        width=width,
    )
    y = draw_title(chart, chart.title, 0, width) + 10
    cell_w = (width - 2 * PAD - row_w - changed_w) / k
    cell_h = 70
    x0 = PAD + row_w
    chart.add(_heading(x0 + cell_w * k / 2, y, translate(lang, "res_after")))
    y += SMALL * 1.4
    header_bottom = y
    for j, o in enumerate(s.options):
        header_bottom = max(
            header_bottom,
            draw_lines(
                chart,
                shift.label(o, lang),
                x0 + cell_w * (j + 0.5),
                y,
                cell_w - 6,
                SMALL,
                anchor="middle",
                keep_words=True,
            ),
        )
    draw_lines(
        chart,
        changed_label,
        x0 + cell_w * k + changed_w / 2,
        y,
        changed_w - 4,
        SMALL,
        anchor="middle",
        weight="bold",
        keep_words=True,
    )
    y = header_bottom + 8
    chart.add(Text(PAD, y - 6, translate(lang, "res_before"), SMALL, weight="bold"))
    for i, a in enumerate(s.options):
        total = s.row_total(a)
        lines = wrap(shift.label(a, lang), row_w - 10, SMALL, max_lines=3)
        ly = y + cell_h / 2 - len(lines) * (SMALL) * 0.6 + (SMALL) * 0.8
        for line in lines:
            chart.add(Text(PAD, ly, line, SMALL))
            ly += (SMALL) * 1.15
        for j, b in enumerate(s.options):
            count = s.cell(a, b)
            x = x0 + cell_w * j
            box = (x + 2, y + 2, cell_w - 4, cell_h - 4)
            if s.is_hidden(a, b):
                chart.add(Rect(*box, "#f2f2f2", stroke=GRID, pattern="hatch-light"))
                chart.add(
                    Text(
                        x + cell_w / 2, y + cell_h / 2 + 6, "–", SMALL, anchor="middle", fill=MUTED
                    )
                )
                chart.rows.append(f"{shift.label(a, lang)} → {shift.label(b, lang)}: –")
                continue
            share = count / total if total else 0.0
            fill = _blend("#ffffff", "#0072B2", share)
            chart.add(Rect(*box, fill, stroke=INK if i == j else GRID, label=f"{count}"))
            ink = ink_on(fill)
            chart.add(
                Text(
                    x + cell_w / 2,
                    y + cell_h / 2 + 2,
                    pct(count / total) if total else "–",
                    VALUE,
                    anchor="middle",
                    weight="bold",
                    fill=ink,
                ),
                Text(
                    x + cell_w / 2,
                    y + cell_h / 2 + 24,
                    f"({count})",
                    SMALL - 2,
                    anchor="middle",
                    fill=ink,
                ),
            )
            chart.rows.append(
                f"{shift.label(a, lang)} → {shift.label(b, lang)}: {count} "
                f"({pct(count / total) if total else '–'})"
            )
        changed = s.changed_share(a)
        # a row's share that changed gives its diagonal cell back: not shown when that is hidden
        text = pct(changed) if changed is not None and not s.is_hidden(a, a) else "–"
        chart.add(
            Text(
                x0 + cell_w * k + changed_w / 2,
                y + cell_h / 2 + 8,
                text,
                VALUE,
                anchor="middle",
                weight="bold",
            )
        )
        y += cell_h
    y += 10
    note = (
        translate(lang, "res_matrix_note", n=s.n_paired, dropped=s.dropped)
        + " "
        + test_text(s, lang, tests)
    )
    y = draw_lines(chart, note, PAD, y, width - 2 * PAD, SMALL, NOTE_LINES, fill=MUTED)
    chart.height = y + PAD
    chart.patterns = True
    return chart


def _heading(x: float, y: float, text: str, size: float = SMALL) -> Text:
    """A bold column heading ("Before", "After") centred on ``x``, its line starting at ``y``."""
    return Text(x, y + size * 1.1, text, size, anchor="middle", weight="bold")


def _blend(a: str, b: str, t: float) -> str:
    t = max(0.0, min(1.0, t)) * 0.9 + (0.06 if t > 0 else 0)
    ca = [int(a[i : i + 2], 16) for i in (1, 3, 5)]
    cb = [int(b[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(ca, cb, strict=True))
