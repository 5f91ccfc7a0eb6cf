"""A test-set evaluation: what the charts, the store, bundles and the board read.

The worker evaluates the test set every few seconds and at the end of a run
(:func:`evaluate`); the result crosses the pipe inside
:class:`~playground.messages.Progress` / :class:`~playground.messages.Finished`,
sits in the runner's :class:`~playground.jobs.Snapshot`, is stored as ``.npz``
bytes (:meth:`Evaluation.to_bytes`, never pickled) and is recomputed from the
model when a run bundle is imported. One frozen value everywhere, so a chart
reads ``ev.confusion_matrix`` rather than a string key written in another file.
"""

from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from nn_core import metrics
from nn_core.losses import cross_entropy, softmax
from nn_core.network import Network

__all__ = ["Evaluation", "evaluate"]

_ARRAYS = ("y_pred", "confidence", "grid_pred", "grid_confidence")


@dataclass(frozen=True, kw_only=True, eq=False)
class Evaluation:
    """The network's predictions on the test set (and the decision grid) at one epoch.

    Its arrays are read-only: a snapshot is shared by every page that draws it.

    Attributes
    ----------
    epoch : int
        The epoch evaluated (1-based; the last epoch trained).
    loss : float
        Mean cross-entropy on the test set.
    summary : dict
        :func:`nn_core.metrics.classification_summary` of the test set; labels
        are class indices.
    y_pred : ndarray of shape (n_test,), int16
        Predicted class per test sample.
    confidence : ndarray of shape (n_test,), float32
        Probability of the predicted class per test sample.
    grid_pred, grid_confidence : ndarray of shape (n_grid,) or None
        The same over the decision-boundary grid, for 2-D data only.
    """

    epoch: int
    loss: float
    summary: dict[str, Any]
    y_pred: np.ndarray
    confidence: np.ndarray
    grid_pred: np.ndarray | None = None
    grid_confidence: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in _ARRAYS:
            value = getattr(self, name)
            if value is not None:
                value.flags.writeable = False

    def __reduce__(self) -> tuple:
        # Unpickling skips __init__; rebuilding through it keeps the arrays read-only
        # on the receiving side of the worker's pipe too.
        return (_rebuild, (self._fields(),))

    def _fields(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @property
    def accuracy(self) -> float:
        """Fraction of test samples classified correctly."""
        return self.summary["accuracy"]

    @property
    def macro_f1(self) -> float:
        """Unweighted mean of the per-class F1 scores."""
        return self.summary["macro_f1"]

    @property
    def confusion_matrix(self) -> list[list[int]]:
        """Counts, rows = true class, columns = predicted class (class-index order)."""
        return self.summary["confusion_matrix"]

    @property
    def has_grid(self) -> bool:
        """Whether the decision-boundary grid was evaluated (2-D data)."""
        return self.grid_pred is not None

    def to_bytes(self) -> bytes:
        """The evaluation as ``.npz`` bytes: arrays as arrays, the rest as JSON, no pickle."""
        fields = self._fields()
        arrays = {k: fields.pop(k) for k in _ARRAYS}
        arrays = {k: v for k, v in arrays.items() if v is not None}
        buf = io.BytesIO()
        np.savez(buf, __json__=np.array(json.dumps(fields)), **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Evaluation:
        """Inverse of :meth:`to_bytes`."""
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            fields: dict[str, Any] = json.loads(str(z["__json__"]))
            arrays = {name: z[name] for name in z.files if name in _ARRAYS}
        return cls(**fields, **arrays)


def _rebuild(fields: dict[str, Any]) -> Evaluation:
    return Evaluation(**fields)


def evaluate(network: Network, X: np.ndarray, y: np.ndarray, epoch: int,
             grid: np.ndarray | None = None) -> Evaluation:
    """Evaluate ``network`` on a test set and, for 2-D data, on the boundary grid.

    Parameters
    ----------
    network : Network
    X : ndarray of shape (n_test, n_features)
    y : ndarray of shape (n_test,)
        Class indices.
    epoch : int
        The epoch the evaluation belongs to.
    grid : ndarray of shape (n_grid, 2) or None
        Points of the decision-boundary grid.
    """
    logits = network.forward_logits(X)
    proba = softmax(logits.astype(np.float64))
    y_pred = np.argmax(proba, axis=1)
    grid_pred = grid_confidence = None
    if grid is not None:
        g = softmax(network.forward_logits(grid).astype(np.float64))
        grid_pred = np.argmax(g, axis=1).astype(np.int16)
        grid_confidence = g.max(axis=1).astype(np.float32)
    return Evaluation(
        epoch=epoch,
        loss=float(np.mean(cross_entropy(logits, y))),
        summary=metrics.classification_summary(y, y_pred, np.arange(network.n_classes)),
        y_pred=y_pred.astype(np.int16),
        confidence=proba.max(axis=1).astype(np.float32),
        grid_pred=grid_pred, grid_confidence=grid_confidence)
