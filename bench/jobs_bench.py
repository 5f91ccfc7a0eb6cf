"""Job-runner benchmark (issue 3): training through the worker processes, and a classroom.

Run it from the repository root::

    .venv/bin/python bench/jobs_bench.py                  # all three parts (a few minutes)
    .venv/bin/python bench/jobs_bench.py --throughput --repeats 15
    .venv/bin/python bench/jobs_bench.py --latency --submits 40
    .venv/bin/python bench/jobs_bench.py --load --sessions 30 --json load.json
    .venv/bin/python bench/jobs_bench.py --load --sessions 5,10,20,30   # where does it tip?

Flags select parts; without any of ``--throughput``, ``--latency``, ``--load``
all three run. ``--json PATH`` also writes every number and the raw samples.
Exit status 0 when every target is met, 1 otherwise.

What is measured
----------------
The *seed Digits configuration*: scikit-learn's ``load_digits``,
``train_test_split(test_size=0.2, random_state=3)``, ``StandardScaler`` fitted
on the training split (1,437 training, 360 test samples), float32; hidden
layers (64, 32), relu, plain SGD, learning rate 0.01, batch 32, 500 epochs.

1. **Throughput.** ``NeuralNetworkClassifier(...).fit`` in this process (BLAS
   pinned to one thread with threadpoolctl) against the same training through
   a warm ``JobRunner(max_jobs=1)``. The job is the ``JobSpec`` the app's
   ``build_spec`` makes for the default sidebar (checked to be the seed
   configuration), with this split's arrays put in: the worker evaluates the
   360 test samples every ``eval_interval`` and streams progress, as in the
   app. The ratio's runs use **no validation split** (``val_size`` 0), so both
   sides train the same 500 epochs over the same 1,437 samples from the same
   seed (their final training losses are compared: bit-identical). A third,
   informational arm uses the app's default 10 % validation split (1,293
   training samples plus a validation pass per epoch). Throughput is
   **training samples per second** (samples x epochs / seconds) everywhere.
   The runner is timed two ways: *wall* (``submit`` until ``snapshot`` first
   shows the job finished, polled every 1 ms) and *loop* (the last
   ``EpochRecord.elapsed``: seconds of the training loop in the worker,
   callbacks excluded); the direct fit likewise by the wall time of ``fit``
   and its last ``history_`` record. **The target ratio uses wall time** (what
   a user waits for); the loop ratio isolates the training loop. Repetitions
   are interleaved in a rotating order after one untimed warm-up each; figures
   are medians, ratios medians of the per-repetition ratios.
2. **First progress.** On the same warm runner: seconds from ``submit`` until
   ``snapshot(job).records`` is non-empty (polled every 1 ms); each job is then
   stopped and the worker idles again before the next submit.
3. **Classroom load.** The real app server (``tests/servers.py``
   ``start_app``: ``streamlit run app.py`` on 127.0.0.1, a free port, default
   ``NNPG_MAX_JOBS`` = usable CPUs) and ``--sessions`` real Streamlit sessions
   over the WebSocket protocol (``bench/st_client.py``: one asyncio loop doing
   what the browser frontend does on the wire, including the
   ``st.fragment(run_every=...)`` auto-reruns the Playground page asks for) on
   ``/?epochs=500``. Every session loads the page, then all press Train at
   the same moment; a session counts as complete when its page shows
   "Trained 500 epochs."; each session has its own workspace cookie, and the
   numbers (queue wait, training time, test accuracy, epochs and model kept)
   are read from its run in the server's store, not from the page's sentences.
   Meanwhile a separate process GETs ``/_stcore/health`` every 50 ms on a new
   connection (a process, not a thread, so the load client's GIL cannot delay
   the probe), and a thread samples the RSS (and once a second the PSS) of the
   server plus all its descendants every 100 ms. Then the server gets SIGTERM
   (``tests/servers.py`` ``stop``) while the sessions are still connected;
   processes that appear in its group after the signal are reported, and none
   may remain afterwards.

Emulated sessions instead of headless Chromium: 30 Chromium pages need several
cores of their own, and on this 2-core machine they would take the CPU from
the server being measured. The protocol client costs a fraction of one core;
its CPU time is reported next to the server's.

This machine may be shared: every part reports how much CPU other processes
used while it ran, so a slow result can be told from a busy machine.
"""

from __future__ import annotations

import os
import sys

# Run as a script (bench/ is sys.path[0]): make nn_core, playground and tests importable.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import http.client
import json
import math
import platform
import re
import secrets
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import psutil
import sqlalchemy as sa
from common import Digits, cpu_model, digits_split, median

# ---- configuration -------------------------------------------------------------
EPOCHS = 500
HIDDEN = (64, 32)
LEARNING_RATE = 0.01
BATCH_SIZE = 32
VAL_FRACTION = 0.1  # the app's default validation split (10 %)
QUERY = f"epochs={EPOCHS}"
DONE_TEXT = f"Trained {EPOCHS} epochs."

THROUGHPUT_TARGET = 0.85  # runner samples/s over direct samples/s, at least
LATENCY_TARGET = 0.3  # seconds from submit to the first visible record, at most
HEALTH_P95_TARGET = 0.250  # seconds, during the classroom load
HEALTH_INTERVAL = 0.05
MEMORY_INTERVAL = 0.1
POLL = 0.001  # snapshot polling period of parts 1 and 2


# ---- small helpers -----------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default), NaN when empty."""
    return float(np.percentile(values, q)) if len(values) else math.nan


def met(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def mb(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:,.0f} MB"


def machine_info() -> dict[str, Any]:
    from threadpoolctl import threadpool_info

    from playground.settings import available_cpus

    blas = ", ".join(f"{p['internal_api']} {p.get('version') or ''}".strip()
                     for p in threadpool_info()) or "unknown"
    import streamlit

    return {"cpu": cpu_model(), "cores_usable": available_cpus(), "os_cpu_count": os.cpu_count(),
            "python": platform.python_version(), "numpy": np.__version__, "blas": blas,
            "streamlit": streamlit.__version__, "platform": platform.platform(),
            "load_average_1min": os.getloadavg()[0]}


# ---- data and job specs ----------------------------------------------------------------
def app_ui() -> Any:
    """``playground.refresh`` (imported quietly: st.cache_* decorators warn outside a server)."""
    from streamlit import logger as st_logger

    st_logger.set_log_level("error")
    import playground.refresh

    return playground.refresh


def app_specs(data: Digits, seed: int) -> dict[str, Any]:
    """Job specs as the app builds them, with the seed split's arrays put in.

    ``playground.runs.build_spec`` turns the sidebar's configuration into a
    ``JobSpec``; this takes its output for the default sidebar (``epochs=500``)
    with the validation split off (``"runner"``) and at its default 10 %
    (``"runner_val"``) and swaps in this benchmark's split, so every other
    field (network, TrainConfig, classes, meta) is exactly what a Train press
    submits.
    """
    from sklearn.model_selection import train_test_split

    from playground.config import RunConfig
    from playground.datasets import load_builtin
    from playground.messages import NetworkSpec
    from playground.runs import build_spec

    ds = load_builtin("Digits", seed=seed)
    preprocessing = {"mean": data.mean.tolist(), "scale": data.scale.tolist(),
                     "note": "apply (X - mean) / scale before predicting"}
    specs: dict[str, Any] = {}
    for name, val_size in (("runner", 0), ("runner_val", round(VAL_FRACTION * 100))):
        cfg = RunConfig(epochs=EPOCHS, val_size=val_size, seed=seed)
        app_spec, _, batch = build_spec(cfg, ds)
        # The seed configuration is the sidebar's default: check, do not assume.
        expected = NetworkSpec(n_features=64, hidden_layer_sizes=tuple(HIDDEN), n_classes=10,
                               activation="relu", init="glorot_normal", dtype="float32")
        if app_spec.network != expected or batch != BATCH_SIZE \
                or app_spec.train.optimizer != "sgd" \
                or app_spec.train.learning_rate != LEARNING_RATE \
                or app_spec.train.epochs != EPOCHS or app_spec.train.lr_schedule != "constant" \
                or app_spec.train.alpha or app_spec.train.dropout \
                or getattr(app_spec.train, "clip_norm", None) is not None:
            raise RuntimeError(f"the app's default job is not the seed configuration: "
                               f"{app_spec.network}, {app_spec.train}")
        X_tr, y_tr, X_val, y_val = data.X_train, data.y_train, None, None
        if val_size:
            X_tr, X_val, y_tr, y_val = train_test_split(
                data.X_train, data.y_train, test_size=VAL_FRACTION, random_state=seed + 1,
                stratify=data.y_train)
        specs[name] = dataclasses.replace(
            app_spec, X_train=X_tr, y_train=y_tr, X_val=X_val, y_val=y_val,
            X_test=data.X_test, y_test=data.y_test, classes=tuple(range(10)), grid=None,
            meta={**app_spec.meta, "preprocessing": preprocessing})
    return specs


# ---- part 1: throughput ----------------------------------------------------------
@dataclasses.dataclass
class FitTiming:
    wall: float  # seconds: fit() call, or submit -> finished snapshot
    records: float  # seconds: last EpochRecord.elapsed (training loop only)
    n_train: int
    epochs: int
    final_loss: float
    accuracy: float
    own_cpu: float = math.nan  # CPU seconds of this process meanwhile (poller + dispatcher)

    def rate(self, which: str) -> float:
        """Training samples per second by ``which`` time ("wall" or "records")."""
        return self.n_train * self.epochs / getattr(self, which)


def direct_fit(data: Digits, seed: int) -> FitTiming:
    from threadpoolctl import threadpool_limits

    from nn_core import NeuralNetworkClassifier

    clf = NeuralNetworkClassifier(hidden_layer_sizes=HIDDEN, activation="relu",
                                  optimizer="sgd", learning_rate=LEARNING_RATE,
                                  batch_size=BATCH_SIZE, epochs=EPOCHS, random_state=seed)
    with threadpool_limits(limits=1):
        gc.collect()
        t0 = time.perf_counter()
        clf.fit(data.X_train, data.y_train)
        wall = time.perf_counter() - t0
    if clf.n_iter_ != EPOCHS or clf.status_ != "completed":
        raise RuntimeError(f"direct fit ran {clf.n_iter_} epochs ({clf.status_})")
    return FitTiming(wall, clf.history_[-1].elapsed, len(data.y_train), EPOCHS,
                     clf.loss_curve_[-1], float(np.mean(clf.predict(data.X_test) == data.y_test)))


def wait_snapshot(runner: Any, job_id: str, predicate: Callable[[Any], bool],
                  timeout: float = 300.0) -> Any:
    """Poll ``runner.snapshot(job_id)`` every POLL seconds until ``predicate`` holds."""
    deadline = time.perf_counter() + timeout
    while True:
        snap = runner.snapshot(job_id)
        if snap is not None and predicate(snap):
            return snap
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{job_id}: still {snap and snap.status} after {timeout} s")
        time.sleep(POLL)


def runner_fit(runner: Any, spec: Any) -> FitTiming:
    gc.collect()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    job_id = runner.submit(spec)
    snap = wait_snapshot(runner, job_id, lambda s: s.finished)
    wall = time.perf_counter() - t0
    own_cpu = time.process_time() - cpu0
    runner.forget(job_id)
    if snap.status != "done" or snap.epoch != EPOCHS or len(snap.records) != EPOCHS:
        raise RuntimeError(f"runner job ended {snap.status} at epoch {snap.epoch} "
                           f"({len(snap.records)} records): {snap.message}")
    return FitTiming(wall, snap.records[-1].elapsed, len(spec.y_train), EPOCHS,
                     snap.records[-1].train_loss, snap.evaluation.accuracy,
                     own_cpu)


def bench_throughput(runner: Any, data: Digits, repeats: int) -> dict[str, Any]:
    arms = ("direct", "runner", "runner_val")
    specs = {seed: app_specs(data, seed) for seed in range(3)}

    def run(arm: str, seed: int) -> FitTiming:
        if arm == "direct":
            return direct_fit(data, seed)
        return runner_fit(runner, specs[seed][arm])

    for arm in arms:  # warm-up, not timed
        run(arm, 0)
    machine = MachineCpu()
    results: dict[str, list[FitTiming]] = {arm: [] for arm in arms}
    for rep in range(repeats):
        seed = rep % 3
        order = arms[rep % 3:] + arms[:rep % 3]
        for arm in order:
            results[arm].append(run(arm, seed))
        d, r = results["direct"][-1], results["runner"][-1]
        if d.final_loss != r.final_loss:
            raise RuntimeError(f"direct and runner training differ (seed {seed}): final "
                               f"loss {d.final_loss!r} vs {r.final_loss!r}")
    out: dict[str, Any] = {"repeats": repeats, "arms": {}}
    for arm, timings in results.items():
        out["arms"][arm] = {
            "n_train": timings[0].n_train, "epochs": EPOCHS,
            "wall_s": median([t.wall for t in timings]),
            "records_s": median([t.records for t in timings]),
            "samples_per_s_wall": median([t.rate("wall") for t in timings]),
            "samples_per_s_records": median([t.rate("records") for t in timings]),
            "accuracy": median([t.accuracy for t in timings]),
            "raw_wall_s": [t.wall for t in timings],
            "raw_records_s": [t.records for t in timings]}
    for arm in ("runner", "runner_val"):
        for which in ("wall", "records"):
            ratios = [r.rate(which) / d.rate(which)
                      for r, d in zip(results[arm], results["direct"])]
            out[f"ratio_{arm}_{which}"] = median(ratios)
            out[f"ratio_{arm}_{which}_quartiles"] = [percentile(ratios, 25),
                                                     percentile(ratios, 75)]
            out[f"ratio_{arm}_{which}_raw"] = ratios
    overhead = [r.wall - r.records for r in results["runner"]]
    out["runner_wall_minus_records_s"] = median(overhead)
    out["direct_wall_minus_records_s"] = median([d.wall - d.records
                                                 for d in results["direct"]])
    out["poller_cpu_share"] = median([r.own_cpu / r.wall for r in results["runner"]])
    out["target"] = THROUGHPUT_TARGET
    out["target_met"] = out["ratio_runner_wall"] >= THROUGHPUT_TARGET
    out["machine"] = machine.stop()
    return out


def print_throughput(res: dict[str, Any]) -> None:
    a = res["arms"]
    print(f"\n1. Throughput: seed Digits, 64-64-32-10 relu, SGD lr {LEARNING_RATE}, batch "
          f"{BATCH_SIZE}, {EPOCHS} epochs; {res['repeats']} interleaved repetitions, medians")
    print(f"   {'':46s}{'wall s':>8s}{'loop s':>8s}{'samples/s wall':>16s}"
          f"{'samples/s loop':>16s}{'test acc':>10s}")
    labels = {"direct": "direct NeuralNetworkClassifier.fit (1 BLAS thr)",
              "runner": "JobRunner(max_jobs=1), no validation split",
              "runner_val": "JobRunner, app default 10 % validation (info)"}
    for arm, label in labels.items():
        r = a[arm]
        print(f"   {label[:46]:46s}{r['wall_s']:8.3f}{r['records_s']:8.3f}"
              f"{r['samples_per_s_wall']:16,.0f}{r['samples_per_s_records']:16,.0f}"
              f"{r['accuracy']:10.1%}")
    print(f"   training samples: {a['direct']['n_train']} (direct and runner), "
          f"{a['runner_val']['n_train']} (runner with validation); same seed -> identical "
          "final loss, checked")
    print("   'wall': fit() call / submit -> finished snapshot (polled every 1 ms); 'loop': "
          "last EpochRecord.elapsed (training loop, callbacks excluded)")
    print(f"   runner overhead beyond the loop (dispatch, test evaluations, progress "
          f"messages, final evaluation, model bytes): {ms(res['runner_wall_minus_records_s'])}"
          f" per job (direct fit: {ms(res['direct_wall_minus_records_s'])}); meanwhile this "
          f"process (1 ms polling, dispatcher thread) used {res['poller_cpu_share']:.0%} "
          "of a core")
    q = res["ratio_runner_wall_quartiles"]
    print(f"   RATIO runner/direct, samples/s by WALL time (the target's measure): "
          f"{res['ratio_runner_wall']:.3f} (quartiles of the {res['repeats']} paired ratios "
          f"{q[0]:.2f}..{q[1]:.2f})  (target >= {THROUGHPUT_TARGET}: "
          f"{met(res['target_met'])})")
    print(f"   ratio by training-loop time (records): {res['ratio_runner_records']:.3f}; "
          f"app-default validation arm: wall {res['ratio_runner_val_wall']:.3f}, "
          f"loop {res['ratio_runner_val_records']:.3f}")
    print_machine(res["machine"])


# ---- part 2: time to the first progress record ------------------------------------
def bench_latency(runner: Any, spec: Any, submits: int) -> dict[str, Any]:
    latencies, first_epoch_s = [], []
    machine = MachineCpu()
    for _ in range(submits):
        time.sleep(0.05)  # the worker is idle, waiting for a job
        t0 = time.perf_counter()
        job_id = runner.submit(spec)
        snap = wait_snapshot(runner, job_id, lambda s: bool(s.records) or s.finished, 30.0)
        latencies.append(time.perf_counter() - t0)
        if not snap.records:
            raise RuntimeError(f"job finished without records: {snap.status} {snap.message}")
        first_epoch_s.append(snap.records[0].elapsed)
        runner.stop(job_id)
        wait_snapshot(runner, job_id, lambda s: s.finished, 30.0)
        runner.forget(job_id)
    return {"submits": submits, "median_s": median(latencies), "p90_s": percentile(latencies, 90),
            "max_s": max(latencies), "first_epoch_train_s": median(first_epoch_s),
            "raw_s": latencies, "target": LATENCY_TARGET,
            "target_met": max(latencies) <= LATENCY_TARGET, "machine": machine.stop()}


def print_latency(res: dict[str, Any]) -> None:
    print(f"\n2. Submit -> first progress record visible in snapshot().records (warm "
          f"JobRunner(max_jobs=1), app-default Digits job, {res['submits']} submits, "
          "polled every 1 ms)")
    print(f"   median {ms(res['median_s'])}, p90 {ms(res['p90_s'])}, max {ms(res['max_s'])}  "
          f"(target <= {ms(LATENCY_TARGET)}: median {met(res['median_s'] <= LATENCY_TARGET)}, "
          f"max {met(res['target_met'])})")
    print(f"   of which training epoch 1 in the worker: {ms(res['first_epoch_train_s'])} "
          "(median); the rest is sending the data, building the network, the first test "
          "evaluation and the message back")
    print_machine(res["machine"])


# ---- part 3: classroom load --------------------------------------------------------
def health_probe_main(url: str, interval: float) -> None:
    """``--health-probe``: GET /_stcore/health every ``interval`` s until stdin closes.

    Prints one JSON list of ``[monotonic time, seconds or null, error]``.
    """
    host, port = url.removeprefix("http://").split(":")
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    samples: list[tuple[float, float | None, str]] = []
    due = time.monotonic()
    while not stop.is_set():
        t0 = time.monotonic()
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            conn.request("GET", "/_stcore/health")
            resp = conn.getresponse()
            body = resp.read()
            ok = resp.status == 200 and body == b"ok"
            samples.append((t0, time.monotonic() - t0, "" if ok else f"HTTP {resp.status}"))
        except OSError as exc:
            samples.append((t0, None, f"{type(exc).__name__}: {exc}"))
        finally:
            conn.close()
        due = max(due + interval, time.monotonic())
        stop.wait(due - time.monotonic())
    json.dump(samples, sys.stdout)


class HealthProbe:
    """The health prober in its own process (see :func:`health_probe_main`)."""

    def __init__(self, url: str, interval: float = HEALTH_INTERVAL) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--health-probe", url, str(interval)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def stop(self) -> list[tuple[float, float | None, str]]:
        out, _ = self.proc.communicate(timeout=30)
        return [tuple(s) for s in json.loads(out)]


class ProcessSampler(threading.Thread):
    """Samples the server process and all its descendants every ``interval`` seconds.

    Records the peak of the summed RSS, the peak summed PSS (once a second:
    shared library pages counted once), every descendant seen (pid, create
    time, command line), and how many worker processes were training (their
    CPU time grew by more than 10 % of the time since the previous sample; an
    idle worker waiting for a job uses none).
    """

    def __init__(self, pid: int, interval: float = MEMORY_INTERVAL) -> None:
        super().__init__(name="process-sampler", daemon=True)
        self.root = psutil.Process(pid)
        self.interval = interval
        self.halt = threading.Event()
        self.peak_rss = 0
        self.peak_rss_server = 0
        self.peak_rss_at = 0.0
        self.peak_pss = 0
        self.seen: dict[int, tuple[float, str]] = {}  # pid -> (create time, cmdline)
        self.samples: list[tuple[float, int, int, int]] = []  # t, rss, n procs, busy workers
        self.workers_max = 0
        self._cpu: dict[int, tuple[float, float]] = {}  # pid -> (time, cpu seconds)

    def run(self) -> None:
        n = 0
        while not self.halt.is_set():
            self.sample(with_pss=n % 10 == 0)
            n += 1
            self.halt.wait(self.interval)

    def sample(self, with_pss: bool = False) -> None:
        t = time.monotonic()
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        rss = pss = busy = workers = 0
        for p in procs:
            try:
                with p.oneshot():
                    if p.pid not in self.seen:
                        self.seen[p.pid] = (p.create_time(), " ".join(p.cmdline()))
                    mem = p.memory_info().rss
                    rss += mem
                    if p is self.root:
                        self.peak_rss_server = max(self.peak_rss_server, mem)
                    if with_pss:
                        pss += getattr(p.memory_full_info(), "pss", 0)
                    if "playground.worker" in self.seen[p.pid][1]:
                        workers += 1
                        cpu = sum(p.cpu_times()[:2])
                        last = self._cpu.get(p.pid)
                        self._cpu[p.pid] = (t, cpu)
                        if last is not None and cpu - last[1] > 0.1 * (t - last[0]):
                            busy += 1
            except psutil.Error:
                continue
        if rss > self.peak_rss:
            self.peak_rss, self.peak_rss_at = rss, t
        self.peak_pss = max(self.peak_pss, pss)
        self.workers_max = max(self.workers_max, workers)
        self.samples.append((t, rss, len(procs), busy))


def cpu_seconds(p: psutil.Process) -> float:
    with contextlib.suppress(psutil.Error):
        t = p.cpu_times()
        return t.user + t.system
    return math.nan


def group_cpu_seconds(pid: int) -> tuple[float, float]:
    """(server process, its descendants) CPU seconds so far."""
    try:
        root = psutil.Process(pid)
        kids = root.children(recursive=True)
    except psutil.Error:
        return math.nan, math.nan
    return cpu_seconds(root), sum(cpu_seconds(k) for k in kids)


def own_cpu_seconds() -> float:
    """CPU seconds of this process and all its descendants (live or reaped)."""
    me = psutil.Process()
    t = me.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    with contextlib.suppress(psutil.Error):
        total += sum(cpu_seconds(p) for p in me.children(recursive=True))
    return total


class MachineCpu:
    """Machine-wide CPU use over a window: this benchmark's processes vs. everything else.

    Other people's processes on a shared machine slow every number here; this
    says how much CPU they took while a part ran.
    """

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.busy0, self.steal0 = self._machine()
        self.ours0 = own_cpu_seconds()

    @staticmethod
    def _machine() -> tuple[float, float]:
        t = psutil.cpu_times()
        busy = t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
        return busy, getattr(t, "steal", 0.0)

    def stop(self) -> dict[str, float]:
        dt = time.monotonic() - self.t0
        busy, steal = self._machine()
        ours = own_cpu_seconds() - self.ours0
        busy -= self.busy0
        return {"window_s": dt, "cores": float(psutil.cpu_count() or 1),
                "busy_cores": busy / dt, "ours_cores": ours / dt,
                "others_cores": max(0.0, busy - ours) / dt,
                "steal_cores": (steal - self.steal0) / dt,
                "load_average_1min": os.getloadavg()[0]}


def print_machine(cpu: dict[str, float]) -> None:
    print(f"   machine while this part ran ({cpu['window_s']:.0f} s): "
          f"{cpu['busy_cores']:.2f} of {cpu['cores']:.0f} cores busy: this benchmark "
          f"{cpu['ours_cores']:.2f}, other processes {cpu['others_cores']:.2f}"
          f" (hypervisor steal {cpu['steal_cores']:.2f}); load average "
          f"{cpu['load_average_1min']:.1f}")


#: The queue position a page displays: what a queued student sees is itself measured.
_QUEUED = re.compile(r"Queued: position (\d+)")


@dataclasses.dataclass
class SessionResult:
    name: str
    done_at: float | None = None
    running_at: float | None = None
    max_queue_position: int = 0
    positions_shown: int = 0  # distinct queue positions the page displayed
    problems: list[str] = dataclasses.field(default_factory=list)


def summarize_session(s: Any, pressed: float) -> SessionResult:
    res = SessionResult(s.name)
    positions: set[int] = set()
    for item in s.shown:
        if item.t < pressed:
            continue
        if item.kind in ("error", "exception") or (item.kind == "warning"
                                                   and "Paused" not in item.text):
            res.problems.append(f"{item.kind}: {item.text[:200]}")
        if item.kind == "info" and (m := _QUEUED.search(item.text)):
            res.max_queue_position = max(res.max_queue_position, int(m.group(1)))
            positions.add(int(m.group(1)))
        if item.kind == "info" and item.text.startswith("Training") and res.running_at is None:
            res.running_at = item.t
        if item.kind == "success" and DONE_TEXT in item.text and res.done_at is None:
            res.done_at = item.t
        elif item.kind in ("info", "error") and any(
                w in item.text for w in ("stopped", "Stopped", "Cancelled", "failed")):
            res.problems.append(f"{item.kind}: {item.text[:200]}")
    if res.done_at is not None and res.running_at is None:
        res.running_at = res.done_at  # too quick for a "Training..." redraw
    res.positions_shown = len(positions)
    return res


async def drive_sessions(sessions: Sequence[Any], timeout: float, idle_seconds: float,
                         server_pid: int) -> dict[str, Any]:
    """Open the sessions, load the page, press Train in all at once, wait for the results.

    Also counts the CPU seconds of the server, its workers and this process
    from the press to the last result.
    """
    from st_client import SessionError

    out: dict[str, Any] = {}
    t0 = time.monotonic()
    await asyncio.gather(*(s.open() for s in sessions))
    load_t = time.monotonic()
    await asyncio.gather(*(s.load(timeout=120) for s in sessions))
    out["connect_s"] = load_t - t0
    out["first_page_run_s"] = time.monotonic() - load_t
    missing = [s.name for s in sessions if "train" not in s.widget_ids]
    if missing:
        raise RuntimeError(f"no Train button found in {missing}")
    await asyncio.sleep(idle_seconds)  # idle baseline for the health probe

    def finished(s: Any) -> Callable[[], bool]:
        """True once the page shows the result or an error (scans new items only)."""
        seen, done = 0, False

        def check() -> bool:
            nonlocal seen, done
            for item in s.shown[seen:]:
                if item.t >= out["pressed"] and (
                        item.kind in ("error", "exception")
                        or (item.kind == "success" and DONE_TEXT in item.text)):
                    done = True
            seen = len(s.shown)
            return done

        return check

    me = psutil.Process()
    server0, kids0 = group_cpu_seconds(server_pid)
    client0 = cpu_seconds(me)
    machine = MachineCpu()
    out["pressed"] = time.monotonic()
    await asyncio.gather(*(s.click("train") for s in sessions))
    out["press_sent_s"] = time.monotonic() - out["pressed"]

    async def wait(s: Any) -> None:
        with contextlib.suppress(SessionError):
            await s.wait_until(finished(s), timeout, "the finished run")

    await asyncio.gather(*(wait(s) for s in sessions))
    out["all_done"] = time.monotonic()
    server1, kids1 = group_cpu_seconds(server_pid)
    out["cpu"] = {"window_s": out["all_done"] - out["pressed"], "server_s": server1 - server0,
                  "workers_s": kids1 - kids0, "client_s": cpu_seconds(me) - client0}
    out["machine"] = machine.stop()
    out["idle_seconds"] = idle_seconds
    return out


def log_problems(lines: Sequence[str], limit: int = 10) -> list[str]:
    """Error lines of the server log; a traceback as one entry (its last lines)."""
    problems: list[str] = []
    i = 0
    while i < len(lines) and len(problems) < limit:
        line = lines[i]
        if line.startswith("Traceback"):
            j = i + 1
            while j < len(lines) and (lines[j].startswith((" ", "\t")) or not lines[j]):
                j += 1
            tail = lines[max(i, j - 2):j + 1]
            problems.append("Traceback ... " + " | ".join(x.strip() for x in tail))
            i = j + 1
            continue
        if re.search(r"\b(ERROR|CRITICAL)\b|Exception|Error:", line):
            problems.append(line)
        i += 1
    return problems


def leftover_processes(server_pid: int, seen: dict[int, tuple[float, str]]
                       ) -> tuple[list[str], list[str]]:
    """Processes of the stopped server still alive, and other playground workers (not ours)."""
    ours, foreign = [], []
    for p in psutil.process_iter(["pid", "ppid", "cmdline", "create_time"]):
        try:
            info = p.info
            cmd = " ".join(info["cmdline"] or [])
            pgid = os.getpgid(info["pid"])
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
        mine = (info["pid"] == server_pid or info["ppid"] == server_pid or pgid == server_pid
                or (info["pid"] in seen and abs(seen[info["pid"]][0] - info["create_time"]) < 1))
        if mine:
            ours.append(f"pid {info['pid']}: {cmd[:120]}")
        elif "playground.worker" in cmd:
            foreign.append(f"pid {info['pid']} (ppid {info['ppid']}): {cmd[:80]}")
    return ours, foreign


class ServerLog:
    """The server's output from now on: ``tests/servers.py`` appends it to ``log_path(port)``.

    The file is read from its current end when :meth:`lines` is called.
    """

    def __init__(self, port: int) -> None:
        from tests.servers import log_path

        path = log_path(port)
        self.where = str(path)
        self._path: Path | None = path
        self._offset = path.stat().st_size
        self._lines: list[str] = []

    def lines(self) -> list[str]:
        if self._path is not None:
            with contextlib.suppress(OSError), open(self._path, "rb") as f:
                f.seek(self._offset)
                text = f.read().decode(errors="replace")
                self._lines.extend(text.splitlines())
                self._path = None
        return self._lines


def group_members(pgid: int) -> dict[int, str]:
    """Processes in process group ``pgid``: pid -> command line."""
    out: dict[int, str] = {}
    for p in psutil.process_iter(["pid", "cmdline"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
            if os.getpgid(p.pid) == pgid:
                out[p.pid] = " ".join(p.info["cmdline"] or [])
    return out


def stop_and_watch(proc: subprocess.Popen, known: set[int]) -> dict[str, Any]:
    """``tests.servers.stop`` (SIGTERM to the group), watching the group until it returns.

    Records processes of the server's group that appear after the signal
    (e.g. workers started during shutdown).
    """
    from tests.servers import stop

    spawned: dict[int, tuple[float, str]] = {}
    t0 = time.monotonic()
    thread = threading.Thread(target=stop, args=(proc,), name="stop-server")
    thread.start()
    while thread.is_alive():
        for pid, cmd in group_members(proc.pid).items():
            if pid not in known and pid not in spawned:
                spawned[pid] = (time.monotonic() - t0, cmd)
        time.sleep(0.02)
    thread.join()
    return {"stop_s": time.monotonic() - t0, "exit_code": proc.returncode,
            "spawned_during_shutdown": [f"pid {pid} at +{t:.2f} s: {cmd[-60:]}"
                                        for pid, (t, cmd) in sorted(spawned.items())]}


async def run_load(proc: subprocess.Popen, sessions: Sequence[Any], timeout: float,
                   sampler: ProcessSampler, probe: HealthProbe
                   ) -> tuple[dict[str, Any], list[tuple[float, float | None, str]],
                              dict[str, Any]]:
    """Drive the sessions, then stop the server while they are still connected.

    The sessions stay serviced by this event loop during the shutdown (they
    answer the server's close frames, as browsers do).
    """
    try:
        driven = await drive_sessions(sessions, timeout, 2.0, proc.pid)
    finally:
        samples = await asyncio.to_thread(probe.stop)
        sampler.halt.set()
        await asyncio.to_thread(sampler.join)
        known = set(sampler.seen) | set(group_members(proc.pid))
        # SIGTERM with the sessions still connected, as when a teacher restarts the server
        shutdown = await asyncio.to_thread(stop_and_watch, proc, known)
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
    return driven, samples, shutdown


@dataclasses.dataclass(frozen=True)
class StoredRun:
    """One session's run as the server stored it: the numbers the load test reports."""

    status: str
    epochs_done: int
    has_model: bool
    queue_wait_s: float | None  # created -> a worker started it
    train_seconds: float | None
    test_accuracy: float | None


def stored_runs(store_dir: str, tokens: Sequence[str]) -> list[StoredRun | None]:
    """The run each session (by its workspace cookie) has in the server's SQLite store."""
    from playground.store import RunStore, database_url, runs, token_hash, workspaces

    store = RunStore(database_url(store_dir), migrate=False)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(workspaces.c.token_hash, runs.c.status, runs.c.epochs_done,
                          runs.c.model.is_not(None).label("has_model"), runs.c.created_at,
                          runs.c.started_at, runs.c.train_seconds, runs.c.test_accuracy)
                .join(runs, runs.c.workspace_id == workspaces.c.id)).all()
    finally:
        store.close()
    by_hash = {r.token_hash: StoredRun(
        r.status, r.epochs_done, bool(r.has_model),
        None if r.started_at is None else r.started_at - r.created_at,
        r.train_seconds, r.test_accuracy) for r in rows}
    if len(by_hash) != len(rows):
        raise RuntimeError("a session stored more than one run")
    return [by_hash.get(token_hash(t)) for t in tokens]


def bench_load(n_sessions: int, timeout: float, isolated_train_s: float | None
               ) -> dict[str, Any]:
    from st_client import BrowserSession

    from playground.settings import load_settings
    from playground.workspace import COOKIE
    from tests.servers import start_app

    max_jobs = load_settings().max_jobs
    store_dir = tempfile.mkdtemp(prefix="nnpg-load-store-")
    t_start = time.monotonic()
    proc, url = start_app(env={"NNPG_DATA_DIR": store_dir})
    server_start_s = time.monotonic() - t_start
    log = ServerLog(urlsplit(url).port)
    sampler = ProcessSampler(proc.pid)
    sampler.start()
    probe = HealthProbe(url)
    time.sleep(1.0)  # the probe process is up
    # a workspace per session, as each browser of a class has, so runs map to sessions
    tokens = [secrets.token_urlsafe(32) for _ in range(n_sessions)]
    sessions = [BrowserSession(url, QUERY, f"session-{i + 1:02d}",
                               cookies={COOKIE: token}) for i, token in enumerate(tokens)]
    out: dict[str, Any] = {"sessions": n_sessions, "max_jobs": max_jobs, "url": url,
                           "server_start_s": server_start_s,
                           "poll_seconds": app_ui().POLL_SECONDS}
    driven, samples, shutdown = asyncio.run(run_load(proc, sessions, timeout, sampler, probe))
    out.update(shutdown)
    time.sleep(0.5)
    log_lines = log.lines()
    ours, foreign = leftover_processes(proc.pid, sampler.seen)
    out["leftover_processes"] = ours
    out["other_playground_workers_on_machine"] = foreign

    pressed, all_done = driven["pressed"], driven["all_done"]
    results = [summarize_session(s, pressed) for s in sessions]
    done = [r for r in results if r.done_at is not None and not r.problems]
    out["completed"] = len(done)
    out["connect_s"] = driven["connect_s"]
    out["first_page_run_s"] = driven["first_page_run_s"]
    out["press_sent_s"] = driven["press_sent_s"]
    finishes = [r.done_at - pressed for r in results if r.done_at is not None]
    out["makespan_s"] = max(finishes) if finishes else math.nan
    out["all_done_s"] = all_done - pressed
    stored = stored_runs(store_dir, tokens)
    waits = [r.queue_wait_s for r in stored if r is not None and r.queue_wait_s is not None]
    trains = [r.train_seconds for r in stored
              if r is not None and r.status == "done" and r.train_seconds is not None]
    out["queue_wait_s"] = {"median": median(waits), "max": max(waits) if waits else math.nan}
    out["max_queue_position"] = max((r.max_queue_position for r in results), default=0)
    out["queued_sessions"] = sum(r.max_queue_position > 0 for r in results)
    queued = [r for r in results if r.max_queue_position > 1]
    out["queue_positions_shown_fraction"] = median(
        [r.positions_shown / r.max_queue_position for r in queued])
    out["train_s_under_load"] = {"median": median(trains), "min": min(trains, default=math.nan),
                                 "max": max(trains, default=math.nan), "sum": sum(trains)}
    out["ideal_makespan_s"] = (sum(trains) / max_jobs) if trains else math.nan
    if isolated_train_s is not None:
        out["isolated_train_s"] = isolated_train_s
    accs = [r.test_accuracy for r in stored if r is not None and r.test_accuracy is not None]
    out["accuracy"] = {"min": min(accs, default=math.nan), "max": max(accs, default=math.nan)}
    out["problems"] = {r.name: r.problems for r in results if r.problems}
    out["not_completed"] = [r.name for r in results if r.done_at is None]
    out["closed_early"] = {s.name: s.closed_reason for s in sessions
                           if s.closed_reason and s.closed_reason != "closed by the client"
                           and "1001" not in s.closed_reason and "1012" not in s.closed_reason}

    def window(t0: float, t1: float) -> dict[str, Any]:
        lat = [s[1] for s in samples if t0 <= s[0] <= t1 and s[1] is not None]
        errors = [s[2] for s in samples if t0 <= s[0] <= t1 and s[2]]
        return {"n": len(lat), "p50_s": percentile(lat, 50), "p95_s": percentile(lat, 95),
                "max_s": max(lat, default=math.nan), "errors": len(errors),
                "error_examples": errors[:3]}

    kept = [r for r in stored if r is not None]
    out["stored"] = {"runs": len(kept), "done": sum(r.status == "done" for r in kept),
                     "with_model": sum(r.has_model for r in kept),
                     "all_epochs": sum(r.epochs_done == EPOCHS for r in kept)}
    out["health_idle"] = window(pressed - driven["idle_seconds"], pressed)
    out["health_load"] = window(pressed, all_done)
    out["health_target_met"] = (out["health_load"]["p95_s"] < HEALTH_P95_TARGET
                                and out["health_load"]["errors"] == 0)
    out["peak_rss_bytes"] = sampler.peak_rss
    out["peak_rss_server_bytes"] = sampler.peak_rss_server
    out["peak_pss_bytes"] = sampler.peak_pss
    out["peak_rss_at_s"] = sampler.peak_rss_at - pressed
    out["worker_processes_max"] = sampler.workers_max
    busy = [s[3] for s in sampler.samples if pressed <= s[0] <= all_done]
    out["busy_workers"] = {"max": max(busy, default=0),
                           "mean": float(np.mean(busy)) if busy else math.nan}
    out["descendants_seen"] = len(sampler.seen) - 1
    out["cpu_load_window"] = driven["cpu"]
    out["machine"] = driven["machine"]
    stats = [s.stats for s in sessions]
    out["client"] = {
        "back_msgs": sum(x.back_msgs for x in stats),
        "auto_reruns_sent": sum(x.auto_reruns_sent for x in stats),
        "forward_msgs": sum(x.messages for x in stats),
        "bytes": sum(x.bytes for x in stats),
        "fragment_runs_finished": sum(x.fragment_runs_finished for x in stats),
        "full_runs_finished": sum(x.full_runs_finished for x in stats),
        "runs_finished_early": sum(x.runs_finished_early for x in stats),
        "ref_hash_hits": sum(x.ref_hash_hits for x in stats),
        "cache_misses": sum(x.cache_misses for x in stats)}
    out["refresh_hz"] = out["client"]["fragment_runs_finished"] / (
        n_sessions * max(all_done - pressed, 1e-9))
    runs = sum(out["client"][k] for k in ("fragment_runs_finished", "full_runs_finished",
                                          "runs_finished_early"))
    out["server_cpu_per_run_s"] = out["cpu_load_window"]["server_s"] / max(runs, 1)
    out["server_log"] = log.where
    out["server_log_lines"] = len(log_lines)
    out["server_log_stale_fragment_lines"] = sum("does not exist anymore" in x for x in log_lines)
    out["server_log_problems"] = log_problems(log_lines)
    # times relative to the press ("pressed": 0.0 kept after "name", as in earlier outputs)
    out["per_session"] = [{"name": r.name, "pressed": 0.0} | dataclasses.asdict(r) | {
                          "done_at": None if r.done_at is None else r.done_at - pressed,
                          "running_at": None if r.running_at is None else r.running_at - pressed,
                          "stored": None if run is None else dataclasses.asdict(run)}
                          for r, run in zip(results, stored)]
    out["completion_ok"] = out["completed"] == n_sessions
    out["no_leftovers"] = not ours
    return out


def print_load(res: dict[str, Any]) -> None:
    n = res["sessions"]
    print(f"\n3. Classroom load: {n} Streamlit sessions (WebSocket protocol client) on "
          f"/?{QUERY} press Train at once")
    print(f"   server: streamlit run app.py, NNPG_MAX_JOBS default = {res['max_jobs']} workers "
          f"(worker processes seen: {res['worker_processes_max']}); up in "
          f"{res['server_start_s']:.1f} s; {n} sessions connected in {res['connect_s']:.2f} s, "
          f"first page runs done in {res['first_page_run_s']:.1f} s")
    print(f"   completed: {res['completed']}/{n} sessions rendered \"{DONE_TEXT}\" "
          f"(test accuracy {res['accuracy']['min']:.1%}..{res['accuracy']['max']:.1%})  "
          f"({met(res['completion_ok'])})")
    if res["not_completed"]:
        print(f"   NOT completed: {', '.join(res['not_completed'])}")
    st_ = res["stored"]
    print(f"   run store (SQLite): {st_['runs']} runs stored, {st_['done']} done, "
          f"{st_['all_epochs']} with all {EPOCHS} epoch records, {st_['with_model']} with their "
          f"model ({met(st_['done'] >= res['completed'] == n)})")
    for name, problems in res["problems"].items():
        print(f"   problem in {name}: {'; '.join(problems)[:300]}")
    for name, reason in res["closed_early"].items():
        print(f"   {name} connection: {reason}")
    tr = res["train_s_under_load"]
    iso = res.get("isolated_train_s")
    alone = (f"; with part 1's unloaded {iso:.2f} s per run: {n * iso / res['max_jobs']:.1f} s"
             if iso else "")
    print(f"   wall time from pressing Train to the last result: {res['makespan_s']:.1f} s  "
          f"(sum of the runs' training times / {res['max_jobs']} workers = "
          f"{res['ideal_makespan_s']:.1f} s{alone})")
    print(f"   queueing: {res['queued_sessions']} sessions saw 'Queued' (deepest position "
          f"{res['max_queue_position']}); from Train to a worker starting the run (the "
          f"store's times): median "
          f"{res['queue_wait_s']['median']:.1f} s, max {res['queue_wait_s']['max']:.1f} s; "
          f"a queued page displayed a median {res['queue_positions_shown_fraction']:.0%} of "
          "the positions it passed through")
    print(f"   training time per job under load (the store's train_seconds): median "
          f"{tr['median']:.2f} s, range {tr['min']:.2f}..{tr['max']:.2f} s"
          + (f" (alone, part 1: {iso:.2f} s)" if iso else ""))
    print(f"   workers training at once (their CPU sampled every {ms(MEMORY_INTERVAL)}): max "
          f"{res['busy_workers']['max']}, mean {res['busy_workers']['mean']:.2f}")
    h, hi = res["health_load"], res["health_idle"]
    print(f"   GET /_stcore/health every {ms(HEALTH_INTERVAL)} (or after the previous answer) "
          f"during the load: n={h['n']}, "
          f"p50 {ms(h['p50_s'])}, p95 {ms(h['p95_s'])}, max {ms(h['max_s'])}, errors "
          f"{h['errors']}  (target p95 < {ms(HEALTH_P95_TARGET)}: "
          f"{met(res['health_target_met'])}); idle before: p50 {ms(hi['p50_s'])}, "
          f"p95 {ms(hi['p95_s'])}")
    print(f"   peak memory, server + workers: RSS {mb(res['peak_rss_bytes'])} (server alone "
          f"{mb(res['peak_rss_server_bytes'])}); PSS {mb(res['peak_pss_bytes'])} (shared "
          "library pages counted once)")
    c = res["cpu_load_window"]
    print(f"   CPU seconds while the sessions ran ({c['window_s']:.1f} s): server "
          f"{c['server_s']:.1f}, workers {c['workers_s']:.1f}, this load client "
          f"{c['client_s']:.1f} ({c['client_s'] / c['window_s']:.0%} of one core)")
    print_machine(res["machine"])
    cl = res["client"]
    print(f"   traffic: {cl['back_msgs']:,} BackMsgs ({cl['auto_reruns_sent']:,} fragment "
          f"auto-reruns), {cl['forward_msgs']:,} ForwardMsgs ({mb(cl['bytes'])})")
    print(f"   script runs: {cl['fragment_runs_finished']:,} fragment runs completed, "
          f"{cl['full_runs_finished']:,} full runs, {cl['runs_finished_early']:,} runs cut "
          f"short (FINISHED_EARLY_FOR_RERUN); pages refreshed {res['refresh_hz']:.2f} times/s "
          f"each on average (the progress fragment asks for {1 / res['poll_seconds']:.0f}/s); "
          f"server CPU per script run: {ms(res['server_cpu_per_run_s'])}")
    print(f"   server log ({res['server_log']}): {res['server_log_lines']} lines ("
          f"{res['server_log_stale_fragment_lines']} 'fragment ... does not exist anymore', "
          f"auto-reruns that arrived after a full rerun), "
          f"{len(res['server_log_problems'])} errors/tracebacks")
    for line in res["server_log_problems"][:5]:
        print(f"     | {line[:160]}")
    killed = " (SIGKILL after the 10 s grace period)" if res["exit_code"] == -9 else ""
    print(f"   shutdown: SIGTERM to the process group -> exit code {res['exit_code']}{killed} "
          f"after {res['stop_s']:.2f} s; processes left: {len(res['leftover_processes'])}  "
          f"({met(res['no_leftovers'])})")
    for line in res["leftover_processes"]:
        print(f"     left: {line}")
    if res["spawned_during_shutdown"]:
        print(f"   started AFTER the SIGTERM (the runner replaced workers killed by the group "
              f"signal): {'; '.join(res['spawned_during_shutdown'])}")
    if res["other_playground_workers_on_machine"]:
        print(f"   (not ours: {len(res['other_playground_workers_on_machine'])} other "
              "playground.worker processes on this machine, e.g. other test runs)")
    print(f"   operators: one {res['max_jobs']}-CPU server trains {res['busy_workers']['max']} "
          f"runs at a time and queues the rest; {res['completed']} of {n} simultaneous Digits "
          f"runs finished within {res['makespan_s']:.0f} s of pressing Train, with "
          f"/_stcore/health at p95 {ms(h['p95_s'])}.")


def print_sweep(loads: Sequence[dict[str, Any]]) -> None:
    print("\n   sessions  completed  last result s  health p50  health p95  health max  "
          "refreshes/s  peak RSS  other procs (cores)")
    for r in loads:
        h = r["health_load"]
        print(f"   {r['sessions']:8d}  {r['completed']:9d}  {r['makespan_s']:12.1f}  "
              f"{ms(h['p50_s']):>10s}  {ms(h['p95_s']):>10s}  {ms(h['max_s']):>10s}  "
              f"{r['refresh_hz']:11.2f}  {mb(r['peak_rss_bytes']):>8s}  "
              f"{r['machine']['others_cores']:19.2f}")
    fine = [r["sessions"] for r in loads if r["health_target_met"] and r["completion_ok"]]
    print(f"   largest class with health p95 < {ms(HEALTH_P95_TARGET)}: "
          f"{max(fine) if fine else 'none of those measured'} simultaneous sessions "
          f"({loads[0]['max_jobs']} training at a time, the rest queued)")


def session_counts(text: str) -> list[int]:
    counts = [int(x) for x in text.split(",") if x.strip()]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("expected positive integers, e.g. 30 or 5,10,30")
    return counts


# ---- main -------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--throughput", action="store_true", help="part 1: runner vs direct fit")
    p.add_argument("--latency", action="store_true", help="part 2: submit -> first record")
    p.add_argument("--load", action="store_true", help="part 3: classroom load on the app")
    p.add_argument("--repeats", type=int, default=15, help="part 1 repetitions (default 15)")
    p.add_argument("--submits", type=int, default=20, help="part 2 submits (default 20)")
    p.add_argument("--sessions", default="30", type=session_counts,
                   help="part 3 sessions (default 30); a list such as 5,10,20,30 runs the "
                        "load once per count, each on a fresh server, and adds a summary")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="part 3: seconds to wait for every session's result (default 600)")
    p.add_argument("--json", metavar="PATH", help="also write all results to PATH")
    p.add_argument("--health-probe", nargs=2, metavar=("URL", "INTERVAL"),
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.health_probe:
        health_probe_main(args.health_probe[0], float(args.health_probe[1]))
        return 0
    if not (args.throughput or args.latency or args.load):
        args.throughput = args.latency = args.load = True

    info = machine_info()
    print("Job-runner benchmark (issue 3)")
    print(f"machine: {info['cpu']}; {info['cores_usable']} usable cores "
          f"(os.cpu_count {info['os_cpu_count']}); load average {info['load_average_1min']:.2f} "
          "at start")
    print(f"software: Python {info['python']}, NumPy {info['numpy']} ({info['blas']}), "
          f"Streamlit {info['streamlit']}; {info['platform']}")
    results: dict[str, Any] = {"machine": info}
    isolated_train_s = None
    ok = True
    if args.throughput or args.latency:
        from playground.jobs import JobRunner

        data = digits_split(np.intp)
        runner = JobRunner(max_jobs=1)
        try:
            if not runner.wait_ready():
                raise RuntimeError("the runner's worker did not start")
            if args.throughput:
                res = bench_throughput(runner, data, args.repeats)
                print_throughput(res)
                results["throughput"] = res
                isolated_train_s = res["arms"]["runner_val"]["records_s"]
                ok &= res["target_met"]
            if args.latency:
                res = bench_latency(runner, app_specs(data, 0)["runner_val"], args.submits)
                print_latency(res)
                results["latency"] = res
                ok &= res["target_met"]
        finally:
            runner.shutdown()
    if args.load:
        loads = []
        for n in args.sessions:
            res = bench_load(n, args.timeout, isolated_train_s)
            print_load(res)
            loads.append(res)
            ok &= res["completion_ok"] and res["health_target_met"] and res["no_leftovers"]
        if len(loads) > 1:
            print_sweep(loads)
        results["load"] = loads[0] if len(loads) == 1 else loads
    print(f"\nall targets met: {'yes' if ok else 'NO'}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1, default=str)
        print(f"results written to {args.json}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
