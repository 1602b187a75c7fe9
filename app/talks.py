"""Talk files: load, validate and store them.

A talk is a TOML file (the format is documented in ``docs/talk-format.md``; the bundled talks in
``app/talks/`` are worked examples). Validation errors name the file, the phase and the problem,
so a speaker editing a file on the evening before a talk can fix it without reading code.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from app.models import Phase, PhaseKind, PhaseOption, Talk

BUNDLED_DIR = Path(__file__).resolve().parent / "talks"

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
LANG_RE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")

TALK_KEYS = {"slug", "languages", "title", "phases"}
PHASE_KEYS = {"id", "kind", "question", "options", "of", "holds", "range"}
OPTION_KEYS = {"id", "label"}


class TalkFileError(ValueError):
    """A talk file that cannot be used, with where and why."""

    def __init__(self, source: str, problem: str, phase: str | None = None) -> None:
        self.source = source
        self.phase = phase
        self.problem = problem
        where = f"{source}: phase '{phase}'" if phase else source
        super().__init__(f"{where}: {problem}")


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

    @property
    def digest(self) -> str:
        body = asdict(self)
        body.pop("source")
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


# --------------------------------------------------------------------------- parsing


def load_talk_file(path: Path) -> TalkDef:
    source = path.name
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TalkFileError(source, f"cannot read the file ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise TalkFileError(source, "the file is not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise TalkFileError(source, f"not valid TOML: {exc}") from exc
    return parse_talk(raw, source=source, origin=str(path))


def parse_talk(raw: dict[str, Any], *, source: str, origin: str = "") -> TalkDef:
    _no_unknown_keys(raw, TALK_KEYS, source, None, "the talk")

    slug = raw.get("slug")
    if not isinstance(slug, str) or not SLUG_RE.match(slug):
        raise TalkFileError(
            source, "'slug' must be lower-case letters, digits and dashes (e.g. 'emergence')"
        )

    languages = raw.get("languages")
    if (
        not isinstance(languages, list)
        or not languages
        or not all(isinstance(lang, str) and LANG_RE.match(lang) for lang in languages)
    ):
        raise TalkFileError(source, "'languages' must list language tags, e.g. ['en', 'zh-Hans']")
    if len(set(languages)) != len(languages):
        raise TalkFileError(source, "'languages' lists a language twice")

    titles = _texts(raw.get("title"), languages, source, None, "'title'")

    raw_phases = raw.get("phases")
    if not isinstance(raw_phases, list) or not raw_phases:
        raise TalkFileError(source, "a talk needs at least one [[phases]] entry")

    phases: list[PhaseDef] = []
    for index, raw_phase in enumerate(raw_phases, start=1):
        phases.append(_parse_phase(raw_phase, index, phases, languages, source))

    return TalkDef(
        slug=slug, titles=titles, languages=list(languages), phases=phases, source=origin
    )


def _parse_phase(
    raw: Any, index: int, earlier: list[PhaseDef], languages: list[str], source: str
) -> PhaseDef:
    if not isinstance(raw, dict):
        raise TalkFileError(source, f"phase number {index} is not a table")
    key = raw.get("id")
    if not isinstance(key, str) or not ID_RE.match(key):
        raise TalkFileError(
            source,
            f"phase number {index} needs an 'id' of lower-case letters, digits and underscores",
        )
    if any(p.key == key for p in earlier):
        raise TalkFileError(source, "duplicate phase id", key)
    _no_unknown_keys(raw, PHASE_KEYS, source, key, "a phase")

    try:
        kind = PhaseKind(str(raw.get("kind")))
    except ValueError:
        raise TalkFileError(
            source,
            f"unknown kind {raw.get('kind')!r}; use one of choice, stance, perceived, revote",
            key,
        ) from None

    of_phase: PhaseDef | None = None
    of = raw.get("of")
    if kind in (PhaseKind.revote, PhaseKind.perceived):
        if of is None:
            raise TalkFileError(
                source, f"a {kind} phase needs 'of', the stance phase it asks about", key
            )
        of_phase = next((p for p in earlier if p.key == of), None)
        if of_phase is None or of_phase.kind != PhaseKind.stance:
            raise TalkFileError(
                source, f"'of' points to {of!r}, which is not an earlier stance phase", key
            )
    elif of is not None:
        raise TalkFileError(
            source, f"'of' is only for revote and perceived phases, not {kind}", key
        )

    raw_question = raw.get("question")
    if raw_question is None and kind == PhaseKind.revote and of_phase is not None:
        questions = dict(of_phase.questions)
    else:
        questions = _texts(raw_question, languages, source, key, "'question'")

    min_value = max_value = None
    options: list[OptionDef] = []
    if "range" in raw:
        if kind != PhaseKind.perceived:
            raise TalkFileError(source, "'range' (a % estimate) is only for perceived phases", key)
        if "options" in raw:
            raise TalkFileError(source, "a phase has either 'options' or 'range', not both", key)
        rng = raw["range"]
        if (
            not isinstance(rng, list)
            or len(rng) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in rng)
            or not rng[0] < rng[1]
        ):
            raise TalkFileError(
                source, "'range' must be two numbers, low < high, e.g. [0, 100]", key
            )
        min_value, max_value = float(rng[0]), float(rng[1])
        if of_phase is not None and not of_phase.holds:
            raise TalkFileError(
                source,
                f"a % estimate needs stance phase {of!r} to say which options 'hold' the view",
                key,
            )
    elif "options" not in raw and kind == PhaseKind.revote and of_phase is not None:
        options = list(of_phase.options)
    else:
        options = _parse_options(raw.get("options"), languages, source, key)

    if (
        of_phase is not None
        and options
        and [o.key for o in options] != [o.key for o in of_phase.options]
    ):
        raise TalkFileError(
            source,
            f"options must be the same ids, in the same order, as stance phase {of!r} "
            f"({', '.join(o.key for o in of_phase.options)})",
            key,
        )

    holds: list[str] = []
    if kind == PhaseKind.stance:
        option_ids = [o.key for o in options]
        raw_holds = raw.get("holds")
        if raw_holds is None:
            holds = ["agree"] if "agree" in option_ids else []
        elif isinstance(raw_holds, list) and raw_holds and all(h in option_ids for h in raw_holds):
            holds = list(raw_holds)
        else:
            raise TalkFileError(
                source,
                f"'holds' must list some of this phase's option ids ({', '.join(option_ids)})",
                key,
            )
    elif "holds" in raw:
        raise TalkFileError(source, "'holds' is only for stance phases", key)

    return PhaseDef(
        key=key,
        kind=kind,
        questions=questions,
        options=options,
        of=of,
        holds=holds,
        min_value=min_value,
        max_value=max_value,
    )


def _parse_options(raw: Any, languages: list[str], source: str, phase: str) -> list[OptionDef]:
    if not isinstance(raw, list) or len(raw) < 2:
        raise TalkFileError(source, "needs at least two [[phases.options]] (or a 'range')", phase)
    options: list[OptionDef] = []
    for index, raw_option in enumerate(raw, start=1):
        if not isinstance(raw_option, dict):
            raise TalkFileError(source, f"option number {index} is not a table", phase)
        key = raw_option.get("id")
        if not isinstance(key, str) or not ID_RE.match(key):
            raise TalkFileError(
                source,
                f"option number {index} needs an 'id' of lower-case letters, digits and "
                "underscores",
                phase,
            )
        if any(o.key == key for o in options):
            raise TalkFileError(source, f"duplicate option id {key!r}", phase)
        _no_unknown_keys(raw_option, OPTION_KEYS, source, phase, f"option {key!r}")
        labels = _texts(
            raw_option.get("label"), languages, source, phase, f"option {key!r} 'label'"
        )
        options.append(OptionDef(key=key, labels=labels))
    return options


def _texts(
    raw: Any, languages: list[str], source: str, phase: str | None, what: str
) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise TalkFileError(source, f"{what} must be a table of texts by language", phase)
    missing = [
        lang for lang in languages if not (isinstance(raw.get(lang), str) and raw[lang].strip())
    ]
    if missing:
        raise TalkFileError(
            source, f"{what} is missing the translation for {', '.join(missing)}", phase
        )
    extra = sorted(set(raw) - set(languages))
    if extra:
        raise TalkFileError(
            source, f"{what} has text in {', '.join(extra)}, which 'languages' does not list", phase
        )
    return {lang: raw[lang].strip() for lang in languages}


def _no_unknown_keys(
    raw: dict[str, Any], allowed: set[str], source: str, phase: str | None, what: str
) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise TalkFileError(
            source, f"unknown field {', '.join(repr(u) for u in unknown)} in {what}", phase
        )


# --------------------------------------------------------------------------- discovery


def bundled_talk_files() -> list[Path]:
    return sorted(BUNDLED_DIR.glob("*.toml"))


def discover_talks(extra_dir: Path | None = None) -> list[TalkDef]:
    """The bundled talks plus every ``*.toml`` in ``extra_dir``; a broken file raises."""
    files = bundled_talk_files()
    if extra_dir is not None:
        files += sorted(extra_dir.glob("*.toml"))
    talks: dict[str, TalkDef] = {}
    for path in files:
        talk = load_talk_file(path)
        if talk.slug in talks:
            raise TalkFileError(
                path.name, f"slug {talk.slug!r} is already used by another talk file"
            )
        talks[talk.slug] = talk
    return list(talks.values())


# --------------------------------------------------------------------------- storage


def sync_talks(db: Session, talks: list[TalkDef]) -> None:
    """Store the talks. A changed file updates texts and adds phases and options in place; a phase
    or option that disappeared from the file is retired, not deleted, so sessions that already
    used it keep their results. Commits once."""
    for talk in talks:
        _sync_talk(db, talk)
    db.commit()


def _sync_talk(db: Session, talk: TalkDef) -> None:
    row = db.exec(select(Talk).where(Talk.slug == talk.slug)).first()
    if row is not None and row.digest == talk.digest:
        return
    if row is None:
        row = Talk(slug=talk.slug, titles={}, languages=[])
    row.titles = talk.titles
    row.languages = talk.languages
    row.source = talk.source
    row.digest = talk.digest
    db.add(row)
    db.flush()
    assert row.id is not None

    existing = {p.key: p for p in db.exec(select(Phase).where(Phase.talk_id == row.id))}
    for position, phase_def in enumerate(talk.phases):
        phase = existing.pop(phase_def.key, None) or Phase(
            talk_id=row.id, key=phase_def.key, position=position, kind=phase_def.kind, questions={}
        )
        phase.position = position
        phase.kind = phase_def.kind
        phase.questions = phase_def.questions
        phase.of_key = phase_def.of
        phase.holds = phase_def.holds
        phase.min_value = phase_def.min_value
        phase.max_value = phase_def.max_value
        phase.retired = False
        db.add(phase)
        db.flush()
        _sync_options(db, phase, phase_def)
    for gone in existing.values():
        gone.retired = True
        gone.position = len(talk.phases) + gone.position
        db.add(gone)


def _sync_options(db: Session, phase: Phase, phase_def: PhaseDef) -> None:
    assert phase.id is not None
    existing = {
        o.key: o for o in db.exec(select(PhaseOption).where(PhaseOption.phase_id == phase.id))
    }
    for position, option_def in enumerate(phase_def.options):
        option = existing.pop(option_def.key, None) or PhaseOption(
            phase_id=phase.id, key=option_def.key, position=position, labels={}
        )
        option.position = position
        option.labels = option_def.labels
        option.retired = False
        db.add(option)
    for gone in existing.values():
        gone.retired = True
        db.add(gone)
