"""Votes through the JSON API go through one writer that commits the votes arriving together."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx2 as httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import Session, select

from app.models import Participant, Response, SessionPhase
from tests.conftest import new_session, phase_action


def count(app: FastAPI, table: type) -> int:
    with Session(app.state.engine) as db:
        return db.exec(select(func.count()).select_from(table)).one()


async def vote_many(
    app: FastAPI, code: str, bodies: list[dict], cookies: dict | None = None
) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)

    async def one(body: dict) -> httpx.Response:
        # A client per vote: each is a different phone unless it carries the same cookie.
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", cookies=cookies
        ) as client:
            return await client.post(f"/api/v1/sessions/{code}/votes", json=body)

    return list(await asyncio.gather(*(one(b) for b in bodies)))


def test_a_burst_of_votes_is_committed_in_few_transactions(
    app: FastAPI, client: TestClient
) -> None:
    code = new_session(client)
    phase_action(client, code, "belief", "open")
    choices = ["agree", "disagree", "unsure"]
    responses = asyncio.run(
        vote_many(app, code, [{"phase": "belief", "choice": choices[i % 3]} for i in range(200)])
    )
    assert [r.status_code for r in responses] == [200] * 200
    assert len({r.json()["participant"] for r in responses}) == 200
    assert count(app, Response) == 200
    assert app.state.vote_writer.batches < 200  # votes that arrived together shared a commit
    exported = client.get(
        f"/api/v1/sessions/{code}/export.json",
        headers={"Authorization": "Bearer test-admin-token-0123456789"},
    ).json()
    stored = sorted(r["choice"] for r in exported["responses"])
    assert stored == sorted(choices[i % 3] for i in range(200))


def test_fifty_identical_votes_from_one_phone_leave_one_row(
    app: FastAPI, client: TestClient
) -> None:
    code = new_session(client)
    phase_action(client, code, "belief", "open")
    first = client.post(
        f"/api/v1/sessions/{code}/votes", json={"phase": "belief", "choice": "agree"}
    )
    cookie = {f"bg_p_{code}": first.cookies[f"bg_p_{code}"]}
    responses = asyncio.run(
        vote_many(app, code, [{"phase": "belief", "choice": "unsure"}] * 50, cookie)
    )
    assert [r.status_code for r in responses] == [200] * 50
    assert {r.json()["participant"] for r in responses} == {first.json()["participant"]}
    assert count(app, Response) == 1
    assert count(app, Participant) == 1


def test_the_phase_state_is_checked_at_write_time_not_cached(
    app: FastAPI, client: TestClient
) -> None:
    code = new_session(client)
    phase_action(client, code, "belief", "open")
    assert (
        client.post(
            f"/api/v1/sessions/{code}/votes", json={"phase": "belief", "choice": "agree"}
        ).status_code
        == 200
    )
    phase_action(client, code, "belief", "close")
    client.cookies.clear()
    refused = client.post(
        f"/api/v1/sessions/{code}/votes", json={"phase": "belief", "choice": "agree"}
    )
    assert refused.status_code == 409
    assert count(app, Response) == 1
    assert count(app, Participant) == 1  # the refused phone was not registered either


def test_a_vote_after_the_countdown_ran_out_is_refused(app: FastAPI, client: TestClient) -> None:
    code = new_session(client)
    phase_action(client, code, "belief", "open", seconds=30)
    with Session(app.state.engine) as db:
        for state in db.exec(select(SessionPhase).where(SessionPhase.closes_at != None)):  # noqa: E711
            state.closes_at = datetime.now(UTC) - timedelta(seconds=1)
            db.add(state)
        db.commit()
    refused = client.post(
        f"/api/v1/sessions/{code}/votes", json={"phase": "belief", "choice": "agree"}
    )
    assert refused.status_code == 409
    assert count(app, Response) == 0
    state = client.get(f"/api/v1/sessions/{code}").json()["phases"][1]
    assert state["state"] == "closed"
