"""The slide remote (``/api/v1/remote``): its key moves its own session's phases, from any
origin, and opens nothing else: every other route of the app answers it as it answers a
stranger, for its own session and for another one."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from app.main import create_app
from app.routes.stream import EventStreamResponse
from app.settings import Settings
from tests.conftest import log_in, new_session, phase_action
from tests.test_attack_bodies import _api_routes, snapshot
from tests.test_view import issue

DECK = "https://slides.example.org"


def states(client: TestClient, code: str) -> dict[str, tuple[str, bool]]:
    body = client.get(f"/api/v1/sessions/{code}").json()
    return {p["id"]: (p["state"], p["revealed"]) for p in body["phases"]}


def test_the_remote_key_opens_reveals_closes_and_moves_on_from_another_origin(
    client: TestClient,
) -> None:
    code = new_session(client)
    log_in(client)
    key = issue(client, code, "remote")
    client.cookies.clear()  # the deck's browser: no cookie of this app
    auth = {"Authorization": f"Bearer {key}", "Origin": DECK, "Sec-Fetch-Site": "cross-site"}

    preflight = client.options(
        "/api/v1/remote/phases/belief/open",
        headers={
            "Origin": DECK,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "Authorization" in preflight.headers["access-control-allow-headers"]
    assert "access-control-allow-credentials" not in preflight.headers

    def post(path: str) -> Any:
        response = client.post(f"/api/v1/remote{path}", headers=auth)
        assert response.headers["access-control-allow-origin"] == "*", path
        return response

    assert client.get("/api/v1/remote", headers=auth).json()["code"] == code
    assert post("/phases/belief/open").status_code == 200
    assert states(client, code)["belief"] == ("open", False)
    assert post("/phases/belief/reveal").status_code == 200
    assert post("/phases/belief/close").json()["phases"][1]["state"] == "closed"
    assert states(client, code)["belief"] == ("closed", True)
    moved = post("/next?seconds=60")
    assert moved.status_code == 200
    assert states(client, code)["field"] == ("open", False)
    # Refusals say why, readable from the deck's origin, and change nothing.
    before = states(client, code)
    unknown = post("/phases/nope/open")
    assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_phase"
    assert post("/phases/belief/hide").status_code == 422  # not a remote's action
    assert post("/next?seconds=0").status_code == 422
    assert states(client, code) == before

    # A revoked key, a view address's token, or none at all: refused.
    log_in(client)
    view = issue(client, code, "view")
    client.post(
        f"/presenter/sessions/{code}/tokens/remote/revoke",
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    client.cookies.clear()
    for header in (f"Bearer {key}", f"Bearer {view}", "Bearer ", ""):
        response = client.post(
            "/api/v1/remote/next", headers={"Authorization": header, "Origin": DECK}
        )
        assert response.status_code in (401, 403), header
        if header:  # without one, the app's forgery guard refuses a write from another origin
            assert response.headers["access-control-allow-origin"] == "*"
    assert states(client, code) == before


PATH_VALUES = {"phase": "belief", "phase_id": "belief", "action": "open", "slug": "emergence"}


def fill(path: str, values: dict[str, str]) -> str:
    out = path
    while "{" in out:
        start = out.index("{")
        end = out.index("}", start)
        name = out[start + 1 : end].split(":")[0]
        out = out[:start] + values.get(name, "x") + out[end + 1 :]
    return out


def success(response: Any) -> bool:
    return 200 <= response.status_code < 300


def test_a_remote_key_gets_no_more_than_a_stranger_on_every_other_route(
    settings: Settings,
) -> None:
    """Every route and method of the app but the remote's own, for the key's session and for
    another, with the key as a bearer token: the answer is the one a stranger without any
    credentials gets (a refusal where they are refused, the same redirect to the login page),
    and nothing in the database changes. (Event streams are left out: they never end.)"""
    # Wrong tokens are limited per address; here they would only turn refusals into 429s.
    app = create_app(settings.model_copy(update={"limit_failed_logins_per_minute": 0}))
    with TestClient(app) as client:
        own, other = new_session(client), new_session(client, venue="Elsewhere")
        log_in(client)
        key = issue(client, own, "remote")
        view = issue(client, own, "view")
        for code in (own, other):
            phase_action(client, code, "belief", "open")
        client.cookies.clear()
        before = snapshot(app)
        tried = 0
        for path, route in _api_routes(app.routes):
            if path.startswith("/api/v1/remote"):
                continue
            if getattr(route, "response_class", None) is EventStreamResponse:
                # Streams never end: whether the key opens one is tested in tests/test_view.py
                # (a view's stream takes only a view's token).
                continue
            for method in sorted(route.methods - {"HEAD"}):
                for code in (own, other):
                    url = fill(path, {**PATH_VALUES, "code": code, "token": view})
                    stranger = client.request(method, url, follow_redirects=False)
                    holder = client.request(
                        method,
                        url,
                        headers={"Authorization": f"Bearer {key}"},
                        follow_redirects=False,
                    )
                    tried += 1
                    if not success(stranger):
                        assert not success(holder), (method, url, holder.status_code)
                    if stranger.status_code == 303:
                        assert holder.headers["location"] == stranger.headers["location"]
        assert tried > 100
        assert snapshot(app) == before
