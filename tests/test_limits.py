"""Abuse limits (app.limits): votes per participant, new participants per address, event
streams per participant and per address, and a deadline on request headers. Each refusal is a
429 with Retry-After that changes nothing; the phone's page says so in its language.

The app under test runs with low limits where a test would otherwise need thousands of
requests; the defaults are checked too (a full hall behind one address passes, and the same
hall scaled down with every limit gets in after a device behind its address flooded), and the
header deadline against real sockets on a live server."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from bs4 import BeautifulSoup
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from app.limits import Limits, OpenCounts, TokenBuckets, address_key
from app.main import create_app
from app.models import Participant, Response
from app.settings import Settings
from tests import liveserver
from tests.conftest import ADMIN_TOKEN, AUTH, new_session, phase_action
from tests.liveserver import LiveServer

HX = {"HX-Request": "true"}
ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}
DEADLINE = 10.0
SERVE = (sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1")
BELIEF = {"phase": "belief", "choice": "agree"}


def limited_app(settings: Settings, **limits: Any) -> FastAPI:
    return create_app(settings.model_copy(update=limits))


def count(app: FastAPI, model: Any) -> int:
    with Session(app.state.engine) as db:
        return int(db.exec(select(func.count()).select_from(model)).one())


def soup_of(text: str) -> BeautifulSoup:
    return BeautifulSoup(text, "html.parser")


def form_of(client: TestClient, code: str, **kwargs: Any) -> dict[str, str]:
    """The vote form's fields as the phone's page has them."""
    page = client.get(f"/j/{code}", **kwargs)
    assert page.status_code == 200, page.text
    form = soup_of(page.text).select_one("#aud-panel form")
    assert form is not None
    return {str(f["name"]): str(f.get("value", "")) for f in form.select("input[name]")}


def assert_refused(response: httpx.Response, code: str) -> None:
    assert response.status_code == 429, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["code"] == code
    assert response.json()["detail"]


# --------------------------------------------------------------------------- the counters


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_lets_a_burst_through_then_the_rate_and_says_how_long_to_wait() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=2.0, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)  # one token every half second
    assert buckets.take("b") == 0.0  # another key has its own bucket
    clock.now += 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
    clock.now += 10  # refilled, but never above the burst
    assert [buckets.take("a") for _ in range(4)][-1] > 0


def test_buckets_at_rest_are_forgotten_and_their_number_is_bounded() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=1.0, burst=5, clock=clock, max_keys=100)
    for key in range(100):
        buckets.take(key)
    assert len(buckets) == 100
    buckets.take("one more")  # the oldest key makes room
    assert len(buckets) == 100
    clock.now += 60  # every bucket is full again: a sweep forgets them
    buckets.take("fresh")
    assert len(buckets) == 1
    assert TokenBuckets(rate=0, burst=5).take("x") == 0.0  # 0 turns a limit off


def test_open_counts_follow_what_is_open() -> None:
    counts = OpenCounts(cap=2)
    counts.add("a")
    counts.add("a")
    assert counts.full("a") and not counts.full("b")
    counts.remove("a")
    counts.remove("a")
    assert len(counts) == 0
    assert not OpenCounts(cap=0).full("a")


def test_addresses_are_keyed_by_host_ipv6_by_its_64_and_never_kept_in_clear() -> None:
    salt = b"0" * 16

    def key(host: str) -> bytes:
        return address_key({"client": (host, 1234)}, salt)

    assert key("203.0.113.5") != key("203.0.113.6")
    assert key("2001:db8:1:2::a") == key("2001:db8:1:2:ffff::b")  # one network's /64
    assert key("2001:db8:1:2::a") != key("2001:db8:1:3::a")
    assert key("::ffff:203.0.113.5") == key("203.0.113.5")
    assert b"203.0.113.5" not in key("203.0.113.5")
    assert address_key({"client": ("203.0.113.5", 1)}, b"1" * 16) != key("203.0.113.5")
    assert address_key({"client": None}, salt) == key("")


# --------------------------------------------------------------------------- votes (API)


def test_cookieless_api_votes_are_limited_per_address_and_refusals_store_nothing(
    settings: Settings,
) -> None:
    app = limited_app(
        settings, limit_new_participant_burst=5, limit_new_participants_per_second=0.01
    )
    with TestClient(app) as client:
        code = new_session(client)
        phase_action(client, code, "belief", "open")
        statuses = []
        for _ in range(8):
            client.cookies.clear()  # a script that drops its cookie every time
            response = client.post(f"/api/v1/sessions/{code}/votes", json=BELIEF)
            statuses.append(response.status_code)
        assert statuses == [200] * 5 + [429] * 3
        assert_refused(response, "too_many_new_participants")
        assert int(response.headers["retry-after"]) > 60  # 0.01 a second: a long wait
        assert "set-cookie" not in response.headers
        assert count(app, Participant) == 5
        assert count(app, Response) == 5


def test_a_participant_hammering_one_cookie_is_limited_and_others_are_not(
    settings: Settings,
) -> None:
    app = limited_app(settings, limit_vote_burst=4, limit_votes_per_second=0.01)
    with TestClient(app) as phone, TestClient(app) as other:
        code = new_session(phone)
        phase_action(phone, code, "belief", "open")
        first = phone.post(f"/api/v1/sessions/{code}/votes", json=BELIEF)  # gets the cookie
        assert first.status_code == 200
        answers = ["disagree", "unsure", "agree", "disagree", "unsure"]
        statuses = [
            phone.post(
                f"/api/v1/sessions/{code}/votes", json={"phase": "belief", "choice": choice}
            ).status_code
            for choice in answers
        ]
        assert statuses == [200, 200, 200, 200, 429]  # the first new vote took no token
        refused = phone.post(f"/api/v1/sessions/{code}/votes", json=BELIEF)
        assert_refused(refused, "too_many_votes")
        assert other.post(f"/api/v1/sessions/{code}/votes", json=BELIEF).status_code == 200
        exported = phone.get(f"/api/v1/sessions/{code}/export.json", headers=AUTH).json()
        mine = first.json()["participant"]
        kept = [r["choice"] for r in exported["responses"] if r["participant"] == mine]
        assert kept == ["disagree"]  # the last accepted answer; the refused ones changed nothing


def test_the_defaults_let_a_phone_re_vote_several_times_a_second(client: TestClient) -> None:
    code = new_session(client)
    phase_action(client, code, "belief", "open")
    for choice in ["agree", "disagree", "unsure"] * 10:  # 30 taps, as fast as they come
        response = client.post(
            f"/api/v1/sessions/{code}/votes", json={"phase": "belief", "choice": choice}
        )
        assert response.status_code == 200, response.text


# --------------------------------------------------------------------------- the phone's page


def test_the_htmx_form_answers_429_with_the_panel_and_retry_after(settings: Settings) -> None:
    app = limited_app(settings, limit_vote_burst=2, limit_votes_per_second=0.01)
    with TestClient(app) as phone:
        code = new_session(phone)
        phase_action(phone, code, "belief", "open")
        data = {**form_of(phone, code), "choice": "agree"}
        for _ in range(2):
            assert phone.post(f"/j/{code}/vote", data=data, headers=HX).status_code == 200
        refused = phone.post(f"/j/{code}/vote", data={**data, "choice": "unsure"}, headers=HX)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 60  # one vote every 100 s
        panel = soup_of(refused.text)
        assert "<html" not in refused.text
        message = panel.select_one(".aud-msg--error")
        assert message is not None and "wait a few seconds" in message.get_text()
        exported = phone.get(f"/api/v1/sessions/{code}/export.json", headers=AUTH).json()
        assert [r["choice"] for r in exported["responses"]] == ["agree"]  # "unsure" refused


def test_the_plain_form_answers_429_with_the_page_in_the_phones_language(
    settings: Settings,
) -> None:
    app = limited_app(settings, limit_vote_burst=1, limit_votes_per_second=0.01)
    with TestClient(app) as phone:
        code = new_session(phone)
        phase_action(phone, code, "belief", "open")
        phone.get(f"/j/{code}", params={"lang": "zh-Hans"})  # the phone chooses Chinese
        data = {**form_of(phone, code, headers=ZH), "choice": "agree"}
        sent = phone.post(f"/j/{code}/vote", data=data, headers=ZH, follow_redirects=False)
        assert sent.status_code == 303
        refused = phone.post(f"/j/{code}/vote", data=data, headers=ZH, follow_redirects=False)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 1
        page = soup_of(refused.text)
        assert page.html is not None and page.html["lang"] == "zh-Hans"
        message = page.select_one(".aud-msg--error")
        assert message is not None and "请等几秒钟后再作答" in message.get_text()
        assert page.select_one("#aud-panel form") is not None  # the question, to answer again


def test_the_join_page_holds_new_phones_back_with_a_page_that_reloads_itself(
    settings: Settings,
) -> None:
    app = limited_app(
        settings, limit_new_participant_burst=2, limit_new_participants_per_second=0.05
    )
    with TestClient(app) as presenter:  # the app runs as long as this client
        code = new_session(presenter)
        phase_action(presenter, code, "belief", "open")
        phones = [TestClient(app) for _ in range(4)]
        # Pages alone spend nothing: a cookie costs its address a new participant at its
        # first vote.
        for _ in range(5):
            assert phones[3].get(f"/j/{code}").status_code == 200
            phones[3].cookies.clear()
        for phone in phones[:2]:
            data = {**form_of(phone, code), "choice": "agree"}
            assert phone.post(f"/j/{code}/vote", data=data, headers=HX).status_code == 200
        held = phones[2].get(f"/j/{code}")
        assert held.status_code == 429
        wait = int(held.headers["retry-after"])
        assert 10 < wait <= 20  # one new participant every 20 s
        assert f"bg_p_{code}" not in held.cookies  # no participant handed out
        page = soup_of(held.text)
        refresh = page.select_one('meta[http-equiv="refresh"]')
        assert refresh is not None and wait <= int(str(refresh["content"])) <= wait + 4
        assert "joining at once" in page.get_text()
        assert page.select_one(f'a[href="/j/{code}"]') is not None
        chinese = soup_of(phones[3].get(f"/j/{code}", params={"lang": "zh-Hans"}).text)
        assert "同时加入" in chinese.get_text()
        # A phone that already voted is never held back, nor are its next votes counted as new.
        assert phones[0].get(f"/j/{code}").status_code == 200
        data = {**form_of(phones[0], code), "choice": "disagree"}
        assert phones[0].post(f"/j/{code}/vote", data=data, headers=HX).status_code == 200
        assert count(app, Participant) == 2


def test_a_first_vote_over_the_burst_is_refused_in_the_phones_language_and_stores_nothing(
    settings: Settings,
) -> None:
    """A phone that joined before the address's burst was spent keeps its page; its first vote
    waits (429, its panel says why; the page's script sends it again after Retry-After)."""
    app = limited_app(
        settings, limit_new_participant_burst=1, limit_new_participants_per_second=0.05
    )
    with TestClient(app) as first, TestClient(app) as late:
        code = new_session(first)
        phase_action(first, code, "belief", "open")
        late_form = {**form_of(late, code, params={"lang": "zh-Hans"}), "choice": "agree"}
        data = {**form_of(first, code), "choice": "agree"}
        assert first.post(f"/j/{code}/vote", data=data, headers=HX).status_code == 200
        refused = late.post(f"/j/{code}/vote", data=late_form, headers=HX)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 10
        assert "首次作答" in soup_of(refused.text).get_text()
        assert refused.headers["x-refusal"] == "too_many_new_participants"  # the script's word
        assert count(app, Response) == 1


# --------------------------------------------------------------------------- event streams


async def open_stream(
    port: int, code: str, headers: dict[str, str] | None = None
) -> tuple[int, asyncio.StreamWriter]:
    """Open an event stream on a raw socket: its status, and the socket (held open)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    writer.write(f"GET /api/v1/sessions/{code}/events HTTP/1.1\r\nHost: t\r\n{lines}\r\n".encode())
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), DEADLINE)
    parts = status.split()
    return (int(parts[1]) if len(parts) > 1 else 0), writer


async def opened_once_freed(
    port: int, code: str, headers: dict[str, str] | None = None
) -> asyncio.StreamWriter:
    """A stream opened as soon as the server has counted closed ones off (it notices a closed
    socket at once; this only waits for that to happen, under the deadline)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        status, writer = await open_stream(port, code, headers)
        if status == 200:
            return writer
        writer.close()
        assert status == 429 and time.monotonic() < deadline, status
        await asyncio.sleep(0.05)


def close_all(writers: list[asyncio.StreamWriter]) -> None:
    for writer in writers:
        writer.close()


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the tests below; each counts from 127.0.0.1 only what it closes again
    (and joins once: three joins in all), or from addresses of its own."""
    server = liveserver.start(
        tmp_path_factory.mktemp("capped"),
        ADMIN_TOKEN,
        env={
            "BELIEFGAP_LIMIT_STREAMS_PER_PARTICIPANT": "2",
            "BELIEFGAP_LIMIT_STREAMS_PER_ADDRESS": "5",
            "BELIEFGAP_LIMIT_NEW_PARTICIPANT_BURST": "3",
            "BELIEFGAP_LIMIT_NEW_PARTICIPANTS_PER_SECOND": "0.01",
            "BELIEFGAP_LIMIT_OPEN_STREAMS": "8",
        },
    )
    try:
        yield server
    finally:
        server.stop()


def open_session(server: LiveServer) -> str:
    created = httpx.post(
        f"{server.url}/api/v1/sessions",
        json={"talk": "emergence", "venue": "Leeds"},
        headers=server.auth,
        timeout=DEADLINE,
    )
    created.raise_for_status()
    return str(created.json()["code"])


def join_cookie(server: LiveServer, code: str, headers: dict[str, str] | None = None) -> str:
    page = httpx.get(f"{server.url}/j/{code}", headers=headers, timeout=DEADLINE)
    assert page.status_code == 200, page.text
    return "; ".join(f"{name}={value}" for name, value in page.cookies.items())


def test_streams_are_capped_per_participant_and_per_address(capped: LiveServer) -> None:
    code = open_session(capped)
    phone = {"Cookie": join_cookie(capped, code)}

    async def play() -> None:
        held: list[asyncio.StreamWriter] = []
        try:
            for expected in (200, 200, 429):  # a phone with many tabs
                status, writer = await open_stream(capped.port, code, phone)
                held.append(writer)
                assert status == expected
            held.pop().close()
            held.pop().close()  # one tab closed: the phone may open another
            held.append(await opened_once_freed(capped.port, code, phone))
            statuses = []
            for _ in range(6):  # streams without a cookie: only the address counts
                status, writer = await open_stream(capped.port, code)
                held.append(writer)
                statuses.append(status)
            assert statuses == [200, 200, 200, 429, 429, 429]  # 2 of the phone's + 3
            close_all(held)
            held.clear()
            held.append(await opened_once_freed(capped.port, code))  # closed streams count off
        finally:
            close_all(held)

    asyncio.run(play())


def test_a_refused_stream_says_why_and_when_to_come_back(capped: LiveServer) -> None:
    code = open_session(capped)
    phone = {"Cookie": join_cookie(capped, code)}
    with (
        httpx.stream("GET", f"{capped.url}/api/v1/sessions/{code}/events", headers=phone),
        httpx.stream("GET", f"{capped.url}/api/v1/sessions/{code}/events", headers=phone),
    ):
        refused = httpx.get(
            f"{capped.url}/api/v1/sessions/{code}/events", headers=phone, timeout=DEADLINE
        )
        assert_refused(refused, "too_many_streams")


def test_the_presenters_screens_do_not_count_against_a_phone_tab_in_the_same_browser(
    capped: LiveServer,
) -> None:
    code = open_session(capped)
    laptop = {"Cookie": join_cookie(capped, code), **capped.auth}  # a phone tab opened too

    async def screens() -> list[int]:
        opened = [await open_stream(capped.port, code, laptop) for _ in range(3)]
        close_all([writer for _, writer in opened])
        return [status for status, _ in opened]

    assert asyncio.run(screens()) == [200, 200, 200]  # over the cap of 2 per participant


def test_the_limits_count_the_address_a_trusted_proxy_forwards(capped: LiveServer) -> None:
    """uvicorn believes X-Forwarded-For from 127.0.0.1 (FORWARDED_ALLOW_IPS), as from the
    proxy in deploy/: then each client behind the proxy has its own count."""
    code = open_session(capped)

    def joins(address: str) -> list[int]:
        """Four new phones behind ``address``, each answering once it has its page."""
        forwarded = {"X-Forwarded-For": address}
        statuses = []
        for _ in range(4):
            page = httpx.get(f"{capped.url}/j/{code}", headers=forwarded, timeout=DEADLINE)
            statuses.append(page.status_code)
            if page.status_code == 200:
                httpx.post(
                    f"{capped.url}/api/v1/sessions/{code}/votes",
                    json=BELIEF,
                    headers=forwarded,
                    cookies=page.cookies,
                    timeout=DEADLINE,
                ).raise_for_status()
        return statuses

    httpx.post(
        f"{capped.url}/api/v1/sessions/{code}/phases/belief/open",
        headers=capped.auth,
        timeout=DEADLINE,
    ).raise_for_status()
    assert joins("198.51.100.7") == [200, 200, 200, 429]
    assert joins("198.51.100.8") == [200, 200, 200, 429]


def test_the_server_caps_its_open_streams_across_all_addresses(capped: LiveServer) -> None:
    """Addresses each under their own caps (an IPv6 block can bring many) still meet the
    server's cap on open streams: 429 with Retry-After, and a stream closed frees a place."""
    code = open_session(capped)
    cap = 8  # BELIEFGAP_LIMIT_OPEN_STREAMS of the fixture

    async def play() -> None:
        held: list[asyncio.StreamWriter] = []
        try:
            for n in range(cap):
                status, writer = await open_stream(
                    capped.port, code, {"X-Forwarded-For": f"203.0.113.{n}"}
                )
                held.append(writer)
                assert status == 200
            status, writer = await open_stream(
                capped.port, code, {"X-Forwarded-For": "203.0.113.99"}
            )
            held.append(writer)
            assert status == 429
            refused = httpx.get(
                f"{capped.url}/api/v1/sessions/{code}/events",
                headers={"X-Forwarded-For": "203.0.113.100"},
                timeout=DEADLINE,
            )
            assert_refused(refused, "too_many_streams")
            held.pop(0).close()
            held.append(
                await opened_once_freed(capped.port, code, {"X-Forwarded-For": "203.0.113.99"})
            )
        finally:
            close_all(held)

    asyncio.run(play())


HALL_SCALE = 50
"""The hall test below plays a hall of 5,000 phones as 100, every limit scaled down alike."""


@pytest.fixture
def hall_server(tmp_path: Path) -> Iterator[LiveServer]:
    """The default limits divided by ``HALL_SCALE``."""
    defaults = Settings()
    scaled = {
        "BELIEFGAP_LIMIT_NEW_PARTICIPANT_BURST": defaults.limit_new_participant_burst,
        "BELIEFGAP_LIMIT_NEW_PARTICIPANTS_PER_SECOND": defaults.limit_new_participants_per_second,
        "BELIEFGAP_LIMIT_STREAMS_PER_ADDRESS": defaults.limit_streams_per_address,
        "BELIEFGAP_LIMIT_COOKIELESS_STREAMS_PER_ADDRESS": (
            defaults.limit_cookieless_streams_per_address
        ),
        "BELIEFGAP_LIMIT_OPEN_STREAMS": defaults.limit_open_streams,
    }
    env = {name: str(value / HALL_SCALE) for name, value in scaled.items()}
    env = {name: value.removesuffix(".0") for name, value in env.items()}
    server = liveserver.start(tmp_path, ADMIN_TOKEN, env=env)
    try:
        yield server
    finally:
        server.stop()


def test_a_hall_behind_one_address_gets_in_even_after_a_device_there_flooded(
    hall_server: LiveServer,
) -> None:
    """One address (one NAT): first a device that drops its cookies loads the join page twice
    the hall's burst and opens streams without a cookie, then a hall of 5,000 / HALL_SCALE
    phones each join, hold their stream and answer. The device is held to its cookie-less
    streams; no phone meets a limit."""
    phones = 5000 // HALL_SCALE
    code = open_session(hall_server)
    httpx.post(
        f"{hall_server.url}/api/v1/sessions/{code}/phases/belief/open",
        headers=hall_server.auth,
        timeout=DEADLINE,
    ).raise_for_status()
    join = f"{hall_server.url}/j/{code}"
    with httpx.Client(timeout=DEADLINE) as device:
        pages = []
        for _ in range(2 * Settings().limit_new_participant_burst // HALL_SCALE):
            pages.append(device.get(join).status_code)
            device.cookies.clear()
    assert set(pages) == {200}

    async def play(phone: httpx.Client) -> tuple[list[int], list[int]]:
        held: list[asyncio.StreamWriter] = []
        try:
            flood = []
            for _ in range(3):
                status, writer = await open_stream(hall_server.port, code)
                held.append(writer)
                flood.append(status)
            hall = []
            for _ in range(phones):
                # A new phone: no cookie (the jar is emptied), its own from the join page on.
                phone.cookies.clear()
                page = await asyncio.to_thread(phone.get, join)
                hall.append(page.status_code)
                cookie = "; ".join(f"{k}={v}" for k, v in page.cookies.items())
                status, writer = await open_stream(hall_server.port, code, {"Cookie": cookie})
                held.append(writer)
                hall.append(status)
                assert dict(phone.cookies) == dict(page.cookies)
                voted = await asyncio.to_thread(
                    phone.post, f"{hall_server.url}/api/v1/sessions/{code}/votes", json=BELIEF
                )
                hall.append(voted.status_code)
            return flood, hall
        finally:
            close_all(held)

    # One client for the hall's phones, each in turn (a client of its own per phone spent most
    # of the test building clients: about 40 ms each, against a few for a request).
    with httpx.Client(timeout=DEADLINE) as phone:
        flood, hall = asyncio.run(play(phone))
    assert flood == [200, 429, 429]  # one cookie-less stream per address at this scale
    assert hall == [200] * (3 * phones)
    with sqlite3.connect(f"file:{hall_server.database}?mode=ro", uri=True) as db:
        assert db.execute("SELECT count(*) FROM participant").fetchone() == (phones,)
        assert db.execute("SELECT count(*) FROM response").fetchone() == (phones,)


# --------------------------------------------------------------------------- slow headers


def slow_headers(port: int, count: int, pause: float, limit: float) -> list[float | None]:
    """``count`` sockets each sending a request's headers a byte every ``pause`` seconds; for
    each, how long until the server closed it (None: still open after ``limit`` seconds)."""
    request = b"GET /healthz HTTP/1.1\r\nHost: t\r\nUser-Agent: " + b"x" * 200 + b"\r\n\r\n"

    async def one() -> float | None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        try:
            for byte in request:
                if time.monotonic() - started > limit:
                    return None
                writer.write(bytes([byte]))
                try:
                    await writer.drain()
                    got = await asyncio.wait_for(reader.read(4096), pause)
                except TimeoutError:
                    continue
                except ConnectionError:
                    return time.monotonic() - started
                if not got or got.startswith(b"HTTP/1.1 408"):
                    return time.monotonic() - started
                raise AssertionError(f"answered before the headers were complete: {got!r}")
            return None
        finally:
            writer.close()

    async def all_of() -> list[float | None]:
        return list(await asyncio.gather(*(one() for _ in range(count))))

    return asyncio.run(all_of())


@pytest.fixture(scope="module", params=["HeaderTimeoutProtocol", "HeaderTimeoutH11"])
def timed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """Plain uvicorn with the protocol class, as README tells its users to run it."""
    server = liveserver.start(
        tmp_path_factory.mktemp("timed"),
        ADMIN_TOKEN,
        env={"BELIEFGAP_HEADER_TIMEOUT": "1"},
        args=("--http", f"app.limits:{request.param}"),
    )
    try:
        yield server
    finally:
        server.stop()


def test_slow_header_senders_are_cut_off(timed: LiveServer) -> None:
    closed = slow_headers(timed.port, count=50, pause=0.1, limit=8)
    assert all(seconds is not None and seconds < 5 for seconds in closed), closed


def test_a_silent_connection_is_closed_and_kept_alive_requests_still_work(
    timed: LiveServer,
) -> None:
    with socket.create_connection(("127.0.0.1", timed.port), timeout=DEADLINE) as silent:
        started = time.monotonic()
        assert silent.recv(100) == b""  # closed without a word: nothing was asked
        assert time.monotonic() - started < 5
    with httpx.Client(base_url=timed.url, timeout=DEADLINE) as client:
        for _ in range(3):  # one connection, requests a while apart (each starts a deadline)
            assert client.get("/healthz").status_code == 200
            time.sleep(0.6)
        assert client.get("/healthz").status_code == 200


def test_an_event_stream_outlives_the_header_deadline(timed: LiveServer) -> None:
    code = open_session(timed)
    with httpx.stream(
        "GET", f"{timed.url}/api/v1/sessions/{code}/events", timeout=DEADLINE
    ) as stream:
        assert stream.status_code == 200
        time.sleep(2.5)  # past the 1 s deadline: the stream is not cut
        httpx.post(
            f"{timed.url}/api/v1/sessions/{code}/phases/belief/open",
            headers=timed.auth,
            timeout=DEADLINE,
        ).raise_for_status()
        for line in stream.iter_lines():
            if line.startswith("data:") and '"state":"open"' in line:
                break


def test_beliefgap_serve_times_out_slow_headers(tmp_path: Path) -> None:
    server = liveserver.start(
        tmp_path, ADMIN_TOKEN, env={"BELIEFGAP_HEADER_TIMEOUT": "1"}, command=SERVE
    )
    try:
        closed = slow_headers(server.port, count=5, pause=0.1, limit=8)
        assert all(seconds is not None and seconds < 5 for seconds in closed), closed
    finally:
        server.stop()


# --------------------------------------------------------------------------- slow bodies


def drip(
    port: int, head: bytes, body: bytes, *, head_pause: float = 0.0, body_pause: float = 1.0
) -> bytes:
    """Send ``head`` a byte every ``head_pause`` seconds, then ``body`` a byte every
    ``body_pause`` (0: at once), as a client on a bad line or a slowloris would; what the
    server answered once it closed the connection (the drip stops then)."""

    async def run() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def send() -> None:
            at_once = b"" if body_pause else body  # with the last byte of the headers: the
            # server has it all before it answers (a close with bytes still coming resets the
            # connection, and the answer may be lost with it)
            if head_pause:
                for byte in head[:-1]:
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(head_pause)
                writer.write(head[-1:] + at_once)
            else:
                writer.write(head + at_once)
            for byte in body if body_pause else b"":
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(body_pause)

        async def answer() -> bytes:
            # Read as it comes: a byte of the drip sent after the server closed makes its
            # machine reset the connection, and a reset drops what was not read yet.
            got = b""
            with contextlib.suppress(ConnectionError):
                while chunk := await reader.read(65536):
                    got += chunk
            return got

        sender = asyncio.create_task(send())
        try:
            # A generous bound on the whole exchange: the body alone would take minutes.
            return await asyncio.wait_for(answer(), 60)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await sender
            writer.close()

    return asyncio.run(run())


def slow_writes(server: LiveServer, code: str) -> list[tuple[str, bytes]]:
    """A vote (API and phone form) and a login, each announcing a body that comes a byte a
    second."""
    vote = b'{"phase": "belief", "choice": "agree"}' + b" " * 100
    form = b"phase=belief&choice=agree" + b"&x=" + b"y" * 100
    login = b"token=" + server.admin_token.encode() + b"&next=/presenter" + b"&x=" * 40
    host = f"Host: 127.0.0.1:{server.port}\r\n"
    return [
        (
            f"POST {path} HTTP/1.1\r\n{host}Content-Type: {kind}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n",
            body,
        )
        for path, kind, body in (
            (f"/api/v1/sessions/{code}/votes", "application/json", vote),
            (f"/j/{code}/vote", "application/x-www-form-urlencoded", form),
            ("/presenter/login", "application/x-www-form-urlencoded", login),
        )
    ]


def assert_timed_out(answer: bytes) -> None:
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:300]
    assert b"connection: close" in answer.lower()


@pytest.mark.parametrize("served", ["uvicorn", "beliefgap serve"])
def test_a_body_sent_a_byte_a_second_is_cut_off_with_408_and_writes_nothing(
    served: str, tmp_path: Path
) -> None:
    """The request deadline holds for the body whatever serves the app: plain uvicorn with no
    protocol of ours, and ``beliefgap serve``. Before it, each of these held its connection
    for as long as the client kept dripping."""
    server = liveserver.start(
        tmp_path,
        ADMIN_TOKEN,
        env={"BELIEFGAP_REQUEST_TIMEOUT": "2"},
        command=SERVE if served == "beliefgap serve" else None,
    )
    try:
        code = open_session(server)
        httpx.post(
            f"{server.url}/api/v1/sessions/{code}/phases/belief/open",
            headers=server.auth,
            timeout=DEADLINE,
        ).raise_for_status()

        async def all_at_once() -> list[bytes]:
            return list(
                await asyncio.gather(
                    *(
                        asyncio.to_thread(drip, server.port, head.encode(), body)
                        for head, body in slow_writes(server, code)
                    )
                )
            )

        for answer in asyncio.run(all_at_once()):
            assert_timed_out(answer)
        with sqlite3.connect(f"file:{server.database}?mode=ro", uri=True) as db:
            assert db.execute("SELECT count(*) FROM response").fetchone() == (0,)
            assert db.execute("SELECT count(*) FROM presenter_login").fetchone() == (0,)
        assert httpx.get(f"{server.url}/healthz", timeout=DEADLINE).status_code == 200
    finally:
        server.stop()


def test_under_beliefgap_serve_the_deadline_counts_the_time_the_headers_took(
    tmp_path: Path,
) -> None:
    """Headers sent slowly but within their own (longer) deadline use up the request's: the
    body, sent at once after them, comes after the request deadline, and the answer is 408 (a
    deadline counted from when the app got the request would have let it through)."""
    server = liveserver.start(
        tmp_path,
        ADMIN_TOKEN,
        env={"BELIEFGAP_REQUEST_TIMEOUT": "2", "BELIEFGAP_HEADER_TIMEOUT": "60"},
        command=SERVE,
    )
    try:
        head = (
            b"POST /presenter/login HTTP/1.1\r\nHost: h\r\nContent-Length: 60\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n\r\n"
        )
        # About 4 s of headers, past the 2 s deadline; then the whole body at once.
        answer = drip(server.port, head, b"t" * 60, head_pause=4 / len(head), body_pause=0)
        assert_timed_out(answer)
    finally:
        server.stop()


def test_every_limit_is_a_setting_with_a_default_that_spares_a_hall() -> None:
    settings = Settings()
    assert settings.limit_new_participant_burst >= 5000  # a hall of 5,000 behind one NAT
    assert settings.limit_streams_per_address >= 5000
    assert 1 <= settings.limit_streams_per_participant <= 10
    assert 1 <= settings.limit_cookieless_streams_per_address <= 100
    assert settings.limit_open_streams >= settings.limit_streams_per_address
    assert settings.limit_vote_burst >= 10
    assert settings.header_timeout > 0
    assert settings.request_timeout >= 10  # a talk of 256 KB on a slow line
    limits = Limits(settings)
    assert limits.new_participants.burst == settings.limit_new_participant_burst


def test_a_hall_of_2000_phones_behind_one_address_joins_and_votes_with_no_429(
    settings: Settings,
) -> None:
    """The default limits, as a real room meets them: 2,000 new phones from one address (one NAT)
    open the join page, hold its cookie, and each answers once."""
    app = create_app(settings)
    statuses: dict[int, int] = {}
    with TestClient(app) as room:
        code = new_session(room)
        phase_action(room, code, "belief", "open")
        for _ in range(2000):
            room.cookies.clear()  # a new phone, from the same address as every other
            joined = room.get(f"/j/{code}")
            voted = room.post(
                f"/api/v1/sessions/{code}/votes", json={"phase": "belief", "choice": "agree"}
            )
            for response in (joined, voted):
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    assert statuses == {200: 4000}
    assert count(app, Participant) == 2000
    assert count(app, Response) == 2000
