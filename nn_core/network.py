"""The stack of dense layers: parameters, inference, and one training step.

All weights and biases live in **one flat vector** :attr:`Network.params`; each
layer's ``Wb`` block (weights plus bias row, see :mod:`nn_core.layers`) is a
view into it, and the gradients mirror that layout in :attr:`Network.grads`.
The optimiser therefore updates the whole model with a few vector operations,
and the layers never hold a second copy of anything.

A training step (:meth:`Network.train_batch`) runs on preallocated,
feature-major buffers held by a :class:`Workspace` (one per mini-batch width),
so it allocates nothing. It computes what :class:`nn_core.textbook.Network`'s
``forward`` and ``backward`` compute (the tests check it to 1e-10).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import NamedTuple

import numpy as np

from .activations import get_activation
from .initializers import get_initializer, resolve_init
from .layers import Dense
from .losses import OutputTargets, softmax, softmax_cross_entropy_grad_

__all__ = ["BackwardStep", "DropoutBuffers", "ForwardStep", "Network", "Workspace"]

# Inference runs in chunks so predicting a million rows does not allocate a
# million-row activation matrix per layer.
_INFERENCE_CHUNK = 4096


class Network:
    """A feed-forward classifier: dense hidden layers and a softmax output.

    Parameters
    ----------
    n_features : int
        Width of the input.
    hidden_layer_sizes : sequence of int
        Widths of the hidden layers (may be empty: multinomial logistic
        regression).
    n_classes : int
        Number of output classes (>= 2).
    activation : str
        Hidden activation, one of :data:`nn_core.activations.ACTIVATIONS`.
    init : str
        ``"auto"`` (Glorot/Xavier normal, as the tutorial) or a name in
        :data:`nn_core.initializers.INITIALIZERS`.
    dtype : numpy dtype
        ``float32`` (default, fast) or ``float64``.
    rng : numpy.random.Generator or None
        Source of the initial weights; ``None`` leaves all parameters at zero
        (used when loading saved weights).
    """

    def __init__(self, n_features: int, hidden_layer_sizes: Sequence[int],
                 n_classes: int, activation: str = "relu", init: str = "auto",
                 dtype: np.dtype | type = np.float32,
                 rng: np.random.Generator | None = None) -> None:
        self.n_features = int(n_features)
        self.hidden_layer_sizes = tuple(int(h) for h in hidden_layer_sizes)
        self.n_classes = int(n_classes)
        self.activation = activation
        self.init = resolve_init(init)
        self.dtype = np.dtype(dtype)
        self._build()
        if rng is not None:
            self.initialize(rng)

    # ---- structure -------------------------------------------------------
    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """``(n_features, *hidden_layer_sizes, n_classes)``."""
        return (self.n_features, *self.hidden_layer_sizes, self.n_classes)

    @staticmethod
    def count_parameters(layer_sizes: Sequence[int]) -> int:
        """Number of weights and biases of a network with these widths."""
        return sum((a + 1) * b for a, b in pairwise(layer_sizes))

    @property
    def n_params(self) -> int:
        """Total number of weights and biases."""
        return self.params.size

    def _build(self) -> None:
        sizes = self.layer_sizes
        self.params = np.zeros(self.count_parameters(sizes), dtype=self.dtype)
        self.grads = np.zeros_like(self.params)
        # 1 where a parameter is a weight, 0 where it is a bias: L2 applies to
        # weights only.
        self.weight_mask = np.zeros_like(self.params)
        hidden_act = get_activation(self.activation)
        self.layers: list[Dense] = []
        offset = 0
        for i, (n_in, n_out) in enumerate(pairwise(sizes)):
            size = (n_in + 1) * n_out
            Wb = self.params[offset:offset + size].reshape(n_in + 1, n_out)
            dWb = self.grads[offset:offset + size].reshape(n_in + 1, n_out)
            self.weight_mask[offset:offset + n_in * n_out] = 1
            is_output = i == len(sizes) - 2
            self.layers.append(Dense(n_in, n_out, None if is_output else hidden_act,
                                     Wb, dWb))
            offset += size
        self._workspaces: dict[tuple[int, float], Workspace] = {}

    def initialize(self, rng: np.random.Generator) -> None:
        """Draw fresh weights (one layer after another) and zero the biases."""
        draw = get_initializer(self.init)
        for layer in self.layers:
            layer.W[...] = draw(rng, layer.n_in, layer.n_out)
            layer.b[...] = 0

    def parameters(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``[(W, b), ...]`` per layer, views into :attr:`params`."""
        return [(layer.W, layer.b) for layer in self.layers]

    def config(self) -> dict:
        """The architecture as a JSON-serialisable dict."""
        return {"n_features": self.n_features,
                "hidden_layer_sizes": list(self.hidden_layer_sizes),
                "n_classes": self.n_classes, "activation": self.activation,
                "init": self.init, "dtype": self.dtype.name}

    def __getstate__(self) -> dict:
        # The layers hold views into params; pickle would turn them into
        # independent copies, so store the flat vector and rebuild the views.
        return {"config": self.config(), "params": self.params}

    def __setstate__(self, state: dict) -> None:
        cfg = state["config"]
        self.__init__(cfg["n_features"], cfg["hidden_layer_sizes"], cfg["n_classes"],
                      cfg["activation"], cfg["init"], cfg["dtype"])
        self.params[...] = state["params"]

    def copy(self) -> Network:
        """An independent copy (same architecture, copied parameters)."""
        other = Network.__new__(Network)
        other.__setstate__(self.__getstate__())
        return other

    # ---- inference -------------------------------------------------------
    def forward_logits(self, X: np.ndarray, dtype: np.dtype | type | None = None
                       ) -> np.ndarray:
        """Output-layer logits.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
        dtype : numpy dtype, optional
            Precision of the computation (default: the network's). float64
            makes each row's result independent of the other rows in ``X``,
            which float32 matrix products do not guarantee.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        params = [(W.astype(dtype, copy=False), b.astype(dtype, copy=False))
                  for W, b in self.parameters()]
        n = X.shape[0]
        out = np.empty((n, self.n_classes), dtype=dtype)
        for start in range(0, n, _INFERENCE_CHUNK):
            A = np.asarray(X[start:start + _INFERENCE_CHUNK], dtype=dtype)
            for layer, (W, b) in zip(self.layers, params):
                A = layer.forward(A, W, b)
            out[start:start + _INFERENCE_CHUNK] = A
        return out

    def predict_proba(self, X: np.ndarray, dtype: np.dtype | type | None = None
                      ) -> np.ndarray:
        """Class probabilities, ``softmax(forward_logits(X, dtype))``.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
        dtype : numpy dtype, optional

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        return softmax(self.forward_logits(X, dtype))

    # ---- training --------------------------------------------------------
    def workspace(self, width: int, dropout: float = 0.0,
                  rng: np.random.Generator | None = None) -> Workspace:
        """The preallocated buffers for mini-batches of ``width`` samples."""
        key = (width, dropout)
        ws = self._workspaces.get(key)
        if ws is None:
            ws = self._workspaces[key] = Workspace(self, width, dropout)
        ws.rng = rng
        return ws

    def train_batch(self, ws: Workspace, x_T: np.ndarray, targets: OutputTargets) -> None:
        """Forward and backward pass for one mini-batch; fills :attr:`grads`.

        Per layer, with feature-major activations ``A`` (``(n_in + 1, batch)``,
        last row ones, see :mod:`nn_core.layers`)::

            forward    Z = Wb.T @ A_prev          a = f(Z), f'(Z) kept in D
            backward   dWb = A_prev @ delta.T     (the ones row yields db)
                       delta_prev = (W @ delta) * D_prev

        and between them the fused softmax/cross-entropy turns the logits into
        the output delta (:func:`nn_core.losses.softmax_cross_entropy_grad_`).

        Parameters
        ----------
        ws : Workspace
            Buffers for this batch width.
        x_T : ndarray of shape (n_features + 1, batch)
            The batch, feature-major, with a trailing row of ones (typically
            the transpose of a row-major ``(batch, n_features + 1)`` block).
        targets : OutputTargets
            The batch's scaled targets. After the call :attr:`grads` holds the
            gradient of the batch's mean cross-entropy times ``c * batch``
            (1 unless the trainer folds the learning rate in).

        Notes
        -----
        The loops below run ~1,000 times a second with 32-sample batches, where
        each NumPy call costs about as much as its arithmetic, so the layer
        views are prepared once in the workspace (unpacked positionally: the
        fields of :class:`ForwardStep` and :class:`BackwardStep`) and ``np.dot``
        (about 1 us cheaper per call than ``np.matmul`` for these 2-D
        products) is used.
        """
        dot = np.dot
        A = x_T
        for WbT, Z, D, A_next, train, dropout in ws.forward_steps:
            dot(WbT, A, out=Z)
            if train is not None:
                train(Z, D)
            if dropout is not None:
                ws.apply_dropout(Z, D, dropout)
            A = A_next
        logits = ws.logits
        dot(ws.out_WbT, A, out=logits)
        softmax_cross_entropy_grad_(logits, ws.logits_flat, ws.row_max, targets)
        # The output delta is now in `logits`; walk back to the input.
        for A_prev, dWb, W, delta_T, delta, delta_prev, D_prev in ws.backward_steps:
            dot(x_T if A_prev is None else A_prev, delta_T, out=dWb)
            if delta_prev is not None:
                dot(W, delta, out=delta_prev)
                if D_prev is not None:
                    np.multiply(delta_prev, D_prev, out=delta_prev)


class DropoutBuffers(NamedTuple):
    """Scratch space of inverted dropout on one hidden layer."""

    R: np.ndarray  # (units, width): uniform draws
    M: np.ndarray  # (units, width): the mask, 0 or 1 / (1 - rate)
    rate: float
    has_derivative: bool  # False: D holds no f'(Z) yet, the mask is copied into it


class ForwardStep(NamedTuple):
    """One hidden layer of the training pass: ``Z = Wb.T @ A_prev``, then ``A = f(Z)``."""

    WbT: np.ndarray  # (n_out, n_in + 1): a view of the layer's weights
    Z: np.ndarray  # (n_out, width): pre-activations, replaced by f(Z) in place
    D: np.ndarray | None  # (n_out, width): f'(Z) times the dropout mask; None: all ones
    A: np.ndarray  # (n_out + 1, width): Z plus a row of ones, the next layer's input
    train: Callable[[np.ndarray, np.ndarray], None] | None  # Activation.forward_train
    dropout: DropoutBuffers | None


class BackwardStep(NamedTuple):
    """One layer of the backward pass, output layer first."""

    A_prev: np.ndarray | None  # (n_in + 1, width): the layer's input; None: the batch
    dWb: np.ndarray  # noqa: N815 (n_in + 1, n_out): written, A_prev @ delta.T
    W: np.ndarray  # (n_in, n_out)
    delta_T: np.ndarray  # noqa: N815 (width, n_out): delta transposed (a view)
    delta: np.ndarray  # (n_out, width): dL/dZ of this layer
    delta_prev: np.ndarray | None  # (n_in, width): written, (W @ delta) * D_prev
    D_prev: np.ndarray | None  # the layer below's D; None: nothing to multiply


class Workspace:
    """Preallocated feature-major buffers for one mini-batch width.

    Attributes
    ----------
    xb : ndarray of shape (width, n_features + 1)
        Row-major gather buffer for a batch, last column all ones.
    logits : ndarray of shape (n_classes, width)
    hidden : list of ndarray
        Hidden activations, ``(units + 1, width)`` each with a row of ones.
    """

    def __init__(self, net: Network, width: int, dropout: float) -> None:
        dt = net.dtype
        self.width = width
        self.rng: np.random.Generator | None = None
        self.xb = np.ones((width, net.n_features + 1), dtype=dt)
        self.xb_T = self.xb.T
        self.xb_data = self.xb[:, :-1]
        self.logits = np.empty((net.n_classes, width), dtype=dt)
        self.logits_flat = self.logits.reshape(-1)
        self.row_max = np.empty(width, dtype=dt)
        self.out_WbT = net.layers[-1].WbT
        self.forward_steps: list[ForwardStep] = []
        hidden = net.layers[:-1]
        act = hidden[0].activation if hidden else None
        has_derivative = act is not None and act.derivative is not None
        inputs: list[np.ndarray | None] = [None]  # layer i's input; None: the batch
        derivs: list[np.ndarray | None] = []
        deltas: list[np.ndarray] = []
        for layer in hidden:
            A = np.ones((layer.n_out + 1, width), dtype=dt)  # last row: ones
            Z = A[:-1]
            D = np.empty((layer.n_out, width), dtype=dt) \
                if (has_derivative or dropout > 0) else None
            drop = None
            if dropout > 0:
                drop = DropoutBuffers(np.empty((layer.n_out, width), dtype=dt),
                                      np.empty((layer.n_out, width), dtype=dt),
                                      float(dropout), has_derivative)
            train = act.forward_train if has_derivative else None
            self.forward_steps.append(ForwardStep(layer.WbT, Z, D, A, train, drop))
            inputs.append(A)
            derivs.append(D)
            deltas.append(np.empty((layer.n_out, width), dtype=dt))
        self.backward_steps: list[BackwardStep] = []  # output layer first
        last = len(net.layers) - 1
        for i in range(last, -1, -1):
            layer = net.layers[i]
            delta = self.logits if i == last else deltas[i]
            self.backward_steps.append(BackwardStep(
                inputs[i], layer.dWb, layer.W, delta.T, delta,
                deltas[i - 1] if i > 0 else None, derivs[i - 1] if i > 0 else None))
        self.hidden = inputs[1:]

    def apply_dropout(self, Z: np.ndarray, D: np.ndarray, buffers: DropoutBuffers) -> None:
        """Inverted dropout on the activations ``Z`` (training only).

        Each unit survives with probability ``1 - p`` and survivors are scaled
        by ``1 / (1 - p)``, so inference needs no rescaling. The same mask
        multiplies the derivative buffer, which routes the gradient through
        the surviving units only.
        """
        R, M, p, has_derivative = buffers
        self.rng.random(dtype=R.dtype, out=R)
        np.greater_equal(R, p, out=M)
        np.multiply(M, 1.0 / (1.0 - p), out=M)
        np.multiply(Z, M, out=Z)
        if has_derivative:
            np.multiply(D, M, out=D)
        else:
            np.copyto(D, M)
