"""The playground's run configuration: one typed value per set of sidebar controls.

:class:`RunConfig` is what the sidebar produces and what a run is started
from. The sidebar widgets are bound to URL query parameters named after their
keys (Streamlit's ``bind="query-params"``), so the address bar always holds the
current set-up; :meth:`RunConfig.share_query` rebuilds such a link for a past
run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from nn_core import activations, initializers, optimizers, schedules

from .datasets import DATASET_NAMES

__all__ = ["ACTIVATIONS", "ALPHAS", "CLIP_NORMS", "DATASETS", "EPOCH_CHOICES", "FORMATS",
           "GENERATED", "INITIALIZERS", "LEARNING_RATES", "MAX_HIDDEN_LAYERS", "OPTIMIZERS",
           "SCHEDULES", "WIDGET_FIELDS", "RunConfig", "batch_choices", "fmt_clip",
           "fmt_number"]

DATASETS = (*DATASET_NAMES, "Upload CSV")
#: Data sets drawn by a generator (they take n_samples and noise).
GENERATED = frozenset({"Moons", "Circles", "XOR", "Spiral", "Gaussian blobs"})
#: Generated sets whose number of classes is a control.
MULTICLASS_GENERATED = frozenset({"Spiral", "Gaussian blobs"})
ACTIVATIONS = tuple(activations.ACTIVATIONS)  # option lists: the engine's registries
OPTIMIZERS = tuple(optimizers.OPTIMIZERS)
SCHEDULES = tuple(schedules.SCHEDULES)
INITIALIZERS = tuple(initializers.INITIALIZERS)
#: The learning-rate control is a log-scale choice between these.
LEARNING_RATES = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
#: L2 penalty choices (log-scale).
ALPHAS = (0.0, 0.00001, 0.0001, 0.001, 0.01, 0.1, 1.0)
#: Gradient-norm clipping choices (0: off).
CLIP_NORMS = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0)
#: Epoch choices (roughly log-scale, so 1 and 2000 are both a few steps away).
EPOCH_CHOICES = (1, 2, 3, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1000,
                 1500, 2000)
MAX_HIDDEN_LAYERS = 6


def batch_choices(n_train: int) -> list[int]:
    """Batch sizes offered for a training set of ``n_train`` samples.

    Powers of two up to the set's size, and the full set (plain gradient descent).
    """
    sizes = [2 ** k for k in range(0, 20) if 2 ** k < n_train]
    return [*sizes, max(1, n_train)]


@dataclass(frozen=True)
class RunConfig:
    """Everything the sidebar controls decide about a run."""

    dataset: str = "Digits"  # one of DATASETS
    n_samples: int = 500  # generated sets: number of points
    noise: float = 0.2  # generated sets: noise level (0 = clean)
    n_classes: int = 3  # spiral / blobs: number of classes
    test_size: int = 20  # percent of the data held out for the final test
    val_size: int = 10  # percent of the training data used for validation curves
    standardize: bool = True  # scale features to zero mean, unit variance (fit on train)
    n_layers: int = 2  # hidden layers, 0-6
    units: tuple[int, ...] = (64, 32, 16, 16, 16, 16)  # neurons of hidden layers 1-6
    activation: str = "relu"  # hidden activation
    init: str = initializers.DEFAULT_INITIALIZER  # weight initialisation (tutorial: Glorot)
    optimizer: str = "sgd"
    learning_rate: float = 0.01
    lr_schedule: str = "constant"
    batch_size: int = 32  # clipped to the training set at start
    epochs: int = 500
    alpha: float = 0.0  # L2 penalty
    dropout: float = 0.0  # dropout rate on hidden activations
    clip_norm: float = 0.0  # clip the gradient's global norm to this (0: off)
    early_stopping: bool = False  # stop when validation loss stalls (needs val_size > 0)
    seed: int = 0  # seeds the split, initial weights, shuffling and dropout
    label_column: str | None = None  # Upload CSV: which column holds the labels

    @property
    def hidden_layer_sizes(self) -> tuple[int, ...]:
        """Widths of the hidden layers in use."""
        return tuple(self.units[: self.n_layers])

    @property
    def architecture(self) -> str:
        """Hidden layers as text, e.g. ``"64-32"`` (``"none"`` without hidden layers)."""
        return "-".join(map(str, self.hidden_layer_sizes)) or "none"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["units"] = list(self.units)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Inverse of :meth:`to_dict`; unknown keys (a newer schema) are ignored,
        missing ones take their defaults, values are cast to the defaults' types."""
        default = cls()
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in d:
                continue
            value, like = d[f.name], getattr(default, f.name)
            if f.name == "units":
                value = tuple(int(u) for u in value)
            elif f.name == "label_column":
                value = None if value is None else str(value)
            else:
                value = type(like)(value)
            values[f.name] = value
        return cls(**values)

    def share_query(self) -> dict[str, str]:
        """URL query parameters that open this set-up in the playground.

        The sidebar's widgets are bound to query parameters named after their
        keys; this writes the values the way those widgets format them, leaving
        out defaults to keep links short.
        """
        default = RunConfig()
        out: dict[str, str] = {}
        for name in WIDGET_FIELDS:
            value = getattr(self, name)
            if value != getattr(default, name):
                out[name] = FORMATS.get(name, _fmt)(value)
        for i, units in enumerate(self.units[: self.n_layers], start=1):
            if units != default.units[i - 1]:
                out[f"units_{i}"] = str(units)
        return out


#: Fields set by one sidebar widget of the same key (``units`` is spread over
#: ``units_1`` .. ``units_6``; ``label_column`` exists only for uploads).
WIDGET_FIELDS = tuple(f.name for f in fields(RunConfig)
                      if f.name not in ("units", "label_column"))


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def fmt_number(value: float) -> str:
    """Short form of a learning rate or penalty: 0.001, 1e-05, 0."""
    return f"{value:g}"


def fmt_clip(value: float) -> str:
    """Gradient clipping: ``off`` or the norm."""
    return "off" if value == 0 else f"{value:g}"


#: Formatting of the sidebar widgets whose labels are not plain ``str``.
FORMATS = {"learning_rate": fmt_number, "alpha": fmt_number, "clip_norm": fmt_clip}
