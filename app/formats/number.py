"""``number``: a number on a scale, the 0-100 "what share of your field..." estimate.

In a talk file, ``range = [low, high]``; only a perceived phase is answered so (its stance must
say which options ``hold`` the view, which the estimate is compared with). A vote is
``{"value": 70}``. On the phone, a slider and a number field: an untouched slider is no answer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from app.errors import Invalid
from app.formats.base import AskedPhase, FormatPart, Given, PhaseParse, form_field
from app.models import PhaseKind
from app.talkcheck import PhaseDef, finite, plain_number

if TYPE_CHECKING:
    from app.models import VoteIn


class NumberFormat:
    name: ClassVar[str] = "number"
    kinds: ClassVar[frozenset[PhaseKind]] = frozenset({PhaseKind.perceived})
    talk_keys: ClassVar[frozenset[str]] = frozenset({"range"})
    vote_field: ClassVar[str] = "value"
    takes: ClassVar[str] = "a number ('value')"
    noun: ClassVar[str] = "a number"
    phone_template: ClassVar[str] = "partials/audience/_estimate.html"
    editor_defaults: ClassVar[Mapping[str, Any]] = {"range": [0, 100]}
    refusals: ClassVar[Mapping[str, str]] = {}
    own_results: ClassVar[bool] = False
    uses_options: ClassVar[bool] = False
    editor_template: ClassVar[str | None] = "partials/presenter/_editor_range.html"
    phone_script: ClassVar[str | None] = None
    numeric: ClassVar[bool] = True

    def parse(self, phase: PhaseParse) -> FormatPart:
        raw, check, loc, name = phase.raw, phase.check, phase.loc, phase.name
        rng = raw.get("range")
        if phase.kind not in self.kinds:
            check.add(
                "'range' (a % estimate) is only for perceived phases",
                (*loc, "range"),
                name,
                code="range_not_allowed",
            )
        elif "options" in raw:
            check.add(
                "a phase has either 'options' or 'range', not both",
                (*loc, "range"),
                name,
                code="options_and_range",
            )
        elif (
            not isinstance(rng, list)
            or len(rng) != 2
            or not all(finite(v) for v in rng)
            or not rng[0] < rng[1]
        ):
            check.add(
                "'range' must be two numbers, low < high, e.g. [0, 100]",
                (*loc, "range"),
                name,
                code="bad_range",
            )
        else:
            if phase.of_phase is not None and not phase.of_phase.holds:
                check.add(
                    f"a % estimate needs stance phase {phase.of!r} to say which options 'hold' "
                    "the view",
                    (*loc, "range"),
                    name,
                    code="estimate_needs_holds",
                    of=str(phase.of),
                )
            return FormatPart(min_value=float(rng[0]), max_value=float(rng[1]))
        return FormatPart()

    def to_dict(self, phase: PhaseDef) -> dict[str, Any]:
        if phase.min_value is None or phase.max_value is None:
            return {}
        return {"range": [plain_number(phase.min_value), plain_number(phase.max_value)]}

    def validate(self, phase: AskedPhase, vote: VoteIn) -> Given:
        low, high = phase.min_value, phase.max_value
        assert low is not None and high is not None, "a number phase has its range"
        if vote.value is None or not math.isfinite(vote.value):
            raise Invalid(f"phase '{phase.key}' needs a 'value'", code="missing_value")
        if not low <= vote.value <= high:
            raise Invalid(f"'value' must be between {low:g} and {high:g}", code="out_of_range")
        return Given(value=float(vote.value))

    def from_form(self, form: Mapping[str, str | None]) -> dict[str, Any]:
        """A slider (``slider``) and a number field (``value``) that scripts keep equal. A range
        input always sends a value, so the slider counts only when it was moved: when it stands
        elsewhere than ``start``, where the page drew it. ``initial`` is what the number field
        showed then (the phone's earlier answer, or empty). A typed number that differs from it
        wins, then a moved slider, then an earlier answer sent again; a slider nobody moved and
        an empty field are no answer (``missing_value``), never the middle of the scale."""
        typed = form_field(form, "value")
        slider = form_field(form, "slider")
        initial = form_field(form, "initial")
        start = form_field(form, "start") or initial
        moved = bool(slider and start) and _number(slider) != _snapped(_number(start))
        if typed and typed != initial:
            return {"value": _number(typed)}
        if moved:
            return {"value": _number(slider)}
        if typed:
            return {"value": _number(typed)}
        raise Invalid("move the slider or type a number", code="missing_value")

    def public(self, min_value: float | None, max_value: float | None) -> dict[str, Any]:
        return {"min": min_value, "max": max_value}

    def range(self, min_value: float | None, max_value: float | None) -> list[float] | None:
        if min_value is None or max_value is None:
            return None
        return [min_value, max_value]


FORMAT = NumberFormat()


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
