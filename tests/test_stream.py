"""The event stream of a session: driven directly under a deadline inside the app's own event
loop, and end to end against a real uvicorn server (reading with a timeout, never forever)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlmodel import Session

from app import audience, sessions
from app.live import Frames, RenderRequest, SessionChanged, encode_event
from app.routes.stream import event_stream, state_json
from tests import liveserver
from tests.conftest import ADMIN_TOKEN, AUTH, new_session, phase_action
from tests.liveserver import LiveServer
from tests.sse import parse, split

DEADLINE = 5.0


class Stream:
    """An event stream generator iterated in the app's event loop, one frame at a time."""

    def __init__(self, client: TestClient, code: str, lang: str = "en", presenter: bool = False):
        self.client = client
        app = client.app
        assert isinstance(app, FastAPI)
        self.frames: AsyncIterator[bytes] = event_stream(
            app.state.broadcaster, code, lang, presenter, app.state.settings.ping_seconds
        )
        self.unread: list[bytes] = []

    async def _next(self) -> bytes:
        return await asyncio.wait_for(anext(self.frames), DEADLINE)

    def next(self) -> tuple[str, str]:
        """The next event (the reconnection delay each stream opens with is not one)."""
        assert self.client.portal is not None
        while True:
            if not self.unread:
                self.unread = split(self.client.portal.call(self._next))
            event = self.unread.pop(0)
            if not event.startswith(b"retry: "):
                return parse(event)

    def until(self, event: str, pattern: str) -> str:
        """Frames until one of ``event`` whose data matches ``pattern`` (each under the
        deadline)."""
        while True:
            name, data = self.next()
            if name == event and re.search(pattern, data):
                return data

    def close(self) -> None:
        assert self.client.portal is not None
        self.client.portal.call(self.frames.aclose)  # type: ignore[attr-defined]


def vote(client: TestClient, code: str, phase: str, choice: str) -> None:
    """One vote from a new phone (a fresh participant cookie each time)."""
    for name in list(client.cookies.keys()):
        if name.startswith("bg_p_"):
            del client.cookies[name]
    response = client.post(
        f"/api/v1/sessions/{code}/votes", json={"phase": phase, "choice": choice}
    )
    assert response.status_code == 200, response.text


def test_a_phone_gets_the_state_first_then_revealed_results_as_votes_arrive(
    live_client: TestClient,
) -> None:
    code = new_session(live_client)
    phase_action(live_client, code, "belief", "open")
    stream = Stream(live_client, code)
    try:
        event, data = stream.next()
        assert event == "state"
        assert '"id":"belief","kind":"stance","state":"open","revealed":false' in data
        assert '"closes_at":null' in data
        event, data = stream.next()
        assert event == "results"
        assert 'id="revealed-results"' in data
        assert "phase-result" not in data  # nothing revealed: nothing to see

        phase_action(live_client, code, "belief", "reveal")
        data = stream.until("state", '"revealed":true')
        vote(live_client, code, "belief", "agree")
        html = stream.until("results", r"\(1\)")
        assert 'data-phase="belief"' in html
        assert "Yes, they do" in html
    finally:
        stream.close()


def test_the_state_carries_the_countdown_in_utc(live_client: TestClient) -> None:
    code = new_session(live_client)
    phase_action(live_client, code, "belief", "open", seconds=60)
    stream = Stream(live_client, code)
    try:
        event, data = stream.next()
        assert event == "state"
        phases = {p["id"]: p for p in json.loads(data)["phases"]}
        closes_at = datetime.fromisoformat(phases["belief"]["closes_at"])
        assert closes_at.utcoffset() == timedelta(0)
        assert 50 < (closes_at - datetime.now(UTC)).total_seconds() <= 60
        assert phases["field"]["closes_at"] is None
    finally:
        stream.close()


def test_frames_showing_a_countdown_are_marked_as_moving_with_time(
    live_client: TestClient,
) -> None:
    """A snapshot is handed to the phones that connect after it, unless time alone moves it on:
    the live renderer marks the frames of a session whose question has a countdown."""
    app = live_client.app
    assert isinstance(app, FastAPI)
    render = app.state.broadcaster.render
    timed, plain = new_session(live_client), new_session(live_client)
    phase_action(live_client, timed, "belief", "open", seconds=60)
    phase_action(live_client, plain, "belief", "open")
    for code, moving in ((timed, True), (plain, False)):
        frames = render(
            RenderRequest(
                code=code,
                state=True,
                results_langs=frozenset({"en"}),
                counts_langs=frozenset(),
                panel_langs=frozenset({"en"}),
            )
        )
        assert b"data-open=" in frames.panels["en"]
        assert frames.timed is moving


def test_a_phone_never_receives_unrevealed_results(live_client: TestClient) -> None:
    code = new_session(live_client)
    phase_action(live_client, code, "definition", "open")
    phase_action(live_client, code, "belief", "open")
    phase_action(live_client, code, "definition", "reveal")
    stream = Stream(live_client, code)
    try:
        assert stream.next()[0] == "state"
        vote(live_client, code, "belief", "disagree")
        vote(live_client, code, "definition", "d1")
        html = stream.until("results", r"\(1\)")
        assert 'data-phase="definition"' in html
        assert 'data-phase="belief"' not in html
    finally:
        stream.close()


def test_the_presenter_gets_counts_of_every_phase(live_client: TestClient) -> None:
    code = new_session(live_client)
    phase_action(live_client, code, "belief", "open")
    stream = Stream(live_client, code, presenter=True)
    try:
        assert [stream.next()[0] for _ in range(3)] == ["state", "results", "counts"]
        vote(live_client, code, "belief", "unsure")
        counts = stream.until("counts", r'id="n-belief"[^>]*>1<')
        assert "1 answered" in counts
        assert 'id="chart-belief"' in counts  # the live chart, before any reveal
    finally:
        stream.close()


def test_chinese_streams_render_chinese_labels(live_client: TestClient) -> None:
    code = new_session(live_client)
    phase_action(live_client, code, "belief", "open")
    phase_action(live_client, code, "belief", "reveal")
    stream = Stream(live_client, code, lang="zh-Hans")
    try:
        stream.next()
        assert "是的，具有" in stream.next()[1]
    finally:
        stream.close()


def test_a_burst_of_100_votes_gives_a_handful_of_renders_and_exact_counts(
    live_client: TestClient, live_app: FastAPI
) -> None:
    code = new_session(live_client)
    phase_action(live_client, code, "belief", "open")
    broadcaster = live_app.state.broadcaster
    stream = Stream(live_client, code, presenter=True)
    try:
        for _ in range(3):
            stream.next()
        renders_before = broadcaster.renders
        started = time.monotonic()
        for i in range(100):
            vote(live_client, code, "belief", ("agree", "disagree", "unsure")[i % 3])
        elapsed = time.monotonic() - started
        counts = stream.until("counts", r'id="n-belief"[^>]*>100<')
        assert "100 answered" in counts
        renders = broadcaster.renders - renders_before
        # at most one render per tick while the votes came in, plus the one after the last
        assert renders <= elapsed / broadcaster.tick + 3, (renders, elapsed)
        assert renders < 100
    finally:
        stream.close()


def test_a_stream_s_first_render_reads_the_phases_once_per_change(
    live_client: TestClient, live_app: FastAPI
) -> None:
    """What a phase change sets is read once per change, then every new stream's snapshot and
    every tick is drawn from it: nothing read while no phase is revealed (the phones' results
    then show no answer), only the counts once one is; the same bytes as drawn from the
    database, and never stale after a vote, a reveal or the session's end."""
    phase_facts: list[SessionChanged] = []
    live_app.state.broadcaster.listen(lambda f: phase_facts.append(f) if f.phases else None)

    def echoed(changes: int) -> None:
        """Until the broadcast of each phase change is back here too (on PostgreSQL a fact
        comes back from the database after the commit's own, and moves the cache on again)."""
        deadline = time.monotonic() + DEADLINE
        while len(phase_facts) < changes:
            assert time.monotonic() < deadline, phase_facts
            time.sleep(0.01)

    code = new_session(live_client)
    phase_action(live_client, code, "belief", "open")
    for choice in ("agree", "agree", "unsure"):
        vote(live_client, code, "belief", choice)
    echoed(1)
    render = live_app.state.broadcaster.render
    snapshot = RenderRequest(
        code=code,
        state=True,
        results_langs=frozenset({"en"}),
        counts_langs=frozenset(),
        panel_langs=frozenset({"en"}),
    )
    queries: list[str] = []
    event.listen(live_app.state.engine, "before_cursor_execute", lambda *a: queries.append(a[2]))

    def drawn(request: RenderRequest = snapshot) -> tuple[Frames, int]:
        before = len(queries)
        frames = render(request)
        return frames, len(queries) - before

    def same(frames: Frames) -> bool:
        """The frames are what the database holds (charts' ids aside: drawn from a counter)."""
        return (frames.state, uids(frames.results["en"])) == from_the_database()

    def uids(html: bytes) -> bytes:
        return re.sub(rb"-c\d+-", b"-c-", html)

    def from_the_database() -> tuple[bytes, bytes]:
        templates = live_app.state.templates
        with Session(live_app.state.engine) as db:
            poll = sessions.get_session(db, code)
            state = encode_event("state", state_json(sessions.session_public(db, poll)))
            room = audience.load_room_results(db, poll)
        html = templates.get_template("partials/_revealed.html").render(room=room, lang="en")
        return state, uids(encode_event("results", html))

    drawn()  # this change's one read
    frames, read = drawn()
    assert read == 0
    assert same(frames)
    assert "phase-result" not in frames.results["en"].decode()

    phase_action(live_client, code, "belief", "reveal")
    echoed(2)
    drawn()
    frames, read = drawn()
    assert read == 1  # the answers' counts
    assert same(frames)
    assert "(2)" in frames.results["en"].decode()  # two said yes
    vote(live_client, code, "belief", "agree")
    frames, _ = drawn(RenderRequest(code, False, frozenset({"en"}), frozenset()))
    assert "(3)" in frames.results["en"].decode()

    response = live_client.patch(f"/api/v1/sessions/{code}", json={"ended": True}, headers=AUTH)
    assert response.status_code == 200, response.text
    frames, _ = drawn()
    assert json.loads(parse(frames.state or b"")[1])["ended"] is True
    assert same(frames)
    assert "data-ended" in frames.results["en"].decode()


def test_unknown_session_stream_is_a_404(live_client: TestClient) -> None:
    response = live_client.get("/api/v1/sessions/ZZZZZZ/events")
    assert response.status_code == 404


# --------------------------------------------------------------------------- real server


def sse_events(response: httpx.Response) -> Iterator[tuple[str, str]]:
    event, data = "", []
    for line in response.iter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[6:] if line.startswith("data: ") else line[5:])
        elif line == "":
            if event or data:
                yield event, "\n".join(data)
            event, data = "", []


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    running = liveserver.start(tmp_path, ADMIN_TOKEN, public_url="http://192.0.2.10:8000")
    try:
        yield running
    finally:
        running.stop()


def test_live_stream_against_uvicorn(server: LiveServer) -> None:
    api = httpx.Client(base_url=server.url, headers=AUTH, timeout=5)
    code = api.post("/api/v1/sessions", json={"talk": "emergence", "venue": "Cardiff"}).json()[
        "code"
    ]
    api.post(f"/api/v1/sessions/{code}/phases/belief/open").raise_for_status()
    api.post(f"/api/v1/sessions/{code}/phases/belief/reveal").raise_for_status()
    with httpx.stream("GET", f"{server.url}/api/v1/sessions/{code}/events", timeout=5) as phone:
        assert phone.headers["content-type"].startswith("text/event-stream")
        events = sse_events(phone)
        event, data = next(events)
        assert event == "state" and f'"code":"{code}"' in data
        event, data = next(events)
        assert event == "results"
        assert "<figure" in data and "\n" in data  # multi-line HTML arrives whole
        httpx.post(
            f"{server.url}/api/v1/sessions/{code}/votes",
            json={"phase": "belief", "choice": "agree"},
            timeout=5,
        ).raise_for_status()
        for event, data in events:  # each read times out after 5 s
            if event == "results" and "100% (1)" in data:
                break
            assert event != "counts", "a phone must not receive the presenter's counts"
    with httpx.stream(
        "GET", f"{server.url}/api/v1/sessions/{code}/events", headers=AUTH, timeout=5
    ) as presenter:
        events = sse_events(presenter)
        assert [next(events)[0] for _ in range(3)] == ["state", "results", "counts"]


def test_the_phone_pages_stream_gets_panels_even_in_the_presenters_browser(
    server: LiveServer,
) -> None:
    """A presenter trying the phone page in their own browser is a phone there: pushed panels,
    no counts."""
    api = httpx.Client(base_url=server.url, headers=AUTH, timeout=5)
    code = api.post("/api/v1/sessions", json={"talk": "emergence", "venue": "Oslo"}).json()["code"]
    url = f"{server.url}/api/v1/sessions/{code}/events"
    with httpx.stream("GET", url, params={"view": "phone"}, headers=AUTH, timeout=5) as phone:
        names = [name for name, _ in itertools.islice(sse_events(phone), 3)]
    assert names == ["state", "results", "panel"]
    refused = httpx.get(url, params={"view": "projector"}, timeout=5)
    assert refused.status_code == 422


def test_shutdown_with_an_open_stream_finishes_promptly(server: LiveServer) -> None:
    api = httpx.Client(base_url=server.url, headers=AUTH, timeout=5)
    code = api.post("/api/v1/sessions", json={"talk": "emergence", "venue": "Milan"}).json()["code"]
    with httpx.stream("GET", f"{server.url}/api/v1/sessions/{code}/events", timeout=5) as phone:
        assert next(sse_events(phone))[0] == "state"
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=8)
        except subprocess.TimeoutExpired:
            pytest.fail("the server did not stop within 8 s with a stream open")
        output = server.output()
        # uvicorn re-raises the signal after a clean shutdown
        assert server.process.returncode in (0, -signal.SIGTERM), output
        assert "Application shutdown complete" in output


def test_several_workers_with_the_in_process_backend_refuse_to_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BELIEFGAP_")}
    env.update(
        PYTHONPATH=str(liveserver.ROOT), BELIEFGAP_DATA_DIR=str(tmp_path), WEB_CONCURRENCY="2"
    )
    code = (
        "import asyncio\n"
        "from app.main import create_app\n"
        "app = create_app()\n"
        "async def main():\n"
        "    async with app.router.lifespan_context(app):\n"
        "        pass\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert b"in-process broadcast backend" in result.stderr
