"""Results through the API and the results pages: shape, pooling, small cells, access."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from app import results, sessions
from tests.conftest import AUTH, log_in, new_session, phase_action


def run_session(
    app: FastAPI,
    client: TestClient,
    answers: list[dict[str, str]],
    talk: str = "emergence",
    venue: str = "Copenhagen",
) -> str:
    """One participant (own cookie jar) per dict of phase -> choice; revote after the others."""
    code = new_session(client, talk=talk, venue=venue)
    first = [p for p in ("definition", "belief", "field") if any(p in a for a in answers)]
    for phase in first:
        phase_action(client, code, phase, "open")
    people = [TestClient(app) for _ in answers]
    for person, given in zip(people, answers, strict=True):
        for phase in first:
            if phase in given:
                r = person.post(
                    f"/api/v1/sessions/{code}/votes", json={"phase": phase, "choice": given[phase]}
                )
                assert r.status_code == 200, r.text
    for phase in first:
        phase_action(client, code, phase, "close")
    if any("revote" in a for a in answers):
        phase_action(client, code, "revote", "open")
        for person, given in zip(people, answers, strict=True):
            if "revote" in given:
                r = person.post(
                    f"/api/v1/sessions/{code}/votes",
                    json={"phase": "revote", "choice": given["revote"]},
                )
                assert r.status_code == 200, r.text
        phase_action(client, code, "revote", "close")
    return code


def room(n_agree: int, n_other: int, field_agree: int) -> list[dict[str, str]]:
    people = []
    for i in range(n_agree + n_other):
        people.append(
            {
                "belief": "agree" if i < n_agree else "unsure",
                "field": "agree" if i < field_agree else "disagree",
                "definition": "d1" if i % 2 else "d3",
                "revote": "unsure" if i < n_agree // 2 else "agree",
            }
        )
    return people


def presenter(client: TestClient) -> None:
    log_in(client)


def test_results_need_the_admin_token(client: TestClient) -> None:
    code = new_session(client)
    assert client.get(f"/api/v1/sessions/{code}/results").status_code == 401
    assert client.get("/api/v1/talks/emergence/results").status_code == 401
    assert client.get(f"/api/v1/sessions/{code}/results", headers=AUTH).status_code == 200
    assert client.get("/api/v1/sessions/NOPE22/results", headers=AUTH).status_code == 404
    assert client.get("/api/v1/talks/nope/results", headers=AUTH).status_code == 404


def test_an_empty_session_has_phases_but_no_gap_or_shift(client: TestClient) -> None:
    code = new_session(client)
    body = client.get(f"/api/v1/sessions/{code}/results", headers=AUTH).json()
    assert body["gap"] is None and body["shift"] is None
    assert body["phases"]["belief"] == {
        "kind": "stance",
        "n": 0,
        "counts": {"agree": 0, "disagree": 0, "unsure": 0},
        "shares": {"agree": None, "disagree": None, "unsure": None},
        "ci95": {"agree": None, "disagree": None, "unsure": None},
        "ci95_method": "wilson",
    }


def test_session_results_follow_the_api_shape(app: FastAPI, client: TestClient) -> None:
    code = run_session(app, client, room(4, 8, 9))
    body = client.get(f"/api/v1/sessions/{code}/results", headers=AUTH).json()
    belief = body["phases"]["belief"]
    assert belief["n"] == 12 and belief["counts"]["agree"] == 4
    assert belief["shares"]["agree"] == pytest.approx(4 / 12)
    lo, hi = belief["ci95"]["agree"]
    assert lo < 4 / 12 < hi
    assert sum(belief["shares"].values()) == pytest.approx(1)
    gap = body["gap"]
    assert gap["stance"] == "belief" and gap["perceived"] == "field" and gap["option"] == "agree"
    assert gap["self_share"] == pytest.approx(4 / 12)
    assert gap["perceived_share"] == pytest.approx(9 / 12)
    assert gap["difference"] == pytest.approx(5 / 12)
    assert gap["paired"]["n"] == 12
    shift = body["shift"]
    assert shift["from"] == "belief" and shift["to"] == "revote" and shift["n_paired"] == 12
    assert shift["matrix"]["agree"] == {"agree": 2, "disagree": 0, "unsure": 2}
    assert shift["changed_share"]["agree"] == pytest.approx(0.5)
    assert shift["test"]["name"] == "stuart_maxwell"
    tab = body["crosstabs"]["stance_perceived"]
    assert tab["non_holders"] == 8 and tab["non_holders_perceiving_majority"] == 5


def test_a_talk_pools_its_sessions_and_lists_each(app: FastAPI, client: TestClient) -> None:
    a = run_session(app, client, room(4, 8, 9), venue="Copenhagen")
    b = run_session(app, client, room(10, 10, 15), venue="Milan")
    # two rooms are shown side by side, with no pooled gap (docs/methods.md, "Pooling")
    two = client.get("/api/v1/talks/emergence/results", headers=AUTH).json()["meta"]["gap"]
    assert two["k"] == 2 and two["estimate"] is None and two["ci95"] is None
    assert [row["weight"] for row in two["sessions"]] == [None, None]
    c = run_session(app, client, room(5, 7, 9), venue="Lisbon")
    body = client.get("/api/v1/talks/emergence/results", headers=AUTH).json()
    assert [s["code"] for s in body["sessions"]] == [a, b, c]
    assert [s["venue"] for s in body["sessions"]] == ["Copenhagen", "Milan", "Lisbon"]
    assert body["phases"]["belief"]["n"] == 44
    assert body["phases"]["belief"]["counts"]["agree"] == 19
    assert body["pooled"]["gap"]["difference"] == pytest.approx(33 / 44 - 19 / 44)
    meta = body["meta"]["gap"]
    assert meta["k"] == 3 and meta["method"] == "inverse_variance_dersimonian_laird"
    assert [row["code"] for row in meta["sessions"]] == [a, b, c]
    assert sum(row["weight"] for row in meta["sessions"]) == pytest.approx(1)
    lo, hi = meta["ci95"]
    assert lo < meta["estimate"] < hi
    assert 0 <= meta["i2"] <= 1 and meta["tau2"] >= 0
    one = body["sessions"][0]
    alone = client.get(f"/api/v1/sessions/{a}/results", headers=AUTH).json()
    assert one["phases"] == alone["phases"] and one["gap"] == alone["gap"]


def test_pooling_a_talk_of_one_session_equals_that_session(
    app: FastAPI, client: TestClient
) -> None:
    code = run_session(app, client, room(7, 9, 12))
    talk = client.get("/api/v1/talks/emergence/results", headers=AUTH).json()
    session = client.get(f"/api/v1/sessions/{code}/results", headers=AUTH).json()
    for key in ("phases", "shift", "crosstabs", "surprisingly_popular"):
        assert talk["pooled"][key] == session[key], key
    # the merged answers' gap says it is a descriptive figure, not the pooled estimate
    assert talk["pooled"]["gap"] == {**session["gap"], "merged": True}
    # one room is no pool: the talk's forest shows it on its own, with no pooled estimate
    meta = talk["meta"]["gap"]
    assert meta["k"] == 1 and meta["estimate"] is None
    assert meta["sessions"][0]["difference"] == pytest.approx(
        session["gap"]["paired"]["difference"]
    )


def test_phase_results_stay_compatible(app: FastAPI, client: TestClient) -> None:
    code = run_session(app, client, room(4, 8, 9))
    with Session(app.state.engine) as db:
        poll = sessions.get_session(db, code)
        tallies = results.phase_results(db, poll)
        full = results.session_results(db, poll)
    belief = next(r for r in tallies if r.key == "belief")
    assert belief.n == 12 and [o.count for o in belief.options] == [4, 0, 8]
    assert belief.options[0].ci95 is not None and belief.state == "closed"
    assert [r.n for r in tallies] == [r.n for r in full.phases]
    assert full.gap is not None and full.gap.difference.estimate == pytest.approx(5 / 12)
    assert full.shift is not None and full.shift.n_paired == 12


def test_the_results_page_shows_charts_words_and_export_buttons(
    app: FastAPI, client: TestClient
) -> None:
    code = run_session(app, client, room(4, 8, 9))
    page = client.get(f"/presenter/sessions/{code}/results", follow_redirects=False)
    assert page.status_code in (302, 303, 307)
    presenter(client)
    page = client.get(f"/presenter/sessions/{code}/results")
    assert page.status_code == 200
    soup = BeautifulSoup(page.text, "html.parser")
    svgs = soup.find_all("svg", attrs={"role": "img"})
    assert len(svgs) >= 6 and all(svg.find("title") for svg in svgs)
    text = soup.get_text(" ")
    assert "33% [14, 61] of this room answered “Yes, they do”, too close to half" in text
    assert "75% [47, 91] think most of the field does." in text
    links = {a["href"] for a in soup.select(".exports a")}
    assert f"/api/v1/sessions/{code}/export.csv" in links
    assert f"/api/v1/sessions/{code}/codebook.json" in links
    assert f"/presenter/sessions/{code}/report.html?lang=en" in links
    for href in links:
        path = href.split("?")[0]
        assert client.get(path).status_code == 200, href


def test_the_results_pages_back_links_say_where_they_go(app: FastAPI, client: TestClient) -> None:
    code = run_session(app, client, room(4, 8, 9))
    presenter(client)
    expected = {
        "en": ("Back to this session's controls", "Back to the dashboard"),
        "zh-Hans": ("返回本场的控制页", "返回控制台"),
    }
    for lang, (to_session, to_dashboard) in expected.items():
        page = client.get(f"/presenter/sessions/{code}/results?lang={lang}")
        nav = BeautifulSoup(page.text, "html.parser").select_one(".results__nav")
        assert nav is not None
        back = nav.select("a")[0]
        assert back["href"] == f"/presenter/sessions/{code}"
        assert back.get_text(strip=True) == f"← {to_session}"
        page = client.get(f"/presenter/talks/emergence/results?lang={lang}")
        nav = BeautifulSoup(page.text, "html.parser").select_one(".results__nav")
        assert nav is not None
        back = nav.select("a")[0]
        assert back["href"] == "/presenter" and back.get_text(strip=True) == f"← {to_dashboard}"


def test_small_cells_show_too_few_on_the_page(app: FastAPI, client: TestClient) -> None:
    # 6 people agree, 4 of them think the field agrees: cells of 4 and 2
    code = run_session(app, client, room(6, 9, 4))
    presenter(client)
    soup = BeautifulSoup(client.get(f"/presenter/sessions/{code}/results").text, "html.parser")
    table = soup.select_one(".crosstab table")
    assert table is not None
    cells = [td.get_text(strip=True) for td in table.select("td")]
    assert "–" in cells and "4" not in cells and "2" not in cells
    # the row totals are the phases' own totals, shown as they are (the bar charts show them)
    totals = [tr.select("td")[-1].get_text(strip=True) for tr in table.select("tbody tr")]
    assert totals == ["6", "0", "9"] and "<5" not in table.get_text()
    assert "–" in soup.select_one(".chart--shift-matrix").get_text(" ")


def test_the_talk_page_has_a_forest_plot_and_each_venue(app: FastAPI, client: TestClient) -> None:
    run_session(app, client, room(4, 8, 9), venue="Cardiff")
    run_session(app, client, room(6, 6, 9), venue="London")
    run_session(app, client, room(5, 7, 9), venue="Leeds")
    presenter(client)
    page = client.get("/presenter/talks/emergence/results")
    assert page.status_code == 200
    soup = BeautifulSoup(page.text, "html.parser")
    forest = soup.select_one("svg.chart--forest")
    assert forest is not None and "Cardiff" in forest.get_text() and "London" in forest.get_text()
    assert "Pooled" in forest.get_text()
    venues = [
        row.select("td")[0].get_text(strip=True) for row in soup.select(".sessions-table tbody tr")
    ]
    assert venues == ["Cardiff", "London", "Leeds"]
    zh = client.get("/presenter/talks/emergence/results?lang=zh-Hans")
    assert "各场次的差距" in zh.text


def test_results_pages_for_unknown_things_are_404(client: TestClient) -> None:
    presenter(client)
    assert client.get("/presenter/sessions/NOPE22/results").status_code == 404
    assert client.get("/presenter/talks/nope/results").status_code == 404


def test_a_talk_without_sessions_has_empty_results(client: TestClient) -> None:
    body = client.get("/api/v1/talks/emergence-scale/results", headers=AUTH).json()
    assert body["sessions"] == [] and body["phases"] == {} and body["gap"] is None
    assert body["meta"]["gap"]["k"] == 0
    presenter(client)
    page = client.get("/presenter/talks/emergence-scale/results")
    assert page.status_code == 200 and "No sessions yet." in page.text
    assert client.get("/presenter/talks/emergence-scale/report.html").status_code == 200
    chart = client.get("/api/v1/talks/emergence-scale/charts/forest.svg", headers=AUTH)
    assert chart.status_code == 404


def test_a_percent_estimate_gives_the_mean_gap_false_consensus_and_surprise(
    app: FastAPI, client: TestClient
) -> None:
    code = new_session(client, talk="emergence-scale")
    for phase in ("belief", "field_pct"):
        phase_action(client, code, phase, "open")
    scale = ["strongly_disagree", "disagree", "neutral", "agree", "strongly_agree"]
    for i in range(20):
        person = TestClient(app)
        choice = scale[i % 5]
        estimate = 80 if choice in ("agree", "strongly_agree") else 60
        for body in (
            {"phase": "belief", "choice": choice},
            {"phase": "field_pct", "value": estimate},
        ):
            assert person.post(f"/api/v1/sessions/{code}/votes", json=body).status_code == 200
    body = client.get(f"/api/v1/sessions/{code}/results", headers=AUTH).json()
    pct = body["phases"]["field_pct"]
    assert pct["n"] == 20 and pct["mean"] == 68 and pct["median"] == 60
    assert pct["ci95"][0] < 68 < pct["ci95"][1] and pct["actual_share"] == 0.4
    gap = body["gap"]
    assert gap["kind"] == "estimate" and gap["option"] == "agree+strongly_agree"
    assert gap["self_share"] == 0.4 and gap["perceived_share"] == pytest.approx(0.68)
    assert gap["difference"] == pytest.approx(0.28)
    fc = gap["false_consensus"]
    assert fc["holders"] == {"n": 8, "mean": pytest.approx(0.8)}
    assert fc["others"] == {"n": 12, "mean": pytest.approx(0.6)}
    # each group gave one estimate: Welch's interval would be [0.2, 0.2], which is no 95%
    # interval, so no difference is given (the two means say it)
    assert fc["difference"] is None
    # both sides estimated, on the same 20 people: the paired mean difference is the headline
    assert gap["headline"] == "paired" and gap["paired"]["n"] == 20
    assert gap["paired"]["difference"] == pytest.approx(0.28)
    assert gap["paired"]["method"] == "mover_paired_t_wilson"
    # the estimates are about the field, not this room: no "surprisingly popular" claim
    assert body["surprisingly_popular"] is None


def test_a_changed_answer_counts_once_in_the_results(app: FastAPI, client: TestClient) -> None:
    code = new_session(client)
    phase_action(client, code, "belief", "open")
    person = TestClient(app)
    for choice in ("agree", "disagree", "unsure", "disagree"):
        body = {"phase": "belief", "choice": choice}
        assert person.post(f"/api/v1/sessions/{code}/votes", json=body).status_code == 200
    belief = client.get(f"/api/v1/sessions/{code}/results", headers=AUTH).json()["phases"]["belief"]
    assert belief["n"] == 1
    assert belief["counts"] == {"agree": 0, "disagree": 1, "unsure": 0}


def test_openapi_documents_the_results_json(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for name in ("SessionResultsJSON", "TalkResultsJSON", "GapJSON", "ShiftJSON"):
        assert name in schemas, name
    assert "paired" in schemas["GapJSON"]["properties"]
    assert "from" in schemas["ShiftJSON"]["properties"]
    ok = spec["paths"]["/api/v1/sessions/{code}/results"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("SessionResultsJSON")


def test_no_hidden_cross_tab_cell_can_be_worked_out_from_the_page(
    app: FastAPI, client: TestClient
) -> None:
    from app import stats

    # 6 agree, 9 unsure; 4 of the agreeing and none of the others think the field agrees
    code = run_session(app, client, room(6, 9, 4))
    body = client.get(f"/api/v1/sessions/{code}/results", headers=AUTH).json()
    tab = body["crosstabs"]["stance_perceived"]
    rows, cols = list(tab["counts"]), list(next(iter(tab["counts"].values())))
    truth = [[tab["counts"][r][c] for c in cols] for r in rows]
    presenter(client)
    soup = BeautifulSoup(client.get(f"/presenter/sessions/{code}/results").text, "html.parser")
    table = soup.select_one(".crosstab table")
    assert table is not None
    shown = [
        [td.get_text(strip=True) for td in tr.select("td")][: len(cols)]
        for tr in table.select("tbody tr")
    ]
    hidden = frozenset((i, j) for i, r in enumerate(shown) for j, v in enumerate(r) if v == "–")
    # the presenter's JSON keeps the raw counts and flags what the pages hide
    assert {(rows.index(r), cols.index(c)) for r, c in tab["hidden"]} == hidden
    for i, r in enumerate(shown):
        for j, v in enumerate(r):
            if (i, j) not in hidden:
                assert v.split(" ")[0].split("(")[0] == str(truth[i][j])
    everything = frozenset((i, j) for i in range(len(rows)) for j in range(len(cols)))
    small = [(i, j) for i, j in hidden if 0 < truth[i][j] < 5]
    assert small, "the room was meant to have small cells"
    for cell in small:
        # with the row and column totals (the phases' own charts) a reader still cannot tell
        if (
            stats.cell_range(truth, everything, cell)[0]
            < stats.cell_range(truth, everything, cell)[1]
        ):
            low, high = stats.cell_range(truth, hidden, cell)
            assert low < high, (truth, sorted(hidden), cell)
