"""Exports of a session's answers: a tidy CSV (one row per response) and a JSON document.

Text that a spreadsheet would run as a formula (a cell starting with = + - @, a tab or a carriage
return) is prefixed with an apostrophe; venue names are typed by presenters and may come from
anywhere.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from app.models import Phase, PhaseOption, PollSession, Response, Talk
from app.sessions import session_phases

CSV_COLUMNS = ["session", "venue", "talk", "phase", "participant", "choice", "value", "answered_at"]
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralize(cell: Any) -> Any:
    """Make a text cell inert in spreadsheets; numbers pass unchanged."""
    if isinstance(cell, str) and cell.startswith(FORMULA_PREFIXES):
        return "'" + cell
    return cell


def iso_utc(moment: datetime) -> str:
    if moment.tzinfo is None:  # SQLite hands back naive datetimes, stored as UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def response_rows(db: Session, poll: PollSession) -> Iterator[dict[str, Any]]:
    """One dict per stored response, in talk order, then by time of answer."""
    talk = db.get(Talk, poll.talk_id)
    assert talk is not None
    query = (
        select(Response, Phase, PhaseOption)
        .join(Phase, col(Phase.id) == Response.phase_id)
        .join(PhaseOption, col(PhaseOption.id) == Response.option_id, isouter=True)
        .where(Response.session_id == poll.id)
        .order_by(col(Phase.position), col(Response.answered_at), col(Response.id))
    )
    for response, phase, option in db.exec(query):
        yield {
            "session": poll.code,
            "venue": poll.venue,
            "talk": talk.slug,
            "phase": phase.key,
            "participant": str(response.participant_id),
            "choice": option.key if option is not None else None,
            "value": response.value,
            "answered_at": iso_utc(response.answered_at),
        }


def csv_lines(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    """CSV text, a line at a time (for streaming), header first."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    yield buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow({key: neutralize(value) for key, value in row.items()})
        yield buffer.getvalue()


def session_document(db: Session, poll: PollSession) -> dict[str, Any]:
    """The session, its talk (every language), its phases with their state, and its responses."""
    talk = db.get(Talk, poll.talk_id)
    assert talk is not None
    return {
        "session": {
            "code": poll.code,
            "venue": poll.venue,
            "held_on": poll.held_on.isoformat(),
            "language": poll.language,
            "created_at": iso_utc(poll.created_at),
        },
        "talk": {"slug": talk.slug, "title": talk.titles, "languages": talk.languages},
        "phases": [
            {
                "id": view.key,
                "kind": view.phase.kind.value,
                "question": view.phase.questions,
                "of": view.phase.of_key,
                "holds": view.phase.holds,
                "range": (
                    [view.phase.min_value, view.phase.max_value]
                    if view.phase.min_value is not None
                    else None
                ),
                "options": [{"id": o.key, "label": o.labels} for o in view.options],
                "state": view.effective_state.value,
                "revealed": view.state.revealed,
            }
            for view in session_phases(db, poll)
        ],
        "responses": list(response_rows(db, poll)),
    }
