"""The training worker process.

Each worker is a fresh Python interpreter started by :mod:`playground.jobs`
as ``python -m playground.worker FD`` (FD: its end of a socket pair) and kept
warm between jobs. It imports NumPy and the
engine only (no Streamlit, Plotly or scikit-learn) and limits BLAS to one
thread, so N workers use N cores and never stall the web server's GIL.

Protocol over the duplex pipe (tuples; the first item is the kind):

server -> worker
    ``("job", job_id, payload)``, ``("pause", job_id)``, ``("resume", job_id)``,
    ``("stop", job_id)``, ``("shutdown",)``
worker -> server
    ``("ready", pid)``,
    ``("progress", job_id, [EpochRecord, ...], evaluation | None)``,
    ``("paused", job_id)``, ``("resumed", job_id)``,
    ``("finished", job_id, status, message, evaluation, model_bytes)``,
    ``("failed", job_id, message)``

A reader thread receives every message, so stop and pause take effect while
the main thread trains; if the server's end of the pipe closes (the server
died), the worker exits at once instead of lingering as an orphan.
"""

from __future__ import annotations

import math
import os
import queue
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from nn_core import metrics
from nn_core.io import dumps
from nn_core.losses import cross_entropy, softmax
from nn_core.network import Network
from nn_core.training import EpochRecord, Trainer

from .jobs import DIVERGED, DONE, STOPPED

__all__ = ["evaluate", "worker_main"]


class _Control:
    """Pause/stop state of the job a worker is running; set by the reader thread."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.stop = False
        self.running = threading.Event()  # cleared while paused
        self.running.set()
        self.trainer: Trainer | None = None

    def pause(self) -> None:
        self.running.clear()

    def resume(self) -> None:
        self.running.set()

    def request_stop(self) -> None:
        self.stop = True
        if self.trainer is not None:
            self.trainer.request_stop()
        self.running.set()  # wake a paused job so it can stop


def evaluate(network: Network, X: np.ndarray, y: np.ndarray, epoch: int,
             grid: np.ndarray | None = None) -> dict[str, Any]:
    """Test-set evaluation the page draws from (plain, picklable values).

    Returns
    -------
    dict
        ``epoch``, ``loss``, ``summary`` (see
        :func:`nn_core.metrics.classification_summary`, labels are class
        indices), ``y_pred`` and ``confidence`` per test sample, and for 2-D
        data ``grid_pred`` / ``grid_confidence`` per grid point.
    """
    logits = network.forward_logits(X)
    proba = softmax(logits.astype(np.float64))
    y_pred = np.argmax(proba, axis=1)
    labels = np.arange(network.n_classes)
    out: dict[str, Any] = {
        "epoch": epoch,
        "loss": float(np.mean(cross_entropy(logits, y))),
        "summary": metrics.classification_summary(y, y_pred, labels),
        "y_pred": y_pred.astype(np.int16),
        "confidence": proba.max(axis=1).astype(np.float32),
    }
    if grid is not None:
        g = softmax(network.forward_logits(grid).astype(np.float64))
        out["grid_pred"] = np.argmax(g, axis=1).astype(np.int16)
        out["grid_confidence"] = g.max(axis=1).astype(np.float32)
    return out


def _run_job(send, job_id: str, payload: dict[str, Any], control: _Control) -> None:
    spec = payload["network"]
    rng = np.random.default_rng(payload["seed"])
    network = Network(spec["n_features"], spec["hidden_layer_sizes"], spec["n_classes"],
                      spec["activation"], spec["init"], spec["dtype"], rng)
    X_tr, y_tr = payload["X_train"], payload["y_train"]
    X_val, y_val = payload.get("X_val"), payload.get("y_val")
    X_te, y_te = payload["X_test"], payload["y_test"]
    grid = payload.get("grid")
    progress_interval = payload.get("progress_interval", 0.1)
    eval_interval = payload.get("eval_interval", 0.5)
    pending: list[EpochRecord] = []
    clock = {"send": -math.inf, "eval": -math.inf}

    def flush(evaluation: dict | None = None) -> None:
        if pending or evaluation is not None:
            send(("progress", job_id, list(pending), evaluation))
            pending.clear()
            clock["send"] = time.monotonic()

    def on_epoch(record: EpochRecord) -> bool:
        pending.append(record)
        now = time.monotonic()
        evaluation = None
        # The test set is evaluated every eval_interval seconds, never per batch.
        if now - clock["eval"] >= eval_interval:
            evaluation = evaluate(network, X_te, y_te, record.epoch, grid)
            clock["eval"] = now
        # At most one message per progress_interval: a fast job cannot flood
        # the server (500 epochs of Digits take ~1.5 s, ~15 messages).
        if evaluation is not None or now - clock["send"] >= progress_interval:
            flush(evaluation)
        if not control.running.is_set() and not control.stop:
            flush()
            send(("paused", job_id))
            control.running.wait()
            send(("resumed", job_id))
        return control.stop

    trainer = Trainer(network, payload["train"], rng, [on_epoch])
    control.trainer = trainer
    epoch = 0  # the last epoch trained
    if control.stop:  # stopped before it began
        result_status, message = STOPPED, "Stopped before the first epoch."
    else:
        result = trainer.fit(X_tr, y_tr, X_val, y_val)
        epoch = trainer.history[-1].epoch if trainer.history else 0
        result_status = {"completed": DONE, "early_stopped": DONE, "stopped": STOPPED,
                         "diverged": DIVERGED}[result.status]
        message = result.message
        if result_status == STOPPED:
            # The engine says whether a callback or a flag stopped it; the user
            # pressed Stop either way.
            message = f"Stopped after epoch {epoch} of {payload['train'].epochs}."
    flush()
    evaluation = evaluate(network, X_te, y_te, epoch, grid)
    model = dumps(network, np.asarray(payload["classes"]), payload.get("meta", {}))
    send(("finished", job_id, result_status, message, evaluation, model))


def worker_main(conn: Connection) -> None:
    """Entry point of a worker process: serve jobs until told to shut down."""
    threadpool_limits(1)
    send_lock = threading.Lock()
    jobs: queue.Queue = queue.Queue()
    current: dict[str, _Control] = {}

    def send(message: tuple) -> None:
        with send_lock:
            conn.send(message)

    def reader() -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                os._exit(0)  # the server is gone: never outlive it
            kind = message[0]
            if kind == "job":
                current[message[1]] = _Control(message[1])
                jobs.put(message)
            elif kind == "shutdown":
                for control in list(current.values()):
                    control.request_stop()
                jobs.put(None)
                return
            elif kind in ("pause", "resume", "stop"):
                control = current.get(message[1])
                if control is not None:
                    {"pause": control.pause, "resume": control.resume,
                     "stop": control.request_stop}[kind]()

    threading.Thread(target=reader, name="nnpg-worker-reader", daemon=True).start()
    send(("ready", os.getpid()))
    while (message := jobs.get()) is not None:
        _, job_id, payload = message
        control = current[job_id]
        try:
            with np.errstate(all="ignore"):
                _run_job(send, job_id, payload, control)
        except Exception as exc:  # report, keep serving
            traceback.print_exc(file=sys.stderr)
            send(("failed", job_id, f"Training failed: {type(exc).__name__}: {exc}"))
        finally:
            current.pop(job_id, None)


def main(argv: list[str] | None = None) -> None:
    """``python -m playground.worker FD``: serve jobs over the socket ``FD``."""
    args = sys.argv[1:] if argv is None else argv
    worker_main(Connection(int(args[0])))


if __name__ == "__main__":
    main()
