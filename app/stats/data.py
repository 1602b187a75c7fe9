"""A session's data as the statistics see it (its phases and answers) and each phase's own
figures."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from app.stats.distributions import Answer, Interval
from app.stats.estimates import Bin, MeanSummary, histogram, mean_summary
from app.stats.proportions import shares, wilson


@dataclass(frozen=True)
class PhaseSpec:
    """What the statistics need to know about a phase."""

    key: str
    kind: str
    options: tuple[str, ...] = ()
    of_key: str | None = None
    holds: tuple[str, ...] = ()
    min_value: float | None = None
    max_value: float | None = None
    answer: str = "option"
    """The phase's answer format (``app.formats``): the statistics here read ``option`` and
    ``number`` phases; other formats summarise their own answers."""

    @property
    def is_estimate(self) -> bool:
        return self.min_value is not None


@dataclass(frozen=True)
class Dataset:
    """A session's (or a pooled talk's) phases and answers.

    ``answers[phase_key][participant]`` is an option key or, for a % estimate phase, a number.
    A participant appears at most once per phase by construction.
    """

    phases: tuple[PhaseSpec, ...]
    answers: Mapping[str, Mapping[str, Answer]]

    linked: bool = True
    """Whether a participant id names the same person in every phase. Published totals
    (``from_totals``) are not: nothing that pairs two phases is worked out from them."""
    apart: frozenset[str] = frozenset()
    """Ids of answers from published totals, which link nobody: never counted as people who
    answered only one of two phases (a talk's merged answers keep them, ``merge``)."""

    def phase(self, key: str) -> PhaseSpec | None:
        return next((p for p in self.phases if p.key == key), None)

    def of(self, key: str) -> Mapping[str, Answer]:
        return self.answers.get(key, {})

    @classmethod
    def from_totals(
        cls, phases: tuple[PhaseSpec, ...], totals: Mapping[str, Mapping[str, int]]
    ) -> Dataset:
        """Published totals (phase -> option -> count) as answers that link nobody: each
        phase's answers have ids of their own (``phase#1``, ``phase#2``, ...), so no one
        answered two phases, and ``linked`` is False."""
        answers: dict[str, dict[str, Answer]] = {}
        for key, counts in totals.items():
            ids = (f"{key}#{i}" for i in range(1, sum(counts.values()) + 1))
            answers[key] = {
                next(ids): option for option, count in counts.items() for _ in range(count)
            }
        apart = frozenset(p for by_id in answers.values() for p in by_id)
        return cls(phases, answers, linked=False, apart=apart)


@dataclass(frozen=True)
class PhaseStats:
    key: str
    n: int
    counts: dict[str, int] = field(default_factory=dict)
    shares: dict[str, float | None] = field(default_factory=dict)
    ci95: dict[str, Interval | None] = field(default_factory=dict)
    estimate: MeanSummary | None = None
    histogram: list[Bin] = field(default_factory=list)


def count_options(options: Sequence[str], answers: Iterable[Answer]) -> dict[str, int]:
    counts = dict.fromkeys(options, 0)
    for answer in answers:
        if isinstance(answer, str) and answer in counts:
            counts[answer] += 1
    return counts


def option_stats(key: str, counts: Mapping[str, int]) -> PhaseStats:
    n = sum(counts.values())
    return PhaseStats(
        key=key,
        n=n,
        counts=dict(counts),
        shares=shares(counts),
        ci95={option: (wilson(c, n) if n else None) for option, c in counts.items()},
    )


def estimate_stats(spec: PhaseSpec, values: Sequence[float]) -> PhaseStats:
    lower = spec.min_value if spec.min_value is not None else 0.0
    upper = spec.max_value if spec.max_value is not None else 100.0
    return PhaseStats(
        key=spec.key,
        n=len(values),
        estimate=mean_summary(values),
        histogram=histogram(values, lower, upper),
    )


def phase_stats(spec: PhaseSpec, answers: Mapping[str, Answer]) -> PhaseStats:
    if spec.is_estimate:
        return estimate_stats(spec, [float(v) for v in answers.values() if not isinstance(v, str)])
    return option_stats(spec.key, count_options(spec.options, answers.values()))


def _scale(spec: PhaseSpec) -> float:
    """The width of a % estimate's range, to turn an estimate into a fraction."""
    lower = spec.min_value or 0.0
    upper = spec.max_value if spec.max_value is not None else 100.0
    return (upper - lower) or 1.0


def _as_share(spec: PhaseSpec, value: float) -> float:
    return (value - (spec.min_value or 0.0)) / _scale(spec)
