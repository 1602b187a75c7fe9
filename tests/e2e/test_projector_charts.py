"""The projector's revealed charts in a real browser: the headline says what the numbers support
(a tie names both answers, a 40% plurality is not "most"), and choice, estimate, belief-gap,
ranking and word-cloud charts use the slide at 1920x1080 and 1280x720 with labels of at least
28 px, measured on the rendered SVG; the control page previews the chart Reveal puts on the
projector."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.e2e.conftest import ADMIN_TOKEN, LiveServer

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SIZES = ((1920, 1080), (1280, 720))
SHOTS = Path(__file__).resolve().parent / "screenshots"


@pytest.fixture
def live_server(module_live_server: LiveServer) -> LiveServer:
    """One server for this module's tests: each works in a session of its own."""
    return module_live_server


def revealed_session(
    server: LiveServer, talk: str, phase: str, answers: list[Any], close: bool = True
) -> str:
    """A session whose ``phase`` has these answers (one voter each), closed (unless not
    ``close``) and revealed."""
    with httpx.Client(base_url=server.url, headers=AUTH) as api:
        code = api.post("/api/v1/sessions", json={"talk": talk, "venue": "Room"}).json()["code"]
        assert api.post(f"/api/v1/sessions/{code}/phases/{phase}/open").status_code == 200
        for answer in answers:
            key = "value" if isinstance(answer, int) else "choice"
            with httpx.Client(base_url=server.url) as phone:
                r = phone.post(f"/api/v1/sessions/{code}/votes", json={"phase": phase, key: answer})
                assert r.status_code == 200, r.text
        for action in ("close", "reveal") if close else ("reveal",):
            assert api.post(f"/api/v1/sessions/{code}/phases/{phase}/{action}").status_code == 200
    return str(code)


def presenter_page(open_page: Any, server: LiveServer, path: str, size: tuple[int, int]) -> Any:
    """A presenter's page, logged in, in a browser of its own."""
    page = open_page(path, viewport=size)
    page.goto(f"{server.url}/presenter/login")
    page.locator("#token").fill(ADMIN_TOKEN)
    page.locator(".login__form button[type=submit]").click()
    page.wait_for_url(f"{server.url}/presenter")
    page.goto(f"{server.url}{path}")
    return page


def projector(
    open_page: Any,
    server: LiveServer,
    code: str,
    size: tuple[int, int],
    ready: str = ".stage--revealed .chart-variant--slide svg",
) -> Any:
    page = presenter_page(open_page, server, f"/presenter/sessions/{code}/projector", size)
    page.wait_for_selector(ready)
    return page


MEASURE = """() => {
  const svg = [...document.querySelectorAll('.stage--revealed svg.chart')]
    .find(s => s.getBoundingClientRect().width > 0);
  const box = svg.getBoundingClientRect();
  const scale = svg.getScreenCTM().a;
  const texts = [...svg.querySelectorAll('text')].map(t => ({
    text: t.textContent,
    px: parseFloat(t.getAttribute('font-size')) * scale,
    height: t.getBoundingClientRect().height,
    bottom: t.getBoundingClientRect().bottom,
  }));
  return {width: box.width, height: box.height, bottom: box.bottom, texts,
          scrolls: document.documentElement.scrollHeight > window.innerHeight};
}"""


def measure(page: Any, size: tuple[int, int], name: str, share: float = 2 / 3) -> dict[str, Any]:
    """The revealed chart at least ``share`` of the slide's width, nothing below the screen, every
    label 28 px or more; a screenshot for people to look at."""
    found = page.evaluate(MEASURE)
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"projector-{name}-{size[0]}x{size[1]}.png"))
    width, height = size
    assert found["width"] >= width * share, (name, size, found["width"])
    assert found["bottom"] <= height + 1 and not found["scrolls"], (name, size)
    small = [t for t in found["texts"] if t["px"] < 28 - 0.01]
    assert not small, (name, size, [(t["text"], round(t["px"], 1)) for t in small])
    # the rendered glyph boxes agree: every line at least 28 px tall on screen
    assert min(t["height"] for t in found["texts"]) >= 28, (name, size)
    return found


STATUS_COUNT = """() => {
  const line = [...document.querySelectorAll('.stage--revealed .reveal__status')]
    .find(e => e.getBoundingClientRect().width);
  const count = line.firstElementChild;
  return {text: count.innerText, height: count.getBoundingClientRect().height,
          px: parseFloat(getComputedStyle(count).fontSize)};
}"""


def status_line_reads(page: Any, found: dict[str, Any], size: tuple[int, int]) -> None:
    """The line above the chart ("31 answered · Voting is closed.") reads from the back as the
    chart does: 28 px or more, and at least 85% of the chart's smallest label as the screen
    grows (a fixed 28 px was 63% of the gap slide's 44 px labels at 1920x1080). Its count keeps
    its words on one line, beside the QR code too (it was cut into "answer / ed" there)."""
    status = page.evaluate(SLIDE_TEXT)["status"]
    smallest = min(t["px"] for t in found["texts"])
    assert status >= 28 and status >= 0.85 * smallest, (size, status, round(smallest, 1))
    count = page.evaluate(STATUS_COUNT)
    assert count["height"] < 2 * count["px"], (size, count)


@pytest.mark.parametrize("size", SIZES, ids=["1920x1080", "1280x720"])
def test_a_tie_and_a_plurality_on_the_projector(
    live_server: LiveServer, open_page: Any, size: tuple[int, int]
) -> None:
    tie = revealed_session(live_server, "emergence", "definition", ["d1", "d1", "d3", "d3", "d4"])
    page = projector(open_page, live_server, tie, size)
    sentence = page.locator(".stage--revealed .chart-sentence").inner_text().strip()
    assert sentence.startswith("Tied as the most common answers: “A property the model shows")
    assert "“A property absent in smaller models" in sentence
    assert sentence.endswith("40% each of 5 answers.") and "Most" not in sentence
    measure(page, size, "tie")

    plural = revealed_session(
        live_server, "emergence", "definition", ["d1", "d1", "d2", "d3", "d4"]
    )
    page = projector(open_page, live_server, plural, size)
    sentence = page.locator(".stage--revealed .chart-sentence").inner_text().strip()
    assert sentence.startswith("The most common answer was “A property the model shows")
    assert sentence.endswith("40% of 5 answers, not a majority.") and "Most" not in sentence
    measure(page, size, "plurality")


@pytest.mark.parametrize("size", SIZES, ids=["1920x1080", "1280x720"])
def test_an_estimate_chart_fills_the_slide(
    live_server: LiveServer, open_page: Any, size: tuple[int, int]
) -> None:
    code = revealed_session(live_server, "emergence-scale", "field_pct", [40, 55, 60, 62, 70, 85])
    page = projector(open_page, live_server, code, size)
    assert "mean" in page.locator(".stage--revealed .chart-sentence").inner_text().lower() or (
        "estimate" in page.locator(".stage--revealed .chart-sentence").inner_text()
    )
    measure(page, size, "estimate")


# --------------------------------------------------------------------------- the belief gap

GAP_READY = ".stage--revealed .chart-slot--gap .chart-sentence"

HEADLINE = """() => {
  const p = document.querySelector('.stage--revealed .chart-slot--gap .chart-sentence');
  const style = getComputedStyle(p);
  return {text: p.innerText, lines: Math.round(p.getBoundingClientRect().height
                                               / parseFloat(style.lineHeight))};
}"""

BARS = """() => {
  const svg = [...document.querySelectorAll('.stage--revealed svg.chart--gap')]
    .find(s => s.getBoundingClientRect().width > 0);
  return {bars: [...svg.querySelectorAll('rect[id^="gap-"]')].map(r => r.id),
          lines: svg.querySelectorAll('line').length};
}"""


def gap_room(
    server: LiveServer,
    talk: str,
    perceived: str,
    people: list[tuple[Any, Any]],
    still_open: bool = False,
) -> str:
    """A session where each person gave their own view and their view of the field (None: not
    answered); both phases closed (``still_open``: the perceived one open), the perceived one
    revealed."""
    with httpx.Client(base_url=server.url, headers=AUTH) as api:
        code = api.post("/api/v1/sessions", json={"talk": talk, "venue": "Hall"}).json()["code"]
        phones = [httpx.Client(base_url=server.url) for _ in people]
        try:
            for index, phase in enumerate(("belief", perceived)):
                assert api.post(f"/api/v1/sessions/{code}/phases/{phase}/open").status_code == 200
                for phone, answers in zip(phones, people, strict=True):
                    answer = answers[index]
                    if answer is None:
                        continue
                    key = "value" if isinstance(answer, int) else "choice"
                    body = {"phase": phase, key: answer}
                    r = phone.post(f"/api/v1/sessions/{code}/votes", json=body)
                    assert r.status_code == 200, r.text
                if not (still_open and phase == perceived):
                    action = f"/api/v1/sessions/{code}/phases/{phase}/close"
                    assert api.post(action).status_code == 200
            assert api.post(f"/api/v1/sessions/{code}/phases/{perceived}/reveal").status_code == 200
        finally:
            for phone in phones:
                phone.close()
    return str(code)


THIRTY = (
    [("agree", "agree")] * 9
    + [("agree", "disagree")] * 3
    + [("disagree", "agree")] * 10
    + [("disagree", "disagree")] * 4
    + [("unsure", "agree")] * 3
    + [("unsure", "unsure")] * 2
)
"""A room of 31: 39% say yes, 71% think most of the field would."""

SCALE = [
    (own, estimate)
    for own, estimate in zip(
        ["strongly_disagree"] * 3
        + ["disagree"] * 6
        + ["neutral"] * 7
        + ["agree"] * 9
        + ["strongly_agree"] * 5,
        [40, 55, 60, 62, 70, 75, 80, 85, 90, 65] * 3,
        strict=True,
    )
]
"""A room of 30 on the 5-point scale with 0-100 estimates of the field."""


@pytest.mark.parametrize("size", SIZES, ids=["1920x1080", "1280x720"])
@pytest.mark.parametrize(
    ("talk", "perceived", "people", "sentence"),
    [
        (
            "emergence",
            "field",
            THIRTY,
            "39% of you answered “Yes, they do”. 71% of you think most of the field would.",
        ),
        (
            "emergence-scale",
            "field_pct",
            SCALE,
            "47% of you answered “Agree / Strongly agree”. On average you think 68% of the "
            "field would.",
        ),
    ],
    ids=["options", "estimate"],
)
def test_the_gap_slide_reads_from_the_back_of_the_hall(
    live_server: LiveServer,
    open_page: Any,
    size: tuple[int, int],
    talk: str,
    perceived: str,
    people: list[tuple[Any, Any]],
    sentence: str,
) -> None:
    """One plain sentence of at most two lines without brackets, the room's bars with whiskers
    filling the slide, every label 28 px or more, the count above them about as large."""
    code = gap_room(live_server, talk, perceived, people)
    page = projector(open_page, live_server, code, size, ready=GAP_READY)
    headline = page.evaluate(HEADLINE)
    assert " ".join(headline["text"].split()) == sentence
    assert headline["lines"] <= 2, headline
    assert not any(mark in headline["text"] for mark in "[]()")
    found = measure(page, size, f"gap-{talk}")
    status_line_reads(page, found, size)
    drawn = page.evaluate(BARS)
    series = {bar.rsplit("-", 2)[-2] for bar in drawn["bars"]}
    assert series == {"you", "field"} and len(drawn["bars"]) % 2 == 0
    if perceived == "field":
        assert len(drawn["bars"]) == 6  # you and the field for each of the three options
    # each bar's whisker: a stem and two caps
    assert drawn["lines"] >= 3 * len(drawn["bars"])
    texts = [t["text"] for t in found["texts"]]
    # both rooms: everyone answered both questions and the paired interval gives no hidden cell
    # back, so the caption counts the people who answered both
    caption = "31 people answered both" if perceived == "field" else "30 people answered both"
    assert any(t.startswith(caption) for t in texts), " | ".join(texts)
    # the slide is filled: the chart reaches the lower part of the screen
    assert found["bottom"] >= size[1] * 0.75, (found["bottom"], size)


def view_address(server: LiveServer, code: str) -> str:
    """The session's read-only view, made on the control page as the presenter does."""
    with httpx.Client(base_url=server.url) as presenter:
        same_origin = {"Sec-Fetch-Site": "same-origin"}
        presenter.post("/presenter/login", data={"token": ADMIN_TOKEN}, headers=same_origin)
        page = presenter.post(
            f"/presenter/sessions/{code}/tokens/view", headers=same_origin, follow_redirects=True
        )
    found = re.search(r'value="([^"]*)" data-token="view"', page.text)
    assert found is not None
    return f"{server.url}/view/{found.group(1).rsplit('/', 1)[-1]}"


BESIDE_QR = 0.55
"""The share of the slide's width a chart beside the QR code has (the code takes the rest)."""
VISIBLE_CHART = ".stage--revealed svg.chart:visible"


def can_join(page: Any, code: str, height: int) -> None:
    """While voting is open the room can still join: the QR code beside the chart (30% of the
    height or more), or, where the chart needs the slide, the address and code above it."""
    # read in one step: the stream's snapshot may swap the slide in between two reads
    qr_height = page.evaluate(
        """() => {
            const qr = document.querySelector(".stage--revealed .qr-block__code svg");
            const box = qr && qr.getBoundingClientRect();
            return box && box.height > 0 && qr.checkVisibility() ? box.height : null;
        }"""
    )
    if qr_height is not None:
        assert qr_height >= 0.3 * height
    else:
        join = page.locator(".stage--revealed .reveal__join")
        assert join.is_visible() and join.inner_text().endswith(f" {code}")  # "code", "代码"


@pytest.mark.parametrize("size", SIZES, ids=["1920x1080", "1280x720"])
def test_a_phase_revealed_while_still_open_keeps_its_labels_beside_the_qr_code(
    live_server: LiveServer, open_page: Any, size: tuple[int, int]
) -> None:
    """Revealed while the phase is still open, the slide shares the screen with the QR code and
    draws no belief gap (redrawn after every vote, a linked figure would tell each voter's pair
    of answers): the phase's own bars, and a line saying when the gap comes. Beside the code the
    labels stay 28 px or more: five long definitions, which do not fit beside it at 1280x720,
    take the slide and put the join address above the chart; so in every mode of the view."""
    code = gap_room(live_server, "emergence", "field", THIRTY, still_open=True)
    page = projector(
        open_page, live_server, code, size, ready=".stage--revealed [data-waits=gap_waits]"
    )
    assert page.locator(".stage--qr .qr-block__code svg").is_visible()
    assert page.locator("svg.chart--gap").count() == 0
    waits = page.locator("[data-waits=gap_waits]").inner_text()
    assert waits == "The belief gap is shown when voting closes."
    status_line_reads(page, measure(page, size, "gap-waits", share=BESIDE_QR), size)

    answers = ["d1", "d1", "d2", "d3", "d4", "d4"]
    code = revealed_session(live_server, "emergence", "definition", answers, close=False)
    page = projector(open_page, live_server, code, size, ready=VISIBLE_CHART)
    measure(page, size, "open-definitions", share=BESIDE_QR)
    can_join(page, code, size[1])
    view = view_address(live_server, code)
    for query in ("", "?theme=dark", "?phase=definition&palette=cb", "?mode=overlay"):
        page.goto(view + query)
        page.wait_for_selector(VISIBLE_CHART)
        name = "view-open-definitions-" + (query[1:].split("=")[-1] or "plain")
        found = measure(page, size, name, share=BESIDE_QR)
        if "overlay" in query:  # inside the 5% safe margins, over whatever is below
            assert found["bottom"] <= 0.95 * size[1] + 1
            assert page.evaluate("getComputedStyle(document.body).backgroundColor") in (
                "rgba(0, 0, 0, 0)",
                "transparent",
            )
        else:
            can_join(page, code, size[1])
    page.goto(view + "?mode=qr")
    # measured in the page: the view fetches its slide again once its stream is open, and a
    # handle taken before that swap has no box
    code_svg = ".slide--qr-only .qr-block__code svg"
    side = page.evaluate(f"document.querySelector('{code_svg}').getBoundingClientRect().height")
    assert side >= 0.3 * size[1]
    assert page.evaluate("document.documentElement.scrollHeight <= innerHeight")


# --------------------------------------------------------------------------- the control page

SAME_CHART = """([where]) => [...document.querySelectorAll(where + ' svg.chart')]
  .map(svg => svg.outerHTML.replace(/-c\\d+\\b/g, '-c')).join('\\n')"""


def preview_matches(control: Any, stage: Any, shows: str) -> str:
    """Wait until the control page previews what the projector shows (``shows``: gap, shift);
    the chart markup."""
    stage.wait_for_selector(f".stage--revealed .chart-slot--{shows} .chart-sentence")
    drawn = stage.evaluate(SAME_CHART, [".stage--revealed .chart-slot"])
    control.wait_for_function(
        f"([drawn]) => document.querySelector('.preview__slide[data-shows=\"{shows}\"]') && "
        f"({SAME_CHART})(['.preview__slide']) === drawn",
        arg=[drawn],
        timeout=10_000,
    )
    return str(drawn)


def test_the_control_page_previews_what_reveal_puts_on_the_projector(
    live_server: LiveServer, open_page: Any
) -> None:
    """The preview draws the projector's chart, the gap and then the revote's shift, not the
    phase's bars, and keeps up with the answers as they come in."""
    people = [("agree", "agree")] * 6 + [("disagree", "agree")] * 5 + [("unsure", None)]
    with httpx.Client(base_url=live_server.url, headers=AUTH) as api:
        code = api.post("/api/v1/sessions", json={"talk": "emergence", "venue": "Hall"}).json()[
            "code"
        ]
        phones = [httpx.Client(base_url=live_server.url) for _ in people]

        def answer(phone: Any, phase: str, choice: str) -> None:
            r = phone.post(
                f"/api/v1/sessions/{code}/votes", json={"phase": phase, "choice": choice}
            )
            assert r.status_code == 200, r.text

        def act(phase: str, action: str) -> None:
            assert api.post(f"/api/v1/sessions/{code}/phases/{phase}/{action}").status_code == 200

        try:
            act("belief", "open")
            for phone, (own, _seen) in zip(phones, people, strict=True):
                answer(phone, "belief", own)
            act("belief", "close")
            act("field", "open")
            for phone, (_own, seen) in zip(phones, people, strict=True):
                if seen is not None:
                    answer(phone, "field", seen)
            act("field", "reveal")  # revealed while answers still come in: the gap waits
            control = presenter_page(
                open_page, live_server, f"/presenter/sessions/{code}", (1440, 900)
            )
            stage = projector(
                open_page, live_server, code, (1920, 1080), ready="[data-waits=gap_waits]"
            )
            control.wait_for_selector(".preview__slide[data-shows=gap_waits]", timeout=10_000)
            assert control.locator(".preview__slide svg.chart--gap").count() == 0
            # the last person answers the field question, and voting closes: both screens draw
            # the gap, once, the same
            answer(phones[-1], "field", "disagree")
            act("field", "close")
            gap = preview_matches(control, stage, "gap")
            assert "chart--gap" in gap and "chart--phase-field" not in gap
            assert "12 people answered both" in gap or "Answers: 12 about yourselves" in gap
            control.screenshot(path=str(SHOTS / "control-preview-gap-1440x900.png"))
            act("revote", "open")
            for phone, (own, _seen) in zip(phones, people, strict=True):
                answer(phone, "revote", "agree" if own == "unsure" else own)
            act("revote", "close")
            act("revote", "reveal")
            shift = preview_matches(control, stage, "shift")
            assert "chart--shift" in shift and "chart--phase-revote" not in shift
            control.screenshot(path=str(SHOTS / "control-preview-shift-1440x900.png"))
        finally:
            for phone in phones:
                phone.close()


@pytest.mark.parametrize("size", SIZES, ids=["1920x1080", "1280x720"])
def test_the_revote_slide_reads_from_the_back_of_the_hall(
    live_server: LiveServer, open_page: Any, size: tuple[int, int]
) -> None:
    """A room of 30 where 8 changed their answer: the projector draws how views moved large
    (every label 28 px or more, the count above about as large), and leaves the cell-by-cell
    matrix to the results page."""
    before = ["agree"] * 14 + ["disagree"] * 10 + ["unsure"] * 6
    after = list(before)
    for i in (14, 15, 16, 24, 25):
        after[i] = "agree"
    for i in (0, 1, 2):
        after[i] = "disagree"
    with httpx.Client(base_url=live_server.url, headers=AUTH) as api:
        code = api.post("/api/v1/sessions", json={"talk": "emergence", "venue": "Hall"}).json()[
            "code"
        ]
        phones = [httpx.Client(base_url=live_server.url) for _ in before]
        for phase, answers in (("belief", before), ("revote", after)):
            assert api.post(f"/api/v1/sessions/{code}/phases/{phase}/open").status_code == 200
            for phone, answer in zip(phones, answers, strict=True):
                body = {"phase": phase, "choice": answer}
                assert phone.post(f"/api/v1/sessions/{code}/votes", json=body).status_code == 200
            assert api.post(f"/api/v1/sessions/{code}/phases/{phase}/close").status_code == 200
        assert api.post(f"/api/v1/sessions/{code}/phases/revote/reveal").status_code == 200
        for phone in phones:
            phone.close()
    page = projector(open_page, live_server, code, size, ready=".stage--revealed svg.chart--shift")
    found = measure(page, size, "revote", share=0.6)
    status_line_reads(page, found, size)
    texts = " ".join(t["text"] for t in found["texts"])
    assert "Before" in texts and "After" in texts and "16" in texts
    assert page.locator(".stage--revealed svg.chart--shift-matrix").count() == 0


# --------------------------------------------------------------------------- a ranking and a cloud

PRIORITIES = [  # option id, English, Chinese: six of the lengths speakers write
    (
        "evals",
        "Better evaluations that test reasoning, not memorised answers",
        "更好的评测：考查推理，而不是记住的答案",
    ),
    ("theory", "A theory of why scaling works", "解释规模为何有效的理论"),
    ("data", "Open training data and open weights", "公开训练数据和模型权重"),
    ("interp", "Interpretability: knowing what the model computes", "可解释性：知道模型在算什么"),
    ("small", "Smaller models that run on a laptop", "能在笔记本电脑上运行的小模型"),
    ("safety", "Safety testing before every release", "每次发布前的安全测试"),
]
FORMATS_TALK = {
    "slug": "e2e-formats",
    "languages": ["en", "zh-Hans"],
    "title": {"en": "Priorities", "zh-Hans": "优先事项"},
    "phases": [
        {
            "id": "order",
            "kind": "choice",
            "answer": "ranking",
            "question": {"en": "What should come first?", "zh-Hans": "什么应该优先？"},
            "options": [{"id": i, "label": {"en": en, "zh-Hans": zh}} for i, en, zh in PRIORITIES],
        },
        {
            "id": "why",
            "kind": "choice",
            "answer": "text",
            "moderation": "post",
            "question": {"en": "Why do you think so?", "zh-Hans": "你为什么这样想？"},
        },
    ],
}
WHY = ["scale"] * 9 + ["data"] * 6 + ["emergence"] * 4 + ["benchmarks", "涌现", "涌现", "hype"]
WHY += ["memorisation", "in-context learning", "compute", "规模", "metrics", "loss curves"]

SLIDE_TEXT = """() => {
  const px = el => el ? parseFloat(getComputedStyle(el).fontSize) : 0;
  const visible = s => [...document.querySelectorAll(s)].find(e => e.getBoundingClientRect().width);
  return {sentence: px(visible('.stage--revealed .chart-sentence')),
          status: px(visible('.stage--revealed .reveal__status'))};
}"""


def formats_session(
    server: LiveServer, lang: str, phase: str, answers: list[Any], close: bool
) -> str:
    """A session of FORMATS_TALK in ``lang`` whose ``phase`` has these answers (a ranking or
    a text each, one phone each), revealed, closed first if ``close``."""
    key = "ranking" if phase == "order" else "text"
    with httpx.Client(base_url=server.url, headers=AUTH) as api:
        body = {"talk": FORMATS_TALK["slug"], "venue": "Hall", "language": lang}
        code = str(api.post("/api/v1/sessions", json=body).json()["code"])
        assert api.post(f"/api/v1/sessions/{code}/phases/{phase}/open").status_code == 200
        for answer in answers:
            with httpx.Client(base_url=server.url) as phone:
                r = phone.post(f"/api/v1/sessions/{code}/votes", json={"phase": phase, key: answer})
                assert r.status_code == 200, r.text
        for action in ("close", "reveal") if close else ("reveal",):
            assert api.post(f"/api/v1/sessions/{code}/phases/{phase}/{action}").status_code == 200
    return code


def test_a_ranking_and_a_word_cloud_read_from_the_back_of_the_hall(
    live_server: LiveServer, open_page: Any
) -> None:
    """Six long options ranked, in English once closed and in Chinese while still open (beside
    the QR code, in every mode of the view), and the word cloud of an open question: at both
    sizes every label of the ranking is 28 px or more, and the cloud's most used words, the
    slide's sentence and the count above it too (the cloud's rarest words may be smaller by
    design: its size is by count). One server, one page."""
    with httpx.Client(base_url=live_server.url, headers=AUTH) as api:
        assert api.post("/api/v1/talks", json=FORMATS_TALK).status_code == 201
    keys = [key for key, _, _ in PRIORITIES]
    orders = [keys, keys[::-1], keys[1:] + keys[:1], keys, keys[2:] + keys[:2], keys]
    closed = formats_session(live_server, "en", "order", orders, close=True)
    still_open = formats_session(live_server, "zh-Hans", "order", orders[:4], close=False)
    cloud = formats_session(live_server, "en", "why", WHY, close=False)
    view = view_address(live_server, still_open)
    page = presenter_page(open_page, live_server, "/presenter", SIZES[0])
    for size in SIZES:
        page.set_viewport_size({"width": size[0], "height": size[1]})
        stage = f"{live_server.url}/presenter/sessions/{{}}/projector"
        page.goto(stage.format(closed))
        page.wait_for_selector(VISIBLE_CHART)
        found = measure(page, size, "ranking")
        texts = [t["text"] for t in found["texts"]]
        assert texts[0].startswith("1. Open training data") and "2.7" in texts[:3], texts
        page.goto(stage.format(still_open))
        page.wait_for_selector(VISIBLE_CHART)
        found = measure(page, size, "open-ranking-zh", share=BESIDE_QR)
        texts = [t["text"] for t in found["texts"]]
        assert texts[0].startswith("1. 解释规模") and "2.5" in texts[:3], texts
        can_join(page, still_open, size[1])
        for query in ("?theme=dark", "?mode=overlay"):
            page.goto(view + query)
            page.wait_for_selector(VISIBLE_CHART)
            measure(page, size, "view-open-ranking-" + query.split("=")[-1], share=BESIDE_QR)

        page.goto(stage.format(cloud))
        page.wait_for_selector(VISIBLE_CHART)
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / f"projector-cloud-{size[0]}x{size[1]}.png"))
        drawn = page.evaluate(MEASURE)
        assert not drawn["scrolls"] and drawn["bottom"] <= size[1] + 1
        terms = sorted(drawn["texts"], key=lambda t: -t["px"])
        assert terms[0]["text"] == "scale" and len(terms) >= 10, [t["text"] for t in terms]
        assert min(t["px"] for t in terms[:5]) >= 28, [(t["text"], t["px"]) for t in terms]
        text = page.evaluate(SLIDE_TEXT)
        assert text["sentence"] >= 28 and text["status"] >= 28, text
        assert (
            page.locator(".stage--revealed .chart-sentence")
            .first.inner_text()
            .startswith("The words of 29 answers")
        )
        can_join(page, cloud, size[1])
