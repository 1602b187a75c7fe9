"""The read-only live view (``/view/{token}``) and the session tokens behind it: what it and
its stream send against what the projector sends the room, the tokens (unknown, malformed and
revoked alike), revocation ending open streams, and who may frame it."""

from __future__ import annotations

import asyncio
import re
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from app import session_tokens
from app.live import RenderRequest
from app.main import create_app
from app.models import TokenPurpose
from app.routes.view import view_stream
from app.session_tokens import resolve
from app.settings import Settings
from tests.conftest import log_in, new_session, phase_action
from tests.sse import parse, split

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}
OOB_ELEMENT = r"<(span|div) id=\"[^\"]+\" hx-swap-oob.*?</\1>"
DEADLINE = 5.0


def issue(client: TestClient, code: str, purpose: str = "view") -> str:
    """Make a token from the control page, as the presenter does; the page shows it once."""
    response = client.post(f"/presenter/sessions/{code}/tokens/{purpose}", headers=SAME_ORIGIN)
    assert response.status_code == 200, response.text
    found = re.search(rf'value="([^"]*)" data-token="{purpose}"', response.text)
    assert found is not None
    return found.group(1).rsplit("/", 1)[-1]


def revoke(client: TestClient, code: str, purpose: str = "view") -> None:
    response = client.post(
        f"/presenter/sessions/{code}/tokens/{purpose}/revoke",
        headers=SAME_ORIGIN,
        follow_redirects=False,
    )
    assert response.status_code == 303


def vote(client: TestClient, code: str, phase: str, choice: str) -> None:
    for name in list(client.cookies.keys()):
        if name.startswith("bg_p_"):
            del client.cookies[name]
    response = client.post(
        f"/api/v1/sessions/{code}/votes", json={"phase": phase, "choice": choice}
    )
    assert response.status_code == 200, response.text


def slide(html: str) -> str:
    """The slide itself (its section), what the room sees; the numbers that keep each
    drawing's SVG ids apart on a page are left out."""
    found = re.search(r"<section class=\"slide.*?</section>", html, re.S)
    assert found is not None, html
    return unnumbered(found.group(0))


def unnumbered(html: str) -> str:
    """HTML without the numbers that keep each drawing's SVG ids apart on a page."""
    return re.sub(r"-c\d+-", "-c-", html)


class ViewStream:
    """A view's event stream, iterated in the app's event loop under a deadline."""

    def __init__(self, client: TestClient, token: str) -> None:
        app = client.app
        assert isinstance(app, FastAPI) and client.portal is not None
        self.client = client
        self.portal = client.portal
        with Session(app.state.engine) as db:
            grant = resolve(db, token, TokenPurpose.view)
        assert grant is not None
        self.frames: AsyncIterator[bytes] = view_stream(
            app.state.broadcaster, app.state.engine, grant, "en", 30.0
        )
        self.unread: list[bytes] = []
        self.ended = False

    async def _next(self) -> bytes:
        return await asyncio.wait_for(anext(self.frames), DEADLINE)

    def next(self) -> tuple[str, str]:
        while True:
            if not self.unread:
                self.unread = split(self.portal.call(self._next))
            event = self.unread.pop(0)
            if not event.startswith(b"retry: "):
                return parse(event)

    def until(self, event: str, pattern: str) -> str:
        while True:
            name, data = self.next()
            if name == event and re.search(pattern, data):
                return data

    def finished(self) -> bool:
        """Whether the stream has ended (within the deadline)."""

        async def read_to_end() -> bool:
            try:
                await asyncio.wait_for(anext(self.frames), DEADLINE)
            except StopAsyncIteration:
                return True
            return False

        return bool(self.portal.call(read_to_end))

    def close(self) -> None:
        self.portal.call(self.frames.aclose)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- what it shows


def test_the_view_shows_the_projectors_slide_without_a_control_or_a_cookie(
    live_client: TestClient,
) -> None:
    code = new_session(live_client)
    log_in(live_client)
    token = issue(live_client, code)
    phase_action(live_client, code, "belief", "open")
    for choice in ("agree", "agree", "disagree", "unsure", "agree"):
        vote(live_client, code, "belief", choice)
    phase_action(live_client, code, "belief", "reveal")

    projector = live_client.get(f"/presenter/sessions/{code}/projector").text
    cookies = dict(live_client.cookies)
    live_client.cookies.clear()  # a slide deck's browser: no cookie of this app at all
    page = live_client.get(f"/view/{token}")
    stage = live_client.get(f"/view/{token}/stage")
    live_client.cookies.update(cookies)

    assert page.status_code == 200
    assert "set-cookie" not in page.headers and "set-cookie" not in stage.headers
    # The room's slide, byte for byte: the question's chart, the count, the QR code.
    assert slide(page.text) == slide(projector)
    assert slide(stage.text) == slide(projector)
    assert 'id="n-belief">5<' in page.text
    # Nothing the room cannot see: no form, no key hint, no link into the app.
    for html in (page.text, stage.text):
        assert "<form" not in html
        assert "/presenter" not in html
        assert "/api/v1/sessions" not in html
        assert "keys-hint" not in html
    assert f'sse-connect="/view/{token}/events?lang=en"' in page.text
    assert "no-store" in page.headers["cache-control"]
    assert page.headers["referrer-policy"] == "no-referrer"


def test_the_views_stream_carries_what_the_projector_shows_and_nothing_more(
    live_client: TestClient,
) -> None:
    code = new_session(live_client)
    log_in(live_client)
    token = issue(live_client, code)
    phase_action(live_client, code, "definition", "open")
    phase_action(live_client, code, "belief", "open")
    phase_action(live_client, code, "definition", "reveal")  # revealed
    vote(live_client, code, "belief", "agree")  # open, not revealed: its n only
    vote(live_client, code, "definition", "d1")

    stream = ViewStream(live_client, token)
    try:
        names = []
        name, state = stream.next()
        names.append(name)
        assert name == "state" and '"id":"belief","kind":"stance","state":"open"' in state
        counts = stream.until("counts", r'id="n-definition"[^>]*>1<')
        # The projector's own counts, for comparison.
        app = live_client.app
        assert isinstance(app, FastAPI)
        frames = app.state.broadcaster.render(
            RenderRequest(
                code=code,
                state=False,
                results_langs=frozenset(),
                counts_langs=frozenset({"en"}),
            )
        )
        _, theirs = parse(frames.counts["en"])
        theirs = unnumbered(theirs)
        # Every element the view gets is one the projector gets, the same bytes.
        elements = [m.group(0) for m in re.finditer(OOB_ELEMENT, counts, re.S)]
        assert len(elements) == 3  # n-definition, chart-definition, n-belief
        for element in elements:
            assert unnumbered(element) in theirs
        assert 'id="chart-definition"' in counts  # revealed: its chart
        assert 'id="chart-belief"' not in counts  # not revealed: no chart
        assert 'id="n-belief" hx-swap-oob="innerHTML">1<' in counts
        assert 'id="n-field"' not in counts  # never opened
        assert "people__" not in counts and "people__" in theirs  # no participants line

        vote(live_client, code, "belief", "disagree")
        later = stream.until("counts", r'id="n-belief"[^>]*>2<')
        assert 'id="chart-belief"' not in later
        phase_action(live_client, code, "belief", "reveal")
        name, state = stream.next()
        names.append(name)
        assert '"id":"belief","kind":"stance","state":"open","revealed":true' in state
        stream.until("counts", r'id="chart-belief"')
        # Phones' results never come down a view's stream.
        vote(live_client, code, "belief", "agree")
        while True:
            name, data = stream.next()
            names.append(name)
            if name == "counts" and re.search(r'id="n-belief"[^>]*>3<', data):
                break
        assert set(names) <= {"state", "counts"}
    finally:
        stream.close()


# --------------------------------------------------------------------------- the address


def test_unknown_malformed_and_revoked_addresses_get_the_same_404(
    live_client: TestClient,
) -> None:
    code = new_session(live_client)
    log_in(live_client)
    old = issue(live_client, code)
    new = issue(live_client, code)  # replacing revokes the old one
    assert live_client.get(f"/view/{new}").status_code == 200
    remote = issue(live_client, code, "remote")
    live_client.cookies.clear()
    answers = []
    for token in (old, "A" * 22, "short", "x" * 300, "%00", remote, code):
        for suffix in ("", "/stage", "/events"):
            response = live_client.get(f"/view/{token}{suffix}")
            answers.append(
                (response.status_code, response.content, response.headers["cache-control"])
            )
            assert "set-cookie" not in response.headers
    assert set(answers) == {answers[0]}
    assert answers[0][0] == 404
    assert code.encode() not in answers[0][1]

    log_in(live_client)
    revoke(live_client, code)
    live_client.cookies.clear()
    assert live_client.get(f"/view/{new}").content == answers[0][1]


def test_the_control_page_shows_a_token_once_and_keeps_only_its_hash(
    live_client: TestClient,
) -> None:
    code = new_session(live_client)
    log_in(live_client)
    token = issue(live_client, code)
    assert len(token) == 22  # 128 bits
    page = live_client.get(f"/presenter/sessions/{code}").text
    assert token not in page
    assert 'data-token-live="view"' in page
    app = live_client.app
    assert isinstance(app, FastAPI)
    with app.state.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT token_hash, purpose FROM session_token").all()
    assert rows and all(token not in value for row in rows for value in row)
    # Deleting the session takes its tokens with it.
    response = live_client.post(
        f"/presenter/sessions/{code}/delete", data={"confirm": code}, headers=SAME_ORIGIN
    )
    assert response.status_code == 200
    with app.state.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM session_token").scalar() == 0


def test_revoking_the_address_ends_its_open_stream_with_a_message(
    live_client: TestClient,
) -> None:
    code = new_session(live_client)
    log_in(live_client)
    token = issue(live_client, code)
    stream = ViewStream(live_client, token)
    try:
        assert stream.next()[0] == "state"
        revoke(live_client, code)
        name, data = stream.next()
        while name != "ended":
            name, data = stream.next()
        assert data == "This view has ended."
        assert stream.finished()
    finally:
        stream.close()
    assert live_client.get(f"/view/{token}").status_code == 404


def test_the_frame_ancestors_follow_the_operator_and_the_presenter(
    settings: Settings,
) -> None:
    operator = "'self' https://slides.example.org https://deck.example.net"
    app = create_app(settings.model_copy(update={"frame_ancestors": operator}))
    with TestClient(app) as client:
        code = new_session(client)
        log_in(client)
        token = issue(client, code)

        def ancestors() -> str:
            policy = client.get(f"/view/{token}").headers["content-security-policy"]
            return policy.rpartition("frame-ancestors ")[2]

        def frame(**form: str) -> int:
            response = client.post(
                f"/presenter/sessions/{code}/view/framing",
                data=form,
                headers=SAME_ORIGIN,
                follow_redirects=False,
            )
            return response.status_code

        assert ancestors() == operator
        assert frame(framing="https://deck.example.net") == 303
        assert ancestors() == "https://deck.example.net"
        assert frame(framing="https://evil.example.com") == 422  # never wider
        assert ancestors() == "https://deck.example.net"
        assert frame(anywhere="1") == 303
        assert ancestors() == "*"
        token = issue(client, code)  # a new address keeps the session's choice
        assert ancestors() == "*"
        assert frame(framing="") == 303
        assert ancestors() == operator
        # Every other page keeps its own.
        for url in ("/presenter", f"/presenter/sessions/{code}", f"/j/{code}", "/"):
            policy = client.get(url).headers["content-security-policy"]
            assert "frame-ancestors 'self'" in policy, url


def test_display_modes_on_the_same_address(live_client: TestClient) -> None:
    code = new_session(live_client)
    log_in(live_client)
    token = issue(live_client, code)
    phase_action(live_client, code, "belief", "open")
    live_client.cookies.clear()

    def page(query: str) -> str:
        response = live_client.get(f"/view/{token}{query}")
        assert response.status_code == 200, query
        return response.text

    assert 'data-phase="belief"' in page("")
    # A pinned phase: the slide shows its own question, whatever the room is on, and keeps it
    # when the slide is fetched again.
    pinned = page("?phase=field")
    assert 'data-phase="field"' in pinned and 'data-phase="belief"' not in pinned
    assert "most other NLP researchers" in pinned
    assert "Voting is closed" not in pinned  # not asked yet, not closed
    assert f'hx-get="/view/{token}/stage?phase=field&amp;theme=light"' in pinned
    qr = page("?mode=qr&theme=dark")
    assert "slide--qr-only" in qr and "qr-block--big" in qr and "<svg" in qr
    assert "LLMs have emergent" not in qr  # the code alone, no question
    assert 'class="projector view theme-dark view--qr"' in qr
    assert 'class="projector view theme-light view--overlay palette-cb"' in page(
        "?mode=overlay&palette=cb"
    )
    for bad in ("?mode=fancy", "?theme=blue", "?palette=rainbow"):
        assert live_client.get(f"/view/{token}{bad}").status_code == 422
    assert live_client.get(f"/view/{token}?phase=nope").status_code == 404


def test_the_qr_slide_is_a_1920x1080_picture_in_the_rooms_language(
    live_client: TestClient,
) -> None:
    english, chinese = new_session(live_client), new_session(live_client, language="zh-Hans")
    stranger = live_client.get(f"/presenter/sessions/{english}/qr-slide.png")
    assert stranger.url.path == "/presenter/login"  # the presenter's, like the page
    log_in(live_client)
    png = live_client.get(f"/presenter/sessions/{english}/qr-slide.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png.content[16:24]) == (1920, 1080)  # IHDR width, height
    for code, scan in ((english, "Scan to answer, or open"), (chinese, "扫码作答，或打开")):
        svg = live_client.get(f"/presenter/sessions/{code}/qr-slide.svg")
        assert svg.headers["content-type"].startswith("image/svg+xml")
        assert 'width="1920" height="1080"' in svg.text
        assert scan in svg.text
        assert f">{code}<" in svg.text and f">testserver/j/{code}<" in svg.text
        assert "<path d=" in svg.text  # the code itself
    assert live_client.get(f"/presenter/sessions/{english}/qr-slide.gif").status_code == 404
    page = live_client.get(f"/presenter/sessions/{english}").text
    assert f'href="/presenter/sessions/{english}/qr-slide.png"' in page


def test_views_of_a_session_share_one_token_check_per_phase_change(
    live_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A view's stream does nothing more for an update than a phone's: the tokens of a
    session's open views are read once per change of its state, together, whatever their
    number; answers alone read nothing."""
    code = new_session(live_client)
    log_in(live_client)
    token = issue(live_client, code)
    reads: list[set[str]] = []
    real = session_tokens.live_hashes

    def counted(engine: Any, digests: set[str]) -> set[str]:
        reads.append(set(digests))
        return real(engine, digests)

    monkeypatch.setattr(session_tokens, "live_hashes", counted)
    streams = [ViewStream(live_client, token) for _ in range(3)]
    try:
        for stream in streams:
            assert stream.next()[0] == "state"
        phase_action(live_client, code, "belief", "open")
        for stream in streams:
            stream.until("state", '"state":"open"')
        vote(live_client, code, "belief", "agree")
        for stream in streams:
            stream.until("counts", r'id="n-belief"[^>]*>1<')
        # Three views, one read of one hash (besides each view's own as it opens).
        assert len(reads) == 3 + 1 and reads[-1] == reads[0]
        revoke(live_client, code)
        for stream in streams:
            stream.until("ended", "")
            assert stream.finished()
    finally:
        for stream in streams:
            stream.close()
