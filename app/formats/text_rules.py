"""Open-text answers: one normalisation, the refusal of text that cannot be shown, and the
blocklist. Pure: no database, no HTTP.

**Normalisation** (``normalise``) gives two forms of one answer:

- ``display``, what is shown: NFKC (full-width letters become ordinary ones, "ﬁ" becomes "fi"),
  whitespace collapsed to single spaces (line breaks too), trimmed, punctuation stripped at both
  ends ("Yes!!!" -> "Yes", "“涌现”。" -> "涌现", "(yes)" -> "yes"), except a closing bracket or
  quote whose opening one is in the text ("GPT (4)" keeps its bracket). The writer's case is kept.
- ``key``, what is counted: the display form case-folded and NFKC again. Accents are kept:
  "résumé" and "resume" are two answers.

Both are idempotent: normalising a display form or a key gives it back.

**Refusal** (``check``): a reason code per problem, each with a message in both languages
(``app/locales/text.toml``, ``text_refused_<reason>``):

- ``empty``: nothing left after normalisation (whitespace or punctuation only);
- ``too_long``: over the phase's limit, counted in characters as a reader counts them after
  normalisation (``length``: an emoji made of several code points is one; a letter with a pile
  of combining marks is many); a body of more than
  ``RAW_MAX`` code points is refused before any work is done on it;
- ``control``: a control character other than tab and line breaks (which are whitespace), a lone
  surrogate or a noncharacter;
- ``bidi``: a bidirectional override, embedding, isolate or mark (U+202A-U+202E, U+2066-U+2069,
  U+200E, U+200F, U+061C), which can make an answer read differently from what is stored;
- ``invisible``: a zero-width or other invisible format character (U+200B zero-width space,
  U+200C zero-width non-joiner, U+2060 word joiner, U+FEFF, soft hyphen, tag characters...).

  The zero-width joiner U+200D is allowed only *between two emoji*, where it builds one emoji
  ("👩‍💻", "🏳️‍🌈"), and tag characters only in an emoji tag sequence after 🏴 (the flags of
  England, Scotland, Wales). Anywhere else a joiner only hides a word from the blocklist or makes
  two answers that look the same count apart, so it is refused. The zero-width non-joiner is
  refused although Persian and some Indic scripts use it: the talks are in English and Chinese.

Emoji are allowed.

**Blocklist** (``Blocklist``): a talk's list of words (the seeded English and Chinese lists in
``blocklists/``, plus its own), in mode ``block`` (a matching answer is stored hidden: it never
reaches the room) or ``mask`` (its letters are replaced by "•"). Matching sees through
full-width letters and case (NFKC, case-fold), letters spaced or dotted apart ("f u c k",
"f.u.c.k"), a letter stretched ("fuuuck"), and common leetspeak (0->o, 1->i, 3->e, 4->a, 5->s,
@->a, $->s, in words that have a letter). Latin entries match whole words (with common
endings: "-s", "-ing", "-er"...), so "class", "assessment" and "Scunthorpe" pass; an entry
written ``*word*`` matches inside words too (for words no innocent word contains). Entries in
Chinese characters match as substrings, with spaces and punctuation between the characters
ignored ("傻 逼"). Not seen through: look-alike letters of other scripts (Cyrillic "а" for "a"),
and words cut by a symbol ("f*ck").

**How an open-text format uses them**: ``verdict = check(raw, limit)``; refused, the phone says
``text_refused_<verdict.reason>`` and nothing is stored; accepted, ``screened =
blocklist.screen(verdict.text.display)``, and the answer stored is ``screened.text`` with
``key(screened.text)``, hidden when ``screened.hidden``. The cloud counts only answers shown.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Literal

LIMIT_MIN = 10
LIMIT_MAX = 200
DEFAULT_LIMIT = 40
"""Characters allowed in one answer: a phase's setting, between LIMIT_MIN and LIMIT_MAX."""

RAW_MAX = 1000
"""A body longer than this (in code points, before normalisation) is refused as too long at
once: no limit allows it, and normalising 10,000 characters to say so is wasted work."""

Reason = Literal["empty", "too_long", "control", "bidi", "invisible"]
REASONS: tuple[Reason, ...] = ("empty", "too_long", "control", "bidi", "invisible")

BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
ZWJ = "\u200d"
TAG_FIRST, TAG_LAST = 0xE0020, 0xE007F
BLACK_FLAG = "\U0001f3f4"
WHITESPACE_CONTROLS = frozenset("\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85")
"""Control characters Python counts as whitespace: collapsed like spaces, not refused."""

OPENERS = {
    ")": "(",
    "]": "[",
    "}": "{",
    "”": "“",
    "’": "‘",
    "»": "«",
    "›": "‹",
    "」": "「",
    "』": "『",
    "】": "【",
    "》": "《",
    "〉": "〈",
    "〕": "〔",
    "〗": "〖",
}
"""Closing brackets and quotes (after NFKC) and their opening partners."""
CLOSERS = {opening: closing for closing, opening in OPENERS.items()}


# --------------------------------------------------------------------------- normalisation


@dataclass(frozen=True)
class Normalised:
    display: str
    key: str


def _is_emoji(ch: str) -> bool:
    """An emoji or a part of one a joiner may stand beside (pictographs, dingbats, the
    variation selector that asks for emoji presentation, skin tones)."""
    if len(ch) != 1:
        return False
    code = ord(ch)
    return (
        0x1F000 <= code <= 0x1FAFF
        or 0x2600 <= code <= 0x27BF
        or 0x2B00 <= code <= 0x2BFF
        or code in (0xFE0F, 0x20E3, 0x00A9, 0x00AE, 0x203C, 0x2049, 0x2122)
    )


def _strip_edges(text: str) -> str:
    """Whitespace and punctuation off both ends, keeping a closing bracket or quote whose opening
    partner is in the text (and an opening one whose partner is)."""
    start, end = 0, len(text)
    while start < end:
        ch = text[start]
        kept = ch in CLOSERS and CLOSERS[ch] in text[start + 1 : end]
        if ch.isspace() or (unicodedata.category(ch).startswith("P") and not kept):
            start += 1
        else:
            break
    while end > start:
        ch = text[end - 1]
        kept = ch in OPENERS and OPENERS[ch] in text[start : end - 1]
        if ch.isspace() or (unicodedata.category(ch).startswith("P") and not kept):
            end -= 1
        else:
            break
    return text[start:end]


def _enclosed(text: str) -> bool:
    """Whether the whole text is one bracketed or quoted span: "(yes)", "“涌现”", not "(a) (b)"."""
    closing = CLOSERS.get(text[:1])
    if closing is None or len(text) < 2 or text[-1] != closing:
        return False
    depth = 0
    for index, ch in enumerate(text):
        if ch == text[0]:
            depth += 1
        elif ch == closing:
            depth -= 1
            if depth == 0 and index < len(text) - 1:
                return False
    return depth == 0


def _display(text: str) -> str:
    text = _strip_edges(" ".join(unicodedata.normalize("NFKC", text).split()))
    while _enclosed(text):
        text = _strip_edges(text[1:-1])
    return text


def display(text: str) -> str:
    """The form of an answer that is shown (see the module's notes)."""
    previous = None
    while text != previous:  # NFKC then stripping settles in one or two rounds
        previous, text = text, _display(text)
    return text


def key(text: str) -> str:
    """The form of an answer that is counted: its display form case-folded."""
    previous = None
    text = display(text)
    while text != previous:
        previous, text = text, display(unicodedata.normalize("NFKC", text.casefold()))
    return text


def normalise(text: str) -> Normalised:
    shown = display(text)
    return Normalised(shown, key(shown))


MARKS_FREE = 2
"""Combining marks on one character that do not count: Vietnamese needs two ("ệ" written
apart); beyond that each counts as a character, so "Zalgo" text piling dozens of marks on a
letter (drawn far above and below the line on a projector) goes over the limit."""


def length(text: str) -> int:
    """Characters as a reader counts them: combining marks (up to ``MARKS_FREE`` on one
    character), variation selectors, skin tones, tag characters and whatever a zero-width joiner
    joins do not count on their own."""
    count = 0
    joined = False
    marks = 0
    for ch in text:
        code = ord(ch)
        if ch == ZWJ:
            joined = True
            continue
        if joined:
            joined = False
            continue
        if unicodedata.category(ch) in ("Mn", "Me", "Mc"):
            marks += 1
            count += marks > MARKS_FREE
            continue
        marks = 0
        if 0xFE00 <= code <= 0xFE0F or 0x1F3FB <= code <= 0x1F3FF or TAG_FIRST <= code <= TAG_LAST:
            continue
        count += 1
    return count


# --------------------------------------------------------------------------- refusal


@dataclass(frozen=True)
class Verdict:
    """An answer checked: ``text`` (its normalised forms) when accepted, else ``reason``."""

    text: Normalised | None
    reason: Reason | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def _refusal(text: str) -> Reason | None:
    """The first character-level problem of a raw answer, if any."""
    previous = ""
    for index, ch in enumerate(text):
        code = ord(ch)
        category = unicodedata.category(ch)
        if ch in BIDI:
            return "bidi"
        if ch == ZWJ:
            following = text[index + 1 : index + 2]
            if not (_is_emoji(previous) and following and _is_emoji(following)):
                return "invisible"
        elif TAG_FIRST <= code <= TAG_LAST:
            if previous != BLACK_FLAG and not (TAG_FIRST <= ord(previous or "\0") <= TAG_LAST):
                return "invisible"
        elif category == "Cc":
            if ch not in WHITESPACE_CONTROLS:
                return "control"
        elif category == "Cs" or (code & 0xFFFE) == 0xFFFE or 0xFDD0 <= code <= 0xFDEF:
            return "control"
        elif category == "Cf" or ch == "\u00ad" or ch == "\u180e":
            return "invisible"
        previous = ch
    return None


def check(text: str, limit: int = DEFAULT_LIMIT) -> Verdict:
    """Accept an answer (its normalised forms) or refuse it with a reason (module notes)."""
    if not LIMIT_MIN <= limit <= LIMIT_MAX:
        raise ValueError(f"limit {limit} is not between {LIMIT_MIN} and {LIMIT_MAX}")
    if len(text) > RAW_MAX:
        return Verdict(None, "too_long")
    reason = _refusal(text)
    if reason is not None:
        return Verdict(None, reason)
    shown = normalise(text)
    if not shown.display:
        return Verdict(None, "empty")
    if length(shown.display) > limit:
        return Verdict(None, "too_long")
    return Verdict(shown)


# --------------------------------------------------------------------------- blocklist

BLOCKLISTS = Path(__file__).resolve().parent / "blocklists"
SEEDED = {"en": "en.txt", "zh-Hans": "zh.txt"}
LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "@": "a", "$": "s"})
SUFFIXES = ("", "s", "es", "ed", "er", "ers", "ing", "in", "y", "ies")
"""Endings a whole-word entry matches with ("idiot" matches "idiots")."""
STRETCHED = re.compile(r"(.)\1{2,}")
"""A letter written three times or more in a row ("fuuuck", "shiiit"): read once as well."""
MASK = "•"
Mode = Literal["block", "mask"]
MODES: tuple[Mode, ...] = ("block", "mask")


def _wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def _cjk(text: str) -> bool:
    return any(_wide(ch) and unicodedata.category(ch).startswith("L") for ch in text)


def _wordy(ch: str) -> bool:
    """A character that belongs to a Latin-script word for the blocklist (leet digits and @ $
    included: whether they stand for letters is decided per word)."""
    return (not _wide(ch) and unicodedata.category(ch)[0] in "LNM") or ch in "@$"


@dataclass(frozen=True)
class Entry:
    word: str
    anywhere: bool
    """Matches inside words too (``*word*``); else only whole words, with ``SUFFIXES``."""


def parse_entries(lines: Iterable[str]) -> tuple[Entry, ...]:
    """Blocklist entries from lines (a data file, a talk's own list): ``#`` starts a comment,
    ``*word*`` matches inside words, anything else whole words; normalised as keys are."""
    out: dict[Entry, None] = {}
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        anywhere = len(line) > 2 and line.startswith("*") and line.endswith("*")
        word = "".join(key(line.strip("*")).split())
        if word:
            out[Entry(word, anywhere or _cjk(word))] = None
    return tuple(out)


@cache
def seeded_entries(lang: str) -> tuple[Entry, ...]:
    path = BLOCKLISTS / SEEDED[lang]
    return parse_entries(path.read_text(encoding="utf-8").splitlines())


@dataclass(frozen=True)
class Screened:
    """An answer through the blocklist: ``text`` to store (masked in mask mode), ``hidden``
    (block mode and a match: stored, never shown), ``matched`` (the entries found)."""

    text: str
    hidden: bool
    matched: tuple[str, ...]


@dataclass(frozen=True)
class _Word:
    letters: str
    positions: tuple[int, ...]
    spelled: bool = False
    """Joined from single letters apart by spaces ("u r a b i t c h"): where its words begin is
    unknown, so an entry of four letters or more may match inside it (a shorter one would find
    "ass" in "c l a s s")."""


def _latin_words(text: str) -> list[_Word]:
    """The words of ``text`` as the blocklist reads them: case-folded, runs of single letters
    apart by a space or a mark ("f u c k", "f.u.c.k") joined into one, leetspeak read as
    letters in words that have a letter."""
    runs: list[tuple[str, list[int], int]] = []  # letters, positions, gap before
    letters: list[str] = []
    positions: list[int] = []
    gap = 0
    for index, raw in enumerate(text):
        ch = unicodedata.normalize("NFKC", raw)
        if len(ch) == 1 and _wordy(ch):
            letters.append(ch)
            positions.append(index)
            continue
        if letters:
            runs.append(("".join(letters), positions, gap))
            letters, positions, gap = [], [], 0
        gap += 1
    if letters:
        runs.append(("".join(letters), positions, gap))
    merged: list[tuple[str, list[int]]] = []
    single = False
    for run, where, before in runs:
        if single and len(run) == 1 and before <= 2:
            merged[-1] = (merged[-1][0] + run, merged[-1][1] + where)
        else:
            merged.append((run, list(where)))
        single = len(run) == 1
    out: list[_Word] = []
    for run, where in merged:
        folded = unicodedata.normalize("NFKC", run.casefold())
        if any(ch.isalpha() for ch in folded):
            folded = folded.translate(LEET)
        spelled = len(where) >= 3 and len(where) == len(run) and " " in text[where[0] : where[-1]]
        out.append(_Word(folded, tuple(where), spelled))
    return out


def _cjk_letters(text: str) -> _Word:
    """The letters of ``text`` without spaces, punctuation and symbols between them."""
    kept = [
        (ch, index)
        for index, ch in enumerate(text)
        if unicodedata.category(ch)[0] in "LNM" and not ch.isspace()
    ]
    return _Word("".join(ch for ch, _ in kept).casefold(), tuple(i for _, i in kept))


def _hit(entry: Entry, word: str) -> bool:
    if entry.anywhere:
        return entry.word in word
    rest = word.removeprefix(entry.word)
    return rest != word and rest in SUFFIXES


@dataclass(frozen=True)
class Blocklist:
    entries: tuple[Entry, ...]
    mode: Mode = "block"

    @classmethod
    def seeded(
        cls,
        langs: Iterable[str] = ("en", "zh-Hans"),
        extra: Iterable[str] = (),
        mode: Mode = "block",
    ) -> Blocklist:
        """The seeded lists of ``langs`` and a talk's own entries (``extra``, one a line)."""
        if mode not in MODES:
            raise ValueError(f"unknown blocklist mode {mode!r}")
        entries = [entry for lang in langs for entry in seeded_entries(lang)]
        entries += parse_entries(extra)
        return cls(tuple(dict.fromkeys(entries)), mode)

    @cached_property
    def _split(self) -> tuple[tuple[Entry, ...], tuple[Entry, ...]]:
        """The Latin entries and the Chinese ones, sorted once (every answer is screened)."""
        return (
            tuple(e for e in self.entries if not _cjk(e.word)),
            tuple(e for e in self.entries if _cjk(e.word)),
        )

    @cached_property
    def _spellings(self) -> tuple[dict[str, tuple[int, ...]], tuple[tuple[int, Entry], ...]]:
        """Every spelling a whole-word Latin entry matches (the word with each of ``SUFFIXES``)
        to the entries' places in the Latin list, and the entries that match inside words: a
        word of an answer is looked up, not compared with each entry (a text vote screened
        every word against every entry, about 50 µs an answer)."""
        latin = self._split[0]
        whole: dict[str, list[int]] = {}
        for index, entry in enumerate(latin):
            if not entry.anywhere:
                for suffix in SUFFIXES:
                    whole.setdefault(entry.word + suffix, []).append(index)
        inside = tuple((index, entry) for index, entry in enumerate(latin) if entry.anywhere)
        return {form: tuple(found) for form, found in whole.items()}, inside

    def matches(self, text: str) -> tuple[tuple[str, ...], set[int]]:
        """The entries found in ``text`` and the positions of the characters they cover."""
        found: dict[str, None] = {}
        covered: set[int] = set()
        latin, cjk = self._split
        if latin:
            whole, inside = self._spellings
            for word in _latin_words(text):
                forms = {word.letters, STRETCHED.sub(r"\1", word.letters)}
                if not word.spelled:  # what the loop below finds, in the list's order
                    hits = {index for form in forms for index in whole.get(form, ())}
                    hits.update(i for i, e in inside if any(e.word in form for form in forms))
                    for index in sorted(hits):
                        found[latin[index].word] = None
                    if hits:
                        covered.update(word.positions)
                    continue
                for entry in latin:
                    if word.spelled and len(entry.word) >= 4 and entry.word in word.letters:
                        found[entry.word] = None
                        start = word.letters.find(entry.word)
                        if len(word.letters) == len(word.positions):  # one letter, one place
                            covered.update(word.positions[start : start + len(entry.word)])
                        else:
                            covered.update(word.positions)
                    elif any(_hit(entry, form) for form in forms):
                        found[entry.word] = None
                        covered.update(word.positions)
        if cjk:
            letters = _cjk_letters(text)
            for entry in cjk:
                start = letters.letters.find(entry.word)
                while start >= 0:
                    found[entry.word] = None
                    covered.update(letters.positions[start : start + len(entry.word)])
                    start = letters.letters.find(entry.word, start + 1)
        return tuple(found), covered

    def screen(self, text: str) -> Screened:
        """An answer (its display form) through the list: hidden in block mode, masked in mask
        mode (each letter of a matching word becomes "•"), unchanged without a match."""
        found, covered = self.matches(text)
        if not found:
            return Screened(text, False, ())
        if self.mode == "block":
            return Screened(text, True, found)
        masked = "".join(
            MASK if i in covered and not ch.isspace() else ch for i, ch in enumerate(text)
        )
        return Screened(masked, False, found)
