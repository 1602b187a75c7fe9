"""The presenter's pages: login, dashboard, control page, projector, phase actions and "next"."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from bs4 import BeautifulSoup
from fastapi import FastAPI
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner
from sqlmodel import Session, select

from app import voting
from app.live import RecordingPublisher, SessionChanged
from app.main import create_app
from app.models import PhaseState, PresenterLogin
from app.presenter import SessionStatus, session_status
from app.security import PRESENTER_COOKIE, safe_next
from app.settings import Settings
from tests.conftest import ADMIN_TOKEN, AUTH, SECRET_KEY, new_session, phase_action

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"}
"""What a browser says about a form posted from one of the app's own pages."""


def login(client: TestClient, token: str = ADMIN_TOKEN, next: str = "/presenter") -> object:
    assert client.get("/presenter/login").status_code == 200
    return client.post(
        "/presenter/login",
        data={"token": token, "next": next},
        headers=SAME_ORIGIN,
        follow_redirects=False,
    )


def post_form(client: TestClient, page_url: str, url: str, **data: str) -> object:
    """Post a form the way a browser would from the page it is on."""
    page = client.get(page_url)
    assert page.status_code == 200, page.text
    return client.post(url, data=data, headers=SAME_ORIGIN, follow_redirects=False)


def vote(client: TestClient, code: str, phase: str, choice: str) -> None:
    """One vote from a new phone: the participant cookie is dropped first."""
    for name in list(client.cookies.keys()):
        if name.startswith("bg_p_"):
            del client.cookies[name]
    response = client.post(
        f"/api/v1/sessions/{code}/votes", json={"phase": phase, "choice": choice}
    )
    assert response.status_code == 200, response.text


def states(client: TestClient, code: str) -> dict[str, tuple[str, bool]]:
    body = client.get(f"/api/v1/sessions/{code}").json()
    return {p["id"]: (p["state"], p["revealed"]) for p in body["phases"]}


# --------------------------------------------------------------------------- access


PAGES = [
    "/presenter",
    "/presenter/sessions/{code}",
    "/presenter/sessions/{code}/panel",
    "/presenter/sessions/{code}/projector",
    "/presenter/sessions/{code}/projector/stage",
    "/presenter/sessions/{code}/preview",
]
FORMS = [
    "/presenter/sessions",
    "/presenter/sessions/{code}/phases/belief/open",
    "/presenter/sessions/{code}/next",
]


def test_every_presenter_page_sends_strangers_to_the_login_page(client: TestClient) -> None:
    code = new_session(client)
    for url in PAGES:
        response = client.get(url.format(code=code), follow_redirects=False)
        assert response.status_code == 303, url
        location = response.headers["location"]
        assert location.startswith("/presenter/login?next="), url


def test_presenter_forms_refuse_strangers_and_change_nothing(client: TestClient) -> None:
    code = new_session(client)
    assert client.get("/presenter/login").status_code == 200  # no presenter cookie
    for url in FORMS:
        response = client.post(
            url.format(code=code), data={}, headers=SAME_ORIGIN, follow_redirects=False
        )
        assert response.status_code == 303, url
        assert response.headers["location"].startswith("/presenter/login"), url
    assert all(state == "pending" for state, _ in states(client, code).values())


def test_presenter_api_refuses_without_token_or_with_a_wrong_one(client: TestClient) -> None:
    code = new_session(client)
    urls = [
        f"/api/v1/sessions/{code}/phases/belief/open",
        "/api/v1/sessions",
    ]
    for url in urls:
        assert client.post(url, json={"talk": "emergence", "venue": "X"}).status_code == 401
        wrong = {"Authorization": "Bearer not-the-token-at-all-000"}
        assert client.post(
            url, json={"talk": "emergence", "venue": "X"}, headers=wrong
        ).status_code in (401, 403)
    for url in (f"/api/v1/sessions/{code}/export.csv", f"/api/v1/sessions/{code}/export.json"):
        assert client.get(url).status_code == 401
    assert states(client, code)["belief"] == ("pending", False)


def test_login_sets_a_strict_httponly_cookie_and_redirects_without_the_token(
    client: TestClient,
) -> None:
    response = login(client, next="/presenter/sessions/ABC")
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert response.headers["location"] == "/presenter/sessions/ABC"  # type: ignore[attr-defined]
    cookie = response.headers["set-cookie"]  # type: ignore[attr-defined]
    assert cookie.startswith(f"{PRESENTER_COOKIE}=")
    assert "httponly" in cookie.lower()
    assert "samesite=strict" in cookie.lower()
    assert ADMIN_TOKEN not in cookie
    assert ADMIN_TOKEN not in response.headers["location"]  # type: ignore[attr-defined]
    dashboard = client.get("/presenter")
    assert dashboard.status_code == 200
    assert "Emergent properties" in dashboard.text


def test_a_wrong_token_is_refused_and_sets_no_cookie(client: TestClient) -> None:
    response = login(client, token="wrong-token-0123456789")
    assert response.status_code == 401  # type: ignore[attr-defined]
    assert PRESENTER_COOKIE not in response.headers.get("set-cookie", "")  # type: ignore[attr-defined]
    assert "not right" in response.text  # type: ignore[attr-defined]
    assert client.get("/presenter", follow_redirects=False).status_code == 303


def test_login_only_redirects_to_local_paths(client: TestClient) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"):
        response = login(client, next=target)
        assert response.headers["location"] == "/presenter", target  # type: ignore[attr-defined]
    assert safe_next("/presenter/sessions/K7QX2M?x=1") == "/presenter/sessions/K7QX2M?x=1"


def test_logout_ends_the_presenter_session(client: TestClient) -> None:
    login(client)
    response = post_form(client, "/presenter", "/presenter/logout")
    assert response.status_code == 303  # type: ignore[attr-defined]
    client.cookies.delete(PRESENTER_COOKIE)  # the browser drops the expired cookie
    assert (
        "Max-Age=0" in response.headers["set-cookie"]
        or "expires" in response.headers["set-cookie"].lower()
    )  # type: ignore[attr-defined]
    assert client.get("/presenter", follow_redirects=False).status_code == 303


def test_a_saved_cookie_no_longer_works_after_logout(app: FastAPI, client: TestClient) -> None:
    """Logout ends the login on the server: someone who copied the cookie (a shared laptop, a
    stolen backup of the browser profile) is a stranger from then on, for pages and the API."""
    code = new_session(client)
    login(client)
    saved = client.cookies.get(PRESENTER_COOKIE)
    assert saved and client.get("/presenter", follow_redirects=False).status_code == 200
    with TestClient(app) as other:  # a second browser with the same cookie works...
        other.cookies.set(PRESENTER_COOKIE, saved)
        assert other.get("/presenter", follow_redirects=False).status_code == 200
        assert post_form(client, "/presenter", "/presenter/logout").status_code == 303  # type: ignore[attr-defined]
        # ...until the presenter logs out in the first one.
        assert other.get("/presenter", follow_redirects=False).status_code == 303
        action = other.post(f"/api/v1/sessions/{code}/phases/belief/open")
        assert action.status_code == 401
        assert (
            post_form(other, "/presenter/login", "/presenter/sessions", talk="emergence", venue="X")
            .headers["location"]
            .startswith("/presenter/login")
        )  # type: ignore[attr-defined]
    assert states(client, code)["belief"] == ("pending", False)
    with Session(app.state.engine) as db:
        assert db.exec(select(PresenterLogin)).all() == []
    login(client)  # logging in again works, with a new cookie
    assert client.cookies.get(PRESENTER_COOKIE) != saved
    assert client.get("/presenter", follow_redirects=False).status_code == 200


def test_a_signed_cookie_for_no_login_is_refused(client: TestClient) -> None:
    """The cookie names a login the database must hold: signing any id (say, with a leaked
    secret key) is not enough, nor is the old fixed-value cookie."""
    forged = TimestampSigner(SECRET_KEY, salt="presenter-login").sign("made-up").decode()
    old = TimestampSigner(SECRET_KEY, salt="presenter").sign("presenter").decode()
    for cookie in (forged, old, "garbage", "x" * 5000):
        client.cookies.set(PRESENTER_COOKIE, cookie)
        assert client.get("/presenter", follow_redirects=False).status_code == 303, cookie[:20]


def test_the_login_lasts_as_long_as_the_setting_says(settings: Settings) -> None:
    for days, max_age in ((None, 14 * 24 * 3600), (2, 2 * 24 * 3600)):
        changed = (
            settings if days is None else settings.model_copy(update={"presenter_login_days": days})
        )
        with TestClient(create_app(changed)) as client:
            cookie = login(client).headers["set-cookie"]  # type: ignore[attr-defined]
            assert f"Max-Age={max_age}" in cookie, cookie
            with Session(client.app.state.engine) as db:  # type: ignore[attr-defined]
                rows = db.exec(select(PresenterLogin)).all()
            row = max(rows, key=lambda r: r.created_at)  # the apps share one database
            assert abs((row.expires_at - row.created_at).total_seconds() - max_age) < 1


def test_the_presenter_cookie_is_secure_over_https(app: FastAPI) -> None:
    for base, secure in (("http://testserver", False), ("https://testserver", True)):
        with TestClient(app, base_url=base) as client:
            response = client.post(
                "/presenter/login",
                data={"token": ADMIN_TOKEN},
                headers={"Sec-Fetch-Site": "same-origin"},
                follow_redirects=False,
            )
            assert response.status_code == 303
            assert ("secure" in response.headers["set-cookie"].lower()) is secure, base


# --------------------------------------------------------------------------- dashboard


def test_dashboard_lists_talks_and_their_sessions_with_links(client: TestClient) -> None:
    code = new_session(client, venue="Gothenburg")
    phase_action(client, code, "belief", "open")
    vote(client, code, "belief", "agree")
    login(client)
    page = client.get("/presenter")
    soup = BeautifulSoup(page.text, "html.parser")
    row = next(tr for tr in soup.select("table.sessions tbody tr") if code in tr.text)
    cells = [td.get_text(" ", strip=True) for td in row.find_all("td")]
    assert "Gothenburg" in cells
    assert "1" in cells  # one participant
    assert "running" in cells
    links = {a["href"] for a in row.find_all("a")}
    assert f"/presenter/sessions/{code}" in links
    assert f"/presenter/sessions/{code}/results" in links
    assert f"/api/v1/sessions/{code}/export.csv" in links
    assert soup.find("a", href="/presenter/talks/emergence/results") is not None
    assert soup.find("a", href="/presenter/talks/emergence-scale/results") is not None


def test_creating_a_session_from_the_dashboard_opens_its_control_page(client: TestClient) -> None:
    login(client)
    response = post_form(
        client,
        "/presenter",
        "/presenter/sessions",
        talk="emergence",
        venue="Milan",
        held_on="2026-05-04",
        language="zh-Hans",
    )
    assert response.status_code == 303  # type: ignore[attr-defined]
    location = response.headers["location"]  # type: ignore[attr-defined]
    code = location.rsplit("/", 1)[1]
    session = client.get(f"/api/v1/sessions/{code}").json()
    assert session["venue"] == "Milan"
    assert session["held_on"] == "2026-05-04"
    assert session["language"] == "zh-Hans"
    page = client.get(location)
    assert page.status_code == 200
    assert code in page.text


def test_a_refused_session_form_says_why_and_creates_nothing(client: TestClient) -> None:
    login(client)
    for data, message in (
        ({"talk": "emergence", "venue": "  "}, "Please enter the venue"),
        ({"talk": "emergence", "venue": "X", "held_on": "yesterday"}, "not a valid date"),
        ({"talk": "no-such-talk", "venue": "X"}, "no such talk"),
        ({"talk": "emergence", "venue": "X", "language": "fr"}, "not available in that language"),
    ):
        response = post_form(client, "/presenter", "/presenter/sessions", **data)
        assert 400 <= response.status_code < 500, data  # type: ignore[attr-defined]
        assert message in response.text, data  # type: ignore[attr-defined]
    page = client.get("/presenter")
    assert BeautifulSoup(page.text, "html.parser").select("table.sessions tbody tr") == []


def test_session_status_words() -> None:
    p, o, c = PhaseState.pending, PhaseState.open, PhaseState.closed
    assert session_status([p, p]) == SessionStatus.not_started
    assert session_status([c, o, p]) == SessionStatus.running
    assert session_status([c, p]) == SessionStatus.running
    assert session_status([c, c]) == SessionStatus.finished


# --------------------------------------------------------------------------- control page


def test_control_page_shows_code_qr_phases_and_live_hookup(client: TestClient) -> None:
    code = new_session(client)
    login(client)
    page = client.get(f"/presenter/sessions/{code}")
    assert page.status_code == 200
    soup = BeautifulSoup(page.text, "html.parser")
    assert soup.select_one(".join__code").get_text(strip=True) == code
    assert soup.select_one(".join__qr svg") is not None
    assert f"testserver/j/{code}" in soup.select_one(".join__url").get_text()
    phases = [li["data-phase"] for li in soup.select(".phases > li")]
    assert phases == ["definition", "belief", "field", "revote"]
    live = soup.select_one("[sse-connect]")
    assert live["sse-connect"].startswith(f"/api/v1/sessions/{code}/events")
    # shortcuts are written on the buttons
    assert "→" in soup.select_one('[data-key="arrowright"]').get_text()
    assert soup.find("a", href=f"/presenter/sessions/{code}/projector") is not None
    assert soup.find("a", href=f"/api/v1/sessions/{code}/export.csv") is not None
    # the preview of the projector, fetched again as answers come in; before anything is asked
    # it shows the first phase
    preview = soup.select_one("#preview")
    assert preview["data-src"].startswith(f"/presenter/sessions/{code}/preview")
    assert "sse:counts" in preview["hx-trigger"]
    assert soup.select_one(".preview__slide")["data-phase"] == "definition"


def test_unknown_session_page_is_a_404(client: TestClient) -> None:
    login(client)
    assert client.get("/presenter/sessions/ZZZZZZ").status_code == 404
    assert client.get("/presenter/sessions/ZZZZZZ/projector").status_code == 404


def test_phase_actions_from_the_page_change_state_and_publish(
    client: TestClient, publisher: RecordingPublisher
) -> None:
    code = new_session(client)
    login(client)
    page = f"/presenter/sessions/{code}"
    for action, expected in (
        ("open", ("open", False)),
        ("reveal", ("open", True)),
        ("close", ("closed", True)),
        ("hide", ("closed", False)),
    ):
        before = len(publisher.facts)
        response = post_form(client, page, f"{page}/phases/belief/{action}")
        assert response.status_code == 303, action  # type: ignore[attr-defined]
        assert states(client, code)["belief"] == expected, action
        assert publisher.facts[before:] == [
            SessionChanged(session_id=publisher.facts[-1].session_id, code=code, phases=True)
        ]


def test_phase_action_with_htmx_returns_the_panel(client: TestClient) -> None:
    code = new_session(client)
    login(client)
    assert client.get(f"/presenter/sessions/{code}").status_code == 200
    response = client.post(
        f"/presenter/sessions/{code}/phases/definition/open",
        data={"seconds": "60"},
        headers={"HX-Request": "true", **SAME_ORIGIN},
    )
    assert response.status_code == 200
    soup = BeautifulSoup(response.text, "html.parser")
    assert soup.select_one(".strip")["data-current"] == "definition"
    countdown = soup.select_one(".strip .countdown")
    assert 55 <= float(countdown["data-closes-in"]) <= 60


def test_restart_timer_is_offered_only_on_a_phase_with_a_timer(client: TestClient) -> None:
    code = new_session(client)
    login(client)
    page = f"/presenter/sessions/{code}"

    def buttons(phase: str) -> tuple[str, bool]:
        soup = BeautifulSoup(client.get(f"{page}/panel").text, "html.parser")
        form = soup.select_one(f'.phase[data-phase="{phase}"] form.phase__open')
        seconds = form.select_one('input[name="seconds"]')
        return form.button.get_text(strip=True), seconds.has_attr("required")

    assert buttons("belief") == ("Open", False)
    post_form(client, page, f"{page}/phases/belief/open")
    assert buttons("belief") == ("Start timer", True)  # open without a countdown
    post_form(client, page, f"{page}/phases/belief/open", seconds="90")
    assert buttons("belief") == ("Restart timer", False)
    post_form(client, page, f"{page}/phases/belief/close")
    assert buttons("belief") == ("Reopen", False)


def test_a_refused_action_says_why_and_changes_nothing(client: TestClient) -> None:
    code = new_session(client)
    login(client)
    assert client.get(f"/presenter/sessions/{code}").status_code == 200
    headers = {"HX-Request": "true", **SAME_ORIGIN}
    closing = client.post(f"/presenter/sessions/{code}/phases/belief/close", headers=headers)
    assert closing.status_code == 409
    assert "not open" in closing.text
    bad_timer = client.post(
        f"/presenter/sessions/{code}/phases/belief/open", data={"seconds": "-5"}, headers=headers
    )
    assert bad_timer.status_code == 422
    too_long = client.post(
        f"/presenter/sessions/{code}/phases/belief/open", data={"seconds": "99999"}, headers=headers
    )
    assert too_long.status_code == 422
    unknown = client.post(f"/presenter/sessions/{code}/phases/nope/open", headers=headers)
    assert unknown.status_code == 422
    assert states(client, code)["belief"] == ("pending", False)


def test_api_actions_work_with_the_presenter_cookie(client: TestClient) -> None:
    code = new_session(client)
    login(client)
    response = client.post(f"/api/v1/sessions/{code}/phases/belief/open", params={"seconds": 30})
    assert response.status_code == 200
    assert states(client, code)["belief"] == ("open", False)


# --------------------------------------------------------------------------- next


def test_next_closes_the_open_phase_and_opens_the_following_one(
    client: TestClient, publisher: RecordingPublisher
) -> None:
    code = new_session(client)
    login(client)
    page = f"/presenter/sessions/{code}"
    assert post_form(client, page, f"{page}/next").status_code == 303  # type: ignore[attr-defined]
    assert states(client, code)["definition"] == ("open", False)
    assert post_form(client, page, f"{page}/next", seconds="45").status_code == 303  # type: ignore[attr-defined]
    now = states(client, code)
    assert now["definition"][0] == "closed"
    assert now["belief"][0] == "open"
    assert now["field"][0] == "pending"
    session = client.get(f"/api/v1/sessions/{code}").json()
    belief = next(p for p in session["phases"] if p["id"] == "belief")
    assert belief["closes_at"] is not None
    assert all(f.code == code and f.phases for f in publisher.facts)


def test_next_after_a_reopened_phase_goes_on_from_it(client: TestClient) -> None:
    code = new_session(client)
    phase_action(client, code, "definition", "open")
    phase_action(client, code, "definition", "close")
    phase_action(client, code, "belief", "open")
    phase_action(client, code, "belief", "close")
    phase_action(client, code, "definition", "open")  # more time for the first question
    login(client)
    page = f"/presenter/sessions/{code}"
    post_form(client, page, f"{page}/next")
    now = states(client, code)
    assert now["definition"][0] == "closed"
    assert now["field"][0] == "open"


def test_next_at_the_end_closes_the_last_phase_then_refuses(client: TestClient) -> None:
    code = new_session(client)
    for phase in ("definition", "belief", "field"):
        phase_action(client, code, phase, "open")
        phase_action(client, code, phase, "close")
    phase_action(client, code, "revote", "open")
    login(client)
    page = f"/presenter/sessions/{code}"
    post_form(client, page, f"{page}/next")
    assert all(state == "closed" for state, _ in states(client, code).values())
    refused = post_form(client, page, f"{page}/next")
    assert refused.status_code == 409  # type: ignore[attr-defined]
    assert "nothing left to open" in refused.text  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- countdown


def test_a_countdown_closes_the_phase_at_zero(
    client: TestClient, app: FastAPI, publisher: RecordingPublisher
) -> None:
    code = new_session(client)
    phase_action(client, code, "belief", "open", seconds=30)
    with Session(app.state.engine) as db:
        assert (
            voting.close_expired(db, publisher, now=datetime.now(UTC) + timedelta(seconds=10)) == []
        )
        assert states(client, code)["belief"][0] == "open"
        closed = voting.close_expired(db, publisher, now=datetime.now(UTC) + timedelta(seconds=31))
    assert closed == [code]
    assert states(client, code)["belief"][0] == "closed"
    assert publisher.facts[-1].phases


# --------------------------------------------------------------------------- projector


def test_projector_shows_the_open_question_with_qr_and_count(client: TestClient) -> None:
    code = new_session(client)
    phase_action(client, code, "belief", "open", seconds=60)
    for _ in range(3):
        vote(client, code, "belief", "agree")
    login(client)
    page = client.get(f"/presenter/sessions/{code}/projector")
    soup = BeautifulSoup(page.text, "html.parser")
    slide = soup.select_one(".slide")
    assert slide["data-phase"] == "belief"
    assert "stage--qr" in slide["class"]
    assert "personally think" in soup.select_one(".slide__q").get_text()
    assert soup.select_one(".qr-block svg") is not None
    assert soup.select_one(".qr-block__join").get_text(strip=True) == code
    assert soup.select_one("#n-belief").get_text(strip=True) == "3"
    assert soup.select_one(".countdown[data-closes-in]") is not None
    assert soup.select_one(".reveal") is None  # nothing shown before the reveal
    assert soup.select_one('form[data-key="arrowright"]') is not None
    assert soup.select_one('form[data-key="r"]')["action"].endswith(
        "/phases/belief/reveal?view=stage"
    )


def test_projector_shows_the_chart_and_a_sentence_once_revealed(client: TestClient) -> None:
    code = new_session(client)
    phase_action(client, code, "belief", "open")
    for choice in ("agree", "unsure", "unsure", "unsure"):
        vote(client, code, "belief", choice)
    phase_action(client, code, "belief", "close")
    phase_action(client, code, "belief", "reveal")
    login(client)
    stage = client.get(f"/presenter/sessions/{code}/projector/stage")
    soup = BeautifulSoup(stage.text, "html.parser")
    assert soup.select_one(".slide__q") is not None
    chart = soup.select_one("#chart-belief")
    assert chart is not None and chart.select_one("svg, .bars") is not None
    assert "75%" in chart.get_text()  # the plain sentence: three of four are unsure
    assert "stage--qr" not in soup.select_one(".slide")["class"]


def test_projector_before_any_phase_invites_the_room_to_join(client: TestClient) -> None:
    code = new_session(client)
    login(client)
    soup = BeautifulSoup(client.get(f"/presenter/sessions/{code}/projector").text, "html.parser")
    assert soup.select_one(".slide--welcome .qr-block__join").get_text(strip=True) == code


def test_projector_keys_act_on_the_current_phase(client: TestClient) -> None:
    code = new_session(client)
    phase_action(client, code, "belief", "open")
    login(client)
    assert client.get(f"/presenter/sessions/{code}/projector").status_code == 200
    headers = {"HX-Request": "true", **SAME_ORIGIN}
    reveal = client.post(
        f"/presenter/sessions/{code}/phases/belief/reveal?view=stage", headers=headers
    )
    assert reveal.status_code == 200
    assert "stage--revealed" in reveal.text
    nxt = client.post(f"/presenter/sessions/{code}/next?view=stage", headers=headers)
    assert 'data-phase="field"' in nxt.text
    assert states(client, code)["belief"] == ("closed", True)


def test_projector_speaks_the_session_language(client: TestClient) -> None:
    response = client.post(
        "/api/v1/sessions",
        json={"talk": "emergence", "venue": "Beijing", "language": "zh-Hans"},
        headers=AUTH,
    )
    code = response.json()["code"]
    phase_action(client, code, "belief", "open")
    login(client)
    page = client.get(f"/presenter/sessions/{code}/projector")
    assert "你个人认为" in page.text
    assert re.search(r'<html lang="zh-Hans"', page.text)


def _slide(markup: str, where: str) -> str:
    """The chart markup inside ``where``, with the ids that keep two drawings apart made alike."""
    found = BeautifulSoup(markup, "html.parser").select_one(where)
    assert found is not None, where
    return re.sub(r"-c\d+\b", "-c", "".join(str(svg) for svg in found.select("svg.chart")))


def test_the_control_page_previews_what_reveal_puts_on_the_projector(client: TestClient) -> None:
    """The preview is the projector's own chart: the gap for the perceived phase, not the phase's
    bars, once its phases are closed (until then its bars and a line saying the gap comes when
    voting closes); any phase can be previewed by hand, in the room's language; an unknown one
    is a 404."""
    response = client.post(
        "/api/v1/sessions",
        json={"talk": "emergence", "venue": "Beijing", "language": "zh-Hans"},
        headers=AUTH,
    )
    code = response.json()["code"]
    for phase in ("belief", "field"):
        phase_action(client, code, phase, "open")
    for own, seen in (("agree", "agree"), ("disagree", "agree"), ("unsure", "disagree")):
        for name in list(client.cookies.keys()):
            if name.startswith("bg_p_"):
                del client.cookies[name]
        for phase, choice in (("belief", own), ("field", seen)):
            response = client.post(
                f"/api/v1/sessions/{code}/votes", json={"phase": phase, "choice": choice}
            )
            assert response.status_code == 200, response.text
    phase_action(client, code, "belief", "close")  # the room is on the perceived phase
    login(client)
    # still open: the gap waits (redrawn after each vote it would tell each voter's pair)
    control = client.get(f"/presenter/sessions/{code}?lang=en")
    preview = client.get(f"/presenter/sessions/{code}/preview?lang=en")
    soup = BeautifulSoup(preview.text, "html.parser")
    slide = soup.select_one(".preview__slide")
    assert slide["data-phase"] == "field" and slide["data-shows"] == "gap_waits"
    assert slide.select_one("svg.chart--gap") is None
    assert slide.select_one("svg.chart--phase-field") is not None
    assert slide["lang"] == "zh-Hans" and "认知差距在投票结束后显示。" in slide.get_text()
    assert "not revealed yet" in soup.get_text()  # the laptop's language around it
    assert _slide(control.text, ".preview__slide") == _slide(preview.text, ".preview__slide")
    phase_action(client, code, "field", "reveal")
    stage = client.get(f"/presenter/sessions/{code}/projector/stage")
    assert "chart--gap" not in stage.text
    status = BeautifulSoup(stage.text, "html.parser").select_one(".reveal__status")
    assert status is not None and "认知差距在投票结束后显示。" in status.get_text()
    phase_action(client, code, "field", "close")
    control = client.get(f"/presenter/sessions/{code}?lang=en")
    preview = client.get(f"/presenter/sessions/{code}/preview?lang=en")
    slide = BeautifulSoup(preview.text, "html.parser").select_one(".preview__slide")
    assert slide["data-phase"] == "field" and slide["data-shows"] == "gap"
    assert "你们中 33% 的人" in slide.get_text()
    assert _slide(control.text, ".preview__slide") == _slide(preview.text, ".preview__slide")
    stage = client.get(f"/presenter/sessions/{code}/projector/stage")
    assert "chart--gap" in _slide(stage.text, ".reveal .chart-slot")
    assert "投票结束后显示" not in stage.text
    after = client.get(f"/presenter/sessions/{code}/preview")
    assert _slide(after.text, ".preview__slide") == _slide(stage.text, ".reveal .chart-slot")
    # another phase by hand: its own chart, as Reveal would show it
    belief = client.get(f"/presenter/sessions/{code}/preview?phase=belief")
    slide = BeautifulSoup(belief.text, "html.parser").select_one(".preview__slide")
    assert slide["data-phase"] == "belief" and slide["data-shows"] == "phase"
    assert slide.select_one(".chart-variant--slide svg.chart--phase-belief") is not None
    missing = client.get(f"/presenter/sessions/{code}/preview?phase=nope")
    assert missing.status_code == 404
    assert states(client, code)["field"] == ("closed", True)
