"""Run statuses: one vocabulary for the runner, the workers, the store and the pages."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ACTIVE", "FINISHED", "RESUMABLE", "Status"]


class Status(StrEnum):
    """Where a run is in its life. Stored as its string value."""

    QUEUED = "queued"  # waiting for a free worker
    RUNNING = "running"  # on a worker
    PAUSED = "paused"  # left its worker with a checkpoint; Resume queues it again
    DONE = "done"  # trained all its epochs (or stopped early by early stopping)
    STOPPED = "stopped"  # stopped by the user, by the server's limits, or abandoned
    DIVERGED = "diverged"  # the loss became infinite or NaN
    FAILED = "failed"  # an error or a crashed worker
    INTERRUPTED = "interrupted"  # the server went away mid-run; resumable


#: A run that holds (or waits for, or may take back) a worker.
ACTIVE = frozenset({Status.QUEUED, Status.RUNNING, Status.PAUSED})
#: A run whose training is over for now.
FINISHED = frozenset({Status.DONE, Status.STOPPED, Status.DIVERGED, Status.FAILED,
                      Status.INTERRUPTED})
#: Finished runs that Resume can continue from their last checkpoint.
RESUMABLE = frozenset({Status.PAUSED, Status.STOPPED, Status.INTERRUPTED})
