"""Phones in real Chromium follow the presenter from the pushed panel, without asking for it,
and recover by themselves from a network blip: across a phase change, and during a vote."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest

from tests.e2e.conftest import PageProblems
from tests.liveserver import LiveServer

WAIT_MS = 10_000
OFFLINE = ("ERR_INTERNET_DISCONNECTED", "htmx:sendError", "htmx:afterRequest")
"""What a browser reports while it is offline on purpose (failed requests, htmx's own log)."""


@pytest.fixture
def live_server(module_live_server: LiveServer) -> LiveServer:
    """One server for this module's tests: each works in a session of its own."""
    return module_live_server


def new_session(server: LiveServer) -> str:
    response = httpx.post(
        f"{server.url}/api/v1/sessions",
        json={"talk": "emergence", "venue": "Lisbon"},
        headers=server.auth,
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["code"])


def act(server: LiveServer, code: str, phase: str, action: str) -> None:
    httpx.post(
        f"{server.url}/api/v1/sessions/{code}/phases/{phase}/{action}",
        headers=server.auth,
        timeout=10,
    ).raise_for_status()


def counts(server: LiveServer, code: str, phase: str) -> dict[str, int]:
    results = httpx.get(
        f"{server.url}/api/v1/sessions/{code}/results", headers=server.auth, timeout=10
    ).json()
    return dict(results["phases"][phase]["counts"])


def join(open_page: Any, server: LiveServer, code: str, name: str) -> tuple[Any, list[str]]:
    page = open_page(name)
    panel_requests: list[str] = []
    page.on("request", lambda r: panel_requests.append(r.url) if "/panel" in r.url else None)
    page.goto(f"{server.url}/j/{code}")
    page.wait_for_selector(".aud-wait")
    page.evaluate("window.__samePage = true")  # a reload would wipe it
    return page, panel_requests


def shows(page: Any, phase: str) -> None:
    page.wait_for_selector(f"#aud-q-{phase}", timeout=WAIT_MS)


def forgive_offline(problems: PageProblems) -> None:
    problems.errors[:] = [e for e in problems.errors if not any(o in e for o in OFFLINE)]


def test_phones_follow_the_pushed_question_without_asking_for_it(
    live_server: LiveServer, open_page: Any
) -> None:
    code = new_session(live_server)
    phones = [join(open_page, live_server, code, f"phone {n}") for n in range(3)]

    act(live_server, code, "belief", "open")
    for page, _ in phones:
        shows(page, "belief")
    assert [len(requests) for _, requests in phones] == [0, 0, 0]

    first = phones[0][0]
    first.locator("#aud-opt-belief-agree").click()
    first.wait_for_selector("#aud-opt-belief-agree.aud-option--chosen", timeout=WAIT_MS)

    # A second question opens beside the first: the phone that answered the first needs its
    # own panel (it shows the unanswered one); the others take the pushed one as it is.
    act(live_server, code, "field", "open")
    shows(first, "field")
    for page, _ in phones[1:]:
        page.wait_for_function(
            "() => document.querySelector('#aud-panel').dataset.open === 'belief@;field@'",
            timeout=WAIT_MS,
        )
        assert page.locator("#aud-q-belief").count() == 1  # their first unanswered question
    assert [len(requests) for _, requests in phones] == [1, 0, 0]
    assert first.locator(".aud-others__state--done").count() == 1  # belief, answered

    act(live_server, code, "field", "close")
    act(live_server, code, "belief", "close")
    for page, _ in phones:
        page.wait_for_selector(".aud-wait", timeout=WAIT_MS)
        assert page.evaluate("window.__samePage === true")


def test_a_phone_offline_across_a_phase_change_catches_up_by_itself(
    live_server: LiveServer, open_page: Any, problems: PageProblems
) -> None:
    code = new_session(live_server)
    page, _ = join(open_page, live_server, code, "phone")
    act(live_server, code, "belief", "open")
    shows(page, "belief")

    page.context.set_offline(True)
    act(live_server, code, "belief", "close")
    act(live_server, code, "field", "open")
    time.sleep(1.5)
    page.context.set_offline(False)
    shows(page, "field")
    assert page.locator("#aud-q-belief").count() == 0
    assert page.evaluate("window.__samePage === true"), "caught up by reloading"
    page.locator("#aud-opt-field-agree").click()
    page.wait_for_selector("#aud-opt-field-agree.aud-option--chosen", timeout=WAIT_MS)
    assert counts(live_server, code, "field")["agree"] == 1
    forgive_offline(problems)


def test_a_vote_sent_without_a_connection_is_sent_again_when_it_returns(
    live_server: LiveServer, open_page: Any, problems: PageProblems
) -> None:
    code = new_session(live_server)
    page, _ = join(open_page, live_server, code, "phone")
    act(live_server, code, "belief", "open")
    shows(page, "belief")

    page.context.set_offline(True)
    page.locator("#aud-opt-belief-unsure").click()
    status = page.locator("[data-live-status]")
    status.wait_for(state="visible", timeout=WAIT_MS)
    assert "Trying again" in status.inner_text()
    assert counts(live_server, code, "belief")["unsure"] == 0
    page.screenshot(path=str(live_server.data_dir / "retrying.png"))

    page.context.set_offline(False)
    page.wait_for_selector("#aud-opt-belief-unsure.aud-option--chosen", timeout=20_000)
    status.wait_for(state="hidden", timeout=WAIT_MS)
    assert counts(live_server, code, "belief")["unsure"] == 1
    forgive_offline(problems)


def test_the_benchmark_phones_send_what_chromium_sends(
    live_server: LiveServer, open_page: Any
) -> None:
    """bench/phone.py plays a room's phones from one process: each of its requests (the join
    page, the event stream, the form vote, the panel) carries the headers Chromium sends for it
    from the same page, so the server parses, checks and answers what it would in a room (the
    values may differ: the bench's are an Android phone's)."""
    from bench.phone import Phone  # the benchmark's phone, as the room stage drives it

    code = new_session(live_server)
    act(live_server, code, "belief", "open")
    page = open_page("phone")
    sent: dict[str, set[str]] = {}
    kinds = {"/vote": "vote", "/panel": "panel", "/events": "events", f"/j/{code}": "join"}

    def record(request: Any) -> None:
        path = urlsplit(request.url).path
        kind = next((k for suffix, k in kinds.items() if path.endswith(suffix)), None)
        if kind is not None and kind not in sent:
            sent[kind] = {h["name"].lower() for h in request.headers_array()}

    page.on("request", record)
    page.goto(f"{live_server.url}/j/{code}")
    page.locator("button[name=choice]").first.click()
    page.wait_for_selector(".aud-done, [data-answered*=belief]", timeout=WAIT_MS)
    act(live_server, code, "field", "open")  # it answered an open question: its own panel
    deadline = time.monotonic() + WAIT_MS / 1000
    while len(sent) < len(kinds) and time.monotonic() < deadline:
        page.wait_for_timeout(100)

    phone = Phone(live_server.port, code)
    phone.cookies = {f"bg_p_{code}": "signed"}
    phone.events_path = f"/api/v1/sessions/{code}/events?lang=en&view=phone"
    heads = {
        "join": Phone(live_server.port, code).join_head(),  # a new phone: no cookie yet
        "events": phone.events_head().decode(),
        "vote": phone.vote_head() + "Content-Length: 1\r\n",  # added as the body is sent
        "panel": phone.panel_head(),
    }
    for kind, head in heads.items():
        names = {line.split(":", 1)[0].lower() for line in head.split("\r\n")[1:] if line}
        assert names == sent[kind], (kind, names ^ sent[kind])
