"""Helpers to build small job specs for the runner tests."""

from __future__ import annotations

import time

import numpy as np

from nn_core.training import TrainConfig
from playground.jobs import JobSpec
from playground.messages import NetworkSpec


def make_spec(epochs=20, n=300, d=8, classes=3, hidden=(16,), lr=0.05, seed=0,
              optimizer="sgd", scale=1.0, batch_size=32, grid=False, **train):
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((n, d)) * scale).astype(np.float32)
    y = (np.abs(X[:, :classes]).argmax(axis=1)).astype(np.intp)
    cut = int(n * 0.8)
    return JobSpec(
        network=NetworkSpec(n_features=d, hidden_layer_sizes=tuple(hidden), n_classes=classes,
                            activation="relu", init="auto", dtype="float32"),
        train=TrainConfig(optimizer=optimizer, learning_rate=lr, epochs=epochs,
                          batch_size=batch_size, **train),
        seed=seed, X_train=X[:cut], y_train=y[:cut], X_test=X[cut:], y_test=y[cut:],
        classes=tuple(f"c{i}" for i in range(classes)),
        X_val=X[cut:], y_val=y[cut:],
        grid=rng.standard_normal((50, d)).astype(np.float32) if grid else None)


def long_spec(**kw):
    """A job that runs for minutes unless stopped."""
    kw.setdefault("epochs", 2000)
    kw.setdefault("n", 4000)
    kw.setdefault("hidden", (128, 128))
    return make_spec(**kw)


def wait_for(predicate, timeout=20.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
