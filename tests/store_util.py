"""Helpers for the run-store tests (tests/test_store.py): values and a writer process."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from nn_core.training import EpochRecord
from playground.store import DatasetIdentity

BUILTIN = DatasetIdentity("builtin", "blobs", {"n_samples": 300, "centers": 3, "seed": 1})


def upload(content: bytes = b"x,y,label\n1,2,a\n3,4,b\n", name: str = "points.csv"
           ) -> DatasetIdentity:
    return DatasetIdentity("upload", name, {"filename": name}, content)


def rec(epoch: int, *, train_loss: float | None = None, val: bool = True) -> EpochRecord:
    """A distinct, exactly representable-in-JSON epoch record for ``epoch``."""
    return EpochRecord(
        epoch=epoch,
        train_loss=1.0 / (epoch + 1) if train_loss is None else train_loss,
        train_accuracy=min(1.0, 0.25 + epoch / 1000),
        val_loss=1.5 / (epoch + 2) if val else None,
        val_accuracy=min(1.0, 0.2 + epoch / 1100) if val else None,
        learning_rate=0.05 * 0.99 ** epoch,
        elapsed=0.125 * epoch,
        epoch_seconds=0.125,
        samples_per_second=1000.0 + epoch,
        weight_norms=(1.0 + epoch / 7, 2.0 - epoch / 1e4),
        grad_norms=(0.5 / epoch, 0.25 / epoch),
    )


def make_run(store, workspace_id: str, dataset: DatasetIdentity = BUILTIN, **kw):
    values = {"config": {"hidden": [16], "lr": 0.05}, "classes": (0, 1, 2),
              "n_params": 123, "batch_size": 32, "epochs_planned": 50, "server_id": None}
    values.update(kw)
    return store.create_run(workspace_id, dataset=dataset, **values)


def concurrent_writer(url: str, own_run: str, shared_run: str, shared_first: str,
                      go_file: str) -> None:
    """One writer process of the concurrency test.

    Waits for ``go_file``, then adds epochs 1..300 to ``own_run`` (batches of 10)
    and, interleaved, epochs ``shared_first``..``shared_first + 99`` to
    ``shared_run`` (batches of 10), each batch its own transaction.
    """
    from playground.store import RunStore

    store = RunStore(url, migrate=False)
    store.ping()  # connected before the start signal: both start writing together
    deadline = time.monotonic() + 30
    while not Path(go_file).exists():
        if time.monotonic() > deadline:
            raise SystemExit("no start signal")
        time.sleep(0.005)
    first = int(shared_first)
    shared = iter(range(first, first + 100, 10))
    for i, start in enumerate(range(1, 301, 10)):
        store.add_records(own_run, [rec(e) for e in range(start, start + 10)])
        if i % 3 == 0:
            s = next(shared)
            store.add_records(shared_run, [rec(e) for e in range(s, s + 10)])
    store.close()
    print("ok")


if __name__ == "__main__":
    concurrent_writer(*sys.argv[1:])
