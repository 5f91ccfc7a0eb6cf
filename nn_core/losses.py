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
is written once as ``p - y`` rather than as a product of two Jacobians.
"""

from __future__ import annotations

import numpy as np

__all__ = [
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


def softmax_cross_entropy_grad_(
    Z: np.ndarray,
    Z_flat: np.ndarray,
    Yc: np.ndarray,
    inv_c: np.ndarray,
    label_index: np.ndarray,
    row_max: np.ndarray,
    sum_exp_out: np.ndarray,
    true_logit_out: np.ndarray,
) -> None:
    """Fused softmax + cross-entropy gradient for one training mini-batch.

    Works in place on *feature-major* logits (classes along axis 0), so the
    reductions over classes run along the fast axis.

    Parameters
    ----------
    Z : ndarray of shape (n_classes, batch)
        Logits on entry; on return ``c * (P - Y)``, the gradient of the batch's
        mean loss with respect to the logits, times ``c * batch``.
    Z_flat : ndarray of shape (n_classes * batch,)
        A flat view of ``Z`` (made once by the caller).
    Yc : ndarray of shape (n_classes, batch)
        One-hot targets already multiplied by ``c``.
    inv_c : ndarray of shape (1, n_classes)
        Every entry ``1 / c``, where the gradient scale ``c`` is ``1 / batch``
        for the mean loss, or ``learning_rate / batch`` when the optimiser lets
        the trainer fold the learning rate in (see :mod:`nn_core.optimizers`).
    label_index : ndarray of int, shape (batch,)
        Flat index into ``Z_flat`` of each sample's true class
        (``y * batch + column``).
    row_max : ndarray of shape (batch,)
        Scratch buffer.
    sum_exp_out : ndarray of shape (1, batch)
        Receives ``sum_k exp(z_k - m) / c`` per sample.
    true_logit_out : ndarray of shape (batch,)
        Receives ``z_y - m`` per sample.

    Notes
    -----
    The loss of sample ``i`` is ``log(c * sum_exp_out[0, i]) - true_logit_out[i]``;
    the trainer takes the logarithm once per epoch instead of once per batch.
    ``true_logit_out[i] == 0`` exactly when the true class has the largest
    logit, which gives the training accuracy for free.
    """
    np.maximum.reduce(Z, axis=0, out=row_max)
    np.subtract(Z, row_max, out=Z)
    # ndarray.take skips np.take's Python wrapper; "clip" skips bounds checks
    # (the indices are built by the trainer) and the buffering that "raise" implies.
    Z_flat.take(label_index, out=true_logit_out, mode="clip")
    np.exp(Z, out=Z)
    # The column sums as a product with a row of 1/c: one call that both sums
    # and scales, so E / (s / c) below is already c * P.
    np.dot(inv_c, Z, out=sum_exp_out)
    np.divide(Z, sum_exp_out, out=Z)
    np.subtract(Z, Yc, out=Z)
