"""Scale-out: deploy/nginx.conf in front of two app processes, driven by a browser.

A copy of the production nginx.conf runs under Debian's nginx in the foreground
from a temporary directory (no root needed), with only the upstream servers,
the listen address and file paths rewritten. Through it, headless Chromium
opens the app (the WebSocket is proxied), trains a model, watches the loss
curve fill, and uploads a CSV larger than nginx's default body limit. The
access log (which records the replica of every request) shows that one browser
stays on one replica while new browsers are spread over both.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path

import numpy as np
import psutil
import pytest
from playwright.sync_api import Browser, expect

from tests.servers import (
    IDLE,
    LOSS_POINTS_JS,
    ROOT,
    free_port,
    start_app,
    stop,
    wait_gone,
    wait_healthy,
    worker_processes,
)

NGINX_CONF = ROOT / "deploy" / "nginx.conf"
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
EPOCHS = 300

#: One access-log line of the nnpg log_format in deploy/nginx.conf.
LOG_LINE = re.compile(r'"(?P<request>[^"]*)" (?P<status>\d{3}) .* '
                      r'upstream=(?P<upstream>\S+) route=(?P<route>\S+)')


def _sub(pattern: str, repl: str, text: str) -> str:
    """Replace exactly one match: if nginx.conf changes shape, fail here, loudly."""
    new, n = re.subn(pattern, repl, text, flags=re.M)
    assert n == 1, f"deploy/nginx.conf: expected one match of {pattern!r}, found {n}"
    return new


def local_nginx_conf(text: str, prefix: Path, listen_port: int, upstreams: list[str]) -> str:
    """The production config, runnable in the foreground from ``prefix``.

    Only what ties it to the container changes: the replicas' service name
    becomes the test's app addresses (same server parameters), port 80 a free
    loopback port, and the pid, log and temporary files move into ``prefix``.
    Everything that is tested (routing, stickiness, WebSocket headers, timeouts)
    is the file as shipped.
    """
    match = re.search(r"^([ \t]*)server\s+app:8501(\s[^;]*)?;", text, flags=re.M)
    assert match, "deploy/nginx.conf: no `server app:8501 ...;` in the upstream"
    indent, params = match.group(1), match.group(2) or ""
    servers = "".join(f"{indent}server {address}{params};\n" for address in upstreams)
    text = _sub(r"^[ \t]*server\s+app:8501(\s[^;]*)?;\n", servers, text)
    text = _sub(r"^[ \t]*listen\s+80;", f"        listen 127.0.0.1:{listen_port};", text)
    # nginx only switches users when started as root; then keep this user so it
    # can write into the temporary directory.
    user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
    text = _sub(r"^user\s+[^;]+;", user, text)
    text = _sub(r"^pid\s+[^;]+;", f"pid {prefix}/nginx.pid;", text)
    text = _sub(r"^error_log\s+\S+", f"error_log {prefix}/error.log", text)
    text = _sub(r"^([ \t]*)access_log\s+\S+", rf"\1access_log {prefix}/access.log", text)
    temp = "".join(f"    {kind}_temp_path {prefix}/{kind}_temp;\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return _sub(r"^http \{\n", "http {\n" + temp, text)


@dataclass
class Nginx:
    proc: subprocess.Popen
    url: str
    access_log: Path
    error_log: Path

    def log(self) -> list[dict[str, str]]:
        """Parsed access-log lines (written when each request completes)."""
        lines = self.access_log.read_text().splitlines() if self.access_log.exists() else []
        return [m.groupdict() for line in lines if (m := LOG_LINE.search(line))]


@contextlib.contextmanager
def running_nginx(tmp: Path, upstreams: list[str]) -> Iterator[Nginx]:
    """deploy/nginx.conf in front of ``upstreams``; stopped (and checked) afterwards."""
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(local_nginx_conf(NGINX_CONF.read_text(), tmp, port, upstreams))
    error_log = tmp / "error.log"
    check = subprocess.run([NGINX, "-t", "-p", str(tmp), "-c", str(conf), "-e", str(error_log)],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    # -e: nginx opens its compiled-in error log before reading the config;
    # daemon off: stay in the foreground as our child.
    proc = subprocess.Popen([NGINX, "-p", str(tmp), "-c", str(conf), "-e", str(error_log),
                             "-g", "daemon off;"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    master = psutil.Process(proc.pid)
    processes = [master]
    nginx = Nginx(proc, f"http://127.0.0.1:{port}", tmp / "access.log", error_log)
    try:
        wait_healthy(nginx.url, timeout=30, proc=proc)  # proxied to a replica
        processes += master.children()
        assert len(processes) > 1, "nginx started no worker processes"
        yield nginx
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            processes += [p for p in master.children() if p not in processes]
        if proc.poll() is None:
            proc.send_signal(signal.SIGQUIT)  # graceful: finish requests, then exit
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        left = wait_gone(processes, timeout=5)
    assert not [p.pid for p in left], "nginx processes left running"


def _get(url: str, cookie: str | None = None) -> tuple[bytes, str | None]:
    """GET ``url``; return the body and the nnpg_route cookie nginx set, if any."""
    request = urllib.request.Request(url)
    if cookie is not None:
        request.add_header("Cookie", f"nnpg_route={cookie}")
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
        jar = SimpleCookie()
        for header in response.headers.get_all("Set-Cookie") or []:
            jar.load(header)
    route = jar.get("nnpg_route")
    return body, route.value if route else None


def uploads(nginx: Nginx, route: str) -> list[dict[str, str]]:
    """Access-log entries of Streamlit file uploads made with this route id."""
    return [e for e in nginx.log()
            if e["route"] == route and e["request"].startswith("PUT /_stcore/upload_file/")]


def write_csv(path: Path, rows: int) -> Path:
    """A two-class CSV (8 numeric features, a label column) for the uploader."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, 8))
    lines = ["x1,x2,x3,x4,x5,x6,x7,x8,label"]
    lines += [",".join(f"{v:.6f}" for v in x) + f",{int(x[0] > 0)}" for x in X]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def two_apps() -> Iterator[list[tuple[subprocess.Popen, str]]]:
    """Two app servers on free loopback ports; stopped, with their workers, afterwards."""
    # One worker each: the test trains one model, and the machine has two cores.
    apps = []
    try:
        for _ in range(2):
            apps.append(start_app(env={"NNPG_MAX_JOBS": "1"}))
        yield apps
    finally:
        tracked = []
        for proc, _ in apps:
            with contextlib.suppress(psutil.NoSuchProcess):
                tracked += [psutil.Process(proc.pid), *worker_processes(proc.pid)]
            stop(proc)
        left = wait_gone(tracked, timeout=10)
    assert not [p.pid for p in left], "app or worker processes left running"


def test_compose_and_nginx_conf_agree() -> None:
    # No Docker engine here, so check the wiring the two files share by reading them.
    # Comments dropped: they may mention what the files must not contain.
    compose = re.sub(r"(?m)^\s*#.*\n", "", COMPOSE.read_text())
    conf = re.sub(r"(?m)^\s*#.*\n", "", NGINX_CONF.read_text())
    service, port = re.search(r"^\s*server\s+([\w-]+):(\d+)", conf, flags=re.M).groups()
    assert re.search(rf"^  {service}:\s*$", compose, flags=re.M), \
        f"nginx's upstream names service {service!r}, which compose does not define"
    assert port == "8501", "the replicas listen on the image's EXPOSE 8501"
    assert "./nginx.conf:/etc/nginx/nginx.conf" in compose
    # A scaled service cannot have a fixed container name or a published host port.
    app_block = compose.split(f"\n  {service}:\n", 1)[1].split("\n  nginx:\n", 1)[0]
    assert not re.search(r"^\s+container_name:", app_block, flags=re.M)
    assert not re.search(r"^\s{4}ports:", app_block, flags=re.M)
    assert re.search(r"^\s+replicas:\s*\d+", app_block, flags=re.M)
    assert "condition: service_healthy" in compose
    # nginx must accept every upload Streamlit accepts (plus the multipart envelope).
    body_mb = int(re.search(r"^\s*client_max_body_size\s+(\d+)m;", conf, flags=re.M).group(1))
    streamlit_mb = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert body_mb > streamlit_mb["server"]["maxUploadSize"]
    # Stickiness and WebSocket upgrade are in the file the test runs below.
    assert re.search(r"^\s*(ip_hash|hash\s+\$\w+(\s+consistent)?);", conf, flags=re.M)
    for directive in ("proxy_set_header Upgrade $http_upgrade",
                      "proxy_set_header Connection $connection_upgrade",
                      "proxy_http_version 1.1", "proxy_buffering off", "proxy_read_timeout"):
        assert directive in conf, directive


@pytest.mark.browser
@pytest.mark.slow
def test_training_through_nginx_is_sticky(two_apps: list[tuple[subprocess.Popen, str]],
                                          tmp_path: Path, browser: Browser,
                                          artifacts: Path) -> None:
    upstream_of = {url.removeprefix("http://"): proc for proc, url in two_apps}
    with running_nginx(tmp_path, list(upstream_of)) as nginx:
        # -- stickiness, over plain HTTP -------------------------------------------
        # Without a cookie, every request gets a fresh route id (and the cookie):
        # 20 of them must reach both replicas.
        fresh = []
        for _ in range(20):
            body, route = _get(f"{nginx.url}/_stcore/health")
            assert body == b"ok" and route and re.fullmatch(r"[0-9a-f]{32}", route), route
            fresh.append(route)
        # With a cookie, always the same replica, and no new cookie.
        pinned = [secrets.token_hex(16) for _ in range(4)]
        for route in pinned:
            for _ in range(5):
                body, new = _get(f"{nginx.url}/_stcore/health", cookie=route)
                assert body == b"ok" and new is None
        # A malformed cookie is not trusted as a route id: it is replaced.
        assert _get(f"{nginx.url}/_stcore/health", cookie="x/../../etc")[1] is not None

        by_route: dict[str, set[str]] = {}
        for entry in nginx.log():
            by_route.setdefault(entry["route"], set()).add(entry["upstream"])
        assert set().union(*(by_route[r] for r in fresh)) == set(upstream_of), \
            "new browsers are not spread over both replicas"
        for route in pinned:
            assert len(by_route[route]) == 1, f"route {route} moved: {by_route[route]}"

        # -- a training run in the browser, through the proxied WebSocket -----------
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        try:
            page = context.new_page()
            page.goto(f"{nginx.url}/?epochs={EPOCHS}", timeout=60_000)
            # The app only gets idle after its script ran over the WebSocket.
            expect(page.locator(IDLE)).to_be_visible(timeout=60_000)
            browser_route = next(c["value"] for c in context.cookies()
                                 if c["name"] == "nnpg_route")

            page.get_by_role("button", name="Train", exact=True).click()
            counts: list[int] = []
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                n = page.evaluate(LOSS_POINTS_JS)
                if n and (not counts or counts[-1] != n):
                    counts.append(n)
                if n == EPOCHS:
                    break
                time.sleep(0.05)
            assert counts and counts[-1] == EPOCHS, \
                f"the loss curve did not reach {EPOCHS} points: {counts}"
            assert len(set(counts)) >= 2, f"the curve never grew while watched: {counts}"
            assert page.get_by_test_id("stException").count() == 0
            # No Train-button tooltip in the picture: unfocus it, move the pointer away.
            page.evaluate("() => document.activeElement && document.activeElement.blur()")
            page.mouse.move(1200, 20)
            expect(page.get_by_role("tooltip")).to_have_count(0, timeout=5_000)
            page.screenshot(path=str(artifacts / "nginx_training.png"), full_page=True)

            # An upload above nginx's default 1 MB body limit (below Streamlit's
            # 5 MB): it must pass the proxy and reach this session's replica.
            csv = write_csv(tmp_path / "upload.csv", rows=20_000)
            assert 1.2e6 < csv.stat().st_size < 4e6
            page.goto(f"{nginx.url}/?dataset=Upload+CSV", timeout=60_000)
            expect(page.locator(IDLE)).to_be_visible(timeout=60_000)
            page.locator("input[type='file']").set_input_files(str(csv))
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not uploads(nginx, browser_route):
                time.sleep(0.2)
            expect(page.locator(IDLE)).to_be_visible(timeout=60_000)
            assert page.get_by_test_id("stException").count() == 0
        finally:
            context.close()  # closes the WebSockets, so nginx logs them

        # Every request of this browser, the WebSocket (101) included, went to one
        # replica, and the run's worker belongs to that replica's server only.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
                e["route"] == browser_route and e["status"] == "101" for e in nginx.log()):
            time.sleep(0.2)
        mine = [e for e in nginx.log() if e["route"] == browser_route]
        assert any(e["request"].startswith("GET /_stcore/stream") and e["status"] == "101"
                   for e in mine), "no proxied WebSocket in the access log"
        put = uploads(nginx, browser_route)
        assert [e["status"] for e in put] == ["204"], f"upload through nginx: {put}"
        upstreams = {e["upstream"] for e in mine}
        assert len(upstreams) == 1, f"one browser was served by several replicas: {upstreams}"
        sticky = upstreams.pop()
        for address, proc in upstream_of.items():
            workers = worker_processes(proc.pid)
            if address == sticky:
                assert workers, "the browser's replica has no training worker"
            else:
                # This replica never ran a page, so it never started its job runner.
                assert not workers, "a replica the browser never reached started workers"
        errors = nginx.error_log.read_text()
        assert "[emerg]" not in errors and "[alert]" not in errors, errors
