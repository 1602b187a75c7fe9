"""The origin check on writes and the headers every response carries (app.security)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx2 as httpx
import pytest
from bs4 import BeautifulSoup
from fastapi import FastAPI
from fastapi.testclient import TestClient
from itsdangerous import URLSafeSerializer
from pydantic import ValidationError
from starlette.datastructures import Headers

from app.limits import TokenBuckets
from app.main import create_app
from app.security import (
    forgery_refusal,
    new_participant_token,
    origin_of,
    read_participant,
    sign_participant,
)
from app.settings import Settings
from tests.conftest import ADMIN_TOKEN, AUTH, log_in, new_session, phase_action

# --------------------------------------------------------------------------- participant cookies


def test_a_kept_cookie_check_still_refuses_every_other_value() -> None:
    """Participant cookies are checked once and the answer kept (``read_participant``): what
    was kept must never let a forged, moved or re-keyed value through, however often a
    genuine one has been read before."""
    secret, other_secret = "s" * 40, "t" * 40
    token = new_participant_token()
    cookie = sign_participant(secret, "ABC123", token)
    for _ in range(3):  # signed here, then read again and again: the same phone
        assert read_participant(secret, "ABC123", cookie) == token
    body, _, signature = cookie.rpartition(".")
    # The first character: the last one of base64 carries bits no byte uses.
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    for _ in range(2):  # refused, and refused again once that refusal is kept
        assert read_participant(secret, "ABC123", f"{body}.{flipped}") is None
    assert read_participant(secret, "XYZ789", cookie) is None  # another session's cookie
    assert read_participant(other_secret, "ABC123", cookie) is None  # after a new secret key
    assert read_participant(secret, "ABC123", cookie + "x" * 500) is None  # long: never kept
    assert read_participant(secret, "ABC123", cookie) == token


def test_a_participant_cookie_is_the_value_itsdangerous_signs_and_reads() -> None:
    """``sign_participant`` builds the value itself (itsdangerous took a third of a join page):
    for the tokens the app hands out it is the very value ``URLSafeSerializer.dumps`` gives,
    and any token, one zlib would shrink or one not in ASCII, reads back through itsdangerous
    (so cookies given before and after stay valid both ways)."""
    secret = "s" * 40
    serializer = URLSafeSerializer(secret, salt="participant:ABC123")
    for _ in range(200):
        token = new_participant_token()
        assert sign_participant(secret, "ABC123", token) == serializer.dumps(token)
    for token in ("a" * 64, "问题" * 8, "x"):
        assert serializer.loads(sign_participant(secret, "ABC123", token)) == token
    assert sign_participant(secret, "ABC123", "x") != sign_participant(secret, "XYZ789", "x")


# --------------------------------------------------------------------------- the origin check


def test_origins_are_compared_in_one_spelling() -> None:
    assert origin_of("HTTPS://Polls.Example.org:443/x?y") == "https://polls.example.org"
    assert origin_of("http://127.0.0.1:80") == "http://127.0.0.1"
    assert origin_of("http://127.0.0.1:8000") == "http://127.0.0.1:8000"
    assert origin_of("http://[::1]:8000") == "http://[::1]:8000"
    for nothing in ("null", "", "file:///x", "http://", "http://a:99999", "http://u:p@a.org"):
        assert origin_of(nothing) is None, nothing


OWN = "https://polls.example.org"


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({}, True),  # curl, a script: no browser, no victim
        ({"sec-fetch-site": "same-origin"}, True),
        ({"sec-fetch-site": "none"}, True),  # typed or bookmarked by the user
        ({"sec-fetch-site": "same-site"}, False),  # another port, a sibling subdomain
        ({"sec-fetch-site": "cross-site"}, False),
        ({"sec-fetch-site": "cross-site", "origin": OWN}, False),  # the browser's word wins
        ({"origin": OWN}, True),
        ({"origin": "https://polls.example.org:443"}, True),
        ({"origin": "http://polls.example.org"}, False),
        ({"origin": "https://polls.example.org:8443"}, False),
        ({"origin": "https://evil.example"}, False),
        ({"origin": "null"}, False),
        ({"authorization": "Bearer t", "sec-fetch-site": "cross-site"}, True),
        # With cookies a bearer header proves nothing about who sent the request.
        ({"authorization": "Bearer t", "cookie": "a=b", "sec-fetch-site": "cross-site"}, False),
        ({"authorization": "Basic dTpw", "sec-fetch-site": "cross-site"}, False),
    ],
)
def test_a_write_passes_only_from_the_apps_own_pages_or_from_no_browser(
    headers: dict[str, str], allowed: bool
) -> None:
    reason = forgery_refusal("POST", Headers(headers), OWN)
    assert (reason is None) is allowed, reason
    assert forgery_refusal("GET", Headers(headers), OWN) is None  # reads are never refused


def test_the_public_url_is_an_origin_of_the_app_too() -> None:
    """Behind a proxy that does not say https to the app, the public URL still names it."""
    trusted = frozenset({OWN})
    assert (
        forgery_refusal("POST", Headers({"origin": OWN}), "http://10.0.0.5:8000", trusted) is None
    )
    assert forgery_refusal("POST", Headers({"origin": OWN}), "http://10.0.0.5:8000") is not None


def test_a_refused_write_is_a_clear_403_and_changes_nothing(client: TestClient) -> None:
    code = new_session(client)
    log_in(client)
    foreign = {"Origin": "http://127.0.0.1:9999", "Sec-Fetch-Site": "same-site"}
    api = client.post(f"/api/v1/sessions/{code}/phases/belief/open", headers=foreign)
    assert api.status_code == 403
    assert api.json() == {
        "detail": "the request came from another site or page (Sec-Fetch-Site: same-site)",
        "code": "cross_origin",
    }
    page = client.post(f"/presenter/sessions/{code}/phases/belief/open", headers=foreign)
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
    assert "nothing was changed" in page.text and "未做任何更改" in page.text
    assert client.get(f"/api/v1/sessions/{code}").json()["phases"][0]["state"] == "pending"
    # The token alone (a script, no cookies) is no forgery, whatever it says about its origin.
    with TestClient(client.app) as script:
        done = script.post(
            f"/api/v1/sessions/{code}/phases/belief/open", headers={**AUTH, **foreign}
        )
    assert done.status_code == 200


def test_a_wrong_bearer_token_is_not_rescued_by_the_cookie(client: TestClient) -> None:
    code = new_session(client)
    log_in(client)
    wrong = {"Authorization": "Bearer not-the-token-at-all-000"}
    assert (
        client.post(f"/api/v1/sessions/{code}/phases/belief/open", headers=wrong).status_code == 403
    )
    assert client.post(f"/api/v1/sessions/{code}/phases/belief/open").status_code == 200


# --------------------------------------------------------------------------- headers


def _pages(client: TestClient) -> dict[str, str]:
    code = new_session(client)
    phase_action(client, code, "belief", "open")
    log_in(client)
    return {
        "landing": "/",
        "join": f"/j/{code}",
        "login": "/presenter/login?next=/presenter",
        "dashboard": "/presenter",
        "control": f"/presenter/sessions/{code}",
        "projector": f"/presenter/sessions/{code}/projector",
        "results": f"/presenter/sessions/{code}/results",
        "talk results": "/presenter/talks/emergence/results",
        "unknown code": "/j/ZZZZ99",
    }


def _policy(response: object) -> dict[str, str]:
    header = response.headers["content-security-policy"]  # type: ignore[attr-defined]
    return {
        part.split()[0]: " ".join(part.split()[1:]) for part in header.split(";") if part.strip()
    }


def test_every_page_has_a_policy_with_scripts_from_self_and_no_inline_code(
    client: TestClient,
) -> None:
    for name, url in _pages(client).items():
        response = client.get(url)
        assert response.status_code in (200, 404), name
        policy = _policy(response)
        assert policy["script-src"] == "'self'", name
        assert policy["style-src"] == "'self'", name
        assert policy["object-src"] == "'none'" and policy["base-uri"] == "'none'", name
        assert response.headers["x-content-type-options"] == "nosniff", name
        assert response.headers["referrer-policy"] == "same-origin", name
        soup = BeautifulSoup(response.text, "html.parser")
        assert all(s.get("src") for s in soup.find_all("script")), f"{name}: inline script"
        assert not soup.find_all("style"), f"{name}: a style element"
        inline = [
            (tag.name, attr)
            for tag in soup.find_all(True)
            for attr in tag.attrs
            if attr == "style" or attr.startswith("on")
        ]
        assert inline == [], f"{name}: {inline}"
        assert "javascript:" not in response.text, name


def test_json_and_errors_carry_the_headers_too(client: TestClient) -> None:
    for response in (
        client.get("/api/v1/talks"),
        client.get("/api/v1/sessions/NOPE22"),
        client.post("/api/v1/sessions", json={}),
        client.get("/static/js/audience.js"),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "default-src 'self'" in response.headers["content-security-policy"]


def test_only_the_projector_may_be_framed_by_the_listed_origins(settings: Settings) -> None:
    allowed = "'self' https://slides.example.org http://localhost:8001"
    app = create_app(settings.model_copy(update={"frame_ancestors": allowed}))
    with TestClient(app) as client:
        pages = _pages(client)
        for name, url in pages.items():
            expected = allowed if name == "projector" else "'self'"
            if name != "login":  # logged in, the login page redirects
                assert _policy(client.get(url))["frame-ancestors"] == expected, name
        with TestClient(app) as stranger:  # the login page, where a framed projector sends one
            assert _policy(stranger.get(pages["login"]))["frame-ancestors"] == allowed
        code = pages["join"].removeprefix("/j/")
        stage = client.get(f"/presenter/sessions/{code}/projector/stage")
        assert _policy(stage)["frame-ancestors"] == allowed


def test_the_default_lets_only_the_app_frame_its_pages(client: TestClient) -> None:
    for url in _pages(client).values():
        assert _policy(client.get(url))["frame-ancestors"] == "'self'"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "'self'; script-src *",
        "'self',https://a.org",
        "https://a.org/path",
        "'unsafe-inline'",
        "*",
        "'none' 'self'",
        "https://a.org\r\nX-Evil: 1",
    ],
)
def test_the_frame_setting_takes_only_sources(settings: Settings, value: str) -> None:
    with pytest.raises(ValidationError, match="frame_ancestors"):
        Settings(**{**settings.model_dump(), "frame_ancestors": value})


def test_the_frame_setting_reads_a_list_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    monkeypatch.setenv("BELIEFGAP_FRAME_ANCESTORS", "  'self'   https://*.example.org:8443 ")
    assert Settings().frame_ancestors == "'self' https://*.example.org:8443"


def test_the_report_has_its_own_styles_and_nothing_else(client: TestClient) -> None:
    code = new_session(client)
    log_in(client)
    report = client.get(f"/presenter/sessions/{code}/report.html")
    assert report.status_code == 200
    policy = _policy(report)
    assert policy["default-src"] == "'none'" and policy["style-src"] == "'unsafe-inline'"
    assert "script-src" not in policy  # so default-src 'none': no script at all


def test_the_api_docs_are_off_unless_asked_for(app: FastAPI, settings: Settings) -> None:
    with TestClient(app) as client:
        assert client.get("/docs").status_code == 404
        assert client.get("/redoc").status_code == 404
        assert client.get("/openapi.json").status_code == 200
    docs_app = create_app(settings.model_copy(update={"api_docs": True}))
    with TestClient(docs_app) as client:
        docs = client.get("/docs")
        assert docs.status_code == 200 and "swagger-ui" in docs.text
        assert "https://cdn.jsdelivr.net" in _policy(docs)["script-src"]
        assert _policy(client.get("/"))["script-src"] == "'self'"  # only /docs is relaxed


# --------------------------------------------------------------------------- the admin token

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}
OTHER_TOKEN = "another-admin-token-9876543210"


def test_a_new_admin_token_ends_every_login_made_with_the_old_one(settings: Settings) -> None:
    """The token leaked, so it is changed and the server restarted: a presenter cookie from
    before (its 14 days not over) no longer opens the dashboard; with the old token kept it
    still does, and the new token logs in."""
    with TestClient(create_app(settings)) as before:
        log_in(before)
        assert before.get("/presenter", follow_redirects=False).status_code == 200
        cookies = dict(before.cookies)

    with TestClient(create_app(settings), cookies=cookies) as same_token:
        assert same_token.get("/presenter", follow_redirects=False).status_code == 200

    changed = create_app(settings.model_copy(update={"admin_token": OTHER_TOKEN}))
    with TestClient(changed, cookies=cookies) as after:
        refused = after.get("/presenter", follow_redirects=False)
        assert refused.status_code == 303
        assert refused.headers["location"].startswith("/presenter/login")
        assert after.post("/api/v1/talks/emergence/copy", json={"slug": "x"}).status_code == 401
        login = after.post(
            "/presenter/login",
            data={"token": OTHER_TOKEN},
            headers=SAME_ORIGIN,
            follow_redirects=False,
        )
        assert login.status_code == 303
        assert after.get("/presenter", follow_redirects=False).status_code == 200


def _hammered(settings: Settings) -> FastAPI:
    """An app that forgives a wrong token a second (so the wait a 429 names is short)."""
    return create_app(
        settings.model_copy(
            update={"limit_failed_logins_per_minute": 60, "limit_failed_login_burst": 20}
        )
    )


def _login(client: TestClient, token: str, **headers: str) -> httpx.Response:
    return client.post(
        "/presenter/login",
        data={"token": token},
        headers={**SAME_ORIGIN, **headers},
        follow_redirects=False,
    )


def _refused(attempts: Iterator[httpx.Response]) -> httpx.Response:
    """The first 429 among wrong tokens sent one after another (each takes one of the few the
    address has left, so it comes within a few)."""
    return next(response for response in attempts if response.status_code == 429)


def test_300_wrong_logins_from_one_address_meet_429_and_the_right_token_still_gets_in(
    settings: Settings,
) -> None:
    app = _hammered(settings)
    with (
        TestClient(app) as guesser,
        TestClient(app, client=("203.0.113.9", 40000)) as presenter,
    ):
        statuses = [_login(guesser, f"guess-{n:04d}-abcdefghijkl").status_code for n in range(300)]
        assert statuses[:20] == [401] * 20  # typos first
        assert set(statuses) == {401, 429}, statuses
        # From another address the right token gets in at once.
        assert _login(presenter, ADMIN_TOKEN).status_code == 303
        # The guessing address is told how long to wait, on the login page, in its language.
        zh = {"Accept-Language": "zh-CN"}
        refused = _refused(_login(guesser, f"more-{n}-abcdefghijklmn", **zh) for n in range(50))
        wait = int(refused.headers["retry-after"])
        assert 1 <= wait <= 2
        shown = BeautifulSoup(refused.text, "html.parser").select_one("[role=alert]")
        assert shown is not None and f"请等待 {wait} 秒" in shown.text
        assert not guesser.cookies
        time.sleep(wait)  # the wait the server named, no guess
        assert _login(guesser, ADMIN_TOKEN).status_code == 303
        assert guesser.get("/presenter", follow_redirects=False).status_code == 200


def test_wrong_bearer_tokens_are_limited_the_same_way(settings: Settings) -> None:
    app = _hammered(settings)
    with (
        TestClient(app) as guesser,
        TestClient(app, client=("203.0.113.9", 40000)) as script,
    ):
        statuses = []
        for n in range(300):
            wrong = {"Authorization": f"Bearer guess-{n:04d}-abcdefghijkl"}
            statuses.append(guesser.get("/api/v1/talks/emergence", headers=wrong).status_code)
        assert statuses[:20] == [403] * 20 and set(statuses) == {403, 429}, statuses
        assert script.get("/api/v1/talks/emergence", headers=AUTH).status_code == 200
        refused = _refused(
            guesser.get("/api/v1/talks/emergence", headers={"Authorization": f"Bearer x{n}"})
            for n in range(50)
        )
        assert refused.json()["code"] == "too_many_failed_logins"
        time.sleep(int(refused.headers["retry-after"]))  # the wait the server named
        assert guesser.get("/api/v1/talks/emergence", headers=AUTH).status_code == 200


class FrozenClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_while_an_address_waits_even_the_right_token_waits(settings: Settings) -> None:
    """On a clock that stands still: were the right token let through during the wait,
    guessing would go on at full speed behind the 429s. The wait named is the one that works."""
    app = create_app(settings)
    clock = FrozenClock()
    app.state.limits.failed_logins = TokenBuckets(1 / 30, 3, clock=clock)
    with TestClient(app) as guesser:
        assert [_login(guesser, f"guess-{n}-abcdefghijkl").status_code for n in range(3)] == [
            401
        ] * 3
        refused = _login(guesser, ADMIN_TOKEN)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "30"
        bearer = guesser.get("/api/v1/talks/emergence", headers=AUTH)
        assert bearer.status_code == 429 and bearer.headers["retry-after"] == "30"
        clock.now += 29.9
        assert _login(guesser, ADMIN_TOKEN).status_code == 429
        clock.now += 0.1
        assert _login(guesser, ADMIN_TOKEN).status_code == 303
        assert guesser.get("/api/v1/talks/emergence", headers=AUTH).status_code == 200


def test_the_right_token_never_counts_against_its_address(settings: Settings) -> None:
    """A script polling with the right token, hundreds of times: never a 429."""
    with TestClient(_hammered(settings)) as script:
        for _ in range(300):
            assert script.get("/api/v1/talks/emergence", headers=AUTH).status_code == 200


def test_an_empty_token_is_no_guess(settings: Settings) -> None:
    """A form sent without its token (a browser's autofill that failed, a malformed body) is
    refused but does not count: the address can still log in at once."""
    with TestClient(_hammered(settings)) as browser:
        for _ in range(100):
            assert _login(browser, "").status_code == 401
        assert _login(browser, ADMIN_TOKEN).status_code == 303
