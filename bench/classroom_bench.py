"""A class of 30 on one server, with the teacher's board open.

One app server (its own SQLite store, NNPG_MAX_JOBS = usable CPUs). A class
is started in the store; 30 student sessions (Streamlit's WebSocket protocol,
``st_client.py``, each with its own workspace cookie) join it and press Train
on the Playground's default set-up (Digits, 500 epochs) at once; the teacher's
session has the board open (a fragment refreshed every 2 s). Measured:

* board refresh: from the teacher's auto-rerun request to the board fragment's
  run finished, p50 / p95 / max (target p95 <= 1 s);
* ``/_stcore/health`` latency every 50 ms from another process (target p95 <
  250 ms);
* every run stored: 30 runs of the class, done, with their model.

Usage: ``python bench/classroom_bench.py [--students 30]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import cpu_model  # noqa: E402
from jobs_bench import HealthProbe, percentile  # noqa: E402
from st_client import BrowserSession  # noqa: E402

DONE = "Trained 500 epochs."


async def drive(url: str, teacher_query: str, tokens: list[str], timeout: float) -> dict:
    teacher = BrowserSession(url, teacher_query, "teacher", page_name="classroom")
    students = [BrowserSession(url, "epochs=500", f"student-{i + 1:02d}",
                               cookies={"nnpg_workspace": t}) for i, t in enumerate(tokens)]
    await teacher.open()
    await teacher.load()
    for s in students:
        await s.open()
    await asyncio.gather(*(s.load() for s in students))
    t0 = time.monotonic()
    await asyncio.gather(*(s.click("train") for s in students))

    def done(s: BrowserSession) -> bool:
        return any(DONE in x.text for x in s.shown)

    await asyncio.gather(*(s.wait_until(lambda s=s: done(s), timeout, "the run to finish")
                           for s in students))
    elapsed = time.monotonic() - t0
    await asyncio.sleep(4.0)  # the board shows the last results
    for s in (teacher, *students):
        await s.close()
    exceptions = [x.text for s in (teacher, *students) for x in s.shown
                  if x.kind == "exception"]
    return {"latencies": teacher.fragment_latencies, "elapsed": elapsed,
            "exceptions": exceptions, "completed": sum(done(s) for s in students)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--students", type=int, default=30)
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args(argv)

    from playground.classes import create_class, find_class, join_class
    from playground.store import RunStore, database_url, runs
    from tests.servers import start_app, stop

    store_dir = tempfile.mkdtemp(prefix="nnpg-class-bench-")
    os.environ["NNPG_DATA_DIR"] = store_dir
    proc, url = start_app(env={"NNPG_DATA_DIR": store_dir})
    store = RunStore(database_url(store_dir))
    cls, token = create_class(store, "Benchmark class", None, 1)
    tokens = [secrets.token_urlsafe(32) for _ in range(args.students)]
    for i, t in enumerate(tokens):
        join_class(store, find_class(store, class_id=cls.id),
                   store.workspace_for_token(t), f"Student {i + 1}")
    probe = HealthProbe(url)
    time.sleep(1.0)
    try:
        res = asyncio.run(drive(url, f"class={cls.id}&teacher={token}", tokens, args.timeout))
    finally:
        samples = probe.stop()
        stop(proc)
    with store.engine.connect() as conn:
        rows = conn.execute(runs.select().with_only_columns(
            runs.c.status, runs.c.model.is_not(None)).where(runs.c.class_id == cls.id)).all()
    store.close()
    lat = res["latencies"]
    health = [s[1] for s in samples if s[1] is not None]
    stored_done = sum(r[0] == "done" and r[1] for r in rows)
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs")
    print(f"{args.students} students pressed Train at once with the teacher's board open; "
          f"{res['completed']}/{args.students} finished in {res['elapsed']:.1f} s")
    print(f"board refresh (request -> fragment finished), n={len(lat)}: p50 "
          f"{percentile(lat, 50) * 1000:.0f} ms, p95 {percentile(lat, 95) * 1000:.0f} ms, max "
          f"{max(lat) * 1000:.0f} ms (target p95 <= 1000 ms)")
    print(f"/_stcore/health, n={len(health)}: p50 {percentile(health, 50) * 1000:.0f} ms, p95 "
          f"{percentile(health, 95) * 1000:.0f} ms, max {max(health) * 1000:.0f} ms "
          "(target p95 < 250 ms)")
    print(f"stored: {len(rows)} runs of the class, {stored_done} done with their model")
    print(f"exceptions on any page: {len(res['exceptions'])}")
    ok = (res["completed"] == args.students and stored_done == args.students
          and percentile(lat, 95) <= 1.0 and percentile(health, 95) < 0.25
          and not res["exceptions"])
    print("all targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
