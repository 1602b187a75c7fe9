"""What every part of a package shares: the presenter's choices (``PackageOptions``), the
data a package is written from (``Gathered``, one ``Answer`` per row of ``responses``), the
licences, and the small helpers of phases, labels and numbers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from typing import Any, NamedTuple

from app import formats, results
from app.errors import Invalid
from app.formats.base import DataColumn

LICENCES: dict[str, dict[str, str]] = {
    "CC-BY-4.0": {
        "title": "Creative Commons Attribution 4.0 International",
        "path": "https://creativecommons.org/licenses/by/4.0/",
    },
    "CC0-1.0": {
        "title": "Creative Commons Zero v1.0 Universal (public domain dedication)",
        "path": "https://creativecommons.org/publicdomain/zero/1.0/",
    },
}
DEFAULT_LICENCE = "CC-BY-4.0"
"""Unless the presenter chooses CC0: reuse is free, with credit to the contributors."""

TIMES = ("phase", "exact")
PROFILE = "https://datapackage.org/profiles/2.0/datapackage.json"
RESOURCE_PROFILE = "https://datapackage.org/profiles/2.0/dataresource.json"
TABLE_PROFILE = "https://datapackage.org/profiles/2.0/tableschema.json"
DDI_NAMESPACE = "ddi:codebook:2_5"
SCALE_FROM = 4
"""A stance (or its revote) with at least this many options is read as an ordered scale (its
options in the talk's order, e.g. strongly disagree ... strongly agree); fewer (agree /
disagree / unsure) as unordered categories."""


def software_version() -> str:
    try:
        return metadata.version("beliefgap")
    except metadata.PackageNotFoundError:  # run from a checkout, not installed
        return "0.1.0"


class PackageError(Invalid):
    """What the presenter asked of a package cannot be given (an unknown licence, say)."""


@dataclass(frozen=True)
class PackageOptions:
    """What the presenter chooses: the licence, exact times, the names to credit, and (when the
    results are published) the page that ``CITATION.cff`` points to."""

    licence: str = DEFAULT_LICENCE
    exact_times: bool = False
    contributors: tuple[str, ...] = ()
    url: str | None = None
    answers: bool = True
    """The answer-level table (``responses``). A public page's package leaves it out: from
    each phone's answers anyone could count the small cells every page hides."""

    def __post_init__(self) -> None:
        if self.licence not in LICENCES:
            raise PackageError(
                f"unknown licence '{self.licence}' (choose {' or '.join(sorted(LICENCES))})"
            )
        for name in self.contributors:
            if not name.strip() or len(name) > 200:
                raise PackageError("a contributor's name must have 1 to 200 characters")
        if len(self.contributors) > 20:
            raise PackageError("at most 20 contributors")


@dataclass
class Gathered:
    """What a package is written from: read from the database, nothing written yet."""

    kind: str
    """``session`` or ``talk``."""
    name: str
    """The session's code or the talk's slug."""
    slug: str
    titles: dict[str, str]
    languages: list[str]
    sessions: list[dict[str, Any]]
    """One dict per session: code, venue, held_on, language, talk_version, rehearsal, ended,
    linked, source, participants, n (phase id -> answers). A session of published counts (not a
    room of phones) is not ``linked``: it names its ``source``, its ``participants`` are None
    (unknown) and its ``n`` are its published totals, which ``totals`` holds."""
    phases: list[dict[str, Any]]
    """The codebook's phases (``export.codebook``), newest wording first, each phase once."""
    responses: list[Answer]
    results_json: dict[str, Any]
    updated: datetime
    """The latest moment in the data: the package's ``created`` and its files' dates."""
    extras: dict[str, Any] = field(default_factory=dict)
    """Further files for the package (name -> JSON-able document), e.g. predictions."""
    totals: list[Total] = field(default_factory=list)
    """The published counts of the sessions that are not ``linked``: they have no rows in
    ``responses`` (nobody's answers are linked across phases), and go to ``totals``."""
    texts: list[Text] = field(default_factory=list)
    """The open-text answers that were shown (approved): a table of their own, ``text_answers``
    (pending and hidden ones never leave the presenter's queue)."""


class Answer(NamedTuple):
    """One row of ``responses``, with the moments its ``time`` is chosen from."""

    session: str
    participant: str
    phase: str
    choice: str | None
    value: float | None
    language: str
    answered_at: datetime
    phase_opened_at: datetime | None
    payload: Any = None
    """The answer of a format that stores its own (a ranking's order of option ids), as
    stored; its cells in ``responses`` are the format's (``own_columns``)."""


class Text(NamedTuple):
    """One shown open-text answer (a row of ``text_answers``)."""

    session: str
    participant: str
    """The per-session pseudonym, as in ``responses``."""
    phase: str
    slot: int
    """Which of the phone's answers to the phase (1, 2, 3)."""
    text: str


class Total(NamedTuple):
    """One published count (a row of ``totals``): how many chose ``choice`` in ``phase``; with
    ``from_choice``, a published cell of a revote (of those who first chose ``from_choice``)."""

    session: str
    phase: str
    from_choice: str | None
    choice: str
    n: int
    """How many, as published (``totals``' ``count``)."""


def _is_scale(phase: dict[str, Any], by_key: dict[str, dict[str, Any]]) -> bool:
    stance = by_key.get(phase.get("of") or "", phase) if phase["kind"] == "revote" else phase
    return stance["kind"] == "stance" and len(_live(stance["options"])) >= SCALE_FROM


def _live(options: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in options if not o.get("retired")]


def _label(labels: dict[str, str], lang: str) -> str:
    return results.pick(labels, lang)


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _title(g: Gathered) -> str:
    title = _label(g.titles, g.languages[0] if g.languages else "en")
    if g.kind == "session":
        venue = g.sessions[0]["venue"] if g.sessions else ""
        return f"{title}: answers at {venue} ({g.name})"
    return f"{title}: answers of {len(g.sessions)} sessions"


def package_version(g: Gathered) -> str:
    """A session's package is 1.0.0; a talk's is raised with every session it holds (3.0.0 for
    three sessions), so a citation names the data it used."""
    return "1.0.0" if g.kind == "session" else f"{max(len(g.sessions), 1)}.0.0"


def answer_of(phase: dict[str, Any]) -> str:
    """A phase's answer format: named in its codebook entry, else implied by its range (the
    codebook names only formats beyond an option and a 0-100 number)."""
    named = phase.get("answer")
    return named if isinstance(named, str) else formats.NUMBER if phase["range"] else formats.OPTION


def names_formats(g: Gathered) -> bool:
    """A phase has a format beyond an option and a 0-100 number: ``questions`` then says each
    phase's (``answer``); packages of talks without one read as they always did."""
    return any("answer" in p for p in g.phases)


def own_columns(g: Gathered) -> list[DataColumn]:
    """The columns of ``responses`` that answer formats of their own add (a ranking's
    ``rank_1``...), in the formats' registry order: none for a talk of options and numbers, whose
    tables read as they always did. Open text is not among them: its answers (the shown ones)
    belong in a table of their own beside ``responses``, not in columns of it."""
    columns: list[DataColumn] = []
    for answer in formats.summarisers():
        phases = [p for p in g.phases if answer_of(p) == answer.name]
        if phases:
            columns += format_columns(answer.name, phases, g.languages or ["en"])
    return columns


def format_columns(
    name: str, phases: Sequence[dict[str, Any]], languages: Sequence[str]
) -> list[DataColumn]:
    """The columns the format ``name`` adds to ``responses`` for these phases: none for a
    format whose answers are not a ``Response``'s payload and so says nothing of them (open
    text, whose moderated answers sit in a table of their own)."""
    answer = formats.by_name(name)
    columns = getattr(answer, "data_columns", None) if answer.own_results else None
    return list(columns(phases, languages)) if columns is not None else []


def own_cells(g: Gathered) -> list[dict[str, Any]]:
    """Each row's cells in ``own_columns`` (empty for an option or a number), in row order."""
    by_phase = {
        p["id"]: formats.summarising(name)
        for p in g.phases
        if formats.by_name(name := answer_of(p)).own_results
    }
    return [
        by_phase[r.phase].csv_cells(r.payload)
        if r.payload is not None and r.phase in by_phase
        else {}
        for r in g.responses
    ]
