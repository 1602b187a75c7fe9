"""The phone's page in real Chromium when an abuse limit refuses it (429): it says so in the
status line and sends the vote again once, after Retry-After, instead of hammering; a join
page held back loads itself again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests import liveserver
from tests.e2e.conftest import ADMIN_TOKEN, PageProblems
from tests.e2e.test_phone_live import act, counts, new_session
from tests.liveserver import LiveServer

WAIT_MS = 15_000
NEW_PHONE_EVERY = 5
"""Seconds between new phones from one address once the burst is spent (the strict server's
rate is its inverse): the window a held-back phone's test has, however loaded the machine."""
REFUSED = ("status of 429", "Error Code 429", "htmx:responseError")
"""What a browser reports for a refusal the page handles (the failed request, htmx's log)."""


@pytest.fixture
def strict_server(tmp_path: Path) -> Iterator[LiveServer]:
    """One vote per phone at once, then one every 4 s; two new phones, then one every 5 s."""
    running = liveserver.start(
        tmp_path,
        ADMIN_TOKEN,
        env={
            "BELIEFGAP_LIMIT_VOTE_BURST": "1",
            "BELIEFGAP_LIMIT_VOTES_PER_SECOND": "0.25",
            "BELIEFGAP_LIMIT_NEW_PARTICIPANT_BURST": "2",
            "BELIEFGAP_LIMIT_NEW_PARTICIPANTS_PER_SECOND": str(1 / NEW_PHONE_EVERY),
        },
        timeout=30,
    )
    try:
        yield running
    finally:
        running.stop()


def spend_the_join_burst(server: LiveServer, code: str) -> None:
    """New phones answer from this address (a vote without a cookie: a new participant each)
    until the server holds them back for the whole interval: its bucket is empty and the next
    new phone, if it comes within NEW_PHONE_EVERY - 1 seconds, is held back too. A refusal with
    a shorter Retry-After means a phone may join soon: the next one to do so empties it. (A
    join page alone spends nothing: a cookie counts at its first vote.)"""
    deadline = time.monotonic() + 60
    vote = {"phase": "belief", "choice": "agree"}
    while time.monotonic() < deadline:
        response = httpx.post(f"{server.url}/api/v1/sessions/{code}/votes", json=vote, timeout=10)
        if response.status_code == 429:
            if response.headers["Retry-After"] == str(NEW_PHONE_EVERY):
                return
            time.sleep(0.1)  # polls for the token on its way
        else:
            assert response.status_code == 200, response.text
    raise AssertionError(f"no new phone was held back for {NEW_PHONE_EVERY} s")


def forgive_refusals(problems: PageProblems) -> None:
    problems.errors[:] = [e for e in problems.errors if not any(r in e for r in REFUSED)]


def test_a_vote_refused_for_coming_too_fast_is_sent_again_after_retry_after(
    strict_server: LiveServer, open_page: Any, problems: PageProblems
) -> None:
    code = new_session(strict_server)
    act(strict_server, code, "belief", "open")
    page = open_page("phone")
    votes: list[int] = []
    page.on("response", lambda r: votes.append(r.status) if r.url.endswith("/vote") else None)
    page.goto(f"{strict_server.url}/j/{code}")
    page.wait_for_selector("#aud-q-belief")

    page.locator("#aud-opt-belief-agree").click()
    page.wait_for_selector("#aud-opt-belief-agree.aud-option--chosen", timeout=WAIT_MS)
    page.locator("#aud-opt-belief-disagree").click()  # at once: over the limit
    status = page.locator("[data-live-status]")
    status.wait_for(state="visible", timeout=WAIT_MS)
    assert "Sending yours again in" in status.inner_text()
    assert page.locator("#aud-opt-belief-agree.aud-option--chosen").count() == 1  # kept as is

    page.wait_for_selector("#aud-opt-belief-disagree.aud-option--chosen", timeout=WAIT_MS)
    status.wait_for(state="hidden", timeout=WAIT_MS)
    assert votes == [200, 429, 200]  # one retry, after the wait, not a stream of them
    assert counts(strict_server, code, "belief") == {"agree": 0, "disagree": 1, "unsure": 0}
    forgive_refusals(problems)


def test_a_join_page_held_back_loads_itself_again(
    strict_server: LiveServer, open_page: Any, problems: PageProblems
) -> None:
    code = new_session(strict_server)
    act(strict_server, code, "belief", "open")
    page = open_page("late phone", locale="zh-CN")
    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status) if f"/j/{code}" in r.url else None)
    spend_the_join_burst(strict_server, code)  # the room's phones have joined
    page.goto(f"{strict_server.url}/j/{code}?lang=zh-Hans")  # the phone's own choice
    assert "同时加入" in page.locator("main").inner_text()
    # It comes back by itself after Retry-After and a few seconds' jitter.
    page.wait_for_selector("#aud-q-belief", timeout=2 * WAIT_MS)
    assert statuses[0] == 429 and statuses[-1] == 200
    forgive_refusals(problems)
