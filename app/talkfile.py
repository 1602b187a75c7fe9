"""Talk files: reading a talk (TOML files, the API's and the editor's JSON), checking it with
every problem at once, and writing it back (``talk_to_dict``, ``talk_to_toml``); the bundled
talks and the talks folder; the editor's template.

A talk is the structure of a talk file (the format is documented in ``docs/talk-format.md``; the
bundled talks in ``app/talks/`` are worked examples), as TOML or the same structure as JSON.
Checking collects every problem at once, each naming where it is (the file, the phase, the option
and the field), so a speaker fixes them all in one go, in a file or in the editor. A phase's
role (``kind``) is checked here; its answer (options, a range...) by its format (``app.formats``).
"""

from __future__ import annotations

import contextlib
import json
import pickle
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app import formats
from app.formats import text as text_format
from app.models import PhaseKind
from app.talkcheck import (
    ID_RE,
    LANG_RE,
    MAX_LANGUAGES,
    MAX_PHASES,
    PHASE_KEYS,
    SLUG_RE,
    TALK_KEYS,
    Checker,
    Loc,
    PhaseDef,
    Problem,
    TalkDef,
    TalkFileError,
    no_unknown_keys,
    shown,
    texts,
)

BUNDLED_DIR = Path(__file__).resolve().parent / "talks"
TOML_SECONDS = 5.0
"""How long reading a talk's TOML sent to the server may take (``parse_toml_isolated``): a real
talk of a few KB takes milliseconds; the limit is only reached by text made to be slow."""
TOML_MEMORY = 512 * 1024 * 1024
"""Address space of the process that reads a talk's TOML sent to the server."""


def load_talk_file(path: Path) -> TalkDef:
    source = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TalkFileError(source, f"cannot read the file ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise TalkFileError(source, "the file is not UTF-8 text") from exc
    return parse_talk(parse_toml(text, source), source=source, origin=str(path))


def parse_toml(text: str, source: str = "the talk") -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except ValueError as exc:  # TOMLDecodeError, or an integer over Python's 4,300 digits
        raise TalkFileError(source, f"not valid TOML: {str(exc)[:200]}") from exc
    except RecursionError:
        raise TalkFileError(source, _TOO_DEEP) from None


_TOO_DEEP = "not valid TOML: arrays or tables nested too deep"

_TOML_READER = """
import os, pickle, sys, tomllib
try:  # Unix: a lower priority than the server's, and a memory limit
    import resource
    os.nice(10)
    resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[1]), int(sys.argv[1])))
except (ImportError, AttributeError, OSError, ValueError):
    pass
try:
    out = ("ok", tomllib.loads(sys.stdin.buffer.read().decode()))
except ValueError as exc:  # TOMLDecodeError, or an integer over Python's 4,300 digits
    out = ("invalid", str(exc)[:200])
except RecursionError:
    out = ("deep", "")
sys.stdout.buffer.write(pickle.dumps(out))
"""


def parse_toml_isolated(
    text: str, source: str = "the talk", *, seconds: float = TOML_SECONDS
) -> dict[str, Any]:
    """``parse_toml`` in a process of its own, ended after ``seconds`` and held to
    ``TOML_MEMORY``: Python's TOML reader takes time that grows much faster than the text for
    some shapes (a 40 KB dotted key takes seconds, 100 KB most of a minute), and a thread
    cannot be stopped. The process runs at a lower priority than the server, which keeps
    answering the room meanwhile. A talk sent to the server is read here (a few tens of
    milliseconds more); talk files on disk are the operator's own and are read in place."""
    try:
        done = subprocess.run(  # noqa: S603 (our own interpreter and script; the text on stdin)
            [sys.executable, "-I", "-S", "-c", _TOML_READER, str(TOML_MEMORY)],
            input=text.encode(),
            capture_output=True,
            timeout=seconds,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise TalkFileError(
            source,
            f"reading this TOML took longer than {seconds:g} s, so it was stopped; a talk "
            "is a few KB of plain keys and tables",
        ) from None
    if done.returncode != 0 or not done.stdout:
        raise TalkFileError(source, "this TOML could not be read within the memory allowed")
    # The reader's answer, from the script above: plain TOML values, pickled by our own child.
    outcome, value = pickle.loads(done.stdout)  # noqa: S301
    if outcome == "invalid":
        raise TalkFileError(source, f"not valid TOML: {value}")
    if outcome == "deep":
        raise TalkFileError(source, _TOO_DEEP)
    return dict(value)


def parse_talk(raw: Any, *, source: str, origin: str = "") -> TalkDef:
    """The talk in ``raw`` (the file format's structure), or TalkFileError with every problem."""
    check = Checker()
    talk = _parse(raw, check)
    if check.problems or talk is None:
        raise TalkFileError(source, check.finished() or [Problem("invalid talk")])
    return TalkDef(
        slug=talk.slug,
        titles=talk.titles,
        languages=talk.languages,
        phases=talk.phases,
        source=origin,
        blocklist=talk.blocklist,
    )


def talk_problems(raw: Any) -> list[Problem]:
    """Every problem of a talk (none: it can be stored)."""
    check = Checker()
    _parse(raw, check)
    return check.finished()


def _parse(raw: Any, check: Checker) -> TalkDef | None:
    if not isinstance(raw, dict):
        check.add(
            "a talk is a table (an object) with slug, languages, title and phases", code="not_table"
        )
        return None
    no_unknown_keys(raw, TALK_KEYS, check, (), None, None, "the talk")

    slug = raw.get("slug")
    if not isinstance(slug, str) or not SLUG_RE.match(slug):
        check.add(
            "'slug' must be lower-case letters, digits and dashes (e.g. 'emergence')",
            ("slug",),
            code="bad_slug",
        )
        slug = ""

    languages = raw.get("languages")
    # Sizes first: the checks below walk every text once per language.
    oversized = isinstance(languages, list) and len(languages) > MAX_LANGUAGES
    if oversized:
        check.add(
            f"at most {MAX_LANGUAGES} languages",
            ("languages",),
            code="too_many_languages",
            n=MAX_LANGUAGES,
        )
        languages = []
    elif (
        not isinstance(languages, list)
        or not languages
        or not all(isinstance(lang, str) and LANG_RE.match(lang) for lang in languages)
    ):
        check.add(
            "'languages' must list language tags, e.g. ['en', 'zh-Hans']",
            ("languages",),
            code="bad_languages",
        )
        languages = (
            [lang for lang in languages or [] if isinstance(lang, str)]
            if isinstance(languages, list)
            else []
        )
        languages = [lang for lang in languages if LANG_RE.match(lang)]
    elif len(set(languages)) != len(languages):
        check.add("'languages' lists a language twice", ("languages",), code="language_twice")
        languages = list(dict.fromkeys(languages))

    raw_phases = raw.get("phases")
    phases: list[PhaseDef] = []
    too_many_phases = isinstance(raw_phases, list) and len(raw_phases) > MAX_PHASES
    if oversized or too_many_phases:  # nothing else is checked until the sizes are right
        if too_many_phases:
            check.add(
                f"at most {MAX_PHASES} phases", ("phases",), code="too_many_phases", n=MAX_PHASES
            )
        return TalkDef(slug=slug, titles={}, languages=list(languages), phases=phases)

    titles = texts(raw.get("title"), languages, check, ("title",), None, None, "'title'")
    blocklist = _talk_blocklist(raw, check)

    if not isinstance(raw_phases, list) or not raw_phases:
        check.add("a talk needs at least one [[phases]] entry", ("phases",), code="no_phases")
    else:
        for index, raw_phase in enumerate(raw_phases):
            phase = _parse_phase(raw_phase, index, phases, languages, check, blocklist)
            if phase is not None:
                phases.append(phase)
    return TalkDef(
        slug=slug, titles=titles, languages=list(languages), phases=phases, blocklist=blocklist
    )


def _talk_blocklist(raw: Mapping[str, Any], check: Checker) -> dict[str, Any]:
    """The talk's own blocklist for its open-text phases (``app.formats.text``): empty for none
    or for the default (the seeded lists, block)."""
    if "blocklist" not in raw:
        return {}
    found = text_format.check_blocklist(raw["blocklist"], check, (), None)
    if found is None or (not found["words"] and found.get("mode", "block") == "block"):
        return {}
    return {"mode": found.get("mode", "block"), "words": found["words"]}


def _parse_phase(
    raw: Any,
    index: int,
    earlier: list[PhaseDef],
    languages: list[str],
    check: Checker,
    blocklist: Mapping[str, Any],
) -> PhaseDef | None:
    loc: Loc = ("phases", index)
    if not isinstance(raw, dict):
        check.add(
            f"phase number {index + 1} is not a table", loc, code="phase_not_table", n=index + 1
        )
        return None
    key = raw.get("id")
    name: str | None = key if isinstance(key, str) and ID_RE.match(key) else None
    if name is None:
        check.add(
            f"phase number {index + 1} needs an 'id' of lower-case letters, digits and underscores",
            (*loc, "id"),
            code="bad_phase_id",
            n=index + 1,
        )
        key = f"phase{index + 1}"
    elif any(p.key == key for p in earlier):
        check.add("duplicate phase id", (*loc, "id"), name, code="duplicate_phase")
    assert isinstance(key, str)
    named_answer = raw.get("answer")
    own_keys = (
        formats.by_name(str(named_answer)).talk_keys
        if formats.known(named_answer)
        else formats.talk_keys()
    )
    no_unknown_keys(raw, PHASE_KEYS | own_keys, check, loc, name, None, "a phase")

    try:
        kind = PhaseKind(str(raw.get("kind")))
    except ValueError:
        check.add(
            f"unknown kind {shown(raw.get('kind'))}; use one of choice, stance, perceived, revote",
            (*loc, "kind"),
            name,
            code="bad_kind",
            kind=shown(raw.get("kind")).strip("'"),
        )
        return None

    of_phase: PhaseDef | None = None
    of = raw.get("of")

    def of_problem(message: str, code: str, **params: str) -> None:
        check.add(message, (*loc, "of"), name, code=code, **params)

    if kind in (PhaseKind.revote, PhaseKind.perceived):
        if of is None or of == "":
            of_problem(
                f"a {kind} phase needs 'of', the stance phase it asks about",
                "needs_of",
                kind=kind.value,
            )
            of = None
        else:
            of_phase = next((p for p in earlier if p.key == of), None)
            if of_phase is None or of_phase.kind != PhaseKind.stance:
                of_problem(
                    f"'of' points to {shown(of)}, which is not an earlier stance phase",
                    "bad_of",
                    of=shown(of).strip("'"),
                )
                of_phase = None
    elif of is not None:
        of_problem(
            f"'of' is only for revote and perceived phases, not {kind}",
            "of_not_allowed",
            kind=kind.value,
        )
        of = None

    raw_question = raw.get("question")
    if raw_question is None and kind == PhaseKind.revote:
        # The stance's question; without a stance, 'of' says what is wrong.
        questions = dict(of_phase.questions) if of_phase is not None else {}
    else:
        questions = texts(
            raw_question, languages, check, (*loc, "question"), name, None, "'question'"
        )

    answer = _answer_format(raw, loc, name, check)
    if answer is None:
        return None
    part = answer.parse(
        formats.PhaseParse(
            raw=raw,
            loc=loc,
            name=name,
            kind=kind,
            of=of if isinstance(of, str) else None,
            of_phase=of_phase,
            languages=languages,
            check=check,
            talk_blocklist=blocklist,
        )
    )
    options = part.options

    holds: list[str] = []
    if kind == PhaseKind.stance:
        option_ids = [o.key for o in options]
        raw_holds = raw.get("holds")
        if raw_holds is None:
            holds = ["agree"] if "agree" in option_ids else []
        elif isinstance(raw_holds, list) and raw_holds and all(h in option_ids for h in raw_holds):
            holds = list(raw_holds)
        else:
            check.add(
                f"'holds' must list some of this phase's option ids ({', '.join(option_ids)})",
                (*loc, "holds"),
                name,
                code="bad_holds",
                ids=", ".join(option_ids),
            )
    elif "holds" in raw:
        check.add(
            "'holds' is only for stance phases", (*loc, "holds"), name, code="holds_not_allowed"
        )

    return PhaseDef(
        key=key,
        kind=kind,
        questions=questions,
        options=options,
        of=of if isinstance(of, str) else None,
        holds=holds,
        min_value=part.min_value,
        max_value=part.max_value,
        answer=answer.name,
        settings=part.settings,
    )


def talk_to_dict(talk: TalkDef) -> dict[str, Any]:
    """The talk in the file format's structure, every text spelled out (what a version stores,
    ``GET /api/v1/talks/{slug}`` answers and the editor starts from)."""
    phases: list[dict[str, Any]] = []
    for phase in talk.phases:
        entry: dict[str, Any] = {
            "id": phase.key,
            "kind": phase.kind.value,
            "question": dict(phase.questions),
        }
        if phase.of is not None:
            entry["of"] = phase.of
        if phase.kind == PhaseKind.stance:
            entry["holds"] = list(phase.holds)
        answer = formats.by_name(phase.answer)
        own = answer.to_dict(phase)
        if phase.answer != formats.inferred(own):  # files from before formats name none
            entry["answer"] = phase.answer
        entry.update(own)
        phases.append(entry)
    out: dict[str, Any] = {
        "slug": talk.slug,
        "languages": list(talk.languages),
        "title": dict(talk.titles),
    }
    if talk.blocklist:
        out["blocklist"] = dict(talk.blocklist)
    out["phases"] = phases
    return out


def _toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a TOML basic string


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Mapping):  # an inline table: a blocklist
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return "[" + ", ".join(_toml_value(v) for v in value) + "]"


def talk_to_toml(content: Mapping[str, Any]) -> str:
    """A talk (``talk_to_dict``'s structure) as a talk file that reads back the same. A revote
    whose options are its stance's lists none (an old version whose revote differs keeps its
    own, so reading it back names the difference)."""
    lines = [
        f"slug = {_toml_string(content['slug'])}",
        f"languages = {_toml_value(content['languages'])}",
    ]
    if content.get("blocklist"):
        lines.append(f"blocklist = {_toml_value(content['blocklist'])}")
    lines += ["", "[title]"]
    lines += [f"{lang} = {_toml_string(text)}" for lang, text in content["title"].items()]
    by_id = {phase["id"]: phase for phase in content["phases"]}
    for phase in content["phases"]:
        lines += ["", "[[phases]]", f"id = {_toml_string(phase['id'])}"]
        lines.append(f"kind = {_toml_string(phase['kind'])}")
        first = ["of", "holds", "answer", "range"]
        rest = sorted(set(phase) - {*first, "id", "kind", "question", "options"})
        for name in [*first, *rest]:  # the role's fields, then the answer format's
            if name in phase:
                lines.append(f"{name} = {_toml_value(phase[name])}")
        lines += [f"question.{lang} = {_toml_string(t)}" for lang, t in phase["question"].items()]
        options = phase.get("options", [])
        stance = by_id.get(phase.get("of")) if phase["kind"] == PhaseKind.revote.value else None
        if stance is not None and options == stance.get("options"):
            lines.append(f"# options: those of {_toml_string(stance['id'])}")
            continue  # a revote that lists none takes its stance's: nothing to drift apart
        for option in options:
            lines += ["", "  [[phases.options]]", f"  id = {_toml_string(option['id'])}"]
            lines += [f"  label.{lang} = {_toml_string(t)}" for lang, t in option["label"].items()]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- discovery


def bundled_talk_files() -> list[Path]:
    return sorted(BUNDLED_DIR.glob("*.toml"))


def is_bundled(source: str) -> bool:
    if source.startswith("bundled:"):
        return True
    return bool(source) and Path(source).resolve().parent == BUNDLED_DIR.resolve()


@dataclass(frozen=True)
class FileCheck:
    """One talk file as checked: the talk, or what is wrong with it."""

    path: Path
    talk: TalkDef | None
    error: TalkFileError | None


def check_talk_files(files: Iterable[Path], *, bundled: bool = True) -> list[FileCheck]:
    """Every file checked on its own, then every slug that two files claim (``bundled``: the
    bundled talks count as claimed first, so a file that reuses one of their slugs is named)."""
    claimed: dict[str, str] = {}
    if bundled:
        for path in bundled_talk_files():
            with contextlib.suppress(TalkFileError):  # checked as a file of its own
                claimed.setdefault(load_talk_file(path).slug, f"the bundled talk {path.name}")
    bundled_files = {p.resolve() for p in bundled_talk_files()} if bundled else set()
    out: list[FileCheck] = []
    for path in files:
        if path.resolve() in bundled_files:  # a bundled file does not clash with itself
            claimed = {s: w for s, w in claimed.items() if w != f"the bundled talk {path.name}"}
        try:
            talk = load_talk_file(path)
        except TalkFileError as exc:
            out.append(FileCheck(path, None, exc))
            continue
        if talk.slug in claimed:
            error = TalkFileError(
                path.name,
                [Problem(f"slug {talk.slug!r} is already used by {claimed[talk.slug]}", ("slug",))],
            )
            out.append(FileCheck(path, None, error))
            continue
        claimed[talk.slug] = path.name
        out.append(FileCheck(path, talk, None))
    return out


def discover_talks(extra_dir: Path | None = None) -> list[TalkDef]:
    """The bundled talks plus every ``*.toml`` in ``extra_dir``; any broken file (or a slug
    used twice) raises, naming every problem of every file."""
    files = bundled_talk_files()
    if extra_dir is not None:
        files += sorted(extra_dir.glob("*.toml"))
    checked = check_talk_files(files, bundled=False)
    errors = [c.error for c in checked if c.error is not None]
    if len(errors) == 1:
        raise errors[0]
    if errors:
        problems = [
            Problem(p.text(e.source), p.loc, None, p.option) for e in errors for p in e.problems
        ]
        raise TalkFileError("", problems)
    return [c.talk for c in checked if c.talk is not None]


def _answer_format(
    raw: Mapping[str, Any], loc: Loc, name: str | None, check: Checker
) -> formats.AnswerFormat | None:
    """The phase's answer format: the one ``answer`` names, else the one its fields imply."""
    named = raw.get("answer", formats.inferred(raw))
    if formats.known(named):
        return formats.by_name(named)
    check.add(
        f"unknown answer {shown(named)}; use one of " + ", ".join(f.name for f in formats.FORMATS),
        (*loc, "answer"),
        name,
        code="bad_answer",
        answer=shown(named).strip("'"),
    )
    return None
