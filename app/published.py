"""Sessions of published counts: results that arrive as totals per option per phase (another
tool, a show of hands, a publication), optionally with the revote transitions that were
published. Such a session is *unlinked*: nobody's answers are linked across phases, so it shows
the independent comparison, pools with it, and is never opened for voting. The bundled talks'
published polls (``app/talks/published/``) are loaded as such sessions at start.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlmodel import Session, col, select

from app import talkfile
from app.errors import Invalid
from app.models import (
    Phase,
    PhaseKind,
    PhaseOption,
    PollSession,
    SessionTotal,
    SessionTransition,
    Talk,
)
from app.sessions import _current_phases, create_session, get_talk, session_phases

MAX_COUNT = 10_000_000
"""The most people one published count may hold."""
Totals = Mapping[str, Mapping[str, int]]
"""Phase id -> option id -> how many chose it."""
Transitions = Mapping[str, Mapping[str, Mapping[str, int]]]
"""Revote phase id -> first answer -> answer in the revote -> how many."""


def _phase_options(db: Session, phases: Sequence[Phase]) -> dict[str, dict[str, int]]:
    """Phase key -> option key -> option row id (the phases' live options)."""
    ids = {p.id: p.key for p in phases if p.id is not None}
    out: dict[str, dict[str, int]] = {key: {} for key in ids.values()}
    for option in db.exec(
        select(PhaseOption)
        .where(col(PhaseOption.phase_id).in_(list(ids)), col(PhaseOption.retired).is_(False))
        .order_by(col(PhaseOption.position))
    ):
        assert option.id is not None
        out[ids[option.phase_id]][option.key] = option.id
    return out


def published_problems(
    phases: Sequence[Phase],
    options: Mapping[str, Mapping[str, int]],
    totals: Totals,
    transitions: Transitions,
) -> list[str]:
    """Everything wrong with an unlinked session's counts for these phases, all at once: an
    unknown phase or option, a % estimate phase (it has no options to count), a phase with no
    one counted, transitions that are not of a revote or that count more people than the totals
    have."""
    problems: list[str] = []
    by_key = {p.key: p for p in phases}
    if not any(sum(counts.values()) for counts in totals.values()):
        problems.append("give the totals of at least one phase (phase id -> option id -> count)")
    every = [c for counts in totals.values() for c in counts.values()] + [
        c for rows in transitions.values() for row in rows.values() for c in row.values()
    ]
    if any(not 0 <= c <= MAX_COUNT for c in every):
        problems.append(f"every count must be a whole number from 0 to {MAX_COUNT:,}")
    for key, counts in totals.items():
        phase = by_key.get(key)
        if phase is None:
            problems.append(f"totals: no phase '{key}' in this talk")
            continue
        if phase.min_value is not None:
            problems.append(f"totals: phase '{key}' is a % estimate; only options are counted")
            continue
        unknown = [o for o in counts if o not in options[key]]
        if unknown:
            problems.append(f"totals: phase '{key}' has no option {', '.join(map(repr, unknown))}")
    for key, rows in transitions.items():
        phase = by_key.get(key)
        if phase is None or phase.kind != PhaseKind.revote or phase.of_key not in by_key:
            problems.append(f"transitions: '{key}' is not a revote phase of this talk")
            continue
        first_key = phase.of_key
        assert first_key is not None
        for first, row in rows.items():
            if first not in options[first_key]:
                problems.append(f"transitions: phase '{first_key}' has no option '{first}'")
                continue
            unknown = [o for o in row if o not in options[key]]
            if unknown:
                problems.append(
                    f"transitions: phase '{key}' has no option {', '.join(map(repr, unknown))}"
                )
                continue
            known = totals.get(first_key, {})
            if known and sum(row.values()) > known.get(first, 0):
                problems.append(
                    f"transitions: {sum(row.values())} first answered '{first}', but the "
                    f"totals of '{first_key}' count {known.get(first, 0)}"
                )
        after = totals.get(key, {})
        if after and all(o in options[key] for row in rows.values() for o in row):
            for option in options[key]:
                moved = sum(row.get(option, 0) for row in rows.values())
                if moved > after.get(option, 0):
                    problems.append(
                        f"transitions: {moved} answered '{option}' in '{key}', but its totals "
                        f"count {after.get(option, 0)}"
                    )
    return problems


def create_unlinked_session(
    db: Session,
    *,
    talk_slug: str,
    venue: str,
    source: str,
    totals: Totals,
    transitions: Transitions | None = None,
    held_on: date | None = None,
    language: str | None = None,
    code: str | None = None,
) -> PollSession:
    """A session of published counts (another tool, a show of hands, a publication): totals
    per option per phase, and optionally the revote transitions that were published. Nobody's
    answers are linked across phases, so it shows the independent comparison and pools with
    it; it is never opened for voting (``refuse_if_ended``). All or nothing: every problem is
    reported at once (422) and nothing is written. ``code``: the join code to use if free (the
    bundled talk's published polls keep one code in every database)."""
    transitions = transitions or {}
    source = source.strip()
    if not source:
        raise Invalid(
            "an unlinked session needs its source (a citation or a link)", code="no_source"
        )
    talk = get_talk(db, talk_slug)
    phases = _current_phases(db, talk)
    options = _phase_options(db, phases)
    problems = published_problems(phases, options, totals, transitions)
    if problems:
        raise Invalid("; ".join(problems), code="bad_totals")
    poll = create_session(
        db,
        talk_slug=talk_slug,
        venue=venue,
        held_on=held_on,
        language=language,
        code=code,
        source=source,
    )
    assert poll.id is not None
    by_key = {p.key: p for p in phases}
    for key, counts in totals.items():
        for option, count in counts.items():
            if count:
                db.add(
                    SessionTotal(
                        session_id=poll.id,
                        phase_id=by_key[key].id or 0,
                        option_id=options[key][option],
                        count=count,
                    )
                )
    for key, rows in transitions.items():
        first_key = by_key[key].of_key or ""
        for first, row in rows.items():
            for then, count in row.items():
                db.add(
                    SessionTransition(
                        session_id=poll.id,
                        phase_id=by_key[key].id or 0,
                        from_option_id=options[first_key][first],
                        to_option_id=options[key][then],
                        count=count,
                    )
                )
    db.commit()
    db.refresh(poll)
    return poll


PUBLISHED_DIR = talkfile.BUNDLED_DIR / "published"
"""Published polls of the bundled talks, one file each, loaded as unlinked sessions."""


def sync_published(db: Session, directory: Path = PUBLISHED_DIR) -> list[PollSession]:
    """The bundled talks' published polls as unlinked sessions, each created once: a database
    that has an unlinked session of the talk with the same source keeps it (renamed, marked a
    rehearsal to leave it out of the pool, whatever the presenter did with it). Returns the
    sessions created."""
    created = []
    for path in sorted(directory.glob("*.toml")):
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        talk = db.exec(select(Talk).where(Talk.slug == raw["talk"])).first()
        if talk is None:
            continue
        there = db.exec(
            select(PollSession.id).where(
                PollSession.talk_id == talk.id,
                col(PollSession.unlinked).is_(True),
                PollSession.source == raw["source"],
            )
        ).first()
        if there is not None:
            continue
        created.append(
            create_unlinked_session(
                db,
                talk_slug=raw["talk"],
                venue=raw["venue"],
                source=raw["source"],
                totals=raw.get("totals", {}),
                transitions=raw.get("transitions", {}),
                held_on=raw.get("held_on"),
                language=raw.get("language"),
                code=raw.get("code"),
            )
        )
    return created


@dataclass(frozen=True)
class Published:
    """An unlinked session's counts, by phase and option key."""

    totals: dict[str, dict[str, int]]
    """Phase id -> option id -> count (every option of a phase with totals, 0 where none)."""
    transitions: dict[str, dict[str, dict[str, int]]]
    """Revote phase id -> first answer -> answer in the revote -> count (published rows only)."""


def published_counts(db: Session, poll: PollSession) -> Published:
    views = session_phases(db, poll)
    keys = {v.phase.id: v.key for v in views}
    option_keys = {o.id: o.key for v in views for o in v.options}
    totals: dict[str, dict[str, int]] = {}
    for phase_id, option_id, count in db.exec(
        select(SessionTotal.phase_id, SessionTotal.option_id, SessionTotal.count).where(
            SessionTotal.session_id == poll.id
        )
    ):
        totals.setdefault(keys[phase_id], {})[option_keys[option_id]] = count
    for view in views:
        if view.key in totals:
            totals[view.key] = {o.key: totals[view.key].get(o.key, 0) for o in view.options}
    transitions: dict[str, dict[str, dict[str, int]]] = {}
    for phase_id, first, then, count in db.exec(
        select(
            SessionTransition.phase_id,
            SessionTransition.from_option_id,
            SessionTransition.to_option_id,
            SessionTransition.count,
        )
        .where(SessionTransition.session_id == poll.id)
        .order_by(col(SessionTransition.id))
    ):
        row = transitions.setdefault(keys[phase_id], {}).setdefault(option_keys[first], {})
        row[option_keys[then]] = count
    return Published(totals, transitions)
