"""The dataset package of a session or a talk: a zip a reader can cite, validate and read back
without this app.

It holds ``datapackage.json`` (Frictionless Data Package v2) describing four CSV tables
(``responses``: one row per answer; ``sessions``; ``questions``; ``options``), ``CITATION.cff``,
the codebook as Markdown and as DDI-Codebook 2.5 XML (every language of the talk),
``methods.md`` and the results JSON.

The privacy rules are those of the exports (``app.export``): a phone is its per-session
pseudonym (``Participant.public_id``), nothing about the person is stored or written, and the
time of an answer is coarsened to when its phase opened unless the presenter asks for exact
times. A talk's package holds the sessions its pooled results are built from (never a
rehearsal), as its results JSON does.

Building is split in two: ``gather_*`` reads the database, ``build_zip`` only writes bytes, and
the same data give the same bytes (entries in a fixed order, dated by the data, not the clock).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import Any, NamedTuple
from xml.etree import ElementTree as ET

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from app import export, predictions, results
from app.db import ROOT
from app.errors import Invalid
from app.models import Participant, Phase, PhaseOption, PollSession, Response, SessionPhase, Talk
from app.results.gather import only_sessions
from app.sessions import session_talk

LICENCES: dict[str, dict[str, str]] = {
    "CC-BY-4.0": {
        "title": "Creative Commons Attribution 4.0 International",
        "path": "https://creativecommons.org/licenses/by/4.0/",
    },
    "CC0-1.0": {
        "title": "Creative Commons Zero v1.0 Universal (public domain dedication)",
        "path": "https://creativecommons.org/publicdomain/zero/1.0/",
    },
}
DEFAULT_LICENCE = "CC-BY-4.0"
"""Unless the presenter chooses CC0: reuse is free, with credit to the contributors."""

TIMES = ("phase", "exact")
PROFILE = "https://datapackage.org/profiles/2.0/datapackage.json"
RESOURCE_PROFILE = "https://datapackage.org/profiles/2.0/dataresource.json"
TABLE_PROFILE = "https://datapackage.org/profiles/2.0/tableschema.json"
DDI_NAMESPACE = "ddi:codebook:2_5"
SCALE_FROM = 4
"""A stance (or its revote) with at least this many options is read as an ordered scale (its
options in the talk's order, e.g. strongly disagree ... strongly agree); fewer (agree /
disagree / unsure) as unordered categories."""


def software_version() -> str:
    try:
        return metadata.version("beliefgap")
    except metadata.PackageNotFoundError:  # run from a checkout, not installed
        return "0.1.0"


class PackageError(Invalid):
    """What the presenter asked of a package cannot be given (an unknown licence, say)."""


@dataclass(frozen=True)
class PackageOptions:
    """What the presenter chooses: the licence, exact times, the names to credit, and (when the
    results are published) the page that ``CITATION.cff`` points to."""

    licence: str = DEFAULT_LICENCE
    exact_times: bool = False
    contributors: tuple[str, ...] = ()
    url: str | None = None
    answers: bool = True
    """The answer-level table (``responses``). A public page's package leaves it out: from
    each phone's answers anyone could count the small cells every page hides."""

    def __post_init__(self) -> None:
        if self.licence not in LICENCES:
            raise PackageError(
                f"unknown licence '{self.licence}' (choose {' or '.join(sorted(LICENCES))})"
            )
        for name in self.contributors:
            if not name.strip() or len(name) > 200:
                raise PackageError("a contributor's name must have 1 to 200 characters")
        if len(self.contributors) > 20:
            raise PackageError("at most 20 contributors")


@dataclass
class Gathered:
    """What a package is written from: read from the database, nothing written yet."""

    kind: str
    """``session`` or ``talk``."""
    name: str
    """The session's code or the talk's slug."""
    slug: str
    titles: dict[str, str]
    languages: list[str]
    sessions: list[dict[str, Any]]
    """One dict per session: code, venue, held_on, language, talk_version, rehearsal, ended,
    participants, n (phase id -> answers)."""
    phases: list[dict[str, Any]]
    """The codebook's phases (``export.codebook``), newest wording first, each phase once."""
    responses: list[Answer]
    results_json: dict[str, Any]
    updated: datetime
    """The latest moment in the data: the package's ``created`` and its files' dates."""
    extras: dict[str, Any] = field(default_factory=dict)
    """Further files for the package (name -> JSON-able document), e.g. predictions."""


# --------------------------------------------------------------------------- gathering


def _phase_opened(db: Session, poll: PollSession) -> dict[str, datetime | None]:
    return {
        key: opened
        for key, opened in db.exec(
            select(Phase.key, SessionPhase.opened_at)
            .join(Phase, col(Phase.id) == SessionPhase.phase_id)
            .where(SessionPhase.session_id == poll.id)
        )
    }


class Answer(NamedTuple):
    """One row of ``responses``, with the moments its ``time`` is chosen from."""

    session: str
    participant: str
    phase: str
    choice: str | None
    value: float | None
    language: str
    answered_at: datetime
    phase_opened_at: datetime | None


def _responses(db: Session, poll: PollSession) -> list[Answer]:
    """The session's answers, one query, columns only (a room of 2,000 has 8,000), by phone and
    then phase: a phone's rows sit together, so the zip compresses its pseudonym."""
    opened = _phase_opened(db, poll)
    # more columns than sqlmodel's ``select`` is typed for, so SQLAlchemy's own
    query = (
        sa_select(
            col(Participant.public_id),
            col(Phase.key),
            col(PhaseOption.key),
            col(Response.value),
            col(Response.answered_at),
        )
        .join(Phase, col(Phase.id) == Response.phase_id)
        .join(Participant, col(Participant.id) == Response.participant_id)
        .join(PhaseOption, col(PhaseOption.id) == Response.option_id, isouter=True)
        .where(col(Response.session_id) == poll.id)
        .order_by(col(Participant.public_id), col(Phase.position))
    )
    code, language = poll.code, poll.language
    return [
        Answer(code, public_id, phase, choice, value, language, answered_at, opened.get(phase))
        for public_id, phase, choice, value, answered_at in db.connection().execute(query)
    ]


def _merge_phases(books: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    phases: dict[str, dict[str, Any]] = {}
    for book in books:
        for phase in book["phases"]:
            if phase["retired"]:
                continue
            phases.setdefault(phase["id"], phase)
    return list(phases.values())


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _session_row(db: Session, poll: PollSession, rows: list[Answer]) -> dict[str, Any]:
    from app.talks import existing_versions

    talk = session_talk(db, poll)
    numbers = {v.id: v.number for v in existing_versions(db, talk)}
    n: dict[str, int] = {}
    for row in rows:
        n[row.phase] = n.get(row.phase, 0) + 1
    participants = db.exec(
        select(func.count()).select_from(Participant).where(Participant.session_id == poll.id)
    ).one()
    return {
        "code": poll.code,
        "venue": poll.venue,
        "held_on": poll.held_on.isoformat(),
        "language": poll.language,
        "talk_version": numbers.get(poll.version_id, 1),
        "rehearsal": poll.rehearsal,
        "ended": poll.ended,
        "participants": participants,
        "n": n,
    }


def _latest(polls: Sequence[PollSession], rows: Sequence[Answer]) -> datetime:
    moments = [_aware(p.created_at) for p in polls]
    moments += [_aware(p.ended_at) for p in polls if p.ended_at is not None]
    if rows:
        moments.append(_aware(max(r.answered_at for r in rows)))
    return max(moments).astimezone(UTC).replace(microsecond=0)


def _predictions(
    db: Session, polls: Sequence[PollSession], session_results: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """``predictions.json``: each session's locked prediction and amendments (with the text
    each hash is computed from) and the latest claims against its results; none, no file."""
    found = []
    for poll, figures in zip(polls, session_results, strict=True):
        record = predictions.record(poll, predictions.entries(db, poll), figures.get("gap"))
        if record is not None:
            found.append(record.model_dump(mode="json"))
    return {"predictions.json": {"sessions": found}} if found else {}


def gather_session(db: Session, poll: PollSession) -> Gathered:
    talk = session_talk(db, poll)
    rows = _responses(db, poll)
    found = results.session_results(db, poll)
    out = Gathered(
        kind="session",
        name=poll.code,
        slug=talk.slug,
        titles=dict(talk.titles),
        languages=list(talk.languages),
        sessions=[_session_row(db, poll, rows)],
        phases=_merge_phases([export.codebook(db, talk, poll.version_id)]),
        responses=rows,
        results_json=results.session_results_json(found),
        updated=_latest([poll], rows),
    )
    out.extras = _predictions(db, [poll], [out.results_json])
    return out


def gather_talk(db: Session, talk: Talk, only: Collection[str] | None = None) -> Gathered:
    """``only``: the codes of the pooled sessions to keep (a published version of the talk)."""
    pool = results.sessions_to_pool(db, talk)
    if only is not None:
        pool = only_sessions(pool, only)
    found = results.talk_results(db, talk, only=only)
    rows: list[Answer] = []
    sessions = []
    for poll in pool.polls:
        own = _responses(db, poll)
        sessions.append(_session_row(db, poll, own))
        rows.extend(own)
    versions = sorted({p.version_id for p in pool.polls}, reverse=True)
    books = [export.codebook(db, talk)] + [export.codebook(db, talk, v) for v in versions]
    out = Gathered(
        kind="talk",
        name=talk.slug,
        slug=talk.slug,
        titles=dict(talk.titles),
        languages=list(talk.languages),
        sessions=sessions,
        phases=_merge_phases(books),
        responses=rows,
        results_json=results.talk_results_json(found),
        updated=_latest(pool.polls, rows) if pool.polls else datetime(2000, 1, 1, tzinfo=UTC),
    )
    out.extras = _predictions(db, pool.polls, out.results_json["sessions"])
    return out


# --------------------------------------------------------------------------- tables


def _is_scale(phase: dict[str, Any], by_key: dict[str, dict[str, Any]]) -> bool:
    stance = by_key.get(phase.get("of") or "", phase) if phase["kind"] == "revote" else phase
    return stance["kind"] == "stance" and len(_live(stance["options"])) >= SCALE_FROM


def _live(options: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in options if not o.get("retired")]


def _label(labels: dict[str, str], lang: str) -> str:
    return results.pick(labels, lang)


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


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
    responses = _csv(
        ["session", "participant", "phase", "choice", "value", "language", "time"],
        (
            (
                r.session,
                r.participant,
                r.phase,
                r.choice or "",
                "" if r.value is None else _number(r.value),
                r.language,
                iso(r.answered_at if exact else r.phase_opened_at),
            )
            for r in g.responses
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
                s["participants"],
            ]
            + [s["n"].get(k, 0) for k in keys]
            for s in g.sessions
        ),
    )
    questions = _csv(
        ["phase", "position", "kind", "of", "holds", "min", "max", "scale"]
        + [f"question_{lang}" for lang in langs],
        (
            [
                p["id"],
                i + 1,
                p["kind"],
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
    return {
        "data/responses.csv": responses,
        "data/sessions.csv": sessions,
        "data/questions.csv": questions,
        "data/options.csv": option_rows,
    }


# --------------------------------------------------------------------------- datapackage.json


def _title(g: Gathered) -> str:
    title = _label(g.titles, g.languages[0] if g.languages else "en")
    if g.kind == "session":
        venue = g.sessions[0]["venue"] if g.sessions else ""
        return f"{title}: answers at {venue} ({g.name})"
    return f"{title}: answers of {len(g.sessions)} sessions"


def package_version(g: Gathered) -> str:
    """A session's package is 1.0.0; a talk's is raised with every session it holds (3.0.0 for
    three sessions), so a citation names the data it used."""
    return "1.0.0" if g.kind == "session" else f"{max(len(g.sessions), 1)}.0.0"


def _choice_categories(g: Gathered) -> list[dict[str, str]]:
    lang = g.languages[0] if g.languages else "en"
    seen: dict[str, str] = {}
    for phase in g.phases:
        for option in _live(phase["options"]):
            seen.setdefault(option["id"], _label(option["label"], lang))
    return [{"value": key, "label": label} for key, label in seen.items()]


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
                            "name": "participants",
                            "type": "integer",
                            "description": "phones that joined (some may not have answered)",
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
    if options.url:
        descriptor["homepage"] = options.url
    return descriptor


# --------------------------------------------------------------------------- CITATION.cff


def _yaml(text: str) -> str:
    """A YAML double-quoted scalar (a JSON string is one)."""
    return json.dumps(text, ensure_ascii=False)


def citation_cff(g: Gathered, options: PackageOptions) -> str:
    names = options.contributors or (
        f"The presenter of {_label(g.titles, g.languages[0] if g.languages else 'en')}",
    )
    lines = [
        "cff-version: 1.2.0",
        'message: "If you use this dataset, please cite it as below."',
        "type: dataset",
        f"title: {_yaml(_title(g))}",
        f"version: {_yaml(package_version(g))}",
        f"date-released: {_yaml(g.updated.date().isoformat())}",
        f"license: {options.licence}",
        "authors:",
        *[f"  - name: {_yaml(name)}" for name in names],
        f"abstract: {_yaml('Answers of a live audience poll measuring a belief gap (beliefgap).')}",
        "keywords:",
        '  - "belief gap"',
        '  - "audience poll"',
    ]
    if options.url:
        lines.append(f"url: {_yaml(options.url)}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- codebooks

CODEBOOK_WORDS = {
    "en": {
        "title": "Codebook",
        "files": "Files",
        "phase": "Phase",
        "kind": "kind",
        "options": "Options",
        "ordered": "an ordered scale",
        "range": "a number from {low} to {high}",
        "of": "refers to",
        "holds": "holding the view",
        "n": "answers",
        "columns": "Columns of responses.csv",
    },
    "zh-Hans": {
        "title": "编码手册",
        "files": "文件",
        "phase": "环节",
        "kind": "类型",
        "options": "选项",
        "ordered": "有序量表",
        "range": "{low} 到 {high} 之间的数字",
        "of": "对应",
        "holds": "持有该观点",
        "n": "回答数",
        "columns": "responses.csv 的列",
    },
}
RESPONSE_COLUMNS = {
    "session": {"en": "the session's join code", "zh-Hans": "场次的加入码"},
    "participant": {
        "en": "a random pseudonym of one phone, the same within one session only",
        "zh-Hans": "一部手机的随机代号，仅在同一场次内相同",
    },
    "phase": {"en": "the phase answered", "zh-Hans": "所回答的环节"},
    "choice": {"en": "the option chosen (empty for a number)", "zh-Hans": "所选选项（数字题为空）"},
    "value": {"en": "the number given (empty otherwise)", "zh-Hans": "填写的数字（其他为空）"},
    "language": {"en": "the session's language", "zh-Hans": "场次的语言"},
    "time": {
        "en": "when the phase opened, or when the answer was given if the presenter chose exact "
        "times (see datapackage.json)",
        "zh-Hans": "环节开启的时间；若演讲者选择了精确时间，则为作答时间（见 datapackage.json）",
    },
}


def _md(text: str) -> str:
    """Text safe in a Markdown line: no line breaks, markup characters escaped."""
    out = " ".join(str(text).split())
    for char in "\\`*_[]<>#|":
        out = out.replace(char, "\\" + char)
    return out


def codebook_md(g: Gathered) -> str:
    by_key = {p["id"]: p for p in g.phases}
    totals: dict[str, int] = {}
    for s in g.sessions:
        for k, n in s["n"].items():
            totals[k] = totals.get(k, 0) + n
    out: list[str] = []
    for lang in g.languages or ["en"]:
        words = CODEBOOK_WORDS.get(lang, CODEBOOK_WORDS["en"])
        out += [f"# {words['title']}: {_md(_label(g.titles, lang))}", ""]
        out += [f"## {words['columns']}", ""]
        for name, text in RESPONSE_COLUMNS.items():
            out.append(f"- `{name}`: {_md(_label(text, lang))}")
        out.append("")
        for phase in g.phases:
            out += [f"## {words['phase']} `{phase['id']}`", ""]
            out.append(f"{_md(_label(phase['question'], lang))}")
            out.append("")
            facts = [
                f"{words['kind']}: {phase['kind']}",
                f"{words['n']}: {totals.get(phase['id'], 0)}",
            ]
            if phase["of"]:
                facts.append(f"{words['of']}: `{phase['of']}`")
            if phase["range"]:
                low, high = phase["range"]
                facts.append(words["range"].format(low=_number(low), high=_number(high)))
            if _is_scale(phase, by_key):
                facts.append(words["ordered"])
            out += [f"- {fact}" for fact in facts]
            live = _live(phase["options"])
            if live:
                out += ["", f"{words['options']}:", ""]
                for i, option in enumerate(live, 1):
                    held = f" ({words['holds']})" if option["id"] in phase["holds"] else ""
                    label = _md(_label(option["label"], lang))
                    out.append(f"{i}. `{option['id']}`: {label}{held}")
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def _xml_text(text: str) -> str:
    return export.NOT_XML.sub("", str(text))


def codebook_ddi(g: Gathered, options: PackageOptions) -> bytes:
    """The codebook as DDI-Codebook 2.5: the study, the responses file, one variable per phase
    with its question and categories in every language, and each category's frequency."""
    ET.register_namespace("", DDI_NAMESPACE)
    ns = "{" + DDI_NAMESPACE + "}"
    xml_lang = "{http://www.w3.org/XML/1998/namespace}lang"
    langs = g.languages or ["en"]

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, ns + tag, {k: v for k, v in attrs.items()})
        if text is not None:
            element.text = _xml_text(text)
        return element

    def texts(parent: ET.Element, tag: str, labels: dict[str, str]) -> None:
        for lang in langs:
            if lang in labels:
                sub(parent, tag, labels[lang], **{xml_lang: lang})

    root = ET.Element(ns + "codeBook", {"version": "2.5", xml_lang: langs[0]})
    doc = sub(sub(root, "docDscr"), "citation")
    texts(sub(doc, "titlStmt"), "titl", g.titles)
    study = sub(root, "stdyDscr")
    citation = sub(study, "citation")
    title_statement = sub(citation, "titlStmt")
    texts(title_statement, "titl", g.titles)
    sub(title_statement, "IDNo", f"beliefgap-{g.kind}-{g.name}".lower())
    responsibility = sub(citation, "rspStmt")
    for name in options.contributors:
        sub(responsibility, "AuthEnty", name)
    sub(sub(citation, "prodStmt"), "copyright", LICENCES[options.licence]["title"])
    sub(sub(citation, "verStmt"), "version", package_version(g))
    info = sub(study, "stdyInfo")
    summary = sub(info, "sumDscr")
    for s in g.sessions:
        sub(summary, "collDate", s["held_on"], date=s["held_on"], event="single")
    sub(summary, "anlyUnit", "individual")
    method = sub(sub(study, "method"), "dataColl")
    sub(method, "collMode", "live poll on the audience's phones during a talk")
    if options.answers:
        file_description = sub(root, "fileDscr", ID="F1", URI="data/responses.csv")
        file_text = sub(file_description, "fileTxt")
        sub(file_text, "fileName", "data/responses.csv")
        dimensions = sub(file_text, "dimensns")
        sub(dimensions, "caseQnty", str(len(g.responses)))
        sub(dimensions, "varQnty", str(len(RESPONSE_COLUMNS)))
    data = sub(root, "dataDscr")
    by_key = {p["id"]: p for p in g.phases}
    frequencies: dict[tuple[str, str], int] = {}
    for row in g.responses:
        if row.choice is not None:
            key = (row.phase, row.choice)
            frequencies[key] = frequencies.get(key, 0) + 1
    for phase in g.phases:
        estimate = phase["range"] is not None
        nature = "interval" if estimate else "ordinal" if _is_scale(phase, by_key) else "nominal"
        where = {"files": "F1"} if options.answers else {}
        var = sub(data, "var", ID=f"V_{phase['id']}", name=phase["id"], nature=nature, **where)
        texts(var, "labl", phase["question"])
        texts(sub(var, "qstn"), "qstnLit", phase["question"])
        if estimate:
            low, high = phase["range"]
            valid = sub(var, "valrng")
            sub(valid, "range", min=_number(low), max=_number(high))
        for option in _live(phase["options"]):
            category = sub(var, "catgry")
            sub(category, "catValu", option["id"])
            texts(category, "labl", option["label"])
            sub(
                category,
                "catStat",
                str(frequencies.get((phase["id"], option["id"]), 0)),
                type="freq",
            )
        sub(var, "varFormat", type="numeric" if estimate else "character")
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


# --------------------------------------------------------------------------- methods.md


def methods_md(g: Gathered, options: PackageOptions) -> str:
    times = (
        "the moment of each answer (its last change), to the second: the presenter chose exact "
        "times"
        if options.exact_times
        else "the moment the answer's phase opened: the time of each answer is coarsened to its "
        "phase, so that no row tells when one phone answered"
    )
    scope = (
        "one session"
        if g.kind == "session"
        else f"the {len(g.sessions)} sessions the talk's pooled results are built from "
        "(rehearsals are left out)"
    )
    lines = [
        "# Methods",
        "",
        f"- Software: beliefgap {software_version()}",
        f"- Package version: {package_version(g)} (data up to {export.iso_utc(g.updated)})",
        f"- Licence: {options.licence} ({LICENCES[options.licence]['title']})",
        f"- Holds: {scope}",
        "",
        "## How the answers were collected",
        "",
        "The presenter showed a QR code; people in the room joined on their phones and answered "
        "each phase while it was open. A phone may change its answer while the phase is open; "
        "the last answer is kept. One row of `responses.csv` is one phone's answer to one phase.",
        "",
        "## Privacy",
        "",
        "Nothing about a person is stored: a phone is known only by a random pseudonym that is "
        "the same within one session and unrelated across sessions; no address, no user agent. "
        f"The `time` column holds {times}.",
        "",
        "## Predictions",
        "",
        "Where the presenter locked a prediction before a session's first question opened, "
        "`predictions.json` holds it with its amendments: each entry's `canonical` text is what "
        "its `sha256` is computed from (an amendment's names the hash of the entry before it), "
        "and `checks` sets the latest claims against the session's figures in `results.json`.",
        "",
        *(
            []
            if options.answers
            else [
                "This package was published with a public results page: it holds no "
                "answer-level table (`responses.csv`), since from each phone's answers anyone "
                "could count the small cells the pages hide. The presenter holds the full "
                "package.",
                "",
            ]
        ),
        "## The figures",
        "",
        "`results.json` holds the figures the app shows (the results JSON of its API); the "
        "methods behind them follow. Small cells of cross-tabulations are hidden there as on "
        "every page; `responses.csv` holds every answer.",
        "",
    ]
    body = (ROOT / "docs" / "methods.md").read_text(encoding="utf-8")
    return "\n".join(lines) + "\n" + body.replace("\n# ", "\n## ").lstrip()


# --------------------------------------------------------------------------- the zip


def files(g: Gathered, options: PackageOptions) -> dict[str, bytes]:
    """Every file of the package, by name, in the order the zip holds them."""
    tables = _tables(g, options)
    descriptor = _descriptor(g, options, tables)
    if not options.answers:
        del tables["data/responses.csv"]
        descriptor["resources"] = [r for r in descriptor["resources"] if r["name"] != "responses"]
    out = {
        "datapackage.json": (json.dumps(descriptor, ensure_ascii=False, indent=2) + "\n").encode(),
        "CITATION.cff": citation_cff(g, options).encode(),
        "codebook.md": codebook_md(g).encode(),
        "codebook.xml": codebook_ddi(g, options),
        "methods.md": methods_md(g, options).encode(),
        "results.json": export.json_text(g.results_json).encode(),
    }
    for name, document in sorted(g.extras.items()):
        out[name] = export.json_text(document).encode()
    out.update(tables)
    return out


def build_zip(g: Gathered, options: PackageOptions) -> bytes:
    """The package as zip bytes: the same data and options give the same bytes."""
    stamp = g.updated.astimezone(UTC)
    date_time = (max(stamp.year, 1980), stamp.month, stamp.day, stamp.hour, stamp.minute, 0)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name, content in files(g, options).items():
            info = zipfile.ZipInfo(name, date_time=date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, content)
    return buffer.getvalue()


def filename(g: Gathered) -> str:
    return f"beliefgap-{g.kind}-{g.name}-{package_version(g)}.zip".lower()


def session_package(db: Session, poll: PollSession, options: PackageOptions) -> tuple[str, bytes]:
    g = gather_session(db, poll)
    return filename(g), build_zip(g, options)


def talk_package(db: Session, talk: Talk, options: PackageOptions) -> tuple[str, bytes]:
    g = gather_talk(db, talk)
    return filename(g), build_zip(g, options)
