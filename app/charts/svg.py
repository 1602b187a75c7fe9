"""SVG primitives: the elements a chart is drawn with, the ``Chart`` that holds them, the palette,
and the text helpers (width estimates, wrapping, how numbers are written).

``templates/partials/charts/_svg.html`` writes a ``Chart`` out as SVG.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

WIDTH = 520
WIDE = 800
NARROW = 400
"""The phones' compact key charts (the gap, the movement): fewer units across, so their labels
read larger on a 320-390px screen."""
SLIDE = 1200
"""The projector's landscape charts: SLIDE units wide with SLIDE_TEXT-unit labels, so that a chart
that fills a 1280x720 slide beside the QR code still draws its labels at 28 px or more."""
SLIDE_TEXT = 30
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
    uid: str = ""
    """The chart's element ids' stem, if the chart names it; else ``ident`` draws it from the
    content."""

    @property
    def ident(self) -> str:
        """The stem of the chart's element ids: drawn from what it shows, so two different
        charts on one page never share pattern or label ids while the same chart drawn again
        is the same bytes (a redrawn public page keeps its ETag; a counter gave every drawing
        new ids)."""
        if self.uid:
            return self.uid
        content = repr((self.name, self.title, self.sentence, self.lang, self.width))
        content += repr((self.height, self.elements, self.rows, self.patterns, self.font))
        return f"c{int(hashlib.sha256(content.encode()).hexdigest()[:12], 16)}"

    @property
    def view_box(self) -> str:
        return f"0 0 {fmt(self.width)} {fmt(self.height)}"

    def add(self, *elements: Element) -> None:
        self.elements.extend(elements)

    @property
    def description(self) -> str:
        """The sentence and the rows as one text (the SVG's description, a caption for screen
        readers): each ends with one full stop of its language, none doubled ("。." or "..")."""
        parts = [self.sentence, *(row for row in self.rows if row != self.sentence)]
        return " ".join(full_stop(part, self.lang) for part in parts if part)


ENDS = tuple(".。!！?？")


def full_stop(text: str, lang: str) -> str:
    """``text`` ending in a full stop: its own when it has one, else its language's."""
    text = text.rstrip()
    if text.endswith(ENDS):
        return text
    return text.rstrip(",;:，；：、") + ("。" if lang.startswith("zh") else ".")


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


CJK_BREAK_AFTER = "，、。：；！？）"
"""Chinese punctuation a heading may break after (its words have no spaces between them)."""


CJK_WHOLE = 4
"""A Chinese run (between spaces or punctuation) this short is kept whole in a heading: most
words are two to four characters, and a break between two characters could cut one in two.
A longer run may break between any two characters."""
CJK_OPENING = "（“《「"
"""Chinese punctuation that goes with what follows it."""


def _close_run(pieces: list[str], run: str) -> None:
    """Add a run of one kind (Chinese characters, or anything else) to a heading's pieces."""
    if not run:
        return
    letters = sum(ch not in CJK_BREAK_AFTER for ch in run)
    if all(ch in CJK_BREAK_AFTER for ch in run) and pieces:
        pieces[-1] += run  # closing punctuation goes with what it closes
    elif not _wide(run[0]) or run in CJK_OPENING or letters <= CJK_WHOLE:
        pieces.append(run)
    else:
        for ch in run:
            if ch in CJK_BREAK_AFTER and pieces:
                pieces[-1] += ch
            else:
                pieces.append(ch)


def words(text: str) -> list[str]:
    """The pieces a heading keeps whole: words between spaces (a Latin word in Chinese text is
    one too), and in Chinese the short runs between punctuation (``CJK_WHOLE``); a longer run
    comes in single characters. Punctuation stays with its character."""
    out: list[str] = []
    for word in text.split():
        pieces: list[str] = []
        run = ""
        for ch in word:
            if ch in CJK_OPENING:
                _close_run(pieces, run)
                _close_run(pieces, ch)
                run = ""
                continue
            if run and _wide(ch) != _wide(run[-1]):
                _close_run(pieces, run)
                run = ""
            run += ch
            if ch in CJK_BREAK_AFTER:
                _close_run(pieces, run)
                run = ""
        _close_run(pieces, run)
        for piece in pieces:  # an opening bracket goes with what follows it
            if out and out[-1] and all(c in CJK_OPENING for c in out[-1]):
                out[-1] += piece
            else:
                out.append(piece)
    return out


def widest_word(text: str, size: float, bold: bool = False) -> float:
    """The width a column needs for its heading to wrap only between words."""
    return max((text_width(w, size, bold) for w in words(text)), default=0.0)


def wrap(
    text: str,
    width: float,
    size: float,
    bold: bool = False,
    max_lines: int = 6,
    keep_words: bool = False,
) -> list[str]:
    """Break text into lines that fit ``width``: at spaces, or between CJK characters.
    ``keep_words`` (headings): only between words (``words``), even if one is wider than
    ``width``; size the column with ``widest_word``."""
    if keep_words:
        return _wrap_words(words(text), width, size, bold, max_lines)
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
    for piece in _split_long(pieces, width, size, bold):
        candidate = line + piece
        if line and piece != " " and text_width(candidate.rstrip(), size, bold) > width:
            lines.append(line.rstrip())
            line = piece.lstrip()
        else:
            line = candidate
    if line.strip():
        lines.append(line.strip())
    return _cut(lines, max_lines)


def _wrap_words(
    pieces: list[str], width: float, size: float, bold: bool, max_lines: int
) -> list[str]:
    lines: list[str] = []
    line = ""
    for piece in pieces:
        joined = line.endswith(tuple(CJK_BREAK_AFTER)) or (
            bool(line) and _wide(line[-1]) and _wide(piece[0])
        )
        glue = " " if line and not joined else ""
        candidate = line + glue + piece
        if line and text_width(candidate, size, bold) > width:
            lines.append(line)
            line = piece
        else:
            line = candidate
    if line:
        lines.append(line)
    last = lines[-1] if lines else ""
    if len(lines) > 1 and len(last) == 1 and _wide(last) and len(lines[-2]) > 2:
        lines[-2:] = [lines[-2][:-1], lines[-2][-1] + last]  # no character alone on a line
    return _cut(lines, max_lines)


def _cut(lines: list[str], max_lines: int) -> list[str]:
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1].rstrip() + "…"
    return lines or [""]


def _split_long(pieces: list[str], width: float, size: float, bold: bool) -> list[str]:
    """A word wider than the line (a venue like "hall_b_main_stage", a URL) is broken into
    pieces that fit, rather than written past the chart's edge."""
    out: list[str] = []
    for piece in pieces:
        if text_width(piece, size, bold) <= width:
            out.append(piece)
            continue
        part, used = "", 0.0
        for ch in piece:
            step = text_width(ch, size, bold)
            if part and used + step > width:
                out.append(part)
                part, used = "", 0.0
            part, used = part + ch, used + step
        out.append(part)
    return out


def shorten(text: str, limit: float = 44) -> str:
    """A long label cut at a word (or character, for CJK) to about ``limit`` Latin characters."""
    return wrap(text, limit, 1.0 / 0.6, max_lines=1)[0]


def half_up(value: float, digits: int = 0) -> float:
    """Round half away from zero (12.5 -> 13, 37.5 -> 38, -2.5 -> -3), after settling float noise
    at 9 decimals (0.145 * 100 = 14.4999... is 14.5, so 15). Never returns -0."""
    exact = Decimal(repr(round(value, 9)))
    rounded = float(exact.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))
    return rounded + 0.0 if rounded != 0 else 0.0


def percentnumber(share: float, digits: int = 0) -> float:
    """A share as the percentage that is shown (rounded half up)."""
    return half_up(share * 100, digits)


def number(value: float, digits: int = 0) -> str:
    text = f"{half_up(value, digits):.{digits}f}"
    return "0" if float(text) == 0 and digits == 0 else text


def pct(share: float | None, digits: int = 0) -> str:
    if share is None:
        return "–"
    return f"{number(share * 100, digits)}%"


def signed(number: float) -> str:
    """A whole number of points with its sign, "0" without one."""
    value = half_up(number)
    return f"{value:+.0f}" if value != 0 else "0"


def points(value: float) -> str:
    """A difference of shares in percentage points with its sign (rounded half up)."""
    return signed(value * 100)


def shown_points(first: float, second: float) -> str:
    """``first - second`` in points as the difference of the two shown (rounded) percentages, so
    that a reader who subtracts the shown numbers gets the shown difference."""
    return signed(percentnumber(first) - percentnumber(second))


def size(shown: str) -> int:
    """How many points a shown difference ("+1", "-12", "0") is, for the words around it ("1
    point", "12 points")."""
    return abs(int(shown))


def interval(ci: tuple[float, float] | None, scale: float = 100.0) -> str:
    """A 95% interval as "[lower, upper]", each bound rounded half up, never "-0"."""
    if ci is None:
        return ""
    low, high = (number(bound * scale) for bound in ci)
    return f"[{low}, {high}]"


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


def draw_title(
    chart: Chart, text: str, y: float, width: float | None = None, size: float = TITLE
) -> float:
    for line in wrap(text, (width or chart.width) - 2 * PAD, size, bold=True, max_lines=4):
        y += size * 1.2
        chart.add(Text(PAD, y, line, size, weight="bold"))
    return y


NOTE_LINES = 40
"""A note is written in full (its caveat comes last); only a label is cut at six lines."""


def draw_lines(
    chart: Chart,
    text: str,
    x: float,
    y: float,
    width: float,
    size: float,
    max_lines: int = 6,
    **kw: Any,
) -> float:
    """Write wrapped text from baseline-above ``y``; returns the y below the last line.
    ``keep_words``: as ``wrap``'s (headings)."""
    keep_words = bool(kw.pop("keep_words", False))
    bold = kw.get("weight") == "bold"
    for line in wrap(text, width, size, bold=bold, max_lines=max_lines, keep_words=keep_words):
        y += size * 1.2
        chart.add(Text(x, y, line, size, **kw))
    return y
