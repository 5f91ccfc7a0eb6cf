"""Downloads and configuration helpers: metrics CSV, history CSV, reproduce script."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from playground.config import RunConfig, batch_choices
from playground.datasets import load_builtin
from playground.export import history_csv, metrics_csv, reproduce_script
from playground.messages import Finished, Progress, StartJob
from playground.runs import build_spec
from playground.worker import _Control, _run_job

ROOT = Path(__file__).resolve().parents[1]


def run_job(cfg: RunConfig):
    """Train as the app's worker does (same spec, same code path), in this process."""
    ds = load_builtin(cfg.dataset, cfg.n_samples, cfg.noise, cfg.n_classes, cfg.seed)
    spec, _, batch = build_spec(cfg, ds)
    sent = []
    _run_job(sent.append, StartJob("j", spec), _Control("j"))
    records = [r for m in sent if isinstance(m, Progress) for r in m.records]
    finished = sent[-1]
    assert isinstance(finished, Finished), finished
    # the evaluation, and the model bytes the "Model (.npz)" button offers
    return records, finished.evaluation, batch, finished.model


@pytest.mark.parametrize("cfg", [
    RunConfig(dataset="Spiral", n_samples=300, n_classes=3, epochs=15, n_layers=2,
              units=(16, 8, 16, 16, 16, 16), optimizer="adam", learning_rate=0.01, seed=4),
    RunConfig(dataset="Iris", epochs=10, n_layers=1, units=(8, 32, 16, 16, 16, 16),
              batch_size=16, val_size=0, seed=2),
    RunConfig(dataset="XOR", n_samples=200, epochs=8, early_stopping=True, dropout=0.1,
              lr_schedule="cosine", clip_norm=1.0, seed=1),
], ids=["spiral-adam", "iris-noval", "xor-earlystop-dropout"])
def test_reproduce_script_gives_the_same_run(cfg, tmp_path):
    records, evaluation, batch, _ = run_job(cfg)
    script = tmp_path / "reproduce_run.py"
    script.write_text(reproduce_script(cfg, batch))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env=env, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    last = records[-1]
    assert f"epoch {last.epoch}: train loss {last.train_loss:.6f}" in out.stdout, out.stdout
    assert f"test accuracy {evaluation.accuracy:.4f}" in out.stdout
    assert f"macro F1 {evaluation.macro_f1:.4f}" in out.stdout


def test_metrics_csv_matches_summary():
    from nn_core.metrics import classification_summary

    y = np.array([0, 1, 2, 2, 1, 0, 2])
    p = np.array([0, 2, 2, 2, 1, 1, 0])
    s = classification_summary(y, p, [0, 1, 2])
    rows = list(csv.reader(io.StringIO(metrics_csv(s, ["a", "b", "c"]))))
    assert rows[0] == ["class", "precision", "recall", "f1", "support"]
    assert [r[0] for r in rows[1:]] == ["a", "b", "c", "macro avg", "weighted avg", "accuracy"]
    assert float(rows[3][2]) == pytest.approx(s["recall"][2], abs=1e-6)
    assert float(rows[4][3]) == pytest.approx(s["macro_f1"], abs=1e-6)
    assert float(rows[6][3]) == pytest.approx(s["accuracy"], abs=1e-6)
    assert int(rows[5][4]) == 7


def test_history_csv_has_one_row_per_epoch():
    records, _, _, _ = run_job(RunConfig(dataset="Moons", n_samples=200, epochs=5))
    rows = list(csv.DictReader(io.StringIO(history_csv(records))))
    assert len(rows) == 5 and rows[-1]["epoch"] == "5"
    assert float(rows[0]["train_loss"]) == pytest.approx(records[0].train_loss)
    assert "grad_norm_1" in rows[0] and "weight_norm_3" in rows[0]


def test_batch_choices():
    assert batch_choices(100) == [1, 2, 4, 8, 16, 32, 64, 100]
    assert batch_choices(64) == [1, 2, 4, 8, 16, 32, 64]
    assert batch_choices(1) == [1]


def test_share_query_leaves_out_defaults():
    assert RunConfig().share_query() == {}
    q = RunConfig(dataset="Moons", n_layers=3, units=(8, 32, 4, 16, 16, 16),
                  learning_rate=0.0001, alpha=0.001, early_stopping=True).share_query()
    assert q == {"dataset": "Moons", "n_layers": "3", "learning_rate": "0.0001",
                 "alpha": "0.001", "early_stopping": "true", "units_1": "8", "units_3": "4"}


def test_envelope_keeps_spikes_and_ends():
    from playground.live_charts import envelope

    x = np.arange(1, 5001)
    v = np.linspace(1, 0, 5000)
    v[1234] = 9.0  # a spike
    v[3000] = -5.0  # a dip
    tx, tv = envelope(x, v, 600)
    assert len(tx) <= 602 and tx[0] == 1 and tx[-1] == 5000
    assert 9.0 in tv and -5.0 in tv
    assert np.all(np.diff(tx) > 0)  # still in epoch order
    short = np.arange(10)
    assert envelope(short, short * 1.0, 600)[0] is short


def _envelope_loop(n: int, values: np.ndarray, max_points: int) -> list[int]:
    """The indices envelope() keeps, stretch by stretch in plain Python."""
    bucket = -(-n // (max_points // 2))
    keep = []
    for start in range(0, n, bucket):
        chunk = values[start:start + bucket]
        if not np.isfinite(chunk).any():
            keep.append(start)
            continue
        keep.extend(sorted({start + int(np.nanargmin(chunk)),
                            start + int(np.nanargmax(chunk))}))
    return keep if keep[-1] == n - 1 else [*keep, n - 1]


def test_envelope_equals_the_plain_loop():
    """The vectorised thinning keeps exactly the points the obvious loop keeps."""
    from playground.live_charts import envelope

    gen = np.random.default_rng(7)
    for _ in range(150):
        n = int(gen.integers(601, 5000))
        max_points = int(gen.choice([10, 100, 600]))
        v = gen.normal(size=n).round(1)  # rounding makes ties
        for kind, share in (("nan", 0.2), ("inf", 0.02), ("-inf", 0.02)):
            v[gen.random(n) < share] = float(kind)
        if gen.random() < 0.3:  # a diverged stretch: nothing finite
            start = int(gen.integers(0, n - 50))
            v[start:start + 50] = np.nan
        x = np.arange(1, n + 1)
        tx, tv = envelope(x, v, max_points)
        expected = _envelope_loop(n, v, max_points)
        np.testing.assert_array_equal(tx, x[expected])
        np.testing.assert_array_equal(tv, v[expected])


def test_downloaded_model_loads_as_an_estimator():
    """The app's model download is an nn_core file a scikit-learn user can load."""
    from nn_core import NeuralNetworkClassifier

    cfg = RunConfig(dataset="Wine", epochs=40, optimizer="adam", learning_rate=0.01, seed=3)
    _, evaluation, _, model = run_job(cfg)
    clf = NeuralNetworkClassifier.load(io.BytesIO(model))
    assert clf.classes_.tolist() == ["class_0", "class_1", "class_2"]
    assert clf.get_params()["optimizer"] == "adam" and clf.get_params()["random_state"] == 3
    # new data must be scaled as stored in the file, then predictions match the app's
    meta = json.loads(str(np.load(io.BytesIO(model))["config"]))["meta"]
    mean, scale = (np.array(meta["preprocessing"][k]) for k in ("mean", "scale"))
    ds = load_builtin("Wine")
    _, prepared, _ = build_spec(cfg, ds)
    X_test = (ds.X[prepared.test_index] - mean) / scale
    pred = clf.predict(X_test)
    expected = np.array(prepared.classes)[evaluation.y_pred]
    np.testing.assert_array_equal(pred, expected)
    assert clf.score(X_test, ds.y[prepared.test_index]) == pytest.approx(
        evaluation.accuracy, abs=1e-12)


def test_metrics_csv_escapes_formulas_in_labels_but_not_numbers():
    """OWASP CSV injection: a label a spreadsheet would run gets a leading '."""
    from nn_core.metrics import classification_summary

    labels = ['=HYPERLINK("http://evil","x")', "@SUM(A1)", "+1+cmd|' /C calc'!A0",
              "-2+3", "\tTAB", "\rCR", " =spaced", "-1", "+3", "-0.5", "plain"]
    k = len(labels)
    y = np.arange(k).repeat(2)
    s = classification_summary(y, y, list(range(k)))
    rows = list(csv.reader(io.StringIO(metrics_csv(s, labels), newline="")))
    assert [r[0] for r in rows[1:k + 1]] == [
        '\'=HYPERLINK("http://evil","x")', "'@SUM(A1)", "'+1+cmd|' /C calc'!A0", "'-2+3",
        "'\tTAB", "'\rCR", "' =spaced", "-1", "+3", "-0.5", "plain"]
    # numeric labels and numeric columns are written as numbers
    rows = list(csv.reader(io.StringIO(metrics_csv(s, list(range(-5, k - 5))))))
    assert [r[0] for r in rows[1:4]] == ["-5", "-4", "-3"]
    assert all(not cell.startswith("'") for r in rows for cell in r)


def test_history_csv_keeps_negative_numbers():
    from types import SimpleNamespace

    record = SimpleNamespace(epoch=1, train_loss=-0.25, train_accuracy=0.5, val_loss=None,
                             val_accuracy=None, learning_rate=-1e-3, elapsed=-0.5,
                             samples_per_second=-10.0, weight_norms=[-1.5],
                             grad_norms=[float("-inf")])
    rows = list(csv.reader(io.StringIO(history_csv([record]))))
    assert rows[1] == ["1", "-0.25", "0.5", "", "", "-0.001", "-0.5000", "-10", "-1.5", "-inf"]
