"""Weight initialisers.

Each initialiser takes a :class:`numpy.random.Generator` and a layer shape and
returns a float64 ``(n_in, n_out)`` array; the caller casts it to the network's
dtype. Drawing in float64 first means a float32 and a float64 network built from
the same seed start from the same weights (up to rounding).

=================  ==========================================  =====================
name               distribution                                variance
=================  ==========================================  =====================
``glorot_normal``  N(0, 2 / (n_in + n_out))                    2 / (n_in + n_out)
``glorot_uniform`` U(-sqrt(6 / (n_in + n_out)), +...)          2 / (n_in + n_out)
``he_normal``      N(0, 2 / n_in)                              2 / n_in
``he_uniform``     U(-sqrt(6 / n_in), +...)                    2 / n_in
=================  ==========================================  =====================

``"auto"`` picks He for the ReLU family (it keeps the activations' variance
constant when half of the units are zero) and Glorot otherwise.
Biases always start at zero.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["INITIALIZERS", "get_initializer", "resolve_init"]

Initializer = Callable[[np.random.Generator, int, int], np.ndarray]


def glorot_normal(rng: np.random.Generator, n_in: int, n_out: int) -> np.ndarray:
    """Glorot/Xavier normal: ``N(0, 2 / (n_in + n_out))``."""
    return rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / (n_in + n_out))


def glorot_uniform(rng: np.random.Generator, n_in: int, n_out: int) -> np.ndarray:
    """Glorot/Xavier uniform on ``[-sqrt(6 / (n_in + n_out)), +sqrt(...)]``."""
    limit = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-limit, limit, size=(n_in, n_out))


def he_normal(rng: np.random.Generator, n_in: int, n_out: int) -> np.ndarray:
    """He/Kaiming normal: ``N(0, 2 / n_in)``."""
    return rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)


def he_uniform(rng: np.random.Generator, n_in: int, n_out: int) -> np.ndarray:
    """He/Kaiming uniform on ``[-sqrt(6 / n_in), +sqrt(6 / n_in)]``."""
    limit = np.sqrt(6.0 / n_in)
    return rng.uniform(-limit, limit, size=(n_in, n_out))


#: Registry of initialisers by name.
INITIALIZERS: dict[str, Initializer] = {
    "glorot_normal": glorot_normal,
    "glorot_uniform": glorot_uniform,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
}

_RELU_FAMILY = frozenset({"relu", "leaky_relu"})


def resolve_init(init: str, activation: str) -> str:
    """Turn ``"auto"`` into a concrete initialiser name for ``activation``."""
    if init == "auto":
        return "he_normal" if activation in _RELU_FAMILY else "glorot_normal"
    if init not in INITIALIZERS:
        raise ValueError(
            f"init must be 'auto' or one of {sorted(INITIALIZERS)}, got {init!r}"
        )
    return init


def get_initializer(init: str, activation: str) -> Initializer:
    """Return the initialiser function for ``init`` (``"auto"`` resolved)."""
    return INITIALIZERS[resolve_init(init, activation)]
