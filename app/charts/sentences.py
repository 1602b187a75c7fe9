"""The plain sentences above charts (and their text equivalents): what the numbers say, in words."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app import stats
from app.charts.svg import interval, pct, points
from app.i18n import translate

if TYPE_CHECKING:
    from app.results import GapResult, ShiftResult


def gap_sentence(gap: GapResult, lang: str) -> str:
    g = gap.stats
    if gap.pooled:
        return translate(
            lang,
            "res_gap_sentence_pooled"
            if g.kind != "estimate"
            else "res_gap_sentence_pooled_estimate",
            self=pct(g.self_share),
            view=gap.view_label(lang),
            perceived=pct(g.perceived_share),
        )
    if g.kind == "estimate":
        return translate(
            lang,
            "res_gap_sentence_estimate",
            self=pct(g.self_share),
            view=gap.view_label(lang),
            perceived=pct(g.perceived_share),
        )
    return translate(
        lang,
        "res_gap_sentence",
        self=pct(g.self_share),
        view=gap.view_label(lang),
        perceived=pct(g.perceived_share),
    )


def gap_label(gap: GapResult, lang: str) -> str:
    d = gap.stats.difference
    return translate(lang, "res_gap_points", points=points(d.estimate), ci=interval(d.ci95))


def shift_sentence(shift: ShiftResult, lang: str) -> str:
    s = shift.stats
    if not s.n_paired:
        return translate(lang, "res_shift_none")
    # the row the talk speaks about: an option that holds the view (the one most people first
    # chose), else the row with the most people
    candidates = sorted(
        (o for o in s.options if s.row_total(o) >= stats.MIN_CELL),
        key=lambda o: (o not in shift.holds, -s.row_total(o)),
    )
    if not candidates:
        return translate(
            lang, "res_shift_overall", changed=pct(s.changed / s.n_paired), n=s.n_paired
        )
    first = candidates[0]
    moves = [
        translate(
            lang,
            "res_shift_move",
            share=pct(s.row_share(first, o), 1 if s.row_total(first) < 100 else 0),
            option=shift.label(o, lang),
        )
        for o in s.options
        if o != first and s.cell(first, o) >= stats.MIN_CELL
    ]
    changed = pct(s.changed_share(first))
    option = shift.label(first, lang)
    if not moves:
        return translate(lang, "res_shift_sentence_short", option=option, changed=changed)
    separator = translate(lang, "res_list_separator")
    return translate(
        lang, "res_shift_sentence", option=option, changed=changed, moves=separator.join(moves)
    )


def test_text(s: stats.Shift, lang: str) -> str:
    if s.test is None:
        return ""
    p = s.test.p_value
    p_text = "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
    if s.test.name == "mcnemar_exact":
        return translate(lang, "res_test_mcnemar", p=p_text)
    return translate(
        lang, "res_test_stuart_maxwell", chi2=f"{s.test.statistic:.1f}", df=s.test.df, p=p_text
    )


def matrix_sentence(shift: ShiftResult, lang: str) -> str:
    s = shift.stats
    if not s.n_paired:
        return translate(lang, "res_shift_none")
    return translate(lang, "res_shift_overall", changed=pct(s.changed / s.n_paired), n=s.n_paired)
