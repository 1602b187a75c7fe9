"""The ``beliefgap`` command: serve, list or check talks, create a session, export one, purge
old answers."""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from sqlmodel import Session

from app import export, package, sessions
from app.errors import DatabaseUnreachable, DomainError
from app.live import NullPublisher, is_in_process
from app.settings import SECRETS_FILE, Settings
from app.talkcheck import TalkFileError
from app.talkfile import bundled_talk_files, check_talk_files


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="beliefgap", description="Live audience polls that measure a belief gap."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="start the server")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")  # noqa: S104
    serve.add_argument("--port", type=int, default=None, help="port (default: 8000)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (default 1; more need PostgreSQL, which carries live updates)",
    )

    serve.add_argument(
        "--no-access-log",
        action="store_true",
        help="no line per request (by default one, without the client's address unless "
        "BELIEFGAP_LOG_CLIENT_ADDRESS=true)",
    )

    talks = commands.add_parser("talks", help="list the talks, or check talk files")
    talks.add_argument("files", nargs="*", type=Path, help="talk files (.toml) to validate")

    session = commands.add_parser("session", help="manage sessions")
    session_commands = session.add_subparsers(dest="session_command", required=True)
    new = session_commands.add_parser("new", help="create a session for a talk")
    new.add_argument("--talk", required=True, help="the talk's slug, e.g. emergence")
    new.add_argument("--venue", required=True, help="where the talk is given")
    new.add_argument("--date", type=date.fromisoformat, default=None, help="YYYY-MM-DD (today)")
    new.add_argument("--language", default=None, help="the session's language, e.g. zh-Hans")
    listing = session_commands.add_parser("list", help="list sessions")
    listing.add_argument("--talk", default=None, help="only this talk's sessions (its slug)")
    listing.add_argument(
        "--state",
        choices=["running", "ended", "rehearsal"],
        default=None,
        help="running (not ended), ended, or rehearsal",
    )
    end = session_commands.add_parser("end", help="end a session: no more votes")
    end.add_argument("code")
    end.add_argument("--resume", action="store_true", help="take an ended session up again")
    rename = session_commands.add_parser("rename", help="change a session's venue")
    rename.add_argument("code")
    rename.add_argument("venue")
    rehearsal = session_commands.add_parser(
        "rehearsal", help="mark a session as a rehearsal (left out of pooled results)"
    )
    rehearsal.add_argument("code")
    rehearsal.add_argument("--undo", action="store_true", help="count it in the results again")
    remove = session_commands.add_parser(
        "delete", help="delete a session with its participants and answers"
    )
    remove.add_argument("code")
    remove.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    exp = commands.add_parser("export", help="export a session's or a talk's answers")
    exp.add_argument("code", nargs="?", default=None, help="the session's join code")
    exp.add_argument("--talk", default=None, help="export every session of this talk instead")
    exp.add_argument(
        "--format",
        choices=["csv", "json", "codebook", "results", "report"],
        default="csv",
        help="csv (one row per answer), json, codebook, results (JSON) or report (HTML)",
    )
    exp.add_argument("--lang", default=None, help="language of the report (default: the session's)")
    exp.add_argument("-o", "--output", type=Path, default=None, help="file (default: stdout)")

    pkg = commands.add_parser(
        "package", help="write a session's or a talk's dataset package (a zip)"
    )
    pkg.add_argument("code", nargs="?", default=None, help="the session's join code")
    pkg.add_argument("--talk", default=None, help="the package of this talk's sessions instead")
    pkg.add_argument(
        "--licence",
        choices=sorted(package.LICENCES),
        default=package.DEFAULT_LICENCE,
        help=f"the data's licence (default {package.DEFAULT_LICENCE}: reuse with credit)",
    )
    pkg.add_argument(
        "--exact-times",
        action="store_true",
        help="exact answer times (by default each answer's time is its phase's)",
    )
    pkg.add_argument(
        "--contributor", action="append", default=[], help="a name to credit (repeatable)"
    )
    pkg.add_argument(
        "-o", "--output", type=Path, default=None, help="file (default: the package's name)"
    )

    purge = commands.add_parser(
        "purge", help="delete answers older than a number of days (the retention period)"
    )
    purge.add_argument(
        "--older-than",
        type=int,
        default=None,
        metavar="DAYS",
        help="delete answers given more than DAYS days ago (default: BELIEFGAP_RETENTION_DAYS)",
    )
    purge.add_argument("--dry-run", action="store_true", help="count what would go, delete nothing")

    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args.host, args.port, args.workers, access_log=not args.no_access_log)
        if args.command == "talks":
            return _talks(args.files)
        if args.command == "purge":
            return _purge(args.older_than, args.dry_run)
        if args.command == "session":
            return _session(args)
        if args.command == "package":
            if (args.code is None) == (args.talk is None):
                parser.error("package needs a session code or --talk SLUG (not both)")
            return _package(args)
        if (args.code is None) == (args.talk is None):
            parser.error("export needs a session code or --talk SLUG (not both)")
        return _export(args.code, args.talk, args.format, args.output, args.lang)
    except (TalkFileError, DomainError, DatabaseUnreachable) as exc:
        print(f"beliefgap: {exc}", file=sys.stderr)
        return 2


def _database(settings: Settings) -> Session:
    from app.main import prepare_database

    return Session(prepare_database(settings))


STOP_GRACE_SECONDS = 2
"""After a stop signal, how long open requests get to finish (event streams end at once)."""


def _serve(host: str, port: int | None, workers: int = 1, *, access_log: bool = True) -> int:
    import uvicorn

    settings = Settings()
    if port is not None:
        settings = settings.model_copy(update={"port": port})
    if workers < 1:
        print("beliefgap: --workers must be 1 or more", file=sys.stderr)
        return 2
    if workers > 1 and is_in_process(settings.broadcast_url):
        print(
            f"beliefgap: {workers} workers need a shared database and live-update channel. "
            "Point BELIEFGAP_DATABASE_URL at PostgreSQL (postgresql+psycopg://...); on SQLite, "
            "one worker carries a 2,000-seat hall.",
            file=sys.stderr,
        )
        return 2
    first_start = not settings.admin_token and not (settings.data_dir / SECRETS_FILE).exists()
    from app.main import create_app

    try:
        # The database before anything else: when it cannot be reached, one line and exit 2,
        # with nothing written (the secrets are generated once the database answered).
        app = create_app(settings)
    except DatabaseUnreachable as exc:
        print(f"beliefgap: {exc}", file=sys.stderr)
        return 2
    settings = app.state.settings
    print(f"beliefgap is running. Presenter dashboard: http://127.0.0.1:{settings.port}/presenter")
    print(f"Phones join at: {settings.resolved_public_url}/  (set BELIEFGAP_PUBLIC_URL to change)")
    if first_start:
        print(f"Admin token (generated, kept in {settings.data_dir / SECRETS_FILE}):")
        print(f"  {settings.admin_token}")
    elif not Settings().admin_token:
        print(f"Admin token: see {settings.data_dir / SECRETS_FILE}")
    from app.limits import HeaderTimeoutProtocol
    from app.logs import uvicorn_log_config

    common: dict[str, Any] = {
        "host": host,
        "port": settings.port,
        "log_level": "info",
        "log_config": uvicorn_log_config(settings.log_client_address),
        "access_log": access_log,
        "timeout_graceful_shutdown": STOP_GRACE_SECONDS,
        # uvicorn's HTTP protocol with a deadline on request headers (BELIEFGAP_HEADER_TIMEOUT).
        "http": HeaderTimeoutProtocol,
    }
    state_file = write_server_file(settings)
    try:
        if workers == 1:
            uvicorn.run(app, **common)
        else:
            # This process only supervises the workers: it gives back the connections start-up
            # used. Forked, each worker serves the app built here (nothing imported, migrated or
            # loaded again); spawned, it builds its own from the environment: hand it what was
            # decided here.
            app.state.engine.dispose()
            os.environ["BELIEFGAP_PORT"] = str(settings.port)
            fork_workers_from(app)
            uvicorn.run("app.main:app", workers=workers, **common)
    finally:
        with contextlib.suppress(OSError):
            state_file.unlink()
    return 0


def fork_workers_from(built: Any) -> bool:
    """Have uvicorn fork its workers from this process, each serving ``built``: the app this
    process made, database prepared, templates and routes in place. A spawned worker starts a
    new interpreter that imports the whole app (over a second of CPU each), prepares the
    database again (migrations and talk files, one worker after the other) and, all that while,
    cannot answer uvicorn's health check: on a busy machine the supervisor took it for hung
    after 5 s, killed it and spawned another, so two workers took 5-22 s to answer. Forked, a
    worker answers within a fraction of a second.

    The app must not hold connections or threads yet (the caller disposes of the engine; the
    vote writer starts its thread at the first vote, the broadcaster connects in each worker's
    lifespan). False where processes cannot fork, or where uvicorn no longer starts its workers
    the way this expects: they are spawned, as before."""
    import multiprocessing

    from uvicorn import _subprocess

    if "fork" not in multiprocessing.get_all_start_methods() or not hasattr(_subprocess, "spawn"):
        return False
    from app import main

    main.use_app(built)
    # Objects made so far live as long as the workers: kept out of their collections, their
    # memory stays shared with this process instead of being copied into each worker.
    gc.collect()
    gc.freeze()
    os.register_at_fork(after_in_child=_default_signals)
    _subprocess.spawn = multiprocessing.get_context("fork")  # type: ignore[assignment]
    return True


def _default_signals() -> None:
    """In a forked worker, before it runs: the supervisor's signal handlers are not the
    worker's (uvicorn's server sets its own for SIGINT and SIGTERM once it serves)."""
    for name in ("SIGHUP", "SIGQUIT", "SIGTTIN", "SIGTTOU", "SIGUSR1", "SIGUSR2", "SIGWINCH"):
        number = getattr(signal, name, None)
        if number is not None:
            signal.signal(number, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


SERVER_FILE = "server.json"
"""Written to the data directory by ``beliefgap serve`` while it runs: the address phones use and
the local one, so that other commands on this machine print the running server's URLs and make
their changes through it. It holds the server's process id: a file left behind by a server that
was killed is ignored."""


def write_server_file(settings: Settings) -> Path:
    path = settings.data_dir / SERVER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    local = f"http://127.0.0.1:{settings.port}"
    path.write_text(
        json.dumps(
            {"public_url": settings.resolved_public_url, "local_url": local, "pid": os.getpid()}
        ),
        encoding="utf-8",
    )
    return path


def _server_file(settings: Settings) -> dict[str, Any]:
    """What the server running from this data directory announced, or {} (none, or it died)."""
    try:
        data = json.loads((settings.data_dir / SERVER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("pid"), int):
        return {}
    return data if _alive(data["pid"]) else {}


def server_url(settings: Settings) -> str:
    """Where phones reach the server: ``BELIEFGAP_PUBLIC_URL`` when set; else the address the
    server running from this data directory announced (its ``server.json``, if that process is
    still alive); else the address the settings give (this machine, the configured port)."""
    if settings.public_url:
        return settings.resolved_public_url
    url = _server_file(settings).get("public_url")
    if isinstance(url, str) and url:
        return url.rstrip("/")
    return settings.resolved_public_url


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _talks(files: list[Path]) -> int:
    """Check talk files (or the bundled ones and BELIEFGAP_TALKS_DIR): every problem of every
    file, a slug that a bundled talk or another file already uses included; exit 2 if any."""
    settings = Settings()
    listing = not files
    if listing:
        files = bundled_talk_files()
        if settings.talks_dir is not None:
            files += sorted(settings.talks_dir.glob("*.toml"))
    failed = 0
    for checked in check_talk_files(files):
        if checked.error is not None:
            failed += 1
            for problem in checked.error.problems:
                print(f"{checked.path}: {problem.text()}", file=sys.stderr)
            continue
        talk = checked.talk
        assert talk is not None
        if listing:
            phases = ", ".join(f"{p.key} ({p.kind})" for p in talk.phases)
            print(f"{talk.slug}: {talk.titles[talk.languages[0]]}")
            print(f"  languages: {', '.join(talk.languages)}; phases: {phases}")
        else:
            print(
                f"{checked.path}: ok ({talk.slug}, {len(talk.phases)} phases, "
                f"{', '.join(talk.languages)})"
            )
    if failed:
        print(f"beliefgap: {failed} of {len(files)} talk files have problems", file=sys.stderr)
        return 2
    return 0


def _session(args: argparse.Namespace) -> int:
    command = args.session_command
    if command == "new":
        return _session_new(args.talk, args.venue, args.date, args.language)
    if command == "list":
        return _session_list(args.talk, args.state)
    if command == "delete":
        return _session_delete(args.code, args.yes)
    changes: dict[str, Any]
    if command == "end":
        changes = {"ended": not args.resume}
    elif command == "rename":
        changes = {"venue": args.venue}
    else:
        changes = {"rehearsal": not args.undo}
    settings = Settings().with_secrets()
    code = sessions.normalize_code(args.code)
    answer = _through_server(settings, "PATCH", code, changes)
    if answer is not None:
        print(_session_line(answer["code"], answer["venue"], answer["ended"], answer["rehearsal"]))
        return 0
    with _database(settings) as db:
        poll = sessions.update_session(db, code, NullPublisher(), **changes)
        print(_session_line(poll.code, poll.venue, poll.ended, poll.rehearsal))
    return 0


def _through_server(
    settings: Settings, method: str, code: str, body: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """Make a change through the server running from this data directory (its API), so that its
    caches and open phones learn of it at once. None when no server runs here: the caller
    writes to the database itself (a server started later reads it afresh)."""
    local = _server_file(settings).get("local_url")
    if not isinstance(local, str) or not local:
        return None
    request = urllib.request.Request(  # noqa: S310 (the URL is our own server's, http)
        f"{local}/api/v1/sessions/{code}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={
            "Authorization": f"Bearer {settings.admin_token}",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            raw = response.read()
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("detail", exc.reason)
        except ValueError:
            detail = exc.reason
        raise DomainError(str(detail)) from None
    except OSError:
        return None  # the server is gone: write directly
    return json.loads(raw) if raw else {}


def _session_line(code: str, venue: str, ended: bool, rehearsal: bool) -> str:
    marks = [m for m, on in (("ended", ended), ("rehearsal", rehearsal)) if on]
    return f"{code}  {venue}" + (f"  ({', '.join(marks)})" if marks else "")


def _session_list(talk: str | None, state: str | None) -> int:
    from app import presenter

    settings = Settings().with_secrets()
    with _database(settings) as db:
        if talk is not None:
            sessions.get_talk(db, talk)  # an unknown slug is an error, not an empty list
        chosen = presenter.SessionFilter(state) if state else None
        for overview in presenter.talk_overviews(db, talk=talk, state=chosen):
            for s in overview.sessions:
                marks = [s.state_label.replace("_", " ")] + (["rehearsal"] if s.rehearsal else [])
                print(
                    f"{s.code}  {s.held_on.isoformat()}  {overview.slug}  {s.venue}  "
                    f"{s.participants} joined  {', '.join(marks)}"
                )
    return 0


def _session_delete(code: str, yes: bool) -> int:
    settings = Settings().with_secrets()
    with _database(settings) as db:
        poll = sessions.get_session(db, code)
        people = sessions.participant_count(db, poll)
        db.commit()  # no read left open while the server deletes
        if not yes:
            if not sys.stdin.isatty():
                print(
                    "beliefgap: deleting needs a confirmation: run it in a terminal, or add --yes",
                    file=sys.stderr,
                )
                return 2
            answer = input(
                f"Delete session {poll.code} ({poll.venue}) with its {people} participant(s) and "
                f"their answers? Export it first (beliefgap export {poll.code}). Type the code to "
                "confirm: "
            )
            if sessions.normalize_code(answer) != poll.code:
                print("Nothing deleted.", file=sys.stderr)
                return 1
        if _through_server(settings, "DELETE", poll.code) is None:
            sessions.delete_session(db, poll.code, NullPublisher())
        print(f"deleted {poll.code}")
    return 0


def _session_new(talk: str, venue: str, held_on: date | None, language: str | None) -> int:
    settings = Settings().with_secrets()
    with _database(settings) as db:
        poll = sessions.create_session(
            db, talk_slug=talk, venue=venue, held_on=held_on, language=language
        )
        base = server_url(settings)
        print(f"code: {poll.code}")
        print(f"join: {base}/j/{poll.code}")
        print(f"dashboard: {base}/presenter/sessions/{poll.code}")
    return 0


def _purge(older_than: int | None, dry_run: bool) -> int:
    from app import retention

    settings = Settings()
    days = older_than if older_than is not None else settings.retention_days
    if days is None:
        print(
            "beliefgap: say how old: --older-than DAYS, or set BELIEFGAP_RETENTION_DAYS",
            file=sys.stderr,
        )
        return 2
    if days < 1:
        print("beliefgap: --older-than must be 1 day or more", file=sys.stderr)
        return 2
    with _database(settings.with_secrets()) as db:
        done = retention.purge(db, days, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    cutoff = done.cutoff.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    print(
        f"{verb} {done.answers} answers and {done.participants} participants "
        f"older than {days} days (given before {cutoff})"
    )
    for code, answers in done.sessions.items():
        print(f"  session {code}: {answers} answers")
    return 0


def _export(
    code: str | None, talk_slug: str | None, fmt: str, output: Path | None, lang: str | None
) -> int:
    settings = Settings().with_secrets()
    with _database(settings) as db:
        text = _export_text(db, code, talk_slug, fmt, lang)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8", newline="")
        print(f"wrote {output}", file=sys.stderr)
    return 0


def _package(args: argparse.Namespace) -> int:
    options = package.PackageOptions(
        licence=args.licence,
        exact_times=args.exact_times,
        contributors=tuple(args.contributor),
    )
    settings = Settings().with_secrets()
    with _database(settings) as db:
        if args.talk is not None:
            name, content = package.talk_package(db, sessions.get_talk(db, args.talk), options)
        else:
            name, content = package.session_package(
                db, sessions.get_session(db, args.code), options
            )
    output = args.output or Path(name)
    output.write_bytes(content)
    print(f"wrote {output} ({len(content):,} bytes)", file=sys.stderr)
    return 0


def _export_text(
    db: Session, code: str | None, talk_slug: str | None, fmt: str, lang: str | None
) -> str:
    from app import i18n, results
    from app.main import make_templates

    if talk_slug is not None:
        talk = sessions.get_talk(db, talk_slug)
        chosen = i18n.supported(lang) or i18n.supported(talk.languages[0]) or "en"
        if fmt == "csv":
            return "".join(export.csv_lines(export.talk_rows(db, talk)))
        if fmt == "json":
            return export.json_text(export.talk_document(db, talk))
        if fmt == "codebook":
            return export.json_text(export.talk_codebook(db, talk))
        found = results.talk_results(db, talk)
        if fmt == "results":
            return export.json_text(results.talk_results_json(found))
        return export.report_html(make_templates().env, chosen, talk=found)
    assert code is not None
    poll = sessions.get_session(db, code)
    if fmt == "csv":
        return "".join(export.session_csv_lines(db, poll))
    if fmt == "json":
        return export.json_text(export.session_document(db, poll))
    if fmt == "codebook":
        owner = sessions.session_talk(db, poll)
        return export.json_text(export.codebook(db, owner, poll.version_id))
    session_found = results.session_results(db, poll)
    if fmt == "results":
        return export.json_text(results.session_results_json(session_found))
    chosen = i18n.supported(lang) or i18n.supported(poll.language) or "en"
    return export.report_html(
        make_templates().env,
        chosen,
        session=session_found,
        participants=sessions.participant_count(db, poll),
    )


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
