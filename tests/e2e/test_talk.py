"""A whole talk in real browsers: the presenter's laptop (login, dashboard, control page, projector
driven with the keyboard) and five phones in their own browser contexts, two of them in Chinese.

The answers are chosen so that the results are known in advance:

    phone  lang  definition  belief               field     revote
    A      en    d1          agree                agree     unsure
    B      en    d1          agree -> disagree    agree     disagree
    C      en    d4          unsure (reloads)     agree     disagree
    D      zh    d3          unsure               agree     disagree
    E      zh    (joins late) unsure              disagree  agree

definition n = 4 (d1 50%); belief n = 5 (agree 1 = 20%); field n = 5 (agree 4 = 80%): the gap is
+60 points. Stance -> revote over 5 pairs: A, C, D, E changed (4 of 5 = 80%), B did not.
"""

from __future__ import annotations

import csv
import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.conftest import ADMIN_TOKEN, LiveServer

WAIT_MS = 10_000
PHASES = ("definition", "belief", "field", "revote")
ANSWERS = {
    "A": ("d1", "agree", "agree", "unsure"),
    "B": ("d1", "disagree", "agree", "disagree"),
    "C": ("d4", "unsure", "agree", "disagree"),
    "D": ("d3", "unsure", "agree", "disagree"),
    "E": (None, "unsure", "disagree", "agree"),
}


@dataclass
class Phone:
    name: str
    page: Any


def wait_text(page: Any, selector: str, expected: str, what: str) -> None:
    """Wait until the element's text content (trimmed) equals ``expected``; the element may be
    replaced meanwhile, so the check reads it again each time."""
    script = """([selector, expected]) => {
        const el = document.querySelector(selector);
        return el !== null && el.textContent.trim() === expected;
    }"""
    try:
        page.wait_for_function(script, arg=[selector, expected], timeout=WAIT_MS)
    except Exception as exc:
        seen = page.evaluate(
            "(s) => { const el = document.querySelector(s); return el && el.textContent.trim(); }",
            selector,
        )
        raise AssertionError(f"{what}: expected {expected!r} in {selector}, saw {seen!r}") from exc


def wait_contains(page: Any, selector: str, expected: str, what: str) -> None:
    script = """([selector, expected]) => {
        const el = document.querySelector(selector);
        return el !== null && el.textContent.replace(/\\s+/g, ' ').includes(expected);
    }"""
    try:
        page.wait_for_function(script, arg=[selector, expected], timeout=WAIT_MS)
    except Exception as exc:
        seen = page.evaluate(
            "(s) => { const el = document.querySelector(s);"
            " return el && el.textContent.replace(/\\s+/g, ' ').trim(); }",
            selector,
        )
        raise AssertionError(f"{what}: expected {expected!r} in {selector}, saw {seen!r}") from exc


def stage_shows(projector: Any, phase: str, revealed: bool = False) -> None:
    script = """([phase, revealed]) => {
        const slide = document.querySelector('#stage .slide');
        return slide !== null && slide.dataset.phase === phase
            && slide.classList.contains('stage--revealed') === revealed;
    }"""
    try:
        projector.wait_for_function(script, arg=[phase, revealed], timeout=WAIT_MS)
    except Exception as exc:
        raise AssertionError(
            f"the projector does not show phase {phase!r} (revealed={revealed})"
        ) from exc
    # A marker a reload would wipe: the live counts checked next must arrive without one.
    projector.evaluate("window.__sinceStage = true")


def projector_count(projector: Any, phase: str, n: int, what: str) -> None:
    """The projector's live count of ``phase`` reaches ``n`` without the page being reloaded."""
    wait_text(projector, f"#n-{phase}", str(n), what)
    assert projector.evaluate("window.__sinceStage === true"), f"{what}: the projector reloaded"


def settled(page: Any) -> None:
    """Wait until htmx has finished its requests and swaps: a form swapped in is wired up a
    moment after it appears, and a key or tap before that would post it without htmx."""
    page.wait_for_function(
        "() => document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')"
        " === null",
        timeout=WAIT_MS,
    )


NEXT_GUARD_S = 1.0
"""The projector ignores a → within a second of the last one (static/js/projector.js)."""
_last_next = [float("-inf")]


def press(projector: Any, key: str) -> None:
    """A key on the projector, as a presenter presses it: → no sooner than a second after the
    last →, which the projector would take for a bounce and ignore."""
    settled(projector)
    if key == "ArrowRight":
        time.sleep(max(0.0, _last_next[0] + NEXT_GUARD_S + 0.05 - time.monotonic()))
        _last_next[0] = time.monotonic()
    projector.keyboard.press(key)


def question_on(phone: Phone, phase: str) -> None:
    """The phone shows the question of ``phase``, live (the phone is never reloaded here)."""
    script = """(phase) => {
        const panel = document.querySelector('#aud-panel');
        return panel !== null && panel.dataset.open === phase + '@'
            && document.querySelector('#aud-q-' + phase) !== null;
    }"""
    try:
        phone.page.wait_for_function(script, arg=phase, timeout=WAIT_MS)
    except Exception as exc:
        raise AssertionError(f"phone {phone.name} does not show the {phase!r} question") from exc


def answer(phone: Phone, phase: str, option: str) -> None:
    question_on(phone, phase)
    settled(phone.page)
    phone.page.locator(f"#aud-opt-{phase}-{option}").click()
    try:
        phone.page.wait_for_function(
            """(id) => {
                const chosen = document.querySelectorAll('.aud-option--chosen');
                return chosen.length === 1 && chosen[0].id === id
                    && document.querySelector('#aud-panel .aud-msg--ok') !== null;
            }""",
            arg=f"aud-opt-{phase}-{option}",
            timeout=WAIT_MS,
        )
    except Exception as exc:
        raise AssertionError(f"phone {phone.name}: {phase}={option} is not marked") from exc


def revealed_on(phone: Phone, phase: str, expected: str) -> None:
    wait_contains(
        phone.page,
        f"#revealed-results [data-phase={phase}]",
        expected,
        f"phone {phone.name}: the revealed {phase!r} chart",
    )


def punchline(phone: Phone, newest: str, order: list[str]) -> None:
    """The phone shows ``newest`` first among its revealed results, in ``order`` (the gap and
    the movement by their key, the questions by their phase), without a reload."""
    script = """([newest, order]) => {
        const items = [...document.querySelectorAll(
            '#revealed-results [data-key], #revealed-results details[data-phase]')]
            .map(el => el.dataset.key || el.dataset.phase);
        return items[0] === newest && items.join() === order.join();
    }"""
    try:
        phone.page.wait_for_function(script, arg=[newest, order], timeout=WAIT_MS)
    except Exception as exc:
        seen = phone.page.evaluate(
            """() => [...document.querySelectorAll(
                '#revealed-results [data-key], #revealed-results details[data-phase]')]
                .map(el => el.dataset.key || el.dataset.phase)"""
        )
        raise AssertionError(f"phone {phone.name}: revealed results in order {seen}") from exc


def test_a_talk_with_a_projector_and_five_phones(live_server: LiveServer, open_page: Any) -> None:
    # ------------------------------------------------------------ the presenter logs in
    control = open_page("laptop", viewport=(1440, 900))
    control.goto(f"{live_server.url}/presenter")
    assert "/presenter/login" in control.url
    control.locator("#token").fill(ADMIN_TOKEN)
    control.locator(".login__form button[type=submit]").click()
    control.wait_for_url(f"{live_server.url}/presenter")

    form = control.locator("form.new-session:has(input[name=talk][value=emergence])")
    form.locator("input[name=venue]").fill("Copenhagen")
    form.locator("select[name=language]").select_option("en")
    form.locator("button[type=submit]").click()
    control.wait_for_url("**/presenter/sessions/*")
    code = control.url.rstrip("/").rsplit("/", 1)[-1]
    assert control.locator(".join__code").inner_text().strip() == code
    join_url = control.locator(".join__url a").get_attribute("href")
    assert join_url == f"{live_server.url}/j/{code}"

    with control.context.expect_page() as opened:
        control.locator("a[data-key=p]").click()
    projector = opened.value
    projector.set_viewport_size({"width": 1920, "height": 1080})
    projector.wait_for_load_state()
    assert projector.url.endswith(f"/presenter/sessions/{code}/projector")
    assert projector.locator(".qr-block__join").inner_text().strip() == code
    # A marker that a reload would wipe: the control page's counts must arrive without one.
    control.evaluate("window.__sameControl = true")

    # ------------------------------------------------------------ four phones join
    phones: dict[str, Phone] = {}
    for name, locale in (("A", "en-GB"), ("B", "en-US"), ("C", "en-GB"), ("D", "zh-CN")):
        page = open_page(f"phone {name}", viewport=(390, 844), locale=locale)
        # The session's language (English) is the phones' default: D chooses Chinese.
        page.goto(join_url + ("?lang=zh-Hans" if locale == "zh-CN" else ""))
        page.wait_for_selector(".aud-wait")
        phones[name] = Phone(name, page)
    assert phones["D"].page.locator("html").get_attribute("lang") == "zh-Hans"
    assert phones["A"].page.locator("html").get_attribute("lang") == "en"
    wait_text(control, ".people__live", "Phones connected now: 4", "phones on the control page")
    # Opening the page registers nobody: a phone counts once it answers.
    wait_text(control, ".people__joined", "0 answered", "participants on the control page")

    # ------------------------------------------------------------ phase 1: definition
    press(projector, "ArrowRight")
    stage_shows(projector, "definition")
    projector_count(projector, "definition", 0, "projector count before any answer")
    for name in ("A", "B", "C"):
        answer(phones[name], "definition", ANSWERS[name][0] or "")
    projector_count(projector, "definition", 3, "projector count after three answers")
    # The Chinese phone sees the question and the options in Chinese.
    question_on(phones["D"], "definition")
    assert "定义" in phones["D"].page.locator("#aud-q-definition").inner_text()

    press(projector, "r")
    stage_shows(projector, "definition", revealed=True)
    wait_contains(projector, "#chart-definition figcaption", "n = 3", "projector chart")
    for phone in phones.values():
        revealed_on(phone, "definition", "n = 3")
    # A fourth answer after the reveal: the chart follows on the projector and the phones.
    answer(phones["D"], "definition", "d3")
    wait_contains(projector, "#chart-definition figcaption", "n = 4", "projector chart update")
    assert projector.evaluate("window.__sinceStage === true"), "the chart came with a reload"
    wait_contains(projector, "#chart-definition .chart-sentence", "50%", "projector sentence")
    revealed_on(phones["A"], "definition", "n = 4")
    revealed_on(phones["D"], "definition", "n = 4")
    # 2 of 4 is half, not most: the most common answer, in Chinese on the Chinese phone
    revealed_on(phones["D"], "definition", "最常见的回答是")
    revealed_on(phones["A"], "definition", "The most common answer was")
    sentence = projector.locator("#chart-definition .chart-sentence").inner_text()
    assert "50% of 4 answers, not a majority" in sentence and "Most" not in sentence

    # ------------------------------------------------------------ phase 2: belief
    press(projector, "ArrowRight")
    stage_shows(projector, "belief")
    answer(phones["A"], "belief", "agree")
    answer(phones["B"], "belief", "agree")
    projector_count(projector, "belief", 2, "projector count for belief")
    answer(phones["B"], "belief", "disagree")  # changed: still one answer
    answer(phones["C"], "belief", "unsure")
    answer(phones["D"], "belief", "unsure")
    projector_count(projector, "belief", 4, "projector count after a changed answer")

    # C reloads mid-phase: same participant, its answer still marked.
    phones["C"].page.reload()
    question_on(phones["C"], "belief")
    marked = (
        phones["C"].page.locator(".aud-option--chosen").evaluate_all("els => els.map(el => el.id)")
    )
    assert marked == ["aud-opt-belief-unsure"], f"after a reload phone C shows {marked} chosen"

    # E joins late, in Chinese, straight into the open question.
    late = open_page("phone E", viewport=(390, 844), locale="zh-CN")
    late.goto(join_url + "?lang=zh-Hans")
    phones["E"] = Phone("E", late)
    answer(phones["E"], "belief", "unsure")
    projector_count(projector, "belief", 5, "projector count with the late phone")
    wait_text(control, ".people__joined", "5 answered", "after a reload and a late join")

    press(projector, "r")
    stage_shows(projector, "belief", revealed=True)
    wait_contains(projector, "#chart-belief .chart-sentence", "60%", "belief sentence")
    revealed_on(phones["A"], "belief", "n = 5")
    revealed_on(phones["E"], "belief", "n = 5")

    # ------------------------------------------------------------ phase 3: field
    press(projector, "ArrowRight")
    stage_shows(projector, "field")
    for name in ("A", "B", "C", "D", "E"):
        answer(phones[name], "field", ANSWERS[name][2])
    projector_count(projector, "field", 5, "projector count for field")
    wait_text(control, "#n-field", "5", "control page count for field")
    press(projector, "r")
    stage_shows(projector, "field", revealed=True)
    # Revealed while voting is open: the gap waits for the close (a linked figure redrawn after
    # each vote would give each voter's pair of answers away), on the projector and the preview
    wait_contains(projector, "[data-waits=gap_waits]", "shown when voting closes", "gap waits")
    control.wait_for_selector(".preview__slide[data-shows=gap_waits]", timeout=WAIT_MS)
    assert projector.locator("svg.chart--gap").count() == 0
    # C closes voting: the belief gap slide, 20% vs 80%, in plain words
    press(projector, "c")
    wait_contains(projector, ".chart-slot--gap .chart-sentence", "20%", "gap slide")
    sentence = projector.locator(".chart-slot--gap .chart-sentence").inner_text()
    assert "80%" in sentence and "[" not in sentence
    shown = projector.locator(".chart-slot--gap svg.chart--gap >> visible=true")
    assert "80%" in (shown.text_content() or "")
    # one plain sentence of at most two lines at 1920x1080, for the back row
    lines = projector.evaluate(
        """() => { const range = document.createRange();
            range.selectNodeContents(document.querySelector('.chart-slot--gap .chart-sentence'));
            return new Set([...range.getClientRects()].map(r => Math.round(r.bottom))).size; }"""
    )
    assert lines <= 2, f"the gap slide's sentence takes {lines} lines"
    # the control page previewed the slide Reveal put on the projector: the gap, not bars
    control.wait_for_selector(".preview__slide[data-phase=field][data-shows=gap]", timeout=WAIT_MS)
    revealed_on(phones["B"], "field", "80%")

    # The field question closed and revealed: every phone now holds the punchline, the gap,
    # above the questions, with the projector's sentence
    for phone in phones.values():
        punchline(phone, "gap", ["gap", "field", "belief", "definition"])
    gap_on_phone = phones["A"].page.locator("#revealed-results [data-key=gap] .chart-sentence")
    assert gap_on_phone.inner_text().strip() == sentence.strip()

    # ------------------------------------------------------------ phase 4: revote
    press(projector, "ArrowRight")
    stage_shows(projector, "revote")
    for name in ("A", "B", "C", "D", "E"):
        answer(phones[name], "revote", ANSWERS[name][3])
    projector_count(projector, "revote", 5, "projector count for the revote")
    press(projector, "r")
    stage_shows(projector, "revote", revealed=True)
    wait_contains(projector, "[data-waits=shift_waits]", "shown when voting closes", "shift")
    revealed_on(phones["C"], "revote", "n = 5")
    press(projector, "c")  # closes the last phase: how views moved
    wait_contains(projector, "#stage .reveal__status", "Voting is closed.", "the last close")
    # 4 of 5 changed, but every cell is under 5: how many changed would give cells away, so
    # the slide draws the before and after totals, and no grid of hidden cells
    wait_contains(
        projector, ".chart-slot--shift", "of the 5 people who answered twice", "shift slide"
    )
    assert "changed" not in projector.locator(".chart-slot--shift .chart-sentence").inner_text()
    for phone in phones.values():
        phone.page.wait_for_selector(".aud-wait", timeout=WAIT_MS)
    # the revote closed: how views moved comes first on every phone, above the revote it pairs
    for phone in phones.values():
        punchline(phone, "shift", ["shift", "revote", "gap", "field", "belief", "definition"])

    assert control.evaluate("window.__sameControl === true"), "the control page was reloaded"

    # ------------------------------------------------------------ results page
    results = control
    results.goto(f"{live_server.url}/presenter/sessions/{code}/results")
    check_results_page(results)

    # ------------------------------------------------------------ CSV export
    with results.expect_download() as download_info:
        results.locator(f".exports a[href='/api/v1/sessions/{code}/export.csv']").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    with open(download.path(), encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    check_export(rows, code)


def _pct(x: float) -> str:
    return f"{100 * x:.0f}"


def check_results_page(page: Any) -> None:
    """What the results page shows for these five people: the gap and the shift with the numbers
    the answers imply (intervals and the test checked against statsmodels), each question's
    shares, and cross-tabs whose cells under 5 are hidden."""
    from statsmodels.stats.proportion import proportion_confint

    text = page.locator("main").inner_text()
    assert "5 participants" in page.locator(".results__meta").inner_text()

    # The gap: 1 of 5 agree, 4 of 5 think most of the field agrees; the same five people, so
    # the headline is paired (a = 1 both, b = 3 only think the field does, d = 1 neither).
    from app import stats

    gap = page.locator(".chart-block--gap")
    assert gap.locator(".chart-sentence").inner_text().strip() == (
        "20% [4, 62] of this room answered “Yes, they do”, too close to half to call a majority"
        " or not; 80% [38, 96] think most of the field does."
    )
    assert proportion_confint(1, 5, method="wilson")[0] * 100 == pytest.approx(3.6, abs=0.1)
    # whether the one person who agrees thinks the field does is a hidden cell (a = 1, or a = 0
    # with b = 4, c = 1, d = 0, fits the totals as well): a paired interval would tell it, so
    # the headline is the independent comparison of the two questions' totals, labelled why
    independent = stats.newcombe_diff(4, 5, 1, 5).ci95
    found = re.search(r"minus share who do: \+(\d+) points, 95% CI \[(-?\d+), (-?\d+)\]", text)
    assert found, text
    assert int(found[1]) == 60
    assert abs(int(found[2]) - 100 * independent[0]) <= 0.5
    assert abs(int(found[3]) - 100 * independent[1]) <= 0.5
    said = " ".join(text.split())
    assert "a paired interval here would give back a cell of fewer than 5 people" in said
    assert "widened" not in said

    # The shift: 4 of the 5 pairs changed; Stuart-Maxwell on the 3x3 table.
    shift = page.locator(".chart-block--shift")
    # the flow chart says what its two columns hold, the matrix why it cannot say who changed
    assert shift.locator(".chart-figure--shift .chart-sentence").inner_text().strip() == (
        "Before → after, of the 5 people who answered twice: “Yes, they do” 1 → 1,"
        " “No, they don't” 1 → 3, “Unsure” 3 → 1."
    )
    assert shift.locator(".chart-figure--shift-matrix .chart-sentence").inner_text().strip() == (
        "5 people answered twice; too few in some cells to show how many changed."
    )
    # five pairs are too few for a test of net change: none is shown, and the page says why
    shift_text = " ".join(shift.inner_text().split())
    assert "p =" not in shift_text and "χ²" not in shift_text
    assert "Net change is not tested with fewer than 10 people" in shift_text

    # Each question: shares and Wilson intervals as the screen-reader rows list them.
    labels = {
        "definition": {
            "d1": "A property the model shows although it was not explicitly trained for it"
            " (Bommasani et al. 2021)",
            "d3": "A property absent in smaller models and present in larger ones"
            " (Wei et al. 2022)",
            "d4": "Absent in smaller models, then a sharp, unpredictable jump at a scale nobody"
            " could foresee (Schaeffer et al. 2023)",
        },
        "belief": {"agree": "Yes, they do", "disagree": "No, they don't", "unsure": "Unsure"},
        "field": {
            "agree": "Most think LLMs have emergent properties",
            "disagree": "Most think they don't",
            "unsure": "Most are unsure",
        },
    }
    labels["revote"] = labels["belief"]
    for index, phase in enumerate(PHASES):
        chosen = [answers[index] for answers in ANSWERS.values() if answers[index] is not None]
        n = len(chosen)
        rows = page.locator(f".chart-figure--phase-{phase} ul li").all_inner_texts()
        for option, label in labels[phase].items():
            count = chosen.count(option)
            low, high = proportion_confint(count, n, method="wilson")
            row = f"{label}: {_pct(count / n)}% ({count}) [{_pct(low)}, {_pct(high)}]"
            assert row in rows, (phase, row, rows)
    assert "50% of 4 answers" in page.locator(".chart-figure--phase-definition").inner_text()

    # Cross-tabs: with five people every non-empty cell is under 5, so none shows its count; the
    # row totals are the phases' own totals, shown as they are (the bar charts show them too).
    rows = page.locator(".crosstab tbody tr")
    assert rows.count() == 3 + 5  # stance x perceived, definition x stance
    totals, cells = [], []
    for k in range(rows.count()):
        texts = [t.strip() for t in rows.nth(k).locator("td").all_inner_texts()]
        cells += texts[:-1]
        totals.append(texts[-1])
    assert {cell.split(" ")[0] for cell in cells} <= {"0", "–"} and "–" in cells, cells
    assert totals == ["1", "1", "3", "2", "0", "1", "1", "0"], totals


def check_export(rows: list[dict[str, str]], code: str) -> None:
    """One row per answer and no more: 4 + 5 + 5 + 5, one participant per phone (the reload and
    the changed answer added none), each phone's answers linked under its one id."""
    assert len(rows) == 19
    assert {row["session"] for row in rows} == {code}
    assert {row["talk"] for row in rows} == {"emergence"}
    assert {row["venue"] for row in rows} == {"Copenhagen"}
    assert Counter(row["phase"] for row in rows) == {
        "definition": 4,
        "belief": 5,
        "field": 5,
        "revote": 5,
    }
    by_participant: dict[str, dict[str, str]] = {}
    for row in rows:
        assert row["phase"] not in by_participant.get(row["participant"], {})
        assert row["value"] == ""
        assert row["answered_at"].endswith(("Z", "+00:00"))
        by_participant.setdefault(row["participant"], {})[row["phase"]] = row["choice"]
    assert len(by_participant) == 5
    sequences = Counter(
        tuple(answers.get(phase) for phase in PHASES) for answers in by_participant.values()
    )
    assert sequences == Counter(ANSWERS.values())
