"""The training worker process.

Each worker is a fresh Python interpreter started by :mod:`playground.jobs`
as ``python -m playground.worker FD`` (FD: its end of a socket pair) and kept
warm between jobs. It imports NumPy, the engine and the run store only (no
Streamlit, Plotly or scikit-learn) and limits BLAS to one thread, so N workers
use N cores and never stall the web server's GIL.

The messages over the duplex pipe are the frozen dataclasses of
:mod:`playground.messages` (a :class:`~playground.messages.StartJob` carries
the :class:`~playground.messages.JobSpec` itself).

The pipe carries what the pages show live; the run store gets the same
records in batches (at least once a second), a checkpoint every
``checkpoint_seconds``, and the outcome, written by the worker itself on a
background thread (:class:`playground.store_writer.StoreWriter`), so neither
training nor the web server waits for the database.

A paused job does not hold its worker: it stops at the end of its epoch,
stores a checkpoint and leaves; Resume queues it again from there.

A reader thread receives every message, so stop and pause take effect while
the main thread trains; if the server's end of the pipe closes (the server
died) or SIGTERM arrives, the worker stops its job, stores what it has (the
run is then *interrupted*, resumable) and exits instead of lingering.
"""

from __future__ import annotations

import math
import os
import queue
import signal
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from nn_core.checkpoint import checkpoint_from_bytes, checkpoint_to_bytes
from nn_core.io import dumps
from nn_core.network import Network
from nn_core.training import EpochRecord, Trainer, TrainResult

from .evaluation import Evaluation, evaluate
from .messages import (
    Failed,
    Finished,
    Paused,
    PauseJob,
    Progress,
    Ready,
    Shutdown,
    StartJob,
    StopJob,
)
from .status import Status
from .store import interrupted_message
from .store_writer import StoreWriter

__all__ = ["worker_main"]

#: Seconds between batches of epoch records written to the store.
STORE_INTERVAL = 1.0


class _Control:
    """Pause/stop state of the job a worker is running; set by the reader thread."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.stop = False
        self.stop_reason: str | None = None  # a message for the user, or None (Stop pressed)
        self.pause = False  # stop at the end of this epoch, keep a checkpoint
        self.interrupted = False  # the server or the worker is going away
        self.trainer: Trainer | None = None

    def request_pause(self) -> None:
        self.pause = True

    def request_stop(self, reason: str | None = None, interrupted: bool = False) -> None:
        self.stop = True
        self.stop_reason = reason
        self.interrupted = self.interrupted or interrupted
        if self.trainer is not None:
            self.trainer.request_stop()


class _RunWrites:
    """What one job writes to the store, throttled (no-op without a store)."""

    def __init__(self, writer: StoreWriter | None, run_id: str) -> None:
        self.writer = writer
        self.run_id = run_id
        self.records: list[EpochRecord] = []
        self.evaluation: Evaluation | None = None
        self.last = time.monotonic()

    def add(self, record: EpochRecord, evaluation: Evaluation | None) -> None:
        if self.writer is None:
            return
        self.records.append(record)
        if evaluation is not None:
            self.evaluation = evaluation
        if time.monotonic() - self.last >= STORE_INTERVAL:
            self.flush()

    def flush(self) -> None:
        if self.writer is None or not (self.records or self.evaluation is not None):
            return
        records, evaluation, run_id = list(self.records), self.evaluation, self.run_id
        self.records.clear()
        self.evaluation = None
        self.last = time.monotonic()
        self.writer.submit(lambda s: s.add_records(run_id, records, evaluation))

    def do(self, write: Any, key: str | None = None) -> None:
        if self.writer is not None:
            self.writer.submit(write, None if key is None else (key, self.run_id))


def _build(order: StartJob, control: _Control,
           on_epoch: Any) -> tuple[Network, Trainer, int]:
    """Network and trainer of a job, restored from its checkpoint if it has one."""
    spec = order.spec
    rng = np.random.default_rng(spec.seed)
    network = spec.network.build(rng)
    trainer = Trainer(network, spec.train, rng, [on_epoch])
    start_epoch = 0
    if order.options.checkpoint is not None:
        checkpoint = checkpoint_from_bytes(order.options.checkpoint)
        trainer.restore(checkpoint)
        start_epoch = checkpoint.epoch
    control.trainer = trainer
    return network, trainer, start_epoch


def _run_job(send: Any, order: StartJob, control: _Control,
             writer: StoreWriter | None = None) -> None:
    """Train one job to its end (or pause), sending progress and storing the run."""
    _JobRun(send, order, control, writer).run()


class _JobRun:
    """One job on this worker: the epoch callback, checkpoints, and the outcome."""

    def __init__(self, send: Any, order: StartJob, control: _Control,
                 writer: StoreWriter | None) -> None:
        self.send, self.order, self.control = send, order, control
        self.job_id, self.spec, self.opts = order.job_id, order.spec, order.options
        self.store = _RunWrites(writer, self.job_id)
        self.pending: list[EpochRecord] = []  # records not yet sent to the server
        self.last_send = self.last_eval = -math.inf
        self.last_checkpoint = time.monotonic()
        self.paused: bytes | None = None  # the checkpoint taken when a pause stopped the job
        self.network, self.trainer, self.start_epoch = _build(order, control, self.on_epoch)

    def run(self) -> None:
        spec, job_id, epochs = self.spec, self.job_id, self.spec.train.epochs
        self.store.do(lambda s: s.set_status(job_id, Status.RUNNING, "Training.",
                                             started_at=time.time(),
                                             server_id=self.opts.server_id))
        status, message, epoch = self.train()
        self.flush()
        if status == Status.STOPPED and self.paused is None and self.start_epoch <= epoch < epochs:
            # The engine ends a stopped fit at the last whole epoch: checkpoint it,
            # so Resume (after a Stop or an interruption) continues exactly here.
            self.save_checkpoint()
        self.store.flush()
        if self.paused is not None and not self.control.stop:
            text = f"Paused after epoch {epoch}. Press Resume to continue."
            self.store.do(lambda s: s.set_status(job_id, Status.PAUSED, text))
            self.send(Paused(job_id, self.paused, text))
            return
        if self.control.interrupted:
            status, message = Status.INTERRUPTED, interrupted_message(epoch)
        evaluation = evaluate(self.network, spec.X_test, spec.y_test, epoch, spec.grid)
        model = dumps(self.network, np.asarray(spec.classes), spec.meta)
        self.store.do(lambda s: s.finish_run(job_id, status, message, evaluation, model))
        self.send(Finished(job_id, status, message, evaluation, model))

    def train(self) -> tuple[Status, str, int]:
        """Fit the remaining epochs; the status, message and last epoch trained."""
        spec, epochs, start = self.spec, self.spec.train.epochs, self.start_epoch
        if self.control.stop:
            return Status.STOPPED, "Stopped before the first epoch.", start
        timer = _time_limit(self.opts.max_seconds, self.trainer, self.control)
        try:
            result = self.trainer.fit(spec.X_train, spec.y_train, spec.X_val, spec.y_val,
                                      epochs=epochs - start)
        finally:
            if timer is not None:
                timer.cancel()
        epoch = self.trainer.history[-1].epoch if self.trainer.history else start
        return (*_outcome(result, epoch, epochs, start, self.control.stop_reason), epoch)

    def on_epoch(self, record: EpochRecord) -> bool:
        """The trainer's callback after each epoch; True stops the fit."""
        self.pending.append(record)
        now = time.monotonic()
        evaluation = None
        # The test set is evaluated every eval_interval seconds, never per batch.
        if now - self.last_eval >= self.opts.eval_interval:
            spec = self.spec
            evaluation = evaluate(self.network, spec.X_test, spec.y_test, record.epoch,
                                  spec.grid)
            self.last_eval = now
        # At most one message per progress_interval: a fast job cannot flood
        # the server (500 epochs of Digits take ~1.5 s, ~15 messages).
        if evaluation is not None or now - self.last_send >= self.opts.progress_interval:
            self.flush(evaluation)
        self.store.add(record, evaluation)
        last = record.epoch >= self.spec.train.epochs
        if self.control.pause and not self.control.stop and not last:
            self.paused = self.save_checkpoint()
            return True
        if now - self.last_checkpoint >= self.opts.checkpoint_seconds and not last:
            self.save_checkpoint()
        return self.control.stop

    def flush(self, evaluation: Evaluation | None = None) -> None:
        """Send the pending records (and an evaluation) to the server."""
        if self.pending or evaluation is not None:
            self.send(Progress(self.job_id, tuple(self.pending), evaluation))
            self.pending.clear()
            self.last_send = time.monotonic()

    def save_checkpoint(self) -> bytes:
        checkpoint = self.trainer.checkpoint()
        data = checkpoint_to_bytes(checkpoint)
        self.store.flush()  # records first: a checkpoint never runs ahead of the curves
        job_id = self.job_id
        self.store.do(lambda s: s.save_checkpoint(job_id, checkpoint.epoch, data), "checkpoint")
        self.last_checkpoint = time.monotonic()
        return data


def _time_limit(limit: float | None, trainer: Trainer,
                control: _Control) -> threading.Timer | None:
    """Stop the job within a batch once its training time reaches ``limit`` seconds.

    Enforced here, not only estimated before queueing; a resumed run's earlier
    training time counts.
    """
    if not limit:
        return None
    left = max(0.0, limit - (trainer.history[-1].elapsed if trainer.history else 0.0))
    reason = f"it reached this server's time limit of {limit / 60:g} minutes."
    timer = threading.Timer(left, control.request_stop, args=(reason,))
    timer.daemon = True
    timer.start()
    return timer


def _outcome(result: TrainResult, epoch: int, epochs: int, start_epoch: int,
             stop_reason: str | None) -> tuple[Status, str]:
    """The status and the message a finished ``fit`` leaves the run with."""
    status = {"completed": Status.DONE, "early_stopped": Status.DONE,
              "stopped": Status.STOPPED, "diverged": Status.DIVERGED}[result.status]
    if status == Status.STOPPED:
        # The engine says whether a callback or a flag stopped it; the user
        # pressed Stop either way (or the server stopped it, with a reason).
        message = f"Stopped after epoch {epoch} of {epochs}."
        return status, f"{message[:-1]}: {stop_reason}" if stop_reason else message
    if start_epoch and result.status == "completed":
        return status, f"Trained {epochs} epochs (resumed after epoch {start_epoch})."
    return status, result.message


def worker_main(conn: Connection) -> None:
    """Entry point of a worker process: serve jobs until told to shut down."""
    threadpool_limits(1)
    send_lock = threading.Lock()
    jobs: queue.Queue = queue.Queue()
    current: dict[str, _Control] = {}
    writers: dict[str, StoreWriter] = {}

    def writer_for(url: str | None) -> StoreWriter | None:
        if url is None:
            return None
        if url not in writers:
            writers[url] = StoreWriter(url, name="nnpg-worker-store")
        return writers[url]

    def send(message: object) -> None:
        try:
            with send_lock:
                conn.send(message)
        except (OSError, ValueError):
            pass  # the server is gone; the store still gets the results

    def interrupt_all() -> None:
        for control in list(current.values()):
            control.request_stop(interrupted=True)
        jobs.put(None)

    def reader() -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                interrupt_all()  # the server is gone: store what we have, then exit
                return
            if isinstance(message, StartJob):
                current[message.job_id] = _Control(message.job_id)
                jobs.put(message)
            elif isinstance(message, Shutdown):
                interrupt_all()
                return
            elif isinstance(message, PauseJob | StopJob):
                control = current.get(message.job_id)
                if control is None:
                    continue
                if isinstance(message, PauseJob):
                    control.request_pause()
                else:
                    control.request_stop(message.reason)

    # SIGTERM reaches the workers with the server's process group: stop like a
    # shutdown, so the interrupted run keeps its last records and checkpoint.
    signal.signal(signal.SIGTERM, lambda *_: interrupt_all())
    threading.Thread(target=reader, name="nnpg-worker-reader", daemon=True).start()
    send(Ready(os.getpid()))
    while (order := jobs.get()) is not None:
        job_id = order.job_id
        control = current.get(job_id) or _Control(job_id)
        writer = writer_for(order.options.store_url)
        try:
            with np.errstate(all="ignore"):
                _run_job(send, order, control, writer)
        except Exception as exc:  # report, keep serving
            traceback.print_exc(file=sys.stderr)
            text = f"Training failed: {type(exc).__name__}: {exc}"
            if writer is not None:
                writer.submit(lambda s, t=text, j=job_id: s.finish_run(j, Status.FAILED, t,
                                                                        None, None))
            send(Failed(job_id, text))
        finally:
            current.pop(job_id, None)
    for writer in writers.values():
        writer.close(timeout=3.0)


def main(argv: list[str] | None = None) -> None:
    """``python -m playground.worker FD``: serve jobs over the socket ``FD``."""
    args = sys.argv[1:] if argv is None else argv
    worker_main(Connection(int(args[0])))
    os._exit(0)  # daemon threads (reader) must not keep the process alive


if __name__ == "__main__":
    main()

