"""The start stage: how long ``beliefgap serve --workers 2`` on PostgreSQL takes to answer.

Each run starts the server (``python -m app.cli serve --workers 2 --no-access-log``, as an
operator does) on a database of its own and measures, from the moment the command is started:

- ``first_healthz_s``: until ``GET /healthz`` first answers 200 (the address works);
- ``all_workers_s``: until every worker has logged "Application startup complete" (the
  server serves at full strength);
- ``cpu_s``: the CPU time the server's processes (supervisor and workers) had used by then,
  which the machine's other load does not stretch as it stretches the times above;
- ``workers_restarted``: workers the supervisor found dead or hung and replaced meanwhile
  (uvicorn's "Child process [...] died").

The first run is on an empty database (it migrates), the others on the migrated one (an
ordinary restart). The figures include this machine's load: the run prints it beside them.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _server
from pg_stages import SERVE, env_for
from procs import tree_cpu_seconds

from tests import liveserver, pg

WORKERS = 2
DEADLINE_S = 60.0
POLL_S = 0.02
"""How often the stage asks /healthz and reads the log: the resolution of its figures."""
STARTED = "Application startup complete"
DIED = "died"


def start_once(url: str, data_dir: Path, workers: int = WORKERS) -> dict[str, Any]:
    """Start the server once, time it, stop it."""
    port = liveserver.free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BELIEFGAP_")}
    environment.update(
        PYTHONPATH=str(_server.ROOT),
        BELIEFGAP_DATA_DIR=str(data_dir),
        BELIEFGAP_ADMIN_TOKEN=_server.ADMIN_TOKEN,
        BELIEFGAP_PUBLISHED_POLLS="0",
        **env_for(url),
    )
    log_path = data_dir / f"serve-{port}.log"
    with log_path.open("wb") as log:
        began = time.perf_counter()
        process = subprocess.Popen(  # our own interpreter, fixed arguments
            [*SERVE, "--port", str(port), "--workers", str(workers), "--no-access-log"],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    first: float | None = None
    every: float | None = None
    cpu: float | None = None
    try:
        with httpx.Client(timeout=1) as client:
            while every is None or first is None:
                now = time.perf_counter() - began
                if now > DEADLINE_S or process.poll() is not None:
                    break
                if first is None:
                    try:
                        if client.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                            first = time.perf_counter() - began
                    except httpx.TransportError:
                        pass
                if every is None and log_path.read_text(errors="replace").count(STARTED) >= workers:
                    every = time.perf_counter() - began
                    cpu = tree_cpu_seconds(process.pid)
                time.sleep(POLL_S)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    output = log_path.read_text(errors="replace")
    return {
        "first_healthz_s": first,
        "all_workers_s": every,
        "cpu_s": cpu,
        "workers_restarted": output.count(DIED),
        "started": output.count(STARTED),
    }


def stage_start(cluster: str, runs: int = 3, workers: int = WORKERS) -> dict[str, Any]:
    """``runs`` starts of ``beliefgap serve --workers N``: the first on an empty database."""
    found = []
    with pg.fresh_database(cluster) as url, tempfile.TemporaryDirectory() as tmp:
        for _ in range(runs):
            found.append(start_once(url, Path(tmp), workers))

    def figure(key: str, rows: list[dict[str, Any]]) -> float | None:
        values = [r[key] for r in rows if r[key] is not None]
        return statistics.median(values) if values else None

    later = found[1:] or found
    return {
        "workers": workers,
        "runs": found,
        "empty_database": found[0],
        "first_healthz_median_s": figure("first_healthz_s", later),
        "all_workers_median_s": figure("all_workers_s", later),
        "cpu_median_s": figure("cpu_s", later),
        "workers_restarted": sum(r["workers_restarted"] for r in found),
        "never_started": sum(1 for r in found if r["all_workers_s"] is None),
        "load_average": os.getloadavg()[0],
    }


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def summary(r: dict[str, Any]) -> str:
    empty = r["empty_database"]
    return (
        f"start of serve --workers {r['workers']} on PostgreSQL, {len(r['runs'])} runs (load "
        f"{r['load_average']:.1f}): first /healthz {_s(r['first_healthz_median_s'])}, every "
        f"worker started {_s(r['all_workers_median_s'])}, server CPU {_s(r['cpu_median_s'])} "
        f"(medians of the restarts); on an empty database {_s(empty['first_healthz_s'])} / "
        f"{_s(empty['all_workers_s'])}, CPU {_s(empty['cpu_s'])}; workers "
        f"replaced by the supervisor {r['workers_restarted']}, never started "
        f"{r['never_started']}"
    )


if __name__ == "__main__":
    import json

    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    import pg_stages

    with pg_stages.server_url() as cluster:
        result = stage_start(cluster, runs)
    print(summary(result))
    print(json.dumps(result, indent=2))
