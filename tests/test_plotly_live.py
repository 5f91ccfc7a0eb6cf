"""playground.plotly_live: the messages that keep a mounted Plotly graph up to date.

The server (FigureStream) sends differences; the browser (applyMessage in
playground/plotly_live.js) applies them. The two halves are tested together in
Chromium: whatever messages the browser receives or misses, it either ends up
with exactly the server's figure or asks for a whole one.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest

from nn_core.training import EpochRecord
from playground import live_charts
from playground.plotly_live import (
    LIBRARY_MTIME,
    LIBRARY_SOURCE,
    LIBRARY_VERSION,
    FigureStream,
    _plain,
    install_library,
    library_url,
)

JS = Path(__file__).resolve().parents[1] / "playground" / "plotly_live.js"


def records(n: int, seed: int = 0) -> list[EpochRecord]:
    rng = np.random.default_rng(seed)
    return [EpochRecord(epoch=i, train_loss=float(np.exp(-i / 300) + 0.05 * rng.random()),
                        train_accuracy=float(1 - np.exp(-i / 100)),
                        val_loss=float(np.exp(-i / 300) + 0.1 * rng.random()),
                        val_accuracy=float(0.9 - 0.1 * rng.random()), learning_rate=0.01,
                        elapsed=i * 0.005, epoch_seconds=0.005, samples_per_second=3e5,
                        weight_norms=(1.0, 2.0), grad_norms=(0.1, 0.2))
            for i in range(1, n + 1)]


def curve_messages(lengths: list[int], planned: int = 2000) -> tuple[list[dict], dict]:
    """Messages for a loss chart growing through ``lengths`` epochs, and its last figure."""
    recs = records(max(lengths))
    stream = FigureStream("run-1")
    msgs = []
    for i, n in enumerate(lengths):
        fig, frozen = live_charts.curves_figure(recs[:n], "loss", planned)
        msg = stream.message(fig, frozen, full=i == 0)
        if not msgs or msg is not msgs[-1]:
            msgs.append(msg)
    return msgs, _plain(fig)


# ---- the server half ------------------------------------------------------------------------
def test_first_message_is_a_whole_figure_then_only_new_points():
    msgs, last = curve_messages([10, 20, 700, 707, 714])
    first, *rest = msgs
    assert first["need"] is None and "layout" in first and first["seq"] == 1
    # 2000 planned epochs: stretches of 7 epochs keep their lowest and highest point
    assert first["traces"][0]["x"][-1] == 10 and len(first["traces"][0]["x"]) <= 10
    assert first["frozen"] == [2, 2]  # epochs 1-7 are done: their two points are final
    for m in rest:
        assert "layout" not in m  # unchanged
        assert m["need"] == max(1, m["seq"] - 2)
        assert all(set(t) == {"_tail"} for t in m["traces"])
    # the last message only carries points after what was final two messages back
    start, x, y = rest[-1]["traces"][0]["_tail"]
    assert start > 0 and len(x) == len(y) == len(last["data"][0]["x"]) - start
    assert len(json.dumps(rest[-1])) < len(json.dumps(last)) / 5


def test_unchanged_figure_gives_the_same_message():
    stream = FigureStream()
    fig, frozen = live_charts.curves_figure(records(50), "loss", 100)
    a = stream.message(fig, frozen)
    b = stream.message(fig, frozen)
    assert a is b and stream.seq == 1


def test_a_changed_layout_is_sent_and_a_shrunk_curve_starts_over():
    stream = FigureStream()
    recs = records(80)
    stream.message(*live_charts.curves_figure(recs[:40], "loss", 100))
    m = stream.message(*live_charts.curves_figure(recs[:50], "loss", 100, log_y=True))
    assert m["need"] is not None and m["layout"]["yaxis"]["type"] == "log"
    m = stream.message(*live_charts.curves_figure(recs[:30], "loss", 100, log_y=True))
    assert m["need"] is None  # fewer points than were final: a whole figure
    stream.resync_requested = True
    m = stream.message(*live_charts.curves_figure(recs[:31], "loss", 100, log_y=True))
    assert m["need"] is None and not stream.resync_requested


def test_figures_without_final_points_send_changed_traces_only():
    stream = FigureStream()
    summary = {"precision": [0.5, 0.6], "recall": [0.7, 0.8], "f1": [0.6, 0.7]}
    stream.message(live_charts.class_metrics_figure(summary, ["a", "b"]))
    m = stream.message(live_charts.class_metrics_figure({**summary, "recall": [0.9, 0.8]},
                                                        ["a", "b"]))
    assert m["traces"][0] is None and m["traces"][2] is None
    assert m["traces"][1]["y"] == [0.9, 0.8]


def test_plain_data_has_no_nan_or_numpy():
    data = _plain({"y": np.array([1.0, np.nan, np.inf]), "z": np.array([[1, 2]]),
                   "v": np.float32(0.5), "w": float("nan"), "s": np.array(["a", "b"])})
    assert data == {"y": [1.0, None, None], "z": [[1, 2]], "v": 0.5, "w": None, "s": ["a", "b"]}
    json.dumps(data, allow_nan=False)


def test_library_is_installed_once_with_an_old_time(tmp_path, caplog):
    target = tmp_path / "static" / "plotly.min.js"
    assert install_library(target)
    assert target.read_bytes() == LIBRARY_SOURCE.read_bytes()
    assert int(target.stat().st_mtime) == LIBRARY_MTIME  # browsers cache it for long
    inode = target.stat().st_ino
    assert install_library(target) and target.stat().st_ino == inode  # not copied again
    (tmp_path / "file").write_text("")
    assert not install_library(tmp_path / "file" / "plotly.min.js")
    assert "Live charts cannot load plotly.js" in caplog.text
    assert library_url().startswith("/app/static/plotly.min.js?v=")


def test_the_app_serves_the_library():
    """config.toml turns static serving on, and the app's static/ holds the library."""
    import tomllib

    from playground.plotly_live import LIBRARY_FILE

    root = Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / ".streamlit" / "config.toml").read_text())
    assert config["server"]["enableStaticServing"] is True
    assert root / "static" / "plotly.min.js" == LIBRARY_FILE
    assert LIBRARY_FILE.exists()
    assert os.path.getsize(LIBRARY_FILE) == os.path.getsize(LIBRARY_SOURCE)


def test_the_library_has_every_trace_type_the_live_charts_draw():
    """The vendored bundle is a partial one: it must hold each trace type live_charts uses."""
    import re

    import plotly

    def trace_types(js: Path) -> set[str]:
        return set(re.findall(r'moduleType:"trace",name:"(\w+)"', js.read_text(encoding="utf-8")))

    full = trace_types(Path(plotly.__file__).parent / "package_data" / "plotly.min.js")
    source = (Path(__file__).resolve().parents[1] / "playground" / "live_charts.py").read_text()
    used = set(re.findall(r'"type": "(\w+)"', source)) & full  # axis types are not traces
    assert {"scatter", "heatmap", "bar"} <= used
    assert used <= trace_types(LIBRARY_SOURCE)


def test_the_library_is_the_version_the_plotly_package_ships():
    """Upgrading ``plotly`` means updating playground/vendor/ too (see its README)."""
    import plotly.offline

    assert plotly.offline.get_plotlyjs_version() == LIBRARY_VERSION


# ---- both halves: applyMessage in Chromium ----------------------------------------------------
@pytest.fixture
def apply(page):
    """Feed messages to plotly_live.js's applyMessage in a page: the resulting states."""
    page.set_content("<html><body></body></html>")
    page.add_script_tag(content=JS.read_text() + "\nwindow.applyMessage = applyMessage;",
                        type="module")
    page.wait_for_function("() => typeof window.applyMessage === 'function'")

    def run(msgs: list[dict], state: dict | None = None) -> list[dict | None]:
        return page.evaluate("""([msgs, state]) => msgs.map((m) => {
            const next = applyMessage(state, m);
            if (next !== null) state = next;
            return next;
        })""", [msgs, state])
    return run


def figure_of(state: dict) -> dict:
    return {"data": state["traces"], "layout": state["layout"]}


@pytest.mark.browser
def test_browser_ends_with_the_servers_figure(apply):
    lengths = [*range(1, 2001, 37), 2000]
    msgs, last = curve_messages(lengths)
    states = apply(msgs)
    assert None not in states
    assert figure_of(states[-1]) == last


@pytest.mark.browser
def test_one_missed_message_at_a_time_is_harmless(apply):
    """Streamlit may render only the newer of two quick updates."""
    msgs, last = curve_messages([*range(1, 2001, 23), 2000])
    rng = random.Random(3)
    kept, skipped = [msgs[0]], False
    for m in msgs[1:-1]:
        skipped = not skipped and rng.random() < 0.5
        if not skipped:
            kept.append(m)
    kept.append(msgs[-1])
    assert len(kept) < len(msgs) * 0.9
    states = apply(kept)
    assert None not in states
    assert figure_of(states[-1]) == last


@pytest.mark.browser
def test_a_graph_that_cannot_follow_asks_for_a_whole_figure(apply):
    msgs, _ = curve_messages([10, 20, 30, 40, 50])
    # two messages missed in a row: the third difference does not fit
    assert apply([msgs[0], msgs[3]])[-1] is None
    # a remounted graph (no state) cannot use a difference either
    assert apply([msgs[4]])[0] is None
    # a message seen again (Streamlit re-ran the component for a theme change) is a no-op
    states = apply([msgs[0], msgs[1], msgs[1]])
    assert states[1] == states[2]


# ---- a click comes back to Python ----------------------------------------------------------
CLICK_APP = """
import json, sys
sys.path.insert(0, {root!r})
import streamlit as st
from playground.plotly_live import live_chart

fig = {{"data": [{{"type": "scatter", "mode": "markers", "x": [1, 2, 3], "y": [1, 3, 2],
                  "customdata": ["a", "b", "c"], "marker": {{"size": 40}}}}],
       "layout": {{"height": 300, "hovermode": "closest"}}}}
clicked = live_chart(fig, "clicky", on_click=lambda: None)
if clicked:
    st.session_state["last_click"] = clicked
with st.container(key="clicked"):
    st.write(json.dumps(st.session_state.get("last_click")))


@st.fragment(run_every=0.3)
def growing():
    n = st.session_state["n"] = st.session_state.get("n", 0) + 1
    x = list(range(min(n, 40)))
    fig = {{"data": [{{"type": "scatter", "x": x, "y": x}}], "layout": {{"height": 200}}}}
    # from the 7th run on in a column: Streamlit mounts the chart anew there
    with st.columns(2)[1] if n > 6 else st.container():
        live_chart(fig, "moving", frozen=[len(x)])
    # not drawn from the 7th to the 30th run (longer than an unmounted graph is kept)
    if not 6 < n <= 30:
        live_chart(fig, "hidden", frozen=[len(x)])
    with st.container(key="growing_state"):
        streams = st.session_state["_plotly_live"]
        st.write(f"{{len(x)}} points; whole figures: moving at {{streams['moving'].full_seq}}, "
                 f"hidden at {{streams['hidden'].full_seq}}")


growing()
"""


@pytest.fixture
def click_app_url(tmp_path):
    import subprocess
    import sys

    from tests.servers import free_port, log_path, wait_healthy
    from tests.servers import stop as stop_server

    root = Path(__file__).resolve().parents[1]
    (tmp_path / "app.py").write_text(CLICK_APP.format(root=str(root)))
    assert install_library(tmp_path / "static" / "plotly.min.js")
    port = free_port()
    with open(log_path(port), "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.address", "127.0.0.1", "--server.port", str(port),
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
             "--server.enableStaticServing", "true"],
            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc=proc)
        yield url
    finally:
        stop_server(proc)


@pytest.mark.browser
def test_a_click_on_a_point_reaches_python(page, click_app_url):
    from playwright.sync_api import expect

    page.goto(click_app_url)
    point = page.locator(".st-key-clicky .scatterlayer .point").nth(1)
    expect(point).to_be_visible(timeout=30_000)
    box = point.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x - 5, y - 5)
    page.mouse.move(x, y)  # Plotly clicks on what it hovers
    page.mouse.click(x, y)
    shown = page.locator(".st-key-clicked")
    expect(shown).to_contain_text('"point": 1', timeout=20_000)
    clicked = json.loads(shown.inner_text())
    assert clicked == {"trace": 0, "point": 1, "name": None, "x": 2, "y": 3,
                       "customdata": "b"}


@pytest.mark.browser
def test_a_chart_mounted_anew_keeps_its_graph_or_asks_for_a_whole_figure(page, click_app_url):
    """Streamlit may mount a chart's element anew (here: a fragment run draws it in a
    column): the new element takes over the graph, figure and all, with no blank and no
    whole figure. A graph that is gone (a chart not drawn for a while) gets a whole
    figure when its chart comes back: it answers the server's difference with the
    resync trigger."""
    from playwright.sync_api import expect

    page.goto(click_app_url)
    moving = page.locator(".st-key-moving .js-plotly-plot")
    expect(moving).to_be_visible(timeout=30_000)
    moving.evaluate("e => { e.__mark = 'first graph'; }")
    state = page.locator(".st-key-growing_state")
    expect(state).to_contain_text("40 points", timeout=30_000)
    assert moving.evaluate("e => [e.__mark, e.data[0].x.length]") == ["first graph", 40]
    expect(page.locator(".st-key-hidden .js-plotly-plot")).to_be_visible(timeout=30_000)
    page.wait_for_function("() => { const g = document.querySelector('.st-key-hidden "
                           ".js-plotly-plot'); return g && g.data[0].x.length === 40; }")
    text = state.inner_text()
    assert "moving at 1," in text, text  # moved without a whole figure
    assert "hidden at 1" not in text, text  # came back: asked for a whole figure
