"""Learning-rate schedules.

The learning rate changes once per epoch. ``constant``, ``step``, ``cosine``
and ``invscaling`` are pure functions of the epoch index (0-based) so a run can
be resumed or replotted without state; ``plateau`` reacts to the monitored loss
and is therefore a small object (:class:`ReduceOnPlateau`). :data:`SCHEDULES`
maps each name to the rule that gives an epoch's rate from the run's settings;
the app's option list is read from it.

=============  =====================================================================
``constant``   ``lr0``
``step``       ``lr0 * decay ** (epoch // step_size)``  (step_size defaults to a
               quarter of the planned epochs, so the rate halves three times)
``cosine``     ``lr_min + (lr0 - lr_min) * (1 + cos(pi * epoch / epochs)) / 2``
``invscaling`` ``lr0 / (epoch + 1) ** power_t``
``plateau``    multiply by ``decay`` when the monitored loss has not improved by
               a relative ``1e-4`` for ``patience`` epochs, never below ``lr_min``
=============  =====================================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["SCHEDULES", "PlateauState", "ReduceOnPlateau", "ScheduleSettings", "constant",
           "cosine", "invscaling", "step", "step_size"]


def constant(lr0: float, epoch: int) -> float:
    """Return ``lr0`` for every epoch."""
    return lr0


def step(lr0: float, epoch: int, step_size: int, decay: float = 0.5) -> float:
    """Step decay: multiply by ``decay`` every ``step_size`` epochs."""
    return lr0 * decay ** (epoch // max(1, step_size))


def cosine(lr0: float, epoch: int, epochs: int, lr_min: float = 0.0) -> float:
    """Cosine annealing from ``lr0`` (epoch 0) towards ``lr_min`` (epoch ``epochs``)."""
    # 1. progress in [0, 1]; clamped so extra epochs stay at lr_min
    progress = min(epoch / max(1, epochs), 1.0)
    # 2. half a cosine period maps progress 0 -> 1 and 1 -> 0
    return lr_min + (lr0 - lr_min) * 0.5 * (1.0 + math.cos(math.pi * progress))


def invscaling(lr0: float, epoch: int, power_t: float = 0.5) -> float:
    """Inverse scaling: ``lr0 / (epoch + 1) ** power_t``."""
    return lr0 / (epoch + 1) ** power_t


class ScheduleSettings(Protocol):
    """The settings a schedule reads (:class:`~nn_core.training.TrainConfig` has them)."""

    learning_rate: float
    epochs: int
    lr_decay: float
    lr_step_size: int | None
    lr_min: float
    power_t: float


def step_size(settings: ScheduleSettings) -> int:
    """Epochs between two cuts of ``step``: ``lr_step_size``, or a quarter of the epochs."""
    return settings.lr_step_size or max(1, settings.epochs // 4)


#: The rate of epoch ``epoch`` (0-based) under the settings ``s``.
Rule = Callable[[ScheduleSettings, int], float]

#: Registry of schedules by name: the rule of each, or ``None`` for ``plateau``,
#: whose rate is the state of a :class:`ReduceOnPlateau` fed the monitored loss.
SCHEDULES: dict[str, Rule | None] = {
    "constant": lambda s, epoch: constant(s.learning_rate, epoch),
    "step": lambda s, epoch: step(s.learning_rate, epoch, step_size(s), s.lr_decay),
    "cosine": lambda s, epoch: cosine(s.learning_rate, epoch, s.epochs, s.lr_min),
    "invscaling": lambda s, epoch: invscaling(s.learning_rate, epoch, s.power_t),
    "plateau": None,
}


@dataclass(frozen=True)
class PlateauState:
    """What :class:`ReduceOnPlateau` remembers between epochs (for checkpoints)."""

    lr: float  # the rate of the next epoch
    best: float  # lowest monitored loss so far (inf before the first epoch)
    bad_epochs: int  # epochs since ``best`` last improved

    def __post_init__(self) -> None:
        def real(v: object) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool)

        if not real(self.lr) or not math.isfinite(self.lr) or self.lr < 0:
            raise ValueError(f"plateau learning rate must be finite and >= 0, got "
                             f"{self.lr!r}")
        if not real(self.best) or math.isnan(self.best) or self.best == -math.inf:
            raise ValueError(f"plateau best loss must be a number or +inf, got "
                             f"{self.best!r}")
        if not isinstance(self.bad_epochs, int) or isinstance(self.bad_epochs, bool) \
                or self.bad_epochs < 0:
            raise ValueError(f"plateau bad_epochs must be an integer >= 0, got "
                             f"{self.bad_epochs!r}")


class ReduceOnPlateau:
    """Cut the learning rate when the monitored loss stops improving.

    Parameters
    ----------
    lr0 : float
        Starting learning rate.
    decay : float
        Factor applied on a plateau.
    patience : int
        Epochs without improvement before cutting.
    lr_min : float
        Floor for the learning rate.
    """

    def __init__(self, lr0: float, decay: float = 0.5, patience: int = 5,
                 lr_min: float = 0.0) -> None:
        # A Python float whatever was passed, so a restored state (read back
        # from JSON) continues with exactly the same arithmetic.
        self.lr = float(lr0)
        self.decay = decay
        self.patience = patience
        self.lr_min = lr_min
        self.best = math.inf
        self.bad_epochs = 0

    def __repr__(self) -> str:
        return (f"ReduceOnPlateau(lr={self.lr:g}, best={self.best:g}, "
                f"bad_epochs={self.bad_epochs})")

    def get_state(self) -> PlateauState:
        """The evolving part (rate, best loss, patience counter)."""
        return PlateauState(float(self.lr), float(self.best), int(self.bad_epochs))

    def set_state(self, state: PlateauState) -> None:
        """Continue from ``state`` (validated when it was built)."""
        self.lr, self.best, self.bad_epochs = state.lr, state.best, state.bad_epochs

    def update(self, loss: float) -> float:
        """Record the epoch's monitored loss; return the rate for the next epoch."""
        if math.isinf(self.best) or loss < self.best - 1e-4 * abs(self.best):
            self.best = loss
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs >= self.patience:
                self.lr = max(self.lr * self.decay, self.lr_min)
                self.bad_epochs = 0
        return self.lr
