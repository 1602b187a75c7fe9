"""Ctrl+C or SIGTERM with phones, the control page and the projector open: the server stops
within 2 s, cleanly, and when it comes back the pages carry on by themselves."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests import liveserver
from tests.e2e.conftest import ADMIN_TOKEN, PageProblems

WAIT_MS = 15_000
GONE = (
    "ERR_CONNECTION_REFUSED",
    "ERR_EMPTY_RESPONSE",
    "ERR_CONNECTION_RESET",
    "503",
    "[object Event] (http",  # htmx's event-stream extension logging its failed reconnections
    # htmx logging a request that found no server (a panel or stage reloaded by a stream event
    # that came in just before the server went)
    "htmx:sendError, [object HTMLElement]",
    "htmx:afterRequest, [object HTMLElement]",
)
"""What browsers report while their server is away on purpose."""
FIELD = "What do you think most other NLP researchers believe"


def act(server: liveserver.LiveServer, code: str, phase: str, action: str) -> None:
    httpx.post(
        f"{server.url}/api/v1/sessions/{code}/phases/{phase}/{action}",
        headers=server.auth,
        timeout=10,
    ).raise_for_status()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stop_with_pages_open_is_prompt_and_the_pages_carry_on_after_a_restart(
    tmp_path: Path, open_page: Any, problems: PageProblems, signum: int
) -> None:
    first = liveserver.start(tmp_path, ADMIN_TOKEN, timeout=30)
    try:
        code = httpx.post(
            f"{first.url}/api/v1/sessions",
            json={"talk": "emergence", "venue": "Turin"},
            headers=first.auth,
            timeout=10,
        ).json()["code"]
        control = open_page("laptop", viewport=(1440, 900))
        control.goto(f"{first.url}/presenter/login")
        control.locator("#token").fill(ADMIN_TOKEN)
        control.locator(".login__form button[type=submit]").click()
        control.wait_for_url(f"{first.url}/presenter")
        control.goto(f"{first.url}/presenter/sessions/{code}")
        projector = open_page("projector", viewport=(1920, 1080))
        projector.context.add_cookies(control.context.cookies())
        projector.goto(f"{first.url}/presenter/sessions/{code}/projector")
        phones = []
        for n in range(5):
            phone = open_page(f"phone {n}")
            phone.goto(f"{first.url}/j/{code}")
            phone.wait_for_selector(".aud-wait")
            phone.evaluate("window.__samePage = true")
            phones.append(phone)
        act(first, code, "belief", "open")
        for phone in phones:
            phone.wait_for_selector("#aud-q-belief", timeout=WAIT_MS)

        started = time.monotonic()
        first.process.send_signal(signum)
        try:
            first.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail("the server was still running 10 s after the stop signal")
        took = time.monotonic() - started
        output = first.output()
        assert took < 2.0, f"the stop took {took:.1f} s with 7 pages open"
        assert "Application shutdown complete" in output
        assert "Traceback" not in output, output
    finally:
        first.stop()

    # The same address and data again (an upgrade): the presenter opens the next question on
    # the new process, and every phone shows it without anyone touching it.
    second = liveserver.start(tmp_path, ADMIN_TOKEN, timeout=30, port=first.port)
    try:
        act(second, code, "belief", "close")
        act(second, code, "field", "open")
        for phone in phones:
            phone.wait_for_selector("#aud-q-field", timeout=WAIT_MS)
            assert phone.evaluate("window.__samePage === true"), "a phone caught up by reloading"
        for page in (projector, control):  # the presenter's screens follow too
            page.wait_for_function(
                "(text) => document.body.innerText.includes(text)", arg=FIELD, timeout=WAIT_MS
            )
        for page in (*phones, projector, control):  # before their server goes away again
            page.context.close()
    finally:
        second.stop()
    problems.errors[:] = [e for e in problems.errors if not any(g in e for g in GONE)]


def test_the_projector_marks_a_lost_stream_until_it_is_back(
    tmp_path: Path, open_page: Any, problems: PageProblems
) -> None:
    """The phones say "Reconnecting…" when their server is gone; the projector shows the
    speaker a small mark, and drops it once its stream is back."""
    first = liveserver.start(tmp_path, ADMIN_TOKEN, timeout=30)
    try:
        code = httpx.post(
            f"{first.url}/api/v1/sessions",
            json={"talk": "emergence", "venue": "Turin"},
            headers=first.auth,
            timeout=10,
        ).json()["code"]
        projector = open_page("projector", viewport=(1280, 720))
        projector.goto(f"{first.url}/presenter/login")
        projector.locator("#token").fill(ADMIN_TOKEN)
        projector.locator(".login__form button[type=submit]").click()
        projector.wait_for_url(f"{first.url}/presenter")
        projector.goto(f"{first.url}/presenter/sessions/{code}/projector")
        projector.wait_for_selector("body[data-stream=open]", timeout=WAIT_MS)
        assert projector.is_hidden("[data-conn-lost]")
    finally:
        first.stop()
    projector.wait_for_selector("[data-conn-lost]", state="visible", timeout=WAIT_MS)
    assert projector.inner_text("[data-conn-lost]") == "Reconnecting…"
    box = projector.locator("[data-conn-lost]").bounding_box()
    assert box is not None and box["height"] < 720 / 20  # a mark in a corner, not a banner
    second = liveserver.start(tmp_path, ADMIN_TOKEN, timeout=30, port=first.port)
    try:
        projector.wait_for_selector("[data-conn-lost]", state="hidden", timeout=WAIT_MS)
        assert projector.evaluate("document.body.dataset.stream") == "open"
        # the stream that came back carries the room again
        act(second, code, "belief", "open")
        projector.wait_for_selector(".options-list", timeout=WAIT_MS)
        projector.context.close()
    finally:
        second.stop()
    problems.errors[:] = [e for e in problems.errors if not any(g in e for g in GONE)]
