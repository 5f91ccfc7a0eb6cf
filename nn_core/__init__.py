"""nn_core: a feed-forward neural-network classifier written from scratch in NumPy.

The maths (layers, activations, loss, back-propagation, optimisers, schedules,
metrics) imports NumPy only; :class:`NeuralNetworkClassifier` wraps it in a
scikit-learn estimator and is imported lazily, so code that only trains a
:class:`Network` with a :class:`Trainer` (e.g. the playground's worker
processes) never loads scikit-learn. :mod:`nn_core.textbook` is the same
engine written the way the maths reads (samples as rows, forward and backward
side by side, no buffers); the tests check the fast path against it.

>>> from nn_core import NeuralNetworkClassifier
>>> clf = NeuralNetworkClassifier(hidden_layer_sizes=(64, 32), random_state=0)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import metrics
from .checkpoint import checkpoint_from_bytes, checkpoint_to_bytes
from .io import load_network, save_network
from .network import Network
from .training import Checkpoint, EpochRecord, TrainConfig, Trainer, TrainResult

if TYPE_CHECKING:
    from .estimator import DivergenceWarning, NeuralNetworkClassifier

__all__ = [
    "Checkpoint",
    "DivergenceWarning",
    "EpochRecord",
    "Network",
    "NeuralNetworkClassifier",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "checkpoint_from_bytes",
    "checkpoint_to_bytes",
    "load",
    "load_network",
    "metrics",
    "save",
    "save_network",
]

__version__ = "0.1.0"

_LAZY = {"NeuralNetworkClassifier", "DivergenceWarning"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import estimator

        return getattr(estimator, name)
    raise AttributeError(f"module 'nn_core' has no attribute {name!r}")


def save(model: NeuralNetworkClassifier, path) -> None:
    """Save a fitted :class:`NeuralNetworkClassifier` (same as ``model.save(path)``)."""
    model.save(path)


def load(path) -> NeuralNetworkClassifier:
    """Load a :class:`NeuralNetworkClassifier` saved with :func:`save`."""
    from .estimator import NeuralNetworkClassifier

    return NeuralNetworkClassifier.load(path)
