"""AppTest tests of every page: no exception, widgets work, a real short training run
produces charts whose data are checked, bad input gives specific errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture(autouse=True)
def fresh_caches():
    """Caches are process-global: every test starts clean (stopping old runners)."""
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


class PlaygroundTest(AppTest):
    """AppTest that reruns the entrypoint like the real server does.

    Streamlit 1.67's AppTest asks for a rerun of the page it finished on by
    that page's hash, and the page file then runs on its own: ``app.py``
    (``st.navigation`` and the sidebar) is skipped. A real server
    always runs ``app.py`` (checked in the browser tests). Requesting no page
    hash makes AppTest run ``app.py`` too, which then runs the default page.
    Tests that ``switch_page`` keep AppTest's behaviour (the page alone).
    """

    def _run(self, widget_state=None, timeout=None):
        if not self._page_hash:
            self._finished_page_script_hash = ""
        return super()._run(widget_state, timeout)


def app(**query) -> AppTest:
    at = PlaygroundTest(Path(APP), default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = str(v)
    at.run()
    assert not at.exception, at.exception
    return at


def _without_dark(part: dict) -> dict:
    return {k: v for k, v in part.items() if k != "_dark"}


def live_charts(at: AppTest) -> dict[str, dict]:
    """The live Plotly charts on the page by key: their figure ({"data", "layout"}).

    In AppTest every run is a full script run, so each chart's message holds the
    whole figure. Each is checked to be a valid Plotly figure (its "_dark" theme
    overrides aside).
    """
    out = {}
    for el in at.get("bidi_component"):
        if el.proto.component_name != "nnpg_plotly_live":
            continue
        msg = json.loads(el.proto.json)
        assert msg["need"] is None, msg  # a whole figure
        fig = {"data": msg["traces"], "layout": msg["layout"]}
        go.Figure({"data": [_without_dark(t) for t in fig["data"]],
                   "layout": _without_dark(fig["layout"])})
        out[msg["name"]] = fig
    return out


def title(fig: dict) -> str:
    return fig["layout"]["title"]["text"]


def trace(fig: dict, name: str, **where) -> dict:
    """The trace called ``name`` (and matching ``where``)."""
    return next(t for t in fig["data"] if t.get("name") == name
                and all(t.get(k) == v for k, v in where.items()))


def train(at: AppTest, timeout: float = 60.0) -> AppTest:
    """Press Train and rerun (fragments do not fire on their own) until the run ends."""
    at.button(key="train").click().run()
    assert not at.exception, at.exception
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if at.success or any("diverged" in e.value or "failed" in e.value for e in at.error):
            return at
        time.sleep(0.1)
        at.run()
        assert not at.exception, at.exception
    raise AssertionError("the run did not finish")


def test_playground_intro_page():
    at = app()
    assert at.title[0].value == "Neural Network Playground"
    assert not at.error
    net = live_charts(at)["network_diagram"]
    assert title(net) == "Network: 64 → 64 → 32 → 10"
    assert net["layout"]["title"]["subtitle"]["text"] == "6,570 weights and biases"
    labels = next(t for t in net["data"] if t["mode"] == "text" and "<b>" in t["text"][0])
    assert labels["text"] == ["<b>input</b>", "<b>hidden 1</b>", "<b>hidden 2</b>",
                              "<b>output</b>"]
    neurons = sum(len(t["x"]) for t in net["data"] if t["mode"] == "markers")
    assert neurons == 5 + 5 + 10 + 10 + 10  # 64 and 64 drawn as 5 + 5 around a gap
    # the tutorial defaults
    assert at.selectbox(key="dataset").value == "Digits"
    assert at.slider(key="n_layers").value == 2
    assert (at.slider(key="units_1").value, at.slider(key="units_2").value) == (64, 32)
    assert at.selectbox(key="activation").value == "relu"
    assert at.selectbox(key="optimizer").value == "sgd"
    assert at.select_slider(key="learning_rate").value == 0.01
    assert at.select_slider(key="batch_size").value == 32


def test_widgets_change_the_network():
    at = app()
    at.slider(key="n_layers").set_value(3).run()
    at.slider(key="units_3").set_value(7).run()
    at.selectbox(key="activation").set_value("tanh").run()
    assert not at.exception
    net = live_charts(at)["network_diagram"]
    assert title(net) == "Network: 64 → 64 → 32 → 7 → 10"
    texts = [x for t in net["data"] if t["mode"] == "text" for x in t["text"]]
    assert "7 neurons, tanh" in texts


def test_short_training_run_on_moons_draws_every_chart():
    at = app(dataset="Moons", n_samples=300, epochs=30, optimizer="adam", learning_rate=0.03)
    train(at)
    assert at.success and "Trained 30 epochs" in at.success[0].value
    charts = live_charts(at)
    loss = charts["loss_chart"]
    assert title(loss) == "Loss (cross-entropy)"
    assert [t["name"] for t in loss["data"]] == ["train", "validation"]
    train_loss = trace(loss, "train")
    assert train_loss["x"] == list(range(1, 31))  # 30 epochs: nothing thinned
    assert train_loss["y"][-1] < train_loss["y"][0]
    acc = charts["accuracy_chart"]
    assert all(0 <= v <= 1 for t in acc["data"] for v in t["y"])
    # confusion matrix: 2 x 2 cells covering the 60 test samples
    cm = charts["confusion_matrix"]["data"][0]
    assert cm["type"] == "heatmap" and cm["x"] == cm["y"] == ["0", "1"]
    counts = np.array(cm["customdata"])
    assert counts.shape == (2, 2) and counts.sum() == 60
    assert np.allclose(np.array(cm["z"]).sum(axis=1), 1)  # colour: share of the true class
    assert cm["text"] == [[str(v) for v in row] for row in counts.tolist()]
    metrics = charts["class_metrics"]
    assert [t["name"] for t in metrics["data"]] == ["precision", "recall", "F1"]
    assert all(t["x"] == ["0", "1"] and all(0 <= v <= 1 for v in t["y"])
               for t in metrics["data"])
    table = at.dataframe[0].value
    assert table["support"].sum() == 60 and list(table["class"]) == ["0", "1"]
    # decision boundary: the image plus 240 train and 60 test points (val excluded: 24 held out)
    boundary = charts["decision_boundary"]
    [image] = boundary["layout"]["images"]
    assert image["source"].startswith("data:image/png;base64,")
    points = {group: sum(len(t["x"]) for t in boundary["data"]
                         if t["marker"]["symbol"] == symbol)
              for group, symbol in (("train", "circle"), ("test", "x"))}
    assert points == {"train": 300 - 60 - 24, "test": 60}
    grads = charts["grad_norms"]
    assert {t["name"] for t in grads["data"]} == {"Layer 1 (64)", "Layer 2 (32)", "Output (2)"}
    assert {t["name"] for t in charts["weight_norms"]["data"]} == {
        "Layer 1 (64)", "Layer 2 (32)", "Output (2)"}
    # the headline metrics agree with the confusion matrix
    acc_metric = next(m for m in at.metric if m.label == "Test accuracy")
    assert acc_metric.value == f"{np.trace(counts) / 60:.1%}"
    # exports are offered
    assert {b.key for b in at.get("download_button")} >= {"download_model",
                                                          "download_metrics",
                                                          "download_history",
                                                          "download_script"}


def test_digits_run_shows_misclassified_gallery_and_ten_classes():
    at = app(epochs=5)
    train(at)
    charts = live_charts(at)
    counts = np.array(charts["confusion_matrix"]["data"][0]["customdata"])
    assert counts.shape == (10, 10) and counts.sum() == 360
    assert len(at.dataframe[0].value) == 10
    gallery = charts["misclassified"]
    n_wrong = 360 - np.trace(counts)
    images = gallery["layout"].get("images", [])
    assert len(images) == min(16, n_wrong)
    assert gallery["layout"]["title"]["subtitle"]["text"].startswith(
        f"{n_wrong} of 360 test images")
    assert all(im["source"].startswith("data:image/png;base64,") for im in images)
    captions = gallery["data"][0]["text"]
    assert len(captions) == len(images) and all(" → " in c for c in captions)
    # "Normalise rows": the numbers become each true class's shares (the colour already is)
    at.toggle(key="cm_normalize").set_value(True).run()
    cm = live_charts(at)["confusion_matrix"]["data"][0]
    assert all(c.endswith("%") for row in cm["text"] for c in row)
    assert np.array(cm["customdata"]).sum() == 360  # counts stay in the hover


def test_compare_page_lists_runs_and_deletes():
    at = app(dataset="Iris", epochs=10)
    train(at)
    at.select_slider(key="learning_rate").set_value(0.1).run()
    train(at)
    at.switch_page("views/compare.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["run"]) == ["Run 2", "Run 1"]  # newest first
    assert list(table["learning rate"]) == [0.1, 0.01]
    assert (table["status"] == "done").all() and table["test accuracy"].between(0, 1).all()
    assert "set-up" in table and "learning_rate=0.1" in table["set-up"][0]
    ids = [link.split("run=")[1] for link in table["result"]]
    assert at.multiselect(key="compare_select").value == ids
    assert len(at.get("plotly_chart")) == 1
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert [tr["name"] for tr in spec["data"]] == ["Run 2 (val)", "Run 1 (val)"]
    at.multiselect(key="delete_select").set_value([ids[1]]).run()
    at.button(key="delete_runs").click().run()
    assert not at.exception
    assert list(at.dataframe[0].value["run"]) == ["Run 2"]


def test_compare_page_empty():
    at = app()
    at.switch_page("views/compare.py").run()
    assert not at.exception and "No runs yet" in at.info[0].value


@pytest.mark.parametrize("dataset", ["Digits", "Wine", "Spiral"])
def test_data_page(dataset):
    at = app(dataset=dataset)
    at.switch_page("views/data.py").run()
    assert not at.exception and not at.error
    labels = {m.label: m.value for m in at.metric}
    assert int(labels["Samples"].replace(",", "")) > 0
    plots = [json.loads(p.proto.spec) for p in at.get("plotly_chart")]
    balance = next(p for p in plots if p["layout"]["title"]["text"] == "Class balance")
    assert sum(balance["data"][0]["y"]) == int(labels["Samples"].replace(",", ""))
    if dataset == "Digits":
        assert at.get("image")


def test_how_it_works_page():
    at = app()
    at.switch_page("views/how_it_works.py").run()
    assert not at.exception
    assert len(at.get("latex")) >= 10
    codes = [c.value for c in at.code]
    assert any("def softmax_cross_entropy_grad_" in c for c in codes)
    assert any("def train_batch" in c for c in codes)


def test_query_parameters_open_the_shared_setup():
    at = app(dataset="Spiral", n_classes=4, n_layers=3, units_3=5, activation="tanh",
             learning_rate=0.003, epochs=50, seed=7)
    assert at.selectbox(key="dataset").value == "Spiral"
    assert at.slider(key="n_classes").value == 4
    assert at.slider(key="units_3").value == 5
    assert at.selectbox(key="activation").value == "tanh"
    assert at.select_slider(key="learning_rate").value == 0.003
    assert at.select_slider(key="epochs").value == 50
    assert at.number_input(key="seed").value == 7


def test_divergence_shows_advice_not_a_traceback():
    at = app(standardize="false", learning_rate=1, epochs=200, activation="identity")
    train(at)
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("diverged" in e and "Lower the learning rate" in e for e in errors), errors


BAD_CSVS = [
    (b"", "The file is empty"),
    (b"a,b,label\n", "header row but no data rows"),
    (b"x,y,label\n" + b"1,2,a\n" * 6 + b"1,two,b\n" * 6, "Column 'y' is not numeric"),
    (b"x,y,label\n" + b"1,2,a\n" * 12, "only one class"),
    (b"\x89PNG\r\n\x1a\n\x00\x00" + bytes(range(256)) * 3, "not a text CSV file"),
]


@pytest.mark.parametrize("data,message", BAD_CSVS, ids=[m for _, m in BAD_CSVS])
def test_bad_csv_upload_shows_a_specific_error_and_keeps_runs(data, message):
    at = app(dataset="Iris", epochs=5)
    train(at)  # an earlier run that must survive
    at.selectbox(key="dataset").set_value("Upload CSV").run()
    at.file_uploader(key="csv_file").set_value(("data.csv", data, "text/csv")).run()
    assert not at.exception
    at.button(key="train").click().run()
    assert not at.exception
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    at.switch_page("views/compare.py").run()
    assert list(at.dataframe[0].value["run"]) == ["Run 1"]


def test_good_csv_upload_trains():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 3))
    rows = [f"{a:.3f},{b:.3f},{c:.3f},{'hi' if a + b > 0 else 'lo'}" for a, b, c in X]
    data = ("f1,f2,f3,target\n" + "\n".join(rows)).encode()
    at = app(epochs=30)
    at.selectbox(key="dataset").set_value("Upload CSV").run()
    at.file_uploader(key="csv_file").set_value(("mine.csv", data, "text/csv")).run()
    assert at.selectbox(key="label_column").value == "target"
    train(at)
    assert at.success and not at.exception
    cm = live_charts(at)["confusion_matrix"]["data"][0]
    assert cm["x"] == cm["y"] == ["hi", "lo"]
    assert np.array(cm["z"]).shape == (2, 2)


def test_reset_restores_the_tutorial_setup():
    at = app(dataset="Moons", n_layers=4, optimizer="adam", epochs=20)
    train(at)
    at.button(key="reset").click().run()
    assert not at.exception
    assert at.selectbox(key="dataset").value == "Digits"
    assert at.slider(key="n_layers").value == 2
    assert at.selectbox(key="optimizer").value == "sgd"
    assert at.select_slider(key="epochs").value == 500
    assert "Pick a data set" in at.markdown[0].value  # the run view is cleared
    at.switch_page("views/compare.py").run()
    assert list(at.dataframe[0].value["run"]) == ["Run 1"]  # the run is kept


def test_pause_resume_and_stop():
    at = app(epochs=2000)
    at.button(key="train").click().run()
    at.button(key="pause").click().run()
    deadline = time.monotonic() + 10
    while not at.warning and time.monotonic() < deadline:
        time.sleep(0.1)
        at.run()
    assert at.warning and "Paused after epoch" in at.warning[0].value
    assert at.button(key="pause").label == "Resume"
    at.button(key="pause").click().run()
    at.button(key="stop").click().run()
    deadline = time.monotonic() + 10
    def stopped() -> bool:
        return any("Stopped after epoch" in i.value and "of 2000" in i.value for i in at.info)

    while time.monotonic() < deadline and not stopped():
        time.sleep(0.1)
        at.run()
    assert stopped(), [i.value for i in at.info]
    assert not at.exception


def test_refused_run_explains_the_limit(monkeypatch):
    monkeypatch.setenv("NNPG_MAX_PARAMS", "1000")
    at = app()
    at.button(key="train").click().run()
    assert not at.exception
    assert any("more than the limit of 1,000" in e.value for e in at.error)


def test_early_stopping_needs_a_validation_split():
    at = app(early_stopping="true", val_size=0)
    at.button(key="train").click().run()
    assert any("validation split above 0" in e.value for e in at.error)
