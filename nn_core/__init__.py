"""nn_core: a feed-forward neural-network classifier written from scratch in NumPy.

The maths (layers, activations, loss, back-propagation, optimisers, schedules,
metrics) imports NumPy only; :class:`NeuralNetworkClassifier` wraps it in a
scikit-learn estimator.

>>> from nn_core import NeuralNetworkClassifier
>>> clf = NeuralNetworkClassifier(hidden_layer_sizes=(64, 32), random_state=0)
"""

from . import metrics
from .estimator import DivergenceWarning, NeuralNetworkClassifier
from .io import load_network, save_network
from .network import Network
from .training import EpochRecord, TrainConfig, Trainer, TrainResult

__all__ = [
    "DivergenceWarning",
    "EpochRecord",
    "Network",
    "NeuralNetworkClassifier",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "load",
    "load_network",
    "metrics",
    "save",
    "save_network",
]

__version__ = "0.1.0"


def save(model: NeuralNetworkClassifier, path) -> None:
    """Save a fitted :class:`NeuralNetworkClassifier` (same as ``model.save(path)``)."""
    model.save(path)


def load(path) -> NeuralNetworkClassifier:
    """Load a :class:`NeuralNetworkClassifier` saved with :func:`save`."""
    return NeuralNetworkClassifier.load(path)
