"""The 0-100 estimate on a phone in real Chromium: the slider starts in the middle, but a press on
"send" before the slider moved (or a number was typed) records nothing and says so; once it was
dragged, the number shown is the number stored. With scripts off, the plain form behaves the
same."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest

from tests.e2e.conftest import PageProblems
from tests.liveserver import LiveServer

WAIT_MS = 10_000
UNTOUCHED = "Move the slider or type a number first"


@pytest.fixture
def live_server(module_live_server: LiveServer) -> LiveServer:
    """One server for this module's tests: each works in a session of its own."""
    return module_live_server


def estimate_session(server: LiveServer) -> str:
    created = httpx.post(
        f"{server.url}/api/v1/sessions",
        json={"talk": "emergence-scale", "venue": "Porto"},
        headers=server.auth,
        timeout=10,
    )
    created.raise_for_status()
    code = str(created.json()["code"])
    httpx.post(
        f"{server.url}/api/v1/sessions/{code}/phases/field_pct/open",
        headers=server.auth,
        timeout=10,
    ).raise_for_status()
    return code


def stored(server: LiveServer, code: str) -> list[float]:
    exported = httpx.get(
        f"{server.url}/api/v1/sessions/{code}/export.json", headers=server.auth, timeout=10
    ).json()
    return [r["value"] for r in exported["responses"] if r["phase"] == "field_pct"]


def test_send_before_moving_the_slider_records_nothing_and_says_so(
    live_server: LiveServer, open_page: Any, problems: PageProblems
) -> None:
    code = estimate_session(live_server)
    phone = open_page("phone", viewport=(390, 844))
    phone.goto(f"{live_server.url}/j/{code}")
    phone.wait_for_selector("form.aud-est[data-est-ready]")
    assert phone.locator("[data-est-output]").inner_text().strip() == "?"

    phone.locator(".aud-send").click()  # straight to the big button
    phone.locator("#aud-panel .aud-msg--error").filter(has_text=UNTOUCHED).wait_for(timeout=WAIT_MS)
    assert phone.locator(".aud-est__current").count() == 0
    assert phone.locator("#aud-panel .aud-msg--ok").count() == 0
    assert stored(live_server, code) == []
    # The refusal is a 422 (the browser logs it): expected here, not a problem.
    problems.errors[:] = [e for e in problems.errors if f"/j/{code}/vote" not in e]

    # A number typed and cleared again is nothing chosen, as the server will see it.
    phone.wait_for_selector("form.aud-est[data-est-ready]")
    number = phone.locator("[data-est-number]")
    number.fill("50")
    assert phone.locator("[data-est-output]").inner_text().strip() == "50%"
    number.fill("")
    assert phone.locator("[data-est-output]").inner_text().strip() == "?"

    # Dragged with a finger's worth of pointer: the big number follows, and it is what is kept.
    slider = phone.locator("[data-est-slider]")
    box = slider.bounding_box()
    assert box is not None
    middle_y = box["y"] + box["height"] / 2
    phone.mouse.move(box["x"] + box["width"] / 2, middle_y)
    phone.mouse.down()
    phone.mouse.move(box["x"] + box["width"] * 0.2, middle_y, steps=5)
    phone.mouse.up()
    chosen = phone.locator("[data-est-number]").input_value()
    assert chosen != "" and float(chosen) < 50
    assert phone.locator("[data-est-output]").inner_text().strip() == f"{chosen}%"
    phone.locator(".aud-send").click()
    phone.locator(".aud-est__current").filter(has_text=f"{chosen}%").wait_for(timeout=WAIT_MS)
    assert phone.locator("#aud-panel .aud-msg--error").count() == 0
    assert stored(live_server, code) == [float(chosen)]


def test_without_scripts_an_untouched_form_records_nothing(
    live_server: LiveServer, browser: Any
) -> None:
    code = estimate_session(live_server)
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, java_script_enabled=False, locale="en-GB"
    )
    try:
        phone = context.new_page()
        phone.goto(f"{live_server.url}/j/{code}")
        phone.locator(".aud-send").click()
        phone.locator(".aud-msg--error").filter(has_text=UNTOUCHED).wait_for(timeout=WAIT_MS)
        assert stored(live_server, code) == []

        phone.locator(".aud-est__number").fill("50")  # 50 on purpose is an answer
        phone.locator(".aud-send").click()
        phone.locator(".aud-est__current").filter(has_text="50%").wait_for(timeout=WAIT_MS)
        assert stored(live_server, code) == [50.0]
    finally:
        context.close()
