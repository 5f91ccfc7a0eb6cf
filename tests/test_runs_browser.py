"""Runs that last, in headless Chromium: reloads, network drops, a killed server, result links.

Each test drives the real app (a server process with its own SQLite run store)
the way a user would and checks what the page shows. Screenshots go to
test-artifacts/.
"""

from __future__ import annotations

import os
import re
import signal
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from playground.refresh import EVAL_POLL_SECONDS
from tests.servers import IDLE, LOSS_POINTS_JS, start_app, stop, wait_healthy

pytestmark = pytest.mark.browser


def idle(page: Page) -> None:
    expect(page.locator(IDLE)).to_be_attached(timeout=60_000)


def no_traceback(page: Page) -> None:
    expect(page.get_by_test_id("stException")).to_have_count(0)


def run_id(page: Page) -> str | None:
    """The ``run=`` id in the address bar."""
    return parse_qs(urlsplit(page.url).query).get("run", [None])[0]


def loss_points(page: Page) -> int:
    return page.evaluate(LOSS_POINTS_JS)


def _wait_above(page: Page, read, above: int, timeout: float, what: str) -> int:
    """Poll ``read(page)`` until it exceeds ``above``; return the value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = read(page)
        if n > above:
            return n
        page.wait_for_timeout(100)
    raise AssertionError(f"{what} stayed at {read(page)}")


def wait_points(page: Page, above: int, timeout: float = 30.0) -> int:
    """Wait until the loss curve has more than ``above`` points; return the count."""
    return _wait_above(page, loss_points, above, timeout, "the loss curve's point count")


def epoch_shown(page: Page) -> int:
    """The epoch the progress bar shows ("Epoch 123/2000 · ..."), 0 before it appears."""
    bar = page.get_by_test_id("stProgress")
    if not bar.count():
        return 0
    match = re.search(r"Epoch (\d+)/", bar.first.inner_text())
    return int(match.group(1)) if match else 0


def wait_epoch(page: Page, above: int, timeout: float = 30.0) -> int:
    """Wait until the page shows an epoch after ``above``; return it (the run is live)."""
    return _wait_above(page, epoch_shown, above, timeout, "the page's epoch")


#: A Digits run that trains for about a minute (so it is live while the test looks).
LONG_RUN = {"dataset": "Digits", "epochs": "2000", "units_1": "256", "units_2": "256"}


def train(page: Page, url: str, **query: str) -> str:
    """Open the Playground with ``query`` as the set-up, press Train; return the run id."""
    q = "&".join(f"{k}={v}" for k, v in query.items())
    page.goto(f"{url}/?{q}")
    idle(page)
    page.get_by_role("button", name="Train").click()
    expect(page).to_have_url(re.compile(r"[?&]run="), timeout=20_000)
    return run_id(page)


def wait_status(page: Page, text: str, timeout: float = 60_000) -> None:
    expect(page.get_by_test_id("stAlert").filter(has_text=text).first).to_be_visible(
        timeout=timeout)


@pytest.fixture
def server(tmp_path):
    """A fresh app server with its own run store; yields (process, url, env)."""
    env = {"NNPG_DATA_DIR": str(tmp_path / "store"), "NNPG_CHECKPOINT_SECONDS": "1"}
    proc, url = start_app(env=env)
    yield proc, url, env
    stop(proc)


def test_reload_keeps_finished_runs_and_the_live_run(page: Page, server, artifacts):
    _, url, _ = server
    first = train(page, url, dataset="Moons", epochs="50")
    wait_status(page, "Trained 50 epochs")
    live = train(page, url, **LONG_RUN)
    before = wait_epoch(page, 5)
    page.wait_for_timeout(1000)
    t0 = time.monotonic()
    page.reload()
    # the same run, live: its curve is back and keeps growing
    wait_points(page, 2)
    back = time.monotonic() - t0
    after = wait_epoch(page, before)
    assert run_id(page) == live
    assert wait_epoch(page, after) > after
    print(f"reload -> live run back on screen in {back:.2f} s")
    assert back <= 5.0
    expect(page.get_by_test_id("stAlert").filter(has_text="Training")).to_be_visible()
    # the evaluation panel, drawn after the curves on a reload, follows within a refresh
    cm = page.locator(".st-key-confusion_matrix .js-plotly-plot")
    expect(cm).to_be_visible(timeout=EVAL_POLL_SECONDS * 1000 + 2000)
    assert cm.evaluate("e => e.data[0].z.length") == 10  # Digits: ten classes
    no_traceback(page)
    page.screenshot(path=artifacts / "runs_reload_live.png")
    # both runs are stored and listed
    page.get_by_role("link", name="Compare runs").click()
    idle(page)
    plot = page.locator(".st-key-compare_chart .js-plotly-plot")
    expect(plot).to_be_visible(timeout=20_000)
    assert plot.evaluate("e => e.data.map(t => t.name)") == ["Run 2 (val)", "Run 1 (val)"]
    no_traceback(page)
    expect(page.get_by_text("Something went wrong")).to_have_count(0)
    page.screenshot(path=artifacts / "runs_compare_after_reload.png")
    # the first run is still there by its link, finished
    page.goto(f"{url}/?run={first}")
    wait_status(page, "Trained 50 epochs")
    no_traceback(page)


def test_three_seconds_offline_the_same_run_continues(page: Page, context: BrowserContext,
                                                      server):
    _, url, _ = server
    live = train(page, url, **LONG_RUN)
    before = wait_epoch(page, 5)
    context.set_offline(True)
    page.wait_for_timeout(3000)
    context.set_offline(False)
    after = wait_epoch(page, before, timeout=30)
    assert wait_epoch(page, after, timeout=30) > after
    assert run_id(page) == live
    expect(page.get_by_test_id("stAlert").filter(has_text="no longer available")).to_have_count(0)
    no_traceback(page)


def test_killed_server_leaves_an_interrupted_run_that_resumes(page: Page, tmp_path,
                                                             artifacts):
    env = {"NNPG_DATA_DIR": str(tmp_path / "store"), "NNPG_CHECKPOINT_SECONDS": "1"}
    proc, url = start_app(env=env)
    try:
        live = train(page, url, dataset="Digits", epochs="1000", n_layers="2",
                     units_1="256", units_2="256")
        wait_points(page, 20)
        page.wait_for_timeout(2500)  # at least one checkpoint
        os.killpg(proc.pid, signal.SIGKILL)  # the server and its workers, no goodbye
        proc.wait(10)
    finally:
        stop(proc)
    port = int(urlsplit(url).port)
    proc, url = start_app(port=port, env=env)
    try:
        wait_healthy(url)
        page.goto(f"{url}/?run={live}")
        wait_status(page, "Interrupted after epoch", timeout=40_000)
        wait_points(page, 10)  # the curve up to the last flush
        interrupted_at = wait_epoch(page, 10)
        assert interrupted_at < 1000
        page.screenshot(path=artifacts / "runs_interrupted.png")
        page.get_by_role("button", name="Resume").click()
        wait_status(page, "Trained 1000 epochs", timeout=120_000)
        idle(page)
        assert epoch_shown(page) == 1000
        assert run_id(page) == live
        no_traceback(page)
        page.screenshot(path=artifacts / "runs_resumed.png")
    finally:
        stop(proc)


def test_result_link_shows_the_run_read_only_and_nothing_else(page: Page, browser,
                                                             server, artifacts):
    _, url, _ = server
    train(page, url, dataset="Moons", epochs="30")
    wait_status(page, "Trained 30 epochs")
    shared = train(page, url, dataset="Iris", epochs="50")
    wait_status(page, "Trained 50 epochs")
    other = browser.new_context(viewport={"width": 1500, "height": 1300})
    try:
        guest = other.new_page()
        guest.goto(f"{url}/?run={shared}")
        idle(guest)
        expect(guest.get_by_test_id("stAlert").filter(has_text="someone else's run")
               ).to_be_visible(timeout=20_000)
        expect(guest.locator(".st-key-loss_chart")).to_be_visible()
        expect(guest.locator(".st-key-confusion_matrix")).to_be_visible()
        expect(guest.get_by_role("button", name="Model (.npz)")).to_be_visible()
        expect(guest.get_by_role("button", name="Stop", exact=True)).to_be_disabled()
        no_traceback(guest)
        guest.screenshot(path=artifacts / "runs_result_link.png", full_page=True)
        # Train again copies the settings into the guest's own sidebar
        guest.get_by_role("button", name="Train again").click()
        idle(guest)
        expect(guest).to_have_url(re.compile(r"dataset=Iris"))
        assert run_id(guest) is None  # the shared run is no longer on screen
        # the owner's other runs are not visible to the guest
        guest.goto(f"{url}/compare")
        idle(guest)
        expect(guest.get_by_text("No runs yet")).to_be_visible()
    finally:
        other.close()
