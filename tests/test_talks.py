from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from sqlmodel import Session, select

from app.db import make_engine, migrate
from app.models import Phase, PhaseKind, Talk, TalkVersion
from app.sessions import create_session, get_session, load_content
from app.talkcheck import TalkFileError
from app.talkfile import (
    check_talk_files,
    discover_talks,
    load_talk_file,
    parse_talk,
    talk_to_dict,
    talk_to_toml,
)
from app.talks import poolable_phases, sync_talks

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


def test_bundled_options_never_point_at_another_option_by_its_id() -> None:
    # phones and the projector number the options 1-5; an id like "d3" is nowhere to be seen
    for talk in discover_talks():
        for phase in talk.phases:
            ids = [o.key for o in phase.options if re.fullmatch(r"[a-z]+\d+", o.key)]
            for option in phase.options:
                for lang, label in option.labels.items():
                    named = [i for i in ids if re.search(rf"\b{i}\b", label)]
                    assert not named, (talk.slug, phase.key, option.key, lang, label)


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


REVOTE_OPTIONS = """
  [[phases.options]]
  id = "agree"
  label.en = "Yes"
  label.zh-Hans = "是"
  [[phases.options]]
  id = "disagree"
  label.en = "No"
  label.zh-Hans = "否"
"""


def test_a_revote_may_list_exactly_its_stances_options(tmp_path: Path) -> None:
    talk = load_talk_file(write(tmp_path, GOOD + REVOTE_OPTIONS))
    assert talk.phases[1].options == talk.phases[0].options
    assert talk.digest == load_talk_file(write(tmp_path, GOOD, "again.toml")).digest


@pytest.mark.parametrize(
    ("change", "option", "problems"),
    [
        (
            ('label.en = "Yes"', 'label.en = "Yes, now"'),
            "agree",
            ["option 'agree' must have the label it has in stance phase 'belief'", "'Yes, now'"],
        ),
        (
            ('label.zh-Hans = "否"', 'label.zh-Hans = "不"'),
            "disagree",
            ["option 'disagree'", "in zh-Hans: '不' here, '否' there"],
        ),
        (
            ('id = "disagree"', 'id = "no"'),
            None,
            ["same ids, in the same order, as stance phase 'belief'", "leave 'options' out"],
        ),
    ],
)
def test_a_revote_whose_options_differ_from_its_stance_is_refused(
    tmp_path: Path, change: tuple[str, str], option: str | None, problems: list[str]
) -> None:
    """The before/after comparison compares one question with itself: a revote reworded apart
    from its stance is named, with what differs, rather than stored."""
    old, new = change
    error = error_for(tmp_path, GOOD + REVOTE_OPTIONS.replace(old, new, 1))
    assert len(error.problems) == 1
    problem = error.problems[0]
    assert problem.phase == "revote" and problem.option == option
    assert problem.field == ("label" if option else "options")
    for text in problems:
        assert text in str(error)
    assert str(error).startswith("mini.toml: phase 'revote': ")


def test_a_revote_without_a_stance_is_told_only_that(tmp_path: Path) -> None:
    error = error_for(tmp_path, GOOD.replace('of = "belief"', 'of = "nothing"'))
    assert [p.field for p in error.problems] == ["of"]  # not also "needs two options"


def test_two_files_with_one_slug_are_refused(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace('slug = "mini"', 'slug = "emergence"'))
    with pytest.raises(TalkFileError, match="already used"):
        discover_talks(tmp_path)


def test_a_changed_file_makes_a_new_version_and_sessions_keep_theirs(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    with Session(engine) as db:
        sync_talks(db, [load_talk_file(write(tmp_path, GOOD))])
        old_code = create_session(db, talk_slug="mini", venue="Before").code
        sync_talks(db, [load_talk_file(write(tmp_path, GOOD))])  # unchanged: no new version
        assert db.exec(select(Talk).where(Talk.slug == "mini")).one().version == 1
    edited = GOOD.replace('question.en = "Agree?"', 'question.en = "Agree now?"').split(
        '[[phases]]\nid = "revote"'
    )[0]
    with Session(engine) as db:
        sync_talks(db, [load_talk_file(write(tmp_path, edited))])
        talk = db.exec(select(Talk).where(Talk.slug == "mini")).one()
        assert talk.version == 2
        new = create_session(db, talk_slug="mini", venue="After")
        old_content = load_content(db, get_session(db, old_code))
        new_content = load_content(db, new)
        assert [p.key for p in old_content.phases] == ["belief", "revote"]
        assert old_content.phases[0].questions["en"] == "Agree?"
        assert [p.key for p in new_content.phases] == ["belief"]
        assert new_content.phases[0].questions["en"] == "Agree now?"
        versions = db.exec(select(TalkVersion).where(TalkVersion.talk_id == talk.id)).all()
        assert sorted(v.number for v in versions) == [1, 2]
        assert len(db.exec(select(Phase).where(Phase.talk_id == talk.id)).all()) == 3


def test_every_problem_is_reported_at_once_with_phase_option_and_field(tmp_path: Path) -> None:
    text = (
        GOOD.replace('kind = "revote"', 'kind = "revote"\ncolour = "red"')
        .replace('label.zh-Hans = "否"\n', "")
        .replace('question.en = "Agree?"', 'question.en = ""')
    )
    error = error_for(tmp_path, text)
    found = {(p.phase, p.option, p.field, p.message.split(" ")[0]) for p in error.problems}
    assert ("belief", None, "question", "'question'") in found
    assert ("belief", "disagree", "label", "option") in found
    assert ("revote", None, "talk", "unknown") in found or any(
        p.phase == "revote" and "colour" in p.message for p in error.problems
    )
    assert len(error.problems) == 3
    assert str(error).count("mini.toml") == 3  # one line per problem, each naming the file


def test_a_file_reusing_a_bundled_slug_is_named_with_every_other_problem(tmp_path: Path) -> None:
    clash = write(tmp_path, GOOD.replace('slug = "mini"', 'slug = "emergence"'), "clash.toml")
    broken = write(tmp_path, GOOD.replace('kind = "stance"', 'kind = "opinion"'), "broken.toml")
    fine = write(tmp_path, GOOD, "fine.toml")
    checked = {c.path.name: c for c in check_talk_files([clash, broken, fine])}
    assert checked["clash.toml"].error is not None
    assert "already used by the bundled talk emergence.toml" in str(checked["clash.toml"].error)
    assert checked["broken.toml"].error is not None
    assert "unknown kind 'opinion'" in str(checked["broken.toml"].error)
    assert checked["fine.toml"].talk is not None


def test_a_talk_exported_as_toml_reads_back_the_same() -> None:
    for talk in discover_talks():
        content = talk_to_dict(talk)
        exported = tomllib.loads(talk_to_toml(content))
        again = parse_talk(exported, source="again")
        assert again.digest == talk.digest
        assert talk_to_dict(again) == content
        # A revote is written without options: it takes its stance's, so they cannot drift.
        revote = next(p for p in exported["phases"] if p["kind"] == "revote")
        assert "options" not in revote and content["phases"][3]["options"]


def _version(question: str, labels: tuple[str, str] = ("Yes", "No")) -> dict[str, object]:
    return {
        "phases": [
            {
                "id": "belief",
                "kind": "stance",
                "question": {"en": question},
                "holds": ["agree"],
                "options": [
                    {"id": "agree", "label": {"en": labels[0]}},
                    {"id": "disagree", "label": {"en": labels[1]}},
                ],
            },
            {
                "id": "field",
                "kind": "perceived",
                "of": "belief",
                "question": {"en": "Others?"},
                "range": [0, 100],
            },
        ]
    }


def test_phases_pool_only_across_versions_that_ask_them_alike() -> None:
    versions = {
        1: _version("Agree?"),
        2: _version("Agree?", ("Yes", "Not at all")),
        3: _version("Agree?", ("Yes", "Not at all")),
    }
    pools = poolable_phases(versions)
    assert pools["belief"] == (2, 3)  # version 1 worded an option differently
    assert pools["field"] == (1, 2, 3)
    dropped = {**versions, 4: {"phases": [_version("Agree?")["phases"][1]]}}
    assert poolable_phases(dropped)["belief"] == (2, 3)  # the newest version that has it
