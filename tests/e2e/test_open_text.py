"""Open text in real Chromium, the room's whole loop: a phone types an answer and sees the
characters left counted as it types, sends it; it appears live in the control page's queue,
the presenter presses A, and the projector's word cloud shows its words. The phone's question
and the queue pass axe's serious and critical checks."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest

from tests.e2e.conftest import PageProblems, axe_violations
from tests.e2e.test_projector_charts import presenter_page
from tests.liveserver import LiveServer

WAIT_MS = 10_000

TALK = {
    "slug": "e2e-why",
    "languages": ["en", "zh-Hans"],
    "title": {"en": "Why", "zh-Hans": "为什么"},
    "phases": [
        {
            "id": "why",
            "kind": "choice",
            "answer": "text",
            "max_chars": 20,
            "question": {"en": "Why do you think so?", "zh-Hans": "你为什么这样想？"},
        }
    ],
}


@pytest.fixture
def live_server(module_live_server: LiveServer) -> LiveServer:
    return module_live_server


def test_a_phone_answer_is_approved_with_a_key_and_reaches_the_projectors_cloud(
    live_server: LiveServer, open_page: Any, problems: PageProblems
) -> None:
    url, auth = live_server.url, live_server.auth
    httpx.post(f"{url}/api/v1/talks", json=TALK, headers=auth, timeout=10).raise_for_status()
    made = httpx.post(
        f"{url}/api/v1/sessions",
        json={"talk": "e2e-why", "venue": "Lyon"},
        headers=auth,
        timeout=10,
    )
    code = made.json()["code"]
    for action in ("open", "reveal"):
        httpx.post(
            f"{url}/api/v1/sessions/{code}/phases/why/{action}", headers=auth, timeout=10
        ).raise_for_status()

    control = presenter_page(open_page, live_server, f"/presenter/sessions/{code}", (1440, 900))
    control.locator("#queue .queue__empty").wait_for(timeout=WAIT_MS)
    projector = presenter_page(
        open_page, live_server, f"/presenter/sessions/{code}/projector", (1280, 720)
    )
    projector.locator(".stage--revealed .chart-variant--slide svg").first.wait_for(timeout=WAIT_MS)

    phone = open_page("phone", viewport=(390, 844))
    phone.goto(f"{url}/j/{code}")
    field = phone.locator("#aud-text-why-0")
    field.fill("涌现  emergent 👩‍💻")  # 13 characters as a reader counts them
    count = phone.locator("[data-text-count]")
    count.filter(has_text="7 characters left").wait_for(timeout=WAIT_MS)
    field.fill("涌现 emergent abilities, truly")
    count.filter(has_text="8 characters too many").wait_for(timeout=WAIT_MS)
    field.fill("涌现 emergent")
    phone.locator("#aud-send-why-0").click()
    phone.locator("#aud-panel .aud-msg--ok").wait_for(timeout=WAIT_MS)
    assert axe_violations(phone) == [], "the phone's text question"

    item = control.locator("#queue [data-queue-item]").filter(has_text="涌现 emergent")
    item.wait_for(timeout=WAIT_MS)  # live: fetched again on the presenter's "counts" event
    assert axe_violations(control) == [], "the control page with its queue"
    control.locator("body").press("a")
    control.locator("#queue .queue__empty").wait_for(timeout=WAIT_MS)

    cloud = projector.locator(".chart-variant--slide svg text", has_text="emergent")
    cloud.first.wait_for(timeout=WAIT_MS)
    assert projector.locator(".chart-variant--slide svg text", has_text="涌现").count() >= 1
