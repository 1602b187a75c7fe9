"""Exports of a session's or a talk's answers: a tidy CSV (one row per response), a JSON
document, a codebook, and the functions that read an export back into what the statistics need
(so that anyone can recompute the published numbers from the files).

Text that a spreadsheet would run as a formula (a cell starting with = + - @, a tab or a carriage
return) is prefixed with an apostrophe; venue names are typed by presenters and may come from
anywhere.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment
from sqlmodel import Session, col, select

from app import charts, formats, results, stats
from app.db import ROOT
from app.errors import Invalid
from app.formats.text import TALK_BLOCKLIST
from app.models import Participant, Phase, PhaseOption, PollSession, Response, Talk
from app.published import Published, published_counts
from app.sessions import session_phases, session_talk
from app.talks import current_version

CSV_COLUMNS = ["session", "venue", "talk", "phase", "participant", "choice", "value", "answered_at"]
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
UTF8_BOM = "\ufeff"
"""Starts a CSV meant for Excel (``?bom=1``), which otherwise may read UTF-8 as a legacy code page
and garble Chinese."""


def csv_filename(stem: str, bom: bool) -> str:
    """The download name of a CSV export: the Excel variant (with a byte-order mark) gets its own
    name, so that both can sit side by side in a downloads folder."""
    return f"beliefgap-{stem}-excel.csv" if bom else f"beliefgap-{stem}.csv"


def neutralize(cell: Any) -> Any:
    """Make a text cell inert in spreadsheets; numbers pass unchanged."""
    if isinstance(cell, str) and cell.startswith(FORMULA_PREFIXES):
        return "'" + cell
    return cell


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC, to the second (answers are stored to the second; older rows may hold
    microseconds, which no export shows)."""
    if moment.tzinfo is None:  # SQLite hands back naive datetimes, stored as UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def response_rows(db: Session, poll: PollSession) -> Iterator[dict[str, Any]]:
    """One dict per stored response, in talk order, then by time of answer."""
    talk = session_talk(db, poll)
    query = (
        select(Response, Phase, PhaseOption, Participant.public_id)
        .join(Phase, col(Phase.id) == Response.phase_id)
        .join(Participant, col(Participant.id) == Response.participant_id)
        .join(PhaseOption, col(PhaseOption.id) == Response.option_id, isouter=True)
        .where(Response.session_id == poll.id)
        .order_by(col(Phase.position), col(Response.answered_at), col(Response.id))
    )
    for response, phase, option, public_id in db.exec(query):
        yield {
            "session": poll.code,
            "venue": poll.venue,
            "talk": talk.slug,
            "phase": phase.key,
            "participant": public_id,
            "choice": option.key if option is not None else None,
            "value": response.value,
            "answered_at": iso_utc(response.answered_at),
            **_own_cells(phase, response.payload),
        }


def _own_cells(phase: Phase, payload: Any) -> dict[str, Any]:
    """The cells a format that summarises its own answers adds to a row (a ranking's ranks)."""
    if payload is None or not formats.by_name(phase.answer).own_results:
        return {}
    return formats.summarising(phase.answer).csv_cells(payload)


def csv_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """CSV text, a line at a time, header first: ``CSV_COLUMNS``, then the columns of answer
    formats of their own (a ranking's ``rank_1``...) in the order the rows first name them."""
    rows = list(rows)
    extra = dict.fromkeys(key for row in rows for key in row if key not in CSV_COLUMNS)
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=[*CSV_COLUMNS, *extra], restval="", lineterminator="\r\n"
    )
    writer.writeheader()
    yield buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow({key: neutralize(value) for key, value in row.items()})
        yield buffer.getvalue()


def session_document(db: Session, poll: PollSession) -> dict[str, Any]:
    """The session, its talk (every language), its phases with their state, and its responses."""
    talk = session_talk(db, poll)
    published: dict[str, Any] = {}
    if poll.unlinked:  # totals, not people: no responses, and it says so
        counts = published_counts(db, poll)
        published = {
            "unlinked": True,
            "source": poll.source,
            "totals": counts.totals,
            "transitions": counts.transitions,
        }
    return {
        "session": {
            "code": poll.code,
            "venue": poll.venue,
            "held_on": poll.held_on.isoformat(),
            "language": poll.language,
            "created_at": iso_utc(poll.created_at),
            "min_cell": poll.min_cell,
            **published,
        },
        "talk": {"slug": talk.slug, "title": talk.titles, "languages": talk.languages},
        "phases": [
            {
                "id": view.key,
                "kind": view.phase.kind.value,
                "question": view.phase.questions,
                "of": view.phase.of_key,
                "holds": view.phase.holds,
                **_answer_entry(view.phase),
                "range": formats.by_name(view.phase.answer).range(
                    view.phase.min_value, view.phase.max_value
                ),
                "options": [{"id": o.key, "label": o.labels} for o in view.options],
                "state": view.effective_state.value,
                "revealed": view.state.revealed,
            }
            for view in session_phases(db, poll)
        ],
        "responses": list(response_rows(db, poll)),
    }


def _answer_entry(phase: Phase) -> dict[str, Any]:
    """A phase's answer format in exports and codebooks, for formats beyond the two that files
    from before formats imply (so those exports read as they always did). Its settings are the
    phase's own, as its talk file writes them (an open question's copy of its talk's blocklist
    stays out)."""
    if phase.answer == (formats.NUMBER if phase.min_value is not None else formats.OPTION):
        return {}
    settings = {k: v for k, v in (phase.settings or {}).items() if k != TALK_BLOCKLIST}
    entry: dict[str, Any] = {"answer": phase.answer, "settings": settings}
    if formats.by_name(phase.answer).own_results:
        entry.update(formats.summarising(phase.answer).codebook(phase))
    return entry


# --------------------------------------------------------------------------- talks


def talk_sessions(db: Session, talk: Talk) -> list[PollSession]:
    return list(
        db.exec(
            select(PollSession)
            .where(PollSession.talk_id == talk.id)
            .order_by(col(PollSession.held_on), col(PollSession.id))
        )
    )


def talk_rows(db: Session, talk: Talk) -> Iterator[dict[str, Any]]:
    """Every response of every session of a talk (one row each, the session's columns)."""
    for poll in talk_sessions(db, talk):
        yield from response_rows(db, poll)


def talk_document(db: Session, talk: Talk) -> dict[str, Any]:
    """The talk (every language) and each of its sessions as in ``session_document``."""
    return {
        "talk": {"slug": talk.slug, "title": talk.titles, "languages": talk.languages},
        "sessions": [session_document(db, poll) for poll in talk_sessions(db, talk)],
    }


COLUMN_DESCRIPTIONS = {
    "session": "the session's join code",
    "venue": "where the session was held, as the presenter typed it",
    "talk": "the talk's slug",
    "phase": "the phase id (see phases)",
    "participant": "an anonymous random id, the same for one phone throughout one session only",
    "choice": "the option id chosen (empty for a % estimate phase)",
    "value": "the number given in a % estimate phase (empty otherwise)",
    "answered_at": "when the (last) answer was given, ISO 8601 UTC, to the second",
}


def codebook(db: Session, talk: Talk, version_id: int | None = None) -> dict[str, Any]:
    """What every column, phase and option id of the exports means, in every language: for a
    session, as its talk version (``version_id``) has it; else as the talk's current version."""
    if version_id is None:
        version_id = current_version(db, talk).id
    phases = db.exec(
        select(Phase).where(Phase.version_id == version_id).order_by(col(Phase.position))
    ).all()
    options: dict[int, list[PhaseOption]] = {p.id: [] for p in phases if p.id is not None}
    for option in db.exec(
        select(PhaseOption)
        .where(col(PhaseOption.phase_id).in_(list(options)))
        .order_by(col(PhaseOption.position))
    ):
        options[option.phase_id].append(option)
    return {
        "talk": {"slug": talk.slug, "title": talk.titles, "languages": talk.languages},
        "columns": COLUMN_DESCRIPTIONS,
        "phases": [
            {
                "id": phase.key,
                "kind": phase.kind.value,
                "question": phase.questions,
                "of": phase.of_key,
                "holds": phase.holds,
                **_answer_entry(phase),
                "range": formats.by_name(phase.answer).range(phase.min_value, phase.max_value),
                "retired": phase.retired,
                "options": [
                    {"id": o.key, "label": o.labels, "retired": o.retired}
                    for o in options[phase.id or 0]
                ],
            }
            for phase in phases
        ],
    }


def talk_codebook(db: Session, talk: Talk) -> dict[str, Any]:
    """The talk's codebook (``codebook``) and, when it has any, its unlinked sessions with their
    published counts under ``"unlinked_sessions"``: the talk's CSV has one row per answer, so
    they are not in it, and the codebook that goes with it says so and carries them
    (``read_csv`` reads them back)."""
    book = codebook(db, talk)
    published = []
    for poll in talk_sessions(db, talk):
        if not poll.unlinked:
            continue
        counts = published_counts(db, poll)
        published.append(
            {
                "code": poll.code,
                "venue": poll.venue,
                "held_on": poll.held_on.isoformat(),
                "rehearsal": poll.rehearsal,
                "source": poll.source,
                "totals": counts.totals,
                "transitions": counts.transitions,
            }
        )
    if published:
        book["unlinked_sessions"] = published
        book["unlinked_note"] = (
            "published totals per phase, not answers of people: not rows of export.csv; "
            "nobody's answers to two phases are linked"
        )
    return book


# --------------------------------------------------------------------------- reading back


def _phase_info(raw: dict[str, Any]) -> results.PhaseInfo:
    value_range = raw.get("range")
    live_options = [o for o in raw.get("options", []) if not o.get("retired")]
    return results.PhaseInfo(
        spec=stats.PhaseSpec(
            key=raw["id"],
            kind=raw["kind"],
            options=tuple(o["id"] for o in live_options),
            of_key=raw.get("of"),
            holds=tuple(raw.get("holds") or ()),
            min_value=value_range[0] if value_range else None,
            max_value=value_range[1] if value_range else None,
            answer=raw.get("answer") or (formats.NUMBER if value_range else formats.OPTION),
        ),
        questions=dict(raw.get("question") or {}),
        option_labels={o["id"]: dict(o["label"]) for o in live_options},
        state=raw.get("state", "closed"),
        revealed=bool(raw.get("revealed", False)),
    )


def _answers_from_rows(
    rows: Iterable[dict[str, Any]], infos: Iterable[results.PhaseInfo] = ()
) -> dict[str, dict[str, Any]]:
    """Each phase's answers by participant, from an export's rows; ``infos`` name the phases
    whose formats read their own cells (a ranking's ``rank_1``...)."""
    own = {
        i.spec.key: formats.summarising(i.spec.answer)
        for i in infos
        if formats.by_name(i.spec.answer).own_results
    }
    answers: dict[str, dict[str, Any]] = {}
    for row in rows:
        choice, value = row.get("choice"), row.get("value")
        answer: Any = choice if choice not in (None, "") else None
        if answer is None and value not in (None, ""):
            answer = float(value)
        if answer is None and row.get("phase") in own:
            answer = own[row["phase"]].read_cells(row)
        if answer is not None:
            answers.setdefault(row["phase"], {})[str(row["participant"])] = answer
    return answers


Imported = tuple[results.SessionMeta, list[results.PhaseInfo], stats.Dataset]


def read_session_document(doc: dict[str, Any]) -> Imported:
    """A session's JSON export back into what ``results.build_session_results`` takes."""
    session, talk = doc["session"], doc["talk"]
    infos = [_phase_info(raw) for raw in doc["phases"]]
    unlinked = bool(session.get("unlinked"))
    meta = results.SessionMeta(
        code=session["code"],
        venue=session["venue"],
        held_on=date.fromisoformat(session["held_on"]),
        language=session.get("language", "en"),
        talk=talk["slug"],
        titles=dict(talk["title"]),
        unlinked=unlinked,
        source=session.get("source", "") if unlinked else "",
        transitions=session.get("transitions") or {} if unlinked else {},
        min_cell=int(session.get("min_cell", stats.MIN_CELL)),
    )
    specs = tuple(i.spec for i in infos)
    if unlinked:  # published totals: answers that link nobody
        return meta, infos, stats.Dataset.from_totals(specs, session.get("totals") or {})
    return meta, infos, stats.Dataset(specs, _answers_from_rows(doc["responses"], infos))


def read_document(doc: dict[str, Any]) -> list[Imported]:
    """A session's or a talk's JSON export: one entry per session."""
    if "sessions" in doc:
        return [read_session_document(s) for s in doc["sessions"]]
    return [read_session_document(doc)]


def _restore(cell: str) -> str:
    """Undo ``neutralize``: an apostrophe put before a formula character."""
    if cell.startswith("'") and cell[1:].startswith(FORMULA_PREFIXES):
        return cell[1:]
    return cell


def read_csv(text: str, book: dict[str, Any]) -> list[Imported]:
    """A CSV export (session or talk) with its codebook: one entry per session, in file order,
    then the unlinked sessions the talk's codebook carries (not rehearsals)."""
    reader = csv.DictReader(io.StringIO(text))
    missing = set(CSV_COLUMNS) - set(reader.fieldnames or [])
    if missing:
        raise ValueError(f"not a beliefgap export: missing columns {', '.join(sorted(missing))}")
    by_session: dict[str, list[dict[str, Any]]] = {}
    venues: dict[str, str] = {}
    for raw in reader:
        row = {key: _restore(value or "") for key, value in raw.items() if key is not None}
        by_session.setdefault(row["session"], []).append(row)
        venues.setdefault(row["session"], row["venue"])
    infos = [_phase_info(raw) for raw in book["phases"] if not raw.get("retired")]
    talk = book["talk"]
    out: list[Imported] = []
    for code, rows in by_session.items():
        meta = results.SessionMeta(
            code=code,
            venue=venues[code],
            talk=talk["slug"],
            titles=dict(talk["title"]),
            language=talk["languages"][0],
        )
        out.append(
            (
                meta,
                infos,
                stats.Dataset(tuple(i.spec for i in infos), _answers_from_rows(rows, infos)),
            )
        )
    for published in book.get("unlinked_sessions", []):  # the talk's codebook carries them
        if published.get("rehearsal"):
            continue
        meta = results.SessionMeta(
            code=published["code"],
            venue=published["venue"],
            held_on=date.fromisoformat(published["held_on"]),
            talk=talk["slug"],
            titles=dict(talk["title"]),
            language=talk["languages"][0],
            unlinked=True,
            source=published["source"],
            transitions=published.get("transitions") or {},
        )
        data = stats.Dataset.from_totals(tuple(i.spec for i in infos), published["totals"])
        out.append((meta, infos, data))
    return out


# --------------------------------------------------------------------------- published totals

TOTALS_COLUMNS = [
    "session",
    "venue",
    "talk",
    "held_on",
    "linked",
    "source",
    "phase",
    "from_choice",
    "choice",
    "count",
]
"""An unlinked session's CSV: one row per option of a phase with its count (``from_choice``
empty), then one per published revote cell (``from_choice``: the first answer). ``linked`` is
always ``false``: no row is a person."""
TOTALS_NEEDED = ("phase", "choice", "count")
"""What a CSV of published counts must have to be read (``read_totals_csv``); ``from_choice``
marks revote transitions; the export's other columns are ignored."""
TOTALS_CSV_LIMIT = 64 * 1024


def totals_rows(poll: PollSession, talk: str, published: Published) -> Iterator[dict[str, Any]]:
    common = {
        "session": poll.code,
        "venue": poll.venue,
        "talk": talk,
        "held_on": poll.held_on.isoformat(),
        "linked": "false",
        "source": poll.source,
    }
    for phase, counts in published.totals.items():
        for choice, count in counts.items():
            yield common | {"phase": phase, "from_choice": "", "choice": choice, "count": count}
    for phase, rows in published.transitions.items():
        for first, row in rows.items():
            for choice, count in row.items():
                yield common | {
                    "phase": phase,
                    "from_choice": first,
                    "choice": choice,
                    "count": count,
                }


def totals_csv_lines(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=TOTALS_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: neutralize(value) for key, value in row.items()})
    yield buffer.getvalue()


def session_csv_lines(db: Session, poll: PollSession) -> Iterator[str]:
    """A session's CSV: one row per answer, or, for an unlinked session, one row per published
    count (``TOTALS_COLUMNS``), never rows of made-up people."""
    if poll.unlinked:
        talk = session_talk(db, poll).slug
        return totals_csv_lines(totals_rows(poll, talk, published_counts(db, poll)))
    return csv_lines(response_rows(db, poll))


def read_totals_csv(
    text: str,
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, dict[str, int]]]]:
    """Published counts from a CSV (columns ``phase,choice,count``, and ``from_choice`` for
    revote transitions; an unlinked session's export reads back): (totals, transitions).
    Raises Invalid naming every row that cannot be read; a count given twice is refused."""
    if len(text) > TOTALS_CSV_LIMIT:
        raise Invalid(f"the file is over {TOTALS_CSV_LIMIT // 1024} KB", code="bad_totals_csv")
    reader = csv.DictReader(io.StringIO(text.lstrip(UTF8_BOM)))
    missing = [c for c in TOTALS_NEEDED if c not in (reader.fieldnames or [])]
    if missing:
        raise Invalid(
            f"the CSV needs the columns {', '.join(TOTALS_NEEDED)} (missing: {', '.join(missing)})",
            code="bad_totals_csv",
        )
    totals: dict[str, dict[str, int]] = {}
    transitions: dict[str, dict[str, dict[str, int]]] = {}
    problems: list[str] = []
    for number, raw in enumerate(reader, start=2):
        phase = _restore(raw.get("phase") or "").strip()
        choice = _restore(raw.get("choice") or "").strip()
        first = _restore(raw.get("from_choice") or "").strip()
        count_text = (raw.get("count") or "").strip()
        if not phase and not choice and not count_text:
            continue  # a blank line
        if not count_text.isdigit() or not phase or not choice:
            problems.append(f"line {number}: needs a phase, a choice and a whole count")
            continue
        target = transitions.setdefault(phase, {}).setdefault(first, {}) if first else None
        cell = target if target is not None else totals.setdefault(phase, {})
        if choice in cell:
            problems.append(
                f"line {number}: {phase} {first + ' -> ' if first else ''}{choice} again"
            )
            continue
        cell[choice] = int(count_text)
    if problems:
        raise Invalid("; ".join(problems[:10]), code="bad_totals_csv")
    return totals, transitions


def json_text(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


# --------------------------------------------------------------------------- charts and reports

PNG_FONTS = {"Noto Sans CJK SC": "notosanscjk", "DejaVu Sans": "dejavusans"}
"""Fonts the PNG renderer prefers, by family and font file name (Debian packages fonts-noto-cjk
and fonts-dejavu-core). Without a CJK font Chinese text renders as empty boxes."""
FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
REPORT_STYLES = ("base.css", "charts.css", "results.css")


NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
"""Characters XML 1.0 cannot hold, escaped or not: a control character typed into a label or a
venue would make the SVG file unreadable and its PNG fail."""


def render_svg(env: Environment, chart: charts.Chart) -> str:
    """A chart as a standalone SVG file (any character XML cannot hold left out)."""
    svg = env.get_template("partials/charts/_standalone.svg").render(chart=chart, lang=chart.lang)
    return NOT_XML.sub("", svg)


def installed_png_font() -> str | None:
    """The first of ``PNG_FONTS`` installed on this machine, if any."""
    files = [
        p.name.lower()
        for folder in FONT_DIRS
        if folder.is_dir()
        for p in folder.rglob("*")
        if p.suffix.lower() in (".ttc", ".ttf", ".otf")
    ]
    for family, prefix in PNG_FONTS.items():
        if any(name.replace("-", "").startswith(prefix) for name in files):
            return family
    return None


def svg_to_png(svg: str, zoom: float = 2.0) -> bytes:
    """Render an SVG to PNG with resvg, with a CJK-capable sans-serif font as the default."""
    import resvg_py

    family = installed_png_font() or "sans-serif"
    return bytes(
        resvg_py.svg_to_bytes(
            svg_string=svg,
            zoom=zoom,
            background="#ffffff",
            font_family=family,
            sans_serif_family=family,
        )
    )


def _inline_styles() -> str:
    css_dir = ROOT / "static" / "css"
    return "\n".join((css_dir / name).read_text(encoding="utf-8") for name in REPORT_STYLES)


def report_html(
    env: Environment,
    lang: str,
    *,
    session: results.SessionResults | None = None,
    talk: results.TalkResults | None = None,
    participants: int | None = None,
) -> str:
    """A self-contained HTML report (inline CSS and SVG, no external requests) that prints well."""
    return env.get_template("pages/results_report.html").render(
        lang=lang,
        results=session,
        talk=talk,
        participants=participants,
        styles=_inline_styles(),
        generated=datetime.now(UTC).date().isoformat(),
    )
