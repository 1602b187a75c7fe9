"""The audience side: join by code or QR link, vote from the phone through every phase kind of
both bundled talks (HTML form without scripts, the same form under htmx, the JSON API), see
refusals as messages on the page, in English or Chinese. Stored rows are read from the database."""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest
from bs4 import BeautifulSoup
from fastapi import FastAPI
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlmodel import Session, col, select

from app import sessions
from app.audience import vote_from_form
from app.errors import Invalid
from app.formats.text_rules import display
from app.live import RecordingPublisher
from app.models import (
    Participant,
    Phase,
    PhaseKind,
    PhaseOption,
    PollSession,
    Response,
    SessionPhase,
)
from app.routes.stream import state_json
from app.security import participant_cookie_name, read_participant
from tests import liveserver
from tests.conftest import ADMIN_TOKEN, AUTH, SECRET_KEY, new_session, phase_action, require
from tests.test_text_format import _room

HX = {"HX-Request": "true"}
ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}


# --------------------------------------------------------------------------- helpers


def soup_of(text: str) -> BeautifulSoup:
    return BeautifulSoup(text, "html.parser")


def visit(client: TestClient, code: str, **kwargs: Any) -> BeautifulSoup:
    response = client.get(f"/j/{code}", **kwargs)
    assert response.status_code == 200, response.text
    return soup_of(response.text)


def token_of(client: TestClient, code: str) -> str:
    token = read_participant(SECRET_KEY, code, client.cookies.get(participant_cookie_name(code)))
    assert token is not None
    return token


def form_data(soup: BeautifulSoup) -> dict[str, str]:
    """What the browser would send from the vote form on the page, before the person acts."""
    form = soup.select_one("#aud-panel form")
    assert form is not None, "no vote form on the page"
    data: dict[str, str] = {}
    for field in form.select("input[name]"):
        data[str(field["name"])] = str(field.get("value", ""))
    return data


@dataclass(frozen=True)
class Row:
    participant: str
    phase: str
    choice: str | None
    value: float | None


def stored(client: TestClient, code: str) -> list[Row]:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with Session(engine) as db:
        rows = db.exec(
            select(Participant.token, Phase.key, PhaseOption.key, Response.value)
            .select_from(Response)
            .join(PollSession, col(PollSession.id) == Response.session_id)
            .join(Phase, col(Phase.id) == Response.phase_id)
            .join(Participant, col(Participant.id) == Response.participant_id)
            .outerjoin(PhaseOption, col(PhaseOption.id) == Response.option_id)
            .where(PollSession.code == code)
            .order_by(col(Response.id))
        ).all()
    return [Row(*row) for row in rows]


def participants(client: TestClient, code: str) -> list[str]:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with Session(engine) as db:
        return list(
            db.exec(
                select(Participant.token)
                .join(PollSession, col(PollSession.id) == Participant.session_id)
                .where(PollSession.code == code)
            )
        )


def options_of(client: TestClient, talk: str, phase: str) -> list[str]:
    talks = {t["slug"]: t for t in client.get("/api/v1/talks").json()}
    found = next(p for p in talks[talk]["phases"] if p["id"] == phase)
    return [o["id"] for o in found["options"]]


def error_text(soup: BeautifulSoup) -> str:
    message = soup.select_one(".aud-msg--error")
    return message.get_text(" ", strip=True) if message else ""


# Every phase of both bundled talks: choice, stance, perceived (options), % estimate, revote.
PHASES = [
    ("emergence", "definition"),
    ("emergence", "belief"),
    ("emergence", "field"),
    ("emergence", "revote"),
    ("emergence-scale", "definition"),
    ("emergence-scale", "belief"),
    ("emergence-scale", "field_pct"),
    ("emergence-scale", "revote"),
]


def cast(
    client: TestClient, code: str, way: str, phase: str, answer: str | float
) -> tuple[int, BeautifulSoup | None]:
    """Vote as a person would on this path; returns the status and what the phone then shows."""
    estimate = isinstance(answer, float)
    if way == "api":
        body: dict[str, Any] = {"phase": phase}
        body["value" if estimate else "choice"] = answer
        response = client.post(f"/api/v1/sessions/{code}/votes", json=body)
        return response.status_code, None
    page = visit(client, code, params={"phase": phase})
    data = form_data(page) if page.select_one("#aud-panel form") else {}
    data.update({"phase": phase, "lang": "en"})
    if estimate:
        data["value"] = f"{answer:g}"  # typed into the number field; the slider stays put
    else:
        data["choice"] = str(answer)
    if way == "htmx":
        response = client.post(f"/j/{code}/vote", data=data, headers=HX)
        assert "<html" not in response.text  # the panel only, swapped into the page
        return response.status_code, soup_of(response.text)
    response = client.post(f"/j/{code}/vote", data=data, follow_redirects=False)
    assert response.status_code == 303, response.text
    target = response.headers["location"]
    assert urlsplit(target).path == f"/j/{code}"
    return response.status_code, visit(client, target.replace(f"/j/{code}", code, 1))


def shown_answer(soup: BeautifulSoup) -> str | None:
    chosen = soup.select_one(".aud-option--chosen")
    if chosen is not None:
        return str(chosen["value"])
    number = soup.select_one("input[name=value]")
    return str(number["value"]) if number is not None and number.get("value") else None


# --------------------------------------------------------------------------- every kind, every way


@pytest.mark.parametrize("way", ["form", "htmx", "api"])
@pytest.mark.parametrize(("talk", "phase"), PHASES)
def test_join_vote_change_close_and_refuse(
    client: TestClient, publisher: RecordingPublisher, talk: str, phase: str, way: str
) -> None:
    code = new_session(client, talk)
    waiting = visit(client, code)
    assert waiting.select_one(".aud-wait") is not None and waiting.select_one("form") is None
    me = token_of(client, code)
    assert participants(client, code) == []  # opening the page registers nobody

    options = options_of(client, talk, phase)
    answers: list[str | float] = [30.0, 72.5, 10.0] if not options else options[:2] + options[-1:]
    first, second, late = answers
    expected = (
        (lambda a: Row(me, phase, None, a))
        if not options
        else (lambda a: Row(me, phase, str(a), None))
    )

    phase_action(client, code, phase, "open")
    page = visit(client, code)
    assert page.select_one(f"#aud-q-{phase}") is not None  # the open question is on screen

    status, shown = cast(client, code, way, phase, first)
    assert status == 200 or (way == "form" and status == 303)
    assert stored(client, code) == [expected(first)]
    assert participants(client, code) == [me]  # the first answer does
    assert publisher.facts and publisher.facts[-1].phases is False

    status, shown = cast(client, code, way, phase, second)
    assert stored(client, code) == [expected(second)]  # replaced, never a second row
    page = visit(client, code)
    assert shown_answer(page) == (second if options else f"{second:g}")
    assert "you can change your answer" in page.get_text(" ").lower()

    phase_action(client, code, phase, "close")
    status, shown = cast(client, code, way, phase, late)
    if way == "form":
        assert shown is not None
        assert "has closed" in error_text(shown)
    else:
        assert status == 409
        if shown is not None:
            assert "has closed" in error_text(shown)
    assert stored(client, code) == [expected(second)]  # the refused vote changed nothing
    assert visit(client, code).select_one(".aud-wait") is not None


# --------------------------------------------------------------------------- joining


def test_joining_sets_a_signed_httponly_cookie_and_a_reload_keeps_the_participant(
    client: TestClient,
) -> None:
    code = new_session(client)
    first = client.get(f"/j/{code}")
    assert first.status_code == 200
    cookie = next(c for c in first.headers.get_list("set-cookie") if c.startswith(f"bg_p_{code}="))
    attributes = {part.strip().lower() for part in cookie.split(";")}
    assert "httponly" in attributes and "samesite=lax" in attributes and "path=/" in attributes
    assert first.headers["cache-control"].startswith("no-store")
    token = token_of(client, code)

    again = client.get(f"/j/{code}")
    assert not any(c.startswith("bg_p_") for c in again.headers.get_list("set-cookie"))
    assert token_of(client, code) == token
    assert participants(client, code) == []  # a link preview or a prefetch joins nobody

    # The JSON API recognises the same phone.
    phase_action(client, code, "belief", "open")
    client.post(f"/api/v1/sessions/{code}/votes", json={"phase": "belief", "choice": "agree"})
    assert stored(client, code) == [Row(token, "belief", "agree", None)]
    assert participants(client, code) == [token]


def test_a_tampered_cookie_makes_a_new_participant(client: TestClient) -> None:
    code = new_session(client)
    phase_action(client, code, "belief", "open")
    visit(client, code)
    cast(client, code, "htmx", "belief", "agree")
    client.cookies.clear()
    client.cookies.set(participant_cookie_name(code), "forged.value")
    response = client.get(f"/j/{code}")
    assert any(c.startswith(f"bg_p_{code}=") for c in response.headers.get_list("set-cookie"))
    assert shown_answer(soup_of(response.text)) is None  # not the first phone's answer
    cast(client, code, "htmx", "belief", "disagree")
    assert len(participants(client, code)) == 2
    assert sorted(row.choice for row in stored(client, code)) == ["agree", "disagree"]


def test_the_code_is_case_insensitive_and_trimmed(client: TestClient) -> None:
    code = new_session(client)
    landing = client.get("/")
    assert landing.status_code == 200
    assert soup_of(landing.text).select_one("input#aud-code[name=code]") is not None
    typed = f"  {code[:3].lower()} {code[3:].lower()} "
    response = client.get("/", params={"code": typed}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == f"/j/{code}"
    response = client.get(f"/j/{code.lower()}", follow_redirects=False)
    assert response.status_code in (307, 308) and response.headers["location"] == f"/j/{code}"


def test_an_unknown_code_is_a_friendly_404_in_the_phones_language(client: TestClient) -> None:
    response = client.get("/", params={"code": "zzzz99"})
    assert response.status_code == 404
    page = soup_of(response.text)
    assert "no poll with the code ZZZZ99" in error_text(page)
    assert page.select_one("input#aud-code")["value"] == "ZZZZ99"  # to correct it in place

    response = client.get("/j/ZZZZ99", headers=ZH)
    assert response.status_code == 404
    page = soup_of(response.text)
    assert page.html["lang"] == "zh-Hans"
    assert "没有代码为 ZZZZ99 的投票" in error_text(page)
    assert not participants(client, "ZZZZ99")

    empty = client.get("/", params={"code": "   "})
    assert empty.status_code == 422
    assert "type the code" in error_text(soup_of(empty.text))


# --------------------------------------------------------------------------- the voting page


def test_one_question_at_a_time_first_unanswered_first(client: TestClient) -> None:
    code = new_session(client)
    visit(client, code)
    phase_action(client, code, "definition", "open")
    phase_action(client, code, "belief", "open")

    page = visit(client, code)
    assert page.select_one("#aud-q-definition") is not None
    assert page.select_one("#aud-q-belief") is None
    others = page.select(".aud-others__link")
    assert [o["href"] for o in others] == [f"/j/{code}?phase=belief"]

    cast(client, code, "htmx", "definition", "d3")
    page = visit(client, code)  # the answered one steps aside for the unanswered one
    assert page.select_one("#aud-q-belief") is not None
    assert "answered" in page.select_one(".aud-others__state--done").get_text()

    page = visit(client, code, params={"phase": "definition"})
    assert shown_answer(page) == "d3"
    assert page.select_one(".aud-next")["href"] == f"/j/{code}?phase=belief"

    # A phase that is not open cannot be asked for.
    page = visit(client, code, params={"phase": "revote"})
    assert page.select_one("#aud-q-revote") is None


def test_definitions_show_their_full_text(client: TestClient) -> None:
    code = new_session(client)
    phase_action(client, code, "definition", "open")
    page = visit(client, code)
    labels = [b.get_text(" ", strip=True) for b in page.select(".aud-option__label")]
    assert any(
        "Schaeffer et al. 2023" in label and "nobody could foresee" in label for label in labels
    )
    assert len(labels) == 5
    assert all(b["type"] == "submit" and b["name"] == "choice" for b in page.select(".aud-option"))


def test_the_estimate_has_a_slider_a_labelled_number_field_and_a_send_button(
    client: TestClient,
) -> None:
    code = new_session(client, "emergence-scale")
    phase_action(client, code, "field_pct", "open")
    page = visit(client, code)
    slider = page.select_one("input[type=range][name=slider]")
    number = page.select_one("input[type=number][name=value]")
    assert slider["min"] == "0" and slider["max"] == "100"
    for control in (slider, number):
        assert page.select_one(f"label[for={control['id']}]") is not None
    assert page.select_one("button[type=submit].aud-send") is not None


def test_every_control_has_a_label(client: TestClient) -> None:
    code = new_session(client, "emergence-scale")
    for phase in ("definition", "belief", "field_pct", "revote"):
        phase_action(client, code, phase, "open")
    for phase in ("definition", "belief", "field_pct", "revote"):
        page = visit(client, code, params={"phase": phase})
        for control in page.select("input:not([type=hidden]), button, select, textarea"):
            named = control.get("aria-label") or control.get_text(strip=True)
            labelled = control.get("id") and page.select_one(f"label[for={control['id']}]")
            assert named or labelled, control


def test_a_countdown_shows_the_time_left(client: TestClient) -> None:
    code = new_session(client)
    phase_action(client, code, "belief", "open", seconds=120)
    page = visit(client, code)
    countdown = page.select_one(".aud-countdown")
    assert countdown is not None
    assert 0 < int(countdown["data-seconds-left"]) <= 120
    assert countdown.get_text(strip=True).startswith("Closes in ")


def test_a_countdown_that_ran_out_refuses_votes_like_a_close(client: TestClient) -> None:
    code = new_session(client)
    visit(client, code)
    phase_action(client, code, "belief", "open", seconds=60)
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with Session(engine) as db:
        row = db.exec(select(SessionPhase).where(SessionPhase.state == "open")).one()
        row.closes_at = datetime.now(UTC) - timedelta(seconds=1)
        db.add(row)
        db.commit()
    status, shown = cast(client, code, "htmx", "belief", "agree")
    assert status == 409 and shown is not None and "has closed" in error_text(shown)
    assert stored(client, code) == []


def test_revealed_results_appear_on_the_phone_and_hidden_ones_do_not(
    client: TestClient,
) -> None:
    code = new_session(client)
    visit(client, code)
    phase_action(client, code, "belief", "open")
    phase_action(client, code, "field", "open")
    cast(client, code, "api", "belief", "unsure")
    cast(client, code, "api", "field", "agree")
    phase_action(client, code, "belief", "reveal")
    page = visit(client, code)
    region = page.select_one("[data-live-results]")
    assert region is not None
    assert [f["data-phase"] for f in region.select("figure")] == ["belief"]
    assert "Unsure" in region.get_text()


def test_the_page_follows_the_live_stream_contract(client: TestClient) -> None:
    code = new_session(client, language="zh-Hans")
    page = visit(client, code, headers=ZH)
    live = page.select_one(".aud-live[data-events]")
    assert live is not None
    assert live["data-events"] == f"/api/v1/sessions/{code}/events?lang=zh-Hans&view=phone"
    panel = live.select_one("#aud-panel")
    assert panel["hx-get"] == f"/j/{code}/panel?lang=zh-Hans"
    assert panel["hx-trigger"] == "aud:refresh"  # pushed panels need no request
    assert panel["data-answered"] == ""
    assert live.select_one("[data-live-results] #revealed-results") is not None
    head = page.head
    assert head.select_one("link[href$='css/charts.css']") is not None
    assert head.select_one("link[href$='css/audience.css']") is not None


def test_the_panel_knows_the_open_phases_as_the_live_state_event_names_them(
    client: TestClient,
) -> None:
    """The page's script skips re-fetching the panel when the ``state`` event's open phases
    (with their countdowns) are those the panel was drawn for."""
    code = new_session(client)
    phase_action(client, code, "belief", "open", seconds=90)
    phase_action(client, code, "field", "open")
    drawn = visit(client, code).select_one("#aud-panel")["data-open"]
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with Session(engine) as db:
        state = json.loads(state_json(sessions.session_public(db, sessions.get_session(db, code))))
    derived = ";".join(  # what the script does with Date.parse, in whole seconds
        f"{p['id']}@{math.floor(datetime.fromisoformat(p['closes_at']).timestamp())}"
        if p["closes_at"]
        else f"{p['id']}@"
        for p in state["phases"]
        if p["state"] == "open"
    )
    assert drawn == derived and drawn.startswith("belief@1") and drawn.endswith(";field@")
    phase_action(client, code, "belief", "close")
    assert visit(client, code).select_one("#aud-panel")["data-open"] == "field@"


def test_the_panel_is_each_phones_own(client: TestClient, app: FastAPI) -> None:
    code = new_session(client)
    phase_action(client, code, "belief", "open")
    visit(client, code)
    cast(client, code, "htmx", "belief", "disagree")
    other = TestClient(app)
    visit(other, code)
    mine = soup_of(client.get(f"/j/{code}/panel").text)
    theirs = soup_of(other.get(f"/j/{code}/panel").text)
    assert shown_answer(mine) == "disagree" and mine.select_one("html") is None
    assert shown_answer(theirs) is None


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("way", ["form", "htmx"])
@pytest.mark.parametrize(
    ("talk", "phase", "fields", "status", "message"),
    [
        ("emergence", "belief", {"choice": "maybe"}, 422, "choose one of the answers"),
        ("emergence", "belief", {"value": "40"}, 422, "choose one of the answers"),
        ("emergence", "nope", {"choice": "agree"}, 422, "not part of this poll"),
        ("emergence-scale", "field_pct", {"value": "101"}, 422, "from 0 to 100"),
        ("emergence-scale", "field_pct", {"value": "-5"}, 422, "from 0 to 100"),
        ("emergence-scale", "field_pct", {"value": "lots"}, 422, "type or choose a number"),
        ("emergence-scale", "field_pct", {"value": "nan"}, 422, "type or choose a number"),
        ("emergence-scale", "field_pct", {"value": "", "slider": ""}, 422, "type a number"),
        # The form as the page drew it: the slider in the middle, untouched, the field empty.
        ("emergence-scale", "field_pct", {}, 422, "Move the slider or type a number first"),
        ("emergence-scale", "field_pct", {"choice": "agree"}, 422, "Move the slider"),  # no number
        ("emergence", "revote", {"choice": "agree"}, 409, "has closed"),
    ],
)
def test_a_refused_vote_changes_nothing_and_the_page_says_why(
    client: TestClient,
    talk: str,
    phase: str,
    fields: dict[str, str],
    status: int,
    message: str,
    way: str,
) -> None:
    code = new_session(client, talk)
    open_phase = "field_pct" if talk == "emergence-scale" else "belief"
    phase_action(client, code, open_phase, "open")
    page = visit(client, code)
    data = {**form_data(page), "phase": phase, **fields}
    if way == "htmx":
        response = client.post(f"/j/{code}/vote", data=data, headers=HX)
        assert response.status_code == status
        shown = soup_of(response.text)
        assert shown.select_one("#aud-panel") is not None  # a panel, never an error page
    else:
        response = client.post(f"/j/{code}/vote", data=data, follow_redirects=False)
        assert response.status_code == 303
        shown = visit(client, response.headers["location"].removeprefix("/j/"))
    assert message in error_text(shown)
    assert stored(client, code) == []


def test_a_vote_answered_with_a_panel_drawn_for_another_phone_shows_this_phones_answer(
    app: FastAPI,
) -> None:
    """The vote form's answer is kept by what it shows (``app.routes.pages._panel_key``) and
    sent again to phones that answer the same: each phone still sees its own choice marked,
    in its language, and a panel kept from before the presenter opened another question is
    not sent after it."""
    phones = [TestClient(app) for _ in range(5)]
    code = new_session(phones[0])
    phase_action(phones[0], code, "belief", "open")

    def vote(phone: TestClient, choice: str, lang: str = "en") -> BeautifulSoup:
        data = {**form_data(visit(phone, code, params={"lang": lang})), "choice": choice}
        response = phone.post(f"/j/{code}/vote", data=data, headers=HX)
        assert response.status_code == 200, response.text
        return soup_of(response.text)

    def chosen(panel: BeautifulSoup) -> list[str]:
        return [str(b["value"]) for b in panel.select("button.aud-option--chosen")]

    first, other, same = vote(phones[0], "agree"), vote(phones[1], "disagree"), None
    same = vote(phones[2], "agree")  # answered with the panel drawn for the first
    assert chosen(first) == ["agree"] and chosen(other) == ["disagree"]
    assert chosen(same) == ["agree"] and str(same) == str(first)
    chinese = vote(phones[3], "agree", "zh-Hans")
    assert chosen(chinese) == ["agree"] and "已记录" in chinese.get_text()  # "Recorded"
    phase_action(phones[0], code, "field", "open")  # a second open question
    later = vote(phones[4], "agree")
    assert chosen(later) == ["agree"] and str(later) != str(first)
    assert later.select_one("#aud-panel")["data-open"].count("@") == 2  # both questions
    assert sorted(r.choice or "" for r in stored(phones[0], code)) == [
        "agree",
        "agree",
        "agree",
        "agree",
        "disagree",
    ]


def test_a_text_vote_answered_with_a_kept_panel_shows_this_phones_own_words_escaped(
    app: FastAPI, client: TestClient
) -> None:
    """A kept panel for an open-text question is drawn with a mark where the phone's text
    stands, then filled in: each phone gets exactly the panel drawn for it alone (the one its
    page fetches, ``/j/{code}/panel``), its own words escaped, never another phone's."""
    code = _room(client, answers_per_phone=2)  # a stance, then an open 'why?' (open)
    texts = ["<b>scaling</b> & 'laws' hold", 'a "mirage" now', "涌现能力", "\ue000why\ue0010\ue002"]
    panels = []
    for n, text in enumerate(texts):
        phone = TestClient(app)
        visit(phone, code)
        data = {"phase": "why", "lang": "en", "slot": str(n % 2), "text": text}
        sent = phone.post(f"/j/{code}/vote", data=data, headers=HX)
        assert sent.status_code == 200, sent.text
        assert sent.text == phone.get(f"/j/{code}/panel", params={"lang": "en"}).text
        panels.append(sent.text)
    assert "&lt;b&gt;scaling&lt;/b&gt; &amp; &#39;laws&#39; hold</textarea>" in panels[0]
    assert "<b>" not in panels[0] and "a &#34;mirage&#34; now</textarea>" in panels[1]
    for n, panel in enumerate(panels):  # its own words in its slot, nobody else's anywhere
        fields = re.findall(r"<textarea[^>]*>([^<]*)</textarea>", panel)
        assert fields[n % 2] == str(escape(display(texts[n]))) and fields[1 - n % 2] == ""


def test_a_refusal_is_explained_in_chinese_on_a_chinese_phone(client: TestClient) -> None:
    code = new_session(client)
    page = visit(client, code, params={"lang": "zh-Hans"})
    phase_action(client, code, "belief", "open")
    page = visit(client, code)
    phase_action(client, code, "belief", "close")
    data = {**form_data(page), "choice": "agree"}
    response = client.post(f"/j/{code}/vote", data=data, headers=HX)
    assert response.status_code == 409
    assert "该问题已关闭" in error_text(soup_of(response.text))
    response = client.post(f"/j/{code}/vote", data=data, follow_redirects=False)
    shown = visit(client, response.headers["location"].removeprefix("/j/"))
    assert shown.html["lang"] == "zh-Hans" and "该问题已关闭" in error_text(shown)


def test_a_form_post_from_another_page_is_refused_and_stores_nothing(
    client: TestClient, app: FastAPI
) -> None:
    code = new_session(client)
    phase_action(client, code, "belief", "open")
    page = visit(client, code)
    data = form_data(page)
    data["choice"] = "agree"
    foreign = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
    assert client.post(f"/j/{code}/vote", data=data, headers=foreign).status_code == 403
    assert client.post(f"/j/{code}/vote", data=data, headers={**HX, **foreign}).status_code == 403
    # A page of another site posting with no cookies at all: no participant, nothing stored.
    stranger = TestClient(app)
    response = stranger.post(f"/j/{code}/vote", data=data, follow_redirects=False)
    assert response.status_code == 303
    assert "error=no_participant" in response.headers["location"]
    assert stored(client, code) == []
    same = {"Sec-Fetch-Site": "same-origin"}
    assert client.post(f"/j/{code}/vote", data=data, headers=same).status_code == 200
    assert len(stored(client, code)) == 1


def test_an_unknown_session_on_the_vote_path_is_a_friendly_404(client: TestClient) -> None:
    code = new_session(client)
    visit(client, code)  # the waiting screen: no form
    data = {"phase": "belief", "choice": "agree"}
    response = client.post("/j/ZZZZ99/vote", data=data, headers=HX)
    assert response.status_code == 404
    assert "no poll with the code ZZZZ99" in error_text(soup_of(response.text))
    response = client.post("/j/ZZZZ99/vote", data=data)
    assert response.status_code == 404 and "<form" in response.text


# --------------------------------------------------------------------------- concurrency


def test_fifty_identical_votes_at_once_from_one_phone_leave_one_row(
    client: TestClient, app: FastAPI
) -> None:
    code = new_session(client)
    phase_action(client, code, "belief", "open")
    page = visit(client, code)
    data = {**form_data(page), "choice": "agree"}
    cookies = dict(client.cookies.items())
    barrier = threading.Barrier(50)
    statuses: list[int] = []
    lock = threading.Lock()

    def vote(index: int) -> None:
        phone = TestClient(app, cookies=cookies)  # its own client, the same signed cookie
        barrier.wait(timeout=30)
        if index % 2:
            response = phone.post(f"/j/{code}/vote", data=data, headers=HX)
        else:
            response = phone.post(
                f"/api/v1/sessions/{code}/votes", json={"phase": "belief", "choice": "agree"}
            )
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=vote, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [200] * 50
    assert stored(client, code) == [Row(token_of(client, code), "belief", "agree", None)]
    assert len(participants(client, code)) == 1


# --------------------------------------------------------------------------- languages


def test_the_language_follows_the_session_and_the_switch_persists(client: TestClient) -> None:
    """The session's language is the phones' default (over the browser's); the phone's own
    choice (the language switch) wins and is kept."""
    english = new_session(client)
    assert visit(client, english, headers=ZH).html["lang"] == "en"
    code = new_session(client, language="zh-Hans")
    phase_action(client, code, "belief", "open")
    page = visit(client, code, headers={"Accept-Language": "en"})
    assert page.html["lang"] == "zh-Hans"
    assert "你个人认为" in page.select_one(".aud-q__text").get_text()
    assert page.select_one(".aud-option__label").get_text(strip=True) == "是的，具有"
    switch = page.select_one(".aud-lang__link")
    assert switch["href"] == "?phase=belief&lang=en" and "English" in switch.get_text()

    response = client.get(f"/j/{code}", params={"lang": "en"}, headers=ZH)
    assert "bg_lang=en" in response.headers["set-cookie"]
    page = visit(client, code, headers=ZH)  # no parameter: the cookie decides
    assert page.html["lang"] == "en"
    assert page.select_one(".aud-option__label").get_text(strip=True) == "Yes, they do"
    assert page.select_one(".aud-lang__link")["href"] == "?phase=belief&lang=zh-Hans"

    landing = soup_of(client.get("/", params={"lang": "zh-Hans"}).text)
    assert landing.html["lang"] == "zh-Hans" and "加入投票" in landing.get_text()


ENGLISH_ONLY = {
    "slug": "english-only",
    "languages": ["en"],
    "title": {"en": "An English talk"},
    "phases": [
        {
            "id": "belief",
            "kind": "stance",
            "question": {"en": "Do you agree?"},
            "holds": ["agree"],
            "options": [
                {"id": "agree", "label": {"en": "Yes"}},
                {"id": "disagree", "label": {"en": "No"}},
            ],
        }
    ],
}


def test_a_talk_in_one_language_offers_no_switch_and_speaks_it(client: TestClient) -> None:
    """A switch to Chinese on an English talk translated the buttons and left every question in
    English: phones get the talk's languages only, buttons and all."""
    assert client.post("/api/v1/talks", json=ENGLISH_ONLY, headers=AUTH).status_code == 201
    code = new_session(client, talk="english-only")
    phase_action(client, code, "belief", "open")
    for kwargs in ({"headers": ZH}, {"params": {"lang": "zh-Hans"}, "headers": ZH}):
        page = visit(client, code, **kwargs)  # type: ignore[arg-type]
        assert page.select_one(".aud-lang") is None
        assert page.html["lang"] == "en"
        assert "Do you agree?" in page.select_one(".aud-q__text").get_text()
        assert "zh-Hans" not in page.select_one(".aud-live")["data-events"]
    panel = client.get(f"/j/{code}/panel", params={"lang": "zh-Hans"}, headers=ZH)
    assert panel.status_code == 200 and "lang=zh-Hans" not in panel.text
    assert "你" not in panel.text  # no Chinese button beside an English question
    # a talk in both languages still offers the other one
    both = new_session(client)
    phase_action(client, both, "belief", "open")
    switch = visit(client, both, params={"lang": "en"}).select("a.aud-lang__link")
    assert [a["hreflang"] for a in switch] == ["zh-Hans"]


def test_english_is_the_default_for_other_languages(client: TestClient) -> None:
    page = soup_of(client.get("/", headers={"Accept-Language": "fr-FR,fr;q=0.9"}).text)
    assert page.html["lang"] == "en" and "Join the poll" in page.get_text()


# --------------------------------------------------------------------------- the estimate form

_FORM_TALK = sessions.SessionContent(
    id=1,
    code="FORM42",
    language="en",
    languages=("en",),
    titles={"en": "Forms"},
    phases=(
        sessions.PhaseContent(
            id=1,
            key="belief",
            kind=PhaseKind.stance,
            number=1,
            questions={"en": "Agree?"},
            options=(sessions.OptionContent(id=1, key="agree", labels={"en": "Yes"}),),
            min_value=None,
            max_value=None,
        ),
        sessions.PhaseContent(
            id=2,
            key="field_pct",
            kind=PhaseKind.perceived,
            number=2,
            questions={"en": "What share?"},
            options=(),
            min_value=0.0,
            max_value=100.0,
            answer="number",
        ),
    ),
)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"value": "64", "slider": "64", "initial": "", "start": "50"}, 64.0),  # scripts: in step
        ({"value": "", "slider": "31", "initial": "", "start": "50"}, 31.0),  # no script: moved
        ({"value": "40", "slider": "50", "initial": "", "start": "50"}, 40.0),  # a number typed
        ({"value": "72.5", "slider": "40", "initial": "72.5"}, 40.0),  # slider moved from 72.5
        ({"value": "72.5", "slider": "73", "initial": "72.5"}, 72.5),  # untouched (snapped)
        ({"value": "12,5", "slider": "50", "initial": "", "start": "50"}, 12.5),  # decimal comma
        ({"value": "50", "slider": "50", "initial": "", "start": "50"}, 50.0),  # 50, chosen
    ],
)
def test_the_estimate_form_takes_the_number_the_person_set(
    fields: dict[str, str], expected: float
) -> None:
    vote = vote_from_form({"phase": "field_pct", **fields}, _FORM_TALK)
    assert vote.value == expected and vote.choice is None


@pytest.mark.parametrize(
    "fields",
    [
        {"value": "", "slider": "50", "initial": "", "start": "50"},  # untouched: no answer
        {"value": "", "slider": "50", "initial": ""},  # no start: the slider says nothing
        {"value": "", "slider": "73", "initial": "", "start": "72.5"},  # untouched (snapped)
        {"phase": "field_pct"},
    ],
)
def test_an_untouched_slider_is_no_estimate(fields: dict[str, str]) -> None:
    with pytest.raises(Invalid) as refused:
        vote_from_form({"phase": "field_pct", **fields}, _FORM_TALK)
    assert refused.value.code == "missing_value"


def test_an_oversized_form_field_is_refused() -> None:
    with pytest.raises(Invalid):
        vote_from_form({"phase": "belief", "choice": "x" * 5000}, _FORM_TALK)


# --------------------------------------------------------------------------- a real browser


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """The app under uvicorn on a free local port, with its own temporary database."""
    running = liveserver.start(tmp_path, ADMIN_TOKEN, timeout=30)
    try:
        yield running.url
    finally:
        running.stop()


@pytest.mark.e2e
def test_a_phone_votes_and_follows_the_presenter_live_in_chromium(server: str) -> None:
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM_MISSING

    require(CHROMIUM.exists(), CHROMIUM_MISSING)

    def act(path: str) -> None:
        response = httpx.post(f"{server}{path}", headers=AUTH, timeout=10)
        assert response.status_code in (200, 201), response.text

    created = httpx.post(
        f"{server}/api/v1/sessions",
        json={"talk": "emergence-scale", "venue": "Copenhagen", "language": "zh-Hans"},
        headers=AUTH,
        timeout=10,
    )
    code = created.json()["code"]
    base = f"{server}/api/v1/sessions/{code}/phases"
    wait_ms = 10_000
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            phone = browser.new_context(viewport={"width": 320, "height": 568}, locale="zh-CN")
            page = phone.new_page()
            page.goto(f"{server}/j/{code}")
            assert page.locator("html").get_attribute("lang") == "zh-Hans"
            page.wait_for_selector(".aud-wait")
            assert page.evaluate("document.documentElement.scrollWidth") <= 320

            act(f"{base.removeprefix(server)}/belief/open")
            page.wait_for_function(
                "() => document.querySelector('#aud-q-belief') !== null", timeout=wait_ms
            )  # opened by the presenter: on the phone without a reload
            page.locator("#aud-opt-belief-agree").click()
            page.wait_for_selector("#aud-opt-belief-agree.aud-option--chosen", timeout=wait_ms)
            page.locator("#aud-opt-belief-neutral").click()  # changed
            page.wait_for_selector("#aud-opt-belief-neutral.aud-option--chosen", timeout=wait_ms)
            assert page.locator(".aud-option--chosen").count() == 1

            act(f"{base.removeprefix(server)}/field_pct/open")
            act(f"{base.removeprefix(server)}/belief/close")
            page.wait_for_function(
                "() => document.querySelector('#aud-panel').dataset.open === 'field_pct@'"
                " && document.querySelector('form.aud-est[data-est-ready]') !== null",
                timeout=wait_ms,
            )  # both changes arrived: nothing will replace the form while it is used
            page.locator("[data-est-slider]").fill("64")
            assert page.locator("[data-est-number]").input_value() == "64"
            page.locator(".aud-send").click()
            page.wait_for_selector(".aud-est__current", timeout=wait_ms)
            assert "64%" in page.locator(".aud-est__current").inner_text()

            act(f"{base.removeprefix(server)}/belief/reveal")
            page.wait_for_function(
                "() => document.querySelector('#revealed-results [data-phase=belief]') !== null",
                timeout=wait_ms,
            )
            phone.close()

            # Without scripts: the same form, a plain post and a redirect.
            plain = browser.new_context(java_script_enabled=False, locale="en-GB")
            page = plain.new_page()
            page.goto(f"{server}/j/{code}")
            page.locator(".aud-est__number").fill("12.5")
            page.locator(".aud-send").click()
            page.wait_for_selector(".aud-est__current", timeout=wait_ms)
            assert "12.5%" in page.locator(".aud-est__current").inner_text()
            plain.close()
        finally:
            browser.close()

    results = httpx.get(f"{server}/api/v1/sessions/{code}/results", headers=AUTH, timeout=10)
    phases = results.json()["phases"]
    assert phases["belief"]["n"] == 1 and phases["belief"]["counts"]["neutral"] == 1
    assert phases["field_pct"]["n"] == 2
