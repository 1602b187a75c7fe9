"""The plain sentences above charts (and their text equivalents): what the numbers say, in words."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app import stats
from app.charts.svg import interval, number, pct, shorten, shown_points, size
from app.i18n import translate

if TYPE_CHECKING:
    from app.results import GapResult, PhaseResult, ShiftResult

MIN_TEST_PAIRS = 10


def points_text(shown: str, lang: str) -> str:
    """A shown difference with its unit: "+1 point", "-12 points", "+3 个百分点"."""
    return translate(lang, "res_points", points=shown, size=size(shown))


"""A test of net change is shown on results pages only from this many paired people up (never on
the projector or phones)."""


def phase_sentence(result: PhaseResult, lang: str) -> str:
    """What most chose, claimed only when it is more than half; a tie names every tied answer;
    otherwise the most common answer."""
    if not result.n or not result.options:
        return translate(lang, "res_no_answers")
    best = max(o.count for o in result.options)
    tied = [o for o in result.options if o.count == best]
    if len(tied) > 1:
        separator = translate(lang, "res_list_separator")
        names = separator.join(f"“{shorten(o.label(lang))}”" for o in tied)
        return translate(
            lang, "res_phase_sentence_tie", options=names, share=pct(tied[0].share), n=result.n
        )
    top = tied[0]
    key = "res_phase_sentence" if best * 2 > result.n else "res_phase_sentence_plurality"
    # a majority that rounds to "50%" (126 of 250) is written with its decimal: "most" never
    # stands beside 50%
    digits = 1 if best * 2 > result.n and pct(top.share) == "50%" else 0
    return translate(
        lang, key, option=shorten(top.label(lang)), share=pct(top.share, digits), n=result.n
    )


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
        "who": translate(
            lang,
            "res_who_all" if gap.pooled else "res_who_polled" if gap.unlinked else "res_who_room",
        ),
    }
    if g.kind == "estimate":
        head = g.headline
        text = translate(
            lang,
            "res_gap_sentence_estimate",
            points=points_text(shown_points(seen, own), lang),
            ci=interval(head.ci95),
            **values,
        )
    else:
        text = translate(lang, "res_gap_sentence", majority=majority(own_ci, lang), **values)
    return text


def gap_plain_sentence(gap: GapResult, lang: str) -> str:
    """The room's sentence (the projector, phones): the own share and the perceived share or mean
    estimate, in plain words, without intervals or methods (those stay on the results page).
    Equal shown percentages are said to be the same rather than set against each other."""
    own, _own_ci, seen, _seen_ci = gap_sides(gap)
    kind = "estimate" if gap.stats.kind == "estimate" else "categorical"
    tie = "_tie" if pct(own) == pct(seen) else ""
    return translate(
        lang,
        f"res_gap_plain_{kind}{tie}",
        self=pct(own),
        perceived=pct(seen),
        view=shorten(gap.view_label(lang)),
    )


def gap_label(gap: GapResult, lang: str) -> str:
    """The headline difference, saying exactly what it is and on whom."""
    g = gap.stats
    head = g.headline
    own, _own_ci, seen, _seen_ci = gap_sides(gap)
    kind = "estimate" if g.kind == "estimate" else "categorical"
    linked = "paired" if g.linked else "apart" if g.apart else "independent"
    # an interval widened so that it gives no hidden cell or group back says so
    widened = "_widened" if head.method.endswith(stats.WIDENED) else ""
    return translate(
        lang,
        f"res_gap_points_{kind}_{linked}{widened}",
        points=points_text(shown_points(seen, own), lang),
        ci=interval(head.ci95),
        n=head.n or 0,
    )


def gap_left_out(gap: GapResult, lang: str) -> str:
    """Who the headline leaves out: people who answered only one of the two questions."""
    g = gap.stats
    if g.apart and g.paired is not None:
        return translate(
            lang,
            "res_gap_apart",
            both=g.paired.n or 0,
            only_stance=g.only_stance,
            only_perceived=g.only_perceived,
        )
    if gap.unlinked:
        return translate(lang, "res_gap_published", n_self=g.self_n, n_perceived=g.perceived_n)
    if not g.linked:
        return translate(lang, "res_gap_not_linked", n_self=g.self_n, n_perceived=g.perceived_n)
    return translate(
        lang,
        "res_gap_left_out",
        both=g.headline.n or 0,
        only_stance=g.only_stance,
        only_perceived=g.only_perceived,
    )


def changed(count: int, total: int) -> str:
    """The gross share that changed, with its Wilson 95% interval."""
    return f"{pct(count / total)} {interval(stats.wilson(count, total))}"


def shift_sentence(shift: ShiftResult, lang: str) -> str:
    """The flow chart's sentence: where the answers of one first answer went (the view's, else
    the most common); where that would give a hidden cell back, the two columns' totals."""
    s = shift.stats
    if not s.n_paired:
        return translate(lang, "res_shift_none")
    # the row the talk speaks about: an option that holds the view (the one most people first
    # chose), else the row with the most people
    candidates = sorted(
        (o for o in s.options if s.row_total(o) >= s.minimum),
        key=lambda o: (o not in shift.holds, -s.row_total(o)),
    )
    if not candidates:
        return totals_sentence(shift, lang)
    first = candidates[0]
    total = s.row_total(first)
    moves = [
        translate(
            lang,
            "res_shift_move",
            share=pct(s.row_share(first, o), 1 if total < 100 else 0),
            option=shift.label(o, lang),
        )
        for o in s.options
        if o != first and not s.is_hidden(first, o) and s.cell(first, o)
    ]
    if s.is_hidden(first, first):
        return totals_sentence(shift, lang)
    moved = changed(total - s.cell(first, first), total)
    option = shift.label(first, lang)
    if not moves:
        return translate(lang, "res_shift_sentence_short", option=option, changed=moved)
    separator = translate(lang, "res_list_separator")
    return translate(
        lang, "res_shift_sentence", option=option, changed=moved, moves=separator.join(moves)
    )


def totals_sentence(shift: ShiftResult, lang: str) -> str:
    """How many chose each answer before and after (the flow chart's two columns): the phases'
    own totals, which are public (docs/methods.md, "Small cells")."""
    s = shift.stats
    separator = translate(lang, "res_list_separator")
    totals = separator.join(
        translate(
            lang,
            "res_shift_total",
            option=shorten(shift.label(o, lang)),
            before=s.row_total(o),
            after=s.column_total(o),
        )
        for o in s.options
    )
    return translate(lang, "res_shift_totals", n=s.n_paired, totals=totals)


def test_text(s: stats.Shift, lang: str, tests: bool = False) -> str:
    """The test of net change (marginal homogeneity), only where ``tests`` asks for it (results
    pages, never the projector or phones), only from ``MIN_TEST_PAIRS`` paired people up, and
    only when the matrix hides no cell: the statistic is worked out from every cell, and with the
    totals it tells the hidden ones apart (docs/methods.md, "Small cells"). Its degrees of
    freedom are worked out from every cell too (none where nobody changed), so whether anyone
    changed is looked at only once nothing is hidden."""
    if not tests or s.test is None or not s.n_paired:
        return ""
    if s.n_paired < MIN_TEST_PAIRS:
        return translate(lang, "res_test_too_few", n=MIN_TEST_PAIRS)
    if s.hidden:
        return translate(lang, "res_test_hidden")
    if not s.changed:
        # no test has anything to weigh (Stuart-Maxwell's df is 0, McNemar's b + c is 0)
        return translate(lang, "res_test_nobody_changed")
    p = s.test.p_value
    p_text = "p < 0.001" if p < 0.001 else f"p = {number(p, 3)}"
    if s.test.name == "mcnemar_exact":
        return translate(lang, "res_test_mcnemar", p=p_text)
    return translate(
        lang, "res_test_stuart_maxwell", chi2=number(s.test.statistic, 1), df=s.test.df, p=p_text
    )


def matrix_sentence(shift: ShiftResult, lang: str) -> str:
    """The matrix's sentence: how many changed their answer at all, unless that would give a
    hidden cell back."""
    s = shift.stats
    if not s.n_paired:
        return translate(lang, "res_shift_none")
    if s.changed_hidden:
        # how many changed, with the row totals, would give a hidden cell of the matrix back
        return translate(lang, "res_shift_too_few", n=s.n_paired)
    return translate(
        lang, "res_shift_overall", changed=changed(s.changed, s.n_paired), n=s.n_paired
    )


def movement_sentence(shift: ShiftResult, lang: str, minimum: int | None = None) -> str:
    """The revote slide's sentence: how many of the room changed their answer and, where it
    gives no hidden cell away, how many moved towards the view and away from it
    (``stats.movement``); empty where even the number who changed would tell a hidden cell.
    ``minimum``: the small-cell threshold (the session's, as its shift has it, by default)."""
    moved = stats.movement(shift.stats, shift.holds, minimum)
    if moved is None:
        return ""
    if not moved.changed:
        return translate(lang, "res_movement_none", n=moved.n)
    if moved.towards is None or moved.away is None:
        return translate(lang, "res_movement", changed=moved.changed, n=moved.n)
    return translate(
        lang,
        "res_movement_direction",
        changed=moved.changed,
        n=moved.n,
        towards=moved.towards,
        away=moved.away,
        view=view_label(shift, lang),
    )


def view_label(shift: ShiftResult, lang: str) -> str:
    """The answers that hold the view, as the revote slide names them."""
    return translate(lang, "res_list_separator").join(shift.label(o, lang) for o in shift.holds)


def held_table(shift: ShiftResult) -> stats.HeldTable | None:
    """The revote matrix coarsened to whether each answer holds the view (``stats.held_table``),
    for the results page where the matrix hides more than half its cells: what the revote
    slide's sentence says, as a table. None where the matrix shows most cells or where the
    direction may not be told."""
    s = shift.stats
    if 2 * len(s.hidden) <= len(s.options) ** 2:
        return None
    return stats.held_table(s, shift.holds)
