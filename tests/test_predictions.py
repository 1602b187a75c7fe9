"""A prediction locked before the talk: locked once before the first question opens, hashed,
never changed, amended only visibly; refused with a clear 4xx otherwise, nothing written; set
against the room's result on the results page and in the package."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import AUTH, log_in, new_session, phase_action
from tests.test_results import room

CLAIMS = {"own_below": 50, "perceived_above": 60, "gap": 30, "gap_margin": 10}


def vote(app: FastAPI, client: TestClient, code: str, answers: list[dict[str, str]]) -> None:
    """The room answers the belief and field questions (one phone per dict)."""
    for phase in ("belief", "field"):
        phase_action(client, code, phase, "open")
    for given in answers:
        phone = TestClient(app)
        for phase in ("belief", "field"):
            response = phone.post(
                f"/api/v1/sessions/{code}/votes", json={"phase": phase, "choice": given[phase]}
            )
            assert response.status_code == 200, response.text
    for phase in ("belief", "field"):
        phase_action(client, code, phase, "close")


def lock(client: TestClient, code: str, body: dict) -> TestClient:
    return client.post(f"/api/v1/sessions/{code}/prediction", json=body, headers=AUTH)


def test_a_locked_prediction_is_hashed_and_set_against_the_result(
    app: FastAPI, client: TestClient
) -> None:
    code = new_session(client)
    locked = lock(client, code, CLAIMS | {"text": "Most of you think the field is sure."})
    assert locked.status_code == 201, locked.text
    [entry] = locked.json()["entries"]
    # anyone can recompute the hash from the canonical text, which holds the claims and time
    assert hashlib.sha256(entry["canonical"].encode()).hexdigest() == entry["sha256"]
    canonical = json.loads(entry["canonical"])
    assert canonical["claims"] == CLAIMS and canonical["session"] == code
    assert canonical["created_at"].startswith(entry["created_at"][:19])
    # no result yet
    assert {c["held"] for c in locked.json()["checks"]} == {None}

    vote(app, client, code, room(5, 9, 10))  # own 5/14 = 36%, perceived 10/14 = 71%
    got = client.get(f"/api/v1/sessions/{code}/prediction", headers=AUTH).json()
    assert [(c["claim"], round(c["result"]), c["held"]) for c in got["checks"]] == [
        ("own_below", 36, True),
        ("perceived_above", 71, True),
        ("gap", 36, True),
    ]
    log_in(client)
    page = client.get(f"/presenter/sessions/{code}/results").text
    assert "Prediction against result" in page and entry["sha256"] in page
    assert page.count(">held<") == 3
    control = client.get(f"/presenter/sessions/{code}").text
    assert entry["sha256"] in control and "Lock the prediction" not in control

    talk_page = client.get("/presenter/talks/emergence/results").text
    assert "Prediction against result" in talk_page and talk_page.count(">held<") == 3
    client.patch(f"/api/v1/sessions/{code}", json={"ended": True}, headers=AUTH)
    published = client.post("/api/v1/talks/emergence/publication", json={}, headers=AUTH)
    public = TestClient(app).get(published.json()["url"].removeprefix("http://testserver")).text
    assert "Prediction against result" in public and public.count(">held<") == 3
    chinese = TestClient(app).get(published.json()["url"] + "?lang=zh-Hans").text
    assert "预测与结果对照" in chinese and chinese.count(">成立<") == 3
    assert "现场自己持该观点的比例低于 50%" in chinese
    content = client.get(f"/api/v1/sessions/{code}/package.zip", headers=AUTH).content
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        packaged = json.loads(archive.read("predictions.json"))["sessions"][0]
    assert packaged["entries"][0]["sha256"] == entry["sha256"]
    assert [c["held"] for c in packaged["checks"]] == [True, True, True]


def test_malformed_or_late_predictions_are_refused_and_nothing_is_written(
    client: TestClient,
) -> None:
    code = new_session(client)
    for body in (
        {},  # no claim
        {"text": "only words"},
        {"own_below": 150},
        {"own_below": 40, "own_above": 60},  # below must be more than above
        {"gap": 20},  # a gap without its margin
        {"own_below": "half"},
        {"own_below": 50, "colour": "red"},
        {"own_below": 50, "text": "x" * 2001},
    ):
        refused = lock(client, code, body)
        assert refused.status_code == 422, (body, refused.text)
    assert client.get(f"/api/v1/sessions/{code}/prediction", headers=AUTH).status_code == 404
    assert lock(client, code, {"own_below": 50}).status_code == 201
    before = client.get(f"/api/v1/sessions/{code}/prediction", headers=AUTH).json()
    again = lock(client, code, {"own_below": 20})
    assert again.status_code == 409 and "amended" in again.json()["detail"]
    for method in ("put", "patch", "delete"):
        edited = client.request(
            method, f"/api/v1/sessions/{code}/prediction", json={"own_below": 20}, headers=AUTH
        )
        assert edited.status_code == 405, method
    without_why = client.post(
        f"/api/v1/sessions/{code}/prediction/amendments", json={"own_below": 20}, headers=AUTH
    )
    assert without_why.status_code == 422
    assert client.get(f"/api/v1/sessions/{code}/prediction", headers=AUTH).json() == before
    assert (
        client.post(f"/api/v1/sessions/{code}/prediction", json={"own_below": 5}).status_code == 401
    )

    late = new_session(client)
    phase_action(client, late, "definition", "open")
    too_late = lock(client, late, {"own_below": 50})
    assert too_late.status_code == 409 and "before" in too_late.json()["detail"]
    assert client.get(f"/api/v1/sessions/{late}/prediction", headers=AUTH).status_code == 404


def test_an_amendment_is_visible_chained_and_says_when_it_came(
    app: FastAPI, client: TestClient
) -> None:
    code = new_session(client)
    first = lock(client, code, {"own_below": 20}).json()["entries"][0]
    vote(app, client, code, room(5, 9, 10))
    amended = client.post(
        f"/api/v1/sessions/{code}/prediction/amendments",
        json={"own_below": 50, "text": "I misread the room size"},
        headers=AUTH,
    )
    assert amended.status_code == 201, amended.text
    entries = amended.json()["entries"]
    assert [e["number"] for e in entries] == [0, 1]
    assert entries[0] == first  # the prediction itself is unchanged
    assert json.loads(entries[1]["canonical"])["previous"] == first["sha256"]
    assert entries[1]["after_opening"] is True
    # the latest claims are the ones set against the result
    assert amended.json()["checks"][0]["predicted"] == 50
    log_in(client)
    page = client.get(f"/presenter/sessions/{code}/results").text
    assert "Amendment 1" in page and "after voting had opened" in page
    assert "I misread the room size" in page


def test_the_control_page_locks_a_prediction_and_refuses_a_late_one(client: TestClient) -> None:
    log_in(client)
    code = new_session(client)
    page = client.get(f"/presenter/sessions/{code}").text
    assert "Lock the prediction" in page
    form = {"own_below": "50", "perceived_above": "60", "text": "<b>bold</b> guess"}
    locked = client.post(
        f"/presenter/sessions/{code}/prediction", data=form, follow_redirects=False
    )
    assert locked.status_code == 303
    page = client.get(f"/presenter/sessions/{code}").text
    assert "The room&#39;s own share below 50%" in page
    assert "&lt;b&gt;bold&lt;/b&gt; guess" in page  # escaped
    refused = client.post(f"/presenter/sessions/{code}/prediction", data={"own_below": "10"})
    assert refused.status_code == 409 and "only amended" in refused.text

    late = new_session(client)
    phase_action(client, late, "definition", "open")
    assert "can only be locked before" in client.get(f"/presenter/sessions/{late}").text
    refused = client.post(f"/presenter/sessions/{late}/prediction", data={"own_below": "50"})
    assert refused.status_code == 409 and "Too late" in refused.text
    malformed = client.post(f"/presenter/sessions/{code}/prediction", data={"own_below": "x"})
    assert malformed.status_code == 422
    assert client.get(f"/api/v1/sessions/{late}/prediction", headers=AUTH).status_code == 404
