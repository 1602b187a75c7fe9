"""A hostile page in real Chromium, with the presenter logged in, writes nothing.

The page is served by a second HTTP server on another port of the same machine: same-site to
the app (browsers ignore the port for SameSite, so the presenter's Strict cookie goes along),
which is how the phase actions of the JSON API were once revealed from outside. It submits the
presenter's forms, the API's phase action and a phone's vote as plain forms, and fires
credentialed fetches; a page on ``localhost`` (another site) does the same. Every one must be
refused with 403 and leave the session as it was; the presenter stays logged in, and the same
actions from the app's own pages still work.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2 as httpx
import pytest

from tests.e2e.conftest import ADMIN_TOKEN
from tests.liveserver import LiveServer

WAIT_MS = 10_000


class Hostile:
    """Serves ``/form?action=URL`` (a form posting to URL) and ``/blank``."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, host: str, path: str) -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        from urllib.parse import parse_qs, urlsplit

        query = parse_qs(urlsplit(self.path).query)
        action = query.get("action", [""])[0]
        fields = "".join(
            f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
            for name, value in (
                ("phase", "belief"),
                ("choice", "agree"),
                ("talk", "emergence"),
                ("venue", "Forged"),
            )
        )
        body = (
            "<!doctype html><title>Free prizes</title>"
            f'<form method="post" action="{escape(action)}">{fields}'
            '<button id="go">Claim</button></form>'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    server = Hostile()
    try:
        yield server
    finally:
        server.close()


def session_state(server: LiveServer, code: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/api/v1/sessions/{code}", timeout=10)
    response.raise_for_status()
    body = response.json()
    return {
        "phases": {p["id"]: (p["state"], p["revealed"]) for p in body["phases"]},
        "participants": body["participants"],
    }


def stored(server: LiveServer) -> dict[str, list[Any]]:
    """Every row a write could change, read from the server's SQLite file."""
    with sqlite3.connect(f"file:{server.data_dir / 'beliefgap.db'}?mode=ro", uri=True) as db:
        return {
            table: sorted(map(repr, db.execute(f"SELECT * FROM {table}").fetchall()))
            for table in (
                "poll_session",
                "session_phase",
                "participant",
                "response",
                "presenter_login",
            )
        }


def test_a_page_on_another_port_or_site_writes_nothing_with_the_presenters_cookies(
    browser: Any, live_server: LiveServer, hostile: Hostile
) -> None:
    app = live_server.url  # http://127.0.0.1:<port>
    created = httpx.post(
        f"{app}/api/v1/sessions",
        json={"talk": "emergence", "venue": "Lisbon"},
        headers=live_server.auth,
        timeout=10,
    )
    code = created.json()["code"]
    httpx.post(
        f"{app}/api/v1/sessions/{code}/phases/belief/open", headers=live_server.auth, timeout=10
    ).raise_for_status()

    context = browser.new_context()
    try:
        laptop = context.new_page()
        laptop.goto(f"{app}/presenter/login?next=/presenter/sessions/{code}")
        laptop.fill("#token", ADMIN_TOKEN)
        laptop.click("button[type=submit]")
        laptop.wait_for_selector(".control", timeout=WAIT_MS)
        laptop.goto(f"{app}/j/{code}")  # the laptop is also a phone: a participant cookie
        laptop.wait_for_selector("#aud-q-belief", timeout=WAIT_MS)
        before = session_state(live_server, code)
        rows_before = stored(live_server)

        targets = [
            f"{app}/api/v1/sessions/{code}/phases/belief/reveal",  # the JSON API, by cookie
            f"{app}/api/v1/sessions/{code}/phases/belief/close",
            f"{app}/presenter/sessions/{code}/phases/belief/reveal",
            f"{app}/presenter/sessions/{code}/next",
            f"{app}/presenter/sessions",
            f"{app}/j/{code}/vote",
            f"{app}/api/v1/sessions/{code}/votes",
            f"{app}/presenter/logout",
        ]
        statuses: list[tuple[str, str, int]] = []
        attacker = context.new_page()
        for host in ("127.0.0.1", "localhost"):  # another port (same site), another site
            for target in targets:
                attacker.goto(hostile.url(host, f"/form?action={target}"))
                with attacker.expect_response(lambda r, t=target: r.url == t) as answer:
                    attacker.click("#go")
                statuses.append((host, target, answer.value.status))
                attacker.goto(hostile.url(host, "/blank"))
                fetched = attacker.evaluate(
                    """async (url) => {
                        const r = await fetch(url, {method: "POST", mode: "no-cors",
                            credentials: "include", body: '{"phase":"belief","choice":"agree"}'});
                        return r.type;
                    }""",
                    target,
                )
                assert fetched == "opaque"
        refused = [s for s in statuses if s[2] != 403]
        assert refused == [], f"writes another page sent were not refused: {refused}"
        assert session_state(live_server, code) == before
        assert stored(live_server) == rows_before  # the logout form did not log out either

        # The presenter is still logged in, and the app's own page still acts.
        laptop.goto(f"{app}/presenter/sessions/{code}")
        laptop.wait_for_selector(".control", timeout=WAIT_MS)
        laptop.keyboard.press("r")
        laptop.wait_for_function(
            "() => document.querySelector('.strip [data-key=r]').textContent.includes('Hide')",
            timeout=WAIT_MS,
        )
        assert session_state(live_server, code)["phases"]["belief"] == ("open", True)
    finally:
        context.close()
