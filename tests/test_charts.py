"""Chart geometry and SVG: everything inside the picture, words that say what it shows, small
cells hidden, the same file for pages and exports, Chinese text in PNGs."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from app import charts, export, results, stats
from app.charts.sentences import gap_sides, phase_sentence, points_text
from app.charts.svg import SLIDE_TEXT, SMALL, interval, shown_points, words
from app.i18n import translate
from app.main import make_templates
from app.results import PhaseInfo, SessionMeta
from tests.conftest import require

THREE = ("agree", "disagree", "unsure")
LABELS = {
    "en": {"agree": "Yes, they do", "disagree": "No, they don't", "unsure": "Unsure"},
    "zh-Hans": {"agree": "是的，具有", "disagree": "不，不具有", "unsure": "不确定"},
}
FIVE = ("strongly_disagree", "disagree", "neutral", "agree", "strongly_agree")


def labels(keys: tuple[str, ...]) -> dict[str, dict[str, str]]:
    return {
        k: {
            "en": LABELS["en"].get(k, k.replace("_", " ") + " (a long label that must wrap)"),
            "zh-Hans": LABELS["zh-Hans"].get(k, "非常长的选项标签需要换行" + k),
        }
        for k in keys
    }


def info(key: str, kind: str, options: tuple[str, ...] = (), **spec: object) -> PhaseInfo:
    return PhaseInfo(
        spec=stats.PhaseSpec(key, kind, options, **spec),  # type: ignore[arg-type]
        questions={
            "en": f"The question of {key}, long enough to wrap over two lines at least",
            "zh-Hans": f"问题 {key}：足够长以至于需要换行显示的一个问题",
        },
        option_labels=labels(options),
    )


def emergence(answers: dict[str, dict[str, object]]) -> results.SessionResults:
    infos = [
        info("definition", "choice", ("d1", "d2", "d3")),
        info("belief", "stance", THREE, holds=("agree",)),
        info("field", "perceived", THREE, of_key="belief"),
        info("revote", "revote", THREE, of_key="belief"),
    ]
    data = stats.Dataset(tuple(i.spec for i in infos), answers)  # type: ignore[arg-type]
    return results.build_session_results(infos, data, SessionMeta(code="ABCDEF", venue="Cardiff"))


def scale(answers: dict[str, dict[str, object]]) -> results.SessionResults:
    infos = [
        info("belief", "stance", FIVE, holds=("agree", "strongly_agree")),
        info("field_pct", "perceived", (), of_key="belief", min_value=0, max_value=100),
        info("revote", "revote", FIVE, of_key="belief"),
    ]
    data = stats.Dataset(tuple(i.spec for i in infos), answers)  # type: ignore[arg-type]
    return results.build_session_results(infos, data)


def people(pattern: list[tuple[str, str, str]], repeat: int = 1) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {"belief": {}, "field": {}, "revote": {}, "definition": {}}
    for r in range(repeat):
        for i, (b, f, v) in enumerate(pattern):
            pid = f"{r}-{i}"
            out["belief"][pid], out["field"][pid], out["revote"][pid] = b, f, v
            out["definition"][pid] = ("d1", "d2", "d3")[i % 3]
    return out


ROOM = people(
    [
        ("agree", "agree", "unsure"),
        ("agree", "agree", "agree"),
        ("unsure", "agree", "unsure"),
        ("disagree", "disagree", "disagree"),
        ("unsure", "unsure", "agree"),
        ("agree", "agree", "disagree"),
    ],
    repeat=6,
)


def all_charts(lang: str) -> list[charts.Chart]:
    session = emergence(ROOM)
    estimates = {str(i): float(i * 7 % 101) for i in range(40)}
    belief = {str(i): FIVE[i % 5] for i in range(40)}
    revote = {str(i): FIVE[(i + 1) % 5] for i in range(30)}
    rated = scale({"belief": belief, "field_pct": estimates, "revote": revote})
    out = list(charts.session_charts(session, lang).values()) + list(
        charts.session_charts(rated, lang).values()
    )
    for drawn in (session, rated):  # the phones' narrower gap and flow
        assert drawn.gap is not None and drawn.shift is not None
        out.append(charts.gap_chart(drawn.gap, lang, plain=True))
        out.append(charts.shift_chart(drawn.shift, lang, compact=True))
    talk = results.build_talk_results(
        "emergence",
        {"en": "t", "zh-Hans": "t"},
        ["en"],
        [
            (
                SessionMeta(code=c, venue=v),
                session.infos,
                stats.Dataset(tuple(i.spec for i in session.infos), ROOM),
            )  # type: ignore[arg-type]
            for c, v in (("AAAAAA", "Copenhagen"), ("BBBBBB", "新加坡 Singapore workshop"))
        ],
    )
    out.append(charts.forest_chart(talk, lang))
    # the room's gap charts: the projector's slide and the phones' portrait
    for gap in (session.gap, rated.gap):
        assert gap is not None
        out += [charts.gap_chart(gap, lang, wide=wide, plain=True) for wide in (False, True)]
        out.append(charts.gap_chart(gap, lang, wide=True, plain=True, slide_width=charts.BESIDE_QR))
    return out


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_everything_is_drawn_inside_the_picture(lang: str) -> None:
    made = all_charts(lang)
    assert {c.name for c in made} >= {
        "gap",
        "shift",
        "shift-matrix",
        "scale",
        "forest",
        "phase-belief",
        "phase-field_pct",
    }
    for chart in made:
        assert chart.height > 0 and chart.sentence and chart.title
        for el in chart.elements:
            if isinstance(el, charts.Rect):
                assert el.x >= 0 and el.x + el.w <= chart.width + 0.5, (chart.name, el)
                assert el.y >= 0 and el.y + el.h <= chart.height, (chart.name, el)
            elif isinstance(el, charts.Text):
                width = charts.text_width(el.text, el.size, el.weight == "bold")
                left = {"start": el.x, "middle": el.x - width / 2, "end": el.x - width}[el.anchor]
                assert left >= -1 and left + width <= chart.width + 1, (chart.name, el.text)
                assert el.size <= el.y <= chart.height, (chart.name, el.text)


def test_the_gap_chart_says_it_in_words_with_its_interval() -> None:
    session = emergence(ROOM)
    assert session.gap is not None
    g = session.gap.stats
    assert g.linked and g.paired is not None and g.headline is g.paired
    chart = charts.gap_chart(session.gap, "en")
    own = stats.wilson(g.paired_options[0].self_count, g.paired.n or 0)
    seen = stats.wilson(g.paired_options[0].perceived_count, g.paired.n or 0)
    assert chart.sentence == (
        f"50% {charts.interval(own)} of this room answered “Yes, they do”, too close to half to "
        f"call a majority or not; 67% {charts.interval(seen)} think most of the field does."
    )
    texts = " ".join(e.text for e in chart.elements if isinstance(e, charts.Text))
    assert "minus share who do: +17 points, 95% CI " + charts.interval(g.paired.ci95) in texts
    assert f"(the {g.paired.n} people who answered" in texts
    assert "+17 pts" in texts and "50%" in texts and "67%" in texts
    zh = charts.gap_chart(session.gap, "zh-Hans")
    assert zh.sentence.startswith("本场50% ")
    wide = charts.gap_chart(session.gap, "en", wide=True)
    assert wide.width > chart.width and wide.height < chart.height


def test_the_phones_flow_says_what_the_page_says_in_less_room() -> None:
    session = emergence(ROOM)
    assert session.shift is not None
    for lang in ("en", "zh-Hans"):
        flow, narrow = (charts.shift_chart(session.shift, lang, compact=c) for c in (False, True))
        assert narrow.sentence == flow.sentence and narrow.width < flow.width
        paths = [e.label for e in narrow.elements if isinstance(e, charts.Path)]
        assert paths == [e.label for e in flow.elements if isinstance(e, charts.Path)]


def _texts(chart: charts.Chart) -> list[charts.Text]:
    return [e for e in chart.elements if isinstance(e, charts.Text)]


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_the_gap_slide_says_it_plainly_with_two_bars_per_option(lang: str) -> None:
    """The room's slide: one sentence without intervals or methods, you and the field as two
    bars per option with whiskers, one caption; every text at the slide's label size."""
    gap = emergence(ROOM).gap
    assert gap is not None
    chart = charts.gap_chart(gap, lang, wide=True, plain=True)
    view = LABELS[lang]["agree"]
    assert chart.sentence == translate(
        lang, "res_gap_plain_categorical", self="50%", perceived="67%", view=view
    )
    said = " ".join([chart.sentence, *(t.text for t in _texts(chart))])
    for jargon in ("[", "CI", "Newcombe", "Wilson", "minus"):
        assert jargon not in said, jargon
    assert min(t.size for t in _texts(chart)) >= SLIDE_TEXT
    bars = {e.id for e in chart.elements if isinstance(e, charts.Rect) and e.id}
    assert bars == {f"gap-{k}-{s}-slide" for k in THREE for s in ("you", "field")}
    # each bar's whisker: a stem and two caps
    assert sum(isinstance(e, charts.Line) for e in chart.elements) >= 6 * 3
    n = gap.stats.headline.n
    assert _texts(chart)[-1].text.startswith(str(n)), "the caption gives n"
    # portrait, for phones: the same sentence and bars
    phone = charts.gap_chart(gap, lang, plain=True)
    assert phone.sentence == chart.sentence and phone.width < chart.width


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_the_gap_slide_names_a_tie_and_unlinked_answers(lang: str) -> None:
    tie = emergence(people([("agree", "agree", "agree"), ("disagree", "disagree", "agree")], 5))
    assert tie.gap is not None
    sentence = charts.gap_chart(tie.gap, lang, wide=True, plain=True).sentence
    assert sentence == translate(
        lang,
        "res_gap_plain_categorical_tie",
        self="50%",
        perceived="50%",
        view=LABELS[lang]["agree"],
    )
    # nobody answered both: each side from its own answers, the caption says how many each
    apart = {
        "belief": {f"a{i}": "agree" if i < 4 else "disagree" for i in range(10)},
        "field": {f"b{i}": "agree" for i in range(8)},
    }
    unlinked = emergence(apart).gap
    assert unlinked is not None and not unlinked.linked
    chart = charts.gap_chart(unlinked, lang, wide=True, plain=True)
    caption = translate(lang, "res_slide_caption_independent", n_self=10, n_perceived=8)
    assert chart.rows[-1] == caption
    assert "40%" in chart.sentence and "100%" in chart.sentence


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_the_estimate_slide_shows_what_it_can_where_the_split_is_hidden(lang: str) -> None:
    """3 who hold the view beside 10 who don't: the results page writes "too few to show" for
    both groups' estimates; the slide shows the room's share and the mean estimate, which are
    public, and nothing "too few"."""
    values = {str(i): 30.0 + 3 * i for i in range(13)}
    three = {p: "agree" if int(p) < 3 else "disagree" for p in values}
    gap = scale({"belief": three, "field_pct": values}).gap
    assert gap is not None and gap.false_consensus is not None
    assert not gap.false_consensus.shown
    chart = charts.gap_chart(gap, lang, wide=True, plain=True)
    view = charts.shorten(gap.view_label(lang))
    assert chart.sentence == translate(
        lang, "res_gap_plain_estimate", self="23%", perceived="48%", view=view
    )
    values_shown = [t.text for t in _texts(chart) if t.weight == "bold"]
    assert values_shown == ["23%", "48%"]
    assert not any(translate(lang, "res_too_few") in row for row in chart.rows)
    assert min(t.size for t in _texts(chart)) >= SLIDE_TEXT


def test_bars_use_the_okabe_ito_colours_and_label_every_bar() -> None:
    belief = emergence(ROOM).phase("belief")
    assert belief is not None
    chart = charts.phase_chart(belief, "en")
    fills = {e.fill for e in chart.elements if isinstance(e, charts.Rect)}
    assert {"#0072B2", "#D55E00", "#7F7F7F"} <= fills
    texts = " ".join(e.text for e in chart.elements if isinstance(e, charts.Text))
    assert "50% (18)" in texts and "17% (6)" in texts and "33% (12)" in texts


def test_small_flows_and_cells_are_not_shown() -> None:
    few = people([("agree", "agree", "unsure")] * 6 + [("disagree", "agree", "agree")] * 2)
    session = emergence(few)
    assert session.shift is not None
    flow = charts.shift_chart(session.shift, "en")
    drawn = [e.label for e in flow.elements if isinstance(e, charts.Path)]
    # the flow of 2 is hidden, and so is the 6: with the totals (6 and 2) it would give the 2 back
    assert session.shift.stats.hidden == {(0, 0), (0, 2), (1, 0), (1, 2)}
    assert drawn == []
    texts = " ".join(e.text for e in flow.elements if isinstance(e, charts.Text))
    assert "could identify people" in " ".join(texts.split()) and "(2 people)" not in texts
    matrix = charts.shift_matrix_chart(session.shift, "en")
    cells = [e.text for e in matrix.elements if isinstance(e, charts.Text)]
    assert "–" in cells and "(2)" not in cells and "(6)" not in cells
    assert "too few in some cells" in matrix.sentence


def test_the_flow_chart_shows_the_totals_the_bar_charts_show() -> None:
    # 30 people: after the talk 8, 18 and 4; the 4 is a phase's own total (the revote's bar chart
    # shows it, and 30 - 8 - 18 gives it back), so the flow chart shows it too, never "<5"
    moves = {
        ("agree", "agree"): 7,
        ("agree", "disagree"): 3,
        ("disagree", "disagree"): 13,
        ("disagree", "unsure"): 1,
        ("unsure", "agree"): 1,
        ("unsure", "disagree"): 2,
        ("unsure", "unsure"): 3,
    }
    session = emergence(people([(b, b, v) for (b, v), k in moves.items() for _ in range(k)]))
    assert session.shift is not None
    s = session.shift.stats
    assert [s.column_total(o) for o in THREE] == [8, 18, 4]
    flow = charts.shift_chart(session.shift, "en")
    bold = [e.text for e in flow.elements if isinstance(e, charts.Text) and e.weight == "bold"]
    assert bold.count("4") == 1 and "<5" not in bold
    assert all(str(s.row_total(o)) in bold and str(s.column_total(o)) in bold for o in THREE)
    revote = session.phase("revote")
    assert revote is not None
    bars = " ".join(
        e.text for e in charts.phase_chart(revote, "en").elements if isinstance(e, charts.Text)
    )
    assert "13% (4)" in bars
    # the cells, though, follow the suppression: no hidden flow is drawn, no hidden cell written
    drawn = {e.label for e in flow.elements if isinstance(e, charts.Path)}
    matrix = charts.shift_matrix_chart(session.shift, "en")
    for i, a in enumerate(THREE):
        for j, b in enumerate(THREE):
            label = f"{session.shift.label(a, 'en')} → {session.shift.label(b, 'en')}"
            if (i, j) in s.hidden:
                assert not any(d and d.startswith(label) for d in drawn)
                assert f"{label}: –" in matrix.rows
            elif s.matrix[i][j]:
                assert f"{label}: {s.matrix[i][j]}" in drawn


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_the_flow_chart_and_the_matrix_each_say_what_they_show(lang: str) -> None:
    five = people(
        [
            ("agree", "agree", "unsure"),
            ("disagree", "agree", "disagree"),
            ("unsure", "agree", "disagree"),
            ("unsure", "agree", "disagree"),
            ("unsure", "disagree", "agree"),
        ]
    )
    # the view's own row has a hidden diagonal (3 of 12 stayed): no row sentence for it
    stayed = people(
        [("agree", "agree", "agree")] * 3
        + [("agree", "agree", "disagree")] * 9
        + [("disagree", "agree", "disagree")] * 10
    )
    for answers in (five, stayed, ROOM):
        shift = emergence(answers).shift
        assert shift is not None
        flow = charts.shift_chart(shift, lang)
        matrix = charts.shift_matrix_chart(shift, lang)
        assert flow.sentence and matrix.sentence and flow.sentence != matrix.sentence
    shift = emergence(five).shift
    assert shift is not None
    sentence = charts.shift_chart(shift, lang).sentence
    if lang == "en":
        assert sentence == (
            "Before → after, of the 5 people who answered twice: “Yes, they do” 1 → 1, "
            "“No, they don't” 1 → 3, “Unsure” 3 → 1."
        )
    else:
        assert sentence == (
            "两次都作答的 5 人，之前 → 之后："
            "“是的，具有” 1 → 1，“不，不具有” 1 → 3，“不确定” 3 → 1。"
        )


def test_the_estimate_histogram_marks_the_actual_share() -> None:
    rated = scale(
        {
            "belief": {str(i): FIVE[3] if i < 10 else FIVE[1] for i in range(40)},
            "field_pct": {str(i): 60.0 + i % 10 for i in range(40)},
        }
    )
    estimate = rated.phase("field_pct")
    assert estimate is not None and estimate.actual_share == 0.25
    chart = charts.phase_chart(estimate, "en")
    texts = [e.text for e in chart.elements if isinstance(e, charts.Text)]
    # 64.5 rounds half up; the red line is this room's share, not the field's
    assert "25% of this room agree" in texts and "mean 65%" in texts
    assert chart.sentence.startswith("On average you estimate 65% [")
    zh = charts.phase_chart(estimate, "zh-Hans")
    assert "本场 25% 的人同意" in [e.text for e in zh.elements if isinstance(e, charts.Text)]


def test_svg_is_accessible_and_parses_as_a_file() -> None:
    env = make_templates().env
    for chart in all_charts("zh-Hans"):
        svg = export.render_svg(env, chart)
        root = ET.fromstring(svg.split("?>", 1)[1])
        ns = "{http://www.w3.org/2000/svg}"
        assert root.get("role") == "img" and root.get("viewBox") == chart.view_box
        assert root.find(f"{ns}title").text == chart.title  # type: ignore[union-attr]
        assert chart.sentence in (root.find(f"{ns}desc").text or "")  # type: ignore[union-attr]


def test_user_text_is_escaped_in_svg() -> None:
    env = make_templates().env
    talk = results.build_talk_results(
        "t",
        {"en": "t"},
        ["en"],
        [
            (
                SessionMeta(code="AAAAAA", venue="<script>alert(1)</script>"),
                emergence(ROOM).infos,
                stats.Dataset(tuple(i.spec for i in emergence(ROOM).infos), ROOM),
            )
        ],  # type: ignore[arg-type]
    )
    svg = export.render_svg(env, charts.forest_chart(talk, "en"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_png_renders_chinese_glyphs() -> None:
    require(
        export.installed_png_font() == "Noto Sans CJK SC",
        "the CJK font Noto Sans CJK SC (Chinese text in PNG charts): apt-get install "
        "fonts-noto-cjk (`make test` does it as root)",
    )

    def png(text: str) -> bytes:
        return export.svg_to_png(
            f'<svg xmlns="http://www.w3.org/2000/svg" width="80" height="40">'
            f'<text x="4" y="30" font-size="28">{text}</text></svg>',
            zoom=1,
        )

    assert png("中") != png("文")  # two glyphs, not two identical missing-glyph boxes
    assert png("中") != png(" ")


def test_wrap_breaks_latin_at_spaces_and_chinese_anywhere() -> None:
    assert charts.wrap("one two three four", 120, 20) == ["one two", "three four"]
    lines = charts.wrap("模型表现出某种能力，尽管它并没有被专门训练过", 200, 20)
    assert len(lines) > 1 and all(charts.text_width(line, 20) <= 200 for line in lines)
    assert "".join(lines) == "模型表现出某种能力，尽管它并没有被专门训练过"
    # a venue written as one long word is broken too, not drawn past the chart's edge
    lines = charts.wrap("unanimous_two_late_main_hall", 100, 20)
    assert len(lines) > 1 and all(charts.text_width(line, 20) <= 100 for line in lines)
    assert "".join(lines) == "unanimous_two_late_main_hall"


def test_headings_keep_their_words_whole() -> None:
    assert charts.wrap("changed", 80, 20, bold=True, keep_words=True) == ["changed"]
    assert charts.wrap("Neither agree nor disagree", 110, 20, keep_words=True) == [
        "Neither",
        "agree nor",
        "disagree",
    ]
    # short Chinese words stay whole, a long run breaks but leaves no character alone
    assert charts.wrap("是的，具有", 50, 20, keep_words=True) == ["是的，", "具有"]
    assert charts.wrap("非常不同意", 80, 20, keep_words=True) == ["非常不", "同意"]
    assert charts.wrap("模型（Deshpande 等，2023）", 120, 20, keep_words=True) == [
        "模型",
        "（Deshpande",
        "等，2023）",
    ]


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_the_revote_matrix_headings_break_only_between_words(lang: str) -> None:
    # "change / d" stood over the last column on the projector, the results page and the PDF
    belief = {str(i): FIVE[i % 5] for i in range(40)}
    revote = {str(i): FIVE[(i + 1) % 5] for i in range(40)}
    for room in (emergence(ROOM), scale({"belief": belief, "revote": revote})):
        assert room.shift is not None
        chart = charts.shift_matrix_chart(room.shift, lang)
        texts = [e.text for e in chart.elements if isinstance(e, charts.Text)]
        assert translate(lang, "res_changed") in texts
        for option in room.shift.stats.options:
            for word in words(room.shift.label(option, lang)):
                assert any(word in text for text in texts), (lang, option, word, texts)


def test_an_interval_bound_that_rounds_to_zero_reads_0_not_minus_0() -> None:
    assert charts.interval((-0.0003, 0.8321)) == "[0, 83]"
    assert charts.interval((-0.051, 0.2)) == "[-5, 20]"


def one_phase(counts: dict[str, int]) -> results.PhaseResult:
    keys = tuple(counts)
    answers = {"definition": {f"p{k}{i}": k for k in keys for i in range(counts[k])}}
    infos = [info("definition", "choice", keys)]
    data = stats.Dataset(tuple(i.spec for i in infos), answers)  # type: ignore[arg-type]
    phase = results.build_session_results(infos, data).phase("definition")
    assert phase is not None
    return phase


def test_most_means_more_than_half_ties_are_named_and_a_plurality_is_the_most_common() -> None:
    majority = charts.phase_chart(one_phase({"agree": 3, "disagree": 2}), "en").sentence
    assert majority == "Most chose “Yes, they do”: 60% of 5 answers."
    tie = charts.phase_chart(one_phase({"agree": 2, "disagree": 2, "unsure": 1}), "en").sentence
    assert tie == (
        "Tied as the most common answers: “Yes, they do”, “No, they don't”, 40% each of 5 answers."
    )
    plural = charts.phase_chart(one_phase({"agree": 2, "disagree": 1, "unsure": 1, "x": 1}), "en")
    assert plural.sentence == (
        "The most common answer was “Yes, they do”: 40% of 5 answers, not a majority."
    )
    half = charts.phase_chart(one_phase({"agree": 2, "disagree": 1, "unsure": 1}), "en").sentence
    assert half.startswith("The most common answer was") and "Most" not in half
    zh = charts.phase_chart(one_phase({"agree": 2, "disagree": 2, "unsure": 1}), "zh-Hans")
    assert zh.sentence == "并列最常见的回答：“是的，具有”，“不，不具有”，5 份回答中各占 40%。"
    assert "多数" not in charts.phase_chart(one_phase({"agree": 2, "disagree": 3}), "zh-Hans").title


def test_numbers_round_half_up_and_never_read_minus_zero() -> None:
    assert charts.pct(0.125) == "13%" and charts.pct(0.375) == "38%" and charts.pct(0.145) == "15%"
    assert charts.interval((-0.004, 0.111)) == "[0, 11]"
    assert charts.points(-0.004) == "0" and charts.points(-0.025) == "-3"
    # a shown difference is the difference of the shown shares: 0.125 -> 13, 0.374 -> 37
    assert charts.shown_points(0.374, 0.125) == "+24"


def test_a_net_change_test_only_on_results_pages_and_from_ten_people() -> None:
    few = emergence(
        {
            "belief": {str(i): "agree" if i < 5 else "unsure" for i in range(8)},
            "revote": {str(i): "unsure" if i < 3 else "agree" for i in range(8)},
        }
    )
    assert few.shift is not None and few.shift.n_paired < 10
    projector = charts.shift_chart(few.shift, "en")
    page = charts.shift_chart(few.shift, "en", tests=True)
    for chart in (projector, charts.shift_matrix_chart(few.shift, "en")):
        texts = " ".join(e.text for e in chart.elements if isinstance(e, charts.Text))
        assert "p =" not in texts and "p <" not in texts and "χ²" not in texts
    texts = " ".join(e.text for e in page.elements if isinstance(e, charts.Text))
    assert "p =" not in texts and "not tested with fewer than 10" in " ".join(texts.split())
    many = emergence(
        {
            "belief": {str(i): "agree" if i < 15 else "unsure" for i in range(20)},
            "revote": {str(i): "unsure" if i < 8 else "agree" for i in range(20)},
        }
    )
    assert many.shift is not None and many.shift.n_paired == 20
    texts = " ".join(
        e.text
        for e in charts.shift_chart(many.shift, "en", tests=True).elements
        if isinstance(e, charts.Text)
    )
    assert "Net change" in texts and "p" in texts
    # the gross share that changed carries its Wilson interval (8 + 5 of 20)
    assert many.shift.stats.hidden == frozenset()
    changed = charts.interval(stats.wilson(13, 20))
    assert f"65% {changed} of the 20 people" in charts.shift_matrix_chart(many.shift, "en").sentence


def test_no_test_of_net_change_beside_a_hidden_cell() -> None:
    # 20 pairs, one of whom changed: the statistic, with the totals, would tell that cell of 1
    # from the cells hidden beside it
    one = emergence(
        people(
            [("agree", "agree", "agree")] * 7
            + [("agree", "agree", "disagree")]
            + [("disagree", "disagree", "disagree")] * 7
            + [("unsure", "unsure", "unsure")] * 5
        )
    )
    assert one.shift is not None and one.shift.n_paired == 20 and one.shift.stats.hidden
    for lang in ("en", "zh-Hans"):
        for chart in (
            charts.shift_chart(one.shift, lang, tests=True),
            charts.shift_matrix_chart(one.shift, lang, tests=True),
        ):
            texts = " ".join(
                " ".join(e.text for e in chart.elements if isinstance(e, charts.Text)).split()
            )
            assert "χ²" not in texts and "p =" not in texts and "p <" not in texts
            assert "the test would give them away" in texts or "检验结果会把它们泄露出来" in texts


def test_where_nobody_changed_the_page_says_so_rather_than_too_few() -> None:
    # 12 or 18 pairs, every cell shown, nobody changed: there is nothing to test, and 12 is not
    # "fewer than 10"; the same for two options, where McNemar's b + c is 0 and p would read 1
    two = ("agree", "disagree")
    yes_no = [
        info("belief", "stance", two, holds=("agree",)),
        info("revote", "revote", two, of_key="belief"),
    ]
    kept_two = {k: {str(i): two[i % 2] for i in range(12)} for k in ("belief", "revote")}
    data = stats.Dataset(tuple(i.spec for i in yes_no), kept_two)  # type: ignore[arg-type]
    for kept, test in (
        (emergence(people([(o, o, o) for o in THREE for _ in range(6)])), "stuart_maxwell"),
        (results.build_session_results(yes_no, data, SessionMeta(code="A", venue="B")), "mcnemar"),
    ):
        assert kept.shift is not None and kept.shift.n_paired >= 10
        assert kept.shift.stats.test is not None and kept.shift.stats.test.name.startswith(test)
        assert not kept.shift.stats.hidden and kept.shift.stats.changed == 0
        for lang, said in (("en", "nobody changed their answer"), ("zh-Hans", "没有人改变回答")):
            for chart in (
                charts.shift_chart(kept.shift, lang, tests=True),
                charts.shift_matrix_chart(kept.shift, lang, tests=True),
            ):
                texts = " ".join(
                    " ".join(e.text for e in chart.elements if isinstance(e, charts.Text)).split()
                )
                assert said in texts and "p =" not in texts and "χ²" not in texts
                assert "fewer than" not in texts and "少于" not in texts


def test_a_room_that_cannot_be_pooled_is_listed_with_the_reason() -> None:
    alone = {"belief": {"1": "disagree"}, "field": {"1": "agree"}}
    talk = two_rooms(("Big room", ROOM), ("Alone", alone))
    rows = {row.code: row for row in talk.forest}
    assert rows["BBBBBB"].excluded == "one_person" and rows["BBBBBB"].weight is None
    # one room left is no pool: it is shown on its own, with no pooled gap
    assert rows["AAAAAA"].excluded is None and rows["AAAAAA"].weight is None
    assert talk.meta is None and talk.poolable == 1
    chart = charts.forest_chart(talk, "en")
    texts = " ".join(e.text for e in chart.elements if isinstance(e, charts.Text))
    assert "not pooled: one person has no variance" in texts
    assert "Alone (BBBBBB)" in " ".join(chart.rows)
    assert "Hartung" not in texts and "Pooled gap" not in chart.sentence
    assert chart.sentence == translate("en", "res_forest_too_few", k=1)


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_two_rooms_are_shown_side_by_side_not_pooled(lang: str) -> None:
    # with 2 rooms HKSJ's t quantile has 1 degree of freedom (12.7): no pooled gap, each room
    # with its own interval, and a sentence that says why
    over = people([("agree", "agree", "agree")] * 5 + [("disagree", "agree", "agree")] * 15)
    near = people([("agree", "agree", "agree")] * 8 + [("disagree", "agree", "agree")] * 12)
    talk = two_rooms(("Over", over), ("Near", near))
    assert talk.meta is None and talk.poolable == 2
    assert all(row.weight is None and row.excluded is None for row in talk.forest)
    chart = charts.forest_chart(talk, lang)
    assert chart.sentence == translate(lang, "res_forest_too_few", k=2)
    assert not any(isinstance(e, charts.Path) for e in chart.elements)  # no pooled diamond
    assert "Over (AAAAAA)" in " ".join(chart.rows) and "Near (BBBBBB)" in " ".join(chart.rows)


Room = tuple[str, dict[str, dict[str, object]]]


def two_rooms(*rooms: Room) -> results.TalkResults:
    """The emergence talk given at each venue of ``rooms`` (codes AAAAAA, BBBBBB, CCCCCC...)."""
    return results.build_talk_results(
        "emergence",
        {"en": "Emergence"},
        ["en"],
        [
            (SessionMeta(code=letter * 6, venue=venue), emergence(answers).infos, _data(answers))
            for letter, (venue, answers) in zip("ABCDEFGHIJKL", rooms, strict=False)
        ],  # type: ignore[arg-type]
    )


def _data(answers: dict[str, dict[str, object]]) -> stats.Dataset:
    infos = emergence(answers).infos
    return stats.Dataset(tuple(i.spec for i in infos), answers)  # type: ignore[arg-type]


def _headline(gap: results.GapResult, lang: str, key: str) -> str:
    """The gap's label as message ``key`` words it."""
    own, _own_ci, seen, _seen_ci = gap_sides(gap)
    head = gap.stats.headline
    return translate(
        lang,
        key,
        points=points_text(shown_points(seen, own), lang),
        ci=interval(head.ci95),
        n=head.n or 0,
    )


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_the_estimate_gap_says_when_it_is_taken_apart(lang: str) -> None:
    """docs/methods.md, "Estimates": with 3 who hold the view beside 10 who don't, neither group's
    mean is shown and the comparison is independent, labelled why; with 2 who answered only the
    estimate, the comparison says it takes each question's answers as they are, and shows no
    split."""
    values = {str(i): 30.0 + 3 * i for i in range(13)}
    three = {p: "agree" if int(p) < 3 else "disagree" for p in values}
    gap = scale({"belief": three, "field_pct": values}).gap
    # the split is hidden, so the paired interval (whose r is the split in another form) gives
    # way to the independent comparison, labelled why; no widened interval
    assert gap is not None and gap.apart and not gap.linked
    chart = charts.gap_chart(gap, lang)
    too_few = translate(lang, "res_too_few")
    assert not any(row.endswith(too_few) for row in chart.rows)
    assert chart.rows[0] == _headline(gap, lang, "res_gap_points_estimate_apart")
    late = values | {"x": 10.0, "y": 90.0}
    apart = scale({"belief": {p: "agree" for p in values}, "field_pct": late}).gap
    assert apart is not None and apart.apart and not apart.linked
    chart = charts.gap_chart(apart, lang)
    assert chart.rows[0] == _headline(apart, lang, "res_gap_points_estimate_apart")
    assert chart.rows[-1] == translate(
        lang, "res_gap_apart", both=13, only_stance=0, only_perceived=2
    )
    assert not any(too_few in row for row in chart.rows)


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_three_rooms_far_apart_pool_to_a_gap_the_page_says_is_not_pinned_down(lang: str) -> None:
    # +75 points in two rooms, -75 in the other: HKSJ on 2 df reaches far past ±100, which no
    # gap can; the interval is cut there, the axis stays on it, and the sentence says what it
    # means
    over = people([("agree", "agree", "agree")] * 5 + [("disagree", "agree", "agree")] * 15)
    under = people([("agree", "disagree", "agree")] * 15 + [("disagree", "disagree", "agree")] * 5)
    talk = two_rooms(("Over", over), ("Under", under), ("Over again", over))
    assert talk.meta is not None and talk.meta.k == 3
    assert talk.meta.unclipped_ci95[0] < -1 and talk.meta.unclipped_ci95[1] > 1
    assert talk.meta.ci95 == (-1.0, 1.0) and talk.meta.covers_bounds
    chart = charts.forest_chart(talk, lang)
    texts = " ".join(e.text for e in chart.elements if isinstance(e, charts.Text))
    assert "[-100, 100]" in chart.sentence
    assert ("covers every gap there can be" if lang == "en" else "覆盖了所有可能的差距") in (
        chart.sentence
    )
    # the note's last sentence is written in full, whichever language wraps it
    said = "cut at ±100 points" if lang == "en" else "±100 个百分点处截断"
    assert said.replace(" ", "") in texts.replace(" ", "")
    ticks = [e.text for e in chart.elements if isinstance(e, charts.Text) and e.size == SMALL - 4]
    axis = [t for t in ticks if t.lstrip("+-").isdigit()]
    assert axis == ["-100", "-50", "0", "+50", "+100"]


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_rooms_paired_and_not_pool_one_estimand(lang: str) -> None:
    # two rooms whose answers are linked beside one whose are not: every room enters with the
    # independent comparison (one estimand per pool), and the plot says so
    over = people([("agree", "agree", "agree")] * 8 + [("disagree", "agree", "agree")] * 12)
    near = people([("agree", "agree", "agree")] * 10 + [("disagree", "disagree", "agree")] * 10)
    apart: dict[str, dict[str, object]] = {
        "belief": {f"s{i}": "agree" if i < 9 else "disagree" for i in range(20)},
        "field": {f"p{i}": "agree" if i < 15 else "disagree" for i in range(20)},
    }
    talk = two_rooms(("Over", over), ("Near", near), ("Apart", apart))
    assert talk.independent and talk.meta is not None and talk.meta.k == 3
    assert {row.method for row in talk.forest} == {"newcombe_hybrid_score"}
    rows = {row.code: row for row in talk.forest}
    assert rows["CCCCCC"].estimate == pytest.approx(15 / 20 - 9 / 20)
    assert rows["AAAAAA"].estimate == pytest.approx(1.0 - 8 / 20)
    chart = charts.forest_chart(talk, lang)
    texts = " ".join(e.text for e in chart.elements if isinstance(e, charts.Text))
    said = translate(lang, "res_forest_independent")
    assert said.replace(" ", "") in texts.replace(" ", "")
    linked_only = two_rooms(("Over", over), ("Near", near), ("Over again", over))
    assert not linked_only.independent
    assert {row.method for row in linked_only.forest} == {"newcombe_paired_method10"}


def test_a_majority_that_rounds_to_half_keeps_its_decimal() -> None:
    """126 of 250 is more than half, but "Most chose ...: 50%" reads as a claim at half (the
    bundled talk's published 116 of 220 with a room's 10 of 30 pool to exactly that)."""
    info = PhaseInfo(stats.PhaseSpec("definition", "choice", ("d1", "d3")), {"en": "Q"}, {})
    tally = stats.option_stats("definition", {"d1": 126, "d3": 124})
    result = results.make_phase_result(info, tally)
    assert phase_sentence(result, "en") == "Most chose “d1”: 50.4% of 250 answers."
    even = results.make_phase_result(info, stats.option_stats("definition", {"d1": 125, "d3": 125}))
    assert "Most" not in phase_sentence(even, "en")
