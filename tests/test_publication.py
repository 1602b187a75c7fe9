"""Permanent public results pages: published by the presenter (opt-in), open to anyone without
a login, hiding what every page hides, versioned as sessions are added; withdrawn, the address
answers 410 with the date, never 404; unknown addresses answer a 404 that tells nothing."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import AUTH, log_in
from tests.test_results import room, run_session


def end(client: TestClient, code: str) -> None:
    ended = client.patch(f"/api/v1/sessions/{code}", json={"ended": True}, headers=AUTH)
    assert ended.status_code == 200, ended.text


def publish(client: TestClient, what: str, **body: object) -> str:
    response = client.post(f"/api/v1/{what}/publication", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    return str(response.json()["url"]).removeprefix("http://testserver")


def test_a_published_talk_is_public_versioned_and_hides_what_every_page_hides(
    app: FastAPI, client: TestClient, tmp_path: Path
) -> None:
    end(client, run_session(app, client, room(5, 9, 10), venue="Copenhagen"))
    address = publish(client, "talks/emergence", contributors=["Anna Rogers"], licence="CC0-1.0")
    anyone = TestClient(app)  # no cookie, no token
    page = anyone.get(address)
    assert page.status_code == 200 and "Copenhagen" in page.text
    assert "Anna Rogers" in page.text and "CC0-1.0" in page.text
    assert "/presenter/" not in page.text and "/api/v1/" not in page.text
    # the same small-cell rules as the presenter's page: the same cells hidden
    log_in(client)
    presenter_page = client.get("/presenter/talks/emergence/results").text
    hidden = presenter_page.count("crosstab__few")
    assert hidden > 0 and page.text.count("crosstab__few") == hidden

    # a running session is not shown (its join code would let anyone in); once it has ended
    # it makes version 2, and version 1 keeps its address and its one session
    milan = run_session(app, client, room(8, 4, 10), venue="Milan")
    dry_run = run_session(app, client, room(5, 5, 5), venue="Dry run")
    client.patch(f"/api/v1/sessions/{dry_run}", json={"rehearsal": True}, headers=AUTH)
    assert "Milan" not in anyone.get(address).text
    assert dry_run not in anyone.get(address).text  # nor a rehearsal's code
    end(client, milan)
    assert (
        client.post("/api/v1/talks/emergence/publication", json={}, headers=AUTH)
        .json()["url"]
        .endswith(address)
    )  # published already: the same address
    newest = anyone.get(address).text
    assert "Milan" in newest and "version 2" in newest
    first = anyone.get(f"{address}/v1").text
    assert "Copenhagen" in first and "Milan" not in first and "see the newest" in first
    assert anyone.get(f"{address}/v3").status_code == 404

    package = anyone.get(f"{address}/v1/package.zip")
    assert package.status_code == 200
    with zipfile.ZipFile(io.BytesIO(package.content)) as archive:
        names = archive.namelist()
        descriptor = json.loads(archive.read("datapackage.json"))
        cff = archive.read("CITATION.cff").decode()
        archive.extractall(tmp_path)
    frictionless = pytest.importorskip("frictionless")
    report = frictionless.validate(str(tmp_path / "datapackage.json"))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])
    # no answer-level rows in public: they would give the hidden cells back
    assert "data/responses.csv" not in names
    assert [r["name"] for r in descriptor["resources"]] == ["sessions", "questions", "options"]
    assert descriptor["version"] == "1.0.0" and "license: CC0-1.0" in cff
    assert f'url: "http://testserver{address}"' in cff
    # the presenter's own package (with the answers) points to the public page too
    full = client.get("/api/v1/talks/emergence/package.zip", headers=AUTH).content
    with zipfile.ZipFile(io.BytesIO(full)) as archive:
        assert f'url: "http://testserver{address}"' in archive.read("CITATION.cff").decode()
        assert "data/responses.csv" in archive.namelist()


def test_withdrawing_leaves_a_dated_410_and_unknown_addresses_tell_nothing(
    app: FastAPI, client: TestClient
) -> None:
    code = run_session(app, client, room(5, 9, 10))
    address = publish(client, f"sessions/{code}")
    token = address.rsplit("/", 1)[1]
    anyone = TestClient(app)
    first = anyone.get(address)
    assert first.status_code == 200 and first.headers["cache-control"] == "public, no-cache"
    drawn = app.state.public_pages.draws
    # kept for the next reader; a browser that has it asks again and gets a 304
    again = anyone.get(address, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and app.state.public_pages.draws == drawn
    withdrawn = client.delete(f"/api/v1/publications/{token}", headers=AUTH)
    assert withdrawn.status_code == 200 and withdrawn.json()["withdrawn_at"]
    gone = anyone.get(address)
    assert gone.status_code == 410
    day = withdrawn.json()["withdrawn_at"][:10]
    assert f"withdrew these results on {day}" in gone.text
    assert "Copenhagen" not in gone.text
    assert anyone.get(f"{address}/v1/package.zip").status_code == 410
    assert client.delete(f"/api/v1/publications/{token}", headers=AUTH).status_code == 409

    never = anyone.get("/r/AAAAAAAAAAAA")
    assert never.status_code == 404
    republished = publish(client, f"sessions/{code}")
    assert republished != address and anyone.get(republished).status_code == 200
    for odd in ("/v2", "/vabc", "/v-1", "/v0", "/v99999999999", "/vabc/package.zip"):
        wrong = anyone.get(republished + odd)
        assert wrong.status_code == 404, odd
        assert wrong.text == never.text, odd  # nothing tells them apart
    assert anyone.get("/r/" + "x" * 200).text == never.text


def test_a_public_page_drawn_again_keeps_its_etag(
    app: FastAPI, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page is drawn again when its 30 s are up; unchanged results give the same bytes, so a
    browser holding the page still gets a 304 (chart ids had come from a counter: every
    drawing had new ones, a new ETag, and the whole page sent again)."""
    from app.routes import publish as publish_routes

    code = run_session(app, client, room(5, 9, 10))
    address = publish(client, f"sessions/{code}")
    anyone = TestClient(app)
    first = anyone.get(address)
    assert first.status_code == 200 and "<svg" in first.text
    drawn = app.state.public_pages.draws
    later = publish_routes.time.monotonic() + 2 * publish_routes.PUBLIC_TTL_SECONDS
    monkeypatch.setattr(publish_routes.time, "monotonic", lambda: later)
    again = anyone.get(address, headers={"If-None-Match": first.headers["etag"]})
    assert app.state.public_pages.draws == drawn + 1  # drawn again, not served as kept
    assert again.status_code == 304 and again.headers["etag"] == first.headers["etag"]


def test_publishing_needs_the_presenter_and_a_known_licence(
    app: FastAPI, client: TestClient
) -> None:
    code = run_session(app, client, room(5, 9, 10))
    assert client.post(f"/api/v1/sessions/{code}/publication", json={}).status_code == 401
    assert client.delete("/api/v1/publications/whatever").status_code == 401
    bad = client.post(f"/api/v1/sessions/{code}/publication", json={"licence": "MIT"}, headers=AUTH)
    assert bad.status_code == 422
    assert client.delete("/api/v1/publications/nope", headers=AUTH).status_code == 404
    stranger = TestClient(app).post(f"/presenter/sessions/{code}/publish", follow_redirects=False)
    assert stranger.status_code == 303 and "/presenter/login" in stranger.headers["location"]
    log_in(client)
    page = client.get(f"/presenter/sessions/{code}/results").text
    assert f'action="/presenter/sessions/{code}/publish"' in page  # nothing was published


def test_the_results_page_publishes_and_withdraws(app: FastAPI, client: TestClient) -> None:
    code = run_session(app, client, room(5, 9, 10))
    log_in(client)
    page = client.get(f"/presenter/sessions/{code}/results").text
    assert f'action="/presenter/sessions/{code}/publish"' in page
    published = client.post(
        f"/presenter/sessions/{code}/publish",
        data={"licence": "CC-BY-4.0", "contributor": "A. Speaker"},
        follow_redirects=False,
    )
    assert published.status_code == 303
    page = client.get(f"/presenter/sessions/{code}/results").text
    address = page.split("data-public-url>", 1)[1].split("<", 1)[0]
    public = TestClient(app).get(address.removeprefix("http://testserver"))
    assert public.status_code == 200 and "A. Speaker" in public.text
    token = address.rsplit("/", 1)[1]
    assert (
        client.post(f"/presenter/publications/{token}/withdraw", follow_redirects=False).status_code
        == 303
    )
    assert TestClient(app).get(f"/r/{token}").status_code == 410
    assert (
        f'action="/presenter/sessions/{code}/publish"'
        in client.get(f"/presenter/sessions/{code}/results").text
    )


def test_a_deleted_sessions_page_says_it_was_withdrawn(app: FastAPI, client: TestClient) -> None:
    code = run_session(app, client, room(5, 9, 10))
    client.post(f"/api/v1/sessions/{code}/prediction", json={"own_below": 50}, headers=AUTH)
    address = publish(client, f"sessions/{code}")
    assert TestClient(app).get(address).status_code == 200
    assert client.delete(f"/api/v1/sessions/{code}", headers=AUTH).status_code == 204
    gone = TestClient(app).get(address)
    assert gone.status_code == 410 and "withdrew these results on" in gone.text
