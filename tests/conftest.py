"""Every test gets its own app on its own SQLite file in a temporary directory; with
``BELIEFGAP_TEST_DATABASE=postgres``, on its own PostgreSQL database instead (``tests/pg.py``).
Either way the database starts as a copy of one the app has migrated once per run."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.live import RecordingPublisher
from app.main import create_app, prepare_database
from app.settings import Settings
from tests import liveserver, pg

ADMIN_TOKEN = "test-admin-token-0123456789"
SECRET_KEY = "test-secret-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
DATABASE_FILE = "beliefgap.db"
"""The app's SQLite file in its data directory (``Settings.resolved_database_url``)."""


MISSING: list[str] = []
"""What tests found missing on this machine (each skipped, or failed in CI): listed again at
the end of the run, in a section of its own, so that no skip goes unnoticed."""


def require(present: bool, message: str) -> None:
    """A test's requirement of the machine (a browser, a font, a tool). Missing, the test fails
    in CI (``CI`` set), where everything must run; elsewhere it is skipped saying so, and the
    run ends with the list of what was missing and how to install it."""
    if present:
        return
    if message not in MISSING:
        MISSING.append(message)
    if os.environ.get("CI"):
        pytest.fail(f"missing: {message}")
    pytest.skip(f"MISSING: {message}")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """What a test found missing, read from its report: with ``-n`` workers the test ran in
    another process, and only its report comes back to the one that prints the summary."""
    if report.skipped and isinstance(report.longrepr, tuple | list):
        reason = str(report.longrepr[-1])
    elif report.failed:
        reason = report.longreprtext
    else:
        return
    for line in reason.splitlines():
        for mark in ("Skipped: MISSING: ", "Failed: missing: "):
            _, found, message = line.partition(mark)
            if found and message not in MISSING:
                MISSING.append(message)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if MISSING:
        terminalreporter.section("missing on this machine: these tests did not run", red=True)
        for message in MISSING:
            terminalreporter.write_line(f"  {message}", red=True, bold=True)


PORT_CLAIMS = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """Ports are claimed for the whole run (``liveserver.free_port``): the first process
    (the only one, or the controller of ``-n`` workers, who inherit its environment) makes
    the directory of claims and removes it at the end."""
    if not os.environ.get(liveserver.PORTS_ENV):
        claims = tempfile.mkdtemp(prefix="beliefgap-ports-")
        os.environ[liveserver.PORTS_ENV] = claims
        config.stash[PORT_CLAIMS] = claims


def pytest_unconfigure(config: pytest.Config) -> None:
    claims = config.stash.get(PORT_CLAIMS, None)
    if claims is not None:
        shutil.rmtree(claims, ignore_errors=True)
        del os.environ[liveserver.PORTS_ENV]


def on_postgres() -> bool:
    """Whether this run puts the apps of the ``settings`` fixture on PostgreSQL."""
    return os.environ.get(pg.DATABASE_ENV, "").lower() in ("postgres", "postgresql")


DATABASE_FIXTURES = {"settings", "module_settings"}
"""The fixtures that put a test's app on the database of the run (SQLite or PostgreSQL)."""


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With ``-n`` workers (``--dist loadgroup``, as ``make test`` runs), the tests of a module
    that share a module-scoped fixture (a live server, a browser, a replay) run on one worker:
    split over two, each worker would build it again.

    On the PostgreSQL pass (``BELIEFGAP_TEST_DATABASE=postgres``) only the tests whose app
    runs on that database, through the ``settings`` (or ``module_settings``) fixture, run again:
    the others (pure functions, servers started on SQLite of their own) ran the same on the
    SQLite pass."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        defs = info.name2fixturedefs.values() if info is not None else ()
        if any(chain[-1].scope == "module" for chain in defs if chain):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.partition("::")[0]))
    if not on_postgres():
        return
    keep = [item for item in items if DATABASE_FIXTURES & set(getattr(item, "fixturenames", ()))]
    if len(keep) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
        items[:] = keep


@pytest.fixture(scope="session")
def postgres_server(request: pytest.FixtureRequest) -> str:
    """The PostgreSQL server for tests (``BELIEFGAP_TEST_POSTGRES_URL``). Unset, the test fails
    in CI and wherever PostgreSQL was asked for (``-m postgres``, ``BELIEFGAP_TEST_DATABASE``);
    elsewhere (``make test`` on a laptop) it is skipped, saying how to run it."""
    url = pg.server_url()
    if url is None:
        message = (
            f"{pg.URL_ENV} is not set: `make test-postgres` runs these tests on a throwaway "
            "PostgreSQL server, or point the variable at a server of your own"
        )
        asked = "postgres" in (request.config.option.markexpr or "") or on_postgres()
        if os.environ.get("CI") or asked:
            pytest.fail(message)
        require(False, message)
    return url


@pytest.fixture
def postgres_database(postgres_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (its SQLAlchemy URL); dropped after."""
    with pg.fresh_database(postgres_server) as url:
        yield url


@pytest.fixture(scope="session")
def postgres_template(
    postgres_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database the app has migrated and loaded the bundled talks into, once per run: each
    test's app starts on a copy of it (``BELIEFGAP_TEST_DATABASE=postgres``), as it would on a
    server it has started on before. Migrating from nothing is tested on empty databases
    (``postgres_database``) and on SQLite."""
    with pg.fresh_database(postgres_server) as url:
        # the tests' own settings, as the SQLite template's: without the published polls
        prepared = _settings(tmp_path_factory.mktemp("template"), url)
        prepare_database(prepared).dispose()  # a template takes no open connections
        yield url.rpartition("/")[2]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The SQLite file of an app that has migrated it and loaded the bundled talks, once per
    run: each test's app starts on a copy (``settings``), as it would on a server it has
    started on before. Migrating from nothing is tested in tests/test_db.py, by this template,
    and by the servers tests/ starts (tests/liveserver.py); the browser tests' servers and a
    few others start on a copy too (``copy_sqlite_template``)."""
    prepared = _settings(tmp_path_factory.mktemp("sqlite-template"), "")
    prepare_database(prepared).dispose()  # the last connection closed: no -wal file left
    return (prepared.data_dir / DATABASE_FILE).read_bytes()


@contextlib.contextmanager
def _database(data_dir: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """The database of one app in ``data_dir``: a copy of the run's migrated template, on
    PostgreSQL (its URL) or SQLite (``""``: the app's default file in the data directory,
    private as the app creates it)."""
    if on_postgres():
        server = request.getfixturevalue("postgres_server")
        template = request.getfixturevalue("postgres_template")
        with pg.fresh_database(server, template=template) as database_url:
            yield database_url
        return
    copy_sqlite_template(data_dir, request.getfixturevalue("sqlite_template"))
    yield ""


def copy_sqlite_template(data_dir: Path, template: bytes) -> Path:
    """``data_dir`` with a copy of the run's migrated SQLite template as the app's database
    file, private as the app creates it: an app built on it (``Settings(data_dir=...)``, no
    database URL) starts as a server does on a database it has migrated before, without the
    seconds of migrating from nothing."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / DATABASE_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as copy:
        copy.write(template)
    return data_dir


@pytest.fixture
def settings(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Settings]:
    with _database(tmp_path, request) as database_url:
        yield _settings(tmp_path, database_url)


@pytest.fixture(scope="module")
def module_settings(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Settings]:
    """``settings`` shared by the tests of one module: for tests that only read what a
    module-scoped fixture wrote once (an expensive replay, say)."""
    data_dir = tmp_path_factory.mktemp("module")
    with _database(data_dir, request) as database_url:
        yield _settings(data_dir, database_url)


def _settings(tmp_path: Path, database_url: str) -> Settings:
    """The tests' settings. The bundled talk's published polls stay out (its talk results are
    then those of the rooms a test runs); tests of them turn ``published_polls`` on."""
    return Settings(
        data_dir=tmp_path,
        admin_token=ADMIN_TOKEN,
        secret_key=SECRET_KEY,
        public_url="http://testserver",
        database_url=database_url,
        published_polls=False,
    )


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def app(settings: Settings, publisher: RecordingPublisher) -> FastAPI:
    return create_app(settings, publisher=publisher)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def live_app(settings: Settings) -> FastAPI:
    """The app with its real broadcaster as the publisher (no recording stand-in)."""
    return create_app(settings)


@pytest.fixture
def live_client(live_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(live_app) as client:
        yield client


def new_session(
    client: TestClient,
    talk: str = "emergence",
    venue: str = "Copenhagen",
    language: str | None = None,
) -> str:
    body = {"talk": talk, "venue": venue} | ({"language": language} if language else {})
    response = client.post("/api/v1/sessions", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    return str(response.json()["code"])


def phase_action(client: TestClient, code: str, phase: str, action: str, **params: int) -> dict:
    response = client.post(
        f"/api/v1/sessions/{code}/phases/{phase}/{action}", headers=AUTH, params=params
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def log_in(client: TestClient) -> None:
    """Log the client's browser in as the presenter (the login form, as a browser posts it)."""
    response = client.post(
        "/presenter/login",
        data={"token": ADMIN_TOKEN},
        headers={"Sec-Fetch-Site": "same-origin"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
