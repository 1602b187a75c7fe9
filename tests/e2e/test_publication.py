"""Results that outlive the talk, in real browsers: the presenter locks a prediction on the
control page, a small room answers, the presenter publishes the results; a reader who is not
logged in opens the public page (the prediction against the result is there), the presenter
withdraws it, and the reader finds the dated withdrawal page."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx

from tests.e2e.conftest import LiveServer, PageProblems
from tests.e2e.test_accessibility import assert_accessible, login

WAIT_MS = 10_000
ROOM = [("agree", "agree"), ("agree", "agree"), ("unsure", "agree"), ("disagree", "agree")]
ROOM += [("unsure", "disagree")] * 2


def api(server: LiveServer, method: str, path: str, **kwargs: Any) -> httpx.Response:
    response = httpx.request(
        method, f"{server.url}{path}", headers=server.auth, timeout=10, **kwargs
    )
    assert response.is_success, response.text
    return response


def answer(server: LiveServer, code: str) -> None:
    """Six phones answer the belief and field questions."""
    phones = [httpx.Client(base_url=server.url, timeout=10) for _ in ROOM]
    try:
        for index, phase in enumerate(("belief", "field")):
            api(server, "POST", f"/api/v1/sessions/{code}/phases/{phase}/open")
            for phone, answers in zip(phones, ROOM, strict=True):
                voted = phone.post(
                    f"/api/v1/sessions/{code}/votes",
                    json={"phase": phase, "choice": answers[index]},
                )
                assert voted.status_code == 200, voted.text
            api(server, "POST", f"/api/v1/sessions/{code}/phases/{phase}/close")
    finally:
        for phone in phones:
            phone.close()


def test_lock_a_prediction_publish_read_logged_out_and_withdraw(
    live_server: LiveServer, open_page: Any, problems: PageProblems
) -> None:
    code = api(
        live_server, "POST", "/api/v1/sessions", json={"talk": "emergence", "venue": "Bergen"}
    ).json()["code"]
    laptop = open_page("laptop", viewport=(1440, 900))
    login(laptop, live_server)
    laptop.goto(f"{live_server.url}/presenter/sessions/{code}")
    assert_accessible(laptop, "control page with the prediction form")
    box = laptop.locator("#prediction")
    box.locator("input[name=own_below]").fill("50")
    box.locator("input[name=perceived_above]").fill("60")
    box.locator("textarea[name=text]").fill("The room underestimates itself.")
    box.locator("[data-action=lock-prediction]").click()
    laptop.wait_for_selector("#prediction .prediction__hash code", timeout=WAIT_MS)
    digest = laptop.locator("#prediction .prediction__hash code").first.inner_text()
    assert len(digest) == 64
    assert laptop.locator("#prediction [data-action=lock-prediction]").count() == 0

    answer(live_server, code)  # own 2/6 = 33%, perceived 4/6 = 67%: both claims hold

    laptop.goto(f"{live_server.url}/presenter/sessions/{code}/results")
    laptop.locator("#publication [data-action=publish]").click()
    link = laptop.locator("#publication [data-public-url]")
    link.wait_for(timeout=WAIT_MS)
    address = link.inner_text()

    reader = open_page("reader", viewport=(390, 844))
    shown = reader.goto(address)
    assert shown is not None and shown.status == 200
    assert "Bergen" in reader.locator("h1 + .results__meta").inner_text()
    checks = reader.locator(".prediction__checks")
    assert checks.locator(".prediction__verdict--held").count() == 2
    assert digest in reader.content()
    assert reader.locator("a[href*='/presenter/']").count() == 0
    assert_accessible(reader, "public results page")

    laptop.locator("#publication [data-action=withdraw]").click()
    laptop.locator("#publication [data-action=publish]").wait_for(timeout=WAIT_MS)

    gone = reader.goto(address)
    assert gone is not None and gone.status == 410
    assert "withdrew these results on" in reader.locator(".public__withdrawn").inner_text()
    assert "Bergen" not in reader.content()
    # the browser reports the page's own 410 as a failed load: that one was expected
    expected = f"status of 410 (Gone) ({address})"
    problems.errors[:] = [e for e in problems.errors if not e.endswith(expected)]
