"""Hidden-layer activation functions.

Each activation is one record (:class:`Activation`) holding its forward function
and its derivative side by side; :data:`ACTIVATIONS` maps a name to its record,
and :func:`get_activation` is the only place where a name becomes behaviour.

Every derivative is written in terms of the activation's *output* ``a = f(z)``
(for ReLU, ``f'(z) = 1[a > 0]``; for tanh, ``1 - a**2``; for the logistic
sigmoid, ``a (1 - a)``), so the training pass never has to keep ``z`` around.

All functions work in place on caller-owned buffers (``out=``) because the
training loop calls them thousands of times per second on small arrays, where
allocating a new array costs as much as the arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["ACTIVATIONS", "LEAKY_RELU_SLOPE", "Activation", "get_activation"]

#: Slope of ``leaky_relu`` for negative inputs.
LEAKY_RELU_SLOPE = 0.01

ArrayFn = Callable[[np.ndarray, np.ndarray], None]


@dataclass(frozen=True)
class Activation:
    """An activation function and its derivative.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"relu"``.
    forward : callable ``(z, out) -> None``
        Writes ``f(z)`` into ``out`` (``out`` may be ``z``).
    derivative : callable ``(a, out) -> None`` or None
        Writes ``f'(z)`` into ``out`` given the output ``a = f(z)``.
        ``None`` means the derivative is identically 1 (identity), so the
        backward pass can skip the multiplication.
    forward_train : callable ``(z, deriv) -> None``
        Replaces ``z`` by ``f(z)`` in place *and* writes ``f'(z)`` into
        ``deriv``: the fused form the trainer uses. Defaults to ``forward``
        followed by ``derivative``; ReLU overrides it with a cheaper order.
    """

    name: str
    forward: ArrayFn
    derivative: ArrayFn | None
    forward_train: ArrayFn

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """Return ``f(z)`` as a new array."""
        out = np.empty_like(z)
        self.forward(z, out)
        return out


# ---- identity ---------------------------------------------------------------
def _identity(z: np.ndarray, out: np.ndarray) -> None:
    if out is not z:
        np.copyto(out, z)


# ---- relu -------------------------------------------------------------------
def _relu(z: np.ndarray, out: np.ndarray) -> None:
    np.maximum(z, 0, out=out)


def _relu_derivative(a: np.ndarray, out: np.ndarray) -> None:
    np.greater(a, 0, out=out)


# A 0-d array instead of the literal 0: NumPy resolves a Python scalar's type
# on every call, which costs more than the comparison of a 32-sample batch.
_ZERO = np.zeros((), dtype=np.float32)


def _relu_train(z: np.ndarray, deriv: np.ndarray) -> None:
    np.maximum(z, _ZERO, out=z)
    # sign(relu(z)) is exactly the 0/1 mask, computed float to float (a
    # comparison writing float32 has to cast from bool and is slower).
    np.sign(z, out=deriv)


# ---- leaky relu -------------------------------------------------------------
def _leaky_relu_derivative(a: np.ndarray, out: np.ndarray) -> None:
    # a > 0 exactly when z > 0 because the negative slope keeps the sign.
    np.greater(a, 0, out=out)
    np.multiply(out, 1.0 - LEAKY_RELU_SLOPE, out=out)
    np.add(out, LEAKY_RELU_SLOPE, out=out)


def _leaky_relu(z: np.ndarray, out: np.ndarray) -> None:
    slope = np.empty_like(z)
    _leaky_relu_derivative(z, slope)
    np.multiply(z, slope, out=out)


def _leaky_relu_train(z: np.ndarray, deriv: np.ndarray) -> None:
    # f(z) = f'(z) * z for a piecewise-linear function through the origin.
    _leaky_relu_derivative(z, deriv)
    np.multiply(z, deriv, out=z)


# ---- tanh -------------------------------------------------------------------
def _tanh(z: np.ndarray, out: np.ndarray) -> None:
    np.tanh(z, out=out)


def _tanh_derivative(a: np.ndarray, out: np.ndarray) -> None:
    np.multiply(a, a, out=out)
    np.subtract(1.0, out, out=out)


# ---- logistic sigmoid -------------------------------------------------------
def _sigmoid(z: np.ndarray, out: np.ndarray) -> None:
    # 1 / (1 + exp(-z)); for z < -88 (float32) exp overflows to inf and the
    # result is the correct limit 0, so the overflow warning is harmless.
    with np.errstate(over="ignore"):
        np.negative(z, out=out)
        np.exp(out, out=out)
    np.add(out, 1.0, out=out)
    np.reciprocal(out, out=out)


def _sigmoid_derivative(a: np.ndarray, out: np.ndarray) -> None:
    np.subtract(1.0, a, out=out)
    np.multiply(out, a, out=out)


def _fused(forward: ArrayFn, derivative: ArrayFn | None) -> ArrayFn:
    def forward_train(z: np.ndarray, deriv: np.ndarray) -> None:
        forward(z, z)
        if derivative is not None:
            derivative(z, deriv)

    return forward_train


def _make(name: str, forward: ArrayFn, derivative: ArrayFn | None,
          forward_train: ArrayFn | None = None) -> Activation:
    return Activation(name, forward, derivative,
                      forward_train or _fused(forward, derivative))


#: Registry of hidden-layer activations by name.
ACTIVATIONS: dict[str, Activation] = {
    "relu": _make("relu", _relu, _relu_derivative, _relu_train),
    "leaky_relu": _make("leaky_relu", _leaky_relu, _leaky_relu_derivative,
                        _leaky_relu_train),
    "tanh": _make("tanh", _tanh, _tanh_derivative),
    "sigmoid": _make("sigmoid", _sigmoid, _sigmoid_derivative),
    "identity": _make("identity", _identity, None),
}


def get_activation(name: str) -> Activation:
    """Return the activation registered under ``name``.

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`ACTIVATIONS`.
    """
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}"
        ) from None
