"""Live-view latency in a real browser: click Train -> first loss point on screen.

Starts the app (``tests/servers.py``), then for each repetition opens a fresh
headless-Chromium page (a new session), waits until the app is idle, installs
a probe that counts the points of the loss curve on every animation frame,
clicks Train and records when the point count changes until the run ends.

Prints, as medians over the repetitions:

* time from the click to the first loss point drawn (target <= 1.5 s);
* chart refreshes per second while training (target >= 2): the number of
  times the drawn curve changed, divided by the time between the first and
  the last change.

Run: ``.venv/bin/python bench/ui_bench.py [--repeats 5] [--epochs 2000]``.
Everything (server, training worker, browser) shares this machine's cores, as
in the browser tests.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.servers import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    IDLE,
    LOSS_POINTS_PROBE,
    running_app,
)


def one_run(browser, url: str, epochs: int) -> dict:
    context = browser.new_context(viewport={"width": 1500, "height": 1300})
    page = context.new_page()
    try:
        page.goto(f"{url}/?epochs={epochs}")
        page.wait_for_selector(IDLE, timeout=60_000)
        page.wait_for_timeout(500)
        page.evaluate(LOSS_POINTS_PROBE)
        t_click = page.evaluate("performance.now()")
        page.get_by_role("button", name="Train", exact=True).click()
        page.get_by_text(f"Trained {epochs} epochs").wait_for(timeout=180_000)
        points = page.evaluate("window.__points")
    finally:
        context.close()
    times = [(t - t_click) / 1000 for t, _ in points]
    counts = [n for _, n in points]
    span = times[-1] - times[0] if len(times) > 1 else float("nan")
    return {"first_point_s": times[0] if times else float("nan"),
            "refreshes_per_s": (len(times) - 1) / span if span > 0 else float("nan"),
            "distinct_counts": len(set(counts)), "final_points": counts[-1] if counts else 0,
            "training_view_s": span}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = []
    with running_app() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for i in range(args.repeats):
            r = one_run(browser, url, args.epochs)
            results.append(r)
            print(f"run {i + 1}: first point {r['first_point_s']:.2f} s, "
                  f"{r['refreshes_per_s']:.2f} refreshes/s over "
                  f"{r['training_view_s']:.1f} s ({r['distinct_counts']} distinct point "
                  f"counts, {r['final_points']} points at the end)")
        browser.close()
    first = statistics.median(r["first_point_s"] for r in results)
    rate = statistics.median(r["refreshes_per_s"] for r in results)
    print(f"\nmedian over {len(results)} runs ({args.epochs} epochs, Digits, default "
          "network):")
    print(f"  click Train -> first loss point on screen: {first:.2f} s   (target <= 1.5 s)")
    print(f"  chart refreshes per second while training: {rate:.2f}     (target >= 2)")
    if args.json:
        args.json.write_text(json.dumps({"runs": results, "median_first_point_s": first,
                                         "median_refreshes_per_s": rate}, indent=2))


if __name__ == "__main__":
    main()
