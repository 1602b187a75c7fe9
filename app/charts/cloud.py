"""The word cloud of open-text answers: the terms (``app.formats.terms``) drawn as a ``Chart``, so
it becomes SVG and PNG like every other chart (``partials/charts/_svg.html``, ``export``), with
every answer's text escaped by the template.

- At most ``MAX_TERMS`` terms, the most used in the middle.
- Font size by the square root of the count: the most used term at ``MAX_SIZE``, a term used by
  a quarter as many answers at half that size, none below ``MIN_SIZE``. The chart is
  ``WIDTH`` x ``HEIGHT`` units (2:1, the shape a slide has left below the count and a sentence
  of two lines): filling a 1280x720 slide it is drawn about 530 px high (measured in Chromium),
  so MIN_SIZE units are 29 px, above the 28 px the back row needs (UI.md); at 1920x1080, 45 px
  or more. Beside the QR code (a question still open) it is drawn smaller: at 1920x1080 its
  smallest words about 35 px, at 1280x720 under 28, where the chart takes the slide
  (``static/js/projector.js``).
- A deterministic layout: each term in order tries the points of one fixed spiral out from the
  middle (stretched to the chart's shape) and takes the first where its box, measured with
  ``svg.text_width`` like every other chart's labels, overlaps no box placed before (a grid of
  covered cells, ``_Grid``) and stays inside the chart. If a term finds no place, every size
  shrinks by ``SHRINK`` and the layout starts again; at MIN_SIZE a term that still finds none
  is left out (its row stays in the text equivalent). A word wider than the chart (a long
  unbroken string) is cut to its width with an ellipsis, whole in the text equivalent. The
  same terms give the same bytes, always: no randomness, no rotation.
- Okabe-Ito colours that keep 3:1 contrast on white (no yellow, orange or sky blue for text),
  by rank: colour carries no meaning, the size does.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache

import numpy as np

from app.charts.svg import INK, MUTED, Chart, Text, text_width, wrap
from app.formats.terms import MAX_TERMS, Term
from app.i18n import translate

WIDTH = 1600
HEIGHT = 800
PHONE_WIDTH = 800
PHONE_HEIGHT = 720
PHONE_TERMS = 20
"""The phone's cloud (``phone=True``): half as wide and nearly square, the 20 most used terms,
so that across a 390 px screen its smallest word is still about 20 px."""
MIN_SIZE = 44
MAX_SIZE = 150
SHRINK = 0.92
GAP = 4
"""Units of white between two words' boxes."""
EDGE = 16
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", INK)
LINE = 1.16
"""A word's box height per unit of font size; the baseline sits ``ASCENT`` of the size below
its top (Latin descenders and CJK glyphs both fit)."""
ASCENT = 0.9


@dataclass(frozen=True)
class Placed:
    term: Term
    size: float
    x: float
    """The centre of the word."""
    y: float
    """The top of its box."""
    w: float
    h: float


@dataclass(frozen=True)
class Shape:
    width: float
    height: float


SLIDE = Shape(WIDTH, HEIGHT)
PHONE = Shape(PHONE_WIDTH, PHONE_HEIGHT)


@cache
def _spiral(shape: Shape) -> tuple[np.ndarray, np.ndarray]:
    """The offsets from the middle a word tries in order: an Archimedean spiral, turns 12 units
    apart, a point every 12 units along it, stretched to the chart's shape."""
    step = 12.0
    radius_max = shape.height / 2 * math.sqrt(2)  # stretched, it reaches past every corner
    thetas = [0.0]
    theta = 0.0
    while True:
        radius = step * theta / (2 * math.pi)
        theta += step / max(radius, step)
        if radius > radius_max:
            break
        thetas.append(theta)
    t = np.array(thetas)
    r = step * t / (2 * math.pi)
    stretch = shape.width / shape.height
    return r * np.cos(t) * stretch, r * np.sin(t)


def sizes(terms: Sequence[Term], scale: float = 1.0) -> list[float]:
    """Font sizes by the square root of the count (module notes), rounded to whole units."""
    top = max((t.count for t in terms), default=1)
    return [float(max(MIN_SIZE, round(scale * MAX_SIZE * math.sqrt(t.count / top)))) for t in terms]


CELL = 8
"""The side of a cell of the grid that records where words are (``_Grid``), in chart units."""


class _Grid:
    """Which cells of the chart words cover (each box grown by ``GAP`` and rounded out to whole
    cells), so a candidate box is checked against every word at once with a summed-area table:
    never an overlap, at the price of at most a cell of extra white between two words."""

    def __init__(self, shape: Shape) -> None:
        self.shape = shape
        self.cells = np.zeros(
            (math.ceil(shape.height / CELL), math.ceil(shape.width / CELL)), np.int32
        )

    def cover(self, left: float, top: float, w: float, h: float) -> None:
        r0, c0 = math.floor((top - GAP) / CELL), math.floor((left - GAP) / CELL)
        r1, c1 = math.ceil((top + h + GAP) / CELL), math.ceil((left + w + GAP) / CELL)
        self.cells[max(r0, 0) : r1, max(c0, 0) : c1] = 1

    def first_free(self, w: float, h: float) -> tuple[float, float] | None:
        """The top left corner of the first box of ``w`` x ``h`` on the spiral that covers no
        word's cell and stays inside the chart."""
        width, height = self.shape.width, self.shape.height
        dx, dy = _spiral(self.shape)
        left = width / 2 + dx - w / 2
        top = height / 2 + dy - h / 2
        inside = np.flatnonzero(
            (left >= EDGE) & (top >= EDGE) & (left + w <= width - EDGE) & (top + h <= height - EDGE)
        )
        left, top = left[inside], top[inside]
        table = np.zeros((self.cells.shape[0] + 1, self.cells.shape[1] + 1), np.int32)
        table[1:, 1:] = self.cells.cumsum(0).cumsum(1)
        c0 = np.floor(left / CELL).astype(np.intp)
        r0 = np.floor(top / CELL).astype(np.intp)
        c1 = np.ceil((left + w) / CELL).astype(np.intp)
        r1 = np.ceil((top + h) / CELL).astype(np.intp)
        covered = table[r1, c1] - table[r0, c1] - table[r1, c0] + table[r0, c0]
        hits = np.flatnonzero(covered == 0)
        if hits.size == 0:
            return None
        return float(left[hits[0]]), float(top[hits[0]])


def _place(
    terms: Sequence[Term], font: Sequence[float], shape: Shape, skip: bool = False
) -> tuple[list[Placed], bool]:
    """Place the terms in order on the spiral; whether every one found a place. A term that
    finds none stops the layout, or (``skip``) is left out; one wider than the chart is cut."""
    grid = _Grid(shape)
    placed: list[Placed] = []
    complete = True
    room = shape.width - 2 * EDGE
    for term, size in zip(terms, font, strict=True):
        w = text_width(term.text, size, bold=True)
        if w > room:  # a long unbroken string: cut to the chart's width, with an ellipsis
            cut = wrap(term.text, room - text_width("…", size, bold=True), size, True, 1)[0]
            term, w = replace(term, text=cut), text_width(cut, size, bold=True)
        h = size * LINE
        spot = grid.first_free(w, h)
        if spot is None:
            if not skip:
                return placed, False
            complete = False
            continue
        grid.cover(spot[0], spot[1], w, h)
        placed.append(Placed(term, size, spot[0] + w / 2, spot[1], w, h))
    return placed, complete


FILL = 0.75
"""The share of the chart that words' boxes can cover at most: a first layout starts at the scale
where they would cover this much (rather than at full size, which cannot fit)."""


def _first_scale(terms: Sequence[Term], shape: Shape) -> float:
    across = shape.width - 2 * EDGE  # a longer word is cut (``_place``)
    area = sum(
        min(across, text_width(t.text, size, bold=True)) * size * LINE
        for t, size in zip(terms, sizes(terms), strict=True)
    )
    room = FILL * (shape.width - 2 * EDGE) * (shape.height - 2 * EDGE)
    return min(1.0, math.sqrt(room / area)) if area else 1.0


def layout(terms: Sequence[Term], shape: Shape = SLIDE) -> list[Placed]:
    """Every term placed, shrinking all sizes until they fit (module notes)."""
    terms = list(terms[:MAX_TERMS])
    scale = _first_scale(terms, shape)
    while True:
        font = sizes(terms, scale)
        placed, complete = _place(terms, font, shape)
        if complete:
            return placed
        if all(size == MIN_SIZE for size in font):
            # At the smallest size: the terms that fit, in order, the others left out.
            return _place(terms, font, shape, skip=True)[0]
        scale *= SHRINK


def _centred(placed: list[Placed], shape: Shape) -> list[Placed]:
    """The words moved together so that their bounding box sits in the middle of the chart."""
    if not placed:
        return placed
    left = min(p.x - p.w / 2 for p in placed)
    right = max(p.x + p.w / 2 for p in placed)
    top = min(p.y for p in placed)
    bottom = max(p.y + p.h for p in placed)
    shift_x = round((shape.width - right - left) / 2, 1)
    shift_y = round((shape.height - bottom - top) / 2, 1)
    return [Placed(p.term, p.size, p.x + shift_x, p.y + shift_y, p.w, p.h) for p in placed]


def cloud_chart(terms: Sequence[Term], answers: int, lang: str, phone: bool = False) -> Chart:
    """The word cloud of ``answers`` answers whose terms are ``terms`` (most used first): for
    the projector, the results page and the exports, or (``phone``) narrower for a phone."""
    shape = PHONE if phone else SLIDE
    shown = list(terms[: PHONE_TERMS if phone else MAX_TERMS])
    digest = hashlib.sha256(repr((lang, answers, phone, shown)).encode()).hexdigest()[:12]
    chart = Chart(
        name="cloud-phone" if phone else "cloud",
        title=translate(lang, "cloud_title"),
        sentence=translate(lang, "cloud_sentence", n=answers),
        lang=lang,
        width=shape.width,
        height=shape.height,
        uid=f"w{digest}",  # from the content, not a counter: the same cloud, the same bytes
    )
    chart.rows = [translate(lang, "cloud_row", word=t.text, count=t.count) for t in shown]
    if not shown:
        message = (
            translate(lang, "cloud_no_words", n=answers)
            if answers
            else translate(lang, "res_no_answers")
        )
        chart.sentence = message
        size = 64
        lines = wrap(message, shape.width * 0.7, size, bold=True, max_lines=4)  # no word alone
        y = shape.height / 2 - (len(lines) - 1) * size * 0.6 + size * 0.35
        for line in lines:
            chart.add(
                Text(shape.width / 2, y, line, size, anchor="middle", weight="bold", fill=MUTED)
            )
            y += size * 1.2
        return chart
    for rank, word in enumerate(_centred(layout(shown, shape), shape)):
        chart.add(
            Text(
                word.x,
                word.y + word.size * ASCENT,
                word.term.text,
                word.size,
                anchor="middle",
                weight="bold",
                fill=COLOURS[rank % len(COLOURS)],
            )
        )
    return chart
