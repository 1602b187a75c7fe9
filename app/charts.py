"""Chart geometry for server-rendered SVG: every number, position and text of a chart.

Each function turns results into a ``Chart``: a list of drawing primitives (rectangles, lines,
paths, texts) in a fixed coordinate system (``viewBox``), which ``templates/partials/charts/
_svg.html`` writes out as SVG. The same SVG is shown on phones, on the projector, on the results
pages and in the exports (and turned into PNG), so a chart looks the same everywhere.

Pure: no database, no HTTP. Texts are translated here (``app.i18n.translate``) because their
length decides the layout (labels are wrapped to fit).
"""

from __future__ import annotations

import itertools
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app import stats
from app.i18n import translate

if TYPE_CHECKING:
    from app.results import GapResult, PhaseResult, ShiftResult, TalkResults

WIDTH = 520
WIDE = 800
"""Portrait charts are WIDTH units wide (readable on a 390px phone); WIDE is the landscape
variant of the key slide for projectors."""
PAD = 16
TITLE = 28
LABEL = 24
VALUE = 24
SMALL = 20
INK = "#1a1a1a"
MUTED = "#555555"
GRID = "#d0d0d0"
FONT = (
    "system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', 'Noto Sans CJK SC', "
    "'PingFang SC', 'Microsoft YaHei', 'DejaVu Sans', sans-serif"
)

# Okabe-Ito; agree / disagree / unsure as in the UI notes, then the further categories.
NAMED = {"agree": "#0072B2", "disagree": "#D55E00", "unsure": "#7F7F7F"}
FURTHER = ["#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#0072B2", "#D55E00"]
SCALE_5 = ["#D55E00", "#E69F00", "#999999", "#56B4E9", "#0072B2"]
YOU = "#0072B2"
FIELD = "#E69F00"


# --------------------------------------------------------------------------- primitives

_UIDS = itertools.count(1)


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str
    stroke: str | None = None
    pattern: str | None = None
    """The id of a hatch pattern drawn over the fill (so series differ by more than colour)."""
    label: str | None = None
    id: str | None = None
    """A stable id lets a live update move the bar (htmx settles matching ids; CSS animates)."""
    kind: str = "rect"


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    stroke: str = INK
    width: float = 2
    dash: str | None = None
    kind: str = "line"


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    size: float = LABEL
    anchor: str = "start"
    weight: str = "normal"
    fill: str = INK
    kind: str = "text"


@dataclass(frozen=True)
class Path:
    d: str
    fill: str
    opacity: float = 1.0
    stroke: str | None = None
    label: str | None = None
    kind: str = "path"


Element = Rect | Line | Text | Path


@dataclass
class Chart:
    """A chart ready to draw. ``sentence`` is the plain-language summary shown above the chart
    and used as its text equivalent; ``rows`` are the numbers as text for screen readers."""

    name: str
    title: str
    sentence: str
    lang: str
    width: float = WIDTH
    height: float = 0
    elements: list[Element] = field(default_factory=list)
    rows: list[str] = field(default_factory=list)
    patterns: bool = False
    font: str = FONT
    uid: str = field(default_factory=lambda: f"c{next(_UIDS)}")
    """Unique within a process, so two charts on one page never share pattern or label ids."""

    @property
    def view_box(self) -> str:
        return f"0 0 {fmt(self.width)} {fmt(self.height)}"

    def add(self, *elements: Element) -> None:
        self.elements.extend(elements)


def fmt(value: float) -> str:
    """A coordinate with at most one decimal, no trailing zeros."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


# --------------------------------------------------------------------------- text helpers


def _wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def text_width(text: str, size: float, bold: bool = False) -> float:
    """A generous estimate of rendered width (fonts differ between browsers and the PNG
    renderer): CJK characters 1 em, Latin about 0.6 em."""
    em = 0.0
    for ch in text:
        if _wide(ch):
            em += 1.0
        elif ch in "il.,:;'|!()[]":
            em += 0.34
        elif ch.isupper() or ch in "mwMW%–—":
            em += 0.8
        elif ch == " ":
            em += 0.32
        else:
            em += 0.6
    return em * size * (1.1 if bold else 1.0)


def wrap(text: str, width: float, size: float, bold: bool = False, max_lines: int = 6) -> list[str]:
    """Break text into lines that fit ``width``: at spaces, or between CJK characters."""
    pieces: list[str] = []
    word = ""
    for ch in text:
        if ch == " ":
            if word:
                pieces.append(word)
            pieces.append(" ")
            word = ""
        elif _wide(ch):
            if word:
                pieces.append(word)
            pieces.append(ch)
            word = ""
        else:
            word += ch
    if word:
        pieces.append(word)
    lines: list[str] = []
    line = ""
    for piece in pieces:
        candidate = line + piece
        if line and piece != " " and text_width(candidate.rstrip(), size, bold) > width:
            lines.append(line.rstrip())
            line = piece.lstrip()
        else:
            line = candidate
    if line.strip():
        lines.append(line.strip())
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1].rstrip() + "…"
    return lines or [""]


def shorten(text: str, limit: float = 44) -> str:
    """A long label cut at a word (or character, for CJK) to about ``limit`` Latin characters."""
    return wrap(text, limit, 1.0 / 0.6, max_lines=1)[0]


def pct(share: float | None, digits: int = 0) -> str:
    if share is None:
        return "–"
    return f"{share * 100:.{digits}f}%"


def points(value: float) -> str:
    """A difference of shares in percentage points with its sign."""
    number = value * 100
    return f"{number:+.0f}" if round(number) != 0 else "0"


def interval(ci: tuple[float, float] | None, scale: float = 100.0) -> str:
    if ci is None:
        return ""
    # "+ 0.0" turns a bound that rounds to minus zero into "0" rather than "-0".
    low, high = (round(bound * scale) + 0.0 for bound in ci)
    return f"[{low:.0f}, {high:.0f}]"


def option_colour(key: str, index: int, count: int, likert: bool = False) -> str:
    if likert and count == 5:
        return SCALE_5[index]
    if key in NAMED:
        return NAMED[key]
    return FURTHER[index % len(FURTHER)]


def ink_on(fill: str) -> str:
    """Black or white text, whichever reads better on the fill."""
    r, g, b = (int(fill[i : i + 2], 16) / 255 for i in (1, 3, 5))

    def lin(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    lum = 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
    return "#ffffff" if lum < 0.28 else INK


def _title(chart: Chart, text: str, y: float, width: float | None = None) -> float:
    for line in wrap(text, (width or chart.width) - 2 * PAD, TITLE, bold=True, max_lines=4):
        y += TITLE * 1.2
        chart.add(Text(PAD, y, line, TITLE, weight="bold"))
    return y


def _lines(
    chart: Chart, text: str, x: float, y: float, width: float, size: float, **kw: Any
) -> float:
    """Write wrapped text from baseline-above ``y``; returns the y below the last line."""
    for line in wrap(text, width, size, bold=kw.get("weight") == "bold"):
        y += size * 1.2
        chart.add(Text(x, y, line, size, **kw))
    return y


def is_likert(result: PhaseResult) -> bool:
    return result.kind.value in ("stance", "revote", "perceived") and len(result.options) >= 4


# --------------------------------------------------------------------------- one phase


def phase_chart(result: PhaseResult, lang: str) -> Chart:
    if result.is_estimate:
        return estimate_chart(result, lang)
    return bar_chart(result, lang)


def bar_chart(result: PhaseResult, lang: str) -> Chart:
    """Horizontal bars, one per option, with Wilson 95% whiskers and the share and count."""
    chart = Chart(f"phase-{result.key}", result.question(lang), "", lang)
    y = _title(chart, chart.title, 0) + 10
    value_room = 140
    plot_x, plot_w = PAD, WIDTH - 2 * PAD - value_room
    likert = is_likert(result)
    bar_h = 36
    for index, option in enumerate(result.options):
        y = _lines(chart, option.label(lang), PAD, y, WIDTH - 2 * PAD, LABEL) + 8
        colour = option_colour(option.key, index, len(result.options), likert)
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
                id=f"bar-{result.key}-{option.key}",
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
        baseline = y + bar_h / 2 + VALUE * 0.36
        if end + 10 + text_width(value, VALUE, True) > WIDTH - 4:
            inside = plot_x + plot_w * share - 8
            chart.add(Text(inside, baseline, value, VALUE, "end", "bold", ink_on(colour)))
        else:
            chart.add(Text(end + 10, baseline, value, VALUE, weight="bold"))
        chart.rows.append(
            f"{option.label(lang)}: {pct(option.share)} ({option.count}) {interval(option.ci95)}"
        )
        y += bar_h + 18
    y += 4
    note = translate(lang, "res_bars_note", n=result.n)
    y = _lines(chart, note, PAD, y, WIDTH - 2 * PAD, SMALL, fill=MUTED)
    chart.height = y + PAD
    top = max(result.options, key=lambda o: o.count, default=None)
    if result.n and top is not None:
        chart.sentence = translate(
            lang,
            "res_phase_sentence",
            option=shorten(top.label(lang)),
            share=pct(top.share),
            n=result.n,
        )
    else:
        chart.sentence = translate(lang, "res_no_answers")
    return chart


def estimate_chart(result: PhaseResult, lang: str) -> Chart:
    """Histogram of % estimates, with the mean (and its t interval) and the actual share."""
    chart = Chart(f"phase-{result.key}", result.question(lang), "", lang)
    y = _title(chart, chart.title, 0) + 16
    lower = result.min_value or 0.0
    upper = result.max_value if result.max_value is not None else 100.0
    span = (upper - lower) or 1.0
    left, right = PAD + 44, WIDTH - PAD - 22
    plot_w = right - left
    label_band = 2 * (SMALL * 1.3) + 8
    top = y + label_band
    plot_h = 240
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
            Text(x_of(value), base + 8 + SMALL * 1.1, f"{value:g}", SMALL, anchor="middle"),
        )
    for step in (peak, math.ceil(peak / 2)):
        yy = base - plot_h * step / peak
        chart.add(
            Line(left, yy, right, yy, GRID, 1),
            Text(left - 8, yy + SMALL * 0.35, str(step), SMALL, anchor="end", fill=MUTED),
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
        mean_text = translate(lang, "res_mean_marker", value=f"{result.mean:.0f}")
        markers.append((x_of(result.mean), mean_text, "#0072B2", None))
    if result.actual_share is not None:
        actual = lower + span * result.actual_share
        markers.append(
            (
                x_of(actual),
                translate(lang, "res_actual_marker", value=f"{actual:.0f}"),
                "#D55E00",
                "8 6",
            )
        )
    markers.sort(key=lambda m: m[0])
    for index, (x, text, colour, dash) in enumerate(markers):
        chart.add(Line(x, top - 4, x, base, colour, 4, dash))
        label_y = y + SMALL * 1.1 + index * (SMALL * 1.3)
        width = text_width(text, SMALL, True)
        anchor_x = min(max(x, left + width / 2), right - width / 2)
        chart.add(
            Text(
                anchor_x,
                label_y,
                text,
                SMALL,
                anchor="middle",
                weight="bold",
                fill=colour if colour != "#0072B2" else "#005a8c",
            )
        )
    y = base + 8 + SMALL * 1.1 + 10
    axis = translate(lang, "res_estimate_axis")
    chart.add(Text((left + right) / 2, y + SMALL * 1.1, axis, SMALL, anchor="middle", fill=MUTED))
    y += SMALL * 1.4 + 6
    note = translate(lang, "res_estimate_note", n=result.n)
    y = _lines(chart, note, PAD, y, WIDTH - 2 * PAD, SMALL, fill=MUTED)
    chart.height = y + PAD
    chart.patterns = True
    if result.mean is None:
        chart.sentence = translate(lang, "res_no_answers")
    elif result.actual_share is not None:
        chart.sentence = translate(
            lang,
            "res_estimate_sentence_actual",
            mean=f"{result.mean:.0f}",
            ci=interval(result.ci95, 1.0),
            actual=pct(result.actual_share),
        )
    else:
        chart.sentence = translate(
            lang,
            "res_estimate_sentence",
            mean=f"{result.mean:.0f}",
            median=f"{result.median:.0f}",
            n=result.n,
        )
    chart.rows = [chart.sentence] + [
        f"{b.lower:g}–{b.upper:g}: {b.count}" for b in result.histogram
    ]
    return chart


# --------------------------------------------------------------------------- the gap


def gap_sentence(gap: GapResult, lang: str) -> str:
    g = gap.stats
    if gap.pooled:
        return translate(
            lang,
            "res_gap_sentence_pooled"
            if g.kind != "estimate"
            else "res_gap_sentence_pooled_estimate",
            self=pct(g.self_share),
            view=gap.view_label(lang),
            perceived=pct(g.perceived_share),
        )
    if g.kind == "estimate":
        return translate(
            lang,
            "res_gap_sentence_estimate",
            self=pct(g.self_share),
            view=gap.view_label(lang),
            perceived=pct(g.perceived_share),
        )
    return translate(
        lang,
        "res_gap_sentence",
        self=pct(g.self_share),
        view=gap.view_label(lang),
        perceived=pct(g.perceived_share),
    )


def gap_label(gap: GapResult, lang: str) -> str:
    d = gap.stats.difference
    return translate(lang, "res_gap_points", points=points(d.estimate), ci=interval(d.ci95))


def gap_chart(gap: GapResult, lang: str, wide: bool = False) -> Chart:
    """Grouped bars, you vs the field per option, the gap labelled in points with its interval.
    ``wide`` lays it out in landscape (for a projector) instead of portrait (for a phone)."""
    if gap.stats.kind == "estimate":
        return _gap_estimate_chart(gap, lang, wide)
    g = gap.stats
    width: float = WIDE if wide else WIDTH
    chart = Chart(
        "gap", translate(lang, "res_gap_title"), gap_sentence(gap, lang), lang, width=width
    )
    chart.patterns = True
    y = _title(chart, chart.title, 0, width) + 6
    # legend: the two series differ by colour and by hatching, and are named
    legend = (
        (YOU, None, translate(lang, "res_series_you", n=g.self_n)),
        (FIELD, "hatch", translate(lang, "res_series_field", n=g.perceived_n)),
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
            y = _lines(chart, text, PAD + 36, y, width - 2 * PAD - 36, SMALL)
            y += 6
    headline = gap_label(gap, lang)
    # landscape: the bracket over the view's bars carries the interval, no separate headline
    bracket_only = wide and len(g.holds) == 1
    if not bracket_only:
        y = _lines(chart, headline, PAD, y + 6, width - 2 * PAD, VALUE + 2, weight="bold")
    y += 34
    top = y + VALUE * 1.3
    plot_h = 240 if wide else 260
    base = top + plot_h
    groups = list(g.options)
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
        from app.results import pick

        ly = _lines(
            chart, pick(label, lang), cx, base + 2, group_w - 8, label_size, anchor="middle"
        )
        max_label_y = max(max_label_y, ly)
        if len(g.holds) == 1 and option.key == g.holds[0]:
            # a bracket over the view's two bars, labelled with the gap
            bracket_text = translate(
                lang,
                "res_points_bracket" if bracket_only else "res_points_short",
                points=points(g.difference.estimate),
                ci=interval(g.difference.ci95),
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
    note = translate(lang, "res_gap_note", method=translate(lang, "res_method_newcombe"))
    if g.paired is not None:
        note += " " + translate(
            lang,
            "res_gap_paired_note",
            n=g.paired.n,
            points=points(g.paired.estimate),
            ci=interval(g.paired.ci95),
        )
    y = _lines(chart, note, PAD, y, width - 2 * PAD, SMALL, fill=MUTED)
    chart.height = y + PAD
    chart.rows.insert(0, headline)
    return chart


def _gap_estimate_chart(gap: GapResult, lang: str, wide: bool = False) -> Chart:
    """Room's actual share vs the mean estimate of the field, as two horizontal bars, and the
    estimates split by own answer (false consensus)."""
    g = gap.stats
    width: float = WIDE if wide else WIDTH
    chart = Chart(
        "gap", translate(lang, "res_gap_title"), gap_sentence(gap, lang), lang, width=width
    )
    y = _title(chart, chart.title, 0, width) + 6
    headline = gap_label(gap, lang)
    y = _lines(chart, headline, PAD, y + 8, width - 2 * PAD, VALUE + 2, weight="bold") + 14
    plot_w = width - 2 * PAD - 140
    rows: list[tuple[str, float | None, tuple[float, float] | None, str, str | None]] = [
        (
            translate(lang, "res_row_room", view=gap.view_label(lang), n=g.self_n),
            g.self_share,
            g.self_ci95,
            YOU,
            None,
        ),
        (
            translate(lang, "res_row_estimate", n=g.perceived_n),
            g.perceived_share,
            g.perceived_ci95,
            FIELD,
            "hatch",
        ),
    ]
    fc = g.false_consensus
    if fc is not None:
        for n, mean, key in (
            (fc.holders_n, fc.holders_mean, "res_row_holders"),
            (fc.others_n, fc.others_mean, "res_row_others"),
        ):
            rows.append(
                (
                    translate(lang, key, n=n),
                    None if stats.too_few(n) else mean,
                    None,
                    "#56B4E9",
                    "hatch",
                )
            )
    for text, share, ci, colour, pattern in rows:
        y = _lines(chart, text, PAD, y, width - 2 * PAD, SMALL) + 6
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
    note = translate(lang, "res_gap_estimate_note")
    if (
        fc is not None
        and fc.difference is not None
        and not (stats.too_few(fc.holders_n) or stats.too_few(fc.others_n))
    ):
        note += " " + translate(
            lang,
            "res_false_consensus_note",
            points=points(fc.difference.estimate),
            ci=interval(fc.difference.ci95),
        )
    y = _lines(chart, note, PAD, y, width - 2 * PAD, SMALL, fill=MUTED)
    chart.height = y + PAD
    chart.rows.insert(0, headline)
    return chart


# --------------------------------------------------------------------------- the shift


def shift_sentence(shift: ShiftResult, lang: str) -> str:
    s = shift.stats
    if not s.n_paired:
        return translate(lang, "res_shift_none")
    # the row the talk speaks about: an option that holds the view (the one most people first
    # chose), else the row with the most people
    candidates = sorted(
        (o for o in s.options if s.row_total(o) >= stats.MIN_CELL),
        key=lambda o: (o not in shift.holds, -s.row_total(o)),
    )
    if not candidates:
        return translate(
            lang, "res_shift_overall", changed=pct(s.changed / s.n_paired), n=s.n_paired
        )
    first = candidates[0]
    moves = [
        translate(
            lang,
            "res_shift_move",
            share=pct(s.row_share(first, o), 1 if s.row_total(first) < 100 else 0),
            option=shift.label(o, lang),
        )
        for o in s.options
        if o != first and s.cell(first, o) >= stats.MIN_CELL
    ]
    changed = pct(s.changed_share(first))
    option = shift.label(first, lang)
    if not moves:
        return translate(lang, "res_shift_sentence_short", option=option, changed=changed)
    separator = translate(lang, "res_list_separator")
    return translate(
        lang, "res_shift_sentence", option=option, changed=changed, moves=separator.join(moves)
    )


def shift_chart(shift: ShiftResult, lang: str) -> Chart:
    """The stance -> revote flow: two stacked columns joined by ribbons (an alluvial plot).
    Flows of fewer than 5 people are left out and counted in a note."""
    s = shift.stats
    width = 580
    chart = Chart(
        "shift", translate(lang, "res_shift_title"), shift_sentence(shift, lang), lang, width=width
    )
    y = _title(chart, chart.title, 0, width) + 8
    side = 156
    node_w = 20
    left_x, right_x = PAD + side, width - PAD - side - node_w
    chart.add(
        Text(
            left_x + node_w / 2,
            y + SMALL * 1.1,
            translate(lang, "res_before"),
            SMALL,
            anchor="middle",
            weight="bold",
        ),
        Text(
            right_x + node_w / 2,
            y + SMALL * 1.1,
            translate(lang, "res_after"),
            SMALL,
            anchor="middle",
            weight="bold",
        ),
    )
    y += SMALL * 1.6
    total_h = 380
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
            h = count * scale
            y0, y1 = left_fill[i], right_fill[j]
            left_fill[i] += h
            right_fill[j] += h
            if stats.too_few(count):
                hidden += count
                continue
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
            if h >= SMALL + 4:
                chart.add(Text(x0 + 8, y0 + h / 2 + SMALL * 0.35, str(count), SMALL, weight="bold"))
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
            total_text = (
                str(total) if not stats.too_few(total) else translate(lang, "res_too_few_short")
            )
            lines = wrap(shift.label(o, lang), side - 16, SMALL, max_lines=2)
            block = (len(lines) + 1) * SMALL * 1.1
            start = max(top + max(h, 2) / 2 - block / 2, below)
            ly = start
            for line in lines:
                ly += SMALL * 1.1
                chart.add(Text(tx, ly - SMALL * 0.2, line, SMALL, anchor=anchor))
            ly += SMALL * 1.1
            chart.add(Text(tx, ly - SMALL * 0.2, total_text, SMALL, anchor=anchor, weight="bold"))
            below = start + block + 6
        bottom = max(bottom, below)
    y = bottom + 14
    note = translate(lang, "res_shift_note", n=s.n_paired, dropped=s.dropped)
    if hidden:
        note += " " + translate(lang, "res_flows_hidden", n=hidden)
    note += " " + test_text(s, lang)
    y = _lines(chart, note, PAD, y, width - 2 * PAD, SMALL, fill=MUTED)
    chart.height = y + PAD
    return chart


def test_text(s: stats.Shift, lang: str) -> str:
    if s.test is None:
        return ""
    p = s.test.p_value
    p_text = "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
    if s.test.name == "mcnemar_exact":
        return translate(lang, "res_test_mcnemar", p=p_text)
    return translate(
        lang, "res_test_stuart_maxwell", chi2=f"{s.test.statistic:.1f}", df=s.test.df, p=p_text
    )


def matrix_sentence(shift: ShiftResult, lang: str) -> str:
    s = shift.stats
    if not s.n_paired:
        return translate(lang, "res_shift_none")
    return translate(lang, "res_shift_overall", changed=pct(s.changed / s.n_paired), n=s.n_paired)


def shift_matrix_chart(shift: ShiftResult, lang: str) -> Chart:
    """The stance x revote matrix as a heat map of row shares, with the share that changed."""
    s = shift.stats
    k = len(s.options)
    width = 540 + max(0, k - 3) * 80
    chart = Chart(
        "shift-matrix",
        translate(lang, "res_matrix_title"),
        matrix_sentence(shift, lang),
        lang,
        width=width,
    )
    y = _title(chart, chart.title, 0, width) + 10
    row_w, changed_w = 140, 96
    cell_w = (width - 2 * PAD - row_w - changed_w) / k
    cell_h = 70
    x0 = PAD + row_w
    chart.add(
        Text(
            x0 + cell_w * k / 2,
            y + SMALL * 1.1,
            translate(lang, "res_after"),
            SMALL,
            anchor="middle",
            weight="bold",
        )
    )
    y += SMALL * 1.4
    header_bottom = y
    for j, o in enumerate(s.options):
        header_bottom = max(
            header_bottom,
            _lines(
                chart,
                shift.label(o, lang),
                x0 + cell_w * (j + 0.5),
                y,
                cell_w - 6,
                SMALL,
                anchor="middle",
            ),
        )
    _lines(
        chart,
        translate(lang, "res_changed"),
        x0 + cell_w * k + changed_w / 2,
        y,
        changed_w - 4,
        SMALL,
        anchor="middle",
        weight="bold",
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
            if stats.too_few(count) or stats.too_few(total):
                chart.add(
                    Rect(
                        x + 2,
                        y + 2,
                        cell_w - 4,
                        cell_h - 4,
                        "#f2f2f2",
                        stroke=GRID,
                        pattern="hatch-light",
                    )
                )
                chart.add(
                    Text(
                        x + cell_w / 2, y + cell_h / 2 + 6, "<5", SMALL, anchor="middle", fill=MUTED
                    )
                )
                chart.rows.append(f"{shift.label(a, lang)} → {shift.label(b, lang)}: <5")
                continue
            share = count / total if total else 0.0
            fill = _blend("#ffffff", "#0072B2", share)
            chart.add(
                Rect(
                    x + 2,
                    y + 2,
                    cell_w - 4,
                    cell_h - 4,
                    fill,
                    stroke=INK if i == j else GRID,
                    label=f"{count}",
                )
            )
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
        text = (
            pct(changed)
            if changed is not None and not stats.too_few(total)
            else ("–" if not total else "<5")
        )
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
        + test_text(s, lang)
    )
    y = _lines(chart, note, PAD, y, width - 2 * PAD, SMALL, fill=MUTED)
    chart.height = y + PAD
    chart.patterns = True
    return chart


def _blend(a: str, b: str, t: float) -> str:
    t = max(0.0, min(1.0, t)) * 0.9 + (0.06 if t > 0 else 0)
    ca = [int(a[i : i + 2], 16) for i in (1, 3, 5)]
    cb = [int(b[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(ca, cb, strict=True))


# --------------------------------------------------------------------------- 5-point scales


def scale_chart(phases: Sequence[PhaseResult], lang: str, title: str | None = None) -> Chart:
    """Diverging stacked bars: disagreeing options to the left of the centre, agreeing ones to the
    right, the middle option straddling it; one row per phase on the same scale."""
    rows = [p for p in phases if not p.is_estimate and is_likert(p)]
    chart = Chart("scale", title or translate(lang, "res_scale_title"), "", lang)
    y = _title(chart, chart.title, 0) + 10
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
            _lines(
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
            y = _lines(chart, option.label(lang), PAD + 32, y, plot_w - 32, SMALL)
            y += 6
    note = translate(lang, "res_scale_note")
    y = _lines(chart, note, PAD, y, plot_w, SMALL, fill=MUTED)
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


# --------------------------------------------------------------------------- pooling


def forest_chart(talk: TalkResults, lang: str) -> Chart:
    """The gap per venue with its 95% interval, and the pooled estimate as a diamond."""
    width = 540
    chart = Chart("forest", translate(lang, "res_forest_title"), "", lang, width=width)
    y = _title(chart, chart.title, 0, width) + 10
    label_w, value_w = 150, 132
    left, right = PAD + label_w, width - PAD - value_w
    rows = talk.forest
    meta = talk.meta
    values = [0.0] + [v for r in rows for v in r.ci95]
    if meta is not None:
        values += list(meta.random_ci95)
    lo = math.floor(min(values) * 10) / 10
    hi = math.ceil(max(values) * 10) / 10
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
        block = len(names) * SMALL * 1.1 + (SMALL - 4) * 1.1
        height = max(row_h, block + 12)
        extra = height - row_h
        mid = y + height / 2
        ny = y + (height - block) / 2 + SMALL * 0.9
        for name in names:
            chart.add(Text(PAD, ny, name, SMALL))
            ny += SMALL * 1.1
        chart.add(Text(PAD, ny, f"{row.code} · n={row.n}", SMALL - 4, fill=MUTED))
        chart.add(Line(x_of(row.ci95[0]), mid, x_of(row.ci95[1]), mid, INK, 2.5))
        size = 8 + 14 * math.sqrt(row.weight or 0.05)
        chart.add(Rect(x_of(row.estimate) - size / 2, mid - size / 2, size, size, YOU, stroke=INK))
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
        )
        y += row_h + extra
    if meta is not None:
        chart.add(Line(PAD, y + 4, width - PAD, y + 4, GRID, 1))
        mid = y + row_h / 2 + 8
        a, b, c = x_of(meta.random_ci95[0]), x_of(meta.random), x_of(meta.random_ci95[1])
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
                f"{points(meta.random)} {interval(meta.random_ci95)}",
                SMALL,
                anchor="end",
                weight="bold",
            )
        )
        y += row_h + 12
    zero = x_of(0.0)
    chart.add(Line(zero, top + SMALL * 1.4, zero, y, MUTED, 2, "6 5"))
    chart.add(Line(left, y, right, y, INK, 2))
    step = 0.1 if hi - lo <= 0.8 else 0.2
    tick = lo
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
            i2=f"{meta.i2 * 100:.0f}",
            tau2=f"{meta.tau2:.4f}",
            q=f"{meta.q:.1f}",
            df=meta.df,
        )
        chart.sentence = translate(
            lang,
            "res_forest_sentence",
            k=meta.k,
            points=points(meta.random),
            ci=interval(meta.random_ci95),
        )
    else:
        note = translate(lang, "res_forest_empty")
        chart.sentence = note
    y = _lines(chart, note, PAD, y, width - 2 * PAD, SMALL, fill=MUTED)
    chart.height = y + PAD
    return chart


# --------------------------------------------------------------------------- named charts


def session_charts(results: Any, lang: str) -> dict[str, Chart]:
    """Every chart of a session by the name used in URLs and exports."""
    out: dict[str, Chart] = {}
    if results.gap is not None:
        out["gap"] = results.gap.chart(lang)
        out["gap-wide"] = results.gap.chart(lang, wide=True)
    if results.shift is not None:
        out["shift"] = results.shift.chart(lang)
        out["shift-matrix"] = results.shift.matrix_chart(lang)
    likert = [p for p in results.phases if not p.is_estimate and is_likert(p)]
    if likert:
        out["scale"] = scale_chart(likert, lang)
    for phase in results.phases:
        out[f"phase-{phase.key}"] = phase.chart(lang)
    return out
