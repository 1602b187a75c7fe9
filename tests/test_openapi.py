"""The OpenAPI document lists every status each operation can answer with, each error with the
``{"detail": ...}`` model: every operation is called with no token, a wrong one and the right
one, with unknown and known path values, and (where a body goes) an empty, a malformed and a
too-large body; every status seen must be documented."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.limits import DEFAULT_BODY_LIMIT
from app.main import create_app
from app.settings import Settings
from tests.conftest import ADMIN_TOKEN, AUTH, new_session, phase_action

WRONG = {"Authorization": "Bearer " + "x" * len(ADMIN_TOKEN)}
BODY_METHODS = {"post", "put", "patch", "delete"}


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]


def fill(path: str, known: dict[str, list[str]]) -> list[str]:
    """The path with each parameter given every value of ``known`` (and an unknown one)."""
    names = re.findall(r"{(\w+)}", path)
    choices = [[*known.get(name, []), "nosuch9"] for name in names]
    filled = []
    for values in itertools.product(*choices):
        url = path
        for name, value in zip(names, values, strict=True):
            url = url.replace("{" + name + "}", value)
        filled.append(url)
    return filled


@pytest.fixture
def prober(settings: Settings) -> Iterator[TestClient]:
    """The app with no limit on wrong admin tokens: the probes send hundreds of them, and each
    must reach the refusal of its own operation (that a 429 is documented is checked all the
    same: every operation that needs the token lists it)."""
    with TestClient(create_app(settings.model_copy(update={"limit_failed_login_burst": 0}))) as c:
        yield c


def test_every_status_an_operation_answers_with_is_documented(prober: TestClient) -> None:
    client = prober
    code = new_session(client)
    phase_action(client, code, "definition", "open")
    assert client.post(
        f"/api/v1/sessions/{code}/votes", json={"phase": "definition", "choice": "d1"}
    ).is_success
    known = {
        "code": [code],
        "slug": ["emergence"],
        "phase_id": ["definition", "belief"],
        "action": ["open", "close", "reveal"],
        "chart_name": ["gap.svg", "definition.png"],
    }
    spec = client.get("/openapi.json").json()
    undocumented: list[str] = []
    seen: dict[str, set[int]] = {}
    for path, method, operation in operations(spec):
        documented = {int(status) for status in operation["responses"]}
        urls = fill(path, known)
        if path.endswith("/events"):  # a stream that opens never ends: only its refusals
            urls = [url for url in urls if code not in url]
        for url, headers in itertools.product(urls, ({}, WRONG, AUTH)):
            deletes_the_room = method == "delete" and path == "/api/v1/sessions/{code}"
            if deletes_the_room and headers is AUTH and code in url:
                continue  # it would succeed: the probes of the other calls need the session
            bodies: list[dict[str, Any]] = [{}]
            if method in BODY_METHODS:
                bodies += [
                    {"json": {"phase": "definition", "choice": "d2"}},
                    {"json": {"phase": "belief", "choice": "agree"}},  # not open: 409
                    {"json": {"unexpected": True}},
                    {"content": b"{not json", "headers": {"content-type": "application/json"}},
                    {
                        "content": b'{"phase": "\xff"}',
                        "headers": {"content-type": "application/json"},
                    },
                    {"content": b"x" * (DEFAULT_BODY_LIMIT + 1)},
                ]
            for body in bodies:
                extra = body.pop("headers", {})
                response = client.request(
                    method.upper(),
                    url,
                    headers={**headers, **extra},
                    follow_redirects=False,
                    **body,
                )
                seen.setdefault(f"{method.upper()} {path}", set()).add(response.status_code)
                if response.status_code not in documented:
                    undocumented.append(f"{method.upper()} {url} -> {response.status_code}")
    assert undocumented == [], "\n".join(sorted(set(undocumented)))
    # The probes reached what they should: the token's refusals, unknown names, big bodies.
    assert {401, 403, 404} <= seen["GET /api/v1/sessions/{code}/results"]
    assert {400, 404, 409, 413, 422} <= seen["POST /api/v1/sessions/{code}/votes"]
    assert {204, 404, 413} <= seen["DELETE /api/v1/sessions/{code}/me"]


def test_every_error_response_is_the_detail_model_and_api_calls_document_503(
    client: TestClient,
) -> None:
    spec = client.get("/openapi.json").json()
    model = spec["components"]["schemas"]["ErrorOut"]
    assert set(model["properties"]) == {"detail", "code"} and model["required"] == ["detail"]
    for path, method, operation in operations(spec):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorOut"}, (path, status)
                assert response["description"], (path, status)
        if path.startswith("/api/"):
            assert "503" in operation["responses"], f"{method} {path}"


def test_a_countdowns_end_carries_its_utc_offset(client: TestClient) -> None:
    code = new_session(client)
    state = phase_action(client, code, "definition", "open", seconds=60)
    closes_at = state["phases"][0]["closes_at"]
    assert closes_at.endswith(("Z", "+00:00")), closes_at
    again = client.get(f"/api/v1/sessions/{code}").json()["phases"][0]["closes_at"]
    assert again.endswith(("Z", "+00:00")), again


def test_a_405_names_every_method_the_address_answers(client: TestClient) -> None:
    """Each route holds one method; the Allow header must still list them all (and no more)."""
    expected = {
        "/api/v1/sessions/ABC123": "GET, PATCH, DELETE",
        "/api/v1/talks": "GET, POST",
        "/api/v1/talks/emergence.toml": "GET",  # not the PUT of /api/v1/talks/{slug}
        "/api/v1/talks/emergence": "GET, PUT",
    }
    for path, allow in expected.items():
        response = client.request("OPTIONS", path)
        assert (response.status_code, response.headers.get("allow")) == (405, allow), path
