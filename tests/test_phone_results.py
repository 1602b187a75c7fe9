"""What the phones show of the results: the revealed questions, the belief gap and how views
moved (once the phases each pairs are revealed and closed), newest first, and a summary of the
talk once the session has ended. Read where a phone reads them: the page a phone gets, and the
live ``results`` event a phone receives when it connects (the stream's current state)."""

from __future__ import annotations

from bs4 import BeautifulSoup, Tag
from fastapi.testclient import TestClient

from tests.conftest import AUTH, log_in, new_session, phase_action
from tests.test_disclosure import Phone, answer_pairs
from tests.test_stream import Stream

# Eight people: 3 hold the view, all 8 think most of the field does; after the talk 2 of the 5
# who did not hold it do.
PEOPLE = [
    {"belief": "agree", "field": "agree", "revote": "agree"},
    {"belief": "agree", "field": "agree", "revote": "agree"},
    {"belief": "agree", "field": "agree", "revote": "agree"},
    {"belief": "disagree", "field": "agree", "revote": "agree"},
    {"belief": "disagree", "field": "agree", "revote": "disagree"},
    {"belief": "disagree", "field": "agree", "revote": "disagree"},
    {"belief": "unsure", "field": "agree", "revote": "agree"},
    {"belief": "unsure", "field": "agree", "revote": "unsure"},
]


def soup_of(text: str) -> BeautifulSoup:
    return BeautifulSoup(text, "html.parser")


def phones_for(client: TestClient) -> list[Phone]:
    """One phone (its own cookies) per person."""
    return [Phone(client) for _ in PEOPLE]


def everyone_answers(
    client: TestClient, code: str, phones: list[Phone], phases: tuple[str, ...]
) -> None:
    for phone, person in zip(phones, PEOPLE, strict=True):
        for phase in phases:
            phone.vote(code, phase, {"choice": person[phase]})


def page_results(client: TestClient, code: str, lang: str = "en") -> Tag:
    """The results on the page of a phone that joins now."""
    for name in list(client.cookies.keys()):
        if name.startswith("bg_p_"):
            del client.cookies[name]
    response = client.get(f"/j/{code}?lang={lang}")
    assert response.status_code == 200, response.text
    region = soup_of(response.text).select_one("[data-live-results]")
    assert region is not None
    return region


def pushed_results(client: TestClient, code: str, lang: str = "en") -> Tag:
    """The results event a phone's stream starts with."""
    stream = Stream(client, code, lang=lang)
    try:
        return soup_of(stream.until("results", ""))
    finally:
        stream.close()


def seen(client: TestClient, code: str, lang: str = "en") -> dict[str, Tag]:
    return {
        "page": page_results(client, code, lang),
        "stream": pushed_results(client, code, lang),
    }


def items(region: Tag) -> list[str]:
    """What the results show, top to bottom: "gap", "shift" or a phase's key."""
    return [
        str(el.get("data-key") or el.get("data-phase"))
        for el in region.select(".aud-key, details.aud-phase")
    ]


def sentence(region: Tag, key: str) -> str:
    found = region.select_one(f".aud-key--{key} .chart-sentence")
    assert found is not None, key
    return found.get_text(" ", strip=True)


def test_the_gap_and_the_movement_reach_phones_once_revealed_and_closed_newest_first(
    live_client: TestClient,
) -> None:
    client = live_client
    code = new_session(client)
    phones = phones_for(client)
    phase_action(client, code, "belief", "open")
    phase_action(client, code, "field", "open")
    everyone_answers(client, code, phones, ("belief", "field"))
    for where, region in seen(client, code).items():
        assert items(region) == [], where  # nothing revealed: nothing shown
        assert "svg" not in str(region), where

    phase_action(client, code, "belief", "close")
    phase_action(client, code, "belief", "reveal")
    for where, region in seen(client, code).items():
        assert items(region) == ["belief"], where

    # The perceived phase revealed while still open: its own chart, not yet the gap (redrawn
    # after every vote, a linked figure would tell each voter's pair of answers).
    phase_action(client, code, "field", "reveal")
    for where, region in seen(client, code).items():
        assert items(region) == ["field", "belief"], where
        assert not region.select(".chart--gap"), where

    # Closed: the gap comes first, above the questions it pairs, with its plain sentence.
    phase_action(client, code, "field", "close")
    log_in(client)
    stage = client.get(f"/presenter/sessions/{code}/projector/stage?lang=en")
    projector = soup_of(stage.text).select_one(".chart-slot--gap .chart-sentence")
    assert projector is not None
    for where, region in seen(client, code).items():
        assert items(region) == ["gap", "field", "belief"], where
        text = sentence(region, "gap")
        assert "38%" in text and "100%" in text, (where, text)
        # the projector's sentence, word for word
        assert text == projector.get_text(" ", strip=True), where
        assert region.select_one(".aud-key--gap svg.chart--gap[role=img]") is not None
        # the questions below are folded to their sentence: only the newest is unfolded
        assert [d.has_attr("open") for d in region.select("details.aud-phase")] == [False, False]

    phase_action(client, code, "revote", "open")
    everyone_answers(client, code, phones, ("revote",))
    phase_action(client, code, "revote", "reveal")
    for where, region in seen(client, code).items():
        assert items(region) == ["revote", "gap", "field", "belief"], where
        assert not region.select(".chart--shift"), where
        # the newest is a question: it is the one unfolded
        assert region.select_one("details[data-phase=revote]").has_attr("open")

    phase_action(client, code, "revote", "close")
    for where, region in seen(client, code).items():
        assert items(region) == ["shift", "revote", "gap", "field", "belief"], where
        movement = region.select_one(".aud-key--shift")
        assert movement is not None and movement.select_one("svg.chart--shift") is not None
        # the flow's sentence, and how many changed (here: too few in some cells to say)
        assert "8 people who answered twice" in sentence(region, "shift"), where
        more = movement.select_one(".aud-key__more")
        assert more is not None and "answered twice" in more.get_text(), where

    # Hidden again: the gap goes with the perceived phase.
    phase_action(client, code, "field", "hide")
    for where, region in seen(client, code).items():
        assert items(region) == ["shift", "revote", "belief"], where
        assert not region.select(".chart--gap"), where


def test_the_phones_list_the_most_recently_revealed_first(live_client: TestClient) -> None:
    """Every phase answered and closed, then revealed in one order or the other: the result the
    speaker has just revealed (the one they are talking about) comes first, whatever its place
    in the talk, and only the newest question is unfolded."""
    client = live_client
    for last, order in (
        ("revote", ["shift", "revote", "gap", "field", "belief"]),
        ("field", ["gap", "field", "shift", "revote", "belief"]),
    ):
        code = new_session(client)
        phones = phones_for(client)
        for phase in ("belief", "field", "revote"):
            phase_action(client, code, phase, "open")
            everyone_answers(client, code, phones, (phase,))
            phase_action(client, code, phase, "close")
        first = "field" if last == "revote" else "revote"
        for phase in ("belief", first, last):
            phase_action(client, code, phase, "reveal")
        for where, region in seen(client, code).items():
            assert items(region) == order, (last, where)
            assert [d.has_attr("open") for d in region.select("details.aud-phase")] == [
                False,
                False,
                False,
            ], (last, where)
        # hidden and revealed again, the earlier one is the newest
        phase_action(client, code, first, "hide")
        phase_action(client, code, first, "reveal")
        again = order[2:4] + order[:2] + order[4:]
        assert items(page_results(client, code)) == again, last


def test_an_ended_session_keeps_a_summary_for_a_phone_that_reloads_or_joins_late(
    live_client: TestClient,
) -> None:
    client = live_client
    code = new_session(client)
    phones = phones_for(client)
    for phase in ("belief", "field"):
        phase_action(client, code, phase, "open")
    everyone_answers(client, code, phones, ("belief", "field"))
    for phase in ("belief", "field"):
        phase_action(client, code, phase, "close")
        phase_action(client, code, phase, "reveal")
    phase_action(client, code, "revote", "open")
    everyone_answers(client, code, phones, ("revote",))
    phase_action(client, code, "revote", "close")
    phase_action(client, code, "revote", "reveal")
    ended = client.patch(f"/api/v1/sessions/{code}", json={"ended": True}, headers=AUTH)
    assert ended.status_code == 200, ended.text

    for lang, title, thanks in (
        ("en", "What this room showed", "Thank you for taking part."),
        ("zh-Hans", "本场的发现", "感谢你的参与。"),
    ):
        for where, region in seen(client, code, lang).items():
            summary = region.select_one(".aud-summary")
            assert summary is not None, where
            assert summary.select_one("h2").get_text(strip=True) == title
            # the gap first (the talk's point), then how views moved, each with its sentence
            assert [k["data-key"] for k in summary.select(".aud-key")] == ["gap", "shift"]
            assert summary.select_one("svg.chart--gap") and summary.select_one("svg.chart--shift")
            assert sentence(summary, "gap") and sentence(summary, "shift")
            # every question below it, folded
            folded = region.select("details.aud-phase")
            assert [d["data-phase"] for d in folded] == ["revote", "field", "belief"], where
            assert not any(d.has_attr("open") for d in folded), where
        # the panel above says the session ended, with the thank-you
        page = soup_of(client.get(f"/j/{code}?lang={lang}").text)
        panel = page.select_one("#aud-panel .aud-wait--ended")
        assert panel is not None and thanks in panel.get_text()


def test_an_ended_session_that_revealed_nothing_shows_no_results(live_client: TestClient) -> None:
    client = live_client
    code = new_session(client)
    phones = phones_for(client)
    phase_action(client, code, "belief", "open")
    everyone_answers(client, code, phones, ("belief",))
    phase_action(client, code, "belief", "close")
    assert client.patch(f"/api/v1/sessions/{code}", json={"ended": True}, headers=AUTH).is_success
    for where, region in seen(client, code).items():
        assert region.select(".aud-summary, .aud-key, details, svg") == [], where


def test_a_person_who_erases_their_answers_leaves_the_gap_the_phones_show(
    live_client: TestClient,
) -> None:
    """The gap is kept between live ticks while votes arrive on another question; an erasure
    changes the answers it pairs, and the phones' gap follows."""
    client = live_client
    code = new_session(client)
    phones = phones_for(client)
    for phase in ("belief", "field"):
        phase_action(client, code, phase, "open")
    everyone_answers(client, code, phones, ("belief", "field"))
    for phase in ("belief", "field"):
        phase_action(client, code, phase, "close")
        phase_action(client, code, phase, "reveal")
    phase_action(client, code, "revote", "open")
    phones[0].vote(code, "revote", {"choice": "agree"})
    assert "38%" in sentence(pushed_results(client, code), "gap")  # 3 of 8 hold the view

    erased = phones[0]._as_me("DELETE", f"/api/v1/sessions/{code}/me")
    assert erased.status_code == 204, erased.text
    phones[1].vote(code, "revote", {"choice": "agree"})  # the room goes on voting
    for where, region in seen(client, code).items():
        text = sentence(region, "gap")
        assert "29%" in text and "38%" not in text, (where, text)  # 2 of 7


def test_the_summary_holds_only_what_was_revealed(live_client: TestClient) -> None:
    """The revote answered and closed but never revealed: after the end, the phones' summary
    has the gap and not the movement, and the revote's chart is nowhere."""
    client = live_client
    code = new_session(client)
    phones = phones_for(client)
    for phase in ("belief", "field"):
        phase_action(client, code, phase, "open")
    everyone_answers(client, code, phones, ("belief", "field"))
    for phase in ("belief", "field"):
        phase_action(client, code, phase, "close")
        phase_action(client, code, phase, "reveal")
    phase_action(client, code, "revote", "open")
    everyone_answers(client, code, phones, ("revote",))
    phase_action(client, code, "revote", "close")
    assert client.patch(f"/api/v1/sessions/{code}", json={"ended": True}, headers=AUTH).is_success
    for lang in ("en", "zh-Hans"):
        for where, region in seen(client, code, lang).items():
            summary = region.select_one(".aud-summary")
            assert summary is not None, where
            assert [k["data-key"] for k in summary.select(".aud-key")] == ["gap"], where
            assert items(region) == ["gap", "field", "belief"], where
            assert not region.select(".chart--shift, [data-phase=revote]"), where


# The issue's room of 30: stance 12, 11 and 7 (agree, disagree, unsure); 8 change their answer,
# 5 to "agree" (the view) and 3 away from it.
MOVED_30 = ((9, 2, 1), (2, 9, 0), (3, 0, 4))
MOVED_SAID = {
    "en": "8 of 30 of you changed your answer: 5 towards “Yes, they do”, 3 away from it.",
    "zh-Hans": "30 人中有 8 人改变了回答：5 人转向“是的，具有”，3 人离开了它。",
}


def test_the_revote_card_says_how_the_room_moved_as_the_projector_does(
    live_client: TestClient,
) -> None:
    """The talk's closing line reaches the phones: once the revote is revealed and closed, the
    revote's card leads with the projector's sentence, word for word in both languages, even
    where the stance was never revealed (the projector's slide does not wait for it either);
    nothing of it while the revote is open, revealed or not, nor once closed but hidden. With
    the stance revealed, the flow's card says it instead, and the revote's card keeps its own
    line (the sentence once on the page)."""
    client = live_client
    pairs = answer_pairs(MOVED_30)
    code = new_session(client)
    phones = [Phone(client) for _ in pairs]
    phase_action(client, code, "belief", "open")
    for phone, (before, _) in zip(phones, pairs, strict=True):
        phone.vote(code, "belief", {"choice": before})
    phase_action(client, code, "belief", "close")  # closed, never revealed
    phase_action(client, code, "revote", "open")
    for phone, (_, after) in zip(phones, pairs, strict=True):
        phone.vote(code, "revote", {"choice": after})
    log_in(client)

    def nothing_of_it(when: str) -> None:
        for lang, said in MOVED_SAID.items():
            for where, region in seen(client, code, lang).items():
                text = region.get_text(" ", strip=True)
                assert said not in text and "changed your answer" not in text, (when, where)
                assert "改变了回答" not in text, (when, where)

    nothing_of_it("open")
    phase_action(client, code, "revote", "reveal")
    nothing_of_it("revealed while open")  # the projector says it comes when voting closes
    phase_action(client, code, "revote", "hide")
    phase_action(client, code, "revote", "close")
    nothing_of_it("closed and hidden")

    phase_action(client, code, "revote", "reveal")
    for lang, said in MOVED_SAID.items():
        stage = client.get(f"/presenter/sessions/{code}/projector/stage?lang={lang}")
        projector = soup_of(stage.text).select_one(".chart-sentence--moved")
        assert projector is not None and projector.get_text(strip=True) == said, lang
        for where, region in seen(client, code, lang).items():
            assert items(region) == ["revote"], (lang, where)
            card = region.select_one("details[data-phase=revote]")
            assert card is not None and card.has_attr("open"), (lang, where)
            summary = card.select_one("summary")
            assert summary is not None and summary.get_text(strip=True) == said, (lang, where)
            # the chart's own line moves into the card, above its bars
            own = card.select_one(".aud-phase__own")
            assert own is not None and ("30" in own.get_text()), (lang, where)
            assert region.get_text().count(said) == 1, (lang, where)

    phase_action(client, code, "belief", "reveal")  # now the flow is drawn, with the sentence
    for lang, said in MOVED_SAID.items():
        for where, region in seen(client, code, lang).items():
            assert items(region) == ["shift", "belief", "revote"], (lang, where)
            assert sentence(region, "shift") == said, (lang, where)
            card = region.select_one("details[data-phase=revote] summary")
            assert card is not None and card.get_text(strip=True) != said, (lang, where)
            assert region.get_text().count(said) == 1, (lang, where)
