"""Recording answers and moving phases: the only code that writes them.

Phase changes commit and publish here; answers are validated and written here and committed,
many at a time, by ``app.vote_writer``.

A vote is validated against the session's phases (no write), then written: register the
participant only if the phase is open (a conditional upsert), then upsert the answer on the
``uq_response_once`` constraint (on PostgreSQL, a whole batch in one statement). Answering
again replaces the earlier answer in the database itself; nothing is read, changed in Python
and written back, so concurrent answers from one phone can never leave two rows.
"""

from __future__ import annotations

import enum
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Connection, DateTime, Dialect, bindparam, text
from sqlalchemy.engine.interfaces import DBAPIModule
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import TypeEngine
from sqlmodel import Session, col, select

from app import formats
from app.errors import Conflict, Invalid
from app.formats.text import TextGiven
from app.live import Publisher, SessionChanged
from app.models import (
    Phase,
    PhaseState,
    PollSession,
    SessionPhase,
    VoteIn,
    VoteOut,
    new_public_ids,
    utcnow,
)
from app.sessions import (
    PhaseContent,
    SessionContent,
    get_session,
    phase_is_open,
    refuse_if_ended,
)

MAX_COUNTDOWN_SECONDS = 3600


class PhaseAction(enum.StrEnum):
    open = "open"
    close = "close"
    reveal = "reveal"
    hide = "hide"


# --------------------------------------------------------------------------- votes


@dataclass(frozen=True)
class Ballot:
    """A validated answer, ready to write: which session, phase and phone, and what."""

    session: SessionContent
    phase: PhaseContent
    token: str
    choice: str | None
    option_id: int | None
    value: float | None
    payload: Any = None
    """A format's own answer (a ranking), stored as JSON."""
    text: TextGiven | None = None
    """An open-text answer, stored in ``text_answer`` beside the response (which carries no
    text): the response marks the phone as having answered."""


def validate_vote(spec: SessionContent, token: str, vote: VoteIn) -> Ballot:
    """Check an answer against the session's phases (raises Invalid); reads nothing."""
    phase = spec.phase(vote.phase)
    if phase is None:
        raise Invalid(f"no phase '{vote.phase}' in this session", code="unknown_phase")
    given = formats.validate(phase, vote)
    if isinstance(given.payload, TextGiven):
        return Ballot(spec, phase, token, None, None, None, None, given.payload)
    return Ballot(spec, phase, token, given.choice, given.option_id, given.value, given.payload)


# Register the phone only if the phase is open at this instant and the session has not ended
# (ending a session closes its open phases in the same transaction, so the phase's row carries
# the end as well). On SQLite, being the transaction's first statement for its ballot, a write,
# it holds the database's write lock while it reads the phase's state, so a close that commits
# meanwhile cannot slip between the check and the answer: writes are serialized. ``now`` is the
# exact time, for the countdown; ``answered`` the time stored, to the second (a time to the
# microsecond could be matched against other logs of the room).
_PARTICIPANT_IF_OPEN = """
    INSERT INTO participant (session_id, token, public_id, joined_at)
    SELECT :session_id, :token, :public_id, :answered
    WHERE EXISTS (
        SELECT 1 FROM session_phase
        WHERE session_id = :session_id AND phase_id = :phase_id AND state = 'open'
          AND (closes_at IS NULL OR closes_at > :now)
    )
    AND NOT EXISTS (
        SELECT 1 FROM poll_session WHERE id = :session_id AND ended_at IS NOT NULL
    )
    ON CONFLICT (session_id, token) DO UPDATE SET token = excluded.token
    RETURNING id, public_id
    """

# Answering again replaces the answer in the database itself (never read-modify-write).
_UPSERT_RESPONSE = """
    INSERT INTO response
        (session_id, phase_id, participant_id, option_id, value, payload, answered_at)
    VALUES (:session_id, :phase_id, :participant_id, :option_id, :value, :payload, :answered)
    ON CONFLICT (session_id, phase_id, participant_id) DO UPDATE
    SET option_id = excluded.option_id, value = excluded.value, payload = excluded.payload,
        answered_at = excluded.answered_at
    """

# An open-text answer, in the transaction of its response: sending a slot again replaces the
# answer there, and it waits for moderation again (its state is the new answer's).
_UPSERT_TEXT_SQL = """
    INSERT INTO text_answer
        (session_id, phase_id, participant_id, slot, text, norm, state, answered_at, decided_at)
    VALUES (:session_id, :phase_id, :participant_id, :slot, :text, :norm, :state, :answered,
        NULL)
    ON CONFLICT (session_id, phase_id, participant_id, slot) DO UPDATE
    SET text = excluded.text, norm = excluded.norm, state = excluded.state,
        answered_at = excluded.answered_at, decided_at = NULL
    """
_UPSERT_TEXT = text(_UPSERT_TEXT_SQL).bindparams(
    bindparam("answered", type_=DateTime(timezone=True))
)

# PostgreSQL: the whole batch in one statement, so a batch of votes costs one round trip and one
# statement to plan, not two per vote; per ballot, the same rules as above. READ COMMITTED in
# several processes has no database-wide write lock: the check reads a snapshot, and a close
# committing between this statement and its commit would let a vote be stored after the close.
# FOR SHARE locks the phase's row until the votes' transaction ends: a close (an UPDATE of that
# row) waits for every batch that saw the phase open, and a batch whose check comes while a close
# is in flight waits for it, then reads the row as the close left it (closed: nothing written for
# that phase). Votes share the lock, so they never wait for each other. A batch must not name one
# answer twice (ON CONFLICT cannot touch a row twice in one statement): ``write_ballots`` sends
# only the last answer of each phone to each phase, and one new public id per phone.
_BALLOTS_IF_OPEN_POSTGRES = text(
    """
    WITH ballot AS (
        SELECT * FROM unnest(
            CAST(:ords AS integer[]), CAST(:session_ids AS integer[]),
            CAST(:phase_ids AS integer[]), CAST(:tokens AS varchar[]),
            CAST(:public_ids AS varchar[]), CAST(:option_ids AS integer[]),
            CAST(:vals AS double precision[]), CAST(:payloads AS text[])
        ) AS b(ord, session_id, phase_id, token, public_id, option_id, value, payload)
    ),
    allowed AS (
        SELECT b.* FROM ballot b
        WHERE EXISTS (
            SELECT 1 FROM session_phase
            WHERE session_id = b.session_id AND phase_id = b.phase_id AND state = 'open'
              AND (closes_at IS NULL OR closes_at > :now)
            FOR SHARE
        )
        AND NOT EXISTS (
            SELECT 1 FROM poll_session WHERE id = b.session_id AND ended_at IS NOT NULL
        )
    ),
    joined AS (
        INSERT INTO participant (session_id, token, public_id, joined_at)
        SELECT DISTINCT ON (session_id, token) session_id, token, public_id,
            CAST(:answered AS timestamptz)
        FROM allowed
        ON CONFLICT (session_id, token) DO UPDATE SET token = excluded.token
        RETURNING id, public_id, session_id, token
    ),
    stored AS (
        INSERT INTO response
            (session_id, phase_id, participant_id, option_id, value, payload, answered_at)
        SELECT a.session_id, a.phase_id, j.id, a.option_id, a.value, CAST(a.payload AS json),
            :answered
        FROM allowed a JOIN joined j ON j.session_id = a.session_id AND j.token = a.token
        ON CONFLICT (session_id, phase_id, participant_id) DO UPDATE
        SET option_id = excluded.option_id, value = excluded.value, payload = excluded.payload,
            answered_at = excluded.answered_at
        RETURNING participant_id
    )
    SELECT a.ord, j.public_id, j.id
    FROM allowed a JOIN joined j ON j.session_id = a.session_id AND j.token = a.token
    """
).bindparams(
    bindparam("now", type_=DateTime(timezone=True)),
    bindparam("answered", type_=DateTime(timezone=True)),
)

# Why a ballot was refused (read only then): the session ended, or only its phase is not open.
_SESSION_ENDED = text("SELECT 1 FROM poll_session WHERE id = :session_id AND ended_at IS NOT NULL")


def write_ballots(connection: Connection, ballots: list[Ballot]) -> list[VoteOut | Conflict]:
    """Write ballots inside the caller's transaction (which commits); a ballot for a phase that
    is not open, or of a session that has ended, writes nothing and comes back as a Conflict."""
    now = utcnow()
    answered = now.replace(microsecond=0)
    if connection.dialect.name == "postgresql":
        participants = _write_ballots_postgres(connection, ballots, now, answered)
    else:
        participants = _write_ballots_sqlite(connection, ballots, now, answered)
    return [
        _refusal(connection, ballot)
        if public_id is None
        else VoteOut(
            session=ballot.session.code,
            phase=ballot.phase.key,
            participant=public_id,
            choice=ballot.choice,
            value=ballot.value,
            ranking=ballot.payload if ballot.phase.answer == "ranking" else None,
            text=ballot.text.text if ballot.text is not None else None,
            slot=ballot.text.slot if ballot.text is not None else None,
            answered_at=answered,
        )
        for ballot, public_id in zip(ballots, participants, strict=True)
    ]


_Bind = Callable[[Any], Any]


@functools.cache
def _sqlite_binds(dialect: Dialect) -> tuple[_Bind, _Bind]:
    """How SQLAlchemy stores a moment and a JSON payload on this SQLite dialect (the columns'
    types): applied here, the statements go to the driver as they are."""

    def processor(type_: TypeEngine[Any]) -> _Bind:
        found = type_.dialect_impl(dialect).bind_processor(dialect)
        return found if found is not None else (lambda value: value)

    return processor(DateTime(timezone=True)), processor(JSON())


def _write_ballots_sqlite(
    connection: Connection, ballots: list[Ballot], now: datetime, answered: datetime
) -> list[str | None]:
    """The batch, two statements a ballot (three with a text) on one driver cursor: each
    ballot's participant public id, or None when its vote was refused. SQLite is in-process, so
    a statement is cheap and what surrounds it is not: the statements go to the driver as they
    are written, their values stored as SQLAlchemy stores them (``_sqlite_binds``), in the
    caller's transaction. Through ``exec_driver_sql`` (its execution context and result for
    each statement) a ballot cost the writer about 70 µs in batches of 8; on the cursor, 28. A
    driver error comes out as SQLAlchemy's, as from ``exec_driver_sql`` (``_driver_error``),
    and listeners of ``before_cursor_execute`` hear each statement (what they return is not
    used)."""
    moment, as_json = _sqlite_binds(connection.dialect)
    stored_at, checked_at = moment(answered), moment(now)
    public_ids = new_public_ids(len(ballots))
    cursor = connection.connection.cursor()
    heard = connection.dispatch.before_cursor_execute  # listeners (tracing, tests) still hear
    found: list[str | None] = []
    sent: tuple[str, dict[str, Any]] = ("", {})

    def execute(statement: str, params: dict[str, Any]) -> Any:
        nonlocal sent
        sent = (statement, params)
        if heard:
            heard(connection, cursor, statement, params, None, False)
        return cursor.execute(statement, params)

    try:
        for ballot, public_id in zip(ballots, public_ids, strict=True):
            session_id, phase_id = ballot.session.id, ballot.phase.id
            participant = execute(
                _PARTICIPANT_IF_OPEN,
                {
                    "session_id": session_id,
                    "phase_id": phase_id,
                    "token": ballot.token,
                    "public_id": public_id,
                    "now": checked_at,
                    "answered": stored_at,
                },
            ).fetchone()
            if participant is None:
                found.append(None)
                continue
            participant_id, stored_public_id = participant
            execute(
                _UPSERT_RESPONSE,
                {
                    "session_id": session_id,
                    "phase_id": phase_id,
                    "participant_id": participant_id,
                    "option_id": ballot.option_id,
                    "value": ballot.value,
                    "payload": as_json(ballot.payload),
                    "answered": stored_at,
                },
            )
            if ballot.text is not None:
                text_params = _text_params(ballot, participant_id, answered)
                execute(_UPSERT_TEXT_SQL, {**text_params, "answered": stored_at})
            found.append(str(stored_public_id))
    except connection.dialect.loaded_dbapi.Error as exc:
        raise _driver_error(connection, cursor, exc, *sent) from exc
    finally:
        cursor.close()
    return found


def _driver_error(
    connection: Connection,
    cursor: Any,
    exc: DBAPIModule.Error,
    statement: str,
    params: dict[str, Any],
) -> Exception:
    """A driver's error as SQLAlchemy raises it from a statement (``IntegrityError``,
    ``OperationalError``, ...), the connection invalidated when the error says it is gone."""
    dialect = connection.dialect
    lost = dialect.is_disconnect(exc, connection.connection, cursor)
    error = DBAPIError.instance(
        statement,
        params,
        exc,
        dialect.loaded_dbapi.Error,
        connection_invalidated=lost,
        dialect=dialect,
    )
    if lost:
        connection.invalidate(error)
    return error


def _text_params(ballot: Ballot, participant_id: int, answered: datetime) -> dict[str, Any]:
    assert ballot.text is not None
    return {
        "session_id": ballot.session.id,
        "phase_id": ballot.phase.id,
        "participant_id": participant_id,
        "slot": ballot.text.slot,
        "text": ballot.text.text,
        "norm": ballot.text.norm,
        "state": ballot.text.state,
        "answered": answered,
    }


def _write_ballots_postgres(
    connection: Connection, ballots: list[Ballot], now: datetime, answered: datetime
) -> list[str | None]:
    """The batch in one statement; each ballot's participant public id, or None (refused).

    A phone's earlier answer to a phase in the same batch is not sent: the later one replaces it
    in the same transaction, as if written one after the other. Both are answered as stored."""
    last: dict[tuple[int, int, str], int] = {}
    for index, ballot in enumerate(ballots):
        last[(ballot.session.id, ballot.phase.id, ballot.token)] = index
    sent = sorted(last.values())
    rows = connection.execute(
        _BALLOTS_IF_OPEN_POSTGRES,
        {
            "ords": sent,
            "session_ids": [ballots[i].session.id for i in sent],
            "phase_ids": [ballots[i].phase.id for i in sent],
            "tokens": [ballots[i].token for i in sent],
            "public_ids": new_public_ids(len(sent)),
            "option_ids": [ballots[i].option_id for i in sent],
            "vals": [ballots[i].value for i in sent],
            "payloads": [_json(ballots[i].payload) for i in sent],
            "now": now,
            "answered": answered,
        },
    ).all()
    stored = {int(ord_): str(public_id) for ord_, public_id, _ in rows}
    # Open-text answers of the phones whose response was stored, in the same transaction: one
    # statement for the batch's texts, the last of each phone's slot (its earlier one replaced).
    ids = {int(ord_): int(participant_id) for ord_, _, participant_id in rows}
    texts: dict[tuple[int, int, int, int], dict[str, Any]] = {}
    for b in ballots:
        participant_id = ids.get(last[(b.session.id, b.phase.id, b.token)])
        if b.text is not None and participant_id is not None:
            key = (b.session.id, b.phase.id, participant_id, b.text.slot)
            texts[key] = _text_params(b, participant_id, answered)
    if texts:
        connection.execute(_UPSERT_TEXT, list(texts.values()))
    return [stored.get(last[(b.session.id, b.phase.id, b.token)]) for b in ballots]


def _json(payload: Any) -> str | None:
    return None if payload is None else json.dumps(payload, ensure_ascii=False)


def _refusal(connection: Connection, ballot: Ballot) -> Conflict:
    ended = connection.execute(_SESSION_ENDED, {"session_id": ballot.session.id}).first()
    if ended is not None:
        return Conflict(f"session '{ballot.session.code}' has ended", code="session_ended")
    return Conflict(f"phase '{ballot.phase.key}' is not open", code="phase_not_open")


def change_phase(
    db: Session,
    code: str,
    phase_key: str,
    action: PhaseAction,
    publisher: Publisher,
    *,
    seconds: int | None = None,
) -> PollSession:
    """Open (optionally with a countdown), close, reveal or hide one phase of a session.

    Opening a closed phase reopens it (more time for the room); opening an open one restarts its
    countdown, or stops it when no ``seconds`` are given. Closing a phase that is not open
    is a Conflict. Reveal and hide work in every state.
    """
    poll = get_session(db, code)
    refuse_if_ended(poll)
    row = db.exec(
        select(SessionPhase)
        .join(Phase, col(Phase.id) == SessionPhase.phase_id)
        .where(SessionPhase.session_id == poll.id, Phase.key == phase_key)
    ).first()
    if row is None:
        raise Invalid(f"no phase '{phase_key}' in this session", code="unknown_phase")
    if seconds is not None and not 1 <= seconds <= MAX_COUNTDOWN_SECONDS:
        raise Invalid(
            f"a countdown must be 1 to {MAX_COUNTDOWN_SECONDS} seconds", code="bad_countdown"
        )
    now = datetime.now(UTC)
    if action == PhaseAction.open:
        row.state = PhaseState.open
        row.opened_at = now
        row.closes_at = now + timedelta(seconds=seconds) if seconds is not None else None
    elif action == PhaseAction.close:
        if row.state != PhaseState.open:
            raise Conflict(f"phase '{phase_key}' is not open", code="phase_not_open")
        row.state = PhaseState.closed
        row.closes_at = None
    elif action == PhaseAction.reveal:
        if not row.revealed:
            row.revealed_at = now
        row.revealed = True
    else:
        row.revealed = False
        row.revealed_at = None
    db.add(row)
    db.commit()
    assert poll.id is not None
    publisher.publish(SessionChanged(session_id=poll.id, code=poll.code, phases=True))
    return poll


def close_expired(db: Session, publisher: Publisher, now: datetime | None = None) -> list[str]:
    """Close every open phase whose countdown has run out; returns the codes of their sessions."""
    now = now or datetime.now(UTC)
    rows = db.exec(
        select(SessionPhase, PollSession)
        .join(PollSession, col(PollSession.id) == SessionPhase.session_id)
        .where(SessionPhase.state == PhaseState.open, col(SessionPhase.closes_at).is_not(None))
    ).all()
    changed: dict[int, str] = {}
    for state, poll in rows:
        if not phase_is_open(state, now):
            state.state = PhaseState.closed
            db.add(state)
            assert poll.id is not None
            changed[poll.id] = poll.code
    if changed:
        db.commit()
        for session_id, code in changed.items():
            publisher.publish(SessionChanged(session_id=session_id, code=code, phases=True))
    return list(changed.values())
