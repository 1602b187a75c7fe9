"""Everything the bundled talks put out, byte for byte as recorded in tests/golden/.

A fixed room per talk (two sessions each, so the talk pools them; the emergence talk pools
them with its published polls, an unlinked session the app loads at start) runs through the
real app: sessions created and phases opened, closed and revealed through the API, every person
a client of their own answering through the public vote API. Then every output is read back: the
sessions' and the talk's results JSON, the results pages, every chart as SVG (and as PNG), the
CSV exports (plain and for Excel) and JSON exports, the codebooks, the printable reports, and
the projector's page and a phone's page with each phase revealed. The results JSON is stored
indented (the same document, in lines a diff can show).

Session codes are drawn at random by the app; here they are fixed (``EMRGA2`` and
``EMRGB3``, ``SCXPA2`` and ``SCXPB3``, in the order the sessions are created), since they also
shape the QR codes and the forest chart's labels. Compared byte for byte after normalising only
what is drawn at random or by the clock:

- participants' public ids (``P-1``, ``P-2``, ... in the order each output first names them);
- the serial number in a chart's element ids (``gap-en-c589-t``: a counter of the charts the
  process has drawn; renumbered ``cid-1``, ``cid-2``, ... in the order each output first names
  them);
- timestamps (ISO 8601 date-times, ``<time>``) and the date of the day an export was made
  (``<today>``).

PNG charts are stored as SHA-256 hashes (``png.sha256``), compared where the PNGs are drawn as
they were recorded: the file's first line names the resvg version and the font it drew with (the
first of the app's PNG fonts installed). Elsewhere each PNG must only decode; the SVG it is drawn
from is compared in full everywhere.

Regenerate after an intended change of output, then read the diff of tests/golden/:

    BELIEFGAP_REGEN_GOLDEN=1 pytest tests/test_golden.py
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.metadata
import itertools
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app import export, sessions
from app.live import RecordingPublisher
from app.main import create_app
from app.settings import Settings
from tests.conftest import AUTH, log_in, phase_action

GOLDEN = Path(__file__).resolve().parent / "golden"
REGEN = os.environ.get("BELIEFGAP_REGEN_GOLDEN") == "1"
PNG_HASHES = "png.sha256"
CODES = {"emergence": ["EMRGA2", "EMRGB3"], "emergence-scale": ["SCXPA2", "SCXPB3"]}


@dataclass(frozen=True)
class Room:
    """One session of a talk: where and when, in which language, and who answered what (one
    tuple per person, in the order of the talk's phases; None: no answer to that phase)."""

    venue: str
    held_on: str
    language: str
    people: list[tuple[str | float | None, ...]]


def _people(
    definitions: list[str], beliefs: list[str], fields: list[str | float], revotes: list[str]
) -> list[tuple[str | float | None, ...]]:
    """People answering every phase up to the revote, which only the first ``len(revotes)``
    answer."""
    out: list[tuple[str | float | None, ...]] = []
    for index, belief in enumerate(beliefs):
        revote = revotes[index] if index < len(revotes) else None
        out.append((definitions[index % len(definitions)], belief, fields[index], revote))
    return out


DEFINITIONS = ["d1", "d1", "d4", "d1", "d3", "d1", "d4", "other", "d1", "d2", "d4", "d1"]

EMERGENCE = [
    Room(
        "Copenhagen",
        "2025-05-12",
        "en",
        _people(
            DEFINITIONS,
            ["agree"] * 12 + ["disagree"] * 5 + ["unsure"] * 13,
            ["agree"] * 9 + ["unsure"] * 3 + ["agree", "disagree"] * 5 + ["agree"] * 10,
            ["agree"] * 2 + ["unsure"] * 8 + ["disagree"] * 2 + ["disagree"] * 5 + ["agree"] * 4,
        ),
    ),
    Room(
        "上海",
        "2025-06-03",
        "zh-Hans",
        _people(
            DEFINITIONS[::-1],
            ["agree"] * 8 + ["disagree"] * 6 + ["unsure"] * 8,
            ["agree"] * 14 + ["disagree"] * 2 + ["unsure"] * 6,
            ["unsure"] * 5 + ["agree"] * 3 + ["disagree"] * 6 + ["unsure"] * 4,
        ),
    ),
]

SCALE = ["strongly_disagree", "disagree", "neutral", "agree", "strongly_agree"]

EMERGENCE_SCALE = [
    Room(
        "Edinburgh",
        "2025-07-21",
        "en",
        _people(
            DEFINITIONS,
            [SCALE[(i * 3) % 5] for i in range(14)] + ["agree"] * 10 + ["strongly_agree"] * 4,
            [float(v) for v in (70, 85, 55, 90, 60, 75, 80, 95, 40, 65, 50, 88, 72, 77)] * 2,
            [SCALE[(i * 2 + 1) % 5] for i in range(20)],
        ),
    ),
    Room(
        "北京",
        "2025-08-30",
        "zh-Hans",
        _people(
            DEFINITIONS[3:],
            ["agree"] * 7 + ["neutral"] * 6 + ["disagree"] * 5 + ["strongly_agree"] * 4,
            [float(v) for v in (62, 81, 45.5, 90, 70, 33, 58, 99, 76, 64, 50)] * 2,
            ["neutral"] * 6 + ["agree"] * 8 + ["strongly_disagree"] * 2,
        ),
    ),
]

NEXT_CODES: list[str] = []
"""The codes the app draws next (``golden_app``)."""

TALKS = {"emergence": EMERGENCE, "emergence-scale": EMERGENCE_SCALE}


@dataclass
class Outputs:
    """What one talk's run put out, by file name under tests/golden/<talk>/."""

    codes: list[str] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)
    pngs: dict[str, str] = field(default_factory=dict)


def _get(client: TestClient, url: str) -> bytes:
    response = client.get(url, headers=AUTH)
    assert response.status_code == 200, f"{url}: {response.status_code} {response.text[:300]}"
    return response.content


def _answer(client: TestClient, code: str, phase: str, answer: str | float) -> None:
    body = {"phase": phase, "value": answer} if isinstance(answer, float) else {"phase": phase}
    if isinstance(answer, str):
        body["choice"] = answer
    response = client.post(f"/api/v1/sessions/{code}/votes", json=body)
    assert response.status_code == 200, response.text


def _run_room(app: FastAPI, presenter: TestClient, talk: str, room: Room, out: Outputs) -> str:
    """The room's session, run phase by phase: open, everyone answers, close, reveal; after
    each reveal, the projector's page and the first phone's page as the room sees them."""
    body = {"talk": talk, "venue": room.venue, "held_on": room.held_on, "language": room.language}
    created = presenter.post("/api/v1/sessions", json=body, headers=AUTH)
    assert created.status_code == 201, created.text
    code = str(created.json()["code"])
    out.codes.append(code)
    assert code == CODES[talk][len(out.codes) - 1], code
    name = f"session-{len(out.codes)}"
    phases = [p["id"] for p in presenter.get(f"/api/v1/talks/{talk}").json()["phases"]]
    phones = [TestClient(app) for _ in room.people]
    for position, phase in enumerate(phases):
        phase_action(presenter, code, phase, "open")
        for phone, answers in zip(phones, room.people, strict=True):
            if answers[position] is not None:
                _answer(phone, code, phase, answers[position])
        phase_action(presenter, code, phase, "close")
        phase_action(presenter, code, phase, "reveal")
        projector = _get(presenter, f"/presenter/sessions/{code}/projector")
        out.texts[f"{name}/projector-{phase}.html"] = projector.decode()
        phone = _get(phones[0], f"/j/{code}?phase={phase}")
        out.texts[f"{name}/phone-{phase}.html"] = phone.decode()
    for phone in phones:
        phone.close()
    return code


PUBLISHED = {"emergence": "RGRS24"}
"""The bundled talks' published polls, loaded at start as unlinked sessions with these codes
(``app/talks/published/``): they pool with the rooms, and their own outputs are recorded under
``published/``."""


def _read_outputs(client: TestClient, talk: str, out: Outputs) -> None:
    named = [(f"session-{number}", code) for number, code in enumerate(out.codes, start=1)]
    if talk in PUBLISHED:
        named.append(("published", PUBLISHED[talk]))
    for name, code in named:
        api = f"/api/v1/sessions/{code}"
        results = json.loads(_get(client, f"{api}/results"))
        out.texts[f"{name}/results.json"] = json.dumps(results, ensure_ascii=False, indent=2)
        out.texts[f"{name}/results.html"] = _get(
            client, f"/presenter/sessions/{code}/results"
        ).decode()
        out.texts[f"{name}/report.html"] = _get(
            client, f"/presenter/sessions/{code}/report.html"
        ).decode()
        out.texts[f"{name}/export.csv"] = _get(client, f"{api}/export.csv").decode()
        out.texts[f"{name}/export-excel.csv"] = _get(client, f"{api}/export.csv?bom=1").decode()
        out.texts[f"{name}/export.json"] = _get(client, f"{api}/export.json").decode()
        out.texts[f"{name}/codebook.json"] = _get(client, f"{api}/codebook.json").decode()
        _read_charts(client, api, results_charts(client, api), name, out)
    api = f"/api/v1/talks/{talk}"
    results = json.loads(_get(client, f"{api}/results"))
    out.texts["talk/results.json"] = json.dumps(results, ensure_ascii=False, indent=2)
    out.texts["talk/results.html"] = _get(client, f"/presenter/talks/{talk}/results").decode()
    out.texts["talk/report.html"] = _get(client, f"/presenter/talks/{talk}/report.html").decode()
    out.texts["talk/export.csv"] = _get(client, f"{api}/export.csv").decode()
    out.texts["talk/export-excel.csv"] = _get(client, f"{api}/export.csv?bom=1").decode()
    out.texts["talk/export.json"] = _get(client, f"{api}/export.json").decode()
    out.texts["talk/codebook.json"] = _get(client, f"{api}/codebook.json").decode()
    _read_charts(client, api, results_charts(client, api), "talk", out)


def results_charts(client: TestClient, api: str) -> list[str]:
    """The names of the charts there are (the 404 of an unknown chart lists them)."""
    response = client.get(f"{api}/charts/none.svg", headers=AUTH)
    assert response.status_code == 404, response.text
    listed = re.search(r"\(charts: ([^)]*)\)", response.text)
    assert listed is not None, response.text
    return listed.group(1).split(", ")


def _read_charts(client: TestClient, api: str, names: list[str], prefix: str, out: Outputs) -> None:
    for chart in names:
        out.texts[f"{prefix}/charts/{chart}.svg"] = _get(
            client, f"{api}/charts/{chart}.svg"
        ).decode()
        png = _get(client, f"{api}/charts/{chart}.png")
        assert png.startswith(b"\x89PNG\r\n\x1a\n"), chart
        out.pngs[f"{prefix}/charts/{chart}.png"] = hashlib.sha256(png).hexdigest()


TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)?")
PUBLIC_ID = re.compile(r"\b[0-9a-f]{12}\b")
CHART_UID = re.compile(r"(?<=-)c[0-9]+(?=-)")


def normalise(text: str) -> str:
    """The output with what is random or the clock's replaced by placeholders (module
    docstring)."""
    text = TIMESTAMP.sub("<time>", text)
    text = text.replace(datetime.now(UTC).date().isoformat(), "<today>")
    charts: dict[str, str] = {}
    text = CHART_UID.sub(lambda m: charts.setdefault(m.group(0), f"cid-{len(charts) + 1}"), text)
    seen: dict[str, str] = {}
    return PUBLIC_ID.sub(lambda m: seen.setdefault(m.group(0), f"P-{len(seen) + 1}"), text)


@pytest.fixture(scope="module")
def golden_app(module_settings: Settings) -> Iterator[FastAPI]:
    """The app as a new server starts it: with the bundled talks' published polls."""
    settings = module_settings.model_copy(update={"published_polls": True})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sessions, "new_code", lambda: NEXT_CODES.pop(0))
        yield create_app(settings, publisher=RecordingPublisher())


@pytest.fixture(scope="module")
def presenter(golden_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(golden_app) as client:
        log_in(client)
        yield client


def png_renderer() -> str:
    """The first line of ``png.sha256``: what drew the PNGs (the same SVG comes out the same
    only with the same resvg and the same font)."""
    font = export.installed_png_font() or "sans-serif"
    return f"# resvg_py {importlib.metadata.version('resvg_py')}, font {font}\n"


def _png_names(hashes: bytes) -> bytes:
    """``png.sha256`` without its renderer line and its hashes."""
    return b"\n".join(line.split(b"  ")[-1] for line in hashes.splitlines()[1:])


def _recorded(talk: str) -> dict[str, bytes]:
    folder = GOLDEN / talk
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize("talk", sorted(TALKS))
def test_the_bundled_talks_put_out_what_was_recorded(
    talk: str, golden_app: FastAPI, presenter: TestClient
) -> None:
    out = Outputs()
    NEXT_CODES[:] = CODES[talk]
    for room in TALKS[talk]:
        _run_room(golden_app, presenter, talk, room, out)
    _read_outputs(presenter, talk, out)
    produced = {name: normalise(text).encode() for name, text in out.texts.items()}
    hashes = "".join(f"{digest}  {name}\n" for name, digest in sorted(out.pngs.items()))
    produced[PNG_HASHES] = (png_renderer() + hashes).encode()
    if REGEN:
        folder = GOLDEN / talk
        for stale in set(_recorded(talk)) - set(produced):
            (folder / stale).unlink()
        for name, content in produced.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(content)
    recorded = _recorded(talk)
    drawn_by = recorded.get(PNG_HASHES, b"").decode().partition("\n")[0] + "\n"
    if PNG_HASHES in recorded and drawn_by != png_renderer():
        # another renderer or font: the same PNG names, hashes not compared
        recorded[PNG_HASHES] = _png_names(recorded[PNG_HASHES])
        produced[PNG_HASHES] = _png_names(produced[PNG_HASHES])
    assert sorted(produced) == sorted(recorded), (
        "outputs added or gone; regenerate: BELIEFGAP_REGEN_GOLDEN=1 pytest tests/test_golden.py"
    )
    changed = [name for name in sorted(produced) if produced[name] != recorded[name]]
    first = (
        "".join(
            itertools.islice(
                difflib.unified_diff(
                    recorded[changed[0]].decode(errors="replace").splitlines(keepends=True),
                    produced[changed[0]].decode(errors="replace").splitlines(keepends=True),
                    f"recorded {changed[0]}",
                    f"produced {changed[0]}",
                ),
                40,
            )
        )
        if changed
        else ""
    )
    assert not changed, f"changed outputs of {talk}: {changed}; the first:\n{first}"
