"""A session's life: renamed, marked as a rehearsal, ended, deleted (API, caches, the phone)."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import Session, select

from app import sessions
from app.live import RecordingPublisher
from app.models import Participant, PollSession, Response, SessionPhase, VoteIn
from app.sessions import SessionCache
from app.vote_writer import VoteWriter
from tests.conftest import AUTH, new_session, phase_action


def count(client: TestClient, table: type) -> int:
    with Session(client.app.state.engine) as db:  # type: ignore[attr-defined]
        return db.exec(select(func.count()).select_from(table)).one()


def patch(client: TestClient, code: str, body: object, headers: dict | None = None):  # type: ignore[no-untyped-def]
    return client.patch(
        f"/api/v1/sessions/{code}", json=body, headers=AUTH if headers is None else headers
    )


def vote(client: TestClient, code: str, phase: str, choice: str) -> int:
    response = client.post(
        f"/api/v1/sessions/{code}/votes", json={"phase": phase, "choice": choice}
    )
    return response.status_code


def test_a_new_session_is_running_and_not_a_rehearsal(client: TestClient) -> None:
    code = new_session(client)
    body = client.get(f"/api/v1/sessions/{code}").json()
    assert body["rehearsal"] is False and body["ended"] is False
    assert body["talk_version"] >= 1


def test_renaming_the_venue(client: TestClient, publisher: RecordingPublisher) -> None:
    code = new_session(client, venue="Copenhagen")
    response = patch(client, code, {"venue": "  Aarhus  "})
    assert response.status_code == 200
    assert response.json()["venue"] == "Aarhus"
    assert client.get(f"/api/v1/sessions/{code}").json()["venue"] == "Aarhus"
    assert publisher.facts[-1].code == code and publisher.facts[-1].phases


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"venue": ""},
        {"venue": "   "},
        {"venue": "x" * 201},
        {"venue": 5},
        {"rehearsal": "yes"},
        {"ended": 1},
        {"ended": None},
        {"ended": True, "colour": "red"},
        ["ended"],
    ],
)
def test_a_bad_update_is_422_and_changes_nothing(client: TestClient, body: object) -> None:
    code = new_session(client, venue="Copenhagen")
    before = client.get(f"/api/v1/sessions/{code}").json()
    response = patch(client, code, body)
    assert response.status_code == 422, response.text
    assert client.get(f"/api/v1/sessions/{code}").json() == before


def test_updates_and_deletes_need_the_presenter(client: TestClient) -> None:
    code = new_session(client)
    assert patch(client, code, {"ended": True}, headers={}).status_code == 401
    assert client.delete(f"/api/v1/sessions/{code}").status_code == 401
    assert client.get(f"/api/v1/sessions/{code}").json()["ended"] is False
    assert patch(client, "ZZZZZZ", {"ended": True}).status_code == 404
    assert client.delete("/api/v1/sessions/ZZZZZZ", headers=AUTH).status_code == 404


def test_an_ended_session_refuses_votes_and_phase_changes(client: TestClient) -> None:
    code = new_session(client)
    phase_action(client, code, "definition", "open")
    assert vote(client, code, "definition", "d1") == 200
    response = patch(client, code, {"ended": True})
    assert response.status_code == 200
    state = response.json()
    assert state["ended"] is True and state["ended_at"]
    # RFC 3339 with its offset, on SQLite too (it hands datetimes back without one)
    assert datetime.fromisoformat(state["ended_at"]).utcoffset() is not None, state["ended_at"]
    # Ending closed the open phase.
    assert next(p["state"] for p in state["phases"]) == "closed"
    answers = count(client, Response)
    refused = client.post(
        f"/api/v1/sessions/{code}/votes", json={"phase": "definition", "choice": "d2"}
    )
    assert refused.status_code == 409
    assert count(client, Response) == answers
    for action in ("open", "close", "reveal", "hide"):
        response = client.post(f"/api/v1/sessions/{code}/phases/definition/{action}", headers=AUTH)
        assert response.status_code == 409, action
    # Taken up again, it runs as before.
    assert patch(client, code, {"ended": False}).json()["ended"] is False
    phase_action(client, code, "definition", "open")
    assert vote(client, code, "definition", "d2") == 200


def test_a_vote_queued_before_the_end_and_written_after_it_is_refused(
    client: TestClient,
) -> None:
    """The writer's check is in the write itself: a vote validated against a session that was
    running, then written after the end committed, stores nothing (409 session_ended)."""
    code = new_session(client)
    phase_action(client, code, "definition", "open")
    engine = client.app.state.engine  # type: ignore[attr-defined]
    writer = VoteWriter(engine, RecordingPublisher, SessionCache(engine))

    async def run() -> None:
        await writer.session(code)  # cached while the session runs
        patch(client, code, {"ended": True})
        with pytest.raises(Exception) as refused:
            await writer.submit(code, "token-1", VoteIn(phase="definition", choice="d1"))
        assert getattr(refused.value, "code", None) == "session_ended"

    try:
        asyncio.run(run())
    finally:
        writer.close()
    assert count(client, Response) == 0


def test_ending_reaches_the_session_cache_through_the_live_fact(live_client: TestClient) -> None:
    code = new_session(live_client)
    cache: SessionCache = live_client.app.state.sessions  # type: ignore[attr-defined]
    content = cache.content(code)
    assert cache.state(content).ended is False
    patch(live_client, code, {"ended": True})
    assert cache.cached_state(content) is None  # the fact moved the version on
    assert cache.state(content).ended is True


def test_the_phone_says_the_session_has_ended_in_both_languages(client: TestClient) -> None:
    code = new_session(client)
    phase_action(client, code, "definition", "open")
    patch(client, code, {"ended": True})
    page = client.get(f"/j/{code}")
    assert page.status_code == 200
    assert "This session has ended" in page.text
    assert "d1" not in page.text.split('id="aud-panel"', 1)[1].split("</section>", 1)[0]
    chinese = client.get(f"/j/{code}", params={"lang": "zh-Hans"})
    assert "本场投票已结束" in chinese.text


def test_a_form_vote_in_an_ended_session_shows_why(client: TestClient) -> None:
    code = new_session(client)
    phase_action(client, code, "definition", "open")
    assert client.get(f"/j/{code}").status_code == 200
    patch(client, code, {"ended": True})
    response = client.post(
        f"/j/{code}/vote",
        data={"phase": "definition", "choice": "d1"},
        headers={"hx-request": "true", "Sec-Fetch-Site": "same-origin"},
    )
    assert response.status_code == 409
    assert "This session has ended" in response.text


def test_a_rehearsal_is_left_out_of_the_pooled_results(client: TestClient) -> None:
    real, rehearsal = new_session(client, venue="Real"), new_session(client, venue="Try-out")
    for code, voters in ((real, 2), (rehearsal, 3)):
        phase_action(client, code, "definition", "open")
        for _ in range(voters):
            client.cookies.clear()
            assert vote(client, code, "definition", "d1") == 200
    client.cookies.clear()
    pooled = client.get("/api/v1/talks/emergence/results", headers=AUTH).json()
    assert pooled["phases"]["definition"]["n"] == 5
    assert patch(client, rehearsal, {"rehearsal": True}).json()["rehearsal"] is True
    pooled = client.get("/api/v1/talks/emergence/results", headers=AUTH).json()
    assert pooled["phases"]["definition"]["n"] == 2
    assert pooled["rehearsals"] == [rehearsal]
    assert [s["code"] for s in pooled["sessions"]] == [real]
    # Its own results are still there.
    own = client.get(f"/api/v1/sessions/{rehearsal}/results", headers=AUTH).json()
    assert own["phases"]["definition"]["n"] == 3


def test_deleting_a_session_removes_it_with_its_people_and_answers(
    client: TestClient, publisher: RecordingPublisher
) -> None:
    keep, gone = new_session(client), new_session(client)
    for code in (keep, gone):
        phase_action(client, code, "definition", "open")
        assert vote(client, code, "definition", "d1") == 200
    assert client.get(f"/j/{gone}").status_code == 200  # cached by the page
    response = client.delete(f"/api/v1/sessions/{gone}", headers=AUTH)
    assert response.status_code == 204 and response.content == b""
    assert publisher.facts[-1].gone and publisher.facts[-1].code == gone
    assert client.get(f"/api/v1/sessions/{gone}").status_code == 404
    assert client.get(f"/j/{gone}").status_code == 404
    assert vote(client, gone, "definition", "d2") == 404
    assert client.delete(f"/api/v1/sessions/{gone}", headers=AUTH).status_code == 404
    with Session(client.app.state.engine) as db:  # type: ignore[attr-defined]
        assert [p.code for p in db.exec(select(PollSession))] == [keep]
        assert db.exec(select(func.count()).select_from(Participant)).one() == 1
        assert db.exec(select(func.count()).select_from(Response)).one() == 1
        sessions = {s.session_id for s in db.exec(select(SessionPhase))}
        assert len(sessions) == 1


def test_csv_for_excel_starts_with_a_byte_order_mark(client: TestClient) -> None:
    code = new_session(client)
    phase_action(client, code, "definition", "open")
    assert vote(client, code, "definition", "d1") == 200
    plain = client.get(f"/api/v1/sessions/{code}/export.csv", headers=AUTH)
    excel = client.get(f"/api/v1/sessions/{code}/export.csv?bom=1", headers=AUTH)
    assert not plain.content.startswith(b"\xef\xbb\xbf")
    assert excel.content == b"\xef\xbb\xbf" + plain.content
    talk = client.get("/api/v1/talks/emergence/export.csv?bom=1", headers=AUTH)
    assert talk.content.startswith(b"\xef\xbb\xbfsession,")
    # both land in one downloads folder: the Excel file must not overwrite the plain one
    assert plain.headers["content-disposition"] == f'attachment; filename="beliefgap-{code}.csv"'
    assert (
        excel.headers["content-disposition"] == f'attachment; filename="beliefgap-{code}-excel.csv"'
    )
    talk_plain = client.get("/api/v1/talks/emergence/export.csv", headers=AUTH)
    assert 'filename="beliefgap-emergence.csv"' in talk_plain.headers["content-disposition"]
    assert 'filename="beliefgap-emergence-excel.csv"' in talk.headers["content-disposition"]
    assert (
        client.get(f"/api/v1/sessions/{code}/export.csv?bom=maybe", headers=AUTH).status_code == 422
    )
    page = client.get(f"/presenter/sessions/{code}", headers=AUTH)
    assert f"/api/v1/sessions/{code}/export.csv?bom=1" in page.text


@pytest.mark.parametrize(
    ("headers", "params", "cookies", "expected"),
    [
        ({"Accept-Language": "en"}, {}, {}, "zh-Hans"),  # the session's language is the default
        ({}, {}, {}, "zh-Hans"),
        ({"Accept-Language": "en"}, {"lang": "en"}, {}, "en"),  # the phone's choice wins
        ({"Accept-Language": "zh"}, {}, {"bg_lang": "en"}, "en"),
    ],
)
def test_the_session_language_is_the_phones_default(
    client: TestClient, headers: dict, params: dict, cookies: dict, expected: str
) -> None:
    created = client.post(
        "/api/v1/sessions",
        json={"talk": "emergence", "venue": "Beijing", "language": "zh-Hans"},
        headers=AUTH,
    ).json()
    client.cookies.clear()
    for name, value in cookies.items():
        client.cookies.set(name, value)
    page = client.get(f"/j/{created['code']}", headers=headers, params=params)
    assert page.status_code == 200
    assert f'<html lang="{expected}"' in page.text
    client.cookies.clear()


# --------------------------------------------------------------------------- the dashboard


def test_the_dashboard_ends_marks_renames_filters_and_deletes(client: TestClient) -> None:
    from tests.test_presenter import SAME_ORIGIN, login, post_form

    oslo, bergen = new_session(client, venue="Oslo"), new_session(client, venue="Bergen")
    phase_action(client, oslo, "definition", "open")
    assert vote(client, oslo, "definition", "d1") == 200
    client.cookies.clear()
    login(client)

    ended = post_form(client, "/presenter", f"/presenter/sessions/{oslo}/update", ended="1")
    assert ended.status_code == 303 and ended.headers["location"] == "/presenter"  # type: ignore[attr-defined]
    marked = post_form(client, "/presenter", f"/presenter/sessions/{bergen}/update", rehearsal="1")
    assert marked.status_code == 303  # type: ignore[attr-defined]
    renamed = post_form(
        client,
        f"/presenter/sessions/{bergen}",
        f"/presenter/sessions/{bergen}/update",
        venue="Stavanger",
        back="control",
    )
    assert renamed.headers["location"] == f"/presenter/sessions/{bergen}"  # type: ignore[attr-defined]
    state = client.get(f"/api/v1/sessions/{bergen}").json()
    assert state["venue"] == "Stavanger" and state["rehearsal"] is True
    assert client.get(f"/api/v1/sessions/{oslo}").json()["ended"] is True

    def codes(**params: str) -> set[str]:
        page = client.get("/presenter", params=params)
        assert page.status_code == 200
        soup = BeautifulSoup(page.text, "html.parser")
        return {row["data-code"] for row in soup.select("tr[data-code]")}

    assert codes() == {oslo, bergen}
    assert codes(state="ended") == {oslo}
    assert codes(state="rehearsal") == {bergen}
    assert codes(state="running") == {bergen}
    assert codes(talk="emergence-scale") == set()
    assert client.get("/presenter", params={"state": "gone"}).status_code == 422

    # A bad form changes nothing.
    bad = post_form(client, "/presenter", f"/presenter/sessions/{oslo}/update", ended="yes")
    assert bad.status_code == 422  # type: ignore[attr-defined]
    empty = post_form(
        client, "/presenter", f"/presenter/sessions/{oslo}/update", venue=" ", back="control"
    )
    assert empty.status_code == 422  # type: ignore[attr-defined]
    assert client.get(f"/api/v1/sessions/{oslo}").json()["venue"] == "Oslo"

    # Deleting asks first and offers the exports.
    confirm = client.get(f"/presenter/sessions/{oslo}/delete")
    assert confirm.status_code == 200
    links = {a["href"] for a in BeautifulSoup(confirm.text, "html.parser").select("a[download]")}
    assert links == {
        f"/api/v1/sessions/{oslo}/export.csv",
        f"/api/v1/sessions/{oslo}/export.csv?bom=1",
        f"/api/v1/sessions/{oslo}/export.json",
    }
    wrong = client.post(
        f"/presenter/sessions/{oslo}/delete",
        data={"confirm": bergen},
        headers=SAME_ORIGIN,
        follow_redirects=False,
    )
    assert wrong.status_code == 422
    assert client.get(f"/api/v1/sessions/{oslo}").status_code == 200
    done = client.post(
        f"/presenter/sessions/{oslo}/delete",
        data={"confirm": oslo.lower()},
        headers=SAME_ORIGIN,
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert client.get(f"/api/v1/sessions/{oslo}").status_code == 404
    assert oslo in client.get(done.headers["location"]).text  # the notice names it
    assert count(client, Response) == 0


def test_the_dashboards_lifecycle_pages_need_the_presenter(client: TestClient) -> None:
    code = new_session(client)
    client.cookies.clear()
    page = client.get(f"/presenter/sessions/{code}/delete", follow_redirects=False)
    assert page.status_code in (303, 307) and "/presenter/login" in page.headers["location"]
    refused = client.post(
        f"/presenter/sessions/{code}/delete",
        data={"confirm": code},
        follow_redirects=False,
    )
    assert refused.status_code in (303, 307, 401, 403)
    assert client.get(f"/api/v1/sessions/{code}").status_code == 200


def test_the_projector_says_the_session_has_ended(client: TestClient) -> None:
    from tests.test_presenter import login

    code = new_session(client)
    phase_action(client, code, "definition", "open")
    patch(client, code, {"ended": True})
    client.cookies.clear()
    login(client)
    stage = client.get(f"/presenter/sessions/{code}/projector/stage")
    assert stage.status_code == 200 and "This session has ended." in stage.text
    assert "options-list" not in stage.text  # nothing is open any more


def test_sessions_opening_together_are_read_side_by_side_and_once_each(
    client: TestClient,
) -> None:
    """A conference's rooms open their questions at the same moment: one session's read (held
    here on the database) does not hold another's, and the phones of a session that ask while
    its read runs share it."""
    import threading

    from sqlalchemy import event

    codes = [new_session(client)]
    while True:  # two sessions under different load locks (a code's hash picks its lock)
        codes.append(new_session(client))
        if len({hash(code) % sessions.LOAD_LOCKS for code in codes}) == len(codes):
            break
        codes.pop()
    slow, quick = codes
    engine = client.app.state.engine  # type: ignore[attr-defined]
    cache = SessionCache(engine)
    contents = {code: cache.content(code) for code in codes}
    ids = {code: contents[code].id for code in codes}
    reads = {code: 0 for code in codes}
    held, go = threading.Event(), threading.Event()

    def reading(_conn: object, _cursor: object, statement: str, params: object, *_: object) -> None:
        for code, session_id in ids.items():  # the session row is each read's first query
            if "FROM poll_session" in statement and session_id in _values(params):
                reads[code] += 1
                if code == slow and not held.is_set():
                    held.set()
                    assert go.wait(10)

    event.listen(engine, "before_cursor_execute", reading)
    try:
        first = threading.Thread(target=cache.phases, args=(contents[slow],))
        second = threading.Thread(target=cache.phases, args=(contents[slow],))
        first.start()
        assert held.wait(10)
        second.start()
        assert cache.phases(contents[quick]).poll.code == quick  # while the slow one is held
        go.set()
        first.join(10)
        second.join(10)
    finally:
        go.set()
        event.remove(engine, "before_cursor_execute", reading)
    assert reads == {slow: 1, quick: 1}


def _values(params: object) -> list[object]:
    if isinstance(params, dict):
        return list(params.values())
    return list(params) if isinstance(params, list | tuple) else [params]
