"""Real browsers against the real server: uvicorn on 127.0.0.1 with a temporary SQLite file, and
Debian's Chromium driven by Playwright. Every page opened through ``open_page`` fails the test
on a console error or a failed request."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests import liveserver
from tests.conftest import copy_sqlite_template, require
from tests.liveserver import LiveServer

CHROMIUM = os.environ.get("BELIEFGAP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_MISSING = (
    f"Chromium at {CHROMIUM} (the browser tests): apt-get install chromium (`make test` does "
    "it as root), or point BELIEFGAP_CHROMIUM at one"
)
AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
ADMIN_TOKEN = "e2e-admin-token-0123456789"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


def _serve(data_dir: Path, template: bytes) -> Iterator[LiveServer]:
    """A server on a copy of the run's migrated database, as a server that has started before
    (the browser tests' subject is the pages; the servers of tests/ migrate from nothing)."""
    running = liveserver.start(copy_sqlite_template(data_dir, template), ADMIN_TOKEN, timeout=30)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def live_server(tmp_path: Path, sqlite_template: bytes) -> Iterator[LiveServer]:
    yield from _serve(tmp_path, sqlite_template)


@pytest.fixture(scope="module")
def module_live_server(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: bytes
) -> Iterator[LiveServer]:
    """One server for the tests of a module (a server takes 2-3 s to start), for a module
    whose tests each work in a session of their own and look at nothing beyond it: no results
    pooled over a talk's sessions, no limits counted per address. Such a module says
    ``live_server`` is this one."""
    yield from _serve(tmp_path_factory.mktemp("live"), sqlite_template)


# Per module, not per session: a running sync Playwright owns an event loop, and other tests
# (tests/test_audience.py) start their own Playwright after these.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require(Path(CHROMIUM).exists() and shutil.which(CHROMIUM) is not None, CHROMIUM_MISSING)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield instance
        instance.close()


@dataclass
class PageProblems:
    """Console errors and failed requests seen on the pages of one test."""

    errors: list[str] = field(default_factory=list)

    def watch(self, page: Any, name: str) -> None:
        page.on(
            "console",
            lambda message: (
                self.errors.append(
                    f"{name} console: {message.text} ({message.location.get('url', '')})"
                )
                if message.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda error: self.errors.append(f"{name} page error: {error}"))

        def failed(request: Any) -> None:
            failure = request.failure or ""
            # A stream or fetch cut short by a navigation or a closed page is not a failure.
            if "ERR_ABORTED" in failure:
                return
            self.errors.append(f"{name} request failed: {request.method} {request.url} {failure}")

        page.on("requestfailed", failed)

        def bad_status(response: Any) -> None:
            if response.status >= 500:
                self.errors.append(f"{name} HTTP {response.status}: {response.url}")

        page.on("response", bad_status)


@pytest.fixture
def problems() -> Iterator[PageProblems]:
    seen = PageProblems()
    yield seen
    assert seen.errors == [], "\n".join(seen.errors)


@pytest.fixture
def open_page(browser: Any, problems: PageProblems) -> Iterator[Callable[..., Any]]:
    """open_page(name, viewport=(390, 844), locale="en-GB") -> a page in its own context (its
    own cookie jar: one phone, or the presenter's laptop)."""
    contexts: list[Any] = []

    def _open(name: str, viewport: tuple[int, int] = (390, 844), locale: str = "en-GB") -> Any:
        context = browser.new_context(
            viewport={"width": viewport[0], "height": viewport[1]}, locale=locale
        )
        contexts.append(context)
        page = context.new_page()
        problems.watch(page, name)
        return page

    yield _open
    for context in contexts:
        context.close()


def axe_violations(page: Any, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
    """Run axe-core in the page; the serious and critical violations, one line each."""
    require(
        AXE.exists(),
        f"axe-core at {AXE} (the accessibility checks): npm install --prefix tests/e2e "
        "(`make test` does it)",
    )
    # Evaluated by the browser's debugging protocol: a script tag would be inline script, which
    # the app's Content-Security-Policy blocks.
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("async () => await axe.run(document)")
    assert result["passes"], "axe-core ran no checks"
    return [
        f"{v['id']} ({v['impact']}): {v['help']} -> {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in impacts
    ]
