"""Interface strings in English and Chinese (zh-Hans), and choosing a language for a request.

Strings live in ``app/locales/*.toml``, one table per message id with one text per language;
every file is checked at load time to have every language for every message, so a missing
translation is a start-up error, not a blank on a phone. In templates, ``t("id", n=3)`` uses the
``lang`` of the template context.

A text that depends on a count has its plural forms as a table, by CLDR category (English has
``one`` and ``other``; Chinese has only ``other``, so a plain string)::

    [res_sessions_n]
    count = "k"          # the value that picks the form (default: n)
    en.one = "Across {k} session"
    en.other = "Across {k} sessions"
    zh-Hans = "共 {k} 场"
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context

LANGUAGES = ("en", "zh-Hans")
DEFAULT_LANGUAGE = "en"
LANGUAGE_NAMES = {"en": "English", "zh-Hans": "中文"}
LANG_COOKIE = "bg_lang"
LOCALES_DIR = Path(__file__).resolve().parent / "locales"


PLURAL_CATEGORIES = {"en": ("one", "other"), "zh-Hans": ("other",)}
"""The CLDR plural categories each language uses for whole numbers."""


def plural_category(lang: str, count: Any) -> str:
    """``one`` or ``other`` for English (CLDR: 1 is one, everything else other), ``other`` for
    Chinese."""
    if lang == "en" and count == 1:
        return "one"
    return "other"


@cache
def messages() -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for path in sorted(LOCALES_DIR.glob("*.toml")):
        for key, texts in tomllib.loads(path.read_text(encoding="utf-8")).items():
            missing = [lang for lang in LANGUAGES if lang not in texts]
            if missing:
                raise ValueError(f"{path.name}: message '{key}' lacks {', '.join(missing)}")
            if key in merged:
                raise ValueError(f"{path.name}: message '{key}' is defined twice")
            for lang in LANGUAGES:
                text = texts[lang]
                if isinstance(text, dict):
                    lacking = [c for c in PLURAL_CATEGORIES[lang] if c not in text]
                    if lacking:
                        raise ValueError(
                            f"{path.name}: message '{key}' lacks the plural form "
                            f"{', '.join(lacking)} in {lang}"
                        )
            merged[key] = texts
    return merged


def forms(key: str, lang: str) -> list[str]:
    """Every text of a message in a language: its plural forms, or the one text."""
    text = messages()[key][lang]
    return list(text.values()) if isinstance(text, dict) else [text]


def translate(lang: str, key: str, **values: Any) -> str:
    texts = messages().get(key)
    if texts is None:
        raise KeyError(f"no message '{key}'")
    text = texts.get(lang) or texts[DEFAULT_LANGUAGE]
    if isinstance(text, dict):  # plural forms: the count picks one
        count = values.get(texts.get("count", "n"))
        form_lang = lang if lang in texts else DEFAULT_LANGUAGE
        text = text.get(plural_category(form_lang, count)) or text["other"]
    return text.format(**values) if values else text


@pass_context
def t(context: Context, key: str, **values: Any) -> str:
    return translate(context.get("lang") or DEFAULT_LANGUAGE, key, **values)


def text_in(texts: Mapping[str, Any], lang: str, first: Sequence[str] = ()) -> str:
    """One of a talk's texts (a title, a question, an option's label: a text per language) in
    ``lang``; else the first that is not empty, looking in ``first`` (the talk's languages, in
    order) and then in the order stored; "" when there is none."""
    if text := texts.get(lang):
        return str(text)
    return next((str(texts[key]) for key in (*first, *texts) if texts.get(key)), "")


def supported(tag: str | None) -> str | None:
    """The supported language for a tag: ``zh``, ``zh-CN``, ``zh-Hans-CN`` find ``zh-Hans``."""
    if not tag:
        return None
    tag = tag.strip().lower()
    for lang in LANGUAGES:
        if tag == lang.lower():
            return lang
    primary = tag.split("-")[0]
    if primary == "zh":
        return "zh-Hans"
    return next((lang for lang in LANGUAGES if lang.lower() == primary), None)


def negotiate(accept_language: str | None, chosen: str | None = None) -> str:
    """The language for a request: an explicit choice (cookie) first, then Accept-Language."""
    if chosen_lang := supported(chosen):
        return chosen_lang
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, index, tag))
    for _q, _i, tag in sorted(ranked):
        if lang := supported(tag):
            return lang
    return DEFAULT_LANGUAGE
