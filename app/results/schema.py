"""The results JSON of a session and of a talk (shape in the HTTP contract, "Results shape")."""

from __future__ import annotations

from typing import Any

from app import stats
from app.results.views import GapResult, PhaseResult, SessionResults, ShiftResult, TalkResults


def _pair(interval: tuple[float, float] | None) -> list[float] | None:
    return [interval[0], interval[1]] if interval is not None else None


def _difference(diff: stats.Difference | None) -> dict[str, Any] | None:
    if diff is None:
        return None
    return {
        "difference": diff.estimate,
        "ci95": _pair(diff.ci95),
        "method": diff.method,
        "n": diff.n,
    }


def phase_json(result: PhaseResult) -> dict[str, Any]:
    base: dict[str, Any] = {"kind": result.kind.value, "n": result.n}
    if result.is_estimate:
        base.update(
            {
                "mean": result.mean,
                "median": result.median,
                "ci95": _pair(result.ci95),
                "ci95_method": "student_t",
                "range": [result.min_value, result.max_value],
                "histogram": [
                    {"lower": b.lower, "upper": b.upper, "count": b.count} for b in result.histogram
                ],
                "actual_share": result.actual_share,
            }
        )
        return base
    base.update(
        {
            "counts": {o.key: o.count for o in result.options},
            "shares": {o.key: o.share for o in result.options},
            "ci95": {o.key: _pair(o.ci95) for o in result.options},
            "ci95_method": "wilson",
        }
    )
    return base


def gap_json(gap: GapResult | None) -> dict[str, Any] | None:
    if gap is None:
        return None
    g = gap.stats
    out: dict[str, Any] = {
        "stance": g.stance,
        "perceived": g.perceived,
        "option": g.option,
        "holds": list(g.holds),
        "kind": g.kind,
        "self_n": g.self_n,
        "self_count": g.self_count,
        "self_share": g.self_share,
        "self_ci95": _pair(g.self_ci95),
        "perceived_n": g.perceived_n,
        "perceived_count": g.perceived_count,
        "perceived_share": g.perceived_share,
        "perceived_ci95": _pair(g.perceived_ci95),
        "difference": g.difference.estimate,
        "ci95": _pair(g.difference.ci95),
        "method": g.difference.method,
        "paired": _difference(g.paired),
        "options": {
            o.key: {
                "self_count": o.self_count,
                "self_share": o.self_share,
                "self_ci95": _pair(o.self_ci95),
                "perceived_count": o.perceived_count,
                "perceived_share": o.perceived_share,
                "perceived_ci95": _pair(o.perceived_ci95),
            }
            for o in g.options
        },
    }
    if g.kind == "estimate":
        fc = g.false_consensus
        out["false_consensus"] = (
            {
                "holders": {"n": fc.holders_n, "mean": fc.holders_mean},
                "others": {"n": fc.others_n, "mean": fc.others_mean},
                "difference": _difference(fc.difference),
            }
            if fc
            else None
        )
        errors = stats.histogram([e * 100 for e in g.errors], -100, 100, 20)
        out["errors_histogram"] = [
            {"lower": b.lower, "upper": b.upper, "count": b.count} for b in errors
        ]
    return out


def shift_json(shift: ShiftResult | None) -> dict[str, Any] | None:
    if shift is None:
        return None
    s = shift.stats
    return {
        "from": s.from_phase,
        "to": s.to_phase,
        "n_paired": s.n_paired,
        "dropped": {"only_from": s.only_first, "only_to": s.only_second, "total": s.dropped},
        "matrix": {a: {b: s.cell(a, b) for b in s.options} for a in s.options},
        "row_shares": {a: {b: s.row_share(a, b) for b in s.options} for a in s.options},
        "changed_share": {a: s.changed_share(a) for a in s.options},
        "changed": s.changed,
        "test": s.test.as_dict() if s.test else None,
        "symmetry": s.symmetry.as_dict() if s.symmetry else None,
    }


def results_json(results: SessionResults) -> dict[str, Any]:
    analysis = results.analysis
    out: dict[str, Any] = {
        "phases": {p.key: phase_json(p) for p in results.phases},
        "gap": gap_json(results.gap),
        "shift": shift_json(results.shift),
        "crosstabs": {},
        "surprisingly_popular": None,
        "too_few_below": stats.MIN_CELL,
    }
    if analysis is not None:
        if analysis.perceived_crosstab is not None:
            tab = analysis.perceived_crosstab.as_dict()
            if analysis.ignorance is not None:
                tab["non_holders"] = analysis.ignorance.non_holders
                tab["non_holders_perceiving_majority"] = analysis.ignorance.perceive_majority
                tab["non_holders_perceiving_majority_share"] = analysis.ignorance.share
            out["crosstabs"]["stance_perceived"] = tab
        if analysis.definition_crosstab is not None:
            out["crosstabs"]["definition_stance"] = analysis.definition_crosstab.as_dict()
        sp = analysis.surprisingly_popular
        if sp is not None:
            out["surprisingly_popular"] = {
                "stance": sp.stance,
                "perceived": sp.perceived,
                "holds": list(sp.holds),
                "actual_share": sp.actual,
                "mean_predicted_share": sp.predicted,
                "margin": sp.margin,
                "answer": sp.answer,
            }
    return out


def session_results_json(results: SessionResults) -> dict[str, Any]:
    return {
        "session": {
            "code": results.code,
            "venue": results.venue,
            "held_on": results.held_on.isoformat() if results.held_on else None,
            "language": results.language,
            "talk": results.talk,
        },
        **results_json(results),
    }


def talk_results_json(results: TalkResults) -> dict[str, Any]:
    pooled = results_json(results.pooled)
    return {
        "talk": {"slug": results.slug, "title": results.titles, "languages": results.languages},
        **pooled,
        "pooled": pooled,
        "meta": {
            "gap": {
                **(results.meta.as_dict() if results.meta else {"k": 0}),
                "sessions": [
                    {
                        "code": row.code,
                        "venue": row.venue,
                        "difference": row.estimate,
                        "ci95": list(row.ci95),
                        "n": row.n,
                        "weight": row.weight,
                    }
                    for row in results.forest
                ],
            }
        },
        "sessions": [
            {
                "code": s.code,
                "venue": s.venue,
                "held_on": s.held_on.isoformat() if s.held_on else None,
                "language": s.language,
                **results_json(s),
            }
            for s in results.sessions
        ],
    }
