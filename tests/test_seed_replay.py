"""The talk's published polls, replayed through the public API, come out as published.

The numbers (shared seed notes on the emergence talk): 220 definition answers (d1 52.7%, d4 25.5%,
d3 12.3%, other 6.8%, d2 the rest), 259 belief answers (agree 39%, disagree 17%, unsure 44%), 360
field answers (70/10/20%), 70 re-votes of which those who first agreed changed 83% of the time:
13.9% to disagree, 69.4% to unsure. Integer counts below reproduce every rounded share; each
participant is a separate client with its own cookie jar.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from statsmodels.stats.contingency_tables import SquareTable
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from app.live import RecordingPublisher
from app.main import create_app
from app.settings import Settings
from tests.conftest import AUTH, new_session, phase_action

DEFINITION = {"d1": 116, "d4": 56, "d3": 27, "other": 15, "d2": 6}  # 220
BELIEF = {"agree": 101, "disagree": 44, "unsure": 114}  # 259
FIELD = {"agree": 252, "disagree": 36, "unsure": 72}  # 360
# first answer -> revote answers of the 70 who answered both
REVOTE = {
    "agree": {"agree": 6, "disagree": 5, "unsure": 25},
    "disagree": {"agree": 1, "disagree": 10, "unsure": 3},
    "unsure": {"agree": 3, "disagree": 5, "unsure": 12},
}


def expand(counts: dict[str, int]) -> list[str]:
    return [option for option, count in counts.items() for _ in range(count)]


def vote(client: TestClient, code: str, phase: str, choice: str) -> None:
    response = client.post(
        f"/api/v1/sessions/{code}/votes", json={"phase": phase, "choice": choice}
    )
    assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def replay_app(module_settings: Settings) -> FastAPI:
    return create_app(module_settings, publisher=RecordingPublisher())


@pytest.fixture(scope="module")
def replay_client(replay_app: FastAPI) -> Iterator[TestClient]:
    """The presenter's client of the replayed session, shared by the tests of this module: they
    only read what ``replayed`` wrote once."""
    with TestClient(replay_app) as client:
        yield client


@pytest.fixture(scope="module")
def replayed(replay_app: FastAPI, replay_client: TestClient) -> tuple[str, dict]:
    app, client = replay_app, replay_client
    code = new_session(client, venue="Seed replay")
    for phase in ("definition", "belief", "field"):
        phase_action(client, code, phase, "open")
    people = [TestClient(app) for _ in range(360)]
    field = expand(FIELD)
    belief = expand(BELIEF)
    definition = expand(DEFINITION)
    for index, person in enumerate(people):
        vote(person, code, "field", field[index])
        if index < len(belief):
            vote(person, code, "belief", belief[index])
        if index < len(definition):
            vote(person, code, "definition", definition[index])
    for phase in ("definition", "belief", "field"):
        phase_action(client, code, phase, "close")
    phase_action(client, code, "revote", "open")
    # the revoters are the first people of each belief group, in the order of `belief`
    start = {
        "agree": 0,
        "disagree": BELIEF["agree"],
        "unsure": BELIEF["agree"] + BELIEF["disagree"],
    }
    for first, row in REVOTE.items():
        answers = expand(row)
        for offset, answer in enumerate(answers):
            vote(people[start[first] + offset], code, "revote", answer)
    phase_action(client, code, "revote", "close")
    response = client.get(f"/api/v1/sessions/{code}/results", headers=AUTH)
    assert response.status_code == 200, response.text
    return code, response.json()


def rounded_shares(phase: dict, digits: int) -> dict[str, float]:
    return {k: round(v * 100, digits) for k, v in phase["shares"].items()}


def test_every_published_share(replayed: tuple[str, dict]) -> None:
    _code, results = replayed
    phases = results["phases"]
    assert phases["definition"]["n"] == 220
    definition = rounded_shares(phases["definition"], 1)
    assert definition == {"d1": 52.7, "d2": 2.7, "d3": 12.3, "d4": 25.5, "other": 6.8}
    assert phases["belief"]["n"] == 259
    assert rounded_shares(phases["belief"], 0) == {"agree": 39, "disagree": 17, "unsure": 44}
    assert phases["field"]["n"] == 360
    assert rounded_shares(phases["field"], 0) == {"agree": 70, "disagree": 10, "unsure": 20}
    shift = results["shift"]
    assert shift["n_paired"] == 70 and phases["revote"]["n"] == 70
    assert shift["dropped"] == {"only_from": 259 - 70, "only_to": 0, "total": 189}
    assert shift["matrix"] == REVOTE
    assert round(shift["changed_share"]["agree"] * 100) == 83
    assert round(shift["row_shares"]["agree"]["disagree"] * 100, 1) == 13.9
    assert round(shift["row_shares"]["agree"]["unsure"] * 100, 1) == 69.4


def test_the_gap_and_intervals_match_statsmodels(replayed: tuple[str, dict]) -> None:
    _code, results = replayed
    for key in ("definition", "belief", "field", "revote"):
        phase = results["phases"][key]
        for option, count in phase["counts"].items():
            expected = proportion_confint(count, phase["n"], method="wilson")
            assert phase["ci95"][option] == pytest.approx(expected, abs=1e-9)
    lo, hi = results["phases"]["belief"]["ci95"]["agree"]
    assert (round(lo, 4), round(hi, 4)) == (0.3326, 0.4506)
    gap = results["gap"]
    assert (gap["stance"], gap["perceived"], gap["option"]) == ("belief", "field", "agree")
    assert round(gap["self_share"], 2) == 0.39 and round(gap["perceived_share"], 2) == 0.70
    assert round(gap["difference"], 3) == 0.310
    assert [round(v, 3) for v in gap["ci95"]] == [0.232, 0.383]
    expected = confint_proportions_2indep(252, 360, 101, 259, method="newcomb", compare="diff")
    assert gap["ci95"] == pytest.approx(expected, abs=1e-9)
    assert gap["method"] == "newcombe_hybrid_score"
    # here the answers are linked: the 259 who answered both also get the paired interval
    assert gap["paired"]["n"] == 259 and gap["paired"]["method"] == "newcombe_paired_method10"
    test = results["shift"]["test"]
    table = np.array([[REVOTE[a][b] for b in REVOTE] for a in REVOTE], dtype=float)
    theirs = SquareTable(table, shift_zeros=False).homogeneity()
    assert test["name"] == "stuart_maxwell"
    assert test["statistic"] == pytest.approx(theirs.statistic, abs=1e-9)
    assert test["p_value"] == pytest.approx(theirs.pvalue, abs=1e-9)


def test_the_results_page_and_gap_chart_say_it_in_words(
    replay_client: TestClient, replayed: tuple[str, dict]
) -> None:
    client = replay_client
    code, _results = replayed
    svg = client.get(f"/api/v1/sessions/{code}/charts/gap.svg", headers=AUTH)
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    # the 259 who answered both are the headline: 101 agree, 252 of them think the field does
    assert "39% [33, 45] of this room answered “Yes, they do”, not a majority;" in svg.text
    assert "97% [95, 99] think most of the field does." in svg.text
    assert "Answered both questions: 259." in svg.text and "only the second: 101" in svg.text
    shift = client.get(f"/api/v1/sessions/{code}/charts/shift.svg", headers=AUTH).text
    low, high = proportion_confint(30, 36, method="wilson")
    assert (
        f"83% [{low * 100:.0f}, {high * 100:.0f}] changed" in shift
        and "13.9% to “No, they don't”" in shift.replace("&#39;", "'")
    )
    assert "69.4% to “Unsure”" in shift
