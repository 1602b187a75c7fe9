"""A phone at 390x844 in real Chromium through a talk's reveals: the belief gap and how views
moved arrive by themselves, newest first above the older questions, with their sentences; a
question the person unfolded stays unfolded when the results are pushed again; after the end, a
reloaded phone keeps the talk's summary."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import axe_violations
from tests.liveserver import LiveServer

WAIT_MS = 10_000
ROOM = [
    ("agree", "agree", "agree"),
    ("agree", "agree", "agree"),
    ("agree", "agree", "agree"),
    ("disagree", "agree", "agree"),
    ("disagree", "agree", "disagree"),
    ("disagree", "disagree", "disagree"),
    ("unsure", "agree", "agree"),
    ("unsure", "agree", "unsure"),
]
"""Eight people's belief, field and revote answers, sent from their own cookie jars."""


@pytest.fixture
def live_server(module_live_server: LiveServer) -> LiveServer:
    """One server for this module's tests: each works in a session of its own."""
    return module_live_server


def act(server: LiveServer, code: str, phase: str, action: str) -> None:
    httpx.post(
        f"{server.url}/api/v1/sessions/{code}/phases/{phase}/{action}",
        headers=server.auth,
        timeout=10,
    ).raise_for_status()


def vote(room: list[Any], code: str, phase: str, column: int) -> None:
    for person, answers in zip(room, ROOM, strict=True):
        person.post(
            f"/api/v1/sessions/{code}/votes", json={"phase": phase, "choice": answers[column]}
        ).raise_for_status()


def tops(page: Any, selectors: list[str]) -> list[float]:
    """Where each element starts on the page, read in one go (a pushed swap cannot fall in
    between); each must be displayed."""
    found = page.evaluate(
        """(selectors) => selectors.map((s) => {
            const el = document.querySelector(s);
            return el && el.getClientRects().length ? el.getBoundingClientRect().top : null;
        })""",
        selectors,
    )
    assert None not in found, dict(zip(selectors, found, strict=True))
    return [float(top) for top in found]


def test_a_phone_shows_the_gap_and_the_movement_newest_first_and_keeps_a_summary(
    live_server: LiveServer, open_page: Any
) -> None:
    server = live_server
    code = httpx.post(
        f"{server.url}/api/v1/sessions",
        json={"talk": "emergence", "venue": "Porto"},
        headers=server.auth,
        timeout=10,
    ).json()["code"]
    room = [httpx.Client(base_url=server.url, timeout=10) for _ in ROOM]
    phone = open_page("phone", viewport=(390, 844))
    phone.goto(f"{server.url}/j/{code}")
    phone.wait_for_selector(".aud-wait")
    phone.evaluate("window.__samePage = true")  # a reload would wipe it

    for column, phase in enumerate(("belief", "field")):
        act(server, code, phase, "open")
        vote(room, code, phase, column)
        act(server, code, phase, "close")
        act(server, code, phase, "reveal")
    gap = phone.locator("#revealed-results .aud-key--gap")
    gap.wait_for(timeout=WAIT_MS)
    # the gap above the two questions it pairs, its sentence in words a room can read
    above = tops(phone, [".aud-key--gap", "details[data-phase=field]"])
    assert above == sorted(above)
    sentence = gap.locator(".chart-sentence").inner_text()
    assert "38%" in sentence and "88%" in sentence, sentence
    expect(gap.locator("svg.chart--gap")).to_be_visible(timeout=WAIT_MS)
    # the older questions are folded to their sentence: their charts are not drawn
    assert phone.locator("details[data-phase=belief] svg").count() == 1
    expect(phone.locator("details[data-phase=belief] svg")).to_be_hidden(timeout=WAIT_MS)
    assert "38%" in phone.locator("details[data-phase=belief] summary").inner_text()

    # The person unfolds the belief question; the next push keeps it unfolded.
    phone.locator("details[data-phase=belief] summary").click()
    phone.locator("details[data-phase=belief] svg").wait_for(timeout=WAIT_MS)

    act(server, code, "revote", "open")
    vote(room, code, "revote", 2)
    act(server, code, "revote", "close")
    act(server, code, "revote", "reveal")
    shift = phone.locator("#revealed-results .aud-key--shift")
    shift.wait_for(timeout=WAIT_MS)
    order = [
        ".aud-key--shift",
        "details[data-phase=revote]",
        ".aud-key--gap",
        "details[data-phase=field]",
        "details[data-phase=belief]",
    ]
    found = tops(phone, order)
    assert found == sorted(found), "newest first: the movement, the revote, the gap, the rest"
    assert "8 people who answered twice" in shift.locator(".chart-sentence").inner_text()
    assert shift.locator(".aud-key__more").inner_text().strip()
    expect(shift.locator("svg.chart--shift")).to_be_visible(timeout=WAIT_MS)
    # unfolded as the person left it
    expect(phone.locator("details[data-phase=belief] svg")).to_be_visible(timeout=WAIT_MS)
    assert phone.evaluate("window.__samePage === true"), "the results came with a reload"
    assert axe_violations(phone) == []

    # The session ends; the phone is reloaded: the summary stays, with the thank-you.
    httpx.patch(
        f"{server.url}/api/v1/sessions/{code}",
        json={"ended": True},
        headers=server.auth,
        timeout=10,
    ).raise_for_status()
    phone.wait_for_selector(".aud-wait--ended", timeout=WAIT_MS)
    phone.reload()
    summary = phone.locator(".aud-summary")
    summary.wait_for(timeout=WAIT_MS)
    assert "Thank you for taking part." in phone.locator("#aud-panel").inner_text()
    assert summary.locator("h2").inner_text() == "What this room showed"
    expect(summary.locator("svg.chart--gap")).to_be_visible(timeout=WAIT_MS)
    expect(summary.locator("svg.chart--shift")).to_be_visible(timeout=WAIT_MS)
    story = tops(phone, [".aud-summary .aud-key--gap", ".aud-summary .aud-key--shift"])
    assert story == sorted(story), "the gap, then how views moved"
    # every question below, folded: the page stays a few screens long, never sideways
    assert phone.locator("details.aud-phase[open]").count() == 0
    assert phone.locator("details.aud-phase").count() == 3
    width, height = phone.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    )
    assert width <= 390 and height < 3 * 844, (width, height)
    assert axe_violations(phone) == []
    for person in room:
        person.close()
