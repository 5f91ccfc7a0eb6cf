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

The training pass (:meth:`Dense.forward_train` / :meth:`Dense.backward`) works
on *feature-major* activations: ``A`` has shape ``(n_in + 1, batch)`` whose last
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
        self._WbT = Wb.T

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

    # ---- training (feature-major, see module docstring) -----------------
    def forward_train(self, A_prev: np.ndarray, Z: np.ndarray,
                      deriv: np.ndarray | None) -> None:
        """Forward one mini-batch, caching what :meth:`backward` needs.

        Parameters
        ----------
        A_prev : ndarray of shape (n_in + 1, batch)
            Previous activations with a trailing row of ones.
        Z : ndarray of shape (n_out, batch)
            Output buffer: receives ``f(Wb.T @ A_prev)``.
        deriv : ndarray of shape (n_out, batch) or None
            Receives ``f'(z)`` for the backward pass (ignored when the layer
            has no activation or the activation is the identity).
        """
        np.matmul(self._WbT, A_prev, out=Z)
        act = self.activation
        if act is not None and act.derivative is not None:
            act.forward_train(Z, deriv)

    def backward(self, A_prev: np.ndarray, delta: np.ndarray,
                 delta_prev: np.ndarray | None,
                 deriv_prev: np.ndarray | None) -> None:
        """Back-propagate one mini-batch.

        Parameters
        ----------
        A_prev : ndarray of shape (n_in + 1, batch)
            The input this layer saw in :meth:`forward_train`.
        delta : ndarray of shape (n_out, batch)
            Gradient of the loss with respect to this layer's pre-activation.
        delta_prev : ndarray of shape (n_in, batch) or None
            Receives the gradient with respect to the previous layer's
            pre-activation; ``None`` for the first layer (nothing to send).
        deriv_prev : ndarray of shape (n_in, batch) or None
            ``f'(z)`` of the previous layer (``None`` if it is the identity).

        Notes
        -----
        ``dWb = A_prev @ delta.T`` gives ``dW`` and, from the row of ones,
        ``db = delta.sum(axis=1)`` in the same product.
        """
        np.matmul(A_prev, delta.T, out=self.dWb)
        if delta_prev is not None:
            np.matmul(self.W, delta, out=delta_prev)
            if deriv_prev is not None:
                np.multiply(delta_prev, deriv_prev, out=delta_prev)
