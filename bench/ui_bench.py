"""The live view in a real browser: blinks, refresh rate, click Train -> first loss point.

Starts the app (``tests/servers.py``), then for each repetition opens a fresh
headless-Chromium page (a new session, empty browser cache), waits until the
app is idle and the network diagram is drawn (plotly.js is loaded: a student
sees the page before pressing Train), installs a probe that runs on every
animation frame (``tests/servers.py`` ``LIVE_CHARTS_PROBE``), clicks Train and
watches until the run has ended and the page has settled.

Prints, per run and as medians over the repetitions:

* blank frames: animation frames after a live chart's first draw on which it
  showed no marks (no line, marker, bar or heatmap image), for the loss,
  accuracy and confusion-matrix charts (target 0);
* chart refreshes per second while training (target >= 3): how often the loss
  curve changed, divided by the time between its first and last change;
* click Train -> first loss point on screen (target <= 1.0 s);
* how long a fresh page took to load plotly.js and draw its first chart.

``--load N`` repeats the measurement while N more Streamlit sessions
(``bench/st_client.py``, as in ``bench/jobs_bench.py --load``) press Train on
``/?epochs=500`` as soon as the browser's run shows its first point (so the
browser's charts refresh while the class presses Train, queues and polls), and
a separate process GETs ``/_stcore/health`` every 50 ms; it adds the health
latency from the sessions' press until all of them finished (target p95 <
250 ms) and whether every session finished.

Run: ``.venv/bin/python bench/ui_bench.py [--repeats 7] [--epochs 2000] [--load 30]``.
Everything (server, training workers, browser, load client) shares this
machine's cores, as in the browser tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tests.servers import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    IDLE,
    LIVE_CHARTS_PROBE,
    start_app,
    stop,
)

#: The live charts whose blinks are counted.
CHARTS = ("loss_chart", "accuracy_chart", "confusion_matrix")
FIRST_POINT_TARGET = 1.0
REFRESH_TARGET = 3.0
HEALTH_P95_TARGET = 0.250
LOAD_EPOCHS = 500


def one_run(browser: Any, url: str, epochs: int, on_training: Any = None) -> dict[str, Any]:
    """One fresh page: load, train ``epochs`` epochs of seed Digits, read the probe."""
    context = browser.new_context(viewport={"width": 1500, "height": 1300})
    page = context.new_page()
    try:
        t0 = time.monotonic()
        page.goto(f"{url}/?epochs={epochs}")
        page.wait_for_selector(IDLE, timeout=60_000)
        page.wait_for_function(
            "() => { const g = document.querySelector('.st-key-network_diagram "
            ".js-plotly-plot'); return g && g.data && g.data.length > 0; }", timeout=60_000)
        first_chart_s = time.monotonic() - t0
        page.wait_for_timeout(500)
        page.evaluate(LIVE_CHARTS_PROBE, list(CHARTS))
        t_click = page.evaluate("performance.now()")
        page.get_by_role("button", name="Train", exact=True).click()
        if on_training is not None:  # once the loss chart shows the run's first point
            page.wait_for_function(
                "() => { const g = document.querySelector('.st-key-loss_chart "
                ".js-plotly-plot'); return g && g.data && g.data[0] && g.data[0].x.length; }",
                timeout=60_000)
            on_training()
        page.get_by_text(f"Trained {epochs} epochs").wait_for(timeout=600_000)
        t_done = page.evaluate("performance.now()")
        page.wait_for_timeout(2000)  # the finished run's full redraw, the last evaluation
        live = page.evaluate("window.__live")
        exceptions = page.get_by_test_id("stException").count()
    finally:
        context.close()
    loss = live["charts"]["loss_chart"]
    changes = [(t, n) for t, n, _ in loss["counts"] if n > 0 and t <= t_done]
    times = [(t - t_click) / 1000 for t, _ in changes]
    span = times[-1] - times[0] if len(times) > 1 else float("nan")
    first = (loss["drawn"] - t_click) / 1000 if loss["drawn"] is not None else float("nan")
    return {
        "first_point_s": first,
        "refreshes_per_s": (len(times) - 1) / span if span > 0 else float("nan"),
        "blank_frames": {k: live["charts"][k]["blank"] for k in CHARTS},
        # when the first blank frames were, and whether the graph was in the page then
        "blank_at_s": {k: [(round((t - t_click) / 1000, 3), graph) for t, graph in
                           live["charts"][k]["blank_at"]] for k in CHARTS},
        "distinct_counts": {k: len({n for _, n, _ in live["charts"][k]["counts"]})
                            for k in CHARTS},
        "confusion_shape": live["charts"]["confusion_matrix"]["shape"],
        "final_points": changes[-1][1] if changes else 0,
        "training_view_s": span, "frames": live["frames"], "first_chart_s": first_chart_s,
        "exceptions": exceptions,
    }


def median(values: list[float]) -> float:
    values = [v for v in values if v == v]  # drop NaN
    return statistics.median(values) if values else float("nan")


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "first_point_s": median([r["first_point_s"] for r in results]),
        "refreshes_per_s": median([r["refreshes_per_s"] for r in results]),
        "blank_frames": {k: median([r["blank_frames"][k] for r in results]) for k in CHARTS},
        "blank_frames_max": {k: max(r["blank_frames"][k] for r in results) for k in CHARTS},
        "first_chart_s": median([r["first_chart_s"] for r in results]),
        "distinct_counts": median([r["distinct_counts"]["loss_chart"] for r in results]),
    }


def print_run(i: int, r: dict[str, Any]) -> None:
    blanks = ", ".join(f"{k} {n}" for k, n in r["blank_frames"].items())
    print(f"run {i + 1}: first point {r['first_point_s']:.2f} s, {r['refreshes_per_s']:.2f} "
          f"refreshes/s over {r['training_view_s']:.1f} s ({r['distinct_counts']['loss_chart']}"
          f" distinct point counts, {r['final_points']} points at the end); blank frames: "
          f"{blanks} (of {r['frames']} frames); confusion matrix {r['confusion_shape']}; "
          f"page ready with plotly.js in {r['first_chart_s']:.1f} s"
          + (f"; {r['exceptions']} TRACEBACKS" if r["exceptions"] else ""))


def print_summary(s: dict[str, Any], n: int, epochs: int, loaded: bool = False) -> None:
    blanks = ", ".join(f"{k} {v:g} (max {s['blank_frames_max'][k]})"
                       for k, v in s["blank_frames"].items())
    # the refresh and latency targets are for a page alone on the server
    rate_target = "" if loaded else f"   (target >= {REFRESH_TARGET:g})"
    first_target = "" if loaded else f"   (target <= {FIRST_POINT_TARGET:g} s)"
    print(f"\nmedian over {n} runs ({epochs} epochs, Digits, default network"
          f"{', during the load' if loaded else ''}):")
    print(f"  blank frames after the first draw: {blanks}   (target 0)")
    print(f"  chart refreshes per second while training: {s['refreshes_per_s']:.2f}"
          f"{rate_target}; distinct loss point counts: {s['distinct_counts']:g}")
    print(f"  click Train -> first loss point on screen: {s['first_point_s']:.2f} s{first_target}")
    print(f"  fresh page -> plotly.js loaded and first chart drawn: {s['first_chart_s']:.1f} s")


# ---- --load: a classroom on the same server ------------------------------------------------
class Classroom(threading.Thread):
    """``n`` protocol sessions that load the page, wait for ``go``, press Train, finish."""

    def __init__(self, url: str, n: int) -> None:
        super().__init__(name="classroom", daemon=True)
        self.url, self.n = url, n
        self.loaded, self.go = threading.Event(), threading.Event()
        self.result: dict[str, Any] = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._drive())
        except BaseException as exc:  # reported by the main thread
            self.error = exc
            self.loaded.set()

    async def _drive(self) -> None:
        from st_client import BrowserSession, SessionError

        done_text = f"Trained {LOAD_EPOCHS} epochs."
        sessions = [BrowserSession(self.url, f"epochs={LOAD_EPOCHS}", f"session-{i + 1:02d}")
                    for i in range(self.n)]
        await asyncio.gather(*(s.open() for s in sessions))
        await asyncio.gather(*(s.load(timeout=120) for s in sessions))
        self.loaded.set()
        await asyncio.to_thread(self.go.wait)
        pressed = time.monotonic()
        await asyncio.gather(*(s.click("train") for s in sessions))

        def finished(s: Any) -> Any:
            return lambda: any(i.t >= pressed and (i.kind in ("error", "exception") or (
                i.kind == "success" and done_text in i.text)) for i in s.shown)

        async def wait(s: Any) -> None:
            with contextlib.suppress(SessionError):
                await s.wait_until(finished(s), 600, "the finished run")

        await asyncio.gather(*(wait(s) for s in sessions))
        self.result = {
            "pressed": pressed, "all_done": time.monotonic(),
            "completed": sum(any(i.kind == "success" and done_text in i.text for i in s.shown)
                             for s in sessions),
            "problems": sum(any(i.kind in ("error", "exception") for i in s.shown if
                                i.t >= pressed) for s in sessions),
            "fragment_runs": sum(s.stats.fragment_runs_finished for s in sessions)}
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) if values else float("nan")


def loaded_run(browser: Any, epochs: int, n_sessions: int) -> dict[str, Any]:
    """One browser run while ``n_sessions`` sessions press Train right after it."""
    from jobs_bench import HealthProbe

    proc, url = start_app()
    probe = None
    try:
        probe = HealthProbe(url)
        room = Classroom(url, n_sessions)
        room.start()
        room.loaded.wait(300)
        if room.error:
            raise room.error
        r = one_run(browser, url, epochs, on_training=room.go.set)
        room.join(900)
        samples = probe.stop()
        probe = None
    finally:
        if probe is not None:
            probe.stop()
        stop(proc)
    if room.error:
        raise room.error
    t0, t1 = room.result["pressed"], room.result["all_done"]
    lat = [s[1] for s in samples if t0 <= s[0] <= t1 and s[1] is not None]
    errors = sum(1 for s in samples if t0 <= s[0] <= t1 and s[2])
    r["load"] = {"sessions": n_sessions, "completed": room.result.get("completed", 0),
                 "problems": room.result.get("problems"), "window_s": t1 - t0,
                 "health_n": len(lat), "health_p50_s": percentile(lat, 50),
                 "health_p95_s": percentile(lat, 95), "health_max_s": max(lat, default=0),
                 "health_errors": errors}
    return r


def machine() -> dict[str, Any]:
    from common import cpu_model

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "load_avg_1min": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--load", type=int, default=0, metavar="N",
                        help="also press Train in N protocol sessions (a classroom)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    results = []
    cpu0 = psutil.cpu_times()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        if args.load:
            for i in range(args.repeats):
                r = loaded_run(browser, args.epochs, args.load)
                results.append(r)
                print_run(i, r)
                ld = r["load"]
                print(f"   with {ld['sessions']} sessions: {ld['completed']} finished, health "
                      f"p50 {ld['health_p50_s'] * 1000:.0f} ms, p95 "
                      f"{ld['health_p95_s'] * 1000:.0f} ms, max {ld['health_max_s'] * 1000:.0f}"
                      f" ms (n={ld['health_n']}, errors {ld['health_errors']})")
        else:
            with contextlib.ExitStack() as stack:
                proc, url = start_app()
                stack.callback(stop, proc)
                for i in range(args.repeats):
                    r = one_run(browser, url, args.epochs)
                    results.append(r)
                    print_run(i, r)
        browser.close()
    cpu1 = psutil.cpu_times()
    summary = summarize(results)
    print_summary(summary, len(results), args.epochs, loaded=bool(args.load))
    if args.load:
        p95 = median([r["load"]["health_p95_s"] for r in results])
        summary["health_p95_s"] = p95
        summary["sessions_completed"] = [r["load"]["completed"] for r in results]
        print(f"  /_stcore/health during the load: median p95 {p95 * 1000:.0f} ms   (target < "
              f"{HEALTH_P95_TARGET * 1000:.0f} ms); sessions finished per run: "
              f"{summary['sessions_completed']} of {args.load}")
    busy = sum(getattr(cpu1, f) - getattr(cpu0, f) for f in ("user", "system", "nice"))
    idle = sum(getattr(cpu1, f) - getattr(cpu0, f) for f in ("idle", "iowait"))
    print(f"  machine busy {busy / (busy + idle):.0%} of its CPU time during the benchmark "
          "(server, workers, browser and any other process)")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "args": vars(args) | {
            "json": str(args.json)}, "runs": results, "median": summary}, indent=2))


if __name__ == "__main__":
    main()
