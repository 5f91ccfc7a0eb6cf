"""Training benchmark: nn_core against scikit-learn's MLPClassifier and PyTorch (CPU).

Run it from the repository root::

    make bench                                    # this script, then the other benchmarks
    .venv/bin/python bench/train_bench.py         # full run (a few minutes)
    .venv/bin/python bench/train_bench.py --quick # smoke run (fewer epochs and repetitions)
    .venv/bin/python bench/train_bench.py --cases digits-b32 --repeats 7 --json out.json

    # before/after a change: this nn_core against another copy (e.g. HEAD's), alternating
    git archive HEAD nn_core | tar -x -C /tmp/nn_head   # after mkdir -p /tmp/nn_head
    .venv/bin/python bench/train_bench.py --baseline /tmp/nn_head --repeats 15

PyTorch is optional: without it the torch column is skipped (install the CPU wheel
with ``.venv/bin/pip install torch==2.13.0``; it is deliberately not in any
requirements file).

What is measured
----------------
* Every library trains the same architecture with plain mini-batch SGD (no
  momentum, no L2, constant learning rate, reshuffle every epoch, last partial
  batch kept) on the same float32 data, on **one BLAS/OpenMP thread**.
* Repetitions are *interleaved*: within a repetition nn_core, scikit-learn,
  PyTorch and the matrix-product floor run one after another, and the order
  rotates between repetitions, so machine noise hits all of them alike. Times
  are medians; "paired" ratios are medians of per-repetition ratios.
* Seeds 0, 1, 2 cycle over the repetitions; test accuracy is the mean over the
  seeds (each seed's runs averaged first).
* The *matrix-product floor* is the time of the eight matrix products of a
  training epoch with nn_core's exact shapes and memory layout, called in a
  Python loop over the epoch's batches (including the last partial one), as the
  training loop does. "x floor" = nn_core's ms/epoch (from the whole fit) over the
  floor's ms/epoch: everything besides the products (Python overhead,
  activations, softmax, optimiser, shuffling) is the excess over 1.
* ``--baseline DIR`` instead times this nn_core against the copy in
  ``DIR/nn_core``, imported as a second package in the same process; the two
  alternate (the order flips every repetition) with the same seeds, and the
  result is the median of the per-repetition time ratios with its quartiles,
  plus whether both trained the same loss curves. ``--textbook`` adds
  :func:`nn_core.textbook.train` (float64) to that rotation.
* For synthetic-large also: GFLOP/s of each product and of the whole floor, the
  FLOPs of one training epoch, and the fraction of that matmul bound that each
  library's training reaches; and nn_core's peak memory during ``fit`` (measured
  with ``tracemalloc`` in a fresh subprocess, ``--memory-only``) against
  data + model + one batch of activations.
"""

from __future__ import annotations

import os
import sys

# One BLAS thread for everything; must be set before NumPy (or PyTorch) loads BLAS.
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"
# Run as a script (bench/ is sys.path[0]): make the repository's nn_core importable.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse
import contextlib
import gc
import importlib
import importlib.util
import itertools
import json
import math
import platform
import statistics
import subprocess
import time
import tracemalloc
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sklearn
from common import cpu_model, digits_split, median
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_info, threadpool_limits

from nn_core import NeuralNetworkClassifier, TrainConfig, textbook
from nn_core.network import Network

SEEDS = (0, 1, 2)
LIBS = ("nn_core", "sklearn", "torch")
LIB_LABELS = {"nn_core": "nn_core", "sklearn": "scikit-learn", "torch": "PyTorch",
              "floor": "matmul floor"}
#: Seconds one floor measurement should take (repeated epochs of products).
FLOOR_TARGET_SECONDS = 0.5
#: Largest accepted gap between nn_core's and scikit-learn's mean test accuracy.
ACCURACY_GAP_PP = 0.5
#: The memory target: peak during fit over data + model + one batch of activations.
MEMORY_TARGET_RATIO = 1.5


# ---------------------------------------------------------------------------
# data sets and cases
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Dataset:
    """Train/test split, float32 features and int64 labels 0..n_classes-1."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    description: str

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def load_digits_data() -> Dataset:
    """scikit-learn's 8x8 digits, split 80/20 (random_state=3), standardised on train."""
    d = digits_split(np.int64)
    return Dataset(d.X_train, d.y_train, d.X_test, d.y_test,
                   "load_digits, StandardScaler fit on train, test_size=0.2, random_state=3")


def make_synthetic_data(n_train: int = 20_000, n_test: int = 5_000, n_features: int = 784,
                        n_classes: int = 10, seed: int = 1234) -> Dataset:
    """An MNIST-sized synthetic problem with a known generator.

    Each class is a mixture of two Gaussian blobs (unit variance, centres
    ~ N(0, I)) in a 32-dimensional latent space; the latent points are embedded
    in ``n_features`` dimensions by a fixed random linear map followed by
    ``tanh``, plus unit Gaussian noise on every feature. Classes overlap, so
    accuracy after a few epochs of plain SGD is high but below 100 %.
    """
    latent, per_class = 32, 2
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_classes, per_class, latent)).astype(np.float32)
    embed = (rng.standard_normal((latent, n_features)) / np.sqrt(latent)).astype(np.float32)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, n_classes, n)
        z = centres[y, rng.integers(0, per_class, n)]
        z += rng.standard_normal((n, latent), dtype=np.float32)
        X = np.tanh(z @ embed)
        X += rng.standard_normal((n, n_features), dtype=np.float32)
        return np.ascontiguousarray(X, dtype=np.float32), y.astype(np.int64)

    X_train, y_train = draw(n_train)
    X_test, y_test = draw(n_test)
    return Dataset(X_train, y_train, X_test, y_test,
                   f"synthetic: {n_classes} classes x 2 Gaussian blobs in 32-d latent, "
                   f"tanh(random linear map) to {n_features} features + N(0,1) noise, "
                   f"generator seed {seed}")


@dataclass(frozen=True)
class Case:
    """One benchmark configuration."""

    name: str
    data: Callable[[], Dataset]
    hidden: tuple[int, ...]
    batch_size: int
    epochs: int
    learning_rate: float
    repeats: int
    per_product: bool = False  # GFLOP/s per product and matmul-bound fraction
    memory: bool = False  # peak-memory measurement in a subprocess


CASES: dict[str, Case] = {
    "digits-b32": Case("digits-b32", load_digits_data, (64, 32), 32, 500, 0.01, repeats=5),
    "digits-b256": Case("digits-b256", load_digits_data, (64, 32), 256, 500, 0.01, repeats=5),
    "synthetic-large": Case("synthetic-large", make_synthetic_data, (256, 128), 256, 5, 0.01,
                            repeats=5, per_product=True, memory=True),
}
QUICK_EPOCHS = {"digits-b32": 20, "digits-b256": 20, "synthetic-large": 1}
QUICK_REPEATS = 3


# ---------------------------------------------------------------------------
# the three trainers: each returns (fit seconds, test accuracy)
# ---------------------------------------------------------------------------
def _timed(fit: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    t0 = time.perf_counter()
    model = fit()
    return time.perf_counter() - t0, model


def nn_core_classifier(case: Case, seed: int, epochs: int) -> NeuralNetworkClassifier:
    """nn_core's classifier for ``case``: plain SGD, the same set-up as MLPClassifier's."""
    # init="glorot_uniform": the same initial-weight distribution as scikit-learn's
    # MLPClassifier (uniform, bound sqrt(6 / (fan_in + fan_out))), so the accuracy
    # comparison is between equal configurations (nn_core's default for relu is He).
    return NeuralNetworkClassifier(hidden_layer_sizes=case.hidden, activation="relu",
                                   optimizer="sgd", learning_rate=case.learning_rate,
                                   batch_size=case.batch_size, epochs=epochs,
                                   init="glorot_uniform", random_state=seed)


def run_nn_core(case: Case, data: Dataset, seed: int, epochs: int) -> tuple[float, float]:
    clf = nn_core_classifier(case, seed, epochs)
    seconds, clf = _timed(lambda: clf.fit(data.X_train, data.y_train))
    if clf.n_iter_ != epochs or clf.status_ != "completed":
        raise RuntimeError(f"nn_core ran {clf.n_iter_} of {epochs} epochs ({clf.status_})")
    return seconds, float(np.mean(clf.predict(data.X_test) == data.y_test))


def run_sklearn(case: Case, data: Dataset, seed: int, epochs: int) -> tuple[float, float]:
    clf = MLPClassifier(hidden_layer_sizes=case.hidden, activation="relu", solver="sgd",
                        learning_rate_init=case.learning_rate, momentum=0.0,
                        nesterovs_momentum=False, alpha=0.0, batch_size=case.batch_size,
                        max_iter=epochs, n_iter_no_change=10**9, tol=0.0, shuffle=True,
                        random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        seconds, clf = _timed(lambda: clf.fit(data.X_train, data.y_train))
    if clf.n_iter_ != epochs:
        raise RuntimeError(f"MLPClassifier stopped after {clf.n_iter_} of {epochs} epochs")
    return seconds, float(np.mean(clf.predict(data.X_test) == data.y_test))


def load_torch() -> Any | None:
    """PyTorch on one thread, or ``None`` if it is not installed."""
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        return None
    torch.set_num_threads(1)
    # only allowed before any inter-op work has started
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)
    return torch


def run_torch(torch: Any, case: Case, data: Dataset, seed: int,
              epochs: int) -> tuple[float, float]:
    nn = torch.nn
    X = torch.from_numpy(data.X_train)
    y = torch.from_numpy(data.y_train)

    def fit() -> Any:
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        sizes = (data.n_features, *case.hidden)
        modules: list[Any] = []
        for n_in, n_out in itertools.pairwise(sizes):
            modules += [nn.Linear(n_in, n_out), nn.ReLU()]
        model = nn.Sequential(*modules, nn.Linear(sizes[-1], data.n_classes))
        loss_fn = nn.CrossEntropyLoss()
        opt = torch.optim.SGD(model.parameters(), lr=case.learning_rate)
        n, b = X.shape[0], case.batch_size
        model.train()
        for _ in range(epochs):
            perm = torch.randperm(n, generator=gen)
            for start in range(0, n, b):  # the last, partial batch is kept
                idx = perm[start:start + b]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(X[idx]), y[idx])
                loss.backward()
                opt.step()
        return model

    seconds, model = _timed(fit)
    model.eval()
    with torch.inference_mode():
        pred = model(torch.from_numpy(data.X_test)).argmax(dim=1).numpy()
    return seconds, float(np.mean(pred == data.y_test))


# ---------------------------------------------------------------------------
# matrix-product floor with nn_core's shapes and layout
# ---------------------------------------------------------------------------
@dataclass
class Product:
    """One ``np.dot(a, b, out=out)`` call of a training step.

    nn_core's training step calls ``np.dot`` for its eight products (about 1 us
    cheaper per call than ``np.matmul`` at these sizes), so the floor does too.
    """

    label: str
    a: np.ndarray
    b: np.ndarray
    out: np.ndarray

    @property
    def flops(self) -> int:
        m, k = self.a.shape
        return 2 * m * k * self.b.shape[1]


@dataclass
class FloorPlan:
    """The eight products of every batch of one epoch, on preallocated buffers.

    Shapes and layout follow nn_core's training step (see nn_core/layers.py):
    feature-major activations ``(n_in + 1, batch)`` with a row of ones, the
    input batch being the transpose of a row-major ``(batch, n_features + 1)``
    block, and the weights/gradients taken from a real :class:`Network`.
    """

    batches: list[list[Product]] = field(default_factory=list)
    _calls: list[tuple] | None = None

    @property
    def flops(self) -> int:
        return sum(p.flops for batch in self.batches for p in batch)

    def run_epoch(self) -> None:
        dot = np.dot
        calls = self._calls
        if calls is None:  # plain tuples: no attribute lookups inside the timed loop
            calls = self._calls = [(p.a, p.b, p.out) for batch in self.batches for p in batch]
        for a, b, out in calls:
            dot(a, b, out=out)

    def time_epochs(self, n_epochs: int) -> float:
        """Mean seconds per epoch over ``n_epochs`` epochs."""
        t0 = time.perf_counter()
        for _ in range(n_epochs):
            self.run_epoch()
        return (time.perf_counter() - t0) / n_epochs

    def time_products(self) -> list[float]:
        """Seconds per epoch of each of the eight products, each timed on its own."""
        out = []
        for j in range(len(self.batches[0])):
            calls = [(b[j].a, b[j].b, b[j].out) for b in self.batches]
            t0 = time.perf_counter()
            for a, b, o in calls:
                np.dot(a, b, out=o)
            out.append(time.perf_counter() - t0)
        return out


def build_floor_plan(n_samples: int, n_features: int, hidden: tuple[int, ...],
                     n_classes: int, batch_size: int, seed: int = 0) -> FloorPlan:
    rng = np.random.default_rng(seed)
    net = Network(n_features, hidden, n_classes, "relu", "auto", np.float32, rng)
    layers = net.layers
    dt = net.dtype
    widths = [min(batch_size, n_samples - s) for s in range(0, n_samples, batch_size)]
    buffers: dict[int, list[Product]] = {}
    plan = FloorPlan()
    for w in widths:
        if w not in buffers:
            xb = np.ones((w, n_features + 1), dtype=dt)  # row-major batch, last column ones
            xb[:, :-1] = rng.standard_normal((w, n_features), dtype=dt)
            inputs = [xb.T]  # (n_features + 1, w), a transposed view
            outputs = []
            for layer in layers[:-1]:
                A = np.ones((layer.n_out + 1, w), dtype=dt)  # last row ones
                inputs.append(A)
                outputs.append(A[:-1])
            logits = np.empty((n_classes, w), dtype=dt)
            outputs.append(logits)
            # deltas[i]: gradient w.r.t. layer i's pre-activation, (n_out_i, w)
            deltas = [0.01 * rng.standard_normal((layer.n_out, w), dtype=dt)
                      for layer in layers[:-1]] + [logits]
            products = []
            for i, layer in enumerate(layers):
                products.append(Product(f"L{i + 1} forward  Wb.T @ A_prev",
                                        layer.Wb.T, inputs[i], outputs[i]))
            for i in range(len(layers) - 1, -1, -1):
                layer = layers[i]
                products.append(Product(f"L{i + 1} backward A_prev @ delta.T",
                                        inputs[i], deltas[i].T, layer.dWb))
                if i > 0:
                    products.append(Product(f"L{i + 1} backward W @ delta",
                                            layer.W, deltas[i], deltas[i - 1]))
            buffers[w] = products
        plan.batches.append(buffers[w])
    return plan


def product_shapes(plan: FloorPlan) -> list[str]:
    return [f"({p.a.shape[0]}x{p.a.shape[1]}) @ ({p.b.shape[0]}x{p.b.shape[1]})"
            for p in plan.batches[0]]


# ---------------------------------------------------------------------------
# running a case
# ---------------------------------------------------------------------------
def run_case(case: Case, libs: list[str], torch: Any | None, epochs: int, repeats: int,
             log: Callable[[str], None]) -> dict[str, Any]:
    data = case.data()
    n_train = data.X_train.shape[0]
    n_batches = math.ceil(n_train / case.batch_size)
    plan = build_floor_plan(n_train, data.n_features, case.hidden, data.n_classes,
                            case.batch_size)

    runners: dict[str, Callable[[int, int], tuple[float, float]]] = {
        "nn_core": lambda seed, ep: run_nn_core(case, data, seed, ep),
        "sklearn": lambda seed, ep: run_sklearn(case, data, seed, ep),
    }
    if torch is not None:
        runners["torch"] = lambda seed, ep: run_torch(torch, case, data, seed, ep)
    active = [lib for lib in libs if lib in runners]

    # Warm-up (untimed): first-call costs such as imports, allocator growth and
    # PyTorch's lazy initialisation stay out of the measurements.
    for lib in active:
        runners[lib](0, min(epochs, 2))
    plan.run_epoch()
    t_epoch = plan.time_epochs(1)
    floor_epochs = max(1, math.ceil(FLOOR_TARGET_SECONDS / max(t_epoch, 1e-6)))
    if case.per_product:
        plan.time_products()

    tasks = [*active, "floor"]
    runs: dict[str, list[dict[str, Any]]] = {lib: [] for lib in active}
    floor_s: list[float] = []
    product_s: list[list[float]] = []
    for rep in range(repeats):
        seed = SEEDS[rep % len(SEEDS)]
        order = tasks[rep % len(tasks):] + tasks[:rep % len(tasks)]
        for task in order:
            if task == "floor":
                floor_s.append(plan.time_epochs(floor_epochs))
                if case.per_product:
                    product_s.append(plan.time_products())
                continue
            seconds, acc = runners[task](seed, epochs)
            runs[task].append({"rep": rep, "seed": seed, "seconds": seconds,
                               "accuracy": acc})
        log(f"  rep {rep + 1}/{repeats} (seed {seed}, order {' > '.join(order)}): "
            + ", ".join(f"{lib} {runs[lib][-1]['seconds']:.2f}s" for lib in active)
            + f", floor {floor_s[-1] * 1e3:.2f} ms/epoch")

    summary: dict[str, dict[str, Any]] = {}
    for lib in active:
        secs = [r["seconds"] for r in runs[lib]]
        per_seed: dict[int, list[float]] = {}
        for r in runs[lib]:
            per_seed.setdefault(r["seed"], []).append(r["accuracy"])
        seed_acc = {s: statistics.fmean(v) for s, v in sorted(per_seed.items())}
        summary[lib] = {
            "median_seconds": median(secs), "min_seconds": min(secs),
            "max_seconds": max(secs),
            "ms_per_epoch": median(secs) / epochs * 1e3,
            "accuracy": statistics.fmean(seed_acc.values()),
            "accuracy_per_seed": {str(s): a for s, a in seed_acc.items()},
            "deterministic": all(len(set(v)) == 1 for v in per_seed.values()),
            "n_seeds": len(seed_acc),
        }
        if lib != "nn_core" and "nn_core" in runs:
            base = {r["rep"]: r["seconds"] for r in runs["nn_core"]}
            paired = [r["seconds"] / base[r["rep"]] for r in runs[lib]]
            summary[lib]["ratio_vs_nn_core"] = (summary[lib]["median_seconds"]
                                                / summary["nn_core"]["median_seconds"])
            summary[lib]["paired_ratio_vs_nn_core"] = median(paired)

    floor_ms = median(floor_s) * 1e3
    flops = plan.flops
    result: dict[str, Any] = {
        "case": case.name, "data": data.description, "n_train": n_train,
        "n_test": data.X_test.shape[0], "n_features": data.n_features,
        "n_classes": data.n_classes, "hidden": list(case.hidden),
        "batch_size": case.batch_size, "batches_per_epoch": n_batches,
        "epochs": epochs, "learning_rate": case.learning_rate, "repeats": repeats,
        "libraries": summary, "runs": runs,
        "floor": {"ms_per_epoch": floor_ms, "samples_ms": [s * 1e3 for s in floor_s],
                  "epochs_per_sample": floor_epochs, "flops_per_epoch": flops,
                  "gflops": flops / (floor_ms * 1e-3) / 1e9,
                  "product_shapes": product_shapes(plan)},
    }
    if "nn_core" in summary:
        result["floor"]["nn_core_x_floor"] = summary["nn_core"]["ms_per_epoch"] / floor_ms
    if case.per_product:
        med = [median([p[j] for p in product_s]) for j in range(len(product_s[0]))]
        products = []
        for j, (p, shape) in enumerate(zip(plan.batches[0], product_shapes(plan))):
            product_flops = sum(b[j].flops for b in plan.batches)
            products.append({"label": p.label, "shape": shape, "ms_per_epoch": med[j] * 1e3,
                             "flops_per_epoch": product_flops,
                             "gflops": product_flops / med[j] / 1e9})
        result["floor"]["products"] = products
        for s in summary.values():
            s["achieved_gflops"] = flops / (s["ms_per_epoch"] * 1e-3) / 1e9
            s["fraction_of_matmul_bound"] = floor_ms / s["ms_per_epoch"]
    return result


# ---------------------------------------------------------------------------
# before / after: this nn_core against another copy of it
# ---------------------------------------------------------------------------
def load_baseline(path: str, name: str = "nn_core_baseline") -> Any:
    """Import the package ``path/nn_core`` under the name ``name`` (its imports are relative)."""
    init = os.path.join(os.path.abspath(path), "nn_core", "__init__.py")
    if not os.path.exists(init):
        raise SystemExit(f"--baseline: no {init}; extract one with "
                         f"`git archive HEAD nn_core | tar -x -C {path}`")
    spec = importlib.util.spec_from_file_location(
        name, init, submodule_search_locations=[os.path.dirname(init)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _timed_cpu(fit: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall seconds, CPU seconds of this process, and the result of ``fit()``."""
    gc.collect()
    c0 = time.process_time()
    seconds, result = _timed(fit)
    return seconds, time.process_time() - c0, result


def run_textbook(case: Case, data: Dataset, seed: int,
                 epochs: int) -> tuple[float, float, list]:
    """nn_core.textbook.train (float64) on ``case``: the code the How it works page shows."""
    rng = np.random.default_rng(seed)
    sizes = [data.n_features, *case.hidden, data.n_classes]
    net = textbook.Network.create(sizes, "relu", rng, init="glorot_uniform")
    config = TrainConfig(optimizer="sgd", learning_rate=case.learning_rate,
                         batch_size=case.batch_size, epochs=epochs)
    seconds, cpu, history = _timed_cpu(lambda: textbook.train(net, data.X_train, data.y_train,
                                                              config, rng))
    return seconds, cpu, [e.loss for e in history]


def run_against_baseline(case: Case, baseline: Any, epochs: int, repeats: int,
                         with_textbook: bool, log: Callable[[str], None]) -> dict[str, Any]:
    data = case.data()
    classes = {"nn_core": NeuralNetworkClassifier,
               "baseline": baseline.NeuralNetworkClassifier}

    def fit(lib: str, seed: int, ep: int) -> tuple[float, float, list]:
        if lib == "textbook":
            return run_textbook(case, data, seed, ep)
        clf = classes[lib](hidden_layer_sizes=case.hidden, activation="relu", optimizer="sgd",
                           learning_rate=case.learning_rate, batch_size=case.batch_size,
                           epochs=ep, init="glorot_uniform", random_state=seed)
        seconds, cpu, clf = _timed_cpu(lambda: clf.fit(data.X_train, data.y_train))
        return seconds, cpu, list(clf.loss_curve_)

    libs = ["nn_core", "baseline"] + (["textbook"] if with_textbook else [])
    for lib in libs:  # warm-up, untimed
        fit(lib, 0, min(epochs, 2))
    times: dict[str, list[float]] = {lib: [] for lib in libs}
    cpu: dict[str, list[float]] = {lib: [] for lib in libs}
    same_curves = True
    for rep in range(repeats):
        seed = SEEDS[rep % len(SEEDS)]
        order = libs[rep % len(libs):] + libs[:rep % len(libs)]
        curves = {}
        for lib in order:
            seconds, cpu_seconds, curves[lib] = fit(lib, seed, epochs)
            times[lib].append(seconds)
            cpu[lib].append(cpu_seconds)
        same_curves &= curves["nn_core"] == curves["baseline"]
        log(f"  rep {rep + 1}/{repeats} (seed {seed}, order {' > '.join(order)}): "
            + ", ".join(f"{lib} {times[lib][-1]:.3f}s (cpu {cpu[lib][-1]:.3f}s)"
                        for lib in libs))

    def paired(t: dict[str, list[float]]) -> dict[str, Any]:
        ratios = sorted(a / b for a, b in zip(t["nn_core"], t["baseline"]))
        q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        return {"median_seconds": {lib: median(v) for lib, v in t.items()},
                "paired_ratio": median(ratios), "ratio_quartiles": [q[0], q[2]]}

    return {"case": case.name, "epochs": epochs, "repeats": repeats, "wall": paired(times),
            "cpu": paired(cpu), "times": times, "cpu_times": cpu,
            "same_loss_curves": same_curves}


def print_against_baseline(res: dict[str, Any], baseline_path: str) -> None:
    print(f"\n{res['case']} ({res['epochs']} epochs, {res['repeats']} alternating repetitions)")
    for clock in ("wall", "cpu"):
        r = res[clock]
        med = r["median_seconds"]
        line = (f"  {clock:4s}  nn_core {med['nn_core']:.3f} s, baseline {med['baseline']:.3f} s"
                f" (medians)")
        if "textbook" in med:
            line += (f", nn_core.textbook (float64) {med['textbook']:.3f} s = "
                     f"{med['textbook'] / med['nn_core']:.1f}x nn_core")
        lo, hi = r["ratio_quartiles"]
        print(line)
        print(f"        this / baseline: paired median {r['paired_ratio']:.3f} (quartiles "
              f"{lo:.3f} to {hi:.3f}); ratio of medians {med['nn_core'] / med['baseline']:.3f}")
    print(f"  baseline: {baseline_path}/nn_core; same loss curves: "
          f"{'yes' if res['same_loss_curves'] else 'NO'}")


# ---------------------------------------------------------------------------
# peak memory (run in a fresh process)
# ---------------------------------------------------------------------------
def measure_memory(case: Case, epochs: int, seed: int = 0) -> dict[str, Any]:
    data = case.data()
    X, y = data.X_train, data.y_train
    sizes = (data.n_features, *case.hidden, data.n_classes)
    data_bytes = X.nbytes + y.nbytes
    model_bytes = Network.count_parameters(sizes) * 4
    act_bytes = case.batch_size * sum(sizes) * 4
    clf = nn_core_classifier(case, seed, epochs)
    gc.collect()
    with threadpool_limits(limits=1):
        tracemalloc.start()
        clf.fit(X, y)
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    budget = data_bytes + model_bytes + act_bytes
    peak_total = data_bytes + traced_peak
    return {"case": case.name, "epochs": epochs, "data_bytes": data_bytes,
            "model_bytes": model_bytes, "activation_bytes": act_bytes,
            "budget_bytes": budget, "traced_peak_bytes": traced_peak,
            "peak_total_bytes": peak_total, "ratio": peak_total / budget}


def memory_in_subprocess(case: Case, epochs: int) -> dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--memory-only",
           "--cases", case.name, "--epochs-override", str(epochs)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"memory subprocess failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------
# machine and report
# ---------------------------------------------------------------------------
def machine_info(torch: Any | None) -> dict[str, Any]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else os.cpu_count()
    blas = "unknown"
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{deps.get('name', '?')} {deps.get('version', '?')}"
    except (KeyError, TypeError, ValueError):
        pass
    pools = []
    with threadpool_limits(limits=1):
        for p in threadpool_info():
            owner = p["filepath"].split("site-packages/")[-1].split("/")[0]
            owner = owner.removesuffix(".libs")
            parts = [f"{owner}:{p['internal_api']}", p.get("version"), p.get("architecture"),
                     f"{p['num_threads']} thread(s)"]
            pools.append(" ".join(x for x in parts if x))
    return {"cpu": cpu_model(), "cores": cores, "os_cpu_count": os.cpu_count(),
            "python": platform.python_version(), "numpy": np.__version__, "blas": blas,
            "sklearn": sklearn.__version__,
            "torch": torch.__version__ if torch is not None else None,
            "torch_threads": torch.get_num_threads() if torch is not None else None,
            "threadpools_during_measurement": pools}


def fmt_ratio(r: float) -> str:
    if not math.isfinite(r):
        return "-"
    return f"{r:.1f}x slower" if r >= 1 else f"{1 / r:.1f}x faster"


def mb(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def print_case(res: dict[str, Any], quick: bool = False) -> list[str]:
    """Print one case's table; return notes about anything odd."""
    notes: list[str] = []
    libs = res["libraries"]
    print()
    print(f"== {res['case']}: {res['n_train']} train / {res['n_test']} test samples, "
          f"{res['n_features']} features, {res['n_classes']} classes")
    print(f"   hidden {tuple(res['hidden'])}, relu, SGD lr {res['learning_rate']:g}, "
          f"batch {res['batch_size']} ({res['batches_per_epoch']} batches/epoch), "
          f"{res['epochs']} epochs, {res['repeats']} interleaved repetitions")
    print(f"   data: {res['data']}")
    head = (f"   {'library':<13}{'fit s (median)':>15}{'min-max s':>15}{'ms/epoch':>11}"
            f"{'test acc':>10}   {'vs nn_core (medians)':<22}{'paired':>8}")
    print(head)
    print("   " + "-" * (len(head) - 3))
    for lib, s in libs.items():
        ratio = fmt_ratio(s["ratio_vs_nn_core"]) if "ratio_vs_nn_core" in s else ""
        paired = f"{s['paired_ratio_vs_nn_core']:.2f}" \
            if "paired_ratio_vs_nn_core" in s else ""
        star = "*" if s["n_seeds"] < len(SEEDS) else ""
        row = (f"   {LIB_LABELS[lib]:<13}{s['median_seconds']:>15.3f}"
               f"{s['min_seconds']:>8.2f}-{s['max_seconds']:<6.2f}"
               f"{s['ms_per_epoch']:>11.3f}{s['accuracy'] * 100:>9.2f}%{star:<1}  "
               f"{ratio:<22}{paired:>8}")
        print(row.rstrip())
        if not s["deterministic"]:
            notes.append(f"{res['case']}: {LIB_LABELS[lib]} gave different accuracies "
                         "for the same seed")
    fl = res["floor"]
    x_floor = fl.get("nn_core_x_floor")
    print(f"   {LIB_LABELS['floor']:<13}{'':>15}{'':>15}{fl['ms_per_epoch']:>11.3f}"
          f"{'':>10}   "
          + (f"nn_core = {x_floor:.2f}x floor" if x_floor is not None else ""))
    print(f"   floor: 8 products/batch {', '.join(fl['product_shapes'])}; "
          f"{fl['flops_per_epoch'] / 1e9:.3f} GFLOP/epoch -> {fl['gflops']:.1f} GFLOP/s")
    if any(s["n_seeds"] < len(SEEDS) for s in libs.values()):
        print(f"   * accuracy over fewer than {len(SEEDS)} seeds (use --repeats >= 3)")
    if "products" in fl:
        print(f"   np.dot per product (nn_core shapes, {res['batches_per_epoch']} calls/epoch,"
              " each product timed alone):")
        for p in fl["products"]:
            print(f"     {p['label']:<33}{p['shape']:<26}{p['ms_per_epoch']:>9.2f} ms/epoch"
                  f"{p['gflops']:>8.1f} GFLOP/s")
        print(f"   one training epoch = {fl['flops_per_epoch'] / 1e9:.2f} GFLOP of matrix "
              "products (elementwise work not counted)")
        for lib, s in libs.items():
            print(f"     {LIB_LABELS[lib]:<13}{s['achieved_gflops']:>7.1f} GFLOP/s achieved = "
                  f"{s['fraction_of_matmul_bound'] * 100:5.1f}% of the matmul bound "
                  f"({fl['gflops']:.1f} GFLOP/s)")
    if "nn_core" in libs and "sklearn" in libs and not quick:
        gap = (libs["nn_core"]["accuracy"] - libs["sklearn"]["accuracy"]) * 100
        if abs(gap) > ACCURACY_GAP_PP:
            notes.append(f"{res['case']}: nn_core test accuracy differs from scikit-learn's "
                         f"by {gap:+.2f} pp (threshold {ACCURACY_GAP_PP} pp)")
    if x_floor is not None and x_floor < 1:
        notes.append(f"{res['case']}: nn_core faster than its own matmul floor "
                     f"({x_floor:.2f}x): machine noise, check the spread")
    return notes


def print_memory(mem: dict[str, Any]) -> list[str]:
    print()
    print(f"== peak memory of nn_core fit, {mem['case']} ({mem['epochs']} epoch(s), fresh "
          "process, tracemalloc started after the data exist)")
    print(f"   data (X_train + y_train)          {mb(mem['data_bytes']):>12}")
    print(f"   model (parameters x 4 B)          {mb(mem['model_bytes']):>12}")
    print(f"   one batch of activations          {mb(mem['activation_bytes']):>12}")
    print(f"   budget = data + model + batch     {mb(mem['budget_bytes']):>12}")
    print(f"   peak traced during fit            {mb(mem['traced_peak_bytes']):>12}")
    print(f"   peak total = data + traced peak   {mb(mem['peak_total_bytes']):>12}")
    verdict = "ok" if mem["ratio"] <= MEMORY_TARGET_RATIO else "ABOVE TARGET"
    print(f"   peak total / budget               {mem['ratio']:>12.2f}   "
          f"(target <= {MEMORY_TARGET_RATIO}: {verdict})")
    if mem["ratio"] > MEMORY_TARGET_RATIO:
        return [f"{mem['case']}: peak memory {mem['ratio']:.2f}x the budget "
                f"(target {MEMORY_TARGET_RATIO})"]
    return []


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES),
                   metavar="CASE", help=f"cases to run (default: all of {', '.join(CASES)})")
    p.add_argument("--libs", nargs="+", choices=LIBS, default=list(LIBS),
                   help="libraries to compare (default: all; torch only if installed)")
    p.add_argument("--repeats", type=int, default=None,
                   help="repetitions per case (default: per case, see CASES; "
                        f"{QUICK_REPEATS} with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: few epochs, 3 repetitions (numbers not meaningful)")
    p.add_argument("--no-memory", action="store_true",
                   help="skip the peak-memory subprocess")
    p.add_argument("--json", metavar="PATH", help="also write all results as JSON")
    p.add_argument("--memory-only", action="store_true",
                   help="internal: measure peak memory of the first case and print JSON")
    p.add_argument("--baseline", metavar="DIR",
                   help="time this nn_core against DIR/nn_core instead, alternating")
    p.add_argument("--textbook", action="store_true",
                   help="with --baseline: also time nn_core.textbook.train")
    p.add_argument("--epochs-override", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        p.error("--repeats must be >= 1")
    if args.epochs_override is not None and args.epochs_override < 1:
        p.error("--epochs-override must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cases = [CASES[name] for name in args.cases]

    def epochs_of(case: Case) -> int:
        if args.epochs_override is not None:
            return args.epochs_override
        return QUICK_EPOCHS[case.name] if args.quick else case.epochs

    if args.memory_only:
        print(json.dumps(measure_memory(cases[0], epochs_of(cases[0]))))
        return 0

    if args.baseline:
        baseline = load_baseline(args.baseline)
        print(f"Before/after: nn_core ({os.path.dirname(os.path.dirname(__file__)) or '.'}) "
              f"against {args.baseline}/nn_core, same process, one BLAS thread; CPU "
              f"{cpu_model()}, Python {platform.python_version()}, NumPy {np.__version__}")
        results = []
        with threadpool_limits(limits=1):
            for case in cases:
                if case.memory and len(cases) > 1:
                    continue  # the large case only when asked for alone
                repeats = args.repeats or (QUICK_REPEATS if args.quick else 2 * case.repeats)
                print(f"\nrunning {case.name} ...", flush=True)
                results.append(run_against_baseline(
                    case, baseline, epochs_of(case), repeats,
                    args.textbook and case.name == "digits-b32",
                    lambda s: print(s, flush=True)))
        for res in results:
            print_against_baseline(res, args.baseline)
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump({"baseline": args.baseline, "cases": results}, f, indent=2)
        return 0

    torch = load_torch() if "torch" in args.libs else None
    info = machine_info(torch)
    print("Training benchmark: nn_core vs scikit-learn MLPClassifier vs PyTorch (CPU)")
    print(f"CPU     {info['cpu']}, {info['cores']} usable cores "
          f"(os.cpu_count {info['os_cpu_count']})")
    print(f"Python  {info['python']}   NumPy {info['numpy']} (BLAS {info['blas']})   "
          f"scikit-learn {info['sklearn']}   "
          f"PyTorch {info['torch'] or 'not installed: torch column skipped'}")
    print("Threads 1 everywhere: *_NUM_THREADS=1, threadpoolctl limit 1"
          + (f", torch.set_num_threads(1) -> {info['torch_threads']}" if torch else ""))
    print(f"        thread pools: {'; '.join(info['threadpools_during_measurement'])}")
    if args.quick:
        print("QUICK smoke run: epochs and repetitions reduced, numbers are not meaningful")
    print("Times: whole fit (network construction, validation, all epochs); medians over "
          "repetitions; ratio = peer time / nn_core time; paired = median of per-repetition "
          "ratios. Accuracy: mean over seeds 0, 1, 2.")

    results: list[dict[str, Any]] = []
    memory: dict[str, Any] | None = None
    notes: list[str] = []
    with threadpool_limits(limits=1):
        for case in cases:
            repeats = args.repeats or (QUICK_REPEATS if args.quick else case.repeats)
            print(f"\nrunning {case.name} ...", flush=True)
            results.append(run_case(case, args.libs, torch, epochs_of(case), repeats,
                                    lambda s: print(s, flush=True)))
    if "torch" in args.libs and torch is None:
        notes.append("PyTorch is not installed: its column was skipped")
    for res in results:
        notes += print_case(res, quick=args.quick)
    for case in cases:
        if case.memory and not args.no_memory and "nn_core" in args.libs:
            memory = memory_in_subprocess(case, epochs_of(case))
            notes += print_memory(memory)
    print()
    print("Notes:" + (" none" if not notes else ""))
    for n in notes:
        print(f"  - {n}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"machine": info, "quick": args.quick, "cases": results,
                       "memory": memory, "notes": notes}, f, indent=2)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
