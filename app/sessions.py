"""Poll sessions: create one for a talk, find it by join code, describe its state and its talk;
and ``SessionCache``, the in-process copy of what every phone of a session shares.

A room of thousands asks for the same things at the same instant. A session's texts are fixed
for its life, and which of its phases are open changes only when the presenter acts, so one
read serves the room until the next phase change reaches this process as a live fact.

Longer than 600 lines, and left so for now: the second half ("what every phone shares", from
``OptionContent`` to ``SessionCache``, about 240 lines) is the one that would move to a module of
its own, with the imports of its ten callers on the phone's path (voting, the vote writer, the
phone pages, the stream, the audience views); it is that path's hot read, and a move is best
made when the path is not being reworked at the same time."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app import formats, talks
from app.errors import Conflict, Invalid, NotFound
from app.live import Publisher, SessionChanged
from app.models import (
    MIN_CELL_HIGHEST,
    MIN_CELL_LOWEST,
    OptionPublic,
    Participant,
    Phase,
    PhaseKind,
    PhaseOption,
    PhasePublic,
    PhaseState,
    PhaseStatePublic,
    PollSession,
    Response,
    SessionPhase,
    SessionPublic,
    SessionTotal,
    SessionTransition,
    Talk,
    TalkPublic,
    TalkVersion,
    utcnow,
)

# No look-alikes: no 0/O, no 1/I/L, so a code read off a projector is typed right the first time.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
CODE_ATTEMPTS = 20


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(text: str) -> str:
    """What a person typed (any case, spaces, dashes) as a join code."""
    if text.isascii() and text.isalnum():  # a code as the QR code's address gives it
        return text.upper()
    return "".join(ch for ch in text.upper() if not ch.isspace() and ch != "-")


def best_language(languages: Sequence[str], wanted: str | None) -> str:
    """The best of a talk's languages for a requested tag (``zh-CN`` finds ``zh-Hans``); the
    talk's first language when none fits."""
    if wanted:
        for lang in languages:
            if lang.lower() == wanted.lower():
                return lang
        prefix = wanted.split("-")[0].lower()
        for lang in languages:
            if lang.split("-")[0].lower() == prefix:
                return lang
    return languages[0]


def pick_language(talk: Talk, wanted: str | None) -> str:
    return best_language(talk.languages, wanted)


def session_talk(db: Session, poll: PollSession) -> Talk:
    """The session's talk as its version has it (title and languages as they were when the
    session was created): a copy, never stored."""
    return session_talks(db, [poll])[poll.id or 0]


def session_talks(db: Session, polls: Sequence[PollSession]) -> dict[int, Talk]:
    """Session id -> ``session_talk``, reading each talk and version once however many sessions
    share it (a talk's pooled page reads every session it was given at); ``db.get`` answers
    from the session's identity map what it already holds."""
    talks = {i: db.get(Talk, i) for i in {p.talk_id for p in polls}}
    versions = {i: db.get(TalkVersion, i) for i in {p.version_id for p in polls}}
    out: dict[int, Talk] = {}
    for poll in polls:
        talk, version = talks.get(poll.talk_id), versions.get(poll.version_id)
        assert talk is not None and version is not None
        out[poll.id or 0] = Talk(
            id=talk.id,
            slug=talk.slug,
            titles=dict(version.content["title"]),
            languages=list(version.content["languages"]),
            source=talk.source,
            digest=version.digest,
            version=version.number,
        )
    return out


def _current_version_id(db: Session, talk: Talk) -> int:
    version = db.exec(
        select(TalkVersion.id).where(
            TalkVersion.talk_id == talk.id, TalkVersion.number == talk.version
        )
    ).first()
    assert version is not None, f"talk {talk.slug} has no version {talk.version}"
    return version


def _current_phases(db: Session, talk: Talk) -> list[Phase]:
    """The phases of the talk's current version (what a new session asks)."""
    version = _current_version_id(db, talk)
    return list(
        db.exec(
            select(Phase)
            .where(Phase.version_id == version, col(Phase.retired).is_(False))
            .order_by(col(Phase.position))
        )
    )


def get_talk(db: Session, slug: str) -> Talk:
    """The talk with this slug; 404 when there is none (``app.talks.find_talk``)."""
    return talks.find_talk(db, slug)


def list_talks(db: Session) -> list[Talk]:
    return list(db.exec(select(Talk).order_by(col(Talk.slug))))


def create_session(
    db: Session,
    *,
    talk_slug: str,
    venue: str,
    held_on: date | None = None,
    language: str | None = None,
    code: str | None = None,
    source: str | None = None,
) -> PollSession:
    """A new session of the talk's current version. ``code``: the join code to use if it is
    free (else one is drawn). ``source``: an unlinked session of published counts from there
    (``create_unlinked_session`` adds the counts and commits; nothing is committed here)."""
    talk = get_talk(db, talk_slug)
    venue = venue.strip()
    if not venue:
        raise Invalid("the venue must not be empty", code="empty_venue")
    if language and language not in talk.languages:
        raise Invalid(
            f"talk '{talk.slug}' has no language '{language}' ({', '.join(talk.languages)})",
            code="unknown_language",
        )
    phases = _current_phases(db, talk)
    for attempt in range(CODE_ATTEMPTS):
        poll = PollSession(
            code=code if code and attempt == 0 else new_code(),
            talk_id=talk.id or 0,
            version_id=_current_version_id(db, talk),
            venue=venue,
            held_on=held_on or datetime.now(UTC).date(),
            language=language or talk.languages[0],
            unlinked=source is not None,
            source=source or "",
        )
        db.add(poll)
        try:
            db.flush()
        except IntegrityError:  # the code is taken: draw again
            db.rollback()
            continue
        assert poll.id is not None
        for position, phase in enumerate(phases):
            assert phase.id is not None
            # published counts ask nothing: every phase closed, its totals shown
            db.add(
                SessionPhase(
                    session_id=poll.id,
                    phase_id=phase.id,
                    position=position,
                    state=PhaseState.pending if source is None else PhaseState.closed,
                    revealed=source is not None,
                )
            )
        if source is None:
            db.commit()
            db.refresh(poll)
        return poll
    raise RuntimeError("could not find a free join code")  # pragma: no cover (31^6 codes)


def get_session(db: Session, code: str) -> PollSession:
    poll = db.exec(select(PollSession).where(PollSession.code == normalize_code(code))).first()
    if poll is None:
        raise NotFound(f"no session with code '{normalize_code(code)}'", code="unknown_session")
    return poll


def update_session(
    db: Session,
    code: str,
    publisher: Publisher,
    *,
    venue: str | None = None,
    rehearsal: bool | None = None,
    ended: bool | None = None,
    min_cell: int | None = None,
) -> PollSession:
    """Rename the venue, mark or unmark a rehearsal, end a session or take it up again, set its
    small-cell threshold (None: leave as it is). Ending closes the open phases in the same
    transaction: a vote that saw a phase open either commits before the end or finds it closed
    (``app.voting``)."""
    poll = get_session(db, code)
    if venue is not None:
        venue = venue.strip()
        if not venue:
            raise Invalid("the venue must not be empty", code="empty_venue")
        poll.venue = venue
    if rehearsal is not None:
        poll.rehearsal = rehearsal
    if min_cell is not None:
        if not MIN_CELL_LOWEST <= min_cell <= MIN_CELL_HIGHEST:
            raise Invalid(
                f"the small-cell threshold must be {MIN_CELL_LOWEST} to {MIN_CELL_HIGHEST}",
                code="bad_min_cell",
            )
        poll.min_cell = min_cell
    if ended is not None and ended != poll.ended:
        poll.ended_at = utcnow() if ended else None
        if ended:
            db.exec(
                update(SessionPhase)
                .where(
                    col(SessionPhase.session_id) == poll.id,
                    col(SessionPhase.state) == PhaseState.open,
                )
                .values(state=PhaseState.closed, closes_at=None)
            )
    db.add(poll)
    db.commit()
    db.refresh(poll)
    assert poll.id is not None
    # A change of state for every page and cache that shows the session (phones learn here
    # that it has ended).
    publisher.publish(SessionChanged(session_id=poll.id, code=poll.code, phases=True))
    from app import publication

    publication.changed()  # its venue, or whether a talk's public page holds it
    return poll


def refuse_if_ended(poll: PollSession) -> None:
    """Refuse phase changes (and so votes) in an ended session or one of published counts."""
    if poll.unlinked:
        raise Conflict(
            f"session '{poll.code}' holds published counts; it cannot be opened for voting",
            code="unlinked_session",
        )
    if poll.ended:
        raise Conflict(f"session '{poll.code}' has ended", code="session_ended")


def delete_session(db: Session, code: str, publisher: Publisher) -> None:
    """Delete a session with its phases' states, its participants and their answers; every
    process forgets it and its open streams end (the fact ``gone``)."""
    poll = get_session(db, code)
    session_id, poll_code = poll.id, poll.code
    assert session_id is not None
    db.exec(delete(Response).where(col(Response.session_id) == session_id))
    db.exec(delete(Participant).where(col(Participant.session_id) == session_id))
    db.exec(delete(SessionPhase).where(col(SessionPhase.session_id) == session_id))
    _withdraw_publications(db, session_id)
    db.exec(delete(SessionTotal).where(col(SessionTotal.session_id) == session_id))
    db.exec(delete(SessionTransition).where(col(SessionTransition.session_id) == session_id))
    db.exec(delete(PollSession).where(col(PollSession.id) == session_id))
    db.commit()
    publisher.publish(SessionChanged(session_id=session_id, code=poll_code, phases=True, gone=True))


def _withdraw_publications(db: Session, session_id: int) -> None:
    """A deleted session's public page says from now on that it was withdrawn (410, as the
    presenter's withdrawal does), rather than vanish."""
    from app import publication
    from app.models import Publication

    for row in db.exec(select(Publication).where(Publication.session_id == session_id)):
        row.session_id = None
        row.withdrawn_at = row.withdrawn_at or datetime.now(UTC).replace(microsecond=0)
        db.add(row)
    db.flush()
    publication.changed()  # a talk's page that held the session is drawn again too


@dataclass(frozen=True)
class SessionPhaseView:
    """A phase of one session with its state: what pages and the API need to show it."""

    phase: Phase
    state: SessionPhase
    options: list[PhaseOption]

    @property
    def key(self) -> str:
        return self.phase.key

    @property
    def is_open(self) -> bool:
        return phase_is_open(self.state)

    @property
    def effective_state(self) -> PhaseState:
        if self.state.state == PhaseState.open and not self.is_open:
            return PhaseState.closed  # the countdown ran out; the closer has not caught up yet
        return self.state.state


def phase_is_open(state: SessionPhase, now: datetime | None = None) -> bool:
    if state.state != PhaseState.open:
        return False
    if state.closes_at is None:
        return True
    closes_at = state.closes_at
    if closes_at.tzinfo is None:  # SQLite hands back naive datetimes
        closes_at = closes_at.replace(tzinfo=UTC)
    return (now or datetime.now(UTC)) < closes_at


def session_phases(db: Session, poll: PollSession) -> list[SessionPhaseView]:
    return sessions_phases(db, [poll]).get(poll.id or 0, [])


def sessions_phases(db: Session, polls: Sequence[PollSession]) -> dict[int, list[SessionPhaseView]]:
    """Session id -> its phases in order (``session_phases``), in two queries however many
    sessions."""
    ids = [p.id for p in polls if p.id is not None]
    rows = db.exec(
        select(SessionPhase, Phase)
        .join(Phase, col(Phase.id) == SessionPhase.phase_id)
        .where(col(SessionPhase.session_id).in_(ids))
        .order_by(col(SessionPhase.session_id), col(SessionPhase.position))
    ).all()
    phase_ids = {phase.id for _, phase in rows}
    options: dict[int, list[PhaseOption]] = {pid: [] for pid in phase_ids if pid is not None}
    for option in db.exec(
        select(PhaseOption)
        .where(col(PhaseOption.phase_id).in_(phase_ids), col(PhaseOption.retired).is_(False))
        .order_by(col(PhaseOption.position))
    ):
        options[option.phase_id].append(option)
    out: dict[int, list[SessionPhaseView]] = {i: [] for i in ids}
    for state, phase in rows:
        out[state.session_id].append(
            SessionPhaseView(phase=phase, state=state, options=options.get(phase.id or 0, []))
        )
    return out


def participant_count(db: Session, poll: PollSession) -> int:
    return db.exec(
        select(func.count()).select_from(Participant).where(Participant.session_id == poll.id)
    ).one()


def session_public(db: Session, poll: PollSession) -> SessionPublic:
    talk = session_talk(db, poll)
    return SessionPublic(
        code=poll.code,
        talk=talk.slug,
        talk_version=talk.version,
        venue=poll.venue,
        held_on=poll.held_on,
        language=poll.language,
        rehearsal=poll.rehearsal,
        ended=poll.ended,
        ended_at=poll.ended_at,
        unlinked=poll.unlinked,
        source=poll.source,
        min_cell=poll.min_cell,
        participants=participant_count(db, poll),
        phases=phase_states(session_phases(db, poll)),
    )


def phase_states(views: Sequence[SessionPhaseView]) -> list[PhaseStatePublic]:
    """The phases' states as the API and the live ``state`` event give them (a countdown that
    ran out reads closed)."""
    return [
        PhaseStatePublic(
            id=view.key,
            kind=view.phase.kind,
            state=view.effective_state,
            revealed=view.state.revealed,
            closes_at=view.state.closes_at if view.is_open else None,
        )
        for view in views
    ]


def talk_public(db: Session, talk: Talk, language: str | None = None) -> TalkPublic:
    lang = pick_language(talk, language)
    phases = _current_phases(db, talk)
    options: dict[int, list[PhaseOption]] = {p.id: [] for p in phases if p.id is not None}
    for option in db.exec(
        select(PhaseOption)
        .where(col(PhaseOption.phase_id).in_(list(options)), col(PhaseOption.retired).is_(False))
        .order_by(col(PhaseOption.position))
    ):
        options[option.phase_id].append(option)
    return TalkPublic(
        slug=talk.slug,
        title=talk.titles[lang],
        languages=talk.languages,
        phases=[
            PhasePublic(
                id=phase.key,
                kind=phase.kind,
                question=phase.questions[lang],
                options=[
                    OptionPublic(id=o.key, label=o.labels[lang]) for o in options[phase.id or 0]
                ],
                of=phase.of_key,
                answer=phase.answer,
                settings=dict(phase.settings or {}),
                **formats.by_name(phase.answer).public(phase.min_value, phase.max_value),
            )
            for phase in phases
        ],
    )


# ------------------------------------------------------------------- what every phone shares


@dataclass(frozen=True)
class OptionContent:
    id: int
    key: str
    labels: dict[str, str]


@dataclass(frozen=True)
class PhaseContent:
    """One phase's texts and options; fixed for the life of a session."""

    id: int
    key: str
    kind: PhaseKind
    number: int
    """The phase's place in the talk, from 1."""
    questions: dict[str, str]
    options: tuple[OptionContent, ...]
    min_value: float | None
    max_value: float | None
    answer: str = "option"
    """The name of the phase's answer format (``app.formats``)."""
    settings: dict[str, Any] = field(default_factory=dict)

    def option_key(self, option_id: int | None) -> str | None:
        return next((o.key for o in self.options if o.id == option_id), None)

    def option_id(self, key: str) -> int | None:
        return next((o.id for o in self.options if o.key == key), None)


@dataclass(frozen=True)
class SessionContent:
    """A session's talk texts, in every language the talk has."""

    id: int
    code: str
    language: str
    """The session's own language (what a phone without a preference sees)."""
    languages: tuple[str, ...]
    titles: dict[str, str]
    phases: tuple[PhaseContent, ...]
    """In talk order."""
    unlinked: bool = False
    """Published counts: phones have nothing to answer (``PollSession.unlinked``)."""

    def content_lang(self, lang: str) -> str:
        """The best of the talk's languages for the interface language ``lang``."""
        return best_language(self.languages, lang)

    def phase(self, key: str | None) -> PhaseContent | None:
        return next((p for p in self.phases if p.key == key), None)


@dataclass(frozen=True)
class OpenPhase:
    key: str
    closes_at: datetime | None
    """A running countdown's end (UTC), else None."""

    def is_open(self, now: datetime) -> bool:
        if self.closes_at is None:
            return True
        closes_at = self.closes_at
        if closes_at.tzinfo is None:  # SQLite hands back naive datetimes (UTC)
            closes_at = closes_at.replace(tzinfo=UTC)
        return now < closes_at


def load_content(db: Session, poll: PollSession) -> SessionContent:
    """The session's texts from the talk version it was created with: they never change (an
    edit of the talk makes a new version, which only new sessions use), so this process keeps
    them for the session's life."""
    talk = session_talk(db, poll)
    assert poll.id is not None
    phases = []
    for view in session_phases(db, poll):
        assert view.phase.id is not None
        phases.append(
            PhaseContent(
                id=view.phase.id,
                key=view.key,
                kind=view.phase.kind,
                number=view.state.position + 1,
                questions=dict(view.phase.questions),
                options=tuple(
                    OptionContent(id=o.id, key=o.key, labels=dict(o.labels))
                    for o in view.options
                    if o.id is not None
                ),
                min_value=view.phase.min_value,
                max_value=view.phase.max_value,
                answer=view.phase.answer,
                settings=dict(view.phase.settings or {}),
            )
        )
    return SessionContent(
        id=poll.id,
        code=poll.code,
        language=poll.language,
        languages=tuple(talk.languages),
        titles=dict(talk.titles),
        phases=tuple(phases),
        unlinked=poll.unlinked,
    )


@dataclass(frozen=True)
class LiveState:
    """Which phases of a session are open (with their countdowns) and which are revealed."""

    open: tuple[OpenPhase, ...]
    revealed: frozenset[str]
    ended: bool = False
    """The presenter ended the session: phones show so, votes are refused."""


@dataclass(frozen=True)
class SessionPhases:
    """A session's row and its phases with their states, as one read found them: what the live
    updates of every stream are drawn from (the ``state`` event, the counts' phases), kept by
    ``SessionCache`` until the session's next phase change. Its rows are detached copies: read
    them, never change or store them."""

    poll: PollSession
    views: tuple[SessionPhaseView, ...]
    version: int = 0
    """The session's phase changes seen by the cache before the read (``SessionCache.versions``)."""

    @property
    def revealed(self) -> bool:
        """Whether any phase is revealed (else the phones' results show none of the answers)."""
        return any(view.state.revealed for view in self.views)


def load_phases(db: Session, content: SessionContent, version: int = 0) -> SessionPhases:
    poll = db.get(PollSession, content.id)
    if poll is None:
        raise NotFound(f"no session with code '{content.code}'", code="unknown_session")
    return SessionPhases(poll=poll, views=tuple(session_phases(db, poll)), version=version)


def live_state(content: SessionContent, phases: SessionPhases) -> LiveState:
    """Which of the session's phases are open and revealed, from its phases as read."""
    keys = {p.id: p.key for p in content.phases}
    rows = [(v.state.phase_id, v.state) for v in phases.views if v.state.phase_id in keys]
    return LiveState(
        ended=phases.poll.ended,
        open=tuple(
            OpenPhase(key=keys[phase_id], closes_at=row.closes_at)
            for phase_id, row in rows
            if row.state == PhaseState.open
        ),
        revealed=frozenset(keys[phase_id] for phase_id, row in rows if row.revealed),
    )


T = TypeVar("T")

LOAD_LOCKS = 64


class SessionCache:
    """Session texts and live phase states for this process, shared by every phone.

    It is a Publisher: the domain's facts (and the facts other processes send, through the
    broadcaster) move a session's versions on, and a read after that loads afresh. A load
    stores its result only under the version it started from, so a change that commits while
    it reads is never hidden. Thread-safe; a session's loads run under a lock of their own
    (shared with the sessions whose codes fall in the same of ``LOAD_LOCKS``), so a room that
    arrives together costs one read, and sessions changing at once (a conference's rooms
    opening their questions together) are mostly read side by side, not one after another."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._locks = tuple(threading.Lock() for _ in range(LOAD_LOCKS))
        """A session's loads take the lock of its code's hash: a fixed set, however many codes
        (unknown ones included) are asked for."""
        self._content: dict[str, SessionContent] = {}
        self._states: dict[str, tuple[int, LiveState]] = {}
        self._phases: dict[str, SessionPhases] = {}
        self._versions: dict[str, tuple[int, int]] = {}
        self._versions_lock = threading.Lock()
        """Held only to move versions on, never while reading the database."""

    def publish(self, fact: SessionChanged) -> None:
        if fact.every_session:
            self.publish_all()
            return
        if fact.gone:  # deleted: its texts go too (the next read finds no such session)
            self._content.pop(fact.code, None)
            self._states.pop(fact.code, None)
            self._phases.pop(fact.code, None)
        with self._versions_lock:  # facts come from request threads, the writer and the loop
            phases, answers = self._versions.get(fact.code, (0, 0))
            self._versions[fact.code] = (
                (phases + 1, answers) if fact.phases else (phases, answers + 1)
            )

    def publish_all(self) -> None:
        """Every session may have changed (facts may have been missed): each one loads afresh."""
        with self._versions_lock:
            for code in set(self._versions) | set(self._states) | set(self._phases):
                phases, answers = self._versions.get(code, (0, 0))
                self._versions[code] = (phases + 1, answers + 1)

    def versions(self, code: str) -> tuple[int, int]:
        """(phase changes, answer changes) seen for the session, for caches built on this."""
        return self._versions.get(code, (0, 0))

    def cached_content(self, code: str) -> SessionContent | None:
        """The session's texts if already loaded (never reads; safe on the event loop)."""
        return self._content.get(code)

    def content(self, code: str) -> SessionContent:
        """The session's texts (raises NotFound); ``code`` as normalized."""
        found = self._content.get(code)
        if found is None:
            found = self._load(code, lambda: self._content.get(code), self._read_content(code))
        return found

    def cached_state(self, content: SessionContent) -> LiveState | None:
        """The live state if it is current (never reads; safe on the event loop)."""
        cached = self._states.get(content.code)
        if cached is not None and cached[0] == self.versions(content.code)[0]:
            return cached[1]
        return None

    def state(self, content: SessionContent) -> LiveState:
        """The session's open and revealed phases as of its latest phase change."""
        found = self.cached_state(content)
        if found is not None:
            return found
        phases = self.phases(content)
        state = live_state(content, phases)
        self._states[content.code] = (phases.version, state)
        return state

    def phases(self, content: SessionContent) -> SessionPhases:
        """The session's row and phases as of its latest phase change (raises NotFound): one
        read per phase change for everything this process draws of the session live."""
        version = self.versions(content.code)[0]

        def fresh() -> SessionPhases | None:
            again = self._phases.get(content.code)
            return again if again is not None and again.version == version else None

        def read() -> SessionPhases:
            with Session(self._engine) as db:
                phases = load_phases(db, content, version)
            self._phases[content.code] = phases
            return phases

        return fresh() or self._load(content.code, fresh, read)

    def _read_content(self, code: str) -> Callable[[], SessionContent]:
        def read() -> SessionContent:
            with Session(self._engine) as db:
                content = load_content(db, get_session(db, code))
            self._content[content.code] = content
            return content

        return read

    def _load(self, code: str, fresh: Callable[[], T | None], read: Callable[[], T]) -> T:
        with self._locks[hash(code) % LOAD_LOCKS]:
            found = fresh()
            if found is not None:
                return found
            return read()
