"""Malformed bodies against every write route: never a server error, never a write.

Every POST, PUT, PATCH and DELETE route the app has (found from the app itself, so a new route
is covered the day it is added) gets a corpus of broken bodies: multipart with odd, missing or
mismatched boundaries, truncated multipart, urlencoded bytes that are not UTF-8, cut-off
percent escapes, NUL bytes, JSON that is not an object, truncated or deeply nested JSON, numbers
no float holds, wrong and absent content types. Each is sent without credentials, with a
phone's and the presenter's cookies (as their browser sends a form from the app's own page),
and with the admin token.

What must hold:
- no answer is a 5xx;
- without credentials every write is refused (4xx, or the redirect to the login page or back
  to the voting page with the reason) and the database is unchanged;
- a route that needs a body (a vote, a new session, the login) refuses every one of these with
  a 4xx, whatever the credentials, and writes nothing;
- any 4xx leaves the database as it was.

Bodies cut off by a client that goes away mid-request are sent to a live server over raw
sockets: its log must show no error.

Run it alone with ``pytest tests/test_attack_bodies.py``; ``tests/e2e/test_forgery.py`` checks the
other half of the target in Chromium: no write from a foreign page or another port.
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import text

from app.main import create_app
from app.settings import Settings
from tests import liveserver
from tests.conftest import ADMIN_TOKEN, AUTH, SECRET_KEY, log_in, new_session, phase_action

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
TABLES = ("poll_session", "session_phase", "participant", "response", "presenter_login", "talk")
"""What a write could change (the talks too: a talk editor writes them)."""

PATH_VALUES = {
    "code": None,  # the test session's code
    "phase": "belief",
    "phase_id": "belief",
    "action": "open",
    "slug": "emergence",
}


@dataclass(frozen=True)
class Body:
    name: str
    content_type: str | None
    content: bytes


def _multipart(boundary: str, *parts: tuple[str, str], close: bool = True) -> bytes:
    out = b""
    for name, value in parts:
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    return out + (f"--{boundary}--\r\n".encode() if close else b"")


WELL_FORMED = _multipart("zz", ("unrelated", "value"), ("other", "x"))
CORPUS = [
    Body("multipart-no-boundary", "multipart/form-data", WELL_FORMED),
    Body("multipart-empty-boundary", "multipart/form-data; boundary=", WELL_FORMED),
    Body("multipart-odd-boundary", 'multipart/form-data; boundary="', WELL_FORMED),
    Body("multipart-boundary-mismatch", "multipart/form-data; boundary=aa", WELL_FORMED),
    Body("multipart-well-formed", "multipart/form-data; boundary=zz", WELL_FORMED),
    Body(
        "multipart-truncated",
        "multipart/form-data; boundary=zz",
        _multipart("zz", ("phase", "belief"), close=False)[:-7],
    ),
    Body("multipart-not-parts", "multipart/form-data; boundary=zz", b"--zz\r\nnot a part"),
    Body(
        "multipart-file",
        "multipart/form-data; boundary=zz",
        b'--zz\r\nContent-Disposition: form-data; name="f"; filename="a.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\nhello\r\n--zz--\r\n",
    ),
    Body("multipart-nul", "multipart/form-data; boundary=zz", WELL_FORMED.replace(b"x", b"\0")),
    Body("urlencoded-not-utf8", "application/x-www-form-urlencoded", b"phase=\xff\xfe&choice=\xc3"),
    Body("urlencoded-bad-escape", "application/x-www-form-urlencoded", b"phase=%E4%B&choice=%"),
    Body("urlencoded-nul", "application/x-www-form-urlencoded", b"phase=be\0lief&choice=a\0"),
    Body("urlencoded-no-equals", "application/x-www-form-urlencoded", b"&&&=&==" + b"a" * 2000),
    Body("json-array", "application/json", b"[1, 2, 3]"),
    Body("json-string", "application/json", b'"belief"'),
    Body("json-null", "application/json", b"null"),
    Body("json-number", "application/json", b"42"),
    Body("json-truncated", "application/json", b'{"phase": "bel'),
    Body("json-empty", "application/json", b""),
    Body("json-huge-float", "application/json", b'{"phase": "field", "value": 1e999999}'),
    Body(
        "json-huge-int",
        "application/json",
        b'{"phase": "field", "value": ' + b"9" * 5000 + b"}",
    ),
    Body("json-nan", "application/json", b'{"phase": "field", "value": NaN}'),
    Body("json-nested", "application/json", b"[" * 100_000 + b"]" * 100_000),
    Body("json-nul", "application/json", b'{"phase": "bel\\u0000ief", "choice": "\0"}'),
    Body("json-not-utf8", "application/json", b'{"phase": "\xff\xfe"}'),
    Body("json-utf16-declared", "application/json; charset=utf-16", b'{"phase": "belief"}'),
    Body("json-as-text", "text/plain", b'{"talk": "emergence", "venue": "X"}'),
    Body("xml", "application/xml", b"<vote><phase>belief</phase></vote>"),
    Body("no-content-type", None, b"phase=belief&choice=agree"),
    Body("garbage-content-type", "\x01;;;=", b"\0\0\0"),
    Body("binary", "application/octet-stream", bytes(range(256))),
]
"""None of these is a valid body for any route: the well-formed multipart names no field a
route knows, the JSON ones are not objects or not valid."""


def _api_routes(routes: Iterable[Any], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        elif hasattr(route, "original_router"):  # an included router (FastAPI keeps it whole)
            context = getattr(route, "include_context", None)
            inner = prefix + str(getattr(context, "prefix", ""))
            yield from _api_routes(route.original_router.routes, inner)


def write_routes(app: FastAPI) -> Iterator[tuple[str, str, bool]]:
    """(method, path template, needs a body) for every write route of the app."""
    for path, route in _api_routes(app.routes):
        needs_body = any(field.field_info.is_required() for field in route.dependant.body_params)
        # The phone's vote form reads its body itself (app.deps.form_fields).
        needs_body = needs_body or path.endswith("/vote")
        for method in sorted(route.methods & set(WRITE_METHODS)):
            yield method, path, needs_body


def fill(path: str, code: str) -> str:
    values = {**PATH_VALUES, "code": code}
    out = path
    while "{" in out:
        start = out.index("{")
        end = out.index("}", start)
        name = out[start + 1 : end].split(":")[0]
        out = out[:start] + str(values.get(name) or "x") + out[end + 1 :]
    return out


def snapshot(app: FastAPI) -> dict[str, list[Any]]:
    with app.state.engine.connect() as connection:
        found: dict[str, list[Any]] = {}
        for table in TABLES:
            try:
                rows = connection.execute(text(f"SELECT * FROM {table}")).all()
            except Exception:  # a table another version of the app does not have
                connection.rollback()
                continue
            found[table] = sorted(map(repr, rows))
        return found


def refused(response: Any) -> bool:
    """A 4xx, or the app's friendly refusals: the redirect to the login page, or back to the
    voting page with the reason in the address."""
    if 400 <= response.status_code < 500:
        return True
    location = response.headers.get("location", "")
    return response.status_code == 303 and (
        location.startswith("/presenter/login") or "error=" in location
    )


SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"}

ANYONE_MAY = {("DELETE", "/api/v1/sessions/{code}/me")}
"""Writes that take no body and need no credentials: a phone erasing its own answers. Without
a participant cookie there is nothing to erase (204); that nothing changed is checked all the
same."""


@pytest.fixture
def room(app: FastAPI, client: TestClient) -> str:
    code = new_session(client)
    phase_action(client, code, "belief", "open")
    phase_action(client, code, "field", "open")
    return code


def send(client: TestClient, method: str, url: str, body: Body, headers: dict[str, str]) -> Any:
    all_headers = dict(headers)
    if body.content_type is not None:
        all_headers["Content-Type"] = body.content_type
    request = client.build_request(method, url, content=body.content, headers=all_headers)
    if body.content_type is None:
        request.headers.pop("content-type", None)
    return client.send(request, follow_redirects=False)


def test_the_corpus_reaches_every_kind_of_write_route(app: FastAPI) -> None:
    routes = {path for _method, path, _body in write_routes(app)}
    assert "/j/{code}/vote" in routes
    assert "/api/v1/sessions/{code}/votes" in routes
    assert "/api/v1/sessions/{code}/phases/{phase_id}/{action}" in routes
    assert "/presenter/login" in routes and "/presenter/logout" in routes
    assert "/presenter/sessions/{code}/next" in routes


@pytest.mark.parametrize("who", ["nobody", "cookies", "token"])
def test_no_body_of_any_shape_gets_a_server_error_or_writes(
    app: FastAPI, client: TestClient, room: str, who: str
) -> None:
    problems: list[str] = []
    fresh = False  # whether the client holds a phone's and the presenter's cookies, as given
    with TestClient(app) as stranger:
        for method, path, needs_body in write_routes(app):
            url = fill(path, room)
            for body in CORPUS:
                browser = stranger
                headers: dict[str, str] = {}
                if who == "cookies":
                    browser = client
                    if not fresh:
                        client.cookies.clear()
                        client.get(f"/j/{room}")  # a phone's cookie
                        log_in(client)  # and the presenter's
                        fresh = True
                    headers = SAME_ORIGIN
                elif who == "token":
                    headers = AUTH
                before = snapshot(app)
                response = send(browser, method, url, body, headers)
                after = snapshot(app)
                # A body that changed a cookie, a login or a participant (a logout, say): the
                # next one gets a new phone and a new login, as every body did before it.
                fresh = fresh and not (
                    "set-cookie" in response.headers
                    or any(before[t] != after[t] for t in ("participant", "presenter_login"))
                )
                where = f"{method} {url} [{body.name}] as {who}: {response.status_code}"
                if response.status_code >= 500:
                    problems.append(f"{where} (server error) {response.text[:200]}")
                elif who == "nobody" and not refused(response) and (method, path) not in ANYONE_MAY:
                    problems.append(f"{where} (not refused)")
                elif needs_body and not refused(response):
                    problems.append(f"{where} (a route that needs a body took this one)")
                if (who == "nobody" or response.status_code >= 400) and before != after:
                    changed = [t for t in before if before[t] != after.get(t)]
                    problems.append(f"{where} changed {changed}")
    assert problems == [], "\n".join(problems)


FOREIGN = [
    {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
    {"Sec-Fetch-Site": "same-site", "Origin": "http://testserver:8001"},  # another port
    {"Sec-Fetch-Site": "same-site", "Origin": "http://polls.testserver"},  # a sibling subdomain
    {"Sec-Fetch-Site": "bogus"},
    {"Origin": "https://evil.example"},  # older browsers send Origin only
    {"Origin": "http://testserver:8001"},
    {"Origin": "https://testserver"},  # another scheme is another origin
    {"Origin": "null"},
]
PLAUSIBLE = [
    Body(
        "form",
        "application/x-www-form-urlencoded",
        b"phase=belief&choice=agree&talk=emergence&venue=Forged&seconds=30&token=x",
    ),
    Body("json", "application/json", b'{"phase": "belief", "choice": "agree"}'),
    Body("text", "text/plain", b'{"talk": "emergence", "venue": "Forged"}'),
    Body("empty", None, b""),
]


def test_no_write_from_another_page_is_accepted_with_the_presenters_cookies(
    app: FastAPI, client: TestClient, room: str
) -> None:
    """The presenter's and a phone's cookies, sent by a page that is not the app's own (another
    site, another port of the same machine, a sibling subdomain, a sandboxed frame): every
    write route answers 403 before reading the body, and nothing changes."""
    client.get(f"/j/{room}")
    log_in(client)
    problems = []
    before = snapshot(app)
    for method, path, _needs_body in write_routes(app):
        url = fill(path, room)
        for headers in FOREIGN:
            for body in PLAUSIBLE:
                response = send(client, method, url, body, headers)
                where = f"{method} {url} [{body.name}] from {headers}: {response.status_code}"
                if response.status_code != 403:
                    problems.append(where)
                elif url.startswith("/api/"):
                    if response.json().get("code") != "cross_origin":
                        problems.append(f"{where} {response.text[:100]}")
                elif "another site or page" not in response.text:
                    problems.append(f"{where} {response.text[:100]}")
    assert problems == [], "\n".join(problems)
    assert snapshot(app) == before
    assert client.get("/presenter", follow_redirects=False).status_code == 200  # still logged in


def test_a_body_cut_off_by_a_client_that_leaves_is_no_server_error(tmp_path: Path) -> None:
    """Content-Length promises 500 bytes; the client sends a few and closes its side. uvicorn
    tells the app the client left: that must end the request quietly, for every route and
    kind of body, with nothing written. (The server runs on a SQLite file of its own whatever
    the run's database, so the PostgreSQL pass leaves this test out: the routes come from an
    app of the test's own, not the ``app`` fixture.)"""
    app = create_app(
        Settings(data_dir=tmp_path / "routes", admin_token=ADMIN_TOKEN, secret_key=SECRET_KEY)
    )
    server = liveserver.start(tmp_path / "live", LIVE_TOKEN)
    try:
        auth = {"Authorization": f"Bearer {LIVE_TOKEN}"}
        created = httpx.post(
            f"{server.url}/api/v1/sessions", json={"talk": "emergence", "venue": "X"}, headers=auth
        )
        code = created.json()["code"]
        httpx.post(
            f"{server.url}/api/v1/sessions/{code}/phases/belief/open", headers=auth
        ).raise_for_status()
        before = _live_rows(server)
        cut = [
            ("application/x-www-form-urlencoded", b"phase=belief&choice=agr"),
            ("multipart/form-data; boundary=zz", _multipart("zz", ("phase", "belief"))[:30]),
            ("application/json", b'{"phase": "belief", "cho'),
        ]
        for method, path, _needs_body in write_routes(app):
            for content_type, body in cut:
                head = (
                    f"{method} {fill(path, code)} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                    f"Content-Type: {content_type}\r\nContent-Length: 500\r\nCookie: a=b\r\n\r\n"
                )
                with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                    sock.sendall(head.encode() + body)
                    sock.shutdown(socket.SHUT_WR)
                    while sock.recv(65536):  # until the server closes the connection
                        pass
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        assert _live_rows(server) == before
        log = server.output()
        assert "Traceback" not in log and "Exception in ASGI" not in log, log[-3000:]
    finally:
        server.stop()


LIVE_TOKEN = "attack-admin-token-0123456789"


def _live_rows(server: liveserver.LiveServer) -> dict[str, list[str]]:
    with sqlite3.connect(f"file:{server.data_dir / 'beliefgap.db'}?mode=ro", uri=True) as db:
        return {
            table: sorted(map(repr, db.execute(f"SELECT * FROM {table}").fetchall()))
            for table in TABLES
        }
