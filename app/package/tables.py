"""The package's CSV tables (``responses``, ``sessions``, ``questions``, ``options``) and the
Data Package v2 descriptor (``datapackage.json``) that types them."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from app import export, formats
from app.formats.base import DataColumn
from app.i18n import translate
from app.package.base import (
    LICENCES,
    PROFILE,
    RESOURCE_PROFILE,
    TABLE_PROFILE,
    Gathered,
    PackageOptions,
    _is_scale,
    _label,
    _live,
    _number,
    _title,
    answer_of,
    names_formats,
    own_cells,
    own_columns,
    package_version,
    software_version,
)


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]], typed: bool = False) -> bytes:
    """A CSV table. Text typed by people (venues, questions, labels) is made inert in
    spreadsheets as in the exports; ``typed``: every cell is a code, a number or a time (the
    responses), written as it is."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    if typed:
        writer.writerows(rows)
    else:
        for row in rows:
            writer.writerow(["" if cell is None else export.neutralize(cell) for cell in row])
    return buffer.getvalue().encode("utf-8")


class _Times:
    """``export.iso_utc`` remembered: 80,000 answers hold far fewer distinct seconds."""

    def __init__(self) -> None:
        self.seen: dict[datetime, str] = {}

    def __call__(self, moment: datetime | None) -> str:
        if moment is None:
            return ""
        text = self.seen.get(moment)
        if text is None:
            text = self.seen[moment] = export.iso_utc(moment)
        return text


def _tables(g: Gathered, options: PackageOptions) -> dict[str, bytes]:
    langs = g.languages
    by_key = {p["id"]: p for p in g.phases}
    iso = _Times()
    exact = options.exact_times
    own = [c.name for c in own_columns(g)]
    responses = _csv(
        ["session", "participant", "phase", "choice", "value", *own, "language", "time"],
        (
            (
                r.session,
                r.participant,
                r.phase,
                r.choice or "",
                "" if r.value is None else _number(r.value),
                *[cells.get(name, "") for name in own],
                r.language,
                iso(r.answered_at if exact else r.phase_opened_at),
            )
            for r, cells in zip(g.responses, own_cells(g), strict=True)
        ),
        typed=True,
    )
    keys = [p["id"] for p in g.phases]
    sessions = _csv(
        [
            "session",
            "venue",
            "held_on",
            "language",
            "talk_version",
            "rehearsal",
            "ended",
            "linked",
            "source",
            "participants",
        ]
        + [f"n_{k}" for k in keys],
        (
            [
                s["code"],
                s["venue"],
                s["held_on"],
                s["language"],
                s["talk_version"],
                str(s["rehearsal"]).lower(),
                str(s["ended"]).lower(),
                str(s["linked"]).lower(),
                s["source"],
                s["participants"],
            ]
            + [s["n"].get(k, 0) for k in keys]
            for s in g.sessions
        ),
    )
    named = names_formats(g)
    questions = _csv(
        ["phase", "position", "kind", *(["answer"] if named else []), "of", "holds"]
        + ["min", "max", "scale"]
        + [f"question_{lang}" for lang in langs],
        (
            [
                p["id"],
                i + 1,
                p["kind"],
                *([answer_of(p)] if named else []),
                p["of"],
                " ".join(p["holds"]),
                _number(p["range"][0]) if p["range"] else None,
                _number(p["range"][1]) if p["range"] else None,
                str(_is_scale(p, by_key)).lower(),
            ]
            + [p["question"].get(lang, "") for lang in langs]
            for i, p in enumerate(g.phases)
        ),
    )
    option_rows = _csv(
        ["phase", "option", "position"] + [f"label_{lang}" for lang in langs],
        (
            [p["id"], o["id"], i + 1] + [o["label"].get(lang, "") for lang in langs]
            for p in g.phases
            for i, o in enumerate(_live(p["options"]))
        ),
    )
    out = {
        "data/responses.csv": responses,
        "data/sessions.csv": sessions,
        "data/questions.csv": questions,
        "data/options.csv": option_rows,
    }
    if g.texts:
        out["data/text_answers.csv"] = _csv(
            ["session", "participant", "phase", "slot", "text"],
            # written by people: made inert in spreadsheets, as every typed text is
            ([t.session, t.participant, t.phase, t.slot, t.text] for t in g.texts),
        )
    if g.totals:
        out["data/totals.csv"] = _csv(
            ["session", "phase", "from_choice", "choice", "count"],
            ([t.session, t.phase, t.from_choice, t.choice, t.n] for t in g.totals),
            typed=True,
        )
    return out


# --------------------------------------------------------------------------- datapackage.json


def _choice_categories(g: Gathered) -> list[dict[str, str]]:
    lang = g.languages[0] if g.languages else "en"
    seen: dict[str, str] = {}
    for phase in g.phases:
        for option in _live(phase["options"]):
            seen.setdefault(option["id"], _label(option["label"], lang))
    return [{"value": key, "label": label} for key, label in seen.items()]


def _own_field(column: DataColumn, lang: str) -> dict[str, Any]:
    """A column an answer format adds to ``responses`` (``own_columns``), as a field."""
    field: dict[str, Any] = {"name": column.name, "type": column.type}
    if column.categories:
        field["categories"] = [
            {"value": value, "label": _label(dict(labels), lang)}
            for value, labels in column.categories
        ]
    field["description"] = _label(dict(column.description), lang)
    return field


def _answer_field(lang: str) -> dict[str, Any]:
    """``questions``' ``answer``: how the phase was answered (when a phase has a format beyond
    an option and a number)."""
    return {
        "name": "answer",
        "type": "string",
        "categories": [
            {"value": f.name, "label": translate(lang, f"ed_answer_{f.name}")}
            for f in formats.FORMATS
        ],
        "description": "how the phase was answered (its answer format)",
    }


def _descriptor(g: Gathered, options: PackageOptions, files: dict[str, bytes]) -> dict[str, Any]:
    lang = g.languages[0] if g.languages else "en"
    phase_categories = [{"value": p["id"], "label": _label(p["question"], lang)} for p in g.phases]
    languages = sorted({s["language"] for s in g.sessions} | set(g.languages))
    language_field = {
        "name": "language",
        "type": "string",
        "categories": languages,
        "description": "the session's language (what its phones were shown first)",
    }
    keys = [p["id"] for p in g.phases]
    time_description = (
        "when the answer was given (its last change), ISO 8601 UTC, to the second"
        if options.exact_times
        else "when the answer's phase opened, ISO 8601 UTC: answer times are coarsened to their "
        "phase, so that no row tells when one phone answered"
    )

    def resource(name: str, path: str, description: str, schema: dict[str, Any]) -> dict:
        return {
            "$schema": RESOURCE_PROFILE,
            "name": name,
            "path": path,
            "type": "table",
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8",
            "hash": "sha256:" + hashlib.sha256(files[path]).hexdigest(),
            "bytes": len(files[path]),
            "description": description,
            "schema": {"$schema": TABLE_PROFILE, "missingValues": [""], **schema},
        }

    licence = LICENCES[options.licence]
    contributors = [{"title": name, "roles": ["creator"]} for name in options.contributors]
    contributors.append({"title": f"beliefgap {software_version()}", "roles": ["software"]})
    descriptor: dict[str, Any] = {
        "$schema": PROFILE,
        "name": f"beliefgap-{g.kind}-{g.name}".lower(),
        "title": _title(g),
        "description": (
            "Answers of a live audience poll measuring a belief gap: what the room believes, "
            "what it thinks the field believes, and how views moved after the talk. "
            "See methods.md and codebook.md."
        ),
        "version": package_version(g),
        "created": export.iso_utc(g.updated),
        "licenses": [{"name": options.licence, "path": licence["path"], "title": licence["title"]}],
        "contributors": contributors,
        "keywords": ["belief gap", "audience poll", "pluralistic ignorance", g.slug],
        "resources": [
            resource(
                "responses",
                "data/responses.csv",
                "one row per answer: a phone's (last) answer to one phase of one session",
                {
                    "fields": [
                        {
                            "name": "session",
                            "type": "string",
                            "description": "the session's join code",
                        },
                        {
                            "name": "participant",
                            "type": "string",
                            "description": "a random pseudonym of one phone, the same within "
                            "one session only",
                            "constraints": {"pattern": "[0-9a-f]{12}"},
                        },
                        {
                            "name": "phase",
                            "type": "string",
                            "categories": phase_categories,
                            "description": "the phase (question) answered (see questions)",
                        },
                        {
                            "name": "choice",
                            "type": "string",
                            "categories": _choice_categories(g),
                            "description": "the option chosen, empty for a number answer; its "
                            "label and order per phase are in options",
                        },
                        {
                            "name": "value",
                            "type": "number",
                            "description": "the number given in an estimate phase (0-100), "
                            "empty otherwise",
                        },
                        *[_own_field(column, lang) for column in own_columns(g)],
                        language_field,
                        {"name": "time", "type": "datetime", "description": time_description},
                    ],
                    "primaryKey": ["session", "participant", "phase"],
                    "foreignKeys": [
                        {
                            "fields": ["session"],
                            "reference": {"resource": "sessions", "fields": ["session"]},
                        },
                        {
                            "fields": ["phase"],
                            "reference": {"resource": "questions", "fields": ["phase"]},
                        },
                    ],
                },
            ),
            resource(
                "sessions",
                "data/sessions.csv",
                "one row per session: where and when, and how many answered each phase",
                {
                    "fields": [
                        {"name": "session", "type": "string", "description": "join code"},
                        {
                            "name": "venue",
                            "type": "string",
                            "description": "as the presenter typed it (a leading = + - @ is "
                            "prefixed with an apostrophe, for spreadsheets)",
                        },
                        {"name": "held_on", "type": "date"},
                        language_field,
                        {
                            "name": "talk_version",
                            "type": "integer",
                            "description": "the version of the talk's questions the session asked",
                        },
                        {"name": "rehearsal", "type": "boolean"},
                        {"name": "ended", "type": "boolean"},
                        {
                            "name": "linked",
                            "type": "boolean",
                            "description": "true: a room of phones, each answer a row of "
                            "responses; false: counts published elsewhere (see source), in totals",
                        },
                        {
                            "name": "source",
                            "type": "string",
                            "description": "where a session's published counts come from",
                        },
                        {
                            "name": "participants",
                            "type": "integer",
                            "description": "phones that joined (some may not have answered); "
                            "empty for published counts",
                        },
                    ]
                    + [
                        {
                            "name": f"n_{k}",
                            "type": "integer",
                            "description": f"answers to phase {k}",
                        }
                        for k in keys
                    ],
                    "primaryKey": ["session"],
                },
            ),
            resource(
                "questions",
                "data/questions.csv",
                "one row per phase, its wording in every language of the talk",
                {
                    "fields": [
                        {"name": "phase", "type": "string"},
                        {"name": "position", "type": "integer"},
                        {
                            "name": "kind",
                            "type": "string",
                            "categories": [
                                {"value": "choice", "label": "a multiple choice"},
                                {"value": "stance", "label": "the room's own view"},
                                {
                                    "value": "perceived",
                                    "label": "what the field is thought to hold",
                                },
                                {
                                    "value": "revote",
                                    "label": "the stance asked again after the talk",
                                },
                            ],
                        },
                        *([_answer_field(lang)] if names_formats(g) else []),
                        {
                            "name": "of",
                            "type": "string",
                            "description": "for perceived and revote: the stance phase",
                        },
                        {
                            "name": "holds",
                            "type": "string",
                            "description": "the stance's options that hold the view (space "
                            "separated)",
                        },
                        {"name": "min", "type": "number"},
                        {"name": "max", "type": "number"},
                        {
                            "name": "scale",
                            "type": "boolean",
                            "description": "the options are an ordered scale (in options' "
                            "position order)",
                        },
                    ]
                    + [{"name": f"question_{lang}", "type": "string"} for lang in g.languages],
                    "primaryKey": ["phase"],
                },
            ),
            resource(
                "options",
                "data/options.csv",
                "one row per option of a phase, in the order phones saw them",
                {
                    "fields": [
                        {"name": "phase", "type": "string"},
                        {"name": "option", "type": "string"},
                        {"name": "position", "type": "integer"},
                    ]
                    + [{"name": f"label_{lang}", "type": "string"} for lang in g.languages],
                    "primaryKey": ["phase", "option"],
                    "foreignKeys": [
                        {
                            "fields": ["phase"],
                            "reference": {"resource": "questions", "fields": ["phase"]},
                        }
                    ],
                },
            ),
        ],
    }
    if g.texts:
        descriptor["resources"].append(
            resource(
                "text_answers",
                "data/text_answers.csv",
                "the open-text answers the presenter or a moderator showed to the room (pending "
                "and hidden answers are never in a package)",
                {
                    "fields": [
                        {"name": "session", "type": "string"},
                        {
                            "name": "participant",
                            "type": "string",
                            "description": "the per-session pseudonym, as in responses",
                        },
                        {"name": "phase", "type": "string", "categories": phase_categories},
                        {
                            "name": "slot",
                            "type": "integer",
                            "constraints": {"minimum": 1, "maximum": 3},
                            "description": "which of the phone's answers to the phase",
                        },
                        {"name": "text", "type": "string", "description": "as shown"},
                    ],
                    "primaryKey": ["session", "participant", "phase", "slot"],
                    "foreignKeys": [
                        {
                            "fields": ["session"],
                            "reference": {"resource": "sessions", "fields": ["session"]},
                        },
                        {
                            "fields": ["phase"],
                            "reference": {"resource": "questions", "fields": ["phase"]},
                        },
                    ],
                },
            )
        )
    if g.totals:
        descriptor["resources"].append(
            resource(
                "totals",
                "data/totals.csv",
                "the published counts of the sessions that are not linked: totals per option "
                "of a phase, and the revote's cells that were published",
                {
                    "fields": [
                        {"name": "session", "type": "string"},
                        {"name": "phase", "type": "string", "categories": phase_categories},
                        {
                            "name": "from_choice",
                            "type": "string",
                            "categories": _choice_categories(g),
                            "description": "empty: a total of the phase; else a revote's cell, "
                            "of those whose first answer was this option",
                        },
                        {"name": "choice", "type": "string", "categories": _choice_categories(g)},
                        {
                            "name": "count",
                            "type": "integer",
                            "constraints": {"minimum": 0},
                            "description": "how many people, as published",
                        },
                    ],
                    "foreignKeys": [
                        {
                            "fields": ["session"],
                            "reference": {"resource": "sessions", "fields": ["session"]},
                        },
                        {
                            "fields": ["phase"],
                            "reference": {"resource": "questions", "fields": ["phase"]},
                        },
                    ],
                },
            )
        )
    if options.url:
        descriptor["homepage"] = options.url
    return descriptor
