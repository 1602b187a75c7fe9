from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import Session, select

from app.live import RecordingPublisher
from app.models import Participant, Response
from tests.conftest import AUTH, new_session, phase_action


def stored_responses(client: TestClient) -> int:
    with Session(client.app.state.engine) as db:  # type: ignore[attr-defined]
        return db.exec(select(func.count()).select_from(Response)).one()


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_talks_list_the_bundled_talks_with_their_phases(client: TestClient) -> None:
    talks = {t["slug"]: t for t in client.get("/api/v1/talks").json()}
    assert set(talks) >= {"emergence", "emergence-scale"}
    belief = talks["emergence"]["phases"][1]
    assert belief["id"] == "belief" and belief["kind"] == "stance"
    assert [o["id"] for o in belief["options"]] == ["agree", "disagree", "unsure"]
    field_pct = next(p for p in talks["emergence-scale"]["phases"] if p["id"] == "field_pct")
    assert field_pct["options"] == [] and field_pct["max"] == 100
    chinese = client.get("/api/v1/talks", params={"lang": "zh-CN"}).json()
    assert chinese[0]["phases"][0]["question"] != talks[chinese[0]["slug"]]["phases"][0]["question"]


def test_creating_a_session_needs_the_admin_token(client: TestClient) -> None:
    body = {"talk": "emergence", "venue": "Copenhagen"}
    assert client.post("/api/v1/sessions", json=body).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert client.post("/api/v1/sessions", json=body, headers=wrong).status_code in (401, 403)
    response = client.post("/api/v1/sessions", json=body, headers=AUTH)
    assert response.status_code == 201
    created = response.json()
    code = created["code"]
    assert len(code) == 6 and code.isupper()
    assert not set(code) & set("01OIL")
    assert created["join_url"] == f"http://testserver/j/{code}"
    assert code in created["dashboard_url"]


def test_creating_a_session_for_an_unknown_talk_is_404_and_stores_nothing(
    client: TestClient,
) -> None:
    response = client.post("/api/v1/sessions", json={"talk": "nope", "venue": "X"}, headers=AUTH)
    assert response.status_code == 404
    assert "nope" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"talk": "emergence"},
        {"talk": "emergence", "venue": "   "},
        {"talk": "emergence", "venue": "x" * 201},
    ],
)
def test_a_session_needs_a_venue(client: TestClient, body: dict) -> None:
    assert client.post("/api/v1/sessions", json=body, headers=AUTH).status_code == 422


def test_a_session_is_found_by_its_code_in_any_case(client: TestClient) -> None:
    code = new_session(client)
    state = client.get(f"/api/v1/sessions/{code.lower()}").json()
    assert state["code"] == code and state["talk"] == "emergence" and state["venue"] == "Copenhagen"
    assert state["participants"] == 0
    assert [(p["id"], p["state"], p["revealed"]) for p in state["phases"]] == [
        ("definition", "pending", False),
        ("belief", "pending", False),
        ("field", "pending", False),
        ("revote", "pending", False),
    ]
    assert client.get("/api/v1/sessions/ZZZZZZ").status_code == 404


def test_phase_actions_need_the_token_and_change_state(
    client: TestClient, publisher: RecordingPublisher
) -> None:
    code = new_session(client)
    assert client.post(f"/api/v1/sessions/{code}/phases/belief/open").status_code == 401
    state = phase_action(client, code, "belief", "open")
    assert state["phases"][1]["state"] == "open"
    assert publisher.facts[-1].code == code and publisher.facts[-1].phases
    state = phase_action(client, code, "belief", "reveal")
    assert state["phases"][1]["revealed"] is True
    state = phase_action(client, code, "belief", "close")
    assert state["phases"][1]["state"] == "closed"
    closing_again = client.post(f"/api/v1/sessions/{code}/phases/belief/close", headers=AUTH)
    assert closing_again.status_code == 409
    state = phase_action(client, code, "belief", "hide")
    assert state["phases"][1]["revealed"] is False
    assert client.post(f"/api/v1/sessions/{code}/phases/nope/open", headers=AUTH).status_code == 422
    assert (
        client.post(f"/api/v1/sessions/{code}/phases/belief/dance", headers=AUTH).status_code == 422
    )
    assert (
        client.post("/api/v1/sessions/ZZZZZZ/phases/belief/open", headers=AUTH).status_code == 404
    )


def test_a_countdown_closes_the_phase_for_voters(client: TestClient) -> None:
    code = new_session(client)
    state = phase_action(client, code, "belief", "open", seconds=60)
    assert state["phases"][1]["closes_at"] is not None
    assert (
        client.post(
            f"/api/v1/sessions/{code}/phases/belief/open", params={"seconds": 0}, headers=AUTH
        ).status_code
        == 422
    )


def test_vote_change_and_refusals(client: TestClient, publisher: RecordingPublisher) -> None:
    code = new_session(client)
    url = f"/api/v1/sessions/{code}/votes"
    assert client.post(url, json={"phase": "belief", "choice": "agree"}).status_code == 409
    phase_action(client, code, "belief", "open")

    first = client.post(url, json={"phase": "belief", "choice": "agree"})
    assert first.status_code == 200 and first.json()["choice"] == "agree"
    assert f"bg_p_{code}" in first.cookies
    again = client.post(url, json={"phase": "belief", "choice": "unsure"})
    assert again.json()["choice"] == "unsure"
    assert again.json()["participant"] == first.json()["participant"]
    assert stored_responses(client) == 1
    assert not publisher.facts[-1].phases  # an answer, not a phase change

    for body, status in [
        ({"phase": "belief", "choice": "maybe"}, 422),
        ({"phase": "nope", "choice": "agree"}, 422),
        ({"phase": "belief"}, 422),
        ({"phase": "belief", "choice": 3}, 422),
        ({"phase": "belief", "value": 50}, 422),
        ({"phase": "belief", "choice": "agree", "extra": 1}, 422),
        ({"phase": "field", "choice": "agree"}, 409),
    ]:
        assert client.post(url, json=body).status_code == status, body
    assert (
        client.post(
            url, content=b"not json", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )
    huge = {"phase": "belief", "choice": "x" * 10_000}
    assert client.post(url, json=huge).status_code == 413
    assert (
        client.post(
            "/api/v1/sessions/ZZZZZZ/votes", json={"phase": "belief", "choice": "agree"}
        ).status_code
        == 404
    )

    phase_action(client, code, "belief", "close")
    closed = client.post(url, json={"phase": "belief", "choice": "disagree"})
    assert closed.status_code == 409
    with Session(client.app.state.engine) as db:  # type: ignore[attr-defined]
        rows = db.exec(select(Response)).all()
        assert len(rows) == 1 and rows[0].option_id is not None
        assert db.exec(select(func.count()).select_from(Participant)).one() == 1


def test_a_percent_estimate_takes_a_value_in_range(client: TestClient) -> None:
    code = new_session(client, talk="emergence-scale")
    phase_action(client, code, "field_pct", "open")
    url = f"/api/v1/sessions/{code}/votes"
    assert client.post(url, json={"phase": "field_pct", "value": 101}).status_code == 422
    assert client.post(url, json={"phase": "field_pct", "value": -1}).status_code == 422
    assert client.post(url, json={"phase": "field_pct", "choice": "agree"}).status_code == 422
    assert (
        client.post(
            url,
            content=b'{"phase": "field_pct", "value": NaN}',
            headers={"content-type": "application/json"},
        ).status_code
        == 422
    )
    ok = client.post(url, json={"phase": "field_pct", "value": 70})
    assert ok.status_code == 200 and ok.json()["value"] == 70
    assert stored_responses(client) == 1


def test_a_tampered_participant_cookie_is_a_new_participant(client: TestClient) -> None:
    code = new_session(client)
    phase_action(client, code, "belief", "open")
    url = f"/api/v1/sessions/{code}/votes"
    first = client.post(url, json={"phase": "belief", "choice": "agree"}).json()["participant"]
    client.cookies.clear()
    client.cookies.set(f"bg_p_{code}", "forged.value")
    second = client.post(url, json={"phase": "belief", "choice": "agree"}).json()["participant"]
    assert first != second
    assert stored_responses(client) == 2


def test_export_csv_has_one_formula_safe_row_per_response(client: TestClient) -> None:
    response = client.post(
        "/api/v1/sessions", json={"talk": "emergence", "venue": "=HYPERLINK(1)"}, headers=AUTH
    )
    code = response.json()["code"]
    phase_action(client, code, "belief", "open")
    client.post(f"/api/v1/sessions/{code}/votes", json={"phase": "belief", "choice": "agree"})
    assert client.get(f"/api/v1/sessions/{code}/export.csv").status_code == 401
    exported = client.get(f"/api/v1/sessions/{code}/export.csv", headers=AUTH)
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 1
    assert rows[0]["venue"] == "'=HYPERLINK(1)"
    assert rows[0]["phase"] == "belief" and rows[0]["choice"] == "agree"
    assert rows[0]["answered_at"].endswith("Z")
    document = client.get(f"/api/v1/sessions/{code}/export.json", headers=AUTH).json()
    assert document["responses"][0]["choice"] == "agree"
    assert document["phases"][1]["question"]["zh-Hans"]


def test_a_cross_site_form_cannot_vote_through_the_json_api(client: TestClient) -> None:
    """Even a request without browser headers (which the origin check lets through) cannot vote
    with a form-shaped body: the API takes JSON only, which a cross-site form cannot send."""
    code = new_session(client)
    phase_action(client, code, "belief", "open")
    client.post(f"/api/v1/sessions/{code}/votes", json={"phase": "belief", "choice": "agree"})
    forged = client.post(
        f"/api/v1/sessions/{code}/votes",
        content=b'{"phase": "belief", "choice": "disagree"}',
        headers={"content-type": "text/plain"},
    )
    assert forged.status_code == 422
    form = client.post(
        f"/api/v1/sessions/{code}/votes", data={"phase": "belief", "choice": "disagree"}
    )
    assert form.status_code == 422
    document = client.get(f"/api/v1/sessions/{code}/export.json", headers=AUTH).json()
    assert [r["choice"] for r in document["responses"]] == ["agree"]


def test_a_vote_body_the_api_cannot_read_gets_the_documented_details(client: TestClient) -> None:
    """The API's vote is answered ahead of the app's layers for a body that reads as a vote
    (``app.routes.busy``); every other body goes on to the documented route with its bytes,
    whose 422 says where and what (``loc``), and nothing is stored for it. A JSON media type
    with its charset still takes the quick path."""
    code = new_session(client)
    phase_action(client, code, "belief", "open")
    url = f"/api/v1/sessions/{code}/votes"
    as_json = {"content-type": "application/json"}
    cases = [
        ({"phase": "belief", "choice": "agree", "extra": 1}, ["body", "extra"], "extra_forbidden"),
        ({"phase": "belief", "choice": 3}, ["body", "choice"], "string_type"),
        ({"phase": "", "choice": "agree"}, ["body", "phase"], "string_too_short"),
        ([{"phase": "belief"}], ["body"], "model_attributes_type"),
    ]
    for body, loc, kind in cases:
        refused = client.post(url, json=body)
        assert refused.status_code == 422, body
        assert [(e["loc"], e["type"]) for e in refused.json()["detail"]] == [(loc, kind)], body
    for content in (b"{not json", b"", b"null"):
        refused = client.post(url, content=content, headers=as_json)
        assert refused.status_code == 422, content
        assert refused.json()["detail"][0]["loc"][0] == "body", content
    undecodable = client.post(url, content=b'{"phase": "\xff"}', headers=as_json)
    assert undecodable.status_code == 400
    assert undecodable.json() == {"detail": "There was an error parsing the body"}
    plain = client.post(url, content=b'{"phase": "belief", "choice": "agree"}')
    assert plain.status_code == 422  # no JSON media type: not a vote, as before
    assert stored_responses(client) == 0
    taken = client.post(
        url,
        content=b'{"phase": "belief", "choice": "agree"}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert taken.status_code == 200 and taken.json()["choice"] == "agree"
    assert stored_responses(client) == 1


def test_an_oversized_form_vote_is_refused_before_it_is_read(client: TestClient) -> None:
    code = new_session(client)
    phase_action(client, code, "belief", "open")
    response = client.post(f"/j/{code}/vote", data={"phase": "belief", "choice": "a" * 5000})
    assert response.status_code == 413
    document = client.get(f"/api/v1/sessions/{code}/export.json", headers=AUTH).json()
    assert document["responses"] == []
