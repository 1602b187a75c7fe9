"""The dataset package: a standard validator accepts it, pandas reads it back to the published
counts, the citation file passes its schema, the choices of licence and times show, and the
same data give the same bytes."""

from __future__ import annotations

import importlib.util
import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.cli import main
from app.models import Response
from tests.conftest import AUTH, log_in, new_session, phase_action, require
from tests.test_results import room, run_session

frictionless = pytest.importorskip("frictionless")
pd = pytest.importorskip("pandas")


def scale_session(app: FastAPI, client: TestClient, venue: str = "Oslo") -> str:
    """A room of 7 on the scale talk: a 5-point stance, a 0-100 estimate, a revote."""
    code = new_session(client, talk="emergence-scale", venue=venue)
    stances = ["agree", "strongly_agree", "neutral", "agree", "disagree", "agree", "neutral"]
    people = [TestClient(app) for _ in stances]
    for phase in ("definition", "belief", "field_pct"):
        phase_action(client, code, phase, "open")
    for i, (person, stance) in enumerate(zip(people, stances, strict=True)):
        for body in (
            {"phase": "definition", "choice": "d1" if i % 2 else "d3"},
            {"phase": "belief", "choice": stance},
            {"phase": "field_pct", "value": 40 + 7.5 * i},
        ):
            response = person.post(f"/api/v1/sessions/{code}/votes", json=body)
            assert response.status_code == 200, response.text
    for phase in ("definition", "belief", "field_pct"):
        phase_action(client, code, phase, "close")
    phase_action(client, code, "revote", "open")
    for person in people[:5]:
        response = person.post(
            f"/api/v1/sessions/{code}/votes", json={"phase": "revote", "choice": "neutral"}
        )
        assert response.status_code == 200, response.text
    phase_action(client, code, "revote", "close")
    return code


def unzip(content: bytes, into: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        archive.extractall(into)
        return {name: archive.read(name) for name in archive.namelist()}


def package(client: TestClient, url: str, **params: Any) -> bytes:
    response = client.get(url, headers=AUTH, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    return response.content


def read_back(folder: Path) -> dict[str, Any]:
    """The tables of a package as data frames, typed as its descriptor says (nothing else)."""
    descriptor = json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))
    frames = {}
    for resource in descriptor["resources"]:
        strings = {f["name"]: str for f in resource["schema"]["fields"] if f["type"] == "string"}
        frames[resource["name"]] = pd.read_csv(
            folder / resource["path"], dtype=strings, keep_default_na=False, na_values=[""]
        )
    return frames


def assert_counts_match(frames: dict[str, Any], results_doc: dict[str, Any]) -> None:
    """Every count of every session's results JSON, from the package's responses alone."""
    responses = frames["responses"]
    sessions_table = frames["sessions"].set_index("session")
    for session in results_doc.get("sessions", [results_doc]):
        code = session["code"]
        mine = responses[responses["session"] == code]
        for key, phase in session["phases"].items():
            answered = mine[mine["phase"] == key]
            assert len(answered) == phase["n"], (code, key)
            assert sessions_table.loc[code, f"n_{key}"] == phase["n"]
            if phase.get("answer") == "ranking":
                assert_ranking_matches(answered, phase)
            elif phase.get("answer") == "text":  # the shown texts are a table of their own
                texts = frames.get("text_answers")
                shown = 0 if texts is None else int((texts["session"] == code).sum())
                assert shown == phase["shown"], (code, key)
            elif "counts" in phase:
                counts = answered["choice"].value_counts().to_dict()
                assert {k: counts.get(k, 0) for k in phase["counts"]} == phase["counts"]
            else:
                assert answered["value"].mean() == pytest.approx(phase["mean"])


def assert_ranking_matches(answered: Any, phase: dict[str, Any]) -> None:
    """A ranking's first places, Borda counts and mean places, from its rank_ columns alone."""
    places = [c for c in answered.columns if c.startswith("rank_")]
    k = len(phase["borda"])
    assert len(places) >= k
    firsts = answered["rank_1"].value_counts().to_dict()
    assert {o: firsts.get(o, 0) for o in phase["first_counts"]} == phase["first_counts"]
    for option in phase["borda"]:
        place = (answered[places] == option).to_numpy().argmax(axis=1) + 1
        assert int((k - place).sum()) == phase["borda"][option]
        assert place.mean() == pytest.approx(phase["mean_rank"][option])


@pytest.mark.parametrize("talk", ["emergence", "emergence-scale"])
def test_both_bundled_talks_make_valid_packages_that_read_back_to_the_results(
    app: FastAPI, client: TestClient, tmp_path: Path, talk: str
) -> None:
    if talk == "emergence":
        run_session(app, client, room(5, 9, 10), venue="Copenhagen")
        run_session(app, client, room(8, 4, 10), venue="=Milan")
    else:
        scale_session(app, client, "Oslo")
        scale_session(app, client, "上海")
    rehearsal = new_session(client, talk=talk, venue="Dry run")
    client.patch(f"/api/v1/sessions/{rehearsal}", json={"rehearsal": True}, headers=AUTH)
    content = package(client, f"/api/v1/talks/{talk}/package.zip", contributor="Anna Rogers")
    files = unzip(content, tmp_path)
    report = frictionless.validate(str(tmp_path / "datapackage.json"))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])

    descriptor = json.loads(files["datapackage.json"])
    assert descriptor["version"] == "2.0.0"  # two sessions; the rehearsal is left out
    assert descriptor["licenses"][0]["name"] == "CC-BY-4.0"
    assert {"title": "Anna Rogers", "roles": ["creator"]} in descriptor["contributors"]
    results_doc = json.loads(files["results.json"])
    live = client.get(f"/api/v1/talks/{talk}/results", headers=AUTH).json()
    assert results_doc == live
    frames = read_back(tmp_path)
    assert rehearsal not in set(frames["responses"]["session"])
    assert_counts_match(frames, results_doc)
    # every language's wording, and the scale's order where the talk has one
    questions = frames["questions"].set_index("phase")
    assert (
        questions.loc["belief", "question_zh-Hans"]
        == json.loads(client.get(f"/api/v1/talks/{talk}/codebook.json", headers=AUTH).text)[
            "phases"
        ][1]["question"]["zh-Hans"]
    )
    assert bool(questions.loc["belief", "scale"]) is (talk == "emergence-scale")
    for name in ("codebook.md", "codebook.xml", "methods.md", "CITATION.cff"):
        assert files[name], name
    assert "编码手册" in files["codebook.md"].decode()
    assert b'xml:lang="zh-Hans"' in files["codebook.xml"]


def test_a_session_package_coarsens_times_unless_asked_and_keeps_its_bytes(
    app: FastAPI, client: TestClient, tmp_path: Path
) -> None:
    code = run_session(app, client, room(5, 9, 10))
    # the phones answered at different moments: one an hour after the others
    with Session(app.state.engine) as db:
        late = db.exec(select(Response).order_by(col(Response.id).desc())).first()
        assert late is not None
        late.answered_at = late.answered_at + timedelta(hours=1)
        db.add(late)
        db.commit()
    url = f"/api/v1/sessions/{code}/package.zip"
    first = package(client, url)
    assert package(client, url) == first  # the same data, the same bytes
    files = unzip(first, tmp_path / "coarse")
    rows = pd.read_csv(io.BytesIO(files["data/responses.csv"]), dtype=str)
    # coarse: one time per phase, the late answer's hour nowhere
    assert rows.groupby("phase")["time"].nunique().max() == 1
    assert "coarsened" in files["methods.md"].decode()
    exact = unzip(package(client, url, exact_times="true", licence="CC0-1.0"), tmp_path / "x")
    descriptor = json.loads(exact["datapackage.json"])
    assert descriptor["licenses"][0]["name"] == "CC0-1.0"
    assert "license: CC0-1.0" in exact["CITATION.cff"].decode()
    exact_rows = pd.read_csv(io.BytesIO(exact["data/responses.csv"]), dtype=str)
    # exact: the late answer stands an hour after its phase's others (the rest may straddle a
    # second boundary on a loaded machine, so the count of distinct times is not the check)
    moments = pd.to_datetime(exact_rows["time"])
    spread = moments.groupby(exact_rows["phase"]).agg(lambda t: t.max() - t.min())
    assert spread.max() >= pd.Timedelta(minutes=59)
    assert (spread < pd.Timedelta(minutes=1)).sum() == len(spread) - 1
    assert not set(exact_rows["time"]) <= set(rows["time"])
    assert set(exact_rows["participant"]) == set(rows["participant"])
    # nothing about a person: the columns are the session's, the pseudonym's and the answer's
    assert list(exact_rows.columns) == [
        "session",
        "participant",
        "phase",
        "choice",
        "value",
        "language",
        "time",
    ]


def test_bad_package_requests_are_refused(client: TestClient) -> None:
    code = new_session(client)
    assert client.get(f"/api/v1/sessions/{code}/package.zip").status_code == 401
    assert client.get("/api/v1/talks/emergence/package.zip").status_code == 401
    refused = client.get(f"/api/v1/sessions/{code}/package.zip?licence=MIT", headers=AUTH)
    assert refused.status_code == 422 and "CC-BY-4.0" in refused.json()["detail"]
    too_long = client.get(
        f"/api/v1/sessions/{code}/package.zip", params={"contributor": "x" * 201}, headers=AUTH
    )
    assert too_long.status_code == 422
    assert client.get("/api/v1/sessions/NOPE22/package.zip", headers=AUTH).status_code == 404


def test_the_citation_file_passes_the_citation_file_format_schema(
    app: FastAPI, client: TestClient
) -> None:
    """cffconvert 2.0.0 pins jsonschema < 4 (frictionless needs >= 4.20): its schema is read
    from the installed package and checked with the jsonschema frictionless brings."""
    import jsonschema
    import yaml

    spec = importlib.util.find_spec("cffconvert")
    require(spec is not None, "cffconvert (pip install --no-deps cffconvert==2.0.0)")
    assert spec is not None and spec.submodule_search_locations
    folder = Path(next(iter(spec.submodule_search_locations)))
    schema = json.loads((folder / "schemas" / "1.2.0" / "schema.json").read_text())
    run_session(app, client, room(5, 9, 10), venue='Venue "quoted": #1')
    with zipfile.ZipFile(
        io.BytesIO(package(client, "/api/v1/talks/emergence/package.zip")), "r"
    ) as archive:
        cff = yaml.safe_load(archive.read("CITATION.cff"))
    jsonschema.validate(cff, schema)
    assert cff["type"] == "dataset" and cff["license"] == "CC-BY-4.0"
    broken = dict(cff, license="MIT-ish")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_the_results_page_and_the_command_line_give_the_package(
    app: FastAPI,
    client: TestClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code = run_session(app, client, room(5, 9, 10))
    log_in(client)
    page = client.get(f"/presenter/sessions/{code}/results").text
    assert f'action="/api/v1/sessions/{code}/package.zip"' in page
    assert 'value="CC-BY-4.0" selected' in page
    # the form's request, from the logged-in browser (no token in the URL)
    response = client.get(f"/api/v1/sessions/{code}/package.zip?licence=CC0-1.0&contributor=")
    assert response.status_code == 200
    assert (
        "/api/v1/talks/emergence/package.zip"
        in client.get("/presenter/talks/emergence/results").text
    )
    settings = app.state.settings
    monkeypatch.setenv("BELIEFGAP_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("BELIEFGAP_SECRET_KEY", settings.secret_key)
    monkeypatch.setenv("BELIEFGAP_ADMIN_TOKEN", settings.admin_token)
    out = tmp_path / "talk.zip"
    assert main(["package", "--talk", "emergence", "--licence", "CC0-1.0", "-o", str(out)]) == 0
    with zipfile.ZipFile(out) as archive:
        descriptor = json.loads(archive.read("datapackage.json"))
    assert descriptor["licenses"][0]["name"] == "CC0-1.0"
    assert main(["package", "NOPE22"]) == 2


EVERY_FORMAT = {
    "slug": "every-format",
    "languages": ["en", "zh-Hans"],
    "title": {"en": "Every format", "zh-Hans": "每种作答方式"},
    "phases": [
        {
            "id": "belief",
            "kind": "stance",
            "holds": ["agree"],
            "question": {"en": "Do you agree?", "zh-Hans": "你同意吗？"},
            "options": [
                {"id": key, "label": {"en": key, "zh-Hans": label}}
                for key, label in (("agree", "同意"), ("disagree", "不同意"), ("unsure", "不确定"))
            ],
        },
        {
            "id": "field_pct",
            "kind": "perceived",
            "of": "belief",
            "range": [0, 100],
            "question": {"en": "What share of the field agrees?", "zh-Hans": "同行中多少人同意？"},
        },
        {
            "id": "order",
            "kind": "choice",
            "answer": "ranking",
            "question": {"en": "What first?", "zh-Hans": "先做什么？"},
            "options": [
                {"id": key, "label": {"en": label, "zh-Hans": label}}
                for key, label in (("evals", "Evaluations"), ("theory", "Theory"), ("data", "Data"))
            ],
        },
        {
            "id": "why",
            "kind": "choice",
            "answer": "text",
            "question": {"en": "Why?", "zh-Hans": "为什么？"},
        },
    ],
}
RANKINGS = [
    ["evals", "theory", "data"],
    ["data", "evals", "theory"],
    ["evals", "data", "theory"],
    ["theory", "evals", "data"],
    ["evals", "theory", "data"],
]


def test_a_talk_of_every_answer_format_makes_a_valid_package_with_its_rankings(
    app: FastAPI, client: TestClient, tmp_path: Path
) -> None:
    made = client.post("/api/v1/talks", json=EVERY_FORMAT, headers=AUTH)
    assert made.status_code == 201, made.text
    code = new_session(client, talk="every-format")
    for phase in ("belief", "field_pct", "order", "why"):
        phase_action(client, code, phase, "open")
    stances = ["agree", "agree", "disagree", "unsure", "agree", "disagree"]
    for i, stance in enumerate(stances):
        phone = TestClient(app)
        bodies = [
            {"phase": "belief", "choice": stance},
            {"phase": "field_pct", "value": 30 + 9 * i},
        ]
        if i < len(RANKINGS):  # the last phone ranks nothing: its rank_ cells stay empty
            bodies.append({"phase": "order", "ranking": RANKINGS[i]})
        bodies.append({"phase": "why", "text": f"reason number {i}"})
        for body in bodies:
            response = phone.post(f"/api/v1/sessions/{code}/votes", json=body)
            assert response.status_code == 200, response.text
    for phase in ("belief", "field_pct", "order", "why"):
        phase_action(client, code, phase, "close")
    queue = client.get(f"/api/v1/sessions/{code}/text-answers?state=pending", headers=AUTH).json()
    shown = [
        a["id"] for a in queue["answers"] if a["text"] in ("reason number 0", "reason number 1")
    ]
    moved = client.post(
        f"/api/v1/sessions/{code}/text-answers/moderate",
        json={"ids": shown, "state": "shown"},
        headers=AUTH,
    )
    assert moved.status_code == 200, moved.text

    files = unzip(package(client, "/api/v1/talks/every-format/package.zip"), tmp_path)
    report = frictionless.validate(str(tmp_path / "datapackage.json"))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])
    results_doc = json.loads(files["results.json"])
    assert results_doc["sessions"][0]["phases"]["order"]["n"] == len(RANKINGS)
    frames = read_back(tmp_path)
    assert_counts_match(frames, results_doc)
    responses = frames["responses"]
    assert list(responses.columns[5:8]) == ["rank_1", "rank_2", "rank_3"]
    assert responses.loc[responses["phase"] != "order", "rank_1"].isna().all()
    assert frames["questions"].set_index("phase").loc["order", "answer"] == "ranking"
    assert sorted(frames["text_answers"]["text"]) == ["reason number 0", "reason number 1"]
    assert b"reason number 2" not in b"".join(files.values())  # still pending
    # the descriptor gives each place its options as categories, the codebooks in both languages
    descriptor = json.loads(files["datapackage.json"])
    fields = {f["name"]: f for f in descriptor["resources"][0]["schema"]["fields"]}
    assert [c["value"] for c in fields["rank_2"]["categories"]] == ["evals", "theory", "data"]
    markdown = files["codebook.md"].decode()
    assert "- `rank_3`: in a ranking, the option put in place 3" in markdown
    assert "排序题中排在第 3 位的选项" in markdown
    ddi = files["codebook.xml"].decode()
    assert '<var ID="V_rank_1" name="rank_1"' in ddi
    firsts = ddi.split('<var ID="V_rank_1"')[1].split("</var>")[0]
    assert "<catValu>evals</catValu>" in firsts and '<catStat type="freq">3</catStat>' in firsts


def test_a_session_of_published_counts_goes_to_totals_not_to_responses(
    app: FastAPI, client: TestClient, tmp_path: Path
) -> None:
    """A talk's package with a session of published counts (added through the API) beside a
    room of phones: its counts are a table of their own, the sessions table says it is not
    linked and where it comes from, and the package stays valid."""
    from app import package as dataset
    from app.sessions import get_talk

    run_session(app, client, room(5, 9, 10))
    belief = {"agree": 120, "disagree": 40, "unsure": 15}
    moved = {"agree": 100, "disagree": 12, "unsure": 8}  # of those who first agreed
    body = {
        "talk": "emergence",
        "venue": "Several venues",
        "held_on": "2024-05-01",
        "unlinked": True,
        "source": "=Rogers 2024, a blog post",
        "totals": {"belief": belief, "revote": moved},
        "transitions": {"revote": {"agree": moved}},
    }
    made = client.post("/api/v1/sessions", json=body, headers=AUTH)
    assert made.status_code == 201, made.text
    code = made.json()["code"]
    with Session(app.state.engine) as db:
        g = dataset.gather_talk(db, get_talk(db, "emergence"))
    folder = tmp_path / "pkg"
    unzip(dataset.build_zip(g, dataset.PackageOptions()), folder)
    report = frictionless.validate(str(folder / "datapackage.json"))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])
    frames = read_back(folder)
    assert code not in set(frames["responses"]["session"])
    table = frames["sessions"].set_index("session")
    assert not table.loc[code, "linked"] and table.loc[code, "source"].endswith("2024, a blog post")
    assert table.drop(index=code)["linked"].all()
    totals = frames["totals"]
    firsts = totals[totals["from_choice"].isna() & (totals["phase"] == "belief")]
    assert firsts.set_index("choice")["count"].to_dict() == belief
    assert table.loc[code, "n_belief"] == firsts["count"].sum()
    cells = totals[totals["from_choice"] == "agree"].set_index("choice")["count"].to_dict()
    assert cells == moved
    codebook = (folder / "codebook.md").read_text(encoding="utf-8")
    assert "totals.csv" in codebook and "已发表的计数" in codebook
    assert "## Published counts" in (folder / "methods.md").read_text(encoding="utf-8")


def test_shown_open_text_answers_have_a_table_and_nothing_else_does(
    app: FastAPI, client: TestClient, tmp_path: Path
) -> None:
    """A session with an open "why?": the answers the moderator showed are a table of their own
    (valid, each phone by its pseudonym), the pending and hidden ones are nowhere in the zip,
    and a public page's package, without answer-level tables, leaves the texts out too."""
    from app import package as dataset
    from app.sessions import get_session
    from tests.test_text_format import _move, _queue, _room, _vote

    code = _room(client)
    for text in ("=Emergence is real", "A mirage of metrics", "pending words", "hidden words"):
        assert _vote(app, code, text).status_code == 200
    ids = {a["text"]: a["id"] for a in _queue(client, code)["answers"]}
    _move(client, code, [ids["=Emergence is real"], ids["A mirage of metrics"]], "shown")
    _move(client, code, [ids["hidden words"]], "hidden")
    with Session(app.state.engine) as db:
        g = dataset.gather_session(db, get_session(db, code))
    folder = tmp_path / "pkg"
    files = unzip(dataset.build_zip(g, dataset.PackageOptions()), folder)
    report = frictionless.validate(str(folder / "datapackage.json"))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])
    texts = read_back(folder)["text_answers"]
    assert sorted(texts["text"]) == ["'=Emergence is real", "A mirage of metrics"]  # inert
    assert set(texts["slot"]) == {1}
    assert "text_answers.csv" in (folder / "codebook.md").read_text(encoding="utf-8")
    for name, content in files.items():
        assert b"pending words" not in content and b"hidden words" not in content, name
    public = dataset.files(g, dataset.PackageOptions(answers=False))
    assert "data/text_answers.csv" not in public
    # the cloud's words are public (the room saw them); no phone's answer is
    assert b"A mirage of metrics" not in b"".join(public.values())
