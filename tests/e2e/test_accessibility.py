"""axe-core in real Chromium on the three screens the room sees or the presenter reads: the phone
page, the projector and the results page. No serious or critical violation is allowed."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest

from tests.e2e.conftest import ADMIN_TOKEN, LiveServer, axe_violations

WAIT_MS = 10_000

# Five people (one httpx client each: one cookie jar, one participant) so that charts, the gap
# and the shift all have something to draw.
VOTES = (
    ("d1", "agree", "agree", "unsure"),
    ("d1", "disagree", "agree", "disagree"),
    ("d4", "unsure", "agree", "disagree"),
    ("d3", "unsure", "agree", "disagree"),
    ("d1", "unsure", "disagree", "agree"),
)
PHASES = ("definition", "belief", "field", "revote")


@pytest.fixture
def live_server(module_live_server: LiveServer) -> LiveServer:
    """One server for this module's tests: each works in a session of its own."""
    return module_live_server


def _act(server: LiveServer, code: str, phase: str, action: str) -> None:
    response = httpx.post(
        f"{server.url}/api/v1/sessions/{code}/phases/{phase}/{action}",
        headers=server.auth,
        timeout=10,
    )
    assert response.status_code == 200, response.text


def run_talk(server: LiveServer, *, until: str = "revote", reveal: bool = True) -> str:
    """A session whose phases up to ``until`` were opened, answered by five people, revealed
    (when ``reveal``); ``until`` stays open."""
    created = httpx.post(
        f"{server.url}/api/v1/sessions",
        json={"talk": "emergence", "venue": "Gothenburg"},
        headers=server.auth,
        timeout=10,
    )
    assert created.status_code == 201, created.text
    code: str = created.json()["code"]
    people = [httpx.Client(base_url=server.url, timeout=10) for _ in VOTES]
    try:
        for index, phase in enumerate(PHASES):
            _act(server, code, phase, "open")
            for person, answers in zip(people, VOTES, strict=True):
                voted = person.post(
                    f"/api/v1/sessions/{code}/votes",
                    json={"phase": phase, "choice": answers[index]},
                )
                assert voted.status_code == 200, voted.text
            if reveal:
                _act(server, code, phase, "reveal")
            if phase == until:
                break
            _act(server, code, phase, "close")
    finally:
        for person in people:
            person.close()
    return code


def login(page: Any, server: LiveServer) -> None:
    page.goto(f"{server.url}/presenter/login")
    page.locator("#token").fill(ADMIN_TOKEN)
    page.locator(".login__form button[type=submit]").click()
    page.wait_for_url(f"{server.url}/presenter")


def assert_accessible(page: Any, what: str) -> None:
    violations = axe_violations(page)
    assert violations == [], f"{what}:\n" + "\n".join(violations)


@pytest.mark.parametrize("locale", ["en-GB", "zh-CN"])
def test_the_phone_page_has_no_serious_violations(
    live_server: LiveServer, open_page: Any, locale: str
) -> None:
    code = run_talk(live_server, until="field")
    phone = open_page("phone", viewport=(390, 844), locale=locale)
    chosen = "?lang=zh-Hans" if locale == "zh-CN" else ""  # the session is in English
    phone.goto(f"{live_server.url}/j/{code}{chosen}")
    phone.wait_for_selector("#aud-q-field")
    phone.wait_for_selector("#revealed-results [data-phase=belief]", timeout=WAIT_MS)
    assert_accessible(phone, f"phone page with a question and revealed results ({locale})")

    phone.locator("#aud-opt-field-agree").click()
    phone.wait_for_selector("#aud-panel .aud-msg--ok", timeout=WAIT_MS)
    assert_accessible(phone, f"phone page after an answer ({locale})")

    _act(live_server, code, "field", "close")
    phone.wait_for_selector(".aud-wait", timeout=WAIT_MS)
    assert_accessible(phone, f"phone waiting page ({locale})")


def test_the_projector_has_no_serious_violations(live_server: LiveServer, open_page: Any) -> None:
    code = run_talk(live_server, until="field", reveal=False)
    projector = open_page("projector", viewport=(1920, 1080))
    login(projector, live_server)
    projector.goto(f"{live_server.url}/presenter/sessions/{code}/projector")
    projector.wait_for_selector("#stage .stage--open")
    assert_accessible(projector, "projector, a question open with the QR code")

    projector.keyboard.press("r")
    projector.wait_for_selector("#stage .stage--revealed [data-waits=gap_waits]", timeout=WAIT_MS)
    assert_accessible(projector, "projector, revealed while open: the gap waits for the close")
    # C closes voting: the belief gap (a key within a second of another is taken, only → waits)
    projector.keyboard.press("c")
    projector.wait_for_selector("#stage .stage--revealed .chart-slot--gap", timeout=WAIT_MS)
    assert_accessible(projector, "projector, the belief gap revealed")


def test_the_results_page_has_no_serious_violations(
    live_server: LiveServer, open_page: Any
) -> None:
    code = run_talk(live_server)
    page = open_page("laptop", viewport=(1440, 900))
    login(page, live_server)
    page.goto(f"{live_server.url}/presenter/sessions/{code}/results")
    page.wait_for_selector(".chart-block--gap")
    assert_accessible(page, "results page")


def test_published_counts_are_typed_in_and_shown_with_no_serious_violations(
    live_server: LiveServer, open_page: Any
) -> None:
    """The dashboard's form for published counts, filled in by keyboard in the browser, makes
    an unlinked session whose results page says so."""
    page = open_page("laptop", viewport=(1440, 900))
    login(page, live_server)
    page.get_by_role("link", name="Add published counts").first.click()
    page.wait_for_selector(".published__form")
    assert_accessible(page, "the form for published counts")
    page.get_by_label("Venue").fill("Cardiff, show of hands")
    page.get_by_label("Source (a citation or a link)").fill("Notes of the chair, 3 May 2025")
    for field, count in (("belief.agree", 30), ("belief.unsure", 70), ("field.agree", 80)):
        page.locator(f"input[name='n.{field}']").fill(str(count))
    page.locator(".published__moves summary").click()
    page.locator("input[name='t.revote.agree.unsure']").fill("12")
    page.get_by_role("button", name="Save the counts").click()
    page.wait_for_selector(".results__published")
    assert "Notes of the chair, 3 May 2025" in page.locator(".results__source").inner_text()
    assert_accessible(page, "the results page of published counts")
