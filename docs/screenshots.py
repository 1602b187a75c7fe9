"""Refresh the README's screenshots: `.venv/bin/python docs/screenshots.py`.

Starts the app (uvicorn on 127.0.0.1, a temporary SQLite file), logs the presenter in, creates a
session of the bundled `emergence` talk from the dashboard, and runs it with the projector's
keyboard while thirty people answer: one phone in headless Chromium, the others through the
public vote API. Saves to docs/screenshots/:

- phone.png      390 wide   the phone page once the talk has ended: its summary, the belief gap
                            and how views moved;
- control.png    1440x900   the presenter's control page while the room answers, previewing the
                            belief gap slide that Reveal will show;
- projector.png  1920x1080  the belief gap slide, revealed;
- results.png    1440 wide  the top of the session's results page;
- view-live.png  1280x720   the read-only view following the room: a question revealed while
                            still open, its chart beside the QR code;
- view-*.png     1280x720   the read-only view in its display modes (VIEW_MODES; the overlay laid
                            over a coloured picture, as a video mixer would), and
  qr-slide.png   1920x1080  the QR slide.

Needs Chromium (BELIEFGAP_CHROMIUM, default /usr/bin/chromium) and Playwright for Python.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import liveserver  # noqa: E402

OUT = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = os.environ.get("BELIEFGAP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "screenshots-admin-token-0123456789"  # noqa: S105 (a temporary server)
WAIT_MS = 15_000
PHASES = ("definition", "belief", "field", "revote")


def the_room() -> list[tuple[str, str, str, str]]:
    """Thirty people's answers (definition, belief, field, revote), shaped like the talk's own
    polls: 40% agree, 70% think most of the field agrees, most of those who agreed move."""
    groups = {
        "agree": (["agree"] * 11 + ["unsure"], ["agree"] * 2 + ["disagree"] * 2 + ["unsure"] * 8),
        "disagree": (["agree"] * 3 + ["disagree"] * 2, ["disagree"] * 4 + ["unsure"]),
        "unsure": (
            ["agree"] * 7 + ["disagree"] + ["unsure"] * 5,
            ["unsure"] * 9 + ["agree"] * 2 + ["disagree"] * 2,
        ),
    }
    definitions = ["d1"] * 15 + ["d4"] * 8 + ["d3"] * 4 + ["other"] * 2 + ["d2"]
    random.Random(7).shuffle(definitions)
    people: list[tuple[str, str, str, str]] = []
    for belief, (fields, revotes) in groups.items():
        for field, revote in zip(fields, revotes, strict=True):
            people.append((definitions[len(people)], belief, field, revote))
    return people


def settled(page: Any) -> None:
    page.wait_for_function(
        "() => document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')"
        " === null",
        timeout=WAIT_MS,
    )


def text_is(page: Any, selector: str, expected: str) -> None:
    page.wait_for_function(
        "([s, e]) => { const el = document.querySelector(s);"
        " return el !== null && el.textContent.trim() === e; }",
        arg=[selector, expected],
        timeout=WAIT_MS,
    )


def stage(projector: Any, phase: str, revealed: bool) -> None:
    projector.wait_for_function(
        "([p, r]) => { const s = document.querySelector('#stage .slide');"
        " return s !== null && s.dataset.phase === p"
        " && s.classList.contains('stage--revealed') === r; }",
        arg=[phase, revealed],
        timeout=WAIT_MS,
    )
    settled(projector)


def press(projector: Any, key: str) -> None:
    settled(projector)
    projector.wait_for_timeout(1100)  # the projector ignores a second key within a second
    projector.keyboard.press(key)


def tap(phone: Any, phase: str, option: str) -> None:
    phone.wait_for_function(
        "(p) => { const panel = document.querySelector('#aud-panel');"
        " return panel !== null && panel.dataset.open === p + '@'; }",
        arg=phase,
        timeout=WAIT_MS,
    )
    settled(phone)
    phone.locator(f"#aud-opt-{phase}-{option}").click()
    phone.wait_for_selector(f"#aud-opt-{phase}-{option}.aud-option--chosen", timeout=WAIT_MS)
    settled(phone)


VIEW_MODES = (
    ("view-gap", "?phase=field"),
    ("view-overlay", "?phase=belief&mode=overlay&theme=dark"),
    ("view-qr", "?mode=qr"),
    ("view-dark-cb", "?phase=definition&theme=dark&palette=cb"),
)
"""The read-only view's screenshots at 1280x720: a pinned phase (the belief gap), the overlay
(transparent, over SCENE), the QR code alone, dark with the colour-blind palette."""
SCENE = "linear-gradient(#2a6f97 0 58%, #61a5c2 58% 62%, #a9d6e5 62%)"
"""What the overlay is laid over in its screenshot: a stand-in for a camera or a slide."""


def run(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    people = the_room()
    with tempfile.TemporaryDirectory() as tmp:
        server = liveserver.start(
            Path(tmp), TOKEN, public_url="https://polls.example.org", args=("--no-access-log",)
        )
        url = server.url
        crowd = [httpx.Client(base_url=url, timeout=10) for _ in people[1:]]
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )
                laptop = browser.new_context(viewport={"width": 1440, "height": 900})
                control = laptop.new_page()
                control.goto(f"{url}/presenter/login")
                control.locator("#token").fill(TOKEN)
                control.locator(".login__form button[type=submit]").click()
                control.wait_for_url(f"{url}/presenter")
                form = control.locator("form.new-session:has(input[name=talk][value=emergence])")
                form.locator("input[name=venue]").fill("Copenhagen")
                form.locator("input[name=held_on]").fill("2024-05-02")
                form.locator("button[type=submit]").click()
                control.wait_for_url("**/presenter/sessions/*")
                code = control.url.rstrip("/").rsplit("/", 1)[-1]
                # The read-only view's address (docs/slides.md), made on the control page.
                tokens = laptop.new_page()
                tokens.goto(f"{url}/presenter/sessions/{code}")
                tokens.locator("[data-action=view-issue]").click()
                address = tokens.locator("[data-token=view]").input_value()
                token = address.rsplit("/", 1)[-1]
                tokens.close()
                viewer = browser.new_context(viewport={"width": 1280, "height": 720})
                view = viewer.new_page()

                projector = laptop.new_page()
                projector.set_viewport_size({"width": 1920, "height": 1080})
                projector.goto(f"{url}/presenter/sessions/{code}/projector")
                projector.mouse.move(0, 0)

                phone_context = browser.new_context(
                    viewport={"width": 390, "height": 844}, locale="en-GB"
                )
                phone = phone_context.new_page()
                phone.goto(f"{url}/j/{code}")

                for index, phase in enumerate(PHASES):
                    press(projector, "ArrowRight")
                    stage(projector, phase, revealed=False)
                    tap(phone, phase, people[0][index])
                    for person, answers in zip(crowd, people[1:], strict=True):
                        voted = person.post(
                            f"/api/v1/sessions/{code}/votes",
                            json={"phase": phase, "choice": answers[index]},
                        )
                        voted.raise_for_status()
                    text_is(projector, f"#n-{phase}", str(len(people)))
                    press(projector, "r")
                    stage(projector, phase, revealed=True)
                    if phase == "belief":  # revealed while still open: beside the QR code
                        view.goto(f"{url}/view/{token}")
                        view.wait_for_selector(
                            ".stage--revealed svg.chart >> visible=true", timeout=WAIT_MS
                        )
                        settled(view)
                        time.sleep(0.5)  # bars grow with a short transition
                        view.screenshot(path=str(out / "view-live.png"))
                    if phase == "field":
                        # the belief gap is drawn once voting closes: C on the projector
                        press(projector, "c")
                        control.wait_for_selector(
                            '.preview__slide[data-shows="gap"] svg.chart--gap', timeout=WAIT_MS
                        )
                        settled(control)
                        control.screenshot(path=str(out / "control.png"))
                        projector.wait_for_selector(
                            ".chart-slot--gap svg.chart--gap >> visible=true", timeout=WAIT_MS
                        )
                        time.sleep(0.5)  # bars grow with a short transition
                        projector.screenshot(path=str(out / "projector.png"))
                press(projector, "ArrowRight")  # closes the revote
                # The talk is over: the phone keeps its summary, the gap and how views moved.
                ended = httpx.patch(
                    f"{url}/api/v1/sessions/{code}",
                    json={"ended": True},
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )
                ended.raise_for_status()
                phone.wait_for_selector(
                    "#revealed-results[data-ended] .aud-summary [data-key=shift]", timeout=WAIT_MS
                )
                settled(phone)
                phone.evaluate("window.scrollTo(0, 0)")
                tall = min(1700, phone.evaluate("document.documentElement.scrollHeight"))
                phone.screenshot(
                    path=str(out / "phone.png"),
                    full_page=True,
                    clip={"x": 0, "y": 0, "width": 390, "height": tall},
                )

                results = laptop.new_page()
                results.goto(f"{url}/presenter/sessions/{code}/results")
                results.wait_for_selector(".chart-block--gap svg", state="attached")
                height = min(2400, results.evaluate("document.documentElement.scrollHeight"))
                results.screenshot(
                    path=str(out / "results.png"),
                    full_page=True,
                    clip={"x": 0, "y": 0, "width": 1440, "height": height},
                )
                # The read-only view in its display modes, and the QR slide (docs/slides.md).
                for name, query in VIEW_MODES:
                    view.goto(f"{url}/view/{token}{query}")
                    view.wait_for_selector("#stage .slide", timeout=WAIT_MS)
                    settled(view)
                    time.sleep(0.5)  # bars grow with a short transition
                    if "overlay" in query:
                        view.evaluate(f"document.documentElement.style.background = '{SCENE}'")
                    view.screenshot(path=str(out / f"{name}.png"))
                slide = control.request.get(f"{url}/presenter/sessions/{code}/qr-slide.png")
                (out / "qr-slide.png").write_bytes(slide.body())
                browser.close()
        finally:
            for person in crowd:
                person.close()
            server.stop()
    shots = ("phone", "control", "projector", "results", "view-live", *(n for n, _ in VIEW_MODES))
    for name in shots:
        print(out / f"{name}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the PNG files")
    run(parser.parse_args().out)


if __name__ == "__main__":
    main()
