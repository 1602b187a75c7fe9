"""The plain sentences above charts (and their text equivalents): what the numbers say, in words."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app import stats
from app.charts.svg import interval, pct, shown_points
from app.i18n import translate

if TYPE_CHECKING:
    from app.results import GapResult, ShiftResult


def majority(share_ci: tuple[float, float] | None, lang: str) -> str:
    """Whether a share is a majority, judged by its 95% interval against one half."""
    if share_ci is None:
        return translate(lang, "res_majority_unclear")
    if share_ci[0] > 0.5:
        return translate(lang, "res_majority_yes")
    if share_ci[1] < 0.5:
        return translate(lang, "res_majority_no")
    return translate(lang, "res_majority_unclear")


def gap_sides(
    gap: GapResult,
) -> tuple[float, tuple[float, float] | None, float, tuple[float, float] | None]:
    """(own share, its interval, perceived share or mean estimate, its interval) on the people
    the headline is computed on."""
    g = gap.stats
    head = g.headline
    if head.first is not None and head.second is not None:
        return head.second, head.second_ci95, head.first, head.first_ci95
    return g.self_share, g.self_ci95, g.perceived_share, g.perceived_ci95


def gap_sentence(gap: GapResult, lang: str) -> str:
    """What is compared, in words: the own share with its interval against one half beside the
    share who think most of the field holds the view; or, with a 0-100 estimate, the estimate
    minus the own share with both uncertainties (docs/methods.md, "What the numbers may claim")."""
    g = gap.stats
    own, own_ci, seen, seen_ci = gap_sides(gap)
    values = {
        "self": pct(own),
        "self_ci": interval(own_ci),
        "view": gap.view_label(lang),
        "perceived": pct(seen),
        "perceived_ci": interval(seen_ci),
        "who": translate(lang, "res_who_all" if gap.pooled else "res_who_room"),
    }
    if g.kind == "estimate":
        head = g.headline
        text = translate(
            lang,
            "res_gap_sentence_estimate",
            points=shown_points(seen, own),
            ci=interval(head.ci95),
            **values,
        )
    else:
        text = translate(lang, "res_gap_sentence", majority=majority(own_ci, lang), **values)
    return text


def gap_label(gap: GapResult, lang: str) -> str:
    """The headline difference, saying exactly what it is and on whom."""
    g = gap.stats
    head = g.headline
    own, _own_ci, seen, _seen_ci = gap_sides(gap)
    kind = "estimate" if g.kind == "estimate" else "categorical"
    linked = "paired" if g.linked else "independent"
    return translate(
        lang,
        f"res_gap_points_{kind}_{linked}",
        points=shown_points(seen, own),
        ci=interval(head.ci95),
        n=head.n or 0,
    )


def gap_left_out(gap: GapResult, lang: str) -> str:
    """Who the headline leaves out: people who answered only one of the two questions."""
    g = gap.stats
    if not g.linked:
        return translate(lang, "res_gap_not_linked", n_self=g.self_n, n_perceived=g.perceived_n)
    return translate(
        lang,
        "res_gap_left_out",
        both=g.headline.n or 0,
        only_stance=g.only_stance,
        only_perceived=g.only_perceived,
    )


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
