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
#: Playground's loss curve has (a Vega-Lite SVG whose first line is the training
#: curve; its path has one "L" per point after the first) into ``window.__points``
#: as ``[time, count]`` pairs, one per change.
LOSS_POINTS_PROBE = """() => {
  window.__points = [];
  const tick = () => {
    const path = document.querySelector('.st-key-loss_chart g.mark-line path');
    const n = path ? (path.getAttribute('d') || '').split('L').length : null;
    const last = window.__points.length ? window.__points[window.__points.length - 1][1] : null;
    if (n !== null && n !== last) window.__points.push([performance.now(), n]);
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""

#: JavaScript that returns how many points the loss curve has right now (0 before
#: the chart exists); the same reading of the SVG path as LOSS_POINTS_PROBE.
LOSS_POINTS_JS = """() => {
    const path = document.querySelector('.st-key-loss_chart g.mark-line path');
    const d = path && path.getAttribute('d');
    return d ? d.split('L').length : 0;
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
