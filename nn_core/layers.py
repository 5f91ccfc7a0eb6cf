"""Fully connected (dense) layer.

Layout
------
The public convention is scikit-learn's: samples are rows and a layer's weight
matrix ``W`` has shape ``(n_in, n_out)``, bias ``b`` shape ``(n_out,)``.

Internally the weight and bias live in one block ``Wb`` of shape
``(n_in + 1, n_out)``: ``W = Wb[:-1]`` and ``b = Wb[-1]`` are *views*, not
copies. ``Wb`` itself is a view into the network's single flat parameter vector,
and ``dWb`` a view into the flat gradient vector, so the optimiser updates every
layer with one array operation and nothing is ever re-synchronised.

The training pass (:meth:`nn_core.network.Network.train_batch`) works on
*feature-major* activations: ``A`` has shape ``(n_in + 1, batch)`` whose last
row is all ones. With that row the bias is added by the matrix product itself
(``Wb.T @ A``) and its gradient comes out of the weight-gradient product
(``A @ delta.T`` has ``db`` as its last row), which saves a broadcast addition
and a reduction per layer and batch. Feature-major also makes the softmax's
reductions over classes run along the fast axis.
"""

from __future__ import annotations

import numpy as np

from .activations import Activation

__all__ = ["Dense"]


class Dense:
    """A dense layer ``a = f(x @ W + b)``.

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths.
    activation : Activation or None
        Hidden activation; ``None`` for the output layer, whose softmax is
        fused with the loss (see :mod:`nn_core.losses`).
    Wb : ndarray of shape (n_in + 1, n_out)
        Weights with the bias as last row (a view into the network's
        parameters).
    dWb : ndarray of shape (n_in + 1, n_out)
        Gradient buffer with the same layout (a view into the network's
        gradients).
    """

    def __init__(self, n_in: int, n_out: int, activation: Activation | None,
                 Wb: np.ndarray, dWb: np.ndarray) -> None:
        if Wb.shape != (n_in + 1, n_out) or dWb.shape != Wb.shape:
            raise ValueError("Wb and dWb must have shape (n_in + 1, n_out)")
        self.n_in = n_in
        self.n_out = n_out
        self.activation = activation
        self.Wb = Wb
        self.dWb = dWb
        # Views made once: creating a view costs ~0.2 us, a noticeable share of
        # a 32-sample step.
        self.W = Wb[:-1]
        self.b = Wb[-1]
        self.dW = dWb[:-1]
        self.db = dWb[-1]
        self.WbT = Wb.T

    # ---- inference (samples as rows) ------------------------------------
    def forward(self, X: np.ndarray, W: np.ndarray | None = None,
                b: np.ndarray | None = None) -> np.ndarray:
        """Return ``f(X @ W + b)``.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_in)
        W, b : ndarray, optional
            Override the layer's own weights (e.g. a float64 copy for
            high-precision inference).

        Returns
        -------
        ndarray of shape (n_samples, n_out)
            New array (the output layer returns the logits).
        """
        Z = X @ (self.W if W is None else W)
        Z += self.b if b is None else b
        if self.activation is not None:
            self.activation.forward(Z, Z)
        return Z
