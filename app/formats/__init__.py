"""Answer formats: how a person answers a phase, one module each, behind one protocol
(``app.formats.base.AnswerFormat``) and this registry.

``FORMATS`` lists every format the app knows, in the order the editor offers them; a talk
file's phase names its format with ``answer`` (``option``, ``number``...). Files from before
formats had names say nothing: a phase with a ``range`` is a ``number``, any other an
``option``. Adding a format: its module here, its line in ``FORMATS``, its phone template (and
script), its strings, docs and tests (README: "Adding an answer format").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from app.errors import Invalid
from app.formats import number, option, ranking, text
from app.formats.base import (
    VOTE_FIELDS,
    AnswerFormat,
    AskedPhase,
    FormatPart,
    Given,
    PhaseParse,
    Summarising,
)

if TYPE_CHECKING:
    from app.models import VoteIn

__all__ = [
    "FORMATS",
    "AnswerFormat",
    "FormatPart",
    "Given",
    "PhaseParse",
    "by_name",
    "inferred",
    "validate",
]

FORMATS: tuple[AnswerFormat, ...] = (option.FORMAT, number.FORMAT, ranking.FORMAT, text.FORMAT)

OPTION = option.FORMAT.name
NUMBER = number.FORMAT.name

_BY_NAME = {f.name: f for f in FORMATS}
_BY_FIELD = {f.vote_field: f for f in FORMATS}


def by_name(name: str) -> AnswerFormat:
    """The format called ``name`` (KeyError for none: names come from checked talks)."""
    return _BY_NAME[name]


def summarising(name: str) -> Summarising:
    """The format called ``name``, which summarises its own answers (``own_results``)."""
    found = _BY_NAME[name]
    assert found.own_results, f"the {name} format's answers are the statistics'"
    return cast(Summarising, found)


def summarisers() -> list[Summarising]:
    """The formats that summarise their own answers, in registry order."""
    return [cast(Summarising, f) for f in FORMATS if f.own_results]


def for_kind(kind: str) -> list[AnswerFormat]:
    """The formats a phase of this role may be answered with, in registry order."""
    return [f for f in FORMATS if kind in f.kinds]


def named_in(raw_phase: Mapping[str, Any]) -> AnswerFormat:
    """The format of a talk's phase (its structure): named, else inferred; ``option`` for a
    name that is none (the checks say so)."""
    name = raw_phase.get("answer", inferred(raw_phase))
    return _BY_NAME.get(name, option.FORMAT) if isinstance(name, str) else option.FORMAT


def refusal_message(code: str) -> str | None:
    """The phone's message id for a format's own refusal code, if a format has it."""
    return next((f.refusals[code] for f in FORMATS if code in f.refusals), None)


def known(name: object) -> bool:
    return isinstance(name, str) and name in _BY_NAME


def inferred(raw_phase: Mapping[str, Any]) -> str:
    """The format of a talk file's phase that does not name one: ``number`` with a ``range``,
    else ``option``."""
    return NUMBER if "range" in raw_phase else OPTION


def talk_keys() -> frozenset[str]:
    """Every field any format reads from a talk file's phase."""
    return frozenset().union(*(f.talk_keys for f in FORMATS))


def validate(phase: AskedPhase, vote: VoteIn) -> Given:
    """A vote's answer to a phase, checked by the phase's format (raises Invalid)."""
    answer = by_name(phase.answer)
    for name in VOTE_FIELDS:
        if name != answer.vote_field and getattr(vote, name) is not None:
            other = _BY_FIELD.get(name)
            noun = other.noun if other is not None else f"'{name}'"
            raise Invalid(
                f"phase '{phase.key}' takes {answer.takes}, not {noun}", code="wrong_type"
            )
    return answer.validate(phase, vote)
