"""Start the app as a real server process for browser and deployment tests.

Recipes from shared/TESTING.md: bind 127.0.0.1 on a free port, no usage
statistics, no file watcher, wait for ``/_stcore/health``, stop with SIGTERM
to the process group (which also reaches the training workers).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
#: Screenshots and server logs of the browser and deployment tests.
ARTIFACTS = ROOT / "test-artifacts"

#: Chromium flags that work on these machines (no sandbox as root, no network noise).
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
CHROMIUM = "/usr/bin/chromium"
#: CSS selector of an idle app (no script run in progress).
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


#: JavaScript that records, on every animation frame, how many points the
#: Playground's loss curve has (the first trace of its Plotly graph: the
#: training loss) into ``window.__points`` as ``[time, count]`` pairs, one per
#: change of the curve (its count or its last epoch).
LOSS_POINTS_PROBE = """() => {
  window.__points = [];
  let lastX;
  const tick = () => {
    const gd = document.querySelector('.st-key-loss_chart .js-plotly-plot');
    const trace = gd && gd.data && gd.data[0];
    if (trace) {
      const n = trace.x.length;
      const x = n ? trace.x[n - 1] : null;
      const pts = window.__points;
      if (!pts.length || pts[pts.length - 1][1] !== n || x !== lastX) {
        pts.push([performance.now(), n]);
      }
      lastX = x;
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""

#: JavaScript that returns how many points the loss curve has right now (0 before
#: the chart exists); the same reading of the graph as LOSS_POINTS_PROBE.
LOSS_POINTS_JS = """() => {
  const gd = document.querySelector('.st-key-loss_chart .js-plotly-plot');
  return gd && gd.data && gd.data.length ? gd.data[0].x.length : 0;
}"""

#: JavaScript taking a list of chart keys: on every animation frame it records,
#: per live chart, into ``window.__live.charts[key]``:
#:
#: * ``drawn``: when the chart first showed marks (a line with a path, a marker,
#:   a bar, or a heatmap's image), ``blank``: on how many frames after that it
#:   showed none (a blink), ``blank_at``: when the first few of those were;
#: * ``counts``: ``[time, points, last x]`` whenever its first trace changed
#:   (points: the trace's length; rows of ``z`` for a heatmap);
#: * ``shape``: a heatmap's ``[rows, columns]``, ``traces``: the trace count.
#:
#: ``window.__live.frames`` counts the animation frames.
LIVE_CHARTS_PROBE = """(keys) => {
  const live = window.__live = { frames: 0, charts: {} };
  for (const k of keys) live.charts[k] = { drawn: null, blank: 0, blank_at: [], counts: [],
                                            shape: null, traces: 0 };
  const hasMarks = (gd) => {
    if (gd.querySelector('.heatmaplayer image, .barlayer .point path, .scatterlayer .point'))
      return true;
    for (const p of gd.querySelectorAll('.scatterlayer path.js-line'))
      if ((p.getAttribute('d') || '').length > 2) return true;
    return false;
  };
  const tick = () => {
    live.frames += 1;
    const now = performance.now();
    for (const k of keys) {
      const c = live.charts[k];
      const gd = document.querySelector(`.st-key-${k} .js-plotly-plot`);
      const shown = !!gd && hasMarks(gd);
      if (shown && c.drawn === null) c.drawn = now;
      if (!shown && c.drawn !== null) {
        c.blank += 1;
        if (c.blank_at.length < 20) c.blank_at.push([now, !!gd]);
      }
      const trace = gd && gd.data && gd.data[0];
      if (!trace) continue;
      c.traces = gd.data.length;
      const heat = trace.type === 'heatmap';
      const n = heat ? trace.z.length : (trace.x ? trace.x.length : 0);
      const x = !heat && n ? trace.x[n - 1] : null;
      const last = c.counts[c.counts.length - 1];
      if (!last || last[1] !== n || last[2] !== x) c.counts.push([now, n, x]);
      if (heat) c.shape = [trace.z.length, trace.z.length ? trace.z[0].length : 0];
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""


def worker_processes(server_pid: int) -> list[psutil.Process]:
    """The server's training workers (``python -m playground.worker FD``)."""
    workers = []
    for p in psutil.Process(server_pid).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if "playground.worker" in " ".join(p.cmdline()):
                workers.append(p)
    return workers


def still_running(procs: Iterable[psutil.Process]) -> list[psutil.Process]:
    """Processes that have not exited (a zombie has exited, only not been reaped)."""
    alive = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except psutil.NoSuchProcess:
            pass
    return alive


def wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait up to ``timeout`` s for ``procs`` to exit; return those still running."""
    deadline = time.monotonic() + timeout
    while (left := still_running(procs)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    """Poll ``url``/_stcore/health until it answers ``ok``."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read() == b"ok":
                    return
        except OSError as exc:
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"{url} not healthy after {timeout}s: {last}")


def start_app(port: int | None = None, env: dict[str, str] | None = None,
              extra_args: Sequence[str] = ()) -> tuple[subprocess.Popen, str]:
    """Start ``streamlit run app.py`` on 127.0.0.1; return (process, base URL)."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
           "--server.address", "127.0.0.1", "--server.port", str(port),
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
           *extra_args]
    # The server's log goes to test-artifacts/ for diagnosing failures.
    log_file = log_path(port)
    log_file.parent.mkdir(exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})},
                                stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc=proc)
    except Exception:
        stop(proc)
        raise
    return proc, url


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM the server's process group; SIGKILL whatever is left after ``timeout``."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@contextlib.contextmanager
def running_app(env: dict[str, str] | None = None) -> Iterator[str]:
    """Context manager: a running app server, stopped afterwards."""
    proc, url = start_app(env=env)
    try:
        yield url
    finally:
        stop(proc)


def log_path(port: int) -> Path:
    """The file :func:`start_app` sends the server's stdout and stderr to (appended)."""
    return ARTIFACTS / f"server-{port}.log"
