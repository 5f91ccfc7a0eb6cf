"""``NeuralNetworkClassifier``: the scikit-learn compatible face of the engine.

It validates input the way every scikit-learn estimator does (so it works in
pipelines, grid searches and ``cross_val_score``), encodes labels of any type,
builds a :class:`~nn_core.network.Network` and trains it with a
:class:`~nn_core.training.Trainer`.
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from typing import IO, Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .activations import ACTIVATIONS
from .initializers import INITIALIZERS
from .io import _display_name, load_network, save_network
from .losses import log_softmax
from .metrics import classification_summary
from .network import Network
from .training import TrainConfig, Trainer, TrainResult

__all__ = ["MAX_UNITS", "DivergenceWarning", "NeuralNetworkClassifier"]

#: Largest hidden layer the estimator accepts.
MAX_UNITS = 1024


class DivergenceWarning(ConvergenceWarning):
    """Training stopped because the loss became infinite or NaN."""


def _saved_curve(meta: dict, key: str, invalid, allow_none: bool) -> list | None:
    """A training curve from saved metadata: a list of numbers (``None`` for an
    epoch without a value if ``allow_none``), or ``None`` if absent; anything
    else raises ``invalid(why)``."""
    curve = meta.get(key)
    if curve is None:
        return None
    if not isinstance(curve, list) or not all(
            (v is None and allow_none)
            or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in curve):
        raise invalid(f"{key} must be a list of numbers, got {str(curve)[:32]}")
    return [None if v is None else float(v) for v in curve]


class NeuralNetworkClassifier(ClassifierMixin, BaseEstimator):
    """Feed-forward neural-network classifier trained with mini-batch gradient descent.

    Hidden layers use ``activation``; the output layer is a softmax over the
    classes (two or more) trained with cross-entropy.

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default=(64, 32)
        Width of each hidden layer (1 to 1024); ``()`` gives multinomial
        logistic regression.
    activation : {"relu", "leaky_relu", "tanh", "sigmoid", "identity"}, default="relu"
        Hidden-layer activation.
    optimizer : {"sgd", "momentum", "nesterov", "adam", "rmsprop"}, default="sgd"
    learning_rate : float, default=0.01
        Initial step size.
    batch_size : int, default=32
        Samples per mini-batch (clipped to the training-set size; the last,
        smaller batch of an epoch is kept).
    epochs : int, default=100
        Passes over the training set in :meth:`fit`.
    alpha : float, default=0.0
        L2 penalty: the objective is mean cross-entropy plus
        ``alpha / 2 * sum(W ** 2)`` over all weights (not biases). Unlike
        scikit-learn's ``MLPClassifier`` it is not divided by the batch size.
    dropout : float, default=0.0
        Inverted-dropout rate on hidden activations during training (0-0.9).
    momentum : float, default=0.9
        Momentum for ``"momentum"`` and ``"nesterov"``.
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        Adam's moment decays and denominator constant (``epsilon`` also for
        RMSprop).
    rho : float, default=0.9
        RMSprop's decay of the squared-gradient average.
    lr_schedule : {"constant", "step", "cosine", "invscaling", "plateau"}, default="constant"
        Per-epoch learning-rate schedule, see :mod:`nn_core.schedules`.
    power_t : float, default=0.5
        Exponent of ``"invscaling"``.
    clip_norm : float or None, default=None
        Clip the global gradient norm to this value.
    init : {"auto", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform"}, default="auto"
        Weight initialisation (``"auto"``: Glorot/Xavier normal, as the
        tutorial and scikit-learn; ``"he_normal"`` suits deep ReLU stacks);
        biases start at zero.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified),
        stop when the validation loss has not improved by ``tol`` for
        ``n_iter_no_change`` epochs, and restore the best weights.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
    tol : float, default=1e-4
    shuffle : bool, default=True
        Reshuffle the training data every epoch.
    warm_start : bool, default=False
        Let :meth:`fit` continue from the current weights.
    random_state : int, numpy.random.Generator, RandomState or None, default=None
        Seeds initialisation, shuffling, dropout and the validation split:
        the same value, data and parameters give bit-identical results.
    dtype : {"float32", "float64"}, default="float32"
        Floating-point type for training and inference.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    coefs_ : list of ndarray, ``coefs_[i]`` of shape (n_in_i, n_out_i)
        Weight matrices (views into the model: editing them edits the model).
    intercepts_ : list of ndarray, ``intercepts_[i]`` of shape (n_out_i,)
    loss_curve_ : list of float
        Mean training cross-entropy per epoch (L2 term excluded).
    validation_scores_ : list of float or None
        Validation accuracy per epoch when ``early_stopping``.
    validation_loss_curve_ : list of float or None
        Validation cross-entropy per epoch when ``early_stopping``.
    best_loss_ : float
        Lowest training loss reached.
    best_validation_score_ : float or None
        Validation accuracy of the restored (best) epoch when ``early_stopping``.
    n_iter_ : int
        Epochs trained (accumulates over ``warm_start`` fits and ``partial_fit``).
    status_ : str
        ``"completed"``, ``"early_stopped"`` or ``"diverged"``.
    status_message_ : str
    history_ : list of EpochRecord
        Full per-epoch records (timing, learning rate, weight/gradient norms).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from nn_core import NeuralNetworkClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NeuralNetworkClassifier(hidden_layer_sizes=(16,), optimizer="adam",
    ...                               learning_rate=0.01, epochs=200, random_state=0)
    >>> clf.fit(X, y).score(X, y) > 0.95
    True
    """

    def __init__(self, hidden_layer_sizes=(64, 32), activation="relu", optimizer="sgd",
                 learning_rate=0.01, batch_size=32, epochs=100, alpha=0.0, dropout=0.0,
                 momentum=0.9, beta_1=0.9, beta_2=0.999, epsilon=1e-8, rho=0.9,
                 lr_schedule="constant", power_t=0.5, clip_norm=None, init="auto",
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10,
                 tol=1e-4, shuffle=True, warm_start=False, random_state=None,
                 dtype="float32"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.alpha = alpha
        self.dropout = dropout
        self.momentum = momentum
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.rho = rho
        self.lr_schedule = lr_schedule
        self.power_t = power_t
        self.clip_norm = clip_norm
        self.init = init
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.shuffle = shuffle
        self.warm_start = warm_start
        self.random_state = random_state
        self.dtype = dtype

    # ---- parameters ------------------------------------------------------
    def _hidden_sizes(self) -> tuple[int, ...]:
        h = self.hidden_layer_sizes
        if isinstance(h, numbers.Integral) and not isinstance(h, bool):
            h = (h,)
        try:
            sizes = tuple(h)
        except TypeError:
            raise ValueError("hidden_layer_sizes must be an int or a sequence of ints, "
                             f"got {self.hidden_layer_sizes!r}") from None
        for s in sizes:
            if not isinstance(s, numbers.Integral) or isinstance(s, bool) \
                    or not 1 <= s <= MAX_UNITS:
                raise ValueError(f"hidden_layer_sizes must hold integers between 1 and "
                                 f"{MAX_UNITS}, got {self.hidden_layer_sizes!r}")
        return tuple(int(s) for s in sizes)

    def _train_config(self) -> TrainConfig:
        config = TrainConfig(
            optimizer=self.optimizer, learning_rate=self.learning_rate,
            batch_size=self.batch_size, epochs=self.epochs, alpha=self.alpha,
            dropout=self.dropout, momentum=self.momentum, beta_1=self.beta_1,
            beta_2=self.beta_2, epsilon=self.epsilon, rho=self.rho,
            lr_schedule=self.lr_schedule, power_t=self.power_t,
            clip_norm=self.clip_norm, early_stopping=self.early_stopping,
            n_iter_no_change=self.n_iter_no_change, tol=self.tol, shuffle=self.shuffle)
        config.validate()
        return config

    def _validate_params(self) -> tuple[tuple[int, ...], TrainConfig]:
        hidden = self._hidden_sizes()
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, "
                             f"got {self.activation!r}")
        if self.init != "auto" and self.init not in INITIALIZERS:
            raise ValueError(f"init must be 'auto' or one of {sorted(INITIALIZERS)}, "
                             f"got {self.init!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        vf = self.validation_fraction
        if not isinstance(vf, numbers.Real) or isinstance(vf, bool) or not 0 < vf < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got {vf!r}")
        for name in ("early_stopping", "shuffle", "warm_start"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got "
                                 f"{getattr(self, name)!r}")
        return hidden, self._train_config()

    def _rng(self) -> np.random.Generator:
        rs = self.random_state
        if rs is None or isinstance(rs, numbers.Integral):
            if rs is not None and not 0 <= rs < 2**63:
                raise ValueError(f"random_state must be a non-negative int, got {rs}")
            return np.random.default_rng(rs)
        if isinstance(rs, np.random.Generator):
            return rs
        if isinstance(rs, np.random.RandomState):
            return np.random.default_rng(rs.randint(0, 2**31 - 1))
        raise ValueError("random_state must be None, an int, a numpy Generator or a "
                         f"RandomState, got {rs!r}")

    # ---- fitted state ----------------------------------------------------
    @property
    def coefs_(self) -> list[np.ndarray]:
        net = self.__dict__.get("_network")
        if net is None:
            raise AttributeError("coefs_ exists once the model is fitted")
        return [layer.W for layer in net.layers]

    @property
    def intercepts_(self) -> list[np.ndarray]:
        net = self.__dict__.get("_network")
        if net is None:
            raise AttributeError("intercepts_ exists once the model is fitted")
        return [layer.b for layer in net.layers]

    def _set_fitted(self, network: Network, classes: np.ndarray) -> None:
        self._network = network
        self.classes_ = classes
        self.n_layers_ = len(network.layers) + 1
        self.n_outputs_ = network.n_classes
        self.out_activation_ = "softmax"

    def _absorb(self, result: TrainResult, fresh: bool) -> None:
        """Update the curves and status from a training call."""
        recs = list(result.records)
        if fresh:
            self.history_ = []
            self.loss_curve_ = []
            self.n_iter_ = 0
            self.t_ = 0
        self.history_ += recs
        self.loss_curve_ += [r.train_loss for r in recs]
        self.n_iter_ += len(recs)
        self.t_ += len(recs) * self._n_train
        if self.early_stopping and any(r.val_loss is not None for r in self.history_):
            self.validation_scores_ = [r.val_accuracy for r in self.history_]
            self.validation_loss_curve_ = [r.val_loss for r in self.history_]
            best = min(self.history_, key=lambda r: r.val_loss)
            self.best_validation_score_ = best.val_accuracy
        else:
            self.validation_scores_ = None
            self.validation_loss_curve_ = None
            self.best_validation_score_ = None
        self.best_loss_ = min(self.loss_curve_) if self.loss_curve_ else math.inf
        self.status_ = result.status
        self.status_message_ = result.message
        if result.status == "diverged":
            warnings.warn(result.message, DivergenceWarning, stacklevel=3)

    # ---- fitting ---------------------------------------------------------
    def fit(self, X, y) -> NeuralNetworkClassifier:
        """Train on ``X`` and ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Finite numeric features.
        y : array-like of shape (n_samples,)
            Class labels of any type (at least two distinct values).

        Returns
        -------
        self
        """
        hidden, config = self._validate_params()
        continuing = self.warm_start and "_network" in self.__dict__
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32),
                             reset=not continuing)
        check_classification_targets(y)
        classes, y_idx = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"y has only 1 class ({classes.tolist()[0]!r}); a classifier needs "
                             "samples of at least 2 classes")
        rng = self._rng()
        if continuing:
            if not np.array_equal(classes, self.classes_):
                raise ValueError("warm_start can only continue with the same classes as "
                                 f"the previous fit: {self.classes_.tolist()} before, "
                                 f"{classes.tolist()} now")
            network = self._network
        else:
            network = Network(X.shape[1], hidden, len(classes), self.activation,
                              self.init, np.dtype(self.dtype), rng)
        X_train, y_train, X_val, y_val = X, y_idx, None, None
        if self.early_stopping:
            X_train, X_val, y_train, y_val = self._split(X, y_idx, rng)
        self._set_fitted(network, classes)
        self._n_train = X_train.shape[0]
        self._trainer = Trainer(network, config, rng)
        result = self._trainer.fit(X_train, y_train, X_val, y_val)
        self._absorb(result, fresh=not continuing)
        return self

    def _split(self, X: np.ndarray, y: np.ndarray, rng: np.random.Generator):
        n_val = math.ceil(self.validation_fraction * X.shape[0])
        if n_val < 1 or X.shape[0] - n_val < 1:
            raise ValueError(f"validation_fraction={self.validation_fraction} of "
                             f"{X.shape[0]} samples leaves an empty training or "
                             "validation set; use more data or turn early_stopping off")
        seed = int(rng.integers(2**31 - 1))
        try:
            return train_test_split(X, y, test_size=self.validation_fraction,
                                    random_state=seed, stratify=y)
        except ValueError:
            # Too few samples of some class to stratify: fall back to a plain split.
            return train_test_split(X, y, test_size=self.validation_fraction,
                                    random_state=seed)

    def partial_fit(self, X, y, classes=None) -> NeuralNetworkClassifier:
        """Train for one epoch, continuing from the current weights and optimiser state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), optional
            All classes that will ever appear; needed on the first call unless
            ``y`` already contains every class. Ignored afterwards.

        Returns
        -------
        self
        """
        hidden, config = self._validate_params()
        first = "_network" not in self.__dict__
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32), reset=first)
        check_classification_targets(y)
        if first:
            all_classes = np.unique(y if classes is None else np.asarray(classes))
            if len(all_classes) < 2:
                raise ValueError(f"only 1 class ({all_classes.tolist()[0]!r}) known; pass "
                                 "classes=[...] listing at least 2 classes")
            rng = self._rng()
            network = Network(X.shape[1], hidden, len(all_classes), self.activation,
                              self.init, np.dtype(self.dtype), rng)
            self._set_fitted(network, all_classes)
            self._trainer = Trainer(network, config, rng)
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if unknown.size:
            raise ValueError(f"y contains labels {unknown.tolist()} that are not in "
                             f"classes_ {self.classes_.tolist()}")
        y_idx = np.searchsorted(self.classes_, y)
        self._n_train = X.shape[0]
        result = self._trainer.fit(X, y_idx, epochs=1)
        self._absorb(result, fresh=first)
        return self

    # ---- prediction ------------------------------------------------------
    def _logits(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        # float64 whatever the training dtype: cheap for inference, and a row's
        # prediction then does not depend on which other rows share the call.
        return self._network.forward_logits(X, np.float64)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of float64, shape (n_samples, n_classes)
            Column ``j`` is the probability of ``classes_[j]``.
        """
        return np.exp(self.predict_log_proba(X))

    def predict_log_proba(self, X) -> np.ndarray:
        """Log of :meth:`predict_proba`, computed stably from the logits."""
        return log_softmax(self._logits(X))

    def predict(self, X) -> np.ndarray:
        """Most probable class of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels taken from ``classes_``.
        """
        logits = self._logits(X)  # checks fitted first
        return self.classes_[np.argmax(logits, axis=1)]

    def evaluate(self, X, y) -> dict[str, Any]:
        """Accuracy, per-class precision/recall/F1/support, averages, log loss, confusion matrix.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            True labels (must be among ``classes_``).

        Returns
        -------
        dict
            See :func:`nn_core.metrics.classification_summary`; per-class
            lists follow ``classes_``.
        """
        check_is_fitted(self)
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D, got shape {y.shape}")
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if unknown.size:
            raise ValueError(f"y contains labels {unknown.tolist()} the model was not "
                             f"trained on (classes_ = {self.classes_.tolist()})")
        proba = self.predict_proba(X)
        if proba.shape[0] != y.shape[0]:
            raise ValueError(f"X has {proba.shape[0]} rows but y has {y.shape[0]}")
        y_pred = self.classes_[np.argmax(proba, axis=1)]
        return classification_summary(y, y_pred, labels=self.classes_, proba=proba)

    # ---- persistence -----------------------------------------------------
    def save(self, path: str | os.PathLike | IO[bytes]) -> None:
        """Save the fitted model to an ``.npz`` file (see :mod:`nn_core.io`)."""
        check_is_fitted(self)
        params = self.get_params()
        params["hidden_layer_sizes"] = list(self._hidden_sizes())
        if not (params["random_state"] is None
                or isinstance(params["random_state"], numbers.Integral)):
            params["random_state"] = None
        params = {k: (v.item() if isinstance(v, np.generic) else v)
                  for k, v in params.items()}
        meta = {"estimator": "NeuralNetworkClassifier", "params": params,
                "n_iter_": self.n_iter_, "loss_curve_": self.loss_curve_,
                "validation_scores_": self.validation_scores_,
                "status_": self.status_}
        save_network(path, self._network, self.classes_, meta)

    @classmethod
    def load(cls, path: str | os.PathLike | IO[bytes]) -> NeuralNetworkClassifier:
        """Load a model saved by :meth:`save`.

        Raises
        ------
        ValueError
            If the file is truncated, not an nn_core model, or inconsistent;
            also if its saved hyper-parameters or training curves are not
            what :meth:`save` writes (never another exception type).
        """
        network, classes, meta = load_network(path)
        name = _display_name(path)

        def invalid(why: str) -> ValueError:
            return ValueError(f"{name!s} has invalid estimator metadata: {why}")

        saved = meta.get("params", {})
        if not isinstance(saved, dict):
            raise invalid(f"'params' must be a JSON object, got {type(saved).__name__}")
        valid = cls().get_params()
        params = {k: v for k, v in saved.items() if k in valid}
        if isinstance(params.get("hidden_layer_sizes"), list):
            params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
        est = cls(**params)
        est.hidden_layer_sizes = network.hidden_layer_sizes  # the weights' shapes decide
        est.activation = network.activation
        est.dtype = network.dtype.name
        try:
            est._validate_params()
            trainer = Trainer(network, est._train_config(), est._rng())
        except (ValueError, TypeError, OverflowError) as exc:
            raise invalid(f"the saved hyper-parameters are invalid: {exc}") from None
        est._set_fitted(network, classes)
        est.n_features_in_ = network.n_features
        est._n_train = 0
        est.history_ = []
        est.loss_curve_ = _saved_curve(meta, "loss_curve_", invalid, allow_none=False) or []
        n_iter = meta.get("n_iter_", len(est.loss_curve_))
        if not isinstance(n_iter, int) or isinstance(n_iter, bool) or not 0 <= n_iter < 2**53:
            raise invalid(f"n_iter_ must be a non-negative integer, got {str(n_iter)[:32]}")
        est.n_iter_ = n_iter
        est.t_ = 0
        est.validation_scores_ = _saved_curve(meta, "validation_scores_", invalid,
                                             allow_none=True)
        est.validation_loss_curve_ = None
        est.best_validation_score_ = None
        est.best_loss_ = min(est.loss_curve_) if est.loss_curve_ else math.inf
        status = meta.get("status_", "completed")
        if not isinstance(status, str) or len(status) > 64:
            raise invalid(f"status_ must be a short text, got {str(status)[:32]}")
        est.status_ = status
        est.status_message_ = "Loaded from file."
        est._trainer = trainer
        return est
