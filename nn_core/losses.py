"""Softmax output and cross-entropy loss, fused and stabilised per sample.

For logits ``z`` of one sample and its true class ``y``::

    p_k      = exp(z_k - m) / sum_j exp(z_j - m)         with m = max_j z_j
    loss     = log(sum_j exp(z_j - m)) - (z_y - m)       (log-sum-exp)
    dloss/dz = p - onehot(y)

Subtracting the *per-sample* maximum keeps every exponent <= 0, so nothing
overflows, and the largest term is exactly 1, so the sum never underflows to
zero. (One maximum for the whole batch would let a sample with small logits
underflow to 0/0 when another sample has a large logit.)

The mean loss over a batch of ``n`` samples has gradient ``(p - y) / n``: the
softmax Jacobian and the log's derivative cancel, which is why the output delta
is written once as ``p - y`` rather than as a product of two Jacobians
(:class:`nn_core.textbook.SoftmaxCrossEntropy` is exactly that).

The training pass uses :func:`softmax_cross_entropy_grad_`, the same delta
fused into seven in-place NumPy calls on feature-major buffers, times a scale
``c`` that the trainer chooses (``1 / n``, or ``learning_rate / n`` when it
folds the learning rate in: :class:`nn_core.training.FoldedUpdate`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = [
    "OutputTargets",
    "cross_entropy",
    "log_softmax",
    "softmax",
    "softmax_cross_entropy_grad_",
]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax, stable per sample.

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_classes)

    Returns
    -------
    ndarray of shape (n_samples, n_classes)
    """
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable per sample.

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_classes)

    Returns
    -------
    ndarray of shape (n_samples, n_classes)
        Rows are non-negative and sum to 1.
    """
    e = logits - logits.max(axis=1, keepdims=True)
    np.exp(e, out=e)
    e /= e.sum(axis=1, keepdims=True)
    return e


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-sample cross-entropy of softmax(logits) against class indices.

    Computed from the logits with log-sum-exp, never from clipped
    probabilities, so a confidently wrong sample gets its true (large) loss.

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_classes)
    y : ndarray of int, shape (n_samples,)
        Class indices in ``[0, n_classes)``.

    Returns
    -------
    ndarray of float64, shape (n_samples,)
    """
    z = logits.astype(np.float64, copy=False)
    m = z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z - m).sum(axis=1)) + m[:, 0]
    return lse - z[np.arange(len(y)), y]


class OutputTargets(NamedTuple):
    """One mini-batch's targets for :func:`softmax_cross_entropy_grad_`, and its outputs.

    All are views into per-epoch buffers of the trainer, laid out once per
    epoch. ``c`` is the scale of the delta: ``1 / batch`` for the gradient of
    the batch's mean loss, times the learning rate when the trainer folds it in.
    """

    Y: np.ndarray  # (n_classes, batch): one-hot targets times c
    inv_c: np.ndarray  # (1, n_classes): every entry 1 / c
    label_index: np.ndarray  # (batch,) int: flat index of each true logit in Z (y * batch + i)
    sum_exp: np.ndarray  # (1, batch), written: sum_k exp(z_k - m) / c per sample
    true_logit: np.ndarray  # (batch,), written: z_y - m per sample

    @classmethod
    def for_batch(cls, y: np.ndarray, n_classes: int, scale: float = 1.0,
                  dtype: np.dtype | type = np.float64) -> OutputTargets:
        """Fresh targets for one batch of labels ``y``, with ``c = scale / len(y)``."""
        n = len(y)
        Y = np.zeros((n_classes, n), dtype=dtype)
        Y[y, np.arange(n)] = scale / n
        return cls(Y, np.full((1, n_classes), n / scale, dtype=dtype),
                   np.asarray(y) * n + np.arange(n), np.empty((1, n), dtype=dtype),
                   np.empty(n, dtype=dtype))

    def batch_loss(self) -> np.ndarray:
        """Per-sample cross-entropy once the gradient has run (float64, shape (batch,))."""
        c = self.Y.sum(axis=0, dtype=np.float64)  # each column holds c once
        return np.log(self.sum_exp[0] * c) - self.true_logit


def softmax_cross_entropy_grad_(Z: np.ndarray, Z_flat: np.ndarray, row_max: np.ndarray,
                                targets: OutputTargets) -> None:
    """Fused softmax + cross-entropy gradient for one training mini-batch.

    Works in place on *feature-major* logits (classes along axis 0), so the
    reductions over classes run along the fast axis.

    Parameters
    ----------
    Z : ndarray of shape (n_classes, batch)
        Logits on entry; on return ``c * (P - Y)``: the gradient of the batch's
        mean loss with respect to the logits, ``(P - Y) / batch``, times
        ``c * batch`` (1 unless the learning rate is folded in).
    Z_flat : ndarray of shape (n_classes * batch,)
        A flat view of ``Z`` (made once by the caller).
    row_max : ndarray of shape (batch,)
        Scratch buffer.
    targets : OutputTargets
        The scaled one-hot targets and where to write the loss terms.

    Notes
    -----
    The loss of sample ``i`` is ``log(c * sum_exp[0, i]) - true_logit[i]``;
    the trainer takes the logarithm once per epoch instead of once per batch.
    ``true_logit[i] == 0`` exactly when the true class has the largest logit,
    which gives the training accuracy for free.
    """
    Yc, inv_c, label_index, sum_exp, true_logit = targets
    np.maximum.reduce(Z, axis=0, out=row_max)
    np.subtract(Z, row_max, out=Z)
    # ndarray.take skips np.take's Python wrapper; "clip" skips bounds checks
    # (the indices are built by the trainer) and the buffering that "raise" implies.
    Z_flat.take(label_index, out=true_logit, mode="clip")
    np.exp(Z, out=Z)
    # The column sums as a product with a row of 1/c: one call that both sums
    # and scales, so E / (s / c) below is already c * P.
    np.dot(inv_c, Z, out=sum_exp)
    np.divide(Z, sum_exp, out=Z)
    np.subtract(Z, Yc, out=Z)
