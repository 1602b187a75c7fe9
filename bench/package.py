"""The dataset package of a big talk: 10 sessions of 2,000 phones, each answering the four
phases of the emergence talk (80,000 answers). Prints the package's size zipped and how long
reading the database and writing the zip take (targets: <= 2 MB, < 2 s).

    .venv/bin/python bench/package.py            # 10 sessions x 2,000 phones
    .venv/bin/python bench/package.py --sessions 3 --phones 500

The answers are written straight into a fresh SQLite file (the votes' path is what the other
benchmarks measure); the package is built as the API builds it.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402
from sqlmodel import Session, select  # noqa: E402

from app import package, sessions  # noqa: E402
from app.main import prepare_database  # noqa: E402
from app.models import (  # noqa: E402
    Participant,
    PhaseState,
    Response,
    SessionPhase,
    new_public_ids,
)
from app.settings import Settings  # noqa: E402

TARGET_BYTES = 2_000_000
TARGET_SECONDS = 2.0


def seed(db: Session, session_count: int, phones: int, rng: random.Random) -> None:
    """``session_count`` ended sessions of the emergence talk, every phone answering every
    phase, each phase open for a few minutes."""
    start = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)
    for s in range(session_count):
        poll = sessions.create_session(
            db, talk_slug="emergence", venue=f"Hall {s + 1}", held_on=start.date()
        )
        views = sessions.session_phases(db, poll)
        opened = start + timedelta(days=7 * s)
        for i, view in enumerate(views):
            state = db.get(SessionPhase, view.state.id)
            assert state is not None
            state.state = PhaseState.closed
            state.opened_at = opened + timedelta(minutes=15 * i)
            db.add(state)
        poll.ended_at = opened + timedelta(hours=1)
        db.add(poll)
        db.commit()
        ids = new_public_ids(phones)
        db.execute(
            insert(Participant),
            [
                {
                    "session_id": poll.id,
                    "token": f"t{s}-{p}",
                    "public_id": ids[p],
                    "joined_at": opened,
                }
                for p in range(phones)
            ],
        )
        participant_ids = list(
            db.exec(select(Participant.id).where(Participant.session_id == poll.id))
        )
        rows = []
        for i, view in enumerate(views):
            keys = [o.id for o in view.options]
            for pid in participant_ids:
                moment = opened + timedelta(minutes=15 * i, seconds=rng.randrange(120))
                rows.append(
                    {
                        "session_id": poll.id,
                        "phase_id": view.phase.id,
                        "participant_id": pid,
                        "option_id": rng.choice(keys),
                        "value": None,
                        "answered_at": moment,
                    }
                )
        db.execute(insert(Response), rows)
        db.commit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--phones", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3, help="timed builds after the first")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="beliefgap-bench-package-") as folder:
        settings = Settings(
            data_dir=Path(folder),
            admin_token="bench-admin-token-0123456789",
            secret_key="bench-secret-key-0123456789abcdef",
        )
        engine = prepare_database(settings)
        with Session(engine) as db:
            seed(db, args.sessions, args.phones, random.Random(28))
        timings = []
        with Session(engine) as db:
            talk = sessions.get_talk(db, "emergence")
            # the first build imports the statistics' libraries, as a server's first results do
            for _ in range(1 + args.repeat):
                began, cpu = time.perf_counter(), time.process_time()
                gathered = package.gather_talk(db, talk)
                read = time.perf_counter() - began
                built = package.build_zip(gathered, package.PackageOptions())
                timings.append((time.perf_counter() - began, read, time.process_time() - cpu))
        engine.dispose()
    cold, warm = timings[0], sorted(timings[1:])[len(timings[1:]) // 2]
    answers = len(gathered.responses)
    print(
        f"package of {args.sessions} sessions x {args.phones} phones ({answers:,} answers): "
        f"{len(built) / 1e6:.2f} MB zipped (target <= {TARGET_BYTES / 1e6:.0f} MB)\n"
        f"built in {warm[0]:.2f} s, median of {args.repeat} (reading {warm[1]:.2f} s, "
        f"CPU {warm[2]:.2f} s; target < {TARGET_SECONDS:.0f} s); the first build, with the "
        f"imports: {cold[0]:.2f} s"
    )
    total = warm[0]
    return 0 if len(built) <= TARGET_BYTES and total < TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
