"""First-order optimisers that update a flat parameter vector in place.

All the network's weights and biases live in one contiguous vector (see
:mod:`nn_core.network`), so each update below is a handful of whole-vector
operations, whatever the number of layers.

Update rules (``g`` is the gradient, ``lr`` the learning rate, ``t`` the step
number starting at 1):

============  ===============================================================
``sgd``       ``p -= lr * g``
``momentum``  ``v = momentum * v - lr * g;  p += v``
``nesterov``  ``v = momentum * v - lr * g;  p += momentum * v - lr * g``
``adam``      ``m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g**2;``
              ``p -= lr * (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps)``
``rmsprop``   ``s = rho s + (1 - rho) g**2;  p -= lr * g / (sqrt(s) + eps)``
============  ===============================================================

The first three are linear in ``lr * g``. For them the trainer scales the
output-layer delta by ``lr`` (it must scale it by ``1 / batch`` anyway), so the
gradients arrive already multiplied by the learning rate and
:meth:`step_prescaled` saves one pass over the parameters per step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

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
        if self.name not in _STATE_NAMES:
            raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.name!r}")
        if not isinstance(self.arrays, Mapping):
            raise ValueError(f"optimizer state arrays must be a mapping, got "
                             f"{type(self.arrays).__name__}")
        unknown = sorted(set(map(str, self.arrays)) - set(_STATE_NAMES[self.name]))
        if unknown:
            raise ValueError(f"{self.name} has no state called {unknown} (it keeps "
                             f"{list(_STATE_NAMES[self.name])})")
        # Copies are taken here, once, so no caller can alias a live buffer.
        frozen = {str(k): _frozen_copy(v) for k, v in self.arrays.items()}
        object.__setattr__(self, "arrays", MappingProxyType(frozen))

    def __repr__(self) -> str:
        shapes = {k: v.shape for k, v in self.arrays.items()}
        return f"OptimizerState(name={self.name!r}, t={self.t}, arrays={shapes})"


class Optimizer:
    """Base class: ``step(params, grad, lr)`` updates ``params`` in place.

    Subclasses that are linear in ``lr * grad`` set ``prescaled = True`` and
    implement :meth:`step_prescaled`.
    """

    prescaled = False
    #: Registry name (see :data:`OPTIMIZERS`).
    name = ""
    #: Attributes holding per-parameter state that must survive a checkpoint;
    #: everything else (``_tmp*``) is scratch space.
    state_names: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.t = 0  # number of steps taken

    def __repr__(self) -> str:
        return f"{type(self).__name__}(t={self.t})"

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

    def step(self, params: np.ndarray, grad: np.ndarray, lr: float) -> None:
        """Update ``params`` in place from the gradient ``grad``.

        Parameters
        ----------
        params, grad : ndarray of shape (n_params,)
        lr : float
            Learning rate for this step.
        """
        raise NotImplementedError

    def step_prescaled(self, params: np.ndarray, lr_grad: np.ndarray) -> None:
        """Update from ``lr_grad = lr * grad`` (only when ``prescaled``)."""
        raise NotImplementedError


class _Prescaled(Optimizer):
    """An optimiser whose update depends on ``lr * grad`` only."""

    prescaled = True

    def step(self, params: np.ndarray, grad: np.ndarray, lr: float) -> None:
        tmp = self._state("_tmp", grad)
        np.multiply(grad, lr, out=tmp)
        self.step_prescaled(params, tmp)


class SGD(_Prescaled):
    """Plain stochastic gradient descent."""

    name = "sgd"

    def step_prescaled(self, params: np.ndarray, lr_grad: np.ndarray) -> None:
        self.t += 1
        np.subtract(params, lr_grad, out=params)


class Momentum(_Prescaled):
    """SGD with classical (heavy-ball) momentum."""

    name = "momentum"
    state_names = ("velocity",)

    def __init__(self, momentum: float = 0.9) -> None:
        super().__init__()
        self.momentum = momentum
        self.velocity: np.ndarray | None = None

    def step_prescaled(self, params: np.ndarray, lr_grad: np.ndarray) -> None:
        self.t += 1
        v = self._state("velocity", params)
        np.multiply(v, self.momentum, out=v)
        np.subtract(v, lr_grad, out=v)
        np.add(params, v, out=params)


class Nesterov(Momentum):
    """SGD with Nesterov momentum (Sutskever et al., 2013 formulation)."""

    name = "nesterov"

    def step_prescaled(self, params: np.ndarray, lr_grad: np.ndarray) -> None:
        self.t += 1
        v = self._state("velocity", params)
        look = self._state("_tmp_look", params)
        np.multiply(v, self.momentum, out=v)
        np.subtract(v, lr_grad, out=v)
        np.multiply(v, self.momentum, out=look)
        np.subtract(look, lr_grad, out=look)
        np.add(params, look, out=params)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015, Algorithm 1) with bias-corrected moments."""

    name = "adam"
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
    """RMSprop (Tieleman & Hinton, 2012)."""

    name = "rmsprop"
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


OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "rmsprop")

# What OptimizerState may hold for each optimiser (checked when it is built).
_STATE_NAMES = {cls.name: cls.state_names for cls in (SGD, Momentum, Nesterov, Adam, RMSprop)}


def make_optimizer(name: str, *, momentum: float = 0.9, beta_1: float = 0.9,
                   beta_2: float = 0.999, epsilon: float = 1e-8,
                   rho: float = 0.9) -> Optimizer:
    """Build the optimiser called ``name`` with its hyper-parameters."""
    if name == "sgd":
        return SGD()
    if name == "momentum":
        return Momentum(momentum)
    if name == "nesterov":
        return Nesterov(momentum)
    if name == "adam":
        return Adam(beta_1, beta_2, epsilon)
    if name == "rmsprop":
        return RMSprop(rho, epsilon)
    raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {name!r}")
