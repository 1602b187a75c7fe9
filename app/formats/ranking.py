"""``ranking``: put the phase's options in order, the first the one you rank highest.

In a talk file, ``answer = "ranking"`` on a choice phase with ``[[phases.options]]`` as for
``option``. A vote is ``{"ranking": ["b", "a", "c"]}``: every option once. On the phone, the
options in a list with a place menu each (which works without scripts and with a screen
reader), and with scripts ↑ ↓ buttons and dragging as well (``static/js/ranking.js``).

Results: each option's mean place with a Student t 95% interval, the share of people who ranked
it first (Wilson 95%), and its Borda count (k - place points from each person, k options). The
CSV has one column per place (``rank_1`` is the option put first).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, Field

from app.errors import Invalid
from app.formats.base import (
    AskedPhase,
    DataColumn,
    FormatPart,
    Given,
    PhaseParse,
    ShownPhase,
)
from app.formats.option import parse_options
from app.i18n import translate
from app.models import PhaseKind
from app.stats.estimates import mean_summary
from app.stats.proportions import wilson
from app.talkcheck import MAX_OPTIONS, PhaseDef

if TYPE_CHECKING:
    from app.charts.svg import Chart
    from app.models import Phase, VoteIn

PHONE_NOTE = 22
"""The phone chart's note, in chart units (``phone_chart``)."""

FORM_PREFIX = "rank."
"""The phone's form has one place menu per option: ``rank.<option id>`` = its place (1...)."""


@dataclass(frozen=True)
class Ranked:
    """One option's figures in a ranking."""

    key: str
    mean: float | None
    """Its mean place (1 = first); None before anyone ranked."""
    ci95: tuple[float, float] | None
    first: int
    """How many put it first."""
    first_share: float | None
    first_ci95: tuple[float, float] | None
    borda: int


@dataclass(frozen=True)
class RankingSummary:
    n: int
    options: tuple[Ranked, ...]
    """In the talk's order."""

    @property
    def by_place(self) -> list[Ranked]:
        """Best mean place first (ties in the talk's order)."""
        return sorted(self.options, key=lambda r: math.inf if r.mean is None else r.mean)


class RankingPhaseJSON(BaseModel):
    """A phase answered by putting the options in order."""

    kind: str
    answer: Literal["ranking"] = "ranking"
    n: int
    mean_rank: dict[str, float | None] = Field(description="option id -> mean place (1 = first)")
    mean_rank_ci95: dict[str, list[float] | None] = Field(
        description="option id -> Student t 95% interval of the mean place (n >= 2 and places "
        "that differ)"
    )
    mean_rank_ci95_method: Literal["student_t"] = "student_t"
    first_counts: dict[str, int] = Field(description="option id -> how many ranked it first")
    first_shares: dict[str, float | None] = Field(description="option id -> first_counts / n")
    first_ci95: dict[str, list[float] | None] = Field(description="Wilson 95% interval")
    borda: dict[str, int] = Field(
        description="option id -> Borda count: k - place points from each person (k options)"
    )


class RankingFormat:
    name: ClassVar[str] = "ranking"
    kinds: ClassVar[frozenset[PhaseKind]] = frozenset({PhaseKind.choice})
    talk_keys: ClassVar[frozenset[str]] = frozenset({"options"})
    vote_field: ClassVar[str] = "ranking"
    takes: ClassVar[str] = "a 'ranking' (every option id once, the first ranked highest)"
    noun: ClassVar[str] = "a ranking"
    phone_template: ClassVar[str] = "partials/audience/_ranking.html"
    phone_script: ClassVar[str | None] = "js/ranking.js"
    numeric: ClassVar[bool] = False
    uses_options: ClassVar[bool] = True
    editor_template: ClassVar[str | None] = None
    editor_defaults: ClassVar[Mapping[str, Any]] = {}
    refusals: ClassVar[Mapping[str, str]] = {"bad_ranking": "aud_err_ranking"}
    own_results: ClassVar[bool] = True
    narrows: ClassVar[bool] = True
    result_model: ClassVar[type[BaseModel]] = RankingPhaseJSON

    # ------------------------------------------------------------------ the talk and a vote

    def parse(self, phase: PhaseParse) -> FormatPart:
        if phase.kind not in self.kinds:
            phase.check.add(
                "a ranking is only for choice phases",
                (*phase.loc, "answer"),
                phase.name,
                code="answer_not_allowed",
                answer=self.name,
            )
        options = parse_options(
            phase.raw.get("options"), phase.languages, phase.check, phase.loc, phase.name
        )
        return FormatPart(options=options)

    def to_dict(self, phase: PhaseDef) -> dict[str, Any]:
        return {"options": [{"id": o.key, "label": dict(o.labels)} for o in phase.options]}

    def validate(self, phase: AskedPhase, vote: VoteIn) -> Given:
        order = vote.ranking
        if order is None:
            raise Invalid(f"phase '{phase.key}' needs a 'ranking'", code="bad_ranking")
        keys = [o.key for o in phase.options]
        unknown = [k for k in order if k not in keys]
        if unknown:
            raise Invalid(f"phase '{phase.key}' has no option '{unknown[0]}'", code="bad_ranking")
        twice = sorted({k for k in order if order.count(k) > 1})
        if twice:
            raise Invalid(f"option '{twice[0]}' is ranked twice", code="bad_ranking")
        missing = [k for k in keys if k not in order]
        if missing:
            raise Invalid(
                f"a ranking puts every option in order; '{missing[0]}' is missing",
                code="bad_ranking",
            )
        return Given(payload=list(order))

    def from_form(self, form: Mapping[str, str | None]) -> dict[str, Any]:
        places: dict[str, int] = {}
        for name, value in form.items():
            if not name.startswith(FORM_PREFIX):
                continue
            if len(places) >= MAX_OPTIONS:
                raise Invalid("the ranking has more places than options", code="bad_ranking")
            text = (value or "").strip()
            if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_OPTIONS:
                raise Invalid("a place is a number from 1", code="bad_ranking")
            places[name.removeprefix(FORM_PREFIX)[:64]] = int(text)
        if len(set(places.values())) != len(places):
            raise Invalid("each place holds one option", code="bad_ranking")
        return {"ranking": sorted(places, key=lambda key: places[key]) or None}

    def public(self, min_value: float | None, max_value: float | None) -> dict[str, Any]:
        return {}

    def range(self, min_value: float | None, max_value: float | None) -> list[float] | None:
        return None

    # ------------------------------------------------------------------ results

    def summarize(self, options: tuple[str, ...], answers: Sequence[Any]) -> RankingSummary:
        rankings = [a for a in answers if isinstance(a, list)]
        n, k = len(rankings), len(options)
        out = []
        for key in options:
            places = [float(r.index(key) + 1) for r in rankings if key in r]
            summary = mean_summary(places)
            first = sum(1 for r in rankings if r and r[0] == key)
            out.append(
                Ranked(
                    key=key,
                    mean=summary.mean,
                    ci95=summary.ci95,
                    first=first,
                    first_share=first / n if n else None,
                    first_ci95=wilson(first, n) if n else None,
                    borda=int(sum(k - p for p in places)),
                )
            )
        return RankingSummary(n=n, options=tuple(out))

    def result_json(self, result: ShownPhase) -> RankingPhaseJSON:
        summary: RankingSummary = result.summary
        ranked = summary.options
        return RankingPhaseJSON(
            kind=result.kind.value,
            n=summary.n,
            mean_rank={r.key: r.mean for r in ranked},
            mean_rank_ci95={r.key: list(r.ci95) if r.ci95 else None for r in ranked},
            first_counts={r.key: r.first for r in ranked},
            first_shares={r.key: r.first_share for r in ranked},
            first_ci95={r.key: list(r.first_ci95) if r.first_ci95 else None for r in ranked},
            borda={r.key: r.borda for r in ranked},
        )

    def chart(
        self, result: ShownPhase, lang: str, wide: bool = False, slide_width: float | None = None
    ) -> Chart:
        """One bar per option, best mean place first: a full bar is "everyone put it first",
        an empty one "everyone put it last"; whiskers from the mean place's interval.

        ``wide``: the projector's slide, SLIDE units wide with SLIDE_TEXT labels and no title
        (the slide's sentence stands above it); four or more options sit in two columns, read
        down, so that six long options fit a 1280x720 slide with labels of 28 px or more.
        ``slide_width`` (with ``wide``): narrower, in one column, beside the QR code."""
        from app.charts.svg import LABEL, SLIDE, SLIDE_TEXT, SMALL, WIDTH

        if wide:
            width = slide_width or SLIDE
            columns = 2 if slide_width is None and len(result.options) >= 4 else 1
            return self._draw(result, lang, width, SLIDE_TEXT, SLIDE_TEXT, 170, columns)
        return self._draw(result, lang, WIDTH, LABEL, SMALL, 140, title=True)

    def phone_chart(self, result: ShownPhase, lang: str) -> Chart:
        """The chart across a phone: NARROW units wide, so that on a 390 px screen its labels
        and note read at the phone's 18 px or more."""
        from app.charts.svg import LABEL, NARROW

        return self._draw(result, lang, NARROW, LABEL, PHONE_NOTE, 72, title=True)

    def _draw(
        self,
        result: ShownPhase,
        lang: str,
        width: float,
        text: float,
        small: float,
        value_room: float,
        columns: int = 1,
        title: bool = False,
    ) -> Chart:
        """The chart ``width`` units wide, its labels ``text`` and its note ``small`` units
        high, ``value_room`` units right of each bar for its mean place; the options in
        ``columns`` read down; ``title``: the question above (not on the slide)."""
        # The chart primitives come with app.charts, which reads the results, which list the
        # formats' results: imported when drawing, not when the registry is read.
        from app.charts.svg import (
            MUTED,
            NOTE_LINES,
            PAD,
            Chart,
            Line,
            Rect,
            Text,
            draw_lines,
            draw_title,
            number,
            option_colour,
            pct,
        )

        summary: RankingSummary = result.summary
        wide = not title
        chart = Chart(f"phase-{result.key}", result.question(lang), "", lang, width=width)
        y0 = draw_title(chart, chart.title, 0) + 10 if title else 8.0
        labels = {o.key: o.label(lang) for o in result.options}
        k = len(summary.options)
        gutter = 40
        col_w = (width - 2 * PAD - gutter * (columns - 1)) / columns
        per_column = math.ceil(k / columns) if k else 0
        plot_w = col_w - value_room
        bar_h = 30 if wide else 36

        def along(place: float) -> float:  # place 1 -> the full bar, place k -> none
            return plot_w * ((k - place) / (k - 1) if k > 1 else 1.0)

        bottom = y0
        for index, ranked in enumerate(summary.by_place):
            if index % max(per_column, 1) == 0:
                y = y0
            x = PAD + (index // max(per_column, 1)) * (col_w + gutter)
            label = f"{index + 1}. {labels.get(ranked.key, ranked.key)}"
            y = draw_lines(chart, label, x, y, col_w, text)
            y += 6
            colour = option_colour(ranked.key, index, k)
            chart.add(Rect(x, y, plot_w, bar_h, "#eeeeee"))
            length = along(ranked.mean) if ranked.mean is not None else 0.0
            bar = f"{chart.name}-{lang}-{int(width)}-{ranked.key}"  # the same in every drawing
            chart.add(Rect(x, y, length, bar_h, colour, id=bar))
            if ranked.ci95 is not None:
                low, high = (along(min(max(p, 1.0), float(k))) for p in ranked.ci95)
                mid = y + bar_h / 2
                chart.add(Line(x + high, mid, x + low, mid, width=3))
            value = number(ranked.mean, 1) if ranked.mean is not None else "–"
            chart.add(
                Text(x + plot_w + 12, y + bar_h / 2 + text * 0.36, value, text, "start", "bold")
            )
            chart.rows.append(
                translate(
                    lang,
                    "res_rank_row",
                    option=labels.get(ranked.key, ranked.key),
                    place=value,
                    first=pct(ranked.first_share),
                    borda=ranked.borda,
                )
            )
            y += bar_h + (12 if wide else 18)
            bottom = max(bottom, y)
        note = translate(lang, "res_rank_note", n=summary.n, k=k)
        y = draw_lines(chart, note, PAD, bottom + 4, width - 2 * PAD, small, NOTE_LINES, fill=MUTED)
        chart.height = y + PAD
        chart.sentence = self.sentence(result, lang)
        return chart

    def sentence(self, result: ShownPhase, lang: str) -> str:
        summary: RankingSummary = result.summary
        best = summary.by_place[0] if summary.n and summary.options else None
        if best is None or best.mean is None:
            return translate(lang, "res_rank_none")
        label = next((o.label(lang) for o in result.options if o.key == best.key), best.key)
        from app.charts.svg import number, pct

        return translate(
            lang,
            "res_rank_sentence",
            option=label,
            place=number(best.mean, 1),
            first=pct(best.first_share),
            n=summary.n,
        )

    # ------------------------------------------------------------------ exports

    def csv_columns(self, phase: Phase) -> list[str]:
        return [f"rank_{place}" for place in range(1, MAX_OPTIONS + 1)]

    def csv_cells(self, payload: Any) -> dict[str, Any]:
        order = payload if isinstance(payload, list) else []
        return {f"rank_{place}": key for place, key in enumerate(order, start=1)}

    def read_cells(self, row: Mapping[str, Any]) -> Any:
        order = [row.get(f"rank_{place}") for place in range(1, MAX_OPTIONS + 1)]
        ranked = [str(key) for key in order if key not in (None, "")]
        return ranked or None

    def codebook(self, phase: Phase) -> dict[str, Any]:
        return {
            "columns": {
                "rank_1": "the option id this person put first (rank_2 second, and so on)",
            }
        }

    def data_columns(
        self, phases: Sequence[Mapping[str, Any]], languages: Sequence[str]
    ) -> list[DataColumn]:
        """One column per place, as many as the longest of these rankings has options, each
        holding the option put there (its code): ``rank_1`` the one ranked highest."""
        codes: dict[str, Mapping[str, str]] = {}
        places = 0
        for phase in phases:
            live = [o for o in phase.get("options", []) if not o.get("retired")]
            places = max(places, len(live))
            for option in live:
                codes.setdefault(option["id"], dict(option["label"]))
        return [
            DataColumn(
                name=f"rank_{place}",
                type="string",
                description={
                    lang: translate(lang, "pkg_rank_column", place=place) for lang in languages
                },
                categories=tuple(codes.items()),
            )
            for place in range(1, places + 1)
        ]


FORMAT = RankingFormat()
