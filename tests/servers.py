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
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

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
    log_dir = ROOT / "test-artifacts"
    log_dir.mkdir(exist_ok=True)
    with open(log_dir / f"server-{port}.log", "ab") as log:
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
