"""Poll sessions: create one for a talk, find it by join code, describe its state and its talk."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.errors import Invalid, NotFound
from app.models import (
    OptionPublic,
    Participant,
    Phase,
    PhaseOption,
    PhasePublic,
    PhaseState,
    PhaseStatePublic,
    PollSession,
    SessionPhase,
    SessionPublic,
    Talk,
    TalkPublic,
)

# No look-alikes: no 0/O, no 1/I/L, so a code read off a projector is typed right the first time.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
CODE_ATTEMPTS = 20


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(text: str) -> str:
    """What a person typed (any case, spaces, dashes) as a join code."""
    return "".join(ch for ch in text.upper() if not ch.isspace() and ch != "-")


def pick_language(talk: Talk, wanted: str | None) -> str:
    """The best of the talk's languages for a requested tag (``zh-CN`` finds ``zh-Hans``)."""
    if wanted:
        for lang in talk.languages:
            if lang.lower() == wanted.lower():
                return lang
        prefix = wanted.split("-")[0].lower()
        for lang in talk.languages:
            if lang.split("-")[0].lower() == prefix:
                return lang
    return talk.languages[0]


def get_talk(db: Session, slug: str) -> Talk:
    talk = db.exec(select(Talk).where(Talk.slug == slug)).first()
    if talk is None:
        raise NotFound(f"no talk '{slug}'", code="unknown_talk")
    return talk


def list_talks(db: Session) -> list[Talk]:
    return list(db.exec(select(Talk).order_by(col(Talk.slug))))


def create_session(
    db: Session,
    *,
    talk_slug: str,
    venue: str,
    held_on: date | None = None,
    language: str | None = None,
) -> PollSession:
    talk = get_talk(db, talk_slug)
    venue = venue.strip()
    if not venue:
        raise Invalid("the venue must not be empty", code="empty_venue")
    if language and language not in talk.languages:
        raise Invalid(
            f"talk '{talk.slug}' has no language '{language}' ({', '.join(talk.languages)})",
            code="unknown_language",
        )
    phases = db.exec(
        select(Phase)
        .where(Phase.talk_id == talk.id, col(Phase.retired).is_(False))
        .order_by(col(Phase.position))
    ).all()
    for _attempt in range(CODE_ATTEMPTS):
        poll = PollSession(
            code=new_code(),
            talk_id=talk.id or 0,
            venue=venue,
            held_on=held_on or datetime.now(UTC).date(),
            language=language or talk.languages[0],
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
            db.add(SessionPhase(session_id=poll.id, phase_id=phase.id, position=position))
        db.commit()
        db.refresh(poll)
        return poll
    raise RuntimeError("could not find a free join code")  # pragma: no cover (31^6 codes)


def get_session(db: Session, code: str) -> PollSession:
    poll = db.exec(select(PollSession).where(PollSession.code == normalize_code(code))).first()
    if poll is None:
        raise NotFound(f"no session with code '{normalize_code(code)}'", code="unknown_session")
    return poll


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
    rows = db.exec(
        select(SessionPhase, Phase)
        .join(Phase, col(Phase.id) == SessionPhase.phase_id)
        .where(SessionPhase.session_id == poll.id)
        .order_by(col(SessionPhase.position))
    ).all()
    phase_ids = [phase.id for _, phase in rows]
    options: dict[int, list[PhaseOption]] = {pid: [] for pid in phase_ids if pid is not None}
    for option in db.exec(
        select(PhaseOption)
        .where(col(PhaseOption.phase_id).in_(phase_ids), col(PhaseOption.retired).is_(False))
        .order_by(col(PhaseOption.position))
    ):
        options[option.phase_id].append(option)
    return [
        SessionPhaseView(phase=phase, state=state, options=options.get(phase.id or 0, []))
        for state, phase in rows
    ]


def participant_count(db: Session, poll: PollSession) -> int:
    return db.exec(
        select(func.count()).select_from(Participant).where(Participant.session_id == poll.id)
    ).one()


def session_public(db: Session, poll: PollSession) -> SessionPublic:
    talk = db.get(Talk, poll.talk_id)
    assert talk is not None
    return SessionPublic(
        code=poll.code,
        talk=talk.slug,
        venue=poll.venue,
        held_on=poll.held_on,
        language=poll.language,
        participants=participant_count(db, poll),
        phases=[
            PhaseStatePublic(
                id=view.key,
                kind=view.phase.kind,
                state=view.effective_state,
                revealed=view.state.revealed,
                closes_at=view.state.closes_at if view.is_open else None,
            )
            for view in session_phases(db, poll)
        ],
    )


def talk_public(db: Session, talk: Talk, language: str | None = None) -> TalkPublic:
    lang = pick_language(talk, language)
    phases = db.exec(
        select(Phase)
        .where(Phase.talk_id == talk.id, col(Phase.retired).is_(False))
        .order_by(col(Phase.position))
    ).all()
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
                min=phase.min_value,
                max=phase.max_value,
            )
            for phase in phases
        ],
    )
