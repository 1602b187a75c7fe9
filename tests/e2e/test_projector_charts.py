"""The projector's revealed charts in a real browser: the headline says what the numbers support
(a tie names both answers, a 40% plurality is not "most"), and choice and estimate charts use the
slide at 1920x1080 and 1280x720 with labels of at least 28 px, measured on the rendered SVG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.e2e.conftest import ADMIN_TOKEN, LiveServer

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SIZES = ((1920, 1080), (1280, 720))
SHOTS = Path(__file__).resolve().parent / "screenshots"


@pytest.fixture
def live_server(module_live_server: LiveServer) -> LiveServer:
    """One server for this module's tests: each works in a session of its own."""
    return module_live_server


def revealed_session(server: LiveServer, talk: str, phase: str, answers: list[Any]) -> str:
    """A session whose ``phase`` has these answers (one voter each), closed and revealed."""
    with httpx.Client(base_url=server.url, headers=AUTH) as api:
        code = api.post("/api/v1/sessions", json={"talk": talk, "venue": "Room"}).json()["code"]
        assert api.post(f"/api/v1/sessions/{code}/phases/{phase}/open").status_code == 200
        for answer in answers:
            key = "value" if isinstance(answer, int) else "choice"
            with httpx.Client(base_url=server.url) as phone:
                r = phone.post(f"/api/v1/sessions/{code}/votes", json={"phase": phase, key: answer})
                assert r.status_code == 200, r.text
        for action in ("close", "reveal"):
            assert api.post(f"/api/v1/sessions/{code}/phases/{phase}/{action}").status_code == 200
    return str(code)


def projector(open_page: Any, server: LiveServer, code: str, size: tuple[int, int]) -> Any:
    page = open_page("projector", viewport=size)
    page.goto(f"{server.url}/presenter/login")
    page.locator("#token").fill(ADMIN_TOKEN)
    page.locator(".login__form button[type=submit]").click()
    page.wait_for_url(f"{server.url}/presenter")
    page.goto(f"{server.url}/presenter/sessions/{code}/projector")
    page.wait_for_selector(".stage--revealed .chart-variant--slide svg")
    return page


MEASURE = """() => {
  const svg = [...document.querySelectorAll('.stage--revealed svg.chart')]
    .find(s => s.getBoundingClientRect().width > 0);
  const box = svg.getBoundingClientRect();
  const scale = svg.getScreenCTM().a;
  const texts = [...svg.querySelectorAll('text')].map(t => ({
    text: t.textContent,
    px: parseFloat(t.getAttribute('font-size')) * scale,
    height: t.getBoundingClientRect().height,
    bottom: t.getBoundingClientRect().bottom,
  }));
  return {width: box.width, height: box.height, bottom: box.bottom, texts,
          scrolls: document.documentElement.scrollHeight > window.innerHeight};
}"""


def measure(page: Any, size: tuple[int, int], name: str) -> dict[str, Any]:
    found = page.evaluate(MEASURE)
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"projector-{name}-{size[0]}x{size[1]}.png"))
    width, height = size
    assert found["width"] >= width * 2 / 3, (name, size, found["width"])
    assert found["bottom"] <= height + 1 and not found["scrolls"], (name, size)
    small = [t for t in found["texts"] if t["px"] < 28 - 0.01]
    assert not small, (name, size, [(t["text"], round(t["px"], 1)) for t in small])
    # the rendered glyph boxes agree: every line at least 28 px tall on screen
    assert min(t["height"] for t in found["texts"]) >= 28, (name, size)
    return found


@pytest.mark.parametrize("size", SIZES, ids=["1920x1080", "1280x720"])
def test_a_tie_and_a_plurality_on_the_projector(
    live_server: LiveServer, open_page: Any, size: tuple[int, int]
) -> None:
    tie = revealed_session(live_server, "emergence", "definition", ["d1", "d1", "d3", "d3", "d4"])
    page = projector(open_page, live_server, tie, size)
    sentence = page.locator(".stage--revealed .chart-sentence").inner_text().strip()
    assert sentence.startswith("Tied as the most common answers: “A property the model shows")
    assert "“A property absent in smaller models" in sentence
    assert sentence.endswith("40% each of 5 answers.") and "Most" not in sentence
    measure(page, size, "tie")

    plural = revealed_session(
        live_server, "emergence", "definition", ["d1", "d1", "d2", "d3", "d4"]
    )
    page = projector(open_page, live_server, plural, size)
    sentence = page.locator(".stage--revealed .chart-sentence").inner_text().strip()
    assert sentence.startswith("The most common answer was “A property the model shows")
    assert sentence.endswith("40% of 5 answers, not a majority.") and "Most" not in sentence
    measure(page, size, "plurality")


@pytest.mark.parametrize("size", SIZES, ids=["1920x1080", "1280x720"])
def test_an_estimate_chart_fills_the_slide(
    live_server: LiveServer, open_page: Any, size: tuple[int, int]
) -> None:
    code = revealed_session(live_server, "emergence-scale", "field_pct", [40, 55, 60, 62, 70, 85])
    page = projector(open_page, live_server, code, size)
    assert "mean" in page.locator(".stage--revealed .chart-sentence").inner_text().lower() or (
        "estimate" in page.locator(".stage--revealed .chart-sentence").inner_text()
    )
    measure(page, size, "estimate")
