"""The phone's path under a full room: what is the same for every phone is drawn once, pushed in
the live stream, and served from the session cache; only a phone's own answers are read."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event

from app.deps import SharedPages, urlencoded_fields
from tests import liveserver
from tests.conftest import ADMIN_TOKEN, AUTH, new_session, phase_action
from tests.test_audience import (
    HX,
    error_text,
    form_data,
    participants,
    shown_answer,
    soup_of,
    stored,
    visit,
)
from tests.test_stream import Stream


@contextmanager
def statements(app: FastAPI) -> Iterator[list[str]]:
    """The SQL statements the app sends while the block runs (from any thread)."""
    seen: list[str] = []

    def note(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        seen.append(" ".join(sql.split()))

    engine = app.state.engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def new_phone(app: FastAPI) -> TestClient:
    return TestClient(app)


def htmx_vote(client: TestClient, code: str, phase: str, choice: str, **extra: str) -> str:
    page = visit(client, code)
    data = {**form_data(page), "phase": phase, "choice": choice, "lang": "en", **extra}
    response = client.post(f"/j/{code}/vote", data=data, headers=HX)
    assert response.status_code == 200, response.text
    return response.text


# --------------------------------------------------------------------------- the join page


def test_new_phones_get_the_same_page_drawn_once_and_no_query(
    app: FastAPI, client: TestClient
) -> None:
    code = new_session(client)
    phase_action(client, code, "belief", "open")
    visit(new_phone(app), code)  # the first phone draws the page
    phones = [new_phone(app) for _ in range(3)]
    with statements(app) as sql:
        pages = [phone.get(f"/j/{code}") for phone in phones]
    assert sql == []  # a room arriving together costs no database read
    assert all(p.status_code == 200 and 'id="aud-q-belief"' in p.text for p in pages)
    assert len({p.text for p in pages}) == 1  # served as drawn: nothing of one phone's own
    assert "csrftoken" not in pages[0].text
    assert participants(client, code) == []  # and nobody registered by looking

    # The page's own form works; the same form posted by another page does not.
    first = phones[0]
    data = form_data(soup_of(pages[0].text)) | {"choice": "agree"}
    for refused in (
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://testserver:8001"},  # another port
        {"Origin": "https://evil.example"},  # an older browser: Origin only
        {"Origin": "http://testserver:8001"},
        {"Origin": "null"},  # a sandboxed frame or a file
    ):
        forged = first.post(f"/j/{code}/vote", data=data, headers={**HX, **refused})
        assert forged.status_code == 403, refused
        assert "another site or page" in forged.text
        forged = first.post(f"/j/{code}/vote", data=data, headers=refused)  # without htmx
        assert forged.status_code == 403, refused
    assert stored(client, code) == []
    same = {"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"}
    mine = first.post(f"/j/{code}/vote", data=data, headers={**HX, **same})
    assert mine.status_code == 200 and shown_answer(soup_of(mine.text)) == "agree"
    again = first.post(
        f"/j/{code}/vote",
        data=data | {"choice": "unsure"},
        headers={**HX, "Origin": "http://testserver"},
    )
    assert again.status_code == 200 and shown_answer(soup_of(again.text)) == "unsure"
    assert len(stored(client, code)) == 1


def test_the_shared_page_follows_every_phase_change_at_once(
    app: FastAPI, client: TestClient
) -> None:
    code = new_session(client)
    assert visit(new_phone(app), code).select_one(".aud-wait") is not None
    phase_action(client, code, "belief", "open")
    assert visit(new_phone(app), code).select_one("#aud-q-belief") is not None
    phase_action(client, code, "belief", "close")
    phase_action(client, code, "field", "open")
    page = visit(new_phone(app), code)
    assert page.select_one("#aud-q-field") is not None and page.select_one("#aud-q-belief") is None
    # Per language: a phone that chose Chinese gets the Chinese page, not the English one
    # drawn before.
    chinese = visit(new_phone(app), code, params={"lang": "zh-Hans"})
    assert chinese.html is not None and chinese.html["lang"] == "zh-Hans"


def test_a_phone_that_answered_gets_its_own_page(app: FastAPI, client: TestClient) -> None:
    code = new_session(client)
    phase_action(client, code, "belief", "open")
    htmx_vote(client, code, "belief", "unsure")
    visit(new_phone(app), code)  # another phone's shared page is drawn meanwhile
    page = visit(client, code)
    assert shown_answer(page) == "unsure"
    assert page.select_one("#aud-panel")["data-answered"] == "belief"


# --------------------------------------------------------------------------- the form vote


def test_the_form_vote_reads_nothing_beyond_its_write(app: FastAPI, client: TestClient) -> None:
    code = new_session(client)
    phase_action(client, code, "belief", "open")
    page = visit(client, code)
    data = {**form_data(page), "choice": "disagree"}
    with statements(app) as sql:
        response = client.post(f"/j/{code}/vote", data=data, headers=HX)
    assert response.status_code == 200
    if app.state.engine.dialect.name == "postgresql":
        # the batch's one statement: both upserts, nothing else
        assert len(sql) == 1 and sql[0].startswith("WITH ballot"), sql
        assert "INSERT INTO participant" in sql[0] and "INSERT INTO response" in sql[0]
    else:
        assert sql and all(s.startswith("INSERT INTO") for s in sql), sql
        assert {s.split()[2] for s in sql} == {"participant", "response"}
    panel = soup_of(response.text)
    assert shown_answer(panel) == "disagree"
    assert "recorded" in panel.get_text(" ").lower()
    assert panel.select_one("#aud-panel")["data-answered"] == "belief"


def test_the_vote_answer_lists_the_other_questions_as_the_phone_answered_them(
    client: TestClient,
) -> None:
    code = new_session(client)
    for phase in ("definition", "belief", "field"):
        phase_action(client, code, phase, "open")
    html = htmx_vote(client, code, "belief", "agree", answered="definition,nonsense")
    panel = soup_of(html)
    assert shown_answer(panel) == "agree"
    states = {
        link["href"].rsplit("=", 1)[-1]: link.select_one(".aud-others__state").get_text(strip=True)
        for link in panel.select(".aud-others__link")
    }
    assert states == {"definition": "answered", "field": "not answered yet"}
    # The next question to answer is the one the phone has not answered.
    assert panel.select_one(".aud-next")["href"].endswith("phase=field")
    assert panel.select_one("#aud-panel")["data-answered"] == "belief,definition"


def test_a_vote_after_the_close_is_refused_from_the_cache_too(client: TestClient) -> None:
    code = new_session(client)
    phase_action(client, code, "belief", "open")
    page = visit(client, code)
    phase_action(client, code, "belief", "close")
    data = {**form_data(page), "choice": "agree"}
    response = client.post(f"/j/{code}/vote", data=data, headers=HX)
    assert response.status_code == 409
    panel = soup_of(response.text)
    assert "has closed" in error_text(panel)
    assert panel.select_one(".aud-wait") is not None  # and it shows what is open now: nothing
    assert stored(client, code) == [] and participants(client, code) == []


# --------------------------------------------------------------------------- the pushed panel


def test_a_phase_change_pushes_the_panel_to_phones_and_not_to_the_presenter(
    live_client: TestClient,
) -> None:
    code = new_session(live_client)
    phone = Stream(live_client, code)
    presenter = Stream(live_client, code, presenter=True)
    try:
        names = [phone.next()[0] for _ in range(3)]
        assert names == ["state", "results", "panel"]
        assert [presenter.next()[0] for _ in range(3)] == ["state", "results", "counts"]

        phase_action(live_client, code, "belief", "open", seconds=60)
        html = phone.until("panel", 'data-open="belief@')
        panel = soup_of(html).select_one("#aud-panel")
        assert panel is not None and panel.has_attr("data-shared")
        assert not panel.has_attr("data-answered")
        assert panel.select_one("#aud-q-belief") is not None
        assert panel.select_one(".aud-countdown") is not None
        assert len(panel.select(".aud-option")) == 3

        presenter.until("state", '"state":"open"')
        phase_action(live_client, code, "belief", "close")
        while True:  # the presenter's stream moves on, and never carries a panel
            name, data = presenter.next()
            assert name != "panel"
            if name == "state" and '"state":"closed"' in data:
                break
        assert 'class="aud-wait"' in phone.until("panel", 'data-open=""')
    finally:
        phone.close()
        presenter.close()


def test_the_pushed_panel_is_in_the_phones_language(live_client: TestClient) -> None:
    code = new_session(live_client)
    phase_action(live_client, code, "belief", "open")
    stream = Stream(live_client, code, lang="zh-Hans")
    try:
        html = stream.until("panel", "belief")
        assert "你" in html and "Yes, they do" not in html
    finally:
        stream.close()


def test_shared_pages_keep_a_bounded_number_of_pages() -> None:
    """The key carries the site address from the request: many hosts must not grow it."""
    pages = SharedPages(size=3)
    for n in range(10):
        assert pages.draw(("ABCDEF", "en", f"http://host{n}/"), 1, lambda n=n: f"page {n}") == (
            f"page {n}"
        )
    assert pages.get(("ABCDEF", "en", "http://host9/"), 1) == "page 9"
    assert pages.get(("ABCDEF", "en", "http://host0/"), 1) is None
    assert pages.draws == 10
    assert pages.draw(("ABCDEF", "en", "http://host9/"), 1, lambda: "again") == "page 9"
    assert pages.draw(("ABCDEF", "en", "http://host9/"), 2, lambda: "new stamp") == "new stamp"


FORM_PIECES = ("phase", "choice", "=", "&", "+", "%", "%2", "%41", "%E4%B8%AD", "%zz", ";", "中")


@given(st.lists(st.sampled_from(FORM_PIECES), max_size=14).map("".join))
def test_the_vote_form_is_read_as_the_general_parser_reads_it(body: str) -> None:
    """The vote form is read by hand (the general parser was a twentieth of a vote): every
    body, malformed ones too, gives the first value of each field as ``parse_qsl`` gives it."""
    expected: dict[str, str] = {}
    for name, value in parse_qsl(body, keep_blank_values=True):
        expected.setdefault(name, value)
    assert urlencoded_fields(body) == expected


MULTIPART = (
    b'--zz\r\nContent-Disposition: form-data; name="phase"\r\n\r\nbelief\r\n'
    b'--zz\r\nContent-Disposition: form-data; name="choice"\r\n\r\nagree\r\n--zz--\r\n'
)


@pytest.mark.parametrize(
    ("content_type", "body", "status", "rows"),
    [
        ("multipart/form-data; boundary=zz", MULTIPART, 200, 1),
        ("multipart/form-data; boundary=zz", b"--zz\r\nnot a part", 400, 0),
        ("application/x-www-form-urlencoded", b"phase=belief&choice=agr\xffee", 422, 0),
        ("application/x-www-form-urlencoded", b"phase=belief&phase=x&choice=agree", 200, 1),
        ("text/plain", b"phase=belief&choice=agree", 422, 0),
    ],
    ids=["multipart", "broken-multipart", "not-utf8", "repeated-field", "not-a-form"],
)
def test_the_vote_form_reads_what_browsers_send_and_refuses_the_rest_cleanly(
    client: TestClient, content_type: str, body: bytes, status: int, rows: int
) -> None:
    code = new_session(client)
    phase_action(client, code, "belief", "open")
    visit(client, code)
    response = client.post(
        f"/j/{code}/vote",
        content=body,
        headers={**HX, "Content-Type": content_type, "Sec-Fetch-Site": "same-origin"},
    )
    assert response.status_code == status, response.text
    assert len(stored(client, code)) == rows


# --------------------------------------------------------------------------- a room tapping at once

ROOM_PHONES = 80
ANSWER_DEADLINE_SECONDS = 60
"""Generous: a vote still unanswered after this long is one a phone shows as sent for ever."""


@pytest.fixture
def room_server(tmp_path: Path) -> Iterator[liveserver.LiveServer]:
    """The app as ``beliefgap serve`` runs it: uvicorn with the header deadline protocol."""
    server = liveserver.start(
        tmp_path, ADMIN_TOKEN, args=("--http", "app.limits:HeaderTimeoutProtocol"), timeout=30
    )
    try:
        yield server
    finally:
        server.stop()


async def _tap_as_the_question_opens(server: liveserver.LiveServer, code: str) -> list[str]:
    """ROOM_PHONES phones on the waiting screen, each holding the page's event stream; the
    presenter opens ``belief``; half the phones vote through the form the instant the presenter's
    request comes back, the other half the instant their stream pushes the question. Returns
    what each vote got: its status, or that no answer came within the deadline."""
    limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
    phones = [httpx.AsyncClient(base_url=server.url, limits=limits) for _ in range(ROOM_PHONES)]
    outcomes: list[str] = []
    opened = asyncio.Event()

    async def vote(phone: httpx.AsyncClient) -> None:
        data = {"phase": "belief", "lang": "en", "choice": "agree", "answered": ""}
        headers = {**HX, "Sec-Fetch-Site": "same-origin", "HX-Target": "aud-panel"}
        try:
            reply = await phone.post(
                f"/j/{code}/vote", data=data, headers=headers, timeout=ANSWER_DEADLINE_SECONDS
            )
        except httpx.TimeoutException:
            outcomes.append("no answer")
            return
        recorded = reply.status_code == 200 and shown_answer(soup_of(reply.text)) == "agree"
        outcomes.append("recorded" if recorded else f"{reply.status_code}")

    async def hold(phone: httpx.AsyncClient, listening: asyncio.Event, tap_on_push: bool) -> None:
        url = f"/api/v1/sessions/{code}/events?lang=en&view=phone"
        async with phone.stream("GET", url, timeout=ANSWER_DEADLINE_SECONDS) as stream:
            async for chunk in stream.aiter_raw():
                listening.set()  # the snapshot (the waiting panel) has come
                pushed = b"event: panel" in chunk and b'data-open="belief@' in chunk
                if pushed and tap_on_push:
                    await vote(phone)
                    return
                if opened.is_set() and not tap_on_push:
                    return

    try:
        for phone in phones:
            page = await phone.get(f"/j/{code}")
            assert page.status_code == 200
        listening = [asyncio.Event() for _ in phones]
        holders = [
            asyncio.create_task(hold(phone, ready, tap_on_push=n % 2 == 0))
            for n, (phone, ready) in enumerate(zip(phones, listening, strict=True))
        ]
        await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in listening)), 30)
        async with httpx.AsyncClient(base_url=server.url, headers=AUTH) as presenter:
            reply = await presenter.post(f"/api/v1/sessions/{code}/phases/belief/open")
        assert reply.status_code == 200
        opened.set()
        await asyncio.gather(*(vote(phone) for n, phone in enumerate(phones) if n % 2))
        await asyncio.wait_for(asyncio.gather(*holders), ANSWER_DEADLINE_SECONDS)
    finally:
        for phone in phones:
            await phone.aclose()
    return outcomes


def test_every_vote_sent_as_the_question_opens_is_answered_and_stored(
    room_server: liveserver.LiveServer,
) -> None:
    """A room taps the moment the question appears, while the server is still pushing it to
    the other phones: each phone must get its answer (a phone without one shows its vote as
    still being sent) and each vote must be stored once."""
    created = httpx.post(
        f"{room_server.url}/api/v1/sessions",
        json={"talk": "emergence", "venue": "Aula"},
        headers=AUTH,
        timeout=10,
    )
    code = created.json()["code"]
    outcomes = asyncio.run(_tap_as_the_question_opens(room_server, code))
    assert len(outcomes) == ROOM_PHONES
    assert Counter(outcomes) == {"recorded": ROOM_PHONES}
    with sqlite3.connect(room_server.database) as db:
        rows = db.execute(
            "SELECT count(*) FROM response JOIN poll_session ON poll_session.id = "
            "response.session_id WHERE poll_session.code = ?",
            (code,),
        ).fetchone()[0]
    assert rows == ROOM_PHONES
