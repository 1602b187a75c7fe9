"""An open-text phase, end to end: written in a talk, answered from phones (the API and the
page's form), refused with a clear message when the text cannot be shown, moderated (pending
until shown, hidden never shown, the control page's queue and its keys' buttons), summarised as
the terms of the shown answers, and added from the editor; and no text of a pending or hidden
answer anywhere but the presenter's queue."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import AUTH, log_in, new_session, phase_action
from tests.test_stream import Stream


def _talk(**settings: Any) -> dict[str, Any]:
    return {
        "slug": "why",
        "languages": ["en", "zh-Hans"],
        "title": {"en": "Why", "zh-Hans": "为什么"},
        "phases": [
            {
                "id": "stance",
                "kind": "stance",
                "question": {"en": "Do models reason?", "zh-Hans": "模型会推理吗？"},
                "options": [
                    {"id": "agree", "label": {"en": "Yes", "zh-Hans": "会"}},
                    {"id": "disagree", "label": {"en": "No", "zh-Hans": "不会"}},
                ],
            },
            {
                "id": "why",
                "kind": "choice",
                "answer": "text",
                "question": {"en": "Why do you think so?", "zh-Hans": "你为什么这样想？"},
                **settings,
            },
        ],
    }


def _room(client: TestClient, **settings: Any) -> str:
    made = client.post("/api/v1/talks", json=_talk(**settings), headers=AUTH)
    assert made.status_code == 201, made.text
    code = new_session(client, talk="why")
    phase_action(client, code, "why", "open")
    return code


def _vote(app: FastAPI, code: str, text: Any, **more: Any) -> Any:
    phone = TestClient(app)  # a phone of its own
    body = {"phase": "why", "text": text, **more}
    return phone.post(f"/api/v1/sessions/{code}/votes", json=body)


def _queue(client: TestClient, code: str, state: str = "pending") -> dict[str, Any]:
    found = client.get(f"/api/v1/sessions/{code}/text-answers?state={state}", headers=AUTH)
    assert found.status_code == 200, found.text
    return dict(found.json())


def _move(client: TestClient, code: str, ids: list[int], state: str) -> Any:
    return client.post(
        f"/api/v1/sessions/{code}/text-answers/moderate",
        json={"ids": ids, "state": state},
        headers=AUTH,
    )


def _phase(client: TestClient, code: str) -> dict[str, Any]:
    results = client.get(f"/api/v1/sessions/{code}/results", headers=AUTH).json()
    return dict(results["phases"]["why"])


def test_a_text_phase_checks_its_settings(client: TestClient) -> None:
    for settings, says in (
        ({"max_chars": 5}, "'max_chars' must be a whole number from 10 to 200"),
        ({"max_chars": 201}, "'max_chars'"),
        ({"answers_per_phone": 4}, "'answers_per_phone' must be a whole number from 1 to 3"),
        ({"moderation": "never"}, "'moderation' must be"),
        ({"blocklist": {"mode": "shout", "words": []}}, "the blocklist is"),
        ({"options": [{"id": "a", "label": {"en": "A", "zh-Hans": "A"}}]}, "has no 'options'"),
    ):
        refused = client.post("/api/v1/talks", json=_talk(**settings), headers=AUTH)
        assert refused.status_code == 422, settings
        assert says in refused.text, (settings, refused.text)
    stance = _talk()
    stance["phases"][1]["kind"] = "stance"
    assert "only for choice phases" in client.post("/api/v1/talks", json=stance, headers=AUTH).text
    made = client.post("/api/v1/talks", json=_talk(max_chars=60), headers=AUTH)
    assert made.status_code == 201, made.text
    phase = client.get("/api/v1/talks/why", headers=AUTH).json()["phases"][1]
    assert phase["answer"] == "text" and phase["max_chars"] == 60


def test_text_that_cannot_be_shown_is_refused_and_stores_nothing(
    client: TestClient, app: FastAPI
) -> None:
    code = _room(client, max_chars=20)
    for text, reason in (
        ("", "text_empty"),
        ("   \n\t ", "text_empty"),
        ("?!…", "text_empty"),
        ("a" * 21, "text_too_long"),
        ("x" * 1_500, "text_too_long"),
        ("bell\x07", "text_control"),
        ("\u202egnp.exe", "text_bidi"),
        ("zero\u200bwidth", "text_invisible"),
    ):
        refused = _vote(app, code, text)
        assert refused.status_code == 422, (text[:20], refused.text)
        assert refused.json()["code"] == reason, refused.text
    assert _vote(app, code, "x" * 10_000).status_code == 413  # over the body limit
    assert _vote(app, code, "fine", slot=1).json()["code"] == "bad_slot"
    assert _vote(app, code, None).status_code == 422
    assert _phase(client, code)["n"] == 0 and _queue(client, code)["answers"] == []
    # 20 characters as a reader counts them: an emoji of several code points is one
    assert _vote(app, code, "👩‍💻" * 20).status_code == 200


def test_the_phone_answers_in_its_form_and_reads_why_a_text_is_refused(
    client: TestClient, app: FastAPI
) -> None:
    code = _room(client, max_chars=12, answers_per_phone=2)
    phone = TestClient(app)
    page = phone.get(f"/j/{code}?phase=why").text
    assert 'name="text"' in page and "js/text.js" in page and 'data-limit="12"' in page
    assert page.count('name="slot"') == 2
    htmx = {"HX-Request": "true"}
    long = phone.post(
        f"/j/{code}/vote",
        data={"phase": "why", "text": "far too long here", "slot": "0"},
        headers=htmx,
    )
    assert long.status_code == 422 and "at most 12 characters" in long.text
    zh = phone.post(
        f"/j/{code}/vote",
        data={"phase": "why", "text": "x" * 13, "lang": "zh-Hans", "slot": "0"},
        headers=htmx,
    )
    assert "最多 12 个字" in zh.text
    huge = phone.post(
        f"/j/{code}/vote", data={"phase": "why", "text": "y" * 3000, "slot": "0"}, headers=htmx
    )
    assert huge.status_code == 422 and "at most 12 characters" in huge.text
    sent = phone.post(
        f"/j/{code}/vote", data={"phase": "why", "text": "涌现能力", "slot": "0"}, headers=htmx
    )
    assert sent.status_code == 200 and "涌现能力</textarea>" in sent.text
    second = phone.post(
        f"/j/{code}/vote",
        data={"phase": "why", "text": "scaling", "slot": "1"},
        follow_redirects=False,
    )
    assert second.status_code == 303
    again = phone.get(f"/j/{code}?phase=why").text  # both answers back in their fields
    assert "涌现能力</textarea>" in again and "scaling</textarea>" in again
    # the same slot again replaces that answer; one phone, one response, two answers
    phone.post(f"/j/{code}/vote", data={"phase": "why", "text": "emergence", "slot": "1"})
    texts = sorted(a["text"] for a in _queue(client, code)["answers"])
    assert texts == ["emergence", "涌现能力"]
    assert _phase(client, code)["n"] == 1


def test_answers_wait_for_the_moderator_and_the_cloud_follows(
    client: TestClient, app: FastAPI
) -> None:
    code = _room(client, blocklist={"mode": "mask", "words": ["stochastic"]})
    for text in (
        "Emergent abilities!",
        "emergent behaviour",
        "大语言模型有涌现能力",
        "stochastic parrots",
    ):
        assert _vote(app, code, text).status_code == 200
    waiting = _queue(client, code)
    assert waiting["counts"] == {"pending": 4, "shown": 0, "hidden": 0}
    assert "•••••••••• parrots" in [a["text"] for a in waiting["answers"]]  # masked
    assert _phase(client, code)["terms"] == []  # nothing shown yet
    ids = {a["text"]: a["id"] for a in waiting["answers"]}
    moved = _move(client, code, [ids["Emergent abilities"], ids["emergent behaviour"]], "shown")
    assert moved.status_code == 200 and moved.json() == {"moved": 2}
    _move(client, code, [ids["大语言模型有涌现能力"]], "shown")
    _move(client, code, [ids["•••••••••• parrots"]], "hidden")
    phase = _phase(client, code)
    terms = {t["term"]: t["count"] for t in phase["terms"]}
    assert terms["Emergent"] == 2 and {"大语言模型", "涌现", "能力"} <= set(terms)
    assert "parrots" not in terms
    assert (phase["shown"], phase["pending"], phase["hidden"]) == (3, 0, 1)
    _move(client, code, [ids["emergent behaviour"]], "hidden")  # hidden later: the cloud shrinks
    assert {t["term"]: t["count"] for t in _phase(client, code)["terms"]}["Emergent"] == 1
    # an id of no answer of this session refuses the whole move, as does one past any
    # database's integers (schemathesis found a 500 there)
    refused = _move(client, code, [ids["Emergent abilities"], 999_999], "hidden")
    assert refused.status_code == 422 and _phase(client, code)["shown"] == 2
    for huge in (-9_023_648_104_487_059_456_000, 2**63, 0):
        refused = _move(client, code, [ids["Emergent abilities"], huge], "hidden")
        assert refused.status_code == 422, refused.text
    assert _phase(client, code)["shown"] == 2
    assert client.post(
        f"/api/v1/sessions/{code}/text-answers/moderate", json={"ids": [1], "state": "shown"}
    ).status_code in (401, 403)


def test_post_moderation_shows_at_once_and_the_blocklist_still_hides(
    client: TestClient, app: FastAPI
) -> None:
    code = _room(client, moderation="post")
    assert _vote(app, code, "open weights").status_code == 200
    assert _vote(app, code, "you are an idiot").status_code == 200  # the seeded list
    phase = _phase(client, code)
    assert (phase["shown"], phase["hidden"]) == (1, 1)
    assert [t["term"] for t in phase["terms"]] == ["open", "weights"]


def test_the_control_page_queue_shows_and_hides_and_follows_live(
    live_client: TestClient, live_app: FastAPI
) -> None:
    client = live_client
    code = _room(client)
    stream = Stream(client, code, presenter=True)
    try:
        assert [stream.next()[0] for _ in range(3)] == ["state", "results", "counts"]
        assert _vote(live_app, code, "<b>bold</b> claim").status_code == 200
        counts = stream.until("counts", r'id="n-why"[^>]*>1<')
        assert "claim" not in counts  # the stream (the projector's too) never carries it
    finally:
        stream.close()
    assert _vote(live_app, code, "second thought").status_code == 200
    log_in(client)
    page = client.get(f"/presenter/sessions/{code}").text
    assert 'data-queue-action="shown"' in page and "second thought" in page
    assert 'hx-trigger="sse:counts"' in page  # the queue is fetched again as answers arrive
    queue = client.get(f"/presenter/sessions/{code}/queue").text
    assert "&lt;b&gt;bold&lt;/b&gt; claim" in queue and "second thought" in queue
    ids = {a["text"]: a["id"] for a in _queue(client, code)["answers"]}
    fragment = client.post(
        f"/presenter/sessions/{code}/text-answers/shown",
        data={"ids": str(ids["second thought"])},
        headers={"HX-Request": "true"},
    )
    assert fragment.status_code == 200 and "second thought" not in fragment.text
    plain = client.post(
        f"/presenter/sessions/{code}/text-answers/hidden",
        data={"ids": str(ids["<b>bold</b> claim"])},
        follow_redirects=False,
    )
    assert plain.status_code == 303
    phase = _phase(client, code)
    assert (phase["shown"], phase["hidden"], phase["pending"]) == (1, 1, 0)
    bad = client.post(f"/presenter/sessions/{code}/text-answers/shown", data={"ids": "x"})
    assert bad.status_code == 422


def test_nothing_pending_or_hidden_reaches_anyone_but_the_presenters_queue(
    live_client: TestClient, live_app: FastAPI
) -> None:
    """100 answers: 80 shown, 10 pending, 5 blocked by the blocklist and 5 hidden by the
    moderator; every output but the queue is searched for the words of the 20 not shown."""
    client = live_client
    code = _room(client, blocklist={"mode": "block", "words": ["forbiddenword"]})
    secret = [f"secretw{i:02d}" for i in range(20)]
    for i in range(80):
        assert _vote(live_app, code, f"shownword{i % 7} 涌现能力").status_code == 200
    ids = [a["id"] for a in _queue(client, code)["answers"]]
    assert _move(client, code, ids, "shown").json()["moved"] == 80
    for i in range(10):
        assert _vote(live_app, code, f"{secret[i]} pending").status_code == 200
    for i in range(10, 15):
        assert _vote(live_app, code, f"{secret[i]} forbiddenword").status_code == 200
    for i in range(15, 20):
        assert _vote(live_app, code, f"{secret[i]} rude").status_code == 200
    hide = [a["id"] for a in _queue(client, code)["answers"] if "rude" in a["text"]]
    assert _move(client, code, hide, "hidden").json()["moved"] == 5
    phase = _phase(client, code)
    assert (phase["shown"], phase["pending"], phase["hidden"]) == (80, 10, 10)
    phase_action(client, code, "why", "close")
    phase_action(client, code, "why", "reveal")

    outputs: dict[str, str] = {}
    phone = TestClient(live_app)
    outputs["phone page"] = phone.get(f"/j/{code}").text
    outputs["phone panel"] = phone.get(f"/j/{code}/panel").text
    base = f"/api/v1/sessions/{code}"
    outputs["results JSON"] = client.get(f"{base}/results", headers=AUTH).text
    outputs["talk results JSON"] = client.get("/api/v1/talks/why/results", headers=AUTH).text
    outputs["CSV"] = client.get(f"{base}/export.csv", headers=AUTH).text
    outputs["JSON export"] = client.get(f"{base}/export.json", headers=AUTH).text
    outputs["talk export"] = client.get("/api/v1/talks/why/export.json", headers=AUTH).text
    outputs["codebook"] = client.get(f"{base}/codebook.json", headers=AUTH).text
    for lang in ("en", "zh-Hans"):
        svg = client.get(f"{base}/charts/phase-why.svg?lang={lang}", headers=AUTH)
        assert svg.status_code == 200 and "shownword" in svg.text
        outputs[f"cloud SVG {lang}"] = svg.text
    stream = Stream(client, code)  # a phone's stream
    try:
        outputs["phone stream"] = "".join(stream.next()[1] for _ in range(2))
    finally:
        stream.close()
    stream = Stream(client, code, presenter=True)  # the projector's stream
    try:
        outputs["presenter stream"] = "".join(stream.next()[1] for _ in range(3))
    finally:
        stream.close()
    log_in(client)
    made = client.post(f"/presenter/sessions/{code}/tokens/view").text
    view = re.search(r"(/view/[A-Za-z0-9_-]{22})", made)
    assert view is not None
    outputs["read-only view"] = TestClient(live_app).get(view.group(1)).text
    outputs["read-only view's slide"] = TestClient(live_app).get(f"{view.group(1)}/stage").text
    assert "shownword" in outputs["read-only view's slide"]
    outputs["projector"] = client.get(f"/presenter/sessions/{code}/projector").text
    outputs["projector stage"] = client.get(f"/presenter/sessions/{code}/projector/stage").text
    outputs["results page"] = client.get(f"/presenter/sessions/{code}/results").text
    assert "shownword" in outputs["results page"] and "shownword" in outputs["phone page"]
    assert re.search(r'"shown": ?80', outputs["results JSON"])
    for where, text in outputs.items():
        for word in secret:
            assert word not in text, f"{where} shows {word}"
    rows = list(csv.DictReader(io.StringIO(outputs["CSV"])))
    assert sum(r["phase"] == "why" for r in rows) == 100  # who answered, without the text
    assert json.loads(outputs["results JSON"])["phases"]["why"]["hidden"] == 10
    # the presenter's own queue has them
    assert all(w in json.dumps(_queue(client, code), ensure_ascii=False) for w in secret[:10])


def test_the_editor_adds_an_open_why_after_the_stance(client: TestClient) -> None:
    assert client.post("/api/v1/talks", json=_talk(), headers=AUTH).status_code == 201
    log_in(client)
    edit = client.get("/presenter/talks/why/edit").text
    assert "an open “why?” after the stance" in edit and 'name="phases.1.max_chars"' in edit
    from tests.test_escaping import form_fields

    fields = form_fields(edit)
    # drop the existing "why" so the button adds one after the stance (before nothing)
    fields = {k: v for k, v in fields.items() if not k.startswith("phases.1.")}
    added = client.post("/presenter/talks/editor", data={**fields, "op": "add_phase:why"})
    assert added.status_code == 200
    assert 'name="phases.1.answers_per_phone"' in added.text
    assert "Why do you think so? A few words." in added.text
    assert "你为什么这样想？写几个词。" in added.text


def test_a_moderator_link_moderates_one_session_until_it_is_revoked(
    client: TestClient, app: FastAPI
) -> None:
    code = _room(client)
    other = new_session(client, talk="why")
    phase_action(client, other, "why", "open")
    assert _vote(app, code, "first answer").status_code == 200
    assert _vote(app, other, "elsewhere answer").status_code == 200
    log_in(client)
    made = client.post(f"/presenter/sessions/{code}/tokens/moderator")
    assert made.status_code == 200
    link = re.search(r'value="[^"]*(/moderate/[A-Za-z0-9_-]{22})"', made.text)
    assert link is not None, "the control page shows the new link once"
    url = link.group(1)
    cohost = TestClient(app)  # no cookie, no admin token
    page = cohost.get(url)
    assert page.status_code == 200 and "first answer" in page.text
    assert "elsewhere answer" not in page.text  # only its own session
    assert cohost.get(f"/presenter/sessions/{code}", follow_redirects=False).status_code == 303
    first = _queue(client, code)["answers"][0]["id"]
    elsewhere = _queue(client, other)["answers"][0]["id"]
    refused = cohost.post(f"{url}/shown", data={"ids": str(elsewhere)})
    assert refused.status_code == 422 and _phase(client, other)["shown"] == 0
    moved = cohost.post(f"{url}/shown", data={"ids": str(first)}, headers={"HX-Request": "true"})
    assert moved.status_code == 200 and "first answer" not in moved.text
    assert _phase(client, code)["shown"] == 1
    revoked = client.post(
        f"/presenter/sessions/{code}/tokens/moderator/revoke", follow_redirects=False
    )
    assert revoked.status_code == 303
    assert cohost.get(url).status_code == 404
    assert cohost.post(f"{url}/hidden", data={"ids": str(first)}).status_code == 404
    assert _phase(client, code)["shown"] == 1


def test_a_phone_that_erases_its_answers_takes_its_texts_with_them(
    client: TestClient, app: FastAPI
) -> None:
    code = _room(client, moderation="post")
    phone = TestClient(app)
    sent = phone.post(f"/api/v1/sessions/{code}/votes", json={"phase": "why", "text": "mine"})
    assert sent.status_code == 200
    assert _vote(app, code, "theirs").status_code == 200
    assert phone.delete(f"/api/v1/sessions/{code}/me").status_code == 204
    phase = _phase(client, code)
    assert (phase["n"], phase["shown"]) == (1, 1)
    assert [t["term"] for t in phase["terms"]] == ["theirs"]


def _two_questions(blocklist: dict[str, Any], own: dict[str, Any] | None) -> dict[str, Any]:
    talk = _talk()
    talk["slug"] = "why-how"
    talk["blocklist"] = blocklist
    how = {
        "id": "how",
        "kind": "choice",
        "answer": "text",
        "question": {"en": "How would you test it?", "zh-Hans": "你会怎样检验？"},
    }
    if own is not None:
        how["blocklist"] = own
    talk["phases"].append(how)
    return talk


def test_the_talks_blocklist_screens_every_open_question_and_a_question_adds_to_it(
    client: TestClient, app: FastAPI
) -> None:
    talk = _two_questions(
        {"mode": "block", "words": ["crypto"]}, {"mode": "mask", "words": ["hype"]}
    )
    assert client.post("/api/v1/talks", json=talk, headers=AUTH).status_code == 201
    code = new_session(client, talk="why-how")

    def answer(phase: str, text: str) -> None:
        phone = TestClient(app)
        sent = phone.post(f"/api/v1/sessions/{code}/votes", json={"phase": phase, "text": text})
        assert sent.status_code == 200, sent.text

    phase_action(client, code, "why", "open")
    answer("why", "Ｃｒｙｐｔｏ money")  # the talk's word, full-width: hidden
    answer("why", "pure hype")  # the other question's word: not this one's
    phase_action(client, code, "how", "open")
    answer("how", "crypto hype")  # the talk's word and its own, masked by its own mode
    answer("how", "you idiot")  # the seeded list still holds

    def texts(phase: str, state: str) -> list[str]:
        found = _queue(client, code, state)["answers"]
        return sorted(a["text"] for a in found if a["phase"] == phase)

    assert texts("why", "hidden") == ["Crypto money"]
    assert texts("why", "pending") == ["pure hype"]
    assert texts("how", "pending") == ["you •••••", "•••••• ••••"]
    assert texts("how", "hidden") == []
    exported = client.get(f"/api/v1/sessions/{code}/export.json", headers=AUTH).json()
    how = next(p for p in exported["phases"] if p["id"] == "how")
    assert how["settings"]["blocklist"] == {"mode": "mask", "words": ["hype"]}  # its own
    assert "crypto" not in json.dumps(how)  # the talk's list is the talk's, not each phase's

    # Written once, at the top of the talk's file, and read back the same.
    toml = client.get("/api/v1/talks/why-how.toml", headers=AUTH).text
    assert toml.count("blocklist = ") == 2
    assert 'blocklist = {mode = "block", words = ["crypto"]}\n' in toml.split("[[phases]]")[0]
    assert 'blocklist = {mode = "mask", words = ["hype"]}' in toml.split("[[phases]]")[-1]
    again = client.put(
        "/api/v1/talks/why-how",
        content=toml,
        headers={**AUTH, "Content-Type": "application/toml"},
    )
    assert again.status_code == 200 and again.json()["version"] == 1  # nothing changed


def test_a_question_without_a_mode_takes_the_talks_and_a_bad_list_is_named(
    client: TestClient, app: FastAPI
) -> None:
    talk = _two_questions({"mode": "mask", "words": ["crypto"]}, {"words": ["hype"]})
    assert client.post("/api/v1/talks", json=talk, headers=AUTH).status_code == 201
    code = new_session(client, talk="why-how")
    phase_action(client, code, "how", "open")
    sent = TestClient(app).post(
        f"/api/v1/sessions/{code}/votes", json={"phase": "how", "text": "crypto hype"}
    )
    assert sent.status_code == 200, sent.text
    assert [a["text"] for a in _queue(client, code)["answers"]] == ["•••••• ••••"]

    bad = _two_questions({"mode": "shout", "words": ["crypto"]}, None)
    bad["slug"] = "bad-list"
    refused = client.post("/api/v1/talks", json=bad, headers=AUTH)
    assert refused.status_code == 422
    assert [p["loc"] for p in refused.json()["detail"]] == [["blocklist"]]
    assert client.get("/api/v1/talks/bad-list", headers=AUTH).status_code == 404


def test_a_questions_own_blocklist_from_an_older_file_keeps_its_hash() -> None:
    """The digest decides whether a talk file changed (a new version at start): files written
    before talks had a blocklist of their own hash as they did (digests taken on that code)."""
    from app.talkfile import parse_talk

    def digest(blocklist: dict[str, Any] | None) -> str:
        phase = {"id": "why", "kind": "choice", "answer": "text", "question": {"en": "Why?"}}
        if blocklist is not None:
            phase["blocklist"] = blocklist
        talk = {"slug": "why", "languages": ["en"], "title": {"en": "Why"}, "phases": [phase]}
        return parse_talk(talk, source="why.toml").digest

    plain = "7750cea22f205f78831e31747db838b30c7c31d440ae562378195089f4b023d2"
    words = "b8adf0aa2566588f55330253c221e8cb2f2fb706995a497d8a6ccd2dba1b25e8"
    assert digest(None) == digest({"mode": "block"}) == plain
    assert digest({"words": ["parrot"]}) == digest({"mode": "block", "words": ["parrot"]}) == words
    assert digest({"mode": "mask"}) == (
        "e3d5bd2f535ef82c47f41f7d9391d95d7d71135e046f2bd053f61439e1d2c68f"
    )


def test_the_editor_writes_the_talks_blocklist_and_a_questions_own(client: TestClient) -> None:
    from tests.test_editor import form_of

    assert client.post("/api/v1/talks", json=_talk(), headers=AUTH).status_code == 201
    log_in(client)
    fields = form_of(client.get("/presenter/talks/why/edit").text)
    assert fields["blocklist.mode"] == "block" and fields["blocklist.words"] == ""
    assert fields["phases.1.blocklist.mode"] == ""  # as the talk's
    fields.update({"blocklist.mode": "mask", "blocklist.words": "crypto\n\n  web3 \n"})
    fields.update({"phases.1.blocklist.words": "hype", "op": "save"})
    saved = client.post("/presenter/talks/editor", data=fields, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    stored = client.get("/api/v1/talks/why", headers=AUTH).json()
    assert stored["blocklist"] == {"mode": "mask", "words": ["crypto", "web3"]}
    assert stored["phases"][1]["blocklist"] == {"words": ["hype"]}
    again = form_of(client.get("/presenter/talks/why/edit").text)
    assert (again["blocklist.mode"], again["blocklist.words"]) == ("mask", "crypto\nweb3")
    assert "As the talk: Mask the word" in client.get("/presenter/talks/why/edit").text


def test_the_editors_checks_swap_problems_only_into_places_the_form_has(
    client: TestClient,
) -> None:
    """As the presenter types, the check swaps each field's problems into its place: for an
    open question those are its own fields and the talk's blocklist, not the options and
    'holds' it does not have (htmx logs an error for each place that is missing)."""
    from tests.test_editor import form_of

    talk = _two_questions({"mode": "mask", "words": ["crypto"]}, {"words": ["hype"]})
    assert client.post("/api/v1/talks", json=talk, headers=AUTH).status_code == 201
    log_in(client)
    page = client.get("/presenter/talks/why-how/edit").text
    fields = form_of(page)
    fields["phases.2.max_chars"] = "5"  # under the least allowed: a problem beside its field
    check = client.post("/presenter/talks/editor/check", data=fields).text
    swapped = re.findall(r'id="([^"]+)"[^>]*hx-swap-oob', check)
    assert "p-phases-1-max_chars" in swapped and "p-blocklist" in swapped
    assert not set(swapped) - set(re.findall(r'id="([^"]+)"', page))
    assert re.search(r'id="p-phases-2-max_chars" hx-swap-oob="true"><span>', check)
