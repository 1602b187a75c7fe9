"""A phone in real Chromium erases its own answers: it confirms, the answer is gone from the
room's counts, and the phone shows the question unanswered again; the privacy note opens from
the footer in both languages."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_phone_live import WAIT_MS, act, counts, new_session
from tests.liveserver import LiveServer

SHOTS = os.environ.get("BELIEFGAP_SCREENSHOTS")
"""A directory to save the screens into (for looking at them); unset, none are saved."""


@pytest.fixture
def live_server(module_live_server: LiveServer) -> LiveServer:
    """One server for this module's tests: each works in a session of its own."""
    return module_live_server


def shot(page: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def test_a_phone_erases_its_answers_and_sees_the_question_again(
    live_server: LiveServer, open_page: Any
) -> None:
    code = new_session(live_server)
    page = open_page("phone")
    page.goto(f"{live_server.url}/j/{code}")
    page.wait_for_selector(".aud-wait", timeout=WAIT_MS)
    assert page.is_hidden("[data-erase]")  # nothing to erase on the waiting screen
    act(live_server, code, "definition", "open")
    page.wait_for_selector('button[name="choice"][value="d2"]', timeout=WAIT_MS)
    assert page.is_hidden("[data-erase]")  # nor before the first answer
    page.click('button[name="choice"][value="d2"]')
    page.wait_for_selector(".aud-option--chosen", timeout=WAIT_MS)
    page.wait_for_selector("[data-erase]", state="visible", timeout=WAIT_MS)
    assert counts(live_server, code, "definition")["d2"] == 1
    shot(page, "phone-answered")
    asked: list[str] = []

    def confirm(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", confirm)
    page.click("[data-erase]")
    page.wait_for_selector("[data-erase-status]:not([hidden])", timeout=WAIT_MS)
    page.wait_for_function(
        "() => !document.querySelector('.aud-option--chosen')"
        " && !!document.querySelector('#aud-q-definition')",
        timeout=WAIT_MS,
    )
    assert asked and "cannot be undone" in asked[0]
    assert "erased" in page.inner_text("[data-erase-status]")
    assert counts(live_server, code, "definition")["d2"] == 0
    assert page.is_hidden("[data-erase]")  # erased: nothing left to erase
    shot(page, "phone-erased")
    # It can answer again.
    page.click('button[name="choice"][value="d3"]')
    page.wait_for_selector(".aud-option--chosen", timeout=WAIT_MS)
    assert counts(live_server, code, "definition")["d3"] == 1


def test_a_phone_that_cancels_keeps_its_answer(live_server: LiveServer, open_page: Any) -> None:
    code = new_session(live_server)
    act(live_server, code, "definition", "open")
    page = open_page("phone")
    page.goto(f"{live_server.url}/j/{code}")
    page.click('button[name="choice"][value="d1"]')
    page.wait_for_selector(".aud-option--chosen", timeout=WAIT_MS)
    deletes: list[str] = []
    page.on("request", lambda r: deletes.append(r.url) if r.method == "DELETE" else None)
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("[data-erase]")  # the confirm is answered within the click: htmx decides there
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => done(null)))")
    assert deletes == []
    assert counts(live_server, code, "definition")["d1"] == 1
    assert page.is_hidden("[data-erase-status]")


def test_the_privacy_note_opens_from_the_footer(live_server: LiveServer, open_page: Any) -> None:
    code = new_session(live_server)
    for locale, lang, title in (("en-GB", "en", "Privacy"), ("zh-CN", "zh-Hans", "隐私说明")):
        page = open_page(f"phone-{lang}", locale=locale)
        page.goto(f"{live_server.url}/j/{code}?lang={lang}")
        shot(page, f"phone-footer-{lang}")
        page.click(".aud-foot__link")
        page.wait_for_selector(".aud-privacy", timeout=WAIT_MS)
        assert page.inner_text("h1") == title
        shot(page, f"privacy-{lang}")
        page.click(".aud-privacy__back")
        page.wait_for_selector(".aud-wait", timeout=WAIT_MS)
