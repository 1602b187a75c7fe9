"""Talks as stored: every change of a talk makes a new *version* (``app.models.TalkVersion``):
its phase and option rows are written once and never changed, and a session keeps the version it
was created with. Talks made in the editor or sent to the API are created and changed here; the
talk files are synchronised at start; and the versions whose answers to a phase may be pooled
are named here. Reading and checking a talk is ``app.talkfile``'s.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.errors import Conflict, Invalid, NotFound
from app.models import Phase, PhaseOption, PollSession, Talk, TalkVersion
from app.talkcheck import Problem, TalkDef, TalkFileError
from app.talkfile import is_bundled, parse_talk, talk_problems, talk_to_dict

# --------------------------------------------------------------------------- storage


def sync_talks(db: Session, talks: list[TalkDef]) -> None:
    """Store the talk files: a new file makes a talk (version 1); a changed file makes a new
    version, which new sessions use. Sessions keep the version they were created with. A file
    that claims the slug of a talk made in the editor is refused. Commits once."""
    for talk in talks:
        row = db.exec(select(Talk).where(Talk.slug == talk.slug)).first()
        if row is not None and not row.source:
            raise TalkFileError(
                Path(talk.source).name or talk.slug,
                f"slug {talk.slug!r} is already used by a talk made in the editor",
            )
        if row is not None and row.digest == talk.digest:
            if row.source != talk.source:  # the same file, moved: remember where it is now
                row.source = talk.source
                db.add(row)
            continue
        store_version(db, talk, row=row, source=talk.source)
    db.commit()


def store_version(
    db: Session, talk: TalkDef, *, row: Talk | None = None, source: str = ""
) -> TalkVersion:
    """A new version of the talk (the talk itself when ``row`` is None), its phase and option
    rows written once, made current. Does not commit."""
    if row is None:
        row = Talk(slug=talk.slug, titles={}, languages=[], version=0)
    number = (row.version or 0) + 1 if row.id is not None else 1
    row.titles = dict(talk.titles)
    row.languages = list(talk.languages)
    row.source = source
    row.digest = talk.digest
    row.version = number
    db.add(row)
    db.flush()
    assert row.id is not None
    version = TalkVersion(
        talk_id=row.id,
        number=number,
        content=talk_to_dict(talk),
        digest=talk.digest,
        source=source,
    )
    db.add(version)
    db.flush()
    assert version.id is not None
    for position, phase_def in enumerate(talk.phases):
        phase = Phase(
            talk_id=row.id,
            version_id=version.id,
            key=phase_def.key,
            position=position,
            kind=phase_def.kind,
            questions=dict(phase_def.questions),
            of_key=phase_def.of,
            holds=list(phase_def.holds),
            min_value=phase_def.min_value,
            max_value=phase_def.max_value,
            answer=phase_def.answer,
            settings=dict(phase_def.settings) or None,
        )
        db.add(phase)
        db.flush()
        assert phase.id is not None
        for option_position, option in enumerate(phase_def.options):
            db.add(
                PhaseOption(
                    phase_id=phase.id,
                    key=option.key,
                    position=option_position,
                    labels=dict(option.labels),
                )
            )
    db.flush()
    return version


def current_version(db: Session, talk: Talk) -> TalkVersion:
    found = db.exec(
        select(TalkVersion).where(
            TalkVersion.talk_id == talk.id, TalkVersion.number == talk.version
        )
    ).first()
    assert found is not None, f"talk {talk.slug} has no version {talk.version}"
    return found


def talk_kind(talk: Talk) -> str:
    """``bundled`` (ships with the app), ``file`` (from the talks folder) or ``editor``."""
    if is_bundled(talk.source):
        return "bundled"
    return "file" if talk.source else "editor"


def find_talk(db: Session, slug: str) -> Talk:
    talk = db.exec(select(Talk).where(Talk.slug == slug)).first()
    if talk is None:
        raise NotFound(f"no talk '{slug}'", code="unknown_talk")
    return talk


class TalkInvalid(Invalid):
    """A talk from the API or the editor with problems: all of them, nothing stored."""

    code = "invalid_talk"

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(f"the talk has {len(problems)} problem(s)")
        self.problems = list(problems)


def _checked(raw: Any) -> TalkDef:
    problems = talk_problems(raw)
    if problems:
        raise TalkInvalid(problems)
    return parse_talk(raw, source="the talk")


def create_talk(db: Session, raw: Any) -> TalkVersion:
    """A new talk from the file format's structure (422 with every problem; 409 for a slug in
    use). Commits."""
    talk = _checked(raw)
    taken = Conflict(f"the slug '{talk.slug}' is already used by a talk", code="slug_taken")
    if db.exec(select(Talk).where(Talk.slug == talk.slug)).first() is not None:
        raise taken
    try:
        version = store_version(db, talk)
        db.commit()
    except IntegrityError:  # the same slug, created at the same moment (a double click)
        db.rollback()
        raise taken from None
    return version


def _editable(talk: Talk) -> None:
    kind = talk_kind(talk)
    if kind != "editor":
        where = "ships with beliefgap" if kind == "bundled" else "is read from a talk file"
        raise Conflict(
            f"talk '{talk.slug}' {where} and cannot be edited here; copy it "
            f"(POST /api/v1/talks/{talk.slug}/copy with a new slug) and edit the copy",
            code="talk_read_only",
        )


def update_talk(db: Session, slug: str, raw: Any) -> TalkVersion:
    """A new version of an editor-made talk; the current one stays when the new one has
    problems (422) and when nothing changed. Commits."""
    row = find_talk(db, slug)
    _editable(row)
    if isinstance(raw, dict) and raw.get("slug") is None:
        raw = {**raw, "slug": slug}
    problems = talk_problems(raw)
    if isinstance(raw, dict) and raw.get("slug") != slug:
        problems.append(
            Problem(
                "the slug of a talk cannot change; copy the talk to give it another one",
                ("slug",),
                code="slug_fixed",
            )
        )
    if problems:
        raise TalkInvalid(problems)
    talk = parse_talk(raw, source="the talk")
    if talk.digest == row.digest:
        return current_version(db, row)
    try:
        version = store_version(db, talk, row=row)
        db.commit()
    except IntegrityError:  # another save made the same version number first
        db.rollback()
        raise Conflict(
            f"talk '{slug}' was saved by someone else at the same moment; reload it and save again",
            code="talk_changed",
        ) from None
    return version


def copy_talk(db: Session, slug: str, new_slug: str) -> TalkVersion:
    """An editable copy of any talk's current version under a new slug. Commits."""
    row = find_talk(db, slug)
    content = dict(current_version(db, row).content)
    content["slug"] = new_slug
    return create_talk(db, content)


def version_of(db: Session, poll: PollSession) -> TalkVersion:
    version = db.get(TalkVersion, poll.version_id)
    assert version is not None
    return version


# --------------------------------------------------------------------------- pooling


def _phase_signature(phase: Mapping[str, Any]) -> str:
    """What a phase asks: its kind, question, options (ids and labels, in order), what it is
    ``of``, what ``holds`` the view and its range. Equal signatures: the same question."""
    return json.dumps(
        {
            "kind": phase.get("kind"),
            "question": phase.get("question"),
            "options": phase.get("options") or [],
            "of": phase.get("of"),
            "holds": phase.get("holds") or [],
            "range": phase.get("range"),
        },
        sort_keys=True,
        ensure_ascii=False,
    )


def poolable_phases(versions: Mapping[int, Mapping[str, Any]]) -> dict[str, tuple[int, ...]]:
    """Which versions' answers to each phase may be pooled: for every phase id, the newest
    version that has it and every other version where it asks the very same question with the
    very same options (any language's wording counts). ``versions`` maps version numbers to
    their content (``talk_to_dict``'s structure). Pure."""
    signatures: dict[str, dict[int, str]] = {}
    for number, content in versions.items():
        for phase in content.get("phases", []):
            signatures.setdefault(str(phase.get("id")), {})[number] = _phase_signature(phase)
    out: dict[str, tuple[int, ...]] = {}
    for key, by_version in signatures.items():
        newest = max(by_version)
        out[key] = tuple(sorted(n for n, sig in by_version.items() if sig == by_version[newest]))
    return out


def existing_versions(db: Session, talk: Talk) -> list[TalkVersion]:
    return list(
        db.exec(
            select(TalkVersion)
            .where(TalkVersion.talk_id == talk.id)
            .order_by(col(TalkVersion.number))
        )
    )
