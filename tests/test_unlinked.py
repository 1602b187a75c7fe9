"""Published counts as unlinked sessions: totals per option per phase (and the revote rows that
were published), added through the API, the dashboard's form or a CSV. They show the independent
comparison, pool with its variance, never pair two phases and never open for voting."""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from statsmodels.stats.meta_analysis import combine_effects
from statsmodels.stats.proportion import confint_proportions_2indep

from app import export
from app.live import RecordingPublisher
from app.main import create_app
from app.results import build_session_results, build_talk_results, results_json
from app.settings import Settings
from tests.conftest import AUTH, log_in, new_session, phase_action

SOURCE = "Show of hands, counted by the chair (notes of 3 May 2025)"
TOTALS = {
    "belief": {"agree": 30, "disagree": 25, "unsure": 45},
    "field": {"agree": 80, "disagree": 10, "unsure": 30},
}
BROWSER = {"Sec-Fetch-Site": "same-origin"}


def add_unlinked(client: TestClient, **changes: object) -> tuple[int, dict]:
    body = {"talk": "emergence", "venue": "Cardiff", "unlinked": True, "source": SOURCE}
    body |= {"totals": TOTALS} | changes
    response = client.post("/api/v1/sessions", json=body, headers=AUTH)
    return response.status_code, response.json()


def sessions_of_talk(client: TestClient) -> list[str]:
    talk = client.get("/api/v1/talks/emergence/results", headers=AUTH).json()
    return [s["code"] for s in talk["sessions"]]


def test_an_unlinked_session_shows_the_independent_comparison_and_nothing_paired(
    client: TestClient,
) -> None:
    transitions = {"revote": {"agree": {"agree": 6, "disagree": 5, "unsure": 19}}}
    status, created = add_unlinked(client, transitions=transitions, held_on="2025-05-03")
    assert status == 201, created
    code = created["code"]
    session = client.get(f"/api/v1/sessions/{code}").json()
    assert session["unlinked"] is True and session["source"] == SOURCE
    assert session["participants"] == 0
    results = client.get(f"/api/v1/sessions/{code}/results", headers=AUTH).json()
    assert results["session"]["unlinked"] is True and results["session"]["source"] == SOURCE
    assert results["session"]["transitions"] == transitions
    assert results["phases"]["belief"]["counts"] == TOTALS["belief"]
    assert results["phases"]["revote"]["n"] == 0  # not published
    gap = results["gap"]
    assert gap["headline"] == "independent" and gap["paired"] is None
    expected = confint_proportions_2indep(80, 120, 30, 100, method="newcomb", compare="diff")
    assert gap["difference"] == pytest.approx(80 / 120 - 30 / 100, abs=1e-12)
    assert gap["ci95"] == pytest.approx(expected, abs=1e-9)
    # who answered only one question is unknown, not "everyone"
    assert gap["only_stance"] is None and gap["only_perceived"] is None
    # simply absent, not "too few"
    assert results["shift"] is None and results["crosstabs"] == {}
    page = client.get(f"/presenter/sessions/{code}/results", headers=AUTH).text
    assert "Published counts, not linked answers" in page and "Cardiff" in page
    assert "Of the 30 who first answered “Yes, they do”, 24 (80%) changed their answer." in page
    assert "Own view × what the field is thought to hold" not in page


def test_an_unlinked_session_cannot_be_opened_or_voted_in(client: TestClient) -> None:
    _status, created = add_unlinked(client)
    code = created["code"]
    opened = client.post(f"/api/v1/sessions/{code}/phases/belief/open", headers=AUTH)
    assert opened.status_code == 409 and opened.json()["code"] == "unlinked_session"
    vote = client.post(
        f"/api/v1/sessions/{code}/votes", json={"phase": "belief", "choice": "agree"}
    )
    assert vote.status_code == 409
    results = client.get(f"/api/v1/sessions/{code}/results", headers=AUTH).json()
    assert results["phases"]["belief"]["counts"] == TOTALS["belief"]
    # a phone that scans or types the code is told there is nothing to answer, and joins nothing
    phone = client.get(f"/j/{code}")
    assert phone.status_code == 409 and "holds published counts, not a poll" in phone.text
    assert "bg_p_" not in phone.headers.get("set-cookie", "")
    assert client.get(f"/api/v1/sessions/{code}").json()["participants"] == 0


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"source": "  "}, 422),
        ({"source": None}, 422),
        ({"totals": {}}, 422),
        ({"totals": {"belief": {"agree": 3, "maybe": 2}}}, 422),
        ({"totals": {"nope": {"agree": 3}}}, 422),
        ({"totals": {"belief": {"agree": -1}}}, 422),
        ({"totals": {"belief": {"agree": 2.5}}}, 422),
        ({"totals": {"belief": {"agree": "7"}}}, 422),
        ({"transitions": {"belief": {"agree": {"agree": 1}}}}, 422),
        ({"transitions": {"revote": {"agree": {"agree": 31}}}}, 422),
        ({"transitions": {"revote": {"maybe": {"agree": 1}}}}, 422),
        ({"unlinked": False}, 422),
        ({"talk": "no-such-talk"}, 404),
    ],
)
def test_bad_counts_are_refused_whole(client: TestClient, changes: dict, status: int) -> None:
    before = sessions_of_talk(client)
    got, body = add_unlinked(client, **changes)
    assert got == status, body
    assert "detail" in body
    assert sessions_of_talk(client) == before


def test_an_estimate_phase_takes_no_totals(client: TestClient) -> None:
    status, body = add_unlinked(client, talk="emergence-scale", totals={"field_pct": {"agree": 3}})
    assert status == 422 and "% estimate" in body["detail"]


def independent(perceived: tuple[int, int], own: tuple[int, int]) -> tuple[float, float]:
    """The independent comparison and Agresti & Caffo's variance (2000), from the paper."""
    (x1, n1), (x2, n2) = perceived, own
    t1, t2 = (x1 + 1) / (n1 + 2), (x2 + 1) / (n2 + 2)
    return x1 / n1 - x2 / n2, t1 * (1 - t1) / (n1 + 2) + t2 * (1 - t2) / (n2 + 2)


def test_unlinked_sessions_pool_beside_a_room_as_statsmodels_pools_them(
    app: FastAPI, client: TestClient
) -> None:
    add_unlinked(client)
    add_unlinked(
        client,
        venue="Gothenburg",
        totals={"belief": {"agree": 5, "unsure": 27}, "field": {"agree": 30, "unsure": 10}},
    )
    code = new_session(client, venue="Copenhagen")
    for phase in ("belief", "field"):
        phase_action(client, code, phase, "open")
    people = [("agree", "agree")] * 6 + [("unsure", "agree")] * 7 + [("disagree", "unsure")] * 5
    for own, seen in people:
        phone = TestClient(app)  # a cookie jar of its own; the app runs in ``client``
        for phase, choice in (("belief", own), ("field", seen)):
            answer = phone.post(
                f"/api/v1/sessions/{code}/votes", json={"phase": phase, "choice": choice}
            )
            assert answer.status_code == 200, answer.text
    talk = client.get("/api/v1/talks/emergence/results", headers=AUTH).json()
    meta = talk["meta"]["gap"]
    rows = [independent((80, 120), (30, 100)), independent((30, 40), (5, 32))]
    rows.append(independent((13, 18), (6, 18)))  # the room: its totals, as if not linked
    effects, variances = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
    # the live room is paired on its own, so every room enters independent (one estimand)
    assert [s["method"] for s in meta["sessions"]] == ["newcombe_hybrid_score"] * 3
    assert [s["difference"] for s in meta["sessions"]] == pytest.approx(effects, abs=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = combine_effects(effects, variances, method_re="dl", use_t=True)
    assert meta["k"] == 3 and theirs.tau2 > 0  # rooms that disagree: tau^2 as statsmodels has it
    assert meta["estimate"] == pytest.approx(theirs.mean_effect_re, abs=1e-9)
    assert meta["q"] == pytest.approx(theirs.q, abs=1e-9)
    wls, re_t = theirs.conf_int(use_t=True)[3], theirs.conf_int(use_t=True)[1]
    half = max(wls[1] - wls[0], re_t[1] - re_t[0]) / 2
    lo, hi = meta["estimate"] - half, meta["estimate"] + half
    assert meta["ci95"] == pytest.approx([max(-1, lo), min(1, hi)], abs=1e-9)
    weights = 1 / (variances + max(0.0, theirs.tau2))
    shares = [s["weight"] for s in meta["sessions"]]
    assert shares == pytest.approx(weights / weights.sum(), abs=1e-9)
    # the forest plot names each unlinked session's source
    assert [s["source"] for s in meta["sessions"]] == [SOURCE, SOURCE, None]
    forest = client.get("/api/v1/talks/emergence/charts/forest.svg", headers=AUTH).text
    assert "published counts" in forest and "Show of hands, counted by the chair" in forest
    # a room's own results are its own answers only
    room = client.get(f"/api/v1/sessions/{code}/results", headers=AUTH).json()
    assert room["phases"]["belief"]["n"] == 18 and room["gap"]["headline"] == "paired"
    assert room["session"]["unlinked"] is False


def test_an_unlinked_rehearsal_stays_out_of_the_pool_and_deletes(client: TestClient) -> None:
    _status, created = add_unlinked(client)
    code = created["code"]
    patched = client.patch(f"/api/v1/sessions/{code}", json={"rehearsal": True}, headers=AUTH)
    assert patched.status_code == 200
    talk = client.get("/api/v1/talks/emergence/results", headers=AUTH).json()
    assert talk["rehearsals"] == [code] and talk["meta"]["gap"]["sessions"] == []
    # deleted with its counts, like any session
    assert client.delete(f"/api/v1/sessions/{code}", headers=AUTH).status_code == 204
    assert client.get(f"/api/v1/sessions/{code}").status_code == 404
    assert client.get("/api/v1/talks/emergence/results", headers=AUTH).json()["rehearsals"] == []


def test_exports_say_unlinked_and_carry_the_totals_which_read_back(client: TestClient) -> None:
    transitions = {"revote": {"agree": {"agree": 6, "disagree": 5, "unsure": 19}}}
    _status, created = add_unlinked(client, transitions=transitions)
    code = created["code"]
    document = client.get(f"/api/v1/sessions/{code}/export.json", headers=AUTH).json()
    assert document["session"]["unlinked"] is True and document["session"]["source"] == SOURCE
    assert document["responses"] == []  # no person, real or made up
    assert document["session"]["totals"]["field"] == TOTALS["field"]
    assert document["session"]["transitions"] == transitions
    exported = client.get(f"/api/v1/sessions/{code}/export.csv", headers=AUTH)
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {r["linked"] for r in rows} == {"false"} and {r["source"] for r in rows} == {SOURCE}
    assert {(r["phase"], r["choice"]): int(r["count"]) for r in rows if not r["from_choice"]} == {
        (phase, option): count
        for phase, counts in TOTALS.items()
        for option, count in counts.items()
    }
    moved = [(r["from_choice"], r["choice"], int(r["count"])) for r in rows if r["from_choice"]]
    assert moved == [("agree", "agree", 6), ("agree", "disagree", 5), ("agree", "unsure", 19)]
    # the JSON reads back to the very same results, the independent comparison included
    live = client.get(f"/api/v1/sessions/{code}/results", headers=AUTH).json()
    [(meta, infos, data)] = export.read_document(document)
    again = results_json(build_session_results(infos, data, meta))
    for key in ("phases", "gap", "shift", "crosstabs", "too_few_below"):
        assert again[key] == live[key], key
    # the CSV goes back in through the dashboard's form, the same counts
    log_in(client)
    sent = client.post(
        "/presenter/talks/emergence/published",
        data={"venue": "Cardiff again", "source": SOURCE, "held_on": "2025-05-04"},
        files={"file": ("counts.csv", exported.content, "text/csv")},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    again = sent.headers["location"].split("/")[3]
    copy = client.get(f"/api/v1/sessions/{again}/export.json", headers=AUTH).json()["session"]
    assert copy["totals"] == document["session"]["totals"]
    assert copy["transitions"] == transitions


@pytest.fixture
def presenter(client: TestClient) -> Iterator[TestClient]:
    log_in(client)
    yield client


def test_the_dashboard_form_adds_typed_counts(presenter: TestClient) -> None:
    client = presenter
    dashboard = client.get("/presenter").text
    assert 'href="/presenter/talks/emergence/published"' in dashboard
    form = client.get("/presenter/talks/emergence/published")
    assert form.status_code == 200 and 'name="n.belief.agree"' in form.text
    assert 'name="t.revote.agree.unsure"' in form.text
    fields = {"venue": "Milan", "source": SOURCE, "held_on": "2025-06-01", "language": "en"}
    fields |= {f"n.{p}.{o}": str(c) for p, counts in TOTALS.items() for o, c in counts.items()}
    fields |= {"n.definition.d1": "", "t.revote.agree.unsure": "12"}
    sent = client.post(
        "/presenter/talks/emergence/published",
        data=fields,
        headers=BROWSER,
        follow_redirects=False,
    )
    assert sent.status_code == 303
    code = sent.headers["location"].split("/")[3]
    results = client.get(f"/api/v1/sessions/{code}/results", headers=AUTH).json()
    assert results["session"]["venue"] == "Milan" and results["session"]["held_on"] == "2025-06-01"
    assert results["phases"]["field"]["counts"] == TOTALS["field"]
    assert results["phases"]["definition"]["n"] == 0
    assert results["session"]["transitions"] == {"revote": {"agree": {"unsure": 12}}}
    control = client.get(f"/presenter/sessions/{code}").text
    assert "Published counts" in control and SOURCE in control
    assert "/phases/belief/open" not in control  # nothing to open
    assert f"/presenter/sessions/{code}/projector" not in control
    # no room to show a QR code to: the projector's address leads to the results
    projector = client.get(f"/presenter/sessions/{code}/projector", follow_redirects=False)
    assert projector.status_code == 303
    assert projector.headers["location"] == f"/presenter/sessions/{code}/results"


def test_the_form_refuses_bad_counts_and_keeps_what_was_typed(presenter: TestClient) -> None:
    client = presenter
    before = sessions_of_talk(client)
    for fields in (
        {"venue": "Milan", "source": SOURCE, "n.belief.agree": "many"},
        {"venue": "Milan", "source": "", "n.belief.agree": "12"},
        {"venue": "Milan", "source": SOURCE, "n.belief.agree": "3", "t.revote.agree.unsure": "9"},
    ):
        sent = client.post("/presenter/talks/emergence/published", data=fields, headers=BROWSER)
        assert sent.status_code == 422
        assert "These counts were not stored:" in sent.text
        assert 'value="Milan"' in sent.text
    bad_csv = client.post(
        "/presenter/talks/emergence/published",
        data={"venue": "Milan", "source": SOURCE},
        files={"file": ("c.csv", b"phase,option\nbelief,agree\n", "text/csv")},
        headers=BROWSER,
    )
    assert bad_csv.status_code == 422 and "needs the columns" in bad_csv.text
    assert sessions_of_talk(client) == before


# ------------------------------------------------------------------- the small-cell threshold


def run_small_room(app: FastAPI, client: TestClient) -> str:
    """A room whose stance x perceived table has a cell of 3 and one of 4 (hidden at 5)."""
    code = new_session(client, venue="Aarhus")
    for phase in ("belief", "field"):
        phase_action(client, code, phase, "open")
    people = [("agree", "agree")] * 3 + [("unsure", "agree")] * 9 + [("disagree", "unsure")] * 4
    people += [("agree", "unsure")] * 6
    for own, seen in people:
        phone = TestClient(app)
        for phase, choice in (("belief", own), ("field", seen)):
            answer = phone.post(
                f"/api/v1/sessions/{code}/votes", json={"phase": phase, "choice": choice}
            )
            assert answer.status_code == 200, answer.text
    for phase in ("belief", "field"):
        phase_action(client, code, phase, "close")
    return code


def test_the_threshold_is_the_sessions_and_lowering_it_warns(
    app: FastAPI, client: TestClient
) -> None:
    code = run_small_room(app, client)
    results = client.get(f"/api/v1/sessions/{code}/results", headers=AUTH).json()
    assert results["too_few_below"] == 5
    assert ["agree", "agree"] in results["crosstabs"]["stance_perceived"]["hidden"]
    log_in(client)
    control = client.get(f"/presenter/sessions/{code}").text
    assert 'name="min_cell"' in control and "Lower than the usual 5" not in control
    lowered = client.post(
        f"/presenter/sessions/{code}/update",
        data={"min_cell": "3", "back": "control"},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert lowered.status_code == 303
    assert client.get(f"/api/v1/sessions/{code}").json()["min_cell"] == 3
    control = client.get(f"/presenter/sessions/{code}").text
    assert "Lower than the usual 5: cells of only 3 people are shown" in control
    results = client.get(f"/api/v1/sessions/{code}/results", headers=AUTH).json()
    table = results["crosstabs"]["stance_perceived"]
    assert results["too_few_below"] == 3
    assert table["counts"]["agree"]["agree"] == 3 and table["hidden"] == []
    # through the API, and refused outside 1..50 without a change
    for bad in (0, 51, "4", None, 2.5):
        refused = client.patch(f"/api/v1/sessions/{code}", json={"min_cell": bad}, headers=AUTH)
        assert refused.status_code == 422, bad
    raised = client.patch(f"/api/v1/sessions/{code}", json={"min_cell": 7}, headers=AUTH)
    assert raised.status_code == 200 and raised.json()["min_cell"] == 7
    results = client.get(f"/api/v1/sessions/{code}/results", headers=AUTH).json()
    assert ["agree", "unsure"] in results["crosstabs"]["stance_perceived"]["hidden"]  # 6 < 7
    refused = client.post(
        f"/presenter/sessions/{code}/update",
        data={"min_cell": "two", "back": "control"},
        headers=BROWSER,
    )
    assert refused.status_code == 422 and "whole number from 1 to 50" in refused.text
    assert client.get(f"/api/v1/sessions/{code}").json()["min_cell"] == 7
    # the export carries the threshold, so that it reads back to the same hidden cells
    document = client.get(f"/api/v1/sessions/{code}/export.json", headers=AUTH).json()
    assert document["session"]["min_cell"] == 7
    [(meta, infos, data)] = export.read_document(document)
    again = results_json(build_session_results(infos, data, meta))
    assert again["crosstabs"] == results_json_crosstabs(client, code)


def results_json_crosstabs(client: TestClient, code: str) -> dict:
    return dict(client.get(f"/api/v1/sessions/{code}/results", headers=AUTH).json()["crosstabs"])


# ------------------------------------------------------------------- the bundled talk's polls


def test_a_new_database_gets_the_published_polls_once(settings: Settings) -> None:
    on = settings.model_copy(update={"published_polls": True})
    for _start in range(2):  # the second start finds them and adds nothing
        with TestClient(create_app(on, publisher=RecordingPublisher())) as client:
            talk = client.get("/api/v1/talks/emergence/results", headers=AUTH).json()
            assert [s["code"] for s in talk["sessions"]] == ["RGRS24"]
    other = client.get("/api/v1/talks/emergence-scale/results", headers=AUTH).json()
    assert other["sessions"] == []


def test_the_talk_codebook_carries_unlinked_sessions_and_the_talk_reads_back(
    app: FastAPI, client: TestClient
) -> None:
    """The talk's CSV has one row per answer, so the published counts are not in it: its
    codebook says so and carries them, and the two read back to the talk's very results."""
    add_unlinked(client)
    add_unlinked(
        client,
        venue="Gothenburg",
        totals={"belief": {"agree": 5, "unsure": 27}, "field": {"agree": 30, "unsure": 10}},
    )
    code = new_session(client, venue="Copenhagen")
    for phase in ("belief", "field"):
        phase_action(client, code, phase, "open")
    for own, seen in [("agree", "agree")] * 6 + [("unsure", "agree")] * 7:
        phone = TestClient(app)
        for phase, choice in (("belief", own), ("field", seen)):
            phone.post(f"/api/v1/sessions/{code}/votes", json={"phase": phase, "choice": choice})
    text = client.get("/api/v1/talks/emergence/export.csv", headers=AUTH).text
    book = client.get("/api/v1/talks/emergence/codebook.json", headers=AUTH).json()
    assert {r["session"] for r in csv.DictReader(io.StringIO(text))} == {code}
    assert [s["venue"] for s in book["unlinked_sessions"]] == ["Cardiff", "Gothenburg"]
    assert "not rows of export.csv" in book["unlinked_note"]
    talk = client.get("/api/v1/talks/emergence/results", headers=AUTH).json()
    imported = sorted(export.read_csv(text, book), key=lambda s: s[0].code)
    again = build_talk_results("emergence", {"en": "x"}, ["en"], imported)
    assert again.meta is not None and talk["meta"]["gap"]["k"] == 3
    assert again.meta.random == pytest.approx(talk["meta"]["gap"]["estimate"], abs=1e-12)
    assert results_json(again.pooled)["gap"] == talk["pooled"]["gap"]
