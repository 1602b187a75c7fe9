"""The cloud stage: the word cloud of a room's open-text answers, drawn on the server, in process.

2,000 answers of one to four words (three in five English, two in five Chinese) drawn with a
fixed seed from about 500 words, common ones more often (Zipf): the English words made up from
syllables, the Chinese ones taken from jieba's own dictionary (two to four characters, so that
the segmenter can find them again). Timed, each as the median and the maximum of ``repeats``:

- ``cloud``: what a route does to answer with the cloud as SVG: the terms of the answers
  (``app.formats.terms``, its memory of answers already cut emptied first, so every answer is cut
  and keyed again), the chart (``app.charts.cloud``), the SVG file (``export.render_svg``);
- ``cloud_again``: the same with the answers already cut (a live cloud redrawn when one more
  answer is approved);
- ``png``: the SVG to PNG (resvg), apart;
- ``baseline``: the bar chart of one question answered by the same 2,000 phones, chart and SVG,
  as the projector draws it today: the cloud's ratio to it says what the cloud costs beside
  the charts the room already sees.

Loading the segmenter (once per process) is timed apart and left out of the figures: the app loads
it before the first answer (``terms.warm_up``).
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SYLLABLES = ("ka", "ro", "mi", "te", "lan", "su", "vor", "en", "di", "pa", "lo", "tri", "mer")
SYLLABLES += ("gen", "sca", "la", "ing", "ble", "tion", "mo", "del", "ver", "ta", "ne")


def vocabulary(rng: random.Random, english: int = 320, chinese: int = 220) -> list[str]:
    """Made-up English words and real Chinese ones, shuffled into one list (its order is the
    words' rank: the first are the most used)."""
    import jieba

    words: set[str] = set()
    while len(words) < english:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    english_words = sorted(words)
    dictionary = Path(jieba.__file__).parent / "dict.txt"
    entries = []
    for line in dictionary.read_text(encoding="utf-8").splitlines():
        word, freq, *_ = line.split(" ")
        if 2 <= len(word) <= 4 and int(freq) > 2000:
            entries.append(word)
    chinese_words = rng.sample(sorted(entries), chinese)
    vocab = english_words + chinese_words
    rng.shuffle(vocab)
    return vocab


def answers(count: int = 2000, seed: int = 25) -> list[str]:
    rng = random.Random(seed)
    vocab = vocabulary(rng)
    weights = [1 / (rank + 1) for rank in range(len(vocab))]
    english = [w for w in vocab if w.isascii()]
    chinese = [w for w in vocab if not w.isascii()]
    out = []
    for _ in range(count):
        pool = english if rng.random() < 0.6 else chinese
        chosen = rng.choices(vocab, weights=weights, k=rng.randint(1, 4))
        words = [w for w in chosen if w in pool] or [rng.choice(pool)]
        out.append(" ".join(words) if pool is english else "".join(words))
    return out


def _timed(
    run: Callable[[], object], repeats: int, before: Callable[[], object] | None = None
) -> dict[str, float]:
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        started = time.perf_counter()
        run()
        times.append(1000 * (time.perf_counter() - started))
    return {"median_ms": statistics.median(times), "max_ms": max(times)}


TARGET_MS = 200.0
"""The cloud of 2,000 answers, drawn as SVG, in under 200 ms (issue #25)."""


def stage_cloud(count: int = 2000, repeats: int = 7, png_repeats: int = 3) -> dict[str, Any]:
    from app import export, results, stats
    from app.charts import cloud, phase_chart
    from app.formats import terms
    from app.main import make_templates

    env = make_templates().env
    room = answers(count)
    started = time.perf_counter()
    terms.segmenter()
    load_ms = 1000 * (time.perf_counter() - started)
    every = {terms.text_rules.key(w) for a in room for w in terms.words(a)}

    def draw() -> str:
        found = terms.terms(room)
        return export.render_svg(env, cloud.cloud_chart(found, len(room), "en"))

    svg = draw()
    found = terms.terms(room)
    chart = cloud.cloud_chart(found, len(room), "en")

    options = ("agree", "disagree", "unsure")
    info = results.PhaseInfo(
        spec=stats.PhaseSpec("belief", "stance", options, holds=("agree",)),
        questions={"en": "Do large language models have emergent abilities?"},
        option_labels={k: {"en": k} for k in options},
    )
    votes = {str(i): options[i % 3 if i % 5 else 0] for i in range(count)}

    def baseline() -> str:
        data = stats.Dataset((info.spec,), {"belief": votes})
        session = results.build_session_results([info], data)
        belief = session.phase("belief")
        assert belief is not None
        return export.render_svg(env, phase_chart(belief, "en"))

    report: dict[str, Any] = {
        "answers": count,
        "distinct_terms": len(every),
        "terms_drawn": sum(1 for el in chart.elements if el.kind == "text"),
        "segmenter_load_ms": load_ms,
        "svg_bytes": len(svg.encode()),
        "cloud": _timed(draw, repeats, before=terms.forget),
        "cloud_again": _timed(draw, repeats),
        "png": _timed(lambda: export.svg_to_png(svg), png_repeats),
        "baseline": _timed(baseline, repeats),
    }
    report["ratio_to_baseline"] = report["cloud"]["median_ms"] / report["baseline"]["median_ms"]
    return report


def summary(r: dict[str, Any]) -> str:
    def cell(x: dict[str, float]) -> str:
        return f"median {x['median_ms']:.0f} ms, max {x['max_ms']:.0f} ms"

    return (
        f"cloud of {r['answers']} answers ({r['distinct_terms']} distinct terms, "
        f"{r['terms_drawn']} drawn): {cell(r['cloud'])}, {r['ratio_to_baseline']:.0f}x the bar "
        f"chart of as many votes ({cell(r['baseline'])}); again, answers already cut: "
        f"{cell(r['cloud_again'])}; PNG {cell(r['png'])}; segmenter loaded once in "
        f"{r['segmenter_load_ms']:.0f} ms"
    )
