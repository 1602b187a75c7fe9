"""Every screen under the Content-Security-Policy in real Chromium: no violation reported, no
console error, and the parts that run scripts (htmx swaps, the live stream, the keyboard) work."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import ADMIN_TOKEN, LiveServer
from tests.e2e.test_accessibility import run_talk

WAIT_MS = 10_000
WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  const where = `${event.sourceFile}:${event.lineNumber}`;
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI} ${where}`);
});
"""
"""Added before any page script runs (Playwright's init script is not subject to the policy)."""


def _violations(page: Any) -> list[str]:
    return list(page.evaluate("() => window.__violations || []"))


def test_every_screen_runs_under_the_policy_without_a_violation(
    live_server: LiveServer, open_page: Any
) -> None:
    code = run_talk(live_server, until="revote", reveal=False)
    seen: dict[str, list[str]] = {}

    phone = open_page("phone")
    phone.add_init_script(WATCH)
    phone.goto(f"{live_server.url}/")
    phone.fill("input[name=code]", code)
    phone.press("input[name=code]", "Enter")
    phone.wait_for_selector("#aud-q-revote", timeout=WAIT_MS)
    phone.locator(".aud-option").first.click()  # an htmx vote, swapped in
    phone.wait_for_selector(".aud-option--chosen", timeout=WAIT_MS)
    seen["phone"] = _violations(phone)

    laptop = open_page("laptop", viewport=(1920, 1080))
    laptop.add_init_script(WATCH)
    laptop.goto(f"{live_server.url}/presenter")
    laptop.fill("#token", ADMIN_TOKEN)
    laptop.click("button[type=submit]")
    laptop.wait_for_selector("table.sessions", timeout=WAIT_MS)
    seen["login and dashboard"] = _violations(laptop)
    laptop.goto(f"{live_server.url}/presenter/sessions/{code}")
    laptop.wait_for_selector(".control", timeout=WAIT_MS)
    laptop.keyboard.press("r")  # reveal, by the page's own script and htmx
    laptop.wait_for_function(
        "() => document.querySelector('.strip [data-key=r]').textContent.includes('Hide')",
        timeout=WAIT_MS,
    )
    # The phone follows through its live stream, under the same policy.
    phone.wait_for_selector("#revealed-results [data-phase=revote]", timeout=WAIT_MS)
    seen["control"] = _violations(laptop)
    seen["phone, live"] = _violations(phone)

    for name, path in (
        ("projector", f"/presenter/sessions/{code}/projector"),
        ("results", f"/presenter/sessions/{code}/results"),
        ("talk results", "/presenter/talks/emergence/results"),
        ("report", f"/presenter/sessions/{code}/report.html"),
    ):
        laptop.goto(f"{live_server.url}{path}")
        laptop.wait_for_load_state("load")
        seen[name] = _violations(laptop)
    laptop.goto(f"{live_server.url}/presenter/sessions/{code}/projector")
    laptop.wait_for_selector("#stage .slide", timeout=WAIT_MS)
    laptop.keyboard.press("r")  # hide again, from the projector
    laptop.wait_for_selector("#stage .slide:not(.stage--revealed)", timeout=WAIT_MS)
    seen["projector, keys"] = _violations(laptop)

    assert {name: found for name, found in seen.items() if found} == {}
