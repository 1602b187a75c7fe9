"""``option``: pick one of the phase's options (the choice, stance and perceived questions of the
bundled talks, and every revote).

In a talk file, ``[[phases.options]]`` with an ``id`` and a ``label`` per language; a revote
takes its stance's options when it lists none, and one that lists them must list exactly its
stance's (ids, order and labels), so the before/after comparison compares one question with
itself. A vote is ``{"choice": "<option id>"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from app.errors import Invalid
from app.formats.base import AskedPhase, FormatPart, Given, PhaseParse, form_field
from app.models import PhaseKind
from app.talkcheck import (
    ID_RE,
    MAX_OPTIONS,
    OPTION_KEYS,
    Checker,
    Loc,
    OptionDef,
    PhaseDef,
    no_unknown_keys,
    texts,
)

if TYPE_CHECKING:
    from app.models import VoteIn


class OptionFormat:
    name: ClassVar[str] = "option"
    kinds: ClassVar[frozenset[PhaseKind]] = frozenset(PhaseKind)
    talk_keys: ClassVar[frozenset[str]] = frozenset({"options"})
    vote_field: ClassVar[str] = "choice"
    takes: ClassVar[str] = "a 'choice'"
    noun: ClassVar[str] = "a choice"
    phone_template: ClassVar[str] = "partials/audience/_choice.html"
    editor_defaults: ClassVar[Mapping[str, Any]] = {}
    refusals: ClassVar[Mapping[str, str]] = {}
    own_results: ClassVar[bool] = False
    uses_options: ClassVar[bool] = True
    editor_template: ClassVar[str | None] = None
    phone_script: ClassVar[str | None] = None
    numeric: ClassVar[bool] = False

    def parse(self, phase: PhaseParse) -> FormatPart:
        raw, of_phase = phase.raw, phase.of_phase
        if "options" not in raw and phase.kind == PhaseKind.revote:
            # A revote asks with its stance's options; without a stance, 'of' says what is wrong.
            options = list(of_phase.options) if of_phase is not None else []
        else:
            options = parse_options(
                raw.get("options"), phase.languages, phase.check, phase.loc, phase.name
            )
        same_as_stance(options, phase)
        return FormatPart(options=options)

    def to_dict(self, phase: PhaseDef) -> dict[str, Any]:
        return {"options": [{"id": o.key, "label": dict(o.labels)} for o in phase.options]}

    def validate(self, phase: AskedPhase, vote: VoteIn) -> Given:
        if vote.choice is None:
            raise Invalid(f"phase '{phase.key}' needs a 'choice'", code="missing_choice")
        option_id = phase.option_id(vote.choice)
        if option_id is None:
            raise Invalid(
                f"phase '{phase.key}' has no option '{vote.choice}'", code="unknown_option"
            )
        return Given(choice=vote.choice, option_id=option_id)

    def from_form(self, form: Mapping[str, str | None]) -> dict[str, Any]:
        return {"choice": form_field(form, "choice") or None}

    def public(self, min_value: float | None, max_value: float | None) -> dict[str, Any]:
        return {}

    def range(self, min_value: float | None, max_value: float | None) -> list[float] | None:
        return None


FORMAT = OptionFormat()


def same_as_stance(options: list[OptionDef], phase: PhaseParse) -> None:
    """A phase that refers to a stance (``of``) and has options uses the stance's ids in the
    stance's order; a revote that lists its options lists the stance's labels too."""
    of_phase, name, loc = phase.of_phase, phase.name, phase.loc
    if of_phase is None or not options:
        return
    revote = phase.kind == PhaseKind.revote
    if [o.key for o in options] != [o.key for o in of_phase.options]:
        phase.check.add(
            f"options must be the same ids, in the same order, as stance phase {phase.of!r} "
            f"({', '.join(o.key for o in of_phase.options)})"
            + ("; leave 'options' out to take the stance's" if revote else ""),
            (*loc, "options"),
            name,
            code="revote_options_differ" if revote else "options_differ",
            of=str(phase.of),
            ids=", ".join(o.key for o in of_phase.options),
        )
    elif revote and "options" in phase.raw:
        _same_labels(options, of_phase, phase.languages, phase.check, loc, name)


def _same_labels(
    options: list[OptionDef],
    stance: PhaseDef,
    languages: list[str],
    check: Checker,
    loc: Loc,
    phase: str | None,
) -> None:
    """A revote that lists its options lists exactly its stance's: the same labels in every
    language, so that the before/after comparison compares one question with itself."""
    for index, (option, theirs) in enumerate(zip(options, stance.options, strict=True)):
        differ = [
            lang
            for lang in languages
            if lang in option.labels
            and lang in theirs.labels
            and option.labels[lang] != theirs.labels[lang]
        ]
        if not differ:
            continue
        first = differ[0]
        check.add(
            f"option {option.key!r} must have the label it has in stance phase {stance.key!r} "
            f"(in {', '.join(differ)}: {option.labels[first]!r} here, {theirs.labels[first]!r} "
            f"there); leave 'options' out to take the stance's",
            (*loc, "options", index, "label"),
            phase,
            option.key,
            code="revote_label_differs",
            id=option.key,
            of=stance.key,
            languages=", ".join(differ),
            mine=option.labels[first],
            theirs=theirs.labels[first],
        )


def parse_options(
    raw: Any, languages: list[str], check: Checker, loc: Loc, phase: str | None
) -> list[OptionDef]:
    where: Loc = (*loc, "options")
    if not isinstance(raw, list) or len(raw) < 2:
        check.add(
            "needs at least two [[phases.options]] (or a 'range')",
            where,
            phase,
            code="too_few_options",
        )
        if not isinstance(raw, list):
            return []
    if len(raw) > MAX_OPTIONS:
        check.add(
            f"at most {MAX_OPTIONS} options", where, phase, code="too_many_options", n=MAX_OPTIONS
        )
        return []
    options: list[OptionDef] = []
    for index, raw_option in enumerate(raw):
        at: Loc = (*where, index)
        if not isinstance(raw_option, dict):
            check.add(
                f"option number {index + 1} is not a table",
                at,
                phase,
                code="option_not_table",
                n=index + 1,
            )
            continue
        key = raw_option.get("id")
        option: str | None = key if isinstance(key, str) and ID_RE.match(key) else None
        if option is None:
            check.add(
                f"option number {index + 1} needs an 'id' of lower-case letters, digits and "
                "underscores",
                (*at, "id"),
                phase,
                code="bad_option_id",
                n=index + 1,
            )
            key = f"option{index + 1}"
        elif any(o.key == key for o in options):
            check.add(
                f"duplicate option id {key!r}",
                (*at, "id"),
                phase,
                option,
                code="duplicate_option",
                id=str(key),
            )
        assert isinstance(key, str)
        no_unknown_keys(raw_option, OPTION_KEYS, check, at, phase, option, f"option {key!r}")
        labels = texts(
            raw_option.get("label"),
            languages,
            check,
            (*at, "label"),
            phase,
            option,
            f"option {key!r} 'label'",
        )
        options.append(OptionDef(key=key, labels=labels))
    return options
