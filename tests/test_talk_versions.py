"""Talks edited through the API: versions, sessions that keep theirs, every problem at once, the
TOML export that imports back, copies of bundled talks, and results pooled only where the
versions asked alike; and a database from before versions, migrated."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, func, text
from sqlmodel import Session, select

from app.db import alembic_config, make_engine, migrate
from app.models import PollSession, Response, TalkVersion
from tests.conftest import AUTH, new_session, phase_action

TALK: dict[str, Any] = {
    "slug": "my-talk",
    "languages": ["en", "zh-Hans"],
    "title": {"en": "My talk", "zh-Hans": "我的报告"},
    "phases": [
        {
            "id": "belief",
            "kind": "stance",
            "holds": ["agree"],
            "question": {"en": "Do you agree?", "zh-Hans": "你同意吗？"},
            "options": [
                {"id": "agree", "label": {"en": "Yes", "zh-Hans": "是"}},
                {"id": "disagree", "label": {"en": "No", "zh-Hans": "否"}},
            ],
        },
        {
            "id": "field",
            "kind": "perceived",
            "of": "belief",
            "question": {"en": "What share agrees?", "zh-Hans": "多大比例同意？"},
            "range": [0, 100],
        },
    ],
}


def post_talk(client: TestClient, talk: dict[str, Any] | None = None) -> dict[str, Any]:
    response = client.post("/api/v1/talks", json=talk or TALK, headers=AUTH)
    assert response.status_code == 201, response.text
    return dict(response.json())


def edited(question: str) -> dict[str, Any]:
    talk = json.loads(json.dumps(TALK))
    talk["phases"][0]["question"]["en"] = question
    return talk


def vote(client: TestClient, code: str, body: dict[str, Any]) -> None:
    response = client.post(f"/api/v1/sessions/{code}/votes", json=body)
    assert response.status_code == 200, response.text


def test_talk_calls_need_the_presenter(client: TestClient) -> None:
    assert client.post("/api/v1/talks", json=TALK).status_code == 401
    bad = {"Authorization": "Bearer nope"}
    assert client.post("/api/v1/talks", json=TALK, headers=bad).status_code == 403
    assert client.get("/api/v1/talks/emergence").status_code == 401
    assert client.get("/api/v1/talks/emergence.toml").status_code == 401
    assert client.put("/api/v1/talks/emergence", json=TALK).status_code == 401
    assert client.post("/api/v1/talks/emergence/copy", json={"slug": "x"}).status_code == 401


def test_a_talk_posted_is_version_one_and_a_session_can_run_it(client: TestClient) -> None:
    assert post_talk(client) == {"slug": "my-talk", "version": 1}
    got = client.get("/api/v1/talks/my-talk", headers=AUTH).json()
    assert got["version"] == 1 and got["phases"][1]["range"] == [0, 100]
    code = new_session(client, "my-talk")
    assert client.get(f"/api/v1/sessions/{code}").json()["talk_version"] == 1
    again = client.post("/api/v1/talks", json=TALK, headers=AUTH)
    assert again.status_code == 409


def test_an_invalid_talk_lists_every_problem_and_stores_nothing(client: TestClient) -> None:
    talk = json.loads(json.dumps(TALK))
    talk["phases"][0]["question"]["zh-Hans"] = ""
    talk["phases"][0]["options"][1]["id"] = "agree"
    talk["phases"][1]["of"] = "nothing"
    talk["phases"].append({"id": "x", "kind": "opinion"})
    response = client.post("/api/v1/talks", json=talk, headers=AUTH)
    assert response.status_code == 422
    detail = response.json()["detail"]
    where = {(p["phase"], p["option"], p["field"]) for p in detail}
    assert ("belief", None, "question") in where
    assert ("belief", "agree", "id") in where
    assert ("field", None, "of") in where
    assert ("x", None, "kind") in where
    assert all(p["msg"] and isinstance(p["loc"], list) for p in detail)
    assert client.get("/api/v1/talks/my-talk", headers=AUTH).status_code == 404
    for body, kind in (("slug = ", "application/toml"), ("{", "application/json")):
        bad = client.post("/api/v1/talks", content=body, headers={**AUTH, "content-type": kind})
        assert bad.status_code == 422, bad.text
    other = client.post("/api/v1/talks", content="x", headers={**AUTH, "content-type": "text/csv"})
    assert other.status_code == 415


def with_revote(**revote: Any) -> dict[str, Any]:
    talk = json.loads(json.dumps(TALK))
    talk["phases"].append({"id": "revote", "kind": "revote", "of": "belief", **revote})
    return talk


def test_a_revote_with_options_of_its_own_is_refused_naming_what_differs(
    client: TestClient,
) -> None:
    options = json.loads(json.dumps(TALK["phases"][0]["options"]))
    options[1]["label"]["en"] = "Not any more"
    response = client.post("/api/v1/talks", json=with_revote(options=options), headers=AUTH)
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert (problem["phase"], problem["option"], problem["field"]) == (
        "revote",
        "disagree",
        "label",
    )
    assert (
        "stance phase 'belief'" in problem["msg"] and "'Not any more' here, 'No'" in problem["msg"]
    )
    assert client.get("/api/v1/talks/my-talk", headers=AUTH).status_code == 404

    # The same through an edit: refused, the current version stays.
    post_talk(client, with_revote())
    edit = client.put("/api/v1/talks/my-talk", json=with_revote(options=options), headers=AUTH)
    assert edit.status_code == 422 and edit.json()["detail"][0]["option"] == "disagree"
    assert client.get("/api/v1/talks/my-talk", headers=AUTH).json()["version"] == 1
    # Exactly the stance's options are accepted (and change nothing).
    same = with_revote(options=TALK["phases"][0]["options"])
    assert client.put("/api/v1/talks/my-talk", json=same, headers=AUTH).json()["version"] == 1


def test_a_revote_without_options_asks_with_its_stances_on_the_phone(client: TestClient) -> None:
    post_talk(client, with_revote(question={"en": "And now?", "zh-Hans": "现在呢？"}))
    stored = client.get("/api/v1/talks/my-talk", headers=AUTH).json()
    assert stored["phases"][2]["options"] == TALK["phases"][0]["options"]
    code = new_session(client, "my-talk")
    phase_action(client, code, "revote", "open")
    for lang, question, labels in (
        ("en", "And now?", ["Yes", "No"]),
        ("zh-Hans", "现在呢？", ["是", "否"]),
    ):
        page = BeautifulSoup(client.get(f"/j/{code}", params={"lang": lang}).text, "html.parser")
        assert page.select_one("#aud-q-revote").get_text(strip=True) == question
        assert [b.get_text(strip=True) for b in page.select(".aud-option__label")] == labels


def test_an_edit_makes_a_version_and_old_sessions_keep_their_wording(client: TestClient) -> None:
    post_talk(client)
    old = new_session(client, "my-talk", "Before")
    phase_action(client, old, "belief", "open")
    vote(client, old, {"phase": "belief", "choice": "agree"})
    # The phone page caches the session's texts: it must not pick up the edit.
    assert "Do you agree?" in client.get(f"/j/{old}").text

    response = client.put("/api/v1/talks/my-talk", json=edited("Agree, now?"), headers=AUTH)
    assert response.json() == {"slug": "my-talk", "version": 2}
    new = new_session(client, "my-talk", "After")

    assert "Do you agree?" in client.get(f"/j/{old}").text
    assert "Agree, now?" not in client.get(f"/j/{old}").text
    phase_action(client, new, "belief", "open")
    assert "Agree, now?" in client.get(f"/j/{new}").text
    assert client.get(f"/api/v1/sessions/{old}").json()["talk_version"] == 1
    assert client.get(f"/api/v1/sessions/{new}").json()["talk_version"] == 2
    doc = client.get(f"/api/v1/sessions/{old}/export.json", headers=AUTH).json()
    assert doc["phases"][0]["question"]["en"] == "Do you agree?"
    book = client.get(f"/api/v1/sessions/{old}/codebook.json", headers=AUTH).json()
    assert book["phases"][0]["question"]["en"] == "Do you agree?"
    assert client.get("/api/v1/talks/my-talk", headers=AUTH).json()["version"] == 2


def test_a_failed_edit_leaves_the_current_version(client: TestClient) -> None:
    post_talk(client)
    broken = edited("")
    response = client.put("/api/v1/talks/my-talk", json=broken, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["detail"][0]["phase"] == "belief"
    got = client.get("/api/v1/talks/my-talk", headers=AUTH).json()
    assert got["version"] == 1 and got["phases"][0]["question"]["en"] == "Do you agree?"
    renamed = {**TALK, "slug": "other"}
    assert client.put("/api/v1/talks/my-talk", json=renamed, headers=AUTH).status_code == 422
    with Session(client.app.state.engine) as db:  # type: ignore[attr-defined]
        assert db.exec(select(func.count()).select_from(TalkVersion)).one() == 3  # 2 bundled
    assert client.put("/api/v1/talks/nope", json=TALK, headers=AUTH).status_code == 404


def test_a_bundled_talk_cannot_be_edited_but_copied(client: TestClient) -> None:
    current = client.get("/api/v1/talks/emergence", headers=AUTH).json()
    current.pop("version")
    response = client.put("/api/v1/talks/emergence", json=current, headers=AUTH)
    assert response.status_code == 409
    assert response.json()["copy"]["url"] == "/api/v1/talks/emergence/copy"
    assert "copy" in response.json()["detail"]
    copied = client.post("/api/v1/talks/emergence/copy", json={"slug": "mine"}, headers=AUTH)
    assert copied.status_code == 201 and copied.json() == {"slug": "mine", "version": 1}
    mine = client.get("/api/v1/talks/mine", headers=AUTH).json()
    assert mine["phases"] == {**current, "slug": "mine"}["phases"]
    taken = client.post("/api/v1/talks/emergence/copy", json={"slug": "mine"}, headers=AUTH)
    assert taken.status_code == 409
    bad = client.post("/api/v1/talks/emergence/copy", json={"slug": "Not A Slug"}, headers=AUTH)
    assert bad.status_code == 422


def test_the_toml_export_posts_back_as_the_same_talk(client: TestClient) -> None:
    for slug in ("emergence", "emergence-scale"):
        exported = client.get(f"/api/v1/talks/{slug}.toml", headers=AUTH)
        assert exported.status_code == 200
        assert exported.headers["content-type"].startswith("application/toml")
        body = exported.text.replace(f'slug = "{slug}"', f'slug = "{slug}-back"', 1)
        response = client.post(
            "/api/v1/talks",
            content=body.encode(),
            headers={**AUTH, "content-type": "application/toml"},
        )
        assert response.status_code == 201, response.text
        original = client.get(f"/api/v1/talks/{slug}", headers=AUTH).json()
        back = client.get(f"/api/v1/talks/{slug}-back", headers=AUTH).json()
        assert {**back, "slug": slug} == original


def test_pooled_results_pool_a_phase_only_where_the_versions_asked_it_alike(
    client: TestClient,
) -> None:
    post_talk(client)
    old = new_session(client, "my-talk", "Before")
    client.put("/api/v1/talks/my-talk", json=edited("Agree, now?"), headers=AUTH)
    new = new_session(client, "my-talk", "After")
    for code, n in ((old, 6), (new, 7)):
        phase_action(client, code, "belief", "open")
        phase_action(client, code, "field", "open")
        for i in range(n):
            client.cookies.clear()  # a new phone
            vote(client, code, {"phase": "belief", "choice": "agree" if i % 2 else "disagree"})
            vote(client, code, {"phase": "field", "value": 50})
    results = client.get("/api/v1/talks/my-talk/results", headers=AUTH).json()
    assert results["pooled_from"] == {"belief": [new], "field": [old, new]}
    assert results["phases"]["belief"]["n"] == 7  # only the session asked the new wording
    assert results["phases"]["field"]["n"] == 13
    assert {s["code"]: s["phases"]["belief"]["n"] for s in results["sessions"]} == {old: 6, new: 7}
    assert results["meta"]["gap"]["k"] <= 1
    # The old session's gap is not pooled, and its row in the forest says why.
    rows = {row["code"]: row for row in results["meta"]["gap"]["sessions"]}
    assert rows[old]["excluded"] == "other_version" and rows[old]["weight"] is None
    page = client.get("/presenter/talks/my-talk/results", headers=AUTH)
    assert "its talk version asks the gap" in page.text


def test_a_database_from_before_versions_is_migrated(tmp_path: Path) -> None:
    migrated_from_before_versions(f"sqlite:///{tmp_path / 'old.db'}")


@pytest.mark.postgres
def test_a_postgresql_database_from_before_versions_is_migrated(postgres_database: str) -> None:
    migrated_from_before_versions(postgres_database)


def migrated_from_before_versions(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as connection:
        config = alembic_config(url)
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    rows = {
        "talk": [
            {
                "id": 1,
                "slug": "old",
                "titles": {"en": "Old"},
                "languages": ["en"],
                "source": "/talks/old.toml",
                "digest": "abc",
            }
        ],
        "phase": [
            {
                "id": 1,
                "talk_id": 1,
                "key": "belief",
                "position": 0,
                "kind": "stance",
                "questions": {"en": "Agree?"},
                "holds": ["agree"],
                "retired": False,
            },
            {
                "id": 2,
                "talk_id": 1,
                "key": "gone",
                "position": 1,
                "kind": "choice",
                "questions": {"en": "Gone?"},
                "holds": [],
                "retired": True,
            },
        ],
        "phase_option": [
            {
                "id": 1,
                "phase_id": 1,
                "key": "agree",
                "position": 0,
                "labels": {"en": "Yes"},
                "retired": False,
            },
            {
                "id": 2,
                "phase_id": 1,
                "key": "disagree",
                "position": 1,
                "labels": {"en": "No"},
                "retired": False,
            },
        ],
        "poll_session": [
            {
                "id": 1,
                "code": "ABCDEF",
                "talk_id": 1,
                "venue": "Here",
                "held_on": date(2026, 1, 1),
                "language": "en",
                "created_at": datetime(2026, 1, 1, 10, tzinfo=UTC),
            }
        ],
        "session_phase": [
            {
                "id": 1,
                "session_id": 1,
                "phase_id": 1,
                "position": 0,
                "state": "closed",
                "revealed": False,
            },
            {
                "id": 2,
                "session_id": 1,
                "phase_id": 2,
                "position": 1,
                "state": "closed",
                "revealed": False,
            },
        ],
        "participant": [
            {"id": 1, "session_id": 1, "token": "t", "joined_at": datetime(2026, 1, 1, tzinfo=UTC)}
        ],
        "response": [
            {
                "id": 1,
                "session_id": 1,
                "phase_id": 1,
                "participant_id": 1,
                "option_id": 1,
                "answered_at": datetime(2026, 1, 1, 10, 1, tzinfo=UTC),
            }
        ],
    }
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.begin() as c:
        for name, values in rows.items():
            c.execute(metadata.tables[name].insert(), values)
    migrate(engine)
    with Session(engine) as db:
        version = db.exec(select(TalkVersion)).one()
        assert version.number == 1 and version.digest == "abc"
        assert version.content == {
            "slug": "old",
            "languages": ["en"],
            "title": {"en": "Old"},
            "phases": [
                {
                    "id": "belief",
                    "kind": "stance",
                    "question": {"en": "Agree?"},
                    "holds": ["agree"],
                    "options": [
                        {"id": "agree", "label": {"en": "Yes"}},
                        {"id": "disagree", "label": {"en": "No"}},
                    ],
                }
            ],
        }
        poll = db.exec(select(PollSession)).one()
        assert poll.version_id == version.id
        assert db.exec(select(func.count()).select_from(Response)).one() == 1
        options = db.exec(text("SELECT count(*) FROM phase_option")).one()  # type: ignore[call-overload]
        assert options[0] == 2
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_the_talk_results_page_says_which_phases_were_pooled_partly(client: TestClient) -> None:
    post_talk(client)
    new_session(client, "my-talk", "Before")
    client.put("/api/v1/talks/my-talk", json=edited("Agree, now?"), headers=AUTH)
    new_session(client, "my-talk", "After")
    page = client.get("/presenter/talks/my-talk/results", headers=AUTH)
    assert page.status_code == 200
    assert "“belief” is pooled over 1 of 2 sessions" in page.text
    assert "“field” is pooled" not in page.text


def test_odd_bodies_get_a_422_never_a_500(client: TestClient) -> None:
    json_type = {**AUTH, "content-type": "application/json"}
    toml_type = {**AUTH, "content-type": "application/toml"}
    range_big = json.loads(json.dumps(TALK))
    range_big["phases"][1]["range"] = [0, 10**400]
    bodies = [
        (json_type, "[" * 100_000),
        (json_type, '{"slug": "x", "phases": [{"id": "a", "kind": "perceived", "of": [1]}]}'),
        (json_type, json.dumps(range_big)),
        (json_type, json.dumps({**TALK, "phases": [{**TALK["phases"][0], "holds": [{}]}]})),
        (json_type, '{"slug": "x", "languages": [1, "en"], "title": {"en": 5}, "phases": [1]}'),
        (json_type, "[1, 2]"),
        (json_type, b"\xff\xfe"),
        (
            toml_type,
            'slug = "x"\nlanguages = ["en"]\ntitle.en = "X"\n[[phases]]\nid = "f"\n'
            'kind = "perceived"\nof = "x"\nrange = [0, inf]\n',
        ),
    ]
    for headers, body in bodies:
        response = client.post("/api/v1/talks", content=body, headers=headers)
        assert response.status_code == 422, (body[:80], response.text)
        put = client.put("/api/v1/talks/emergence", content=body, headers=headers)
        assert put.status_code in (409, 422), put.text
