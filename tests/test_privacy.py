"""Privacy by default: random participant ids per session, answer times to the second, a phone
erasing its own answers, purging old answers, access logs without addresses, the privacy note."""

from __future__ import annotations

import csv
import io
import logging
import sys
from datetime import timedelta
from pathlib import Path

import httpx2 as httpx
import pytest
from bs4 import BeautifulSoup
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col, func, select

from app.cli import main
from app.live import RecordingPublisher
from app.logs import ClientAddressFilter, hide_client_addresses
from app.models import Participant, PollSession, Response, utcnow
from tests import liveserver
from tests.conftest import AUTH, copy_sqlite_template, new_session, phase_action


def vote(client: TestClient, code: str, phase: str = "definition", choice: str = "d1") -> dict:
    response = client.post(
        f"/api/v1/sessions/{code}/votes", json={"phase": phase, "choice": choice}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def phones(app: FastAPI, code: str, n: int, phase: str = "definition") -> list[str]:
    """n phones (each its own cookie jar) answer; their public ids as the answers showed them."""
    shown = []
    for i in range(n):
        phone = TestClient(app)  # its own cookie jar (the app runs in ``client``)
        shown.append(vote(phone, code, phase, ("d1", "d2", "d3")[i % 3])["participant"])
    return shown


def count(app: FastAPI, model: type, **where: object) -> int:
    with Session(app.state.engine) as db:
        query = select(func.count()).select_from(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return int(db.exec(query).one())


# --------------------------------------------------------------------------- ids and times


def test_participant_ids_are_random_unique_per_session_and_what_exports_show(
    app: FastAPI, client: TestClient
) -> None:
    code = new_session(client)
    phase_action(client, code, "definition", "open")
    shown = phones(app, code, 12)
    assert len(set(shown)) == 12
    with Session(app.state.engine) as db:
        rows = db.exec(select(Participant.id, Participant.public_id)).all()
    row_ids = {str(row_id) for row_id, _ in rows}
    # Not the row ids (a sequence), not ordered like them, all 12 hex digits.
    assert not set(shown) & row_ids
    assert all(len(p) == 12 and int(p, 16) >= 0 for p in shown)
    assert [p for _, p in sorted(rows)] != sorted(p for _, p in rows)
    exported = client.get(f"/api/v1/sessions/{code}/export.csv", headers=AUTH).text
    assert {row["participant"] for row in csv.DictReader(io.StringIO(exported))} == set(shown)
    document = client.get(f"/api/v1/sessions/{code}/export.json", headers=AUTH).json()
    assert {r["participant"] for r in document["responses"]} == set(shown)


def test_answer_times_are_stored_and_exported_to_the_second(
    app: FastAPI, client: TestClient
) -> None:
    code = new_session(client)
    phase_action(client, code, "definition", "open")
    answer = vote(client, code)
    assert answer["answered_at"].endswith(("Z", "+00:00"))
    assert "." not in answer["answered_at"]
    with Session(app.state.engine) as db:
        stored = db.exec(select(Response.answered_at)).one()
        joined = db.exec(select(Participant.joined_at)).one()
        # A row written before answers were stored to the second is still exported to it.
        db.execute(update(Response).values(answered_at=stored.replace(microsecond=123456)))
        db.commit()
    assert stored.microsecond == 0 and joined.microsecond == 0
    rows = list(
        csv.DictReader(
            io.StringIO(client.get(f"/api/v1/sessions/{code}/export.csv", headers=AUTH).text)
        )
    )
    assert len(rows) == 1 and "." not in rows[0]["answered_at"]
    assert rows[0]["answered_at"].endswith("Z") and len(rows[0]["answered_at"]) == 20
    doc = client.get(f"/api/v1/sessions/{code}/export.json", headers=AUTH).json()
    assert doc["responses"][0]["answered_at"] == rows[0]["answered_at"]


# --------------------------------------------------------------------------- erase my answers


def test_a_phone_erases_its_own_answers_and_nothing_else(
    app: FastAPI, client: TestClient, publisher: RecordingPublisher
) -> None:
    code = new_session(client)
    phase_action(client, code, "definition", "open")
    phase_action(client, code, "field", "open")
    phones(app, code, 3)
    phone = TestClient(app)
    vote(phone, code)
    vote(phone, code, "field", "agree")
    assert client.get(f"/api/v1/sessions/{code}").json()["participants"] == 4
    assert "aud-option--chosen" in phone.get(f"/j/{code}/panel").text
    before = len(publisher.facts)
    erased = phone.delete(f"/api/v1/sessions/{code}/me")
    assert erased.status_code == 204 and erased.content == b""
    # The change is published as a vote's is (live counts), and the counts dropped.
    assert [(f.code, f.phases) for f in publisher.facts[before:]] == [(code, False)]
    assert client.get(f"/api/v1/sessions/{code}").json()["participants"] == 3
    assert count(app, Response) == 3 and count(app, Participant) == 3
    # Again, or from a phone that never answered: nothing to erase, no error.
    assert phone.delete(f"/api/v1/sessions/{code}/me").status_code == 204
    assert TestClient(app).delete(f"/api/v1/sessions/{code}/me").status_code == 204
    assert count(app, Response) == 3
    # The phone's page shows the question unanswered again, and it can answer anew.
    page = phone.get(f"/j/{code}/panel").text
    assert "aud-option--chosen" not in page and 'name="choice" value="d1"' in page
    vote(phone, code, choice="d2")
    assert count(app, Participant) == 4
    assert client.delete("/api/v1/sessions/NOSUCH/me").status_code == 404


def test_erasing_another_sessions_cookie_does_nothing(app: FastAPI, client: TestClient) -> None:
    first, second = new_session(client), new_session(client, venue="Aarhus")
    for code in (first, second):
        phase_action(client, code, "definition", "open")
    phone = TestClient(app)
    vote(phone, first)
    assert phone.delete(f"/api/v1/sessions/{second}/me").status_code == 204
    assert count(app, Response) == 1


def test_the_phone_page_has_the_erase_button_and_the_privacy_note_in_both_languages(
    client: TestClient,
) -> None:
    code = new_session(client)
    for lang, erase, note in (
        ("en", "Erase my answers", "Privacy"),
        ("zh-Hans", "删除我的答案", "隐私说明"),
    ):
        page = client.get(f"/j/{code}", params={"lang": lang}).text
        assert f'hx-delete="/api/v1/sessions/{code}/me"' in page
        assert erase in page and "hx-confirm=" in page
        assert f"/privacy?lang={lang}&amp;code={code}" in page
        privacy = client.get("/privacy", params={"lang": lang, "code": code})
        assert privacy.status_code == 200
        assert note in privacy.text and f'href="/j/{code}?lang={lang}"' in privacy.text
    text = client.get("/privacy", params={"lang": "en"}).text
    for said in ("signed cookie", "IP address", "to the second", "Erase my answers", "kept until"):
        assert said in text
    assert "Back to the poll" not in text  # no session named: no link back
    odd = client.get("/privacy", params={"code": "<script>/x"}).text
    assert "/j/" not in odd


def test_erase_is_offered_only_to_a_phone_that_answered(app: FastAPI, client: TestClient) -> None:
    """A red "Erase my answers" on a waiting screen, before any answer, erased nothing."""
    code = new_session(client)
    phone = TestClient(app)

    def erase_hidden() -> bool:
        soup = BeautifulSoup(phone.get(f"/j/{code}").text, "html.parser")
        button = soup.select_one("[data-erase]")
        assert button is not None  # there for the script to show after the first answer
        return button.has_attr("hidden")

    assert erase_hidden()  # the waiting screen
    phase_action(client, code, "definition", "open")
    assert erase_hidden()  # a question, not answered yet
    vote(phone, code)
    assert not erase_hidden()
    phase_action(client, code, "definition", "close")
    assert not erase_hidden()  # waiting again, with an answer stored
    assert phone.delete(f"/api/v1/sessions/{code}/me").status_code == 204
    assert erase_hidden()


def test_the_privacy_note_says_how_long_answers_are_kept(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from app.main import create_app

    app = create_app(settings.model_copy(update={"retention_days": 30}))
    with TestClient(app) as client:
        assert "deleted 30 days after" in client.get("/privacy?lang=en").text
        assert "30 天后删除" in client.get("/privacy?lang=zh-Hans").text


# --------------------------------------------------------------------------- purge


def age(app: FastAPI, days: float, **where: object) -> None:
    """Move answers (and their participants' join times) back by ``days``."""
    with Session(app.state.engine) as db:
        moment = utcnow() - timedelta(days=days)
        query = update(Response).values(answered_at=moment)
        if "session" in where:
            poll = db.exec(select(PollSession).where(PollSession.code == where["session"])).one()
            query = query.where(col(Response.session_id) == poll.id)
            db.execute(
                update(Participant)
                .where(col(Participant.session_id) == poll.id)
                .values(joined_at=moment)
            )
        else:
            db.execute(update(Participant).values(joined_at=moment))
        db.execute(query)
        db.commit()


def command_line_on(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``beliefgap`` command's environment: this app's database and secrets."""
    settings = app.state.settings
    monkeypatch.setenv("BELIEFGAP_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("BELIEFGAP_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("BELIEFGAP_SECRET_KEY", settings.secret_key)
    monkeypatch.setenv("BELIEFGAP_ADMIN_TOKEN", settings.admin_token)


def test_purge_deletes_old_answers_and_the_participants_they_leave(
    app: FastAPI,
    client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    command_line_on(app, monkeypatch)
    old, recent = new_session(client, venue="Old"), new_session(client, venue="Recent")
    for code in (old, recent):
        phase_action(client, code, "definition", "open")
    phones(app, old, 4)
    phones(app, recent, 2)
    age(app, 40, session=old)
    # Without a number of days and no retention setting: refused, nothing deleted.
    assert main(["purge"]) == 2
    assert "BELIEFGAP_RETENTION_DAYS" in capsys.readouterr().err
    assert main(["purge", "--older-than", "0"]) == 2
    capsys.readouterr()
    # A dry run counts and deletes nothing.
    assert main(["purge", "--older-than", "30", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would delete 4 answers and 4 participants older than 30 days" in out
    assert f"session {old}: 4 answers" in out and recent not in out
    assert count(app, Response) == 6
    # The retention setting is the default.
    monkeypatch.setenv("BELIEFGAP_RETENTION_DAYS", "30")
    assert main(["purge"]) == 0
    assert "deleted 4 answers and 4 participants older than 30 days" in capsys.readouterr().out
    assert count(app, Response) == 2 and count(app, Participant) == 2
    # The sessions stay (with no answers); the recent one is whole.
    assert client.get(f"/api/v1/sessions/{old}").json()["participants"] == 0
    assert client.get(f"/api/v1/sessions/{recent}").json()["participants"] == 2
    assert main(["purge"]) == 0
    assert "deleted 0 answers and 0 participants" in capsys.readouterr().out


def test_purge_keeps_a_participant_with_a_recent_answer(
    app: FastAPI, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    command_line_on(app, monkeypatch)
    code = new_session(client)
    phase_action(client, code, "definition", "open")
    vote(client, code)
    age(app, 10)
    phase_action(client, code, "field", "open")
    vote(client, code, "field", "agree")
    assert main(["purge", "--older-than", "7"]) == 0
    assert count(app, Response) == 1 and count(app, Participant) == 1


# --------------------------------------------------------------------------- logs


def test_beliefgap_serve_logs_requests_without_the_clients_address(
    tmp_path: Path, sqlite_template: bytes
) -> None:
    """Each server starts on a database it has migrated before (the run's template): its
    subject is the log, and migrating from nothing is the test of every other server."""
    serve = (sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1")
    quiet = copy_sqlite_template(tmp_path / "quiet", sqlite_template)
    server = liveserver.start(quiet, "live-admin-token-0123456789", command=serve)
    try:
        assert httpx.get(f"{server.url}/api/v1/talks?probe=1", timeout=5).status_code == 200
    finally:
        server.stop()
    lines = [line for line in server.output().splitlines() if "/api/v1/talks?probe=1" in line]
    assert len(lines) == 1, server.output()
    assert "127.0.0.1" not in lines[0] and '"GET /api/v1/talks?probe=1 HTTP/1.1" 200' in lines[0]
    # Asked for, the address is there.
    server = liveserver.start(
        copy_sqlite_template(tmp_path / "asked", sqlite_template),
        "live-admin-token-0123456789",
        command=serve,
        env={"BELIEFGAP_LOG_CLIENT_ADDRESS": "true"},
    )
    try:
        httpx.get(f"{server.url}/api/v1/talks?probe=2", timeout=5)
    finally:
        server.stop()
    lines = [line for line in server.output().splitlines() if "probe=2" in line]
    assert len(lines) == 1 and "127.0.0.1:" in lines[0]


def test_plain_uvicorn_logs_a_dash_for_the_address(tmp_path: Path) -> None:
    server = liveserver.start(tmp_path, "live-admin-token-0123456789")
    try:
        httpx.get(f"{server.url}/healthz?probe=3", timeout=5)
    finally:
        server.stop()
    lines = [line for line in server.output().splitlines() if "probe=3" in line]
    assert len(lines) == 1 and "127.0.0.1" not in lines[0], server.output()
    assert ' - - "GET /healthz?probe=3 HTTP/1.1" 200' in lines[0]


def test_the_address_filter_is_installed_once_and_follows_the_setting() -> None:
    logger = logging.getLogger("uvicorn.access")
    hide_client_addresses(True)
    hide_client_addresses(False)
    filters = [f for f in logger.filters if isinstance(f, ClientAddressFilter)]
    assert len(filters) == 1 and filters[0].hide
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, "%s - %s", ("10.0.0.7:5555", "GET /"), None
    )
    assert filters[0].filter(record) and record.getMessage() == "- - GET /"
