"""Mini-batch training: the :class:`Trainer`, its configuration and its records.

The trainer owns everything around the maths: shuffling, batching, the
learning-rate schedule, L2, clipping, epoch records, callbacks, early stopping,
divergence handling and stop requests. :meth:`Trainer.fit` is a loop over
three named steps: :meth:`Trainer._train_batches` (one epoch's mini-batches),
:class:`FoldedUpdate` (one update) and :meth:`Trainer._end_epoch` (loss,
divergence, record, schedule, early stopping, callbacks). The maths of one
batch lives in :meth:`nn_core.network.Network.train_batch`;
:func:`nn_core.textbook.train` is the same loop written as the maths reads,
and the tests check that both give the same numbers.

Speed notes (each is what makes a 32-sample step cost little more than its
eight matrix products):

* The data are gathered into shuffled order once per epoch (or per batch for
  large data sets), so a batch is a ready-made view.
* One-hot targets, already multiplied by the gradient scale, are laid out per
  batch once per epoch.
* The per-sample loss terms land in epoch-long buffers; the logarithm, mean and
  accuracy are computed once per epoch.
* For SGD, momentum and Nesterov the learning rate is folded into the output
  delta; that trick is all in :class:`FoldedUpdate`.

Checkpoints: everything that evolves from epoch to epoch (weights, optimiser
moments, the plateau schedule, the early-stopping tracker, the random
generator, the clock and the records) lives on the :class:`Trainer`, never in
the per-call :class:`_Fit`, and :meth:`Trainer.fit` always returns at an
epoch boundary. So :meth:`Trainer.checkpoint` taken after any epoch, restored
into a new trainer with :meth:`Trainer.restore`, continues exactly as the
original run would have (bytes: :mod:`nn_core.checkpoint`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, NamedTuple

import numpy as np

from .losses import OutputTargets, cross_entropy
from .network import Network, Workspace
from .optimizers import OPTIMIZERS, Optimizer, OptimizerState, _frozen_copy
from .schedules import SCHEDULES, PlateauState, ReduceOnPlateau

__all__ = ["DIVERGED_ADVICE", "Batch", "Checkpoint", "EarlyStoppingState", "EpochRecord",
           "FoldedUpdate", "TrainConfig", "TrainResult", "Trainer"]

#: Shown whenever training diverges.
DIVERGED_ADVICE = (
    "Lower the learning rate (try 10x smaller), switch to the adam optimizer, "
    "or enable gradient clipping; standardising the features also helps."
)

# Below this size the whole shuffled training set is gathered once per epoch
# (one NumPy call instead of one per batch); above it, rows are gathered per
# batch so training never holds a second full copy of a large data set.
_EPOCH_GATHER_BYTES = 16 * 2**20

# The bit generators a checkpoint may name (numpy.random attributes): a closed
# list, so a checkpoint read from bytes cannot make us look up anything else.
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def _is_num(v: object) -> bool:
    """A finite real number (bools excluded)."""
    return isinstance(v, (int, float, np.integer, np.floating)) and \
        not isinstance(v, bool) and math.isfinite(float(v))


def _is_int(v: object) -> bool:
    """An integer (bools excluded)."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a training run (everything except the architecture)."""

    optimizer: str = "sgd"  # sgd | momentum | nesterov | adam | rmsprop
    learning_rate: float = 0.01  # initial step size (> 0)
    batch_size: int = 32  # samples per mini-batch; clipped to the training-set size
    epochs: int = 100  # planned passes over the training set (also the schedules' horizon)
    alpha: float = 0.0  # L2 penalty: loss += alpha / 2 * sum of squared weights (not biases)
    dropout: float = 0.0  # inverted-dropout rate on hidden activations, in [0, 0.9]
    momentum: float = 0.9  # momentum / nesterov coefficient, in [0, 1)
    beta_1: float = 0.9  # adam: decay of the first-moment estimate, in [0, 1)
    beta_2: float = 0.999  # adam: decay of the second-moment estimate, in [0, 1)
    epsilon: float = 1e-8  # adam / rmsprop: added to the denominator (> 0)
    rho: float = 0.9  # rmsprop: decay of the squared-gradient average, in [0, 1)
    lr_schedule: str = "constant"  # constant | step | cosine | invscaling | plateau
    lr_decay: float = 0.5  # step / plateau: factor applied at each cut, in (0, 1)
    lr_step_size: int | None = None  # step: epochs between cuts; None = epochs // 4
    lr_patience: int = 5  # plateau: epochs without improvement before a cut
    lr_min: float = 0.0  # cosine / plateau: floor of the learning rate
    power_t: float = 0.5  # invscaling: exponent
    clip_norm: float | None = None  # clip the global gradient norm to this (None: off)
    early_stopping: bool = False  # stop when validation loss stalls; restore best weights
    n_iter_no_change: int = 10  # early stopping: patience in epochs
    tol: float = 1e-4  # early stopping: minimum decrease of validation loss that counts
    shuffle: bool = True  # reshuffle the training set every epoch

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid hyper-parameter."""
        def bad(name: str, rule: str) -> ValueError:
            return ValueError(f"{name} must be {rule}, got {getattr(self, name)!r}")

        is_num, is_int = _is_num, _is_int

        if self.optimizer not in OPTIMIZERS:
            raise bad("optimizer", f"one of {list(OPTIMIZERS)}")
        if self.lr_schedule not in SCHEDULES:
            raise bad("lr_schedule", f"one of {list(SCHEDULES)}")
        if not is_num(self.learning_rate) or self.learning_rate <= 0:
            raise bad("learning_rate", "> 0")
        if not is_int(self.batch_size) or self.batch_size < 1:
            raise bad("batch_size", "an integer >= 1")
        if not is_int(self.epochs) or self.epochs < 1:
            raise bad("epochs", "an integer >= 1")
        if not is_num(self.alpha) or self.alpha < 0:
            raise bad("alpha", ">= 0")
        if not is_num(self.dropout) or not 0 <= self.dropout <= 0.9:
            raise bad("dropout", "between 0 and 0.9")
        for name in ("momentum", "beta_1", "beta_2", "rho"):
            v = getattr(self, name)
            if not is_num(v) or not 0 <= v < 1:
                raise bad(name, "in [0, 1)")
        if not is_num(self.epsilon) or self.epsilon <= 0:
            raise bad("epsilon", "> 0")
        if not is_num(self.lr_decay) or not 0 < self.lr_decay < 1:
            raise bad("lr_decay", "in (0, 1)")
        if self.lr_step_size is not None and (not is_int(self.lr_step_size)
                                              or self.lr_step_size < 1):
            raise bad("lr_step_size", "None or an integer >= 1")
        if not is_int(self.lr_patience) or self.lr_patience < 1:
            raise bad("lr_patience", "an integer >= 1")
        if not is_num(self.lr_min) or self.lr_min < 0:
            raise bad("lr_min", ">= 0")
        if not is_num(self.power_t) or self.power_t < 0:
            raise bad("power_t", ">= 0")
        if self.clip_norm is not None and (not is_num(self.clip_norm)
                                           or self.clip_norm <= 0):
            raise bad("clip_norm", "None or > 0")
        if not is_int(self.n_iter_no_change) or self.n_iter_no_change < 1:
            raise bad("n_iter_no_change", "an integer >= 1")
        if not is_num(self.tol) or self.tol < 0:
            raise bad("tol", ">= 0")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of all configuration fields."""
        return tuple(f.name for f in fields(cls))


@dataclass(frozen=True, slots=True)
class EpochRecord:
    """What happened in one epoch; handed to callbacks, kept in ``history``.

    Loss and accuracy on the training set are averages over the epoch's
    mini-batches, measured as they were trained (as scikit-learn's
    ``loss_curve_`` and Keras do); validation figures use the weights at the
    end of the epoch. Losses are mean cross-entropy without the L2 term, so
    training and validation curves are comparable.
    """

    epoch: int  # 1-based, counted over the trainer's whole life
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    learning_rate: float
    elapsed: float  # seconds of training so far (callbacks excluded)
    epoch_seconds: float
    samples_per_second: float
    weight_norms: tuple[float, ...]  # Frobenius norm of each layer's W
    grad_norms: tuple[float, ...]  # norm of each layer's dW on the epoch's last batch

    def to_dict(self) -> dict:
        """The record as a plain dict (JSON-serialisable)."""
        d = asdict(self)
        d["weight_norms"] = list(self.weight_norms)
        d["grad_norms"] = list(self.grad_norms)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EpochRecord:
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        ValueError
            If a key is missing or unknown, or a value is not a finite number
            of the right kind (``val_loss``/``val_accuracy`` may be ``None``).
        """
        if not isinstance(d, Mapping):
            raise ValueError(f"an epoch record must be a mapping, got {type(d).__name__}")
        names = [f.name for f in fields(cls)]
        if set(d) != set(names):
            raise ValueError(f"an epoch record needs exactly the keys {names}, got "
                             f"{sorted(map(str, d))}")

        def number(key: str) -> float:
            if not _is_num(d[key]):
                raise ValueError(f"epoch record {key} must be a finite number, got "
                                 f"{d[key]!r}")
            return float(d[key])

        def norms(key: str) -> tuple[float, ...]:
            v = d[key]
            if not isinstance(v, (list, tuple)) or not all(_is_num(x) for x in v):
                raise ValueError(f"epoch record {key} must be a list of finite numbers")
            return tuple(float(x) for x in v)

        epoch = d["epoch"]
        if not _is_int(epoch) or epoch < 1:
            raise ValueError(f"epoch record epoch must be an integer >= 1, got {epoch!r}")
        return cls(epoch=int(epoch), train_loss=number("train_loss"),
                   train_accuracy=number("train_accuracy"),
                   val_loss=None if d["val_loss"] is None else number("val_loss"),
                   val_accuracy=None if d["val_accuracy"] is None else number("val_accuracy"),
                   learning_rate=number("learning_rate"), elapsed=number("elapsed"),
                   epoch_seconds=number("epoch_seconds"),
                   samples_per_second=number("samples_per_second"),
                   weight_norms=norms("weight_norms"), grad_norms=norms("grad_norms"))


@dataclass(frozen=True)
class TrainResult:
    """How a call to :meth:`Trainer.fit` ended."""

    status: str  # "completed" | "early_stopped" | "stopped" | "diverged"
    message: str
    epochs_run: int
    best_epoch: int | None = None
    records: tuple[EpochRecord, ...] = field(default=(), repr=False)


Callback = Callable[[EpochRecord], "bool | None"]


@dataclass(frozen=True, eq=False)
class EarlyStoppingState:
    """The best-validation tracker of a :class:`Trainer` (for checkpoints).

    It is kept whenever there are validation data (``TrainResult.best_epoch``
    comes from it); ``best_params`` only with ``config.early_stopping``.
    """

    best_val: float = math.inf  # lowest validation loss so far (inf: none yet)
    best_epoch: int | None = None  # the epoch that reached it
    no_improve: int = 0  # epochs since it last improved by more than config.tol
    best_params: np.ndarray | None = field(default=None, repr=False)  # (n_params,)

    def __post_init__(self) -> None:
        if not isinstance(self.best_val, (int, float)) or math.isnan(self.best_val) \
                or self.best_val == -math.inf:
            raise ValueError("early-stopping best_val must be a number or +inf, got "
                             f"{self.best_val!r}")
        if self.best_epoch is not None and (not _is_int(self.best_epoch)
                                            or self.best_epoch < 1):
            raise ValueError("early-stopping best_epoch must be None or an integer >= 1, "
                             f"got {self.best_epoch!r}")
        if (self.best_epoch is None) != math.isinf(self.best_val):
            raise ValueError("early-stopping best_epoch and best_val must be both set "
                             "or both unset")
        if not _is_int(self.no_improve) or self.no_improve < 0:
            raise ValueError("early-stopping no_improve must be an integer >= 0, got "
                             f"{self.no_improve!r}")
        if self.best_params is not None:
            if self.best_epoch is None:
                raise ValueError("early-stopping best_params without a best_epoch")
            object.__setattr__(self, "best_params", _frozen_copy(self.best_params))


class _EarlyStopping:
    """Mutable best-validation tracker behind :class:`EarlyStoppingState`."""

    def __init__(self, tol: float, keep_params: bool) -> None:
        self.tol = tol
        self.keep_params = keep_params  # only early stopping restores weights
        self.best_val = math.inf
        self.best_epoch: int | None = None
        self.no_improve = 0
        self.best_params: np.ndarray | None = None

    def update(self, val_loss: float, epoch: int, params: np.ndarray) -> None:
        """Record the validation loss of ``epoch`` (its weights are ``params``)."""
        if val_loss < self.best_val - self.tol:
            self.best_val, self.best_epoch, self.no_improve = val_loss, epoch, 0
            if self.keep_params:
                if self.best_params is None:
                    self.best_params = params.copy()
                else:
                    np.copyto(self.best_params, params)
        else:
            self.no_improve += 1

    def get_state(self) -> EarlyStoppingState:
        return EarlyStoppingState(float(self.best_val), self.best_epoch, self.no_improve,
                                  self.best_params)

    def set_state(self, state: EarlyStoppingState) -> None:
        self.best_val, self.best_epoch = state.best_val, state.best_epoch
        self.no_improve = state.no_improve
        self.best_params = None if state.best_params is None \
            else np.array(state.best_params, copy=True)


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """A :class:`Trainer` at the end of epoch ``epoch``, ready to start the next.

    Built by :meth:`Trainer.checkpoint`, used by :meth:`Trainer.restore`, turned
    into bytes and back by :mod:`nn_core.checkpoint`. Arrays are read-only
    copies. Construction checks that the parts agree with each other (sizes,
    dtypes, the history's length) and raises ``ValueError`` otherwise; it does
    not hold the training data or the :class:`TrainConfig`, which the caller
    keeps (a resumed run must use the same ones to follow the same path).
    """

    epoch: int  # epochs completed; the resumed run starts with epoch + 1
    layer_sizes: tuple[int, ...]  # (n_features, *hidden_layer_sizes, n_classes)
    activation: str  # hidden activation of the network
    dtype: str  # "float32" | "float64": of params and every state array
    params: np.ndarray = field(repr=False)  # (n_params,) the weights training continues from
    optimizer: OptimizerState = field(repr=False)  # moments / velocity and step count
    plateau: PlateauState = field(repr=False)  # the plateau schedule's rate and counters
    early_stopping: EarlyStoppingState = field(repr=False)
    elapsed: float  # seconds of training so far (callbacks excluded)
    rng_state: Mapping[str, Any] = field(repr=False)  # rng.bit_generator.state, JSON-able
    history: tuple[EpochRecord, ...] = field(repr=False)  # every epoch so far, 1..epoch

    def __post_init__(self) -> None:
        parts = (("optimizer", OptimizerState), ("plateau", PlateauState),
                 ("early_stopping", EarlyStoppingState))
        for name, kind in parts:
            if not isinstance(getattr(self, name), kind):
                raise ValueError(f"checkpoint {name} must be a {kind.__name__}, got "
                                 f"{type(getattr(self, name)).__name__}")
        if not _is_int(self.epoch) or self.epoch < 0:
            raise ValueError(f"checkpoint epoch must be an integer >= 0, got {self.epoch!r}")
        sizes = self.layer_sizes
        if not isinstance(sizes, tuple) or len(sizes) < 2 or \
                not all(_is_int(n) and n >= 1 for n in sizes):
            raise ValueError(f"checkpoint layer_sizes must be a tuple of >= 2 positive "
                             f"integers, got {sizes!r}")
        if not isinstance(self.activation, str):
            raise ValueError(f"checkpoint activation must be a string, got {self.activation!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"checkpoint dtype must be 'float32' or 'float64', got "
                             f"{self.dtype!r}")
        if self.optimizer.name not in OPTIMIZERS:
            raise ValueError(f"checkpoint optimizer must be one of {list(OPTIMIZERS)}, "
                             f"got {self.optimizer.name!r}")
        n_params = Network.count_parameters(sizes)
        arrays = {"params": self.params, "best_params": self.early_stopping.best_params}
        arrays.update({f"optimizer {k!r}": a for k, a in self.optimizer.arrays.items()})
        for what, a in arrays.items():
            if a is not None and (not isinstance(a, np.ndarray) or a.dtype != self.dtype
                                  or a.shape != (n_params,)):
                raise ValueError(
                    f"checkpoint {what} must be a {self.dtype} vector of the "
                    f"{n_params} parameters of layers {list(sizes)}, got "
                    f"{getattr(a, 'dtype', type(a).__name__)} of shape "
                    f"{getattr(a, 'shape', None)}")
        best = self.early_stopping.best_epoch
        if best is not None and best > self.epoch:
            raise ValueError(f"checkpoint best epoch {best} is after its epoch {self.epoch}")
        if not _is_num(self.elapsed) or self.elapsed < 0:
            raise ValueError(f"checkpoint elapsed must be a finite number >= 0, got "
                             f"{self.elapsed!r}")
        if not isinstance(self.history, tuple) or \
                not all(isinstance(r, EpochRecord) for r in self.history) or \
                [r.epoch for r in self.history] != list(range(1, self.epoch + 1)):
            raise ValueError(f"checkpoint history must be the EpochRecords of epochs 1 to "
                             f"{self.epoch}, in order")
        object.__setattr__(self, "params", _frozen_copy(self.params))
        object.__setattr__(self, "rng_state", _checked_rng_state(self.rng_state))

    def __repr__(self) -> str:
        return (f"Checkpoint(epoch={self.epoch}, layer_sizes={self.layer_sizes}, "
                f"activation={self.activation!r}, dtype={self.dtype!r}, "
                f"optimizer={self.optimizer.name!r}, elapsed={self.elapsed:.3g})")


def _jsonable(obj: Any) -> Any:
    """``bit_generator.state`` with arrays as lists and NumPy scalars as Python ones."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _checked_rng_state(state: Any) -> dict[str, Any]:
    """A JSON-able deep copy of a bit generator's state, proven loadable."""
    name = state.get("bit_generator") if isinstance(state, Mapping) else None
    if name not in _BIT_GENERATORS:
        raise ValueError(f"checkpoint rng_state must be the state of one of the bit "
                         f"generators {list(_BIT_GENERATORS)}, got "
                         f"{name if name is not None else type(state).__name__!r}")
    state = _jsonable(state)  # builds new containers: a deep copy
    try:
        # Loading it into a scratch generator is the only complete check.
        getattr(np.random, name)().state = state
    except (TypeError, ValueError, KeyError, IndexError, OverflowError,
            AttributeError) as exc:
        raise ValueError(f"checkpoint rng_state is not a valid {name} state: {exc}") from None
    return state


def _check_arrays(network: Network, X: np.ndarray, y: np.ndarray,
                  what: str) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"{what} X must be 2-D (n_samples, n_features), "
                         f"got an array of shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{what} X must be numeric, got dtype {X.dtype}")
    if X.shape[0] == 0:
        raise ValueError(f"{what} X has no samples")
    if X.shape[1] != network.n_features:
        raise ValueError(f"{what} X has {X.shape[1]} features, but the network "
                         f"expects {network.n_features}")
    X = np.ascontiguousarray(X, dtype=network.dtype)
    # min and max propagate NaN and expose inf without a temporary the size of X.
    if not (math.isfinite(X.min()) and math.isfinite(X.max())):
        raise ValueError(f"{what} X contains NaN or infinity; impute or drop "
                         "those values first")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"{what} y must be 1-D with one label per row of X "
                         f"({X.shape[0]}), got shape {y.shape}")
    if y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= network.n_classes:
        raise ValueError(f"{what} y must hold class indices in "
                         f"[0, {network.n_classes})")
    return X, y.astype(np.intp, copy=False)


class Trainer:
    """Trains a :class:`~nn_core.network.Network` with mini-batch gradient descent.

    Parameters
    ----------
    network : Network
        The model; its parameters are updated in place.
    config : TrainConfig
        Hyper-parameters (validated here).
    rng : numpy.random.Generator
        Source of shuffling and dropout randomness.
    callbacks : iterable of callables
        Each is called with every :class:`EpochRecord`; returning ``True``
        stops training after that epoch.

    Attributes
    ----------
    history : list of EpochRecord
        Every epoch trained so far, across calls to :meth:`fit`.
    epoch : int
        Epochs completed so far, across calls to :meth:`fit`.
    optimizer : nn_core.optimizers.Optimizer
        Keeps its state (moments, velocities) across calls to :meth:`fit`.

    Notes
    -----
    All state lives on the trainer, so several calls to :meth:`fit` follow
    the same path as one call with the same total number of epochs, and
    :meth:`checkpoint` / :meth:`restore` carry a run across processes. That
    includes the best-validation tracker: once early stopping has triggered,
    later calls return at once.
    """

    def __init__(self, network: Network, config: TrainConfig | None = None,
                 rng: np.random.Generator | None = None,
                 callbacks: Iterable[Callback] = ()) -> None:
        config = config or TrainConfig()
        config.validate()
        self.network = network
        self.config = config
        self.rng = rng if rng is not None else np.random.default_rng()
        self.callbacks = list(callbacks)
        self.optimizer = OPTIMIZERS[config.optimizer].from_config(config)
        self.history: list[EpochRecord] = []
        self.epoch = 0  # epochs completed, drives the schedule
        self._elapsed = 0.0
        self._plateau = ReduceOnPlateau(config.learning_rate, config.lr_decay,
                                        config.lr_patience, config.lr_min)
        self._early = _EarlyStopping(config.tol, keep_params=config.early_stopping)
        # Set when fit handed back the best weights instead of the last ones:
        # the weights training continues from (and a checkpoint holds).
        self._live_params: np.ndarray | None = None
        self._stop_requested = False

    def __repr__(self) -> str:
        return (f"Trainer(epoch={self.epoch}/{self.config.epochs}, "
                f"optimizer={self.config.optimizer!r}, layers={self.network.layer_sizes})")

    @property
    def remaining_epochs(self) -> int:
        """Epochs still planned: ``config.epochs - epoch`` (at least 0).

        What :meth:`fit` runs when it is not given ``epochs``.
        """
        return max(0, self.config.epochs - self.epoch)

    # ---- checkpoints -----------------------------------------------------
    def checkpoint(self) -> Checkpoint:
        """The state at the end of the last completed epoch, as copies.

        Call it between epochs: from a callback (which runs at the end of an
        epoch, before anything of the next one is drawn) or after :meth:`fit`
        returns (it always returns at an epoch boundary). Restoring it with
        :meth:`restore` in a trainer built with the same network architecture
        and :class:`TrainConfig`, then calling :meth:`fit` with the same data,
        trains exactly as this trainer would.

        Returns
        -------
        Checkpoint
            If :meth:`fit` handed back the best epoch's weights (early
            stopping), ``params`` are the last weights, the ones training
            continues from; the best ones are in ``early_stopping``.
        """
        net = self.network
        params = net.params if self._live_params is None else self._live_params
        return Checkpoint(epoch=self.epoch, layer_sizes=net.layer_sizes,
                          activation=net.activation, dtype=net.dtype.name, params=params,
                          optimizer=self.optimizer.get_state(),
                          plateau=self._plateau.get_state(),
                          early_stopping=self._early.get_state(), elapsed=self._elapsed,
                          rng_state=self.rng.bit_generator.state,
                          history=tuple(self.history))

    def restore(self, checkpoint: Checkpoint) -> None:
        """Continue from ``checkpoint``: the next :meth:`fit` starts its epoch + 1.

        Sets the network's parameters, the optimiser, the plateau schedule,
        the early-stopping tracker, the state of this trainer's generator
        (in place), ``epoch``, the elapsed time and ``history``. A following
        ``fit(X, y, X_val, y_val)`` without ``epochs`` runs the
        :attr:`remaining_epochs` of ``config.epochs``.

        Parameters
        ----------
        checkpoint : Checkpoint
            From :meth:`checkpoint` or :func:`nn_core.checkpoint.checkpoint_from_bytes`.

        Raises
        ------
        ValueError
            If the checkpoint does not fit this trainer: other layer sizes,
            activation or dtype than the network, another optimizer than
            ``config.optimizer``, or another bit generator than ``rng``'s.
            Nothing is changed then.
        """
        cp = checkpoint
        if not isinstance(cp, Checkpoint):
            raise TypeError(f"restore needs a Checkpoint, got {type(cp).__name__}")
        net = self.network
        mismatches = [
            (what, theirs, ours) for what, theirs, ours in (
                ("layer sizes", list(cp.layer_sizes), list(net.layer_sizes)),
                ("activation", cp.activation, net.activation),
                ("dtype", cp.dtype, net.dtype.name),
                ("optimizer", cp.optimizer.name, self.config.optimizer),
                ("bit generator", cp.rng_state["bit_generator"],
                 type(self.rng.bit_generator).__name__))
            if theirs != ours]
        if mismatches:
            raise ValueError("the checkpoint does not fit this trainer: " + "; ".join(
                f"its {what} is {theirs!r}, the trainer's is {ours!r}"
                for what, theirs, ours in mismatches))
        # Everything below was validated (here and when the Checkpoint was
        # built), so the trainer is never left half-restored.
        self.optimizer.set_state(cp.optimizer, net.params)
        self._plateau.set_state(cp.plateau)
        self._early.set_state(cp.early_stopping)
        self.rng.bit_generator.state = cp.rng_state
        np.copyto(net.params, cp.params)
        self._live_params = None
        self.epoch = cp.epoch
        self._elapsed = cp.elapsed
        self.history = list(cp.history)

    # ---- control ---------------------------------------------------------
    def request_stop(self) -> None:
        """Ask a running :meth:`fit` to stop after the current mini-batch.

        Safe to call from another thread.
        """
        self._stop_requested = True

    def learning_rate_at(self, epoch: int) -> float:
        """The learning rate the schedule gives epoch ``epoch`` (0-based)."""
        rule = SCHEDULES[self.config.lr_schedule]
        return self._plateau.lr if rule is None else rule(self.config, epoch)

    # ---- training --------------------------------------------------------
    def fit(self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None = None,
            y_val: np.ndarray | None = None, epochs: int | None = None) -> TrainResult:
        """Train for ``epochs`` more epochs (default: the rest of ``config.epochs``).

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Training inputs (finite numbers).
        y : array of int, shape (n_samples,)
            Class indices in ``[0, n_classes)``.
        X_val, y_val : arrays of shape (n_val, n_features) and (n_val,), optional
            Validation data: adds validation loss/accuracy to the records and
            is required for early stopping.
        epochs : int, optional
            Epochs to run in this call (>= 0). By default the
            :attr:`remaining_epochs`, ``config.epochs - epoch``: all of them on
            a new trainer, the rest after :meth:`restore` or after an earlier
            call that stopped, none once the plan is done.

        Returns
        -------
        TrainResult
            ``status`` is ``"completed"``, ``"early_stopped"``, ``"stopped"``
            (by :meth:`request_stop` or a callback) or ``"diverged"`` (the
            loss became infinite or NaN; the weights of the last finite epoch
            are restored, so predictions stay finite). A stop requested in
            mid-epoch undoes that epoch's partial updates (weights, optimiser
            and generator), so the trainer always ends at an epoch boundary,
            in step with ``history``. With early stopping the network gets the
            best epoch's weights; the next call (or :meth:`checkpoint`)
            continues from the last ones.
        """
        run = self._start_fit(X, y, X_val, y_val, epochs)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            for _ in range(run.n_epochs):
                ending = self._epoch(run)
                if ending is not None:
                    run.ending = ending
                    break
        return self._end_fit(run)

    def _start_fit(self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None,
                   y_val: np.ndarray | None, epochs: int | None) -> _Fit:
        """Check the data and set up one call to :meth:`fit`."""
        cfg, net = self.config, self.network
        X, y = _check_arrays(net, X, y, "training")
        if X_val is not None:
            X_val, y_val = _check_arrays(net, X_val, y_val, "validation")
        elif cfg.early_stopping:
            raise ValueError("early_stopping needs validation data (X_val, y_val)")
        n_epochs = self.remaining_epochs if epochs is None else int(epochs)
        if n_epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {n_epochs}")
        self._stop_requested = False
        if self._live_params is not None:
            # The last call handed back the best weights; resume from the last.
            np.copyto(net.params, self._live_params)
            self._live_params = None
        ending = _Ending("completed", f"Trained {n_epochs} epochs." if n_epochs else
                         f"Nothing to train: {self.epoch} epochs done, {cfg.epochs} planned.")
        if cfg.early_stopping and self._early.no_improve >= cfg.n_iter_no_change:
            # Triggered at the end of the last call's final epoch (e.g. the
            # checkpoint was taken in that epoch's callback): stop as it would have.
            n_epochs = 0
            ending = _Ending("early_stopped", f"Early stopping had already triggered after "
                             f"epoch {self.epoch}; restored the weights of epoch "
                             f"{self._early.best_epoch}.")
        plan = _EpochPlan(net, X, y, min(cfg.batch_size, X.shape[0]), cfg.dropout, self.rng,
                          cfg.shuffle)
        return _Fit(X, X_val, y_val, n_epochs, plan, FoldedUpdate(net, self.optimizer, cfg),
                    net.params.copy(), ending)

    def _epoch(self, run: _Fit) -> _Ending | None:
        """Train one epoch and close it; how training ends, or ``None`` to go on."""
        t0 = time.perf_counter()
        lr = self.learning_rate_at(self.epoch)
        # The epoch boundary that a stop in mid-epoch rolls back to, taken
        # before the epoch draws its shuffle (and a divergence, to its weights).
        np.copyto(run.last_good, self.network.params)
        optimizer_before, rng_before = self.optimizer.get_state(), self.rng.bit_generator.state
        if not self._train_batches(run, lr):
            np.copyto(self.network.params, run.last_good)
            self.optimizer.set_state(optimizer_before, self.network.params)
            self.rng.bit_generator.state = rng_before
            return _Ending("stopped", f"Stopped by request during epoch {self.epoch + 1}; its "
                           f"partial updates were undone, so the weights are those after "
                           f"epoch {self.epoch}.")
        return self._end_epoch(run, lr, t0, time.perf_counter() - t0)

    def _train_batches(self, run: _Fit, lr: float) -> bool:
        """One pass over the epoch's mini-batches; ``False`` if a stop was requested."""
        run.plan.start_epoch(run.update.start_epoch(lr))
        X, train_batch, update = run.X, self.network.train_batch, run.update.step
        for ws, x_T, rows, targets in run.plan.batches:  # the fields of Batch
            if self._stop_requested:
                return False
            if rows is not None:
                X.take(rows, axis=0, out=ws.xb_data, mode="clip")
            train_batch(ws, x_T, targets)
            update()
        return True

    def _end_epoch(self, run: _Fit, lr: float, t0: float, t_batches: float) -> _Ending | None:
        """Loss and divergence check, the record, the schedule, early stopping, callbacks."""
        cfg, params = self.config, self.network.params
        train_loss, train_acc = run.plan.epoch_loss_and_accuracy()
        finite = math.isfinite(train_loss) and math.isfinite(float(np.vdot(params, params)))
        val_loss = val_acc = None
        if finite and run.X_val is not None:
            val_loss, val_acc = _evaluate(self.network, run.X_val, run.y_val)
            finite = math.isfinite(val_loss)
        if not finite:
            np.copyto(params, run.last_good)
            self.optimizer.reset()
            return _Ending("diverged", f"Training diverged in epoch {self.epoch + 1} at "
                           f"learning rate {lr:g}: the loss became infinite or NaN. "
                           f"{DIVERGED_ADVICE} The weights from the last finite epoch "
                           "were kept.")
        self.epoch += 1
        epoch_seconds = time.perf_counter() - t0
        self._elapsed += epoch_seconds
        record = EpochRecord(
            epoch=self.epoch, train_loss=train_loss, train_accuracy=train_acc,
            val_loss=val_loss, val_accuracy=val_acc, learning_rate=lr,
            elapsed=self._elapsed, epoch_seconds=epoch_seconds,
            samples_per_second=run.X.shape[0] / max(t_batches, 1e-12),
            weight_norms=tuple(math.sqrt(float(np.vdot(L.W, L.W)))
                               for L in self.network.layers),
            grad_norms=run.update.gradient_norms())
        self.history.append(record)
        run.records.append(record)
        if cfg.lr_schedule == "plateau":
            self._plateau.update(train_loss if val_loss is None else val_loss)
        if val_loss is not None:
            self._early.update(val_loss, self.epoch, params)
        return self._stop_after(record)

    def _stop_after(self, record: EpochRecord) -> _Ending | None:
        """Run the callbacks; how training ends after this epoch, or ``None`` to go on."""
        stop = [cb(record) is True for cb in self.callbacks]  # every callback sees the epoch
        if any(stop):
            return _Ending("stopped", f"Stopped by a callback after epoch {self.epoch}.")
        if self._stop_requested:
            return _Ending("stopped", f"Stopped by request after epoch {self.epoch}.")
        cfg, early = self.config, self._early
        if cfg.early_stopping and early.no_improve >= cfg.n_iter_no_change:
            return _Ending("early_stopped", f"Early stopping after epoch {self.epoch}: "
                           f"validation loss did not improve by {cfg.tol:g} for "
                           f"{cfg.n_iter_no_change} epochs; restored the weights of epoch "
                           f"{early.best_epoch}.")
        return None

    def _end_fit(self, run: _Fit) -> TrainResult:
        """Hand back the best weights with early stopping; the result."""
        params, early = self.network.params, self._early
        if self.config.early_stopping and early.best_params is not None \
                and run.ending.status != "diverged":
            self._live_params = params.copy()
            np.copyto(params, early.best_params)
        return TrainResult(run.ending.status, run.ending.message, len(run.records),
                           early.best_epoch, tuple(run.records))


class _Ending(NamedTuple):
    """How a call to :meth:`Trainer.fit` ends (see :class:`TrainResult`)."""

    status: str
    message: str


@dataclass(eq=False)
class _Fit:
    """What one call to :meth:`Trainer.fit` works on; the run's state is on the trainer."""

    X: np.ndarray  # training inputs, checked, in the network's dtype
    X_val: np.ndarray | None
    y_val: np.ndarray | None
    n_epochs: int  # epochs this call runs at most
    plan: _EpochPlan
    update: FoldedUpdate
    last_good: np.ndarray  # the weights at the last epoch boundary
    ending: _Ending  # how the call ends if every epoch runs
    records: list[EpochRecord] = field(default_factory=list)


class FoldedUpdate:
    """One parameter update from a mini-batch's gradient: the fast engine's one trick.

    The textbook (:func:`nn_core.textbook.train_step`) computes the output
    delta ``(P - Y) / n``, back-propagates it to the gradient ``g``, adds the
    L2 term ``alpha * W`` and lets the optimiser step with learning rate
    ``lr``. Back-propagation is linear in the delta, and SGD, momentum and
    Nesterov depend on ``lr * g`` only. So for them the batch computes the
    delta ``lr * (P - Y) / n`` instead (it costs nothing: the ``1 / n`` is
    already folded into the targets), the gradients arrive as ``lr * g``, the
    L2 term is added as ``lr * alpha * W``, and the optimiser steps with
    learning rate 1. That saves one pass over all the parameters per step,
    one of the ~15 NumPy calls of a 32-sample step.

    Everything that depends on the fold is here: :meth:`start_epoch` picks the
    scale ``s`` of the epoch's gradients (``lr`` when folding, else 1; the
    trainer lays the targets out as ``s / n``), :meth:`step` adds L2, clips and
    steps with ``lr / s``, and :meth:`gradient_norms` divides ``s`` back out.
    With ``s = 1`` this is the textbook update, which is used for Adam and
    RMSprop, with gradient clipping (it needs the true gradient's norm) and
    for learning rates so small that ``lr / n`` and ``n / lr`` would leave the
    dtype's normal range (below ``sqrt(tiny)``: about 1e-19 in float32).

    Parameters
    ----------
    network : Network
        Its ``params`` are updated from its ``grads``.
    optimizer : Optimizer
    config : TrainConfig
        Reads ``alpha`` and ``clip_norm``.
    """

    #: The optimisers whose update depends on ``lr * g`` alone.
    FOLDABLE = frozenset({"sgd", "momentum", "nesterov"})

    def __init__(self, network: Network, optimizer: Optimizer, config: TrainConfig) -> None:
        self.params, self.grads, self.layers = network.params, network.grads, network.layers
        self.optimizer = optimizer
        self.clip_norm = config.clip_norm
        self.foldable = optimizer.name in self.FOLDABLE and config.clip_norm is None
        self.min_folded_lr = float(np.sqrt(np.finfo(network.dtype).tiny))
        self.l2 = network.weight_mask * config.alpha if config.alpha > 0 else None
        needs_copy = self.l2 is not None or config.clip_norm is not None
        self._g = np.empty_like(self.params) if needs_copy else None
        self.scale = 1.0  # s: the gradients of this epoch are s * g
        self._lr = 1.0  # what the optimiser steps with: lr / s
        self._l2_scaled = self.l2  # s * alpha on the weights

    def __repr__(self) -> str:
        return (f"FoldedUpdate(optimizer={self.optimizer.name!r}, foldable={self.foldable}, "
                f"scale={self.scale:g})")

    def start_epoch(self, lr: float) -> float:
        """Choose the scale ``s`` of this epoch's gradients (``lr`` or 1) and return it."""
        s = lr if self.foldable and lr >= self.min_folded_lr else 1.0
        if s != self.scale:
            self.scale = s
            self._l2_scaled = None if self.l2 is None else self.l2 * s
        self._lr = lr / s  # exactly 1.0 when s is lr
        return s

    def step(self) -> None:
        """Update the parameters from the batch's gradients (``s * g`` in ``network.grads``)."""
        g = self.grads
        if self._g is not None:
            if self.l2 is not None:
                np.multiply(self.params, self._l2_scaled, out=self._g)
                np.add(self._g, g, out=self._g)
            else:
                np.copyto(self._g, g)
            g = self._g
            if self.clip_norm is not None:
                norm = math.sqrt(float(np.vdot(g, g)))
                if norm > self.clip_norm:
                    np.multiply(g, self.clip_norm / norm, out=g)
        self.optimizer.step(self.params, g, self._lr)

    def gradient_norms(self) -> tuple[float, ...]:
        """Norm of each layer's ``dW`` on the last batch, of the true gradient (L2 excluded)."""
        return tuple(math.sqrt(float(np.vdot(L.dW, L.dW))) / self.scale for L in self.layers)


def _evaluate(net: Network, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``net`` on ``(X, y)``."""
    logits = net.forward_logits(X)
    loss = float(np.mean(cross_entropy(logits, y)))
    acc = float(np.mean(np.argmax(logits, axis=1) == y))
    return loss, acc


class Batch(NamedTuple):
    """One mini-batch of an epoch: views into the buffers of an :class:`_EpochPlan`."""

    workspace: Workspace  # the network's buffers for this batch width
    x_T: np.ndarray  # noqa: N815 (n_features + 1, width): inputs, feature-major, ones row last
    rows: np.ndarray | None  # large data: rows of X to gather into x_T first; None: ready
    targets: OutputTargets  # scaled one-hot targets; receives the loss terms


class _EpochPlan:
    """Buffers and batch views for one call to :meth:`Trainer.fit`.

    :attr:`batches` is a list of :class:`Batch` whose arrays are views into
    buffers that :meth:`start_epoch` rewrites in place, so the batches are
    built once and reused every epoch.
    """

    def __init__(self, net: Network, X: np.ndarray, y: np.ndarray, batch: int,
                 dropout: float, rng: np.random.Generator, shuffle: bool) -> None:
        n, d = X.shape
        C = net.n_classes
        dt = net.dtype
        self.X, self.y, self.rng, self.shuffle = X, y, rng, shuffle
        self.n = n
        self.perm = np.arange(n)
        self.y_perm = np.empty(n, dtype=np.intp)
        n_full, rest = divmod(n, batch)
        widths = np.full(n, batch, dtype=np.intp)
        widths[n_full * batch:] = rest
        self.col = np.arange(n) % batch  # position of each sample in its batch
        self.widths = widths
        self.block = (np.arange(n) // batch) * (C * batch)  # offset of its target block
        self.label_index = np.empty(n, dtype=np.intp)
        self._flat_label = np.empty(n, dtype=np.intp)  # index of each target in Y
        self.Y = np.zeros(C * n, dtype=dt)  # scaled one-hot targets, block per batch
        self.sum_exp = np.empty(n, dtype=dt)  # per sample: sum of exp(z - max) / c
        self.true_logit = np.empty(n, dtype=dt)
        self.log_c = np.empty(n, dtype=np.float64)
        # rows of 1/c for full and partial batches (c: the gradient scale / width)
        self.inv_c = [np.empty((1, C), dtype=dt), np.empty((1, C), dtype=dt)]
        self._batch, self._rest = batch, rest
        self.X_perm = None
        self._scale = None
        if n * (d + 1) * dt.itemsize <= _EPOCH_GATHER_BYTES:
            # Small data: gather whole rows, ones column included, into a
            # contiguous buffer once per epoch (a contiguous gather is ~3x faster
            # than one into the non-contiguous first d columns).
            self.X_aug = np.ones((n, d + 1), dtype=dt)  # last column: ones
            self.X_aug[:, :-1] = X
            self.X_perm = np.empty_like(self.X_aug) if shuffle else self.X_aug
        self.batches = [self._batch_views(net, start, min(start + batch, n), dropout, rng)
                        for start in range(0, n, batch)]

    def _batch_views(self, net: Network, start: int, end: int, dropout: float,
                     rng: np.random.Generator) -> Batch:
        """The :class:`Batch` of samples ``start:end`` of each epoch's order."""
        C, w = self.Y.size // self.n, end - start
        ws = net.workspace(w, dropout, rng)
        if self.X_perm is not None:
            x_T, rows = self.X_perm[start:end].T, None
        else:
            x_T, rows = ws.xb_T, self.perm[start:end]
        targets = OutputTargets(self.Y[start * C:end * C].reshape(C, w),
                                self.inv_c[0 if w == self._batch else 1],
                                self.label_index[start:end],
                                self.sum_exp[start:end].reshape(1, w),
                                self.true_logit[start:end])
        return Batch(ws, x_T, rows, targets)

    def start_epoch(self, scale: float) -> None:
        """Shuffle and lay out this epoch's inputs and targets scaled by ``scale / width``.

        ``scale`` comes from :meth:`FoldedUpdate.start_epoch` (1 unless the
        learning rate is folded in). The trainer calls this at the top of each
        epoch, after the previous epoch's callbacks: nothing random is drawn
        ahead, so a checkpoint taken in a callback holds the generator exactly
        as the next epoch finds it.
        """
        if self.shuffle:
            # A fresh permutation each epoch (not a reshuffle of the last one), so
            # N calls of one epoch consume randomness exactly like one call of N.
            self.perm[...] = self.rng.permutation(self.n)
            if self.X_perm is not None:
                self.X_aug.take(self.perm, axis=0, out=self.X_perm, mode="clip")
        elif scale == self._scale:
            return  # same order and scale as last epoch: nothing to lay out again
        self.y.take(self.perm, out=self.y_perm)
        # flat index of the true class inside each batch's (C, width) block
        np.multiply(self.y_perm, self.widths, out=self.label_index)
        np.add(self.label_index, self.col, out=self.label_index)
        if scale != self._scale:  # the scale changed (or first epoch)
            self._scale = scale
            self._c = scale / self.widths  # per sample: the scale of its batch
            self.inv_c[0].fill(self._batch / scale)
            self.inv_c[1].fill(self._rest / scale if self._rest else 0.0)
            np.log(self._c, out=self.log_c)
        self.Y.fill(0)
        np.add(self.block, self.label_index, out=self._flat_label)
        np.put(self.Y, self._flat_label, self._c)

    def epoch_loss_and_accuracy(self) -> tuple[float, float]:
        """Mean training loss and accuracy over the epoch's mini-batches."""
        # log(s) = log(s / c) + log(c): sum_exp holds s / c (see losses.py)
        loss = float(np.mean(np.log(self.sum_exp, dtype=np.float64) + self.log_c
                             - self.true_logit))
        acc = float(np.count_nonzero(self.true_logit == 0)) / self.n
        return loss, acc
