"""``text``: an open answer in a few words ("why?"), moderated, summarised as a word cloud.

In a talk file, ``answer = "text"`` on a choice phase (no options), with its settings:

- ``max_chars``: characters allowed in one answer (default 40, 10-200), counted as a reader
  counts them (``text_rules.length``);
- ``answers_per_phone``: how many answers one phone may give (1-3, default 1);
- ``moderation``: ``"pre"`` (the default: an answer waits, pending, until the presenter or a
  moderator shows it) or ``"post"`` (shown at once; the moderator may hide it later);
- ``blocklist = {mode = "block" | "mask", words = [...]}``: what this phase adds to the talk's
  blocklist. The talk has one too, at its top level, in the same shape (``check_blocklist``):
  every open-text phase screens its answers with the seeded English and Chinese lists, the talk's
  words and its own; its mode is its own when it names one, else the talk's, else ``block``.
  ``block`` stores a matching answer hidden, never shown; ``mask`` replaces the matching word's
  letters with "•". The talk's list reaches each phase at reading, as ``talk_blocklist`` in its
  settings (so a vote is checked from the phase alone); files write it once, at the top.

A vote is ``{"phase": "why", "text": "...", "slot": 0}``: ``slot`` (0 up to
``answers_per_phone`` - 1, default 0) says which of the phone's answers it is; sending a slot
again replaces that answer (and it waits for moderation again). Refused text (empty, too long,
control, bidi or invisible characters) is a 422 with ``text_<reason>`` and nothing is stored.

Storage: each answer is a ``TextAnswer`` row (display text, counted key, state) written in the
transaction of the phase's ``Response`` (which marks the phone as having answered and carries
no text). The summary counts the answers in each state and the terms (``terms.py``) of the
shown ones only; nothing of a pending or hidden answer but its count leaves the presenter's
queue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, Field

from app.errors import Invalid
from app.formats import terms as term_list
from app.formats import text_rules
from app.formats.base import (
    AskedPhase,
    DataColumn,
    FormatPart,
    Given,
    PhaseParse,
    ShownPhase,
)
from app.models import PhaseKind
from app.talkcheck import Checker, Loc, PhaseDef

if TYPE_CHECKING:
    from app.charts.svg import Chart
    from app.models import Phase, VoteIn

DEFAULT_PER_PHONE = 1
MAX_PER_PHONE = 3
MODERATIONS = ("pre", "post")
FORM_TEXT = "text"
FORM_SLOT = "slot"


@dataclass(frozen=True)
class TextGiven:
    """A checked answer, as ``voting`` writes it (``Given.payload`` of a text phase)."""

    slot: int
    text: str
    norm: str
    state: Literal["pending", "shown", "hidden"]


@dataclass(frozen=True)
class TextSummary:
    """A text phase's answers: how many phones and answers, in which state, and the terms of the
    shown ones. It holds no text of an answer that is not shown."""

    n: int
    """Phones that answered."""
    shown: int
    pending: int
    hidden: int
    terms: tuple[term_list.Term, ...]


class TermJSON(BaseModel):
    term: str = Field(description="the term as most often written")
    count: int = Field(description="shown answers that use it")


class TextPhaseJSON(BaseModel):
    """A phase answered in a few words: the terms of the answers the moderator showed."""

    kind: str
    answer: Literal["text"] = "text"
    n: int = Field(description="phones that answered")
    shown: int = Field(description="answers shown")
    pending: int = Field(description="answers waiting for moderation (their text is not given)")
    hidden: int = Field(description="answers hidden or blocked (their text is not given)")
    terms: list[TermJSON] = Field(
        description="at most 50 terms of the shown answers, most used first"
    )


TALK_BLOCKLIST = "talk_blocklist"
"""The key of a phase's settings that carries its talk's blocklist (not written in its file)."""


def settings_of(settings: Mapping[str, Any]) -> tuple[int, int, str, str, tuple[str, ...]]:
    """max_chars, answers_per_phone, moderation, blocklist mode and words (defaults filled in;
    the blocklist is the talk's and the phase's together, the phase's mode first)."""
    own = settings.get("blocklist") or {}
    talk = settings.get(TALK_BLOCKLIST) or {}
    return (
        int(settings.get("max_chars", text_rules.DEFAULT_LIMIT)),
        int(settings.get("answers_per_phone", DEFAULT_PER_PHONE)),
        str(settings.get("moderation", "pre")),
        str(own.get("mode") or talk.get("mode") or "block"),
        tuple(dict.fromkeys([*talk.get("words", ()), *own.get("words", ())])),
    )


def check_blocklist(
    found: Any, check: Checker, loc: Loc, name: str | None
) -> dict[str, Any] | None:
    """A blocklist as written (the talk's or a phase's: ``{mode, words}``, both optional), or
    None with a problem when it is not one."""
    mode = found.get("mode") if isinstance(found, dict) else None
    words = found.get("words", []) if isinstance(found, dict) else None
    if (
        not isinstance(found, dict)
        or set(found) - {"mode", "words"}
        or (mode is not None and mode not in text_rules.MODES)
        or not isinstance(words, list)
        or not all(isinstance(w, str) and 0 < len(w) <= 100 for w in words)
        or len(words) > 500
    ):
        check.add(
            'the blocklist is {mode = "block" or "mask", words = ["...", ...]}',
            (*loc, "blocklist"),
            name,
            code="bad_blocklist",
        )
        return None
    return {**({"mode": mode} if mode is not None else {}), "words": list(words)}


@lru_cache(maxsize=64)
def blocklist(mode: str, words: tuple[str, ...]) -> text_rules.Blocklist:
    return text_rules.Blocklist.seeded(extra=words, mode="mask" if mode == "mask" else "block")


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


class TextFormat:
    name: ClassVar[str] = "text"
    kinds: ClassVar[frozenset[PhaseKind]] = frozenset({PhaseKind.choice})
    talk_keys: ClassVar[frozenset[str]] = frozenset(
        {"max_chars", "answers_per_phone", "moderation", "blocklist"}
    )
    vote_field: ClassVar[str] = "text"
    takes: ClassVar[str] = "a 'text'"
    noun: ClassVar[str] = "a text"
    phone_template: ClassVar[str] = "partials/audience/_text.html"
    phone_script: ClassVar[str | None] = "js/text.js"
    numeric: ClassVar[bool] = False
    uses_options: ClassVar[bool] = False
    editor_template: ClassVar[str | None] = "partials/presenter/_editor_text.html"
    editor_defaults: ClassVar[Mapping[str, Any]] = {
        "max_chars": text_rules.DEFAULT_LIMIT,
        "answers_per_phone": DEFAULT_PER_PHONE,
    }
    refusals: ClassVar[Mapping[str, str]] = {
        "missing_text": "text_refused_empty",
        "bad_slot": "text_refused_slot",
        **{f"text_{reason}": f"text_refused_{reason}" for reason in text_rules.REASONS},
    }
    own_results: ClassVar[bool] = True
    narrows: ClassVar[bool] = False
    result_model: ClassVar[type[BaseModel]] = TextPhaseJSON

    # ------------------------------------------------------------------ the talk and a vote

    def parse(self, phase: PhaseParse) -> FormatPart:
        raw, check, loc, name = phase.raw, phase.check, phase.loc, phase.name
        if phase.kind not in self.kinds:
            check.add(
                "open text is only for choice phases",
                (*loc, "answer"),
                name,
                code="answer_not_allowed",
                answer=self.name,
            )
        if "options" in raw:
            check.add(
                "an open-text phase has no 'options'",
                (*loc, "options"),
                name,
                code="text_no_options",
            )
        settings: dict[str, Any] = {}
        limit = raw.get("max_chars", text_rules.DEFAULT_LIMIT)
        if _whole(limit, text_rules.LIMIT_MIN, text_rules.LIMIT_MAX):
            settings["max_chars"] = limit
        else:
            check.add(
                f"'max_chars' must be a whole number from {text_rules.LIMIT_MIN} to "
                f"{text_rules.LIMIT_MAX}",
                (*loc, "max_chars"),
                name,
                code="bad_max_chars",
            )
        per_phone = raw.get("answers_per_phone", DEFAULT_PER_PHONE)
        if _whole(per_phone, 1, MAX_PER_PHONE):
            settings["answers_per_phone"] = per_phone
        else:
            check.add(
                f"'answers_per_phone' must be a whole number from 1 to {MAX_PER_PHONE}",
                (*loc, "answers_per_phone"),
                name,
                code="bad_answers_per_phone",
            )
        moderation = raw.get("moderation", "pre")
        if moderation in MODERATIONS:
            if moderation != "pre":
                settings["moderation"] = moderation
        else:
            check.add(
                '\'moderation\' must be "pre" or "post"',
                (*loc, "moderation"),
                name,
                code="bad_moderation",
            )
        own = check_blocklist(raw["blocklist"], check, loc, name) if "blocklist" in raw else None
        talk = phase.talk_blocklist
        if own is not None and (
            own["words"] or ("mode" in own and (talk or own["mode"] != "block"))
        ):
            # without words, only a mode that differs from what it would get says something
            settings["blocklist"] = own
        if talk:
            settings[TALK_BLOCKLIST] = dict(talk)
        return FormatPart(settings=settings)

    def to_dict(self, phase: PhaseDef) -> dict[str, Any]:
        return {k: v for k, v in phase.settings.items() if k != TALK_BLOCKLIST}

    def validate(self, phase: AskedPhase, vote: VoteIn) -> Given:
        limit, per_phone, moderation, mode, words = settings_of(phase.settings)
        if vote.text is None:
            raise Invalid(f"phase '{phase.key}' needs a 'text'", code="missing_text")
        slot = vote.slot or 0
        if not 0 <= slot < per_phone:
            raise Invalid(
                f"phase '{phase.key}' takes {per_phone} answer(s) per phone: 'slot' is 0 to "
                f"{per_phone - 1}",
                code="bad_slot",
            )
        verdict = text_rules.check(vote.text, limit)
        if verdict.text is None:
            raise Invalid(
                f"the text is refused: {verdict.reason}",
                code=f"text_{verdict.reason}",
            )
        screened = blocklist(mode, words).screen(verdict.text.display)
        state: Literal["pending", "shown", "hidden"] = (
            "hidden" if screened.hidden else "pending" if moderation == "pre" else "shown"
        )
        return Given(payload=TextGiven(slot, screened.text, text_rules.key(screened.text), state))

    def from_form(self, form: Mapping[str, str | None]) -> dict[str, Any]:
        raw = form.get(FORM_TEXT)
        slot = (form.get(FORM_SLOT) or "0").strip()
        if not slot.isascii() or not slot.isdigit() or len(slot) > 1:
            raise Invalid("'slot' is 0 to 2", code="bad_slot")
        if raw is not None and len(raw) > text_rules.RAW_MAX:  # no limit allows it
            raise Invalid("the text is refused: too_long", code="text_too_long")
        # the form's text is checked by ``validate`` as the API's is
        return {"text": raw, "slot": int(slot)}

    def public(self, min_value: float | None, max_value: float | None) -> dict[str, Any]:
        return {}

    def range(self, min_value: float | None, max_value: float | None) -> list[float] | None:
        return None

    # ------------------------------------------------------------------ results

    def summarize(self, options: tuple[str, ...], answers: Sequence[Any]) -> TextSummary:
        """``answers``: per phone, its answers as ``(text, state)`` pairs."""
        count = {"pending": 0, "shown": 0, "hidden": 0}
        shown: list[str] = []
        phones = 0
        for given in answers:
            if not isinstance(given, list | tuple):
                continue
            phones += 1
            for text, state in given:
                count[str(state)] = count.get(str(state), 0) + 1
                if state == "shown":
                    shown.append(text)
        return TextSummary(
            n=phones,
            shown=count["shown"],
            pending=count["pending"],
            hidden=count["hidden"],
            terms=tuple(term_list.terms(shown)),
        )

    def result_json(self, result: ShownPhase) -> TextPhaseJSON:
        summary: TextSummary = result.summary
        return TextPhaseJSON(
            kind=result.kind.value,
            n=summary.n,
            shown=summary.shown,
            pending=summary.pending,
            hidden=summary.hidden,
            terms=[TermJSON(term=t.text, count=t.count) for t in summary.terms],
        )

    def chart(
        self, result: ShownPhase, lang: str, wide: bool = False, slide_width: float | None = None
    ) -> Chart:
        """The word cloud of the shown answers: the same bytes on the projector (whatever
        ``wide`` and ``slide_width``: it has no narrower variant) and the results."""
        from app.charts.cloud import cloud_chart

        summary: TextSummary = result.summary
        chart = cloud_chart(list(summary.terms), summary.shown, lang)
        chart.name = f"phase-{result.key}"
        chart.title = result.question(lang)
        return chart

    def phone_chart(self, result: ShownPhase, lang: str) -> Chart:
        """The cloud narrowed for a phone."""
        from app.charts.cloud import cloud_chart

        summary: TextSummary = result.summary
        chart = cloud_chart(list(summary.terms), summary.shown, lang, phone=True)
        chart.title = result.question(lang)
        return chart

    # ------------------------------------------------------------------ exports

    def csv_columns(self, phase: Phase) -> list[str]:
        return []

    def csv_cells(self, payload: Any) -> dict[str, Any]:
        return {}

    def read_cells(self, row: Mapping[str, Any]) -> Any:
        return None  # its answers are rows of their own (text_answer), never cells of a response

    def data_columns(
        self, phases: Sequence[Mapping[str, Any]], languages: Sequence[str]
    ) -> list[DataColumn]:
        return []  # the shown answers belong in a table of their own (app/package/gather.py)

    def codebook(self, phase: Phase) -> dict[str, Any]:
        limit, per_phone, moderation, _, _ = settings_of(phase.settings or {})
        return {
            "text": {
                "max_chars": limit,
                "answers_per_phone": per_phone,
                "moderation": moderation,
                "note": "open-text answers are not in the response rows; the results give the "
                "terms of the answers shown",
            }
        }


FORMAT = TextFormat()
