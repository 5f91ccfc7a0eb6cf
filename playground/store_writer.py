"""Store writes off the hot path: a background thread that applies them in order.

Training must never wait for the database, and a database that is down or
restarting must not lose what was trained meanwhile. So writers (the training
worker, the job runner) hand each write to a :class:`StoreWriter`, which

* applies writes in the order they were submitted, on its own thread;
* retries a write while the store is unavailable (back-off from 0.5 s up to
  5 s), so records, checkpoints and results reach the database once it is back;
* coalesces writes that supersede each other (the newest checkpoint of a run
  replaces an older one still waiting), which bounds memory during an outage.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from .store import RunStore, StoreUnavailableError

__all__ = ["StoreWriter"]

log = logging.getLogger("playground.store")

Write = Callable[[RunStore], None]


class StoreWriter:
    """Applies :class:`~playground.store.RunStore` writes in order on a background thread.

    Parameters
    ----------
    url : str
        The store's SQLAlchemy URL; the store is opened on the writer's thread
        (a database that is down when the process starts is retried too).
    name : str
        Thread name (for logs).
    """

    def __init__(self, url: str, name: str = "nnpg-store-writer") -> None:
        self.url = url
        self._store: RunStore | None = None
        self._pending: OrderedDict[Hashable, Write] = OrderedDict()
        self._cond = threading.Condition()
        self._busy = False
        self._closed = False
        self._seq = itertools.count()
        self.error: str | None = None  # what is wrong while writes are failing
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, write: Write, key: Hashable | None = None) -> None:
        """Queue ``write(store)``; a pending write with the same ``key`` is replaced in place."""
        with self._cond:
            if key is None:
                key = ("seq", next(self._seq))
            self._pending[key] = write
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._pending) + self._busy

    def flush(self, timeout: float) -> bool:
        """Wait until every submitted write is applied; False on time-out."""
        with self._cond:
            return self._cond.wait_for(lambda: not (self._pending or self._busy), timeout)

    def close(self, timeout: float = 2.0) -> bool:
        """Apply what is pending (up to ``timeout``), then stop the thread."""
        done = self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(1.0)
        if self._store is not None:
            self._store.close()
        return done

    def _loop(self) -> None:
        delay = 0.5
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed and not self._pending:
                    return
                key, write = next(iter(self._pending.items()))
                self._busy = True
                del self._pending[key]
            try:
                if self._store is None:
                    try:
                        self._store = RunStore(self.url, migrate=False)
                    except Exception as exc:  # cannot even open it: retry like an outage
                        raise StoreUnavailableError(str(exc)) from exc
                write(self._store)
            except StoreUnavailableError as exc:
                # Put it back in front and retry later; never drop training results.
                with self._cond:
                    self._busy = False
                    if key not in self._pending:
                        self._pending[key] = write
                        self._pending.move_to_end(key, last=False)
                    if self.error is None:
                        log.warning("store writes are failing, will retry: %s", exc)
                    self.error = str(exc)
                    self._cond.wait(delay)
                    if self._closed:
                        return
                delay = min(5.0, delay * 2)
                continue
            except Exception:
                # A write that can never succeed (a bug, a constraint): log it and go on.
                log.exception("store write failed and was dropped")
            with self._cond:
                self._busy = False
                if self.error is not None:
                    log.info("store writes succeed again")
                self.error = None
                delay = 0.5
                self._cond.notify_all()
