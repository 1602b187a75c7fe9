"""Settings from environment variables with the prefix ``BELIEFGAP_``.

Secrets are never hard-coded: when ``BELIEFGAP_ADMIN_TOKEN`` or ``BELIEFGAP_SECRET_KEY`` is unset,
a random value is generated once and kept in ``<data_dir>/secrets.json`` (mode 0600), so that
restarts keep the presenter logged in and the audience's cookies valid.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.live.backends import is_postgres

SECRETS_FILE = "secrets.json"
_FRAME_SOURCE = re.compile(
    r"'self'|'none'|https?://(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?", re.IGNORECASE
)
MIN_SECRET_LENGTH = 16


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BELIEFGAP_", extra="ignore")

    data_dir: Path = Field(default_factory=Path.cwd)
    """Where the SQLite file and the generated secrets live (default: the working directory)."""

    database_url: str = ""
    """SQLAlchemy URL; empty means ``sqlite:///<data_dir>/beliefgap.db``. PostgreSQL:
    ``postgresql://user:password@host:5432/beliefgap`` (``postgres://`` and
    ``postgresql+psycopg://`` work too; the driver is psycopg 3, ``pip install
    'beliefgap[postgres]'``)."""

    admin_token: str = ""
    secret_key: str = ""

    public_url: str = ""
    """The address phones use (the QR code encodes it). Empty: this machine's LAN address."""

    port: int = 8000
    talks_dir: Path | None = None
    """Extra talk files (``*.toml``) loaded beside the bundled talks."""

    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    """SQLite durability: NORMAL (WAL) keeps every commit across a crash of the process; FULL also
    across a power cut, at a cost ``bench/run.py`` measures (its "sync=FULL" stage)."""

    broadcast_url: str = "memory://"
    """Backend for live updates: ``memory://`` (one process) or a PostgreSQL URL (LISTEN/NOTIFY:
    every process on that database). Left unset with a PostgreSQL ``database_url``, it is the
    database URL, so several processes or hosts on one database stream the same events; set it
    to ``memory://`` explicitly to keep one process's updates to itself."""

    # Abuse limits (app.limits), counted in each process's memory; 0 turns one off. Sized so
    # that a full hall behind one NAT (2,000 phones joining within a minute, each holding an
    # event stream) never meets them.
    limit_votes_per_second: float = Field(default=2.0, ge=0)
    """Votes a participant may send per second, sustained (on top of the burst)."""
    limit_vote_burst: int = Field(default=60, ge=0)
    """Votes a participant may send at once: a phone re-voting a few times a second is fine."""
    limit_new_participants_per_second: float = Field(default=5.0, ge=0)
    """New participants (participant cookies handed out) per client address and second,
    sustained (on top of the burst)."""
    limit_new_participant_burst: int = Field(default=2500, ge=0)
    """New participants one address may bring at once: a whole room behind one NAT."""
    limit_streams_per_participant: int = Field(default=5, ge=0)
    """Event streams one participant may hold open (a few tabs)."""
    limit_streams_per_address: int = Field(default=3000, ge=0)
    """Event streams one client address may hold open (every phone of a hall behind one NAT)."""
    header_timeout: float = Field(default=10.0, ge=0)
    """Seconds a client may take to send a request's headers (``beliefgap serve``, or uvicorn
    with ``--http app.limits:HeaderTimeoutProtocol``)."""
    request_timeout: float = Field(default=30.0, ge=0)
    """Seconds a client may take to send a whole request, headers and body: past it, 408 and
    the connection is closed. Held by the app whatever serves it (counted from the first byte
    under ``beliefgap serve``, else from when the server hands over the request)."""

    limit_failed_logins_per_minute: float = Field(default=10.0, ge=0)
    """Wrong admin tokens (the login form, a bearer token) one client address may send per
    minute, sustained (on top of the burst); past it every token from there, the right one
    too, gets 429 for the wait it names. The right token never counts."""
    limit_failed_login_burst: int = Field(default=20, ge=0)
    """Wrong admin tokens one address may send at once (typos)."""

    ping_seconds: float = Field(default=10.0, gt=0)
    """Seconds of quiet after which an event stream gets a ``ping`` event: the phone's page
    sees its stream is alive, and proxies between it and the app keep the connection open."""

    presenter_login_days: int = Field(default=14, ge=1, le=366)
    """How long a presenter login lasts, in days (the presenter cookie's lifetime). Logging out
    ends it at once, on the server: a saved copy of the cookie stops working."""

    frame_ancestors: str = "'self'"
    """Who may show the projector and a session's read-only view in a frame (slides that embed
    them): a space-separated list of CSP sources, such as ``'self' https://slides.example.org``;
    ``'none'`` forbids it. Every other page may be framed only by this app itself. The
    projector in slides on another site only works when the presenter's browser sends the
    app's cookies there: same-site (another port or a sibling subdomain), as browsers keep
    SameSite=Strict cookies out of cross-site frames; the read-only view needs no cookie, and
    a presenter may narrow this list for a session or let any site frame it (docs/slides.md)."""

    api_docs: bool = False
    """Serve the interactive API documentation at ``/docs``. It loads Swagger UI from the
    jsDelivr CDN, so it is off unless asked for; ``/openapi.json`` is always there."""

    @field_validator("frame_ancestors")
    @classmethod
    def _sources(cls, value: str) -> str:
        sources = value.split()
        if not sources:
            raise ValueError("name at least one source ('self', 'none' or an origin)")
        for source in sources:
            if not _FRAME_SOURCE.fullmatch(source):
                raise ValueError(
                    f"{source!r} is not a frame source: use 'self', 'none', or an origin such "
                    "as https://slides.example.org (a leading *. for subdomains)"
                )
        if "'none'" in sources and len(sources) > 1:
            raise ValueError("'none' cannot be combined with other sources")
        return " ".join(sources)

    log_client_address: bool = False
    """Whether access log lines name the client's address (off: the request line and status
    only; see app/logs.py)."""

    retention_days: int | None = Field(default=None, ge=1)
    """How many days answers are kept; ``beliefgap purge`` deletes older ones (unset: keep
    everything until a purge names a number of days)."""

    @model_validator(mode="after")
    def _broadcast_on_the_database(self) -> Settings:
        if "broadcast_url" not in self.model_fields_set and is_postgres(self.database_url):
            self.broadcast_url = self.database_url
        return self

    @field_validator("admin_token", "secret_key")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if value and len(value) < MIN_SECRET_LENGTH:
            raise ValueError(f"must be at least {MIN_SECRET_LENGTH} characters (or unset)")
        return value

    @property
    def sqlite_default(self) -> bool:
        return not self.database_url

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'beliefgap.db'}"

    @property
    def resolved_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{lan_address()}:{self.port}"

    @property
    def public_https(self) -> bool:
        """Whether phones reach the app over HTTPS, as the public URL says (unset: plain HTTP on
        the LAN address)."""
        return self.public_url.lower().startswith("https://")

    def with_secrets(self) -> Settings:
        """Return a copy whose missing secrets are filled from (or written to) the data dir."""
        if self.admin_token and self.secret_key:
            return self
        stored = load_or_create_secrets(self.data_dir)
        return self.model_copy(
            update={
                "admin_token": self.admin_token or stored["admin_token"],
                "secret_key": self.secret_key or stored["secret_key"],
            }
        )


def load_or_create_secrets(data_dir: Path) -> dict[str, str]:
    path = data_dir / SECRETS_FILE
    if path.exists():
        stored = json.loads(path.read_text(encoding="utf-8"))
        if all(isinstance(stored.get(k), str) for k in ("admin_token", "secret_key")):
            return {"admin_token": stored["admin_token"], "secret_key": stored["secret_key"]}
    data_dir.mkdir(parents=True, exist_ok=True)
    stored = {
        "admin_token": secrets.token_urlsafe(24),
        "secret_key": secrets.token_urlsafe(32),
    }
    # Create the file private from the start rather than chmod-ing it afterwards.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(stored, handle)
    return stored


def lan_address() -> str:
    """The address other devices on the network reach this machine at, never localhost if avoidable.

    Connecting a UDP socket sends nothing; it only asks the kernel which interface would route
    to a public address.
    """
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: documentation range, never contacted
        address = str(probe.getsockname()[0])
    except OSError:
        address = socket.gethostbyname(socket.gethostname())
    finally:
        probe.close()
    return address
