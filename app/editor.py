"""The talk editor's form: a talk (the file format's structure) as flat form fields and back,
the edits its buttons make (add, remove and move phases and options), where each problem is
shown, the phone preview of one phase, and the four-phase talk a new one starts from. No HTTP
here: ``app.routes.talks`` serves it.

Every field is named by its path in the talk's structure (``phases.1.options.0.label.en``), the
same path a ``app.talkcheck.Problem`` carries, so each problem lands next to its field.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app import formats, i18n
from app.audience import AudienceView, OptionView, QuestionView
from app.models import PhaseKind
from app.talkcheck import ID_RE, MAX_LANGUAGES, MAX_OPTIONS, MAX_PHASES, Problem

KINDS = [k.value for k in PhaseKind]
_INDEX = re.compile(r"[0-9]{1,4}")
"""A position in the form (a phase, an option): ASCII digits only, no more than a talk holds."""


class MalformedForm(ValueError):
    """A field the editor's own form never sends: a position that is not one (``phases.١``,
    ``selected=²``, a button ``remove_phase:1x``). Nothing is done with such a form."""

    def __init__(self, field: str) -> None:
        self.field = field[:80]
        super().__init__(f"malformed field {self.field!r}")


def index(text: str) -> int | None:
    r"""The position a form field or a button names, or None: ``\d`` and ``str.isdigit`` also
    take other scripts' digits (``١``, ``²``) and a trailing newline, which ``int`` then refuses
    or reads as another field's number."""
    return int(text) if _INDEX.fullmatch(text) else None


# --------------------------------------------------------------------------- form -> talk


MAX_DEPTH = 6
"""Parts of the longest field name the form has (``phases.1.options.0.label.en``)."""


def _nested(fields: Mapping[str, str]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for name, value in fields.items():
        parts = name.split(".")
        if len(parts) > MAX_DEPTH:  # nested deeper than any field: str() of it would recurse
            raise MalformedForm(name)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[parts[-1]] = value
    return root


def _indexed(node: Any, most: int, where: str) -> list[Any]:
    """The entries of a numbered group of fields (``where``), in order: at most ``most`` (one
    more than a talk may hold, so the checks still say there are too many). A name in the
    group that is no position: ``MalformedForm``."""
    if not isinstance(node, dict):
        return []
    keys = []
    for key in node:
        number = index(key)
        if number is None:
            raise MalformedForm(f"{where}.{key}")
        keys.append((number, key))
    return [node[key] for _number, key in sorted(keys)[:most]]


def _number(text: str) -> Any:
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() else value


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()][:1000]


def _texts(node: Any, languages: list[str]) -> dict[str, str]:
    node = node if isinstance(node, dict) else {}
    return {lang: str(node.get(lang, "")) for lang in languages}


def split_languages(text: str) -> list[str]:
    return [part for part in re.split(r"[\s,]+", text.strip()) if part]


def talk_from_form(fields: Mapping[str, str]) -> dict[str, Any]:
    """The talk the editor's form describes, in the file format's structure (empty texts stay
    empty, so the checks name them). A revote never lists options: it asks with its stance's,
    whatever the form sends. ``MalformedForm`` for a form the editor never sends."""
    tree = _nested(fields)
    # No more than one past each limit: the checks name the excess, and the form stays small.
    languages = split_languages(str(tree.get("languages", "")))[: MAX_LANGUAGES + 1]
    talk: dict[str, Any] = {
        "slug": str(tree.get("slug", "")).strip(),
        "languages": languages,
        "title": _texts(tree.get("title"), languages),
        "phases": [],
    }
    blocklist = _blocklist(tree.get("blocklist"))
    if blocklist.get("words") or blocklist.get("mode", "block") != "block":
        talk["blocklist"] = blocklist
    for number, node in enumerate(_indexed(tree.get("phases"), MAX_PHASES + 1, "phases")):
        if not isinstance(node, dict):
            continue
        kind = str(node.get("kind", "")).strip()
        phase: dict[str, Any] = {"id": str(node.get("id", "")).strip(), "kind": kind}
        if kind in ("perceived", "revote"):
            phase["of"] = str(node.get("of", "")).strip()
        question = _texts(node.get("question"), languages)
        if kind != "revote" or any(v.strip() for v in question.values()):
            phase["question"] = question
        options = []
        holds = []
        where = f"phases.{number}.options"
        for option_node in _indexed(node.get("options"), MAX_OPTIONS + 1, where):
            if not isinstance(option_node, dict):
                continue
            option = {
                "id": str(option_node.get("id", "")).strip(),
                "label": _texts(option_node.get("label"), languages),
            }
            options.append(option)
            if option_node.get("holds"):
                holds.append(option["id"])
        answer = answer_from_form(node.get("answer"))
        if kind != "revote":  # a revote has no options of its own: it takes its stance's
            phase.update(_answer_fields(node, answer, options))
        if kind == "stance":
            phase["holds"] = holds
        talk["phases"].append(phase)
    return talk


LEGACY_ANSWERS = {"options": formats.OPTION, "estimate": formats.NUMBER}
"""What the editor's answer menu sent before formats had names."""


def answer_from_form(value: Any) -> str:
    """The answer format the form's menu names (``option`` when it names none it knows)."""
    name = LEGACY_ANSWERS.get(str(value), str(value))
    return name if formats.known(name) else formats.OPTION


def _answer_fields(node: dict[str, Any], answer: str, options: list[Any]) -> dict[str, Any]:
    """A phase's answer in the talk file's structure: its format (when the fields alone would
    not say it), the options if it has any, and its own fields (a range, settings)."""
    own = formats.by_name(answer)
    out: dict[str, Any] = {}
    if own.uses_options:
        out["options"] = options
    for key in sorted(own.talk_keys - {"options"}):
        found = node.get(key)
        if isinstance(found, dict) and all(index(k) is not None for k in found):
            # a list of fields (a range's low and high)
            out[key] = [_number(str(found.get(str(i), ""))) for i in range(len(found))]
        elif isinstance(found, dict):  # a table of fields (an open-text phase's blocklist)
            out[key] = _blocklist(found)
        elif found is not None:
            out[key] = _number(str(found))
        elif key in own.editor_defaults:  # the format was just chosen in the menu
            out[key] = copy.deepcopy(own.editor_defaults[key])
    if formats.inferred(out) != answer:
        out = {"answer": answer, **out}
    return out


def _blocklist(found: Any) -> dict[str, Any]:
    """A blocklist's fields (the talk's or a phase's): its words, one a line, and its mode
    unless the menu says "as the talk's" (an empty value)."""
    if not isinstance(found, dict):
        return {}
    table: dict[str, Any] = {}
    for name, value in found.items():
        text = value.strip() if isinstance(value, str) else ""
        if name == "words":
            table[name] = _lines(text)
        elif text:
            table[name] = text
    return table


# --------------------------------------------------------------------------- the buttons


def _blank(languages: list[str]) -> dict[str, str]:
    return dict.fromkeys(languages, "")


def _free_id(taken: list[str], stem: str) -> str:
    number = 1
    while f"{stem}{number}" in taken:
        number += 1
    return f"{stem}{number}"


def _stance_ids(phases: list[dict[str, Any]], before: int | None = None) -> list[str]:
    chosen = phases if before is None else phases[:before]
    return [p["id"] for p in chosen if p.get("kind") == "stance"]


def new_phase(talk: dict[str, Any], kind: str) -> dict[str, Any]:
    languages = talk["languages"]
    phases = talk["phases"]
    phase: dict[str, Any] = {
        "id": _free_id([p.get("id", "") for p in phases], kind),
        "kind": kind,
        "question": _blank(languages),
    }
    stances = _stance_ids(phases)
    if kind in ("perceived", "revote"):
        phase["of"] = stances[-1] if stances else ""
        stance = next((p for p in phases if p.get("id") == phase["of"]), None)
        if kind == "perceived":
            source = stance.get("options", []) if stance else []
            phase["options"] = [{"id": o["id"], "label": _blank(languages)} for o in source]
        elif stance is not None:
            phase["question"] = dict(stance.get("question", {}))
    else:
        phase["options"] = [{"id": key, "label": _blank(languages)} for key in ("a", "b")]
    if kind == "stance":
        phase["holds"] = []
    return phase


WHY = "why"
"""The button that adds an open "why?" (an open-text phase) after the stance question."""


def why_phase(talk: dict[str, Any]) -> dict[str, Any]:
    """An open-text "why?" question, written in each of the talk's languages the app speaks."""
    phase: dict[str, Any] = {
        "id": _free_id([p.get("id", "") for p in talk["phases"]], WHY),
        "kind": "choice",
        "answer": "text",
        "question": {lang: _why_text(lang) for lang in talk["languages"]},
    }
    phase.update(copy.deepcopy(dict(formats.by_name("text").editor_defaults)))
    return phase


def _why_text(lang: str) -> str:
    spoken = i18n.supported(lang)
    return i18n.translate(spoken, "ed_why_question") if spoken else ""


def why_place(phases: list[dict[str, Any]]) -> int:
    """Where the "why?" goes: right after the first stance phase (the end without one)."""
    first = next((i for i, p in enumerate(phases) if p.get("kind") == "stance"), None)
    return len(phases) if first is None else first + 1


def _move(items: list[Any], index: int, by: int) -> None:
    target = index + by
    if 0 <= index < len(items) and 0 <= target < len(items):
        items[index], items[target] = items[target], items[index]


def apply_edit(talk: dict[str, Any], op: str, selected: int) -> tuple[dict[str, Any], int]:
    """The talk after one of the editor's buttons (``add_phase:stance``, ``remove_phase:2``,
    ``up_option:1:0``...), and the phase to preview. Unknown or out-of-range buttons change
    nothing; a position that is not one is ``MalformedForm``."""
    talk = copy.deepcopy(talk)
    phases: list[dict[str, Any]] = talk["phases"]
    name, _, rest = op.partition(":")
    args = []
    if name != "add_phase" and rest:
        for part in rest.split(":"):
            number = index(part)
            if number is None:
                raise MalformedForm("op")
            args.append(number)
    i = args[0] if args else -1
    j = args[1] if len(args) > 1 else -1
    phase = phases[i] if 0 <= i < len(phases) else None
    if phase is not None and phase.get("kind") == "revote" and "option" in name:
        phase = None  # a revote's options are its stance's: edited there, not here
    options: list[dict[str, Any]] = (phase.get("options") or []) if phase else []
    if name == "add_phase" and rest in KINDS:
        phases.append(new_phase(talk, rest))
        selected = len(phases) - 1
    elif name == "add_phase" and rest == WHY:
        at = why_place(phases)
        phases.insert(at, why_phase(talk))
        selected = at
    elif name == "remove_phase" and phase is not None:
        phases.pop(i)
        selected = min(selected, len(phases) - 1)
    elif name in ("up_phase", "down_phase") and phase is not None:
        by = -1 if name == "up_phase" else 1
        _move(phases, i, by)
        if selected == i:
            selected = max(0, min(len(phases) - 1, i + by))
    elif name == "select" and phase is not None:
        selected = i
    elif name == "add_option" and phase is not None and "range" not in phase:
        options = phase.setdefault("options", [])
        taken = [o.get("id", "") for o in options]
        options.append({"id": _free_id(taken, "option"), "label": _blank(talk["languages"])})
        selected = i
    elif name == "remove_option" and phase is not None and 0 <= j < len(options):
        removed = options.pop(j)
        if phase.get("holds"):
            phase["holds"] = [h for h in phase["holds"] if h != removed.get("id")]
        selected = i
    elif name in ("up_option", "down_option") and phase is not None:
        _move(options, j, -1 if name == "up_option" else 1)
        selected = i
    elif name == "copy_options" and phase is not None:
        stance = next((p for p in phases if p.get("id") == phase.get("of")), None)
        if stance is not None:
            old = {o.get("id"): o for o in options}
            phase["options"] = [
                {
                    "id": o["id"],
                    "label": dict(old[o["id"]]["label"]) if o["id"] in old else dict(o["label"]),
                }
                for o in stance.get("options", [])
            ]
            phase.pop("range", None)
        selected = i
    return talk, max(0, min(selected, len(phases) - 1))


# --------------------------------------------------------------------------- problems


def stance_options(talk: Mapping[str, Any], phase: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The options a revote asks with: its stance's, as the form has them now (none while
    ``of`` names no stance of the talk)."""
    stance = next(
        (
            p
            for p in talk.get("phases", [])
            if isinstance(p, dict) and p.get("kind") == "stance" and p.get("id") == phase.get("of")
        ),
        None,
    )
    found = stance.get("options") if stance is not None else None
    return [o for o in found if isinstance(o, dict)] if isinstance(found, list) else []


def slot_id(path: str) -> str:
    """The id of the element that shows the problems of a field (``p-phases-1-id``)."""
    return "p-" + (path.replace(".", "-") if path else "talk")


def slot_paths(talk: dict[str, Any]) -> list[str]:
    """Every place the editor shows problems, for this talk's form."""
    languages = talk["languages"]
    paths = ["", "slug", "languages", "title", "blocklist", "phases"]
    paths += [f"title.{lang}" for lang in languages]
    for i, phase in enumerate(talk["phases"]):
        base = f"phases.{i}"
        paths += [base, *(f"{base}.{name}" for name in ("id", "kind", "question", "range"))]
        if phase.get("kind") in ("perceived", "revote"):
            paths.append(f"{base}.of")
        paths += [f"{base}.question.{lang}" for lang in languages]
        if "range" in phase:
            continue
        if phase.get("kind") == "revote":  # its options are shown read-only: one slot for all
            paths.append(f"{base}.options")
            continue
        answer = formats.named_in(phase)
        # the format's own fields (an open question's limits and blocklist), then its options
        paths += [f"{base}.{key}" for key in sorted(answer.talk_keys - {"options", "range"})]
        if not answer.uses_options:
            continue
        paths += [f"{base}.holds", f"{base}.options"]
        for j, _option in enumerate(phase.get("options") or []):
            at = f"{base}.options.{j}"
            paths += [at, f"{at}.id", f"{at}.label"]
            paths += [f"{at}.label.{lang}" for lang in languages]
    return paths


def problem_text(problem: Problem, lang: str) -> str:
    """The problem in the interface language (short: it stands beside its field)."""
    key = f"tc_{problem.code}"
    if problem.code and key in i18n.messages():
        return i18n.translate(lang, key, **problem.args)
    return problem.message


def problems_by_slot(
    talk: dict[str, Any], problems: list[Problem], lang: str = i18n.DEFAULT_LANGUAGE
) -> dict[str, list[str]]:
    """Each problem, in ``lang``, at the nearest place the form shows (its field, else its
    option, phase or the talk)."""
    slots = set(slot_paths(talk))
    out: dict[str, list[str]] = {}
    for problem in problems:
        loc = list(problem.loc)
        while loc and ".".join(str(p) for p in loc) not in slots:
            loc.pop()
        out.setdefault(".".join(str(p) for p in loc), []).append(problem_text(problem, lang))
    return out


# --------------------------------------------------------------------------- preview


@dataclass(frozen=True)
class Preview:
    """A phase as a phone shows it, for the audience templates (``view``, ``q``)."""

    view: AudienceView
    q: QuestionView
    lang: str


def _text(texts: Any, lang: str) -> str:
    # the talk as typed: where a table of texts belongs there may be anything
    if not isinstance(texts, dict):
        return ""
    return i18n.text_in(texts, lang)


def preview(talk: dict[str, Any], selected: int, lang: str) -> Preview | None:
    """The selected phase as a phone would show it open, in ``lang`` (one of the talk's)."""
    phases = talk["phases"]
    if not phases:
        return None
    phase = phases[max(0, min(selected, len(phases) - 1))]
    by_id = {p.get("id"): p for p in phases}
    stance = by_id.get(phase.get("of")) if phase.get("kind") in ("perceived", "revote") else None
    question = phase.get("question") or (stance or {}).get("question")
    options = phase.get("options")
    if phase.get("kind") == "revote":
        options = stance_options(talk, phase)
    rng = phase.get("range")
    low = high = None
    if isinstance(rng, list) and len(rng) == 2 and all(isinstance(v, int | float) for v in rng):
        low, high = float(rng[0]), float(rng[1])
    try:
        kind = PhaseKind(phase.get("kind"))
    except ValueError:
        kind = PhaseKind.choice
    answer = formats.named_in(phase)
    if answer.numeric and low is None:  # a range being typed: the phone's scale as it will be
        answer = formats.by_name(formats.OPTION)
    q = QuestionView(
        key=phase.get("id") if ID_RE.match(str(phase.get("id", ""))) else "preview",
        kind=kind,
        number=phases.index(phase) + 1,
        text=_text(question, lang) or "…",
        options=[
            OptionView(
                key=str(o.get("id", "")), label=_text(o.get("label"), lang) or "…", chosen=False
            )
            for o in (options or [])
            if isinstance(o, dict)
        ]
        if answer.uses_options or kind == PhaseKind.revote
        else [],
        min_value=low,
        max_value=high,
        answered=False,
        value=None,
        seconds_left=None,
        answer=answer.name,
    )
    view = AudienceView(
        code="PREVIEW",
        title=_text(talk.get("title"), lang),
        content_lang=lang,
        questions=[q],
        current=q,
    )
    return Preview(view=view, q=q, lang=lang)


# --------------------------------------------------------------------------- the template


TEMPLATE_TEXTS: dict[str, dict[str, str]] = {
    "title": {"en": "My talk", "zh-Hans": "我的报告"},
    "choice": {
        "en": "Which of these do you mean by the term?",
        "zh-Hans": "你说这个术语时，指的是下面哪一种？",
    },
    "choice_a": {"en": "The first meaning", "zh-Hans": "第一种含义"},
    "choice_b": {"en": "The second meaning", "zh-Hans": "第二种含义"},
    "choice_other": {"en": "None of these", "zh-Hans": "以上都不是"},
    "stance": {"en": "Do you agree with the claim?", "zh-Hans": "你同意这个观点吗？"},
    "agree": {"en": "Yes", "zh-Hans": "同意"},
    "disagree": {"en": "No", "zh-Hans": "不同意"},
    "unsure": {"en": "Unsure", "zh-Hans": "不确定"},
    "perceived": {
        "en": "What do you think most others in your field believe?",
        "zh-Hans": "你认为你所在领域的大多数人怎么看？",
    },
    "perceived_pct": {
        "en": "What share of your field do you think agrees?",
        "zh-Hans": "你认为你所在领域有多大比例的人同意？",
    },
    "p_agree": {"en": "Most agree", "zh-Hans": "大多数人同意"},
    "p_disagree": {"en": "Most disagree", "zh-Hans": "大多数人不同意"},
    "p_unsure": {"en": "Most are unsure", "zh-Hans": "大多数人不确定"},
    "revote": {
        "en": "After this talk: do you agree with the claim?",
        "zh-Hans": "听完这次报告后：你同意这个观点吗？",
    },
}


def _in(languages: Sequence[str], name: str) -> dict[str, str]:
    texts = TEMPLATE_TEXTS[name]
    return {
        lang: texts.get(lang) or texts.get(lang.split("-")[0]) or texts["en"] for lang in languages
    }


def template_talk(
    slug: str = "", languages: Sequence[str] = ("en", "zh-Hans"), estimate: bool = False
) -> dict[str, Any]:
    """The four-phase talk to start from: a choice, a stance, what the field is perceived to
    hold (options, or a 0-100 estimate with ``estimate``) and the stance again after the talk
    (its options are always the stance's, so it lists none)."""
    langs = list(languages)
    stance_options = [
        {"id": key, "label": _in(langs, key)} for key in ("agree", "disagree", "unsure")
    ]
    perceived: dict[str, Any] = {"id": "field", "kind": "perceived", "of": "belief"}
    if estimate:
        perceived.update(question=_in(langs, "perceived_pct"), range=[0, 100])
    else:
        perceived.update(
            question=_in(langs, "perceived"),
            options=[
                {"id": key, "label": _in(langs, f"p_{key}")}
                for key in ("agree", "disagree", "unsure")
            ],
        )
    return {
        "slug": slug,
        "languages": langs,
        "title": _in(langs, "title"),
        "phases": [
            {
                "id": "definition",
                "kind": "choice",
                "question": _in(langs, "choice"),
                "options": [
                    {"id": "a", "label": _in(langs, "choice_a")},
                    {"id": "b", "label": _in(langs, "choice_b")},
                    {"id": "other", "label": _in(langs, "choice_other")},
                ],
            },
            {
                "id": "belief",
                "kind": "stance",
                "holds": ["agree"],
                "question": _in(langs, "stance"),
                "options": stance_options,
            },
            perceived,
            {
                "id": "revote",
                "kind": "revote",
                "of": "belief",
                "question": _in(langs, "revote"),
            },
        ],
    }
