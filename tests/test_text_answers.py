"""Open-text answers without a database: the normalisation, the refusals, the blocklist, the terms
of the word cloud and the cloud itself (app/formats/text_rules.py, app/formats/terms.py,
app/charts/cloud.py)."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app import export
from app.charts import cloud
from app.charts.svg import Text, text_width
from app.formats import terms, text_rules
from app.formats.terms import Term
from app.formats.text_rules import Blocklist, check, normalise
from app.i18n import LANGUAGES, translate
from app.main import make_templates

SVG = "{http://www.w3.org/2000/svg}"
ROOT = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    ("raw", "display", "key"),
    [
        ("  Yes!!! ", "Yes", "yes"),
        ("Ｈｅｌｌｏ\u3000Ｗｏｒｌｄ", "Hello World", "hello world"),  # full-width
        ("large\n\tlanguage   models", "large language models", "large language models"),
        ("“涌现”。", "涌现", "涌现"),
        ("！？大模型，", "大模型", "大模型"),
        ("(yes)", "yes", "yes"),
        ("GPT (4)", "GPT (4)", "gpt (4)"),  # a bracket whose partner is in the text stays
        ("...emergence...", "emergence", "emergence"),
        ("Straße", "Straße", "strasse"),
        ("ﬁne-tuning", "fine-tuning", "fine-tuning"),
        ("C++", "C++", "c++"),  # + is a symbol, not punctuation
        ("🙂 yes 🙂", "🙂 yes 🙂", "🙂 yes 🙂"),
    ],
)
def test_normalisation_gives_one_display_form_and_one_key(raw: str, display: str, key: str) -> None:
    assert normalise(raw) == text_rules.Normalised(display, key)


def test_accents_are_kept_and_case_only_in_the_display() -> None:
    assert normalise("Résumé").key != normalise("resume").key
    assert normalise("RÉSUMÉ").key == normalise("résumé").key == "résumé"
    assert normalise("ChatGPT").display == "ChatGPT"
    # composed and decomposed é are one answer
    assert normalise("re\u0301sume\u0301").key == normalise("résumé").key


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_normalisation_is_idempotent(raw: str) -> None:
    shown = normalise(raw)
    assert normalise(shown.display) == shown
    assert text_rules.key(shown.key) == shown.key


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   \n\t ", "empty"),
        ("！？。，", "empty"),
        ("a" * 41, "too_long"),
        ("涌" * 41, "too_long"),
        ("x" * 10_000, "too_long"),
        ("ab\x00cd", "control"),
        ("ab\x07", "control"),
        ("ab\x7fcd", "control"),
        ("a\ud800b", "control"),
        ("abc\ufffe", "control"),
        ("\u202egnp.exe", "bidi"),
        ("abc\u2066def\u2069", "bidi"),
        ("abc\u200fdef", "bidi"),
        ("f\u200buck", "invisible"),
        ("a\u200cb", "invisible"),
        ("a\u200db", "invisible"),  # a joiner between letters
        ("\u200d🙂", "invisible"),
        ("ab\u2060cd", "invisible"),
        ("\ufeffabc", "invisible"),
        ("ab\u00adcd", "invisible"),
        ("abc\U000e0067", "invisible"),  # a tag character outside a flag
        ("Z" + "\u0336\u0317\u0353" * 20 + "algo", "too_long"),  # marks piled on a letter
    ],
)
def test_bad_text_is_refused_with_its_reason(raw: str, reason: str) -> None:
    verdict = check(raw)
    assert not verdict.ok and verdict.reason == reason and verdict.text is None


@pytest.mark.parametrize(
    "raw",
    [
        "👩‍💻 coders",  # woman technologist: a joiner between two emoji
        "🏳️‍🌈",
        "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",  # England's flag
        "👍🏽 agree",
        "<script>alert('x')</script>",  # refused nowhere: escaped where it is shown
        "line\nbreak",
        "a" * 40,
        "涌" * 40,
    ],
)
def test_emoji_markup_and_text_at_the_limit_are_accepted(raw: str) -> None:
    assert check(raw).ok


def test_the_limit_counts_characters_as_a_reader_does() -> None:
    assert text_rules.length("👩‍💻👍🏽🏴\U000e0067\U000e0062\U000e007f é") == 5
    assert text_rules.length("Vie\u0323\u0302t") == 4  # ệ written apart: two marks, one letter
    assert check("🙂" * 10, limit=10).ok and not check("🙂" * 11, limit=10).ok
    assert check("x" * 200, limit=200).ok and check("x" * 201, limit=200).reason == "too_long"
    # whitespace collapsed and punctuation stripped before counting
    assert check("   " + "a" * 40 + "!!!   ").ok
    for limit in (9, 201):
        with pytest.raises(ValueError):
            check("fine", limit=limit)


def test_a_huge_body_is_refused_before_its_characters_are_read() -> None:
    # too long is said first: the zero-width spaces in it are never looked at
    assert check("\u200b" * 10_000).reason == "too_long"
    assert check("\u200b" * 999).reason == "invisible"


def test_every_reason_has_a_message_in_both_languages() -> None:
    for reason in text_rules.REASONS:
        for lang in LANGUAGES:
            text = translate(lang, f"text_refused_{reason}", limit=40)
            assert text and "{" not in text
    assert "40" in translate("zh-Hans", "text_refused_too_long", limit=40)


# --------------------------------------------------------------------------- blocklist


@pytest.mark.parametrize(
    "raw",
    [
        "fuck",
        "FUCK this",
        "ｆｕｃｋ",  # full-width
        "Ｆｕｃｋ",
        "f u c k",
        "f.u.c.k off",
        "f-u-c-k",
        "motherfucker",
        "fucking great talk",
        "sh1t",
        "fuuuuck",
        "shiiiit happens",
        "s h 1 t",
        "u r a b i t c h",
        "5hit",
        "a$$",
        "you @ss",
        "what an idiot",
        "idiots",
        "bullshit!",
        "你是傻逼吗",
        "傻 逼",
        "傻.逼",
        "他妈的",
        "SB",
        "nmsl",
    ],
)
def test_the_blocklist_sees_through_tricks(raw: str) -> None:
    screened = Blocklist.seeded().screen(normalise(raw).display)
    assert screened.hidden and screened.matched


@pytest.mark.parametrize(
    "raw",
    [
        "Scunthorpe",
        "assessment",
        "class",
        "classic bass",
        "passing the assignment",
        "Dickens",
        "this hit home",
        "is hit or miss",
        "shiitake",
        "455 people",
        "I got a b c",
        "c l a s s",
        "cocktail",
        "操作系统",  # 操 alone is not listed: 操作 is "operate"
        "妈妈的书",
        "垃圾分类",
        "hello",
        "coooool",
        "glasssss",
    ],
)
def test_the_blocklist_leaves_innocent_words_alone(raw: str) -> None:
    assert Blocklist.seeded().screen(raw) == text_rules.Screened(raw, False, ())


def test_mask_mode_hides_the_letters_and_keeps_the_rest() -> None:
    masked = Blocklist.seeded(mode="mask")
    assert masked.screen("f.u.c.k this") == text_rules.Screened("•.•.•.• this", False, ("fuck",))
    assert masked.screen("what an idiot!").text == "what an •••••!"
    assert masked.screen("你是傻 逼吗").text == "你是• •吗"
    assert masked.screen("great talk").text == "great talk"
    assert masked.screen("u r a b i t c h").text == "u r a • • • • •"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("fuckshit傻逼 .-@$ｆ105aeiou"), max_size=30))
def test_masking_keeps_every_character_but_the_letters_it_hides(raw: str) -> None:
    screened = Blocklist.seeded(mode="mask").screen(raw)
    assert len(screened.text) == len(raw) and not screened.hidden
    for before, after in zip(raw, screened.text, strict=True):
        assert after == before or (after == "•" and not before.isspace())
    assert bool(screened.matched) == (screened.text != raw)


def test_a_talk_adds_its_own_words_and_languages() -> None:
    own = Blocklist.seeded(langs=(), extra=["# our list", "crypto", "*spam*", "加密币"])
    assert own.screen("Crypto!").hidden and own.screen("CRYPTOS").hidden
    assert own.screen("cryptography").hidden is False  # whole words only
    assert own.screen("antispammer").hidden  # *spam* matches inside words
    assert own.screen("买加密币").hidden
    assert not own.screen("fuck").hidden  # no seeded list asked for
    english_only = Blocklist.seeded(langs=("en",))
    assert english_only.screen("idiot").hidden and not english_only.screen("傻逼").hidden
    with pytest.raises(ValueError):
        Blocklist.seeded(mode="delete")  # type: ignore[arg-type]


def test_the_seeded_lists_are_modest() -> None:
    for lang in ("en", "zh-Hans"):
        assert 20 <= len(text_rules.seeded_entries(lang)) <= 40


# --------------------------------------------------------------------------- terms


def test_chinese_is_cut_into_words_not_characters() -> None:
    assert terms.words("大语言模型有涌现能力") == ("大语言模型", "涌现", "能力")
    assert terms.words("我觉得ChatGPT很有用") == ("觉得", "ChatGPT", "有用")
    # Japanese: katakana and kanji runs whole, hiragana left out
    assert terms.words("機械学習はディープラーニングです") == ("機械学習", "ディープラーニング")
    assert terms.words("Large models don’t reason; GPT-4 and C++ do?") == (
        "Large",
        "models",
        "don’t",
        "reason",
        "GPT-4",
        "and",
        "C++",
        "do",
    )


def test_the_segmenter_loads_only_when_asked_and_off_the_caller() -> None:
    script = (
        "import sys, threading\n"
        "from app.formats import terms\n"
        "assert 'jieba' not in sys.modules, 'imported at start'\n"
        "thread = terms.warm_up()\n"
        "assert thread is not threading.current_thread() and thread.daemon\n"
        "thread.join()\n"
        "assert 'jieba' in sys.modules and terms._segmenter is not None\n"
        "print(' / '.join(terms.words('大语言模型有涌现能力')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "大语言模型 / 涌现 / 能力"
    assert "Building prefix dict" not in done.stderr  # jieba's chatter is silenced


def test_terms_count_answers_by_key_without_stop_words() -> None:
    answers = [
        "ChatGPT is the emergence",
        "chatgpt chatgpt chatgpt",  # one answer counts once
        "ChatGPT",
        "我们认为大语言模型有涌现能力",
        "Emergence!",
        "the and of",
    ]
    got = terms.terms(answers)
    assert got[:2] == [Term("chatgpt", "ChatGPT", 3), Term("emergence", "Emergence", 2)]
    keys = {t.key for t in got}
    assert {"大语言模型", "涌现", "能力"} <= keys
    assert not keys & {"the", "is", "and", "of", "我们", "认为", "有"}
    assert terms.terms([]) == [] and terms.terms(["the of 的"]) == []


def test_at_most_fifty_terms_ties_broken_by_key() -> None:
    answers = [f"w{i:03d}" for i in range(120)] + ["zeta zeta", "zeta"]
    got = terms.terms(reversed(answers))
    assert len(got) == terms.MAX_TERMS
    assert got[0] == Term("zeta", "zeta", 2)
    assert [t.key for t in got[1:]] == [f"w{i:03d}" for i in range(49)]
    assert terms.terms(answers) == got  # order of the answers does not matter


# --------------------------------------------------------------------------- the cloud

MIX = [
    "Emergence is real",
    "Emergence matters",
    "emergence is a mirage",
    "大语言模型有涌现能力",
    "涌现只是评测指标的错觉",
    "scaling laws",
    "思维链推理",
    "ChatGPT hallucinates",
    "<script>alert('x')</script>",
    'say "hi" & <b>bye</b>',
]


def _boxes(chart: cloud.Chart) -> list[tuple[float, float, float, float]]:
    out = []
    for el in chart.elements:
        assert isinstance(el, Text) and el.anchor == "middle"
        w = text_width(el.text, el.size, bold=True)
        top = el.y - el.size * cloud.ASCENT
        out.append((el.x - w / 2, top, w, el.size * cloud.LINE))
    return out


def test_cloud_sizes_by_square_root_within_the_chart_without_overlaps() -> None:
    counts = [100, 25, 1]
    sized = cloud.sizes([Term(f"k{c}", "word", c) for c in counts])
    assert sized[0] == cloud.MAX_SIZE and sized[1] == cloud.MAX_SIZE / 2  # 4x the count, 2x
    assert sized[2] == cloud.MIN_SIZE  # 15 by the root, floored
    many = [Term(f"k{i}", f"term{i}", 200 - 3 * i) for i in range(60)] + [
        Term(f"z{i}", "大语言模型" if i % 2 else "hallucination", 1) for i in range(10)
    ]
    for phone, most in ((False, terms.MAX_TERMS), (True, cloud.PHONE_TERMS)):
        chart = cloud.cloud_chart(many, 300, "en", phone=phone)
        boxes = _boxes(chart)
        assert len(boxes) == most and len(chart.rows) == most
        # half as many units across on a phone: its words read twice as large for their size
        assert chart.width == (cloud.PHONE_WIDTH if phone else cloud.WIDTH)
        for i, (x, y, w, h) in enumerate(boxes):
            assert 0 <= x <= chart.width - w and 0 <= y <= chart.height - h
            for x2, y2, w2, h2 in boxes[i + 1 :]:
                assert x + w <= x2 or x2 + w2 <= x or y + h <= y2 or y2 + h2 <= y
        drawn = [el.size for el in chart.elements if isinstance(el, Text)]
        assert drawn == sorted(drawn, reverse=True) and min(drawn) >= cloud.MIN_SIZE


def test_a_long_unbroken_answer_is_cut_to_the_chart_not_left_out() -> None:
    url = "https://example.org/" + "a" * 180  # one "word" of 200 characters
    for phone in (False, True):
        chart = cloud.cloud_chart([Term(url, url, 9), Term("yes", "yes", 4)], 13, "en", phone)
        (x, _, w, _), _ = _boxes(chart)  # both drawn
        first = chart.elements[0]
        assert isinstance(first, Text) and first.text.endswith("…") and len(first.text) < 200
        assert 0 <= x <= chart.width - w
        assert chart.rows[0].startswith(url)  # the text equivalent keeps it whole


def test_the_same_answers_draw_the_same_bytes_and_escape_everything() -> None:
    env = make_templates().env
    first = export.render_svg(env, cloud.cloud_chart(terms.terms(MIX), len(MIX), "zh-Hans"))
    again = export.render_svg(env, cloud.cloud_chart(terms.terms(MIX), len(MIX), "zh-Hans"))
    assert first == again
    root = ET.fromstring(first.split("?>", 1)[1])
    texts = [el.text for el in root.iter(f"{SVG}text")]
    assert {"大语言模型", "涌现", "Emergence", "script", "alert"} <= set(texts)
    assert root.get("role") == "img"
    assert root.find(f"{SVG}title").text == "词云"  # type: ignore[union-attr]
    png = export.svg_to_png(first)
    assert png.startswith(b"\x89PNG")


def test_markup_in_one_answer_reaches_the_svg_as_text() -> None:
    env = make_templates().env
    payload = [Term("<script>", "<script>", 3), Term('"quoted"', '"x" onload="y', 2)]
    svg = export.render_svg(env, cloud.cloud_chart(payload, 5, "en"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert 'onload="y' not in svg
    root = ET.fromstring(svg.split("?>", 1)[1])
    assert [el.text for el in root.iter(f"{SVG}text")] == ["<script>", '"x" onload="y']
    assert "&lt;script&gt;: 3 answers" in svg  # the text equivalent too


def test_an_empty_cloud_says_so_in_both_languages() -> None:
    env = make_templates().env
    for lang, words in (("en", "No answers yet."), ("zh-Hans", "尚无回答。")):
        chart = cloud.cloud_chart([], 0, lang)
        assert [el.text for el in chart.elements if isinstance(el, Text)] == [words]
        assert words in export.render_svg(env, chart)
    stopped = cloud.cloud_chart([], 2, "en")
    assert stopped.sentence == "2 answers, but no word in them to show yet."
