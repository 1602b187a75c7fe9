"""Column headings wrap only between words, in both languages: "Participa / nts" stood over the
dashboard's sessions and tables broke headings wherever the column ended. A word that the
browser set on two lines has boxes on two lines; each word of each heading must have one."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest

from tests.e2e.conftest import ADMIN_TOKEN
from tests.e2e.test_phone_live import act, new_session
from tests.liveserver import LiveServer

SPLIT_WORDS = """([lang, selector]) => {
  // The browser's own word segmenter: Chinese has no spaces between its words.
  const segmenter = new Intl.Segmenter(lang, { granularity: "word" });
  const split = [];
  for (const th of document.querySelectorAll(selector)) {
    const walker = document.createTreeWalker(th, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const word of segmenter.segment(node.data)) {
        if (!word.isWordLike) continue;
        const range = document.createRange();
        range.setStart(node, word.index);
        range.setEnd(node, word.index + word.segment.length);
        const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
        if (lines.size > 1) split.push(word.segment);
      }
    }
  }
  return split;
}"""
SELECTOR = {"en": "th", "zh-Hans": "th[scope=col]"}
"""Every heading's words in English; in Chinese the columns' (a row's heading may be a whole
definition, which breaks between any two characters as Chinese text does)."""


@pytest.fixture
def live_server(module_live_server: LiveServer) -> LiveServer:
    """One server for this module's tests: each works in a session of its own."""
    return module_live_server


def vote(server: LiveServer, code: str, phase: str, choice: str) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as phone:  # a phone of its own
        phone.post(f"/api/v1/sessions/{code}/votes", json={"phase": phase, "choice": choice})


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_no_heading_breaks_inside_a_word(
    live_server: LiveServer, open_page: Any, lang: str
) -> None:
    code = new_session(live_server)
    for phase in ("belief", "field"):
        act(live_server, code, phase, "open")
    for n in range(12):
        vote(live_server, code, "belief", ("agree", "disagree", "unsure")[n % 3])
        vote(live_server, code, "field", ("agree", "unsure")[n % 2])
    locale = "en-GB" if lang == "en" else "zh-CN"
    for width, height in ((1440, 900), (1000, 800), (800, 900)):
        page = open_page(f"laptop {width}", viewport=(width, height), locale=locale)
        page.goto(f"{live_server.url}/presenter/login?lang={lang}")
        page.locator("#token").fill(ADMIN_TOKEN)
        page.locator(".login__form button[type=submit]").click()
        page.wait_for_url(f"{live_server.url}/presenter")
        for url in ("/presenter", f"/presenter/sessions/{code}/results"):
            page.goto(f"{live_server.url}{url}?lang={lang}")
            assert page.locator("th").count() > 0, url
            assert page.evaluate(SPLIT_WORDS, [lang, SELECTOR[lang]]) == [], (url, width)
        page.context.close()
