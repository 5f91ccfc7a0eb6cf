"""What the run store costs, and how fast a reload brings a live run back.

Part 1 (``--overhead``): the time the store adds to a 500-epoch Digits job. The
same job (the app's default sidebar, the seed Digits split) runs in a
``JobRunner`` without a store and in one that writes to a SQLite store (records
in batches, checkpoints every 5 s, the outcome), interleaved pair by pair; both
runners are warm and one training job runs at a time. Reports submit ->
finished wall time per arm, medians and the paired ratio (target <= 1.05).

Part 2 (``--reload``): a real app server and headless Chromium. A long Digits run
trains; the page is reloaded; the time from ``page.reload()`` until the loss
chart shows the run again and its epoch counter moves on (target <= 2 s), and
until the evaluation panel (drawn after the curves) is back. Fresh browser
context per repeat; medians.

BLAS is pinned to one thread. Usage::

    python bench/store_bench.py                  # both parts
    python bench/store_bench.py --overhead --repeats 9
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import cpu_model, digits_split, median  # noqa: E402


def _spec(data):
    import dataclasses

    from playground.config import RunConfig
    from playground.datasets import load_builtin
    from playground.runs import build_spec

    cfg = RunConfig(epochs=500, val_size=0, seed=0)
    spec, _, _ = build_spec(cfg, load_builtin("Digits", seed=0))
    return cfg, dataclasses.replace(spec, X_train=data.X_train, y_train=data.y_train,
                                    X_val=None, y_val=None, X_test=data.X_test,
                                    y_test=data.y_test, classes=tuple(range(10)), grid=None)


def _wait(runner, job_id: str, timeout: float = 300.0):
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        snap = runner.snapshot(job_id)
        if snap is not None and snap.finished:
            return snap
        time.sleep(0.02)
    raise TimeoutError(job_id)


def bench_overhead(repeats: int) -> dict:
    import numpy as np

    from playground.jobs import JobRunner
    from playground.settings import load_settings
    from playground.store import DatasetIdentity, RunStore, database_url

    data = digits_split(np.intp)
    cfg, spec = _spec(data)
    tmp = tempfile.mkdtemp(prefix="nnpg-store-bench-")
    url = database_url(tmp)
    store = RunStore(url)
    workspace = store.workspace_for_token("bench")
    settings = load_settings()
    plain = JobRunner(settings, max_jobs=1)
    stored = JobRunner(settings, max_jobs=1, store_url=url)
    plain.wait_ready(60)
    stored.wait_ready(60)
    times: dict[str, list[float]] = {"no store": [], "SQLite store": []}
    try:
        for i in range(repeats + 1):  # the first pair warms both runners up
            for arm in (("no store", "SQLite store") if i % 2 else
                        ("SQLite store", "no store")):
                run_id = None
                if arm == "SQLite store":
                    run = store.create_run(workspace, config=cfg.to_dict(),
                                           dataset=DatasetIdentity("builtin", "Digits", {}),
                                           classes=range(10), n_params=spec.n_params,
                                           batch_size=32, epochs_planned=500,
                                           server_id=stored.server_id)
                    run_id = run.id
                runner = stored if arm == "SQLite store" else plain
                t0 = time.perf_counter()
                job = runner.submit(spec, run_id)
                snap = _wait(runner, job)
                wall = time.perf_counter() - t0
                assert snap.status == "done" and snap.epoch == 500, snap.message
                if i:
                    times[arm].append(wall)
        stored._writer.flush(30)
        runs, total = store.list_runs(workspace, 0, 200)
        complete = sum(r.status == "done" and r.epochs_done == 500 and r.has_model
                       for r in runs)
        records = sum(len(store.records(r.id)) for r in runs)
    finally:
        plain.shutdown()
        stored.shutdown()
    ratios = [s / p for s, p in zip(times["SQLite store"], times["no store"])]
    return {"times": times, "ratios": ratios, "stored_runs": total, "complete": complete,
            "records": records}


def bench_reload(repeats: int) -> dict:
    from playwright.sync_api import sync_playwright

    from tests.servers import CHROMIUM, CHROMIUM_ARGS, IDLE, LOSS_POINTS_JS, start_app, stop
    from tests.test_runs_browser import LONG_RUN, epoch_shown

    tmp = tempfile.mkdtemp(prefix="nnpg-reload-bench-")
    proc, url = start_app(env={"NNPG_DATA_DIR": tmp})
    seconds, evaluation = [], []
    query = "&".join(f"{k}={v}" for k, v in LONG_RUN.items())
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for _ in range(repeats):
                ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = ctx.new_page()
                page.goto(f"{url}/?{query}")
                page.wait_for_selector(IDLE)
                page.get_by_role("button", name="Train", exact=True).click()
                deadline = time.monotonic() + 30
                while epoch_shown(page) < 5 and time.monotonic() < deadline:
                    page.wait_for_timeout(50)
                before = epoch_shown(page)
                t0 = time.perf_counter()
                page.reload()
                while True:
                    if page.evaluate(LOSS_POINTS_JS) > 1 and epoch_shown(page) > before:
                        break
                    if time.perf_counter() - t0 > 30:
                        raise TimeoutError("the live run did not come back")
                    page.wait_for_timeout(20)
                seconds.append(time.perf_counter() - t0)
                # the evaluation panel is drawn after the curves: when is it back?
                page.wait_for_selector(".st-key-confusion_matrix .js-plotly-plot",
                                       timeout=30_000)
                evaluation.append(time.perf_counter() - t0)
                page.get_by_role("button", name="Stop", exact=True).click()
                ctx.close()
            browser.close()
    finally:
        stop(proc)
    return {"seconds": seconds, "evaluation_seconds": evaluation}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--overhead", action="store_true")
    ap.add_argument("--reload", action="store_true")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    both = not (args.overhead or args.reload)
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    if args.overhead or both:
        res = bench_overhead(args.repeats)
        t = res["times"]
        print(f"\n500-epoch Digits job, submit -> finished, {args.repeats} interleaved pairs")
        for arm, values in t.items():
            print(f"  {arm:13s} median {median(values):.3f} s  "
                  f"(min {min(values):.3f}, max {max(values):.3f})")
        r = median(res["ratios"])
        print(f"  store / no store: median paired ratio {r:.3f} "
              f"({(r - 1) * 100:+.1f} %; target <= +5 %)")
        print(f"  stored: {res['stored_runs']} runs, {res['complete']} complete with model, "
              f"{res['records']} epoch records")
    if args.reload or both:
        res = bench_reload(args.repeats)
        s = res["seconds"]
        print(f"\nreload -> live run back on screen, {len(s)} fresh pages: median "
              f"{median(s):.2f} s (min {min(s):.2f}, max {max(s):.2f}; target <= 2 s)")
        e = res["evaluation_seconds"]
        print(f"reload -> evaluation panel (confusion matrix) back: median {median(e):.2f} s "
              f"(min {min(e):.2f}, max {max(e):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
