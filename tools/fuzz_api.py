"""A short schemathesis pass over the real API, as CI runs it: the app under uvicorn on
127.0.0.1 with a temporary SQLite file, the bundled talks and a session with an open phase;
then schemathesis, every check, 100 examples per operation (``--max-examples``) beside its
coverage cases, once with the admin token and once without (with half as many: most operations
can only refuse). Path parameters are drawn half the
time from real names (the session's code, a talk's slug, its phases, its charts; one talk made
in the editor, so that new versions reach the checks) so that the calls reach more than a 404.

Then two passes of our own, with hypothesis, over what the schema cannot describe: the talk
editor's form (``/presenter/talks/editor`` and its checks, fields named by their path with
positions in other digits, of thousands of digits, with newlines; buttons; numbers no float
holds) and talk files as TOML text for the talk API (deep nesting, long dotted keys, huge
numbers). Each answer must be no server error, and a refusal must leave the talks as they were.

Prints the number of cases and failures of each pass; any failure fails the run (exit status 1).

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
values = ["emergence", "emergence-scale", "fuzz-talk", "nosuch"]
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
    httpx.post(  # a talk made in the editor: one that takes new versions
        f"{server.url}/api/v1/talks/emergence/copy",
        json={"slug": "fuzz-talk"},
        headers=server.auth,
        timeout=10,
    ).raise_for_status()
    return code


# --------------------------------------------------------------------------- our own passes

POSITIONS = ["0", "1", "2", "00", "9999", "²", "١", "1\n", " 1", "-1", "1x", "9" * 5000, ""]
"""Positions in the editor's field names and buttons: real ones and every kind that broke it."""
NUMBERS = ["0", "100", "-5", "1e999", "nan", "inf", "9" * 5000, "١٢", "²", "", "x"]
FIELD_SHAPES = [
    "slug",
    "languages",
    "title.{lang}",
    "phases.{i}.id",
    "phases.{i}.kind",
    "phases.{i}.of",
    "phases.{i}.answer",
    "phases.{i}.question.{lang}",
    "phases.{i}.range.{j}",
    "phases.{i}.options.{j}.id",
    "phases.{i}.options.{j}.label.{lang}",
    "phases.{i}.options.{j}.holds",
    "selected",
    "preview_lang",
    "mode",
    "original",
]
BUTTONS = ["save", "add_phase:stance", "add_phase:perceived", "add_phase:nosuch"] + [
    f"{name}:{{i}}{suffix}"
    for name, suffix in [
        ("remove_phase", ""),
        ("up_phase", ""),
        ("down_phase", ""),
        ("select", ""),
        ("add_option", ""),
        ("copy_options", ""),
        ("remove_option", ":{j}"),
        ("up_option", ":{j}"),
        ("down_option", ":{j}"),
    ]
]
EDITOR_PATHS = ["/presenter/talks/editor", "/presenter/talks/editor/check"]
TOML_PIECES = [
    'slug = "fuzz-talk"\n',
    'languages = ["en"]\n',
    "title.en = 'T'\n",
    "[[phases]]\n",
    "id = 'q'\n",
    "kind = 'choice'\n",
    "question.en = 'Q?'\n",
    "[[phases.options]]\n",
    "label.en = 'A'\n",
    "range = [0, 100]\n",
    "x = " + "9" * 5000 + "\n",
    "x = " + "[" * 600 + "]" * 600 + "\n",
    "x = " + "{a=" * 600 + "1" + "}" * 600 + "\n",
    "a" + ".a" * 3000 + " = 1\n",
    "x = 1e999\n",
    "x = nan\n",
    "[a.b.c]\n",
    "= = =\n",
]


def _talks(client: httpx.Client) -> list[object]:
    """The editor's talk as the presenter reads it (``client``: the pass's own, with the token:
    a client built for each read took about ten times the read itself)."""
    answer = client.get("/api/v1/talks/fuzz-talk", timeout=30)
    return [answer.status_code, answer.json().get("version")]


def hypothesis_pass(
    server: liveserver.LiveServer, name: str, examples: int, seed: int
) -> tuple[int, int, int]:
    """``name``: "editor" (the editor's form) or "toml" (talk files for the talk API); (exit
    status, cases, failures: a server error, or a refusal that changed the talk)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    failures: list[str] = []
    cases = 0
    client = httpx.Client(base_url=server.url, headers=server.auth, timeout=60)

    def filled(shape: str, data: st.DataObject) -> str:
        return shape.format(
            i=data.draw(st.sampled_from(POSITIONS)),
            j=data.draw(st.sampled_from(POSITIONS)),
            lang=data.draw(st.sampled_from(["en", "zh-Hans", "xx", ""])),
        )

    def send(method: str, path: str, **kwargs: object) -> None:
        nonlocal cases
        cases += 1
        before = _talks(client)
        response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
        where = f"{method} {path} {str(kwargs)[:300]}: {response.status_code}"
        if response.status_code >= 500:
            failures.append(f"{where} {response.text[:200]}")
        elif response.status_code >= 400 and _talks(client) != before:
            failures.append(f"{where} changed the talk")

    strategy = st.data()

    @hypothesis_seed(seed)
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def editor(data: st.DataObject) -> None:
        fields = {"mode": "update", "original": "fuzz-talk", "languages": "en", "slug": ""}
        for _ in range(data.draw(st.integers(0, 12))):
            shape = data.draw(st.sampled_from(FIELD_SHAPES))
            value = data.draw(st.sampled_from(NUMBERS) | st.text(max_size=30))
            fields[filled(shape, data)] = value
        fields["op"] = filled(data.draw(st.sampled_from(BUTTONS)), data)
        path = data.draw(st.sampled_from(EDITOR_PATHS))
        send("POST", path, data=fields, follow_redirects=False)

    @hypothesis_seed(seed)
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(st.sampled_from(TOML_PIECES) | st.text(max_size=40), max_size=12), strategy)
    def toml(pieces: list[str], data: st.DataObject) -> None:
        text = "".join(pieces)
        headers = {"Content-Type": "application/toml"}
        method, path = data.draw(
            st.sampled_from([("POST", "/api/v1/talks"), ("PUT", "/api/v1/talks/fuzz-talk")])
        )
        send(method, path, content=text.encode("utf-8", "surrogatepass"), headers=headers)

    print(f"--- {name}", flush=True)
    try:
        (editor if name == "editor" else toml)()
    finally:
        client.close()
    for failure in failures[:20]:
        print(failure)
    print(f"{name}: {cases} cases, {len(failures)} failures")
    return (1 if failures else 0), cases, len(failures)


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
                # without a token most operations can only refuse: half the examples
                run_pass(server, config, "without a token", False, args.examples // 2, args.seed),
            ]
            for name in ("editor", "toml"):
                results.append(hypothesis_pass(server, name, args.examples * 3, args.seed))
        finally:
            server.stop()
        output = server.output()  # read before the temporary directory goes
        errors = [line for line in output.splitlines() if "Traceback" in line]
    cases = sum(r[1] for r in results)
    failures = sum(r[2] for r in results)
    failed = any(r[0] != 0 for r in results) or bool(errors)
    print(f"schemathesis: {cases} cases, {failures} failures; server tracebacks: {len(errors)}")
    if errors:
        print(output)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
