"""CSV uploads are parsed in a helper process, never in the web server's own.

Parsing is CPU work that holds the GIL of the process it runs in: in the
server it would stall every other user's page for as long as it takes, and a
file crafted to be slow would stall them for good. So the server hands the
bytes to one long-lived helper process (``python -m playground.parser_process
FD``), waits for the parsed :class:`~playground.datasets.Dataset` or the
:class:`~playground.datasets.DatasetError` message, and gives up (killing and
replacing the helper) after ``timeout`` seconds. Requests are served one at a
time; results are cached per file content by the caller, failures included.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from .datasets import DatasetError, csv_columns, parse_csv

__all__ = ["ParserProcess"]

log = logging.getLogger("playground")

_CALLS = {"parse": parse_csv, "columns": csv_columns}


class ParserProcess:
    """A helper process that parses uploads; thread-safe, one request at a time.

    Parameters
    ----------
    timeout : float
        Seconds one request may take before the helper is killed and the
        upload refused as too slow to read.
    """

    def __init__(self, timeout: float = 15.0) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._conn: Connection | None = None

    def call(self, kind: str, *args: Any, **kwargs: Any) -> Any:
        """Run ``parse_csv`` (``kind="parse"``) or ``csv_columns`` (``"columns"``) there.

        Raises
        ------
        DatasetError
            What is wrong with the file, or that it took too long to read.
        """
        with self._lock:
            for attempt in (1, 2):
                conn = self._ensure()
                try:
                    conn.send((kind, args, kwargs))
                    if not conn.poll(self.timeout):
                        self._kill()
                        raise DatasetError(
                            f"Reading this file took longer than {self.timeout:g} seconds, so "
                            "it was stopped. Save it as a plain comma-separated file with one "
                            "header row and try again.")
                    status, value = conn.recv()
                except (EOFError, OSError, BrokenPipeError):
                    self._kill()  # the helper died (e.g. out of memory): one more try
                    if attempt == 2:
                        raise DatasetError("This file could not be read: the reader ran out "
                                           "of memory or crashed. Try a smaller file.") from None
                    continue
                if status == "error":
                    raise DatasetError(value)
                return value
        raise AssertionError("unreachable")

    def start(self) -> None:
        """Start the helper now (it imports pandas), so the first upload does not wait."""
        with self._lock:
            self._ensure()

    def close(self) -> None:
        with self._lock:
            self._kill()

    def _ensure(self) -> Connection:
        if self._process is not None and self._process.poll() is None and self._conn:
            return self._conn
        self._kill()
        parent, child = socket.socketpair()
        root = Path(__file__).resolve().parents[1]
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(root),
                                                           os.environ.get("PYTHONPATH")]))}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "playground.parser_process", str(child.fileno())],
            pass_fds=(child.fileno(),), env=env, cwd=root, stdin=subprocess.DEVNULL)
        child.close()
        self._conn = Connection(parent.detach())
        return self._conn

    def _kill(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
            self._conn = None
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(5)
            self._process = None


def serve(conn: Connection) -> None:
    """The helper's loop: parse what the server sends until the pipe closes."""
    while True:
        try:
            kind, args, kwargs = conn.recv()
        except (EOFError, OSError):
            return
        try:
            result: tuple[str, Any] = ("ok", _CALLS[kind](*args, **kwargs))
        except DatasetError as exc:
            result = ("error", str(exc))
        except Exception as exc:  # a parser bug must not look like a crash of the server
            log.exception("parsing an upload failed")
            result = ("error", f"This file could not be read ({type(exc).__name__}). "
                               "Save it as a plain comma-separated file and try again.")
        conn.send(result)


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])))
