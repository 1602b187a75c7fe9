"""What a phone shows: the open questions of a session in talk order, the participant's own
answers, a countdown when one runs, and the results the audience may see (``RoomResults``: the
revealed phases, the belief gap and how views moved, newest first, and a summary once the
session has ended).

View models for the audience pages, the in-process read model they are built from, and the
reading of the audience's vote form. No HTTP here: the routes turn requests into these calls
and these values into templates.

Views are built from what every phone of a session shares (its texts and live state, which
``app.sessions.SessionCache`` keeps) and the phone's own answers, so what is the same for the
whole room is drawn once and only a phone's answers are read per phone.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError
from sqlmodel import Session, col, select

from app import formats, i18n
from app.errors import DomainError, Invalid
from app.formats.base import form_field
from app.models import Participant, PhaseKind, PollSession, Response, TextAnswer, VoteIn
from app.results import GapResult, PhaseResult, ShiftResult, phase_results, session_results
from app.sessions import (
    LiveState,
    OpenPhase,
    PhaseContent,
    SessionContent,
    best_language,
)

MAX_ANSWERED_LENGTH = 2048
"""The ``answered`` field of the vote form (the phases a phone says it answered)."""


# --------------------------------------------------------------------------- a phone's own


@dataclass(frozen=True)
class Answer:
    """A phone's answer to one phase; ``choice`` and ``value`` both None when only the fact
    that it answered is known (what the phone's page reports of other open questions)."""

    choice: str | None = None
    value: float | None = None
    payload: Any = None
    """The answer of a format of its own (a ranking: option ids, first ranked highest)."""


def own_answers(db: Session, content: SessionContent, token: str | None) -> dict[str, Answer]:
    """This phone's answers in the session, by phase key (one query; none without a token)."""
    if not token:
        return {}
    rows = db.exec(
        select(Response.phase_id, Response.option_id, Response.value, Response.payload)
        .join(Participant, col(Participant.id) == Response.participant_id)
        .where(Participant.session_id == content.id, Participant.token == token)
    )
    phases = {p.id: p for p in content.phases}
    found = {
        phases[phase_id].key: Answer(phases[phase_id].option_key(option_id), value, payload)
        for phase_id, option_id, value, payload in rows
        if phase_id in phases
    }
    if any(p.answer == "text" and p.key in found for p in content.phases):
        texts: dict[str, dict[int, str]] = {}
        for phase_id, slot, text in db.exec(  # the phone's own answers, whatever their state
            select(TextAnswer.phase_id, TextAnswer.slot, TextAnswer.text)
            .join(Participant, col(Participant.id) == TextAnswer.participant_id)
            .where(Participant.session_id == content.id, Participant.token == token)
        ):
            if phase_id in phases:
                texts.setdefault(phases[phase_id].key, {})[slot] = text
        for key, given in texts.items():
            found[key] = Answer(payload=given)
    return found


def answered_from_form(text: str | None, content: SessionContent) -> dict[str, Answer]:
    """The phases a phone's page says it answered (``a,b,c``): only used to label the other
    open questions, so anything unknown is ignored rather than refused."""
    keys = (text or "")[:MAX_ANSWERED_LENGTH].split(",")
    return {key: Answer() for key in keys if content.phase(key) is not None}


# --------------------------------------------------------------------------- what a phone sees


@dataclass(frozen=True)
class OptionView:
    key: str
    label: str
    chosen: bool


@dataclass(frozen=True)
class QuestionView:
    """One open phase as the participant sees it."""

    key: str
    kind: PhaseKind
    number: int
    """The phase's place in the talk, from 1."""
    text: str
    options: list[OptionView]
    min_value: float | None
    max_value: float | None
    answered: bool
    value: float | None
    """The participant's current estimate (a % estimate phase only)."""
    seconds_left: int | None
    """Whole seconds until a running countdown closes the phase; None without a countdown."""
    closes_at: datetime | None = None
    """The countdown's end as stored (for the open-phases signature)."""
    answer: str = "option"
    """The phase's answer format (``app.formats``)."""
    given: Any = None
    """The participant's current answer of a format of its own (a ranking's order)."""
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_estimate(self) -> bool:
        return self.min_value is not None and self.max_value is not None

    @property
    def template(self) -> str:
        """The phone's question for this phase's answer format."""
        return formats.by_name(self.answer).phone_template


@dataclass(frozen=True)
class AudienceView:
    """Everything the voting page shows one participant, or (``shared``) what every phone that
    has not answered the open questions sees. Context for the audience templates."""

    code: str
    title: str
    content_lang: str
    """The language of the talk's texts (the talk may lack the interface language)."""
    questions: list[QuestionView]
    """The open phases, in talk order."""
    current: QuestionView | None
    """The question on screen; None shows the waiting screen."""
    results: RoomResults | None = None
    """What the room may see of the results (None: nothing revealed)."""
    answered: frozenset[str] = frozenset()
    """The phases this phone answered (what its page remembers between pushed panels)."""
    shared: bool = False
    """Drawn for every phone (pushed through the live stream), not for one."""
    ended: bool = False
    """The presenter ended the session: the phone says so instead of asking."""
    languages: tuple[str, ...] = ()
    """The interface languages the talk is written in: the language switch offers only these
    (none for a talk in one language)."""
    scripts: tuple[str, ...] = ()
    """The scripts (under ``static/``) of the answer formats the session's talk uses, which
    the page loads once for every question the stream may push."""

    @property
    def others(self) -> list[QuestionView]:
        """The other open questions, for the small list under the current one."""
        current = self.current
        return [q for q in self.questions if current is None or q.key != current.key]

    @property
    def next_unanswered(self) -> QuestionView | None:
        """Another open question still waiting for this participant's answer."""
        current = self.current
        after = [q for q in self.others if current is None or q.number > current.number]
        before = [q for q in self.others if current is not None and q.number < current.number]
        return next((q for q in after + before if not q.answered), None)

    @property
    def open_signature(self) -> str:
        """The open phases and their countdowns' ends (whole Unix seconds), as the page's script
        derives them from the live ``state`` event (``id@seconds;...``): when they are equal, the
        panel is up to date and a pushed one need not replace it. An ended session has its own
        (no phase id looks like it)."""
        if self.ended:
            return "!ended"
        return ";".join(f"{q.key}@{_epoch(q.closes_at)}" for q in self.questions)

    def question(self, key: str | None) -> QuestionView | None:
        return next((q for q in self.questions if q.key == key), None)


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment  # SQLite: naive UTC


def _epoch(moment: datetime | None) -> str:
    return "" if moment is None else str(math.floor(_aware(moment).timestamp()))


def _seconds_left(phase: OpenPhase, now: datetime) -> int | None:
    if phase.closes_at is None:
        return None
    return max(0, math.ceil((_aware(phase.closes_at) - now).total_seconds()))


def _question(
    phase: PhaseContent, live: OpenPhase, lang: str, answer: Answer | None, now: datetime
) -> QuestionView:
    return QuestionView(
        key=phase.key,
        kind=phase.kind,
        number=phase.number,
        text=i18n.text_in(phase.questions, lang),
        options=[
            OptionView(
                key=option.key,
                label=i18n.text_in(option.labels, lang),
                chosen=answer is not None and answer.choice == option.key,
            )
            for option in phase.options
        ],
        min_value=phase.min_value,
        max_value=phase.max_value,
        answered=answer is not None,
        value=answer.value if answer is not None else None,
        seconds_left=_seconds_left(live, now),
        closes_at=live.closes_at,
        answer=phase.answer,
        given=answer.payload if answer is not None else None,
        settings=phase.settings,
    )


def phone_languages(talk_languages: Collection[str]) -> tuple[str, ...]:
    """The interface languages a phone may switch between for a talk: those the talk is written
    in (another would translate the buttons and leave every question as it was)."""
    spoken = {i18n.supported(tag) for tag in talk_languages}
    return tuple(lang for lang in i18n.LANGUAGES if lang in spoken)


def phone_language(talk_languages: Collection[str], wanted: str) -> str:
    """The interface language for a phone that asks for ``wanted`` (a supported language): the
    nearest the talk offers, or ``wanted`` itself when the talk has no interface language."""
    offered = phone_languages(talk_languages)
    return wanted if wanted in offered or not offered else best_language(offered, wanted)


def build_view(
    content: SessionContent,
    state: LiveState,
    answers: Mapping[str, Answer],
    lang: str,
    *,
    wanted: str | None = None,
    results: RoomResults | None = None,
    shared: bool = False,
    now: datetime | None = None,
) -> AudienceView:
    """What a phone with these answers sees, with the talk's texts in ``lang`` if the talk has
    it. ``wanted`` asks for one open phase; otherwise the first open phase this participant
    has not answered is shown, else the first open phase, else the waiting screen."""
    now = now or datetime.now(UTC)
    content_lang = content.content_lang(lang)
    live = {} if state.ended else {p.key: p for p in state.open if p.is_open(now)}
    questions = [
        _question(phase, live[phase.key], content_lang, answers.get(phase.key), now)
        for phase in content.phases
        if phase.key in live
    ]
    current = next((q for q in questions if q.key == wanted), None)
    if current is None:
        current = next((q for q in questions if not q.answered), None)
    if current is None and questions:
        current = questions[0]
    return AudienceView(
        code=content.code,
        title=i18n.text_in(content.titles, content_lang),
        content_lang=content_lang,
        questions=questions,
        current=current,
        results=results,
        answered=frozenset(answers),
        shared=shared,
        ended=state.ended,
        languages=phone_languages(content.languages),
        scripts=format_scripts(content),
    )


def format_scripts(content: SessionContent) -> tuple[str, ...]:
    """The phone scripts of the answer formats the session's phases use, in registry order."""
    used = {phase.answer for phase in content.phases}
    return tuple(f.phone_script for f in formats.FORMATS if f.name in used and f.phone_script)


# --------------------------------------------------------------------------- what the room sees


NEVER = datetime.min.replace(tzinfo=UTC)
"""The reveal time of what has none (an exported session): before every other."""


@dataclass(frozen=True)
class Shown:
    """One item of the phone's results: how views moved, the belief gap, or one phase."""

    kind: Literal["shift", "gap", "phase"]
    position: float
    """Its place in the talk (the phase it waited for), for the newest-first order."""
    phase: PhaseResult | None = None
    when: datetime = NEVER
    """When it was revealed (NEVER when not known)."""


@dataclass(frozen=True)
class RoomResults:
    """What every phone shows of a session's results (context for ``_revealed.html``, drawn
    once per session and language): the revealed phases, and the belief gap and how views
    moved once the phases each pairs are all revealed and closed. Linked figures wait for the
    close (docs/methods.md, "Small cells"): redrawn after every vote, they would tell each
    voter's pair of answers. What the statistics hide (small cells, the
    estimates of a small group) stays hidden: the charts and sentences are the ones the
    projector and the results pages draw from the same results."""

    phases: list[PhaseResult] = field(default_factory=list)
    """The revealed phases, in talk order."""
    gap: GapResult | None = None
    shift: ShiftResult | None = None
    moved: ShiftResult | None = None
    """The movement the revote's card may tell in the projector's sentence
    (``charts.movement_sentence``): once the revote is revealed and it and the stance are
    closed, as the projector's revote slide waits for (``app.presenter.revealed_slide``), the
    stance revealed or not. Never more than that slide says."""
    ended: bool = False
    """The presenter ended the session: the phone keeps a summary of the talk."""
    order: Mapping[str, int] = field(default_factory=dict)
    """Phase key -> its place in the talk."""

    @property
    def newest_first(self) -> list[Shown]:
        """Everything shown, the most recently revealed first (what the speaker is talking
        about): the gap and the movement when the later of the phases they pair was revealed,
        each above its phase; where times tie or are not known (an exported session), later
        in the talk first."""
        revealed = {p.key: p.revealed_at for p in self.phases}

        def when(*keys: str) -> datetime:
            times = [revealed.get(key) for key in keys]
            return max((_aware(t) for t in times if t is not None), default=NEVER)

        items = [Shown("phase", self.order.get(p.key, 0), p, when(p.key)) for p in self.phases]
        if self.gap is not None:
            position = self.order.get(self.gap.perceived, 0) + 0.5
            items.append(Shown("gap", position, when=when(self.gap.stance, self.gap.perceived)))
        if self.shift is not None:
            position = self.order.get(self.shift.to_phase, 0) + 0.5
            shown = when(self.shift.from_phase, self.shift.to_phase)
            items.append(Shown("shift", position, when=shown))
        return sorted(items, key=lambda item: (item.when, item.position), reverse=True)

    @property
    def punchline(self) -> bool:
        """Whether the gap or the movement is shown."""
        return self.gap is not None or self.shift is not None


def _closed(result: PhaseResult | None) -> bool:
    return result is not None and result.state == "closed"


def _settled(result: PhaseResult | None) -> bool:
    """Revealed and closed: a linked figure over this phase may be drawn."""
    return _closed(result) and result is not None and result.revealed


def needs_analysis(phases: Collection[PhaseResult]) -> bool:
    """Whether a gap or a movement may be shown, so the session's full analysis is worth
    reading: a stance and a perceived phase or a revote, all revealed and closed, or a revote
    revealed and closed after a closed stance (its card tells how the room moved)."""
    settled = {p.kind for p in phases if _settled(p)}
    closed = {p.kind for p in phases if _closed(p)}
    return (PhaseKind.stance in settled and PhaseKind.perceived in settled) or (
        PhaseKind.revote in settled and PhaseKind.stance in closed
    )


def room_results(
    phases: Sequence[PhaseResult],
    gap: GapResult | None = None,
    shift: ShiftResult | None = None,
    *,
    ended: bool = False,
) -> RoomResults:
    """What the room may see of these results (every phase of the session, in talk order, and
    the session's gap and shift when there are any): no database, so a session exported and
    read back is shown the same."""
    by_key = {p.key: p for p in phases}
    if gap is not None and not (
        _settled(by_key.get(gap.stance)) and _settled(by_key.get(gap.perceived))
    ):
        gap = None
    moved = shift
    if moved is not None and not (
        _closed(by_key.get(moved.from_phase)) and _settled(by_key.get(moved.to_phase))
    ):
        moved = None
    if shift is not None and not (
        _settled(by_key.get(shift.from_phase)) and _settled(by_key.get(shift.to_phase))
    ):
        shift = None
    return RoomResults(
        phases=[p for p in phases if p.revealed],
        gap=gap,
        shift=shift,
        moved=moved,
        ended=ended,
        order={p.key: index for index, p in enumerate(phases)},
    )


def load_room_results(
    db: Session,
    poll: PollSession,
    phases: Sequence[PhaseResult] | None = None,
    kept: KeyFigures | None = None,
    version: int = 0,
) -> RoomResults:
    """The room's results of a session from the database: the phases' counts (``phases`` when
    the caller has read them already: one cheap query, as on every live tick), and the gap and
    the movement from the whole analysis once they may be shown, taken from ``kept`` while the
    answers they pair have not changed (``version``: the session's phase changes seen, read
    before ``phases``)."""
    if phases is None:
        phases = phase_results(db, poll)
    if not needs_analysis(phases):
        return room_results(phases, ended=poll.ended)
    key = _paired_answers_key(phases, version)
    found = kept.get(poll.code, key) if kept is not None else None
    if found is None:
        full = session_results(db, poll)
        found = (full.gap, full.shift)  # what may be shown of them is decided below, each time
        if kept is not None:
            kept.put(poll.code, key, found)
    return room_results(phases, *found, ended=poll.ended)


def _paired_answers_key(phases: Sequence[PhaseResult], version: int) -> tuple[object, ...]:
    """What the shown gap and movement depend on: the answers of the closed phases (only
    closed phases' figures are shown). Those change only when a person erases their answers
    (their counts fall) or the phase opens again (a phase change, ``version``, as a reveal
    is)."""
    return (
        version,
        tuple(
            (p.key, p.n, tuple(o.count for o in p.options), tuple(sorted(p.values)))
            for p in phases
            if _closed(p)
        ),
    )


class KeyFigures:
    """The gap and the movement the phones were last shown, per session: while the phases they
    pair are closed, the votes that keep arriving on an open question do not change them, so a
    live tick need not read and analyse every answer again (about 60 ms for a room of 2,000).
    Thread-safe; one entry per session."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[object, tuple[GapResult | None, ShiftResult | None]]] = {}
        self._lock = threading.Lock()

    def get(self, code: str, key: object) -> tuple[GapResult | None, ShiftResult | None] | None:
        with self._lock:
            found = self._kept.get(code)
        return found[1] if found is not None and found[0] == key else None

    def put(
        self, code: str, key: object, figures: tuple[GapResult | None, ShiftResult | None]
    ) -> None:
        with self._lock:
            self._kept[code] = (key, figures)


# --------------------------------------------------------------------------- the vote form


def vote_from_form(form: Mapping[str, str | None], content: SessionContent) -> VoteIn:
    """The vote in the audience's form: ``phase``, and the answer as the phase's format reads
    it from its question's fields (``app.formats``)."""
    key = form_field(form, "phase")
    if not key:
        raise Invalid("the form names no question", code="unknown_phase")
    phase = content.phase(key)
    if phase is None:
        raise Invalid(f"no phase '{key}' in this session", code="unknown_phase")
    fields = formats.by_name(phase.answer).from_form(form)
    try:
        return VoteIn(phase=key, **fields)
    except ValidationError:
        raise Invalid("the vote form is not valid", code="invalid_form") from None


# Refusals as messages in the phone's language (ids in app/locales/audience.toml).
REFUSAL_MESSAGES = {
    "phase_not_open": "aud_err_closed",
    "session_ended": "aud_err_ended",
    "unknown_phase": "aud_err_unknown_phase",
    "unknown_option": "aud_err_option",
    "missing_choice": "aud_err_option",
    "wrong_type": "aud_err_option",
    "invalid_form": "aud_err_option",
    "field_too_long": "aud_err_option",
    "out_of_range": "aud_err_range",
    "missing_value": "aud_err_untouched",
    "not_a_number": "aud_err_number",
    "no_participant": "aud_err_cookie",
    "shutting_down": "aud_err_restarting",
    "database_unavailable": "aud_err_restarting",
    "vote_not_confirmed": "aud_err_not_confirmed",
    "too_many_votes": "aud_err_too_fast",
    "too_many_new_participants": "aud_err_many_new",
}


def refusal_message_id(error: DomainError | str) -> str:
    """The message id that explains a refused vote (a domain error or its code) to the phone."""
    code = error if isinstance(error, str) else error.code
    return REFUSAL_MESSAGES.get(code) or formats.refusal_message(code) or "aud_err_option"


def is_refusal_code(code: str | None) -> bool:
    return code in REFUSAL_MESSAGES
