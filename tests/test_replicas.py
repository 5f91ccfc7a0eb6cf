"""Two replicas behind nginx share one PostgreSQL run store, seen from one browser.

Replica A and replica B are real app processes, both with ``NNPG_DATABASE_URL``
naming the same throw-away PostgreSQL database (and each its own empty
``NNPG_DATA_DIR``, which must stay free of SQLite files). deploy/nginx.conf runs
in front of them (rewritten as tests/test_nginx.py does). One Chromium context
trains a run through nginx on the replica its route cookie maps to, then gets a
route cookie that maps to the other replica while keeping its workspace cookie:
the Compare page (opened by its address, the first page that replica ever
serves) and the run's result link on the other replica show the run as this
browser's own. The store's ``servers`` table lists both replicas, and the
run row is ``done``.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psutil
import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect

from tests.servers import (
    IDLE,
    free_port,
    log_path,
    start_app,
    stop,
    wait_gone,
    worker_processes,
)
from tests.test_nginx import Nginx, _get, running_nginx

pytestmark = pytest.mark.browser

ROUTE = "nnpg_route"
WORKSPACE = "nnpg_workspace"


@dataclass
class Replica:
    proc: subprocess.Popen
    url: str
    data_dir: Path
    log: Path
    log_start: int  # the server log is appended to: this test's part starts here

    @property
    def address(self) -> str:
        return self.url.removeprefix("http://")

    def new_log(self) -> str:
        with self.log.open("rb") as f:
            f.seek(self.log_start)
            return f.read().decode(errors="replace")


@contextlib.contextmanager
def running_replicas(postgres_url: str, tmp_path: Path, names: str) -> Iterator[list[Replica]]:
    """One app process per letter of ``names``, all on the PostgreSQL database
    ``postgres_url``, each with its own (empty) NNPG_DATA_DIR; stopped, with their
    training workers, afterwards (also when starting one of them fails)."""
    started: list[Replica] = []
    try:
        for name in names:
            data_dir = tmp_path / f"data-{name}"
            data_dir.mkdir()
            port = free_port()
            log = log_path(port)
            log_start = log.stat().st_size if log.exists() else 0
            proc, url = start_app(port=port, env={
                "NNPG_DATABASE_URL": postgres_url, "NNPG_DATA_DIR": str(data_dir),
                "NNPG_MAX_JOBS": "1"})
            started.append(Replica(proc, url, data_dir, log, log_start))
            print(f"replica {name}: {url} (log {log})")
        yield started
    finally:
        tracked = []
        for r in started:
            with contextlib.suppress(psutil.NoSuchProcess):
                tracked += [psutil.Process(r.proc.pid), *worker_processes(r.proc.pid)]
            stop(r.proc)
        left = wait_gone(tracked, timeout=10)
    assert not [p.pid for p in left], "app or worker processes left running"


@pytest.fixture
def replicas(postgres_url: str, tmp_path: Path) -> Iterator[list[Replica]]:
    """Replicas A and B on one PostgreSQL database."""
    with running_replicas(postgres_url, tmp_path, "ab") as started:
        yield started


def idle(page: Page) -> None:
    expect(page.locator(IDLE)).to_be_attached(timeout=30_000)


def no_traceback(page: Page) -> None:
    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect(page.get_by_text("Something went wrong")).to_have_count(0)


def alert(page: Page, text: str):
    return page.get_by_test_id("stAlert").filter(has_text=text)


def upstreams_of(nginx: Nginx, route: str) -> set[str]:
    return {e["upstream"] for e in nginx.log() if e["route"] == route}


def wait_websocket_logged(nginx: Nginx, route: str, timeout: float = 10.0) -> None:
    """nginx logs a WebSocket when it closes: wait for the 101 line of ``route``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e["route"] == route and e["status"] == "101"
               and e["request"].startswith("GET /_stcore/stream") for e in nginx.log()):
            return
        time.sleep(0.2)
    raise AssertionError(f"no proxied WebSocket of route {route} in the access log")


def route_to(nginx: Nginx, upstream: str, tries: int = 30) -> str:
    """A fresh route id that nginx's consistent hash maps to ``upstream``
    (each candidate is tried with one health request; the access log says where it went)."""
    for _ in range(tries):
        route = secrets.token_hex(16)
        body, new_cookie = _get(f"{nginx.url}/_stcore/health", cookie=route)
        assert body == b"ok" and new_cookie is None
        if upstreams_of(nginx, route) == {upstream}:
            return route
    raise AssertionError(f"no route id out of {tries} reached {upstream}")


def test_run_trained_on_one_replica_is_shown_by_the_other(
        replicas: list[Replica], postgres_url: str, tmp_path: Path, browser: Browser,
        artifacts: Path) -> None:
    by_address = {r.address: r for r in replicas}
    nginx_dir = tmp_path / "nginx"
    nginx_dir.mkdir()
    with running_nginx(nginx_dir, list(by_address)) as nginx:
        context = browser.new_context(viewport={"width": 1500, "height": 1300})
        try:
            page = context.new_page()
            # -- train on whichever replica the first page load lands on -----------------
            page.goto(f"{nginx.url}/?dataset=Moons&epochs=50", timeout=60_000)
            idle(page)
            page.get_by_role("button", name="Train", exact=True).click()
            expect(page).to_have_url(re.compile(r"[?&]run="), timeout=20_000)
            run_id = parse_qs(urlsplit(page.url).query)["run"][0]
            expect(alert(page, "Trained 50 epochs").first).to_be_visible(timeout=30_000)
            idle(page)
            no_traceback(page)
            # No Train-button tooltip in the picture: unfocus it, move the pointer away.
            page.evaluate("() => document.activeElement && document.activeElement.blur()")
            page.mouse.move(1400, 20)
            expect(page.get_by_role("tooltip")).to_have_count(0, timeout=5_000)
            # The per-class table (a canvas grid) paints a moment after it mounts; its
            # accessible copy (inside the canvas) appears with the first paint.
            expect(page.locator("[data-testid='stDataFrame'] th[role='columnheader']",
                                has_text="precision")).to_be_attached(timeout=10_000)
            page.wait_for_timeout(300)
            page.screenshot(path=str(artifacts / "replica_a.png"), full_page=True)

            cookies = {c["name"]: c["value"] for c in context.cookies()}
            route_a = cookies[ROUTE]
            assert cookies.get(WORKSPACE), f"no workspace cookie: {sorted(cookies)}"
            served = upstreams_of(nginx, route_a)
            assert len(served) == 1, f"one browser was served by several replicas: {served}"
            upstream_a = served.pop()
            upstream_b = next(a for a in by_address if a != upstream_a)
            a, b = by_address[upstream_a], by_address[upstream_b]
            assert worker_processes(a.proc.pid), "the training replica has no worker"

            link = page.get_by_test_id("stSidebarNav").get_by_role("link", name="Compare runs")
            compare_url = nginx.url + urlsplit(link.get_attribute("href")).path

            # -- the same browser, pinned to the other replica ---------------------------
            route_b = route_to(nginx, upstream_b)
            context.clear_cookies(name=ROUTE)
            context.add_cookies([{"name": ROUTE, "value": route_b, "url": nginx.url}])
            cookies_b = {c["name"]: c["value"] for c in context.cookies()}
            assert cookies_b[ROUTE] == route_b and cookies_b[WORKSPACE] == cookies[WORKSPACE]

            # B has not run a page yet: the Compare page (its address as the sidebar
            # links it) is the first session this replica ever serves.
            page.goto(compare_url, timeout=60_000)
            idle(page)
            # The old session's WebSocket (to A) closed with the navigation.
            wait_websocket_logged(nginx, route_a)
            assert upstreams_of(nginx, route_b) == {upstream_b}
            expect(page.get_by_role("heading", name="Compare runs")).to_be_visible()
            # Not "Page not found ... Running the app's main page" (Streamlit's dialog
            # when a fresh server does not know the address yet).
            expect(page.get_by_role("dialog")).to_have_count(0)
            plot = page.locator(".st-key-compare_chart .js-plotly-plot")
            expect(plot).to_be_visible(timeout=20_000)
            names = plot.evaluate("e => e.data.map(t => t.name)")
            assert "Run 1 (val)" in names, names
            no_traceback(page)
            page.mouse.move(1400, 20)
            page.screenshot(path=str(artifacts / "replica_b_compare.png"), full_page=True)

            page.goto(f"{nginx.url}/?run={run_id}", timeout=60_000)
            idle(page)
            expect(alert(page, "Trained 50 epochs").first).to_be_visible(timeout=20_000)
            expect(page.locator(".st-key-loss_chart")).to_be_visible()
            expect(alert(page, "someone else's run")).to_have_count(0)
            no_traceback(page)
            cookies_b = {c["name"]: c["value"] for c in context.cookies()}
            assert cookies_b[ROUTE] == route_b and cookies_b[WORKSPACE] == cookies[WORKSPACE]
        finally:
            context.close()  # closes the WebSockets, so nginx logs them

        # -- the access log: each route stayed on its replica, WebSockets included -----
        wait_websocket_logged(nginx, route_b)
        assert upstreams_of(nginx, route_a) == {upstream_a}
        assert upstreams_of(nginx, route_b) == {upstream_b}
        errors = nginx.error_log.read_text()
        assert "[emerg]" not in errors and "[alert]" not in errors, errors

    # -- the shared store ----------------------------------------------------------------
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            servers = conn.execute(sa.text("SELECT id, pid FROM servers")).all()
            run = conn.execute(sa.text(
                "SELECT status, epochs_done, server_id FROM runs WHERE id = :id"),
                {"id": run_id}).one()
    finally:
        engine.dispose()
    pids = {row.pid for row in servers}
    assert {a.proc.pid, b.proc.pid} <= pids, f"servers {servers}, replicas {a.proc.pid} " \
        f"(trained) and {b.proc.pid}"
    assert run.status == "done" and run.epochs_done == 50, run
    assert run.server_id in {row.id for row in servers if row.pid == a.proc.pid}, \
        "the run is not recorded as trained by the replica that trained it"

    # -- nothing went to SQLite, and neither server logged a traceback -----------------
    for r in replicas:
        assert not list(r.data_dir.rglob("*.sqlite3*")), list(r.data_dir.rglob("*"))
        text = r.new_log()
        assert "Traceback" not in text and " ERROR " not in text, f"{r.log}:\n{text[-3000:]}"



def routed_page(browser: Browser, nginx: Nginx, upstream: str) -> Page:
    """A new browser pinned (by its route cookie) to the replica ``upstream``."""
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    context.add_cookies([{"name": ROUTE, "value": route_to(nginx, upstream),
                          "url": nginx.url}])
    return context.new_page()


def test_a_class_spans_replicas(replicas: list[Replica], tmp_path: Path, browser: Browser,
                                artifacts: Path) -> None:
    """The teacher's board on replica A shows a student who trains on replica B."""
    from tests.test_classroom_browser import join, start_class

    nginx_dir = tmp_path / "nginx"
    nginx_dir.mkdir()
    a, b = replicas
    with running_nginx(nginx_dir, [a.address, b.address]) as nginx:
        teacher = routed_page(browser, nginx, a.address)
        student = routed_page(browser, nginx, b.address)
        try:
            join_link, teacher_link = start_class(teacher, nginx.url)
            join_url = nginx.url + urlsplit(join_link).path + "?" + urlsplit(join_link).query
            join(student, join_url, "Ada")
            student.goto(f"{nginx.url}/?dataset=Moons&epochs=50")
            idle(student)
            student.get_by_role("button", name="Train", exact=True).click()
            expect(alert(student, "Trained 50 epochs").first).to_be_visible(timeout=60_000)
            board_url = nginx.url + urlsplit(teacher_link).path + "?" + \
                urlsplit(teacher_link).query
            teacher.goto(board_url)
            idle(teacher)
            board = teacher.locator(".st-key-class_board")
            expect(board).to_contain_text("Ada", timeout=10_000)
            expect(teacher.locator(".st-key-leaderboard tbody tr")).to_have_count(
                1, timeout=10_000)
            no_traceback(teacher)
            no_traceback(student)
            teacher.screenshot(path=str(artifacts / "replica_class_board.png"),
                               full_page=True)
            # each browser stayed on its replica
            for page, replica in ((teacher, a), (student, b)):
                route = {c["name"]: c["value"] for c in page.context.cookies()}[ROUTE]
                assert upstreams_of(nginx, route) <= {replica.address}
        finally:
            teacher.context.close()
            student.context.close()
