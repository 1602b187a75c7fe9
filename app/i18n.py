"""Interface strings in English and Chinese (zh-Hans), and choosing a language for a request.

Strings live in ``app/locales/*.toml``, one table per message id with one text per language;
every file is checked at load time to have every language for every message, so a missing
translation is a start-up error, not a blank on a phone. In templates, ``t("id", n=3)`` uses the
``lang`` of the template context.
"""

from __future__ import annotations

import tomllib
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


@cache
def messages() -> dict[str, dict[str, str]]:
    merged: dict[str, dict[str, str]] = {}
    for path in sorted(LOCALES_DIR.glob("*.toml")):
        for key, texts in tomllib.loads(path.read_text(encoding="utf-8")).items():
            missing = [lang for lang in LANGUAGES if lang not in texts]
            if missing:
                raise ValueError(f"{path.name}: message '{key}' lacks {', '.join(missing)}")
            if key in merged:
                raise ValueError(f"{path.name}: message '{key}' is defined twice")
            merged[key] = texts
    return merged


def translate(lang: str, key: str, **values: Any) -> str:
    texts = messages().get(key)
    if texts is None:
        raise KeyError(f"no message '{key}'")
    text = texts.get(lang) or texts[DEFAULT_LANGUAGE]
    return text.format(**values) if values else text


@pass_context
def t(context: Context, key: str, **values: Any) -> str:
    return translate(context.get("lang") or DEFAULT_LANGUAGE, key, **values)


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
