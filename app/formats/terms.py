"""The terms of a set of open-text answers, for the word cloud. Pure: no database, no HTTP.

An answer is cut into words by script:

- Chinese (runs of Han characters in an answer without kana) is segmented into words by jieba
  (``segmenter``), with a few domain words added (``words_zh.txt``), so "大语言模型有涌现能力"
  gives 大语言模型 / 涌现 / 能力. Single characters (有, 的, 很...) are left out: alone they are
  almost always grammar, not a topic.
- Japanese (an answer with kana): katakana runs are words (ディープラーニング), kanji runs are
  kept whole (機械学習), hiragana runs (particles, endings) are left out. A rough cut, without a
  Japanese dictionary, but never single characters.
- Everything else is split into words at spaces and punctuation, keeping "don't", "GPT-4" and
  "C++" whole; words of one character are left out.

Words are counted by their key (``text_rules.key``: NFKC, case-folded, accents kept) once per
answer, so one answer repeating a word does not make it bigger; stop words of either language
(``stopwords/``) are left out. A term is shown in its most common written form ("ChatGPT" over
"chatgpt"; a tie goes to the first in code-point order). At most ``MAX_TERMS``, the most used
first, ties in key order: the same answers always give the same terms, in the same order.

The segmenter is loaded lazily: importing this module costs nothing, and the first cut of
Chinese text loads jieba's dictionary (about half a second, a second the very first time on a
machine, when jieba writes its cache). ``warm_up()`` loads it in a daemon thread, so a caller can
start it when a text question opens, before the first answer arrives; a route that draws a cloud
calls ``terms`` from a worker thread (as the other chart routes do their drawing), so a cold load
never blocks the event loop.
"""

from __future__ import annotations

import logging
import re
import threading
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from app.formats import text_rules

MAX_TERMS = 50
HERE = Path(__file__).resolve().parent
STOPWORDS = {"en": HERE / "stopwords" / "en.txt", "zh-Hans": HERE / "stopwords" / "zh.txt"}
USER_WORDS = HERE / "words_zh.txt"

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff"
_KANA = "\u3040-\u30ff\u31f0-\u31ff"
RUNS = re.compile(
    rf"(?P<han>[{_HAN}\u3005\u3007]+)"
    rf"|(?P<katakana>[\u30a0-\u30ff\u31f0-\u31ff]+)"
    rf"|(?P<hiragana>[\u3040-\u309f]+)"
    rf"|(?P<word>[^\W{_HAN}{_KANA}](?:(?:['’\-.]|\+\+?)?[^\W{_HAN}{_KANA}])*\+{{0,2}})"
)
"""Runs of one script: Han characters (with 々 and 〇), katakana, hiragana, and other words
(letters and digits, joined by one apostrophe, hyphen, dot or plus: "don't", "GPT-4", "e.g",
"C++")."""


@dataclass(frozen=True)
class Term:
    key: str
    text: str
    """The most common written form."""
    count: int
    """How many answers use it."""


# --------------------------------------------------------------------------- the segmenter

_lock = threading.Lock()
_segmenter: Any = None


def _word_list(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text("utf-8").splitlines())
    return [line for line in lines if line]


def segmenter() -> Any:
    """jieba's tokenizer with the domain words added, loaded once (thread-safe)."""
    global _segmenter
    if _segmenter is None:
        with _lock:
            if _segmenter is None:
                with warnings.catch_warnings():
                    # jieba 0.42.1 imports pkg_resources, which newer setuptools deprecate
                    # with a warning (an error under the tests' filter)
                    warnings.simplefilter("ignore", DeprecationWarning)
                    warnings.simplefilter("ignore", UserWarning)
                    import jieba

                logging.getLogger("jieba").setLevel(logging.WARNING)  # no "Building prefix dict"
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                for word in _word_list(USER_WORDS):
                    tokenizer.add_word(word)
                _segmenter = tokenizer
    return _segmenter


def warm_up() -> threading.Thread:
    """Load the segmenter in a daemon thread (returned, for a caller that wants to wait)."""
    thread = threading.Thread(target=segmenter, name="jieba-warm-up", daemon=True)
    thread.start()
    return thread


@cache
def stop_words() -> frozenset[str]:
    return frozenset(text_rules.key(w) for path in STOPWORDS.values() for w in _word_list(path))


# --------------------------------------------------------------------------- words


@lru_cache(maxsize=8192)
def words(answer: str) -> tuple[str, ...]:
    """The words of one answer, as written (normalised for display), stop words included.
    Remembered: a live cloud is drawn again for every answer approved, from the same answers."""
    text = text_rules.display(answer)
    japanese = any("\u3040" <= ch <= "\u30ff" for ch in text)
    out: list[str] = []
    for match in RUNS.finditer(text):
        kind, run = match.lastgroup, match.group()
        if kind == "han" and not japanese:
            out.extend(w for w in segmenter().cut(run, HMM=True) if len(w) > 1)
        elif kind in ("han", "katakana", "word") and len(run) > 1:
            out.append(run)
    return tuple(out)


@lru_cache(maxsize=65536)
def _term_key(word: str) -> str:
    return text_rules.key(word.replace("’", "'"))


def forget() -> None:
    """Empty the memory of answers already cut and words already keyed (for measuring)."""
    words.cache_clear()
    _term_key.cache_clear()


def terms(answers: Iterable[str], limit: int = MAX_TERMS) -> list[Term]:
    """The terms of ``answers`` (display forms), the most used first (module notes)."""
    stop = stop_words()
    counts: Counter[str] = Counter()
    forms: dict[str, Counter[str]] = {}
    for answer in answers:
        seen: dict[str, str] = {}
        for word in words(answer):
            term = _term_key(word)
            if term and term not in stop and term not in seen:
                seen[term] = word
        for term, word in seen.items():
            counts[term] += 1
            forms.setdefault(term, Counter())[word] += 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [
        Term(term, min(forms[term].items(), key=lambda f: (-f[1], f[0]))[0], count)
        for term, count in ranked
    ]
