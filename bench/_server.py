"""Start and stop the app under uvicorn on 127.0.0.1 with a temporary SQLite file, for benchmarks."""

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
ADMIN_TOKEN = "bench-admin-token-0123456789"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    @property
    def database(self) -> Path:
        return self.data_dir / "beliefgap.db"

    def rss_bytes(self) -> int:
        """Resident memory of the server process (Linux)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush; what a crash or a pulled plug does to the process."""
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
    data_dir: Path, port: int | None = None, extra_env: dict[str, str] | None = None
) -> Server:
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BELIEFGAP_")}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "BELIEFGAP_DATA_DIR": str(data_dir),
            "BELIEFGAP_ADMIN_TOKEN": ADMIN_TOKEN,
            "BELIEFGAP_PUBLIC_URL": f"http://127.0.0.1:{port}",
        }
    )
    env.update(extra_env or {})
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--backlog",
            "4096",
        ],
        cwd=data_dir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server = Server(process=process, port=port, data_dir=data_dir)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise RuntimeError(process.stderr.read().decode() if process.stderr else "server died")
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError("server did not start within 60 s")
        time.sleep(0.1)


def open_session(server: Server, talk: str = "emergence", phase: str = "belief") -> str:
    created = httpx.post(
        f"{server.url}/api/v1/sessions",
        json={"talk": talk, "venue": "Benchmark hall"},
        headers=server.auth,
        timeout=10,
    )
    created.raise_for_status()
    code = str(created.json()["code"])
    opened = httpx.post(
        f"{server.url}/api/v1/sessions/{code}/phases/{phase}/open", headers=server.auth, timeout=10
    )
    opened.raise_for_status()
    return code
