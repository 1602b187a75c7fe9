"""Database tables and the input/output schemas of the public API.

A *talk* is a reusable poll script (an ordered list of phases with options). Every edit of a talk
(a changed file, a save in the editor) makes a new *talk version*; a version's phases and options
are never changed afterwards. A *poll session* is one delivery of one version of a talk at a
venue, so what its phones were asked stays what its pages, results and exports show; it has one
``SessionPhase`` row per phase that carries the live state (pending -> open -> closed,
revealed). A *participant* is one phone in one session,
known only by a random token. A *response* is that participant's answer to one phase of one
session; the database allows at most one (``uq_response_once``).

Every table and every schema of the public API is in this one module (more than 600 lines): the
migrations and the HTTP contract are each read against one file.
"""

from __future__ import annotations

import enum
import secrets
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Column, DateTime, MetaData, UniqueConstraint
from sqlmodel import Field, SQLModel

# Stable constraint names make Alembic migrations reproducible (and batch mode on SQLite work).
SQLModel.metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def in_utc(moment: datetime | None) -> datetime | None:
    """A validator for datetimes read back from the database: SQLite hands back naive ones,
    stored as UTC; say so (RFC 3339 needs an offset)."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _utc_column(**kwargs: Any) -> Any:
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), **kwargs))


class PhaseKind(enum.StrEnum):
    choice = "choice"
    stance = "stance"
    perceived = "perceived"
    revote = "revote"


class PhaseState(enum.StrEnum):
    pending = "pending"
    open = "open"
    closed = "closed"


# --------------------------------------------------------------------------- tables


class Talk(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(index=True, unique=True, max_length=64)
    titles: dict[str, str] = Field(sa_column=Column(JSON, nullable=False))
    languages: list[str] = Field(sa_column=Column(JSON, nullable=False))
    source: str = Field(default="", max_length=500)
    """Where the talk was loaded from (``bundled:emergence`` or a file path)."""
    digest: str = Field(default="", max_length=64)
    """Hash of the current version's definition, to notice a changed file."""
    version: int = 1
    """The number of the current version (what new sessions use)."""


class TalkVersion(SQLModel, table=True):
    """One version of a talk: its whole definition as the talk file format's structure
    (``content``, what ``GET /api/v1/talks/{slug}`` answers), and the phase rows sessions of it
    use. Never changed once written."""

    __tablename__ = "talk_version"
    __table_args__ = (UniqueConstraint("talk_id", "number", name="uq_talk_version_number"),)

    id: int | None = Field(default=None, primary_key=True)
    talk_id: int = Field(foreign_key="talk.id", index=True, ondelete="CASCADE")
    number: int
    """1, 2, 3... in the order the versions were made."""
    content: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    digest: str = Field(max_length=64)
    source: str = Field(default="", max_length=500)
    created_at: datetime = _utc_column(nullable=False)


class Phase(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("version_id", "key", name="uq_phase_version_key"),)

    id: int | None = Field(default=None, primary_key=True)
    talk_id: int = Field(foreign_key="talk.id", index=True, ondelete="CASCADE")
    version_id: int = Field(foreign_key="talk_version.id", index=True, ondelete="CASCADE")
    key: str = Field(max_length=64)
    """The phase id used in files, URLs and exports (``belief``)."""
    position: int
    kind: PhaseKind
    questions: dict[str, str] = Field(sa_column=Column(JSON, nullable=False))
    of_key: str | None = Field(default=None, max_length=64)
    """For ``revote`` and ``perceived``: the stance phase this one refers to."""
    holds: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    """Option ids that count as *holding the view* (the gap's option), e.g. ``["agree"]``."""
    min_value: float | None = None
    max_value: float | None = None
    """A ``number`` phase's scale (no options)."""
    answer: str = Field(default="option", max_length=16)
    """How the phase is answered: the name of its answer format (``app.formats``)."""
    settings: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    """The answer format's settings beyond options and range (None: none)."""
    retired: bool = False
    """Only in databases from before talk versions: a phase a changed file dropped while it
    still rewrote talks in place. Version 1 keeps it for the sessions that asked it."""


class PhaseOption(SQLModel, table=True):
    __tablename__ = "phase_option"
    __table_args__ = (UniqueConstraint("phase_id", "key", name="uq_phase_option_phase_key"),)

    id: int | None = Field(default=None, primary_key=True)
    phase_id: int = Field(foreign_key="phase.id", index=True, ondelete="CASCADE")
    key: str = Field(max_length=64)
    position: int
    labels: dict[str, str] = Field(sa_column=Column(JSON, nullable=False))
    retired: bool = False


class PollSession(SQLModel, table=True):
    __tablename__ = "poll_session"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(index=True, unique=True, max_length=12)
    talk_id: int = Field(foreign_key="talk.id", index=True)
    version_id: int = Field(foreign_key="talk_version.id", index=True)
    """The talk version the session was created with: its texts for ever."""
    venue: str = Field(max_length=200)
    held_on: date
    language: str = Field(default="en", max_length=16)
    created_at: datetime = _utc_column(nullable=False)
    rehearsal: bool = False
    """A try-out: left out of the talk's pooled results, listed apart."""
    ended_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    """When the presenter ended the session: no more votes, no more phase changes."""
    unlinked: bool = False
    """Published counts (totals per option per phase, from another tool, a show of hands or a
    publication), not phones: nobody's answers are linked across phases, nothing is asked."""
    source: str = Field(default="", max_length=500)
    """Where an unlinked session's counts come from (a citation or a link)."""
    min_cell: int = 5
    """Breakdown cells with fewer people than this are hidden (``app.stats.disclosure``)."""

    @property
    def ended(self) -> bool:
        return self.ended_at is not None


class SessionPhase(SQLModel, table=True):
    __tablename__ = "session_phase"
    __table_args__ = (UniqueConstraint("session_id", "phase_id", name="uq_session_phase_once"),)

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="poll_session.id", index=True, ondelete="CASCADE")
    phase_id: int = Field(foreign_key="phase.id", index=True)
    position: int
    state: PhaseState = PhaseState.pending
    revealed: bool = False
    opened_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    revealed_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    """When the phase was revealed (None while hidden): the phones list the newest first."""
    closes_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    """When a countdown runs: the moment the phase closes by itself."""


class SessionTotal(SQLModel, table=True):
    """An unlinked session's count of one option of one phase, as published."""

    __tablename__ = "session_total"
    __table_args__ = (
        UniqueConstraint("session_id", "phase_id", "option_id", name="uq_session_total_once"),
    )

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="poll_session.id", index=True, ondelete="CASCADE")
    phase_id: int = Field(foreign_key="phase.id")
    option_id: int = Field(foreign_key="phase_option.id")
    count: int


class SessionTransition(SQLModel, table=True):
    """An unlinked session's published revote transitions: how many who first answered
    ``from_option`` (of the stance) answered ``to_option`` in the revote ``phase``."""

    __tablename__ = "session_transition"
    __table_args__ = (
        UniqueConstraint(
            "session_id", "phase_id", "from_option_id", "to_option_id", name="uq_session_transition"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="poll_session.id", index=True, ondelete="CASCADE")
    phase_id: int = Field(foreign_key="phase.id")
    from_option_id: int = Field(foreign_key="phase_option.id")
    to_option_id: int = Field(foreign_key="phase_option.id")
    count: int


PUBLIC_ID_BYTES = 6
"""A participant's public id: 48 random bits as 12 hex digits. Two alike in one session of
2,000 phones: about one chance in 140 million (the insert would fail, and the vote with it)."""


def new_public_id() -> str:
    return secrets.token_hex(PUBLIC_ID_BYTES)


def new_public_ids(count: int) -> list[str]:
    """``count`` public ids from one draw of the system's random source (a system call per id
    was a noticeable share of a batch of votes)."""
    drawn = secrets.token_bytes(PUBLIC_ID_BYTES * count)
    return [drawn[i : i + PUBLIC_ID_BYTES].hex() for i in range(0, len(drawn), PUBLIC_ID_BYTES)]


class Participant(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("session_id", "token", name="uq_participant_token"),
        UniqueConstraint("session_id", "public_id", name="uq_participant_public_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="poll_session.id", index=True, ondelete="CASCADE")
    token: str = Field(max_length=64)
    """Random id from the signed cookie; nothing else about the person is stored."""
    public_id: str = Field(default_factory=new_public_id, max_length=16)
    """What exports and answers show for this phone: random, unique within its session, so it
    reveals neither the order in which phones joined nor how many joined other sessions (the
    row's ``id``, a sequence over every session, never leaves the database)."""
    joined_at: datetime = _utc_column(nullable=False)


class Response(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("session_id", "phase_id", "participant_id", name="uq_response_once"),
    )

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="poll_session.id", index=True, ondelete="CASCADE")
    phase_id: int = Field(foreign_key="phase.id", index=True)
    participant_id: int = Field(foreign_key="participant.id", index=True, ondelete="CASCADE")
    option_id: int | None = Field(default=None, foreign_key="phase_option.id")
    value: float | None = None
    payload: Any = Field(default=None, sa_column=Column(JSON))
    """An answer that is neither one option nor one number (a ranking: the option ids in
    order), as its format stores it."""
    answered_at: datetime = _utc_column(nullable=False)


class TextState(enum.StrEnum):
    pending = "pending"
    shown = "shown"
    hidden = "hidden"


class TextAnswer(SQLModel, table=True):
    """One open-text answer (a phone may give a few to one phase): what was written, the key it
    is counted under, and whether the moderator let it be shown. Nobody but the presenter (and
    a moderator) sees an answer that is not ``shown``."""

    __tablename__ = "text_answer"
    __table_args__ = (
        UniqueConstraint(
            "session_id", "phase_id", "participant_id", "slot", name="uq_text_answer_slot"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="poll_session.id", index=True, ondelete="CASCADE")
    phase_id: int = Field(foreign_key="phase.id", index=True)
    participant_id: int = Field(foreign_key="participant.id", index=True, ondelete="CASCADE")
    slot: int = 0
    """Which of the phone's answers to the phase (0, 1, 2)."""
    text: str = Field(max_length=800)
    """As written, after normalisation for display."""
    norm: str = Field(max_length=800)
    """The key it is counted under (case-folded)."""
    state: TextState = TextState.pending
    answered_at: datetime = _utc_column(nullable=False)
    decided_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class PresenterLogin(SQLModel, table=True):
    """One browser logged in as the presenter. The presenter cookie carries the random id,
    signed; logging out deletes the row, so a saved copy of the cookie stops working."""

    __tablename__ = "presenter_login"

    id: str = Field(primary_key=True, max_length=64)
    created_at: datetime = _utc_column(nullable=False)
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class Prediction(SQLModel, table=True):
    """What the presenter expected of a session's room, locked before its first phase opened
    (``number`` 0), and each later amendment (1, 2, ...): never changed once written. ``canonical``
    is the JSON text that ``sha256`` hashes (``app.predictions``); an amendment's holds the
    hash of the entry before it, so the chain shows if any entry were changed."""

    __table_args__ = (UniqueConstraint("session_id", "number", name="uq_prediction_number"),)

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="poll_session.id", index=True, ondelete="CASCADE")
    number: int
    claims: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    text: str = Field(default="", max_length=2000)
    after_opening: bool = False
    """An amendment made once a phase had opened: the reader should know it."""
    canonical: str = Field(max_length=8000)
    sha256: str = Field(max_length=64)
    created_at: datetime = _utc_column(nullable=False)


class Publication(SQLModel, table=True):
    """A session's or a talk's results published at ``/r/{token}`` (no login). Withdrawing
    keeps the row (the address then answers 410 with the date), never deletes it."""

    id: int | None = Field(default=None, primary_key=True)
    token: str = Field(index=True, unique=True, max_length=32)
    session_id: int | None = Field(
        default=None, foreign_key="poll_session.id", index=True, ondelete="CASCADE"
    )
    talk_id: int | None = Field(default=None, foreign_key="talk.id", index=True, ondelete="CASCADE")
    licence: str = Field(default="CC-BY-4.0", max_length=16)
    contributors: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    published_at: datetime = _utc_column(nullable=False)
    withdrawn_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class TokenPurpose(enum.StrEnum):
    """What a session token lets its holder do (``SessionToken.purpose``)."""

    view = "view"
    """Watch the read-only live view: what the projector shows the room."""
    remote = "remote"
    """Move the session's phases (open, close, reveal, next), nothing else."""
    moderator = "moderator"
    """Moderate the session's open-text answers."""


class SessionToken(SQLModel, table=True):
    """A capability on one session, held by whoever has its address or key: only a hash of
    the random token is stored, so the table gives no working token away. Revoking keeps the
    row (``revoked_at``), so an old address stays refused rather than unknown to an audit."""

    __tablename__ = "session_token"

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="poll_session.id", index=True, ondelete="CASCADE")
    purpose: str = Field(max_length=16)
    """A ``TokenPurpose``."""
    token_hash: str = Field(max_length=64, unique=True, index=True)
    """SHA-256 of the token, hex."""
    created_at: datetime = _utc_column(nullable=False)
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    frame_ancestors: str | None = Field(default=None, max_length=1000)
    """View tokens: who may frame the view. None: the operator's list
    (``BELIEFGAP_FRAME_ANCESTORS``); ``*``: any site (a public talk); else some of the
    operator's sources."""


# --------------------------------------------------------------------------- API schemas
# Non-table models validate their input (table models skip validation).

Count = Annotated[int, PydanticField(strict=True, ge=0, le=10_000_000)]  # published.MAX_COUNT
"""A published count: a whole number of people."""
MIN_CELL_LOWEST = 1
MIN_CELL_HIGHEST = 50


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    talk: str = PydanticField(min_length=1, max_length=64)
    venue: str = PydanticField(min_length=1, max_length=200)
    held_on: date | None = None
    language: str | None = PydanticField(default=None, max_length=16)
    unlinked: bool = PydanticField(
        default=False,
        description="published counts, not a room of phones: give source and totals; the "
        "session shows the independent comparison, pools with it and refuses votes (409)",
    )
    source: str | None = PydanticField(
        default=None,
        max_length=500,
        description="where the counts come from, a citation or a link (with unlinked)",
    )
    totals: dict[str, dict[str, Count]] | None = PydanticField(
        default=None,
        max_length=64,
        description="phase id -> option id -> how many chose it (option phases only; with "
        "unlinked)",
    )
    transitions: dict[str, dict[str, dict[str, Count]]] | None = PydanticField(
        default=None,
        max_length=16,
        description="revote phase id -> first answer -> answer in the revote -> how many: the "
        "rows that were published, one is enough (with unlinked)",
    )


class SessionUpdate(BaseModel):
    """``PATCH /api/v1/sessions/{code}``: any of these; an absent field is left as it is."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)

    venue: str | None = PydanticField(default=None, min_length=1, max_length=200)
    rehearsal: bool | None = None
    ended: bool | None = None
    min_cell: int | None = PydanticField(
        default=None,
        ge=MIN_CELL_LOWEST,
        le=MIN_CELL_HIGHEST,
        description="breakdown cells with fewer people than this are hidden (default 5)",
    )


class SessionCreated(BaseModel):
    code: str
    join_url: str
    dashboard_url: str


class PhaseStatePublic(BaseModel):
    id: str
    kind: PhaseKind
    state: PhaseState
    revealed: bool
    closes_at: datetime | None = None

    @field_validator("closes_at")
    @classmethod
    def _in_utc(cls, moment: datetime | None) -> datetime | None:
        return in_utc(moment)


class SessionPublic(BaseModel):
    code: str
    talk: str
    talk_version: int = 1
    """The talk version the session was created with (its questions for ever)."""
    venue: str
    held_on: date
    language: str
    rehearsal: bool
    ended: bool
    ended_at: datetime | None = None
    unlinked: bool = False
    """Published totals, not linked answers: it cannot be opened for voting."""
    source: str = ""
    min_cell: int = 5
    """Breakdown cells with fewer people than this are hidden."""
    participants: int
    phases: list[PhaseStatePublic]

    @field_validator("ended_at")
    @classmethod
    def _in_utc(cls, moment: datetime | None) -> datetime | None:
        return in_utc(moment)


class OptionPublic(BaseModel):
    id: str
    label: str


class PhasePublic(BaseModel):
    id: str
    kind: PhaseKind
    question: str
    options: list[OptionPublic]
    of: str | None = None
    min: float | None = None
    max: float | None = None
    answer: str = "option"
    """How the phase is answered (``option``, ``number``, ``text``, ``ranking``)."""
    settings: dict[str, Any] = PydanticField(default_factory=dict)
    """The answer format's settings (e.g. ``max_chars`` of a text phase)."""


class TalkPublic(BaseModel):
    slug: str
    title: str
    languages: list[str]
    phases: list[PhasePublic]


class TalkStored(BaseModel):
    slug: str
    version: int


class TalkCopy(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    slug: str = PydanticField(min_length=1, max_length=64)


class VoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phase: str = PydanticField(min_length=1, max_length=64)
    choice: str | None = PydanticField(default=None, min_length=1, max_length=64)
    value: float | None = PydanticField(default=None, allow_inf_nan=False)
    text: str | None = PydanticField(default=None, max_length=2000)
    """An open-text answer (a ``text`` phase)."""
    ranking: list[str] | None = PydanticField(default=None, max_length=20)
    """Option ids, the first ranked highest (a ``ranking`` phase)."""
    slot: int | None = PydanticField(default=None, ge=0, le=2)
    """Which of the phone's answers to a ``text`` phase this is (0 when not given)."""


class VoteOut(BaseModel):
    session: str
    phase: str
    participant: str
    choice: str | None
    value: float | None
    ranking: list[str] | None = None
    text: str | None = None
    """An open-text answer as stored (masked where the blocklist masks); not yet shown."""
    slot: int | None = None
    answered_at: datetime


class PredictionIn(BaseModel):
    """A prediction or an amendment: at least one claim, in percent (0-100) or percentage
    points (the gap: perceived share minus own share), and free text."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    own_below: float | None = PydanticField(default=None, ge=0, le=100, allow_inf_nan=False)
    own_above: float | None = PydanticField(default=None, ge=0, le=100, allow_inf_nan=False)
    perceived_below: float | None = PydanticField(default=None, ge=0, le=100, allow_inf_nan=False)
    perceived_above: float | None = PydanticField(default=None, ge=0, le=100, allow_inf_nan=False)
    gap: float | None = PydanticField(default=None, ge=-100, le=100, allow_inf_nan=False)
    gap_margin: float | None = PydanticField(default=None, gt=0, le=100, allow_inf_nan=False)
    text: str = PydanticField(default="", max_length=2000)

    @model_validator(mode="after")
    def _coherent(self) -> PredictionIn:
        claims = self.claims()
        if not claims:
            raise ValueError(
                "a prediction needs at least one claim (own_below, own_above, "
                "perceived_below, perceived_above or gap)"
            )
        for what in ("own", "perceived"):
            below, above = claims.get(f"{what}_below"), claims.get(f"{what}_above")
            if below is not None and above is not None and below <= above:
                raise ValueError(f"{what}_below must be more than {what}_above")
        if (self.gap is None) != (self.gap_margin is None):
            raise ValueError("a gap needs its margin (gap_margin), and a margin its gap")
        return self

    def claims(self) -> dict[str, float]:
        names = ("own_below", "own_above", "perceived_below", "perceived_above", "gap")
        out = {name: getattr(self, name) for name in names if getattr(self, name) is not None}
        if self.gap_margin is not None:
            out["gap_margin"] = self.gap_margin
        return out


class PredictionEntry(BaseModel):
    number: int
    """0: the prediction; 1, 2, ...: its amendments."""
    claims: dict[str, float]
    text: str
    created_at: datetime
    after_opening: bool
    canonical: str
    """The JSON text hashed: anyone can recompute ``sha256`` from it."""
    sha256: str

    @field_validator("created_at")
    @classmethod
    def _in_utc(cls, moment: datetime | None) -> datetime | None:
        return in_utc(moment)


class ClaimCheck(BaseModel):
    claim: str
    predicted: float
    margin: float | None = None
    result: float | None
    """The room's figure in percent (or percentage points for the gap); None before it has one."""
    held: bool | None


class PredictionOut(BaseModel):
    session: str
    entries: list[PredictionEntry]
    checks: list[ClaimCheck]
    """The latest entry's claims against the session's results."""


class PublishIn(BaseModel):
    """Publish a session's or a talk's results at a public address."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    licence: str = PydanticField(default="CC-BY-4.0", pattern="^(CC-BY-4.0|CC0-1.0)$")
    """CC-BY-4.0 (the default: reuse with credit) or CC0-1.0."""
    contributors: list[str] = PydanticField(default_factory=list, max_length=20)

    @field_validator("contributors")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        names = [name.strip() for name in names]
        if any(not name or len(name) > 200 for name in names):
            raise ValueError("a contributor's name must have 1 to 200 characters")
        return names


class PublicationOut(BaseModel):
    url: str
    """The page's stable address (the newest version); each version at ``{url}/v{n}``."""
    version: int
    licence: str
    published_at: datetime
    withdrawn_at: datetime | None = None

    @field_validator("published_at", "withdrawn_at")
    @classmethod
    def _in_utc(cls, moment: datetime | None) -> datetime | None:
        return in_utc(moment)
