"""The real server for tests, browser tests, benchmarks and screenshots: ``uvicorn app.main:app``
in a subprocess on 127.0.0.1, a free port, its own data directory (SQLite file and secrets), and
its output in ``<data dir>/server.log``. ``start`` returns once ``/healthz`` answers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx

ROOT = Path(__file__).resolve().parent.parent
PORTS_ENV = "BELIEFGAP_TEST_PORTS"
"""A directory shared by the processes of one test run (pytest's workers): each port handed
out is claimed there by a file of its name, so no two workers are given the same one."""


def free_port() -> int:
    """A port free on 127.0.0.1 now, and given to no other process of this run. The kernel
    does not keep a port it has just handed out for its first taker: between this probe and
    the server's bind, another worker's probe could get it too, and its server then answer
    this one's health check."""
    claims = os.environ.get(PORTS_ENV)
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if not claims:
            return port
        try:
            os.close(os.open(Path(claims) / str(port), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            continue  # another worker has it, or had it: ask again
        return port


@dataclass
class LiveServer:
    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    admin_token: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    @property
    def database(self) -> Path:
        return self.data_dir / "beliefgap.db"

    @property
    def log(self) -> Path:
        return self.data_dir / "server.log"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def rss_bytes(self) -> int:
        """Resident memory of the server process (Linux)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush; what a crash does to the process."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def start(
    data_dir: Path,
    admin_token: str,
    *,
    public_url: str | None = None,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    timeout: float = 60,
    port: int | None = None,
    command: tuple[str, ...] | None = None,
) -> LiveServer:
    """Start the app; ``public_url`` defaults to the server's own address. ``port``: a given one
    (a restart on the same address); ``command``: instead of ``uvicorn app.main:app --host
    127.0.0.1`` (``--port`` and ``args`` follow it)."""
    port = port or free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BELIEFGAP_")}
    environment.update(
        PYTHONPATH=str(ROOT),
        BELIEFGAP_DATA_DIR=str(data_dir),
        BELIEFGAP_ADMIN_TOKEN=admin_token,
        BELIEFGAP_PUBLIC_URL=public_url or f"http://127.0.0.1:{port}",
        BELIEFGAP_PUBLISHED_POLLS="0",  # a server's talk results: its own rooms (tests/conftest)
    )
    environment.update(env or {})
    data_dir.mkdir(parents=True, exist_ok=True)
    base = command or (sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1")
    with (data_dir / "server.log").open("ab") as log:
        process = subprocess.Popen(  # our own interpreter, fixed arguments
            [*base, "--port", str(port), *args],
            cwd=data_dir,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(process=process, port=port, data_dir=data_dir, admin_token=admin_token)
    deadline = time.monotonic() + timeout
    # One client for the polls: building one (its TLS context) costs about 25 ms of CPU, which
    # a poll every 0.1 s would take from the server starting beside it.
    with httpx.Client(timeout=1) as poll:
        while True:
            try:
                if poll.get(f"{server.url}/healthz").status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"the server did not start:\n{server.output()}")
            time.sleep(0.1)
