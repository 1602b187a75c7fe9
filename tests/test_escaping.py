"""Hostile text everywhere a presenter or a phone can type it, and every output a browser or an
analyst sees checked for it: a corpus of payloads, each with a marker of its own, goes into talk
titles, questions and option labels (JSON, TOML and the editor's form), venues (API, form,
rename) and the codes and queries pages echo; sessions run with votes and revealed results; then
every page, htmx fragment, event-stream frame, SVG chart, export and JSON answer is read back.

HTML and SVG must show each payload as text (no element, attribute or URL of its making, template
syntax shown literally); JSON must give back exactly what was stored; CSV cells never start with
a formula character unless neutralized as the export does.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote

import pytest
from bs4 import BeautifulSoup, Tag
from bs4.builder import HTMLTreeBuilder
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.export import FORMULA_PREFIXES
from tests.conftest import AUTH, log_in, phase_action
from tests.sse import split
from tests.test_stream import Stream

# --------------------------------------------------------------------------- the corpus

LONG_TEXT = 1900  # within the talk checks' limit (2000 characters a text)
VENUE_MAX = 200

_TEMPLATES = [
    "<script>alert('§')</script>",
    '"><img src=x onerror=alert("§")>',
    "'><img src=x onerror=alert('§')>",
    "</textarea><script>alert('§')</script>",
    "javascript:alert('§')",
    "<a href=\"javascript:alert('§')\">click</a>",
    "<svg onload=alert('§')>",
    "<svg><script>alert('§')</script></svg>",
    "</title><script>alert('§')</script>",
    "{{ 7*7 }} §",
    "{% raw %}{{ 7*7 }}§{% endraw %}",
    "{% for x in range(3) %}§{% endfor %}",
    "{{ config.items() }} {{ self.__init__ }} §",
    "</style><script>alert('§')</script>",
    "<style>body{background:url(javascript:alert('§'))}</style>",
    "&lt;script&gt;alert('§')&lt;/script&gt;",
    "&amp;lt;b&amp;gt;§&amp;lt;/b&amp;gt;",
    "&#60;img src=x onerror=alert('§')&#62;",
    "\u202egnp.§.exe",
    "zero\u200bwidth\u200d§\ufeffjoin\u2060er",
    "bell\x07escape\x1b[31m§\x1funit",
    '=HYPERLINK("http://evil.example/?§","click")',
    "+1+cmd|' /C calc'!A0 §",
    "-2+3+cmd|' /C calc'!A0 §",
    "@SUM(1+1)*cmd|' /C calc'!A0 §",
    "\t=1+1 §",
    "\r=1+1 §",
    '"\u2028\u2029§ line separators',
    "</script><script>alert('§')</script>",
    '"}]}</script><script>alert("§")</script>',
    "<iframe src=\"javascript:alert('§')\"></iframe>",
    "<body onload=alert('§')>",
    "<input autofocus onfocus=alert('§')>",
    "<details open ontoggle=alert('§')>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert('§')>",
    "<!--§--><script>alert(1)</script>",
    "]]><script>alert('§')</script>",
    "<![CDATA[§]]>",
    "' onmouseover='alert(\"§\")",
    "\" onmouseover=\"alert('§')",
    "` onmouseover=alert('§')",
    '<div hx-get="/presenter" hx-trigger="load">§</div>',
    '<a hx-post="/presenter/logout" hx-trigger="load" hx-swap="outerHTML">§</a>',
    "${7*7} §",
    "#{7*7} §",
    "<%= 7*7 %> §",
    "\\u003cscript\\u003ealert('§')\\u003c/script\\u003e",
    "%3Cscript%3Ealert('§')%3C/script%3E",
    "data:text/html,<script>alert('§')</script>",
    "vbscript:msgbox('§')",
    "<object data=\"javascript:alert('§')\"></object>",
    "<base href=\"javascript:alert('§')//\">",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(\'§\')">',
    '<link rel="stylesheet" href="data:text/css,§">',
    "<form action=\"javascript:alert('§')\"><button>go</button></form>",
    "<svg><a xlink:href=\"javascript:alert('§')\"><text>x</text></a></svg>",
    "<template><script>alert('§')</script></template>",
    "<scr<script>ipt>alert('§')</scr</script>ipt>",
    "line one\r\nevent: state\r\ndata: §\n\nid: 9\rretry: 1",
    "中文<script>alert('§')</script>标签",
    "%s%s%n{0}{§} format strings",
]


def _marker(i: int) -> str:
    return f"zq{i:02d}q"


def _corpus() -> list[str]:
    payloads = [t.replace("§", _marker(i)) for i, t in enumerate(_TEMPLATES)]
    long_marker = _marker(len(payloads))
    body = f"<b onclick=alert('{long_marker}')>" + "<i>&amp;" * 400
    payloads.append((long_marker + body)[:LONG_TEXT])
    return payloads


PAYLOADS = _corpus()
MARKERS = [_marker(i) for i in range(len(PAYLOADS))]
MARKER = re.compile(r"zq\d\dq")
TEMPLATE_SYNTAX = [i for i, p in enumerate(PAYLOADS) if re.search(r"\{\{|\{%|\$\{|#\{|<%", p)]


def stored(text: str) -> str:
    """What the app keeps of a text (both the talk checks and the API strip the ends)."""
    return text.strip()


def venue_of(payload: str) -> str:
    return stored(payload[:VENUE_MAX])


# --------------------------------------------------------------------------- the checks


class Coverage:
    """What the test put in and read back, for its summary."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.outputs: list[str] = []
        self.seen: set[str] = set()
        self.points: set[str] = set()
        self.stored = 0
        self.refused = 0

    def saw(self, where: str, text: str) -> None:
        self.outputs.append(where)
        self.seen.update(MARKER.findall(text))


COVERAGE = Coverage()
DANGEROUS_TAGS = {
    "script",
    "style",
    "img",
    "iframe",
    "object",
    "embed",
    "base",
    "link",
    "details",
    "math",
    "template",
    "body",
    "form",
    "mglyph",
    "scr",
}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "data", "xlink:href", "srcdoc", "poster"}
BAD_SCHEMES = ("javascript:", "vbscript:", "data:")


def _raw_danger(text: str, where: str) -> None:
    """No payload with markup characters appears as it was typed."""
    for payload in PAYLOADS:
        shown = stored(payload)
        if re.search(r"[<>&\"']", shown):
            assert shown not in text, f"{where}: unescaped payload {shown[:60]!r}"
            assert venue_of(payload) not in text, f"{where}: unescaped venue {shown[:60]!r}"
    for i in TEMPLATE_SYNTAX:
        marker = MARKERS[i]
        assert not re.search(rf"\b49\b[^<]{{0,3}}{marker}", text), f"{where}: template evaluated"
        if marker in text and "{{ 7*7 }}" in PAYLOADS[i]:
            assert "{{ 7*7 }}" in text, f"{where}: template syntax not shown literally ({marker})"


class _Element:
    """A tag as the reader met it: its name, attributes and own text (the text, comments and
    declarations directly inside it, not inside its children), as BeautifulSoup's tree holds
    them."""

    __slots__ = ("attrs", "name", "text")

    def __init__(self, name: str, attrs: list[tuple[str, str | None]]) -> None:
        self.name = name
        self.attrs = {key: value or "" for key, value in attrs}  # the last of a repeated one
        self.text: list[str] = []


VOID_TAGS = HTMLTreeBuilder.DEFAULT_EMPTY_ELEMENT_TAGS
"""Tags that never hold anything (``<img>``, ``<meta>``...): closed where they open."""


class _Reader(HTMLParser):
    """Python's HTML parser (the one BeautifulSoup's ``html.parser`` builds its tree from),
    nesting tags as BeautifulSoup does (text to the innermost open tag, a void tag closed at
    once, an end tag closing up to the open tag of its name and ignored without one), each
    element checked once it is closed, without building the tree: the page's many thousands of
    elements are read in a fraction of the time."""

    def __init__(self, where: str) -> None:
        super().__init__(convert_charrefs=True)
        self.where = where
        self.open: list[_Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.open.append(_Element(tag, attrs))
        if tag in VOID_TAGS:
            _element(self.open.pop(), self.where)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        _element(_Element(tag, attrs), self.where)

    def handle_endtag(self, tag: str) -> None:
        names = [element.name for element in self.open]
        if tag in names:
            for _ in range(len(names) - names[::-1].index(tag) - 1, len(names)):
                _element(self.open.pop(), self.where)

    def handle_data(self, data: str) -> None:
        if self.open:
            self.open[-1].text.append(data)

    handle_comment = handle_decl = handle_pi = unknown_decl = handle_data

    def close(self) -> None:
        super().close()
        while self.open:
            _element(self.open.pop(), self.where)


def _element(tag: _Element, where: str) -> None:
    name = tag.name.lower()
    own_text = "".join(tag.text)
    attributes = " ".join(f"{k}={v}" for k, v in tag.attrs.items())
    if name in DANGEROUS_TAGS:
        assert not MARKER.search(own_text + attributes), f"{where}: <{name}> from a payload"
    if name == "meta" and "http-equiv" in tag.attrs:
        assert not MARKER.search(attributes), f"{where}: <meta http-equiv> from a payload"
    for key, text in tag.attrs.items():
        key = key.lower()
        assert not MARKER.search(key), f"{where}: attribute name from a payload: {key}"
        if key.startswith(("on", "hx-", "data-hx", "x-")):
            assert not MARKER.search(text), f"{where}: {key}= from a payload on <{name}>"
        if key in URL_ATTRIBUTES:
            assert not text.strip().lower().startswith(BAD_SCHEMES) or not MARKER.search(text), (
                f"{where}: {key}={text[:60]!r} on <{name}>"
            )
            assert not text.strip().lower().startswith(("javascript:", "vbscript:")), (
                f"{where}: {key}={text[:60]!r} on <{name}>"
            )


def check_html(where: str, text: str) -> None:
    """Read as a browser reads it (an inline SVG too): every element checked."""
    COVERAGE.saw(where, text)
    _raw_danger(text, where)
    reader = _Reader(where)
    reader.feed(text)
    reader.close()


def check_svg(where: str, text: str) -> None:
    check_html(where, text)
    ET.fromstring(text.encode())  # well-formed: a browser shows it, an editor opens it


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


EXACT = {stored(p) for p in PAYLOADS} | {venue_of(p) for p in PAYLOADS}


def check_json(where: str, value: Any) -> None:
    """Every string that carries a marker is one of the stored texts, exactly."""
    text = json.dumps(value, ensure_ascii=False)
    COVERAGE.saw(where, text)
    for string in _strings(value):
        if MARKER.search(string):
            assert string in EXACT, f"{where}: {string[:80]!r} is not a stored text"


def check_json_body(where: str, body: str) -> None:
    check_json(where, json.loads(body))


def check_csv(where: str, text: str) -> None:
    COVERAGE.saw(where, text)
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(rows) > 1, where
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_PREFIXES), f"{where}: formula cell {cell[:40]!r}"
            if MARKER.search(cell):
                restored = cell[1:] if cell.startswith("'") else cell
                assert restored in EXACT or cell in EXACT, f"{where}: {cell[:60]!r}"


def get(client: TestClient, url: str, **kwargs: Any) -> str:
    response = client.get(url, **kwargs)
    assert response.status_code == 200, f"{url}: {response.status_code} {response.text[:300]}"
    return response.text


# --------------------------------------------------------------------------- injecting


def _texts(i: int) -> dict[str, str]:
    """One text slot in both languages: two different payloads."""
    n = len(PAYLOADS)
    return {"en": PAYLOADS[i % n], "zh-Hans": PAYLOADS[(i + 7) % n]}


def hostile_talk(slug: str) -> dict[str, Any]:
    """A talk of every kind whose every text is a payload; every payload in several slots."""
    slot = iter(range(10_000))
    stance_ids = ["agree", "disagree", "unsure"]

    def options(ids: list[str]) -> list[dict[str, Any]]:
        return [{"id": o, "label": _texts(next(slot))} for o in ids]

    choice_ids = [f"o{k}" for k in range(1, 21)]
    phases: list[dict[str, Any]] = [
        {
            "id": "belief",
            "kind": "stance",
            "holds": ["agree"],
            "question": _texts(next(slot)),
            "options": options(stance_ids),
        },
        {
            "id": "field",
            "kind": "perceived",
            "of": "belief",
            "question": _texts(next(slot)),
            "options": options(stance_ids),
        },
        {
            "id": "field_pct",
            "kind": "perceived",
            "of": "belief",
            "range": [0, 100],
            "question": _texts(next(slot)),
        },
        {"id": "revote", "kind": "revote", "of": "belief"},
    ]
    for c in ("c1", "c2", "c3"):
        phases.append(
            {
                "id": c,
                "kind": "choice",
                "question": _texts(next(slot)),
                "options": options(choice_ids),
            }
        )
    return {
        "slug": slug,
        "languages": ["en", "zh-Hans"],
        "title": _texts(next(slot)),
        "phases": phases,
    }


def _count_texts(talk: dict[str, Any]) -> int:
    return sum(1 for _ in _strings(talk) if MARKER.search(_))


def _assert_stored(client: TestClient, slug: str, sent: dict[str, Any]) -> None:
    back = client.get(f"/api/v1/talks/{slug}", headers=AUTH)
    assert back.status_code == 200, back.text
    body = back.json()
    body.pop("version", None)
    expected = json.loads(json.dumps(sent))
    for text in _walk_texts(expected):
        text["en"], text["zh-Hans"] = stored(text["en"]), stored(text["zh-Hans"])
    for phase in body["phases"]:
        if phase["kind"] == "revote":  # the stance's question and options, filled in on read
            phase.pop("question", None)
            phase.pop("options", None)
    assert body == expected
    check_json(f"GET /api/v1/talks/{slug}", back.json())


def _walk_texts(value: Any) -> Iterator[dict[str, str]]:
    if isinstance(value, dict):
        if set(value) == {"en", "zh-Hans"}:
            yield value
        else:
            for item in value.values():
                yield from _walk_texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk_texts(item)


def form_fields(html: str) -> dict[str, str]:
    """The editor's form as a browser would send it."""
    soup = BeautifulSoup(html, "html.parser")
    form = soup.find("form", id="ed-form")
    assert isinstance(form, Tag)
    fields: dict[str, str] = {}
    for tag in form.find_all(["input", "textarea", "select"]):
        assert isinstance(tag, Tag)
        name = tag.get("name")
        if not isinstance(name, str):
            continue
        if tag.name == "input":
            if tag.get("type") == "checkbox" and not tag.has_attr("checked"):
                continue
            fields.setdefault(name, str(tag.get("value", "")))
        elif tag.name == "textarea":
            fields[name] = tag.get_text()
        else:
            chosen = tag.find("option", selected=True) or tag.find("option")
            fields[name] = str(chosen.get("value", "")) if isinstance(chosen, Tag) else ""
    return fields


def run_votes(app: FastAPI, client: TestClient, code: str, phones: int) -> None:
    first = ["belief", "field", "field_pct", "c1", "c2", "c3"]
    for phase in first:
        phase_action(client, code, phase, "open")
    people = [TestClient(app) for _ in range(phones)]
    stance = ["agree", "disagree", "unsure"]
    for k, person in enumerate(people):
        for body in (
            {"phase": "belief", "choice": stance[k % 3]},
            {"phase": "field", "choice": stance[(k + 1) % 3]},
            {"phase": "field_pct", "value": 10 * k % 100},
            {"phase": "c1", "choice": f"o{k % 20 + 1}"},
            {"phase": "c2", "choice": f"o{(k * 3) % 20 + 1}"},
            {"phase": "c3", "choice": f"o{(k * 7) % 20 + 1}"},
        ):
            r = person.post(f"/api/v1/sessions/{code}/votes", json=body)
            assert r.status_code == 200, r.text
    for phase in first:
        phase_action(client, code, phase, "close")
        phase_action(client, code, phase, "reveal")
    phase_action(client, code, "revote", "open")
    for k, person in enumerate(people):
        r = person.post(
            f"/api/v1/sessions/{code}/votes", json={"phase": "revote", "choice": stance[k % 2]}
        )
        assert r.status_code == 200, r.text
    phase_action(client, code, "revote", "close")
    phase_action(client, code, "revote", "reveal")


def read_frames(client: TestClient, code: str, lang: str, presenter: bool, n: int) -> list[str]:
    """The stream's first ``n`` events, each checked as the browser's EventSource would split
    it (CR, LF and CRLF all end a line): only known fields, and no event or id a payload made."""
    stream = Stream(client, code, lang=lang, presenter=presenter)
    found: list[str] = []
    try:
        unread: list[bytes] = []
        while len(found) < n:
            assert client.portal is not None
            if not unread:
                write = client.portal.call(stream._next)
                assert write.endswith(b"\n\n"), write[-40:]
                unread = split(write)  # one write may carry several events
            frame = unread.pop(0).decode()
            if frame.startswith("retry: "):
                continue
            data: list[str] = []
            for line in re.split(r"\r\n|\r|\n", frame[:-2]):
                field, _, value = line.partition(": ")
                assert field in ("event", "data", "id", "retry", ""), f"stream field {line[:60]!r}"
                if field != "data":
                    assert not MARKER.search(line), f"a payload made a stream line: {line!r}"
                else:
                    data.append(value)
            found.append("\n".join(data))
    finally:
        stream.close()
    return found


# --------------------------------------------------------------------------- the test


def test_no_payload_is_ever_shown_unescaped(live_app: FastAPI, live_client: TestClient) -> None:
    client = live_client
    COVERAGE.reset()
    assert len(PAYLOADS) >= 50 and len(set(MARKERS)) == len(PAYLOADS)
    for payload, marker in zip(PAYLOADS, MARKERS, strict=True):
        assert marker in venue_of(payload)

    # Talks: JSON, TOML (the exported file, imported again), the editor's form.
    talk = hostile_talk("hostile")
    created = client.post("/api/v1/talks", json=talk, headers=AUTH)
    assert created.status_code == 201, created.text
    _assert_stored(client, "hostile", talk)
    COVERAGE.stored += _count_texts(talk)
    COVERAGE.points.update({"talk title (JSON)", "question (JSON)", "option label (JSON)"})

    # A new version (PUT) with the texts shifted, so every slot holds another payload.
    shifted = hostile_talk("hostile-put")
    assert client.post("/api/v1/talks", json=shifted, headers=AUTH).status_code == 201
    shifted["title"] = _texts(3)
    shifted["phases"][0]["question"] = _texts(5)
    put = client.put("/api/v1/talks/hostile-put", json=shifted, headers=AUTH)
    assert put.status_code == 200, put.text
    check_json_body("PUT /api/v1/talks/hostile-put", put.text)
    _assert_stored(client, "hostile-put", shifted)
    COVERAGE.stored += _count_texts(shifted)
    COVERAGE.points.add("talk texts (PUT, a new version)")

    toml_text = get(client, "/api/v1/talks/hostile.toml", headers=AUTH)
    COVERAGE.saw("GET /api/v1/talks/hostile.toml", toml_text)
    assert tomllib.loads(toml_text)["title"]["en"] == stored(talk["title"]["en"])
    check_json("talk TOML parsed", tomllib.loads(toml_text))
    via_toml = toml_text.replace('slug = "hostile"', 'slug = "hostile-toml"', 1)
    created = client.post(
        "/api/v1/talks",
        content=via_toml.encode(),
        headers={**AUTH, "Content-Type": "application/toml"},
    )
    assert created.status_code == 201, created.text
    _assert_stored(client, "hostile-toml", talk | {"slug": "hostile-toml"})
    COVERAGE.stored += _count_texts(talk)
    COVERAGE.points.update({"talk title (TOML)", "question (TOML)", "option label (TOML)"})

    log_in(client)
    edit_html = get(client, "/presenter/talks/hostile/edit")
    check_html("GET /presenter/talks/hostile/edit", edit_html)
    fields = form_fields(edit_html)
    assert fields["title.en"].strip() == stored(talk["title"]["en"])
    fields.update({"slug": "hostile-form", "mode": "create", "original": "", "op": "save"})
    saved = client.post("/presenter/talks/editor", data=fields, follow_redirects=False)
    assert saved.status_code == 303, saved.text[:2000]
    _assert_stored(client, "hostile-form", talk | {"slug": "hostile-form"})
    COVERAGE.stored += _count_texts(talk)
    COVERAGE.points.update({"talk title (editor)", "question (editor)", "option label (editor)"})
    for op in ("preview:3", "add_option:0", "add_phase:choice"):
        check_html(
            f"POST /presenter/talks/editor op={op}",
            client.post("/presenter/talks/editor", data={**fields, "op": op}).text,
        )
    check_html(
        "POST /presenter/talks/editor/check",
        client.post("/presenter/talks/editor/check", data=fields).text,
    )
    check_html(
        "POST /presenter/talks/editor/check (htmx)",
        client.post(
            "/presenter/talks/editor/check", data=fields, headers={"HX-Request": "true"}
        ).text,
    )
    check_html(
        "GET /presenter/talks/new?copy=hostile", get(client, "/presenter/talks/new?copy=hostile")
    )

    # Venues: one session per payload (API), each renamed to another payload (PATCH, form).
    codes: list[str] = []
    n = len(PAYLOADS)
    for i, payload in enumerate(PAYLOADS):
        response = client.post(
            "/api/v1/sessions", json={"talk": "hostile", "venue": payload[:VENUE_MAX]}, headers=AUTH
        )
        if response.status_code == 422:
            COVERAGE.refused += 1
            continue
        assert response.status_code == 201, response.text
        code = response.json()["code"]
        codes.append(code)
        COVERAGE.stored += 1
        check_json_body("POST /api/v1/sessions", response.text)
        session = client.get(f"/api/v1/sessions/{code}").json()
        assert session["venue"] == venue_of(payload)
        renamed = PAYLOADS[(i + 11) % n][:VENUE_MAX]
        patched = client.patch(f"/api/v1/sessions/{code}", json={"venue": renamed}, headers=AUTH)
        assert patched.status_code == 200, patched.text
        assert patched.json()["venue"] == stored(renamed)
        check_json_body(f"PATCH /api/v1/sessions/{code}", patched.text)
        COVERAGE.stored += 1
    COVERAGE.points.update({"venue (POST /api/v1/sessions)", "venue (PATCH)"})

    form_created = client.post(
        "/presenter/sessions",
        data={"talk": "hostile", "venue": PAYLOADS[1], "language": "zh-Hans"},
        follow_redirects=False,
    )
    assert form_created.status_code == 303, form_created.text[:500]
    zh_code = form_created.headers["location"].rsplit("/", 1)[-1]
    COVERAGE.stored += 1
    updated = client.post(
        f"/presenter/sessions/{zh_code}/update",
        data={"venue": PAYLOADS[3], "back": "control"},
        follow_redirects=False,
    )
    assert updated.status_code == 303, updated.text[:500]
    assert client.get(f"/api/v1/sessions/{zh_code}").json()["venue"] == stored(PAYLOADS[3])
    COVERAGE.stored += 1
    COVERAGE.points.update({"venue (dashboard form)", "venue (control form)"})

    # Forms sent back with an error show what was typed.
    for i in (0, 1, 4, 28):
        refused = client.post(
            "/presenter/sessions", data={"talk": "no-such-talk", "venue": PAYLOADS[i]}
        )
        assert refused.status_code >= 400
        check_html("POST /presenter/sessions (refused)", refused.text)
    COVERAGE.points.add("venue (refused form, shown again)")

    # What pages echo from the address: codes and queries.
    for i in (0, 1, 6, 8, 40):
        text = quote(PAYLOADS[i][:40], safe="")
        for url in (f"/j/{text}", f"/j/{text}/panel", f"/?code={text}", f"/privacy?code={text}"):
            check_html(f"GET {url[:30]}", client.get(url).text)
    COVERAGE.points.update({"join code in the address", "code query"})

    # Two sessions with votes and revealed phases (English, and Chinese from the form).
    main = codes[0]
    run_votes(live_app, client, main, 9)
    run_votes(live_app, client, zh_code, 6)

    # The presenter's pages and fragments.
    check_html("GET /presenter", get(client, "/presenter"))
    check_html("GET /presenter (zh)", get(client, "/presenter?lang=zh-Hans"))
    for code in (main, zh_code):
        base = f"/presenter/sessions/{code}"
        for lang in ("en", "zh-Hans"):
            for url in (
                base,
                f"{base}/panel",
                f"{base}/projector",
                f"{base}/projector/stage",
                f"{base}/results",
                f"{base}/report.html",
            ):
                check_html(f"GET {url}?lang={lang}", get(client, f"{url}?lang={lang}"))
        check_html(f"GET {base}/delete", get(client, f"{base}/delete"))
        check_html(
            f"POST {base}/phases/belief/reveal",
            client.post(f"{base}/phases/belief/reveal", headers={"HX-Request": "true"}).text,
        )
    for slug in ("hostile",):
        for lang in ("en", "zh-Hans"):
            for url in (f"/presenter/talks/{slug}/results", f"/presenter/talks/{slug}/report.html"):
                check_html(f"GET {url}?lang={lang}", get(client, f"{url}?lang={lang}"))

    # Charts: every chart of both sessions and of the talk, both languages.
    chart_bases = [
        f"/api/v1/sessions/{main}",
        f"/api/v1/sessions/{zh_code}",
        "/api/v1/talks/hostile",
    ]
    for base in chart_bases:
        missing = client.get(f"{base}/charts/no-such-chart.svg", headers=AUTH)
        assert missing.status_code == 404
        names = re.search(r"charts: ([^)]*)\)", missing.json()["detail"])
        assert names, missing.text
        chart_names = [c.strip() for c in names.group(1).split(",")]
        assert len(chart_names) >= 3, chart_names
        for name in chart_names:
            for lang in ("en", "zh-Hans"):
                url = f"{base}/charts/{name}.svg?lang={lang}"
                check_svg(f"GET {url}", get(client, url, headers=AUTH))
        png = client.get(f"{base}/charts/{chart_names[0]}.png", headers=AUTH)
        assert png.status_code == 200 and png.content.startswith(b"\x89PNG")

    # Exports and the JSON API.
    for base in (
        f"/api/v1/sessions/{main}",
        f"/api/v1/sessions/{zh_code}",
        "/api/v1/talks/hostile",
    ):
        check_csv(f"GET {base}/export.csv", get(client, f"{base}/export.csv", headers=AUTH))
        check_csv(
            f"GET {base}/export.csv?bom=1", get(client, f"{base}/export.csv?bom=1", headers=AUTH)
        )
        for url in (f"{base}/export.json", f"{base}/codebook.json", f"{base}/results"):
            check_json_body(f"GET {url}", get(client, url, headers=AUTH))
    for url in ("/api/v1/talks", "/api/v1/talks?lang=zh-Hans", f"/api/v1/sessions/{main}"):
        check_json_body(f"GET {url}", get(client, url))
    check_json_body("GET /openapi.json", get(client, "/openapi.json"))

    # The phone: page and panel in both languages, a vote from the form, the landing page.
    for code in (main, zh_code, *codes[1:6]):
        phone = TestClient(live_app)
        for lang in ("en", "zh-Hans"):
            check_html(f"GET /j/{code}?lang={lang}", get(phone, f"/j/{code}?lang={lang}"))
            check_html(
                f"GET /j/{code}/panel?lang={lang}", get(phone, f"/j/{code}/panel?lang={lang}")
            )
    for url in ("/", "/?lang=zh-Hans", f"/privacy?code={main}"):
        check_html(f"GET {url}", get(TestClient(live_app), url))
    phase_action(client, main, "c1", "open")
    phone = TestClient(live_app)
    get(phone, f"/j/{main}")
    voted = phone.post(
        f"/j/{main}/vote", data={"phase": "c1", "choice": "o2"}, headers={"HX-Request": "true"}
    )
    assert voted.status_code == 200, voted.text[:300]
    check_html(f"POST /j/{main}/vote", voted.text)
    phase_action(client, main, "c1", "close")

    # Event streams: the phone's and the presenter's first events, both languages.
    for code in (main, zh_code):
        for lang in ("en", "zh-Hans"):
            for presenter, count in ((False, 2), (True, 3)):
                for k, data in enumerate(read_frames(client, code, lang, presenter, count)):
                    where = f"events {code} {lang} {'presenter' if presenter else 'phone'} #{k}"
                    if data.startswith(("{", "[")):
                        check_json(where, json.loads(data))
                    else:
                        check_html(where, data)

    # The coverage: every payload stored, and every marker seen in what was read back.
    outputs = len(COVERAGE.outputs)
    summary = (
        f"{len(PAYLOADS)} payloads, {len(COVERAGE.points)} injection points, "
        f"{COVERAGE.stored} texts stored, {COVERAGE.refused} refused, {outputs} outputs checked, "
        f"{len(COVERAGE.seen & set(MARKERS))} markers seen"
    )
    print(summary)
    assert COVERAGE.refused <= len(PAYLOADS) // 10, summary
    assert set(MARKERS) <= COVERAGE.seen, f"{summary}; never shown: {set(MARKERS) - COVERAGE.seen}"
    assert outputs >= 150, summary


def test_open_text_answers_are_escaped_in_the_cloud_and_the_queue(
    live_app: FastAPI, live_client: TestClient
) -> None:
    """Every payload sent as an open-text answer: those the rules refuse are refused (a 4xx);
    the rest wait in the presenter's queue (the control page and its fragments) and, half of
    them shown, make the word cloud (SVG, the phone's page, the projector, the results page):
    each shown as text."""
    client = live_client
    talk = {
        "slug": "hostile-text",
        "languages": ["en"],
        "title": {"en": "Text"},
        "phases": [
            {
                "id": "why",
                "kind": "choice",
                "answer": "text",
                "max_chars": 200,
                "question": {"en": "Why?"},
            },
        ],
    }
    assert client.post("/api/v1/talks", json=talk, headers=AUTH).status_code == 201
    code = client.post(
        "/api/v1/sessions", json={"talk": "hostile-text", "venue": "V"}, headers=AUTH
    ).json()["code"]
    phase_action(client, code, "why", "open")
    accepted = refused = 0
    for payload in PAYLOADS:
        phone = TestClient(live_app)
        sent = phone.post(f"/api/v1/sessions/{code}/votes", json={"phase": "why", "text": payload})
        assert sent.status_code in (200, 413, 422), sent.text[:300]
        if sent.status_code == 200:
            accepted += 1
        else:
            refused += 1
    assert accepted >= 40 and refused >= 4  # control, bidi, zero-width and too long refused
    queue = client.get(f"/api/v1/sessions/{code}/text-answers", headers=AUTH).json()
    ids = [a["id"] for a in queue["answers"]]
    assert len(ids) == accepted and MARKER.search(json.dumps(queue))
    shown = client.post(
        f"/api/v1/sessions/{code}/text-answers/moderate",
        json={"ids": ids[::2], "state": "shown"},
        headers=AUTH,
    )
    assert shown.status_code == 200
    phase_action(client, code, "why", "reveal")

    svg = get(client, f"/api/v1/sessions/{code}/charts/phase-why.svg", headers=AUTH)
    check_svg("cloud SVG", svg)
    assert ">alert</text>" in svg, "the cloud shows the payloads' words"
    png = client.get(f"/api/v1/sessions/{code}/charts/phase-why.png", headers=AUTH)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    check_html("phone page (cloud)", get(TestClient(live_app), f"/j/{code}"))
    for frame in read_frames(client, code, "en", presenter=True, n=3):
        check_html("presenter stream", frame)
    log_in(client)
    check_html("queue (control page's fetch)", get(client, f"/presenter/sessions/{code}/queue"))
    control = get(client, f"/presenter/sessions/{code}")
    check_html("control page (queue)", control)
    assert "queue__item" in control and MARKER.search(control)
    fragment = client.post(
        f"/presenter/sessions/{code}/text-answers/hidden",
        data={"ids": str(ids[1])},
        headers={"HX-Request": "true"},
    )
    check_html("queue fragment", fragment.text)
    check_html("projector", get(client, f"/presenter/sessions/{code}/projector"))
    check_html("results page (cloud)", get(client, f"/presenter/sessions/{code}/results"))


def test_the_checks_catch_a_payload_that_made_markup() -> None:
    """The checks above fail on what they look for: an element, an attribute, an event handler
    or a URL of a payload's making, its own text in a script, and a payload shown as typed."""
    marker = MARKERS[0]
    for made in (
        f"<p><script>alert('{marker}')</script></p>",
        f"<div><img src=x onerror=\"alert('{marker}')\"><p>{marker}</p></div>",
        f"<svg><a href=\"javascript:alert('{marker}')\"><text>x</text></a></svg>",
        f'<div hx-get="/presenter?{marker}" hx-trigger="load">x</div>',
        f"<p><style>body{{background:url({marker})}}</style>",
        f"<ul><li {marker}=1>x</li></ul>",
        f"<p>{stored(PAYLOADS[0])}</p>",
    ):
        with pytest.raises(AssertionError):
            check_html(made, made)
    check_html("the same payloads shown as text", f"<p>&lt;script&gt;{marker}</p><br/><p>x</p>")
