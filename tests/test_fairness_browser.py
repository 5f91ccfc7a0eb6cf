"""One user cannot stall or starve the others (headless Chromium, real servers).

* A CSV that took csv.Sniffer 8.8 s is uploaded while four pages train: the
  other pages keep refreshing and the health endpoint keeps answering fast.
* With one worker, a paused run frees it: another page's run starts at once.
* A user at the per-user maximum is refused clearly; the run on screen goes on.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import threading
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.servers import start_app, stop
from tests.test_runs_browser import LONG_RUN, epoch_shown, idle, no_traceback, wait_epoch

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]

#: The file from the issue: quadratic for csv.Sniffer (8.8 s per sniff).
SNIFF_BOMB = b"a,b\n" + b'\n"' * 10000 + b"\n1,x\n" * 5


def open_page(context, url: str, **query: str) -> Page:
    page = context.new_page()
    q = "&".join(f"{k}={v}" for k, v in query.items())
    page.goto(f"{url}/?{q}")
    idle(page)
    return page


class HealthProbe:
    """Polls /_stcore/health every 50 ms from its own process (a thread of this one
    would share the test's GIL with Playwright and measure itself); latencies in s."""

    def __init__(self, url: str) -> None:
        sys.path.insert(0, str(ROOT / "bench"))
        from jobs_bench import HealthProbe as Probe

        self._probe = Probe(url, 0.05)
        self.latencies: list[float] = []

    def __enter__(self) -> HealthProbe:
        time.sleep(0.5)  # the probe process is up
        return self

    def __exit__(self, *exc: object) -> None:
        samples = self._probe.stop()
        assert not [s for s in samples if s[2]], "health requests failed"
        self.latencies = [s[1] for s in samples if s[1] is not None]

    def p95(self) -> float:
        return statistics.quantiles(self.latencies, n=20)[-1]


def refreshes(page: Page, seconds: float) -> int:
    """How often the page's progress text changed during ``seconds``."""
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        e = epoch_shown(page)
        if not seen or seen[-1] != e:
            seen.append(e)
        page.wait_for_timeout(50)
    return len(seen) - 1


class TrainingSessions:
    """Students' pages as Streamlit sessions speaking the app's WebSocket protocol
    (bench/st_client.py): the server does exactly what four browser tabs ask of it
    (page runs, the 0.25 s progress fragment), without four Chromium renderers
    competing with it for this 2-core machine. Run on their own event loop."""

    def __init__(self, url: str, n: int) -> None:
        sys.path.insert(0, str(ROOT / "bench"))
        from st_client import BrowserSession

        query = "&".join(f"{k}={v}" for k, v in LONG_RUN.items())
        self.sessions = [BrowserSession(url, query, f"student-{i}") for i in range(n)]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 60.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start_training(self) -> None:
        async def go() -> None:
            for s in self.sessions:
                await s.open()
            await asyncio.gather(*(s.load() for s in self.sessions))
            await asyncio.gather(*(s.click("train") for s in self.sessions))
        self.run(go())

    def fragment_runs(self) -> int:
        return self.sessions[0].stats.fragment_runs_finished

    def close(self) -> None:
        async def bye() -> None:
            for s in self.sessions:
                await s.close()
        self.run(bye())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def test_a_slow_csv_upload_does_not_stall_the_other_pages(browser, tmp_path, artifacts):
    env = {"NNPG_DATA_DIR": str(tmp_path / "store"), "NNPG_MAX_JOBS": "2",
           "NNPG_MAX_ACTIVE_PER_ADDRESS": "10"}
    proc, url = start_app(env=env)
    students = TrainingSessions(url, 4)  # four students (own workspaces), two train, two wait
    ctx = browser.new_context(viewport={"width": 1300, "height": 900})
    try:
        students.start_training()
        time.sleep(3.0)
        n0 = students.fragment_runs()
        time.sleep(3.0)
        before = students.fragment_runs() - n0
        uploader = open_page(ctx, url, dataset="Upload CSV")
        with HealthProbe(url) as health:
            t0 = time.monotonic()
            n0 = students.fragment_runs()
            uploader.locator(".st-key-csv_file input[type=file]").set_input_files(
                files=[{"name": "sniff.csv", "mimeType": "text/csv", "buffer": SNIFF_BOMB}])
            expect(uploader.get_by_test_id("stAlert").first).to_be_visible(timeout=20_000)
            answered = time.monotonic() - t0
            time.sleep(max(0.0, 3.0 - answered))
            during = students.fragment_runs() - n0
        no_traceback(uploader)
        uploader.screenshot(path=artifacts / "fairness_sniff_upload.png")
        p95, worst = health.p95(), max(health.latencies)
        print(f"upload answered in {answered:.2f} s; a training page's refreshes per 3 s: "
              f"{before} before, {during} during the upload; health p95 {p95 * 1000:.0f} ms, "
              f"max {worst * 1000:.0f} ms (n={len(health.latencies)})")
        assert p95 < 0.25 and worst < 1.0
        assert during >= 0.75 * before  # the other pages keep their pace
        assert not [x for s in students.sessions for x in s.shown if x.kind == "exception"]
    finally:
        students.close()
        ctx.close()
        stop(proc)


def test_a_paused_run_frees_the_only_worker(browser, tmp_path):
    env = {"NNPG_DATA_DIR": str(tmp_path / "store"), "NNPG_MAX_JOBS": "1"}
    proc, url = start_app(env=env)
    try:
        a = open_page(browser.new_context(), url, **LONG_RUN)
        a.get_by_role("button", name="Train", exact=True).click()
        wait_epoch(a, 2)
        a.get_by_role("button", name="Pause").click()
        expect(a.get_by_text("Paused after epoch")).to_be_visible(timeout=15_000)
        b = open_page(browser.new_context(), url, dataset="Moons", epochs="500")
        t0 = time.monotonic()
        b.get_by_role("button", name="Train", exact=True).click()
        wait_epoch(b, 0, timeout=5.0)
        started = time.monotonic() - t0
        print(f"page B's run started {started:.2f} s after Train, page A paused")
        assert started < 5.0
        a.get_by_role("button", name="Resume").click()
        expect(b.get_by_text("Trained 500 epochs")).to_be_visible(timeout=60_000)
        wait_epoch(a, epoch_shown(a), timeout=30)  # A trains again once B is done
        no_traceback(a)
        no_traceback(b)
    finally:
        stop(proc)


def test_a_user_at_the_maximum_is_refused_and_keeps_the_run(browser, tmp_path):
    env = {"NNPG_DATA_DIR": str(tmp_path / "store"), "NNPG_MAX_ACTIVE_PER_USER": "1"}
    proc, url = start_app(env=env)
    try:
        ctx = browser.new_context()  # one browser: one workspace, two tabs
        first = open_page(ctx, url, **LONG_RUN)
        first.get_by_role("button", name="Train", exact=True).click()
        wait_epoch(first, 2)
        second = open_page(ctx, url, dataset="Moons", epochs="50")
        second.get_by_role("button", name="Train", exact=True).click()
        idle(second)
        expect(second.get_by_test_id("stAlert").filter(has_text="You already have 1 run")
               ).to_be_visible(timeout=10_000)
        now = epoch_shown(first)
        wait_epoch(first, now, timeout=20)  # the run on screen keeps going
        expect(first.get_by_text("Training...")).to_be_visible()
        no_traceback(second)
    finally:
        stop(proc)
