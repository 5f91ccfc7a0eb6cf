"""Accuracy parity with scikit-learn's MLPClassifier on small data, with the defaults.

Run it from the repository root::

    .venv/bin/python bench/sklearn_parity.py           # the table (about 15 s)
    .venv/bin/python bench/sklearn_parity.py --he      # plus a column with init="he_normal"

Iris, wine and breast cancer: a stratified 75/25 split (``random_state=0``),
features standardised on the training part, hidden layers (64, 32), ReLU, Adam
with learning rate 0.001, batch 32, 200 epochs, no L2, seeds 0, 1, 2.
nn_core runs with its defaults otherwise (``init="auto"``: Glorot/Xavier
normal, float32); scikit-learn runs all 200 epochs (its loss-based early stop is
switched off). The target: nn_core's mean test accuracy within two test samples
of scikit-learn's on each data set (``tests/test_parity.py`` asserts it).
"""

from __future__ import annotations

import os
import sys

# One BLAS thread, as everywhere in the benchmarks; before NumPy loads BLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Run as a script (bench/ is sys.path[0]): make the repository's nn_core importable.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from nn_core import NeuralNetworkClassifier

DATASETS: dict[str, Callable] = {"iris": load_iris, "wine": load_wine,
                                 "breast cancer": load_breast_cancer}
SEEDS = (0, 1, 2)
HIDDEN = (64, 32)
LEARNING_RATE = 0.001
BATCH_SIZE = 32
EPOCHS = 200
#: The largest accepted gap between the mean accuracies, in test samples.
MAX_GAP_SAMPLES = 2


@dataclass(frozen=True)
class Split:
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


def split(name: str) -> Split:
    """Stratified 75/25 split, standardised on the training part."""
    X, y = DATASETS[name](return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, stratify=y,
                                              random_state=0)
    scaler = StandardScaler().fit(X_tr)
    return Split(scaler.transform(X_tr), scaler.transform(X_te), y_tr, y_te)


def nn_core_accuracy(data: Split, seed: int, init: str = "auto") -> float:
    clf = NeuralNetworkClassifier(hidden_layer_sizes=HIDDEN, optimizer="adam",
                                  learning_rate=LEARNING_RATE, batch_size=BATCH_SIZE,
                                  epochs=EPOCHS, init=init, random_state=seed)
    return float(clf.fit(data.X_train, data.y_train).score(data.X_test, data.y_test))


def sklearn_accuracy(data: Split, seed: int) -> float:
    clf = MLPClassifier(hidden_layer_sizes=HIDDEN, activation="relu", solver="adam",
                        learning_rate_init=LEARNING_RATE, batch_size=BATCH_SIZE,
                        max_iter=EPOCHS, alpha=0.0, n_iter_no_change=10**9, tol=0.0,
                        random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # "200 iterations reached"
        clf.fit(data.X_train, data.y_train)
    assert clf.n_iter_ == EPOCHS, clf.n_iter_
    return float(clf.score(data.X_test, data.y_test))


@dataclass(frozen=True)
class ParityRow:
    """One data set: test accuracy per seed for each library."""

    dataset: str
    n_test: int
    nn_core: tuple[float, ...]
    sklearn: tuple[float, ...]
    he: tuple[float, ...] | None = None  # nn_core with init="he_normal" (optional)

    @property
    def gap_samples(self) -> float:
        """nn_core's mean accuracy minus scikit-learn's, in test samples."""
        return (float(np.mean(self.nn_core)) - float(np.mean(self.sklearn))) * self.n_test


def parity(datasets: tuple[str, ...] = tuple(DATASETS), seeds: tuple[int, ...] = SEEDS,
           he: bool = False) -> list[ParityRow]:
    rows = []
    for name in datasets:
        data = split(name)
        rows.append(ParityRow(
            name, len(data.y_test), tuple(nn_core_accuracy(data, s) for s in seeds),
            tuple(sklearn_accuracy(data, s) for s in seeds),
            tuple(nn_core_accuracy(data, s, "he_normal") for s in seeds) if he else None))
    return rows


def table(rows: list[ParityRow]) -> str:
    def cell(accs: tuple[float, ...]) -> str:
        return f"{np.mean(accs):.3f} ({', '.join(f'{a:.3f}' for a in accs)})"

    he = rows[0].he is not None
    head = ("| data set | test samples | nn_core (Glorot, default) | scikit-learn |"
            + (" nn_core, He |" if he else "") + " gap (samples) |")
    lines = [head, "|---|---:|---|---|" + ("---|" if he else "") + "---:|"]
    for r in rows:
        lines.append(f"| {r.dataset} | {r.n_test} | {cell(r.nn_core)} | {cell(r.sklearn)} |"
                     + (f" {cell(r.he)} |" if he else "") + f" {r.gap_samples:+.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--he", action="store_true",
                        help='add a column with init="he_normal" (the old default for ReLU)')
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    rows = parity(he=args.he)
    print(f"mean test accuracy over seeds {SEEDS} (each seed's in brackets); hidden {HIDDEN}, "
          f"Adam {LEARNING_RATE}, batch {BATCH_SIZE}, {EPOCHS} epochs, alpha 0\n")
    print(table(rows))
    ok = all(abs(r.gap_samples) <= MAX_GAP_SAMPLES for r in rows)
    print(f"\nwithin {MAX_GAP_SAMPLES} test samples of scikit-learn on every data set: "
          f"{'yes' if ok else 'NO'}  ({time.perf_counter() - t0:.1f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
