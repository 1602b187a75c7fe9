"""What a phone shows: the open questions of a session in talk order, the participant's own
answers, a countdown when one runs, and the results the audience may see.

View models for the audience pages, the in-process read model they are built from, and the
reading of the audience's vote form. No HTTP here: the routes turn requests into these calls
and these values into templates.

Views are built from what every phone of a session shares (its texts and live state, which
``app.sessions.SessionCache`` keeps) and the phone's own answers, so what is the same for the
whole room is drawn once and only a phone's answers are read per phone.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import ValidationError
from sqlmodel import Session, col, select

from app import i18n
from app.errors import DomainError, Invalid
from app.models import Participant, PhaseKind, Response, VoteIn
from app.results import PhaseResult
from app.sessions import (
    LiveState,
    OpenPhase,
    PhaseContent,
    SessionContent,
)

MAX_FIELD_LENGTH = 64
"""Longer form fields than this are never a phase id, an option id or a number."""
MAX_ANSWERED_LENGTH = 2048
"""The ``answered`` field of the vote form (the phases a phone says it answered)."""


# --------------------------------------------------------------------------- a phone's own


@dataclass(frozen=True)
class Answer:
    """A phone's answer to one phase; ``choice`` and ``value`` both None when only the fact
    that it answered is known (what the phone's page reports of other open questions)."""

    choice: str | None = None
    value: float | None = None


def own_answers(db: Session, content: SessionContent, token: str | None) -> dict[str, Answer]:
    """This phone's answers in the session, by phase key (one query; none without a token)."""
    if not token:
        return {}
    rows = db.exec(
        select(Response.phase_id, Response.option_id, Response.value)
        .join(Participant, col(Participant.id) == Response.participant_id)
        .where(Participant.session_id == content.id, Participant.token == token)
    )
    phases = {p.id: p for p in content.phases}
    return {
        phases[phase_id].key: Answer(phases[phase_id].option_key(option_id), value)
        for phase_id, option_id, value in rows
        if phase_id in phases
    }


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

    @property
    def is_estimate(self) -> bool:
        return self.min_value is not None and self.max_value is not None


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
    results: list[PhaseResult] = field(default_factory=list)
    answered: frozenset[str] = frozenset()
    """The phases this phone answered (what its page remembers between pushed panels)."""
    shared: bool = False
    """Drawn for every phone (pushed through the live stream), not for one."""
    ended: bool = False
    """The presenter ended the session: the phone says so instead of asking."""

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
    )


def build_view(
    content: SessionContent,
    state: LiveState,
    answers: Mapping[str, Answer],
    lang: str,
    *,
    wanted: str | None = None,
    results: Collection[PhaseResult] = (),
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
        results=list(results),
        answered=frozenset(answers),
        shared=shared,
        ended=state.ended,
    )


# --------------------------------------------------------------------------- the vote form


def _field(form: Mapping[str, str | None], name: str) -> str:
    text = (form.get(name) or "").strip()
    if len(text) > MAX_FIELD_LENGTH:
        raise Invalid(f"the field '{name}' is too long", code="field_too_long")
    return text


def _number(text: str) -> float:
    try:
        number = float(text.replace(",", "."))
    except ValueError:
        raise Invalid(f"'{text}' is not a number", code="not_a_number") from None
    if not math.isfinite(number):
        raise Invalid(f"'{text}' is not a number", code="not_a_number")
    return number


def _snapped(number: float) -> float:
    """Where a slider with step 1 puts a value it is given (half a step rounds up)."""
    return math.floor(number + 0.5)


def vote_from_form(form: Mapping[str, str | None]) -> VoteIn:
    """The vote in the audience's form: ``phase`` and either ``choice`` or a number.

    A % estimate has a slider (``slider``) and a number field (``value``) that scripts keep
    equal. A range input always sends a value, so the slider counts only when it was moved:
    when it stands elsewhere than ``start``, where the page drew it. ``initial`` is what the
    number field showed then (the phone's earlier answer, or empty). A typed number that
    differs from it wins, then a moved slider, then an earlier answer sent again; a slider
    nobody moved and an empty field are no answer (``missing_value``), never the middle of the
    scale.
    """
    phase = _field(form, "phase")
    if not phase:
        raise Invalid("the form names no question", code="unknown_phase")
    choice = _field(form, "choice") or None
    typed = _field(form, "value")
    slider = _field(form, "slider")
    initial = _field(form, "initial")
    start = _field(form, "start") or initial
    value: float | None = None
    if choice is None:
        moved = bool(slider and start) and _number(slider) != _snapped(_number(start))
        if typed and typed != initial:
            value = _number(typed)
        elif moved:
            value = _number(slider)
        elif typed:
            value = _number(typed)
        else:
            raise Invalid("move the slider or type a number", code="missing_value")
    try:
        return VoteIn(phase=phase, choice=choice, value=value)
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
    "too_many_votes": "aud_err_too_fast",
}


def refusal_message_id(error: DomainError | str) -> str:
    """The message id that explains a refused vote (a domain error or its code) to the phone."""
    code = error if isinstance(error, str) else error.code
    return REFUSAL_MESSAGES.get(code, "aud_err_option")


def is_refusal_code(code: str | None) -> bool:
    return code in REFUSAL_MESSAGES
