"""Exports: formula-safe CSV, JSON, codebook, talk-level files, charts as SVG/PNG, the report,
the command line, and reading an export back to the very same results."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import export, results
from app.cli import main
from tests.conftest import AUTH, log_in, new_session
from tests.test_results import room, run_session


def recomputed(imported: list[export.Imported]) -> list[dict]:
    return [
        results.results_json(results.build_session_results(infos, data, meta))
        for meta, infos, data in imported
    ]


def test_session_json_export_reads_back_to_the_same_results(
    app: FastAPI, client: TestClient
) -> None:
    code = run_session(app, client, room(5, 9, 10))
    live = client.get(f"/api/v1/sessions/{code}/results", headers=AUTH).json()
    document = client.get(f"/api/v1/sessions/{code}/export.json", headers=AUTH).json()
    [again] = recomputed(export.read_document(document))
    for key in ("phases", "gap", "shift", "crosstabs", "surprisingly_popular"):
        assert again[key] == live[key], key


def test_talk_csv_export_with_its_codebook_reads_back_to_the_same_results(
    app: FastAPI, client: TestClient
) -> None:
    codes = [
        run_session(app, client, room(5, 9, 10), venue='=HYPERLINK("x")'),
        run_session(app, client, room(8, 4, 10), venue="Milan"),
        run_session(app, client, room(6, 6, 8), venue="Turin"),
    ]
    text = client.get("/api/v1/talks/emergence/export.csv", headers=AUTH).text
    book = client.get("/api/v1/talks/emergence/codebook.json", headers=AUTH).json()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["session"] for r in rows} == set(codes)
    assert all(not r["venue"].startswith("=") for r in rows)  # neutralized
    imported = export.read_csv(text, book)
    assert [meta.venue for meta, _i, _d in imported] == ['=HYPERLINK("x")', "Milan", "Turin"]
    talk = client.get("/api/v1/talks/emergence/results", headers=AUTH).json()
    for again, live in zip(recomputed(imported), talk["sessions"], strict=True):
        for key in ("phases", "gap", "shift", "crosstabs"):
            assert again[key] == live[key], key
    pooled = results.build_talk_results("emergence", {"en": "x"}, ["en"], imported)
    assert results.results_json(pooled.pooled)["gap"] == talk["pooled"]["gap"]
    assert pooled.meta is not None
    assert pooled.meta.random == pytest.approx(talk["meta"]["gap"]["estimate"])


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["agree", "disagree", "unsure", None]),
            st.sampled_from(["agree", "disagree", "unsure", None]),
            st.sampled_from(["agree", "disagree", "unsure", None]),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_any_session_reads_back_from_its_json_export(
    app: FastAPI, client: TestClient, people: list[tuple[str | None, str | None, str | None]]
) -> None:
    answers = [
        {k: v for k, v in zip(("belief", "field", "revote"), person, strict=True) if v}
        for person in people
    ]
    code = run_session(app, client, answers)
    live = client.get(f"/api/v1/sessions/{code}/results", headers=AUTH).json()
    document = client.get(f"/api/v1/sessions/{code}/export.json", headers=AUTH).json()
    [again] = recomputed(export.read_document(document))
    assert {k: again[k] for k in ("phases", "gap", "shift")} == {
        k: live[k] for k in ("phases", "gap", "shift")
    }


def test_the_codebook_names_every_phase_and_option_in_every_language(client: TestClient) -> None:
    code = new_session(client)
    assert client.get(f"/api/v1/sessions/{code}/codebook.json").status_code == 401
    book = client.get(f"/api/v1/sessions/{code}/codebook.json", headers=AUTH).json()
    assert book["talk"]["slug"] == "emergence"
    assert [p["id"] for p in book["phases"]] == ["definition", "belief", "field", "revote"]
    belief = book["phases"][1]
    assert belief["kind"] == "stance" and belief["holds"] == ["agree"]
    assert set(belief["question"]) == {"en", "zh-Hans"}
    assert [o["id"] for o in belief["options"]] == ["agree", "disagree", "unsure"]
    assert all(set(o["label"]) == {"en", "zh-Hans"} for o in belief["options"])
    assert set(book["columns"]) == set(export.CSV_COLUMNS)
    assert client.get("/api/v1/talks/emergence-scale/codebook.json", headers=AUTH).json()["phases"][
        2
    ]["range"] == [0, 100]


def test_talk_exports_need_the_token_and_know_the_talk(client: TestClient) -> None:
    assert client.get("/api/v1/talks/emergence/export.csv").status_code == 401
    assert client.get("/api/v1/talks/nope/export.json", headers=AUTH).status_code == 404
    document = client.get("/api/v1/talks/emergence/export.json", headers=AUTH).json()
    assert document["talk"]["slug"] == "emergence" and document["sessions"] == []


def test_charts_download_as_svg_and_png(app: FastAPI, client: TestClient) -> None:
    code = run_session(app, client, room(5, 9, 10))
    svg = client.get(f"/api/v1/sessions/{code}/charts/gap.svg", headers=AUTH)
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.startswith("<?xml") and 'xmlns="http://www.w3.org/2000/svg"' in svg.text
    png = client.get(f"/api/v1/sessions/{code}/charts/shift.png?lang=zh-Hans", headers=AUTH)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    for name in ("gap-wide", "shift-matrix", "phase-belief", "phase-definition"):
        assert (
            client.get(f"/api/v1/sessions/{code}/charts/{name}.svg", headers=AUTH).status_code
            == 200
        )
    assert client.get(f"/api/v1/sessions/{code}/charts/nope.svg", headers=AUTH).status_code == 404
    assert client.get(f"/api/v1/sessions/{code}/charts/gap.gif", headers=AUTH).status_code == 404
    assert client.get(f"/api/v1/sessions/{code}/charts/gap.svg").status_code == 401
    forest = client.get("/api/v1/talks/emergence/charts/forest.svg", headers=AUTH)
    assert forest.status_code == 200 and "Copenhagen" in forest.text


def test_the_report_is_self_contained(app: FastAPI, client: TestClient) -> None:
    code = run_session(app, client, room(5, 9, 10))
    log_in(client)
    for url in (
        f"/presenter/sessions/{code}/report.html",
        "/presenter/talks/emergence/report.html",
    ):
        page = client.get(url)
        assert page.status_code == 200
        soup = BeautifulSoup(page.text, "html.parser")
        assert not soup.find_all("script") and not soup.find_all("link")
        assert not soup.find_all(src=True) and not soup.select("[href^=http]")
        assert soup.find("style") is not None and "@media print" in soup.find("style").text
        assert soup.find_all("svg", attrs={"role": "img"})
    zh = client.get(f"/presenter/sessions/{code}/report.html?lang=zh-Hans").text
    assert "你的看法与你眼中领域的看法" in zh


def test_the_command_line_exports_sessions_and_talks(
    app: FastAPI,
    client: TestClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = app.state.settings
    monkeypatch.setenv("BELIEFGAP_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("BELIEFGAP_SECRET_KEY", settings.secret_key)
    monkeypatch.setenv("BELIEFGAP_ADMIN_TOKEN", settings.admin_token)
    code = run_session(app, client, room(5, 9, 10))
    live = client.get(f"/api/v1/sessions/{code}/results", headers=AUTH).json()
    assert main(["export", code, "--format", "results"]) == 0
    assert json.loads(capsys.readouterr().out)["gap"] == live["gap"]
    assert main(["export", "--talk", "emergence", "--format", "codebook"]) == 0
    assert json.loads(capsys.readouterr().out)["talk"]["slug"] == "emergence"
    report = tmp_path / "report.html"
    assert main(["export", "--talk", "emergence", "--format", "report", "-o", str(report)]) == 0
    assert "<svg" in report.read_text(encoding="utf-8")
    assert main(["export", "--talk", "emergence", "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("session,venue,talk,phase")
    assert main(["export", "--talk", "nope"]) == 2
    with pytest.raises(SystemExit):
        main(["export", code, "--talk", "emergence"])


def test_formula_cells_are_neutralized_and_restored() -> None:
    for cell in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert export.neutralize(cell) == "'" + cell
        assert export._restore(export.neutralize(cell)) == cell
    assert export.neutralize(3.5) == 3.5 and export.neutralize("Milan") == "Milan"
