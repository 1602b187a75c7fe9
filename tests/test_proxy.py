"""The app behind a real nginx (Debian's package) running the shipped site,
deploy/nginx/beliefgap.conf, in front of ``beliefgap serve`` as the systemd unit starts it.

nginx terminates TLS with a certificate made for the test (openssl), as it would with a real
one: the ``X-Forwarded-Proto: https`` the app sees is the one the shipped file sets
(``$scheme``), not one the test makes up. The test's nginx runs the shipped file with only its
listen addresses, certificate, upstream port and two directories replaced (``render_site``);
every location and proxy setting, the event streams' above all, is what a server runs. A change
to the file's shape that the replacements no longer fit fails the test rather than testing
something else.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest

from app.routes.presenter import qr_svg
from tests import liveserver
from tests.conftest import ADMIN_TOKEN, AUTH, require
from tests.liveserver import LiveServer
from tests.test_stream import sse_events

pytestmark = pytest.mark.proxy

ROOT = liveserver.ROOT
SITE = ROOT / "deploy" / "nginx" / "beliefgap.conf"
HOST = "polls.example.org"
PUBLIC_URL = f"https://{HOST}"
EVENT_DEADLINE = 2.0
"""Seconds within which an event must come through nginx (a buffering proxy holds it)."""
PING_SECONDS = 1
"""The test's app pings after a second of quiet (``BELIEFGAP_PING_SECONDS``; 10 by default):
whether nginx passes a ping on at once does not depend on how long the app waited to send it."""
PING_DEADLINE = PING_SECONDS + 2.5
SERVE = (sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1")
"""``beliefgap serve --host 127.0.0.1``, as deploy/systemd/beliefgap.service runs it (the test
adds ``--port``)."""
HX = {"HX-Request": "true"}


def _nginx_binary() -> str | None:
    found = shutil.which("nginx")
    if found is None and os.access("/usr/sbin/nginx", os.X_OK):  # not on every user's PATH
        found = "/usr/sbin/nginx"
    return found


def _need(tool: str | None, what: str) -> str:
    """The tool's path; without it a failure in CI (nothing is skipped silently there), a skip
    with the way to install it elsewhere."""
    require(
        tool is not None,
        f"{what} (the proxy test): apt-get install nginx openssl (tools/test-packages does it)",
    )
    assert tool is not None
    return tool


# --------------------------------------------------------------------------- the site file


def render_site(
    shipped: str,
    *,
    https_port: int,
    http_port: int,
    upstream_port: int,
    certificate: Path,
    key: Path,
    static_dir: Path,
    acme_dir: Path,
) -> str:
    """The shipped site with what differs on a test machine replaced: each replacement must
    match exactly as often as the shipped file has that line, and no production path may be
    left outside comments."""

    def quoted(path: Path | str) -> str:
        return '"' + str(path).replace('"', '\\"') + '"'

    replacements: list[tuple[str, Callable[[re.Match[str]], str], int]] = [
        (r"^(\s*)listen 443 (.*);$", lambda m: f"{m[1]}listen 127.0.0.1:{https_port} {m[2]};", 1),
        (r"^(\s*)listen 80;$", lambda m: f"{m[1]}listen 127.0.0.1:{http_port};", 1),
        # The test machine may have no IPv6; one address per server is enough here.
        (r"^\s*listen \[::\]:(80|443)\b.*;\n", lambda m: "", 2),
        (
            r"^(\s*)ssl_certificate \S+;$",
            lambda m: f"{m[1]}ssl_certificate {quoted(certificate)};",
            1,
        ),
        (
            r"^(\s*)ssl_certificate_key \S+;$",
            lambda m: f"{m[1]}ssl_certificate_key {quoted(key)};",
            1,
        ),
        (
            r"^(\s*)server 127\.0\.0\.1:8000;$",
            lambda m: f"{m[1]}server 127.0.0.1:{upstream_port};",
            1,
        ),
        (
            r"^(\s*)alias /opt/beliefgap/static/(\S*);$",
            lambda m: f"{m[1]}alias {quoted(f'{static_dir}/{m[2]}')};",
            2,
        ),
        (r"^(\s*)root /var/www/letsencrypt;$", lambda m: f"{m[1]}root {quoted(acme_dir)};", 1),
    ]
    text = shipped
    for pattern, replace, expected in replacements:
        text, found = re.subn(pattern, replace, text, flags=re.MULTILINE)
        assert found == expected, (
            f"{SITE.relative_to(ROOT)} changed shape: {pattern!r} matched {found} times, not "
            f"{expected}; update render_site in {Path(__file__).name}"
        )
    directives = re.sub(r"#.*", "", text)
    for production in (r"/etc/letsencrypt", r"/opt/beliefgap", r"/var/www", r":(8000|443)\b"):
        left = re.search(production, directives)
        assert left is None, f"{left[0]} left in the test's site:\n{text}"
    return text


# --------------------------------------------------------------------------- nginx


@dataclass
class Proxy:
    """A running nginx with the site: HTTPS on ``https_port``, plain HTTP on ``http_port``."""

    process: subprocess.Popen[bytes]
    directory: Path
    https_port: int
    http_port: int
    certificate: Path

    @property
    def error_log(self) -> Path:
        return self.directory / "error.log"

    def client(self, headers: dict[str, str] | None = None, timeout: float = 5) -> httpx.Client:
        """A client of the HTTPS site, as a browser opening https://polls.example.org (the
        certificate is the test's; the Host header names the site)."""
        return httpx.Client(
            base_url=f"https://127.0.0.1:{self.https_port}",
            verify=ssl.create_default_context(cafile=str(self.certificate)),
            headers={"Host": HOST, **(headers or {})},
            timeout=timeout,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # nginx's fast shutdown
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for polls.example.org and 127.0.0.1 (what the test connects
    to), made with openssl."""
    openssl = _need(shutil.which("openssl"), "openssl")
    certificate, key = directory / "cert.pem", directory / "key.pem"
    command = [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    command += ["-nodes", "-days", "2", "-subj", f"/CN={HOST}", "-keyout", str(key)]
    command += ["-out", str(certificate), "-addext", f"subjectAltName=DNS:{HOST},IP:127.0.0.1"]
    subprocess.run(command, check=True, capture_output=True)
    return certificate, key


def start_nginx(
    directory: Path,
    upstream: LiveServer,
    certificate: Path,
    key: Path,
    change: Callable[[str], str] = lambda site: site,
) -> Proxy:
    """nginx in the foreground with the rendered site (``change`` may alter it further), its
    files, logs and temporary folders in ``directory``; returns once it proxies ``/healthz``."""
    nginx = _need(_nginx_binary(), "nginx")
    directory.mkdir(parents=True, exist_ok=True)
    proxy_log = directory / "error.log"
    acme = directory / "acme"
    (acme / ".well-known" / "acme-challenge").mkdir(parents=True, exist_ok=True)
    (acme / ".well-known" / "acme-challenge" / "probe").write_text("acme probe\n")
    https_port, http_port = liveserver.free_port(), liveserver.free_port()
    site = render_site(
        SITE.read_text(),
        https_port=https_port,
        http_port=http_port,
        upstream_port=upstream.port,
        certificate=certificate,
        key=key,
        static_dir=ROOT / "static",
        acme_dir=acme,
    )
    (directory / "beliefgap.conf").write_text(change(site))
    mime = Path("/etc/nginx/mime.types")
    types = f"include {mime};" if mime.exists() else "types { text/css css; text/javascript js; }"
    temp = "\n".join(
        f"    {kind}_temp_path {directory / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # As root, nginx's workers would become nobody, who cannot enter pytest's private tmp dir.
    user = "user root;" if os.geteuid() == 0 else ""
    (directory / "nginx.conf").write_text(
        f"""{user}
worker_processes 1;
events {{ worker_connections 512; }}
http {{
    {types}
    default_type application/octet-stream;
    access_log {directory / "access.log"};
{temp}
    sendfile on;
    # What Debian's /etc/nginx/nginx.conf has: gzip on (for text/html). The site keeps the app's
    # responses uncompressed regardless.
    gzip on;
    include {directory / "beliefgap.conf"};
}}
"""
    )
    # (Not -e for the start-up log: nginx before 1.19.5 lacks it. As a user other than root,
    # nginx warns that it cannot open the compiled-in log before it reads error_log here.)
    command = [nginx, "-p", str(directory), "-c", str(directory / "nginx.conf")]
    command += ["-g", f"daemon off; pid {directory / 'nginx.pid'}; error_log {proxy_log} info;"]
    check = subprocess.run([*command, "-t"], capture_output=True, text=True)
    assert check.returncode == 0, f"nginx -t refused the site:\n{check.stderr}"
    with (directory / "nginx.out").open("ab") as output:
        process = subprocess.Popen(  # a fixed command line of our own
            command, stdout=output, stderr=subprocess.STDOUT
        )
    proxy = Proxy(process, directory, https_port, http_port, certificate)
    deadline = time.monotonic() + 15
    with proxy.client(timeout=1) as probe:
        while True:
            try:
                if probe.get("/healthz").status_code == 200:
                    return proxy
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                proxy.stop()
                logs = [directory / "nginx.out", proxy.error_log, upstream.log]
                text = "\n".join(f"{p.name}:\n{p.read_text()}" for p in logs if p.exists())
                raise RuntimeError(f"nginx did not start or proxy /healthz:\n{text}")
            time.sleep(0.05)


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """``beliefgap serve`` with the public URL and FORWARDED_ALLOW_IPS of deploy/env.example
    (and a short ping interval)."""
    running = liveserver.start(
        tmp_path_factory.mktemp("app"),
        ADMIN_TOKEN,
        public_url=PUBLIC_URL,
        env={"FORWARDED_ALLOW_IPS": "127.0.0.1", "BELIEFGAP_PING_SECONDS": str(PING_SECONDS)},
        command=SERVE,
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def proxy(
    tmp_path_factory: pytest.TempPathFactory, app_server: LiveServer, tls: tuple[Path, Path]
) -> Iterator[Proxy]:
    running = start_nginx(tmp_path_factory.mktemp("nginx"), app_server, *tls)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def code(app_server: LiveServer) -> str:
    """A new session (created with the admin token, direct to the app)."""
    with httpx.Client(base_url=app_server.url, headers=AUTH, timeout=5) as api:
        response = api.post("/api/v1/sessions", json={"talk": "emergence", "venue": "Leeds"})
        assert response.status_code == 201, response.text
        return str(response.json()["code"])


# --------------------------------------------------------------------------- helpers


def set_cookies(response: httpx.Response) -> dict[str, set[str]]:
    """Cookie name -> its attributes, lowercased (``secure``, ``httponly``, ``path=/``...)."""
    found = {}
    for header in response.headers.get_list("set-cookie"):
        pair, *attributes = (part.strip() for part in header.split(";"))
        found[pair.partition("=")[0]] = {attribute.lower() for attribute in attributes}
    return found


def cookie_value(response: httpx.Response, name: str) -> str:
    for header in response.headers.get_list("set-cookie"):
        pair = header.split(";", 1)[0]
        if pair.partition("=")[0] == name:
            return pair.partition("=")[2]
    raise AssertionError(f"no {name} cookie set: {response.headers.get_list('set-cookie')}")


def log_in(client: httpx.Client, code: str) -> httpx.Response:
    """The presenter's login form, as a browser submits it from the login page (its Origin is
    the client's own address); the 303 that sets the cookie."""
    page = client.get("/presenter/login")
    assert page.status_code == 200, page.text
    host = client.headers.get("host") or client.base_url.netloc.decode()
    response = client.post(
        "/presenter/login",
        data={"token": ADMIN_TOKEN, "next": f"/presenter/sessions/{code}"},
        headers={"Origin": f"{client.base_url.scheme}://{host}"},
    )
    assert response.status_code == 303, response.text
    return response


def open_phase(proxy: Proxy, code: str, phase: str) -> None:
    with proxy.client(headers=AUTH) as api:
        api.post(f"/api/v1/sessions/{code}/phases/{phase}/open").raise_for_status()


def assert_events_unbuffered(proxy: Proxy, code: str) -> None:
    """A phone's stream through nginx: its snapshot, then the question the presenter opens,
    each within EVENT_DEADLINE (a buffering proxy holds them, response headers included, until
    a buffer fills)."""
    timeout = httpx.Timeout(5, read=EVENT_DEADLINE)
    try:
        with (
            proxy.client() as phone,
            phone.stream(
                "GET", f"/api/v1/sessions/{code}/events", params={"view": "phone"}, timeout=timeout
            ) as stream,
        ):
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert "content-encoding" not in stream.headers  # compression would hold events
            events = sse_events(stream)
            seen = []
            while "panel" not in seen:
                seen.append(next(events)[0])
            assert seen == ["state", "results", "panel"]
            started = time.monotonic()
            open_phase(proxy, code, "belief")
            for event, data in events:
                if event == "panel" and 'data-open="belief@' in data:
                    break
            elapsed = time.monotonic() - started
    except httpx.ReadTimeout:
        pytest.fail(f"no event came through nginx within {EVENT_DEADLINE} s: buffered?")
    assert elapsed < EVENT_DEADLINE, f"the opened question took {elapsed:.2f} s"


# --------------------------------------------------------------------------- the tests


def test_events_arrive_unbuffered_through_nginx(proxy: Proxy, code: str) -> None:
    assert_events_unbuffered(proxy, code)


def test_the_site_alone_keeps_events_unbuffered(
    tmp_path: Path, app_server: LiveServer, tls: tuple[Path, Path], code: str
) -> None:
    """The app says ``X-Accel-Buffering: no``; the site's ``proxy_buffering off`` must do it
    alone (a proxy in between may drop the header): here nginx ignores the header."""
    location = "location ~ ^/api/v1/sessions/[^/]+/events$ {"

    def ignore_the_header(site: str) -> str:
        assert site.count(location) == 1
        return site.replace(
            location, f"{location}\n        proxy_ignore_headers X-Accel-Buffering;"
        )

    own = start_nginx(tmp_path, app_server, *tls, change=ignore_the_header)
    try:
        assert_events_unbuffered(own, code)
    finally:
        own.stop()


def test_a_buffering_proxy_would_hold_the_events(
    tmp_path: Path, app_server: LiveServer, tls: tuple[Path, Path], code: str
) -> None:
    """What the checks above guard against, so that they mean something: with buffering on and
    the app's header ignored, nginx holds the stream back (its headers and snapshot too)."""
    location = "location ~ ^/api/v1/sessions/[^/]+/events$ {"

    def buffer(site: str) -> str:
        site = site.replace(
            location, f"{location}\n        proxy_ignore_headers X-Accel-Buffering;"
        )
        assert site.count("proxy_buffering off;") == 1
        return site.replace("proxy_buffering off;", "proxy_buffering on;")

    own = start_nginx(tmp_path, app_server, *tls, change=buffer)
    try:
        with pytest.raises(pytest.fail.Exception, match="buffered"):
            assert_events_unbuffered(own, code)
    finally:
        own.stop()


def test_a_quiet_stream_gets_pings_through_nginx(proxy: Proxy, code: str) -> None:
    timeout = httpx.Timeout(5, read=PING_DEADLINE)
    with (
        proxy.client() as phone,
        phone.stream("GET", f"/api/v1/sessions/{code}/events", timeout=timeout) as stream,
    ):
        events = sse_events(stream)
        seen = [next(events)[0] for _ in range(3)]  # the snapshot
        assert seen == ["state", "results", "panel"]
        started = time.monotonic()
        try:
            event, _data = next(events)
        except httpx.ReadTimeout:
            pytest.fail(f"no ping through nginx within {PING_DEADLINE} s")
        assert event == "ping"
        assert time.monotonic() - started < PING_DEADLINE


def test_cookies_are_secure_through_nginx(proxy: Proxy, code: str) -> None:
    with proxy.client() as phone:
        page = phone.get(f"/j/{code}")
        assert page.status_code == 200
        cookies = set_cookies(page)
        assert {"secure", "httponly", "samesite=lax"} <= cookies[f"bg_p_{code}"]
    with proxy.client() as laptop:
        cookies = set_cookies(log_in(laptop, code))
        assert {"secure", "httponly", "samesite=strict"} <= cookies["bg_presenter"]


def test_cookies_are_not_secure_over_plain_http(app_server: LiveServer, code: str) -> None:
    """Direct to the app over plain HTTP the scheme is http: the participant's and the
    presenter's cookies follow it."""
    with httpx.Client(base_url=app_server.url, timeout=5) as direct:
        cookies = set_cookies(direct.get(f"/j/{code}"))
        assert "secure" not in cookies[f"bg_p_{code}"]
        assert "secure" not in set_cookies(log_in(direct, code))["bg_presenter"]


def test_uvicorn_believes_forwarded_headers_only_from_forwarded_allow_ips(
    tmp_path: Path, app_server: LiveServer, code: str
) -> None:
    """nginx connects from 127.0.0.1, which FORWARDED_ALLOW_IPS names: its X-Forwarded-Proto
    counts. From anywhere else the header is ignored (here: the app told to trust only
    192.0.2.1, a documentation address, and the test's request from 127.0.0.1)."""
    https = {"X-Forwarded-Proto": "https"}
    with httpx.Client(base_url=app_server.url, timeout=5) as trusted:
        assert "secure" in set_cookies(trusted.get(f"/j/{code}", headers=https))[f"bg_p_{code}"]
    other = liveserver.start(
        tmp_path, ADMIN_TOKEN, env={"FORWARDED_ALLOW_IPS": "192.0.2.1"}, command=SERVE
    )
    try:
        with httpx.Client(base_url=other.url, timeout=5) as untrusted:
            created = untrusted.post(
                "/api/v1/sessions", json={"talk": "emergence", "venue": "Bath"}, headers=AUTH
            )
            own = created.json()["code"]
            cookies = set_cookies(untrusted.get(f"/j/{own}", headers=https))
            assert "secure" not in cookies[f"bg_p_{own}"]
    finally:
        other.stop()


def test_the_control_page_shows_the_public_join_url_and_its_qr_code(
    proxy: Proxy, code: str
) -> None:
    join = f"{PUBLIC_URL}/j/{code}"
    with proxy.client() as laptop:
        log_in(laptop, code)
        page = laptop.get(f"/presenter/sessions/{code}")
        assert page.status_code == 200, page.text
    assert f'href="{join}"' in page.text
    assert str(qr_svg(join)) in page.text, "the QR code does not hold the public join URL"
    # Scripts and styles over https from the public host: no mixed content on an https page.
    assert f'href="{PUBLIC_URL}/static/css/presenter.css"' in page.text
    assert not re.search(r'(href|src)="http://', page.text)


def test_a_phone_votes_through_nginx(proxy: Proxy, code: str) -> None:
    open_phase(proxy, code, "belief")
    with proxy.client() as phone:
        page = phone.get(f"/j/{code}")
        assert page.status_code == 200
        assert f'src="{PUBLIC_URL}/static/js/audience.js"' in page.text
        assert not re.search(r'(href|src)="http://', page.text)
        # The page's form as an older browser posts it (Origin only): the app knows its own
        # origin from the Host nginx passes on and the X-Forwarded-Proto it trusts.
        form = {"phase": "belief", "choice": "agree"}
        for foreign in (f"http://{HOST}", f"https://{HOST}:8443", "https://evil.example"):
            refused = phone.post(f"/j/{code}/vote", data=form, headers={**HX, "Origin": foreign})
            assert refused.status_code == 403, foreign
        voted = phone.post(f"/j/{code}/vote", data=form, headers={**HX, "Origin": PUBLIC_URL})
        assert voted.status_code == 200, voted.text
    with proxy.client() as other:
        voted = other.post(
            f"/api/v1/sessions/{code}/votes", json={"phase": "belief", "choice": "disagree"}
        )
        assert voted.status_code == 200, voted.text
        assert "secure" in set_cookies(voted)[f"bg_p_{code}"]
    with proxy.client(headers=AUTH) as api:
        rows = api.get(f"/api/v1/sessions/{code}/export.csv").text.splitlines()
    assert len(rows) == 3  # the header and both votes


def test_healthz_answers_through_nginx(proxy: Proxy) -> None:
    with proxy.client() as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["strict-transport-security"] == "max-age=31536000"
    assert "content-encoding" not in response.headers


def test_nginx_serves_the_static_files(proxy: Proxy) -> None:
    with proxy.client() as client:
        script = client.get("/static/js/audience.js")
        vendor = client.get("/static/vendor/htmx-2.0.11.min.js")
        missing = client.get("/static/js/nothing-here.js")
    assert script.status_code == 200
    assert script.content == (ROOT / "static" / "js" / "audience.js").read_bytes()
    assert script.headers["cache-control"] == "no-cache"  # the app's StaticFiles sends none
    assert script.headers["content-encoding"] == "gzip"
    assert script.headers["strict-transport-security"] == "max-age=31536000"
    assert vendor.content == (ROOT / "static" / "vendor" / "htmx-2.0.11.min.js").read_bytes()
    assert "immutable" in vendor.headers["cache-control"]
    assert vendor.headers["strict-transport-security"] == "max-age=31536000"
    assert missing.status_code == 404


def test_plain_http_redirects_to_https_but_serves_certificate_challenges(proxy: Proxy) -> None:
    with httpx.Client(
        base_url=f"http://127.0.0.1:{proxy.http_port}", headers={"Host": HOST}, timeout=5
    ) as plain:
        redirect = plain.get("/j/ABCDEF?lang=en")
        challenge = plain.get("/.well-known/acme-challenge/probe")
    assert redirect.status_code == 301
    assert redirect.headers["location"] == f"{PUBLIC_URL}/j/ABCDEF?lang=en"
    assert challenge.status_code == 200 and challenge.text == "acme probe\n"


def test_nginx_refuses_a_large_body(proxy: Proxy, code: str) -> None:
    with proxy.client() as client:
        response = client.post(
            f"/api/v1/sessions/{code}/votes",
            content=b"{" + b" " * 20_000 + b"}",
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 413
    assert response.headers["server"].startswith("nginx")
