"""Every sentence of every screen, read for the faults a room notices: "+1 points", doubled
punctuation ("。." or ".."), a 95% interval of zero width ("60% [60, 60]"), "most" at or under
half, and a Chinese sentence whose 也 ("also") says that those who answered hold the view.

Rooms of 3, 10 (tied), 12 (all unsure), 30 and 300, and unanimous ones, run through the app; what
the projector, the phones, the results pages, the reports and the chart files show is read in
both languages (``tests.test_disclosure.run_room``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from tests.conftest import copy_sqlite_template
from tests.test_disclosure import Room, crowd, room_app, run_room
from tests.test_disclosure_estimate import run_room as run_estimate_room
from tests.test_disclosure_estimate import voters

ROOMS = {
    "3": crowd((2, "d1", "agree", "agree", "agree"), (1, "d3", "disagree", "agree", "disagree")),
    "10_tied": crowd(
        (5, "d1", "agree", "agree", "agree"), (5, "d3", "disagree", "disagree", "disagree")
    ),
    "12_unsure": crowd((12, "d3", "unsure", "unsure", "unsure")),
    "30": crowd(
        (7, "d1", "agree", "agree", "agree"),
        (3, "d1", "agree", "agree", "disagree"),
        (10, "d3", "disagree", "agree", "disagree"),
        (4, "d3", "disagree", "disagree", "disagree"),
        (6, "d3", "unsure", "unsure", "unsure"),
    ),
    "300": crowd(
        (121, "d1", "agree", "agree", "agree"),
        (59, "d3", "disagree", "agree", "disagree"),
        (90, "d3", "disagree", "disagree", "unsure"),
        (30, "d3", "unsure", "unsure", "unsure"),
    ),
    "unanimous": crowd((20, "d1", "agree", "agree", "agree")),
}

ESTIMATE_ROOMS = {
    # everyone holds the view and everyone estimates 60%: once printed "60% [60, 60]" and a gap
    # of "-40 points [-40, -1]" sitting on its own bound
    "estimate_unanimous": voters("d1", "agree", [60] * 12, "agree"),
    # each group gives one estimate: the false-consensus difference once read "[0, 0]"
    "estimate_two_camps": [
        *voters("d1", "agree", [70] * 6, "agree"),
        *voters("d3", "disagree", [70] * 6, "disagree"),
    ],
    # a gap of one point: "+1 points"
    "estimate_one_point": [
        *voters("d1", "agree", [51] * 5 + [52] * 5, "agree"),
        *voters("d3", "disagree", [51] * 5 + [49] * 5, "disagree"),
    ],
}

ONE_POINT = re.compile(r"(?<![\d.])[+\-−]?1 (?:points|pts)\b")
DOUBLED = re.compile(r"[。！？][.。;；,，]|(?<![.])\.\.(?![.])|[.;]\s*[。；]|;\s*;")
ZERO_WIDTH = re.compile(r"\[(-?\d+(?:\.\d+)?)%?, \1%?\]")
MOST = re.compile(r"\bMost chose “[^”]*”: (\d+)%")
ALSO = re.compile(r"大多数人也|领域内也")


READ = ("aria-label", "title", "alt", "placeholder")


class _Reader(HTMLParser):
    """The strings BeautifulSoup's ``html.parser`` tree gives (each run of text between two
    tags, each comment and declaration), read as Python's parser meets them without building
    the tree: a room's outputs are about 90 pages and charts, and the tree cost seconds."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.text: list[str] = []
        self.skip = False  # inside a script or a style

    def _string(self, text: str) -> None:
        self.out.append(" ".join(text.split()))

    def _end_text(self) -> None:
        if self.text:
            if not self.skip:
                self._string("".join(self.text))
            self.text = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._end_text()
        self.skip = tag in ("script", "style")
        if not self.skip:
            given = dict(attrs)  # the last of a repeated attribute, as BeautifulSoup keeps it
            self.out += [" ".join((given[a] or "").split()) for a in READ if a in given]

    def handle_endtag(self, tag: str) -> None:
        self._end_text()
        self.skip = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self._end_text()
        self._string(data)

    def handle_decl(self, data: str) -> None:
        self.handle_comment(data.removeprefix("DOCTYPE ").removeprefix("doctype "))

    handle_pi = unknown_decl = handle_comment


def strings(markup: str) -> list[str]:
    """What a reader or a screen reader gets: the text (not scripts or styles) and the
    attributes that are read out."""
    reader = _Reader()
    reader.feed(markup)
    reader.close()
    reader._end_text()
    return [s for s in reader.out if s]


@pytest.fixture(scope="module")
def rooms(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: bytes
) -> Callable[[str], Room]:
    done: dict[str, Room] = {}

    def get(name: str) -> Room:
        if name not in done:
            data_dir = copy_sqlite_template(tmp_path_factory.mktemp(name), sqlite_template)
            with TestClient(room_app(data_dir)) as client:
                if name in ROOMS:
                    done[name] = run_room(client, ballots(ROOMS[name]))
                else:
                    done[name] = run_estimate_room(client, ESTIMATE_ROOMS[name])
        return done[name]

    return get


def ballots(people: list[dict[str, str]]) -> list[dict[str, dict[str, object]]]:
    return [{phase: {"choice": choice} for phase, choice in p.items()} for p in people]


@pytest.mark.parametrize("name", [*ROOMS, *ESTIMATE_ROOMS])
def test_every_sentence_reads_right(name: str, rooms: Callable[[str], Room]) -> None:
    room = rooms(name)
    faults: list[str] = []
    for where, markup in room.outputs.items():
        for text in strings(markup):
            for pattern, fault in (
                (ONE_POINT, "1 point in the plural"),
                (DOUBLED, "doubled punctuation"),
                (ZERO_WIDTH, "an interval of zero width"),
                (ALSO, "也 says those who answered hold the view"),
            ):
                if found := pattern.search(text):
                    faults.append(
                        f"{where}: {fault}: …{text[max(0, found.start() - 40) : found.end() + 20]}…"
                    )
            for share in MOST.findall(text):
                if int(share) <= 50:
                    faults.append(f"{where}: 'most' at {share}%: {text[:120]}")
    assert not faults, "\n".join(sorted(set(faults))[:20])
