"""Mini-batch training: the :class:`Trainer`, its configuration and its records.

The trainer owns everything around the maths: shuffling, batching, the
learning-rate schedule, L2, clipping, epoch records, callbacks, early stopping,
divergence handling and stop requests. The maths of one step lives in
:meth:`nn_core.network.Network.train_batch`.

Speed notes (each is what makes a 32-sample step cost little more than its
eight matrix products):

* The data are gathered into shuffled order once per epoch (or per batch for
  large data sets), so a batch is a ready-made view.
* One-hot targets, already multiplied by the gradient scale, are laid out per
  batch once per epoch.
* The per-sample loss terms land in epoch-long buffers; the logarithm, mean and
  accuracy are computed once per epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from .losses import cross_entropy
from .network import Network
from .optimizers import OPTIMIZERS, make_optimizer
from .schedules import SCHEDULES, ReduceOnPlateau, constant, cosine, invscaling, step

__all__ = ["DIVERGED_ADVICE", "EpochRecord", "TrainConfig", "TrainResult", "Trainer"]

#: Shown whenever training diverges.
DIVERGED_ADVICE = (
    "Lower the learning rate (try 10x smaller), switch to the adam optimizer, "
    "or enable gradient clipping; standardising the features also helps."
)

# Below this size the whole shuffled training set is gathered once per epoch
# (one NumPy call instead of one per batch); above it, rows are gathered per
# batch so training never holds a second full copy of a large data set.
_EPOCH_GATHER_BYTES = 16 * 2**20


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

        def is_num(v: object) -> bool:
            return isinstance(v, (int, float, np.integer, np.floating)) and \
                not isinstance(v, bool) and math.isfinite(float(v))

        def is_int(v: object) -> bool:
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

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


@dataclass(frozen=True)
class TrainResult:
    """How a call to :meth:`Trainer.fit` ended."""

    status: str  # "completed" | "early_stopped" | "stopped" | "diverged"
    message: str
    epochs_run: int
    best_epoch: int | None = None
    records: tuple[EpochRecord, ...] = field(default=(), repr=False)


Callback = Callable[[EpochRecord], "bool | None"]


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
    optimizer : nn_core.optimizers.Optimizer
        Keeps its state (moments, velocities) across calls to :meth:`fit`.
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
        self.optimizer = make_optimizer(config.optimizer, momentum=config.momentum,
                                        beta_1=config.beta_1, beta_2=config.beta_2,
                                        epsilon=config.epsilon, rho=config.rho)
        self.history: list[EpochRecord] = []
        self.epoch = 0  # epochs completed, drives the schedule
        self._elapsed = 0.0
        self._plateau = ReduceOnPlateau(config.learning_rate, config.lr_decay,
                                        config.lr_patience, config.lr_min)
        self._stop_requested = False

    # ---- control ---------------------------------------------------------
    def request_stop(self) -> None:
        """Ask a running :meth:`fit` to stop after the current mini-batch.

        Safe to call from another thread.
        """
        self._stop_requested = True

    def learning_rate_at(self, epoch: int) -> float:
        """The learning rate the schedule gives epoch ``epoch`` (0-based)."""
        c = self.config
        if c.lr_schedule == "constant":
            return constant(c.learning_rate, epoch)
        if c.lr_schedule == "step":
            return step(c.learning_rate, epoch,
                        c.lr_step_size or max(1, c.epochs // 4), c.lr_decay)
        if c.lr_schedule == "cosine":
            return cosine(c.learning_rate, epoch, c.epochs, c.lr_min)
        if c.lr_schedule == "invscaling":
            return invscaling(c.learning_rate, epoch, c.power_t)
        return self._plateau.lr

    # ---- training --------------------------------------------------------
    def fit(self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None = None,
            y_val: np.ndarray | None = None, epochs: int | None = None) -> TrainResult:
        """Train for ``epochs`` epochs (default ``config.epochs``).

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
            Epochs to run in this call.

        Returns
        -------
        TrainResult
            ``status`` is ``"completed"``, ``"early_stopped"``, ``"stopped"``
            (by :meth:`request_stop` or a callback) or ``"diverged"`` (the
            loss became infinite or NaN; the weights of the last finite epoch
            are restored, so predictions stay finite).
        """
        cfg = self.config
        net = self.network
        X, y = _check_arrays(net, X, y, "training")
        has_val = X_val is not None
        if has_val:
            X_val, y_val = _check_arrays(net, X_val, y_val, "validation")
        elif cfg.early_stopping:
            raise ValueError("early_stopping needs validation data (X_val, y_val)")
        n_epochs = cfg.epochs if epochs is None else int(epochs)
        if n_epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {n_epochs}")

        self._stop_requested = False
        plan = _EpochPlan(net, X, y, min(cfg.batch_size, X.shape[0]),
                          cfg.dropout, self.rng, cfg.shuffle)
        params, grads = net.params, net.grads
        opt = self.optimizer
        # Fold the learning rate into the output delta when the optimiser is
        # linear in lr * grad and nothing needs the unscaled gradient.
        fold = opt.prescaled and cfg.clip_norm is None
        l2 = net.weight_mask * cfg.alpha if cfg.alpha > 0 else None
        g_total = np.empty_like(params) if (l2 is not None or cfg.clip_norm) else None
        last_good = params.copy()
        best_params = None
        best_val = math.inf
        best_epoch = None
        no_improve = 0
        status, message = "completed", f"Trained {n_epochs} epochs."
        records: list[EpochRecord] = []

        with np.errstate(over="ignore", invalid="ignore", divide="ignore",
                         under="ignore"):
            for _ in range(n_epochs):
                t0 = time.perf_counter()
                lr = self.learning_rate_at(self.epoch)
                gscale = lr if fold else 1.0
                plan.start_epoch(gscale)
                np.copyto(last_good, params)
                l2_lr = l2 * lr if (fold and l2 is not None) else l2
                # Bound methods looked up once: the loop body runs ~1,000 times/s.
                train_batch = net.train_batch
                step_prescaled = opt.step_prescaled if fold else None
                completed = True
                for ws, x_T, idx, Yc, inv_c, lab, s_out, zy_out in plan.batches:
                    if self._stop_requested:
                        completed = False
                        break
                    if idx is not None:
                        X.take(idx, axis=0, out=ws.xb_data, mode="clip")
                    train_batch(ws, x_T, Yc, inv_c, lab, s_out, zy_out)
                    if fold:
                        if l2_lr is None:
                            step_prescaled(params, grads)
                        else:
                            np.multiply(params, l2_lr, out=g_total)
                            np.add(g_total, grads, out=g_total)
                            step_prescaled(params, g_total)
                    else:
                        g = grads
                        if g_total is not None:
                            if l2 is not None:
                                np.multiply(params, l2, out=g_total)
                                np.add(g_total, grads, out=g_total)
                            else:
                                np.copyto(g_total, grads)
                            g = g_total
                        if cfg.clip_norm is not None:
                            norm = math.sqrt(float(np.vdot(g, g)))
                            if norm > cfg.clip_norm:
                                np.multiply(g, cfg.clip_norm / norm, out=g)
                        opt.step(params, g, lr)
                t_batches = time.perf_counter() - t0
                if not completed:
                    status, message = "stopped", (
                        f"Stopped by request during epoch {self.epoch + 1}.")
                    break

                train_loss, train_acc = plan.epoch_loss_and_accuracy()
                finite = math.isfinite(train_loss) and \
                    math.isfinite(float(np.vdot(params, params)))
                val_loss = val_acc = None
                if finite and has_val:
                    val_loss, val_acc = _evaluate(net, X_val, y_val)
                    finite = math.isfinite(val_loss)
                if not finite:
                    np.copyto(params, last_good)
                    opt.reset()
                    status = "diverged"
                    message = (f"Training diverged in epoch {self.epoch + 1} at "
                               f"learning rate {lr:g}: the loss became infinite or "
                               f"NaN. {DIVERGED_ADVICE} The weights from the last "
                               "finite epoch were kept.")
                    break

                self.epoch += 1
                epoch_seconds = time.perf_counter() - t0
                self._elapsed += epoch_seconds
                record = EpochRecord(
                    epoch=self.epoch, train_loss=train_loss, train_accuracy=train_acc,
                    val_loss=val_loss, val_accuracy=val_acc, learning_rate=lr,
                    elapsed=self._elapsed, epoch_seconds=epoch_seconds,
                    samples_per_second=X.shape[0] / max(t_batches, 1e-12),
                    weight_norms=tuple(math.sqrt(float(np.vdot(L.W, L.W)))
                                       for L in net.layers),
                    grad_norms=tuple(math.sqrt(float(np.vdot(L.dW, L.dW))) / gscale
                                     for L in net.layers),
                )
                self.history.append(record)
                records.append(record)
                if cfg.lr_schedule == "plateau":
                    self._plateau.update(val_loss if has_val else train_loss)

                if has_val:
                    if val_loss < best_val - cfg.tol:
                        best_val, best_epoch, no_improve = val_loss, self.epoch, 0
                        if cfg.early_stopping:
                            best_params = params.copy()
                    else:
                        no_improve += 1

                stop_cb = False
                for cb in self.callbacks:
                    if cb(record) is True:
                        stop_cb = True
                if stop_cb:
                    status, message = "stopped", (
                        f"Stopped by a callback after epoch {self.epoch}.")
                    break
                if self._stop_requested:
                    status, message = "stopped", (
                        f"Stopped by request after epoch {self.epoch}.")
                    break
                if cfg.early_stopping and no_improve >= cfg.n_iter_no_change:
                    status = "early_stopped"
                    message = (f"Early stopping after epoch {self.epoch}: validation "
                               f"loss did not improve by {cfg.tol:g} for "
                               f"{cfg.n_iter_no_change} epochs; restored the weights "
                               f"of epoch {best_epoch}.")
                    break

        if cfg.early_stopping and best_params is not None and status != "diverged":
            np.copyto(params, best_params)
        return TrainResult(status, message, len(records), best_epoch, tuple(records))


def _evaluate(net: Network, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``net`` on ``(X, y)``."""
    logits = net.forward_logits(X)
    loss = float(np.mean(cross_entropy(logits, y)))
    acc = float(np.mean(np.argmax(logits, axis=1) == y))
    return loss, acc


class _EpochPlan:
    """Buffers and batch views for one call to :meth:`Trainer.fit`.

    ``batches`` is a list of tuples
    ``(workspace, x_T, idx, Yc, inv_c, label_index, sum_exp, true_logit)``
    whose arrays are views into buffers that :meth:`start_epoch` rewrites in
    place, so the tuples are built once and reused every epoch.
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
        starts = list(range(0, n, batch))
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
        # rows of 1/c for full and partial batches (c: the gradient scale)
        self.inv_c = [np.empty((1, C), dtype=dt), np.empty((1, C), dtype=dt)]
        self._batch, self._rest = batch, rest
        self.X_perm = None
        self._gscale = None
        if n * (d + 1) * dt.itemsize <= _EPOCH_GATHER_BYTES:
            # Small data: gather whole rows, ones column included, into a
            # contiguous buffer once per epoch (a contiguous gather is ~3x faster
            # than one into the non-contiguous first d columns).
            self.X_aug = np.ones((n, d + 1), dtype=dt)  # last column: ones
            self.X_aug[:, :-1] = X
            self.X_perm = np.empty_like(self.X_aug) if shuffle else self.X_aug
        self.batches = []
        for start in starts:
            end = min(start + batch, n)
            w = end - start
            ws = net.workspace(w, dropout, rng)
            x_T = self.X_perm[start:end].T if self.X_perm is not None else ws.xb_T
            idx = None if self.X_perm is not None else self.perm[start:end]
            Yc = self.Y[start * C:end * C].reshape(C, w)
            self.batches.append((ws, x_T, idx, Yc, self.inv_c[0 if w == batch else 1],
                                 self.label_index[start:end],
                                 self.sum_exp[start:end].reshape(1, w),
                                 self.true_logit[start:end]))

    def start_epoch(self, gscale: float) -> None:
        """Shuffle and lay out this epoch's inputs and scaled targets."""
        if self.shuffle:
            # A fresh permutation each epoch (not a reshuffle of the last one), so
            # N calls of one epoch consume randomness exactly like one call of N.
            self.perm[...] = self.rng.permutation(self.n)
            if self.X_perm is not None:
                self.X_aug.take(self.perm, axis=0, out=self.X_perm, mode="clip")
        elif gscale == self._gscale:
            return  # same order and scale as last epoch: nothing to lay out again
        self.y.take(self.perm, out=self.y_perm)
        # flat index of the true class inside each batch's (C, width) block
        np.multiply(self.y_perm, self.widths, out=self.label_index)
        np.add(self.label_index, self.col, out=self.label_index)
        if gscale != self._gscale:  # the learning rate changed (or first epoch)
            self._gscale = gscale
            self._c = gscale / self.widths  # per sample: the scale of its batch
            self.inv_c[0].fill(self._batch / gscale)
            self.inv_c[1].fill(self._rest / gscale if self._rest else 0.0)
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
