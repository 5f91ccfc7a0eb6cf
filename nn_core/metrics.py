"""Classification metrics in NumPy.

Definitions follow :mod:`sklearn.metrics` (and the tests compare against it):
rows of the confusion matrix are true classes and columns predicted classes;
a score whose denominator is zero (a class never predicted, or absent from the
true labels) is 0; F1 is ``2 tp / (2 tp + fp + fn)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["accuracy", "classification_summary", "confusion_matrix", "log_loss",
           "precision_recall_f1_support"]


def _labels(y_true: np.ndarray, y_pred: np.ndarray | None,
            labels: Sequence | np.ndarray | None) -> np.ndarray:
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.size == 0:
            raise ValueError("labels must be a non-empty 1-D sequence")
        return labels
    parts = [y_true] if y_pred is None else [y_true, y_pred]
    return np.unique(np.concatenate(parts))


def _check_pair(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.ndim != 1 or y_pred.ndim != 1:
        raise ValueError("y_true and y_pred must be 1-D")
    if y_true.shape[0] != y_pred.shape[0]:
        raise ValueError(f"y_true and y_pred have different lengths: "
                         f"{y_true.shape[0]} and {y_pred.shape[0]}")
    return y_true, y_pred


def _encode(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Index of each value in ``labels`` (in the given order), -1 if absent."""
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    pos = np.searchsorted(sorted_labels, values)
    pos_clipped = np.minimum(pos, len(labels) - 1)
    found = sorted_labels[pos_clipped] == values
    return np.where(found, order[pos_clipped], -1)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of exact matches.

    Parameters
    ----------
    y_true, y_pred : array of shape (n_samples,)
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    if y_true.size == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return float(np.mean(y_true == y_pred))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray,
                     labels: Sequence | np.ndarray | None = None) -> np.ndarray:
    """Confusion matrix ``C[i, j]`` = samples of class ``labels[i]`` predicted ``labels[j]``.

    Parameters
    ----------
    y_true, y_pred : array of shape (n_samples,)
    labels : array of shape (n_labels,), optional
        Row/column order; default: sorted union of both inputs. Samples whose
        true or predicted label is not listed are ignored.

    Returns
    -------
    ndarray of int64, shape (n_labels, n_labels)
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    labels = _labels(y_true, y_pred, labels)
    k = len(labels)
    t = _encode(y_true, labels)
    p = _encode(y_pred, labels)
    keep = (t >= 0) & (p >= 0)
    counts = np.bincount(t[keep] * k + p[keep], minlength=k * k)
    return counts.reshape(k, k).astype(np.int64)


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def precision_recall_f1_support(
    y_true: np.ndarray, y_pred: np.ndarray,
    labels: Sequence | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, F1 and support.

    Parameters
    ----------
    y_true, y_pred : array of shape (n_samples,)
    labels : array of shape (n_labels,), optional

    Returns
    -------
    precision, recall, f1 : ndarray of float64, shape (n_labels,)
    support : ndarray of int64, shape (n_labels,)
        Number of true samples of each class.
    """
    cm = confusion_matrix(y_true, y_pred, labels)
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0)
    support = cm.sum(axis=1)
    precision = _safe_divide(tp, predicted)
    recall = _safe_divide(tp, support)
    # 2tp / (2tp + fp + fn) equals 2PR / (P + R) but stays defined when P or R is 0/0.
    f1 = _safe_divide(2 * tp, 2 * tp + (predicted - tp) + (support - tp))
    return precision, recall, f1, support.astype(np.int64)


def log_loss(y_true: np.ndarray, proba: np.ndarray,
             labels: Sequence | np.ndarray | None = None) -> float:
    """Mean negative log-likelihood of the true class.

    Probabilities are clipped to ``[eps, 1 - eps]`` (``eps`` of their dtype),
    as :func:`sklearn.metrics.log_loss` does, so one certain mistake costs a
    large but finite amount.

    Parameters
    ----------
    y_true : array of shape (n_samples,)
    proba : ndarray of shape (n_samples, n_labels)
        Column ``j`` is the probability of ``labels[j]``.
    labels : array of shape (n_labels,), optional
        Default: sorted unique values of ``y_true``.
    """
    y_true = np.asarray(y_true)
    proba = np.asarray(proba)
    if proba.dtype.kind != "f":
        proba = proba.astype(np.float64)
    labels = _labels(y_true, None, labels)
    if proba.ndim != 2 or proba.shape != (y_true.shape[0], len(labels)):
        raise ValueError(f"proba must have shape (n_samples, n_labels) = "
                         f"({y_true.shape[0]}, {len(labels)}), got {proba.shape}")
    idx = _encode(y_true, labels)
    if np.any(idx < 0):
        raise ValueError("y_true contains labels that are not in labels")
    eps = np.finfo(proba.dtype).eps
    p = np.clip(proba[np.arange(len(idx)), idx], eps, 1 - eps)
    return float(-np.mean(np.log(p)))


def classification_summary(y_true: np.ndarray, y_pred: np.ndarray,
                           labels: Sequence | np.ndarray | None = None,
                           proba: np.ndarray | None = None) -> dict:
    """Everything a report needs, as plain Python lists and floats.

    Returns
    -------
    dict
        ``labels``, ``accuracy``, per-class lists ``precision``, ``recall``,
        ``f1``, ``support``; ``macro_*`` and ``weighted_*`` averages of the
        three scores; ``confusion_matrix`` (list of lists); ``log_loss`` when
        ``proba`` is given.
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    labels = _labels(y_true, y_pred, labels)
    p, r, f, s = precision_recall_f1_support(y_true, y_pred, labels)
    total = s.sum()
    out = {
        "labels": labels.tolist(),
        "accuracy": accuracy(y_true, y_pred),
        "precision": p.tolist(), "recall": r.tolist(), "f1": f.tolist(),
        "support": s.tolist(),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels).tolist(),
    }
    for name, values in (("precision", p), ("recall", r), ("f1", f)):
        out[f"macro_{name}"] = float(values.mean())
        out[f"weighted_{name}"] = float((values * s).sum() / total) if total else 0.0
    if proba is not None:
        out["log_loss"] = log_loss(y_true, proba, labels)
    return out
