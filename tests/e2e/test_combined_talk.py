"""A talk with a stance, an open "why?" and a ranking, from the editor to the projector, in real
Chromium: the presenter writes it from the template (the one-click "why?", a ranking added and
named through the menus, a blocked word for the whole talk) and starts a session; a phone in
English and one in Chinese (its language chosen with the phone's switch) answer each phase; a
co-host's phone moderates through the moderator link; the projector shows the cloud of
the answers shown, live, never the hidden or blocked ones, then the ranking's result as it comes
in. On the way, the phone's count of characters left is checked against the server's rule."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx

from app.formats import text_rules
from tests.e2e.conftest import ADMIN_TOKEN, PageProblems
from tests.liveserver import LiveServer

WAIT_MS = 15_000
SLUG = "e2e-combined"
RANKED = {  # option id -> labels, as the presenter types them
    "a": ("Better evaluations", "更好的评测"),
    "b": ("A theory of scaling", "规模理论"),
    "option1": ("More data", "更多数据"),
}
COUNTED = [
    "Yes!!!",
    "!!!!!!!!!!!!yes",
    "  (yes)  ",
    "GPT (4)",
    "“涌现”。",
    "ｅｍｅｒｇｅｎｔ！！",
    "Z\u0301\u0302\u0303\u0304alg\u0300o",
    "涌现  emergent 👩\u200d💻",
    "¿Qué?",
    "U.S.A.",
    "«oui»",
    "a\u3000b  c",
]
"""Answers whose count a looser rule gets wrong: edge punctuation, brackets and quotes,
full-width letters, piled accents, joined emoji, odd spaces."""


def left(text: str, limit: int = 40) -> int:
    """What the server leaves of ``limit`` for ``text`` (app.formats.text_rules)."""
    return limit - text_rules.length(text_rules.display(text))


def redraw(laptop: Any, act: Any) -> None:
    """Do ``act`` (a button, a menu) and wait until the editor's form is drawn again."""
    laptop.evaluate("() => { document.getElementById('ed-form').dataset.stale = '1'; }")
    act()
    laptop.wait_for_function(
        "() => { const f = document.getElementById('ed-form'); return f && !f.dataset.stale; }",
        timeout=WAIT_MS,
    )


def write_the_talk(laptop: Any, server: LiveServer) -> None:
    laptop.goto(f"{server.url}/presenter/talks/new/edit?slug={SLUG}")
    button = "button[name=op][value='{}']"
    redraw(laptop, lambda: laptop.locator(button.format("add_phase:why")).click())
    # the "why?" comes right after the stance, written in both languages
    why = laptop.locator("textarea[name='phases.2.question.zh-Hans']")
    assert why.input_value() == "你为什么这样想？写几个词。"
    laptop.locator("input[name='phases.2.id']").fill("why")
    laptop.locator("input[name='phases.2.answers_per_phone']").fill("2")
    laptop.locator("textarea[name='blocklist.words']").fill("crypto")  # the talk's own word
    redraw(laptop, lambda: laptop.locator(button.format("add_phase:choice")).click())
    answer = "select[name='phases.5.answer']"
    redraw(laptop, lambda: laptop.locator(answer).select_option("ranking"))
    redraw(laptop, lambda: laptop.locator(button.format("add_option:5")).click())
    laptop.locator("input[name='phases.5.id']").fill("priorities")
    laptop.locator("textarea[name='phases.5.question.en']").fill("What should come first?")
    laptop.locator("textarea[name='phases.5.question.zh-Hans']").fill("什么应该优先？")
    for j, (en, zh) in enumerate(RANKED.values()):
        laptop.locator(f"textarea[name='phases.5.options.{j}.label.en']").fill(en)
        laptop.locator(f"textarea[name='phases.5.options.{j}.label.zh-Hans']").fill(zh)
    laptop.wait_for_function(
        "() => document.querySelector('#ed-summary').textContent.includes('No problems')",
        timeout=WAIT_MS,
    )
    laptop.locator("button[name=op][value=save]").click()
    laptop.wait_for_url(f"{server.url}/presenter/talks/{SLUG}/edit?saved=1")


def phase(server: LiveServer, code: str, key: str, *actions: str) -> None:
    for action in actions:
        response = httpx.post(
            f"{server.url}/api/v1/sessions/{code}/phases/{key}/{action}",
            headers=server.auth,
            timeout=10,
        )
        assert response.status_code == 200, response.text


def answer_text(phone: Any, slot: int, text: str) -> None:
    """Send an answer; the panel comes back with it in its field, as the server keeps it."""
    phone.locator(f"#aud-text-why-{slot}").fill(text)
    phone.locator(f"#aud-send-why-{slot}").click()
    kept = text_rules.display(text)  # the field's text as the server draws it, not as typed
    phone.locator(f"#aud-text-why-{slot}", has_text=kept).wait_for(timeout=WAIT_MS)


def test_a_talk_written_in_the_editor_runs_with_phones_a_moderator_and_the_projector(
    live_server: LiveServer, open_page: Any, problems: PageProblems
) -> None:
    server = live_server
    laptop = open_page("laptop", viewport=(1440, 900))
    laptop.goto(f"{server.url}/presenter")
    laptop.locator("#token").fill(ADMIN_TOKEN)
    laptop.locator(".login__form button[type=submit]").click()
    laptop.wait_for_url(f"{server.url}/presenter")
    write_the_talk(laptop, server)

    laptop.goto(f"{server.url}/presenter")
    form = laptop.locator(f"form.new-session:has(input[name=talk][value={SLUG}])")
    form.locator("input[name=venue]").fill("Hall B")
    form.locator("button[type=submit]").click()
    laptop.wait_for_url("**/presenter/sessions/*")
    code = laptop.url.rstrip("/").rsplit("/", 1)[-1]
    laptop.locator("[data-action=moderator-issue]").click()
    moderator_link = laptop.locator("input[data-token=moderator]").input_value()

    projector = laptop.context.new_page()  # the laptop's second screen
    problems.watch(projector, "projector")
    projector.set_viewport_size({"width": 1920, "height": 1080})
    projector.goto(f"{server.url}/presenter/sessions/{code}/projector")

    english = open_page("English phone", locale="en-GB")
    english.goto(f"{server.url}/j/{code}")
    # The session speaks English; a phone set to Chinese is offered its language and takes it.
    chinese = open_page("Chinese phone", locale="zh-CN")
    chinese.goto(f"{server.url}/j/{code}")
    chinese.locator(".aud-lang__link[hreflang=zh-Hans]").click()
    chinese.wait_for_url("**lang=zh-Hans*")

    # ------------------------------------------------------------ the stance
    phase(server, code, "belief", "open")
    english.locator("#aud-q-belief", has_text="Do you agree with the claim?").wait_for(
        timeout=WAIT_MS
    )
    chinese.locator("#aud-q-belief", has_text="你同意这个观点吗？").wait_for(timeout=WAIT_MS)
    english.locator("#aud-opt-belief-agree").click()
    chinese.locator("#aud-opt-belief-disagree").click()
    for phone in (english, chinese):
        phone.locator("#aud-panel .aud-msg--ok").wait_for(timeout=WAIT_MS)

    # ------------------------------------------------------------ the open "why?"
    phase(server, code, "belief", "close")
    phase(server, code, "why", "open", "reveal")
    field = english.locator("#aud-text-why-0")
    field.wait_for(timeout=WAIT_MS)
    # The phone counts as the server does: the rule itself on a dozen answers, and the count
    # the phone shows under the field.
    counted = english.evaluate("(cases) => cases.map(c => 40 - BeliefgapText.length(c))", COUNTED)
    assert counted == [left(c) for c in COUNTED]
    count = english.locator("#aud-text-count-why-0")
    for typed in ("Yes!!!", "ｅｍｅｒｇｅｎｔ！！"):
        field.fill(typed)
        count.filter(has_text=f"{left(typed)} characters left").wait_for(timeout=WAIT_MS)
    answer_text(english, 0, "Emergent abilities!!!")
    answer_text(english, 1, "stochastic parrots")
    chinese.locator("#aud-text-why-0").wait_for(timeout=WAIT_MS)
    assert "个字" in chinese.locator("#aud-text-count-why-0").inner_text()
    answer_text(chinese, 0, "大语言模型有涌现能力")
    answer_text(chinese, 1, "crypto 是骗局")  # the talk's blocked word: hidden at once

    co_host = open_page("moderator's phone")
    co_host.goto(moderator_link)
    queue = co_host.locator("#queue")
    item = queue.locator("[data-queue-item]")
    item.filter(has_text="stochastic parrots").wait_for(timeout=WAIT_MS)
    assert item.count() == 3 and "crypto" not in queue.inner_text()
    for text, action in (
        ("Emergent abilities", "shown"),
        ("stochastic parrots", "hidden"),
        ("大语言模型有涌现能力", "shown"),
    ):
        item.filter(has_text=text).locator(f"[data-queue-action={action}]").click()
        item.filter(has_text=text).wait_for(state="detached", timeout=WAIT_MS)
    queue.locator(".queue__empty").wait_for(timeout=WAIT_MS)

    cloud = projector.locator(".stage--revealed .chart-variant--slide svg")
    for word in ("Emergent", "abilities", "大语言模型", "涌现"):
        cloud.locator("text", has_text=word).first.wait_for(timeout=WAIT_MS)
    # a phone sees its own answers in its fields, nobody else's; the projector none of these
    for page, hidden in (
        (projector, ("stochastic", "parrots", "crypto", "骗局")),
        (english, ("crypto", "骗局")),
        (chinese, ("stochastic", "parrots")),
    ):
        html = page.content()
        assert not [word for word in hidden if word in html]

    # ------------------------------------------------------------ the ranking
    phase(server, code, "why", "close")
    phase(server, code, "priorities", "open", "reveal")
    english.locator("#aud-q-priorities", has_text="What should come first?").wait_for(
        timeout=WAIT_MS
    )
    chinese.locator("#aud-q-priorities", has_text="什么应该优先？").wait_for(timeout=WAIT_MS)
    more_data = english.locator("[data-rank-item=option1]")
    more_data.locator("[data-rank-up]").click()
    more_data.locator("[data-rank-up]").click()  # ↑ ↑: first
    assert "More data" in english.locator("[data-rank-item]").first.inner_text()
    english.locator("#aud-send-priorities").click()
    chinese.locator("select[name='rank.option1']").select_option("1")  # its place menu
    chinese.locator("#aud-send-priorities").click()
    for phone in (english, chinese):
        phone.locator("#aud-panel .aud-msg--ok").wait_for(timeout=WAIT_MS)
    # the chart on screen: its narrower variant, beside the QR code while the ranking is open
    chart = projector.locator(".stage--revealed svg.chart:visible")
    chart.locator("text", has_text="1. More data").first.wait_for(timeout=WAIT_MS)
    chart.locator("text", has_text="2. Better evaluations").first.wait_for(timeout=WAIT_MS)
