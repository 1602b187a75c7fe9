"""Languages: every interface message and every bundled talk text exists in English and Chinese,
templates only use messages that exist, and a Chinese phone sees no English interface text."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app import i18n
from app.db import ROOT
from app.models import Phase, PhaseOption, Talk
from tests.conftest import AUTH, phase_action

TEMPLATES = ROOT / "templates"
MESSAGE_CALL = re.compile(r"""\bt\(\s*["'](\w+)["']\s*[,)]""")  # literal ids only


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_message_has_every_language_with_the_same_placeholders() -> None:
    messages = i18n.messages()
    assert messages, "no messages loaded"
    for key in messages:
        for lang in i18n.LANGUAGES:
            assert all(text.strip() for text in i18n.forms(key, lang)), f"{key} is empty in {lang}"
        names = {lang: [placeholders(t) for t in i18n.forms(key, lang)] for lang in i18n.LANGUAGES}
        every = [n for lang in i18n.LANGUAGES for n in names[lang]]
        assert all(n == every[0] for n in every), key


@pytest.mark.parametrize(
    ("lang", "n", "expected"),
    [
        ("en", 1, "1 session pooled, with"),
        ("en", 2, "2 sessions pooled, with"),
        ("en", 0, "0 sessions pooled, with"),
        ("zh-Hans", 1, "1 场"),
    ],
)
def test_count_phrases_take_the_plural_form_of_their_language(
    lang: str, n: int, expected: str
) -> None:
    text = i18n.translate(
        lang, "res_forest_note", k=n, i2="0", tau2="0", q="1", df=n - 1, interval="(z)"
    )
    if lang == "en":
        assert text.startswith(expected), text
    assert i18n.translate(lang, "res_participants", n=n).startswith(str(n))
    assert i18n.translate("en", "res_participants", n=1) == "1 participant"
    assert i18n.translate("en", "res_participants", n=3) == "3 participants"
    assert i18n.translate("en", "pres_phases_n", n=1) == "1 phase"
    assert i18n.translate("zh-Hans", "res_sessions_n", n=1) == "1 场"


def test_audience_messages_carry_their_prefix() -> None:
    text = (ROOT / "app" / "locales" / "audience.toml").read_text(encoding="utf-8")
    keys = re.findall(r"^\[([^\]]+)\]", text, flags=re.MULTILINE)
    assert keys and all(key.startswith("aud_") for key in keys)


def template_files() -> list[Path]:
    return sorted(TEMPLATES.rglob("*.html"))


@pytest.mark.parametrize("path", template_files(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_templates_only_use_messages_that_exist(path: Path) -> None:
    used = set(MESSAGE_CALL.findall(path.read_text(encoding="utf-8")))
    missing = used - set(i18n.messages())
    assert not missing, f"{path.name} uses unknown messages: {sorted(missing)}"


@pytest.mark.parametrize(
    ("header", "cookie", "expected"),
    [
        (None, None, "en"),
        ("en-GB,en;q=0.9", None, "en"),
        ("zh-CN,zh;q=0.9", None, "zh-Hans"),
        ("zh-Hans-CN", None, "zh-Hans"),
        ("fr-FR,fr;q=0.9,zh;q=0.8,en;q=0.5", None, "zh-Hans"),
        ("fr-FR,de;q=0.5", None, "en"),
        ("zh-CN", "en", "en"),
        ("en", "zh-Hans", "zh-Hans"),
        ("zh-CN", "xx", "zh-Hans"),
    ],
)
def test_negotiation(header: str | None, cookie: str | None, expected: str) -> None:
    assert i18n.negotiate(header, cookie) == expected


@pytest.mark.parametrize(
    ("texts", "lang", "first", "expected"),
    [
        ({"en": "Title", "zh-Hans": "标题"}, "zh-Hans", (), "标题"),
        # a language the talk lacks: its first text, not a blank on the phone
        ({"en": "Title", "zh-Hans": "标题"}, "de", (), "Title"),
        ({"zh-Hans": "标题", "en": "Title"}, "de", ("en", "zh-Hans"), "Title"),
        # a text left empty in the editor shows another language's
        ({"en": "", "zh-Hans": "标题"}, "en", (), "标题"),
        ({"en": ""}, "en", (), ""),
        ({}, "en", ("en",), ""),
    ],
)
def test_a_talk_text_falls_back_to_the_first_there_is(
    texts: dict[str, str], lang: str, first: tuple[str, ...], expected: str
) -> None:
    assert i18n.text_in(texts, lang, first) == expected


def test_bundled_talks_have_every_text_in_both_languages(client: TestClient) -> None:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with Session(engine) as db:
        talks = {talk.slug: talk for talk in db.exec(select(Talk))}
        assert {"emergence", "emergence-scale"} <= set(talks)
        for slug in ("emergence", "emergence-scale"):
            talk = talks[slug]
            assert set(talk.languages) == set(i18n.LANGUAGES)
            texts = [talk.titles]
            for phase in db.exec(select(Phase).where(Phase.talk_id == talk.id)):
                texts.append(phase.questions)
                for option in db.exec(select(PhaseOption).where(PhaseOption.phase_id == phase.id)):
                    texts.append(option.labels)
            for text in texts:
                assert all(text.get(lang, "").strip() for lang in i18n.LANGUAGES), text
                assert text["en"] != text["zh-Hans"]


def english_texts() -> list[str]:
    """The English interface texts a Chinese page must not show (placeholders cut out)."""
    texts = []
    for key in i18n.messages():
        if i18n.forms(key, "en") == i18n.forms(key, "zh-Hans"):
            continue  # the same in both (the app's name)
        for text in i18n.forms(key, "en"):
            for part in re.split(r"\{[^}]*\}", text):
                if len(part.strip()) >= 4:
                    texts.append(part.strip())
    return texts


def visible_text(html: str) -> str:
    soup = BeautifulSoup(html, "html.parser")
    for hidden in soup(["script", "style"]):
        hidden.decompose()
    parts = [soup.get_text(" ")]
    parts += [str(el.get("aria-label")) for el in soup.select("[aria-label]")]
    return " ".join(" ".join(parts).split())


def test_a_chinese_phone_sees_no_english_interface_text(client: TestClient) -> None:
    zh = {"Accept-Language": "zh-CN"}
    # A session in Chinese (the phones' default; the landing page follows Accept-Language).
    created = client.post(
        "/api/v1/sessions",
        json={"talk": "emergence-scale", "venue": "Beijing", "language": "zh-Hans"},
        headers=AUTH,
    )
    code = created.json()["code"]
    pages = [client.get("/", headers=zh), client.get("/?code=nope99", headers=zh)]
    pages.append(client.get(f"/j/{code}", headers=zh))  # waiting
    phase_action(client, code, "belief", "open", seconds=90)
    phase_action(client, code, "field_pct", "open")
    pages.append(client.get(f"/j/{code}", headers=zh))
    client.post(f"/api/v1/sessions/{code}/votes", json={"phase": "belief", "choice": "agree"})
    pages.append(client.get(f"/j/{code}", params={"phase": "belief"}, headers=zh))
    pages.append(client.get(f"/j/{code}", params={"phase": "field_pct"}, headers=zh))
    pages.append(
        client.get(f"/j/{code}", params={"phase": "field_pct", "error": "out_of_range"}, headers=zh)
    )
    english = english_texts()
    for response in pages:
        assert BeautifulSoup(response.text, "html.parser").html["lang"] == "zh-Hans"
        shown = visible_text(response.text)
        leaked = [text for text in english if text in shown]
        assert not leaked, (response.url, leaked)
