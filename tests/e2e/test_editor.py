"""The talk editor in a real browser: a presenter writes a talk from the template on the
dashboard (checked as she types), runs a session of it with a phone, edits the talk, and the
first session keeps the wording its room was asked while a new session asks the new one."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx

from tests.e2e.conftest import ADMIN_TOKEN, axe_violations
from tests.liveserver import LiveServer

WAIT_MS = 15_000
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FIRST = "Is the claim true?"
SECOND = "Is the claim still true, now?"


def open_phase(server: LiveServer, code: str, phase: str) -> None:
    response = httpx.post(
        f"{server.url}/api/v1/sessions/{code}/phases/{phase}/open", headers=AUTH, timeout=10
    )
    assert response.status_code == 200, response.text


def new_session(laptop: Any, server: LiveServer, venue: str) -> str:
    laptop.goto(f"{server.url}/presenter")
    form = laptop.locator("form.new-session:has(input[name=talk][value=e2e-talk])")
    form.locator("input[name=venue]").fill(venue)
    form.locator("button[type=submit]").click()
    laptop.wait_for_url("**/presenter/sessions/*")
    return str(laptop.url.rstrip("/").rsplit("/", 1)[-1])


def summary_says(laptop: Any, text: str) -> None:
    laptop.wait_for_function(
        "(text) => document.querySelector('#ed-summary').textContent.includes(text)",
        arg=text,
        timeout=WAIT_MS,
    )


def save(laptop: Any, server: LiveServer, version: int) -> None:
    laptop.locator("button[name=op][value=save]").click()
    laptop.wait_for_url(f"{server.url}/presenter/talks/e2e-talk/edit?saved={version}")
    assert f"version {version}" in laptop.locator(".ed-saved").inner_text()


def test_a_talk_written_in_the_editor_runs_and_an_edit_spares_the_first_session(
    live_server: LiveServer, open_page: Any
) -> None:
    laptop = open_page("laptop", viewport=(1440, 900))
    laptop.goto(f"{live_server.url}/presenter")
    laptop.locator("#token").fill(ADMIN_TOKEN)
    laptop.locator(".login__form button[type=submit]").click()
    laptop.wait_for_url(f"{live_server.url}/presenter")

    # ------------------------------------------------------------ a talk from the template
    laptop.locator("a[href='/presenter/talks/new']").click()
    laptop.locator("input[name=slug]").first.fill("e2e-talk")
    laptop.locator("button[type=submit]:has-text('Open the editor')").click()
    laptop.wait_for_url("**/presenter/talks/new/edit*")
    summary_says(laptop, "No problems")
    assert axe_violations(laptop) == []

    question = laptop.locator("textarea[name='phases.1.question.en']")
    question.fill("")
    slot = laptop.locator("#p-phases-1-question-en")
    slot.filter(has_text="The text in en is missing").wait_for(timeout=WAIT_MS)
    summary_says(laptop, "1 problem")
    assert question.get_attribute("aria-invalid") == "true"
    question.fill(FIRST)
    summary_says(laptop, "No problems")
    assert slot.inner_text().strip() == ""
    assert question.get_attribute("aria-invalid") is None

    # The preview shows the selected phase as a phone would.
    laptop.locator("button[name=op][value='select:1']").click()
    laptop.locator("#ed-preview .aud-q__text").filter(has_text=FIRST).wait_for(timeout=WAIT_MS)
    # A fourth option, then removed again: the buttons redraw the form in place.
    laptop.locator("button[name=op][value='add_option:1']").click()
    laptop.locator("input[name='phases.1.options.3.id']").wait_for(timeout=WAIT_MS)
    laptop.locator("button[name=op][value='remove_option:1:3']").click()
    laptop.locator("input[name='phases.1.options.3.id']").wait_for(state="detached")
    save(laptop, live_server, 1)
    # The address is the talk's own now: a reload shows the saved talk, not a blank template.
    laptop.reload()
    assert laptop.locator("textarea[name='phases.1.question.en']").input_value() == FIRST
    assert laptop.locator("input[name=slug]").first.input_value() == "e2e-talk"

    # ------------------------------------------------------------ a session, a phone
    first = new_session(laptop, live_server, "First room")
    open_phase(live_server, first, "belief")
    phone = open_page("phone", viewport=(390, 844))
    phone.goto(f"{live_server.url}/j/{first}")
    assert phone.locator("#aud-q-belief").inner_text().strip() == FIRST
    phone.locator("#aud-opt-belief-agree").click()
    phone.locator("#aud-panel .aud-msg--ok").wait_for(timeout=WAIT_MS)

    # ------------------------------------------------------------ the edit
    laptop.goto(f"{live_server.url}/presenter/talks/e2e-talk/edit")
    laptop.locator("textarea[name='phases.1.question.en']").fill(SECOND)
    summary_says(laptop, "No problems")
    save(laptop, live_server, 2)

    # The first session keeps what its room was asked: phone, results, export.
    phone.reload()
    assert phone.locator("#aud-q-belief").inner_text().strip() == FIRST
    laptop.goto(f"{live_server.url}/presenter/sessions/{first}/results")
    results = laptop.locator("main").inner_text()
    assert FIRST in results and SECOND not in results
    exported = httpx.get(
        f"{live_server.url}/api/v1/sessions/{first}/export.json", headers=AUTH, timeout=10
    ).json()
    assert exported["phases"][1]["question"]["en"] == FIRST
    assert [r["choice"] for r in exported["responses"]] == ["agree"]

    # A new session asks the new wording.
    second = new_session(laptop, live_server, "Second room")
    open_phase(live_server, second, "belief")
    other = open_page("second phone", viewport=(390, 844))
    other.goto(f"{live_server.url}/j/{second}")
    assert other.locator("#aud-q-belief").inner_text().strip() == SECOND


def test_a_revotes_options_follow_its_stance_as_it_is_reworded(
    live_server: LiveServer, open_page: Any
) -> None:
    laptop = open_page("laptop", viewport=(1440, 900))
    laptop.goto(f"{live_server.url}/presenter")
    laptop.locator("#token").fill(ADMIN_TOKEN)
    laptop.locator(".login__form button[type=submit]").click()
    laptop.wait_for_url(f"{live_server.url}/presenter")
    laptop.goto(f"{live_server.url}/presenter/talks/new/edit?slug=e2e-talk")
    summary_says(laptop, "No problems")
    revote = laptop.locator("#ed-revote-opts-3")
    assert revote.locator("tbody tr").first.inner_text().split("\t")[:2] == ["agree", "Yes"]
    assert laptop.locator("[name^='phases.3.options']").count() == 0  # nothing of its own

    # Reword the stance's first option in both languages: the revote's follow as she types.
    laptop.locator("textarea[name='phases.1.options.0.label.en']").fill("Absolutely")
    laptop.locator("textarea[name='phases.1.options.0.label.zh-Hans']").fill("完全同意")
    laptop.wait_for_function(
        "() => { const row = document.querySelector('#ed-revote-opts-3 tbody tr');"
        " return row && row.textContent.includes('Absolutely')"
        " && row.textContent.includes('完全同意'); }",
        timeout=WAIT_MS,
    )
    laptop.locator("button[name=op][value='select:3']").click()
    laptop.locator("#ed-preview .aud-option__label").first.filter(has_text="Absolutely").wait_for(
        timeout=WAIT_MS
    )
    summary_says(laptop, "No problems")
    save(laptop, live_server, 1)

    # The room's phones get the stance's new wording in the revote.
    created = httpx.post(
        f"{live_server.url}/api/v1/sessions",
        json={"talk": "e2e-talk", "venue": "Room"},
        headers=AUTH,
        timeout=10,
    )
    code = created.json()["code"]
    open_phase(live_server, code, "revote")
    phone = open_page("phone", viewport=(390, 844))
    phone.goto(f"{live_server.url}/j/{code}")
    labels = phone.locator("#aud-panel .aud-option__label").all_inner_texts()
    assert [label.strip() for label in labels] == ["Absolutely", "No", "Unsure"]


def test_changing_a_phases_kind_redraws_the_form_without_a_stray_swap(
    live_server: LiveServer, open_page: Any
) -> None:
    """A new kind redraws the form, every time: also when it is chosen the instant the form
    has been redrawn for the one before (htmx wires a swapped-in menu only once the swap has
    settled, so a change made earlier went nowhere: the menu showed the new kind, the form stayed
    as it was). The check the same change sets off is dropped rather than swapping problems (or a
    revote's options) into fields the form does not have yet: htmx would log each of those (the
    page-problem watch fails the test)."""
    laptop = open_page("laptop", viewport=(1440, 900))
    laptop.goto(f"{live_server.url}/presenter")
    laptop.locator("#token").fill(ADMIN_TOKEN)
    laptop.locator(".login__form button[type=submit]").click()
    laptop.wait_for_url(f"{live_server.url}/presenter")
    laptop.goto(f"{live_server.url}/presenter/talks/new/edit?slug=kinds")
    kind = "select[name='phases.2.kind']"
    revote_options = laptop.locator("#ed-revote-opts-2")

    for _ in range(2):
        laptop.locator(kind).select_option("revote")
        revote_options.wait_for(state="visible", timeout=WAIT_MS)
        laptop.locator(kind).select_option("stance")
        revote_options.wait_for(state="detached", timeout=WAIT_MS)

    # The quickest hand there is: the page itself chooses "revote" the moment the form it is
    # watching is replaced, in the same turn of the event loop as the swap.
    laptop.evaluate(
        """(menu) => {
          const old = document.getElementById("ed-form");
          new MutationObserver((_, observer) => {
            const form = document.getElementById("ed-form");
            if (!form || form === old) return;
            observer.disconnect();
            const select = form.querySelector(menu);
            select.value = "revote";
            select.dispatchEvent(new Event("input", { bubbles: true }));
            select.dispatchEvent(new Event("change", { bubbles: true }));
          }).observe(document.body, { childList: true, subtree: true });
        }""",
        kind,
    )
    laptop.locator(kind).select_option("perceived")
    revote_options.wait_for(state="visible", timeout=WAIT_MS)
    assert laptop.locator(kind).input_value() == "revote"
    summary_says(laptop, "problem")
