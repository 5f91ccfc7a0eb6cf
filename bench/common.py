"""Helpers shared by ``jobs_bench.py`` and ``train_bench.py``.

Imported as ``from common import ...`` (the scripts run as ``python bench/x.py``,
so ``bench/`` is on ``sys.path``). Sets no environment variables and imports
nothing heavier than NumPy at module level: ``train_bench.py`` pins BLAS threads
before NumPy loads, and scikit-learn is only imported when the data are loaded.
"""

from __future__ import annotations

import dataclasses
import math
import platform
import statistics
from collections.abc import Sequence

import numpy as np

#: The seed Digits split: ``train_test_split(test_size=TEST_SIZE, random_state=SPLIT_STATE)``.
TEST_SIZE = 0.2
SPLIT_STATE = 3


@dataclasses.dataclass(frozen=True)
class Digits:
    """The seed Digits split: standardised float32 features, labels, the scaler's fit."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    mean: np.ndarray
    scale: np.ndarray


def digits_split(label_dtype: type[np.integer]) -> Digits:
    """load_digits, 80/20 (random_state=3), StandardScaler fit on train, C-contiguous float32.

    ``label_dtype`` is the labels' dtype (e.g. ``np.int64`` or ``np.intp``).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=TEST_SIZE,
                                              random_state=SPLIT_STATE)
    scaler = StandardScaler().fit(X_tr)

    def f32(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(scaler.transform(a), dtype=np.float32)

    return Digits(f32(X_tr), y_tr.astype(label_dtype), f32(X_te), y_te.astype(label_dtype),
                  scaler.mean_, scaler.scale_)


def median(values: Sequence[float]) -> float:
    """The median, NaN when ``values`` is empty."""
    return statistics.median(values) if values else math.nan


def cpu_model() -> str:
    """The CPU's "model name" from /proc/cpuinfo (else ``platform.processor()``)."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return cpu
