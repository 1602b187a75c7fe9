from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from app.cli import main
from app.talkfile import bundled_talk_files


@pytest.fixture(autouse=True)
def data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("BELIEFGAP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BELIEFGAP_PUBLIC_URL", "http://10.0.0.5:8000")
    return tmp_path


def test_talks_lists_the_bundled_talks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["talks"]) == 0
    out = capsys.readouterr().out
    assert "emergence:" in out and "emergence-scale:" in out and "revote (revote)" in out


def test_talks_validates_files_and_reports_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["talks", *map(str, bundled_talk_files())]) == 0
    assert capsys.readouterr().out.count(": ok") == 2
    broken = tmp_path / "broken.toml"
    broken.write_text(
        bundled_talk_files()[0]
        .read_text(encoding="utf-8")
        .replace('kind = "stance"', 'kind = "vibe"'),
        encoding="utf-8",
    )
    assert main(["talks", str(broken)]) == 2
    assert "broken.toml: phase 'belief': unknown kind 'vibe'" in capsys.readouterr().err


def test_talks_reports_every_problem_of_every_file_and_a_bundled_slug(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = next(p for p in bundled_talk_files() if p.name == "emergence.toml")
    text = seed.read_text(encoding="utf-8")
    two = tmp_path / "two.toml"
    two.write_text(
        text.replace('slug = "emergence"', 'slug = "two"')
        .replace('kind = "stance"', 'kind = "vibe"')
        .replace('id = "d2"', 'id = "d1"'),
        encoding="utf-8",
    )
    clash = tmp_path / "clash.toml"
    clash.write_text(text, encoding="utf-8")  # reuses the bundled slug "emergence"
    fine = tmp_path / "fine.toml"
    fine.write_text(text.replace('slug = "emergence"', 'slug = "fine"'), encoding="utf-8")
    assert main(["talks", str(two), str(clash), str(fine)]) == 2
    captured = capsys.readouterr()
    assert "two.toml: phase 'belief': unknown kind 'vibe'" in captured.err
    assert "two.toml: phase 'definition': duplicate option id 'd1'" in captured.err
    assert "clash.toml: slug 'emergence' is already used by the bundled talk" in captured.err
    assert "fine.toml: ok" in captured.out
    # Listing the talks checks the talks folder the same way (the server would refuse it).
    monkeypatch.setenv("BELIEFGAP_TALKS_DIR", str(tmp_path))
    assert main(["talks"]) == 2
    err = capsys.readouterr().err
    assert "clash.toml" in err and "two.toml" in err and "2 of 5 talk files" in err


def test_session_new_then_export(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert (
        main(
            [
                "session",
                "new",
                "--talk",
                "emergence",
                "--venue",
                "Gothenburg",
                "--date",
                "2024-05-02",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    code = out.split("code: ")[1].split()[0]
    assert f"join: http://10.0.0.5:8000/j/{code}" in out
    output = tmp_path / "out.csv"
    assert main(["export", code, "-o", str(output)]) == 0
    rows = list(csv.reader(io.StringIO(output.read_text(encoding="utf-8"))))
    assert rows == [
        ["session", "venue", "talk", "phase", "participant", "choice", "value", "answered_at"]
    ]
    assert main(["export", code, "--format", "json"]) == 0
    assert '"venue": "Gothenburg"' in capsys.readouterr().out


def test_unknown_talk_and_unknown_code_fail_with_a_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["session", "new", "--talk", "nope", "--venue", "X"]) == 2
    assert "no talk 'nope'" in capsys.readouterr().err
    assert main(["export", "ZZZZZZ"]) == 2
    assert "no session with code 'ZZZZZZ'" in capsys.readouterr().err


def test_serve_refuses_several_workers_on_sqlite(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--workers", "2", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "2 workers need a shared database" in err and "PostgreSQL" in err


def test_commands_without_their_database_say_so_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BELIEFGAP_DATABASE_URL", "postgresql://who:hunter2@127.0.0.1:1/polls")
    assert main(["session", "new", "--talk", "emergence", "--venue", "Oslo"]) == 2
    assert main(["export", "--talk", "emergence"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert all(line.startswith("beliefgap: cannot reach the database at ") for line in lines)
    assert all("who:***@127.0.0.1:1/polls" in line for line in lines)
    assert "hunter2" not in "".join(lines)


def _new(capsys: pytest.CaptureFixture[str], venue: str) -> str:
    assert main(["session", "new", "--talk", "emergence", "--venue", venue]) == 0
    return capsys.readouterr().out.split("code: ")[1].split()[0]


def test_session_lifecycle_commands(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, third = (_new(capsys, v) for v in ("Oslo", "Bergen", "Tromsø"))
    assert main(["session", "end", first]) == 0
    assert "(ended)" in capsys.readouterr().out
    assert main(["session", "rename", second, "Stavanger"]) == 0
    assert "Stavanger" in capsys.readouterr().out
    assert main(["session", "rehearsal", third]) == 0
    assert "(rehearsal)" in capsys.readouterr().out

    assert main(["session", "list", "--state", "ended"]) == 0
    listed = capsys.readouterr().out
    assert first in listed and second not in listed and third not in listed
    assert main(["session", "list", "--state", "rehearsal", "--talk", "emergence"]) == 0
    listed = capsys.readouterr().out
    assert third in listed and first not in listed
    assert main(["session", "list", "--state", "running"]) == 0
    listed = capsys.readouterr().out
    assert second in listed and third in listed and first not in listed
    assert "Stavanger" in listed
    assert main(["session", "list", "--talk", "emergence-scale"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["session", "list", "--talk", "nope"]) == 2

    assert main(["session", "end", first, "--resume"]) == 0
    assert "(ended)" not in capsys.readouterr().out
    assert main(["session", "rename", second, "  "]) == 2
    assert main(["session", "end", "ZZZZZZ"]) == 2

    # Deleting asks first: without a terminal it refuses, a wrong answer deletes nothing.
    assert main(["session", "delete", first]) == 2
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "nope")
    assert main(["session", "delete", first]) == 1
    monkeypatch.setattr("builtins.input", lambda prompt: first.lower())
    assert main(["session", "delete", first]) == 0
    assert main(["session", "delete", second, "--yes"]) == 0
    capsys.readouterr()
    assert main(["session", "list"]) == 0
    listed = capsys.readouterr().out
    assert first not in listed and second not in listed and third in listed
    assert main(["export", first]) == 2


def test_session_new_prints_the_running_servers_address(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without BELIEFGAP_PUBLIC_URL, the URLs are the ones `beliefgap serve` announced in the
    data directory, and changes go through that server (its open phones learn at once)."""
    import sys

    from tests import liveserver

    monkeypatch.delenv("BELIEFGAP_PUBLIC_URL")
    monkeypatch.setenv("BELIEFGAP_ADMIN_TOKEN", "cli-admin-token-0123456789")
    server = liveserver.start(
        tmp_path,
        "cli-admin-token-0123456789",
        command=(sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1"),
    )
    try:
        assert (tmp_path / "server.json").exists()
        code = _new(capsys, "Reykjavik")
        assert main(["session", "new", "--talk", "emergence", "--venue", "X"]) == 0
        out = capsys.readouterr().out
        assert f"join: http://127.0.0.1:{server.port}/j/" in out
        import httpx2 as httpx

        page = httpx.get(f"{server.url}/j/{code}")
        assert page.status_code == 200 and "Reykjavik" not in page.text
        assert main(["session", "end", code]) == 0
        # The running server heard of it at once: its cached page now says so.
        assert "This session has ended" in httpx.get(f"{server.url}/j/{code}").text
        assert main(["session", "delete", code, "--yes"]) == 0
        assert httpx.get(f"{server.url}/j/{code}").status_code == 404
    finally:
        server.stop()
    # No server (its file may stay behind after a signal; its process is gone): the configured
    # address (this machine, port 8000).
    assert main(["session", "new", "--talk", "emergence", "--venue", "Y"]) == 0
    assert ":8000/j/" in capsys.readouterr().out


def test_talks_names_a_revote_worded_apart_from_its_stance(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    seed = next(p for p in bundled_talk_files() if p.name == "emergence.toml")
    stance_options = seed.read_text(encoding="utf-8").split('id = "belief"')[1]
    stance_options = stance_options[stance_options.index("  [[phases.options]]") :]
    stance_options = stance_options[: stance_options.index("[[phases]]")]
    drifted = tmp_path / "drifted.toml"
    drifted.write_text(
        seed.read_text(encoding="utf-8").replace('slug = "emergence"', 'slug = "drifted"')
        + "\n"
        + stance_options.replace('"Yes, they do"', '"Yes"'),
        encoding="utf-8",
    )
    assert main(["talks", str(drifted)]) == 2
    err = capsys.readouterr().err
    assert "drifted.toml: phase 'revote': option 'agree' must have the label it has" in err
    assert "'Yes' here, 'Yes, they do' there" in err
