"""Background training: a server-wide job runner and per-session handles.

One :class:`JobRunner` per server process owns ``max_jobs`` warm worker
processes (:mod:`playground.worker`), a FIFO queue, and the live state of
every job. A job's id is its run's id in the run store: the workers write the
run's records, checkpoints and outcome there, so a job outlives the browser
connection that started it. Nobody watching is the only thing that ends a job
early: a job no page has shown for ``settings.abandon_seconds`` is stopped.

A paused job does not hold a worker: it leaves with a checkpoint and is
queued again by :meth:`JobRunner.resume`.

Why processes: training is a pure-Python loop over small NumPy calls that holds
the GIL; in a thread of the Streamlit server it would stall every other user's
page. In a worker process it only uses its own core.

A background thread of the runner (the dispatcher) reads worker messages,
updates job state, starts queued jobs on idle workers, and replaces workers
that die; a second one (housekeeping) stops abandoned and long-paused jobs,
beats this server's heartbeat in the store and marks the runs of dead servers
interrupted. Pages never block on a worker: :meth:`JobRunner.snapshot`
returns an immutable :class:`Snapshot` of what is known right now.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from nn_core.training import EpochRecord

from .evaluation import Evaluation
from .messages import (
    Failed,
    Finished,
    JobOptions,
    JobSpec,
    Paused,
    PauseJob,
    Progress,
    Ready,
    Shutdown,
    StartJob,
    StopJob,
)
from .settings import Settings, load_settings
from .status import ACTIVE, FINISHED, Status
from .store import RunStore, StoreUnavailableError, interrupted_message
from .store_writer import StoreWriter

__all__ = ["ACTIVE", "FINISHED", "JobRefusedError", "JobRunner", "JobSpec", "Snapshot",
           "estimate_seconds"]

log = logging.getLogger("playground.jobs")

QUEUED, RUNNING, PAUSED = Status.QUEUED, Status.RUNNING, Status.PAUSED
DONE, STOPPED, DIVERGED, FAILED = Status.DONE, Status.STOPPED, Status.DIVERGED, Status.FAILED
INTERRUPTED = Status.INTERRUPTED
#: Seconds between this server's heartbeats in the store, and between sweeps
#: for runs of dead servers.
HEARTBEAT_SECONDS = 5.0
#: A worker that dies before it is ready is restarted after 0.5, 1, 2, 4 s...;
#: after this many failures in a row the runner gives up (and says so).
MAX_START_FAILURES = 5
START_BACKOFF = 0.5
START_BACKOFF_MAX = 30.0

# Conservative single-core throughput used to refuse runs that would take hours:
# effective FLOP/s of the training loop and fixed cost per mini-batch.
_EST_FLOPS = 4e9
_EST_BATCH_SECONDS = 60e-6
# Finished jobs are dropped from memory after this (pages then read the store);
# without a store, after an hour.
_FINISHED_TTL_STORED = 120.0
_FINISHED_TTL = 3600.0
# A worker that died of one of these was stopped on purpose, not crashed.
_SHUTDOWN_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})


class JobRefusedError(ValueError):
    """A job was refused before it was queued; the message says why and what to do."""


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    """What is known about a job at one moment. Immutable.

    ``evaluation`` is the latest test-set evaluation (see
    :class:`playground.evaluation.Evaluation`, read-only). ``model`` is
    the trained network as ``.npz`` bytes (loadable by
    :func:`nn_core.io.load_network`) once the job has finished.
    """

    job_id: str
    status: Status
    message: str
    queue_position: int | None  # 1 = next to start; None unless queued
    epochs_planned: int
    records: tuple[EpochRecord, ...]
    evaluation: Evaluation | None
    model: bytes | None
    created: float
    started: float | None
    finished_at: float | None
    stop_requested: bool = False

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def epoch(self) -> int:
        return self.records[-1].epoch if self.records else 0

    @property
    def progress(self) -> float:
        """Fraction of planned epochs done, in [0, 1]."""
        return min(1.0, self.epoch / self.epochs_planned) if self.epochs_planned else 0.0

    @property
    def eta_seconds(self) -> float | None:
        """Remaining training time at the current pace (None before the first epoch)."""
        if not self.records or self.finished:
            return None
        per_epoch = self.records[-1].elapsed / len(self.records)
        return max(0.0, (self.epochs_planned - self.epoch) * per_epoch)


@dataclass
class _Job:
    id: str
    spec: JobSpec | None  # kept until the job finishes (a paused job is queued again)
    epochs_planned: int
    status: Status = QUEUED
    message: str = "Waiting for a free worker."
    records: list[EpochRecord] = field(default_factory=list)
    evaluation: Evaluation | None = None
    model: bytes | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished_at: float | None = None
    worker: _Worker | None = None
    stop_requested: bool = False
    owners: tuple[str, ...] = ()  # who asked: workspace and client address (fairness)
    checkpoint: bytes | None = None  # where a resumed job starts
    watched: float = field(default_factory=time.monotonic)  # last shown by a page
    paused_at: float | None = None


@dataclass(eq=False)
class _Worker:
    process: subprocess.Popen
    conn: Connection
    send_lock: threading.Lock = field(default_factory=threading.Lock)
    job: _Job | None = None
    pid: int | None = None  # set when the worker reports ready
    dead: bool = False

    def alive(self) -> bool:
        return not self.dead and self.process.poll() is None

    def send(self, message: object) -> bool:
        try:
            with self.send_lock:
                self.conn.send(message)
            return True
        except (OSError, ValueError, BrokenPipeError):
            return False


def estimate_seconds(spec: JobSpec) -> float:
    """Pessimistic single-core training time of ``spec`` (for refusing huge runs)."""
    n = len(spec.y_train)
    batch = min(spec.train.batch_size, n)
    batches = math.ceil(n / batch)
    # forward 2 and backward 4 floating-point operations per weight and sample
    per_epoch = 6.0 * n * spec.n_params / _EST_FLOPS + batches * _EST_BATCH_SECONDS
    if spec.X_val is not None:
        per_epoch += 2.0 * len(spec.X_val) * spec.n_params / _EST_FLOPS
    return spec.train.epochs * per_epoch


class JobRunner:
    """Runs training jobs in warm worker processes, at most ``max_jobs`` at once.

    Parameters
    ----------
    settings : Settings, optional
        Limits (default: :func:`playground.settings.load_settings`).
    max_jobs : int, optional
        Overrides ``settings.max_jobs``: worker processes, i.e. concurrent jobs.
    progress_interval : float
        Seconds between progress messages of one job (throttle).
    eval_interval : float
        Seconds between test-set evaluations of one job.
    store_url : str, optional
        The run store (its schema already migrated). Workers write each job's
        run there; without it jobs live in memory only (tests, benchmarks).
    """

    def __init__(self, settings: Settings | None = None, max_jobs: int | None = None,
                 progress_interval: float = 0.1, eval_interval: float = 0.5,
                 store_url: str | None = None,
                 worker_command: tuple[str, ...] | None = None) -> None:
        self.settings = settings or load_settings()
        self.max_jobs = max_jobs or self.settings.max_jobs
        self.progress_interval = progress_interval
        self.eval_interval = eval_interval
        self.store_url = store_url
        self.worker_command = worker_command or (sys.executable, "-m", "playground.worker")
        self.server_id: str | None = None
        # Workers that die before saying hello are restarted with growing
        # delays, and not at all after MAX_START_FAILURES in a row.
        self._start_failures = 0
        self._respawn_at = 0.0
        self.broken: str | None = None
        self._served: dict[str, int] = {}  # owner -> the turn it was last served in
        self._last_turn = 0
        self._store: RunStore | None = None
        self._writer: StoreWriter | None = None
        if store_url is not None:
            self._writer = StoreWriter(store_url, name="nnpg-runner-store")
            try:
                self._store = RunStore(store_url, migrate=False)
                self.server_id = self._store.register_server()
                self._store.interrupt_orphans(self.server_id)
            except StoreUnavailableError as exc:
                # Train anyway; the housekeeping thread registers once it is back.
                log.warning("run store unavailable at start-up: %s", exc)
        self._lock = threading.RLock()
        self._jobs: dict[str, _Job] = {}
        self._queue: deque[_Job] = deque()
        self._workers: list[_Worker] = []
        self._ids = itertools.count(1)
        self._closed = False
        wake_r, wake_w = socket.socketpair()
        self._wake_r, self._wake_w = Connection(wake_r.detach()), Connection(wake_w.detach())
        self._ready = threading.Condition(self._lock)
        self._stop_housekeeping = threading.Event()
        for _ in range(self.max_jobs):
            self._workers.append(self._spawn())
        self._thread = threading.Thread(target=self._dispatch_loop, name="nnpg-jobs",
                                         daemon=True)
        self._thread.start()
        self._housekeeping = threading.Thread(target=self._housekeeping_loop,
                                              name="nnpg-jobs-housekeeping", daemon=True)
        self._housekeeping.start()
        # Streamlit exits normally on SIGTERM, so atexit stops the workers; a
        # weakref keeps the runner collectable in tests.
        ref = weakref.ref(self)
        atexit.register(lambda: (r := ref()) is not None and r.shutdown())

    @property
    def store_error(self) -> str | None:
        """What is wrong with the run store while writes to it are failing."""
        return None if self._writer is None else self._writer.error

    # ---- public API --------------------------------------------------------
    def submit(self, spec: JobSpec, job_id: str | None = None, *,
               checkpoint: bytes | None = None,
               prior_records: tuple[EpochRecord, ...] = (),
               owners: tuple[str, ...] = ()) -> str:
        """Queue a job; return its id.

        Parameters
        ----------
        spec : JobSpec
        job_id : str, optional
            The run's id in the store (default: a new in-memory id).
        checkpoint : bytes, optional
            Resume from this :mod:`nn_core.checkpoint`; ``prior_records`` are
            the epochs it already trained (shown until the job adds its own).
        owners : tuple of str
            Who asks, as ``"ws:<workspace>"`` and ``"ip:<address>"`` keys
            (per-user limits and round robin; none: an anonymous owner).

        Raises
        ------
        JobRefusedError
            If the model or the run is beyond this server's limits, or the
            queue is full.
        """
        self.check(spec)
        with self._lock:
            if self._closed:
                raise JobRefusedError("The server is shutting down; try again in a moment.")
            if self.broken:
                raise JobRefusedError(self.broken)
            self._check_owner_limits(owners, exclude=job_id)
            if len(self._queue) >= self.settings.max_queue:
                raise JobRefusedError(f"The server is busy: {len(self._queue)} runs are already "
                                      "waiting. Try again in a minute.")
            job_id = job_id or f"job-{next(self._ids)}"
            old = self._jobs.get(job_id)
            if old is not None and old.status not in FINISHED and old.status != PAUSED:
                raise JobRefusedError("This run is already training.")
            job = _Job(id=job_id, spec=spec, epochs_planned=spec.train.epochs,
                       checkpoint=checkpoint, records=list(prior_records), owners=owners)
            self._jobs[job.id] = job
            self._queue.append(job)
            self._assign()
            self._purge()
        return job.id

    def active_count(self, owner: str) -> int:
        """Jobs of ``owner`` that are queued or running."""
        with self._lock:
            return sum(owner in j.owners for j in self._jobs.values()
                       if j.status in (QUEUED, RUNNING))

    def check_owner(self, owners: tuple[str, ...], exclude: str | None = None) -> None:
        """Raise :class:`JobRefusedError` if one of ``owners`` has its maximum of runs."""
        with self._lock:
            self._check_owner_limits(owners, exclude)

    def _check_owner_limits(self, owners: tuple[str, ...], exclude: str | None) -> None:
        s = self.settings
        for owner in owners:
            limit = s.max_active_per_address if owner.startswith("ip:") else \
                s.max_active_per_user
            count = sum(owner in j.owners for j in self._jobs.values()
                        if j.status in (QUEUED, RUNNING) and j.id != exclude
                        and not j.stop_requested)
            if count >= limit:
                who = ("from your network address" if owner.startswith("ip:")
                       else "in your workspace")
                raise JobRefusedError(
                    f"You already have {count} runs training or waiting {who} (this server "
                    f"allows {limit}). Stop one, or wait until one finishes, then press "
                    "Train again.")

    def check(self, spec: JobSpec) -> None:
        """Raise :class:`JobRefusedError` if ``spec`` exceeds the server's limits."""
        s = self.settings
        hidden = spec.network.hidden_layer_sizes
        if len(hidden) > s.max_layers:
            raise JobRefusedError(f"{len(hidden)} hidden layers is more than this server allows "
                                  f"({s.max_layers}). Remove some layers.")
        if hidden and max(hidden) > s.max_units:
            raise JobRefusedError(f"A layer with {max(hidden)} neurons is more than this server "
                                  f"allows ({s.max_units} per layer). Use fewer neurons.")
        if spec.n_params > s.max_params:
            raise JobRefusedError(f"This network has {spec.n_params:,} weights, more than the "
                                  f"limit of {s.max_params:,}. Use fewer or smaller layers.")
        if spec.train.epochs > s.max_epochs:
            raise JobRefusedError(f"{spec.train.epochs} epochs is more than this server allows "
                                  f"({s.max_epochs}). Use fewer epochs.")
        seconds = estimate_seconds(spec)
        if seconds > s.max_job_seconds:
            raise JobRefusedError(
                f"This run would take about {seconds / 60:,.0f} minutes, longer than this "
                f"server allows ({s.max_job_seconds / 60:,.0f} minutes). Use fewer epochs, "
                "a smaller network or a larger batch size.")

    def pause(self, job_id: str) -> bool:
        """Pause a job: a running one at the end of its epoch (it then frees its
        worker), a queued one at once (it leaves the queue until resumed)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None and job.status == QUEUED:
                self._queue.remove(job)
                text = "Paused before it started. Press Resume to queue it again."
                job.status, job.message, job.paused_at = PAUSED, text, time.monotonic()
                self._store_write(lambda s: s.set_status(job_id, PAUSED, text))
                return True
        return self._control(job_id, PauseJob(job_id), {RUNNING})

    def resume(self, job_id: str) -> bool:
        """Queue a paused job again, from the checkpoint it paused at."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.status != PAUSED or job.spec is None:
                return False
            self._check_owner_limits(job.owners, exclude=job.id)
            job.status, job.message, job.paused_at = QUEUED, "Waiting for a free worker.", None
            job.stop_requested = False
            self._queue.append(job)
            self._assign()
        self._store_write(lambda s: s.set_status(job_id, QUEUED, "Waiting for a free worker."))
        return True

    def stop(self, job_id: str, reason: str | None = None) -> bool:
        """Stop a job: a queued or paused one at once, a running one within a batch.

        ``reason`` (a sentence for the user) is added to the run's message.
        Returns False if the job is unknown or already finished.
        """
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.status in FINISHED:
                return False
            if job.status in (QUEUED, PAUSED):
                if job.status == QUEUED:
                    self._queue.remove(job)
                    text = "Cancelled before it started."
                else:
                    epoch = job.records[-1].epoch if job.records else 0
                    text = f"Stopped while paused after epoch {epoch}."
                if reason:
                    text = f"{text[:-1]}: {reason}"
                self._finish(job, STOPPED, text)
                self._store_write(lambda s: s.set_status(job_id, STOPPED, text,
                                                         finished_at=time.time()))
                return True
            job.stop_requested = True
            worker = job.worker
        return worker is not None and worker.send(StopJob(job_id, reason))

    def snapshot(self, job_id: str, watch: bool = True) -> Snapshot | None:
        """Immutable state of a job, or None if unknown (or forgotten).

        ``watch``: a page is showing it (keeps the job from being abandoned).
        """
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if watch:
                job.watched = time.monotonic()
            position = None
            if job.status == QUEUED:
                position = next(i for i, j in enumerate(self._service_order(), 1) if j is job)
            return Snapshot(job_id=job.id, status=job.status, message=job.message,
                            queue_position=position, epochs_planned=job.epochs_planned,
                            records=tuple(job.records), evaluation=job.evaluation,
                            model=job.model, created=job.created, started=job.started,
                            finished_at=job.finished_at, stop_requested=job.stop_requested)

    def forget(self, job_id: str) -> None:
        """Stop (if needed) and drop a job's state."""
        self.stop(job_id)
        with self._lock:
            self._jobs.pop(job_id, None)

    def drop_model(self, job_id: str) -> None:
        """Free a finished job's model bytes (once the store holds them)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None and job.status in FINISHED:
                job.model = None

    def stats(self) -> dict[str, int]:
        """Counts for monitoring: running, queued, workers alive."""
        with self._lock:
            return {"running": sum(w.job is not None for w in self._workers),
                    "queued": len(self._queue),
                    "workers": sum(w.alive() for w in self._workers)}

    def worker_pids(self) -> list[int]:
        """PIDs of the worker processes (for monitoring and tests)."""
        with self._lock:
            return [w.process.pid for w in self._workers]

    def job_worker_pid(self, job_id: str) -> int | None:
        """PID of the process running ``job_id`` (None if not running)."""
        with self._lock:
            job = self._jobs.get(job_id)
            return job.worker.process.pid if job and job.worker else None

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Block until every worker has imported the engine and said hello."""
        with self._ready:
            return self._ready.wait_for(
                lambda: all(w.pid is not None for w in self._workers), timeout)

    def shutdown(self, timeout: float = 3.0) -> None:
        """Stop every job and worker; returns when all worker processes have exited.

        Running jobs are *interrupted*: their workers store the last records and
        checkpoint, and the runs can be resumed after the restart.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            workers = list(self._workers)
            queued = list(self._queue)
            for job in queued:
                self._finish(job, INTERRUPTED, interrupted_message(0))
            self._queue.clear()
        self._stop_housekeeping.set()
        for job in queued:
            self._store_write(lambda s, j=job: s.set_status(
                j.id, INTERRUPTED, interrupted_message(0), only_if=tuple(ACTIVE)))
        for w in workers:
            w.send(Shutdown())
        deadline = time.monotonic() + timeout
        for w in workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                w.process.wait(max(0.0, deadline - time.monotonic()))
        for w in workers:
            if w.process.poll() is None:
                w.process.terminate()
        for w in workers:
            try:
                w.process.wait(1.0)
            except subprocess.TimeoutExpired:
                w.process.kill()
                w.process.wait(1.0)
        self._wake()
        self._thread.join(2.0)
        for w in workers:
            w.conn.close()
        with self._lock:
            for job in self._jobs.values():
                if job.status in ACTIVE:
                    epoch = job.records[-1].epoch if job.records else 0
                    self._finish(job, INTERRUPTED, interrupted_message(epoch))
        if self._writer is not None:
            self._writer.close(timeout=2.0)
        if self._store is not None:
            self._store.close()

    # ---- internals -------------------------------------------------------
    def _store_write(self, write: Any) -> None:
        if self._writer is not None:
            self._writer.submit(write)

    def _spawn(self) -> _Worker:
        """Start a fresh worker interpreter (``python -m playground.worker FD``).

        Not ``multiprocessing``'s spawn context: Streamlit installs a fake
        ``__main__`` module pointing at ``app.py``, which spawn children would
        re-execute (running the whole UI in every worker). A plain subprocess
        on a socket pair imports only the worker module, and its environment
        pins BLAS to one thread before NumPy loads.
        """
        parent, child = socket.socketpair()
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        root = Path(__file__).resolve().parents[1]
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
        process = subprocess.Popen(
            [*self.worker_command, str(child.fileno())],
            pass_fds=(child.fileno(),), env=env, cwd=root, stdin=subprocess.DEVNULL,
            start_new_session=False)
        child.close()
        return _Worker(process, Connection(parent.detach()))

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send_bytes(b"x")

    def _control(self, job_id: str, message: tuple, allowed: set[str]) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.status not in allowed or job.worker is None:
                return False
            worker = job.worker
        return worker.send(message)

    def _finish(self, job: _Job, status: Status, message: str) -> None:
        job.status = status
        job.message = message
        job.finished_at = time.time()
        job.spec = None
        job.checkpoint = None
        if job.worker is not None:
            job.worker.job = None
            job.worker = None

    def _service_order(self) -> list[_Job]:
        """The queue in the order it will be served: owners take turns, each owner's
        jobs in the order they came. Caller holds the lock."""
        served = dict(self._served)
        waiting = list(self._queue)
        order: list[_Job] = []
        future = self._last_turn + 1
        while waiting:
            # the job whose owners were served longest ago (never: first), FIFO on ties
            job = min(waiting, key=lambda j: max((served.get(o, 0) for o in j.owners),
                                                 default=0))
            waiting.remove(job)
            order.append(job)
            for o in job.owners:
                served[o] = future + len(order)  # served in this simulated future
        return order

    def _next_job(self) -> _Job:
        job = self._service_order()[0]
        self._queue.remove(job)
        self._last_turn += 1
        for owner in job.owners:
            self._served[owner] = self._last_turn
        return job

    def _assign(self) -> None:
        """Start queued jobs on idle workers (owners in turn). Caller holds the lock."""
        while (self._queue and not self._closed and not self.broken
               and time.monotonic() >= self._respawn_at
               and sum(w.alive() for w in self._workers) < self.max_jobs):
            self._workers.append(self._spawn())  # replace a worker stopped on purpose
        for worker in self._workers:
            if not self._queue:
                return
            if worker.job is not None or not worker.alive():
                continue  # (a worker still starting takes a job: it reads it once ready)
            job = self._next_job()
            options = JobOptions(self.progress_interval, self.eval_interval,
                                 checkpoint=job.checkpoint, store_url=self.store_url,
                                 server_id=self.server_id,
                                 checkpoint_seconds=self.settings.checkpoint_seconds,
                                 max_seconds=self.settings.max_job_seconds)
            if not worker.send(StartJob(job.id, job.spec, options)):
                self._queue.appendleft(job)
                continue
            worker.job = job
            job.worker = worker
            job.status = RUNNING
            job.message = "Training."
            job.started = job.started or time.time()

    def _purge(self) -> None:
        cutoff = time.time() - (_FINISHED_TTL if self.store_url is None else _FINISHED_TTL_STORED)
        for job_id in [j.id for j in self._jobs.values()
                       if j.finished_at is not None and j.finished_at < cutoff]:
            del self._jobs[job_id]

    def _start_failed(self, code: int) -> None:
        """A worker died before it was ready: retry later, and give up after a few tries.
        Caller holds the lock."""
        self._start_failures += 1
        if self._start_failures >= MAX_START_FAILURES:
            self.broken = ("Training is unavailable on this server: its training processes "
                           "crash while starting. The operator has been told (server log).")
            log.error("training workers crashed %d times in a row while starting (last exit "
                      "code %s); not restarting them. Check the server log above.",
                      self._start_failures, code)
            for job in list(self._queue):
                self._finish(job, FAILED, self.broken)
            self._queue.clear()
            return
        delay = min(START_BACKOFF_MAX, START_BACKOFF * 2 ** (self._start_failures - 1))
        log.warning("a training worker crashed while starting (exit code %s); restarting "
                    "it in %.1f s (attempt %d of %d)", code, delay, self._start_failures + 1,
                    MAX_START_FAILURES)
        self._respawn_at = time.monotonic() + delay

    def _housekeeping_loop(self) -> None:
        """Abandoned and long-paused jobs, heartbeat, runs of dead servers."""
        last_beat = 0.0
        while not self._stop_housekeeping.wait(1.0):
            try:
                with self._lock:
                    self._purge()
                self._stop_unwatched()
                if self.store_url is not None and \
                        time.monotonic() - last_beat >= HEARTBEAT_SECONDS:
                    last_beat = time.monotonic()
                    if self._store is None:
                        self._store = RunStore(self.store_url, migrate=False)
                    if self.server_id is None:
                        self.server_id = self._store.register_server()
                    self._store.heartbeat(self.server_id)
                    self._store.interrupt_orphans(self.server_id)
            except StoreUnavailableError as exc:
                log.debug("housekeeping without the store: %s", exc)
            except Exception:
                log.exception("job housekeeping failed")

    def _stop_unwatched(self) -> None:
        s = self.settings
        now = time.monotonic()
        with self._lock:
            unwatched = [j.id for j in self._jobs.values()
                         if j.status in (QUEUED, RUNNING) and not j.stop_requested
                         and now - j.watched > s.abandon_seconds]
            expired = [j.id for j in self._jobs.values()
                       if j.status == PAUSED and j.paused_at is not None
                       and now - j.paused_at > s.max_pause_seconds]
        if unwatched and self._store is not None:
            # Another replica may be showing the run (it writes watched_at).
            seen = self._store.watched(unwatched)
            wall = time.time()
            unwatched = [j for j in unwatched if wall - seen.get(j, 0.0) > s.abandon_seconds]
        for job_id in unwatched:
            log.info("stopping run %s: nobody watched it for %d s", job_id[:4] + "…",
                     s.abandon_seconds)
            self.stop(job_id, f"nobody was watching it for {s.abandon_seconds} s.")
        for job_id in expired:
            self.stop(job_id, f"it was paused for longer than {s.max_pause_seconds // 60} "
                              "minutes. Press Resume to continue.")

    def _dispatch_loop(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                by_conn = {w.conn: w for w in self._workers if not w.dead}
            try:
                ready = wait([*by_conn, self._wake_r], timeout=1.0)
            except OSError:
                continue
            for obj in ready:
                if obj is self._wake_r:
                    while self._wake_r.poll():
                        self._wake_r.recv_bytes()
                elif obj in by_conn:
                    self._receive(by_conn[obj])
            with self._lock:
                if not self._closed:
                    self._refill()
                    self._assign()

    def _refill(self) -> None:
        """Start the workers a failed start left missing, once its back-off is over."""
        if not self._start_failures or self.broken or time.monotonic() < self._respawn_at:
            return
        if any(w.pid is None and not w.dead for w in self._workers):
            return  # a retry is still starting
        while sum(not w.dead for w in self._workers) < self.max_jobs:
            self._workers.append(self._spawn())

    def _receive(self, worker: _Worker) -> None:
        try:
            while worker.conn.poll():
                self._handle(worker, worker.conn.recv())
        except (EOFError, OSError):
            # The worker's end of the socket closed: the process died.
            self._handle_death(worker)

    def _handle(self, worker: _Worker, message: object) -> None:
        with self._lock:
            if isinstance(message, Ready):
                worker.pid = message.pid
                self._start_failures = 0
                self._ready.notify_all()
                return
            job = self._jobs.get(message.job_id)
            if job is None or job.worker is not worker:
                if isinstance(message, Finished | Failed | Paused) and worker.job is not None \
                        and worker.job.id == message.job_id:
                    worker.job = None  # job was forgotten meanwhile
                return
            if isinstance(message, Progress):
                job.records.extend(message.records)
                if message.evaluation is not None:
                    job.evaluation = message.evaluation
            elif isinstance(message, Paused):
                job.status, job.message = PAUSED, message.message
                job.checkpoint = message.checkpoint
                job.paused_at = time.monotonic()
                worker.job = None
                job.worker = None
            elif isinstance(message, Finished):
                job.evaluation = message.evaluation
                # The worker stored the model: it does not stay in server memory.
                job.model = message.model if self.store_url is None else None
                self._finish(job, Status(message.status), message.message)
            elif isinstance(message, Failed):
                self._finish(job, FAILED, message.message)

    def _handle_death(self, worker: _Worker) -> None:
        worker.dead = True
        try:
            code = worker.process.wait(2.0)  # reap it; negative = killed by that signal
        except subprocess.TimeoutExpired:
            worker.process.kill()
            code = worker.process.wait()
        with self._lock:
            if worker not in self._workers:
                return
            if worker.job is not None and worker.pid is None and not self._closed:
                # It died while starting, before it saw the job: queue the job again.
                job = worker.job
                job.worker, worker.job = None, None
                job.status, job.message = QUEUED, "Waiting for a free worker."
                self._queue.appendleft(job)
            if worker.job is not None:
                job = worker.job
                text = (f"The training process stopped unexpectedly (exit code {code}). "
                        "This can happen when the server runs out of memory: try a "
                        "smaller network or data set, then train again.")
                self._finish(job, FAILED, text)
                self._store_write(lambda s: s.finish_run(job.id, FAILED, text, None, None))
            worker.conn.close()
            self._workers.remove(worker)
            if worker.pid is None and not self._closed and -code not in _SHUTDOWN_SIGNALS:
                self._start_failed(code)
                return
            if self._closed or code == 0 or -code in _SHUTDOWN_SIGNALS:
                # Terminated on purpose (e.g. SIGTERM to the server's process
                # group, which reaches the workers first; a worker that gets it
                # stores its run and exits with 0): starting a new worker
                # now would only race the server's own shutdown. _assign() starts
                # one later if work arrives and the server lives on.
                return
            self._workers.append(self._spawn())  # a crash (e.g. killed when out of memory)
