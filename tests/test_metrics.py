"""nn_core.metrics against sklearn.metrics."""

import numpy as np
import pytest
from sklearn import metrics as skm

from nn_core import metrics


def cases():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 5, 200)
    y_pred = np.where(rng.random(200) < 0.7, y_true, rng.integers(0, 5, 200))
    yield "random-5", y_true, y_pred, None
    # class 3 never predicted, class 4 never true: zero denominators
    yield "absent", np.array([0, 1, 2, 3, 3, 0, 1]), np.array([0, 1, 2, 4, 0, 0, 2]), None
    yield "strings", np.array(["cat", "dog", "dog", "emu", "cat"]), \
        np.array(["dog", "dog", "dog", "cat", "cat"]), None
    # explicit labels including one that occurs nowhere
    yield "labels", np.array([0, 1, 1, 0]), np.array([1, 1, 0, 0]), np.array([0, 1, 2])
    yield "binary", np.array([0, 0, 0, 1]), np.array([0, 0, 0, 0]), None


@pytest.mark.parametrize("name,y_true,y_pred,labels", list(cases()),
                         ids=[c[0] for c in cases()])
def test_against_sklearn(name, y_true, y_pred, labels):
    assert metrics.accuracy(y_true, y_pred) == pytest.approx(
        skm.accuracy_score(y_true, y_pred), abs=1e-12)
    np.testing.assert_array_equal(
        metrics.confusion_matrix(y_true, y_pred, labels),
        skm.confusion_matrix(y_true, y_pred, labels=labels))
    p, r, f, s = metrics.precision_recall_f1_support(y_true, y_pred, labels)
    sp, sr, sf, ss = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    np.testing.assert_allclose(p, sp, rtol=0, atol=1e-12)
    np.testing.assert_allclose(r, sr, rtol=0, atol=1e-12)
    np.testing.assert_allclose(f, sf, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(s, ss)
    summary = metrics.classification_summary(y_true, y_pred, labels)
    for avg in ("macro", "weighted"):
        sp, sr, sf, _ = skm.precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=avg, zero_division=0)
        assert summary[f"{avg}_precision"] == pytest.approx(sp, abs=1e-12)
        assert summary[f"{avg}_recall"] == pytest.approx(sr, abs=1e-12)
        assert summary[f"{avg}_f1"] == pytest.approx(sf, abs=1e-12)


def test_confusion_matrix_orientation():
    cm = metrics.confusion_matrix([0, 0, 1], [1, 1, 1])
    assert cm.tolist() == [[0, 2], [0, 1]]  # rows: true, columns: predicted


def test_confusion_matrix_label_order_is_respected():
    y_true, y_pred = np.array([2, 0, 1, 2]), np.array([2, 1, 1, 0])
    np.testing.assert_array_equal(
        metrics.confusion_matrix(y_true, y_pred, labels=[2, 1, 0]),
        skm.confusion_matrix(y_true, y_pred, labels=[2, 1, 0]))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_log_loss(dtype):
    rng = np.random.default_rng(1)
    proba = rng.random((50, 4)).astype(dtype)
    proba /= proba.sum(axis=1, keepdims=True)
    proba[0] = [1, 0, 0, 0]  # a certain mistake: clipped, finite
    y = rng.integers(0, 4, 50)
    y[0] = 2
    ours = metrics.log_loss(y, proba, labels=[0, 1, 2, 3])
    assert np.isfinite(ours)
    assert ours == pytest.approx(skm.log_loss(y, proba, labels=[0, 1, 2, 3]), rel=1e-12)


def test_log_loss_string_labels():
    y = np.array(["a", "b", "b"])
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.5, 0.5]])
    assert metrics.log_loss(y, proba) == pytest.approx(skm.log_loss(y, proba), rel=1e-12)


def test_bad_inputs():
    with pytest.raises(ValueError, match="different lengths"):
        metrics.accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="shape"):
        metrics.log_loss([0, 1], np.ones((2, 3)) / 3, labels=[0, 1])
    with pytest.raises(ValueError, match="not in labels"):
        metrics.log_loss([0, 5], np.ones((2, 2)) / 2, labels=[0, 1])
