"""The shapes of a talk (``TalkDef``, ``PhaseDef``, ``OptionDef``) and the pieces every part of a
talk's checking shares: a problem and where it is, the collector of problems, and the checks of
texts, names and unknown fields. The talk file (``app.talkfile``) and each answer format
(``app.formats``) check their parts of a talk with these."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from app.models import PhaseKind

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
LANG_RE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")

TALK_KEYS = {"slug", "languages", "title", "phases", "blocklist"}
PHASE_KEYS = {"id", "kind", "question", "of", "holds", "answer"}
"""The fields of a phase besides its answer format's (``app.formats``)."""
OPTION_KEYS = {"id", "label"}

MAX_LANGUAGES = 8
MAX_PHASES = 40
MAX_OPTIONS = 20
MAX_TEXT = 2000
"""Characters in one question, title or label."""
MAX_PROBLEMS = 100
"""Problems reported for one talk: past it the list ends with one that says how many more there
are (a talk broken everywhere gives a short answer, not one the size of its languages times
its fields)."""
MAX_NAMED = 10
"""Names (unknown fields, extra languages) one problem lists; the rest are counted."""

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a talk: what, and where (``loc``, the path in the talk's structure,
    e.g. ``("phases", 1, "options", 0, "label", "en")``; the ids of the phase and option)."""

    message: str
    loc: Loc = ()
    phase: str | None = None
    option: str | None = None
    code: str = ""
    """What kind of problem (``missing_text``...): the editor words it in its language."""
    args: dict[str, str | int] = field(default_factory=dict)

    @property
    def field(self) -> str:
        """The field the problem is about (``label``, ``question``, ``id``...), or ``talk``."""
        names = [part for part in self.loc if isinstance(part, str)]
        if len(self.loc) > 1 and self.loc[-1] == "options":
            return "options"  # the phase's options as a whole (too few, other ids)
        trail = [n for n in names if n not in ("phases", "options")]
        if self.loc and isinstance(self.loc[-1], str) and LANG_RE.match(self.loc[-1]) and trail:
            return trail[-2] if len(trail) > 1 else trail[-1]
        return trail[-1] if trail else "talk"

    @property
    def path(self) -> str:
        """``loc`` as one dotted name (the editor's form fields are named so)."""
        return ".".join(str(part) for part in self.loc)

    def text(self, source: str = "") -> str:
        where = [source] if source else []
        if self.phase:
            where.append(f"phase '{self.phase}'")
        return ": ".join([*where, self.message])

    def as_dict(self) -> dict[str, Any]:
        return {
            "loc": list(self.loc),
            "phase": self.phase,
            "option": self.option,
            "field": self.field,
            "msg": self.message,
        }


class TalkFileError(ValueError):
    """A talk that cannot be used: every problem found, with where and why."""

    def __init__(
        self, source: str, problems: str | Sequence[Problem], phase: str | None = None
    ) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems, phase=phase)]
        self.source = source
        self.problems = list(problems)
        first = self.problems[0] if self.problems else Problem("invalid talk")
        self.phase = first.phase
        self.problem = first.message
        super().__init__("\n".join(p.text(source) for p in self.problems))


@dataclass(frozen=True)
class OptionDef:
    key: str
    labels: dict[str, str]


@dataclass(frozen=True)
class PhaseDef:
    key: str
    kind: PhaseKind
    questions: dict[str, str]
    options: list[OptionDef] = field(default_factory=list)
    of: str | None = None
    holds: list[str] = field(default_factory=list)
    min_value: float | None = None
    max_value: float | None = None
    answer: str = "option"
    """The answer format's name (``app.formats``)."""
    settings: dict[str, Any] = field(default_factory=dict)
    """The format's settings beyond options and range."""

    @property
    def is_estimate(self) -> bool:
        return self.min_value is not None


@dataclass(frozen=True)
class TalkDef:
    slug: str
    titles: dict[str, str]
    languages: list[str]
    phases: list[PhaseDef]
    source: str = ""
    blocklist: dict[str, Any] = field(default_factory=dict)
    """The talk's own blocklist for its open-text phases (``app.formats.text``), as written;
    empty for the default (the seeded lists, block)."""

    @property
    def digest(self) -> str:
        body = asdict(self)
        body.pop("source")
        if not body["blocklist"]:  # as before talks had one: the same talk, the same hash
            del body["blocklist"]
        for phase in body["phases"]:  # as before formats had names: the same talk, the same hash
            if phase["answer"] == ("number" if phase["min_value"] is not None else "option"):
                del phase["answer"]
            if not phase["settings"]:
                del phase["settings"]
            own = phase.get("settings", {}).get("blocklist")
            if not self.blocklist and own is not None and "mode" not in own:
                # a phase's blocklist without a mode was read as "block" before talks had one
                phase["settings"]["blocklist"] = {"mode": "block", **own}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def shown(value: Any, limit: int = 60) -> str:
    """A value as a problem quotes it, cut short: a problem never echoes a whole body."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def named(names: Sequence[str]) -> str:
    """Names (fields, languages) as a problem lists them: the first ``MAX_NAMED``, the rest
    counted."""
    shown = ", ".join(names[:MAX_NAMED])
    more = len(names) - MAX_NAMED
    return f"{shown} and {more} more" if more > 0 else shown


class Checker:
    """Collects a talk's problems, up to ``MAX_PROBLEMS`` (then one more says how many
    followed)."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.dropped = 0

    def add(
        self,
        message: str,
        loc: Loc = (),
        phase: str | None = None,
        option: str | None = None,
        *,
        code: str = "",
        **args: str | int,
    ) -> None:
        if len(self.problems) >= MAX_PROBLEMS:
            self.dropped += 1
            return
        self.problems.append(Problem(message, loc, phase, option, code, dict(args)))

    def finished(self) -> list[Problem]:
        """The problems, the last one saying how many more were left out."""
        if not self.dropped:
            return self.problems
        return [
            *self.problems,
            Problem(
                f"and {self.dropped} more problems (the first {MAX_PROBLEMS} are listed)",
                code="more_problems",
                args={"n": self.dropped},
            ),
        ]


def finite(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer beyond any float
        return False


def texts(
    raw: Any,
    languages: list[str],
    check: Checker,
    loc: Loc,
    phase: str | None,
    option: str | None,
    what: str,
) -> dict[str, str]:
    def missing(lang: str) -> None:
        check.add(
            f"{what} is missing the translation for {lang}",
            (*loc, lang),
            phase,
            option,
            code="missing_text",
            language=lang,
        )

    if raw is None and languages:
        for lang in languages:
            missing(lang)
        return {}
    if not isinstance(raw, dict):
        check.add(
            f"{what} must be a table of texts by language",
            loc,
            phase,
            option,
            code="texts_not_table",
        )
        return {}
    for lang in languages:
        text = raw.get(lang)
        if not (isinstance(text, str) and text.strip()):
            missing(lang)
        elif len(text) > MAX_TEXT:
            check.add(
                f"{what} is longer than {MAX_TEXT} characters",
                (*loc, lang),
                phase,
                option,
                code="text_too_long",
                n=MAX_TEXT,
            )
    extra = sorted(str(k) for k in set(raw) - set(languages))
    if extra:
        check.add(
            f"{what} has text in {named(extra)}, which 'languages' does not list",
            loc,
            phase,
            option,
            code="extra_languages",
            languages=named(extra),
        )
    return {
        lang: raw[lang].strip()
        for lang in languages
        if isinstance(raw.get(lang), str) and raw[lang].strip()
    }


def no_unknown_keys(
    raw: dict[str, Any],
    allowed: set[str],
    check: Checker,
    loc: Loc,
    phase: str | None,
    option: str | None,
    what: str,
) -> None:
    unknown = sorted(str(k) for k in set(raw) - allowed)
    if unknown:
        check.add(
            f"unknown field {named([shown(u) for u in unknown])} in {what}",
            loc,
            phase,
            option,
            code="unknown_field",
            fields=named(unknown),
        )


def plain_number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value
