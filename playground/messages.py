"""What crosses the pipe between the job runner and a worker: frozen dataclasses.

server -> worker
    :class:`StartJob` (a :class:`JobSpec` and its :class:`JobOptions`),
    :class:`PauseJob`, :class:`StopJob`, :class:`Shutdown`
worker -> server
    :class:`Ready`, :class:`Progress`, :class:`Paused` (the job left the worker
    with a checkpoint), :class:`Finished`, :class:`Failed`

Both ends are this project's own processes (a socket pair, pickled by
``multiprocessing.connection``); nothing a user sends is unpickled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nn_core.network import Network
from nn_core.training import EpochRecord, TrainConfig

from .evaluation import Evaluation
from .status import Status

__all__ = ["Failed", "Finished", "JobOptions", "JobSpec", "NetworkSpec", "PauseJob", "Paused",
           "Progress", "Ready", "Shutdown", "StartJob", "StopJob"]


@dataclass(frozen=True, kw_only=True)
class NetworkSpec:
    """The network a job trains: the arguments of :class:`nn_core.network.Network`."""

    n_features: int
    hidden_layer_sizes: tuple[int, ...]
    n_classes: int
    activation: str = "relu"
    init: str = "auto"  # an nn_core initializer name; "auto" = Glorot normal
    dtype: str = "float32"  # training precision

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """Inputs, each hidden layer's width, outputs."""
        return (self.n_features, *self.hidden_layer_sizes, self.n_classes)

    def build(self, rng: np.random.Generator) -> Network:
        """A freshly initialised network drawn from ``rng``."""
        return Network(self.n_features, self.hidden_layer_sizes, self.n_classes,
                       self.activation, self.init, np.dtype(self.dtype), rng)


@dataclass(frozen=True)
class JobSpec:
    """Everything a worker needs to train and evaluate one model.

    Labels are class indices ``0 .. n_classes - 1``; ``classes`` maps them to
    the labels shown to the user.
    """

    network: NetworkSpec
    train: TrainConfig  # optimiser, learning rate, batch size, epochs, ...
    seed: int  # seeds initialisation, shuffling and dropout
    X_train: np.ndarray  # (n_train, n_features)
    y_train: np.ndarray  # (n_train,) class indices
    X_test: np.ndarray  # (n_test, n_features); evaluated every few epochs
    y_test: np.ndarray  # (n_test,)
    classes: tuple  # label of each class index
    X_val: np.ndarray | None = None  # validation split (validation curves, early stopping)
    y_val: np.ndarray | None = None
    grid: np.ndarray | None = None  # (n_points, 2): decision-boundary grid for 2-D data
    meta: dict[str, Any] = field(default_factory=dict)  # stored in the saved model

    @property
    def n_params(self) -> int:
        """Weights and biases of the model this spec builds."""
        return Network.count_parameters(self.network.layer_sizes)


@dataclass(frozen=True)
class JobOptions:
    """How a worker runs a job (besides what to train)."""

    progress_interval: float = 0.1  # seconds between progress messages (throttle)
    eval_interval: float = 0.5  # seconds between test-set evaluations
    checkpoint: bytes | None = None  # resume from these nn_core.checkpoint bytes
    store_url: str | None = None  # the run store the worker writes the run to
    server_id: str | None = None  # the server that owns the run
    checkpoint_seconds: float = 5.0  # seconds between stored checkpoints
    max_seconds: float | None = None  # stop the job after this much training time


# ---- server -> worker ------------------------------------------------------------
@dataclass(frozen=True)
class StartJob:
    job_id: str
    spec: JobSpec
    options: JobOptions = JobOptions()


@dataclass(frozen=True)
class PauseJob:
    job_id: str


@dataclass(frozen=True)
class StopJob:
    job_id: str
    reason: str | None = None  # a sentence for the user; None: the user pressed Stop


@dataclass(frozen=True)
class Shutdown:
    pass


# ---- worker -> server ------------------------------------------------------------
@dataclass(frozen=True)
class Ready:
    pid: int


@dataclass(frozen=True)
class Progress:
    job_id: str
    records: tuple[EpochRecord, ...]
    evaluation: Evaluation | None


@dataclass(frozen=True)
class Paused:
    job_id: str
    checkpoint: bytes
    message: str


@dataclass(frozen=True)
class Finished:
    job_id: str
    status: Status
    message: str
    evaluation: Evaluation | None
    model: bytes | None  # nn_core .npz bytes


@dataclass(frozen=True)
class Failed:
    job_id: str
    message: str
