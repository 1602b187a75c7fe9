"""A ranking phase, end to end: written in a talk, answered from phones (the API and the page's
form), refused when an option is missing, repeated or unknown, and summarised in the results
(mean place with its t interval, the share who put each option first, the Borda count), the
chart, the CSV and the editor."""

from __future__ import annotations

import csv
import io
import math
import statistics
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from scipy import stats as scipy_stats

from app import export, results
from app.stats.proportions import wilson
from tests.conftest import AUTH, log_in, new_session, phase_action

OPTIONS = ["evals", "theory", "data"]


def _talk() -> dict[str, Any]:
    labels = {"evals": "Better evaluations", "theory": "A theory", "data": "Open data"}
    return {
        "slug": "priorities",
        "languages": ["en", "zh-Hans"],
        "title": {"en": "Priorities", "zh-Hans": "优先事项"},
        "phases": [
            {
                "id": "order",
                "kind": "choice",
                "answer": "ranking",
                "question": {"en": "What first?", "zh-Hans": "先做什么？"},
                "options": [
                    {"id": key, "label": {"en": label, "zh-Hans": label}}
                    for key, label in labels.items()
                ],
            }
        ],
    }


def _room(client: TestClient) -> str:
    made = client.post("/api/v1/talks", json=_talk(), headers=AUTH)
    assert made.status_code == 201, made.text
    code = new_session(client, talk="priorities")
    phase_action(client, code, "order", "open")
    return code


def _vote(app: FastAPI, code: str, body: dict[str, Any]) -> Any:
    phone = TestClient(app)  # a phone of its own (the app runs in the test's client)
    return phone.post(f"/api/v1/sessions/{code}/votes", json={"phase": "order", **body})


def test_a_ranking_talk_reads_back_with_its_format(client: TestClient) -> None:
    assert client.post("/api/v1/talks", json=_talk(), headers=AUTH).status_code == 201
    phase = client.get("/api/v1/talks/priorities", headers=AUTH).json()["phases"][0]
    assert phase["answer"] == "ranking" and [o["id"] for o in phase["options"]] == OPTIONS


def test_a_ranking_is_only_for_choice_phases(client: TestClient) -> None:
    talk = _talk()
    talk["phases"][0]["kind"] = "stance"
    refused = client.post("/api/v1/talks", json=talk, headers=AUTH)
    assert refused.status_code == 422
    assert "only for choice phases" in refused.text
    assert client.get("/api/v1/talks/priorities", headers=AUTH).status_code == 404


def test_bad_rankings_are_refused_and_store_nothing(client: TestClient, app: FastAPI) -> None:
    code = _room(client)
    for body in (
        {"ranking": ["evals", "theory"]},  # one missing
        {"ranking": ["evals", "evals", "data"]},  # one twice
        {"ranking": ["evals", "theory", "data", "magic"]},  # unknown
        {"ranking": []},
        {"choice": "evals"},  # another format's answer
        {},
    ):
        response = _vote(app, code, body)
        assert response.status_code == 422, (body, response.text)
    results = client.get(f"/api/v1/sessions/{code}/results", headers=AUTH).json()
    assert results["phases"]["order"]["n"] == 0


def test_the_results_summarise_the_rankings_as_the_formulas_say(
    client: TestClient, app: FastAPI
) -> None:
    code = _room(client)
    rankings = [
        ["evals", "theory", "data"],
        ["evals", "data", "theory"],
        ["theory", "evals", "data"],
        ["data", "evals", "theory"],
        ["evals", "theory", "data"],
    ]
    for ranking in rankings:
        stored = _vote(app, code, {"ranking": ranking})
        assert stored.status_code == 200, stored.text
        assert stored.json()["ranking"] == ranking
    phase = client.get(f"/api/v1/sessions/{code}/results", headers=AUTH).json()["phases"]["order"]
    assert phase["answer"] == "ranking" and phase["n"] == 5
    for key in OPTIONS:
        places = [r.index(key) + 1 for r in rankings]
        mean = statistics.fmean(places)
        half = scipy_stats.t.ppf(0.975, 4) * statistics.stdev(places) / math.sqrt(5)
        assert math.isclose(phase["mean_rank"][key], mean)
        low, high = phase["mean_rank_ci95"][key]
        assert math.isclose(low, mean - half) and math.isclose(high, mean + half)
        first = sum(r[0] == key for r in rankings)
        assert phase["first_counts"][key] == first
        assert phase["first_ci95"][key] == list(wilson(first, 5))
        assert phase["borda"][key] == sum(3 - p for p in places)
    assert phase["borda"] == {"evals": 8, "theory": 4, "data": 3}


def test_the_phone_ranks_through_its_form_and_sees_its_order_again(
    client: TestClient, app: FastAPI
) -> None:
    code = _room(client)
    phone = TestClient(app)
    page = phone.get(f"/j/{code}")
    assert 'name="rank.evals"' in page.text and "js/ranking.js" in page.text
    form = {"phase": "order", "rank.evals": "3", "rank.theory": "1", "rank.data": "2"}
    answered = phone.post(f"/j/{code}/vote", data=form, headers={"HX-Request": "true"})
    assert answered.status_code == 200, answered.text
    # the panel lists the options in the phone's own order, the menus at their places
    text = answered.text
    assert text.index('data-rank-item="theory"') < text.index('data-rank-item="data"')
    assert text.index('data-rank-item="data"') < text.index('data-rank-item="evals"')
    twice = {"phase": "order", "rank.evals": "1", "rank.theory": "1", "rank.data": "2"}
    refused = phone.post(f"/j/{code}/vote", data=twice, headers={"HX-Request": "true"})
    assert refused.status_code == 422 and "its own place" in refused.text
    export = client.get(f"/api/v1/sessions/{code}/export.csv", headers=AUTH)
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [(r["rank_1"], r["rank_2"], r["rank_3"]) for r in rows] == [("theory", "data", "evals")]
    assert rows[0]["choice"] == "" and rows[0]["value"] == ""


def test_the_ranking_chart_says_what_comes_first(client: TestClient, app: FastAPI) -> None:
    code = _room(client)
    for ranking in (["data", "evals", "theory"], ["data", "theory", "evals"]):
        assert _vote(app, code, {"ranking": ranking}).status_code == 200
    phase_action(client, code, "order", "close")
    phase_action(client, code, "order", "reveal")
    log_in(client)
    page = client.get(f"/presenter/sessions/{code}/results").text
    assert "Open data comes first: average place 1.0, first for 100% of 2 people." in page
    openapi = client.get("/openapi.json").json()
    assert "RankingPhaseJSON" in openapi["components"]["schemas"]


def test_the_editor_offers_a_ranking_for_a_choice(client: TestClient) -> None:
    log_in(client)
    page = client.get("/presenter/talks/new/edit", params={"slug": "mine"}).text
    assert 'value="ranking"' in page and "A ranking of the options" in page


def test_a_ranking_export_reads_back_to_the_same_results(client: TestClient, app: FastAPI) -> None:
    code = _room(client)
    for ranking in (["data", "evals", "theory"], ["theory", "data", "evals"], OPTIONS):
        assert _vote(app, code, {"ranking": ranking}).status_code == 200
    live = client.get(f"/api/v1/sessions/{code}/results", headers=AUTH).json()["phases"]
    text = client.get(f"/api/v1/sessions/{code}/export.csv", headers=AUTH).text
    book = client.get(f"/api/v1/sessions/{code}/codebook.json", headers=AUTH).json()
    assert book["phases"][0]["answer"] == "ranking"
    document = client.get(f"/api/v1/sessions/{code}/export.json", headers=AUTH).json()
    for imported in (export.read_csv(text, book), export.read_document(document)):
        [(meta, infos, data)] = imported
        again = results.results_json(results.build_session_results(infos, data, meta))
        assert again["phases"] == live
