"""First-order optimisers that update a flat parameter vector in place.

All the network's weights and biases live in one contiguous vector (see
:mod:`nn_core.network`), so each update below is a handful of whole-vector
operations, whatever the number of layers. :data:`OPTIMIZERS` maps a name to
its class; :func:`make_optimizer` is the only place where a name becomes an
optimiser, and the app's option list is read from the registry.

Update rules (``g`` is the gradient, ``lr`` the learning rate, ``t`` the step
number starting at 1); :mod:`nn_core.textbook` has them verbatim, and the tests
check these in-place versions against it:

============  ===============================================================
``sgd``       ``p -= lr * g``
``momentum``  ``v = momentum * v - lr * g;  p += v``
``nesterov``  ``v = momentum * v - lr * g;  p += momentum * v - lr * g``
``adam``      ``m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g**2;``
              ``p -= lr * (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps)``
``rmsprop``   ``s = rho s + (1 - rho) g**2;  p -= lr * g / (sqrt(s) + eps)``
============  ===============================================================

A new optimiser is one subclass of :class:`Optimizer` (its ``name``, the
:class:`~nn_core.training.TrainConfig` fields it reads in ``hyperparameters``,
its ``state_names`` and its ``step``), one entry in :data:`OPTIMIZERS`, and its
formula in :mod:`nn_core.textbook` (``tests/test_textbook.py`` then checks one
against the other, and the app offers it). If its update depends on ``lr * g``
only, listing it in :attr:`nn_core.training.FoldedUpdate.FOLDABLE` saves a pass
over the parameters per step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "Adam",
    "Momentum",
    "Nesterov",
    "Optimizer",
    "OptimizerState",
    "RMSprop",
    "make_optimizer",
]


def _frozen_copy(a: np.ndarray) -> np.ndarray:
    """A read-only copy, so a frozen dataclass holding it really is frozen."""
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class OptimizerState:
    """What an optimiser remembers between steps (for checkpoints).

    ``arrays`` maps a state name of the optimiser (see
    :attr:`Optimizer.state_names`) to a read-only copy of shape
    ``(n_params,)``; a name is absent while the optimiser has not yet taken a
    step (its state then starts at zero).
    """

    name: str  # registry name, e.g. "adam"
    t: int  # steps taken (Adam's bias correction needs it)
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        t = self.t
        if not isinstance(t, (int, np.integer)) or isinstance(t, bool) or t < 0:
            raise ValueError(f"the optimizer step count must be an integer >= 0, got {t!r}")
        object.__setattr__(self, "t", int(t))
        if self.name not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.name!r}")
        if not isinstance(self.arrays, Mapping):
            raise ValueError(f"optimizer state arrays must be a mapping, got "
                             f"{type(self.arrays).__name__}")
        unknown = sorted(set(map(str, self.arrays)) - set(OPTIMIZERS[self.name].state_names))
        if unknown:
            raise ValueError(f"{self.name} has no state called {unknown} (it keeps "
                             f"{list(OPTIMIZERS[self.name].state_names)})")
        # Copies are taken here, once, so no caller can alias a live buffer.
        frozen = {str(k): _frozen_copy(v) for k, v in self.arrays.items()}
        object.__setattr__(self, "arrays", MappingProxyType(frozen))

    def __repr__(self) -> str:
        shapes = {k: v.shape for k, v in self.arrays.items()}
        return f"OptimizerState(name={self.name!r}, t={self.t}, arrays={shapes})"


class Optimizer:
    """Base class: ``step(params, grad, lr)`` updates ``params`` in place."""

    #: Registry name (see :data:`OPTIMIZERS`).
    name = ""
    #: The :class:`~nn_core.training.TrainConfig` fields the constructor takes.
    hyperparameters: tuple[str, ...] = ()
    #: Attributes holding per-parameter state that must survive a checkpoint;
    #: everything else (``_tmp*``) is scratch space.
    state_names: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.t = 0  # number of steps taken

    def __repr__(self) -> str:
        hyper = "".join(f", {k}={getattr(self, k)!r}" for k in self.hyperparameters)
        return f"{type(self).__name__}(t={self.t}{hyper})"

    @classmethod
    def from_config(cls, config: Any) -> Optimizer:
        """Build from any object with the :attr:`hyperparameters` as attributes."""
        return cls(**{k: getattr(config, k) for k in cls.hyperparameters})

    def get_state(self) -> OptimizerState:
        """A copy of the step count and state arrays (see :class:`OptimizerState`)."""
        arrays = {k: getattr(self, k) for k in self.state_names
                  if getattr(self, k, None) is not None}
        return OptimizerState(self.name, self.t, arrays)

    def set_state(self, state: OptimizerState, like: np.ndarray) -> None:
        """Continue from ``state`` (copied); checks it all before changing anything.

        Parameters
        ----------
        state : OptimizerState
        like : ndarray of shape (n_params,)
            The parameter vector the optimiser will update: every state array
            must have its shape and dtype.

        Raises
        ------
        ValueError
            If ``state`` belongs to another optimiser or an array does not
            match ``like``.
        """
        if state.name != self.name:
            raise ValueError(f"the optimizer state is for {state.name!r}, but this "
                             f"optimizer is {self.name!r}")
        for k, a in state.arrays.items():
            if a.shape != like.shape or a.dtype != like.dtype:
                raise ValueError(f"{self.name} state {k!r} has shape {a.shape} and "
                                 f"dtype {a.dtype}, but the parameters have shape "
                                 f"{like.shape} and dtype {like.dtype}")
        for k in self.state_names:
            a = state.arrays.get(k)
            # None: created as zeros at the next step, exactly like a fresh optimiser.
            setattr(self, k, None if a is None else np.array(a, copy=True))
        self.t = state.t

    def reset(self) -> None:
        """Forget all state (moments, velocities, step count)."""
        self.t = 0
        for name, value in vars(self).items():
            if isinstance(value, np.ndarray) and not name.startswith("_tmp"):
                value.fill(0)

    def _state(self, name: str, like: np.ndarray) -> np.ndarray:
        arr = getattr(self, name, None)
        if arr is None or arr.shape != like.shape or arr.dtype != like.dtype:
            arr = np.zeros_like(like)
            setattr(self, name, arr)
        return arr

    def _lr_times(self, grad: np.ndarray, lr: float) -> np.ndarray:
        """``lr * grad`` in scratch space; ``grad`` itself when ``lr`` is 1."""
        if lr == 1.0:
            return grad
        out = self._state("_tmp", grad)
        np.multiply(grad, lr, out=out)
        return out

    def step(self, params: np.ndarray, grad: np.ndarray, lr: float) -> None:
        """Update ``params`` in place from the gradient ``grad``.

        Parameters
        ----------
        params, grad : ndarray of shape (n_params,)
            ``grad`` is read, never written.
        lr : float
            Learning rate for this step.
        """
        raise NotImplementedError


class SGD(Optimizer):
    """Plain stochastic gradient descent: ``p -= lr * g``."""

    name = "sgd"

    def step(self, params: np.ndarray, grad: np.ndarray, lr: float) -> None:
        self.t += 1
        np.subtract(params, self._lr_times(grad, lr), out=params)


class Momentum(Optimizer):
    """SGD with classical (heavy-ball) momentum: ``v = mu v - lr g;  p += v``."""

    name = "momentum"
    hyperparameters = ("momentum",)
    state_names = ("velocity",)

    def __init__(self, momentum: float = 0.9) -> None:
        super().__init__()
        self.momentum = momentum
        self.velocity: np.ndarray | None = None

    def step(self, params: np.ndarray, grad: np.ndarray, lr: float) -> None:
        self.t += 1
        v = self._state("velocity", params)
        np.multiply(v, self.momentum, out=v)
        np.subtract(v, self._lr_times(grad, lr), out=v)
        np.add(params, v, out=params)


class Nesterov(Momentum):
    """Nesterov momentum (Sutskever et al., 2013): ``v = mu v - lr g;  p += mu v - lr g``."""

    name = "nesterov"

    def step(self, params: np.ndarray, grad: np.ndarray, lr: float) -> None:
        self.t += 1
        v = self._state("velocity", params)
        look = self._state("_tmp_look", params)
        lr_g = self._lr_times(grad, lr)
        np.multiply(v, self.momentum, out=v)
        np.subtract(v, lr_g, out=v)
        np.multiply(v, self.momentum, out=look)
        np.subtract(look, lr_g, out=look)
        np.add(params, look, out=params)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015, Algorithm 1) with bias-corrected moments."""

    name = "adam"
    hyperparameters = ("beta_1", "beta_2", "epsilon")
    state_names = ("m", "v")

    def __init__(self, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8) -> None:
        super().__init__()
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.m: np.ndarray | None = None
        self.v: np.ndarray | None = None

    def step(self, params: np.ndarray, grad: np.ndarray, lr: float) -> None:
        self.t += 1
        b1, b2 = self.beta_1, self.beta_2
        m = self._state("m", params)
        v = self._state("v", params)
        tmp = self._state("_tmp", params)
        # m = b1 m + (1 - b1) g
        np.multiply(m, b1, out=m)
        np.multiply(grad, 1.0 - b1, out=tmp)
        np.add(m, tmp, out=m)
        # v = b2 v + (1 - b2) g^2
        np.multiply(grad, grad, out=tmp)
        np.multiply(tmp, 1.0 - b2, out=tmp)
        np.multiply(v, b2, out=v)
        np.add(v, tmp, out=v)
        # p -= lr * m_hat / (sqrt(v_hat) + eps), bias corrections as scalars
        bc1 = 1.0 - b1 ** self.t
        bc2 = 1.0 - b2 ** self.t
        np.sqrt(v, out=tmp)
        np.multiply(tmp, 1.0 / np.sqrt(bc2), out=tmp)
        np.add(tmp, self.epsilon, out=tmp)
        np.divide(m, tmp, out=tmp)
        np.multiply(tmp, lr / bc1, out=tmp)
        np.subtract(params, tmp, out=params)


class RMSprop(Optimizer):
    """RMSprop (Tieleman & Hinton, 2012): ``s = rho s + (1 - rho) g**2``,
    ``p -= lr g / (sqrt(s) + eps)``."""

    name = "rmsprop"
    hyperparameters = ("rho", "epsilon")
    state_names = ("s",)

    def __init__(self, rho: float = 0.9, epsilon: float = 1e-8) -> None:
        super().__init__()
        self.rho = rho
        self.epsilon = epsilon
        self.s: np.ndarray | None = None

    def step(self, params: np.ndarray, grad: np.ndarray, lr: float) -> None:
        self.t += 1
        s = self._state("s", params)
        tmp = self._state("_tmp", params)
        np.multiply(grad, grad, out=tmp)
        np.multiply(tmp, 1.0 - self.rho, out=tmp)
        np.multiply(s, self.rho, out=s)
        np.add(s, tmp, out=s)
        np.sqrt(s, out=tmp)
        np.add(tmp, self.epsilon, out=tmp)
        np.divide(grad, tmp, out=tmp)
        np.multiply(tmp, lr, out=tmp)
        np.subtract(params, tmp, out=params)


#: Registry of optimisers by name (the app's option list, in this order).
OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.name: cls for cls in (SGD, Momentum, Nesterov, Adam, RMSprop)}


def make_optimizer(name: str, **hyperparameters: float) -> Optimizer:
    """Build the optimiser called ``name``.

    ``hyperparameters`` may name any :class:`~nn_core.training.TrainConfig`
    optimiser field; each optimiser takes the ones it uses (the others get
    their defaults, and the rest are ignored).

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`OPTIMIZERS`.
    """
    cls = OPTIMIZERS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {name!r}")
    return cls(**{k: v for k, v in hyperparameters.items() if k in cls.hyperparameters})
