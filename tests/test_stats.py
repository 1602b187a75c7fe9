"""The statistics against worked examples and against statsmodels on many random inputs."""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from statsmodels.stats.contingency_tables import SquareTable, mcnemar
from statsmodels.stats.meta_analysis import combine_effects
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from app import stats
from app.stats import Dataset, PhaseSpec

TOL = 1e-9


@st.composite
def proportions(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(st.integers(min_value=1, max_value=3000))
    return draw(st.integers(min_value=0, max_value=n)), n


def test_methods_examples() -> None:
    lo, hi = stats.wilson(101, 259)
    assert (round(lo, 4), round(hi, 4)) == (0.3326, 0.4506)
    diff = stats.newcombe_diff(252, 360, 101, 259)
    assert round(diff.estimate, 3) == 0.310
    assert (round(diff.ci95[0], 3), round(diff.ci95[1], 3)) == (0.232, 0.383)


def test_paired_interval_matches_the_published_example() -> None:
    # Fagerland, Lydersen & Laake (2017), ch. 8: Cavo et al. 2012, table [[59, 6], [16, 80]]:
    # Newcombe's square-and-add interval -0.0621 (-0.1186 to -0.0046).
    diff = stats.newcombe_paired(59, 6, 16, 80)
    assert round(diff.estimate, 4) == -0.0621
    assert (round(diff.ci95[0], 4), round(diff.ci95[1], 4)) == (-0.1186, -0.0046)
    assert diff.n == 161 and diff.method == "newcombe_paired_method10"


@settings(max_examples=300, deadline=None)
@given(proportions())
def test_wilson_matches_statsmodels(case: tuple[int, int]) -> None:
    count, n = case
    expected = proportion_confint(count, n, method="wilson")
    assert stats.wilson(count, n) == pytest.approx(expected, abs=TOL)


@settings(max_examples=300, deadline=None)
@given(proportions(), proportions())
def test_newcombe_matches_statsmodels(first: tuple[int, int], second: tuple[int, int]) -> None:
    diff = stats.newcombe_diff(first[0], first[1], second[0], second[1])
    expected = confint_proportions_2indep(
        first[0], first[1], second[0], second[1], method="newcomb", compare="diff"
    )
    assert diff.ci95 == pytest.approx(expected, abs=TOL)
    assert diff.estimate == pytest.approx(first[0] / first[1] - second[0] / second[1], abs=TOL)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 200), min_size=4, max_size=4))
def test_paired_interval_contains_its_estimate_and_stays_in_range(cells: list[int]) -> None:
    assume(sum(cells) > 0)
    diff = stats.newcombe_paired(*cells)
    lo, hi = diff.ci95
    assert -1 - TOL <= lo <= diff.estimate + TOL <= hi + 2 * TOL <= 1 + 3 * TOL


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 300), st.integers(0, 300))
def test_mcnemar_exact_matches_statsmodels(b: int, c: int) -> None:
    ours = stats.mcnemar_exact(b, c)
    theirs = mcnemar(np.array([[7, b], [c, 3]]), exact=True)
    assert ours.statistic == pytest.approx(theirs.statistic, abs=TOL)
    assert ours.p_value == pytest.approx(min(1.0, theirs.pvalue), abs=TOL)


square_tables = st.integers(2, 5).flatmap(
    lambda k: st.lists(st.lists(st.integers(0, 60), min_size=k, max_size=k), min_size=k, max_size=k)
)


@settings(max_examples=300, deadline=None)
@given(square_tables)
def test_stuart_maxwell_and_bowker_match_statsmodels(table: list[list[int]]) -> None:
    array = np.array(table, dtype=float)
    k = len(table)
    v = -(array + array.T)
    np.fill_diagonal(v, array.sum(0) + array.sum(1) - 2 * np.diag(array))
    assume(np.linalg.matrix_rank(v[:-1, :-1]) == k - 1)  # statsmodels cannot invert otherwise
    square = SquareTable(array, shift_zeros=False)
    ours = stats.stuart_maxwell(table)
    theirs = square.homogeneity()
    assert ours.statistic == pytest.approx(theirs.statistic, rel=1e-9, abs=TOL)
    assert ours.p_value == pytest.approx(theirs.pvalue, abs=TOL)
    assert ours.df == theirs.df
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # statsmodels divides 0 by 0 on empty pairs
        symmetry = square.symmetry()
    ours_sym = stats.bowker(table)
    assert ours_sym.statistic == pytest.approx(symmetry.statistic, rel=1e-9, abs=TOL)
    assert ours_sym.p_value == pytest.approx(symmetry.pvalue, abs=TOL)


def test_stuart_maxwell_with_two_options_is_mcnemar_without_correction() -> None:
    test = stats.stuart_maxwell([[10, 3], [12, 20]])
    assert test.statistic == pytest.approx((3 - 12) ** 2 / (3 + 12))
    assert test.df == 1


def test_stuart_maxwell_survives_a_category_nobody_moved_through() -> None:
    # nobody ever answered or moved to "c": the usual V is singular; the test uses what is left
    test = stats.stuart_maxwell([[5, 4, 0], [1, 6, 0], [0, 0, 0]])
    assert test.df == 1
    assert test.statistic == pytest.approx((4 - 1) ** 2 / 5)
    assert 0 < test.p_value < 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(-0.9, 0.9), st.floats(0.0005, 0.05)), min_size=2, max_size=12))
def test_pooling_matches_statsmodels_dersimonian_laird(rows: list[tuple[float, float]]) -> None:
    effects = [r[0] for r in rows]
    variances = [r[1] for r in rows]
    ours = stats.pool(effects, variances)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # statsmodels divides by 0 when Q = 0
        theirs = combine_effects(np.array(effects), np.array(variances), method_re="dl")
    assert ours.q == pytest.approx(theirs.q, rel=1e-9, abs=TOL)
    assert ours.fixed == pytest.approx(theirs.mean_effect_fe, abs=TOL)
    # statsmodels reports tau^2 and I^2 untruncated; the published definitions take max(0, .)
    assert ours.tau2 == pytest.approx(max(0.0, theirs.tau2), abs=TOL)
    if theirs.q > 0:
        assert ours.i2 == pytest.approx(max(0.0, theirs.i2), abs=TOL)
    else:
        assert ours.i2 == 0
    if theirs.tau2 >= 0:
        assert ours.random == pytest.approx(theirs.mean_effect_re, abs=TOL)
        assert ours.random_ci95 == pytest.approx(tuple(theirs.conf_int()[1]), abs=TOL)
    else:
        assert ours.random == pytest.approx(theirs.mean_effect_fe, abs=TOL)


def test_pooling_one_session_is_that_session() -> None:
    pooled = stats.pool([0.31], [0.0016])
    assert pooled.random == pooled.fixed == 0.31
    assert pooled.q == 0 and pooled.i2 == 0 and pooled.tau2 == 0 and pooled.q_p_value is None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 100), min_size=2, max_size=200))
def test_t_interval_matches_scipy(values: list[float]) -> None:
    from scipy import stats as sps

    summary = stats.mean_summary(values)
    assume(summary.sd and summary.sd > 1e-6)
    lo, hi = sps.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=sps.sem(values))
    assert summary.ci95 == pytest.approx((lo, hi), abs=1e-7)
    assert summary.median == pytest.approx(float(np.median(values)))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 500), min_size=1, max_size=8))
def test_shares_sum_to_one(counts: list[int]) -> None:
    assume(sum(counts) > 0)
    result = stats.shares({f"o{i}": c for i, c in enumerate(counts)})
    assert math.fsum(v for v in result.values() if v is not None) == pytest.approx(1.0)


def test_no_answers_give_no_shares() -> None:
    assert stats.shares({"a": 0, "b": 0}) == {"a": None, "b": None}


def test_histogram_keeps_every_value_and_the_top_edge() -> None:
    bins = stats.histogram([0, 9.99, 10, 55, 100, 100], 0, 100, 10)
    assert [b.count for b in bins] == [2, 1, 0, 0, 0, 1, 0, 0, 0, 2]
    assert sum(b.count for b in bins) == 6


def test_small_cells_are_hidden() -> None:
    assert stats.shown(4) is None and stats.shown(5) == 5 and stats.shown(0) == 0
    assert stats.too_few(1) and not stats.too_few(0)


THREE = ("agree", "disagree", "unsure")
SPECS = (
    PhaseSpec("definition", "choice", ("d1", "d2")),
    PhaseSpec("belief", "stance", THREE, holds=("agree",)),
    PhaseSpec("field", "perceived", THREE, of_key="belief"),
    PhaseSpec("revote", "revote", THREE, of_key="belief"),
)

answer_maps = st.dictionaries(st.integers(1, 60).map(str), st.sampled_from(THREE), max_size=60)


@settings(max_examples=60, deadline=None)
@given(answer_maps, answer_maps, answer_maps)
def test_each_participant_is_counted_once_per_phase(
    belief: dict[str, str], field: dict[str, str], revote: dict[str, str]
) -> None:
    data = Dataset(SPECS, {"belief": belief, "field": field, "revote": revote})
    result = stats.analyze(data)
    assert result.phases["belief"].n == len(belief)
    assert result.phases["field"].n == len(field)
    if result.perceived_crosstab is not None:
        assert result.perceived_crosstab.n == len(set(belief) & set(field))
    for phase in result.phases.values():
        if phase.n:
            assert math.fsum(s for s in phase.shares.values() if s is not None) == pytest.approx(1)
    if result.gap is not None and result.gap.paired is not None:
        assert result.gap.paired.n == len(set(belief) & set(field))
    shift = result.shift
    assert (shift is None) == (not revote)
    if shift is not None:
        assert shift.n_paired == len(set(belief) & set(revote))
        assert shift.n_paired + shift.only_first == len(belief)
        assert shift.n_paired + shift.only_second == len(revote)
        assert sum(map(sum, shift.matrix)) == shift.n_paired


def test_gap_and_paired_gap_on_linked_answers() -> None:
    belief = {str(i): "agree" if i < 4 else "disagree" for i in range(10)}
    field = {str(i): "agree" if i < 8 else "unsure" for i in range(10)}
    gap = stats.gap(Dataset(SPECS, {"belief": belief, "field": field}))
    assert gap is not None and gap.kind == "categorical"
    assert gap.self_share == 0.4 and gap.perceived_share == 0.8
    assert gap.difference.estimate == pytest.approx(0.4)
    assert gap.paired is not None and gap.paired.n == 10
    # every agreeing person also perceives agreement: b = 4, c = 0
    assert gap.paired.estimate == pytest.approx(0.4)
    assert gap.paired.ci95[0] > 0


def test_gap_with_an_estimate_and_false_consensus() -> None:
    specs = (
        PhaseSpec("belief", "stance", THREE, holds=("agree",)),
        PhaseSpec("field_pct", "perceived", (), of_key="belief", min_value=0, max_value=100),
    )
    belief = {str(i): ("agree" if i < 10 else "unsure") for i in range(20)}
    estimate = {str(i): (80.0 if i < 10 else 60.0) + (i % 3) for i in range(20)}
    data = Dataset(specs, {"belief": belief, "field_pct": estimate})
    gap = stats.gap(data)
    assert gap is not None and gap.kind == "estimate"
    mean = sum(estimate.values()) / 20 / 100
    assert gap.perceived_share == pytest.approx(mean)
    assert gap.difference.estimate == pytest.approx(mean - 0.5)
    assert gap.difference.ci95[0] < gap.difference.estimate < gap.difference.ci95[1]
    fc = gap.false_consensus
    assert fc is not None and fc.holders_n == 10 and fc.others_n == 10
    assert fc.difference is not None and fc.difference.estimate == pytest.approx(0.2, abs=0.01)


ESTIMATE_SPECS = (
    PhaseSpec("belief", "stance", THREE, holds=("agree",)),
    PhaseSpec("field_pct", "perceived", (), of_key="belief", min_value=0, max_value=100),
)


def _estimate_gap(belief: dict[str, str], estimate: dict[str, float]) -> stats.Gap:
    gap = stats.analyze(Dataset(ESTIMATE_SPECS, {"belief": belief, "field_pct": estimate})).gap
    assert gap is not None and gap.false_consensus is not None
    return gap


def test_the_false_consensus_split_shows_both_groups_or_neither() -> None:
    """docs/methods.md, "Estimates": beside everyone's mean, one group's mean gives the other's
    back, so a group of 1 to 4 hides both; and the paired interval, whose correlation is the
    split in another form, gives way to the independent comparison (never a widened one)."""
    estimate = {str(i): 30.0 + 3 * i for i in range(20)}
    even = _estimate_gap({str(i): "agree" if i < 10 else "unsure" for i in range(20)}, estimate)
    assert even.false_consensus is not None and even.false_consensus.shown
    assert even.linked and even.headline is even.paired
    three = {str(i): "agree" if i < 3 else "unsure" for i in range(13)}
    values = {p: estimate[p] for p in three}
    few = _estimate_gap(three, values)
    raw = stats.gap(Dataset(ESTIMATE_SPECS, {"belief": three, "field_pct": values}))
    assert few.false_consensus is not None and not few.false_consensus.shown
    assert few.apart and not few.linked and raw is not None
    # the independent comparison of the two phases' own answers, as the raw gap has it
    assert few.headline == raw.difference and few.headline.method == "mover_t_wilson"
    assert not few.headline.method.endswith(stats.WIDENED)


def test_a_few_people_on_one_side_make_the_estimate_gap_independent() -> None:
    """Where 1 to 4 answered only the estimate, or fewer than 5 answered both, the paired
    figures would give those few people's estimates or stance back: the headline is the
    independent comparison, and no split is shown."""
    belief = {str(i): "agree" if i < 6 else "unsure" for i in range(12)}
    estimate = {str(i): 40.0 + 2 * i for i in range(14)}
    late = _estimate_gap(belief, estimate)
    assert late.only_perceived == 2 and late.apart and not late.linked
    assert late.headline is late.difference and late.paired is not None
    assert late.false_consensus is not None and not late.false_consensus.shown
    one = _estimate_gap(belief, {"0": 37.0})
    assert one.apart and one.headline is one.difference
    many = _estimate_gap(belief, {str(i): 40.0 + 2 * i for i in range(18)})
    assert many.only_perceived == 6 and many.linked and many.headline is many.paired
    assert many.false_consensus is not None and many.false_consensus.shown


def test_shift_counts_changes_by_first_answer() -> None:
    belief = {str(i): "agree" for i in range(36)} | {"x": "unsure"}
    revote = {str(i): "agree" if i < 6 else ("disagree" if i < 11 else "unsure") for i in range(36)}
    revote["late"] = "agree"
    shift = stats.shift(Dataset(SPECS, {"belief": belief, "revote": revote}))
    assert shift is not None
    assert shift.n_paired == 36 and shift.only_first == 1 and shift.only_second == 1
    assert shift.changed_share("agree") == pytest.approx(30 / 36)
    assert shift.row_share("agree", "disagree") == pytest.approx(5 / 36)
    assert shift.changed_share("unsure") is None
    assert shift.test is not None and shift.test.name == "stuart_maxwell"


def test_a_two_option_shift_uses_exact_mcnemar() -> None:
    specs = (
        PhaseSpec("b", "stance", ("yes", "no"), holds=("yes",)),
        PhaseSpec("r", "revote", ("yes", "no"), of_key="b"),
    )
    data = Dataset(
        specs, {"b": {"1": "yes", "2": "yes", "3": "no"}, "r": {"1": "no", "2": "no", "3": "no"}}
    )
    shift = stats.shift(data)
    assert shift is not None and shift.test is not None
    assert shift.test.name == "mcnemar_exact"
    assert shift.test.p_value == pytest.approx(0.5)


def test_merge_keeps_participants_of_sessions_apart() -> None:
    one = Dataset(SPECS, {"belief": {"1": "agree"}})
    two = Dataset(SPECS, {"belief": {"1": "disagree"}})
    merged = stats.merge({"AAA": one, "BBB": two})
    assert stats.analyze(merged).phases["belief"].n == 2


# --------------------------------------------------------------------------- the paired headline


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 60), min_size=4, max_size=4).filter(lambda c: sum(c) > 0))
def test_the_paired_variance_is_bonett_prices_adjusted_variance(
    cells: list[int],
) -> None:
    a, b, c, d = cells
    diff = stats.newcombe_paired(a, b, c, d)
    # each person's (first - second): +1 for b, -1 for c, 0 for a and d
    values = np.array([0] * a + [1] * b + [-1] * c + [0] * d, dtype=float)
    assert diff.estimate == pytest.approx(values.mean(), abs=TOL)
    # Bonett & Price (2012): the same with one more person of each discordant kind (+1 and -1),
    # so concordant rooms (b = c = 0) have a variance too and are pooled, not dropped
    adjusted = np.append(values, [1.0, -1.0])
    assert diff.variance == pytest.approx(adjusted.var(ddof=0) / len(adjusted), abs=TOL)
    assert diff.variance is not None and diff.variance > 0
    # the two sides are Wilson intervals on the same n (statsmodels)
    assert diff.first_ci95 == pytest.approx(proportion_confint(a + b, sum(cells), method="wilson"))
    assert diff.second_ci95 == pytest.approx(proportion_confint(a + c, sum(cells), method="wilson"))


@st.composite
def linked_estimates(draw: st.DrawFn) -> tuple[list[float], list[bool]]:
    n = draw(st.integers(min_value=2, max_value=120))
    estimates = draw(st.lists(st.integers(0, 100), min_size=n, max_size=n))
    holds = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    return [e / 100 for e in estimates], holds


@settings(max_examples=300, deadline=None)
@given(linked_estimates())
def test_the_estimate_gap_matches_scipy_and_statsmodels(
    case: tuple[list[float], list[bool]],
) -> None:
    from scipy import stats as sps
    from statsmodels.stats.weightstats import DescrStatsW

    estimates, holds = case
    n = len(estimates)
    flags = np.array(holds, dtype=float)
    est = np.array(estimates)
    diff = stats.estimate_minus_share(estimates, holds, paired=True)
    # the paired mean difference (scipy's paired t works on these same differences)
    assert diff.estimate == pytest.approx(float(np.mean(est - flags)), abs=TOL)
    assert diff.n == n and diff.method == "mover_paired_t_wilson"
    # the two sides: Student t interval of the mean (scipy), Wilson interval of the share.
    # Whether the answers vary is asked of the answers, not of numpy's std: the std of one value
    # repeated (0.09 twice) can come out 1e-17, and scipy's interval then has no width.
    varies = len(set(estimates)) > 1
    if varies:
        t_lo, t_hi = sps.t.interval(0.95, n - 1, loc=est.mean(), scale=sps.sem(est))
        assert diff.first_ci95 == pytest.approx((t_lo, t_hi), abs=TOL)
    assert diff.second_ci95 == pytest.approx(
        proportion_confint(int(flags.sum()), n, method="wilson"), abs=TOL
    )
    # the correlation that enters the MOVER interval (numpy), 0 when a side does not vary
    r = float(np.corrcoef(est, flags)[0, 1]) if varies and flags.std() > 0 else 0.0
    m, (l1, u1) = est.mean(), diff.first_ci95
    p, (l2, u2) = flags.mean(), diff.second_ci95
    lower = (m - p) - math.sqrt(max(0, (m - l1) ** 2 - 2 * r * (m - l1) * (u2 - p) + (u2 - p) ** 2))
    upper = (m - p) + math.sqrt(max(0, (u1 - m) ** 2 - 2 * r * (u1 - m) * (p - l2) + (p - l2) ** 2))
    assert diff.ci95 == pytest.approx((lower, upper), abs=TOL)
    # the method's variance: that of the mean of the paired differences (statsmodels)
    spread = DescrStatsW(est - flags).std_mean ** 2
    if len(set((est - flags).tolist())) > 1:
        assert diff.variance == pytest.approx(spread, abs=TOL)
    # independent samples: the same sides, r = 0
    apart = stats.estimate_minus_share(estimates, holds, paired=False)
    assert apart.ci95 == pytest.approx(
        stats.mover(m, diff.first_ci95, p, diff.second_ci95, 0.0), abs=TOL
    )


def test_a_unanimous_room_still_has_an_uncertain_share() -> None:
    # everyone holds the view: the share is 100%, but Wilson's interval for 8 of 8 is [68, 100]
    diff = stats.estimate_minus_share([0.6, 0.7, 0.65, 0.7, 0.6, 0.75, 0.7, 0.65], [True] * 8, True)
    lo, _hi = stats.wilson(8, 8)
    assert diff.second_ci95 == (lo, 1.0)
    t_only = diff.first_ci95
    assert t_only is not None
    shifted = (t_only[0] - 1, t_only[1] - 1)
    assert diff.ci95[1] - diff.ci95[0] > shifted[1] - shifted[0]
    # the share's own uncertainty (1 - lo) enters the upper bound
    assert diff.ci95[1] >= diff.estimate + (1 - lo) - 1e-12


def test_the_headline_is_paired_and_counts_who_is_left_out() -> None:
    belief = {str(i): "agree" if i < 4 else "disagree" for i in range(10)}
    field = {str(i): "agree" if i < 8 else "unsure" for i in range(3, 15)}
    gap = stats.gap(Dataset(SPECS, {"belief": belief, "field": field}))
    assert gap is not None and gap.linked and gap.headline is gap.paired
    assert gap.paired is not None and gap.paired.n == 7
    assert (gap.only_stance, gap.only_perceived) == (3, 5)
    assert sum(o.self_count for o in gap.paired_options) == 7
    # nobody answered both: the headline is the independent comparison
    apart = {f"x{i}": a for i, a in field.items()}
    gap = stats.gap(Dataset(SPECS, {"belief": belief, "field": apart}))
    assert gap is not None and not gap.linked and gap.headline is gap.difference
    assert (gap.only_stance, gap.only_perceived) == (10, 12)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(-0.9, 0.9), st.floats(0.0005, 0.05)), min_size=2, max_size=12))
def test_the_hksj_interval_matches_statsmodels(rows: list[tuple[float, float]]) -> None:
    effects = np.array([r[0] for r in rows])
    variances = np.array([r[1] for r in rows])
    ours = stats.pool(list(effects), list(variances))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = combine_effects(effects, variances, method_re="dl", use_t=True)
    assume(theirs.tau2 >= 0)
    # statsmodels' "random effect wls" row with t quantiles is the unmodified HKSJ interval; the
    # modified scale max(1, q) (Roever, Knapp & Friede 2015) takes the wider of it and the
    # random-effects row with the same t quantile
    wls = theirs.conf_int(use_t=True)[3]
    re_t = theirs.conf_int(use_t=True)[1]
    half = max(wls[1] - wls[0], re_t[1] - re_t[0]) / 2
    assert ours.hksj_ci95 == pytest.approx((ours.random - half, ours.random + half), abs=TOL)
    assert ours.uses_hksj == (len(rows) < 10)
    assert ours.ci95 == (ours.hksj_ci95 if len(rows) < 10 else ours.random_ci95)
    # cut at the range a gap can take, and said so
    cut = stats.pool(list(effects), list(variances), bounds=(-1.0, 1.0))
    assert cut.ci95 == (max(-1.0, ours.ci95[0]), min(1.0, ours.ci95[1]))
    assert cut.clipped == (ours.ci95[0] < -1 or ours.ci95[1] > 1)
    assert cut.covers_bounds == (ours.ci95[0] <= -1 and ours.ci95[1] >= 1)
    assert cut.as_dict()["hksj_ci95"] == list(ours.hksj_ci95 or ())


# --------------------------------------------------------------------------- small cells


def cell_range(
    table: list[list[int]], hidden: frozenset[tuple[int, int]], cell: tuple[int, int]
) -> tuple[float, float]:
    """The least and the most a hidden cell can hold, for an attacker who sees the shown cells
    and the row and column totals (the phases' own charts give those), each hidden cell any count
    from 0. The table's polytope has integer corners, so the linear programme's bounds are the
    integer ones (scipy's linprog as the solver)."""
    from scipy.optimize import linprog

    rows, cols = len(table), len(table[0])
    index = {(i, j): i * cols + j for i in range(rows) for j in range(cols)}
    a_eq, b_eq = [], []
    for i in range(rows):
        a_eq.append([1.0 if k // cols == i else 0.0 for k in range(rows * cols)])
        b_eq.append(sum(table[i]))
    for j in range(cols):
        a_eq.append([1.0 if k % cols == j else 0.0 for k in range(rows * cols)])
        b_eq.append(sum(table[i][j] for i in range(rows)))
    bounds = [
        (0, None) if (i, j) in hidden else (table[i][j], table[i][j])
        for i in range(rows)
        for j in range(cols)
    ]
    goal = [0.0] * (rows * cols)
    goal[index[cell]] = 1.0
    low = linprog(goal, A_eq=a_eq, b_eq=b_eq, bounds=bounds).fun
    high = -linprog([-g for g in goal], A_eq=a_eq, b_eq=b_eq, bounds=bounds).fun
    return round(low, 6), round(high, 6)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 5).flatmap(
        lambda k: st.lists(
            st.lists(st.integers(0, 12), min_size=k, max_size=k), min_size=2, max_size=5
        )
    )
)
def test_no_hidden_cell_can_be_worked_out_from_the_totals(table: list[list[int]]) -> None:
    hidden = stats.suppressed(table)
    assert all((i, j) in hidden for i, r in enumerate(table) for j, c in enumerate(r) if 0 < c < 5)
    everything = frozenset((i, j) for i in range(len(table)) for j in range(len(table[0])))
    for cell in hidden:
        if not 0 < table[cell[0]][cell[1]] < 5:
            continue
        low, high = cell_range(table, everything, cell)
        if low == high:
            continue  # the totals alone give it (a phase's own chart shows them)
        low, high = cell_range(table, hidden, cell)
        assert low < high, (table, sorted(hidden), cell)


def _tables_like(
    table: list[list[int]], shown: frozenset[tuple[int, int]]
) -> Iterator[list[list[int]]]:
    """Every table with the row and column totals of ``table`` and its ``shown`` cells, row by
    row (each row's last cell and the last row follow from the totals)."""
    rows, cols = len(table), len(table[0])
    col_left = [sum(table[i][j] for i in range(rows)) for j in range(cols)]
    out = [[0] * cols for _ in range(rows)]

    def row(i: int, j: int, left: int) -> Iterator[list[list[int]]]:
        if i == rows - 1:
            if all(c == table[i][jj] for jj, c in enumerate(col_left) if (i, jj) in shown):
                out[i] = list(col_left)
                yield [list(r) for r in out]
            return
        if j == cols - 1:
            choices = [left] if left <= col_left[j] else []
        else:
            choices = list(range(min(left, col_left[j]) + 1))
        if (i, j) in shown:
            choices = [v for v in choices if v == table[i][j]]
        for value in choices:
            out[i][j] = value
            col_left[j] -= value
            if j == cols - 1:
                yield from row(i + 1, 0, sum(table[i + 1]))
            else:
                yield from row(i, j + 1, left - value)
            col_left[j] += value

    yield from row(0, 0, sum(table[0]))


@settings(max_examples=200, deadline=None)
@given(
    st.integers(2, 3).flatmap(
        lambda k: st.lists(
            st.lists(st.integers(0, 8), min_size=k, max_size=k), min_size=2, max_size=3
        )
    )
)
@example([[0, 1], [1, 5], [0, 3]])
@example([[17, 1], [1, 0], [6, 1]])
@example([[0, 0, 1], [15, 17, 4]])
def test_redoing_the_suppression_pins_no_small_cell(table: list[list[int]]) -> None:
    """A reader who knows the rule sees the shown cells, the totals and which cells are hidden,
    redoes the suppression on every table that fits and keeps those it hides the same way: a
    small cell the totals alone leave open still takes two values among them. (The first
    example was a block rule's counterexample, the other two hid whole tables that only the
    real one would hide whole.)"""
    hidden = stats.suppressed(table)
    everything = frozenset((i, j) for i in range(len(table)) for j in range(len(table[0])))
    watched = [
        (i, j)
        for i, j in sorted(hidden)
        if 0 < table[i][j] < stats.MIN_CELL
        and cell_range(table, everything, (i, j))[0] < cell_range(table, everything, (i, j))[1]
    ]
    values = {cell: {table[cell[0]][cell[1]]} for cell in watched}
    for other in _tables_like(table, everything - hidden):
        if all(len(v) > 1 for v in values.values()):
            break
        if stats.suppressed(other) == hidden:
            for i, j in watched:
                values[i, j].add(other[i][j])
    for cell, seen in values.items():
        assert len(seen) > 1, (table, sorted(hidden), cell)


def _stance_perceived(table: list[list[int]]) -> Dataset:
    keys = ("agree", "disagree", "unsure")
    belief: dict[str, stats.Answer] = {}
    field: dict[str, stats.Answer] = {}
    for i, row in enumerate(table):
        for j, count in enumerate(row):
            for k in range(count):
                person = f"{i}{j}-{k}"
                belief[person], field[person] = keys[i], keys[j]
    return Dataset(
        (
            PhaseSpec("belief", "stance", keys, holds=("agree",)),
            PhaseSpec("field", "perceived", keys, of_key="belief"),
        ),
        {"belief": belief, "field": field},
    )


def _completions(
    table: list[list[int]], hidden: frozenset[tuple[int, int]], limit: int = 25
) -> list[list[list[int]]]:
    """Every table with the same totals and the same cells outside ``hidden`` (or, when there are
    more than ``limit``, ``limit + 1`` of them)."""
    rows, cols = len(table), len(table[0])
    row_totals = [sum(r) for r in table]
    col_totals = [sum(table[i][j] for i in range(rows)) for j in range(cols)]
    free = sorted(hidden)
    out: list[list[list[int]]] = []

    def fill(k: int, other: list[list[int]]) -> None:
        if len(out) > limit:
            return
        if k == len(free):
            if [sum(r) for r in other] == row_totals and all(
                sum(other[i][j] for i in range(rows)) == col_totals[j] for j in range(cols)
            ):
                out.append([list(r) for r in other])
            return
        i, j = free[k]
        left_row = row_totals[i] - sum(v for jj, v in enumerate(other[i]) if jj != j)
        left_col = col_totals[j] - sum(other[ii][j] for ii in range(rows) if ii != i)
        for value in range(max(0, min(left_row, left_col)) + 1):
            other[i][j] = value
            fill(k + 1, other)
        other[i][j] = 0

    start = [[0 if (i, j) in hidden else table[i][j] for j in range(cols)] for i in range(rows)]
    fill(0, start)
    return out


@settings(max_examples=20, deadline=None)
@given(st.lists(st.lists(st.integers(0, 9), min_size=3, max_size=3), min_size=3, max_size=3))
@example([[1, 0, 0], [1, 0, 0], [2, 1, 0]])  # five people; the one who agrees is a hidden cell
@example([[4, 2, 0], [0, 0, 0], [0, 9, 0]])  # 4 agree and think the field does: hidden
def test_the_paired_gap_gives_no_hidden_cell_back(table: list[list[int]]) -> None:
    """Newcombe's paired interval depends on the cell "holds the view and thinks most of the field
    does"; where the cross-tab hides it (and the totals do not pin it), the headline is the
    independent comparison of the phases' totals, never a widened paired interval: the same for
    every table a reader cannot tell apart."""
    truth = stats.analyze(_stance_perceived(table))
    tab = truth.perceived_crosstab
    assume(truth.gap is not None and truth.gap.paired is not None and tab is not None)
    assert tab is not None and truth.gap is not None and truth.gap.paired is not None
    shown = truth.gap.headline
    exact = stats.newcombe_paired(*_abcd(table))
    assert not shown.method.endswith(stats.WIDENED)
    if table in ([[1, 0, 0], [1, 0, 0], [2, 1, 0]], [[4, 2, 0], [0, 0, 0], [0, 9, 0]]):
        assert truth.gap.apart and shown is truth.gap.difference
    if truth.gap.linked:
        assert shown.ci95 == exact.ci95 and shown.variance == exact.variance
    else:
        g = truth.gap
        independent = stats.newcombe_diff(
            g.perceived_count or 0, g.perceived_n, g.self_count, g.self_n
        )
        assert shown.ci95 == independent.ci95
    others = _completions(table, tab.hidden)
    assume(len(others) <= 25)
    for other in others:
        alike = stats.analyze(_stance_perceived(other))
        assert alike.perceived_crosstab is not None and alike.gap is not None
        if alike.perceived_crosstab.hidden != tab.hidden:
            continue  # drawn with other cells hidden: told apart by that, not by the interval
        assert alike.gap.linked == truth.gap.linked
        assert alike.gap.headline.ci95 == pytest.approx(shown.ci95, abs=TOL), (table, other)
        assert alike.gap.headline.variance == pytest.approx(shown.variance, abs=TOL)


def _abcd(table: list[list[int]]) -> tuple[int, int, int, int]:
    """The paired 2x2 of "agree" (stance rows x perceived columns): a, b, c, d as in
    ``stats.newcombe_paired``."""
    a = table[0][0]
    b = table[1][0] + table[2][0]
    c = table[0][1] + table[0][2]
    return a, b, c, sum(map(sum, table)) - a - b - c


@st.composite
def paired_rooms(draw: st.DrawFn) -> list[tuple[int, int, int, int]]:
    """k = 2, 3 or 12 rooms' paired 2x2 tables, with concordant (b = c = 0) and near-concordant
    (b + c = 1) rooms among them."""
    k = draw(st.sampled_from([2, 3, 12]))
    rooms = []
    for _ in range(k):
        kind = draw(st.sampled_from(["concordant", "near", "any"]))
        a, d = draw(st.integers(0, 60)), draw(st.integers(0, 60))
        if kind == "concordant":
            b = c = 0
        elif kind == "near":
            b, c = draw(st.sampled_from([(1, 0), (0, 1)]))
        else:
            b, c = draw(st.integers(0, 40)), draw(st.integers(0, 40))
        if a + b + c + d == 0:
            a = 1
        rooms.append((a, b, c, d))
    return rooms


@settings(max_examples=150, deadline=None)
@given(paired_rooms())
def test_every_paired_room_enters_the_pool_as_statsmodels_weighs_it(
    rooms: list[tuple[int, int, int, int]],
) -> None:
    """No room is dropped for zero spread: each enters with Bonett and Price's adjusted variance
    (from the paper), and the pool of them is statsmodels' DerSimonian-Laird, with the modified
    Knapp-Hartung interval (the wider of its HKSJ and random-effects t intervals)."""
    diffs = [stats.newcombe_paired(*room) for room in rooms]
    for (_a, b, c, d_), diff in zip(rooms, diffs, strict=True):
        n = _a + b + c + d_
        p12, p21 = (b + 1) / (n + 2), (c + 1) / (n + 2)
        assert diff.variance == pytest.approx((p12 + p21 - (p12 - p21) ** 2) / (n + 2))
        assert diff.variance is not None and diff.variance > 0
    effects = np.array([d.estimate for d in diffs])
    variances = np.array([d.variance or 0.0 for d in diffs])
    ours = stats.pool(list(effects), list(variances))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = combine_effects(effects, variances, method_re="dl", use_t=True)
    assume(theirs.tau2 >= 0)
    assert ours.random == pytest.approx(theirs.mean_effect_re, abs=TOL)
    assert ours.q == pytest.approx(theirs.q, rel=1e-9, abs=TOL)
    wls, re_t = theirs.conf_int(use_t=True)[3], theirs.conf_int(use_t=True)[1]
    half = max(wls[1] - wls[0], re_t[1] - re_t[0]) / 2
    assert ours.hksj_ci95 == pytest.approx((ours.random - half, ours.random + half), abs=TOL)


def test_a_near_concordant_room_no_longer_takes_half_the_weight() -> None:
    """A room of 30 with one discordant answer (29, 1, 0, 0) beside a room of 100 with 10
    (50, 5, 5, 40): the unadjusted variance ((b + c) - (b - c)^2 / n) / n^2 gave the small room
    48% of the weight; Bonett and Price's gives it 28%, about what its wider interval says."""
    near, big = stats.newcombe_paired(29, 1, 0, 0), stats.newcombe_paired(50, 5, 5, 40)
    assert near.variance is not None and big.variance is not None
    share = (1 / near.variance) / (1 / near.variance + 1 / big.variance)
    unadjusted = (1 - 1 / 30) / 30**2, (10 - 0 / 100) / 100**2
    before = (1 / unadjusted[0]) / (1 / unadjusted[0] + 1 / unadjusted[1])
    assert before == pytest.approx(0.482, abs=1e-3) and share == pytest.approx(0.285, abs=1e-3)
    # its interval is wider than the big room's, so it must weigh less
    assert near.ci95[1] - near.ci95[0] > big.ci95[1] - big.ci95[0]
    concordant = stats.newcombe_paired(15, 0, 0, 15)
    assert concordant.variance == pytest.approx(2 / 32**2)


def _moved(table: Sequence[Sequence[int]]) -> stats.Movement | None:
    options = ("agree", "disagree", "unsure")[: len(table)]
    matrix = tuple(tuple(row) for row in table)
    n = sum(map(sum, table))
    return stats.movement(
        stats.Shift("belief", "revote", options, matrix, n, 0, 0, None), ("agree",)
    )


@st.composite
def revote_rooms(draw: st.DrawFn) -> list[list[int]]:
    """A room after a talk: most kept their answer (3 to 14 a row), a few moved (0 to 4 a
    cell)."""
    k = draw(st.integers(2, 3))
    return [
        [draw(st.integers(3, 14)) if i == j else draw(st.integers(0, 4)) for j in range(k)]
        for i in range(k)
    ]


@settings(max_examples=40, deadline=None)
@given(
    st.one_of(
        st.integers(2, 3).flatmap(
            lambda k: st.lists(
                st.lists(st.integers(0, 4), min_size=k, max_size=k), min_size=k, max_size=k
            )
        ),
        revote_rooms(),
    )
)
@example([[9, 2, 1], [2, 9, 0], [3, 0, 4]])
@example([[9, 0, 3], [2, 10, 1], [2, 0, 3]])
@example([[12, 0, 2], [3, 5, 2], [0, 1, 5]])
@example([[8, 4, 2], [1, 9, 0], [1, 0, 5]])
@example([[11, 1, 2], [2, 7, 1], [1, 1, 4]])
def test_saying_how_many_moved_pins_no_small_cell(table: list[list[int]]) -> None:
    """The revote slide's "8 of 30 changed; 5 towards the view, 3 away", against a reader who
    sees the shown cells, the totals and which cells are hidden, redoes the suppression and the
    sentence on every table that fits and keeps those that read the same: a small cell the
    totals alone leave open still takes two values among them."""
    hidden = stats.suppressed(table)
    told = _moved(table)
    everything = frozenset(itertools.product(range(len(table)), repeat=2))
    watched = [
        (i, j)
        for i, j in sorted(hidden)
        if 0 < table[i][j] < stats.MIN_CELL
        and cell_range(table, everything, (i, j))[0] < cell_range(table, everything, (i, j))[1]
    ]
    values: dict[tuple[int, int], set[int]] = {cell: set() for cell in watched}
    for other in _tables_like(table, everything - hidden):
        if stats.suppressed(other) == hidden and _moved(other) == told:
            for i, j in watched:
                values[i, j].add(other[i][j])
    for cell, seen in values.items():
        assert len(seen) > 1, (table, sorted(hidden), told, cell)


def test_a_room_of_30_hears_how_many_changed() -> None:
    """8 of 30 changed (stance 14, 10 and 6): the slide says how many and in which direction,
    in rooms whose matrix hid 7 or all 9 cells and told nothing before; where saying "towards"
    would pin a cell, only the 8."""
    assert _moved([[9, 2, 1], [2, 9, 0], [3, 0, 4]]) == stats.Movement(8, 30, 5, 3)
    assert _moved([[9, 0, 3], [2, 10, 1], [2, 0, 3]]) == stats.Movement(8, 30, 4, 3)
    assert _moved([[12, 0, 2], [3, 5, 2], [0, 1, 5]]) == stats.Movement(8, 30, 3, 2)
    assert _moved([[8, 4, 2], [1, 9, 0], [1, 0, 5]]) == stats.Movement(8, 30, 2, 6)
    assert _moved([[11, 1, 2], [2, 7, 1], [1, 1, 4]]) == stats.Movement(8, 30, 3, 3)
    assert _moved([[11, 0, 3], [2, 6, 2], [1, 0, 5]]) == stats.Movement(8, 30)
    assert _moved([[9, 0, 0], [0, 10, 0], [0, 0, 11]]) == stats.Movement(0, 30, 0, 0)


def test_a_10_person_cell_is_not_hidden_to_protect_the_small_ones() -> None:
    """The 12 who kept "agree" and the 5s who kept the others are shown; only the 8 people who
    moved, spread over cells of 0 to 3, are hidden (the rule hid 7 of the 9 cells, the 12
    among them)."""
    off_diagonal = {(i, j) for i in range(3) for j in range(3) if i != j}
    assert stats.suppressed([[12, 0, 2], [3, 5, 2], [0, 1, 5]]) == off_diagonal
    # a small diagonal cell takes a second one with it, so that "how many changed" (the
    # diagonal's sum) does not give it back; "agree" stays
    assert stats.suppressed([[11, 1, 2], [2, 7, 1], [1, 1, 4]]) == off_diagonal | {(1, 1), (2, 2)}


def test_a_matrix_hidden_whole_is_told_as_a_table_of_holding_the_view() -> None:
    """Where the matrix hides every cell, the results page merges it into whether each answer
    holds the view: the four counts of the slide's sentence, which add up to the totals."""
    table = ((8, 4, 2), (1, 9, 0), (1, 0, 5))
    shift = stats.Shift("belief", "revote", ("agree", "disagree", "unsure"), table, 30, 0, 0, None)
    assert len(shift.hidden) == 9
    assert stats.held_table(shift, ("agree",)) == stats.HeldTable(
        kept=8, left=6, came=2, neither=14, changed=8, n=30
    )
    # where only the number who changed may be said, there is no such table
    told_less = ((11, 0, 3), (2, 6, 2), (1, 0, 5))
    shift = stats.Shift(
        "belief", "revote", ("agree", "disagree", "unsure"), told_less, 30, 0, 0, None
    )
    assert stats.held_table(shift, ("agree",)) is None


@st.composite
def published_rooms(draw: st.DrawFn) -> list[dict[str, dict[str, int]]]:
    """k = 2 to 12 sessions of published totals, all agreeing or none, some unanimous."""
    k = draw(st.sampled_from([2, 3, 12]))
    rooms = []
    for _ in range(k):
        own_n = draw(st.integers(2, 400))  # one person cannot enter a pool
        seen_n = draw(st.integers(1, 400))
        own = draw(st.integers(0, own_n))
        seen = draw(st.integers(0, seen_n))
        rooms.append(
            {
                "belief": {"agree": own, "disagree": own_n - own, "unsure": 0},
                "field": {"agree": seen, "disagree": 0, "unsure": seen_n - seen},
            }
        )
    return rooms


@settings(max_examples=40, deadline=None)
@given(published_rooms())
def test_published_totals_pool_as_statsmodels_pools_them(
    rooms: list[dict[str, dict[str, int]]],
) -> None:
    """Unlinked sessions enter the pool with the independent comparison and Agresti & Caffo's
    variance, written here from the paper, pooled as statsmodels pools them (DL, and the
    modified Knapp-Hartung interval: the wider of its two t intervals)."""
    from app.results import PhaseInfo, SessionMeta, build_talk_results

    infos = [PhaseInfo(spec, {"en": spec.key}, {}) for spec in SPECS]
    sessions = [
        (
            SessionMeta(code=f"R{i}", unlinked=True, source="a paper"),
            infos,
            Dataset.from_totals(SPECS, totals),
        )
        for i, totals in enumerate(rooms)
    ]
    talk = build_talk_results("t", {"en": "T"}, ["en"], sessions)
    effects, variances = [], []
    for totals in rooms:
        x1, n1 = totals["field"]["agree"], sum(totals["field"].values())
        x2, n2 = totals["belief"]["agree"], sum(totals["belief"].values())
        t1, t2 = (x1 + 1) / (n1 + 2), (x2 + 1) / (n2 + 2)
        effects.append(x1 / n1 - x2 / n2)
        variances.append(t1 * (1 - t1) / (n1 + 2) + t2 * (1 - t2) / (n2 + 2))
    assert [row.estimate for row in talk.forest] == pytest.approx(effects, abs=TOL)
    assert all(row.excluded is None and row.source == "a paper" for row in talk.forest)
    # nothing paired, in any room or in the merged answers
    assert all(
        s.shift is None and s.analysis and not s.analysis.perceived_crosstab
        for s in [*talk.sessions, talk.pooled]
    )
    if len(rooms) < stats.POOL_FROM:
        assert talk.meta is None
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = combine_effects(np.array(effects), np.array(variances), method_re="dl", use_t=True)
    assume(theirs.tau2 >= 0)
    meta = talk.meta
    assert meta is not None and meta.k == len(rooms)
    assert meta.random == pytest.approx(theirs.mean_effect_re, abs=TOL)
    wls, re_t = theirs.conf_int(use_t=True)[3], theirs.conf_int(use_t=True)[1]
    half = max(wls[1] - wls[0], re_t[1] - re_t[0]) / 2
    assert meta.hksj_ci95 == pytest.approx((meta.random - half, meta.random + half), abs=TOL)
