"""The poll inside the slides in real Chromium: a deck on another site (another host name,
another registrable domain) frames the read-only view and moves the poll through the reveal.js
plugin with the remote key while five phones vote, and sees each phase and its result in the
frame; a site not on the operator's list is refused the frame by the view's policy; a revoked
view says so in the frame."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx2 as httpx
import pytest

from tests import liveserver
from tests.conftest import require
from tests.e2e.conftest import (
    ADMIN_TOKEN,
    CHROMIUM,
    CHROMIUM_ARGS,
    CHROMIUM_MISSING,
    LiveServer,
    PageProblems,
)

WAIT_MS = 10_000
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}
HOSTS = ("poll.test", "deck.test", "stranger.test")
"""Three host names Chromium resolves to 127.0.0.1 (--host-resolver-rules): the app, a deck on
another site, and a site the operator did not list. All three are on this machine, so
Chromium's local network access checks, which keep a public site from reaching a private
address, do not come into it."""


class Pages(BaseHTTPRequestHandler):
    """Serves the deck at / and a stranger's page at /stranger (from any host name)."""

    pages: ClassVar[dict[str, str]] = {}

    def do_GET(self) -> None:
        body = self.pages.get(self.path)
        if body is None:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def site() -> Iterator[int]:
    """Another web server on this machine, for the deck and the stranger's page: its port."""
    httpd = ThreadingHTTPServer(("127.0.0.1", liveserver.free_port()), Pages)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def slides_server(tmp_path: Path, site: int) -> Iterator[LiveServer]:
    port = liveserver.free_port()
    running = liveserver.start(
        tmp_path,
        ADMIN_TOKEN,
        port=port,
        public_url=f"http://poll.test:{port}",
        env={"BELIEFGAP_FRAME_ANCESTORS": f"'self' http://deck.test:{site}"},
        timeout=30,
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def chromium() -> Iterator[Any]:
    """Chromium that resolves ``HOSTS`` to this machine."""
    require(Path(CHROMIUM).exists(), CHROMIUM_MISSING)
    from playwright.sync_api import sync_playwright

    rules = ", ".join(f"MAP {host} 127.0.0.1" for host in HOSTS)
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[*CHROMIUM_ARGS, f"--host-resolver-rules={rules}"],
        )
        yield instance
        instance.close()


MEASURE = """() => {
  const svg = [...document.querySelectorAll('.stage--revealed svg.chart')]
    .find(s => s.getBoundingClientRect().width > 0);
  const box = svg.getBoundingClientRect();
  const scale = svg.getScreenCTM().a;
  const root = document.documentElement;
  return {
    box: [box.left, box.top, box.right, box.bottom],
    px: [...svg.querySelectorAll('text')].map(t => parseFloat(t.getAttribute('font-size')) * scale),
    scrolls: root.scrollHeight > innerHeight || root.scrollWidth > innerWidth,
  };
}"""


def deck_html(server: str, token: str, key: str) -> str:
    """A deck of three slides and the view in a frame. reveal.js itself is not needed: the
    stand-in offers the two calls of its plugin API the plugin uses (getConfig and on)."""
    return f"""<!doctype html><meta charset=utf-8><title>Deck</title><link rel="icon" href="data:,">
<section id="s1" data-beliefgap-open="belief"></section>
<section id="s2" data-beliefgap-reveal="belief"></section>
<section id="s3" data-beliefgap-next></section>
<iframe id="view" src="{server}/view/{token}" width="1280" height="720"></iframe>
<script src="{server}/static/js/reveal-beliefgap.js"></script>
<script>
  var handlers = {{}};
  var reveal = {{
    getConfig: function () {{ return {{ beliefgap: {{ server: "{server}", key: "{key}" }} }}; }},
    on: function (name, handler) {{ (handlers[name] = handlers[name] || []).push(handler); }},
  }};
  BeliefGap().init(reveal);
  window.results = [];
  window.addEventListener("beliefgap", function (event) {{ window.results.push(event.detail); }});
  window.messages = [];  // reveal.js's postMessage API: what the framed view passes on
  window.addEventListener("message", function (event) {{ window.messages.push(event.data); }});
  window.show = function (id) {{
    var slide = document.getElementById(id);
    handlers.slidechanged.forEach(function (h) {{ h({{ currentSlide: slide }}); }});
  }};
</script>"""


def frame_html(server: str, token: str) -> str:
    return (
        '<!doctype html><link rel="icon" href="data:,">'
        f'<iframe src="{server}/view/{token}" width="640" height="360"></iframe>'
    )


def test_a_deck_on_another_site_frames_the_view_and_drives_the_poll(
    slides_server: LiveServer, site: int, chromium: Any, problems: PageProblems
) -> None:
    poll = f"http://poll.test:{slides_server.port}"
    with httpx.Client(base_url=slides_server.url, timeout=10) as presenter:
        created = presenter.post(
            "/api/v1/sessions",
            json={"talk": "emergence", "venue": "Aarhus"},
            headers=slides_server.auth,
        )
        code = created.json()["code"]
        presenter.post("/presenter/login", data={"token": ADMIN_TOKEN}, headers=SAME_ORIGIN)
        tokens = {}
        for purpose in ("view", "remote"):
            page = presenter.post(
                f"/presenter/sessions/{code}/tokens/{purpose}",
                headers=SAME_ORIGIN,
                follow_redirects=True,
            )
            found = re.search(rf'value="([^"]*)" data-token="{purpose}"', page.text)
            assert found is not None
            tokens[purpose] = found.group(1).rsplit("/", 1)[-1]
    Pages.pages = {
        "/": deck_html(poll, tokens["view"], tokens["remote"]),
        "/stranger": frame_html(poll, tokens["view"]),
    }

    deck_context = chromium.new_context(viewport={"width": 1400, "height": 900})
    deck = deck_context.new_page()
    problems.watch(deck, "deck")
    deck.goto(f"http://deck.test:{site}/")
    view = deck.frame_locator("#view")
    view.locator(".slide--welcome").wait_for(timeout=WAIT_MS)

    deck.evaluate("show('s1')")  # the plugin opens the question: the frame follows the stream
    view.locator('.slide[data-phase="belief"].stage--open').wait_for(timeout=WAIT_MS)
    phones = [httpx.Client(base_url=slides_server.url, timeout=10) for _ in range(5)]
    try:
        for phone, choice in zip(
            phones, ["agree", "agree", "disagree", "agree", "unsure"], strict=True
        ):
            voted = phone.post(
                f"/api/v1/sessions/{code}/votes", json={"phase": "belief", "choice": choice}
            )
            assert voted.status_code == 200, voted.text
        view.locator("#n-belief", has_text=re.compile(r"^5$")).wait_for(timeout=WAIT_MS)

        deck.evaluate("show('s2')")  # reveal: the result, its sentence over the chart
        revealed = view.locator(".stage--revealed")
        # (still open: drawn beside the QR code)
        revealed.locator("#chart-belief svg.chart >> visible=true").wait_for(timeout=WAIT_MS)
        assert "60%" in revealed.inner_text()  # 3 of the 5 phones said yes

        deck.evaluate("show('s3')")  # next: the belief question closes, the field one opens
        view.locator('.slide[data-phase="field"].stage--open').wait_for(timeout=WAIT_MS)
    finally:
        for phone in phones:
            phone.close()
    results = deck.evaluate("window.results")
    assert [(r["action"], r["ok"]) for r in results] == [
        ("open", True),
        ("reveal", True),
        ("next", True),
    ]
    # A click on the slide gives the frame the keyboard: the clicker's keys still reach the deck.
    view.locator("#stage").click()
    view.locator("body").press("PageDown")
    view.locator("body").press("ArrowLeft")
    deck.wait_for_function("window.messages.length >= 2", timeout=WAIT_MS)
    assert deck.evaluate("window.messages") == ['{"method":"next"}', '{"method":"prev"}']
    # Nothing in the frame is a control, and the deck's browser holds no cookie of the app.
    assert view.locator("form, a[href^='/presenter']").count() == 0
    assert deck_context.cookies() == []

    # A site not on the operator's list: Chromium refuses it the frame.
    stranger = deck_context.new_page()
    with stranger.expect_console_message(
        predicate=lambda message: "frame-ancestors" in message.text, timeout=WAIT_MS
    ):
        stranger.goto(f"http://stranger.test:{site}/stranger")
    assert stranger.frame_locator("iframe").locator(".slide").count() == 0
    stranger.close()

    # The display modes on the same address, measured as the projector's are: no scrollbar,
    # the overlay's chart inside its 5% margins with labels of 28 px or more, the QR code at
    # least 30% of the frame's height.
    for width, height in ((1920, 1080), (1280, 720)):
        page = deck_context.new_page()
        page.set_viewport_size({"width": width, "height": height})
        # (the room is on the next question: the slide pins the revealed one)
        page.goto(f"{poll}/view/{tokens['view']}?phase=belief&mode=overlay&theme=dark")
        page.wait_for_selector(".stage--revealed .chart-variant--slide svg", timeout=WAIT_MS)
        found = page.evaluate(MEASURE)
        assert not found["scrolls"], (width, height)
        assert found["box"][0] >= 0.05 * width and found["box"][2] <= 0.95 * width
        assert found["box"][3] <= 0.95 * height
        assert min(found["px"]) >= 28 - 0.01, (width, height, found["px"])
        page.goto(f"{poll}/view/{tokens['view']}?mode=qr")
        page.wait_for_selector(".slide--qr-only .qr-block__code svg", timeout=WAIT_MS)
        side = page.evaluate(
            "() => document.querySelector('.slide--qr-only svg').getBoundingClientRect().height"
        )
        assert side >= 0.3 * height
        page.close()

    # Revoked: the frame says the view has ended.
    with httpx.Client(base_url=slides_server.url, timeout=10) as presenter:
        presenter.post("/presenter/login", data={"token": ADMIN_TOKEN}, headers=SAME_ORIGIN)
        revoked = presenter.post(
            f"/presenter/sessions/{code}/tokens/view/revoke", headers=SAME_ORIGIN
        )
        assert revoked.status_code in (200, 303)
    view.locator(".view-ended", has_text="This view has ended.").wait_for(timeout=WAIT_MS)
    deck_context.close()
