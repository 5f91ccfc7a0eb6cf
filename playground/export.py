"""Downloads: metrics and history as CSV, and a script that reproduces a run."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from textwrap import dedent

from nn_core.training import EpochRecord

from .config import RunConfig

__all__ = ["estimator_params", "history_csv", "metrics_csv", "reproduce_script", "train_kwargs"]


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV
# injection": =HYPERLINK(...), @SUM(...), -2+3+cmd|...). Text cells that do are
# written with a leading apostrophe, which makes them text; plain numbers
# ("-0.5", "+3") are not formulas and stay as they are.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _cell(value: object) -> object:
    """``value`` as a CSV cell a spreadsheet cannot run (numbers unchanged)."""
    if isinstance(value, str) and value.lstrip(" ").startswith(_FORMULA_START) \
            and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


class _SafeWriter:
    """A ``csv.writer`` whose text cells a spreadsheet cannot run as formulas."""

    def __init__(self, out: io.StringIO) -> None:
        self._writer = csv.writer(out)

    def writerow(self, row: Sequence) -> None:
        self._writer.writerow([_cell(v) for v in row])


def metrics_csv(summary: dict, labels: Sequence) -> str:
    """Per-class precision/recall/F1/support plus macro and weighted averages.

    Labels are the user's text: one that a spreadsheet would run as a formula
    (``=HYPERLINK(...)``) is written with a leading ``'``.
    """
    out = io.StringIO()
    w = _SafeWriter(out)
    w.writerow(["class", "precision", "recall", "f1", "support"])
    for i, label in enumerate(labels):
        w.writerow([label, f"{summary['precision'][i]:.6f}", f"{summary['recall'][i]:.6f}",
                    f"{summary['f1'][i]:.6f}", summary["support"][i]])
    total = sum(summary["support"])
    for avg in ("macro", "weighted"):
        w.writerow([f"{avg} avg", f"{summary[f'{avg}_precision']:.6f}",
                    f"{summary[f'{avg}_recall']:.6f}", f"{summary[f'{avg}_f1']:.6f}", total])
    w.writerow(["accuracy", "", "", f"{summary['accuracy']:.6f}", total])
    return out.getvalue()


def history_csv(records: Sequence[EpochRecord]) -> str:
    """One row per epoch: losses, accuracies, learning rate, timing, norms (text
    cells escaped like :func:`metrics_csv`'s; numbers are written as they are)."""
    out = io.StringIO()
    w = _SafeWriter(out)
    n_layers = len(records[0].weight_norms) if records else 0
    w.writerow(["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                "learning_rate", "elapsed_s", "samples_per_s",
                *[f"weight_norm_{i + 1}" for i in range(n_layers)],
                *[f"grad_norm_{i + 1}" for i in range(n_layers)]])
    for r in records:
        w.writerow([r.epoch, r.train_loss, r.train_accuracy,
                    "" if r.val_loss is None else r.val_loss,
                    "" if r.val_accuracy is None else r.val_accuracy,
                    r.learning_rate, f"{r.elapsed:.4f}", f"{r.samples_per_second:.0f}",
                    *r.weight_norms, *r.grad_norms])
    return out.getvalue()


def train_kwargs(cfg: RunConfig, batch_size: int) -> dict:
    """The :class:`nn_core.TrainConfig` arguments of a run (one list for the app's
    job, the saved estimator parameters and the reproduce script)."""
    return {"optimizer": cfg.optimizer, "learning_rate": cfg.learning_rate,
            "batch_size": batch_size, "epochs": cfg.epochs, "alpha": cfg.alpha,
            "dropout": cfg.dropout, "lr_schedule": cfg.lr_schedule,
            "clip_norm": cfg.clip_norm or None, "early_stopping": cfg.early_stopping}


def estimator_params(cfg: RunConfig, batch_size: int) -> dict:
    """``NeuralNetworkClassifier`` parameters equivalent to a run configuration."""
    return {"hidden_layer_sizes": list(cfg.hidden_layer_sizes), "activation": cfg.activation,
            "init": cfg.init, **train_kwargs(cfg, batch_size), "random_state": cfg.seed}


_LOADERS = {
    "Digits": "X, y = datasets.load_digits(return_X_y=True)",
    "Iris": "d = datasets.load_iris()\nX, y = d.data, d.target_names[d.target]",
    "Wine": "d = datasets.load_wine()\nX, y = d.data, d.target_names[d.target]",
    "Breast cancer": "d = datasets.load_breast_cancer()\nX, y = d.data, d.target_names[d.target]",
}


def _data_code(cfg: RunConfig) -> str:
    if cfg.dataset in _LOADERS:
        return _LOADERS[cfg.dataset]
    if cfg.dataset == "Upload CSV":
        label = repr(cfg.label_column) if cfg.label_column else "None  # last column"
        return dedent(f"""\
            import pandas as pd

            table = pd.read_csv("data.csv")  # save your uploaded file as data.csv
            label = {label}
            label = table.columns[-1] if label is None else label
            X = table.drop(columns=[label]).to_numpy(dtype=float)
            y = table[label].to_numpy()""")
    n, noise, k = cfg.n_samples, cfg.noise, cfg.n_classes
    head = ("gen = np.random.default_rng(SEED)\n"
            "seed32 = int(gen.integers(2**31 - 1))  # the playground draws this first\n")
    if cfg.dataset == "Moons":
        body = f"X, y = datasets.make_moons({n}, noise={noise}, random_state=seed32)"
    elif cfg.dataset == "Circles":
        body = (f"X, y = datasets.make_circles({n}, noise={noise}, factor=0.5, "
                "random_state=seed32)")
    elif cfg.dataset == "Gaussian blobs":
        body = (f"X, y = datasets.make_blobs({n}, centers={k}, cluster_std={1.0 + 4 * noise!r}, "
                "random_state=seed32)")
    elif cfg.dataset == "XOR":
        body = dedent(f"""\
            # four clusters at (+-1, +-1); class 1 where the signs differ
            centers = np.array([[1, 1], [-1, -1], [1, -1], [-1, 1]], dtype=float)
            which = gen.integers(0, 4, {n})
            X = centers[which] + gen.normal(scale={0.25 + noise!r}, size=({n}, 2))
            y = (which >= 2).astype(int)""")
    else:  # Spiral
        body = dedent(f"""\
            # {k} interleaved spiral arms
            y = np.arange({n}) % {k}
            t = gen.uniform(0.0, 1.0, {n})
            angle = 4.0 * t + y * 2 * np.pi / {k} + gen.normal(scale={noise}, size={n})
            X = np.column_stack([(0.1 + t) * np.sin(angle), (0.1 + t) * np.cos(angle)])""")
    return head + body


def reproduce_script(cfg: RunConfig, batch_size: int) -> str:
    """A standalone script that retrains the run with nn_core and scikit-learn.

    It makes the same split, scaling and random draws as the playground, so on
    the same NumPy build it prints the same final losses.
    """
    args = ", ".join(f"{k}={v!r}" for k, v in train_kwargs(cfg, batch_size).items())
    train = f"TrainConfig({args})"
    val = cfg.val_size
    scale = ("mean = X[train].mean(axis=0)\nscale = X[train].std(axis=0)\n"
             "scale[scale == 0] = 1.0" if cfg.standardize else
             "mean = np.zeros(X.shape[1])\nscale = np.ones(X.shape[1])")
    val_split = (f"train, val = split(train, {val / 100!r}, SEED + 1)" if val > 0
                 else "val = None")
    return dedent('''\
        """Reproduce a Neural Network Playground run with nn_core.

        Data set: {dataset}; hidden layers: {arch}; activation: {activation};
        optimizer: {optimizer}, learning rate {lr}; batch {batch}; {epochs} epochs; seed {seed}.
        """
        import numpy as np
        from sklearn import datasets
        from sklearn.model_selection import train_test_split

        from nn_core import Network, TrainConfig, Trainer
        from nn_core.metrics import classification_summary

        SEED = {seed}

        {data}

        classes, y_idx = np.unique(y, return_inverse=True)


        def split(idx, size, seed):
            try:  # stratified, as the playground does
                return train_test_split(idx, test_size=size, random_state=seed,
                                        stratify=y_idx[idx])
            except ValueError:  # a class too small to stratify
                return train_test_split(idx, test_size=size, random_state=seed)


        train, test = split(np.arange(len(y_idx)), {test!r}, SEED)
        {val_split}
        {scale}


        def rows(idx):
            return ((X[idx] - mean) / scale).astype(np.float32)


        rng = np.random.default_rng(SEED)
        net = Network(X.shape[1], {hidden}, len(classes), activation={activation!r},
                      init={init!r}, rng=rng)
        config = {train_cfg}
        result = Trainer(net, config, rng).fit(
            rows(train), y_idx[train],
            None if val is None else rows(val), None if val is None else y_idx[val])
        print(result.message)
        last = result.records[-1]
        print(f"epoch {{last.epoch}}: train loss {{last.train_loss:.6f}}, "
              f"train accuracy {{last.train_accuracy:.4f}}")
        pred = net.forward_logits(rows(test)).argmax(axis=1)
        report = classification_summary(y_idx[test], pred, np.arange(len(classes)))
        print(f"test accuracy {{report['accuracy']:.4f}}, macro F1 {{report['macro_f1']:.4f}}")
        ''').format(dataset=cfg.dataset, arch=cfg.architecture, activation=cfg.activation,
                    optimizer=cfg.optimizer, lr=cfg.learning_rate, batch=batch_size,
                    epochs=cfg.epochs, seed=cfg.seed,
                    data=_data_code(cfg), test=cfg.test_size / 100,
                    val_split=val_split, scale=scale,
                    hidden=tuple(cfg.hidden_layer_sizes), train_cfg=train, init=cfg.init)
