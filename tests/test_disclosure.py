"""Small cells against an attacker, on everything a non-presenter can see.

Each room is run through the real app (its own SQLite file): phones vote, the presenter reveals
each phase. Then everything a non-presenter can see is fetched: the phone's page and panel, the
live ``results`` event (``partials/_revealed.html``), the projector's slides (the room sees them;
they are htmx fragments), the results pages and printable reports of the session and the talk
(the presenter shows and hands them out), and every chart file as SVG and the SVG each PNG is
drawn from. The presenter's JSON is the truth the attacker is checked against.

The attacker knows the public totals (every phase's own counts: its bar chart shows them) and
reads every output: every text node, title, description, aria label and attribute. For each
cross-tabulation (stance x revote, stance x perceived, definition x stance):

- every cell shown anywhere, and every share and sentence that sums cells, becomes a constraint
  of a linear programme (scipy's ``linprog``); no hidden cell of 1 to 4 people that the totals
  alone leave uncertain may be pinned to one value, and no output may print a hidden cell's count
  (``test_no_output_pins_a_hidden_cell``);
- exactly: every table that the shown cells and the totals allow is drawn as the app draws it,
  and a hidden small cell must not take one value in all the tables whose outputs read exactly
  as the real room's (``test_no_hidden_cell_follows_from_everything_shown``), which also catches
  figures that are not linear in the cells (a test statistic, an interval);
- the same attacker, who also redoes the suppression on each of those tables and drops the ones
  it would hide differently (``test_redoing_the_suppression_tells_no_hidden_cell``).

The rooms have small cells where they hurt: only one person changed; a row with exactly one
small cell; the 30-person room whose after-total of 4 the flow chart once hid; a room of 6; a
room whose stance x perceived table is small.
"""

from __future__ import annotations

import itertools
import math
import re
import string
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app import audience, charts, export, i18n, results, stats
from app.live import RecordingPublisher
from app.main import create_app, make_templates
from app.settings import Settings
from tests.conftest import ADMIN_TOKEN, AUTH, SECRET_KEY, log_in, new_session, phase_action
from tests.test_stream import Stream

LANGS = ("en", "zh-Hans")
FIRST = ("definition", "belief", "field")

Person = dict[str, str]


def crowd(*groups: tuple[int, str, str, str, str]) -> list[Person]:
    """People from (how many, definition, stance, perceived, revote); "" leaves a phase out."""
    out = []
    for count, definition, belief, perceived, revote in groups:
        given = {"definition": definition, "belief": belief, "field": perceived, "revote": revote}
        out += [{k: v for k, v in given.items() if v} for _ in range(count)]
    return out


ROOMS: dict[str, list[Person]] = {
    # 20 people; everyone kept their answer but one, who went from agree to disagree
    "one_changed": crowd(
        (7, "d1", "agree", "agree", "agree"),
        (1, "d1", "agree", "agree", "disagree"),
        (7, "d3", "disagree", "disagree", "disagree"),
        (5, "d3", "unsure", "agree", "unsure"),
    ),
    # 25 people; the agree row holds exactly one small cell (2 went to unsure)
    "one_small_in_a_row": crowd(
        (8, "d1", "agree", "agree", "agree"),
        (2, "d1", "agree", "agree", "unsure"),
        (9, "d3", "disagree", "disagree", "disagree"),
        (6, "d3", "unsure", "unsure", "unsure"),
    ),
    # 29 pairs, after the talk 8, 18 and 4 (the after-total the flow chart once hid); one more
    # person answered the stance only and one the revote only
    "demo_30": crowd(
        (7, "d1", "agree", "agree", "agree"),
        (3, "d1", "agree", "agree", "disagree"),
        (10, "d3", "disagree", "agree", "disagree"),
        (3, "d3", "disagree", "disagree", "disagree"),
        (1, "d3", "disagree", "disagree", "unsure"),
        (1, "d1", "unsure", "agree", "agree"),
        (2, "d3", "unsure", "unsure", "disagree"),
        (3, "d3", "unsure", "unsure", "unsure"),
        (1, "d3", "unsure", "agree", ""),
        (1, "", "", "", "disagree"),
    ),
    # 28 people; the view's own row has no small cell, so its sentence says how many changed
    # (that cell is shown), while two of its flows are hidden beside the 2 who left disagree
    "view_row_shown": crowd(
        (10, "d1", "agree", "agree", "agree"),
        (5, "d1", "agree", "agree", "disagree"),
        (5, "d3", "agree", "disagree", "unsure"),
        (8, "d3", "disagree", "disagree", "disagree"),
        (2, "d3", "disagree", "agree", "unsure"),
        (6, "d3", "unsure", "unsure", "unsure"),
    ),
    # the room: 30 people, 8 changed their answer, 5 to the view and 3 away from it,
    # and saying so gives no hidden cell away
    "moved_30": crowd(
        (9, "d1", "agree", "agree", "agree"),
        (2, "d1", "agree", "agree", "disagree"),
        (1, "d1", "agree", "disagree", "unsure"),
        (2, "d3", "disagree", "agree", "agree"),
        (9, "d3", "disagree", "disagree", "disagree"),
        (3, "d3", "unsure", "agree", "agree"),
        (4, "d3", "unsure", "unsure", "unsure"),
    ),
    # 6 people: every cell is small
    "six": crowd(
        (2, "d1", "agree", "agree", "agree"),
        (1, "d1", "agree", "disagree", "unsure"),
        (1, "d3", "disagree", "agree", "disagree"),
        (2, "d3", "unsure", "agree", "agree"),
    ),
    # 15 people: 6 agree, 4 of them think the field agrees; 9 unsure, none of them does
    "small_perceived": crowd(
        (4, "d1", "agree", "agree", "agree"),
        (2, "d1", "agree", "disagree", "unsure"),
        (9, "d3", "unsure", "disagree", "unsure"),
    ),
}


# --------------------------------------------------------------------------- running a room


@dataclass
class Room:
    code: str
    outputs: dict[str, str]
    """Where it was seen -> the HTML or SVG a non-presenter can see there."""
    truth: dict[str, Any]
    """The presenter's results JSON."""
    document: dict[str, Any]
    """The session's JSON export (the presenter's), to redraw other tables as the app does."""
    labels: dict[str, dict[str, dict[str, str]]]
    """Phase id -> option id -> language -> label."""


Ballot = dict[str, dict[str, object]]
"""One person's answers: phase id -> the vote's body (without the phase)."""


def ballot(person: Person) -> Ballot:
    return {phase: {"choice": choice} for phase, choice in person.items()}


class Phone:
    """One phone: its own cookies, its requests sent through the presenter's client (a client
    of its own per phone would start an event loop for every request)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.cookies = httpx.Cookies()

    def _as_me(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        own = self.client.cookies
        self.client.cookies = self.cookies
        try:
            return self.client.request(method, url, **kwargs)
        finally:
            self.cookies = httpx.Cookies(self.client.cookies)
            self.client.cookies = own

    def vote(self, code: str, phase: str, body: dict[str, object]) -> None:
        url = f"/api/v1/sessions/{code}/votes"
        response = self._as_me("POST", url, json={"phase": phase, **body})
        assert response.status_code == 200, response.text

    def get(self, url: str) -> str:
        response = self._as_me("GET", url)
        assert response.status_code == 200, (url, response.status_code, response.text[:200])
        return response.text


def room_app(data_dir: Path) -> FastAPI:
    """An app of its own on its own SQLite file, so that the talk's pages pool its rooms only."""
    settings = Settings(
        data_dir=data_dir,
        admin_token=ADMIN_TOKEN,
        secret_key=SECRET_KEY,
        public_url="http://testserver",
        published_polls=False,
    )
    return create_app(settings, publisher=RecordingPublisher())


def run_room(
    client: TestClient,
    ballots: list[Ballot],
    talk: str = "emergence",
    first: tuple[str, ...] = FIRST,
) -> Room:
    """The room through the app: the ``first`` phases open, every phone votes in them, each is
    closed and revealed (the projector then shows the gap), then the revote. Everything a
    non-presenter sees of it is kept, with the presenter's JSON as the truth."""
    code = new_session(client, talk=talk)
    outputs: dict[str, str] = {}
    for phase in first:
        phase_action(client, code, phase, "open")
    phones = [Phone(client) for _ in ballots]
    for phone, given in zip(phones, ballots, strict=True):
        for phase in first:
            if phase in given:
                phone.vote(code, phase, given[phase])
    for phase in first:
        phase_action(client, code, phase, "close")
        phase_action(client, code, phase, "reveal")
    log_in(client)
    stage = f"/presenter/sessions/{code}/projector/stage"
    for lang in LANGS:
        # the perceived phase revealed last: the projector shows the belief gap
        outputs[f"projector gap slide {lang}"] = _get(client, f"{stage}?lang={lang}")
    phase_action(client, code, "revote", "open")
    for phone, given in zip(phones, ballots, strict=True):
        if "revote" in given:
            phone.vote(code, "revote", given["revote"])
    phase_action(client, code, "revote", "close")
    phase_action(client, code, "revote", "reveal")
    for lang in LANGS:
        outputs[f"projector shift slide {lang}"] = _get(client, f"{stage}?lang={lang}")
        outputs[f"projector page {lang}"] = _get(
            client, f"/presenter/sessions/{code}/projector?lang={lang}"
        )
    voter, newcomer = phones[0], Phone(client)
    for lang in LANGS:
        outputs[f"phone page {lang}"] = voter.get(f"/j/{code}?lang={lang}")
        outputs[f"phone panel {lang}"] = voter.get(f"/j/{code}/panel?lang={lang}")
        outputs[f"new phone page {lang}"] = newcomer.get(f"/j/{code}?lang={lang}")
        stream = Stream(client, code, lang=lang)
        try:
            outputs[f"live results event {lang}"] = stream.until("results", "")
        finally:
            stream.close()
        for where, url in (
            ("results page", f"/presenter/sessions/{code}/results"),
            ("report", f"/presenter/sessions/{code}/report.html"),
            ("talk results page", f"/presenter/talks/{talk}/results"),
            ("talk report", f"/presenter/talks/{talk}/report.html"),
        ):
            outputs[f"{where} {lang}"] = _get(client, f"{url}?lang={lang}")
    outputs.update(_chart_files(client, code, outputs))
    # the session ends: a phone that reloads, and one that joins now, keep its summary
    ended = client.patch(f"/api/v1/sessions/{code}", json={"ended": True}, headers=AUTH)
    assert ended.status_code == 200, ended.text
    for lang in LANGS:
        outputs[f"ended phone page {lang}"] = voter.get(f"/j/{code}?lang={lang}")
        outputs[f"ended new phone page {lang}"] = Phone(client).get(f"/j/{code}?lang={lang}")
    truth = client.get(f"/api/v1/sessions/{code}/results", headers=AUTH).json()
    document = client.get(f"/api/v1/sessions/{code}/export.json", headers=AUTH).json()
    book = client.get(f"/api/v1/sessions/{code}/codebook.json", headers=AUTH).json()
    labels = {p["id"]: {o["id"]: o["label"] for o in p.get("options", [])} for p in book["phases"]}
    return Room(code, outputs, truth, document, labels)


def _get(client: TestClient, url: str, **kwargs: Any) -> str:
    response = client.get(url, **kwargs)
    assert response.status_code == 200, (url, response.status_code, response.text[:200])
    return response.text


def _chart_files(client: TestClient, code: str, outputs: dict[str, str]) -> dict[str, str]:
    """Every chart file the results pages link to (SVG, and the SVG each PNG is drawn from), and
    the talk's charts (its forest plot among them)."""
    drawn: list[str] = []
    original = export.svg_to_png

    def keep(svg: str, zoom: float = 2.0) -> bytes:
        drawn.append(svg)
        return b"\x89PNG"  # drawing the picture itself tells the attacker nothing more

    export.svg_to_png = keep
    found: dict[str, str] = {}
    try:
        for where in ("results page", "talk results page"):
            for lang in LANGS:
                page = soup_of(outputs[f"{where} {lang}"])
                links = {a["href"] for a in page.select(".chart-downloads a[href]")}
                assert links, f"no chart files linked from the {where}"
                for href in sorted(links):
                    path, _, query = str(href).partition("?")
                    response = client.get(path, params=dict([query.split("=")]), headers=AUTH)
                    assert response.status_code == 200, href
                    if path.endswith(".svg"):
                        found[f"chart file {href}"] = response.text
                    else:
                        found[f"source of {href}"] = drawn.pop()
    finally:
        export.svg_to_png = original
    assert any("forest" in where for where in found), "the talk's forest plot was not linked"
    return found


# --------------------------------------------------------------------------- reading outputs


def soup_of(markup: str) -> BeautifulSoup:
    """HTML pages and SVG files alike (an SVG file is read as markup, as a browser shows it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        return BeautifulSoup(markup, "html.parser")


def strings(markup: str) -> list[str]:
    """Every text node and every attribute value, whitespace collapsed (what a reader, a screen
    reader or a scraper gets: titles, descriptions, aria labels and data attributes included)."""
    return strings_of(soup_of(markup))


def strings_of(soup: BeautifulSoup) -> list[str]:
    """``strings`` of markup already parsed."""
    out = [" ".join(s.split()) for s in soup.find_all(string=True)]
    for tag in soup.find_all(True):
        for value in tag.attrs.values():
            out.append(" ".join(value if isinstance(value, list) else [str(value)]))
    return [s for s in out if s]


@dataclass
class Table:
    """One cross-tabulation as the attacker sees it."""

    name: str
    rows: tuple[str, ...]
    cols: tuple[str, ...]
    truth: tuple[tuple[int, ...], ...]
    hidden: frozenset[tuple[int, int]]
    """What the presenter's JSON flags."""
    shown: dict[tuple[int, int], set[int]] = field(default_factory=dict)
    dashes: set[tuple[int, int]] = field(default_factory=set)
    bounds: list[tuple[dict[tuple[int, int], float], float, float]] = field(default_factory=list)
    """lower <= sum(coefficient * cell) <= upper, from shares and sentences."""
    where: dict[tuple[int, int], set[str]] = field(default_factory=dict)

    def see(self, cell: tuple[int, int], value: int, where: str) -> None:
        self.shown.setdefault(cell, set()).add(value)
        self.where.setdefault(cell, set()).add(where)

    def bound(self, coefficients: dict[tuple[int, int], float], low: float, high: float) -> None:
        self.bounds.append((coefficients, low, high))

    def row_total(self, i: int) -> int:
        return sum(self.truth[i])

    def col_total(self, j: int) -> int:
        return sum(r[j] for r in self.truth)

    @property
    def n(self) -> int:
        return sum(map(sum, self.truth))

    @property
    def everything(self) -> frozenset[tuple[int, int]]:
        return frozenset(itertools.product(range(len(self.rows)), range(len(self.cols))))


def tables(room: Room) -> dict[str, Table]:
    out = {}
    shift = room.truth["shift"]
    keys = tuple(shift["matrix"])
    out["shift"] = Table(
        "shift",
        keys,
        keys,
        tuple(tuple(shift["matrix"][a][b] for b in keys) for a in keys),
        frozenset((keys.index(a), keys.index(b)) for a, b in shift["hidden"]),
    )
    for name, tab in room.truth["crosstabs"].items():
        rows = tuple(tab["counts"])
        cols = tuple(next(iter(tab["counts"].values())))
        out[name] = Table(
            name,
            rows,
            cols,
            tuple(tuple(tab["counts"][r][c] for c in cols) for r in rows),
            frozenset((rows.index(r), cols.index(c)) for r, c in tab["hidden"]),
        )
    return out


def shown_share(text: str) -> tuple[float, float]:
    """The interval a share lies in when it is shown as ``text`` ("12%", "12.5%"), rounded half
    up."""
    value = float(text.rstrip("%"))
    digits = len(text.rstrip("%").partition(".")[2])
    half = 0.5 * 10**-digits
    return (value - half) / 100 - 1e-9, (value + half) / 100 + 1e-9


def message_patterns(key: str, **groups: str) -> list[re.Pattern[str]]:
    """Regular expressions for a message in every language and plural form, each placeholder a
    named group (``groups`` gives a placeholder's own pattern)."""
    texts = i18n.messages()[key]
    forms: list[str] = []
    for lang in LANGS:
        text = texts.get(lang) or texts["en"]
        forms += list(text.values()) if isinstance(text, dict) else [text]
    out = []
    for form in forms:
        pattern = ""
        for literal, name, _spec, _conv in string.Formatter().parse(form):
            pattern += re.escape(literal)
            if name:
                pattern += f"(?P<{name}>{groups.get(name, '.+?')})"
        out.append(re.compile(pattern))
    return out


SHARE = r"\d+(?:\.\d)?%"
CHANGED = rf"(?P<pct>{SHARE}) \[\d+, \d+\]"


def read(room: Room) -> dict[str, Table]:
    """Everything each output tells about each table."""
    found = tables(room)
    for where, markup in room.outputs.items():
        read_output(found, room, where, soup_of(markup))
    return found


def read_output(found: dict[str, Table], room: Room, where: str, soup: BeautifulSoup) -> None:
    """What one output, already parsed, tells about each table of ``found`` (``read``: a test
    that looks into the markup itself too parses it once)."""
    stance = room.labels["belief"]
    texts = strings_of(soup)
    _read_crosstabs(found, room, soup, where)
    _read_shift(found["shift"], stance, texts, where)
    _read_sentences(found, stance, room, texts, where)
    _read_matrix_titles(found["shift"], soup, where)
    _read_held_table(found["shift"], soup)


def _read_held_table(tab: Table, soup: BeautifulSoup) -> None:
    """The results page's matrix merged to holding the view ("agree"): its four counts are four
    sums of cells (before holds or not x after holds or not)."""
    holds = {i for i, key in enumerate(tab.rows) if key in ("agree",)}
    for figure in soup.select("figure.held-table"):
        counts = [
            [int(td.get_text(strip=True)) for td in tr.select("td")]
            for tr in figure.select("tbody tr")
        ]
        assert [row[-1] for row in counts] == [
            sum(tab.row_total(i) for i in range(len(tab.rows)) if (i in holds) == before)
            for before in (True, False)
        ], "a held-table row total is public"
        for r, before in enumerate((True, False)):
            for c, after in enumerate((True, False)):
                cells = {
                    (i, j): 1.0
                    for i in range(len(tab.rows))
                    for j in range(len(tab.cols))
                    if (i in holds) == before and (j in holds) == after
                }
                tab.bound(cells, counts[r][c], counts[r][c])


def _label_index(labels: dict[str, dict[str, str]], keys: tuple[str, ...]) -> dict[str, int]:
    return {text: keys.index(key) for key, by_lang in labels.items() for text in by_lang.values()}


def _read_crosstabs(found: dict[str, Table], room: Room, soup: BeautifulSoup, where: str) -> None:
    titles = {
        i18n.translate(lang, key): name
        for lang in LANGS
        for key, name in (
            ("res_crosstab_title", "stance_perceived"),
            ("res_definition_title", "definition_stance"),
        )
    }
    for figure in soup.select("figure.crosstab"):
        caption = figure.select_one("figcaption")
        assert caption is not None
        tab = found[titles[caption.get_text(strip=True)]]
        row_phase, col_phase = (
            room.truth["crosstabs"][tab.name]["rows"],
            room.truth["crosstabs"][tab.name]["cols"],
        )
        head = [th.get_text(strip=True) for th in figure.select("thead th")][1:-1]
        col_of = _label_index(room.labels[col_phase], tab.cols)
        row_of = _label_index(room.labels[row_phase], tab.rows)
        cols = [col_of[h] for h in head]
        for tr in figure.select("tbody tr"):
            header = tr.select_one("th")
            assert header is not None
            i = row_of[header.get_text(strip=True)]
            cells = [td.get_text(" ", strip=True) for td in tr.select("td")]
            assert cells[-1] == str(tab.row_total(i)), (where, "a row total is public")
            for j, text in zip(cols, cells[:-1], strict=True):
                if text == "–":
                    tab.dashes.add((i, j))
                    continue
                count, _, share = text.partition(" ")
                tab.see((i, j), int(count), where)
                if share:
                    low, high = shown_share(share.strip("()"))
                    total = tab.row_total(i)
                    tab.bound({(i, j): 1.0}, low * total, high * total)


def _read_shift(
    tab: Table, stance: dict[str, dict[str, str]], texts: list[str], where: str
) -> None:
    """Flow titles and the matrix's rows for screen readers: "A → B: 3" or "A → B: –"."""
    blob = "\n".join(texts)
    for lang in LANGS:
        for (i, a), (j, b) in itertools.product(enumerate(tab.rows), repeat=2):
            pair = re.escape(f"{stance[a][lang]} → {stance[b][lang]}: ")
            for match in re.finditer(pair + r"(\d+|–)", blob):
                if match[1] == "–":
                    tab.dashes.add((i, j))
                else:
                    tab.see((i, j), int(match[1]), where)


def _read_matrix_titles(tab: Table, soup: BeautifulSoup, where: str) -> None:
    """The matrix's cells carry their count as a tooltip: one per shown cell, none for hidden."""
    for svg in soup.select("svg.chart--shift-matrix"):
        titled = sorted(int(t.get_text()) for t in svg.select("rect > title"))
        shown = sorted(tab.truth[i][j] for i, j in tab.everything - tab.hidden)
        assert titled == shown, (where, "matrix tooltips", titled, shown)


def _read_sentences(
    found: dict[str, Table],
    stance: dict[str, dict[str, str]],
    room: Room,
    texts: list[str],
    where: str,
) -> None:
    shift = found["shift"]
    k = len(shift.rows)
    n = shift.n
    row_of = _label_index(stance, shift.rows)
    blob = "\n".join(texts)
    diagonal = {(i, i): 1.0 for i in range(k)}
    # how many changed: n minus the diagonal
    for pattern in message_patterns("res_shift_overall", changed=CHANGED, n=r"\d+"):
        for match in pattern.finditer(blob):
            low, high = shown_share(match["pct"])
            shift.bound(diagonal, n - high * n, n - low * n)
    # of those who first answered X, so many changed, so many went to Y
    move = message_patterns("res_shift_move", share=f"(?P<move>{SHARE})", option=r"[^“”]+")
    for key in ("res_shift_sentence", "res_shift_sentence_short"):
        moves = r"(?:[^“”\n]*“[^“”\n]+”)+?"
        for pattern in message_patterns(key, option=r"[^“”\n]+", changed=CHANGED, moves=moves):
            for match in pattern.finditer(blob):
                i = row_of[match["option"]]
                total = shift.row_total(i)
                low, high = shown_share(match["pct"])
                shift.bound({(i, i): 1.0}, total - high * total, total - low * total)
                for moved in move:
                    for m in moved.finditer(match.groupdict().get("moves") or ""):
                        j = row_of[m["option"]]
                        low, high = shown_share(m["move"])
                        shift.bound({(i, j): 1.0}, low * total, high * total)
    # the revote slide: how many changed, and how many moved to the view and away from it
    changed_cells = {(i, j): 1.0 for i in range(k) for j in range(k) if i != j}
    holds = {i for i, key in enumerate(shift.rows) if key in ("agree",)}
    towards = {(i, j): 1.0 for i, j in changed_cells if i not in holds and j in holds}
    for key in ("res_movement", "res_movement_direction", "res_movement_none"):
        for pattern in message_patterns(
            key, changed=r"\d+", n=r"\d+", towards=r"\d+", away=r"\d+", view=r"[^“”]+"
        ):
            for match in pattern.finditer(blob):
                found_n = int(match["n"])
                assert found_n == n, where
                moved = int(match.groupdict().get("changed") or 0)
                shift.bound(changed_cells, moved, moved)
                if match.groupdict().get("towards"):
                    shift.bound(towards, int(match["towards"]), int(match["towards"]))
    # the totals before and after are public: they are what the sentence says
    for pattern in message_patterns("res_shift_totals", n=r"\d+", totals=r".+?"):
        for match in pattern.finditer(blob):
            assert int(match["n"]) == n, where
    # pluralistic ignorance: the non-holders who think most of the field holds the view
    tab = found.get("stance_perceived")
    holds = ("agree",)
    if tab is not None:
        cells = {
            (i, j): 1.0
            for i, r in enumerate(tab.rows)
            for j, c in enumerate(tab.cols)
            if r not in holds and c in holds
        }
        for pattern in message_patterns(
            "res_ignorance_sentence", view=r"[^“”]+", share=SHARE, count=r"\d+", n=r"\d+"
        ):
            for match in pattern.finditer(blob):
                tab.bound(cells, int(match["count"]), int(match["count"]))


# --------------------------------------------------------------------------- the attacker


def lp_range(tab: Table, cell: tuple[int, int]) -> tuple[float, float]:
    """The least and the most ``cell`` can hold given the public totals, every cell shown
    anywhere and every bound from shares and sentences (a linear programme)."""
    from scipy.optimize import linprog

    rows, cols = len(tab.rows), len(tab.cols)
    index = {c: k for k, c in enumerate(itertools.product(range(rows), range(cols)))}
    a_eq, b_eq = [], []
    for i in range(rows):
        a_eq.append([1.0 if c[0] == i else 0.0 for c in index])
        b_eq.append(float(tab.row_total(i)))
    for j in range(cols):
        a_eq.append([1.0 if c[1] == j else 0.0 for c in index])
        b_eq.append(float(tab.col_total(j)))
    a_ub, b_ub = [], []
    for coefficients, low, high in tab.bounds:
        row = [coefficients.get(c, 0.0) for c in index]
        a_ub += [row, [-v for v in row]]
        b_ub += [high, -low]
    bounds = [
        (float(min(tab.shown[c])), float(max(tab.shown[c]))) if c in tab.shown else (0.0, None)
        for c in index
    ]
    goal = [1.0 if c == cell else 0.0 for c in index]
    kw: dict[str, Any] = {"A_eq": a_eq, "b_eq": b_eq, "bounds": bounds}
    if a_ub:
        kw |= {"A_ub": a_ub, "b_ub": b_ub}
    low = linprog(goal, **kw)
    high = linprog([-g for g in goal], **kw)
    assert low.status == 0 and high.status == 0, "what is shown contradicts the truth"
    return float(low.fun), float(-high.fun)


def protected(tab: Table) -> list[tuple[int, int]]:
    """The cells of 1 to 4 people that the totals alone leave uncertain: the ones hiding can
    protect (docs/methods.md, "Small cells", limits). Worked out from the true counts alone, not
    from what the app chose to hide."""
    out = []
    for i, j in sorted(tab.everything):
        if 0 < tab.truth[i][j] < stats.MIN_CELL:
            low, high = stats.cell_range(tab.truth, tab.everything, (i, j))
            if low < high:
                out.append((i, j))
    return out


def integers_in(low: float, high: float) -> int:
    return max(0, math.floor(high + 1e-6) - math.ceil(low - 1e-6) + 1)


@pytest.fixture(scope="module")
def rooms(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Room]:
    """Each room run once for this module's tests, each in an app of its own on its own SQLite
    file (so that the talk's pages pool that room alone)."""
    done: dict[str, Room] = {}

    def get(name: str) -> Room:
        if name not in done:
            with TestClient(room_app(tmp_path_factory.mktemp(name))) as client:
                done[name] = run_room(client, [ballot(p) for p in ROOMS[name]])
        return done[name]

    return get


@pytest.fixture(params=sorted(ROOMS))
def room(request: pytest.FixtureRequest, rooms: Callable[[str], Room]) -> Room:
    return rooms(request.param)


def test_no_output_pins_a_hidden_cell(room: Room) -> None:
    _every_output_was_read(room)
    found = read(room)
    assert protected(found["shift"]), "the room was meant to have small cells in the matrix"
    for tab in found.values():
        # the presenter's JSON flags exactly what the outputs write as "–"
        assert tab.dashes == set(tab.hidden), (tab.name, sorted(tab.dashes), sorted(tab.hidden))
        for cell, values in tab.shown.items():
            # a cell is shown only where it is not hidden, and as it is
            assert cell not in tab.hidden, (tab.name, cell, sorted(tab.where[cell]))
            assert values == {tab.truth[cell[0]][cell[1]]}, (tab.name, cell, values)
        for cell in protected(tab):
            assert cell not in tab.shown, (tab.name, cell, "shown in", sorted(tab.where[cell]))
            low, high = lp_range(tab, cell)
            assert integers_in(low, high) >= 2, (tab.name, tab.truth, cell, low, high)


def _every_output_was_read(room: Room) -> None:
    """The attacker read what it was meant to: every chart where the room sees it."""
    out = room.outputs
    for lang in LANGS:
        live = soup_of(out[f"live results event {lang}"])
        # newest first: the revote, the perceived phase, ...
        assert [f["data-phase"] for f in live.select("figure[data-phase]")] == [
            "revote",
            *reversed(FIRST),
        ]
        phone = soup_of(out[f"phone page {lang}"])
        assert len(phone.select("[data-live-results] figure[data-phase]")) == 4
        ended = soup_of(out[f"ended phone page {lang}"])
        for shown in (live, phone, ended):
            # the gap and how views moved, where the phones show them
            assert shown.select_one(".aud-key--gap svg.chart--gap")
            assert shown.select_one(".aud-key--shift svg.chart--shift")
        assert ended.select_one(".aud-summary .aud-key--gap")
        assert soup_of(out[f"projector gap slide {lang}"]).select_one("svg.chart--gap")
        shift_slide = soup_of(out[f"projector shift slide {lang}"])
        assert shift_slide.select_one("svg.chart--shift")
        # the projector draws the flow large; the matrix, cell by cell, is the results page's
        assert shift_slide.select_one("svg.chart--shift-matrix") is None
        for where in ("results page", "report", "talk results page", "talk report"):
            page = soup_of(out[f"{where} {lang}"])
            assert len(page.select("figure.crosstab")) == 2, where
            for name in ("shift", "shift-matrix", "phase-revote"):
                assert page.select_one(f"svg.chart--{name}"), (where, name)
        assert soup_of(out[f"results page {lang}"]).select_one("svg.chart--gap")
        assert soup_of(out[f"talk results page {lang}"]).select_one("svg.chart--forest")
    files = " ".join(out)
    for name in ("shift", "shift-matrix", "gap", "gap-wide", "phase-revote", "forest"):
        assert f"/charts/{name}.svg" in files and f"/charts/{name}.png" in files, name


def test_a_non_presenter_gets_neither_raw_counts_nor_results_pages(
    app: FastAPI, client: TestClient
) -> None:
    room = run_room(client, [ballot(p) for p in ROOMS["one_changed"]])
    anyone = TestClient(app)
    code = room.code
    for url in (
        f"/api/v1/sessions/{code}/results",
        f"/api/v1/sessions/{code}/export.csv",
        f"/api/v1/sessions/{code}/export.json",
        f"/api/v1/sessions/{code}/codebook.json",
        f"/api/v1/sessions/{code}/charts/shift-matrix.svg",
        f"/api/v1/sessions/{code}/charts/shift.png",
        "/api/v1/talks/emergence/results",
        "/api/v1/talks/emergence/export.csv",
        "/api/v1/talks/emergence/export.json",
        "/api/v1/talks/emergence/charts/forest.svg",
    ):
        assert anyone.get(url).status_code == 401, url
    for url in (
        f"/presenter/sessions/{code}/results",
        f"/presenter/sessions/{code}/report.html",
        f"/presenter/sessions/{code}/projector",
        f"/presenter/sessions/{code}/projector/stage",
        "/presenter/talks/emergence/results",
        "/presenter/talks/emergence/report.html",
    ):
        response = anyone.get(url, follow_redirects=False)
        assert response.status_code in (302, 303, 307), url
        assert "/presenter/login" in response.headers["location"], url
    # the presenter's JSON keeps the raw counts and flags the cells no output shows
    shift = room.truth["shift"]
    assert shift["matrix"]["agree"] == {"agree": 7, "disagree": 1, "unsure": 0}
    assert ["agree", "disagree"] in shift["hidden"]
    for tab in room.truth["crosstabs"].values():
        assert "hidden" in tab and tab["counts"]


# --------------------------------------------------------------------------- the exact attacker


def same_ids(markup: str) -> str:
    """The markup with the ids that keep two charts on one page apart made alike: they differ
    from drawing to drawing."""
    return re.sub(r"-c\d+\b", "-c", markup)


def redraw_session(env: Any, session: results.SessionResults) -> list[str]:
    """Everything public the app draws of one session, without the database: every chart file,
    the results page's body (tables, sentences, charts), the phone's revealed results (during
    the talk and once it has ended) and the projector's gap and revote slides."""
    out = []
    for lang in LANGS:
        for chart in charts.session_charts(session, lang).values():
            out.append(export.render_svg(env, chart))
        out.append(
            env.get_template("partials/charts/_session_body.html").render(
                results=session, lang=lang
            )
        )
        for ended in (False, True):
            room = audience.room_results(session.phases, session.gap, session.shift, ended=ended)
            out.append(env.get_template("partials/_revealed.html").render(room=room, lang=lang))
        # the projector's gap and revote slides, drawn for the room
        out.append(
            env.get_template("partials/charts/_gap.html").render(
                gap=session.gap, lang=lang, slide=True
            )
        )
        out.append(
            env.get_template("partials/charts/_shift.html").render(
                shift=session.shift, lang=lang, slide=True
            )
        )
    return out


def redraw_talk(env: Any, sessions: list[export.Imported]) -> list[str]:
    """The talk as the app draws it from its sessions' answers: its page (every session's row,
    the pooled results, the forest plot) and every chart file, in every language."""
    meta = sessions[0][0]
    talk = results.build_talk_results(meta.talk, meta.titles, list(LANGS), sessions)
    out = []
    for lang in LANGS:
        for chart in [
            *charts.session_charts(talk.pooled, lang).values(),
            charts.forest_chart(talk, lang),
        ]:
            out.append(chart.sentence)
            out.append(export.render_svg(env, chart))
        out.append(env.get_template("partials/charts/_talk_body.html").render(talk=talk, lang=lang))
    return out


def redraw(env: Any, imported: export.Imported) -> str:
    """Everything public the app draws from a session's answers: the session's outputs and
    those of its talk, which pools this session alone."""
    meta, infos, data = imported
    session = results.build_session_results(infos, data, meta)
    return same_ids("\n".join(redraw_session(env, session) + redraw_talk(env, [imported])))


VARIED = {
    "shift": ("revote", "belief"),
    "stance_perceived": ("field", "belief"),
    "definition_stance": ("definition", "belief"),
}
"""Table -> (the phase whose answers an alternative table changes, the phase kept)."""


def alternatives(tab: Table) -> Iterator[tuple[tuple[int, ...], ...]]:
    """Every table with the public totals and every shown cell as shown: the hidden cells take
    any counts that fit."""
    rows, cols = len(tab.rows), len(tab.cols)
    free = sorted(tab.hidden)
    fixed = {c: tab.truth[c[0]][c[1]] for c in tab.everything - tab.hidden}

    def fill(k: int, cells: dict[tuple[int, int], int]) -> Iterator[dict[tuple[int, int], int]]:
        if k == len(free):
            if all(
                sum(cells[i, j] for j in range(cols)) == tab.row_total(i) for i in range(rows)
            ) and all(
                sum(cells[i, j] for i in range(rows)) == tab.col_total(j) for j in range(cols)
            ):
                yield dict(cells)
            return
        i, j = free[k]
        room_row = tab.row_total(i) - sum(cells.get((i, jj), 0) for jj in range(cols))
        room_col = tab.col_total(j) - sum(cells.get((ii, j), 0) for ii in range(rows))
        for value in range(min(room_row, room_col) + 1):
            cells[i, j] = value
            yield from fill(k + 1, cells)
            del cells[i, j]

    for cells in fill(0, dict(fixed)):
        yield tuple(tuple(cells[i, j] for j in range(cols)) for i in range(rows))


def with_table(
    imported: export.Imported, tab: Table, rows_phase: str, cols_phase: str, table: Any
) -> export.Imported:
    """The session with one phase's answers dealt out again so that the table reads ``table``
    (everyone keeps their answer to the other phase; nobody's answer to a third changes)."""
    meta, infos, data = imported
    varied, kept = VARIED[tab.name]
    answers = {k: dict(v) for k, v in data.answers.items()}
    first, second = answers[rows_phase], answers[cols_phase]
    both = sorted(
        p for p in first if p in second and first[p] in tab.rows and second[p] in tab.cols
    )
    for kept_value in sorted({answers[kept][p] for p in both}):
        group = [p for p in both if answers[kept][p] == kept_value]
        if varied == cols_phase:
            i = tab.rows.index(str(kept_value))
            deal = [c for j, c in enumerate(tab.cols) for _ in range(table[i][j])]
        else:
            j = tab.cols.index(str(kept_value))
            deal = [r for i, r in enumerate(tab.rows) for _ in range(table[i][j])]
        assert len(deal) == len(group)
        for person, answer in zip(group, deal, strict=True):
            answers[varied][person] = answer
    return meta, infos, stats.Dataset(data.phases, answers)


def told_apart(
    tab: Table, cells: list[tuple[int, int]], reads_the_same: Callable[[Any], bool]
) -> dict[tuple[int, int], set[int]]:
    """Each protected cell -> its values over the tables ``alternatives`` gives that read the
    same as the room, as far as needed: the walk stops once every cell has shown two values."""
    values: dict[tuple[int, int], set[int]] = {
        cell: {tab.truth[cell[0]][cell[1]]} for cell in cells
    }
    for table in alternatives(tab):
        if all(len(v) > 1 for v in values.values()):
            break
        if any(table[i][j] not in values[i, j] for i, j in cells) and reads_the_same(table):
            for i, j in cells:
                values[i, j].add(table[i][j])
    return values


def drawing(
    env: Any, imported: export.Imported, room: Room, tab: Table, seen: str
) -> Callable[[Any], bool]:
    """Whether the session, with its answers dealt so that ``tab`` reads as a given table, draws
    exactly as ``seen``."""
    rows_phase, cols_phase = _phases(room, tab)

    def draws_as_seen(table: Any) -> bool:
        return redraw(env, with_table(imported, tab, rows_phase, cols_phase, table)) == seen

    return draws_as_seen


def test_no_hidden_cell_follows_from_everything_shown(
    room: Room, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every table the attacker cannot rule out from the shown cells and the totals, drawn with
    the same cells hidden: those whose every output reads exactly as the room's must not agree on
    a hidden small cell. (An attacker who also redoes the suppression:
    ``test_redoing_the_suppression_tells_no_hidden_cell``.)"""
    env = make_templates().env
    forced: dict[tuple[tuple[int, ...], ...], frozenset[tuple[int, int]]] = {}
    real = stats.suppressed

    def suppressed(table: Any, minimum: int = stats.MIN_CELL) -> frozenset[tuple[int, int]]:
        key = tuple(map(tuple, table))
        return forced[key] if key in forced else real(key, minimum)

    monkeypatch.setattr(stats, "suppressed", suppressed)
    imported = export.read_session_document(room.document)
    seen = redraw(env, imported)
    served = {k: v for k, v in room.outputs.items() if k.startswith("chart file /api/v1/sessions")}
    assert served and all(same_ids(v) in seen for v in served.values()), (
        "the attacker draws the session as the app does"
    )
    for tab in read(room).values():
        cells = protected(tab)
        if not cells:
            continue
        draws_as_seen = drawing(env, imported, room, tab, seen)

        def reads_the_same(table: Any, tab: Table = tab, draws: Any = draws_as_seen) -> bool:
            forced[table] = tab.hidden
            return bool(draws(table))

        assert reads_the_same(tab.truth), "the room redrawn from its own table reads the same"
        for cell, values in told_apart(tab, cells, reads_the_same).items():
            assert len(values) >= 2, (tab.name, tab.truth, cell, values)


def _phases(room: Room, tab: Table) -> tuple[str, str]:
    if tab.name == "shift":
        return room.truth["shift"]["from"], room.truth["shift"]["to"]
    found = room.truth["crosstabs"][tab.name]
    return found["rows"], found["cols"]


def _first_difference(seen: str, drawn: str) -> tuple[str, str]:
    for a, b in zip(seen.splitlines(), drawn.splitlines(), strict=False):
        if a != b:
            return a[:300], b[:300]
    return "", ""


@pytest.mark.parametrize("name", sorted(ROOMS))
def test_redoing_the_suppression_tells_no_hidden_cell(
    name: str, rooms: Callable[[str], Room]
) -> None:
    """The attacker of ``test_no_hidden_cell_follows_from_everything_shown``, who also redoes the
    suppression on each table that fits and drops those it would hide differently: the pattern of
    "–" must not be a clue (it pinned a cell in the room of 6 and in the row with one small cell
    while the choice of complementary cells depended on their counts)."""
    room = rooms(name)
    env = make_templates().env
    imported = export.read_session_document(room.document)
    seen = redraw(env, imported)
    for tab in read(room).values():
        cells = protected(tab)
        if not cells:
            continue
        draws_as_seen = drawing(env, imported, room, tab, seen)

        def reads_the_same(table: Any, tab: Table = tab, draws: Any = draws_as_seen) -> bool:
            return stats.suppressed(table) == tab.hidden and bool(draws(table))

        for cell, values in told_apart(tab, cells, reads_the_same).items():
            assert len(values) >= 2, (tab.name, tab.truth, cell, values)


def test_the_talk_hides_in_its_pooled_tables_every_cell_a_session_hides(
    app: FastAPI, client: TestClient
) -> None:
    """Two sessions of one talk: a cell hidden in one and shown in the other would follow from
    the pooled table (pooled minus the shown one), so the pooled table hides it too. (Every
    output writes "–" exactly where the JSON lists a hidden cell:
    ``test_no_output_pins_a_hidden_cell``.)"""
    answers = ("agree", "disagree", "unsure")
    # 45 people, five for each pair of answers before and after the talk: no small cell anywhere
    no_small = crowd(*((5, "d1", before, before, after) for before in answers for after in answers))
    run_room(client, [ballot(p) for p in ROOMS["one_changed"]])
    run_room(client, [ballot(p) for p in no_small])
    talk = client.get("/api/v1/talks/emergence/results", headers=AUTH).json()
    sessions, pooled = talk["sessions"], talk["pooled"]
    assert len(sessions) == 2

    def hidden(found: dict[str, Any]) -> dict[str, set[tuple[str, str]]]:
        out = {"shift": {tuple(c) for c in found["shift"]["hidden"]}}
        for name, tab in found["crosstabs"].items():
            out[name] = {tuple(c) for c in tab["hidden"]}
        return out

    first, second = hidden(sessions[0]), hidden(sessions[1])
    # the pooled counts hold no small cell: without the rule the pooled table would hide nothing
    assert first["shift"] and not second["shift"]
    assert all(
        v >= stats.MIN_CELL for row in pooled["shift"]["matrix"].values() for v in row.values()
    )
    for name, cells in hidden(pooled).items():
        assert first[name] | second[name] <= cells, (name, first[name], second[name], cells)


# --------------------------------------------------------------------------- over time

LIVE_ROOMS: dict[int, list[Person]] = {
    10: crowd(
        (4, "d1", "agree", "agree", "agree"),
        (1, "d1", "agree", "disagree", "disagree"),
        (3, "d3", "disagree", "agree", "disagree"),
        (2, "d3", "unsure", "unsure", "agree"),
    ),
    # the room: 30 phones, 8 changed their answer, 5 towards the view and 3 away
    30: crowd(
        (9, "d1", "agree", "agree", "agree"),
        (3, "d1", "agree", "disagree", "unsure"),
        (10, "d3", "disagree", "agree", "disagree"),
        (2, "d3", "disagree", "disagree", "agree"),
        (1, "d3", "disagree", "unsure", "unsure"),
        (2, "d3", "unsure", "agree", "agree"),
        (3, "d3", "unsure", "unsure", "unsure"),
    ),
    100: crowd(
        (30, "d1", "agree", "agree", "agree"),
        (4, "d1", "agree", "disagree", "unsure"),
        (2, "d1", "agree", "agree", "disagree"),
        (35, "d3", "disagree", "agree", "disagree"),
        (3, "d3", "disagree", "disagree", "agree"),
        (1, "d3", "disagree", "unsure", "unsure"),
        (20, "d3", "unsure", "unsure", "unsure"),
        (3, "d3", "unsure", "agree", "agree"),
        (2, "d3", "unsure", "disagree", "disagree"),
    ),
}
ATTACKERS = 12
"""Phones that move their revote through every option while it is open, reading each time."""
WAITING = {
    "field": (
        ("gap_waits", "stance_perceived"),
        (".chart-block--gap", "svg.chart--gap", ".aud-key--gap", "figure.crosstab"),
    ),
    "revote": (
        ("shift_waits", "shift"),
        (".chart-block--shift", "svg.chart--shift", "svg.chart--shift-matrix", ".aud-key--shift"),
    ),
}
"""Per phase revealed while open: the line the projector and the preview show instead, the
cross-tabulation it links, and its figures (the gap's paired shares, the flows, the matrix,
cross-tabs) wherever they are drawn."""


@dataclass
class Snapshot:
    phase: str
    open: bool
    outputs: dict[str, str]


def _look(client: TestClient, code: str, phase: str, phone: Phone, is_open: bool) -> Snapshot:
    """Everything the room, a phone and the presenter's preview show at this moment: the
    projector's stage, the preview of the phase, the phone's page, and the first ``results``
    and ``counts`` events a stream opened now sends."""
    outputs = {
        "projector": _get(client, f"/presenter/sessions/{code}/projector/stage"),
        "preview": _get(client, f"/presenter/sessions/{code}/preview?phase={phase}"),
        "phone": phone.get(f"/j/{code}"),
    }
    for who, event in (("phone", "results"), ("presenter", "counts")):
        stream = Stream(client, code, presenter=who == "presenter")
        try:
            outputs[f"{event} event"] = stream.until(event, "")
        finally:
            stream.close()
    return Snapshot(phase, is_open, outputs)


def run_live_room(client: TestClient, ballots: list[Ballot]) -> tuple[Room, list[Snapshot]]:
    """The room with the perceived phase and the revote each revealed while open, as a speaker
    who shows the bars filling up does: the room is looked at after every vote, and
    ``ATTACKERS`` phones move their revote through every option (back to their own at the end),
    looking after each move. Then each phase closes and is looked at once more."""
    code = new_session(client)
    log_in(client)
    phones = [Phone(client) for _ in ballots]
    for phase in ("definition", "belief"):
        phase_action(client, code, phase, "open")
        for phone, given in zip(phones, ballots, strict=True):
            if phase in given:
                phone.vote(code, phase, given[phase])
        phase_action(client, code, phase, "close")
        phase_action(client, code, phase, "reveal")
    seen: list[Snapshot] = []
    options = ("agree", "disagree", "unsure")
    for phase in ("field", "revote"):
        phase_action(client, code, phase, "open")
        phase_action(client, code, phase, "reveal")
        for phone, given in zip(phones, ballots, strict=True):
            if phase in given:
                phone.vote(code, phase, given[phase])
                seen.append(_look(client, code, phase, phone, True))
        if phase == "revote":
            for phone, given in list(zip(phones, ballots, strict=True))[:ATTACKERS]:
                own = given[phase]["choice"]
                for choice in [o for o in options if o != own] + [own]:
                    phone.vote(code, phase, {"choice": choice})
                    seen.append(_look(client, code, phase, phone, True))
        phase_action(client, code, phase, "close")
        seen.append(_look(client, code, phase, phones[0], False))
    truth = client.get(f"/api/v1/sessions/{code}/results", headers=AUTH).json()
    book = client.get(f"/api/v1/sessions/{code}/codebook.json", headers=AUTH).json()
    labels = {p["id"]: {o["id"]: o["label"] for o in p.get("options", [])} for p in book["phases"]}
    return Room(code, {}, truth, {}, labels), seen


# The room of 100 reads every output after each of its votes: about a minute on a quiet machine,
# two on a busy one; the suite's 120 s limit is for hangs, not for this much work.
@pytest.mark.timeout(360)
@pytest.mark.parametrize("size", sorted(LIVE_ROOMS))
def test_a_reader_over_time_and_probing_phones_pin_no_hidden_cell(
    size: int, tmp_path: Path
) -> None:
    """Every slide and stream event after every vote, for the projector, the control page's
    preview and the phones, while the perceived phase and the revote are revealed and open, and
    phones that move their revotes to see what moves: no figure of the linked people is drawn
    until its phases close (so no two drawings differ by one person), the projector and the
    preview say when it comes, and the one drawing after the close pins no hidden cell."""
    with TestClient(room_app(tmp_path)) as client:
        room, seen = run_live_room(client, [ballot(p) for p in LIVE_ROOMS[size]])
    assert len([s for s in seen if s.open]) >= size
    gaps: set[str] = set()
    for phase, ((waits, linked), selectors) in WAITING.items():
        # each output is parsed once, and read by the attacker as it is looked into
        found = tables(room)
        for n, snap in enumerate(seen):
            if not (snap.open and snap.phase == phase):
                continue
            for k, markup in snap.outputs.items():
                where = f"{k} after look {n}"
                soup = soup_of(markup)
                # none of the figures, looked for in one walk (the one found named if any)
                if soup.select_one(", ".join(selectors)) is not None:
                    drawn = [s for s in selectors if soup.select_one(s) is not None]
                    pytest.fail(f"room of {size}, {where}: {drawn} drawn while open")
                if where.startswith(("projector ", "preview ")):
                    line = soup.select_one(f"[data-waits={waits}]")
                    assert line is not None, (size, where)
                    assert line.get_text(strip=True) == i18n.translate("en", f"pres_{waits}")
                if phase == "revote" and k == "phone":
                    gaps |= {same_ids(str(f)) for f in soup.select(".aud-key--gap svg")}
                # the attacker reads all of it: nothing of that cross-tabulation while it is open
                read_output(found, room, where, soup)
        tab = found[linked]
        assert not tab.shown and not tab.bounds and not tab.dashes, (size, tab.name)
    # the gap, drawn once its phases closed, is the same drawing all through the revote
    for snap in seen:
        if snap.phase == "revote" and not snap.open:
            phone = soup_of(snap.outputs["phone"])
            gaps |= {same_ids(str(f)) for f in phone.select(".aud-key--gap svg")}
    assert len(gaps) == 1, size
    # the one drawing, once the revote has closed: the revote slide, and no small cell pinned
    after = Room(room.code, seen[-1].outputs, room.truth, {}, room.labels)
    assert soup_of(after.outputs["projector"]).select_one("svg.chart--shift")
    found = read(after)
    assert protected(found["shift"]), "the room was meant to have small cells in the matrix"
    for tab in found.values():
        for cell in protected(tab):
            assert cell not in tab.shown, (size, tab.name, cell)
            low, high = lp_range(tab, cell)
            assert integers_in(low, high) >= 2, (size, tab.name, tab.truth, cell, low, high)


def answer_pairs(table: tuple[tuple[int, ...], ...]) -> list[tuple[str, str]]:
    """A stance x revote table of counts (rows and columns agree, disagree, unsure) as one
    (before, after) pair per person."""
    keys = ("agree", "disagree", "unsure")
    return [
        (keys[i], keys[j])
        for i, row in enumerate(table)
        for j, count in enumerate(row)
        for _ in range(count)
    ]


MOVED_30 = {
    # stance 14, 10, 6 (agree, disagree, unsure); 8 changed. The matrix hid 7 of 9 cells (the
    # 12 among them) and the slide said nothing; now it shows the diagonal
    "diagonal shown": ((12, 0, 2), (3, 5, 2), (0, 1, 5)),
    # the matrix is hidden whole: the slide said nothing; now it tells, and the results page
    # shows the merged table
    "hidden whole": ((8, 4, 2), (1, 9, 0), (1, 0, 5)),
}


@pytest.mark.parametrize("name", sorted(MOVED_30))
def test_a_room_of_30_where_8_changed_hears_how_and_where(client: TestClient, name: str) -> None:
    """The issue's room on the real projector: 30 phones answer the stance and the revote, 8
    change; the revote slide says how many changed and in which direction, in both languages,
    and the results page shows the matrix merged to holding the view, with the same counts."""
    table = MOVED_30[name]
    pairs = answer_pairs(table)
    code = new_session(client)
    phones = [Phone(client) for _ in pairs]
    for phase, side in (("belief", 0), ("revote", 1)):
        phase_action(client, code, phase, "open")
        for phone, pair in zip(phones, pairs, strict=True):
            phone.vote(code, phase, {"choice": pair[side]})
        phase_action(client, code, phase, "close")
        phase_action(client, code, phase, "reveal")
    log_in(client)
    towards = sum(table[i][0] for i in (1, 2))
    away = sum(table[0][j] for j in (1, 2))
    agree = {"en": "Yes, they do", "zh-Hans": "是的，具有"}
    for lang, said in (
        (
            "en",
            f"8 of 30 of you changed your answer: {towards} towards “{agree['en']}”, "
            f"{away} away from it.",
        ),
        (
            "zh-Hans",
            f"30 人中有 8 人改变了回答：{towards} 人转向“{agree['zh-Hans']}”，{away} 人离开了它。",
        ),
    ):
        slide = soup_of(_get(client, f"/presenter/sessions/{code}/projector/stage?lang={lang}"))
        sentence = slide.select_one(".chart-sentence--moved")
        assert sentence is not None and sentence.get_text(strip=True) == said, lang
        # the flow takes the slide; the matrix, cell by cell, is not drawn there
        assert slide.select_one("svg.chart--shift") and not slide.select_one(
            "svg.chart--shift-matrix"
        )
        page = soup_of(_get(client, f"/presenter/sessions/{code}/results?lang={lang}"))
        held = page.select_one("figure.held-table")
        assert held is not None, lang
        counts = [
            [td.get_text(strip=True) for td in tr.select("td")] for tr in held.select("tbody tr")
        ]
        assert counts == [
            [str(table[0][0]), str(away), "14"],
            [str(towards), str(16 - towards), "16"],
        ]
        assert agree[lang] in held.get_text()


def test_the_revote_slide_says_how_the_room_moved(rooms: Callable[[str], Room]) -> None:
    """The slide that closes the talk, in a room of 30 where 8 changed their answer: how many,
    and how many to the view and away from it (the attackers above read it too)."""
    room = rooms("moved_30")
    agree = room.labels["belief"]["agree"]
    for lang, said in (
        ("en", f"8 of 30 of you changed your answer: 5 towards “{agree['en']}”, 3 away from it."),
        ("zh-Hans", f"30 人中有 8 人改变了回答：5 人转向“{agree['zh-Hans']}”，3 人离开了它。"),
    ):
        slide = soup_of(room.outputs[f"projector shift slide {lang}"])
        sentence = slide.select_one(".chart-sentence--moved")
        assert sentence is not None and sentence.get_text(strip=True) == said
