"""The ``beliefgap`` command: serve, list or check talks, create a session, export one, purge
old answers."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from sqlmodel import Session

from app import export, sessions
from app.errors import DatabaseUnreachable, DomainError
from app.live import is_in_process
from app.settings import SECRETS_FILE, Settings
from app.talks import TalkFileError, bundled_talk_files, check_talk_files


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
            return _session_new(args.talk, args.venue, args.date, args.language)
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
    if workers == 1:
        uvicorn.run(app, **common)
    else:
        # Each worker builds its own app from the environment: hand it what was decided here.
        # This process only supervises them: it gives back the connections start-up used.
        app.state.engine.dispose()
        os.environ["BELIEFGAP_PORT"] = str(settings.port)
        uvicorn.run("app.main:app", workers=workers, **common)
    return 0


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


def _session_new(talk: str, venue: str, held_on: date | None, language: str | None) -> int:
    settings = Settings().with_secrets()
    with _database(settings) as db:
        poll = sessions.create_session(
            db, talk_slug=talk, venue=venue, held_on=held_on, language=language
        )
        print(f"code: {poll.code}")
        print(f"join: {settings.resolved_public_url}/j/{poll.code}")
        print(f"dashboard: {settings.resolved_public_url}/presenter/sessions/{poll.code}")
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
            return export.json_text(export.codebook(db, talk))
        found = results.talk_results(db, talk)
        if fmt == "results":
            return export.json_text(results.talk_results_json(found))
        return export.report_html(make_templates().env, chosen, talk=found)
    assert code is not None
    poll = sessions.get_session(db, code)
    if fmt == "csv":
        return "".join(export.csv_lines(export.response_rows(db, poll)))
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
