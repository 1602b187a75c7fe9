"""The talk editor on the dashboard, driven through its forms (no browser): the template, the
checks as you type, the buttons, saving a talk and a new version, copies of bundled talks."""

from __future__ import annotations

import re

from bs4 import BeautifulSoup
from fastapi.testclient import TestClient

from app.editor import talk_from_form
from tests.conftest import AUTH, log_in


def login(client: TestClient) -> None:
    log_in(client)


def form_of(html: str) -> dict[str, str]:
    """The editor form's fields as a browser would send them (first value, ticked boxes,
    selected options)."""
    form = html[
        html.index('<form id="ed-form"') : html.index("</form>", html.index('id="ed-form"'))
    ]
    fields: dict[str, str] = {}
    for tag in re.findall(r"<input[^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag)
        if not name:
            continue
        kind = re.search(r'type="([^"]+)"', tag)
        if kind and kind.group(1) == "checkbox" and "checked" not in tag:
            continue
        value = re.search(r'value="([^"]*)"', tag)
        fields.setdefault(name.group(1), _unescape(value.group(1)) if value else "")
    for name, body in re.findall(r'<textarea name="([^"]+)"[^>]*>(.*?)</textarea>', form, re.S):
        fields[name] = _unescape(body)
    for name, body in re.findall(r'<select name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]*)"[^>]*selected', body)
        first = re.search(r'<option value="([^"]*)"', body)
        fields[name] = (chosen or first).group(1) if (chosen or first) else ""  # type: ignore[union-attr]
    return fields


def _unescape(text: str) -> str:
    return (
        text.replace("&#34;", '"')
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
    )


def test_the_editor_needs_the_presenter(client: TestClient) -> None:
    response = client.get("/presenter/talks/new", follow_redirects=False)
    assert response.status_code == 303 and "/presenter/login" in response.headers["location"]
    check = client.post("/presenter/talks/editor/check", data={}, follow_redirects=False)
    assert check.status_code in (303, 403)


def test_a_talk_from_the_template_is_checked_saved_and_run(client: TestClient) -> None:
    login(client)
    assert "/presenter/talks/new" in client.get("/presenter").text
    start = client.get("/presenter/talks/new")
    assert start.status_code == 200 and "emergence" in start.text
    page = client.get("/presenter/talks/new/edit", params={"slug": "", "perceived": "estimate"})
    assert page.status_code == 200
    fields = form_of(page.text)
    talk = talk_from_form(fields)
    assert [p["kind"] for p in talk["phases"]] == ["choice", "stance", "perceived", "revote"]
    assert talk["phases"][2]["range"] == [0, 100]

    # As you type: the empty slug and an emptied question are named next to their fields.
    fields["phases.1.question.zh-Hans"] = ""
    check = client.post("/presenter/talks/editor/check", data=fields)
    assert check.status_code == 200
    assert re.search(r'id="p-slug" hx-swap-oob="true"><span>Use lower-case letters', check.text)
    assert re.search(r'id="p-phases-1-question-zh-Hans" hx-swap-oob="true"><span>', check.text)
    assert 'id="p-phases-0-id" hx-swap-oob="true"></p>' in check.text  # cleared
    assert "2 problems" in check.text
    assert 'class="ed-phone"' in check.text  # the preview of the selected phase
    chinese = client.post(
        "/presenter/talks/editor/check", data=fields, headers={"Accept-Language": "zh-CN"}
    )
    assert "缺少 zh-Hans 的文字" in chinese.text

    # Saving with problems stores nothing and shows them all.
    fields["op"] = "save"
    refused = client.post("/presenter/talks/editor", data=fields)
    assert refused.status_code == 422 and "2 problems" in refused.text
    assert client.get("/api/v1/talks/undefined", headers=AUTH).status_code == 404

    fields["slug"] = "from-editor"
    fields["phases.1.question.zh-Hans"] = "你同意吗？"
    fields["title.en"] = "Made in the editor"
    saved = client.post("/presenter/talks/editor", data=fields, follow_redirects=False)
    assert saved.status_code == 303
    assert saved.headers["location"] == "/presenter/talks/from-editor/edit?saved=1"
    stored = client.get("/api/v1/talks/from-editor", headers=AUTH).json()
    assert stored["version"] == 1 and stored["title"]["en"] == "Made in the editor"
    dashboard = client.get("/presenter").text
    assert "Made in the editor" in dashboard
    assert "/presenter/talks/from-editor/edit" in dashboard
    # The template's address, come back to after the save (a reload, the back button), opens
    # the saved talk rather than a blank template.
    again = client.get("/presenter/talks/new/edit?slug=from-editor", follow_redirects=False)
    assert again.status_code == 303
    assert again.headers["location"] == "/presenter/talks/from-editor/edit"
    reloaded = talk_from_form(form_of(client.get(again.headers["location"]).text))
    assert reloaded["title"]["en"] == "Made in the editor"


def test_the_buttons_add_move_and_remove_phases_and_options(client: TestClient) -> None:
    login(client)
    fields = form_of(client.get("/presenter/talks/new/edit?slug=b").text)
    added = client.post("/presenter/talks/editor", data={**fields, "op": "add_phase:choice"})
    talk = talk_from_form(form_of(added.text))
    assert [p["kind"] for p in talk["phases"]][-1] == "choice"
    assert len(talk["phases"]) == 5
    moved = client.post("/presenter/talks/editor", data={**form_of(added.text), "op": "up_phase:4"})
    talk = talk_from_form(form_of(moved.text))
    assert [p["id"] for p in talk["phases"]] == [
        "definition",
        "belief",
        "field",
        "choice1",
        "revote",
    ]
    fields = form_of(moved.text)
    more = client.post("/presenter/talks/editor", data={**fields, "op": "add_option:0"})
    talk = talk_from_form(form_of(more.text))
    assert [o["id"] for o in talk["phases"][0]["options"]] == ["a", "b", "other", "option1"]
    fields = form_of(more.text)
    fewer = client.post("/presenter/talks/editor", data={**fields, "op": "remove_option:0:0"})
    talk = talk_from_form(form_of(fewer.text))
    assert [o["id"] for o in talk["phases"][0]["options"]] == ["b", "other", "option1"]
    down = client.post(
        "/presenter/talks/editor", data={**form_of(fewer.text), "op": "down_option:0:0"}
    )
    talk = talk_from_form(form_of(down.text))
    assert [o["id"] for o in talk["phases"][0]["options"]] == ["other", "b", "option1"]
    gone = client.post(
        "/presenter/talks/editor", data={**form_of(down.text), "op": "remove_phase:3"}
    )
    assert len(talk_from_form(form_of(gone.text))["phases"]) == 4
    # htmx gets the editor alone, without the page around it.
    partial = client.post(
        "/presenter/talks/editor",
        data={**form_of(gone.text), "op": "select:1"},
        headers={"HX-Request": "true"},
    )
    assert partial.text.lstrip().startswith("{#") is False
    assert "<html" not in partial.text and 'id="talk-editor"' in partial.text


def test_an_edit_in_the_editor_is_a_new_version_and_a_bundled_talk_is_copied(
    client: TestClient,
) -> None:
    login(client)
    bundled = client.get("/presenter/talks/emergence/edit")
    assert bundled.status_code == 200 and "cannot be edited" in bundled.text
    assert 'name="op" value="save"' not in bundled.text
    copy = {"talk": "emergence", "slug": "my-emergence"}
    copied = client.post("/presenter/talks/copy", data=copy, follow_redirects=False)
    assert copied.status_code == 303
    assert copied.headers["location"] == "/presenter/talks/my-emergence/edit"
    again = client.post("/presenter/talks/copy", data=copy)
    assert again.status_code == 409 and "already used" in again.text

    fields = form_of(client.get("/presenter/talks/my-emergence/edit").text)
    fields["phases.1.question.en"] = "Do LLMs have emergent properties, in your view?"
    saved = client.post(
        "/presenter/talks/editor", data={**fields, "op": "save"}, follow_redirects=False
    )
    assert saved.headers["location"] == "/presenter/talks/my-emergence/edit?saved=2"
    assert "version 2" in client.get(saved.headers["location"]).text
    current = client.get("/api/v1/talks/my-emergence", headers=AUTH).json()
    assert current["phases"][1]["question"]["en"].endswith("in your view?")
    original = client.get("/api/v1/talks/emergence", headers=AUTH).json()
    assert {**current, "slug": "emergence", "version": 1}["phases"][0] == original["phases"][0]


def test_previewing_an_estimate_phase_adds_no_options_to_it(client: TestClient) -> None:
    login(client)
    fields = form_of(client.get("/presenter/talks/new/edit?slug=e&perceived=estimate").text)
    page = client.post("/presenter/talks/editor", data={**fields, "op": "select:2"})
    assert "No problems" in page.text
    assert 'class="ed-phone"' in page.text and "aud-est__slider" in page.text


def revote_options(html: str, index: int) -> list[list[str]]:
    """The rows (id, then a label per language) of the revote's read-only options."""
    block = BeautifulSoup(html, "html.parser").select_one(f"#ed-revote-opts-{index}")
    assert block is not None, "no options shown for the revote"
    return [
        [cell.get_text(strip=True) for cell in row.select("th, td")]
        for row in block.select("tbody tr")
    ]


def test_a_revote_asks_with_its_stances_options_as_they_are_typed(client: TestClient) -> None:
    login(client)
    page = client.get("/presenter/talks/new/edit?slug=r").text
    fields = form_of(page)
    assert not any(name.startswith("phases.3.options") for name in fields)  # none of its own
    assert 'value="copy_options:3"' not in page and 'value="add_option:3"' not in page
    assert revote_options(page, 3) == [
        ["agree", "Yes", "同意"],
        ["disagree", "No", "不同意"],
        ["unsure", "Unsure", "不确定"],
    ]

    # The stance reworded: the check redraws the revote's options and its phone preview.
    fields["phases.1.options.0.label.en"] = "Absolutely"
    fields["phases.1.options.0.label.zh-Hans"] = "完全同意"
    fields["selected"] = "3"
    check = client.post("/presenter/talks/editor/check", data=fields).text
    assert revote_options(check, 3)[0] == ["agree", "Absolutely", "完全同意"]
    assert 'id="ed-revote-opts-3" role="group"' in check and 'hx-swap-oob="true"' in check
    preview = BeautifulSoup(check, "html.parser").select_one("#ed-preview")
    assert preview is not None
    labels = [b.get_text(strip=True) for b in preview.select(".aud-option__label")]
    assert labels == ["Absolutely", "No", "Unsure"]
    assert "No problems" in check

    # Options sent for the revote anyway (an old form, a hand-made post) are not its own.
    forged = {**fields, "phases.3.options.0.id": "agree", "phases.3.options.0.label.en": "Yes"}
    forged["phases.3.options.0.label.zh-Hans"] = "同意"
    assert "options" not in talk_from_form(forged)["phases"][3]
    unchanged = client.post("/presenter/talks/editor", data={**forged, "op": "add_option:3"})
    assert "phases.3.options" not in unchanged.text

    saved = client.post("/presenter/talks/editor", data={**forged, "op": "save"})
    assert saved.status_code == 200
    stored = client.get("/api/v1/talks/r", headers=AUTH).json()
    assert stored["phases"][3]["options"] == stored["phases"][1]["options"]
    assert stored["phases"][3]["options"][0]["label"] == {"en": "Absolutely", "zh-Hans": "完全同意"}


def test_a_stored_revote_is_edited_through_its_stance(client: TestClient) -> None:
    login(client)
    client.post("/presenter/talks/copy", data={"talk": "emergence", "slug": "mine"})
    page = client.get("/presenter/talks/mine/edit").text
    fields = form_of(page)
    assert not any(name.startswith("phases.3.options") for name in fields)
    assert revote_options(page, 3)[0][:2] == ["agree", "Yes, they do"]
    fields["phases.1.options.2.label.en"] = "Not sure yet"
    client.post("/presenter/talks/editor", data={**fields, "op": "save"})
    current = client.get("/api/v1/talks/mine", headers=AUTH).json()
    assert current["version"] == 2
    assert current["phases"][3]["options"][2]["label"]["en"] == "Not sure yet"
    assert current["phases"][3]["question"]["en"].startswith("After this talk")
