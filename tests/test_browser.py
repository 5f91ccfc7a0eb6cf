"""The app in headless Chromium: a new user's first training run, end to end.

Screenshots of every step go to test-artifacts/ (look at them).
"""

from __future__ import annotations

import json
import re
import time
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from tests.servers import (
    IDLE,
    LIVE_CHARTS_PROBE,
    LOSS_POINTS_JS,
    LOSS_POINTS_PROBE,
    start_app,
    stop,
    worker_processes,
)

pytestmark = pytest.mark.browser



def idle(page: Page) -> None:
    expect(page.locator(IDLE)).to_be_attached(timeout=60_000)


def no_traceback(page: Page) -> None:
    expect(page.get_by_test_id("stException")).to_have_count(0)


def slider(page: Page, key: str, *keys: str) -> None:
    handle = page.locator(f".st-key-{key}").get_by_role("slider")
    handle.focus()
    for k in keys:
        handle.press(k)
    idle(page)


def choose(page: Page, key: str, option: str) -> None:
    page.locator(f".st-key-{key}").click()
    page.get_by_role("option", name=option, exact=True).click()
    idle(page)


def snap(page: Page, path) -> None:
    """Screenshot with the pointer parked off any tooltip, once the page is settled."""
    page.mouse.move(1400, 5)
    idle(page)
    page.wait_for_timeout(800)  # let charts and tables finish drawing
    page.screenshot(path=path, full_page=True)


def shown(page: Page, key: str) -> str:
    return page.locator(f".st-key-{key}").get_by_test_id("stSliderThumbValue").inner_text()


def graph(page: Page, key: str):
    """The Plotly graph of the chart ``key`` (the element carrying Plotly's data)."""
    plot = page.locator(f".st-key-{key} .js-plotly-plot")
    expect(plot).to_be_visible(timeout=20_000)
    return plot


def charts_drawn(page: Page) -> None:
    """Wait until the page's first live chart is drawn (plotly.js has loaded)."""
    page.wait_for_function("() => { const g = document.querySelector('.js-plotly-plot'); "
                           "return g && g.data && g.data.length > 0; }", timeout=60_000)


def overlay_names(page: Page) -> list[str]:
    """Trace names of the Compare page's overlay chart (a Plotly figure)."""
    plot = page.locator(".st-key-compare_chart .js-plotly-plot")
    expect(plot).to_be_visible(timeout=20_000)  # the Plotly library loads on first use
    return plot.evaluate("e => e.data.map(t => t.name)")


def test_first_training_run(page: Page, app_url: str, artifacts):
    page.goto(app_url)
    idle(page)
    expect(page.get_by_role("heading", name="Neural Network Playground")).to_be_visible()
    snap(page, artifacts / "01_opened.png")

    # a new user changes the network and the training settings
    slider(page, "n_layers", "ArrowRight")  # 2 -> 3 hidden layers
    assert shown(page, "n_layers") == "3"
    slider(page, "units_3", "End")  # widest third layer
    choose(page, "activation", "tanh")
    slider(page, "learning_rate", "ArrowRight")  # 0.01 -> 0.03
    assert shown(page, "learning_rate") == "0.03"
    slider(page, "batch_size", "ArrowLeft")  # 32 -> 16
    assert shown(page, "batch_size") == "16"
    slider(page, "epochs", "ArrowLeft", "ArrowLeft")  # 500 -> 300
    assert shown(page, "epochs") == "300"
    # the address bar now holds the set-up (sharable link)
    for part in ("n_layers=3", "activation=tanh", "learning_rate=0.03", "batch_size=16",
                 "epochs=300"):
        assert part in page.url, page.url
    expect(page.get_by_text("Network 64 → 64 → 32 → 256 → 10")).to_be_visible()
    snap(page, artifacts / "02_configured.png")

    # train and watch the loss curve grow while the run is live
    page.evaluate(LOSS_POINTS_PROBE)
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.get_by_text("Trained 300 epochs")).to_be_visible(timeout=120_000)
    points = page.evaluate("window.__points")
    counts = [n for _, n in points]
    assert len(set(counts)) >= 3, counts  # at least three different point counts
    assert counts == sorted(counts), counts  # the curve only grows
    assert counts[-1] == 300
    no_traceback(page)
    snap(page, artifacts / "03_trained.png")

    # results: a 10 x 10 confusion matrix, 3 bars per class, a 10-row table
    heat = graph(page, "confusion_matrix").evaluate(
        "e => [e.data[0].type, e.data[0].z.length, e.data[0].z[0].length]")
    assert heat == ["heatmap", 10, 10]
    expect(page.locator(".st-key-confusion_matrix .heatmaplayer image")).to_have_count(1)
    expect(page.locator(".st-key-class_metrics .barlayer .point")).to_have_count(30)
    expect(page.get_by_test_id("stDataFrame")).to_have_count(1)  # the per-class table
    # the table's numbers, as a user downloads them: one row per class
    with page.expect_download() as download:
        page.get_by_role("button", name="Metrics (CSV)").click()
    lines = download.value.path().read_text().splitlines()
    assert lines[0] == "class,precision,recall,f1,support"
    assert [line.split(",")[0] for line in lines[1:11]] == [str(d) for d in range(10)]
    assert sum(int(line.split(",")[4]) for line in lines[1:11]) == 360
    gallery = graph(page, "misclassified")
    assert gallery.evaluate("e => e.layout.images.length") >= 1
    expect(gallery.locator(".layer-above image").first).to_be_visible()
    for label in ("Model (.npz)", "Metrics (CSV)", "Training history (CSV)", "Python script"):
        expect(page.get_by_role("button", name=label)).to_be_visible()

    # the Compare page lists the run
    page.get_by_role("link", name="Compare runs").click()
    idle(page)
    expect(page.get_by_role("heading", name="Compare runs")).to_be_visible()
    expect(page.get_by_test_id("stDataFrame")).to_have_count(1)
    assert overlay_names(page) == ["Run 1 (val)"]
    no_traceback(page)
    snap(page, artifacts / "04_compare.png")

    # a bad CSV: a specific error, no traceback, and the earlier run is kept
    page.get_by_role("link", name="Playground").click()
    idle(page)
    choose(page, "dataset", "Upload CSV")
    page.locator(".st-key-csv_file input[type=file]").set_input_files(
        files=[{"name": "broken.csv", "mimeType": "text/csv",
                "buffer": b"height,width,kind\n" + b"1.5,2,a\n1.7,wide,b\n" * 6}])
    idle(page)
    message = "Column 'width' is not numeric (row 3 has 'wide')"
    # said at once, under the upload ...
    expect(page.get_by_test_id("stSidebarUserContent").get_by_test_id("stAlert")) \
        .to_contain_text(message)
    # ... and again when the user presses Train anyway
    page.get_by_role("button", name="Train", exact=True).click()
    idle(page)
    expect(page.get_by_test_id("stMain").get_by_test_id("stAlert").first) \
        .to_contain_text(message)
    no_traceback(page)
    snap(page, artifacts / "05_bad_csv.png")
    page.get_by_role("link", name="Compare runs").click()
    idle(page)
    assert overlay_names(page) == ["Run 1 (val)"]
    no_traceback(page)


def test_two_dimensional_run_draws_the_decision_boundary(page: Page, app_url: str, artifacts):
    page.goto(f"{app_url}/?dataset=Moons&epochs=150&optimizer=adam&learning_rate=0.03")
    idle(page)
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.get_by_text("Trained 150 epochs")).to_be_visible(timeout=60_000)
    boundary = graph(page, "decision_boundary")
    expect(boundary.locator(".layer-subplot .imagelayer image")).to_have_count(1)  # regions
    # 500 samples: 100 test and 360 train points drawn (40 validation samples are not)
    expect(boundary.locator(".scatterlayer .point")).to_have_count(460)
    assert boundary.evaluate("e => e.data.reduce((n, t) => n + t.x.length, 0)") == 460
    heat = graph(page, "confusion_matrix").evaluate("e => e.data[0].z.map(r => r.length)")
    assert heat == [2, 2]
    no_traceback(page)
    snap(page, artifacts / "06_moons.png")


def test_diverging_run_shows_advice(page: Page, app_url: str, artifacts):
    page.goto(f"{app_url}/?standardize=false&learning_rate=1&activation=identity&epochs=50")
    idle(page)
    page.get_by_role("button", name="Train", exact=True).click()
    alert = page.get_by_test_id("stAlert").filter(has_text="diverged")
    expect(alert).to_be_visible(timeout=30_000)
    expect(alert).to_contain_text("Lower the learning rate")
    no_traceback(page)
    snap(page, artifacts / "07_diverged.png")


def test_pause_resume_stop(page: Page, app_url: str):
    # a 256-256 network for 2000 epochs trains for about a minute: still running
    # when Pause lands, however slow the machine is
    page.goto(f"{app_url}/?epochs=2000&units_1=256&units_2=256")
    idle(page)
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.get_by_text("Training...")).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Pause", exact=True).click()
    expect(page.get_by_text("Paused after epoch")).to_be_visible(timeout=30_000)
    last = "e => { const t = e.data[0]; return [t.x.length, t.x[t.x.length - 1], " \
           "t.y[t.y.length - 1]]; }"
    before = graph(page, "loss_chart").evaluate(last)
    assert page.evaluate(LOSS_POINTS_JS) == before[0] > 0
    time.sleep(1.0)
    assert graph(page, "loss_chart").evaluate(last) == before  # nothing moves while paused
    page.get_by_role("button", name="Resume", exact=True).click()
    expect(page.get_by_text("Paused after epoch")).to_have_count(0, timeout=30_000)
    expect(page.get_by_text("Training...")).to_be_visible(timeout=30_000)  # back on a worker
    page.get_by_role("button", name="Stop", exact=True).click()
    expect(page.get_by_text("Stopped after epoch")).to_be_visible(timeout=30_000)
    no_traceback(page)
    info = json.dumps(page.url)
    assert "epochs=2000" in info


def _busy_workers(server_pid: int, window: float = 0.5) -> int:
    """Worker processes of the server that used CPU during the last ``window`` s.

    A training worker uses a whole core; an idle one blocks on its pipe and
    uses none. The threshold (10 % of a core) leaves room for a worker that
    Chromium and the server starve on this 2-core machine.
    """
    workers = worker_processes(server_pid)
    before = {w.pid: sum(w.cpu_times()[:2]) for w in workers}
    time.sleep(window)
    return sum(sum(w.cpu_times()[:2]) - before[w.pid] > 0.1 * window for w in workers)


def test_closing_the_tab_keeps_the_run_until_nobody_watches(browser, tmp_path):
    """A closed tab does not kill work (it may be a reload or a Wi-Fi hiccup); a run
    nobody has watched for NNPG_ABANDON_SECONDS is stopped and stored as such."""
    env = {"NNPG_DATA_DIR": str(tmp_path / "store"), "NNPG_ABANDON_SECONDS": "6"}
    proc, url = start_app(env=env)
    try:
        context = browser.new_context()
        page = context.new_page()
        # 256-256 units for 2000 epochs trains for about a minute, so only the
        # abandonment can make the worker idle within the seconds checked below.
        page.goto(f"{url}/?epochs=2000&units_1=256&units_2=256")
        idle(page)
        expect(page.get_by_text("Network 64 → 256 → 256 → 10")).to_be_visible()
        page.get_by_role("button", name="Train", exact=True).click()
        expect(page.get_by_text("Training...")).to_be_visible(timeout=30_000)
        expect(page).to_have_url(re.compile(r"[?&]run="))
        run = parse_qs(urlsplit(page.url).query)["run"][0]
        deadline = time.monotonic() + 5
        while _busy_workers(proc.pid) != 1 and time.monotonic() < deadline:
            pass
        assert _busy_workers(proc.pid) == 1  # the run is training
        t0 = time.monotonic()
        context.close()  # the student closes the tab
        time.sleep(3)
        assert _busy_workers(proc.pid) == 1  # still training: nobody has given up yet
        while _busy_workers(proc.pid) and time.monotonic() - t0 < 20:
            pass
        elapsed = time.monotonic() - t0
        assert _busy_workers(proc.pid, window=1.0) == 0
        print(f"run stopped {elapsed:.2f} s after the tab closed (abandon after 6 s)")
        assert 6.0 <= elapsed < 10.0, elapsed
        # the run is stored, with the reason, and opens again by its link
        again = browser.new_context().new_page()
        again.goto(f"{url}/?run={run}")
        expect(again.get_by_text("nobody was watching")).to_be_visible(timeout=30_000)
        no_traceback(again)
        again.context.close()
    finally:
        stop(proc)


# ---- live charts: Plotly graphs updated in place ---------------------------------------------
LIVE = ("loss_chart", "accuracy_chart", "confusion_matrix", "class_metrics")


def _csv(n: int = 240, seed: int = 0) -> bytes:
    """Three classes in three numeric features (the label column last)."""
    gen = np.random.default_rng(seed)
    y = gen.integers(0, 3, n)
    X = gen.normal(size=(n, 3)) + np.eye(3)[y] * 2.5
    rows = [f"{a:.3f},{b:.3f},{c:.3f},{'abc'[k]}" for (a, b, c), k in zip(X, y)]
    return ("f1,f2,f3,kind\n" + "\n".join(rows)).encode()


@pytest.mark.parametrize("dataset, query, classes", [
    ("Digits", "epochs=1000", 10),
    ("Iris", "dataset=Iris&epochs=2000&batch_size=1", 3),
    ("CSV", "epochs=2000&batch_size=2", 3),
])
def test_live_charts_update_in_place(page: Page, app_url: str, artifacts, dataset, query,
                                     classes):
    """While a run trains, each live chart is one Plotly graph whose data grow (read
    from the graph in the page), the confusion matrix is classes x classes, and no
    chart ever shows an empty frame once drawn."""
    page.goto(f"{app_url}/?{query}")
    idle(page)
    charts_drawn(page)  # the page has settled (plotly.js loaded)
    if dataset == "CSV":
        choose(page, "dataset", "Upload CSV")
        page.locator(".st-key-csv_file input[type=file]").set_input_files(
            files=[{"name": "three.csv", "mimeType": "text/csv", "buffer": _csv()}])
        idle(page)
        expect(page.get_by_text("three.csv").first).to_be_visible()
    charts_drawn(page)
    page.evaluate(LIVE_CHARTS_PROBE, list(LIVE))
    epochs = int(re.search(r"epochs=(\d+)", query).group(1))
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.get_by_text(f"Trained {epochs} epochs")).to_be_visible(timeout=180_000)
    page.wait_for_timeout(1500)  # the finished run's last redraw
    live = page.evaluate("window.__live")
    for key in ("loss_chart", "accuracy_chart"):
        counts = [n for _, n, _ in live["charts"][key]["counts"]]
        assert len(set(counts)) >= 3, (key, counts)  # the graph's data grew while training
    assert live["charts"]["confusion_matrix"]["shape"] == [classes, classes]
    assert live["charts"]["class_metrics"]["traces"] == 3
    for key in ("loss_chart", "accuracy_chart", "confusion_matrix"):
        chart = live["charts"][key]
        assert chart["drawn"] is not None, key
        assert chart["blank"] == 0, (key, chart["blank_at"])
    heat = graph(page, "confusion_matrix").evaluate("e => [e.data[0].x, e.data[0].y]")
    assert heat[0] == heat[1] and len(heat[0]) == classes
    if dataset == "CSV":
        assert heat[0] == ["a", "b", "c"]
    no_traceback(page)
    snap(page, artifacts / f"08_live_{dataset.lower()}.png")


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_page_in_light_and_dark_theme(browser, artifacts, theme):
    """Screenshots of every page in both themes (look at them), and the README's."""
    proc, url = start_app(extra_args=["--theme.base", theme])
    try:
        context = browser.new_context(viewport={"width": 1440, "height": 2300})
        page = context.new_page()
        page.goto(f"{url}/?dataset=Spiral&n_samples=600&n_layers=3&units_1=32&units_2=32"
                  "&units_3=16&optimizer=adam&epochs=200")
        idle(page)
        charts_drawn(page)
        snap(page, artifacts / f"theme_{theme}_1_intro.png")
        page.get_by_role("button", name="Train", exact=True).click()
        expect(page.get_by_text("Trained 200 epochs")).to_be_visible(timeout=60_000)
        graph(page, "decision_boundary")
        no_traceback(page)
        snap(page, artifacts / f"theme_{theme}_2_spiral.png")
        if theme == "light":  # docs/screenshot.png: down to the export buttons
            page.mouse.move(1400, 5)
            last = page.get_by_role("button", name="Run bundle (.zip)").bounding_box()
            page.screenshot(path=artifacts / "readme_screenshot.png",
                            clip={"x": 0, "y": 0, "width": 1440,
                                  "height": last["y"] + last["height"] + 32})
        page.goto(f"{url}/?epochs=100")
        idle(page)
        page.get_by_role("button", name="Train", exact=True).click()
        expect(page.get_by_text("Trained 100 epochs")).to_be_visible(timeout=60_000)
        graph(page, "misclassified")
        toggle = page.get_by_role("switch", name="Normalise rows")
        toggle.focus()
        toggle.press("Space")
        idle(page)
        expect(page.locator(".st-key-confusion_matrix .js-plotly-plot")).to_contain_text("%")
        snap(page, artifacts / f"theme_{theme}_3_digits.png")
        for link, name in (("Compare runs", "compare"), ("Classroom", "classroom"),
                           ("Data", "data"), ("How it works", "how_it_works")):
            page.get_by_role("link", name=link).click()
            idle(page)
            if name in ("compare", "data"):
                expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=20_000)
            no_traceback(page)
            snap(page, artifacts / f"theme_{theme}_4_{name}.png")
        context.close()
    finally:
        stop(proc)
