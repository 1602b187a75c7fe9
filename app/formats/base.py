"""What every answer format provides (``AnswerFormat``) and the values it passes around.

A phase has a *role* (``kind``: choice, stance, perceived, revote: what its answers mean in the
analysis) and an *answer format* (how a person answers: pick one option, give a number,
order the options...). A format owns everything about how it is answered and told: its part of
a talk file (and so of the editor's form), checking a vote (pure: no database), reading the
phone's form, the phone's question template, its part of the API's phase and of the exports
and codebook. Roles stay in ``app.talkfile`` and ``app.stats``; they ask a format only what they
need (its options, whether it is a number).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from app.errors import Invalid
from app.models import PhaseKind
from app.talkcheck import Checker, Loc, OptionDef, PhaseDef

if TYPE_CHECKING:
    from pydantic import BaseModel

    from app.charts.svg import Chart
    from app.models import Phase as CodebookPhase
    from app.models import VoteIn

VOTE_FIELDS = ("choice", "value", "text", "ranking")
"""The answer fields of a vote (``VoteIn``): each format takes exactly one of them."""


class Keyed(Protocol):
    @property
    def key(self) -> str: ...


class AskedPhase(Protocol):
    """A session's phase as a vote to it is checked (``app.sessions.PhaseContent``): a format
    reads only these."""

    @property
    def key(self) -> str: ...
    @property
    def options(self) -> Sequence[Keyed]: ...
    @property
    def min_value(self) -> float | None: ...
    @property
    def max_value(self) -> float | None: ...
    @property
    def answer(self) -> str: ...
    @property
    def settings(self) -> Mapping[str, Any]: ...
    def option_id(self, key: str) -> int | None: ...


class LabelledOption(Protocol):
    @property
    def key(self) -> str: ...
    def label(self, lang: str) -> str: ...


class ShownPhase(Protocol):
    """A phase's result as a format draws and words it (``app.results.PhaseResult``)."""

    @property
    def key(self) -> str: ...
    @property
    def kind(self) -> PhaseKind: ...
    @property
    def n(self) -> int: ...
    @property
    def options(self) -> Sequence[LabelledOption]: ...
    @property
    def summary(self) -> Any: ...
    def question(self, lang: str) -> str: ...


@dataclass(frozen=True)
class PhaseParse:
    """What a format needs to check its part of one phase of a talk."""

    raw: Mapping[str, Any]
    """The phase as written (a table of the talk file)."""
    loc: Loc
    name: str | None
    """The phase's id when it is a valid one (problems name it)."""
    kind: PhaseKind
    of: str | None
    of_phase: PhaseDef | None
    """The stance phase a revote or perceived phase refers to, when 'of' names one."""
    languages: list[str]
    check: Checker
    talk_blocklist: Mapping[str, Any] = field(default_factory=dict)
    """The talk's own blocklist, checked (``app.formats.text``; empty for none)."""


@dataclass(frozen=True)
class FormatPart:
    """A format's part of a checked phase."""

    options: list[OptionDef] = field(default_factory=list)
    min_value: float | None = None
    max_value: float | None = None
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DataColumn:
    """A column a format adds to a dataset's table of answers (the package's ``responses``),
    as its descriptor and codebooks tell it."""

    name: str
    type: str
    """Its Table Schema type (``string``, ``integer``, ``number``)."""
    description: Mapping[str, str]
    """What it holds, in each language of the talk."""
    categories: tuple[tuple[str, Mapping[str, str]], ...] = ()
    """The codes it may hold, in order: each code and its label in each language."""


@dataclass(frozen=True)
class Given:
    """A checked answer, as it is stored: an option (its key and row id), a number, or the
    format's own structure (``payload``, stored as JSON)."""

    choice: str | None = None
    option_id: int | None = None
    value: float | None = None
    payload: Any = None


class AnswerFormat(Protocol):
    """One way of answering a phase. Registered in ``app.formats.FORMATS``."""

    name: ClassVar[str]
    """The ``answer`` of a talk file's phase (``option``, ``number``...)."""
    kinds: ClassVar[frozenset[PhaseKind]]
    """The roles a phase answered this way may have."""
    talk_keys: ClassVar[frozenset[str]]
    """The fields of a talk file's phase this format reads (``options``, ``range``...)."""
    vote_field: ClassVar[str]
    """The field of a vote that carries the answer (one of ``VOTE_FIELDS``)."""
    takes: ClassVar[str]
    """What a vote must give, as a refusal says it ("a 'choice'")."""
    noun: ClassVar[str]
    """The answer, as a refusal names it when it is sent to another format ("a choice")."""
    phone_template: ClassVar[str]
    """The phone's question (a template under ``templates/``); its context is ``q``, a
    ``QuestionView``, and ``view``."""
    phone_script: ClassVar[str | None]
    """A script the phone's page loads for this format's question (under ``static/``), or None."""
    numeric: ClassVar[bool]
    """Its answer is a number on a scale (summarised by a mean, drawn as a histogram)."""
    uses_options: ClassVar[bool]
    """A phase answered so lists options (the editor shows them)."""
    editor_template: ClassVar[str | None]
    """The editor's fields for the format's own part of a phase (a range, settings), a template
    under ``templates/`` whose context has ``phase`` (the talk file's structure) and ``base``
    (the phase's field name prefix); None: it has none."""
    editor_defaults: ClassVar[Mapping[str, Any]]
    """The format's own fields as the editor first shows them (a 0-100 range)."""
    refusals: ClassVar[Mapping[str, str]]
    """The phone's message (a string id) for each refusal code of its own."""
    own_results: ClassVar[bool]
    """Its answers are summarised, shown and exported by the format itself (``Summarising``);
    the answers of ``option`` and ``number`` phases are the statistics' (``app.stats``)."""

    def parse(self, phase: PhaseParse) -> FormatPart:
        """Check this format's part of a phase (problems go to ``phase.check``)."""
        ...

    def to_dict(self, phase: PhaseDef) -> dict[str, Any]:
        """This format's fields of the phase in the talk file's structure."""
        ...

    def validate(self, phase: AskedPhase, vote: VoteIn) -> Given:
        """The vote's answer to the phase, checked (raises Invalid); pure."""
        ...

    def from_form(self, form: Mapping[str, str | None]) -> dict[str, Any]:
        """The answer in the phone's form, as the fields of a vote (raises Invalid)."""
        ...

    def public(self, min_value: float | None, max_value: float | None) -> dict[str, Any]:
        """What the API's phase (``PhasePublic``) says of the answer besides the options."""
        ...

    def range(self, min_value: float | None, max_value: float | None) -> list[float] | None:
        """The phase's scale in exports and codebooks (``range``), or None."""
        ...


# --------------------------------------------------------------------------- the phone's form

MAX_FIELD_LENGTH = 64
"""Longer form fields than this are never a phase id, an option id or a number."""


def form_field(form: Mapping[str, str | None], name: str) -> str:
    """A field of the phone's form, trimmed (Invalid when longer than any valid one)."""
    text = (form.get(name) or "").strip()
    if len(text) > MAX_FIELD_LENGTH:
        raise Invalid(f"the field '{name}' is too long", code="field_too_long")
    return text


class Summarising(AnswerFormat, Protocol):
    """A format whose answers are not one option or one number (a ranking, open text): it
    summarises them, and draws, words and exports the summary itself. Its answer is stored as
    JSON (``Response.payload``); the roles' statistics never see it."""

    result_model: ClassVar[type[BaseModel]]
    """Its phase in the results JSON (one arm of the phases' union in ``/openapi.json``)."""
    narrows: ClassVar[bool]
    """Its chart has a narrower slide variant for beside the QR code (``chart``'s
    ``slide_width``); else the slide chart is drawn there too."""

    def summarize(self, options: tuple[str, ...], answers: Sequence[Any]) -> Any:
        """The summary of a phase's answers (each as ``validate`` stored it)."""
        ...

    def result_json(self, result: ShownPhase) -> BaseModel:
        """The phase's result as ``result_model``."""
        ...

    def chart(
        self, result: ShownPhase, lang: str, wide: bool = False, slide_width: float | None = None
    ) -> Chart:
        """The phase's chart (``wide``: the projector's landscape variant; ``slide_width`` with
        it: narrower, beside the QR code, where ``narrows``), with its sentence."""
        ...

    def csv_columns(self, phase: CodebookPhase) -> list[str]:
        """Columns of its own that the CSV export adds for a phase of this format."""
        ...

    def csv_cells(self, payload: Any) -> dict[str, Any]:
        """An answer's cells in those columns."""
        ...

    def read_cells(self, row: Mapping[str, Any]) -> Any:
        """An answer back from its cells in an export's row (``csv_cells``'s), or None."""
        ...

    def codebook(self, phase: CodebookPhase) -> dict[str, Any]:
        """What the codebook says of the phase besides its question and options."""
        ...

    def data_columns(
        self, phases: Sequence[Mapping[str, Any]], languages: Sequence[str]
    ) -> list[DataColumn]:
        """The columns its answers take in a dataset's table of answers, for these phases of
        this format (codebook entries: ``export.codebook``'s phases), described in these
        languages; an answer's cells in them are ``csv_cells``'."""
        ...
