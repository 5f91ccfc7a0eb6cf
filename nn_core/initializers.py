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

``"auto"`` is :data:`DEFAULT_INITIALIZER`, Glorot/Xavier normal, whatever the
activation: the tutorial's choice, and on small tabular data sets (iris, wine,
breast cancer; ``bench/sklearn_parity.py``) as accurate as scikit-learn, which
also uses Glorot. He (``he_normal``, ``he_uniform``) keeps the activations'
variance constant through deep ReLU stacks, where half the units are zero; it
is one choice away. Biases always start at zero.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["DEFAULT_INITIALIZER", "INITIALIZERS", "get_initializer", "resolve_init"]

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

#: What ``init="auto"`` means: the tutorial's Glorot/Xavier normal.
DEFAULT_INITIALIZER = "glorot_normal"


def resolve_init(init: str) -> str:
    """Turn ``"auto"`` into :data:`DEFAULT_INITIALIZER`; check any other name."""
    if init == "auto":
        return DEFAULT_INITIALIZER
    if init not in INITIALIZERS:
        raise ValueError(
            f"init must be 'auto' or one of {sorted(INITIALIZERS)}, got {init!r}"
        )
    return init


def get_initializer(init: str) -> Initializer:
    """Return the initialiser function for ``init`` (``"auto"`` resolved)."""
    return INITIALIZERS[resolve_init(init)]
