"""What a session's (or a talk's) answers add up to, for pages, the API, live updates and exports.

- ``gather``: reading answers from the database (and the one place that chooses which sessions
  of a talk are pooled, ``sessions_to_pool``);
- ``views``: the view models pages and charts are drawn from, built without a database;
- ``schema``: the results JSON.

The statistics themselves are in ``app.stats``; what each one means and claims is in
docs/methods.md.
"""

from app.results.gather import (
    info_from_view,
    phase_results,
    session_results,
    sessions_to_pool,
    talk_results,
)
from app.results.schema import (
    gap_json,
    phase_json,
    results_json,
    session_results_json,
    session_results_model,
    shift_json,
    talk_results_json,
    talk_results_model,
)
from app.results.views import (
    ForestRow,
    GapResult,
    OptionResult,
    PhaseInfo,
    PhaseResult,
    SessionMeta,
    SessionResults,
    ShiftResult,
    TalkResults,
    build_session_results,
    build_talk_results,
    make_phase_result,
    pick,
)

__all__ = [
    "ForestRow",
    "GapResult",
    "OptionResult",
    "PhaseInfo",
    "PhaseResult",
    "SessionMeta",
    "SessionResults",
    "ShiftResult",
    "TalkResults",
    "build_session_results",
    "build_talk_results",
    "gap_json",
    "info_from_view",
    "make_phase_result",
    "phase_json",
    "phase_results",
    "pick",
    "results_json",
    "session_results",
    "session_results_json",
    "session_results_model",
    "sessions_to_pool",
    "shift_json",
    "talk_results",
    "talk_results_json",
    "talk_results_model",
]
