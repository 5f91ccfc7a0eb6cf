"""The background job runner: lifecycle, control, failures, limits, cleanup."""

from __future__ import annotations

import dataclasses
import io
import os
import signal
import sys
import time

import numpy as np
import psutil
import pytest

from nn_core.io import load_network
from playground.evaluation import Evaluation
from playground.jobs import JobRefusedError, JobRunner
from playground.messages import Finished, JobOptions, Progress, StartJob
from playground.settings import Settings, available_cpus, cgroup_cpu_limit, load_settings
from tests.jobs_util import long_spec, make_spec, wait_for


def settings(**kw) -> Settings:
    base = dict(max_jobs=2, max_queue=100, max_epochs=5000, max_layers=6, max_units=256,
                max_params=5_000_000, max_job_seconds=3600, max_upload_mb=5,
                max_samples=100_000)
    base.update(kw)
    return Settings(**base)


@pytest.fixture(scope="module")
def runner():
    r = JobRunner(settings(max_jobs=2))
    assert r.wait_ready(60)
    yield r
    r.shutdown()


@pytest.fixture
def single():
    r = JobRunner(settings(max_jobs=1))
    assert r.wait_ready(60)
    yield r
    r.shutdown()


def finished(runner, job_id, timeout=60):
    return wait_for(lambda: (s := runner.snapshot(job_id)) and s.finished and s, timeout)


def test_lifecycle_queued_running_done(single):
    a = single.submit(make_spec(epochs=400, n=2000, hidden=(64,)))
    b = single.submit(make_spec(epochs=30, seed=1))
    snap_b = single.snapshot(b)
    assert snap_b.status == "queued" and snap_b.queue_position == 1
    assert "Waiting" in snap_b.message
    wait_for(lambda: single.snapshot(a).status == "running" and single.snapshot(a).records)
    done_a = finished(single, a)
    assert done_a.status == "done" and done_a.epoch == 400 and len(done_a.records) == 400
    assert [r.epoch for r in done_a.records] == list(range(1, 401))  # nothing lost
    done_b = finished(single, b)
    assert done_b.status == "done" and done_b.started >= done_a.finished_at - 0.5
    # the evaluation and the saved model agree
    ev = done_b.evaluation
    assert ev.epoch == 30 and len(ev.y_pred) == 60
    assert not ev.y_pred.flags.writeable  # snapshots are immutable
    net, classes, _ = load_network(io.BytesIO(done_b.model))
    assert list(classes) == ["c0", "c1", "c2"]
    spec = make_spec(epochs=30, seed=1)
    np.testing.assert_array_equal(net.forward_logits(spec.X_test).argmax(1), ev.y_pred)
    summary = ev.summary
    assert summary["accuracy"] == pytest.approx(np.mean(ev.y_pred == spec.y_test))
    assert done_b.records[-1].val_loss is not None


def test_snapshot_is_immutable_value(runner):
    job = runner.submit(make_spec(epochs=5))
    snap = finished(runner, job)
    with pytest.raises(Exception):  # noqa: B017 - frozen dataclass
        snap.status = "running"
    assert isinstance(snap.records, tuple)
    # the evaluation crossed the worker's pipe as a frozen value with read-only arrays
    assert isinstance(snap.evaluation, Evaluation)
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.evaluation.epoch = 0
    with pytest.raises(ValueError):
        snap.evaluation.confidence[0] = 1.0


def test_pause_and_resume(runner):
    job = runner.submit(long_spec())
    wait_for(lambda: len(runner.snapshot(job).records) >= 2)
    t0 = time.monotonic()
    assert runner.pause(job)
    wait_for(lambda: runner.snapshot(job).status == "paused", timeout=5)
    assert time.monotonic() - t0 < 2.0
    count = len(runner.snapshot(job).records)
    time.sleep(0.6)
    assert len(runner.snapshot(job).records) == count  # really paused
    assert runner.resume(job)
    wait_for(lambda: runner.snapshot(job).status == "running"
             and len(runner.snapshot(job).records) > count, timeout=10)
    runner.stop(job)
    assert finished(runner, job).status == "stopped"


def test_stop_within_one_second(runner):
    job = runner.submit(long_spec())
    wait_for(lambda: len(runner.snapshot(job).records) >= 1)
    t0 = time.monotonic()
    assert runner.stop(job)
    snap = finished(runner, job, timeout=5)
    elapsed = time.monotonic() - t0
    assert snap.status == "stopped"
    assert elapsed < 1.0, elapsed
    assert snap.model is not None and snap.evaluation is not None  # still usable


def test_stop_while_paused(runner):
    job = runner.submit(long_spec())
    wait_for(lambda: len(runner.snapshot(job).records) >= 1)
    runner.pause(job)
    wait_for(lambda: runner.snapshot(job).status == "paused", timeout=5)
    runner.stop(job)
    assert finished(runner, job, timeout=5).status == "stopped"


def test_cancel_queued_job(single):
    running = single.submit(long_spec())
    queued = single.submit(make_spec())
    assert single.snapshot(queued).status == "queued"
    assert single.stop(queued)
    snap = single.snapshot(queued)
    assert snap.status == "stopped" and "Cancelled" in snap.message
    single.stop(running)


def test_divergence_reported_with_advice(runner):
    job = runner.submit(make_spec(epochs=50, lr=1e5, scale=100.0, hidden=(64, 64)))
    snap = finished(runner, job)
    assert snap.status == "diverged"
    assert "Lower the learning rate" in snap.message
    assert snap.model is not None
    net, _, _ = load_network(io.BytesIO(snap.model))  # finite weights (load checks)
    assert np.isfinite(net.params).all()


def test_worker_exception_is_failed_with_message(runner):
    spec = make_spec()
    bad = type(spec)(**{**spec.__dict__, "y_train": spec.y_train + 10})
    job = runner.submit(bad)
    snap = finished(runner, job)
    assert snap.status == "failed"
    assert "class indices" in snap.message and "Traceback" not in snap.message
    ok = runner.submit(make_spec(epochs=3))
    assert finished(runner, ok).status == "done"  # the worker keeps serving


def test_worker_crash_marks_failed_and_is_replaced(single):
    job = single.submit(long_spec())
    wait_for(lambda: len(single.snapshot(job).records) >= 1)
    pid = single.job_worker_pid(job)
    os.kill(pid, signal.SIGKILL)
    snap = finished(single, job, timeout=10)
    assert snap.status == "failed"
    assert "stopped unexpectedly" in snap.message and "-9" in snap.message
    wait_for(lambda: single.stats()["workers"] == 1 and pid not in single.worker_pids())
    again = single.submit(make_spec(epochs=3))
    assert finished(single, again).status == "done"
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_fifo_order_and_positions(single):
    blocker = single.submit(long_spec())
    wait_for(lambda: single.snapshot(blocker).status == "running")
    ids = [single.submit(make_spec(epochs=5, seed=i)) for i in range(4)]
    assert [single.snapshot(i).queue_position for i in ids] == [1, 2, 3, 4]
    single.stop(ids[1])  # leaving the queue moves the others up
    assert [single.snapshot(i).queue_position for i in (ids[0], ids[2], ids[3])] == [1, 2, 3]
    single.stop(blocker)
    snaps = [finished(single, i) for i in (ids[0], ids[2], ids[3])]
    starts = [s.started for s in snaps]
    assert starts == sorted(starts)
    assert all(s.status == "done" for s in snaps)


def test_paused_job_frees_its_worker_and_resumes_where_it_paused(single):
    """A paused run holds no worker: another run starts at once; Resume continues."""
    paused = single.submit(long_spec())
    wait_for(lambda: len(single.snapshot(paused).records) >= 2)
    assert single.pause(paused)
    wait_for(lambda: single.snapshot(paused).status == "paused", timeout=5)
    epoch = single.snapshot(paused).epoch
    other = single.submit(make_spec(epochs=5))
    assert single.snapshot(other).status in ("running", "done")  # the worker was free
    assert finished(single, other).status == "done"
    assert single.resume(paused)
    wait_for(lambda: single.snapshot(paused).epoch > epoch, timeout=20)
    epochs = [r.epoch for r in single.snapshot(paused).records]
    assert epochs == list(range(1, len(epochs) + 1))  # no gap, no repeat
    single.stop(paused)
    assert finished(single, paused).status == "stopped"


def test_unwatched_job_is_stopped_watched_one_keeps_going():
    r = JobRunner(settings(max_jobs=2, abandon_seconds=1))
    try:
        assert r.wait_ready(60)
        lonely, watched = r.submit(long_spec()), r.submit(long_spec())
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            r.snapshot(watched)  # a page showing it
            r.snapshot(lonely, watch=False)  # only looking
            time.sleep(0.2)
        snap = finished(r, lonely, timeout=5)
        assert snap.status == "stopped" and "nobody was watching" in snap.message
        assert r.snapshot(watched).status == "running"
        r.stop(watched)
    finally:
        r.shutdown()


def test_refused_before_queued(runner):
    before = runner.stats()["queued"]
    with pytest.raises(JobRefusedError, match="weights, more than the limit"):
        runner.submit(make_spec(n=10, d=20_000, hidden=(256,), epochs=1))
    r = JobRunner.__new__(JobRunner)
    r.settings = settings(max_params=10_000_000, max_units=10_000)
    with pytest.raises(JobRefusedError, match=r"would take about .* minutes"):
        r.check(make_spec(n=20000, d=500, hidden=(2000, 2000), epochs=2000))
    with pytest.raises(JobRefusedError, match="epochs is more than"):
        runner.submit(make_spec(epochs=10_000))
    with pytest.raises(JobRefusedError, match="hidden layers is more"):
        runner.submit(make_spec(hidden=(4,) * 7))
    assert runner.stats()["queued"] == before


def test_queue_limit(single):
    blocker = single.submit(long_spec())
    single.settings = settings(max_jobs=1, max_queue=2)
    try:
        single.submit(make_spec())
        single.submit(make_spec())
        with pytest.raises(JobRefusedError, match="busy"):
            single.submit(make_spec())
    finally:
        single.stop(blocker)


def test_progress_is_throttled():
    """The worker sends at most ~10 progress messages a second, nothing lost."""
    from playground.worker import _Control, _run_job

    spec = make_spec(epochs=300, n=200, hidden=(8,))
    sent = []
    # no validation split: only the throttled progress messages are measured
    order = StartJob("j", dataclasses.replace(spec, X_val=None, y_val=None),
                     JobOptions(progress_interval=0.1, eval_interval=0.5))
    t0 = time.monotonic()
    _run_job(sent.append, order, _Control("j"))
    seconds = time.monotonic() - t0
    progress = [m for m in sent if isinstance(m, Progress)]
    assert len(progress) <= seconds / 0.1 + 2, (len(progress), seconds)
    epochs = [r.epoch for m in progress for r in m.records]
    assert epochs == list(range(1, 301))
    evaluations = [m.evaluation for m in progress if m.evaluation is not None]
    assert 1 <= len(evaluations) <= seconds / 0.5 + 2
    assert isinstance(sent[-1], Finished) and sent[-1].status == "done"


def test_no_processes_left_after_shutdown():
    me = psutil.Process()
    r = JobRunner(settings(max_jobs=2))
    assert r.wait_ready(60)
    pids = r.worker_pids()
    job = r.submit(long_spec())
    wait_for(lambda: r.snapshot(job).records)
    t0 = time.monotonic()
    r.shutdown()
    assert time.monotonic() - t0 < 5
    # a restart interrupts a run (resumable from its checkpoint), it does not end it
    assert r.snapshot(job).status == "interrupted"
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    alive = [c for c in me.children(recursive=True)
             if c.pid in pids and c.status() != psutil.STATUS_ZOMBIE]
    assert alive == []


def test_available_cpus_respects_cgroup(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_limit(tmp_path) == 1.5
    assert available_cpus(tmp_path) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(tmp_path) is None
    assert available_cpus(tmp_path) == len(os.sched_getaffinity(0))
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("300000")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert cgroup_cpu_limit(v1) == 3.0


def test_settings_from_environment(monkeypatch):
    monkeypatch.setenv("NNPG_MAX_JOBS", "3")
    monkeypatch.setenv("NNPG_MAX_EPOCHS", "100")
    s = load_settings()
    assert s.max_jobs == 3 and s.max_epochs == 100
    monkeypatch.setenv("NNPG_MAX_JOBS", "many")
    with pytest.raises(ValueError, match="NNPG_MAX_JOBS must be an integer"):
        load_settings()


def test_worker_stopped_with_sigterm_is_not_respawned_until_needed(single):
    """SIGTERM to the server's process group reaches the workers first: no respawn race."""
    pid = single.worker_pids()[0]
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: pid not in single.worker_pids(), timeout=10)
    time.sleep(0.3)
    assert single.worker_pids() == []  # nothing started behind the shutdown's back
    job = single.submit(make_spec(epochs=3))  # work arrives: a worker is started for it
    assert finished(single, job).status == "done"
    assert len(single.worker_pids()) == 1


def test_per_user_limit_refuses_and_queue_serves_owners_in_turn(single):
    single.settings = dataclasses.replace(single.settings, max_active_per_user=3)
    blocker = single.submit(long_spec(), owners=("ws:a",))
    wait_for(lambda: single.snapshot(blocker).status == "running")
    a2 = single.submit(make_spec(epochs=3), owners=("ws:a",))
    a3 = single.submit(make_spec(epochs=3), owners=("ws:a",))
    b1 = single.submit(make_spec(epochs=3), owners=("ws:b",))
    # b waited least: it is served before a's second queued run
    assert [single.snapshot(j).queue_position for j in (a2, b1, a3)] == [2, 1, 3]
    with pytest.raises(JobRefusedError, match="You already have 3 runs"):
        single.submit(make_spec(epochs=3), owners=("ws:a",))
    assert single.snapshot(blocker).status == "running"  # the refusal touched nothing
    single.submit(make_spec(epochs=3), owners=("ws:c",))  # others are not limited
    single.stop(blocker)
    order = [finished(single, j).started for j in (b1, a2, a3)]
    assert order == sorted(order)


def test_per_address_limit(single):
    single.settings = dataclasses.replace(single.settings, max_active_per_address=1)
    job = single.submit(long_spec(), owners=("ws:a", "ip:10.0.0.1"))
    with pytest.raises(JobRefusedError, match="network address"):
        single.submit(make_spec(), owners=("ws:b", "ip:10.0.0.1"))
    single.stop(job)


def test_worker_that_crashes_at_start_backs_off_and_gives_up(tmp_path, caplog):
    starts = tmp_path / "starts"
    crash = ("import sys; open(sys.argv[1], 'a').write('x'); sys.exit(3)")
    r = JobRunner(settings(max_jobs=1),
                  worker_command=(sys.executable, "-c", crash, str(starts)))
    try:
        t0 = time.monotonic()
        wait_for(lambda: r.broken, timeout=30, interval=0.1)
        elapsed = time.monotonic() - t0
        # 5 starts in total, with waits of 0.5 + 1 + 2 + 4 s between them: no tight loop
        assert starts.read_text() == "x" * 5
        assert elapsed >= 7.0, elapsed
        time.sleep(1.0)
        assert starts.read_text() == "x" * 5  # and nothing after giving up
        with pytest.raises(JobRefusedError, match="crash while starting"):
            r.submit(make_spec())
        assert "not restarting them" in caplog.text
        assert r.worker_pids() == []
    finally:
        r.shutdown()


def test_worker_enforces_the_wall_clock_limit():
    from playground.worker import _Control, _run_job

    spec = long_spec()
    sent = []
    t0 = time.monotonic()
    _run_job(sent.append, StartJob("j", spec, JobOptions(max_seconds=0.5)), _Control("j"))
    assert time.monotonic() - t0 < 5
    assert isinstance(sent[-1], Finished) and sent[-1].status == "stopped"
    assert "time limit" in sent[-1].message
