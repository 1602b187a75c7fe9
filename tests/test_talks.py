from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from app.db import make_engine, migrate
from app.models import Phase, PhaseKind, PhaseOption, Talk
from app.talks import TalkFileError, discover_talks, load_talk_file, sync_talks

GOOD = """
slug = "mini"
languages = ["en", "zh-Hans"]
title.en = "Mini"
title.zh-Hans = "迷你"

[[phases]]
id = "belief"
kind = "stance"
question.en = "Agree?"
question.zh-Hans = "同意吗？"
  [[phases.options]]
  id = "agree"
  label.en = "Yes"
  label.zh-Hans = "是"
  [[phases.options]]
  id = "disagree"
  label.en = "No"
  label.zh-Hans = "否"

[[phases]]
id = "revote"
kind = "revote"
of = "belief"
"""


def write(tmp_path: Path, text: str, name: str = "mini.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str) -> TalkFileError:
    with pytest.raises(TalkFileError) as info:
        load_talk_file(write(tmp_path, text))
    assert str(info.value).startswith("mini.toml")  # the message names the file
    return info.value


def test_bundled_talks_have_the_phases_the_seed_talk_asked() -> None:
    talks = {talk.slug: talk for talk in discover_talks()}
    emergence = talks["emergence"]
    assert [p.key for p in emergence.phases] == ["definition", "belief", "field", "revote"]
    assert [o.key for o in emergence.phases[0].options] == ["d1", "d2", "d3", "d4", "other"]
    for phase in emergence.phases[1:]:
        assert [o.key for o in phase.options] == ["agree", "disagree", "unsure"]
    assert emergence.phases[3].of == "belief"
    assert set(emergence.languages) == {"en", "zh-Hans"}

    scale = talks["emergence-scale"]
    field_pct = next(p for p in scale.phases if p.key == "field_pct")
    assert field_pct.kind == PhaseKind.perceived
    assert (field_pct.min_value, field_pct.max_value) == (0, 100)
    belief = next(p for p in scale.phases if p.key == "belief")
    assert len(belief.options) == 5
    assert belief.holds == ["agree", "strongly_agree"]


def test_revote_inherits_the_stance_question_and_options(tmp_path: Path) -> None:
    talk = load_talk_file(write(tmp_path, GOOD))
    revote = talk.phases[1]
    assert revote.questions == talk.phases[0].questions
    assert [o.key for o in revote.options] == ["agree", "disagree"]


@pytest.mark.parametrize(
    ("change", "phase", "problem"),
    [
        (('kind = "stance"', 'kind = "opinion"'), "belief", "unknown kind 'opinion'"),
        (('id = "revote"', 'id = "belief"'), "belief", "duplicate phase id"),
        (('of = "belief"', 'of = "beleif"'), "revote", "'beleif', which is not an earlier stance"),
        (('question.zh-Hans = "同意吗？"\n', ""), "belief", "missing the translation for zh-Hans"),
        (('label.zh-Hans = "否"\n', ""), "belief", "option 'disagree' 'label' is missing"),
        (('id = "disagree"', 'id = "agree"'), "belief", "duplicate option id 'agree'"),
        (
            ('kind = "revote"', 'kind = "revote"\ncolour = "red"'),
            "revote",
            "unknown field 'colour'",
        ),
        (('of = "belief"', ""), "revote", "needs 'of'"),
        (('kind = "stance"', 'kind = "stance"\nholds = ["maybe"]'), "belief", "'holds' must list"),
    ],
)
def test_validation_errors_name_the_file_the_phase_and_the_problem(
    tmp_path: Path, change: tuple[str, str], phase: str, problem: str
) -> None:
    old, new = change
    assert old in GOOD
    error = error_for(tmp_path, GOOD.replace(old, new, 1))
    assert error.phase == phase
    assert f"phase '{phase}'" in str(error)
    assert problem in str(error)


def test_invalid_toml_is_reported_with_the_file(tmp_path: Path) -> None:
    assert "not valid TOML" in str(error_for(tmp_path, 'slug = "mini\n'))


def test_a_talk_without_phases_or_slug_is_refused(tmp_path: Path) -> None:
    head = GOOD.split("[[phases]]")[0]
    assert "at least one [[phases]]" in str(error_for(tmp_path, head))
    assert "'slug'" in str(error_for(tmp_path, GOOD.replace('slug = "mini"', 'slug = "Mini Talk"')))


def test_a_range_belongs_only_to_a_perceived_phase(tmp_path: Path) -> None:
    text = GOOD.replace('kind = "stance"', 'kind = "stance"\nrange = [0, 100]')
    error = error_for(tmp_path, text)
    assert error.phase == "belief" and "only for perceived" in str(error)


def test_a_perceived_phase_must_offer_the_stance_options(tmp_path: Path) -> None:
    text = (
        GOOD
        + """
[[phases]]
id = "field"
kind = "perceived"
of = "belief"
question.en = "Others?"
question.zh-Hans = "别人？"
  [[phases.options]]
  id = "yes"
  label.en = "Yes"
  label.zh-Hans = "是"
  [[phases.options]]
  id = "no"
  label.en = "No"
  label.zh-Hans = "否"
"""
    )
    error = error_for(tmp_path, text)
    assert error.phase == "field" and "same ids, in the same order" in str(error)


def test_two_files_with_one_slug_are_refused(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace('slug = "mini"', 'slug = "emergence"'))
    with pytest.raises(TalkFileError, match="already used"):
        discover_talks(tmp_path)


def test_a_changed_file_updates_texts_and_retires_what_it_dropped(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    first = load_talk_file(write(tmp_path, GOOD))
    with Session(engine) as db:
        sync_talks(db, [first])
    edited = GOOD.replace('label.en = "Yes"', 'label.en = "Yes, surely"').split(
        '[[phases]]\nid = "revote"'
    )[0]
    with Session(engine) as db:
        sync_talks(db, [load_talk_file(write(tmp_path, edited))])
        talk = db.exec(select(Talk).where(Talk.slug == "mini")).one()
        phases = {p.key: p for p in db.exec(select(Phase).where(Phase.talk_id == talk.id))}
        assert phases["revote"].retired and not phases["belief"].retired
        agree = db.exec(
            select(PhaseOption).where(
                PhaseOption.phase_id == phases["belief"].id, col(PhaseOption.key) == "agree"
            )
        ).one()
        assert agree.labels["en"] == "Yes, surely"
