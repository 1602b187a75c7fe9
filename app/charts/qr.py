"""The QR slide: a 1920x1080 picture for decks that cannot show a web page (Keynote, Google
Slides): the talk's title, the QR code of the join address, and the address and code in text,
in the room's language. Drawn with the chart primitives, so it becomes SVG and PNG as every
chart does (``app.export.render_svg``, ``app.export.svg_to_png``)."""

from __future__ import annotations

import segno

from app.charts.svg import MUTED, Chart, Path, Text, draw_lines, wrap

SLIDE_WIDTH = 1920
SLIDE_HEIGHT = 1080
MARGIN = 120
QR_SIZE = 640
"""The code's side with its quiet zone: 59% of the slide's height, for the back row's phones."""
QUIET = 2
"""Modules of white around the code (it sits on white)."""


def qr_path(url: str, x: float, y: float, size: float) -> Path:
    """The QR code of ``url`` as one path of dark modules, in a square of ``size`` at (x, y)."""
    matrix = segno.make(url, error="m").matrix
    count = len(matrix) + 2 * QUIET
    unit = size // count  # whole pixels: no seams between rows in the PNG
    x, y = x + (size - unit * count) // 2, y + (size - unit * count) // 2
    parts = []
    for row, modules in enumerate(matrix):
        column = 0
        while column < len(modules):
            if not modules[column]:
                column += 1
                continue
            start = column
            while column < len(modules) and modules[column]:
                column += 1
            left = x + (start + QUIET) * unit
            top = y + (row + QUIET) * unit
            run = (column - start) * unit
            parts.append(f"M{left:g} {top:g}h{run:g}v{unit:g}h{-run:g}z")
    return Path("".join(parts), "#000000")


def qr_slide(title: str, scan: str, code: str, url: str, short_url: str, lang: str) -> Chart:
    """The slide: ``title`` over the code, ``scan`` (the invitation), ``code`` and
    ``short_url`` (the address without its scheme) beside it; ``url`` is what the code holds."""
    chart = Chart(
        name="qr-slide",
        title=title,
        sentence=f"{scan} {code} · {short_url}",
        lang=lang,
        width=SLIDE_WIDTH,
        height=SLIDE_HEIGHT,
    )
    y = draw_lines(
        chart, title, MARGIN, MARGIN - 40, SLIDE_WIDTH - 2 * MARGIN, 64, 2, weight="bold"
    )
    top = max(y + 40, SLIDE_HEIGHT - MARGIN + 40 - QR_SIZE)
    chart.add(qr_path(url, MARGIN, top, QR_SIZE))
    left = MARGIN + QR_SIZE + 80
    column = SLIDE_WIDTH - MARGIN - left
    middle = top + QR_SIZE / 2
    chart.add(Text(left, middle - 130, scan, 48, fill=MUTED))
    chart.add(Text(left, middle + 40, code, 150, weight="bold"))
    lines = wrap(short_url, column, 56, bold=True, max_lines=2)
    for index, line in enumerate(lines):
        chart.add(Text(left, middle + 140 + index * 68, line, 56, weight="bold"))
    return chart
