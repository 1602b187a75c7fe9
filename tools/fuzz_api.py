"""A short schemathesis pass over the real API, as CI runs it: the app under uvicorn on
127.0.0.1 with a temporary SQLite file, the bundled talks and a session with an open phase;
then schemathesis, every check, 100 examples per operation (``--max-examples``) beside its
coverage cases, once with the admin token and once without. Path parameters are drawn half the
time from real names (the session's code, a talk's slug, its phases, its charts) so that the
calls reach more than a 404. Prints the number of cases and failures of each pass; any failure
fails the run (exit status 1).

    python tools/fuzz_api.py [--examples N] [--seed N]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx2 as httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import liveserver  # noqa: E402  (the test suite's way of starting the real server)

ADMIN_TOKEN = "fuzz-admin-token-0123456789"  # noqa: S105  (a throwaway server)
CASES = re.compile(r"(\d+) generated(?:, (\d+) found (\d+) unique failures?)?")

CONFIG = """
# Refusals the schema cannot express are not failures when the request fits the schema: an
# unknown phase or option, a phase that takes a number given a choice, a language that is
# not one (422), a phase that is not open (409), a rate limit (429).
[checks]
positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429"]
negative_data_rejection.expected-statuses = [
    "400", "401", "403", "404", "405", "409", "413", "422", "429",
]

[dictionaries.code]
values = ["{code}", "NOSUCH"]
[dictionaries.slug]
values = ["emergence", "emergence-scale", "nosuch"]
[dictionaries.phase]
values = ["definition", "belief", "field", "revote", "nosuch"]
[dictionaries.action]
values = ["open", "close", "reveal", "hide"]
[dictionaries.chart]
values = ["gap.svg", "gap.png", "definition.svg", "shift.svg", "nosuch.svg"]

[parameters]
"path.code" = {{ dictionary = "code", probability = 0.5 }}
"path.slug" = {{ dictionary = "slug", probability = 0.5 }}
"path.phase_id" = {{ dictionary = "phase", probability = 0.5 }}
"path.action" = {{ dictionary = "action", probability = 0.5 }}
"path.chart_name" = {{ dictionary = "chart", probability = 0.5 }}
"body.phase" = {{ dictionary = "phase", probability = 0.5 }}
"body.talk" = {{ dictionary = "slug", probability = 0.5 }}

# The event stream of a real session never ends: that operation gets unknown codes only.
[dictionaries.unknown_code]
values = ["NOSUCH", "ZZZZZZ"]

[[operations]]
include-name = "GET /api/v1/sessions/{{code}}/events"
parameters = {{ "path.code" = {{ dictionary = "unknown_code", probability = 1.0 }} }}
"""


def prepare(server: liveserver.LiveServer) -> str:
    """A session with its first phase open and one answer in it; its code."""
    created = httpx.post(
        f"{server.url}/api/v1/sessions",
        json={"talk": "emergence", "venue": "Fuzz"},
        headers=server.auth,
        timeout=10,
    )
    created.raise_for_status()
    code = str(created.json()["code"])
    httpx.post(
        f"{server.url}/api/v1/sessions/{code}/phases/definition/open",
        headers=server.auth,
        timeout=10,
    ).raise_for_status()
    httpx.post(
        f"{server.url}/api/v1/sessions/{code}/votes",
        json={"phase": "definition", "choice": "d1"},
        timeout=10,
    ).raise_for_status()
    return code


def run_pass(
    server: liveserver.LiveServer, config: Path, name: str, token: bool, examples: int, seed: int
) -> tuple[int, int, int]:
    """One schemathesis run; (exit status, cases, failures)."""
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        f"{server.url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(examples),
        "--seed",
        str(seed),
        "--workers",
        "2",
        "--phases",
        "examples,coverage,fuzzing",
        "--request-timeout",
        "10",
        "--no-color",
        "--generation-database",
        "none",
    ]
    if token:
        command += ["--header", f"Authorization: Bearer {server.admin_token}"]
    print(f"--- {name}", flush=True)
    done = subprocess.run(  # noqa: S603  (our own interpreter's schemathesis, fixed arguments)
        command, capture_output=True, text=True, check=False, cwd=config.parent
    )
    output = done.stdout + done.stderr
    found = CASES.findall(output)
    cases = int(found[-1][0]) if found else 0
    failures = int(found[-1][2] or 0) if found else 0
    if done.returncode != 0:
        print(output)
    else:
        print("\n".join(output.strip().splitlines()[-12:]))
    print(f"{name}: {cases} cases, {failures} failures (exit status {done.returncode})")
    return done.returncode, cases, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100, help="per operation (default 100)")
    parser.add_argument("--seed", type=int, default=14, help="schemathesis's seed (default 14)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="beliefgap-fuzz-") as tmp:
        data_dir = Path(tmp)
        server = liveserver.start(data_dir, ADMIN_TOKEN, args=("--no-access-log",))
        try:
            code = prepare(server)
            config = data_dir / "schemathesis.toml"
            config.write_text(CONFIG.format(code=code), encoding="utf-8")
            results = [
                run_pass(server, config, "with the admin token", True, args.examples, args.seed),
                run_pass(server, config, "without a token", False, args.examples, args.seed),
            ]
        finally:
            server.stop()
        errors = [line for line in server.output().splitlines() if "Traceback" in line]
    cases = sum(r[1] for r in results)
    failures = sum(r[2] for r in results)
    failed = any(r[0] != 0 for r in results) or bool(errors)
    print(f"schemathesis: {cases} cases, {failures} failures; server tracebacks: {len(errors)}")
    if errors:
        print(server.output())
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
